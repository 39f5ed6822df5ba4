//! A background save's work, without its thread: pin the key tables and
//! start capturing every change ([`SteppedSave::begin`]), encode the keys a
//! few at a time ([`SteppedSave::step`], each with the store locked), then
//! take the capture off and assemble the file ([`SteppedSave::end`]).
//! Between steps the node serves as usual. `super::Persistence::bgsave`
//! drives it from a thread; tests drive it by hand, interleaving writes.
//!
//! What the steps walk: each database's key table by slot position (a
//! pinned table reuses no slot, so every key present at `begin` is met in
//! its slot unless it left), the tombstones by name (listed at `begin`),
//! and the keys that left a table while pinned (listed as they leave). So
//! every key present at `begin` is encoded at least once, as of some
//! instant between `begin` and `end`; a key met twice is as of the later
//! instant the second time, and loading keeps the later entry.
//!
//! Why the result is right: the header is the state at `begin`, and the
//! captured changes are everything applied from `begin` to `end`, in
//! order. Loading covers the context with every dot the keys hold, then
//! replays the changes over the keys; applying a change is a join, so a
//! key that already held it is unchanged, and every key ends as it was at
//! `end`. A key created after `begin` may be missed, and its whole history
//! is in the capture; a key whose tombstone was collected before its step
//! is skipped, as a later collection would have dropped it anyway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::aof::CapturedRecords;
use super::snapshot::{SnapshotMeta, SteppedSnapshot, Written};
use crate::crdt::KeyState;
use crate::store::Store;

/// Key names copied into one buffer (no allocation per name, and the
/// store's own key handles stay as they are).
#[derive(Default)]
struct KeyNames {
    bytes: Vec<u8>,
    /// Where each name ends in `bytes`, and its database.
    ends: Vec<usize>,
    dbs: Vec<u8>,
}

impl KeyNames {
    fn push(&mut self, db: u8, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
        self.dbs.push(db);
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> (u8, &[u8]) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (self.dbs[i], &self.bytes[start..self.ends[i]])
    }
}

/// Which walk the next step continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Database `db`'s key table, from slot position `slot`.
    Slots { db: u8, slot: usize },
    /// The tombstones listed at `begin`, from index `at`.
    Tombstones { at: usize },
    /// Keys that left a table (drained from the store at each step).
    Departed,
}

/// A background save in progress.
pub struct SteppedSave {
    meta: SnapshotMeta,
    /// Each database's slot count at `begin`: the slot walk stops there
    /// (keys created later are in the capture).
    slot_ends: Vec<usize>,
    tombstones: KeyNames,
    pass: Pass,
    processed: u64,
    total: u64,
    file: SteppedSnapshot,
    capture: Arc<CapturedRecords>,
}

impl SteppedSave {
    /// Pins the key tables, lists the tombstones and installs the capture,
    /// with the store locked. `meta` is the header as of now (its key count
    /// is set at the end).
    pub fn begin(store: &mut Store, meta: SnapshotMeta) -> SteppedSave {
        store.pin_slots(true);
        let mut tombstones = KeyNames::default();
        for (db, key) in store.tombstone_names() {
            tombstones.push(db, key);
        }
        let capture = Arc::new(CapturedRecords::default());
        store.set_capture(Some(capture.clone()));
        SteppedSave {
            meta,
            slot_ends: store.slot_counts(),
            tombstones,
            pass: Pass::Slots { db: 0, slot: 0 },
            processed: 0,
            total: store.image_key_count() as u64,
            file: SteppedSnapshot::default(),
            capture,
        }
    }

    /// Encodes the next keys: at most `max_keys` slots or names visited,
    /// and, checked every 64, for at most `max_time`. Returns whether the
    /// walks over the slots and tombstones have more to do (keys that left
    /// meanwhile are encoded at every step, and at the end).
    pub fn step(
        &mut self,
        store: &mut Store,
        max_keys: usize,
        max_time: Duration,
    ) -> std::io::Result<bool> {
        let started = Instant::now();
        let budget = max_keys.max(1);
        let departed = store.take_departed();
        let store: &Store = store;
        let mut chunk: Vec<(u8, &[u8], &KeyState)> = departed
            .iter()
            .filter_map(|(db, key)| store.image_state(*db, key).map(|s| (*db, &key[..], s)))
            .collect();
        let mut visited = 0;
        while visited < budget && self.pass != Pass::Departed {
            visited += 1;
            if visited % 64 == 0 && started.elapsed() >= max_time {
                break;
            }
            match &mut self.pass {
                Pass::Slots { db, slot } => match self.slot_ends.get(*db as usize) {
                    Some(&end) if *slot < end => {
                        if let Some((key, state)) = store.key_at(*db, *slot) {
                            chunk.push((*db, key, state));
                        }
                        *slot += 1;
                    }
                    Some(_) => {
                        self.pass = Pass::Slots {
                            db: *db + 1,
                            slot: 0,
                        }
                    }
                    None => self.pass = Pass::Tombstones { at: 0 },
                },
                Pass::Tombstones { at } => {
                    if *at < self.tombstones.len() {
                        let (db, key) = self.tombstones.get(*at);
                        *at += 1;
                        if let Some(state) = store.image_state(db, key) {
                            chunk.push((db, key, state));
                        }
                    } else {
                        self.pass = Pass::Departed;
                    }
                }
                Pass::Departed => {}
            }
        }
        self.processed += chunk.len() as u64;
        self.file.push_chunk(chunk.into_iter())?;
        Ok(!self.done())
    }

    /// Whether the slot and tombstone walks are complete.
    pub fn done(&self) -> bool {
        self.pass == Pass::Departed
    }

    /// Keys encoded so far (INFO's `current_save_keys_processed`).
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Keys at `begin`.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes of changes captured so far.
    pub fn captured_bytes(&self) -> usize {
        self.capture.len()
    }

    /// Takes the capture off (with the store locked): the save's state is
    /// the store's now. Keys not stepped through yet are encoded here
    /// first. The file is assembled from the result, off the lock.
    pub fn end(mut self, store: &mut Store) -> std::io::Result<EndedSave> {
        // Also encodes the keys that left since the last step.
        while self.step(store, usize::MAX, Duration::MAX)? {}
        finish_hooks(store);
        let records = self
            .capture
            .take()
            .ok_or_else(|| std::io::Error::other("a change could not be recorded"))?;
        Ok(EndedSave {
            meta: self.meta,
            file: self.file,
            records,
        })
    }

    /// Takes the capture off without writing anything (with the store
    /// locked).
    pub fn abandon(self, store: &mut Store) {
        finish_hooks(store);
    }
}

/// Takes a save's capture off and unpins the key tables (also what
/// stopping a save from outside its thread does).
pub fn finish_hooks(store: &mut Store) {
    store.set_capture(None);
    store.pin_slots(false);
}

/// A background save whose state is complete: what is left is writing it.
pub struct EndedSave {
    meta: SnapshotMeta,
    file: SteppedSnapshot,
    records: Vec<u8>,
}

impl EndedSave {
    /// Bytes of the changes captured while the keys were encoded.
    pub fn records_len(&self) -> usize {
        self.records.len()
    }

    /// The whole file in memory.
    pub fn into_bytes(self) -> std::io::Result<(Vec<u8>, Written)> {
        self.file.finish(self.meta, &self.records)
    }

    /// Writes the file atomically at `path`.
    pub fn write(self, path: &std::path::Path) -> std::io::Result<Written> {
        self.file.write(path, self.meta, &self.records)
    }
}
