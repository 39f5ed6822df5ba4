//! The hash CRDT: an observed-remove map from field to a value that follows
//! the string-key rules of the key CRDT ([`KeyState`]).
//!
//! Each field holds the versions a string key would hold: HSET is a
//! last-writer-wins base write (concurrent HSETs: larger HLC, then dot),
//! HINCRBY/HINCRBYFLOAT add to this replica's increment run (concurrent
//! increments all count), an HSET resets exactly the increments it observed,
//! and HDEL removes the versions it observed, so a concurrent HSET or
//! HINCRBY it never saw survives. The field logic is [`KeyState`]'s own;
//! this module only keeps one per field and ships field changes.
//!
//! Memory: nearly every field of a real hash is a single HSET with nothing
//! concurrent, so such a field is stored inline as [`PlainWrite`] (dot,
//! timestamp, value) and only becomes a boxed [`KeyState`] when increments,
//! concurrent writes or delete markers appear. The two forms of one content
//! compare equal, and every mutation normalizes back to the plain form when
//! it can.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::element::{ElementCrdt, Kind};
use super::key::{KeyDelta, KeyState, Payload, StrValue, StrWrite, TtlChange, Version};
use super::members::MemberTable;
use super::number::Amount;

/// A field written once by HSET, with nothing concurrent or counted on top.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlainWrite {
    pub dot: Dot,
    pub ts: Hlc,
    pub value: Box<[u8]>,
}

/// One field's state; see the module docs for the two forms.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FieldState {
    Plain(PlainWrite),
    Full(Box<KeyState>),
}

/// A field's visible value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// Bytes as written.
    Raw(&'a [u8]),
    /// A number: base plus increments.
    Number(Amount),
}

impl FieldValue<'_> {
    pub fn to_bytes(&self) -> Bytes {
        match self {
            FieldValue::Raw(b) => Bytes::copy_from_slice(b),
            FieldValue::Number(n) => Bytes::from(n.to_bytes()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            FieldValue::Raw(b) => b.len(),
            FieldValue::Number(n) => n.to_bytes().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn base_write(dot: Dot, ts: Hlc, value: Bytes) -> Version {
    Version {
        dot,
        payload: Payload::Str(StrWrite {
            ts,
            value: Some(value.into()),
            observed: Default::default(),
        }),
    }
}

impl FieldState {
    /// The field as a key CRDT (built on the fly for the plain form).
    pub fn key_state(&self) -> Cow<'_, KeyState> {
        match self {
            FieldState::Full(k) => Cow::Borrowed(k),
            FieldState::Plain(p) => {
                let mut k = KeyState::new();
                let delta = KeyDelta {
                    adds: smallvec::smallvec![base_write(
                        p.dot,
                        p.ts,
                        Bytes::copy_from_slice(&p.value)
                    )],
                    ..KeyDelta::default()
                };
                k.apply(&delta, &mut CausalContext::new());
                Cow::Owned(k)
            }
        }
    }

    /// The normal form of a field's versions (`None`: nothing left).
    pub fn from_key_state(k: KeyState) -> Option<FieldState> {
        match k.versions() {
            [] => None,
            [Version {
                dot,
                payload:
                    Payload::Str(StrWrite {
                        ts,
                        value: Some(value),
                        observed,
                    }),
            }] if observed.is_empty() => Some(FieldState::Plain(PlainWrite {
                dot: *dot,
                ts: *ts,
                value: value.as_ref().into(),
            })),
            _ => Some(FieldState::Full(Box::new(k))),
        }
    }

    /// True when the field reads as a value (not only a delete marker).
    pub fn is_visible(&self) -> bool {
        match self {
            FieldState::Plain(_) => true,
            FieldState::Full(k) => k.has_value(),
        }
    }

    pub fn value(&self) -> Option<FieldValue<'_>> {
        match self {
            FieldState::Plain(p) => Some(FieldValue::Raw(&p.value)),
            FieldState::Full(k) => k.string_value().and_then(|v| match v {
                StrValue::Raw(b) => Some(FieldValue::Raw(b.as_ref())),
                StrValue::Number(n) => Some(FieldValue::Number(n)),
                // Hash fields never take HyperLogLog writes; one from a
                // peer reads as no value rather than as borrowed bytes.
                StrValue::Merged(_) => None,
                // No command writes bit patches into a hash field.
                StrValue::Rendered(_) => None,
            }),
        }
    }

    fn dots(&self) -> SmallVec<[Dot; 2]> {
        match self {
            FieldState::Plain(p) => smallvec::smallvec![p.dot],
            FieldState::Full(k) => k.versions().iter().map(|v| v.dot).collect(),
        }
    }

    fn is_full(&self) -> bool {
        matches!(self, FieldState::Full(_))
    }
}

impl PartialEq for FieldState {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldState::Plain(a), FieldState::Plain(b)) => a == b,
            _ => self.key_state() == other.key_state(),
        }
    }
}

/// One field's change: the versions it supersedes and the versions it adds
/// (exactly a string key's delta, without collections).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: Box<[u8]>,
    #[serde(deserialize_with = "super::bounded::smallvec")]
    pub removes: SmallVec<[Dot; 2]>,
    #[serde(deserialize_with = "super::bounded::smallvec")]
    pub adds: SmallVec<[Version; 1]>,
}

impl FieldChange {
    fn from_key_delta(field: &[u8], delta: KeyDelta) -> FieldChange {
        FieldChange {
            field: field.into(),
            removes: delta.removes,
            adds: delta.adds,
        }
    }

    fn to_key_delta(&self) -> KeyDelta {
        KeyDelta {
            removes: self.removes.clone(),
            adds: self.adds.clone(),
            colls: Vec::new(),
        }
    }

    /// The plain write this change leaves behind when applied to a plain or
    /// absent field whose dot it removes (HSET's usual delta).
    fn plain_add(&self) -> Option<(Dot, Hlc, &super::compact::StoredValue)> {
        match self.adds.as_slice() {
            [Version {
                dot,
                payload:
                    Payload::Str(StrWrite {
                        ts,
                        value: Some(value),
                        observed,
                    }),
            }] if observed.is_empty() => Some((*dot, *ts, value)),
            _ => None,
        }
    }
}

/// A hash write's delta: field changes, applied in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HashDelta {
    pub changes: Vec<FieldChange>,
}

impl HashDelta {
    pub fn push(&mut self, change: Option<FieldChange>) {
        self.changes.extend(change);
    }
}

/// The hash state; see the module docs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Fields")]
pub struct OrMap {
    fields: MemberTable<FieldState>,
    /// Fields that read as a value (HLEN in O(1)).
    #[serde(skip)]
    visible: usize,
    /// Fields in the full form (garbage collection skips hashes without).
    #[serde(skip)]
    full: usize,
}

/// The serialized form of [`OrMap`]; the counts are rebuilt on arrival.
#[derive(Deserialize)]
struct Fields {
    fields: MemberTable<FieldState>,
}

impl From<Fields> for OrMap {
    fn from(raw: Fields) -> Self {
        let mut map = OrMap::default();
        for (field, state) in raw.fields.iter() {
            // A peer's full form may be plain or empty: normalize.
            if let Some(state) = FieldState::from_key_state(state.key_state().into_owned()) {
                map.put(field, state);
            }
        }
        map
    }
}

impl PartialEq for OrMap {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl OrMap {
    /// Inserts a field state absent from the map, counting it.
    fn put(&mut self, field: &[u8], state: FieldState) {
        self.count(&state, 1);
        self.fields.insert(field, state);
    }

    fn count(&mut self, state: &FieldState, sign: isize) {
        if state.is_visible() {
            self.visible = self.visible.wrapping_add_signed(sign);
        }
        if state.is_full() {
            self.full = self.full.wrapping_add_signed(sign);
        }
    }

    /// The visible value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<FieldValue<'_>> {
        self.fields.get(field).and_then(|f| f.value())
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.fields.get(field).is_some_and(|f| f.is_visible())
    }

    /// Every visible field with its value, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], FieldValue<'_>)> {
        self.fields
            .iter()
            .filter_map(|(f, s)| s.value().map(|v| (f, v)))
    }

    /// The state of `field` (visible or not), for tests and diagnostics.
    pub fn field_state(&self, field: &[u8]) -> Option<&FieldState> {
        self.fields.get(field)
    }

    /// A random visible field; `random(n)` returns a number in `0..n`.
    pub fn random_entry(
        &self,
        mut random: impl FnMut(usize) -> usize,
    ) -> Option<(&[u8], FieldValue<'_>)> {
        if self.visible == 0 {
            return None;
        }
        // Invisible fields (delete markers) are rare: retry a few times,
        // then take the first visible field after a random start.
        for _ in 0..16 {
            if let Some((f, s)) = self.fields.random(&mut random) {
                if let Some(v) = s.value() {
                    return Some((f, v));
                }
            }
        }
        let skip = random(self.visible);
        self.entries().nth(skip)
    }

    /// One HSCAN step over field slots; returns the next cursor.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(&[u8], FieldValue<'_>),
    ) -> u64 {
        self.fields.scan(cursor, count, |f, s| {
            if let Some(v) = s.value() {
                visit(f, v)
            }
        })
    }

    /// Bytes of the field table itself (slots and index), for diagnostics.
    pub fn table_bytes(&self) -> usize {
        self.fields.table_bytes()
    }

    // ----- mutators: each returns one field's change -----

    /// HSET of `field` to `value`: supersedes the field's observed versions
    /// (resetting the increments they hold) with one base write.
    pub fn delta_set(
        &self,
        field: &[u8],
        value: Bytes,
        ts: Hlc,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> FieldChange {
        match self.fields.get(field) {
            Some(FieldState::Full(k)) => FieldChange::from_key_delta(
                field,
                k.delta_set(value, ts, TtlChange::Keep, next_dot),
            ),
            plain_or_absent => FieldChange {
                field: field.into(),
                removes: plain_or_absent.map(|s| s.dots()).unwrap_or_default(),
                adds: smallvec::smallvec![base_write(next_dot(), ts, value)],
            },
        }
    }

    /// HINCRBY/HINCRBYFLOAT by `amount` at replica `me`.
    pub fn delta_incr(
        &self,
        field: &[u8],
        me: ReplicaId,
        amount: Amount,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> FieldChange {
        let delta = match self.fields.get(field) {
            Some(FieldState::Full(k)) => k.delta_incr(me, amount, next_dot),
            // A plain field holds no increment run to continue.
            _ => KeyState::new().delta_incr(me, amount, next_dot),
        };
        FieldChange::from_key_delta(field, delta)
    }

    /// HDEL of `field`: removes what was observed (`None` if not visible),
    /// leaving a delete marker when increment totals must be remembered.
    pub fn delta_delete(
        &self,
        field: &[u8],
        ts: Hlc,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> Option<FieldChange> {
        let state = self.fields.get(field).filter(|s| s.is_visible())?;
        Some(match state {
            FieldState::Plain(p) => FieldChange {
                field: field.into(),
                removes: smallvec::smallvec![p.dot],
                adds: SmallVec::new(),
            },
            FieldState::Full(k) => FieldChange::from_key_delta(field, k.delta_delete(ts, next_dot)),
        })
    }

    fn apply_change(&mut self, change: &FieldChange, ctx: &mut CausalContext) {
        let current = self.fields.get(&change.field);
        // Fast path: a plain (or absent) field replaced or removed wholesale.
        let replaces_plain = match current {
            None => true,
            Some(FieldState::Plain(p)) => change.removes.contains(&p.dot),
            Some(FieldState::Full(_)) => false,
        };
        if replaces_plain && (change.adds.is_empty() || change.plain_add().is_some()) {
            for &dot in &change.removes {
                ctx.insert(dot);
            }
            let fresh = change.plain_add().filter(|(dot, _, _)| !ctx.contains(*dot));
            let Some((dot, ts, value)) = fresh else {
                if let Some(old) = self.fields.remove(&change.field) {
                    self.count(&old, -1);
                }
                return;
            };
            ctx.insert(dot);
            let write = PlainWrite {
                dot,
                ts,
                value: value.as_ref().into(),
            };
            // An overwrite keeps the field's slot (and its key allocation).
            match self.fields.get_mut(&change.field) {
                Some(state) => *state = FieldState::Plain(write),
                None => self.put(&change.field, FieldState::Plain(write)),
            }
            return;
        }
        let mut k = match self.fields.remove(&change.field) {
            Some(old) => {
                self.count(&old, -1);
                match old {
                    FieldState::Full(k) => *k,
                    plain => plain.key_state().into_owned(),
                }
            }
            None => KeyState::new(),
        };
        k.apply(&change.to_key_delta(), ctx);
        if let Some(state) = FieldState::from_key_state(k) {
            self.put(&change.field, state);
        }
    }
}

impl ElementCrdt for OrMap {
    type Delta = HashDelta;
    const KIND: Kind = Kind::Hash;

    fn apply(&mut self, delta: &HashDelta, ctx: &mut CausalContext) {
        for change in &delta.changes {
            self.apply_change(change, ctx);
        }
    }

    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut out = OrMap::default();
        let empty = KeyState::new();
        for (field, mine) in self.fields.iter() {
            let joined = match (mine, other.fields.get(field)) {
                (FieldState::Plain(a), Some(FieldState::Plain(b))) if a.dot == b.dot => {
                    Some(mine.clone())
                }
                (_, theirs) => {
                    let theirs = theirs.map(|t| t.key_state());
                    let theirs = theirs.as_deref().unwrap_or(&empty);
                    FieldState::from_key_state(mine.key_state().join(self_ctx, theirs, other_ctx))
                }
            };
            if let Some(state) = joined {
                out.put(field, state);
            }
        }
        for (field, theirs) in other.fields.iter() {
            if self.fields.contains(field) {
                continue;
            }
            let joined = empty.join(self_ctx, &theirs.key_state(), other_ctx);
            if let Some(state) = FieldState::from_key_state(joined) {
                out.put(field, state);
            }
        }
        out
    }

    fn len(&self) -> usize {
        self.visible
    }

    fn is_blank(&self) -> bool {
        self.fields.is_empty()
    }

    fn delta_clear(&self) -> HashDelta {
        HashDelta {
            changes: self
                .fields
                .iter()
                .map(|(field, state)| FieldChange {
                    field: field.into(),
                    removes: state.dots(),
                    adds: SmallVec::new(),
                })
                .collect(),
        }
    }

    /// Each field as HDEL would delete it: counter fields leave markers.
    fn delta_delete_all(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> HashDelta {
        HashDelta {
            changes: self
                .fields
                .iter()
                .map(|(field, state)| match state {
                    FieldState::Full(k) => {
                        FieldChange::from_key_delta(field, k.delta_delete(ts, &mut || next_dot()))
                    }
                    plain => FieldChange {
                        field: field.into(),
                        removes: plain.dots(),
                        adds: SmallVec::new(),
                    },
                })
                .collect(),
        }
    }

    fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        for (_, field) in self.fields.iter() {
            match field {
                FieldState::Plain(w) => visit(w.dot),
                FieldState::Full(state) => state.for_each_dot(&mut *visit),
            }
        }
    }

    fn delta_remove_covered(&self, seen: &VersionVector) -> HashDelta {
        HashDelta {
            changes: self
                .fields
                .iter()
                .filter_map(|(field, state)| {
                    let removes: SmallVec<[Dot; 2]> = state
                        .dots()
                        .into_iter()
                        .filter(|d| seen.covers(*d))
                        .collect();
                    (!removes.is_empty()).then(|| FieldChange {
                        field: field.into(),
                        removes,
                        adds: SmallVec::new(),
                    })
                })
                .collect(),
        }
    }

    fn delta_copy(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> HashDelta {
        HashDelta {
            changes: self
                .entries()
                .map(|(field, value)| FieldChange {
                    field: field.into(),
                    removes: SmallVec::new(),
                    adds: smallvec::smallvec![base_write(next_dot(), ts, value.to_bytes())],
                })
                .collect(),
        }
    }

    fn delta_then(delta: &mut HashDelta, next: HashDelta) {
        delta.changes.extend(next.changes);
    }

    fn delta_is_empty(delta: &HashDelta) -> bool {
        delta.changes.is_empty()
    }

    fn delta_bytes(delta: &HashDelta) -> usize {
        let unused = delta.changes.capacity() - delta.changes.len();
        unused * std::mem::size_of::<FieldChange>()
            + delta
                .changes
                .iter()
                .map(|c| {
                    // Heap blocks beyond the inline change: the field, the
                    // values, spilled versions and run marks.
                    let values: usize = c
                        .adds
                        .iter()
                        .map(|v| match &v.payload {
                            Payload::Str(w) => {
                                16 + w.value.as_ref().map_or(0, |b| b.len()) + w.observed.len() * 48
                            }
                            _ => 0,
                        })
                        .sum();
                    let spilled = if c.adds.len() > 1 {
                        c.adds.len() * 80
                    } else {
                        0
                    } + if c.removes.len() > 2 {
                        c.removes.len() * 16
                    } else {
                        0
                    };
                    std::mem::size_of::<FieldChange>() + 16 + c.field.len() + values + spilled
                })
                .sum::<usize>()
    }

    fn digest(&self, feed: &mut dyn FnMut(&[u8])) {
        let mut entries: Vec<(&[u8], Bytes)> =
            self.entries().map(|(f, v)| (f, v.to_bytes())).collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (field, value) in entries {
            feed(&(field.len() as u64).to_be_bytes());
            feed(field);
            feed(&(value.len() as u64).to_be_bytes());
            feed(&value);
        }
    }

    fn collect_garbage(&mut self, stable: &VersionVector) {
        if self.full == 0 {
            return;
        }
        self.fields.retain(|_, state| {
            let FieldState::Full(k) = state else {
                return true;
            };
            if k.collect_garbage(stable) {
                return false;
            }
            match FieldState::from_key_state(std::mem::take(&mut **k)) {
                Some(normal) => {
                    *state = normal;
                    true
                }
                None => false,
            }
        });
        self.visible = self.fields.iter().filter(|(_, s)| s.is_visible()).count();
        self.full = self.fields.iter().filter(|(_, s)| s.is_full()).count();
    }

    fn observes_runs_of(&self, silent: &dyn Fn(ReplicaId) -> bool) -> bool {
        self.full > 0
            && self.fields.iter().any(|(_, state)| match state {
                FieldState::Full(k) => k.observes_runs_of(silent),
                FieldState::Plain(_) => false,
            })
    }

    fn encoding(&self) -> &'static str {
        "hashtable"
    }

    super::element::collection_glue!(Hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(seq: u64) -> Dot {
        Dot::new(ReplicaId(7), seq)
    }

    #[test]
    fn a_peer_state_round_trips_with_its_counts_rebuilt() {
        let mut map = OrMap::default();
        let mut ctx = CausalContext::new();
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            dot(seq)
        };
        let mut delta = HashDelta::default();
        delta.push(Some(map.delta_set(
            b"plain",
            Bytes::from_static(b"v"),
            Hlc(1),
            &mut next,
        )));
        delta.push(Some(map.delta_incr(
            b"counter",
            ReplicaId(7),
            Amount::from_int(3),
            &mut next,
        )));
        map.apply(&delta, &mut ctx);
        let mut delta = HashDelta::default();
        delta.push(map.delta_delete(b"counter", Hlc(2), &mut next));
        delta.push(Some(map.delta_set(
            b"other",
            Bytes::from_static(b"w"),
            Hlc(2),
            &mut next,
        )));
        map.apply(&delta, &mut ctx);
        assert_eq!(map.len(), 2);
        assert_eq!(map.fields.len(), 3, "the counter's delete marker stays");

        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&map, config).unwrap();
        let (back, _): (OrMap, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, map);
        assert_eq!((back.len(), back.full), (2, 1));
        assert_eq!(back.get(b"plain"), Some(FieldValue::Raw(b"v")));
        assert!(matches!(
            back.field_state(b"plain"),
            Some(FieldState::Plain(_))
        ));
    }

    #[test]
    fn field_states_stay_small() {
        // The plain form is what a 1M-field hash mostly holds.
        assert!(std::mem::size_of::<FieldState>() <= 40);
    }
}
