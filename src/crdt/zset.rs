//! The sorted-set CRDT: an add-wins observed-remove set of members, each
//! with a score made of an LWW base plus per-replica increment runs — the
//! string-counter design of [`super::key`] (`StrWrite`/`IncrRun`/`RunMark`)
//! applied per member, with `f64` scores.
//!
//! A member holds *score entries*, each tagged with the dot of its write:
//! - [`ScorePart::Base`]: a ZADD's score (or, with a NaN score, a ZREM's
//!   marker), with the increment-run totals it observed. Concurrent ZADDs
//!   all stay; the largest `(ts, dot)` among those holding a score is the
//!   base (LWW). A marker never wins, so an unobserved concurrent ZADD
//!   survives a ZREM (add-wins).
//! - [`ScorePart::Incr`]: one replica's running total of ZINCRBYs on the
//!   member. Runs of different replicas all count; a base write or marker
//!   records the totals it saw, so every ZADD/ZREM resets exactly the
//!   increments it observed.
//!
//! The visible score is the base (0 when there is none) plus each run's
//! unobserved part, summed in dot order so every replica computes the
//! same float. A sum that would be NaN (concurrent `+inf` and `-inf`) reads
//! as 0; NaN is never stored or shown. A member is visible when it has a
//! base score or an unobserved run; members left with only markers are
//! kept aside (`hidden`) until garbage collection drops them.
//!
//! Visible members live in a [`MemberTable`] (O(1) lookup, random pick and
//! ZSCAN cursors) and in an ordered index `(score, member)` (ties by member
//! bytes, as Redis orders them) for ranges. Rank queries walk the index:
//! O(rank), documented in docs/semantics.md.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::element::{ElementCrdt, Kind};
use super::members::MemberTable;

/// "Replica `replica`'s run started at `start` had reached `total` (in its
/// version with dot seq `seq`) when this base write happened."
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreMark {
    pub replica: ReplicaId,
    pub start: u64,
    pub seq: u64,
    pub total: f64,
}

/// What one score entry holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ScorePart {
    /// A ZADD's score, or a ZREM marker when `score` is NaN (never a real
    /// score: NaN is refused everywhere). A sentinel rather than an
    /// `Option` keeps an entry at 48 bytes instead of 56.
    Base {
        ts: Hlc,
        score: f64,
        observed: Box<[ScoreMark]>,
    },
    /// This replica's increments since the run's first one (dot seq `start`).
    Incr { start: u64, total: f64 },
}

/// Bitwise equality, so two markers (NaN scores) compare equal.
impl PartialEq for ScorePart {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                ScorePart::Base {
                    ts,
                    score,
                    observed,
                },
                ScorePart::Base {
                    ts: ts2,
                    score: score2,
                    observed: observed2,
                },
            ) => ts == ts2 && score.to_bits() == score2.to_bits() && observed == observed2,
            (
                ScorePart::Incr { start, total },
                ScorePart::Incr {
                    start: start2,
                    total: total2,
                },
            ) => start == start2 && total.to_bits() == total2.to_bits(),
            _ => false,
        }
    }
}

/// One write's contribution to a member's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreEntry {
    pub dot: Dot,
    pub part: ScorePart,
}

/// A member's live entries, sorted by dot (its score is computed from
/// them: caching it would cost 8 bytes per member).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreState {
    #[serde(deserialize_with = "super::bounded::smallvec")]
    entries: SmallVec<[ScoreEntry; 1]>,
}

impl ScoreState {
    fn score(&self) -> f64 {
        visible_score(&self.entries).unwrap_or(0.0)
    }
}

/// A score as an index key: totally ordered, with -0 equal to 0 (Redis
/// compares them equal and orders such members by their bytes).
#[derive(Clone, Copy, Debug)]
pub struct ScoreKey(pub f64);

impl ScoreKey {
    fn of(score: f64) -> Self {
        ScoreKey(score + 0.0)
    }
}

impl PartialEq for ScoreKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ScoreKey {}
impl PartialOrd for ScoreKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ScoreKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The sorted-set state; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    members: MemberTable<ScoreState>,
    /// Members whose entries are only markers (or fully observed runs).
    hidden: BTreeMap<Box<[u8]>, ScoreState>,
    /// `(score, member)` of every visible member.
    order: BTreeSet<(ScoreKey, Box<[u8]>)>,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members && self.hidden == other.hidden
    }
}

/// A member's live score entries, sorted by dot.
type Entries = SmallVec<[ScoreEntry; 1]>;

/// The replicated form: entries only (scores and the index are derived).
#[derive(Serialize)]
struct ZSetRepr {
    members: Vec<(Box<[u8]>, Entries)>,
}

/// [`ZSetRepr`] as read: the same bytes, each member's entries through
/// [`ScoreState`]'s bounded deserializer (smallvec's own reserves whatever
/// length a peer claims; fuzz/peer_frame found it).
#[derive(Deserialize)]
struct ZSetReprIn {
    members: Vec<(Box<[u8]>, ScoreState)>,
}

impl Serialize for ZSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let members = self
            .members
            .iter()
            .chain(self.hidden.iter().map(|(m, s)| (m.as_ref(), s)))
            .map(|(m, s)| (Box::<[u8]>::from(m), s.entries.clone()))
            .collect();
        ZSetRepr { members }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ZSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = ZSetReprIn::deserialize(deserializer)?;
        let mut out = ZSet::default();
        for (member, ScoreState { mut entries }) in repr.members {
            entries.sort_by_key(|e| e.dot);
            entries.dedup_by_key(|e| e.dot);
            if entries.iter().any(|e| e.part.has_nan()) {
                return Err(serde::de::Error::custom("NaN score"));
            }
            out.settle(&member, entries);
        }
        Ok(out)
    }
}

impl ScorePart {
    fn has_nan(&self) -> bool {
        match self {
            ScorePart::Base { observed, .. } => observed.iter().any(|m| m.total.is_nan()),
            ScorePart::Incr { total, .. } => total.is_nan(),
        }
    }
}

/// One member's change: drop the observed entries `removes`, then add `add`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreChange {
    pub member: Box<[u8]>,
    #[serde(deserialize_with = "super::bounded::smallvec")]
    pub removes: SmallVec<[Dot; 1]>,
    pub add: Option<ScoreEntry>,
}

/// A sorted-set write's delta.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ZSetDelta {
    pub changes: Vec<ScoreChange>,
}

impl ZSetDelta {
    /// Adds `change`, replacing an earlier change of the same member in
    /// this delta (each was computed on the state before this write, so
    /// the later one already removes everything the earlier one did).
    pub fn push(&mut self, change: ScoreChange) {
        match self.changes.iter_mut().find(|c| c.member == change.member) {
            Some(c) => *c = change,
            None => self.changes.push(change),
        }
    }
}

/// The visible score of `entries`, if the member is visible.
fn visible_score(entries: &[ScoreEntry]) -> Option<f64> {
    let base = entries
        .iter()
        .filter_map(|e| match &e.part {
            ScorePart::Base { ts, score, .. } if !score.is_nan() => Some((*ts, e.dot, *score)),
            _ => None,
        })
        .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)))
        .map(|(_, _, s)| s);
    let mut runs = unobserved_runs(entries).peekable();
    if base.is_none() && runs.peek().is_none() {
        return None;
    }
    let sum = runs.fold(base.unwrap_or(0.0), |acc, part| acc + part);
    Some(if sum.is_nan() { 0.0 } else { sum })
}

/// The latest observation of run `(replica, start)` by any live base entry.
fn latest_mark(entries: &[ScoreEntry], replica: ReplicaId, start: u64) -> Option<ScoreMark> {
    entries
        .iter()
        .filter_map(|e| match &e.part {
            ScorePart::Base { observed, .. } => Some(observed.iter()),
            _ => None,
        })
        .flatten()
        .filter(|m| m.replica == replica && m.start == start)
        .max_by_key(|m| m.seq)
        .copied()
}

/// Each run's part no live base entry observed, in dot order.
fn unobserved_runs(entries: &[ScoreEntry]) -> impl Iterator<Item = f64> + '_ {
    entries.iter().filter_map(move |e| match e.part {
        ScorePart::Incr { start, total } => match latest_mark(entries, e.dot.replica, start) {
            Some(mark) if mark.seq >= e.dot.seq => None,
            Some(mark) if mark.total == total => Some(0.0),
            Some(mark) => {
                let part = total - mark.total;
                Some(if part.is_nan() { 0.0 } else { part })
            }
            None => Some(total),
        },
        _ => None,
    })
}

/// The run totals a base write made now would observe: every live run and
/// the marks of the base entries it supersedes.
fn observed_marks(entries: &[ScoreEntry]) -> Box<[ScoreMark]> {
    let mut marks: Vec<ScoreMark> = Vec::new();
    let mut note = |mark: ScoreMark| match marks
        .iter_mut()
        .find(|m| m.replica == mark.replica && m.start == mark.start)
    {
        Some(m) => {
            if mark.seq > m.seq {
                *m = mark
            }
        }
        None => marks.push(mark),
    };
    for e in entries {
        match &e.part {
            ScorePart::Incr { start, total } => note(ScoreMark {
                replica: e.dot.replica,
                start: *start,
                seq: e.dot.seq,
                total: *total,
            }),
            ScorePart::Base { observed, .. } => observed.iter().copied().for_each(&mut note),
        }
    }
    marks.sort_by_key(|m| (m.replica, m.start));
    marks.into_boxed_slice()
}

/// Why an increment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NanScore;

impl ZSet {
    fn entries_of(&self, member: &[u8]) -> &[ScoreEntry] {
        self.members
            .get(member)
            .or_else(|| self.hidden.get(member))
            .map_or(&[][..], |s| &s.entries)
    }

    /// Puts `member` with `entries` where it belongs (visible, hidden or
    /// gone) and keeps the order index in step.
    fn settle(&mut self, member: &[u8], entries: SmallVec<[ScoreEntry; 1]>) {
        let new_score = visible_score(&entries);
        if let Some(old) = self.members.get_mut(member) {
            let old_key = ScoreKey::of(old.score());
            if new_score.map(ScoreKey::of) == Some(old_key) {
                // Same place in the order (a re-ZADD of the same score):
                // no index work.
                old.entries = entries;
                return;
            }
            self.order.remove(&(old_key, Box::<[u8]>::from(member)));
        }
        match new_score {
            Some(score) => {
                if !self.hidden.is_empty() {
                    self.hidden.remove(member);
                }
                self.order
                    .insert((ScoreKey::of(score), Box::<[u8]>::from(member)));
                self.members.insert(member, ScoreState { entries });
            }
            None => {
                self.members.remove(member);
                if entries.is_empty() {
                    self.hidden.remove(member);
                } else {
                    self.hidden.insert(member.into(), ScoreState { entries });
                }
            }
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.members.get(member).map(ScoreState::score)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    /// Visible members in ascending `(score, member)` order.
    pub fn ascending(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.iter().map(|(k, m)| (m.as_ref(), k.0))
    }

    /// Visible members with scores within the bounds, ascending (reverse
    /// the iterator for descending).
    pub fn score_range(
        &self,
        min: Bound<f64>,
        max: Bound<f64>,
    ) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        // The empty member sorts first among equal scores, so `(s, [])` is
        // the first key of score class `s`; every bound becomes "from the
        // first key of a class" / "before the first key of a class".
        let class_start = |s: f64| (ScoreKey::of(s), Box::<[u8]>::default());
        let lo = match min {
            Bound::Included(s) => Some(s),
            Bound::Excluded(s) if s == f64::INFINITY => None,
            Bound::Excluded(s) => Some((s + 0.0).next_up()),
            Bound::Unbounded => Some(f64::NEG_INFINITY),
        };
        let hi = match max {
            Bound::Included(s) if s == f64::INFINITY => Some(None),
            Bound::Included(s) => Some(Some((s + 0.0).next_up())),
            Bound::Excluded(s) => Some(Some(s)),
            Bound::Unbounded => Some(None),
        };
        let range = match (lo, hi) {
            (Some(lo), Some(hi)) if hi.is_none_or(|hi| ScoreKey::of(lo) <= ScoreKey::of(hi)) => {
                let upper = match hi {
                    Some(hi) => Bound::Excluded(class_start(hi)),
                    None => Bound::Unbounded,
                };
                Some(self.order.range((Bound::Included(class_start(lo)), upper)))
            }
            _ => None,
        };
        range.into_iter().flatten().map(|(k, m)| (m.as_ref(), k.0))
    }

    /// 0-based ascending rank of `member` (O(rank): walks the index).
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let score = self.score(member)?;
        let key = (ScoreKey::of(score), Box::<[u8]>::from(member));
        let below = self.order.range(..key).count();
        Some((below, score))
    }

    /// A random visible member; `random(n)` returns a number in `0..n`.
    pub fn random_member(&self, random: impl FnMut(usize) -> usize) -> Option<(&[u8], f64)> {
        self.members.random(random).map(|(m, s)| (m, s.score()))
    }

    /// One ZSCAN step over member slots; returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], f64)) -> u64 {
        self.members.scan(cursor, count, |m, s| visit(m, s.score()))
    }

    /// ZADD of `member` with `score` (not NaN): replaces every observed
    /// entry, recording the increment totals it saw.
    pub fn delta_set(&self, member: &[u8], score: f64, ts: Hlc, dot: Dot) -> ScoreChange {
        debug_assert!(!score.is_nan());
        let entries = self.entries_of(member);
        ScoreChange {
            member: member.into(),
            removes: entries.iter().map(|e| e.dot).collect(),
            add: Some(ScoreEntry {
                dot,
                part: ScorePart::Base {
                    ts,
                    score,
                    observed: observed_marks(entries),
                },
            }),
        }
    }

    /// ZINCRBY of `member` by `amount` at replica `me`: continues this
    /// replica's live run or starts one. Refused when the visible score or
    /// the run total would become NaN.
    pub fn delta_incr(
        &self,
        member: &[u8],
        amount: f64,
        me: ReplicaId,
        dot: Dot,
    ) -> Result<(ScoreChange, f64), NanScore> {
        let current = self.score(member).unwrap_or(0.0);
        let new_score = current + amount;
        if amount.is_nan() || new_score.is_nan() {
            return Err(NanScore);
        }
        let entries = self.entries_of(member);
        let own = entries.iter().find_map(|e| match e.part {
            ScorePart::Incr { start, total } if e.dot.replica == me => Some((e.dot, start, total)),
            _ => None,
        });
        let mut removes = SmallVec::new();
        let part = match own {
            Some((old, start, total)) => {
                removes.push(old);
                ScorePart::Incr {
                    start,
                    total: total + amount,
                }
            }
            None => ScorePart::Incr {
                start: dot.seq,
                total: amount,
            },
        };
        if part.has_nan() {
            return Err(NanScore);
        }
        let change = ScoreChange {
            member: member.into(),
            removes,
            add: Some(ScoreEntry { dot, part }),
        };
        // The score this change gives, computed the way every replica will.
        let mut after: SmallVec<[ScoreEntry; 1]> = entries
            .iter()
            .filter(|e| !change.removes.contains(&e.dot))
            .cloned()
            .collect();
        after.extend(change.add.clone());
        after.sort_by_key(|e| e.dot);
        let score = visible_score(&after).unwrap_or(0.0);
        Ok((change, score))
    }

    /// ZREM of `member` (`None` when not visible): removes every observed
    /// entry, leaving a marker with the run totals it saw when there were
    /// runs, so a concurrent continuation of a run counts only its rest.
    pub fn delta_remove(
        &self,
        member: &[u8],
        ts: Hlc,
        next_dot: &mut dyn FnMut() -> Dot,
    ) -> Option<ScoreChange> {
        let state = self.members.get(member)?;
        let observed = observed_marks(&state.entries);
        Some(ScoreChange {
            member: member.into(),
            removes: state.entries.iter().map(|e| e.dot).collect(),
            add: (!observed.is_empty()).then(|| ScoreEntry {
                dot: next_dot(),
                part: ScorePart::Base {
                    ts,
                    score: f64::NAN,
                    observed,
                },
            }),
        })
    }

    /// A delta that adds `members` with their scores to an empty key
    /// (the *STORE commands).
    pub fn delta_build(
        scored: impl IntoIterator<Item = (Box<[u8]>, f64)>,
        ts: Hlc,
        next_dot: &mut dyn FnMut() -> Dot,
    ) -> ZSetDelta {
        ZSetDelta {
            changes: scored
                .into_iter()
                .map(|(member, score)| ScoreChange {
                    member,
                    removes: SmallVec::new(),
                    add: Some(ScoreEntry {
                        dot: next_dot(),
                        part: ScorePart::Base {
                            ts,
                            score: if score.is_nan() { 0.0 } else { score },
                            observed: Box::new([]),
                        },
                    }),
                })
                .collect(),
        }
    }

    fn all_states(&self) -> impl Iterator<Item = (&[u8], &ScoreState)> {
        self.members
            .iter()
            .chain(self.hidden.iter().map(|(m, s)| (m.as_ref(), s)))
    }
}

impl ElementCrdt for ZSet {
    type Delta = ZSetDelta;
    const KIND: Kind = Kind::ZSet;

    fn apply(&mut self, delta: &ZSetDelta, ctx: &mut CausalContext) {
        for change in &delta.changes {
            for &dot in &change.removes {
                ctx.insert(dot);
            }
            let fresh = change
                .add
                .as_ref()
                .filter(|e| !ctx.contains(e.dot) && !e.part.has_nan());
            let current = self.entries_of(&change.member);
            let touched =
                fresh.is_some() || current.iter().any(|e| change.removes.contains(&e.dot));
            if touched {
                let mut entries: SmallVec<[ScoreEntry; 1]> = current
                    .iter()
                    .filter(|e| !change.removes.contains(&e.dot))
                    .cloned()
                    .collect();
                if let Some(entry) = fresh {
                    let at = entries.partition_point(|e| e.dot < entry.dot);
                    entries.insert(at, entry.clone());
                }
                self.settle(&change.member, entries);
            }
            if let Some(entry) = &change.add {
                ctx.insert(entry.dot);
            }
        }
    }

    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut out = ZSet::default();
        for (member, mine) in self.all_states() {
            let theirs = other.entries_of(member);
            let mut kept: SmallVec<[ScoreEntry; 1]> = mine
                .entries
                .iter()
                .filter(|e| theirs.iter().any(|t| t.dot == e.dot) || !other_ctx.contains(e.dot))
                .cloned()
                .collect();
            kept.extend(
                theirs
                    .iter()
                    .filter(|t| {
                        !mine.entries.iter().any(|e| e.dot == t.dot) && !self_ctx.contains(t.dot)
                    })
                    .cloned(),
            );
            kept.sort_by_key(|e| e.dot);
            out.settle(member, kept);
        }
        for (member, theirs) in other.all_states() {
            if !self.entries_of(member).is_empty() {
                continue;
            }
            let new: SmallVec<[ScoreEntry; 1]> = theirs
                .entries
                .iter()
                .filter(|t| !self_ctx.contains(t.dot))
                .cloned()
                .collect();
            out.settle(member, new);
        }
        out
    }

    fn len(&self) -> usize {
        self.members.len()
    }

    fn is_blank(&self) -> bool {
        self.members.is_empty() && self.hidden.is_empty()
    }

    fn delta_clear(&self) -> ZSetDelta {
        ZSetDelta {
            changes: self
                .all_states()
                .map(|(m, s)| ScoreChange {
                    member: m.into(),
                    removes: s.entries.iter().map(|e| e.dot).collect(),
                    add: None,
                })
                .collect(),
        }
    }

    fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        let states = self
            .members
            .iter()
            .map(|(_, s)| s)
            .chain(self.hidden.values());
        for state in states {
            for entry in &state.entries {
                visit(entry.dot);
            }
        }
    }

    fn delta_remove_covered(&self, seen: &VersionVector) -> ZSetDelta {
        ZSetDelta {
            changes: self
                .all_states()
                .filter(|(_, s)| s.entries.iter().any(|e| seen.covers(e.dot)))
                .map(|(m, s)| ScoreChange {
                    member: m.into(),
                    removes: s
                        .entries
                        .iter()
                        .map(|e| e.dot)
                        .filter(|d| seen.covers(*d))
                        .collect(),
                    add: None,
                })
                .collect(),
        }
    }

    fn delta_copy(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> ZSetDelta {
        ZSet::delta_build(
            self.members.iter().map(|(m, s)| (Box::from(m), s.score())),
            ts,
            next_dot,
        )
    }

    fn delta_then(delta: &mut ZSetDelta, next: ZSetDelta) {
        delta.changes.extend(next.changes);
    }

    fn delta_is_empty(delta: &ZSetDelta) -> bool {
        delta.changes.is_empty()
    }

    fn delta_bytes(delta: &ZSetDelta) -> usize {
        delta
            .changes
            .iter()
            .map(|c| {
                let marks = match &c.add {
                    Some(ScoreEntry {
                        part: ScorePart::Base { observed, .. },
                        ..
                    }) => observed.len() * 40,
                    _ => 0,
                };
                // The change itself, its member bytes (with allocator
                // rounding), spilled removes and marks.
                std::mem::size_of::<ScoreChange>()
                    + c.member.len().next_multiple_of(16)
                    + if c.removes.len() > 1 {
                        c.removes.len() * 16
                    } else {
                        0
                    }
                    + marks
            })
            .sum::<usize>()
            + 48
    }

    fn digest(&self, feed: &mut dyn FnMut(&[u8])) {
        let mut members: Vec<(&[u8], f64)> = self.ascending().collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (m, score) in members {
            feed(&(m.len() as u64).to_be_bytes());
            feed(m);
            feed(&(score + 0.0).to_bits().to_be_bytes());
        }
    }

    fn collect_garbage(&mut self, stable: &VersionVector) {
        // Hidden members that are only stable markers whose runs are gone:
        // every replica saw the markers (and so the removes that came with
        // them), so no run they mention can continue anywhere.
        let doomed: Vec<Box<[u8]>> = self
            .hidden
            .iter()
            .filter(|(_, s)| {
                s.entries.iter().all(|e| {
                    stable.covers(e.dot)
                        && matches!(e.part, ScorePart::Base { score, .. } if score.is_nan())
                })
            })
            .map(|(m, _)| m.clone())
            .collect();
        for m in doomed {
            self.hidden.remove(&m);
        }
    }

    fn observes_runs_of(&self, silent: &dyn Fn(ReplicaId) -> bool) -> bool {
        self.members
            .iter()
            .chain(self.hidden.iter().map(|(m, s)| (m.as_ref(), s)))
            .flat_map(|(_, s)| s.entries.iter())
            .any(|e| match &e.part {
                ScorePart::Base { observed, .. } => observed.iter().any(|m| silent(m.replica)),
                ScorePart::Incr { .. } => false,
            })
    }

    fn encoding(&self) -> &'static str {
        "skiplist"
    }

    super::element::collection_glue!(ZSet);
}
