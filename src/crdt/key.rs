//! The CRDT of one key: a set of *versions*, each tagged with the dot of the
//! write that created it, joined like a delta-state "dot function".
//!
//! A write's delta names the dots it observed and supersedes (`removes`) and
//! the versions it adds. Applying a delta removes those dots and adds the new
//! versions unless the causal context has already seen their dots (they were
//! removed before they arrived). Because a version only disappears when a
//! write that *observed* it removes it, concurrent unobserved writes survive:
//! that one mechanism gives add-wins deletes, multi-value registers, counter
//! resets that keep concurrent increments, and the TTL rule.
//!
//! Payload kinds and how a key reads:
//! - [`StrWrite`]: a SET-like base value (or a delete marker). Concurrent
//!   ones all stay; the largest `(hlc, dot)` among those holding a value is
//!   the value (LWW). A delete marker never wins, so a concurrent SET it did
//!   not observe survives (add-wins).
//! - [`IncrRun`]: one replica's running total of increments. Concurrent
//!   increments from different replicas all count. A base write or delete
//!   marker records the run totals it observed ([`RunMark`]); a run counts
//!   from the latest mark any live write holds for it, so every SET or DEL
//!   resets exactly the increments it saw.
//! - `Ttl`: an absolute deadline (ms) or `None` = persist. Live TTL versions
//!   combine as: any persist wins, else the latest deadline.
//! - `Created`: the HLC at which a collection write created the key as that
//!   collection type; it decides concurrent type conflicts (see
//!   [`super::collection`]).
//!
//! A key may also hold collection values (hash, set, sorted set, list), each
//! a dot store of its own elements; deltas carry their element changes in
//! `colls`. Normally a key holds one type; after a concurrent type conflict
//! it holds several until a DEL or SET removes the losers, and reads show
//! only the winner ([`KeyState::kind`]).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::bitmap::{self, BitPatch};
use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::collection::{CollDelta, Collection};
use super::compact::StoredValue;
use super::element::{ElementCrdt, Kind};
use super::hll::HllWrite;
use super::number::{parse_decimal, Amount};

/// A base write of a string key; `value: None` is a delete marker, written
/// only when the delete must remember counter totals it observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrWrite {
    pub ts: Hlc,
    pub value: Option<StoredValue>,
    pub observed: RunMarks,
}

/// The run marks of a base write, sorted by `(replica, start)`. Most writes
/// observe no counter, so the empty list costs one word (a string key's
/// version, and with it every key slot, is a word shorter than with a
/// boxed slice). Serialized as the sequence it holds.
// The box is the point: one word when empty, where a `Vec` takes three.
#[allow(clippy::box_collection)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMarks(Option<Box<Vec<RunMark>>>);

impl From<Vec<RunMark>> for RunMarks {
    fn from(marks: Vec<RunMark>) -> RunMarks {
        RunMarks((!marks.is_empty()).then(|| Box::new(marks)))
    }
}

impl std::ops::Deref for RunMarks {
    type Target = [RunMark];

    fn deref(&self) -> &[RunMark] {
        self.0.as_deref().map_or(&[], |marks| marks.as_slice())
    }
}

impl Serialize for RunMarks {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RunMarks {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RunMarks, D::Error> {
        Vec::<RunMark>::deserialize(deserializer).map(RunMarks::from)
    }
}

/// "Replica `replica`'s increment run started at `start` had reached `total`
/// (in its version with dot seq `seq`) when this base write happened."
/// Totals can go down (negative increments), so the latest observation of
/// a run is the one with the largest `seq`, not the largest total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMark {
    pub replica: ReplicaId,
    pub start: u64,
    pub seq: u64,
    pub total: Amount,
}

/// A replica's running total of increments on a key since `start` (the seq
/// of the run's first increment). The replica is the version's dot origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrRun {
    pub start: u64,
    pub total: Amount,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Str(StrWrite),
    Incr(IncrRun),
    /// Absolute deadline in Unix ms; `None` = PERSIST.
    Ttl(Option<u64>),
    /// A collection write created the key as `kind` at `ts`.
    Created {
        ts: Hlc,
        kind: Kind,
    },
    /// A HyperLogLog write (PFADD, PFMERGE…): concurrent ones merge
    /// register-wise (see [`super::hll`]).
    Hll(HllWrite),
    /// A bitmap write rendered over the base value (see [`super::bitmap`]).
    /// Boxed: bit writes are rare, and the largest payload sets the size
    /// of every key's version.
    Bits(Box<BitPatch>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub dot: Dot,
    pub payload: Payload,
}

/// What a write changes on one key: the dots it supersedes and the versions
/// it adds. The same value is applied locally and shipped to peers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyDelta {
    #[serde(deserialize_with = "super::bounded::smallvec")]
    pub removes: SmallVec<[Dot; 2]>,
    #[serde(deserialize_with = "super::bounded::smallvec")]
    pub adds: SmallVec<[Version; 1]>,
    /// Element changes of collection values, applied in order.
    pub colls: Vec<CollDelta>,
}

impl KeyDelta {
    pub fn is_empty(&self) -> bool {
        self.removes.is_empty() && self.adds.is_empty() && self.colls.iter().all(|c| c.is_empty())
    }

    /// This delta followed by `next`, as one delta. Valid when `next` was
    /// computed on the state this delta produces.
    pub fn then(mut self, next: KeyDelta) -> KeyDelta {
        self.removes.extend(next.removes);
        self.adds.extend(next.adds);
        for coll in next.colls {
            self.push_coll(coll);
        }
        self
    }

    /// Adds a collection change, merged into one of the same kind if any.
    pub fn push_coll(&mut self, coll: CollDelta) {
        if coll.is_empty() {
            return;
        }
        let mut pending = Some(coll);
        if let Some(last) = self.colls.last_mut() {
            pending = last.then(pending.take().expect("set above"));
        }
        self.colls.extend(pending);
    }
}

/// How a write treats the key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlChange {
    /// Leave the TTL versions alone (KEEPTTL, APPEND, INCR…).
    Keep,
    /// Remove the observed TTL (plain SET).
    Clear,
    /// Replace the observed TTL with this absolute deadline.
    Deadline(u64),
    /// Replace the observed TTL with "persist", which beats concurrent TTLs.
    Persist,
}

/// The value a string key reads as.
#[derive(Clone, Debug, PartialEq)]
pub enum StrValue<'a> {
    /// Bytes as written (no increments on top).
    Raw(&'a StoredValue),
    /// A number: base plus increments.
    Number(Amount),
    /// Bytes computed from several live writes: the register-wise max of
    /// concurrent HyperLogLog writes.
    Merged(Bytes),
    /// Bytes rendered from the base and bit patches.
    Rendered(Bytes),
}

impl StrValue<'_> {
    pub fn to_bytes(&self) -> Bytes {
        match self {
            StrValue::Raw(b) => b.to_bytes(),
            StrValue::Number(n) => Bytes::from(n.to_bytes()),
            StrValue::Merged(b) | StrValue::Rendered(b) => b.clone(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Raw(b) => b.len(),
            StrValue::Number(n) => n.to_bytes().len(),
            StrValue::Merged(b) | StrValue::Rendered(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// All live versions of one key, sorted by dot, and its collection values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    #[serde(deserialize_with = "sorted_versions")]
    versions: SmallVec<[Version; 1]>,
    /// At most one collection per kind; `None` for string keys (most keys),
    /// so they pay one pointer for it.
    #[serde(deserialize_with = "one_per_kind")]
    colls: Option<Box<Collections>>,
}

/// A key's collection values: one inline (the usual case) in the same
/// heap block as the box that holds it.
type Collections = SmallVec<[Collection; 1]>;

/// Collections from a peer with at most one per kind and no blank ones.
fn one_per_kind<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Box<Collections>>, D::Error> {
    let raw: Option<Vec<Collection>> = Deserialize::deserialize(deserializer)?;
    let mut kept = Collections::new();
    for coll in raw.into_iter().flatten() {
        if !coll.is_blank() && !kept.iter().any(|k| k.kind() == coll.kind()) {
            kept.push(coll);
        }
    }
    Ok((!kept.is_empty()).then(|| Box::new(kept)))
}

/// Versions from a peer, put back in dot order with duplicate dots dropped.
fn sorted_versions<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SmallVec<[Version; 1]>, D::Error> {
    let mut versions: SmallVec<[Version; 1]> = super::bounded::smallvec(deserializer)?;
    versions.sort_by_key(|v| v.dot);
    versions.dedup_by_key(|v| v.dot);
    Ok(versions)
}

impl KeyState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.colls.is_none()
    }

    /// Calls `visit` with every dot the key holds: its versions' and every
    /// collection element's (a full-state sync records them as seen).
    pub fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        for v in &self.versions {
            visit(v.dot);
        }
        for coll in self.collections() {
            coll.for_each_dot(&mut *visit);
        }
    }

    /// True when some dot of the key satisfies `pred`.
    pub fn any_dot(&self, mut pred: impl FnMut(Dot) -> bool) -> bool {
        let mut found = false;
        self.for_each_dot(&mut |d| found = found || pred(d));
        found
    }

    /// Every collection held, winner or not.
    pub fn collections(&self) -> &[Collection] {
        self.colls.as_deref().map_or(&[], |v| v.as_slice())
    }

    fn collection_of_kind(&self, kind: Kind) -> Option<&Collection> {
        self.collections().iter().find(|c| c.kind() == kind)
    }

    fn position(&self, dot: Dot) -> Result<usize, usize> {
        self.versions.binary_search_by(|v| v.dot.cmp(&dot))
    }

    fn insert(&mut self, version: Version) {
        if let Err(i) = self.position(version.dot) {
            self.versions.insert(i, version);
        }
    }

    fn remove(&mut self, dot: Dot) -> bool {
        match self.position(dot) {
            Ok(i) => {
                self.versions.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Applies a delta (local or remote), recording its dots in `ctx`.
    /// Idempotent: a dot already in `ctx` is never added again.
    pub fn apply(&mut self, delta: &KeyDelta, ctx: &mut CausalContext) {
        for &dot in &delta.removes {
            self.remove(dot);
            ctx.insert(dot);
        }
        for version in &delta.adds {
            if !ctx.contains(version.dot) {
                self.insert(version.clone());
                ctx.insert(version.dot);
            }
        }
        for coll_delta in &delta.colls {
            self.apply_collection(coll_delta, ctx);
        }
    }

    fn apply_collection(&mut self, delta: &CollDelta, ctx: &mut CausalContext) {
        let colls = self.colls.get_or_insert_with(Default::default);
        let at = match colls.iter().position(|c| c.kind() == delta.kind()) {
            Some(at) => at,
            None => {
                colls.push(Collection::empty(delta.kind()));
                colls.len() - 1
            }
        };
        colls[at].apply(delta, ctx);
        if colls[at].is_blank() {
            colls.swap_remove(at);
        }
        if colls.is_empty() {
            self.colls = None;
        }
    }

    /// State-based join of two replicas' versions of this key, each with its
    /// replica's causal context: a version survives if both sides have it, or
    /// if the side lacking it has not seen its dot (so did not remove it).
    pub fn join(
        &self,
        self_ctx: &CausalContext,
        other: &KeyState,
        other_ctx: &CausalContext,
    ) -> KeyState {
        let mut out = KeyState::new();
        for v in &self.versions {
            if other.position(v.dot).is_ok() || !other_ctx.contains(v.dot) {
                out.versions.push(v.clone());
            }
        }
        for v in &other.versions {
            if self.position(v.dot).is_err() && !self_ctx.contains(v.dot) {
                out.insert(v.clone());
            }
        }
        let mut colls = Collections::new();
        for mine in self.collections() {
            let theirs = other.collection_of_kind(mine.kind());
            colls.push(mine.join(self_ctx, theirs, other_ctx));
        }
        for theirs in other.collections() {
            if self.collection_of_kind(theirs.kind()).is_none() {
                colls.push(theirs.join(other_ctx, None, self_ctx));
            }
        }
        colls.retain(|c| !c.is_blank());
        out.colls = (!colls.is_empty()).then(|| Box::new(colls));
        out
    }

    // ----- reading -----

    /// The winning base value: the largest (timestamp, dot) among the live
    /// base writes that hold a value. Delete markers never win: a live value
    /// write was not observed by a live marker, so it is concurrent with it
    /// and survives (add-wins).
    fn base_value(&self) -> Option<&StoredValue> {
        self.versions
            .iter()
            .filter_map(|v| match &v.payload {
                Payload::Str(StrWrite {
                    ts,
                    value: Some(value),
                    ..
                }) => Some((*ts, v.dot, value)),
                _ => None,
            })
            .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)))
            .map(|(_, _, value)| value)
    }

    /// The winning base value's bytes, before bit patches and increments
    /// (for point reads of a bitmap, `super::bitmap`).
    pub(super) fn base_bytes(&self) -> Option<&[u8]> {
        self.base_value().map(|v| v.as_slice())
    }

    /// The latest observation of run `(replica, start)` by any live base
    /// write (value or delete marker): each reset what it observed.
    fn latest_mark(&self, replica: ReplicaId, start: u64) -> Option<RunMark> {
        self.versions
            .iter()
            .filter_map(|v| match &v.payload {
                Payload::Str(w) => Some(w.observed.iter()),
                _ => None,
            })
            .flatten()
            .filter(|m| m.replica == replica && m.start == start)
            .max_by_key(|m| m.seq)
            .copied()
    }

    /// Increment runs with the part of each that no live base write has
    /// observed.
    fn unobserved_runs(&self) -> impl Iterator<Item = (Dot, Amount)> + '_ {
        self.versions.iter().filter_map(move |v| match &v.payload {
            Payload::Incr(run) => match self.latest_mark(v.dot.replica, run.start) {
                Some(mark) if mark.seq >= v.dot.seq => None,
                Some(mark) => Some((v.dot, run.total.saturating_sub(mark.total))),
                None => Some((v.dot, run.total)),
            },
            _ => None,
        })
    }

    fn has_string(&self) -> bool {
        self.base_value().is_some()
            || self.unobserved_runs().next().is_some()
            || self.latest_hll().is_some()
            || self.bit_patches().next().is_some()
    }

    /// The latest live HyperLogLog write when it is newer than every live
    /// base value (a SET after it, or concurrent and later, wins instead).
    fn latest_hll(&self) -> Option<(Hlc, Dot)> {
        let latest = (self.versions.iter())
            .filter_map(|v| match &v.payload {
                Payload::Hll(w) => Some((w.ts, v.dot)),
                _ => None,
            })
            .max()?;
        let newest_set = (self.versions.iter())
            .filter_map(|v| match &v.payload {
                Payload::Str(StrWrite {
                    ts, value: Some(_), ..
                }) => Some((*ts, v.dot)),
                _ => None,
            })
            .max();
        newest_set.is_none_or(|set| latest > set).then_some(latest)
    }

    /// True when the value is a HyperLogLog write's (OBJECT ENCODING says
    /// `raw` for those, as Redis does for a value PFADD touched).
    pub fn holds_hll_write(&self) -> bool {
        self.latest_hll().is_some()
    }

    /// The HyperLogLog value when a HyperLogLog write is the key's value:
    /// the latest one's bytes, with concurrent ones' registers raised
    /// into them. `sparse_max` is `hll-sparse-max-bytes`.
    fn hll_value(&self, sparse_max: usize) -> Option<StrValue<'_>> {
        self.latest_hll()?;
        let mut writes: SmallVec<[(Hlc, Dot, &Bytes); 2]> = (self.versions.iter())
            .filter_map(|v| match &v.payload {
                Payload::Hll(w) => Some((w.ts, v.dot, &w.bytes)),
                _ => None,
            })
            .collect();
        if let [(_, _, only)] = writes.as_slice() {
            return Some(StrValue::Merged(Bytes::clone(only)));
        }
        writes.sort_by_key(|w| std::cmp::Reverse((w.0, w.1)));
        let values: SmallVec<[&Bytes; 2]> = writes.iter().map(|w| w.2).collect();
        Some(StrValue::Merged(super::hll::merge_values(
            &values, sparse_max,
        )))
    }

    /// True when the key holds a value (ignoring expiry).
    pub fn has_value(&self) -> bool {
        self.has_string() || self.collections().iter().any(|c| !c.is_empty())
    }

    /// The time a type claim was made: a string's winning SET (0 for a
    /// counter made only of increments), a collection's latest live
    /// creation.
    fn claim_time(&self, kind: Kind) -> (Hlc, Kind) {
        let ts = self
            .versions
            .iter()
            .filter_map(|v| match &v.payload {
                Payload::Str(StrWrite {
                    ts, value: Some(_), ..
                }) if kind == Kind::String => Some(*ts),
                Payload::Hll(w) if kind == Kind::String => Some(w.ts),
                Payload::Created { ts, kind: k } if *k == kind => Some(*ts),
                Payload::Bits(p) if kind == Kind::String => Some(p.ts),
                _ => None,
            })
            .max()
            .unwrap_or_default();
        (ts, kind)
    }

    /// The type the key reads as (`None`: no value). When several types
    /// are live after a concurrent conflict, the latest claim wins.
    pub fn kind(&self) -> Option<Kind> {
        let Some(colls) = self.colls.as_deref() else {
            return self.has_string().then_some(Kind::String);
        };
        let mut live: SmallVec<[Kind; 2]> = colls
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| c.kind())
            .collect();
        if self.has_string() {
            live.push(Kind::String);
        }
        match live.len() {
            0 => None,
            1 => Some(live[0]),
            _ => live.into_iter().max_by_key(|&k| self.claim_time(k)),
        }
    }

    /// True when the key reads as a collection (string commands answer
    /// WRONGTYPE). Costs one check for the usual key, which holds no
    /// collection, so string commands call this rather than [`Self::kind`].
    pub fn is_collection(&self) -> bool {
        self.colls.is_some() && self.kind().is_some_and(|k| k != Kind::String)
    }

    /// True when more than one type is live (a concurrent type conflict
    /// not yet cleaned up by a DEL or SET).
    pub fn has_type_conflict(&self) -> bool {
        let colls = self.collections().iter().filter(|c| !c.is_empty()).count();
        colls + usize::from(self.has_string()) > 1
    }

    /// The collection the key reads as, if it is one.
    pub fn collection(&self) -> Option<&Collection> {
        let kind = self.kind()?;
        self.collection_of_kind(kind)
    }

    /// The key's value as collection type `T`: `Ok(None)` when the key
    /// holds no value, `Err(kind)` when it holds another type (WRONGTYPE).
    pub fn typed<T: ElementCrdt>(&self) -> Result<Option<&T>, Kind> {
        match self.kind() {
            None => Ok(None),
            Some(k) if k == T::KIND => Ok(self.collection_of_kind(k).and_then(T::of)),
            Some(k) => Err(k),
        }
    }

    /// Feeds the visible value (type and content, canonically ordered) to a
    /// digest; nothing when the key holds no value.
    pub fn digest_value(&self, feed: &mut dyn FnMut(&[u8])) {
        match self.kind() {
            None => {}
            Some(Kind::String) => {
                feed(b"string");
                if let Some(v) = self.string_value() {
                    feed(&v.to_bytes());
                }
            }
            Some(kind) => {
                feed(kind.name().as_bytes());
                if let Some(c) = self.collection_of_kind(kind) {
                    c.digest(feed);
                }
            }
        }
    }

    /// The string value, or `None` when the key holds none (or holds
    /// another type).
    pub fn string_value(&self) -> Option<StrValue<'_>> {
        if self.colls.is_some() && self.kind() != Some(Kind::String) {
            return None;
        }
        if let Some(hll) = self.hll_value(super::hll::DEFAULT_SPARSE_MAX) {
            return Some(hll);
        }
        let mut runs = self.unobserved_runs().peekable();
        let base_value = self.base_value();
        // Bit patches render over the base; increments count on top when
        // the rendered bytes are a number.
        if self.bit_patches().next().is_some() {
            let base = base_value.map_or(&[][..], |b| b.as_ref());
            let rendered = Bytes::from(bitmap::render(base, self.bit_patches()));
            return match (runs.peek(), numeric_value(&rendered)) {
                (Some(_), Some(start)) => Some(StrValue::Number(
                    runs.fold(start, |acc, (_, amount)| acc.saturating_add(amount)),
                )),
                _ => Some(StrValue::Rendered(rendered)),
            };
        }
        if runs.peek().is_none() {
            return base_value.map(StrValue::Raw);
        }
        let start = match base_value {
            None => Amount::ZERO,
            Some(bytes) => match numeric_value(bytes) {
                Some(n) => n,
                // Increments concurrent with a non-numeric SET cannot apply:
                // the SET's value stands.
                None => return Some(StrValue::Raw(bytes)),
            },
        };
        Some(StrValue::Number(
            runs.fold(start, |acc, (_, amount)| acc.saturating_add(amount)),
        ))
    }

    /// The effective deadline: any live persist wins, else the latest
    /// deadline; `None` means no expiry.
    pub fn deadline(&self) -> Option<u64> {
        let mut latest = None;
        for v in &self.versions {
            if let Payload::Ttl(ttl) = v.payload {
                match ttl {
                    None => return None,
                    Some(t) => latest = Some(latest.map_or(t, |l: u64| l.max(t))),
                }
            }
        }
        latest
    }

    /// Whether the key is visible at `now_ms` (has a value, not expired;
    /// like Redis, a key expires when now is past its deadline).
    pub fn is_visible(&self, now_ms: u64) -> bool {
        self.has_value() && self.deadline().is_none_or(|d| now_ms <= d)
    }

    /// Dots of the live versions selected by `pick`.
    fn dots_where(&self, pick: impl Fn(&Payload) -> bool) -> SmallVec<[Dot; 2]> {
        self.versions
            .iter()
            .filter(|v| pick(&v.payload))
            .map(|v| v.dot)
            .collect()
    }

    /// The counter totals a base write made now would observe: every live
    /// run, plus the marks of the live base writes it supersedes (their runs
    /// may still be live elsewhere).
    fn observed_marks(&self) -> RunMarks {
        let mut marks: Vec<RunMark> = Vec::new();
        let mut note = |mark: RunMark| match marks
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
        for v in &self.versions {
            match &v.payload {
                Payload::Incr(run) => note(RunMark {
                    replica: v.dot.replica,
                    start: run.start,
                    seq: v.dot.seq,
                    total: run.total,
                }),
                Payload::Str(w) => w.observed.iter().copied().for_each(&mut note),
                Payload::Ttl(_) | Payload::Created { .. } | Payload::Hll(_) | Payload::Bits(_) => {}
            }
        }
        marks.sort_by_key(|m| (m.replica, m.start));
        marks.into()
    }

    fn ttl_delta(
        &self,
        change: TtlChange,
        next_dot: &mut impl FnMut() -> Dot,
        delta: &mut KeyDelta,
    ) {
        let new_ttl = match change {
            TtlChange::Keep => return,
            TtlChange::Clear => None,
            TtlChange::Deadline(t) => Some(Some(t)),
            TtlChange::Persist => Some(None),
        };
        delta
            .removes
            .extend(self.dots_where(|p| matches!(p, Payload::Ttl(_))));
        if let Some(ttl) = new_ttl {
            delta.adds.push(Version {
                dot: next_dot(),
                payload: Payload::Ttl(ttl),
            });
        }
    }

    // ----- mutators: each returns the delta of one local write -----

    /// Removes every version (used before writing to a key that is not
    /// visible, so an expired key's leftovers do not leak into the new one).
    pub fn delta_purge(&self) -> KeyDelta {
        KeyDelta {
            removes: self.versions.iter().map(|v| v.dot).collect(),
            adds: SmallVec::new(),
            colls: self.collections().iter().map(|c| c.delta_clear()).collect(),
        }
    }

    /// Removes every version and element whose dot `seen` covers.
    pub fn delta_remove_covered(&self, seen: &VersionVector) -> KeyDelta {
        let mut delta = KeyDelta {
            removes: self
                .versions
                .iter()
                .map(|v| v.dot)
                .filter(|d| seen.covers(*d))
                .collect(),
            ..KeyDelta::default()
        };
        for coll in self.collections() {
            delta.push_coll(coll.delta_remove_covered(seen));
        }
        delta
    }

    /// A collection write of type `T` whose element changes are `change`:
    /// adds the creation marker when the key is not yet a `T`.
    pub fn delta_collection<T: ElementCrdt>(
        &self,
        change: T::Delta,
        ts: Hlc,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> KeyDelta {
        let mut delta = KeyDelta::default();
        if T::delta_is_empty(&change) {
            return delta;
        }
        if self.kind() != Some(T::KIND) {
            delta.adds.push(Version {
                dot: next_dot(),
                payload: Payload::Created { ts, kind: T::KIND },
            });
        }
        delta.push_coll(T::wrap_delta(change));
        delta
    }

    /// A delta that gives an empty key this key's visible value with fresh
    /// dots (RENAME, COPY-like moves). The TTL is not copied.
    pub fn delta_copy_value(&self, ts: Hlc, next_dot: &mut impl FnMut() -> Dot) -> KeyDelta {
        match self.kind() {
            None => KeyDelta::default(),
            Some(Kind::String) => {
                let value = self
                    .string_value()
                    .map(|v| v.to_bytes())
                    .unwrap_or_default();
                KeyState::new().delta_set(value, ts, TtlChange::Keep, next_dot)
            }
            Some(kind) => {
                let Some(coll) = self.collection_of_kind(kind) else {
                    return KeyDelta::default();
                };
                let mut delta = KeyDelta::default();
                delta.adds.push(Version {
                    dot: next_dot(),
                    payload: Payload::Created { ts, kind },
                });
                delta.push_coll(coll.delta_copy(ts, next_dot));
                delta
            }
        }
    }

    /// SET: replaces the value (and the counter state it observed).
    pub fn delta_set(
        &self,
        value: Bytes,
        ts: Hlc,
        ttl: TtlChange,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> KeyDelta {
        let mut delta = KeyDelta {
            removes: self.dots_where(|p| {
                matches!(
                    p,
                    Payload::Str(_)
                        | Payload::Incr(_)
                        | Payload::Created { .. }
                        | Payload::Hll(_)
                        | Payload::Bits(_)
                )
            }),
            adds: SmallVec::new(),
            colls: self.collections().iter().map(|c| c.delta_clear()).collect(),
        };
        delta.adds.push(Version {
            dot: next_dot(),
            payload: Payload::Str(StrWrite {
                ts,
                value: Some(value.into()),
                observed: self.observed_marks(),
            }),
        });
        self.ttl_delta(ttl, next_dot, &mut delta);
        delta
    }

    /// PFADD / PFMERGE / PFCOUNT's cache: the HyperLogLog value `bytes`
    /// replaces what the write observed (as SET does) and keeps the TTL;
    /// concurrent HyperLogLog writes stay live and merge on read.
    pub fn delta_hll(&self, bytes: Bytes, ts: Hlc, next_dot: &mut impl FnMut() -> Dot) -> KeyDelta {
        let mut delta = self.delta_set(Bytes::new(), ts, TtlChange::Keep, next_dot);
        if let Some(last) = delta.adds.last_mut() {
            last.payload = Payload::Hll(HllWrite { ts, bytes });
        }
        delta
    }

    /// INCRBY / INCRBYFLOAT by `amount` at replica `me`: continues this
    /// replica's live run or starts a new one. Never removes other replicas'
    /// runs, so concurrent increments all count.
    pub fn delta_incr(
        &self,
        me: ReplicaId,
        amount: Amount,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> KeyDelta {
        let mut delta = KeyDelta::default();
        let own = self.versions.iter().find_map(|v| match &v.payload {
            Payload::Incr(run) if v.dot.replica == me => Some((v.dot, *run)),
            _ => None,
        });
        let dot = next_dot();
        let run = match own {
            Some((old, run)) => {
                delta.removes.push(old);
                IncrRun {
                    start: run.start,
                    total: run.total.saturating_add(amount),
                }
            }
            None => IncrRun {
                start: dot.seq,
                total: amount,
            },
        };
        delta.adds.push(Version {
            dot,
            payload: Payload::Incr(run),
        });
        delta
    }

    /// DEL: removes everything observed. Leaves a delete marker only when
    /// counter totals must be remembered so that concurrent increments count
    /// from the right place.
    pub fn delta_delete(&self, ts: Hlc, next_dot: &mut impl FnMut() -> Dot) -> KeyDelta {
        let mut delta = KeyDelta {
            removes: self.versions.iter().map(|v| v.dot).collect(),
            adds: SmallVec::new(),
            // Collections may leave markers too (a hash's counter fields).
            colls: (self.collections().iter())
                .map(|c| c.delta_delete_all(ts, &mut *next_dot))
                .collect(),
        };
        let observed = self.observed_marks();
        if !observed.is_empty() {
            delta.adds.push(Version {
                dot: next_dot(),
                payload: Payload::Str(StrWrite {
                    ts,
                    value: None,
                    observed,
                }),
            });
        }
        delta
    }

    /// EXPIRE / PERSIST / GETEX: replaces the observed TTL.
    pub fn delta_ttl(&self, change: TtlChange, next_dot: &mut impl FnMut() -> Dot) -> KeyDelta {
        let mut delta = KeyDelta::default();
        self.ttl_delta(change, next_dot, &mut delta);
        delta
    }

    // ----- local housekeeping (not replicated) -----

    /// Drops the value versions of an expired key, keeping its TTL versions
    /// as a tombstone so that concurrent writes arriving later expire too.
    pub fn expire_locally(&mut self) {
        self.versions
            .retain(|v| matches!(v.payload, Payload::Ttl(_)));
        self.colls = None;
    }

    /// Whether a marker in this state (a delete marker's or base write's
    /// counter marks, at any depth: hash fields, sorted-set members)
    /// records a run of an origin `silent` accepts. Garbage collection that
    /// leaves a silent peer out must keep such markers until that peer has
    /// seen them: it may still be extending the run, and the marker is what
    /// keeps the increments it observed from counting again.
    pub fn observes_runs_of(&self, silent: &dyn Fn(ReplicaId) -> bool) -> bool {
        self.versions.iter().any(|v| match &v.payload {
            Payload::Str(w) => w.observed.iter().any(|m| silent(m.replica)),
            _ => false,
        }) || self
            .collections()
            .iter()
            .any(|c| c.observes_runs_of(silent))
    }

    /// `(replica, start)` of every live increment run.
    fn live_runs(&self) -> SmallVec<[(ReplicaId, u64); 2]> {
        self.versions
            .iter()
            .filter_map(|v| match &v.payload {
                Payload::Incr(run) => Some((v.dot.replica, run.start)),
                _ => None,
            })
            .collect()
    }

    /// Drops versions no replica can still need, given that every dot
    /// covered by `stable` has been seen by every replica: TTL-only leftovers
    /// of expired or deleted keys, delete markers whose observed runs are
    /// all gone, and a lone PERSIST. Returns true when the key is now empty.
    pub fn collect_garbage(&mut self, stable: &VersionVector) -> bool {
        if let Some(colls) = self.colls.as_mut() {
            for c in colls.iter_mut() {
                c.collect_garbage(stable);
            }
            colls.retain(|c| !c.is_blank());
            if colls.is_empty() {
                self.colls = None;
            }
        }
        // Stable creation markers of types the key no longer holds.
        let held: SmallVec<[Kind; 2]> = self.collections().iter().map(|c| c.kind()).collect();
        self.versions.retain(|v| match v.payload {
            Payload::Created { kind, .. } => held.contains(&kind) || !stable.covers(v.dot),
            _ => true,
        });
        let all_stable = self.versions.iter().all(|v| stable.covers(v.dot));
        if !self.has_value() && all_stable && self.live_runs().is_empty() && self.colls.is_none() {
            self.versions.clear();
            return true;
        }
        let persists = self.dots_where(|p| matches!(p, Payload::Ttl(None)));
        let ttl_count = self.dots_where(|p| matches!(p, Payload::Ttl(_))).len();
        if ttl_count == 1 && persists.len() == 1 && stable.covers(persists[0]) {
            self.remove(persists[0]);
        }
        // Stable delete markers whose runs are all gone.
        let runs = self.live_runs();
        self.versions.retain(|v| match &v.payload {
            Payload::Str(StrWrite {
                value: None,
                observed,
                ..
            }) if stable.covers(v.dot) => observed
                .iter()
                .any(|m| runs.contains(&(m.replica, m.start))),
            _ => true,
        });
        self.is_empty()
    }
}

/// The numeric reading of a base value, if it is a number (integers and
/// decimals alike, read exactly).
fn numeric_value(bytes: &[u8]) -> Option<Amount> {
    parse_decimal(bytes).ok()
}
