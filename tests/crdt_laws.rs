//! Merge laws and replication semantics of the per-key CRDT (`cordis::crdt`).
//!
//! A small in-memory model drives the pure CRDT the way the server does:
//! each replica has an id, a sequence counter, one causal context, an HLC
//! clock and a few keys (`KeyState`). A local write builds a delta with a
//! mutator, applies it locally and appends it to the origin's log. Delivery
//! applies logged deltas at another replica, in the origin's order (FIFO per
//! origin, as the replication stream does), with different origins
//! interleaving arbitrarily.
//!
//! Checked here:
//! - the state join is commutative, associative and idempotent;
//! - applying a delta equals joining the delta's own state;
//! - replicas converge whatever the delivery order;
//! - the semantics of DESIGN.md §3 for strings, counters, DEL and TTLs;
//! - a Jepsen-style checker: every counter equals the sum of the increments
//!   it has seen;
//! - garbage collection over a causally stable vector never changes a read.
//!
//! Three of the semantic tests pin bugs this suite found in the first
//! reading rules (a delete marker taking part in the LWW choice; only the
//! winning write's run marks counting; marks keeping the largest instead of
//! the latest total).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use bytes::Bytes;
use cordis::crdt::{
    Amount, CausalContext, Dot, Hlc, HlcClock, KeyDelta, KeyState, ReplicaId, TtlChange,
    VersionVector,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

// ----- the model -----

/// Replica ids, deliberately not in index order.
const IDS: [u64; 4] = [30, 10, 40, 20];
/// Keys written by the random histories.
const KEYS: u8 = 3;
/// Values SET writes: numbers (so increments apply on top) and non-numbers.
const VALUES: [&str; 6] = ["a", "b", "7", "10", "-3", "2.5"];

#[derive(Clone, Debug)]
enum Op {
    Set(&'static str, TtlChange),
    Incr(Amount),
    Delete,
    Ttl(TtlChange),
}

#[derive(Clone, Debug)]
enum Step {
    /// A local write at replica `at` (index modulo the cluster size) whose
    /// wall clock reads `now`.
    Write {
        at: usize,
        key: u8,
        op: Op,
        now: u64,
    },
    /// Deliver the next `count` deltas of origin `from` to replica `to`.
    Deliver {
        from: usize,
        to: usize,
        count: usize,
    },
}

/// One logged write: what travels between replicas.
#[derive(Clone, Debug)]
struct Event {
    origin: ReplicaId,
    key: u8,
    ts: Hlc,
    /// The sequence numbers the write consumed at its origin.
    seqs: Range<u64>,
    delta: KeyDelta,
}

#[derive(Clone, Debug)]
struct Replica {
    id: ReplicaId,
    next_seq: u64,
    ctx: CausalContext,
    keys: BTreeMap<u8, KeyState>,
    clock: HlcClock,
}

impl Replica {
    fn new(id: ReplicaId) -> Self {
        Replica {
            id,
            next_seq: 1,
            ctx: CausalContext::new(),
            keys: BTreeMap::new(),
            clock: HlcClock::new(),
        }
    }

    fn write(&mut self, key: u8, op: &Op, now: u64) -> Event {
        let ts = self.clock.tick(now);
        let id = self.id;
        let first = self.next_seq;
        let mut seq = first;
        let state = self.keys.entry(key).or_default();
        let delta = {
            let mut next_dot = || {
                seq += 1;
                Dot::new(id, seq - 1)
            };
            match op {
                Op::Set(value, ttl) => state.delta_set(
                    Bytes::from_static(value.as_bytes()),
                    ts,
                    *ttl,
                    &mut next_dot,
                ),
                Op::Incr(amount) => state.delta_incr(id, *amount, &mut next_dot),
                Op::Delete => state.delta_delete(ts, &mut next_dot),
                Op::Ttl(ttl) => state.delta_ttl(*ttl, &mut next_dot),
            }
        };
        state.apply(&delta, &mut self.ctx);
        self.next_seq = seq;
        if seq > first {
            self.ctx.insert_up_to(id, seq - 1);
        }
        Event {
            origin: id,
            key,
            ts,
            seqs: first..seq,
            delta,
        }
    }

    fn receive(&mut self, event: &Event) {
        self.keys
            .entry(event.key)
            .or_default()
            .apply(&event.delta, &mut self.ctx);
        for seq in event.seqs.clone() {
            self.ctx.insert(Dot::new(event.origin, seq));
        }
        self.clock.observe(event.ts);
    }

    fn state(&self) -> State {
        State {
            ctx: self.ctx.clone(),
            keys: self
                .keys
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(k, s)| (*k, s.clone()))
                .collect(),
        }
    }
}

/// The replicated part of a replica: its context and its non-empty keys.
#[derive(Clone, Debug, PartialEq)]
struct State {
    ctx: CausalContext,
    keys: BTreeMap<u8, KeyState>,
}

impl State {
    /// Whole-replica join: every key joined with each side's context, and
    /// the contexts merged.
    fn join(&self, other: &State) -> State {
        let names: BTreeSet<u8> = self.keys.keys().chain(other.keys.keys()).copied().collect();
        let empty = KeyState::new();
        let keys = names
            .into_iter()
            .map(|k| {
                let mine = self.keys.get(&k).unwrap_or(&empty);
                let theirs = other.keys.get(&k).unwrap_or(&empty);
                (k, mine.join(&self.ctx, theirs, &other.ctx))
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let mut ctx = self.ctx.clone();
        ctx.merge(&other.ctx);
        State { ctx, keys }
    }

    fn readings(&self) -> BTreeMap<u8, Reading> {
        self.keys
            .iter()
            .map(|(k, s)| (*k, Reading::of(s)))
            .collect()
    }
}

/// What a client can observe of a key.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    value: Option<Bytes>,
    deadline: Option<u64>,
    has_value: bool,
}

impl Reading {
    fn of(state: &KeyState) -> Reading {
        Reading {
            value: state.string_value().map(|v| v.to_bytes()),
            deadline: state.deadline(),
            has_value: state.has_value(),
        }
    }
}

/// Asserts two states are equal version for version, context and reading.
fn assert_same_state(left: &State, right: &State, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&left.keys, &right.keys, "versions differ: {}", what);
    prop_assert_eq!(&left.ctx, &right.ctx, "contexts differ: {}", what);
    prop_assert_eq!(
        left.readings(),
        right.readings(),
        "readings differ: {}",
        what
    );
    Ok(())
}

struct Cluster {
    replicas: Vec<Replica>,
    /// Each origin's log of writes, in its order.
    logs: Vec<Vec<Event>>,
    /// `delivered[to][from]`: how many of `from`'s writes `to` has applied.
    delivered: Vec<Vec<usize>>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Cluster {
            replicas: IDS[..n]
                .iter()
                .map(|&id| Replica::new(ReplicaId(id)))
                .collect(),
            logs: vec![Vec::new(); n],
            delivered: vec![vec![0; n]; n],
        }
    }

    fn len(&self) -> usize {
        self.replicas.len()
    }

    fn write(&mut self, at: usize, key: u8, op: Op, now: u64) -> &Event {
        let event = self.replicas[at].write(key, &op, now);
        self.logs[at].push(event);
        self.logs[at].last().unwrap()
    }

    fn pending(&self, from: usize, to: usize) -> usize {
        if from == to {
            0
        } else {
            self.logs[from].len() - self.delivered[to][from]
        }
    }

    /// The next write of `from` that `to` has not applied yet.
    fn next_event(&self, from: usize, to: usize) -> Option<&Event> {
        (self.pending(from, to) > 0).then(|| &self.logs[from][self.delivered[to][from]])
    }

    fn deliver(&mut self, from: usize, to: usize, count: usize) {
        for _ in 0..count.min(self.pending(from, to)) {
            let event = &self.logs[from][self.delivered[to][from]];
            self.replicas[to].receive(event);
            self.delivered[to][from] += 1;
        }
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.len();
        for step in steps {
            match step {
                Step::Write { at, key, op, now } => {
                    self.write(at % n, *key, op.clone(), *now);
                }
                Step::Deliver { from, to, count } => self.deliver(from % n, to % n, *count),
            }
        }
    }

    /// Delivers everything still pending, one delta at a time, choosing the
    /// (origin, destination) pair from `picks` (FIFO per origin).
    fn deliver_rest(&mut self, picks: &[u32]) {
        let n = self.len();
        for round in 0.. {
            let pairs: Vec<(usize, usize)> = (0..n)
                .flat_map(|from| (0..n).map(move |to| (from, to)))
                .filter(|&(from, to)| self.pending(from, to) > 0)
                .collect();
            if pairs.is_empty() {
                break;
            }
            let pick = picks[round % picks.len()] as usize + round;
            let (from, to) = pairs[pick % pairs.len()];
            self.deliver(from, to, 1);
        }
    }

    /// Delivers everything still pending in a fixed order.
    fn sync(&mut self) {
        self.deliver_rest(&[0]);
    }

    fn read(&self, at: usize, key: u8) -> Reading {
        self.replicas[at]
            .keys
            .get(&key)
            .map_or_else(|| Reading::of(&KeyState::new()), Reading::of)
    }

    fn value(&self, at: usize, key: u8) -> Option<String> {
        self.read(at, key)
            .value
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    }
}

// ----- strategies -----

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn ttl_change() -> impl Strategy<Value = TtlChange> {
    prop_oneof![
        Just(TtlChange::Keep),
        Just(TtlChange::Clear),
        (0u64..4).prop_map(|i| TtlChange::Deadline(1_000 + 500 * i)),
        Just(TtlChange::Persist),
    ]
}

/// Small integers and decimals with one fractional digit.
fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        (-3i64..=5).prop_map(Amount::from_int),
        (-25i128..=25).prop_map(|tenths| Amount::new(tenths * 10i128.pow(16))),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop::sample::select(&VALUES[..]), ttl_change()).prop_map(|(v, t)| Op::Set(v, t)),
        3 => amount().prop_map(Op::Incr),
        2 => Just(Op::Delete),
        2 => ttl_change().prop_map(Op::Ttl),
    ]
}

fn steps(op: impl Strategy<Value = Op>, keys: u8, max: usize) -> impl Strategy<Value = Vec<Step>> {
    let write = (0..4usize, 0..keys, op, 0u64..40).prop_map(|(at, key, op, now)| Step::Write {
        at,
        key,
        op,
        now,
    });
    let deliver = (0..4usize, 0..4usize, 1..4usize).prop_map(|(from, to, count)| Step::Deliver {
        from,
        to,
        count,
    });
    prop::collection::vec(prop_oneof![3 => write, 2 => deliver], 0..max)
}

fn picks() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 1..12)
}

// ----- merge laws -----

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn join_is_commutative(n in 2..=4usize, history in steps(any_op(), KEYS, 40), a in 0..4usize, b in 0..4usize) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let (a, b) = (cluster.replicas[a % n].state(), cluster.replicas[b % n].state());
        assert_same_state(&a.join(&b), &b.join(&a), "a ⊔ b vs b ⊔ a")?;
    }

    #[test]
    fn join_is_associative(
        n in 2..=4usize,
        history in steps(any_op(), KEYS, 40),
        (a, b, c) in (0..4usize, 0..4usize, 0..4usize),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let [a, b, c] = [a, b, c].map(|i| cluster.replicas[i % n].state());
        assert_same_state(&a.join(&b).join(&c), &a.join(&b.join(&c)), "(a ⊔ b) ⊔ c vs a ⊔ (b ⊔ c)")?;
    }

    #[test]
    fn join_is_idempotent(n in 2..=4usize, history in steps(any_op(), KEYS, 40), a in 0..4usize, b in 0..4usize) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let (a, b) = (cluster.replicas[a % n].state(), cluster.replicas[b % n].state());
        assert_same_state(&a.join(&a), &a, "a ⊔ a vs a")?;
        let ab = a.join(&b);
        assert_same_state(&ab.join(&ab), &ab, "(a ⊔ b) ⊔ (a ⊔ b) vs a ⊔ b")?;
        assert_same_state(&ab.join(&b), &ab, "(a ⊔ b) ⊔ b vs a ⊔ b")?;
    }

    #[test]
    fn applying_a_delta_equals_joining_its_delta_state(n in 2..=4usize, history in steps(any_op(), KEYS, 40)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        for to in 0..n {
            for from in 0..n {
                let Some(event) = cluster.next_event(from, to) else { continue };
                let mut applied = cluster.replicas[to].clone();
                applied.receive(event);

                // The delta as a state: its added versions, with a context of
                // every dot it adds, removes or consumed.
                let mut delta_ctx = CausalContext::new();
                let mut delta_versions = KeyState::new();
                let adds_only = KeyDelta { removes: Default::default(), adds: event.delta.adds.clone(), colls: Vec::new() };
                delta_versions.apply(&adds_only, &mut delta_ctx);
                for &dot in &event.delta.removes {
                    delta_ctx.insert(dot);
                }
                for seq in event.seqs.clone() {
                    delta_ctx.insert(Dot::new(event.origin, seq));
                }
                let mut delta_keys = BTreeMap::new();
                if !delta_versions.is_empty() {
                    delta_keys.insert(event.key, delta_versions);
                }
                let delta_state = State { ctx: delta_ctx, keys: delta_keys };

                let joined = cluster.replicas[to].state().join(&delta_state);
                assert_same_state(&applied.state(), &joined, "apply(D) vs S ⊔ D")?;
            }
        }
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        n in 2..=4usize,
        history in steps(any_op(), KEYS, 48),
        picks in picks(),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.deliver_rest(&picks);
        let first = cluster.replicas[0].state();
        for replica in &cluster.replicas[1..] {
            assert_same_state(&replica.state(), &first, "replica vs replica 0 after full delivery")?;
        }
    }

    #[test]
    fn full_state_sync_agrees_with_delivering_every_delta(
        n in 2..=4usize,
        history in steps(any_op(), KEYS, 48),
        picks in picks(),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let joined = cluster.replicas[1..]
            .iter()
            .fold(cluster.replicas[0].state(), |acc, r| acc.join(&r.state()));
        cluster.deliver_rest(&picks);
        for replica in &cluster.replicas {
            assert_same_state(&replica.state(), &joined, "delivered deltas vs joined states")?;
        }
    }
}

// ----- semantics (DESIGN.md §3) -----

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const K: u8 = 0;

fn set(value: &'static str) -> Op {
    Op::Set(value, TtlChange::Keep)
}

fn incr(amount: i64) -> Op {
    Op::Incr(Amount::from_int(amount))
}

fn expire_at(deadline: u64) -> Op {
    Op::Ttl(TtlChange::Deadline(deadline))
}

fn assert_everywhere(cluster: &Cluster, key: u8, value: Option<&str>, deadline: Option<u64>) {
    for at in 0..cluster.len() {
        assert_eq!(
            cluster.value(at, key).as_deref(),
            value,
            "value at replica {at}"
        );
        assert_eq!(
            cluster.read(at, key).has_value,
            value.is_some(),
            "has_value at replica {at}"
        );
        if value.is_some() {
            assert_eq!(
                cluster.read(at, key).deadline,
                deadline,
                "deadline at replica {at}"
            );
        }
    }
}

#[test]
fn concurrent_sets_resolve_to_the_larger_timestamp_then_replica_id() {
    let mut cluster = Cluster::new(2);
    // Larger timestamp wins, whichever replica wrote it.
    cluster.write(A, K, set("a"), 100);
    cluster.write(B, K, set("b"), 200);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("b"), None);

    // Equal timestamps: the larger replica id wins (A = 30 > B = 10).
    let ta = cluster.write(A, K, set("a2"), 300).ts;
    let tb = cluster.write(B, K, set("b2"), 300).ts;
    assert_eq!(ta, tb);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("a2"), None);

    // A causally later write wins even when its wall clock is behind.
    cluster.write(B, K, set("later"), 5);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("later"), None);
}

#[test]
fn delete_keeps_a_concurrent_unobserved_write() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, set("old"), 100);
    cluster.sync();
    cluster.write(B, K, Op::Delete, 900);
    cluster.write(A, K, set("new"), 200);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("new"), None);

    // The DEL removed only what it observed: deleting again clears the key.
    cluster.write(B, K, Op::Delete, 1_000);
    cluster.sync();
    assert_everywhere(&cluster, K, None, None);
}

#[test]

fn delete_keeps_a_concurrent_unobserved_write_to_a_former_counter() {
    // Same as above, but the key once held a counter, so the DEL leaves a
    // delete marker to remember the totals it reset.
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incr(5), 100);
    cluster.sync();
    cluster.write(B, K, Op::Delete, 900);
    cluster.write(A, K, set("new"), 200);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("new"), None);
}

#[test]
fn concurrent_increments_all_count() {
    let mut cluster = Cluster::new(3);
    cluster.write(A, K, incr(5), 10);
    cluster.write(A, K, Op::Incr(Amount::new(15 * 10i128.pow(16))), 11); // 1.5
    cluster.write(B, K, incr(-2), 10);
    cluster.write(C, K, incr(10), 10);
    cluster.write(C, K, incr(1), 12);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("15.5"), None);

    // On top of a numeric SET every replica saw.
    cluster.write(B, 1, set("100"), 50);
    cluster.sync();
    cluster.write(A, 1, incr(1), 60);
    cluster.write(B, 1, incr(2), 60);
    cluster.write(C, 1, incr(3), 60);
    cluster.sync();
    assert_everywhere(&cluster, 1, Some("106"), None);
}

#[test]
fn set_resets_only_the_increments_it_observed() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incr(5), 10);
    cluster.sync();
    cluster.write(B, K, set("100"), 20);
    cluster.write(A, K, incr(3), 21);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("103"), None);
}

#[test]
fn delete_of_a_counter_keeps_concurrent_increments() {
    // The increment comes from the replica that did not delete...
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incr(5), 10);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("5"), None);
    cluster.write(A, K, Op::Delete, 20);
    cluster.write(B, K, incr(2), 20);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("2"), None);

    // ...or from the replica whose increments the delete reset.
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incr(5), 10);
    cluster.sync();
    cluster.write(B, K, Op::Delete, 20);
    cluster.write(A, K, incr(2), 20);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("2"), None);
}

#[test]

fn set_resets_the_latest_observed_total_after_a_decrement() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incr(5), 10);
    cluster.sync();
    cluster.write(B, K, set("100"), 20);
    cluster.write(A, K, incr(-2), 21);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("98"), None);
    // This SET observed the run at total 3 (after the decrement), not 5.
    cluster.write(B, K, set("50"), 30);
    cluster.write(A, K, incr(1), 31);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("51"), None);
}

#[test]

fn concurrent_deletes_each_reset_the_increments_they_observed() {
    let mut cluster = Cluster::new(3);
    cluster.write(A, K, incr(5), 10);
    cluster.deliver(A, B, 1);
    cluster.write(B, K, Op::Delete, 20); // resets A's 5
    cluster.write(C, K, incr(1), 10);
    cluster.write(C, K, Op::Delete, 90); // resets C's 1, later timestamp
    cluster.write(A, K, incr(2), 30); // concurrent with both deletes
    cluster.sync();
    assert_everywhere(&cluster, K, Some("2"), None);
}

#[test]
fn longer_deadline_wins_among_concurrent_expires() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, set("v"), 10);
    cluster.sync();
    cluster.write(A, K, expire_at(9_000), 20);
    cluster.write(B, K, expire_at(5_000), 30);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("v"), Some(9_000));
    assert!(cluster
        .replicas
        .iter()
        .all(|r| r.keys[&K].is_visible(9_000)));
    assert!(cluster
        .replicas
        .iter()
        .all(|r| !r.keys[&K].is_visible(9_001)));
}

#[test]
fn persist_beats_concurrent_expire() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, Op::Set("v", TtlChange::Deadline(3_000)), 10);
    cluster.sync();
    cluster.write(A, K, Op::Ttl(TtlChange::Persist), 20);
    cluster.write(B, K, expire_at(9_000), 30);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("v"), None);
}

#[test]
fn causally_later_expire_overrides_persist() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, Op::Set("v", TtlChange::Deadline(3_000)), 10);
    cluster.write(A, K, Op::Ttl(TtlChange::Persist), 20);
    cluster.sync();
    cluster.write(B, K, expire_at(4_000), 30);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("v"), Some(4_000));

    // A causally later, shorter deadline overrides a longer one too.
    cluster.write(A, K, expire_at(2_000), 40);
    cluster.sync();
    assert_everywhere(&cluster, K, Some("v"), Some(2_000));
}

// ----- checkers -----

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn checker_every_replica_counter_equals_the_sum_of_acknowledged_increments(
        n in 2..=4usize,
        history in steps(amount().prop_map(Op::Incr), 1, 48),
        picks in picks(),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        // Before full delivery: each replica counts exactly the increments
        // it has applied (its own and those delivered to it).
        for to in 0..n {
            let seen: Vec<&Event> = (0..n)
                .flat_map(|from| {
                    let count = if from == to { cluster.logs[from].len() } else { cluster.delivered[to][from] };
                    cluster.logs[from][..count].iter()
                })
                .collect();
            let expected = sum_of_increments(&history, n, |at, i| {
                seen.iter().any(|e| e.origin == cluster.replicas[at].id && e.seqs.start == i)
            });
            prop_assert_eq!(cluster.value(to, 0), expected.map(render), "replica {} before full delivery", to);
        }
        cluster.deliver_rest(&picks);
        let expected = sum_of_increments(&history, n, |_, _| true);
        for at in 0..n {
            prop_assert_eq!(cluster.value(at, 0), expected.map(render), "replica {} after full delivery", at);
        }
    }

    #[test]

    fn collect_garbage_never_changes_what_a_key_reads(
        n in 2..=4usize,
        history in steps(any_op(), KEYS, 48),
        picks in picks(),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.deliver_rest(&picks);
        let stable = cluster.replicas[1..]
            .iter()
            .fold(cluster.replicas[0].ctx.version_vector().clone(), |acc: VersionVector, r| {
                acc.meet(r.ctx.version_vector())
            });
        for replica in &cluster.replicas {
            prop_assert!(replica.ctx.version_vector().dominates(&stable));
            for (key, state) in &replica.keys {
                let mut collected = state.clone();
                let emptied = collected.collect_garbage(&stable);
                prop_assert_eq!(emptied, collected.is_empty());
                let (before, after) = (Reading::of(state), Reading::of(&collected));
                prop_assert_eq!(&before.value, &after.value, "value of key {}", key);
                prop_assert_eq!(before.has_value, after.has_value, "has_value of key {}", key);
                // A key without a value reads as absent whatever its TTL.
                if before.has_value {
                    prop_assert_eq!(before.deadline, after.deadline, "deadline of key {}", key);
                }
            }
        }
    }
}

/// The sum of the increments in `history` (replayed on `n` replicas) for
/// which `counted(replica index, seq)` holds; `None` when there are none.
fn sum_of_increments(
    history: &[Step],
    n: usize,
    counted: impl Fn(usize, u64) -> bool,
) -> Option<Amount> {
    let mut next_seq = vec![1u64; n];
    let mut sum = None;
    for step in history {
        if let Step::Write {
            at,
            op: Op::Incr(amount),
            ..
        } = step
        {
            let at = at % n;
            if counted(at, next_seq[at]) {
                sum = Some(sum.unwrap_or(Amount::ZERO).saturating_add(*amount));
            }
            next_seq[at] += 1;
        }
    }
    sum
}

fn render(amount: Amount) -> String {
    String::from_utf8(amount.to_bytes()).unwrap()
}
