//! The store's journal hook: every change to the replicated state that
//! does not come from a local command's batch alone is also handed to a
//! [`Journal`] (the append-only file, `crate::persist::aof`), in the order
//! the store applies it, with the store locked. Replaying the same calls in
//! the same order on top of the same starting image gives the same state
//! ([`Store::replay_batch`] and the `sync_*` calls of the replication link).

use std::sync::Arc;

use super::sync::{SyncEntry, SyncScope};
use super::{ApplyError, Batch, Store};
use crate::crdt::{CausalContext, FunctionLibraries, VersionVector};

/// Where the store's changes are also written. Called with the store
/// locked; an implementation must not call back into the store.
pub trait Journal: Send + Sync {
    /// A batch: a local command's, or one applied from a peer.
    fn batch(&self, batch: &Batch);
    /// A state transfer from a peer begins (`transfer` names it until its
    /// end; transfers from several peers may interleave).
    fn sync_begin(
        &self,
        transfer: u64,
        scope: &SyncScope,
        ctx: &CausalContext,
        applied: &VersionVector,
        functions: Option<&FunctionLibraries>,
    );
    /// Key states of a transfer, merged with the sender's context `ctx`.
    fn sync_chunk(&self, transfer: u64, ctx: &CausalContext, entries: &[SyncEntry]);
    /// The transfer ended and was finished (see `Store::finish_sync`).
    fn sync_end(&self, transfer: u64);
    /// A full transfer's FLUSHDB floors were adopted
    /// (`Store::adopt_flush_floors`).
    fn flush_floors(&self, floors: &[VersionVector]);
}

impl Store {
    /// Installs (or removes) the journal.
    pub fn set_journal(&mut self, journal: Option<Arc<dyn Journal>>) {
        self.journal = journal;
    }

    pub fn journal(&self) -> Option<&Arc<dyn Journal>> {
        self.journal.as_ref()
    }

    /// A fresh id for a state transfer's journal records.
    pub fn next_transfer_id(&mut self) -> u64 {
        self.transfers_started += 1;
        self.transfers_started
    }

    /// Applies a journaled batch at start: like [`Store::apply_remote`],
    /// but a batch of this node's own id is accepted too (a node resuming
    /// its incarnation replays what it wrote), and then moves this node's
    /// sequence on to it. Nothing is journaled again.
    pub fn replay_batch(&mut self, batch: &Batch) -> Result<bool, ApplyError> {
        let applied = self.apply_batch(batch)?;
        if applied && batch.origin == self.replica {
            self.last_seq = self.last_seq.max(batch.last_seq);
            self.log.start_after(self.last_seq);
        }
        Ok(applied)
    }

    /// After a replay: this node's sequence resumes at what its context
    /// holds of its own id (a base image written by this incarnation may
    /// hold writes no replayed batch repeats).
    pub fn resume_own_sequence(&mut self) {
        let own = self.applied.get(self.replica);
        if own > self.last_seq {
            self.last_seq = own;
            self.log.start_after(self.last_seq);
        }
    }
}
