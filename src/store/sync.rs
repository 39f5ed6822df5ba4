//! Replication support in the store: what a state transfer reads and
//! writes. A sender snapshots the names of every key (values and
//! tombstones) with its causal context and applied vector at one instant,
//! then reads the states chunk by chunk (each chunk with the context of the
//! moment it was read); the receiver joins each state with
//! [`KeyState::join`], then [`Store::finish_sync`] joins the keys the sender
//! did not mention against an empty state and raises the receiver's
//! context and applied vector. Also the per-range digests anti-entropy
//! compares. Nothing here knows sockets or the wire format.

use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{key_digest, Store};
use crate::crdt::{CausalContext, FunctionLibraries, Hlc, KeyState, VersionVector};

/// Number of key ranges anti-entropy compares (a key's range is
/// [`bucket_of`]).
pub const BUCKETS: usize = 256;

/// One key's full CRDT state in a state transfer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncEntry {
    pub db: u8,
    pub key: Bytes,
    pub state: KeyState,
}

/// Which keys a state transfer covers: everything (full sync) or some
/// ranges (anti-entropy repair).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncScope {
    All,
    Buckets(Vec<u16>),
}

impl SyncScope {
    pub fn contains(&self, db: u8, key: &[u8]) -> bool {
        match self {
            SyncScope::All => true,
            SyncScope::Buckets(b) => b.contains(&bucket_of(db, key)),
        }
    }
}

/// The range of a key: FNV-1a of the database and key, folded to a byte.
/// Deterministic across nodes, builds and architectures.
pub fn bucket_of(db: u8, key: &[u8]) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&db).chain(key) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h ^ (h >> 32) ^ (h >> 16) ^ (h >> 8)) & (BUCKETS as u64 - 1)) as u16
}

/// The keys a state transfer mentioned so far, per database.
/// [`Store::finish_sync`] asks it about every key the node holds, to find
/// those the sender did not mention. Hashing every key twice was the
/// largest cost of a full sync, so the common case avoids it: a node that
/// held nothing when the transfer began (a new or emptied node joining)
/// and that nothing else wrote while it ran holds only mentioned keys, and
/// needs no question asked. That is checked at the end from the store's
/// counters (its own sequence, its applied vector, the state merges it
/// did); until then the names are only listed, and hashed if the check
/// fails.
#[derive(Debug, Default)]
pub struct MentionedKeys {
    /// The store's counters when the transfer began, if it was empty then.
    sole_writer_since: Option<StoreCounters>,
    /// Names listed but not hashed yet.
    listed: Vec<(u8, Bytes)>,
    dbs: Vec<HashSet<Bytes, foldhash::fast::RandomState>>,
}

/// What changes whenever anything but one state transfer writes a key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreCounters {
    own_seq: u64,
    applied: VersionVector,
    state_merges: u64,
}

impl MentionedKeys {
    /// Where the names go.
    fn hash_in(&mut self, db: u8, key: Bytes) {
        let db = db as usize;
        if self.dbs.len() <= db {
            self.dbs.resize_with(db + 1, Default::default);
        }
        self.dbs[db].insert(key);
    }

    pub fn insert(&mut self, db: u8, key: Bytes) {
        if self.sole_writer_since.is_some() {
            self.listed.push((db, key));
        } else {
            self.hash_in(db, key);
        }
    }

    /// Whether a hashed name was mentioned (after [`Self::hash_listed`]).
    fn contains(&self, db: u8, key: &[u8]) -> bool {
        self.dbs
            .get(db as usize)
            .is_some_and(|set| set.contains(key))
    }

    /// Hashes what was only listed, for the per-key questions.
    fn hash_listed(&mut self) {
        self.sole_writer_since = None;
        for (db, key) in std::mem::take(&mut self.listed) {
            self.hash_in(db, key);
        }
    }
}

impl Store {
    fn counters(&self) -> StoreCounters {
        StoreCounters {
            own_seq: self.last_seq,
            applied: self.applied.clone(),
            state_merges: self.state_merges,
        }
    }

    /// Whether no key or tombstone is held in any database.
    fn holds_nothing(&self) -> bool {
        self.dbs
            .iter()
            .all(|d| d.keys.is_empty() && d.tombstones.is_empty())
    }

    /// The record of mentioned keys for a transfer beginning now; `expected`
    /// is the count the sender announced (a hint, capped: a peer's claim is
    /// not trusted with memory).
    /// An empty node also makes room for the keys in its first database,
    /// where most datasets live.
    pub fn mentioned_keys_for_transfer(&mut self, expected: u64) -> MentionedKeys {
        const MOST_RESERVED: u64 = 1 << 22;
        let mut mentioned = MentionedKeys::default();
        if self.holds_nothing() {
            let room = expected.min(MOST_RESERVED) as usize;
            mentioned.sole_writer_since = Some(self.counters());
            mentioned.listed = Vec::with_capacity(room);
            self.dbs[0].keys.reserve(room);
        }
        mentioned
    }
}

/// What a sender captures at the start of a state transfer.
pub struct SyncSnapshot {
    /// Every key holding state (value or tombstone) in scope.
    pub names: Vec<(u8, Bytes)>,
    pub ctx: CausalContext,
    pub applied: VersionVector,
    pub clock: Hlc,
    /// The function libraries at that instant (full transfers only: they
    /// are small and not in any key range).
    pub functions: Option<FunctionLibraries>,
    /// Per database, its FLUSHDB floor (full transfers only; empty
    /// otherwise).
    pub flush_floors: Vec<VersionVector>,
}

impl Store {
    /// Every dot seen here.
    pub fn causal_context(&self) -> &CausalContext {
        &self.ctx
    }

    /// Names of the keys in scope with the context and applied vector of
    /// this instant (one lock hold; a copy of each name).
    pub fn sync_snapshot(&self, scope: &SyncScope) -> SyncSnapshot {
        let mut names = Vec::new();
        for (db, database) in self.dbs.iter().enumerate() {
            let db = db as u8;
            for (key, _) in database.keys.iter() {
                if scope.contains(db, key) {
                    names.push((db, Bytes::copy_from_slice(key)));
                }
            }
            for key in database.tombstones.keys() {
                if scope.contains(db, key) {
                    names.push((db, key.clone()));
                }
            }
        }
        SyncSnapshot {
            names,
            ctx: self.ctx.clone(),
            applied: self.applied.clone(),
            clock: self.clock.last(),
            functions: (*scope == SyncScope::All).then(|| self.functions.clone()),
            flush_floors: if *scope == SyncScope::All {
                self.dbs.iter().map(|d| d.flush_floor.clone()).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Adopts a full transfer's FLUSHDB floors, as if each flush arrived
    /// here: a floor covers writes of other origins the flush removed that
    /// this node has not applied yet (they may still reach it, late, from
    /// their origin), and whatever this node holds of them already goes.
    /// Journaled. Extra databases are ignored.
    pub fn adopt_flush_floors(&mut self, floors: &[VersionVector]) {
        if floors.iter().all(|f| f.is_empty()) {
            return;
        }
        self.journals.flush_floors(floors);
        self.apply_flush_floors(floors);
    }

    /// [`Store::adopt_flush_floors`] without the journal (replay).
    pub fn apply_flush_floors(&mut self, floors: &[VersionVector]) {
        for (db, floor) in floors.iter().enumerate().take(self.dbs.len()) {
            if !floor.is_empty() {
                self.apply_remote_flush(db, floor);
            }
        }
    }

    /// The state a key holds now, wherever it lives (value or tombstone);
    /// empty if it holds none.
    pub fn state_of(&self, db: usize, key: &[u8]) -> KeyState {
        let database = &self.dbs[db];
        match database.keys.find(key) {
            Some(slot) => database.keys.state(slot).clone(),
            None => database.tombstones.get(key).cloned().unwrap_or_default(),
        }
    }

    /// Advances the clock past a peer's (state transfers carry it).
    pub fn observe_clock(&mut self, hlc: Hlc) {
        self.clock.observe(hlc);
    }

    /// Joins a peer's state of one key (read when the peer's context was
    /// `sender_ctx`) into this node's, and records the dots adopted.
    pub fn merge_remote_state(
        &mut self,
        db: usize,
        key: &[u8],
        state: &KeyState,
        sender_ctx: &CausalContext,
    ) {
        self.state_merges += 1;
        self.ready_keys.note_any(db, key);
        let database = &mut self.dbs[db];
        if let Some(slot) = database.keys.find(key) {
            let joined = database.keys.state(slot).join(&self.ctx, state, sender_ctx);
            let ctx = &mut self.ctx;
            joined.for_each_dot(&mut |dot| ctx.insert(dot));
            *database.keys.state_mut(slot) = joined;
            Self::settle(database, slot);
            return;
        }
        let (owned_key, current) = database
            .tombstones
            .remove_entry(key)
            .unwrap_or_else(|| (Bytes::copy_from_slice(key), KeyState::new()));
        let joined = current.join(&self.ctx, state, sender_ctx);
        let ctx = &mut self.ctx;
        joined.for_each_dot(&mut |dot| ctx.insert(dot));
        Self::place(database, owned_key, joined, self.now_ms);
    }

    /// Ends a state transfer: every key in `scope` the sender did not
    /// mention was absent there at some instant after `sender_ctx` was
    /// taken, so it is joined with an empty state under that context. A
    /// full transfer (`applied` given) then adopts the sender's context and
    /// applied vector: this node now reflects every batch the sender had
    /// applied when the transfer began.
    pub fn finish_sync(
        &mut self,
        scope: &SyncScope,
        mentioned: &mut MentionedKeys,
        sender_ctx: &CausalContext,
        applied: Option<&VersionVector>,
    ) {
        let mut unmentioned = Vec::new();
        let only_mentioned_keys_here = mentioned.sole_writer_since.as_ref().is_some_and(|then| {
            let now = self.counters();
            let others_merged = now.state_merges.checked_sub(mentioned.listed.len() as u64);
            then.own_seq == now.own_seq
                && then.applied == now.applied
                && others_merged == Some(then.state_merges)
        });
        if !only_mentioned_keys_here {
            mentioned.hash_listed();
        }
        for (db, database) in self.dbs.iter().enumerate() {
            if only_mentioned_keys_here {
                break;
            }
            let db8 = db as u8;
            let tombstones = database.tombstones.iter().map(|(k, s)| (k.as_ref(), s));
            let names = database.keys.iter().chain(tombstones);
            for (key, state) in names {
                // The dot test first: it needs no hashing, and a key the
                // sender never saw is kept whether mentioned or not.
                if state.any_dot(|dot| sender_ctx.contains(dot))
                    && scope.contains(db8, key)
                    && !mentioned.contains(db8, key)
                {
                    unmentioned.push((db, Bytes::copy_from_slice(key)));
                }
            }
        }
        let empty = KeyState::new();
        for (db, key) in unmentioned {
            self.merge_remote_state(db, &key, &empty, sender_ctx);
        }
        if let Some(applied) = applied {
            self.ctx.merge(sender_ctx);
            for (replica, seq) in applied.iter() {
                if replica != self.replica {
                    self.applied.raise(replica, seq);
                }
            }
        }
    }

    /// One bounded step of [`Store::bucket_digests`]: folds the visible
    /// keys of up to `count` slots from `cursor` (database, slot position)
    /// into `acc` (of [`BUCKETS`] entries). Returns the next cursor, `None`
    /// when every database is done. Anti-entropy runs it one step per lock
    /// hold, so a large keyspace never stalls clients.
    pub fn bucket_digests_step(
        &self,
        cursor: (usize, u64),
        count: usize,
        acc: &mut [[u8; 20]],
    ) -> Option<(usize, u64)> {
        let (db, position) = cursor;
        let now = self.now_ms;
        let keys = &self.dbs.get(db)?.keys;
        let next = keys.scan(position, count, |slot| {
            let (key, state) = (keys.key(slot), keys.state(slot));
            if state.is_visible(now) {
                let bucket = &mut acc[bucket_of(db as u8, key) as usize];
                for (a, b) in bucket.iter_mut().zip(key_digest(db, key, state)) {
                    *a ^= b;
                }
            }
        });
        match next {
            0 if db + 1 < self.dbs.len() => Some((db + 1, 0)),
            0 => None,
            n => Some((db, n)),
        }
    }

    /// Per range, the XOR of [`key_digest`] over the visible keys in it.
    /// Equal on converged nodes.
    pub fn bucket_digests(&self) -> Vec<[u8; 20]> {
        let now = self.now_ms;
        let mut out = vec![[0u8; 20]; BUCKETS];
        for (db, database) in self.dbs.iter().enumerate() {
            for (key, state) in database.keys.iter() {
                if !state.is_visible(now) {
                    continue;
                }
                let acc = &mut out[bucket_of(db as u8, key) as usize];
                for (a, b) in acc.iter_mut().zip(key_digest(db, key, state)) {
                    *a ^= b;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{ReplicaId, TtlChange};
    use crate::store::delta::Batch;

    fn set(store: &mut Store, key: &str, value: &str) {
        store.begin_command();
        store.write_key(0, key.as_bytes(), |state, w| {
            let ts = w.ts();
            (
                state.delta_set(
                    Bytes::copy_from_slice(value.as_bytes()),
                    ts,
                    TtlChange::Clear,
                    &mut || w.next_dot(),
                ),
                (),
            )
        });
        store.finish_batch();
    }

    fn full_transfer(from: &Store, to: &mut Store) {
        let snap = from.sync_snapshot(&SyncScope::All);
        to.adopt_flush_floors(&snap.flush_floors);
        transfer_keys(from, to, snap, MentionedKeys::default(), |_| {});
    }

    /// Ships `snap`'s keys from `from` to `to` and finishes the transfer,
    /// running `during` on the receiver half-way through.
    fn transfer_keys(
        from: &Store,
        to: &mut Store,
        snap: SyncSnapshot,
        mut mentioned: MentionedKeys,
        during: impl FnOnce(&mut Store),
    ) {
        let half = snap.names.len() / 2;
        let mut during = Some(during);
        for (i, (db, key)) in snap.names.iter().enumerate() {
            if i == half {
                (during.take().unwrap())(to);
            }
            let state = from.state_of(*db as usize, key);
            to.merge_remote_state(*db as usize, key, &state, from.causal_context());
            mentioned.insert(*db, key.clone());
        }
        to.finish_sync(
            &SyncScope::All,
            &mut mentioned,
            &snap.ctx,
            Some(&snap.applied),
        );
    }

    #[test]
    fn a_full_transfer_makes_the_receiver_converge_and_resume_in_order() {
        let mut a = Store::new(ReplicaId(1));
        let mut b = Store::new(ReplicaId(2));
        set(&mut a, "x", "1");
        set(&mut a, "y", "2");
        set(&mut b, "y", "3");
        set(&mut b, "z", "4");
        full_transfer(&a, &mut b);
        assert_eq!(b.version_vector().get(ReplicaId(1)), 2);
        // A's next batch applies in order at B.
        set(&mut a, "x", "5");
        let batch = a.delta_log().since(2).unwrap().next().unwrap().clone();
        assert_eq!(b.apply_remote(&batch), Ok(true));
        // And B's writes reach A by a transfer the other way.
        full_transfer(&b, &mut a);
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn a_key_the_sender_deleted_is_deleted_by_the_transfer() {
        let mut a = Store::new(ReplicaId(1));
        let mut b = Store::new(ReplicaId(2));
        set(&mut a, "gone", "v");
        let batch = a.delta_log().since(0).unwrap().next().unwrap().clone();
        b.apply_remote(&batch).unwrap();
        a.begin_command();
        a.delete_key(0, b"gone");
        a.finish_batch();
        full_transfer(&a, &mut b);
        b.begin_command();
        assert!(!b.exists(0, b"gone"));
        assert_eq!(a.digest(), b.digest());
    }

    /// A transfer into an empty node, with `during` run on the receiver
    /// half-way through.
    fn transfer_into_empty(from: &Store, to: &mut Store, during: impl FnOnce(&mut Store)) {
        assert!(to.holds_nothing());
        let snap = from.sync_snapshot(&SyncScope::All);
        let mentioned = to.mentioned_keys_for_transfer(snap.names.len() as u64);
        assert!(mentioned.sole_writer_since.is_some());
        transfer_keys(from, to, snap, mentioned, during);
    }

    /// C writes `x`; A applies it, deletes it and collects the tombstone,
    /// so A's transfer does not mention `x` though its context covers C's
    /// write. Returns A and C's batch.
    fn a_forgot_x() -> (Store, Batch) {
        let mut c = Store::new(ReplicaId(3));
        set(&mut c, "x", "from-c");
        let from_c = c.delta_log().since(0).unwrap().next().unwrap().clone();
        let mut a = Store::new(ReplicaId(1));
        a.apply_remote(&from_c).unwrap();
        for i in 0..10 {
            set(&mut a, &format!("k{i}"), "v");
        }
        a.begin_command();
        a.delete_key(0, b"x");
        a.finish_batch();
        let mut stable = a.version_vector().clone();
        stable.raise(ReplicaId(2), 0);
        a.collect_garbage(&stable);
        assert!(a.state_of(0, b"x").is_empty(), "the tombstone is collected");
        (a, (*from_c).clone())
    }

    #[test]
    fn an_empty_receiver_written_only_by_the_transfer_skips_the_unmentioned_scan() {
        let (mut a, _) = a_forgot_x();
        let mut b = Store::new(ReplicaId(2));
        transfer_into_empty(&a, &mut b, |_| {});
        assert_eq!(a.digest(), b.digest());
        assert_eq!(b.version_vector().get(ReplicaId(3)), 1);
    }

    #[test]
    fn a_batch_applied_during_a_transfer_into_an_empty_node_is_still_checked_against_the_sender() {
        let (mut a, from_c) = a_forgot_x();
        let mut b = Store::new(ReplicaId(2));
        // C's write reaches B directly while A's transfer runs: A saw it
        // and deleted it, so the end of the transfer must remove it.
        transfer_into_empty(&a, &mut b, |b| {
            assert_eq!(b.apply_remote(&from_c), Ok(true));
            b.begin_command();
            assert!(b.exists(0, b"x"));
        });
        b.begin_command();
        assert!(!b.exists(0, b"x"), "A's delete of x holds");
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn a_local_write_during_a_transfer_into_an_empty_node_survives_it() {
        let (a, _) = a_forgot_x();
        let mut b = Store::new(ReplicaId(2));
        transfer_into_empty(&a, &mut b, |b| set(b, "mine", "v"));
        b.begin_command();
        assert!(b.exists(0, b"mine"));
        assert!(b.exists(0, b"k0") && b.exists(0, b"k9"));
    }

    #[test]
    fn a_write_a_flush_removed_stays_removed_at_a_node_that_joined_by_full_sync() {
        // C writes x; F sees it and flushes db 0; A applies F's flush before
        // C's write, so A keeps a floor for it. B joins by a full transfer
        // from A, then C's write reaches A and B late.
        let mut c = Store::new(ReplicaId(3));
        set(&mut c, "x", "from-c");
        let from_c = c.delta_log().since(0).unwrap().next().unwrap().clone();
        let mut f = Store::new(ReplicaId(4));
        f.apply_remote(&from_c).unwrap();
        f.begin_command();
        f.flush_db(0);
        f.finish_batch();
        let flush = f.delta_log().since(0).unwrap().next().unwrap().clone();
        let mut a = Store::new(ReplicaId(1));
        a.apply_remote(&flush).unwrap();
        let mut b = Store::new(ReplicaId(2));
        full_transfer(&a, &mut b);
        for node in [&mut a, &mut b] {
            node.apply_remote(&from_c).unwrap();
            node.begin_command();
            assert!(!node.exists(0, b"x"), "the flush removed x");
        }
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn buckets_spread_keys_and_digests_match_when_equal() {
        let mut seen = HashSet::new();
        for i in 0..2000 {
            seen.insert(bucket_of(0, format!("key{i}").as_bytes()));
        }
        assert!(seen.len() > 200);
        let mut a = Store::new(ReplicaId(1));
        set(&mut a, "k", "v");
        let mut b = Store::new(ReplicaId(2));
        assert_ne!(a.bucket_digests(), b.bucket_digests());
        full_transfer(&a, &mut b);
        assert_eq!(a.bucket_digests(), b.bucket_digests());
        for i in 0..100 {
            set(&mut a, &format!("more{i}"), "v");
        }
        let mut acc = vec![[0u8; 20]; BUCKETS];
        let mut cursor = Some((0, 0));
        while let Some(c) = cursor {
            cursor = a.bucket_digests_step(c, 7, &mut acc);
        }
        assert_eq!(acc, a.bucket_digests(), "stepwise equals in one go");
    }
}
