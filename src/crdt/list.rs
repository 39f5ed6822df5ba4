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
//! Memory: a `BTreeMap<ElementId, Box<[u8]>>` costs roughly 100 bytes per
//! short element (a 32-byte inline path, a 16-byte boxed slice and its heap
//! block, B-tree node slack) — several times Redis's quicklist (~10–20
//! bytes). Chunked leaves (runs of consecutive values from one writer
//! sharing one path prefix, packed in one buffer) would close most of that
//! gap; see docs/semantics.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::collection::{CollDelta, Collection, ElementCrdt, Kind};

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
    elements: BTreeMap<ElementId, Box<[u8]>>,
}

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
        self.elements.values().map(|v| v.as_ref())
    }

    /// The element at a zero-based index from the front (O(index) or, for
    /// the back half, O(len - index)).
    pub fn at(&self, index: usize) -> Option<(&ElementId, &[u8])> {
        let len = self.len();
        if index >= len {
            return None;
        }
        if index <= len / 2 {
            self.iter().nth(index)
        } else {
            self.iter().rev().nth(len - 1 - index)
        }
    }

    pub fn first(&self) -> Option<(&ElementId, &[u8])> {
        self.iter().next()
    }

    pub fn last(&self) -> Option<(&ElementId, &[u8])> {
        self.iter().next_back()
    }

    /// The neighbour after `id` (None at the end).
    pub fn after(&self, id: &ElementId) -> Option<&ElementId> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.elements
            .range((Excluded(id), Unbounded))
            .next()
            .map(|(k, _)| k)
    }

    /// The neighbour before `id` (None at the front).
    pub fn before(&self, id: &ElementId) -> Option<&ElementId> {
        self.elements.range(..id).next_back().map(|(k, _)| k)
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
                    .elements
                    .keys()
                    .find(|k| !self.removed.contains(*k));
                let added = self.added.keys().next();
                min_opt(base, added).cloned()
            }
            End::Right => {
                let base = self
                    .base
                    .elements
                    .keys()
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
        let range = (Excluded(id), Unbounded);
        if next {
            let base = self
                .base
                .elements
                .range::<ElementId, _>(range)
                .map(|(k, _)| k)
                .find(|k| !self.removed.contains(*k));
            let added = self
                .added
                .range::<ElementId, _>(range)
                .next()
                .map(|(k, _)| k);
            min_opt(base, added).cloned()
        } else {
            let base = self
                .base
                .elements
                .range(..id)
                .rev()
                .map(|(k, _)| k)
                .find(|k| !self.removed.contains(*k));
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
        let value = self.base.elements.get(id)?;
        self.removed.insert(id.clone()).then(|| value.clone())
    }

    /// Like [`ListEdit::remove`], without copying the value out.
    pub fn discard(&mut self, id: &ElementId) {
        if self.added.remove(id).is_none() && self.base.elements.contains_key(id) {
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
            self.elements.remove(id);
            ctx.insert(id.dot());
        }
        for (id, value) in &delta.adds {
            let dot = id.dot();
            if !ctx.contains(dot) {
                self.elements.insert(id.clone(), value.clone());
                ctx.insert(dot);
            }
        }
    }

    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut elements = BTreeMap::new();
        for (id, value) in &self.elements {
            if other.elements.contains_key(id) || !other_ctx.contains(id.dot()) {
                elements.insert(id.clone(), value.clone());
            }
        }
        for (id, value) in &other.elements {
            if !self.elements.contains_key(id) && !self_ctx.contains(id.dot()) {
                elements.insert(id.clone(), value.clone());
            }
        }
        List { elements }
    }

    fn len(&self) -> usize {
        self.elements.len()
    }

    fn is_blank(&self) -> bool {
        self.elements.is_empty()
    }

    fn delta_clear(&self) -> ListDelta {
        ListDelta {
            removes: self.elements.keys().cloned().collect(),
            adds: Vec::new(),
        }
    }

    fn delta_remove_covered(&self, seen: &VersionVector) -> ListDelta {
        ListDelta {
            removes: self
                .elements
                .keys()
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
                .values()
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
        for value in self.elements.values() {
            feed(&(value.len() as u64).to_be_bytes());
            feed(value);
        }
    }

    fn encoding(&self) -> &'static str {
        "quicklist"
    }

    fn wrap(self) -> Collection {
        Collection::List(self)
    }

    fn wrap_delta(delta: ListDelta) -> CollDelta {
        CollDelta::List(delta)
    }

    fn of(coll: &Collection) -> Option<&Self> {
        match coll {
            Collection::List(l) => Some(l),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn of_mut(coll: &mut Collection) -> Option<&mut Self> {
        match coll {
            Collection::List(l) => Some(l),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn delta_of(delta: &CollDelta) -> Option<&ListDelta> {
        match delta {
            CollDelta::List(d) => Some(d),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn unwrap_delta(delta: CollDelta) -> Result<ListDelta, CollDelta> {
        match delta {
            CollDelta::List(d) => Ok(d),
            #[allow(unreachable_patterns)]
            other => Err(other),
        }
    }
}
