//! A background save's work, without its thread: list the keys and start
//! capturing every change ([`SteppedSave::begin`]), encode the keys a few
//! at a time ([`SteppedSave::step`], each with the store locked), then take
//! the capture off and assemble the file ([`SteppedSave::end`]). Between
//! steps the node serves as usual. `super::Persistence::bgsave` drives it
//! from a thread; tests drive it by hand, interleaving writes.
//!
//! Why the result is right: the header is the state at `begin`, each key
//! is as of its own step, and the captured changes are everything applied
//! from `begin` to `end`, in order. Loading replays the changes over the
//! keys; applying a change is a join, so a key that already held it is
//! unchanged, and every key ends as it was at `end`. A key created after
//! `begin` is not listed, and its whole history is in the capture; a key
//! whose tombstone was collected before its step is skipped, as a later
//! collection would have dropped it anyway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::aof::CapturedRecords;
use super::snapshot::{SnapshotMeta, SteppedSnapshot, Written};
use crate::store::Store;

/// A background save in progress.
pub struct SteppedSave {
    meta: SnapshotMeta,
    /// Every key name at `begin`, in the order the steps encode them.
    names: Vec<(u8, Bytes)>,
    next: usize,
    file: SteppedSnapshot,
    capture: Arc<CapturedRecords>,
}

impl SteppedSave {
    /// Lists every key and installs the capture, with the store locked.
    /// `meta` is the header as of now (its key count is set at the end).
    pub fn begin(store: &mut Store, meta: SnapshotMeta) -> SteppedSave {
        let names = store.image_names();
        let capture = Arc::new(CapturedRecords::default());
        store.set_capture(Some(capture.clone()));
        SteppedSave {
            meta,
            names,
            next: 0,
            file: SteppedSnapshot::default(),
            capture,
        }
    }

    /// Encodes the next keys, at most `max_keys` of them and, checked
    /// every 64 keys, for at most `max_time`. Returns whether keys remain.
    pub fn step(
        &mut self,
        store: &Store,
        max_keys: usize,
        max_time: Duration,
    ) -> std::io::Result<bool> {
        let started = Instant::now();
        let first = self.next;
        let mut end = first;
        while end < self.names.len() && end - first < max_keys.max(1) {
            end += 1;
            if (end - first).is_multiple_of(64) && started.elapsed() >= max_time {
                break;
            }
        }
        self.file.push_chunk(
            self.names[first..end]
                .iter()
                .filter_map(|(db, key)| store.image_state(*db, key).map(|state| (*db, key, state))),
        )?;
        self.next = end;
        Ok(!self.done())
    }

    /// Whether every listed key has been encoded.
    pub fn done(&self) -> bool {
        self.next >= self.names.len()
    }

    /// Listed keys encoded so far (INFO's `current_save_keys_processed`).
    pub fn processed(&self) -> u64 {
        self.next as u64
    }

    /// Listed keys in all.
    pub fn total(&self) -> u64 {
        self.names.len() as u64
    }

    /// Bytes of changes captured so far.
    pub fn captured_bytes(&self) -> usize {
        self.capture.len()
    }

    /// Takes the capture off (with the store locked): the save's state is
    /// the store's now. Keys not stepped through yet are encoded here
    /// first. The file is assembled from the result, off the lock.
    pub fn end(mut self, store: &mut Store) -> std::io::Result<EndedSave> {
        while self.step(store, usize::MAX, Duration::MAX)? {}
        store.set_capture(None);
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
        store.set_capture(None);
    }
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
