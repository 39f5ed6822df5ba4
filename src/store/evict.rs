//! Eviction under `maxmemory`: the per-key access metadata (an LRU clock
//! and an LFU counter packed into the slot's one `u32`), the settings of
//! the eviction policies, and Redis's sampled eviction — a pool of the best
//! candidates seen so far, refilled by sampling every database — that runs
//! before a command while `used_memory` is over the cap.
//!
//! An evicted key is removed as an ordinary observed delete in a batch of
//! its own, so it replicates like DEL: peers remove what this node had
//! seen of the key (a concurrent write they had not shipped yet survives,
//! add-wins) and digests stay equal. Only the node that chose the victim
//! counts it in `evicted_keys`.
//!
//! The approximations follow Redis 7.0's `evict.c`: a 24-bit LRU clock in
//! seconds, an 8-bit logarithmic LFU counter that starts at 5, grows with
//! probability `1 / ((counter - 5) * lfu-log-factor + 1)` and loses one
//! per `lfu-decay-time` minutes without access. Unlike Redis, both live
//! side by side (the clock doubles as the LFU's last-access time), so a
//! runtime policy switch finds idle times already tracked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::Rng;

use super::events::EventCodes;
use super::{memory, Batch, SlotId, Store, DB_COUNT};

/// Largest value of the 24-bit LRU clock (it wraps, as Redis's does,
/// after about 194 days).
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// The LFU counter of a new key (Redis's `LFU_INIT_VAL`), so a key just
/// written is not the first victim.
pub const LFU_INIT_VAL: u8 = 5;
/// Candidates the eviction pool keeps between rounds (Redis's
/// `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    /// The policy a canonical `maxmemory-policy` word names.
    pub fn parse(word: &str) -> Option<Policy> {
        Some(match word {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }

    /// Whether access frequency is tracked (OBJECT FREQ answers).
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Whether every key is a candidate (else only keys with a deadline).
    fn all_keys(self) -> bool {
        matches!(
            self,
            Policy::AllKeysLru | Policy::AllKeysLfu | Policy::AllKeysRandom
        )
    }
}

/// The eviction parameters, as CONFIG sets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvictionConfig {
    /// Cap on `used_memory` in bytes; 0 = no cap.
    pub maxmemory: usize,
    pub policy: Policy,
    /// Keys sampled per database per pool refill (`maxmemory-samples`).
    pub samples: usize,
    /// `maxmemory-eviction-tenacity` (0..=100): how long one round may run.
    pub tenacity: u32,
    pub lfu_log_factor: u32,
    /// Minutes per point of LFU decay (0 = never decays).
    pub lfu_decay_time: u32,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            maxmemory: 0,
            policy: Policy::NoEviction,
            samples: 5,
            tenacity: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

impl EvictionConfig {
    /// How long one eviction round may run before it lets the command
    /// through and leaves the rest to the next command or the background
    /// cycle: Redis's curve (50 µs per point up to 10, then +15% per
    /// point, unlimited at 100).
    pub fn time_limit(&self) -> Option<Duration> {
        match self.tenacity {
            t if t <= 10 => Some(Duration::from_micros(50 * t as u64)),
            t if t < 100 => Some(Duration::from_micros(
                (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
            )),
            _ => None,
        }
    }
}

/// The LRU clock (seconds, 24 bits) at `now_ms`.
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & LRU_CLOCK_MAX as u64) as u32
}

/// Access metadata packed in one `u32`: the LRU clock of the last access
/// in the high 24 bits, the LFU counter in the low 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access(pub u32);

impl Access {
    /// A key created at `now_ms`.
    #[inline]
    pub fn fresh(now_ms: u64) -> u32 {
        (lru_clock(now_ms) << 8) | LFU_INIT_VAL as u32
    }

    pub fn clock(self) -> u32 {
        self.0 >> 8
    }

    pub fn counter(self) -> u8 {
        (self.0 & 0xff) as u8
    }

    /// Seconds since the last access, allowing for one wrap of the clock.
    pub fn idle_secs(self, now_ms: u64) -> u64 {
        let now = lru_clock(now_ms);
        let then = self.clock();
        if now >= then {
            (now - then) as u64
        } else {
            (now + (LRU_CLOCK_MAX - then)) as u64
        }
    }

    /// The LFU counter after decay: one point per `decay_minutes` since the
    /// last access (Redis's `LFUDecrAndReturn`; the stored value changes
    /// only on access).
    pub fn decayed_counter(self, now_ms: u64, decay_minutes: u32) -> u8 {
        if decay_minutes == 0 {
            return self.counter();
        }
        let periods = self.idle_secs(now_ms) / 60 / decay_minutes as u64;
        (self.counter() as u64).saturating_sub(periods) as u8
    }
}

/// Redis's `LFULogIncr`: the counter grows by one with a probability that
/// falls as it grows (`roll` is uniform in `0..1`), saturating at 255.
pub fn lfu_log_incr(counter: u8, log_factor: u32, roll: f64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if roll < p {
        counter + 1
    } else {
        counter
    }
}

/// What one eviction round achieved (Redis's `EVICT_OK/RUNNING/FAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Under the cap (or no cap, or evictions are held by CLIENT PAUSE).
    Ok,
    /// Still over, but the round hit its time limit: the command runs and
    /// eviction goes on later.
    Running,
    /// Over the cap with nothing evictable (or `noeviction`): commands that
    /// may grow memory are refused.
    Fail,
}

struct Candidate {
    /// Higher is a better victim (idle time, inverted frequency, or
    /// inverted deadline).
    score: u64,
    db: u8,
    key: Bytes,
}

/// The eviction state a store keeps: settings, the candidate pool (kept
/// between rounds, as Redis does), counters for INFO.
pub struct Eviction {
    pub config: EvictionConfig,
    /// Sorted by ascending score; the best victim is last.
    pool: Vec<Candidate>,
    /// Database the random policies visit next.
    next_db: usize,
    /// Reads used memory; the counting allocator unless a test swaps it.
    gauge: fn() -> usize,
    /// Since when the node has been over the cap (INFO's
    /// `current_eviction_exceeded_time`), and the total of past spells.
    exceeded_since: Option<Instant>,
    exceeded_total: Duration,
}

impl Default for Eviction {
    fn default() -> Self {
        Eviction {
            config: EvictionConfig::default(),
            pool: Vec::with_capacity(POOL_SIZE + 1),
            next_db: 0,
            gauge: memory::used_memory,
            exceeded_since: None,
            exceeded_total: Duration::ZERO,
        }
    }
}

impl Eviction {
    /// The access metadata after a local access at `now_ms`: the clock
    /// always, the LFU counter (decayed, then incremented) under an LFU
    /// policy only.
    #[inline]
    pub fn touched(&self, old: u32, now_ms: u64, rng: &mut SmallRng) -> u32 {
        if self.config.policy.is_lfu() {
            self.touched_lfu(old, now_ms, rng)
        } else {
            (lru_clock(now_ms) << 8) | (old & 0xff)
        }
    }

    #[cold]
    fn touched_lfu(&self, old: u32, now_ms: u64, rng: &mut SmallRng) -> u32 {
        let counter = Access(old).decayed_counter(now_ms, self.config.lfu_decay_time);
        let counter = lfu_log_incr(counter, self.config.lfu_log_factor, rng.gen::<f64>());
        (lru_clock(now_ms) << 8) | counter as u32
    }

    /// Milliseconds spent over the cap: (total, current spell).
    pub fn exceeded_ms(&self) -> (u64, u64) {
        let current = self
            .exceeded_since
            .map_or(Duration::ZERO, |since| since.elapsed());
        (
            (self.exceeded_total + current).as_millis() as u64,
            current.as_millis() as u64,
        )
    }

    fn note_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => {
                if let Some(since) = self.exceeded_since.take() {
                    self.exceeded_total += since.elapsed();
                }
            }
            Outcome::Running | Outcome::Fail => {
                self.exceeded_since.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Offers a sampled key to the pool: kept if the pool has room or the
    /// key scores above the worst candidate (which then leaves).
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.pool.len() >= POOL_SIZE && self.pool[0].score >= score {
            return;
        }
        if self
            .pool
            .iter()
            .any(|c| c.db as usize == db && c.key == key)
        {
            return;
        }
        let at = self.pool.partition_point(|c| c.score < score);
        self.pool.insert(
            at,
            Candidate {
                score,
                db: db as u8,
                key: Bytes::copy_from_slice(key),
            },
        );
        if self.pool.len() > POOL_SIZE {
            self.pool.remove(0);
        }
    }
}

/// The result of [`Store::perform_evictions`]: the outcome, and the batch
/// of deletes to hand to replication (if anything was evicted).
pub struct Evicted {
    pub outcome: Outcome,
    pub batch: Option<Arc<Batch>>,
}

impl Store {
    /// The eviction settings in force.
    pub fn eviction_config(&self) -> &EvictionConfig {
        &self.eviction.config
    }

    /// Installs new eviction settings (CONFIG SET). A policy change drops
    /// the candidate pool, whose scores meant something else.
    pub fn set_eviction_config(&mut self, config: EvictionConfig) {
        if config.policy != self.eviction.config.policy {
            self.eviction.pool.clear();
        }
        self.eviction.config = config;
    }

    /// Replaces the used-memory reading (tests without the counting
    /// allocator).
    pub fn set_memory_gauge(&mut self, gauge: fn() -> usize) {
        self.eviction.gauge = gauge;
    }

    /// Whether a cap is set: the dispatcher's whole cost when it is not.
    #[inline]
    pub fn has_maxmemory(&self) -> bool {
        self.eviction.config.maxmemory != 0
    }

    /// Whether used memory is over a set cap now.
    pub fn over_maxmemory(&self) -> bool {
        let max = self.eviction.config.maxmemory;
        max != 0 && (self.eviction.gauge)() > max
    }

    /// INFO's eviction timers in ms: (total, current).
    pub fn eviction_exceeded_ms(&self) -> (u64, u64) {
        self.eviction.exceeded_ms()
    }

    /// The access metadata of a visible key without touching it (OBJECT
    /// IDLETIME / FREQ).
    pub fn access_of(&mut self, db: usize, key: &[u8]) -> Option<Access> {
        let slot = self.dbs[db].keys.find(key)?;
        if self.dbs[db].keys.state(slot).is_visible(self.now_ms) {
            Some(Access(self.dbs[db].keys.access(slot)))
        } else {
            self.expire_slot(db, slot);
            None
        }
    }

    /// Replaces a visible key's access metadata (RESTORE's IDLETIME and
    /// FREQ); false when the key is not there.
    pub fn set_access_of(&mut self, db: usize, key: &[u8], access: Access) -> bool {
        let Some(slot) = self.dbs[db].keys.find(key) else {
            return false;
        };
        self.dbs[db].keys.set_access(slot, access.0);
        true
    }

    /// Marks a local access of a live slot (reads and writes; Redis's
    /// `lookupKey` without `LOOKUP_NOTOUCH`).
    #[inline]
    pub(super) fn touch_slot(&mut self, db: usize, slot: SlotId) {
        let keys = &mut self.dbs[db].keys;
        let old = keys.access(slot);
        let new = self.eviction.touched(old, self.now_ms, &mut self.rng);
        if new != old {
            keys.set_access(slot, new);
        }
    }

    /// Redis's `performEvictions`: while used memory is over `maxmemory`,
    /// evicts the policy's best candidates until the excess measured at the
    /// start has been freed, nothing is evictable, or the round's time
    /// limit passes. Evictions wait while CLIENT PAUSE holds the dataset.
    pub fn perform_evictions(&mut self) -> Evicted {
        let outcome_only = |outcome| Evicted {
            outcome,
            batch: None,
        };
        let max = self.eviction.config.maxmemory;
        let used = (self.eviction.gauge)();
        if max == 0 || used <= max {
            self.eviction.note_outcome(Outcome::Ok);
            return outcome_only(Outcome::Ok);
        }
        // Never inside a command's open batch (CONFIG SET queued in EXEC):
        // the deletes would split the transaction's batch. The next
        // command evicts instead.
        if self.open.seq_before.is_some() {
            return outcome_only(Outcome::Ok);
        }
        self.begin_command();
        if self.expiry_held() {
            return outcome_only(Outcome::Ok);
        }
        if self.eviction.config.policy == Policy::NoEviction {
            self.eviction.note_outcome(Outcome::Fail);
            return outcome_only(Outcome::Fail);
        }
        let to_free = used - max;
        let limit = self.eviction.config.time_limit();
        let started = Instant::now();
        let mut freed = 0usize;
        let mut evicted = 0usize;
        let mut outcome = Outcome::Ok;
        while freed < to_free {
            let Some((db, slot)) = self.pick_victim() else {
                outcome = Outcome::Fail;
                break;
            };
            let before = (self.eviction.gauge)();
            self.evict_slot(db, slot);
            // Only what the delete released counts (the delete's own delta
            // may allocate; a negative step counts as nothing), as Redis
            // measures around the delete alone.
            freed += before.saturating_sub((self.eviction.gauge)());
            evicted += 1;
            if evicted.is_multiple_of(16) && limit.is_some_and(|l| started.elapsed() > l) {
                outcome = Outcome::Running;
                break;
            }
        }
        self.eviction.note_outcome(outcome);
        Evicted {
            outcome,
            batch: self.finish_batch(),
        }
    }

    /// Evicts one key the policy picks, whatever the memory reads (the
    /// random-history convergence driver uses this); false when no key
    /// qualifies. The delete joins the open batch.
    pub fn evict_one(&mut self) -> bool {
        match self.pick_victim() {
            Some((db, slot)) => {
                self.evict_slot(db, slot);
                true
            }
            None => false,
        }
    }

    /// The next key to evict under the current policy, or `None` when no
    /// key qualifies.
    fn pick_victim(&mut self) -> Option<(usize, SlotId)> {
        let policy = self.eviction.config.policy;
        let all_keys = policy.all_keys();
        let candidates = |keys: &super::Keyspace| {
            if all_keys {
                keys.len()
            } else {
                keys.volatile_len()
            }
        };
        match policy {
            Policy::NoEviction => None,
            Policy::AllKeysRandom | Policy::VolatileRandom => {
                for _ in 0..DB_COUNT {
                    self.eviction.next_db = (self.eviction.next_db + 1) % DB_COUNT;
                    let db = self.eviction.next_db;
                    let keys = &self.dbs[db].keys;
                    if candidates(keys) == 0 {
                        continue;
                    }
                    let slot = if all_keys {
                        keys.random_slot(&mut self.rng)
                    } else {
                        keys.random_volatile(&mut self.rng)
                    };
                    if let Some(slot) = slot {
                        return Some((db, slot));
                    }
                }
                None
            }
            _ => loop {
                let mut total = 0;
                for db in 0..DB_COUNT {
                    let n = candidates(&self.dbs[db].keys);
                    if n > 0 {
                        self.populate_pool(db);
                        total += n;
                    }
                }
                if total == 0 {
                    return None;
                }
                // Best first; a candidate deleted (or persisted, for the
                // volatile policies) since it was sampled is a ghost.
                while let Some(best) = self.eviction.pool.pop() {
                    let db = best.db as usize;
                    let keys = &self.dbs[db].keys;
                    if let Some(slot) = keys.find(&best.key) {
                        if all_keys || keys.state(slot).deadline().is_some() {
                            return Some((db, slot));
                        }
                    }
                }
            },
        }
    }

    /// Samples up to `maxmemory-samples` candidates of `db` into the pool.
    fn populate_pool(&mut self, db: usize) {
        let config = self.eviction.config;
        let now = self.now_ms;
        let keys = &self.dbs[db].keys;
        let eviction = &mut self.eviction;
        keys.sample(
            !config.policy.all_keys(),
            config.samples,
            &mut self.rng,
            |slot| {
                let access = Access(keys.access(slot));
                let score = match config.policy {
                    Policy::AllKeysLfu | Policy::VolatileLfu => {
                        255 - access.decayed_counter(now, config.lfu_decay_time) as u64
                    }
                    Policy::VolatileTtl => {
                        u64::MAX - keys.state(slot).deadline().unwrap_or(u64::MAX)
                    }
                    _ => access.idle_secs(now) * 1000,
                };
                eviction.offer(score, db, keys.key(slot));
            },
        );
    }

    /// Removes a victim: a key already past its deadline just expires
    /// (locally, as every node does); a live one is deleted as an observed
    /// remove that joins the round's batch, and counted as evicted.
    fn evict_slot(&mut self, db: usize, slot: SlotId) {
        if !self.dbs[db].keys.state(slot).is_visible(self.now_ms) {
            self.expire_slot(db, slot);
            return;
        }
        let key = Bytes::copy_from_slice(self.dbs[db].keys.key(slot));
        let from = self.open_ops_len();
        self.write_key(db, &key, |state, w| {
            let ts = w.ts();
            (state.delta_delete(ts, &mut || w.next_dot()), ())
        });
        // Raised as `evicted` here and on every peer the delete reaches: the
        // key left the dataset because of this node's memory limit.
        self.tag_ops(from, |_, _, _| EventCodes::one(EventCodes::EVICTED));
        self.stats.evicted_keys += 1;
        self.note_removal(db, &key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lru_clock_wraps_and_idle_time_allows_one_wrap() {
        let at = |secs: u64| secs * 1000;
        let a = Access(Access::fresh(at(100)));
        assert_eq!(a.idle_secs(at(130)), 30);
        let near_end = Access(Access::fresh(at(LRU_CLOCK_MAX as u64 - 5)));
        // Clock value 2 after the wrap: 5 + 2 seconds later.
        assert_eq!(near_end.idle_secs(at(LRU_CLOCK_MAX as u64 + 3)), 7);
    }

    #[test]
    fn lfu_counter_starts_at_init_and_grows_logarithmically() {
        assert_eq!(Access(Access::fresh(0)).counter(), LFU_INIT_VAL);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counter = LFU_INIT_VAL;
        for _ in 0..1000 {
            counter = lfu_log_incr(counter, 10, rng.gen());
        }
        // With factor 10, a thousand hits take the counter to about 18
        // (Redis's table: 100 hits ≈ 10, 1k ≈ 18, 100k ≈ 142).
        assert!((12..=25).contains(&counter), "counter {counter}");
        assert_eq!(lfu_log_incr(255, 10, 0.0), 255);
        // Below the initial value, every hit counts.
        assert_eq!(lfu_log_incr(2, 10, 0.999), 3);
    }

    #[test]
    fn lfu_counter_decays_one_point_per_decay_period() {
        let a = Access((lru_clock(0) << 8) | 20);
        assert_eq!(a.decayed_counter(59_000, 1), 20);
        assert_eq!(a.decayed_counter(60_000 * 3, 1), 17);
        assert_eq!(a.decayed_counter(60_000 * 3, 2), 19);
        assert_eq!(a.decayed_counter(60_000 * 100, 1), 0);
        assert_eq!(a.decayed_counter(60_000 * 100, 0), 20);
    }

    #[test]
    fn touch_updates_the_clock_and_only_lfu_policies_count() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut ev = Eviction::default();
        let old = (lru_clock(0) << 8) | 9;
        let t = Access(ev.touched(old, 50_000, &mut rng));
        assert_eq!((t.clock(), t.counter()), (50, 9));
        ev.config.policy = Policy::AllKeysLfu;
        ev.config.lfu_log_factor = 0; // every hit counts
        let t = Access(ev.touched(old, 50_000, &mut rng));
        assert_eq!((t.clock(), t.counter()), (50, 10));
    }

    #[test]
    fn tenacity_follows_redis_curve() {
        let at = |tenacity| {
            EvictionConfig {
                tenacity,
                ..EvictionConfig::default()
            }
            .time_limit()
        };
        assert_eq!(at(0), Some(Duration::ZERO));
        assert_eq!(at(10), Some(Duration::from_micros(500)));
        assert_eq!(at(11), Some(Duration::from_micros(575)));
        assert_eq!(at(100), None);
    }

    use crate::crdt::{ReplicaId, TtlChange};

    const NOW: u64 = 1_800_000_000_000;

    /// A gauge that always reads over any cap: eviction runs until nothing
    /// qualifies.
    fn always_over() -> usize {
        usize::MAX / 2
    }

    fn store_with(policy: Policy) -> Store {
        let mut store = Store::new(ReplicaId(1));
        store.set_time_override(Some(NOW));
        store.set_memory_gauge(always_over);
        store.set_eviction_config(EvictionConfig {
            maxmemory: 1,
            policy,
            // Enough samples that the pool sees every key of these tests.
            samples: 400,
            tenacity: 100,
            ..EvictionConfig::default()
        });
        store
    }

    fn set(store: &mut Store, key: &str, ttl: TtlChange) {
        store.begin_command();
        store.write_key(0, key.as_bytes(), |state, w| {
            let ts = w.ts();
            (
                state.delta_set(Bytes::from_static(b"v"), ts, ttl, &mut || w.next_dot()),
                (),
            )
        });
        store.finish_batch();
    }

    fn at(store: &mut Store, ms: u64) {
        store.set_time_override(Some(ms));
    }

    fn victim(store: &mut Store) -> String {
        let (db, slot) = store.pick_victim().expect("a victim");
        String::from_utf8(store.dbs[db].keys.key(slot).to_vec()).unwrap()
    }

    #[test]
    fn lru_picks_the_key_idle_longest() {
        let mut s = store_with(Policy::AllKeysLru);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            at(&mut s, NOW + i as u64 * 10_000);
            set(&mut s, key, TtlChange::Clear);
        }
        at(&mut s, NOW + 40_000);
        s.lookup(0, b"a"); // a is now the most recent
        assert_eq!(victim(&mut s), "b");
    }

    #[test]
    fn lfu_picks_the_least_frequent_key() {
        let mut s = store_with(Policy::AllKeysLfu);
        s.eviction.config.lfu_log_factor = 0; // every access counts
        for key in ["hot", "warm", "cold"] {
            set(&mut s, key, TtlChange::Clear);
        }
        for _ in 0..5 {
            s.lookup(0, b"hot");
        }
        s.lookup(0, b"warm");
        assert_eq!(victim(&mut s), "cold");
    }

    #[test]
    fn volatile_ttl_picks_the_soonest_deadline() {
        let mut s = store_with(Policy::VolatileTtl);
        set(&mut s, "late", TtlChange::Deadline(NOW + 90_000));
        set(&mut s, "soon", TtlChange::Deadline(NOW + 10_000));
        set(&mut s, "never", TtlChange::Clear);
        assert_eq!(victim(&mut s), "soon");
    }

    #[test]
    fn volatile_policies_evict_only_keys_with_a_deadline_then_fail() {
        for policy in [
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ] {
            let mut s = store_with(policy);
            for i in 0..20 {
                let ttl = if i % 2 == 0 {
                    TtlChange::Deadline(NOW + 60_000)
                } else {
                    TtlChange::Clear
                };
                set(&mut s, &format!("k{i}"), ttl);
            }
            let evicted = s.perform_evictions();
            assert_eq!(evicted.outcome, Outcome::Fail, "{policy:?}");
            assert!(evicted.batch.is_some());
            assert_eq!(s.stats.evicted_keys, 10, "{policy:?}");
            assert_eq!(s.dbsize(0), 10);
            for i in (1..20).step_by(2) {
                assert!(s.exists(0, format!("k{i}").as_bytes()), "{policy:?}");
            }
        }
    }

    #[test]
    fn allkeys_policies_empty_every_database_and_noeviction_evicts_nothing() {
        for policy in [
            Policy::AllKeysLru,
            Policy::AllKeysLfu,
            Policy::AllKeysRandom,
        ] {
            let mut s = store_with(policy);
            for db in [0, 3, 15] {
                s.begin_command();
                s.write_key(db, b"k", |state, w| {
                    let ts = w.ts();
                    let value = Bytes::from_static(b"v");
                    let delta = state.delta_set(value, ts, TtlChange::Clear, &mut || w.next_dot());
                    (delta, ())
                });
                s.finish_batch();
            }
            assert_eq!(s.perform_evictions().outcome, Outcome::Fail);
            assert_eq!(s.stats.evicted_keys, 3, "{policy:?}");
            assert!((0..DB_COUNT).all(|db| s.dbsize(db) == 0));
        }
        let mut s = store_with(Policy::NoEviction);
        set(&mut s, "k", TtlChange::Clear);
        let evicted = s.perform_evictions();
        assert_eq!(evicted.outcome, Outcome::Fail);
        assert!(evicted.batch.is_none());
        assert_eq!(s.dbsize(0), 1);
    }

    #[test]
    fn an_eviction_replicates_as_a_delete_counted_only_where_chosen() {
        let mut a = store_with(Policy::AllKeysRandom);
        let mut b = Store::new(ReplicaId(2));
        b.set_time_override(Some(NOW));
        set(&mut a, "k", TtlChange::Clear);
        let evicted = a.perform_evictions();
        for batch in a.delta_log().since(0).unwrap() {
            b.apply_remote(batch).unwrap();
        }
        assert!(evicted.batch.is_some());
        assert_eq!(a.dbsize(0), 0);
        assert_eq!(b.dbsize(0), 0);
        assert_eq!(a.digest(), b.digest());
        assert_eq!((a.stats.evicted_keys, b.stats.evicted_keys), (1, 0));
    }

    #[test]
    fn under_the_cap_or_during_a_pause_nothing_is_evicted() {
        let mut s = store_with(Policy::AllKeysLru);
        set(&mut s, "k", TtlChange::Clear);
        s.hold_expiry_until(NOW + 1000);
        assert_eq!(s.perform_evictions().outcome, Outcome::Ok);
        s.release_expiry();
        s.eviction.config.maxmemory = usize::MAX;
        assert_eq!(s.perform_evictions().outcome, Outcome::Ok);
        assert_eq!(s.dbsize(0), 1);
    }

    #[test]
    fn an_open_batch_is_never_split_by_eviction() {
        let mut s = store_with(Policy::AllKeysRandom);
        set(&mut s, "k", TtlChange::Clear);
        s.begin_command();
        s.write_key(0, b"other", |state, w| {
            let ts = w.ts();
            let value = Bytes::from_static(b"v");
            let delta = state.delta_set(value, ts, TtlChange::Clear, &mut || w.next_dot());
            (delta, ())
        });
        let evicted = s.perform_evictions();
        assert_eq!(evicted.outcome, Outcome::Ok);
        assert!(evicted.batch.is_none());
        assert_eq!(s.dbsize(0), 2);
        let batch = s.finish_batch().expect("the command's batch");
        assert_eq!(batch.ops.len(), 1);
    }

    #[test]
    fn reads_that_do_not_touch_leave_idle_time_alone() {
        let mut s = store_with(Policy::AllKeysLru);
        set(&mut s, "k", TtlChange::Clear);
        at(&mut s, NOW + 30_000);
        s.lookup_untouched(0, b"k");
        s.exists(0, b"k");
        assert_eq!(s.access_of(0, b"k").unwrap().idle_secs(NOW + 30_000), 30);
        s.lookup_read(0, b"k");
        assert_eq!(s.access_of(0, b"k").unwrap().idle_secs(NOW + 30_000), 0);
    }

    #[test]
    fn pool_keeps_the_best_sixteen_without_duplicates() {
        let mut ev = Eviction::default();
        for score in 0..40u64 {
            let key = Bytes::from(format!("k{score}"));
            ev.offer(score, 0, &key);
            ev.offer(score, 0, &key);
        }
        assert_eq!(ev.pool.len(), POOL_SIZE);
        let scores: Vec<u64> = ev.pool.iter().map(|c| c.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<_>>());
    }
}
