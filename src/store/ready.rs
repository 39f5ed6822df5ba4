//! [`ReadyKeys`]: which keys that blocked clients (BLPOP, BLMOVE, BZPOPMIN
//! and the rest) wait on have received list or sorted-set elements since
//! the last drain — by a local
//! write or a remote delta. The store only records; whoever holds the
//! store lock after a command or a remote batch drains the set and wakes
//! the waiters (`ServerState::signal_ready_keys`).
//!
//! Only watched keys are recorded, so with no blocked client the cost of a
//! write is one emptiness check, and the set never outgrows the keys
//! blocked clients name.

use std::collections::HashMap;

use bytes::Bytes;

use crate::crdt::{CollDelta, KeyDelta};

/// Watched keys (with how many blocked clients watch each) and the ones
/// that became ready.
#[derive(Default)]
pub struct ReadyKeys {
    watched: HashMap<(usize, Bytes), usize, foldhash::fast::RandomState>,
    ready: Vec<(usize, Bytes)>,
}

impl ReadyKeys {
    /// A blocked client starts waiting on `key` in `db`.
    pub fn watch(&mut self, db: usize, key: &Bytes) {
        *self.watched.entry((db, key.clone())).or_insert(0) += 1;
    }

    /// A blocked client stops waiting on `key` (woken, timed out, gone).
    pub fn unwatch(&mut self, db: usize, key: &Bytes) {
        let entry = (db, key.clone());
        if let Some(count) = self.watched.get_mut(&entry) {
            *count -= 1;
            if *count == 0 {
                self.watched.remove(&entry);
            }
        }
    }

    /// Records `key` as ready if it is watched and `delta` adds list or
    /// sorted-set elements to it.
    pub fn note(&mut self, db: usize, key: &[u8], delta: &KeyDelta) {
        if self.watched.is_empty() {
            return;
        }
        let adds_elements = delta.colls.iter().any(|c| match c {
            CollDelta::List(d) => !d.adds.is_empty(),
            CollDelta::ZSet(d) => d.changes.iter().any(|change| change.add.is_some()),
            // New entries, or a group change (XGROUP DESTROY ends waits).
            // New entries, a destroyed group, or the stream itself gone
            // (its metadata removed and not replaced): blocked group
            // readers answer then.
            CollDelta::Stream(d) => {
                !d.adds.is_empty()
                    || d.groups.iter().any(|g| g.add.is_none())
                    || (d.meta_adds.is_empty() && !d.meta_removes.is_empty())
            }
            _ => false,
        });
        if !adds_elements {
            return;
        }
        let entry = (db, Bytes::copy_from_slice(key));
        if self.watched.contains_key(&entry) && !self.ready.contains(&entry) {
            self.ready.push(entry);
        }
    }

    /// Records `key` as ready if it is watched, whatever changed it (a
    /// state merged from a peer's full sync).
    pub fn note_any(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        let entry = (db, Bytes::copy_from_slice(key));
        if self.watched.contains_key(&entry) && !self.ready.contains(&entry) {
            self.ready.push(entry);
        }
    }

    /// Records every watched key of `db` as ready (a FLUSHDB/FLUSHALL:
    /// blocked stream-group readers answer that their key is gone).
    pub fn note_db(&mut self, db: usize) {
        let keys: Vec<(usize, Bytes)> = (self.watched.keys())
            .filter(|(d, _)| *d == db)
            .cloned()
            .collect();
        for entry in keys {
            if !self.ready.contains(&entry) {
                self.ready.push(entry);
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The keys recorded since the last call.
    pub fn take(&mut self) -> Vec<(usize, Bytes)> {
        std::mem::take(&mut self.ready)
    }
}
