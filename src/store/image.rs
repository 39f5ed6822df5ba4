//! The whole state of a store as plain data, for snapshots on disk
//! (`crate::persist`): the identity and sequence of this node, its clock,
//! causal context and applied vector, each database's FLUSHDB floor, the
//! function libraries, and
//! every key that holds state (values and tombstones alike, so a restored
//! node keeps the deletes its peers may not have seen yet). Reading an
//! image is one consistent instant; restoring one replaces the keyspace.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::sync::SyncEntry;
use super::{Db, Store, DB_COUNT};
use crate::crdt::{CausalContext, Hlc, ReplicaId, VersionVector};

/// Everything but the keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageHeader {
    pub replica: ReplicaId,
    pub last_seq: u64,
    pub clock: Hlc,
    pub ctx: CausalContext,
    pub applied: VersionVector,
    pub flush_floors: Vec<VersionVector>,
    /// The replicated function libraries (versions and flush floor).
    pub functions: crate::crdt::FunctionLibraries,
}

impl Store {
    /// The non-key part of the state, as of now.
    pub fn image_header(&self) -> ImageHeader {
        ImageHeader {
            replica: self.replica,
            last_seq: self.last_seq,
            clock: self.clock.last(),
            ctx: self.ctx.clone(),
            applied: self.applied.clone(),
            flush_floors: self.dbs.iter().map(|d| d.flush_floor.clone()).collect(),
            functions: self.functions.clone(),
        }
    }

    /// Every key holding state, values then tombstones, database by database.
    pub fn image_keys(&self) -> impl Iterator<Item = (u8, &[u8], &crate::crdt::KeyState)> {
        self.dbs.iter().enumerate().flat_map(|(db, database)| {
            database
                .keys
                .iter()
                .chain(database.tombstones.iter().map(|(k, s)| (k.as_ref(), s)))
                .map(move |(k, s)| (db as u8, k, s))
        })
    }

    /// Pins every database's key slots for a background save (see
    /// `Keyspace::pin`), or ends the pin.
    pub fn pin_slots(&mut self, on: bool) {
        for database in &mut self.dbs {
            if on {
                database.keys.pin();
            } else {
                database.keys.unpin();
            }
        }
    }

    /// Keys that left a pinned key table since the last call.
    pub fn take_departed(&mut self) -> Vec<(u8, Bytes)> {
        let mut out = Vec::new();
        for (db, database) in self.dbs.iter_mut().enumerate() {
            out.extend(
                database
                    .keys
                    .take_departed()
                    .into_iter()
                    .map(|k| (db as u8, k)),
            );
        }
        out
    }

    /// Slot positions of each database's key table (a background save
    /// walks them).
    pub fn slot_counts(&self) -> Vec<usize> {
        self.dbs.iter().map(|d| d.keys.slot_count()).collect()
    }

    /// The live key at a slot position, if any.
    pub fn key_at(&self, db: u8, slot: usize) -> Option<(&[u8], &crate::crdt::KeyState)> {
        self.dbs.get(db as usize)?.keys.at(slot)
    }

    /// Every tombstone's database and name.
    pub fn tombstone_names(&self) -> impl Iterator<Item = (u8, &Bytes)> {
        self.dbs
            .iter()
            .enumerate()
            .flat_map(|(db, d)| d.tombstones.keys().map(move |k| (db as u8, k)))
    }

    /// The state a key holds now, value or tombstone (`None`: neither, as
    /// after its tombstone was collected).
    pub fn image_state(&self, db: u8, key: &[u8]) -> Option<&crate::crdt::KeyState> {
        let database = self.dbs.get(db as usize)?;
        match database.keys.find(key) {
            Some(slot) => Some(database.keys.state(slot)),
            None => database.tombstones.get(key),
        }
    }

    /// Puts every dot the keys hold into the causal context. A background
    /// save's keys are each as of their own step, so they may hold dots the
    /// header's context (taken before the first step) lacks; replaying the
    /// save's changes needs the context to cover them, or a change the key
    /// already holds would be applied to it twice.
    pub fn cover_held_dots(&mut self) {
        let ctx = &mut self.ctx;
        for database in &self.dbs {
            let tombstones = database.tombstones.values();
            for state in database.keys.iter().map(|(_, s)| s).chain(tombstones) {
                state.for_each_dot(&mut |dot| ctx.insert(dot));
            }
        }
    }

    /// How many keys [`Store::image_keys`] yields.
    pub fn image_key_count(&self) -> usize {
        self.dbs
            .iter()
            .map(|d| d.keys.len() + d.tombstones.len())
            .sum()
    }

    /// Replaces the whole state with an image. With `resume` the node takes
    /// the image's replica id and sequence back (its earlier life is known
    /// to have issued nothing past them); otherwise it keeps its own fresh
    /// id and starts at seq 0, and the image's own writes are those of
    /// another origin.
    pub fn restore_image(&mut self, header: ImageHeader, entries: Vec<SyncEntry>, resume: bool) {
        self.restore_image_with(header, entries, resume, false);
    }

    /// [`Store::restore_image`] for a background save's keys, where a key
    /// may appear more than once (it moved while the save stepped): the
    /// later entry is the newer state and replaces the earlier.
    pub fn restore_stepped_image(
        &mut self,
        header: ImageHeader,
        entries: Vec<SyncEntry>,
        resume: bool,
    ) {
        self.restore_image_with(header, entries, resume, true);
    }

    fn restore_image_with(
        &mut self,
        header: ImageHeader,
        entries: Vec<SyncEntry>,
        resume: bool,
        may_repeat: bool,
    ) {
        // A transfer under way must not take the image's keys for its own.
        self.state_merges += 1;
        self.dbs = (0..DB_COUNT).map(|_| Db::default()).collect();
        for (db, floor) in header.flush_floors.into_iter().enumerate().take(DB_COUNT) {
            self.dbs[db].flush_floor = floor;
        }
        let now = self.now_ms;
        for entry in entries {
            let db = entry.db as usize;
            if db < DB_COUNT {
                let database = &mut self.dbs[db];
                if may_repeat {
                    if let Some(slot) = database.keys.find(&entry.key) {
                        database.keys.remove(slot);
                    }
                    database.tombstones.remove(&entry.key);
                }
                Self::place(database, entry.key, entry.state, now);
            }
        }
        self.restore_libraries(header.functions);
        self.ctx = header.ctx;
        self.applied = header.applied;
        self.clock.observe(header.clock);
        if resume {
            self.replica = header.replica;
            self.last_seq = header.last_seq;
        } else {
            self.last_seq = 0;
        }
        // The log starts empty: a peer behind the restored seq needs a
        // full sync, which `since` tells it.
        self.log = super::DeltaLog::new(self.log.cap_bytes());
        self.log.start_after(self.last_seq);
    }
}
