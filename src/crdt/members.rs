//! [`MemberTable`]: the element store of sets, hashes and sorted sets — a
//! map from member bytes to a per-member CRDT value, laid out for what the
//! Redis commands need:
//!
//! - members live in *stable slots* (a member never moves while present),
//!   so an SSCAN/HSCAN/ZSCAN cursor is a slot position and returns every
//!   member present for the whole scan — except across a compaction, which
//!   happens only when the table has become very sparse (documented in
//!   `docs/semantics.md`);
//! - a random member is found in O(1) expected time (SPOP, SRANDMEMBER,
//!   HRANDFIELD, ZRANDMEMBER) — the caller supplies the random numbers,
//!   since `crdt/` uses no randomness of its own;
//! - each member is stored once, as a boxed byte slice (16 bytes plus its
//!   heap block), indexed by a table of 4-byte slot numbers.
//!
//! Equality compares contents (as a map), never slot layout, because two
//! converged replicas lay members out differently.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// A slot number (stable while its member is present).
pub type Slot = u32;

/// Members to values in stable slots; see the module docs.
#[derive(Clone)]
pub struct MemberTable<V> {
    index: HashTable<Slot>,
    slots: Vec<Option<(Box<[u8]>, V)>>,
    free: Vec<Slot>,
    len: usize,
    hasher: foldhash::fast::FixedState,
}

impl<V> Default for MemberTable<V> {
    fn default() -> Self {
        MemberTable {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl<V> MemberTable<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn find(&self, member: &[u8]) -> Option<Slot> {
        let slots = &self.slots;
        self.index
            .find(self.hash(member), |&s| {
                slots[s as usize]
                    .as_ref()
                    .is_some_and(|(m, _)| m.as_ref() == member)
            })
            .copied()
    }

    pub fn get(&self, member: &[u8]) -> Option<&V> {
        let slot = self.find(member)?;
        self.slots[slot as usize].as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, member: &[u8]) -> Option<&mut V> {
        let slot = self.find(member)?;
        self.slots[slot as usize].as_mut().map(|(_, v)| v)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.find(member).is_some()
    }

    /// The value of `member`, inserting `make()` first if it is absent.
    pub fn get_or_insert_with(&mut self, member: &[u8], make: impl FnOnce() -> V) -> &mut V {
        let slot = match self.find(member) {
            Some(slot) => slot,
            None => self.insert_new(member.into(), make()),
        };
        &mut self.slots[slot as usize].as_mut().expect("live slot").1
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, member: &[u8], value: V) -> Option<V> {
        match self.find(member) {
            Some(slot) => {
                let entry = self.slots[slot as usize].as_mut().expect("live slot");
                Some(std::mem::replace(&mut entry.1, value))
            }
            None => {
                self.insert_new(member.into(), value);
                None
            }
        }
    }

    fn insert_new(&mut self, member: Box<[u8]>, value: V) -> Slot {
        let hash = self.hash(&member);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as Slot
            }
        };
        self.slots[slot as usize] = Some((member, value));
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, slot, |&s| {
            hasher.hash_one(slots[s as usize].as_ref().map_or(&[][..], |(m, _)| m))
        });
        self.len += 1;
        slot
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<V> {
        let hash = self.hash(member);
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash, |&s| {
                slots[s as usize]
                    .as_ref()
                    .is_some_and(|(m, _)| m.as_ref() == member)
            })
            .ok()?;
        let (slot, _) = entry.remove();
        let (_, value) = self.slots[slot as usize].take().expect("live slot");
        self.len -= 1;
        if slot as usize == self.slots.len() - 1 {
            // Trailing holes are trimmed; their free-list entries are
            // dropped lazily by `compact_free_list`.
            while matches!(self.slots.last(), Some(None)) {
                self.slots.pop();
            }
            let end = self.slots.len() as Slot;
            self.free.retain(|&s| s < end);
        } else {
            self.free.push(slot);
        }
        if self.len == 0 {
            *self = MemberTable {
                hasher: self.hasher,
                ..MemberTable::new()
            };
        } else if self.slots.len() > 64 && self.len * 8 < self.slots.len() {
            self.compact();
        }
        Some(value)
    }

    /// Renumbers the slots densely once the table is mostly holes, so random
    /// picks stay O(1) and memory is returned.
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.index.clear();
        self.free.clear();
        self.len = 0;
        for (member, value) in old.into_iter().flatten() {
            self.insert_new(member, value);
        }
        self.slots.shrink_to_fit();
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.shrink_to(0, |&s| {
            hasher.hash_one(slots[s as usize].as_ref().map_or(&[][..], |(m, _)| m))
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.slots.iter().flatten().map(|(m, v)| (m.as_ref(), v))
    }

    /// Every member and value in slot order (a snapshot would need clones;
    /// callers that mutate collect first).
    pub fn members(&self) -> impl Iterator<Item = &[u8]> {
        self.iter().map(|(m, _)| m)
    }

    /// A random live entry. `random(n)` must return a number in `0..n`.
    pub fn random(&self, mut random: impl FnMut(usize) -> usize) -> Option<(&[u8], &V)> {
        if self.len == 0 {
            return None;
        }
        let n = self.slots.len();
        // At least one slot in eight is live (see `compact`), so a few
        // probes almost always land; the linear fallback bounds the worst case.
        let mut at = None;
        for _ in 0..32 {
            let i = random(n);
            if self.slots[i].is_some() {
                at = Some(i);
                break;
            }
        }
        let i = match at {
            Some(i) => i,
            None => {
                let start = random(n);
                (0..n)
                    .map(|k| (start + k) % n)
                    .find(|&i| self.slots[i].is_some())?
            }
        };
        self.slots[i].as_ref().map(|(m, v)| (m.as_ref(), v))
    }

    /// Visits live entries from slot `cursor` until `visit` has been called
    /// `count` times or the table ends; returns the next cursor (0 = done).
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&[u8], &V)) -> u64 {
        let mut position = cursor as usize;
        let mut seen = 0;
        while position < self.slots.len() && seen < count.max(1) {
            if let Some((m, v)) = &self.slots[position] {
                visit(m, v);
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

    /// Keeps the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut V) -> bool) {
        let doomed: Vec<Box<[u8]>> = self
            .slots
            .iter_mut()
            .flatten()
            .filter_map(|(m, v)| (!keep(m, v)).then(|| m.clone()))
            .collect();
        for member in doomed {
            self.remove(&member);
        }
    }

    /// Bytes held by the table itself (slots and index), excluding the
    /// member and value heap blocks.
    pub fn table_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<(Box<[u8]>, V)>>()
            + self.index.capacity() * (std::mem::size_of::<Slot>() + 1)
            + self.free.capacity() * std::mem::size_of::<Slot>()
    }
}

impl<V: PartialEq> PartialEq for MemberTable<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(m, v)| other.get(m) == Some(v))
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for MemberTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(m, v)| (String::from_utf8_lossy(m), v)))
            .finish()
    }
}

impl<V: Serialize> Serialize for MemberTable<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for (m, v) in self.iter() {
            seq.serialize_element(&(m, v))?;
        }
        seq.end()
    }
}

/// Reads entries one at a time (never reserving what the input claims) and
/// keeps the last value of a member sent twice, so a peer cannot break the
/// one-slot-per-member invariant.
impl<'de, V: Deserialize<'de>> Deserialize<'de> for MemberTable<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for TableVisitor<V> {
            type Value = MemberTable<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of (member, value) pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut table = MemberTable::new();
                while let Some((member, value)) = seq.next_element::<(Vec<u8>, V)>()? {
                    table.insert(&member, value);
                }
                Ok(table)
            }
        }
        deserializer.deserialize_seq(TableVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_slot_and_scan_sees_every_survivor() {
        let mut t = MemberTable::new();
        for i in 0..100u32 {
            t.insert(format!("m{i}").as_bytes(), i);
        }
        let mut seen = Vec::new();
        let mut cursor = t.scan(0, 10, |m, _| seen.push(m.to_vec()));
        // Remove members on both sides of the cursor, add new ones.
        for i in (0..100).step_by(3) {
            t.remove(format!("m{i}").as_bytes());
        }
        for i in 100..120u32 {
            t.insert(format!("m{i}").as_bytes(), i);
        }
        while cursor != 0 {
            cursor = t.scan(cursor, 10, |m, _| seen.push(m.to_vec()));
        }
        for i in (0..100).filter(|i| i % 3 != 0) {
            assert!(seen.contains(&format!("m{i}").into_bytes()), "missed m{i}");
        }
    }

    #[test]
    fn random_picks_find_members_even_after_mass_removal() {
        let mut t = MemberTable::new();
        for i in 0..1000u32 {
            t.insert(&i.to_be_bytes(), ());
        }
        for i in 0..999u32 {
            t.remove(&i.to_be_bytes());
        }
        let mut x = 7usize;
        let (m, _) = t
            .random(|n| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                x % n
            })
            .unwrap();
        assert_eq!(m, &999u32.to_be_bytes());
        assert!(t.slots.len() < 64 || t.slots.len() <= t.len * 8);
    }

    #[test]
    fn equality_ignores_layout_and_duplicates_from_peers_collapse() {
        let mut a = MemberTable::new();
        let mut b = MemberTable::new();
        a.insert(b"x", 1);
        a.insert(b"y", 2);
        b.insert(b"y", 2);
        b.insert(b"x", 1);
        assert_eq!(a, b);
        let bytes = bincode::serde::encode_to_vec(
            vec![(b"x".to_vec(), 1), (b"x".to_vec(), 3)],
            bincode::config::standard(),
        )
        .unwrap();
        let (t, _): (MemberTable<i32>, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(b"x"), Some(&3));
    }
}
