//! The store's journal hooks: every change to the replicated state (local
//! batches, batches from peers, state transfers, adopted FLUSHDB floors) is
//! also handed to each installed [`Journal`] in the order the store applies
//! it, with the store locked. Two can be installed: the append-only file
//! (`crate::persist::aof`) and a capture that records what changes while a
//! background save scans the keyspace in steps (`crate::persist`). Replaying
//! the same calls in the same order on top of the same starting image gives
//! the same state ([`Store::replay_batch`] and the `sync_*` calls of the
//! replication link).

use std::collections::BTreeMap;
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
    /// `resumed`: the transfer began before this journal was installed, so
    /// what it merged before is in the journal's base, not in its records.
    fn sync_begin(
        &self,
        transfer: u64,
        scope: &SyncScope,
        ctx: &CausalContext,
        applied: &VersionVector,
        functions: Option<&FunctionLibraries>,
        resumed: bool,
    );
    /// Key states of a transfer, merged with the sender's context `ctx`.
    fn sync_chunk(&self, transfer: u64, ctx: &CausalContext, entries: &[SyncEntry]);
    /// The transfer ended and was finished (see `Store::finish_sync`).
    fn sync_end(&self, transfer: u64);
    /// A full transfer's FLUSHDB floors were adopted
    /// (`Store::adopt_flush_floors`).
    fn flush_floors(&self, floors: &[VersionVector]);
}

/// What a transfer that has begun and not ended said at its begin (a
/// capture installed mid-transfer starts with it).
struct OpenTransfer {
    scope: SyncScope,
    ctx: CausalContext,
    applied: VersionVector,
    functions: Option<FunctionLibraries>,
}

/// How many unended transfers are remembered (far more than peers: a
/// transfer whose link dropped never ends).
const OPEN_TRANSFERS: usize = 64;

/// The installed journals and the transfers under way.
#[derive(Default)]
pub(super) struct Journals {
    aof: Option<Arc<dyn Journal>>,
    capture: Option<Arc<dyn Journal>>,
    open_transfers: BTreeMap<u64, OpenTransfer>,
}

impl Journals {
    fn each(&self) -> impl Iterator<Item = &Arc<dyn Journal>> {
        self.aof.iter().chain(self.capture.iter())
    }

    pub(super) fn batch(&self, batch: &Batch) {
        for j in self.each() {
            j.batch(batch);
        }
    }

    pub(super) fn flush_floors(&self, floors: &[VersionVector]) {
        for j in self.each() {
            j.flush_floors(floors);
        }
    }
}

impl Store {
    /// Installs (or removes) the append-only file's journal.
    pub fn set_journal(&mut self, journal: Option<Arc<dyn Journal>>) {
        self.journals.aof = journal;
    }

    /// Installs (or removes) the background save's capture. A capture
    /// installed while transfers are under way first gets their begins,
    /// marked resumed.
    pub fn set_capture(&mut self, capture: Option<Arc<dyn Journal>>) {
        if let Some(c) = &capture {
            for (&id, t) in &self.journals.open_transfers {
                c.sync_begin(id, &t.scope, &t.ctx, &t.applied, t.functions.as_ref(), true);
            }
        }
        self.journals.capture = capture;
    }

    /// Whether any journal is installed.
    pub fn journaling(&self) -> bool {
        self.journals.aof.is_some() || self.journals.capture.is_some()
    }

    /// A state transfer from a peer begins: journaled, and remembered until
    /// its end.
    pub fn journal_sync_begin(
        &mut self,
        transfer: u64,
        scope: &SyncScope,
        ctx: &CausalContext,
        applied: &VersionVector,
        functions: Option<&FunctionLibraries>,
    ) {
        for j in self.journals.each() {
            j.sync_begin(transfer, scope, ctx, applied, functions, false);
        }
        let open = &mut self.journals.open_transfers;
        open.insert(
            transfer,
            OpenTransfer {
                scope: scope.clone(),
                ctx: ctx.clone(),
                applied: applied.clone(),
                functions: functions.cloned(),
            },
        );
        while open.len() > OPEN_TRANSFERS {
            open.pop_first();
        }
    }

    /// Key states of a transfer, journaled before they are merged.
    pub fn journal_sync_chunk(&self, transfer: u64, ctx: &CausalContext, entries: &[SyncEntry]) {
        for j in self.journals.each() {
            j.sync_chunk(transfer, ctx, entries);
        }
    }

    /// A transfer ended (after `Store::finish_sync`).
    pub fn journal_sync_end(&mut self, transfer: u64) {
        self.journals.open_transfers.remove(&transfer);
        for j in self.journals.each() {
            j.sync_end(transfer);
        }
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
