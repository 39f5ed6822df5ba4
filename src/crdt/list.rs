//! The list CRDT: a sequence in which every element has a dense, immutable
//! position identifier (Logoot-style), so concurrent inserts all survive in
//! one deterministic order and no tombstones are kept.
//!
//! An element's id is a *path*: a short sequence of components
//! `(digit, replica, seq)`, ordered lexicographically (a proper prefix sorts
//! first). The last component's `(replica, seq)` is the dot of the write that
//! inserted the element, so ids are unique and the dot doubles as the
//! element's causal identity. Between any two ids there is always room for a
//! new one ([`between`]):
//!
//! - LPUSH takes `[(first.digit - 1, me)]`, RPUSH `[(last.digit + 1, me)]`,
//!   an empty list `[(0, me)]`;
//! - an insert between neighbours `a < b` bumps `a`'s last digit, or lowers
//!   `b`'s, when that lands strictly between them, and otherwise extends `a`
//!   by one component;
//! - concurrent inserts at one place get equal digits and are ordered by
//!   replica, then seq.
//!
//! Removes (LPOP, RPOP, LREM, LTRIM, LSET's old value) are observed-removes
//! by id: two regions popping concurrently may pop the *same* element (each
//! returns it; pops are at-least-once across regions), and an element pushed
//! concurrently with a pop elsewhere survives. LSET removes the observed
//! element and inserts the new value right after it with a fresh id, so two
//! concurrent LSETs of one element keep both values, adjacent.
//!
//! Storage: one `VecDeque` of `(id, value)` sorted by id, so pushes and
//! pops at either end are O(1), LINDEX and LRANGE seek in O(1), and an
//! insert or remove in the middle shifts the shorter side (O(n), like
//! Redis's own LINSERT/LREM). A delta with many removes or adds is applied
//! in one pass.
//!
//! Memory: 48 bytes per element in the deque (a 32-byte inline path, a
//! 16-byte boxed slice) plus the value's heap block — several times Redis's
//! quicklist (~10–20 bytes). Chunked leaves (runs of consecutive values from
//! one writer sharing one path prefix, packed in one buffer) would close
//! most of that gap; see docs/semantics.md.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::element::{ElementCrdt, Kind};

/// One level of a position path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Component {
    pub digit: i64,
    pub replica: ReplicaId,
    pub seq: u64,
}

impl Component {
    fn new(digit: i64, dot: Dot) -> Self {
        Component {
            digit,
            replica: dot.replica,
            seq: dot.seq,
        }
    }
}

/// An element's position and identity; never empty (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Component>", into = "Vec<Component>")]
pub struct ElementId(SmallVec<[Component; 1]>);

impl TryFrom<Vec<Component>> for ElementId {
    type Error = &'static str;

    /// Peers' ids are checked: an empty path has no dot.
    fn try_from(path: Vec<Component>) -> Result<Self, Self::Error> {
        if path.is_empty() {
            return Err("empty list element path");
        }
        Ok(ElementId(SmallVec::from_vec(path)))
    }
}

impl From<ElementId> for Vec<Component> {
    fn from(id: ElementId) -> Self {
        id.0.into_vec()
    }
}

impl ElementId {
    /// The dot of the write that inserted this element.
    pub fn dot(&self) -> Dot {
        let last = self.0.last().expect("element paths are never empty");
        Dot::new(last.replica, last.seq)
    }

    pub fn path(&self) -> &[Component] {
        &self.0
    }

    fn with_last(prefix: &[Component], last: Component) -> Self {
        let mut path: SmallVec<[Component; 1]> = SmallVec::with_capacity(prefix.len() + 1);
        path.extend_from_slice(prefix);
        path.push(last);
        ElementId(path)
    }
}

/// A fresh id strictly between `lo` and `hi` (`None`: the list's end),
/// owned by `dot`. Digits saturate at the ends of `i64`, which 2^63 pushes
/// on one side would reach; that is treated as unreachable.
pub fn between(lo: Option<&ElementId>, hi: Option<&ElementId>, dot: Dot) -> ElementId {
    let above_lo = |c: &ElementId| lo.is_none_or(|lo| c > lo);
    let below_hi = |c: &ElementId| hi.is_none_or(|hi| c < hi);
    // Same depth as `lo`, one digit up (RPUSH when `hi` is the end).
    if let Some(lo) = lo {
        let (last, prefix) = lo.0.split_last().expect("non-empty path");
        let candidate =
            ElementId::with_last(prefix, Component::new(last.digit.saturating_add(1), dot));
        if above_lo(&candidate) && below_hi(&candidate) {
            return candidate;
        }
    }
    // Same depth as `hi`, one digit down (LPUSH when `lo` is the end).
    if let Some(hi) = hi {
        let (last, prefix) = hi.0.split_last().expect("non-empty path");
        let candidate =
            ElementId::with_last(prefix, Component::new(last.digit.saturating_sub(1), dot));
        if above_lo(&candidate) && below_hi(&candidate) {
            return candidate;
        }
    }
    match (lo, hi) {
        (None, None) => ElementId::with_last(&[], Component::new(0, dot)),
        // One level below `lo`: greater than `lo` (a proper prefix sorts
        // first) and, unless `lo` is a prefix of `hi`, below `hi` whatever
        // the digit; when it is, go just below `hi`'s next digit.
        (Some(lo), hi) => {
            let digit = match hi {
                Some(hi) if hi.0.len() > lo.0.len() && hi.0.starts_with(&lo.0) => {
                    hi.0[lo.0.len()].digit.saturating_sub(1)
                }
                _ => 0,
            };
            ElementId::with_last(&lo.0, Component::new(digit, dot))
        }
        // Unreachable: lowering `hi`'s last digit always works unless it
        // saturated; fall back to the front.
        (None, Some(_)) => ElementId::with_last(&[], Component::new(i64::MIN, dot)),
    }
}

/// The list state; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct List {
    #[serde(deserialize_with = "sorted_elements")]
    elements: Elements,
}

/// The elements in id order, with their values.
type Elements = VecDeque<(ElementId, Box<[u8]>)>;

/// Elements from a peer, put back in id order with duplicates dropped, so
/// binary searches stay correct.
fn sorted_elements<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Elements, D::Error> {
    let mut elements: Vec<(ElementId, Box<[u8]>)> = Deserialize::deserialize(deserializer)?;
    elements.sort_by(|a, b| a.0.cmp(&b.0));
    elements.dedup_by(|a, b| a.0 == b.0);
    Ok(elements.into())
}

/// Above this many removes or adds, a delta is applied in one pass over
/// the list instead of one shift per element.
const BULK: usize = 16;

/// A list write's delta: the element ids it removes (observed), then the
/// elements it adds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListDelta {
    pub removes: Vec<ElementId>,
    pub adds: Vec<(ElementId, Box<[u8]>)>,
}

/// Which end of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl List {
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Elements front to back.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&ElementId, &[u8])> {
        self.elements.iter().map(|(id, v)| (id, v.as_ref()))
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.elements.iter().map(|(_, v)| v.as_ref())
    }

    /// Values at positions `from..=to` (both in range).
    pub fn range_values(&self, from: usize, to: usize) -> impl Iterator<Item = &[u8]> {
        self.elements.range(from..=to).map(|(_, v)| v.as_ref())
    }

    /// Position of `id` (or where it would go). Pushes and pops touch the
    /// ends, so those are checked before the binary search.
    fn find(&self, id: &ElementId) -> Result<usize, usize> {
        use std::cmp::Ordering::*;
        let (Some((first, _)), Some((last, _))) = (self.elements.front(), self.elements.back())
        else {
            return Err(0);
        };
        match (id.cmp(first), id.cmp(last)) {
            (Less, _) => Err(0),
            (Equal, _) => Ok(0),
            (_, Greater) => Err(self.elements.len()),
            (_, Equal) => Ok(self.elements.len() - 1),
            _ => self.elements.binary_search_by(|(k, _)| k.cmp(id)),
        }
    }

    fn get(&self, id: &ElementId) -> Option<&[u8]> {
        self.find(id).ok().map(|i| self.elements[i].1.as_ref())
    }

    /// The element at a zero-based index from the front.
    pub fn at(&self, index: usize) -> Option<(&ElementId, &[u8])> {
        self.elements.get(index).map(|(id, v)| (id, v.as_ref()))
    }

    pub fn first(&self) -> Option<(&ElementId, &[u8])> {
        self.at(0)
    }

    pub fn last(&self) -> Option<(&ElementId, &[u8])> {
        self.elements.back().map(|(id, v)| (id, v.as_ref()))
    }
}

/// Builds a list write on top of a state: tracks the ends and positions as
/// the write's own earlier steps changed them, so one command can push,
/// pop and insert several times and produce one delta.
pub struct ListEdit<'a> {
    base: &'a List,
    /// Ids added by this edit (with values), in order.
    added: BTreeMap<ElementId, Box<[u8]>>,
    /// Ids of `base` removed by this edit.
    removed: std::collections::BTreeSet<ElementId>,
}

impl<'a> ListEdit<'a> {
    pub fn new(base: &'a List) -> Self {
        ListEdit {
            base,
            added: BTreeMap::new(),
            removed: Default::default(),
        }
    }

    /// The current first or last id.
    fn end_id(&self, end: End) -> Option<ElementId> {
        match end {
            End::Left => {
                let base = self
                    .base
                    .iter()
                    .map(|(k, _)| k)
                    .find(|k| !self.removed.contains(*k));
                let added = self.added.keys().next();
                min_opt(base, added).cloned()
            }
            End::Right => {
                let base = self
                    .base
                    .iter()
                    .map(|(k, _)| k)
                    .rev()
                    .find(|k| !self.removed.contains(*k));
                let added = self.added.keys().next_back();
                max_opt(base, added).cloned()
            }
        }
    }

    pub fn len(&self) -> usize {
        self.base.len() - self.removed.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// LPUSH/RPUSH of one value.
    pub fn push(&mut self, end: End, value: &[u8], dot: Dot) {
        let id = match (end, self.end_id(end)) {
            (End::Left, first) => between(None, first.as_ref(), dot),
            (End::Right, last) => between(last.as_ref(), None, dot),
        };
        self.added.insert(id, value.into());
    }

    /// Inserts `value` right after (`before_pivot` false) or before the
    /// element `pivot`, which must be present in the current state.
    pub fn insert_at(&mut self, pivot: &ElementId, before_pivot: bool, value: &[u8], dot: Dot) {
        let id = if before_pivot {
            let lo = self.neighbour(pivot, false);
            between(lo.as_ref(), Some(pivot), dot)
        } else {
            let hi = self.neighbour(pivot, true);
            between(Some(pivot), hi.as_ref(), dot)
        };
        self.added.insert(id, value.into());
    }

    /// The current neighbour of `id` after (`next`) or before it.
    fn neighbour(&self, id: &ElementId, next: bool) -> Option<ElementId> {
        use std::ops::Bound::{Excluded, Unbounded};
        let elements = &self.base.elements;
        let live = |k: &&ElementId| !self.removed.contains(*k);
        if next {
            let start = match self.base.find(id) {
                Ok(i) => i + 1,
                Err(i) => i,
            };
            let base = elements.range(start..).map(|(k, _)| k).find(live);
            let range = (Excluded(id), Unbounded);
            let added = self
                .added
                .range::<ElementId, _>(range)
                .next()
                .map(|(k, _)| k);
            min_opt(base, added).cloned()
        } else {
            let end = self.base.find(id).unwrap_or_else(|i| i);
            let base = elements.range(..end).rev().map(|(k, _)| k).find(live);
            let added = self.added.range(..id).next_back().map(|(k, _)| k);
            max_opt(base, added).cloned()
        }
    }

    /// Removes the first or last element; returns its value.
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        let id = self.end_id(end)?;
        self.remove(&id)
    }

    /// Removes one element by id (present in the current state).
    pub fn remove(&mut self, id: &ElementId) -> Option<Box<[u8]>> {
        if let Some(value) = self.added.remove(id) {
            return Some(value);
        }
        let value = self.base.get(id)?;
        self.removed.insert(id.clone()).then(|| value.into())
    }

    /// Like [`ListEdit::remove`], without copying the value out.
    pub fn discard(&mut self, id: &ElementId) {
        if self.added.remove(id).is_none() && self.base.find(id).is_ok() {
            self.removed.insert(id.clone());
        }
    }

    /// The delta of everything done so far.
    pub fn finish(self) -> ListDelta {
        ListDelta {
            removes: self.removed.into_iter().collect(),
            adds: self.added.into_iter().collect(),
        }
    }
}

fn min_opt<'x>(a: Option<&'x ElementId>, b: Option<&'x ElementId>) -> Option<&'x ElementId> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt<'x>(a: Option<&'x ElementId>, b: Option<&'x ElementId>) -> Option<&'x ElementId> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl ElementCrdt for List {
    type Delta = ListDelta;
    const KIND: Kind = Kind::List;

    fn apply(&mut self, delta: &ListDelta, ctx: &mut CausalContext) {
        for id in &delta.removes {
            ctx.insert(id.dot());
        }
        if delta.removes.len() > BULK {
            let mut gone: Vec<&ElementId> = delta.removes.iter().collect();
            gone.sort_unstable();
            self.elements
                .retain(|(id, _)| gone.binary_search(&id).is_err());
        } else {
            for id in &delta.removes {
                if let Ok(i) = self.find(id) {
                    self.elements.remove(i);
                }
            }
        }
        let fresh = delta.adds.iter().filter(|(id, _)| !ctx.contains(id.dot()));
        if delta.adds.len() > BULK {
            let mut adds: Vec<(ElementId, Box<[u8]>)> =
                fresh.map(|(id, v)| (id.clone(), v.clone())).collect();
            adds.sort_by(|a, b| a.0.cmp(&b.0));
            let after_back = match (adds.first(), self.elements.back()) {
                (Some(a), Some(b)) => a.0 > b.0,
                _ => true,
            };
            let before_front = match (adds.last(), self.elements.front()) {
                (Some(a), Some(f)) => a.0 < f.0,
                _ => true,
            };
            // A multi-element push lands wholly at one end: no re-sort of
            // the (possibly huge) list.
            if after_back {
                self.elements.extend(adds);
            } else if before_front {
                for add in adds.into_iter().rev() {
                    self.elements.push_front(add);
                }
            } else {
                self.elements.extend(adds);
                self.elements
                    .make_contiguous()
                    .sort_by(|a, b| a.0.cmp(&b.0));
            }
        } else {
            for (id, value) in fresh {
                if let Err(i) = self.find(id) {
                    self.elements.insert(i, (id.clone(), value.clone()));
                }
            }
        }
        for (id, _) in &delta.adds {
            ctx.insert(id.dot());
        }
    }

    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut elements: Vec<(ElementId, Box<[u8]>)> = Vec::new();
        for (id, value) in &self.elements {
            if other.find(id).is_ok() || !other_ctx.contains(id.dot()) {
                elements.push((id.clone(), value.clone()));
            }
        }
        for (id, value) in &other.elements {
            if self.find(id).is_err() && !self_ctx.contains(id.dot()) {
                elements.push((id.clone(), value.clone()));
            }
        }
        elements.sort_by(|a, b| a.0.cmp(&b.0));
        List {
            elements: elements.into(),
        }
    }

    fn len(&self) -> usize {
        self.elements.len()
    }

    fn is_blank(&self) -> bool {
        self.elements.is_empty()
    }

    fn delta_clear(&self) -> ListDelta {
        ListDelta {
            removes: self.elements.iter().map(|(id, _)| id.clone()).collect(),
            adds: Vec::new(),
        }
    }

    fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        for (id, _) in &self.elements {
            visit(id.dot());
        }
    }

    fn delta_remove_covered(&self, seen: &VersionVector) -> ListDelta {
        ListDelta {
            removes: self
                .elements
                .iter()
                .map(|(id, _)| id)
                .filter(|id| seen.covers(id.dot()))
                .cloned()
                .collect(),
            adds: Vec::new(),
        }
    }

    fn delta_copy(&self, _ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> ListDelta {
        ListDelta {
            removes: Vec::new(),
            adds: self
                .elements
                .iter()
                .map(|(_, v)| v)
                .enumerate()
                .map(|(i, v)| {
                    let id = ElementId::with_last(&[], Component::new(i as i64, next_dot()));
                    (id, v.clone())
                })
                .collect(),
        }
    }

    fn delta_then(delta: &mut ListDelta, next: ListDelta) {
        delta.removes.extend(next.removes);
        delta.adds.extend(next.adds);
    }

    fn delta_is_empty(delta: &ListDelta) -> bool {
        delta.removes.is_empty() && delta.adds.is_empty()
    }

    fn delta_bytes(delta: &ListDelta) -> usize {
        let id_bytes = |id: &ElementId| 32 + id.0.len() * 24;
        delta.removes.iter().map(id_bytes).sum::<usize>()
            + delta
                .adds
                .iter()
                .map(|(id, v)| id_bytes(id) + 16 + v.len())
                .sum::<usize>()
    }

    fn digest(&self, feed: &mut dyn FnMut(&[u8])) {
        for (_, value) in &self.elements {
            feed(&(value.len() as u64).to_be_bytes());
            feed(value);
        }
    }

    fn encoding(&self) -> &'static str {
        "quicklist"
    }

    super::element::collection_glue!(List);
}
