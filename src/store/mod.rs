//! The keyspace of one node: 16 logical databases of CRDT key states, the
//! node's HLC and causal context, expiry, and the outgoing delta log.
//!
//! Local writes go through [`Store::write_key`] / [`Store::flush_db`]: the
//! mutator computes a delta, the store applies that same delta locally and
//! appends it to the command's batch. The dispatcher closes the batch with
//! [`Store::finish_batch`], which hands it to the bounded [`DeltaLog`].
//! Remote batches enter through [`Store::apply_remote`]. Nothing here knows
//! RESP or sockets, and callers never hold the store lock across an await.
//!
//! Placement rule: a key with a value lives in `keys` (even when expired
//! but not yet collected); a key whose versions hold no value (TTL leftovers
//! of an expired key, a counter delete marker) lives in `tombstones` until
//! garbage collection finds it causally stable.

pub mod delta;
pub mod events;
pub mod evict;
pub mod functions;
pub mod image;
pub mod journal;
pub mod keyspace;
pub mod lazyfree;
pub mod memory;
pub mod pattern;
pub mod ready;
pub mod sync;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::crdt::{
    CausalContext, Dot, Hlc, HlcClock, KeyDelta, KeyState, ReplicaId, VersionVector,
};
pub use delta::{Batch, DeltaLog, Op};
pub use events::{EventCodes, Notifier, Presence};
pub use keyspace::{Keyspace, SlotId};

/// Number of logical databases (SELECT 0..15).
pub const DB_COUNT: usize = 16;

/// Default cap of the outgoing delta log.
pub const DEFAULT_DELTA_LOG_BYTES: usize = 16 * 1024 * 1024;

/// One logical database.
#[derive(Default)]
pub struct Db {
    pub keys: Keyspace,
    tombstones: HashMap<Bytes, KeyState, foldhash::fast::RandomState>,
    /// FLUSHDB contexts received ahead of what this node has seen: arriving
    /// versions they cover were flushed before they got here.
    flush_floor: VersionVector,
}

/// What a flush removed from one database, still allocated: dropping it
/// frees the memory (see [`lazyfree`]).
pub struct FlushedDb {
    keys: Keyspace,
    tombstones: HashMap<Bytes, KeyState, foldhash::fast::RandomState>,
}

impl FlushedDb {
    /// Keys and tombstones it holds (Redis counts a flushed database's
    /// keys as its lazyfree objects).
    pub fn objects(&self) -> usize {
        self.keys.len() + self.tombstones.len()
    }
}

/// Counters reported by INFO.
#[derive(Default, Debug, Clone)]
pub struct StoreStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub remote_batches_applied: u64,
    pub remote_batches_duplicate: u64,
    pub tombstones_collected: u64,
    /// Keys that became live with two types at once (concurrent creation
    /// with different types in different regions).
    pub type_conflicts: u64,
    /// Keys this node evicted under `maxmemory` (not those its peers
    /// evicted, which arrive as deletes).
    pub evicted_keys: u64,
}

/// Why a remote batch was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("batch from {origin} starts at seq {got}, expected {expected}")]
    Gap {
        origin: ReplicaId,
        expected: u64,
        got: u64,
    },
    #[error("batch names database {0}, outside 0..{DB_COUNT}")]
    BadDb(u8),
    #[error("batch from this node's own replica id")]
    OwnOrigin,
}

/// The batch of the command (or transaction) being executed.
#[derive(Default)]
struct OpenBatch {
    /// Local seq before the batch started; `None` while no batch is open.
    seq_before: Option<u64>,
    hlc: Hlc,
    ops: Vec<Op>,
    /// Per op, how the key's presence changed (keyspace events `new` and
    /// `del`); kept here because peers work it out for themselves.
    presence: Vec<Presence>,
}

/// What a mutator gets besides the key's state: fresh dots and the command's
/// timestamp.
pub struct WriteCtx<'a> {
    replica: ReplicaId,
    last_seq: &'a mut u64,
    ts: Hlc,
    rng: &'a mut SmallRng,
}

impl WriteCtx<'_> {
    pub fn next_dot(&mut self) -> Dot {
        *self.last_seq += 1;
        Dot::new(self.replica, *self.last_seq)
    }

    pub fn ts(&self) -> Hlc {
        self.ts
    }

    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// A random number in `0..n` (`n > 0`), for local picks (SPOP…).
    pub fn random(&mut self, n: usize) -> usize {
        use rand::Rng;
        self.rng.gen_range(0..n)
    }
}

pub struct Store {
    replica: ReplicaId,
    clock: HlcClock,
    /// Every dot seen (applied, or removed before it arrived): the CRDT's
    /// causal context.
    ctx: CausalContext,
    /// Per origin, the last batch seq applied here. Distinct from `ctx`: a
    /// dot can be in the context (a remove arrived via a third node) before
    /// the batch that carries it has been delivered.
    applied: VersionVector,
    last_seq: u64,
    dbs: Vec<Db>,
    open: OpenBatch,
    log: DeltaLog,
    now_ms: u64,
    time_override: Option<u64>,
    rng: SmallRng,
    watches: Watches,
    pub stats: StoreStats,
    /// Estimated tombstone bytes as of the last collection pass.
    tombstone_bytes: usize,
    /// Keys blocked clients wait on that received list elements.
    pub ready_keys: ready::ReadyKeys,
    /// Per-command statistics, error counts, the slow log and latency
    /// events, recorded by the dispatcher under this same lock.
    pub introspection: crate::commands::stats::Introspection,
    /// `DEBUG SET-ACTIVE-EXPIRE 0` turns the periodic expiry cycle off.
    pub active_expire: bool,
    /// No other region can ever write here (no peers and no peer port), so
    /// no write is concurrent with another and a command may store its
    /// result in whatever form is cheapest (bit writes fold into the
    /// string). `false` unless the server says so: stores in the in-process
    /// drivers replicate.
    pub single_region: bool,
    /// Whether closed batches go to the delta log. The server turns it off
    /// on a node with no peers and no peer port; the in-process drivers,
    /// which ship batches by hand, keep it on.
    pub keep_delta_log: bool,
    /// Key states joined from state transfers ([`Store::merge_remote_state`]),
    /// counted so a transfer can tell it was the only thing that wrote here
    /// (see [`sync::MentionedKeys`]).
    pub(super) state_merges: u64,
    /// Until this Unix ms (CLIENT PAUSE), expired keys are hidden from
    /// reads but not deleted or counted: a pause holds every write, and
    /// deleting an expired key is one (Redis does the same).
    expiry_held_until_ms: u64,
    /// Told about keyspace changes and peers' messages (the server installs
    /// its Pub/Sub layer).
    notifier: Option<std::sync::Arc<dyn Notifier>>,
    /// `maxmemory` settings, the eviction pool and its timers.
    eviction: evict::Eviction,
    /// Where every applied change is also written (the append-only file,
    /// a background save's capture).
    journals: journal::Journals,
    /// State transfers journaled so far (their ids).
    transfers_started: u64,
    /// While true, every key that leaves this node's dataset without a
    /// command naming it (expired here, or evicted) is listed in
    /// `removals` until [`Store::take_removals`] (a Redis replication
    /// stream turns them into DELs).
    pub record_removals: bool,
    removals: Vec<(usize, Bytes)>,
    /// The replicated function libraries (the scripting engine compiles
    /// what they hold; see [`functions`]).
    functions: crate::crdt::FunctionLibraries,
    /// Bumped on every change of `functions`, so the engine knows when to
    /// follow.
    functions_generation: u64,
}

/// Keys some client WATCHes, each with the watch clock of its last change
/// and how many watches hold it; empty (and free to check) when nobody
/// watches anything.
#[derive(Default)]
struct Watches {
    keys: HashMap<(usize, Bytes), WatchedKey, foldhash::fast::RandomState>,
    clock: u64,
}

struct WatchedKey {
    watchers: u32,
    changed_at: u64,
}

impl Watches {
    fn touch(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        // The map is keyed by owned bytes; the probe copies the key only
        // while some client watches something.
        if let Some(w) = self.keys.get_mut(&(db, Bytes::copy_from_slice(key))) {
            self.clock += 1;
            w.changed_at = self.clock;
        }
    }

    /// A flush of `db`: only the watched keys it held (`exists`) change,
    /// so a WATCH of an absent key survives it, as in Redis.
    fn touch_db(&mut self, db: usize, exists: impl Fn(&[u8]) -> bool) {
        self.clock += 1;
        let clock = self.clock;
        for ((d, key), w) in self.keys.iter_mut() {
            if *d == db && exists(key) {
                w.changed_at = clock;
            }
        }
    }
}

/// Wall-clock Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    pub fn new(replica: ReplicaId) -> Self {
        Store {
            replica,
            clock: HlcClock::new(),
            ctx: CausalContext::new(),
            applied: VersionVector::new(),
            last_seq: 0,
            dbs: (0..DB_COUNT).map(|_| Db::default()).collect(),
            open: OpenBatch::default(),
            log: DeltaLog::new(DEFAULT_DELTA_LOG_BYTES),
            now_ms: unix_ms(),
            time_override: None,
            rng: SmallRng::from_entropy(),
            watches: Watches::default(),
            stats: StoreStats::default(),
            tombstone_bytes: 0,
            ready_keys: ready::ReadyKeys::default(),
            introspection: Default::default(),
            active_expire: true,
            single_region: false,
            keep_delta_log: true,
            state_merges: 0,
            expiry_held_until_ms: 0,
            notifier: None,
            eviction: evict::Eviction::default(),
            record_removals: false,
            removals: Vec::new(),
            functions: Default::default(),
            functions_generation: 0,
            journals: Default::default(),
            transfers_started: 0,
        }
    }

    /// Installs who hears keyspace changes and peers' messages.
    pub fn set_notifier(&mut self, notifier: std::sync::Arc<dyn Notifier>) {
        self.notifier = Some(notifier);
    }

    /// The notifier, when it wants keyspace events now.
    fn key_listener(&self) -> Option<&std::sync::Arc<dyn Notifier>> {
        self.notifier.as_ref().filter(|n| n.wants_key_events())
    }

    /// How many ops the open batch holds (the dispatcher tags the ones a
    /// command adds with its keyspace events).
    pub fn open_ops_len(&self) -> usize {
        self.open.ops.len()
    }

    /// Gives the key ops from index `from` on their events: `tag` sees each
    /// op's database, key and presence change.
    pub fn tag_ops(
        &mut self,
        from: usize,
        mut tag: impl FnMut(usize, &[u8], Presence) -> EventCodes,
    ) {
        let open = &mut self.open;
        for (op, presence) in open.ops.iter_mut().zip(&open.presence).skip(from) {
            if let Op::Key {
                db, key, events, ..
            } = op
            {
                *events = tag(*db as usize, key, *presence);
            }
        }
    }

    /// What the open batch's ops from index `from` on touched: each key
    /// op's database and key, and `(db, None)` for a flush of `db`.
    pub fn touched_since(&self, from: usize) -> Vec<(usize, Option<Bytes>)> {
        self.open.ops[from.min(self.open.ops.len())..]
            .iter()
            .filter_map(|op| match op {
                Op::Key { db, key, .. } => Some((*db as usize, Some(key.clone()))),
                Op::Flush { db, .. } => Some((*db as usize, None)),
                Op::Message { .. } | Op::Library(_) => None,
            })
            .collect()
    }

    /// PUBLISH to peers: the message leaves in this command's batch.
    pub fn ship_message(&mut self, channel: Bytes, message: Bytes, shard: bool) {
        self.open_batch();
        self.open.ops.push(Op::Message {
            channel,
            message,
            shard,
        });
        self.open.presence.push(Presence::default());
    }

    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// Per origin, the last batch applied here (this node's own writes
    /// included): what replication acknowledges and resumes from.
    pub fn version_vector(&self) -> &VersionVector {
        &self.applied
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn clock(&self) -> &HlcClock {
        &self.clock
    }

    pub fn delta_log(&self) -> &DeltaLog {
        &self.log
    }

    pub fn delta_log_mut(&mut self) -> &mut DeltaLog {
        &mut self.log
    }

    pub fn db(&self, db: usize) -> &Db {
        &self.dbs[db]
    }

    // ----- time -----

    /// Reads the wall clock once for the command about to run; every expiry
    /// decision in the command uses this instant, like Redis.
    pub fn begin_command(&mut self) {
        self.now_ms = self.time_override.unwrap_or_else(unix_ms);
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Pins the store's clock (tests of expiry); `None` returns to wall time.
    pub fn set_time_override(&mut self, ms: Option<u64>) {
        self.time_override = ms;
        self.begin_command();
    }

    // ----- WATCH -----

    /// Starts watching `key`; returns the token EXEC compares with
    /// [`Store::watch_token`] to tell whether the key changed since.
    pub fn watch_key(&mut self, db: usize, key: &Bytes) -> u64 {
        let w = self
            .watches
            .keys
            .entry((db, key.clone()))
            .or_insert(WatchedKey {
                watchers: 0,
                changed_at: 0,
            });
        w.watchers += 1;
        w.changed_at
    }

    /// The change token of a watched key (see [`Store::watch_key`]).
    pub fn watch_token(&self, db: usize, key: &Bytes) -> u64 {
        self.watches
            .keys
            .get(&(db, key.clone()))
            .map_or(u64::MAX, |w| w.changed_at)
    }

    /// Keys some client currently WATCHes.
    pub fn watched_keys(&self) -> usize {
        self.watches.keys.len()
    }

    /// Releases one watch of `key`.
    pub fn unwatch_key(&mut self, db: usize, key: &Bytes) {
        let k = (db, key.clone());
        if let Some(w) = self.watches.keys.get_mut(&k) {
            w.watchers -= 1;
            if w.watchers == 0 {
                self.watches.keys.remove(&k);
            }
        }
    }

    // ----- reads -----

    /// The state of a visible key, expiring it lazily if its deadline
    /// passed; counts as an access for eviction (Redis's `lookupKey`).
    pub fn lookup(&mut self, db: usize, key: &[u8]) -> Option<&KeyState> {
        let slot = self.visible_slot(db, key)?;
        self.touch_slot(db, slot);
        Some(self.dbs[db].keys.state(slot))
    }

    /// Like [`Store::lookup`] without counting an access (TYPE, TTL,
    /// OBJECT, MEMORY USAGE: Redis's `LOOKUP_NOTOUCH`).
    pub fn lookup_untouched(&mut self, db: usize, key: &[u8]) -> Option<&KeyState> {
        let slot = self.visible_slot(db, key)?;
        Some(self.dbs[db].keys.state(slot))
    }

    /// Like [`Store::lookup`] but counts a keyspace hit or miss (read
    /// commands use this, as Redis does).
    pub fn lookup_read(&mut self, db: usize, key: &[u8]) -> Option<&KeyState> {
        match self.visible_slot(db, key) {
            Some(slot) => {
                self.stats.keyspace_hits += 1;
                self.touch_slot(db, slot);
                Some(self.dbs[db].keys.state(slot))
            }
            None => {
                self.stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Like [`Store::lookup_read`], with the store's random generator for
    /// read commands that pick at random (SRANDMEMBER, HRANDFIELD…).
    pub fn lookup_read_with_rng(
        &mut self,
        db: usize,
        key: &[u8],
    ) -> (Option<&KeyState>, &mut SmallRng) {
        match self.visible_slot(db, key) {
            Some(slot) => {
                self.stats.keyspace_hits += 1;
                self.touch_slot(db, slot);
                (Some(self.dbs[db].keys.state(slot)), &mut self.rng)
            }
            None => {
                self.stats.keyspace_misses += 1;
                (None, &mut self.rng)
            }
        }
    }

    pub fn exists(&mut self, db: usize, key: &[u8]) -> bool {
        self.visible_slot(db, key).is_some()
    }

    fn visible_slot(&mut self, db: usize, key: &[u8]) -> Option<SlotId> {
        let slot = self.dbs[db].keys.find(key)?;
        if self.dbs[db].keys.state(slot).is_visible(self.now_ms) {
            Some(slot)
        } else {
            self.expire_slot(db, slot);
            None
        }
    }

    /// Holds expiry (hiding, not deleting, expired keys) until `until_ms`,
    /// or longer if already held longer (CLIENT PAUSE).
    pub fn hold_expiry_until(&mut self, until_ms: u64) {
        self.expiry_held_until_ms = self.expiry_held_until_ms.max(until_ms);
    }

    /// Ends a hold at once (CLIENT UNPAUSE).
    pub fn release_expiry(&mut self) {
        self.expiry_held_until_ms = 0;
    }

    fn expiry_held(&self) -> bool {
        self.now_ms < self.expiry_held_until_ms
    }

    /// Local expiry (not replicated: every node expires at the same absolute
    /// deadline). Value versions go; TTL versions stay as a tombstone so a
    /// concurrent write that arrives later is expired as well.
    fn expire_slot(&mut self, db: usize, slot: SlotId) {
        if self.expiry_held() {
            // Hidden by the caller, deleted once the hold ends.
            return;
        }
        let (key, mut state) = self.dbs[db].keys.remove(slot);
        self.watches.touch(db, &key);
        state.expire_locally();
        self.stats.expired_keys += 1;
        if self.record_removals {
            self.removals.push((db, key.clone()));
        }
        if let Some(notifier) = self.key_listener() {
            notifier.key_expired(db, &key);
        }
        if !state.is_empty() {
            self.dbs[db].tombstones.insert(key, state);
        }
    }

    /// The keys expired or evicted since the last call (only listed while
    /// `record_removals` is set).
    pub fn take_removals(&mut self) -> Vec<(usize, Bytes)> {
        std::mem::take(&mut self.removals)
    }

    pub(crate) fn note_removal(&mut self, db: usize, key: &Bytes) {
        if self.record_removals {
            self.removals.push((db, key.clone()));
        }
    }

    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs[db].keys.len()
    }

    /// Deadline (Unix ms) of a visible key; `None` if absent, `Some(None)`
    /// if it has no expiry.
    pub fn deadline(&mut self, db: usize, key: &[u8]) -> Option<Option<u64>> {
        self.lookup_untouched(db, key).map(|s| s.deadline())
    }

    /// A random visible key.
    pub fn random_key(&mut self, db: usize) -> Option<Bytes> {
        for _ in 0..100 {
            let slot = self.dbs[db].keys.random_slot(&mut self.rng)?;
            if self.dbs[db].keys.state(slot).is_visible(self.now_ms) {
                return Some(Bytes::copy_from_slice(self.dbs[db].keys.key(slot)));
            }
            self.expire_slot(db, slot);
        }
        None
    }

    /// One SCAN step: visible keys accepted by `keep`, and the next cursor.
    pub fn scan(
        &mut self,
        db: usize,
        cursor: u64,
        count: usize,
        mut keep: impl FnMut(&[u8], &KeyState) -> bool,
    ) -> (u64, Vec<Bytes>) {
        let mut slots = Vec::with_capacity(count.min(1024));
        let next = self.dbs[db].keys.scan(cursor, count, |s| slots.push(s));
        let mut out = Vec::with_capacity(slots.len());
        let now = self.now_ms;
        for slot in slots {
            let keys = &self.dbs[db].keys;
            if !keys.state(slot).is_visible(now) {
                self.expire_slot(db, slot);
                continue;
            }
            if keep(keys.key(slot), keys.state(slot)) {
                out.push(Bytes::copy_from_slice(keys.key(slot)));
            }
        }
        (next, out)
    }

    /// Every visible key accepted by `keep` (KEYS).
    pub fn keys_where(&mut self, db: usize, mut keep: impl FnMut(&[u8]) -> bool) -> Vec<Bytes> {
        let now = self.now_ms;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let keys = &self.dbs[db].keys;
        for slot in keys.slot_ids() {
            if !keys.state(slot).is_visible(now) {
                expired.push(slot);
            } else if keep(keys.key(slot)) {
                out.push(Bytes::copy_from_slice(keys.key(slot)));
            }
        }
        for slot in expired {
            self.expire_slot(db, slot);
        }
        out
    }

    // ----- local writes -----

    fn open_batch(&mut self) {
        if self.open.seq_before.is_none() {
            self.open.seq_before = Some(self.last_seq);
            self.open.hlc = self.clock.tick(self.now_ms);
        }
    }

    /// Applies a local write to `key`. `mutate` sees the key's state (empty
    /// if the key is absent, expired or only a tombstone: the leftovers are
    /// removed by the same delta) and returns the delta plus any result.
    /// Returns `mutate`'s result.
    pub fn write_key<R>(
        &mut self,
        db: usize,
        key: &[u8],
        mutate: impl FnOnce(&KeyState, &mut WriteCtx) -> (KeyDelta, R),
    ) -> R {
        self.open_batch();
        let now = self.now_ms;
        let database = &mut self.dbs[db];
        let mut ctx = WriteCtx {
            replica: self.replica,
            last_seq: &mut self.last_seq,
            ts: self.open.hlc,
            rng: &mut self.rng,
        };
        let slot = database.keys.find(key);
        let mut presence = Presence::default();
        let (owned_key, delta, result) = match slot {
            // Visible: modified in place, so the key keeps its slot (and its
            // position for SCAN cursors).
            Some(slot) if database.keys.state(slot).is_visible(now) => {
                let (delta, result) = mutate(database.keys.state(slot), &mut ctx);
                let access = self
                    .eviction
                    .touched(database.keys.access(slot), now, &mut self.rng);
                database.keys.set_access(slot, access);
                let owned_key = Bytes::copy_from_slice(database.keys.key(slot));
                database.keys.state_mut(slot).apply(&delta, &mut self.ctx);
                presence.removed = !database.keys.state(slot).has_value();
                Self::settle(database, slot);
                (owned_key, delta, result)
            }
            // Expired, tombstone or absent: the write starts from an empty
            // key and its delta also removes whatever was left.
            _ => {
                if slot.is_some() && self.record_removals {
                    // An expired key the write replaces: gone before it.
                    self.removals.push((db, Bytes::copy_from_slice(key)));
                }
                let (owned_key, mut state) = match slot {
                    Some(slot) => database.keys.remove(slot),
                    None => database
                        .tombstones
                        .remove_entry(key)
                        .unwrap_or_else(|| (Bytes::copy_from_slice(key), KeyState::new())),
                };
                let (delta, result) = mutate(&KeyState::new(), &mut ctx);
                if delta.is_empty() {
                    // Nothing written (e.g. SREM on a missing key): leave the
                    // leftovers where they were rather than ship a purge.
                    match slot {
                        Some(_) => {
                            database
                                .keys
                                .insert(owned_key, state, evict::Access::fresh(now));
                        }
                        None if !state.is_empty() => {
                            database.tombstones.insert(owned_key, state);
                        }
                        None => {}
                    }
                    return result;
                }
                let delta = state.delta_purge().then(delta);
                state.apply(&delta, &mut self.ctx);
                presence.created = state.has_value();
                Self::place(database, owned_key.clone(), state, now);
                (owned_key, delta, result)
            }
        };
        if !delta.is_empty() {
            self.watches.touch(db, &owned_key);
            self.ready_keys.note(db, &owned_key, &delta);
            self.open.ops.push(Op::Key {
                db: db as u8,
                key: owned_key,
                delta,
                events: EventCodes::NONE,
            });
            self.open.presence.push(presence);
        }
        result
    }

    /// Deletes a visible key; false if it did not exist.
    pub fn delete_key(&mut self, db: usize, key: &[u8]) -> bool {
        if !self.exists(db, key) {
            return false;
        }
        self.write_key(db, key, |state, w| {
            let ts = w.ts();
            (state.delta_delete(ts, &mut || w.next_dot()), ())
        });
        true
    }

    /// FLUSHDB: removes everything this node has seen in `db`.
    pub fn flush_db(&mut self, db: usize) {
        drop(self.flush_db_detached(db));
    }

    /// FLUSHDB that leaves the freeing to the caller: `db` is emptied and
    /// the flush recorded exactly as [`Store::flush_db`] does, and the
    /// removed contents are returned (to be dropped off the serving path).
    pub fn flush_db_detached(&mut self, db: usize) -> FlushedDb {
        self.open_batch();
        let seen = self.ctx.version_vector().clone();
        let (keys, now) = (&self.dbs[db].keys, self.now_ms);
        self.watches.touch_db(db, |key| {
            keys.find(key)
                .is_some_and(|slot| keys.state(slot).is_visible(now))
        });
        self.ready_keys.note_db(db);
        let database = &mut self.dbs[db];
        let flushed = FlushedDb {
            keys: database.keys.take(),
            tombstones: std::mem::take(&mut database.tombstones),
        };
        self.open.ops.push(Op::Flush { db: db as u8, seen });
        self.open.presence.push(Presence::default());
        flushed
    }

    /// Closes the open batch: its deltas leave as one unit for the peers.
    /// Returns the batch (if the command wrote anything).
    pub fn finish_batch(&mut self) -> Option<Arc<Batch>> {
        let Some(seq_before) = self.open.seq_before.take() else {
            // A read may have expired keys whose broadcasts are due.
            if let Some(notifier) = self.key_listener() {
                notifier.end_of_batch();
            }
            return None;
        };
        // Exactly sized: the open buffer keeps its capacity for the next
        // command, and the log does not hold growth slack.
        let ops: Vec<Op> = self.open.ops.drain(..).collect();
        if let Some(notifier) = self.notifier.as_ref().filter(|n| n.wants_key_events()) {
            let mut flushed = false;
            for (op, presence) in ops.iter().zip(&self.open.presence) {
                match op {
                    Op::Key {
                        db, key, events, ..
                    } => notifier.key_changed(*db as usize, key, *events, *presence),
                    Op::Flush { .. } => flushed = true,
                    Op::Message { .. } | Op::Library(_) => {}
                }
            }
            if flushed {
                // One notice for a FLUSHALL's sixteen databases.
                notifier.flushed();
            }
            notifier.end_of_batch();
        }
        self.open.presence.clear();
        // A huge command (DEBUG POPULATE, a big MULTI) would otherwise leave
        // its batch's capacity allocated for good.
        const KEPT_OPS: usize = 1024;
        if self.open.ops.capacity() > KEPT_OPS {
            self.open.ops.shrink_to(KEPT_OPS);
            self.open.presence.shrink_to(KEPT_OPS);
        }
        if ops.is_empty() {
            // Dots are only drawn for deltas, and non-empty deltas become
            // ops: a command that wrote nothing drew none.
            debug_assert_eq!(self.last_seq, seq_before);
            return None;
        }
        if self.last_seq == seq_before {
            // A batch always consumes at least one seq so peers can order
            // and deduplicate it (e.g. a DEL that adds no version).
            self.last_seq += 1;
        }
        self.ctx.insert_up_to(self.replica, self.last_seq);
        self.applied.raise(self.replica, self.last_seq);
        let batch = Arc::new(Batch {
            origin: self.replica,
            first_seq: seq_before + 1,
            last_seq: self.last_seq,
            hlc: self.open.hlc,
            ops,
        });
        self.journals.batch(&batch);
        if !self.keep_delta_log {
            // No peer can ever ask for it (peers are fixed at start), so
            // keeping it would only cost memory and time.
            self.log.pass_over(batch.last_seq);
        } else {
            self.log.push(batch.clone());
        }
        Some(batch)
    }

    /// After an in-place change: keeps the slot if the key still holds a
    /// value (refreshing its deadline listing), else moves it out.
    fn settle(database: &mut Db, slot: SlotId) {
        if database.keys.state(slot).has_value() {
            database.keys.sync_volatile(slot);
        } else {
            let (key, state) = database.keys.remove(slot);
            if !state.is_empty() {
                database.tombstones.insert(key, state);
            }
        }
    }

    /// Puts a state where the placement rule says it belongs (a key that
    /// becomes live starts its access metadata at `now_ms`).
    fn place(database: &mut Db, key: Bytes, state: KeyState, now_ms: u64) {
        if state.has_value() {
            // `insert` lists the key for expiry sampling if it has a deadline.
            database
                .keys
                .insert(key, state, evict::Access::fresh(now_ms));
        } else if !state.is_empty() {
            database.tombstones.insert(key, state);
        }
    }

    // ----- remote deltas -----

    /// Applies a batch from another node. Batches of one origin must arrive
    /// in order; a duplicate is ignored (returns `Ok(false)`), a gap is an
    /// error so replication can resend from the right place.
    pub fn apply_remote(&mut self, batch: &Batch) -> Result<bool, ApplyError> {
        if batch.origin == self.replica {
            return Err(ApplyError::OwnOrigin);
        }
        let applied = self.apply_batch(batch)?;
        if applied {
            self.journals.batch(batch);
        }
        Ok(applied)
    }

    /// Applies a batch of any origin, once, in order (see
    /// [`Store::apply_remote`]).
    fn apply_batch(&mut self, batch: &Batch) -> Result<bool, ApplyError> {
        let have = self.applied.get(batch.origin);
        if batch.last_seq <= have {
            self.stats.remote_batches_duplicate += 1;
            return Ok(false);
        }
        if batch.first_seq != have + 1 {
            return Err(ApplyError::Gap {
                origin: batch.origin,
                expected: have + 1,
                got: batch.first_seq,
            });
        }
        if let Some(bad) = batch.ops.iter().find_map(|op| match op {
            Op::Key { db, .. } | Op::Flush { db, .. } if *db as usize >= DB_COUNT => Some(*db),
            _ => None,
        }) {
            return Err(ApplyError::BadDb(bad));
        }
        self.clock.observe(batch.hlc);
        let mut flushed = false;
        for op in &batch.ops {
            match op {
                Op::Key {
                    db,
                    key,
                    delta,
                    events,
                } => {
                    let presence = self.apply_remote_key(*db as usize, key, delta);
                    if let Some(notifier) = self.key_listener() {
                        notifier.key_changed(*db as usize, key, *events, presence);
                    }
                }
                Op::Flush { db, seen } => {
                    self.apply_remote_flush(*db as usize, seen);
                    flushed = true;
                }
                Op::Message {
                    channel,
                    message,
                    shard,
                } => {
                    if let Some(notifier) = &self.notifier {
                        notifier.message(channel, message, *shard);
                    }
                }
                Op::Library(delta) => self.apply_library_delta(delta),
            }
        }
        if let Some(notifier) = self.key_listener() {
            if flushed {
                notifier.flushed();
            }
            notifier.end_of_batch();
        }
        self.ctx.insert_up_to(batch.origin, batch.last_seq);
        self.applied.raise(batch.origin, batch.last_seq);
        self.stats.remote_batches_applied += 1;
        Ok(true)
    }

    fn apply_remote_key(&mut self, db: usize, key: &Bytes, delta: &KeyDelta) -> Presence {
        let now = self.now_ms;
        self.watches.touch(db, key);
        let database = &mut self.dbs[db];
        let (slot, owned) = match database.keys.find(key) {
            Some(slot) => (Some(slot), None),
            None => (
                None,
                Some(
                    database
                        .tombstones
                        .remove_entry(key.as_ref())
                        .unwrap_or_else(|| (Bytes::copy_from_slice(key), KeyState::new())),
                ),
            ),
        };
        let mut detached = owned;
        let state = match (slot, detached.as_mut()) {
            (Some(slot), _) => database.keys.state_mut(slot),
            (None, Some((_, state))) => state,
            (None, None) => unreachable!("either a slot or a detached state"),
        };
        // Only a key with a collection on either side can end up holding two
        // types; plain string deltas (the common case) skip the check.
        let visible_before = slot.is_some() && state.is_visible(now);
        let may_conflict = !delta.colls.is_empty() || !state.collections().is_empty();
        let conflicted_before = may_conflict && state.has_type_conflict();
        state.apply(delta, &mut self.ctx);
        self.ready_keys.note(db, key, delta);
        if !database.flush_floor.is_empty() {
            // Versions or elements a FLUSHDB already removed, arriving late:
            // remove them again.
            let late = state.delta_remove_covered(&database.flush_floor);
            if !late.is_empty() {
                state.apply(&late, &mut self.ctx);
            }
        }
        if may_conflict && !conflicted_before && state.has_type_conflict() {
            self.stats.type_conflicts += 1;
        }
        let visible_after = state.is_visible(now);
        match (slot, detached) {
            (Some(slot), _) => Self::settle(database, slot),
            (None, Some((owned_key, state))) => {
                Self::place(database, owned_key, state, self.now_ms)
            }
            (None, None) => {}
        }
        Presence {
            created: !visible_before && visible_after,
            removed: visible_before && !visible_after,
        }
    }

    pub(super) fn apply_remote_flush(&mut self, db: usize, seen: &VersionVector) {
        let (keys, now) = (&self.dbs[db].keys, self.now_ms);
        self.watches.touch_db(db, |key| {
            keys.find(key)
                .is_some_and(|slot| keys.state(slot).is_visible(now))
        });
        let database = &mut self.dbs[db];
        let mine = &self.applied;
        for (replica, seq) in seen.iter() {
            if seq > mine.get(replica) {
                database.flush_floor.raise(replica, seq);
            }
        }
        for slot in database.keys.slot_ids() {
            let delta = database.keys.state(slot).delta_remove_covered(seen);
            if delta.is_empty() {
                continue;
            }
            database.keys.state_mut(slot).apply(&delta, &mut self.ctx);
            Self::settle(database, slot);
        }
        let tombstones = std::mem::take(&mut database.tombstones);
        for (key, mut state) in tombstones {
            let delta = state.delta_remove_covered(seen);
            state.apply(&delta, &mut self.ctx);
            Self::place(database, key, state, self.now_ms);
        }
    }

    // ----- housekeeping -----

    /// One round of active expiry, Redis-style: sample keys with a deadline
    /// in every database and expire those past it; repeat while more than a
    /// quarter of a sample was expired, up to `max_samples` keys in total.
    /// Returns the number of keys expired.
    pub fn active_expire_cycle(&mut self, max_samples: usize) -> usize {
        const SAMPLE: usize = 20;
        if !self.active_expire {
            return 0;
        }
        self.begin_command();
        if self.expiry_held() {
            return 0;
        }
        let now = self.now_ms;
        let mut expired = 0;
        let mut sampled = 0;
        for db in 0..DB_COUNT {
            loop {
                if self.dbs[db].keys.volatile_len() == 0 || sampled >= max_samples {
                    break;
                }
                let mut expired_now = 0;
                for _ in 0..SAMPLE {
                    let Some(slot) = self.dbs[db].keys.random_volatile(&mut self.rng) else {
                        break;
                    };
                    sampled += 1;
                    if !self.dbs[db].keys.state(slot).is_visible(now) {
                        self.expire_slot(db, slot);
                        expired_now += 1;
                    }
                }
                expired += expired_now;
                if expired_now * 4 <= SAMPLE {
                    break;
                }
            }
        }
        if expired > 0 {
            if let Some(notifier) = self.key_listener() {
                notifier.end_of_batch();
            }
        }
        expired
    }

    /// Drops tombstone versions that every replica has seen: `stable` is
    /// the causally stable vector (replication passes the meet of this
    /// node's applied vector and every peer's acknowledged one; with no
    /// peers, [`Store::version_vector`]).
    pub fn collect_garbage(&mut self, stable: &VersionVector) -> usize {
        self.collect_garbage_with(&Stability::all(stable.clone()))
    }

    /// Garbage collection that may leave silent peers out (replication's
    /// silence bound): tombstones are judged against `stability.stable`,
    /// except those holding a counter marker that records a run of a
    /// silent origin, judged against `stability.strict` (which counts
    /// every peer). Also recounts [`Store::tombstone_bytes`].
    pub fn collect_garbage_with(&mut self, stability: &Stability) -> usize {
        let mut collected = 0;
        let mut bytes = 0;
        let within = stability.within.as_deref();
        let silent = |r: ReplicaId| within.is_some_and(|w| !w.contains(&r));
        for database in &mut self.dbs {
            database.tombstones.retain(|key, state| {
                let stable = if within.is_some() && state.observes_runs_of(&silent) {
                    &stability.strict
                } else {
                    &stability.stable
                };
                let empty = state.collect_garbage(stable);
                if empty {
                    collected += 1;
                } else {
                    bytes += approx_tombstone_bytes(key, state);
                }
                !empty
            });
            // Floors the local vector has caught up with are no longer
            // needed. (A floor only matters for versions this node has not
            // received; `stable` is at most its own vector, so leaving a
            // silent peer out is safe here too.)
            let mut kept = VersionVector::new();
            for (r, s) in database.flush_floor.iter() {
                if stability.stable.get(r) < s {
                    kept.raise(r, s);
                }
            }
            database.flush_floor = kept;
        }
        // Library tombstones are few and small: they wait for every peer.
        self.functions.collect_garbage(&stability.strict);
        self.stats.tombstones_collected += collected as u64;
        self.tombstone_bytes = bytes;
        collected
    }

    /// Estimated bytes of the tombstones left by the last collection pass
    /// (INFO, and the silence bound's byte count).
    pub fn tombstone_bytes(&self) -> usize {
        self.tombstone_bytes
    }

    /// Tombstones held across all databases (INFO).
    pub fn tombstones_pending(&self) -> usize {
        self.dbs.iter().map(|d| d.tombstones.len()).sum()
    }

    /// A digest of the visible dataset: 20 bytes, all zero when empty, equal
    /// on two nodes whose visible data (keys, values, deadlines) is equal,
    /// whatever the order things were applied in.
    pub fn digest(&mut self) -> [u8; 20] {
        let now = self.now_ms;
        let mut acc = [0u8; 20];
        for (db_index, database) in self.dbs.iter().enumerate() {
            for (key, state) in database.keys.iter() {
                if !state.is_visible(now) {
                    continue;
                }
                for (a, b) in acc.iter_mut().zip(key_digest(db_index, key, state)) {
                    *a ^= b;
                }
            }
        }
        acc
    }
}

/// What garbage collection may treat as seen by every replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stability {
    /// The meet of this node's applied vector and the acknowledged vectors
    /// of the peers that hold collection back (silent peers past the
    /// bound left out).
    pub stable: VersionVector,
    /// The same meet over every configured peer.
    pub strict: VersionVector,
    /// `None` when no peer is left out. Otherwise the origins known to
    /// hold collection back (this node and the peers within the bound): a
    /// tombstone with a counter marker recording a run of any other origin
    /// is judged against `strict`, since that origin may still extend the
    /// run without having seen the marker.
    pub within: Option<Vec<ReplicaId>>,
}

impl Stability {
    /// No peer left out: `stable` for everything.
    pub fn all(stable: VersionVector) -> Stability {
        Stability {
            strict: stable.clone(),
            stable,
            within: None,
        }
    }
}

/// Rough heap size of a tombstone (key, versions, collection leftovers).
fn approx_tombstone_bytes(key: &[u8], state: &KeyState) -> usize {
    64 + key.len()
        + std::mem::size_of_val(state.versions())
        + state
            .collections()
            .iter()
            .map(|c| 64 + c.len() * 64)
            .sum::<usize>()
}

/// The digest of one visible key: what DEBUG DIGEST and the replication
/// range digests XOR together. Covers the database, the key, its type, the
/// value it reads as and its deadline (not the CRDT metadata), so two nodes
/// that read the same agree.
pub fn key_digest(db_index: usize, key: &[u8], state: &KeyState) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    h.update(&(db_index as u32).to_be_bytes());
    h.update(&(key.len() as u64).to_be_bytes());
    h.update(key);
    state.digest_value(&mut |bytes| h.update(bytes));
    h.update(&state.deadline().unwrap_or(0).to_be_bytes());
    h.digest().bytes()
}

#[cfg(test)]
mod tests;
