//! One database's key table: keys to [`KeyState`]s in stable slots.
//!
//! Entries live in a slot vector indexed by a hash table of slot numbers, so
//! a key is stored once, SCAN cursors are slot positions (an entry never
//! moves while it exists, so a scan returns every key present for its whole
//! duration), and random sampling (RANDOMKEY, active expiry) picks slots.
//! Keys with a deadline are also listed in `volatile` for expiry sampling.
//! Each slot also packs the key's access metadata for eviction into one
//! `u32` (see [`super::evict`]), in what would otherwise be padding.
//!
//! Memory: a slot holds a short key name inline ([`KeyBytes`]), and the
//! slots live in fixed-size chunks, so the table never holds more than one
//! chunk of growth slack and never copies every slot to grow.

use bytes::Bytes;
use hashbrown::HashTable;
use rand::Rng;

use crate::crdt::compact::KeyBytes;
use crate::crdt::KeyState;

/// Marks a slot that is not in the volatile list.
const NOT_VOLATILE: u32 = u32::MAX;

struct Occupied {
    key: KeyBytes,
    state: KeyState,
    volatile_at: u32,
    /// LRU clock and LFU counter, packed by [`super::evict::Access`].
    access: u32,
}

/// A slot number in the table (stable while its key exists).
pub type SlotId = u32;

pub struct Keyspace {
    index: HashTable<SlotId>,
    slots: Slots,
    free: Vec<SlotId>,
    hasher: foldhash::fast::RandomState,
    len: usize,
    volatile: Vec<SlotId>,
    /// Set while a background save steps through the slots.
    pinned: Option<Pinned>,
}

/// While pinned, no slot is reused or trimmed, so a slot below the length
/// at pinning holds the key it held then or nothing; each key that leaves
/// is listed (a background save encodes it from wherever it went).
#[derive(Default)]
struct Pinned {
    freed: Vec<SlotId>,
    departed: Vec<Bytes>,
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Keyspace {
    pub fn new() -> Self {
        Keyspace {
            index: HashTable::new(),
            slots: Slots::default(),
            free: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
            len: 0,
            volatile: Vec::new(),
            pinned: None,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of keys that carry a deadline.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    pub fn find(&self, key: &[u8]) -> Option<SlotId> {
        let hash = self.hash(key);
        let slots = &self.slots;
        self.index
            .find(hash, |&slot| {
                slots[slot as usize]
                    .as_ref()
                    .is_some_and(|o| o.key.as_slice() == key)
            })
            .copied()
    }

    fn occupied(&self, slot: SlotId) -> &Occupied {
        self.slots[slot as usize]
            .as_ref()
            .expect("slot id refers to a live entry")
    }

    fn occupied_mut(&mut self, slot: SlotId) -> &mut Occupied {
        self.slots[slot as usize]
            .as_mut()
            .expect("slot id refers to a live entry")
    }

    pub fn key(&self, slot: SlotId) -> &[u8] {
        self.occupied(slot).key.as_slice()
    }

    pub fn state(&self, slot: SlotId) -> &KeyState {
        &self.occupied(slot).state
    }

    /// Mutable access to a state; call [`Keyspace::sync_volatile`] after a
    /// change that may alter its deadline.
    pub fn state_mut(&mut self, slot: SlotId) -> &mut KeyState {
        &mut self.occupied_mut(slot).state
    }

    /// The packed access metadata of a slot (see [`super::evict::Access`]).
    #[inline]
    pub fn access(&self, slot: SlotId) -> u32 {
        self.occupied(slot).access
    }

    #[inline]
    pub fn set_access(&mut self, slot: SlotId, access: u32) {
        self.occupied_mut(slot).access = access;
    }

    /// Room for `additional` more keys without growing the table (a state
    /// transfer into an empty node knows how many are coming: growing step
    /// by step re-hashes every key each time, a cache miss per key).
    pub fn reserve(&mut self, additional: usize) {
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.reserve(additional, |&slot| {
            use std::hash::BuildHasher;
            let key = slots[slot as usize]
                .as_ref()
                .map_or(&[][..], |o| o.key.as_slice());
            hasher.hash_one(key)
        });
        self.slots.reserve(additional);
    }

    /// Inserts a key that is not present, with its initial access metadata.
    /// The key should own its bytes (not point into a network buffer).
    pub fn insert(&mut self, key: impl AsRef<[u8]>, state: KeyState, access: u32) -> SlotId {
        let key = key.as_ref();
        debug_assert!(self.find(key).is_none());
        let hash = self.hash(key);
        let reuse = self.pinned.is_none();
        let slot = loop {
            match self.free.pop().filter(|_| reuse) {
                Some(s) if (s as usize) < self.slots.len() && self.slots[s as usize].is_none() => {
                    break s
                }
                Some(_) => continue,
                None => {
                    self.slots.push(None);
                    break (self.slots.len() - 1) as SlotId;
                }
            }
        };
        self.slots[slot as usize] = Some(Occupied {
            key: KeyBytes::new(key),
            state,
            volatile_at: NOT_VOLATILE,
            access,
        });
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, slot, |&s| {
            use std::hash::BuildHasher;
            hasher.hash_one(
                slots[s as usize]
                    .as_ref()
                    .map_or(&[][..], |o| o.key.as_slice()),
            )
        });
        self.len += 1;
        self.sync_volatile(slot);
        slot
    }

    pub fn remove(&mut self, slot: SlotId) -> (Bytes, KeyState) {
        let hash = self.hash(self.key(slot));
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.unlist_volatile(slot);
        let occupied = self.slots[slot as usize]
            .take()
            .expect("slot id refers to a live entry");
        self.len -= 1;
        let key = occupied.key.to_bytes();
        if let Some(pinned) = &mut self.pinned {
            pinned.freed.push(slot);
            pinned.departed.push(key.clone());
            return (key, occupied.state);
        }
        // Trailing holes are trimmed so the slot vector shrinks after deletes
        // at the end; other holes are reused through the free list.
        if slot as usize == self.slots.len() - 1 {
            while matches!(self.slots.last(), Some(None)) {
                self.slots.pop();
            }
        } else {
            self.free.push(slot);
        }
        if self.len == 0 {
            self.free.clear();
            self.slots.clear();
        }
        (key, occupied.state)
    }

    /// Brings the volatile list in line with the slot's current deadline.
    pub fn sync_volatile(&mut self, slot: SlotId) {
        let has_deadline = self.occupied(slot).state.deadline().is_some();
        let listed = self.occupied(slot).volatile_at != NOT_VOLATILE;
        if has_deadline && !listed {
            let at = self.volatile.len() as u32;
            self.volatile.push(slot);
            self.occupied_mut(slot).volatile_at = at;
        } else if !has_deadline && listed {
            self.unlist_volatile(slot);
        }
    }

    fn unlist_volatile(&mut self, slot: SlotId) {
        let at = self.occupied(slot).volatile_at;
        if at == NOT_VOLATILE {
            return;
        }
        self.volatile.swap_remove(at as usize);
        if let Some(&moved) = self.volatile.get(at as usize) {
            self.occupied_mut(moved).volatile_at = at;
        }
        self.occupied_mut(slot).volatile_at = NOT_VOLATILE;
    }

    /// A uniformly random slot among the keys with a deadline.
    pub fn random_volatile(&self, rng: &mut impl Rng) -> Option<SlotId> {
        if self.volatile.is_empty() {
            return None;
        }
        Some(self.volatile[rng.gen_range(0..self.volatile.len())])
    }

    /// A random live slot (close to uniform: probes from a random position).
    pub fn random_slot(&self, rng: &mut impl Rng) -> Option<SlotId> {
        if self.len == 0 {
            return None;
        }
        let n = self.slots.len();
        for _ in 0..32 {
            let i = rng.gen_range(0..n);
            if self.slots[i].is_some() {
                return Some(i as SlotId);
            }
        }
        let start = rng.gen_range(0..n);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.slots[i].is_some())
            .map(|i| i as SlotId)
    }

    /// Eviction sampling: visits up to `count` slots among the keys (or,
    /// with `volatile_only`, the keys with a deadline) — every one of them
    /// when there are no more than `count`, else random picks.
    pub fn sample(
        &self,
        volatile_only: bool,
        count: usize,
        rng: &mut impl Rng,
        mut visit: impl FnMut(SlotId),
    ) {
        let candidates = if volatile_only {
            self.volatile.len()
        } else {
            self.len
        };
        if candidates <= count {
            if volatile_only {
                self.volatile.iter().for_each(|&slot| visit(slot));
            } else {
                (0..self.slots.len())
                    .filter(|&i| self.slots[i].is_some())
                    .for_each(|i| visit(i as SlotId));
            }
            return;
        }
        for _ in 0..count {
            let slot = if volatile_only {
                self.random_volatile(rng)
            } else {
                self.random_slot(rng)
            };
            match slot {
                Some(slot) => visit(slot),
                None => break,
            }
        }
    }

    /// Visits live slots from `cursor`, calling `visit` on each, until
    /// `visit` has been called `count` times or the table ends. Returns the
    /// next cursor (0 when the scan is complete).
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(SlotId)) -> u64 {
        let mut position = cursor as usize;
        let mut seen = 0;
        while position < self.slots.len() && seen < count {
            if self.slots[position].is_some() {
                visit(position as SlotId);
                seen += 1;
            }
            position += 1;
        }
        if position >= self.slots.len() {
            0
        } else {
            position as u64
        }
    }

    /// Every live slot id (a snapshot, so the caller may mutate afterwards).
    pub fn slot_ids(&self) -> Vec<SlotId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as SlotId)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &KeyState)> {
        self.slots
            .iter()
            .flatten()
            .map(|o| (o.key.as_slice(), &o.state))
    }

    /// Empties the table as [`Keyspace::clear`] does (whatever `clear`
    /// keeps, it keeps) and returns the entries it held, still allocated,
    /// for the caller to drop elsewhere (see `super::lazyfree`).
    pub fn take(&mut self) -> Keyspace {
        let taken = Keyspace {
            index: std::mem::take(&mut self.index),
            slots: std::mem::take(&mut self.slots),
            free: std::mem::take(&mut self.free),
            volatile: std::mem::take(&mut self.volatile),
            len: self.len,
            hasher: self.hasher,
            ..Keyspace::new()
        };
        self.clear();
        taken
    }

    pub fn clear(&mut self) {
        // A pin outlives a flush (the keys it lists as departed still left).
        let pinned = self.pinned.take().map(|p| Pinned {
            freed: Vec::new(),
            departed: p.departed,
        });
        *self = Keyspace {
            hasher: self.hasher,
            pinned,
            ..Keyspace::new()
        };
    }

    /// Pins the slots (see [`Pinned`]) until [`Keyspace::unpin`].
    pub fn pin(&mut self) {
        self.pinned.get_or_insert_with(Pinned::default);
    }

    /// Ends a pin: freed slots become reusable and trailing holes go.
    pub fn unpin(&mut self) {
        let Some(pinned) = self.pinned.take() else {
            return;
        };
        self.free.extend(pinned.freed);
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        if self.len == 0 {
            self.free.clear();
            self.slots.clear();
        }
    }

    /// Keys that left since the pin (or the last take), oldest first.
    pub fn take_departed(&mut self) -> Vec<Bytes> {
        self.pinned
            .as_mut()
            .map_or_else(Vec::new, |p| std::mem::take(&mut p.departed))
    }

    /// How many slots there are (live or not): slot positions run below.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The key and state in slot position `slot`, if it holds one.
    pub fn at(&self, slot: usize) -> Option<(&[u8], &KeyState)> {
        self.slots
            .get(slot)?
            .as_ref()
            .map(|o| (o.key.as_slice(), &o.state))
    }
}

/// Slots per chunk: 1024 slots of about 120 bytes, so a chunk is ~120 KB.
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// The slot vector, in chunks of [`CHUNK`] slots. Growing adds a chunk
/// (no copy of the slots before it, and at most one chunk of slack, where a
/// doubling vector copies everything and may hold twice what it needs);
/// the first chunk grows as a vector does, so a nearly empty database
/// costs little.
#[derive(Default)]
struct Slots {
    chunks: Vec<Vec<Option<Occupied>>>,
    len: usize,
}

impl Slots {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, at: usize) -> Option<&Option<Occupied>> {
        (at < self.len).then(|| &self.chunks[at >> CHUNK_BITS][at & (CHUNK - 1)])
    }

    fn push(&mut self, slot: Option<Occupied>) {
        let chunk = self.len >> CHUNK_BITS;
        if chunk == self.chunks.len() {
            let capacity = if chunk == 0 { 0 } else { CHUNK };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        self.chunks[chunk].push(slot);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<Option<Occupied>> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let chunk = self.len >> CHUNK_BITS;
        let slot = self.chunks[chunk].pop();
        // Keep one emptied chunk, so pushes and pops across a chunk boundary
        // do not allocate and free a chunk each time.
        if self.chunks.len() > chunk + 2 {
            self.chunks.truncate(chunk + 2);
        }
        slot
    }

    fn last(&self) -> Option<&Option<Occupied>> {
        self.len.checked_sub(1).and_then(|at| self.get(at))
    }

    fn iter(&self) -> impl Iterator<Item = &Option<Occupied>> {
        self.chunks.iter().flatten()
    }

    fn clear(&mut self) {
        *self = Slots::default();
    }

    /// Room for the chunk list to reach `additional` more slots (the chunks
    /// themselves come as they fill).
    fn reserve(&mut self, additional: usize) {
        let chunks = (self.len + additional).div_ceil(CHUNK);
        self.chunks
            .reserve(chunks.saturating_sub(self.chunks.len()));
    }
}

impl std::ops::Index<usize> for Slots {
    type Output = Option<Occupied>;

    fn index(&self, at: usize) -> &Option<Occupied> {
        assert!(
            at < self.len,
            "slot {at} past the table's {} slots",
            self.len
        );
        &self.chunks[at >> CHUNK_BITS][at & (CHUNK - 1)]
    }
}

impl std::ops::IndexMut<usize> for Slots {
    fn index_mut(&mut self, at: usize) -> &mut Option<Occupied> {
        assert!(
            at < self.len,
            "slot {at} past the table's {} slots",
            self.len
        );
        &mut self.chunks[at >> CHUNK_BITS][at & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn take_empties_the_table_and_hands_over_its_entries() {
        let mut ks = Keyspace::new();
        for i in 0..100 {
            ks.insert(key(&format!("k{i}")), KeyState::new(), 0);
        }
        let taken = ks.take();
        assert_eq!(taken.len(), 100);
        assert!(taken.find(b"k7").is_some());
        assert!(ks.is_empty());
        assert_eq!(ks.find(b"k7"), None);
        assert_eq!(ks.iter().count(), 0);
        let slot = ks.insert(key("again"), KeyState::new(), 0);
        assert_eq!(ks.key(slot), b"again");
        assert_eq!(ks.len(), 1);
    }

    #[test]
    fn a_string_key_slot_stays_small() {
        // A key written once holds one version inline: dot, HLC, value
        // handle, no run marks. Growing any of these grows every key.
        use std::mem::size_of;
        assert_eq!(size_of::<crate::crdt::key::Version>(), 64);
        assert_eq!(size_of::<KeyState>(), 80);
        assert_eq!(size_of::<Option<Occupied>>(), 112);
    }

    #[test]
    fn slots_grow_and_shrink_across_chunks() {
        let mut ks = Keyspace::new();
        let n = 3 * CHUNK + 5;
        let ids: Vec<SlotId> = (0..n)
            .map(|i| ks.insert(format!("k{i}").as_bytes(), KeyState::new(), 0))
            .collect();
        assert_eq!(ks.slot_count(), n);
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(ks.key(id), format!("k{i}").as_bytes());
        }
        // Removing from the end trims the slots, keeping one spare chunk.
        for &id in ids.iter().rev().take(2 * CHUNK) {
            ks.remove(id);
        }
        assert_eq!(ks.slot_count(), CHUNK + 5);
        assert!(ks.slots.chunks.len() <= 3);
        assert_eq!(ks.find(b"k0"), Some(0));
        assert_eq!(
            ks.find(format!("k{}", CHUNK + 4).as_bytes()),
            Some((CHUNK + 4) as SlotId)
        );
        assert_eq!(ks.find(format!("k{}", CHUNK + 5).as_bytes()), None);
        assert_eq!(ks.iter().count(), CHUNK + 5);
    }

    #[test]
    fn the_access_field_costs_no_bytes_per_key() {
        // The slot as it was before eviction metadata: the u32 of access
        // data sits in what was padding after `volatile_at`.
        #[allow(dead_code)]
        struct WithoutAccess {
            key: KeyBytes,
            state: KeyState,
            volatile_at: u32,
        }
        use std::mem::size_of;
        assert_eq!(
            size_of::<Option<Occupied>>(),
            size_of::<Option<WithoutAccess>>()
        );
    }

    #[test]
    fn a_pinned_table_reuses_no_slot_and_lists_what_leaves() {
        let mut ks = Keyspace::new();
        let slots: Vec<SlotId> = (0..4)
            .map(|i| ks.insert(key(&format!("k{i}")), KeyState::new(), 0))
            .collect();
        ks.pin();
        ks.remove(slots[1]);
        ks.remove(slots[3]);
        // A new key takes a fresh slot, not the freed ones (nor is the
        // trailing hole trimmed).
        let fresh = ks.insert(key("new"), KeyState::new(), 0);
        assert_eq!(fresh, 4);
        assert!(ks.at(1).is_none() && ks.at(3).is_none());
        assert_eq!(ks.at(2).map(|(k, _)| k), Some(&b"k2"[..]));
        assert_eq!(ks.take_departed(), vec![key("k1"), key("k3")]);
        assert!(ks.take_departed().is_empty());
        // A flush keeps the pin; after it, removals are listed still.
        ks.clear();
        let again = ks.insert(key("k1"), KeyState::new(), 0);
        ks.remove(again);
        assert_eq!(ks.take_departed(), vec![key("k1")]);
        ks.unpin();
        let reused = ks.insert(key("x"), KeyState::new(), 0);
        assert_eq!(reused, 0, "unpinned: the table is empty again");
        assert!(ks.take_departed().is_empty());
    }

    #[test]
    fn unpinning_returns_freed_slots_for_reuse() {
        let mut ks = Keyspace::new();
        let slots: Vec<SlotId> = (0..4)
            .map(|i| ks.insert(key(&format!("k{i}")), KeyState::new(), 0))
            .collect();
        ks.pin();
        ks.remove(slots[1]);
        ks.remove(slots[3]);
        ks.unpin();
        assert_eq!(ks.slot_count(), 3, "the trailing hole is trimmed");
        assert_eq!(ks.insert(key("a"), KeyState::new(), 0), 1);
        assert_eq!(ks.find(b"k2"), Some(2));
    }

    #[test]
    fn sampling_visits_every_candidate_when_there_are_few() {
        let mut ks = Keyspace::new();
        for i in 0..10 {
            ks.insert(key(&format!("k{i}")), KeyState::new(), 0);
        }
        let mut rng = rand::thread_rng();
        let mut seen = Vec::new();
        ks.sample(false, 10, &mut rng, |s| seen.push(s));
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10);
        let mut picks = 0;
        ks.sample(false, 3, &mut rng, |_| picks += 1);
        assert_eq!(picks, 3);
        // No key has a deadline: nothing to sample for volatile policies.
        ks.sample(true, 5, &mut rng, |_| panic!("no volatile keys"));
    }

    #[test]
    fn inserted_keys_are_found_and_removed() {
        let mut ks = Keyspace::new();
        let a = ks.insert(key("a"), KeyState::new(), 0);
        let b = ks.insert(key("b"), KeyState::new(), 0);
        assert_eq!(ks.find(b"a"), Some(a));
        assert_eq!(ks.find(b"b"), Some(b));
        assert_eq!(ks.find(b"c"), None);
        ks.remove(a);
        assert_eq!(ks.find(b"a"), None);
        assert_eq!(ks.find(b"b"), Some(b));
        assert_eq!(ks.len(), 1);
    }

    #[test]
    fn scan_returns_every_key_present_throughout_despite_deletes_and_inserts() {
        let mut ks = Keyspace::new();
        for i in 0..100 {
            ks.insert(key(&format!("k{i}")), KeyState::new(), 0);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut batch = Vec::new();
            cursor = ks.scan(cursor, 7, |s| batch.push(s));
            for s in batch {
                seen.insert(ks.key(s).to_vec());
            }
            // Churn during the scan: delete an even key, add a new one.
            let victim = format!("k{}", (round * 2) % 100);
            if let Some(s) = ks.find(victim.as_bytes()) {
                ks.remove(s);
            }
            ks.insert(key(&format!("new{round}")), KeyState::new(), 0);
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in (1..100).step_by(2) {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
        }
    }
}
