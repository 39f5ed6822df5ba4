//! The set CRDT: an add-wins observed-remove set over byte-string members.
//!
//! Each present member holds the dots of the adds that made it (usually
//! one). SADD replaces the member's observed dots with a fresh one, SREM
//! removes the observed dots, so an add the remover never saw survives
//! (add-wins), and nothing is kept for removed members: the node's causal
//! context alone remembers that their dots were seen.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{CausalContext, Dot, VersionVector};
use super::clock::Hlc;
use super::element::{ElementCrdt, Kind};
use super::members::MemberTable;

/// The dots an element is held by, sorted (so equal sets compare equal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dots(#[serde(deserialize_with = "sorted_dots")] pub SmallVec<[Dot; 1]>);

fn sorted_dots<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SmallVec<[Dot; 1]>, D::Error> {
    let mut dots: SmallVec<[Dot; 1]> = super::bounded::smallvec(deserializer)?;
    dots.sort_unstable();
    dots.dedup();
    Ok(dots)
}

impl Dots {
    pub fn one(dot: Dot) -> Self {
        Dots(smallvec::smallvec![dot])
    }

    pub fn contains(&self, dot: Dot) -> bool {
        self.0.binary_search(&dot).is_ok()
    }

    /// Adds `dot`, keeping the order.
    pub fn insert(&mut self, dot: Dot) {
        if let Err(at) = self.0.binary_search(&dot) {
            self.0.insert(at, dot);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Dot> + '_ {
        self.0.iter().copied()
    }
}

/// The set state; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrSet {
    members: MemberTable<Dots>,
}

/// One member's change: drop the observed dots `removes`, then add `add`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberChange {
    pub member: Box<[u8]>,
    pub removes: Dots,
    pub add: Option<Dot>,
}

/// A set write's delta.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SetDelta {
    pub changes: Vec<MemberChange>,
}

impl SetDelta {
    pub fn push(&mut self, change: Option<MemberChange>) {
        self.changes.extend(change);
    }
}

impl OrSet {
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }

    pub fn members(&self) -> impl Iterator<Item = &[u8]> {
        self.members.members()
    }

    /// A random member; `random(n)` returns a number in `0..n`.
    pub fn random_member(&self, random: impl FnMut(usize) -> usize) -> Option<&[u8]> {
        self.members.random(random).map(|(m, _)| m)
    }

    /// One SSCAN step over member slots; returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8])) -> u64 {
        self.members.scan(cursor, count, |m, _| visit(m))
    }

    /// SADD of `member` with the fresh `dot`. A member already present is
    /// re-added under the new dot, so this add also wins over a concurrent
    /// remove elsewhere.
    pub fn delta_add(&self, member: &[u8], dot: Dot) -> MemberChange {
        MemberChange {
            member: member.into(),
            removes: self.members.get(member).cloned().unwrap_or_default(),
            add: Some(dot),
        }
    }

    /// SREM of `member`: removes the dots observed here (`None` if absent).
    pub fn delta_remove(&self, member: &[u8]) -> Option<MemberChange> {
        self.members.get(member).map(|dots| MemberChange {
            member: member.into(),
            removes: dots.clone(),
            add: None,
        })
    }
}

impl ElementCrdt for OrSet {
    type Delta = SetDelta;
    const KIND: Kind = Kind::Set;

    fn apply(&mut self, delta: &SetDelta, ctx: &mut CausalContext) {
        for change in &delta.changes {
            for dot in change.removes.iter() {
                ctx.insert(dot);
            }
            let fresh = change.add.filter(|d| !ctx.contains(*d));
            if let Some(dots) = self.members.get_mut(&change.member) {
                dots.0.retain(|d| !change.removes.contains(*d));
                if let Some(dot) = fresh {
                    dots.insert(dot);
                }
                if dots.is_empty() {
                    self.members.remove(&change.member);
                }
            } else if let Some(dot) = fresh {
                self.members.insert(&change.member, Dots::one(dot));
            }
            if let Some(dot) = fresh {
                ctx.insert(dot);
            }
        }
    }

    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut out = OrSet::default();
        let survivors = |mine: &Dots, theirs: Option<&Dots>, their_ctx: &CausalContext| -> Dots {
            Dots(
                mine.iter()
                    .filter(|&d| theirs.is_some_and(|t| t.contains(d)) || !their_ctx.contains(d))
                    .collect(),
            )
        };
        for (member, dots) in self.members.iter() {
            let kept = survivors(dots, other.members.get(member), other_ctx);
            if !kept.is_empty() {
                out.members.insert(member, kept);
            }
        }
        for (member, dots) in other.members.iter() {
            let mine = self.members.get(member);
            let new: SmallVec<[Dot; 1]> = dots
                .iter()
                .filter(|&d| !mine.is_some_and(|m| m.contains(d)) && !self_ctx.contains(d))
                .collect();
            if !new.is_empty() {
                let dots = out.members.get_or_insert_with(member, Dots::default);
                for dot in new {
                    dots.insert(dot);
                }
            }
        }
        for (_, dots) in out.members.iter() {
            debug_assert!(!dots.is_empty());
        }
        out
    }

    fn len(&self) -> usize {
        self.members.len()
    }

    fn is_blank(&self) -> bool {
        self.members.is_empty()
    }

    fn delta_clear(&self) -> SetDelta {
        SetDelta {
            changes: self
                .members
                .iter()
                .map(|(m, dots)| MemberChange {
                    member: m.into(),
                    removes: dots.clone(),
                    add: None,
                })
                .collect(),
        }
    }

    fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        for (_, dots) in self.members.iter() {
            dots.iter().for_each(&mut *visit);
        }
    }

    fn delta_remove_covered(&self, seen: &VersionVector) -> SetDelta {
        SetDelta {
            changes: self
                .members
                .iter()
                .filter(|(_, dots)| dots.iter().any(|d| seen.covers(d)))
                .map(|(m, dots)| MemberChange {
                    member: m.into(),
                    removes: Dots(dots.iter().filter(|d| seen.covers(*d)).collect()),
                    add: None,
                })
                .collect(),
        }
    }

    fn delta_copy(&self, _ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> SetDelta {
        SetDelta {
            changes: self
                .members
                .members()
                .map(|m| MemberChange {
                    member: m.into(),
                    removes: Dots::default(),
                    add: Some(next_dot()),
                })
                .collect(),
        }
    }

    fn delta_then(delta: &mut SetDelta, next: SetDelta) {
        delta.changes.extend(next.changes);
    }

    fn delta_is_empty(delta: &SetDelta) -> bool {
        delta.changes.is_empty()
    }

    fn delta_bytes(delta: &SetDelta) -> usize {
        // The change records themselves, plus each member's heap block.
        delta.changes.capacity() * std::mem::size_of::<MemberChange>()
            + delta
                .changes
                .iter()
                .map(|c| (c.member.len() + 8).div_ceil(16) * 16)
                .sum::<usize>()
    }

    fn digest(&self, feed: &mut dyn FnMut(&[u8])) {
        let mut members: Vec<&[u8]> = self.members.members().collect();
        members.sort_unstable();
        for m in members {
            feed(&(m.len() as u64).to_be_bytes());
            feed(m);
        }
    }

    fn encoding(&self) -> &'static str {
        "hashtable"
    }

    super::element::collection_glue!(Set);
}
