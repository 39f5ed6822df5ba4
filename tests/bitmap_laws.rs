//! Merge laws of the bitmap CRDT (`cordis::crdt::bitmap`): bit patches on
//! a key, mixed with the string writes they meet (SET, INCRBY, DEL, TTLs).
//!
//! The same in-memory model as `crdt_laws.rs` (replicas with an id, a
//! sequence counter, a causal context, an HLC clock; deltas delivered FIFO
//! per origin) drives SETBIT-like bit writes, BITFIELD SET-like field
//! writes and BITFIELD INCRBY-like increments under every overflow mode.
//!
//! Checked here:
//! - the state join is commutative, associative and idempotent;
//! - applying a delta equals joining the delta's own state;
//! - replicas converge whatever the delivery order, and a full-state sync
//!   agrees with delivering every delta;
//! - the merge rule of docs/semantics.md: concurrent bit writes on
//!   different bits both survive, concurrent increments all count, a SET
//!   supersedes the bit writes it observed but not concurrent ones.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use bytes::Bytes;
use cordis::crdt::bitmap::{BitField, BitOp, BitWrite, Overflow};
use cordis::crdt::{
    Amount, CausalContext, Dot, Hlc, HlcClock, KeyDelta, KeyState, ReplicaId, TtlChange,
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
    /// Bit writes (and increments) of one command, in order.
    Bits(Vec<BitWrite>),
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
                Op::Bits(writes) => state.delta_bitmap(writes, ts, id, &mut next_dot),
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

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::Wrap),
        Just(Overflow::Sat),
        Just(Overflow::Fail)
    ]
}

/// A bit write, a field write or a field increment over the first 24 bits
/// (so writes overlap often), with widths 1..=12 (signed or not).
fn bit_write() -> impl Strategy<Value = BitWrite> {
    let field = (0u64..20, 1u8..=12, any::<bool>()).prop_map(|(offset, width, signed)| BitField {
        offset,
        width,
        signed,
    });
    let op = prop_oneof![
        (0u64..4096).prop_map(BitOp::Write),
        ((-300i64..300), overflow()).prop_map(|(amount, overflow)| BitOp::Add { amount, overflow }),
    ];
    prop_oneof![
        2 => (0u64..24, any::<bool>()).prop_map(|(offset, on)| BitWrite {
            field: BitField::bit(offset),
            op: BitOp::Write(on as u64),
            reach: (offset >> 3) + 1,
        }),
        2 => (field, op).prop_map(|(field, op)| BitWrite {
            field,
            op,
            reach: ((field.offset + field.width as u64 - 1) >> 3) + 1,
        }),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (prop::sample::select(&VALUES[..]), ttl_change()).prop_map(|(v, t)| Op::Set(v, t)),
        1 => amount().prop_map(Op::Incr),
        1 => Just(Op::Delete),
        1 => ttl_change().prop_map(Op::Ttl),
        5 => prop::collection::vec(bit_write(), 1..4).prop_map(Op::Bits),
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

// ----- the merge rule (docs/semantics.md, bitmaps) -----

const A: usize = 0;
const B: usize = 1;
const K: u8 = 0;

fn setbit(offset: u64, on: bool) -> Op {
    Op::Bits(vec![BitWrite {
        field: BitField::bit(offset),
        op: BitOp::Write(on as u64),
        reach: (offset >> 3) + 1,
    }])
}

fn incrby_u8(offset: u64, amount: i64, overflow: Overflow) -> Op {
    Op::Bits(vec![BitWrite {
        field: BitField {
            offset,
            width: 8,
            signed: false,
        },
        op: BitOp::Add { amount, overflow },
        reach: ((offset + 7) >> 3) + 1,
    }])
}

fn bytes_at(cluster: &Cluster, at: usize) -> Vec<u8> {
    cluster
        .read(at, K)
        .value
        .map(|v| v.to_vec())
        .unwrap_or_default()
}

#[test]
fn concurrent_setbits_on_different_bits_both_survive() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, setbit(1, true), 1);
    cluster.write(B, K, setbit(6, true), 1);
    cluster.sync();
    for at in [A, B] {
        assert_eq!(bytes_at(&cluster, at), vec![0b0100_0010]);
    }
}

#[test]
fn concurrent_setbits_on_one_bit_resolve_by_timestamp() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, setbit(3, true), 1);
    cluster.write(B, K, setbit(3, false), 5);
    cluster.sync();
    for at in [A, B] {
        assert_eq!(bytes_at(&cluster, at), vec![0]);
    }
}

#[test]
fn concurrent_bitfield_increments_all_count_with_overflow_on_the_merged_value() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incrby_u8(0, 200, Overflow::Wrap), 1);
    cluster.write(B, K, incrby_u8(0, 100, Overflow::Wrap), 1);
    cluster.sync();
    for at in [A, B] {
        assert_eq!(bytes_at(&cluster, at), vec![(300 % 256) as u8]);
    }
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, incrby_u8(0, 200, Overflow::Sat), 1);
    cluster.write(B, K, incrby_u8(0, 100, Overflow::Sat), 1);
    cluster.sync();
    for at in [A, B] {
        assert_eq!(bytes_at(&cluster, at), vec![255]);
    }
}

#[test]
fn repeated_wrap_increments_fold_into_one_patch() {
    let mut cluster = Cluster::new(2);
    for _ in 0..50 {
        cluster.write(A, K, incrby_u8(0, 7, Overflow::Wrap), 1);
    }
    let state = &cluster.replicas[A].keys[&K];
    assert_eq!(state.bit_patches().count(), 1);
    assert_eq!(bytes_at(&cluster, A), vec![(350 % 256) as u8]);
}

#[test]
fn rewriting_one_bit_keeps_one_patch() {
    let mut cluster = Cluster::new(1);
    for i in 0..20 {
        cluster.write(A, K, setbit(5, i % 2 == 0), 1);
    }
    assert_eq!(cluster.replicas[A].keys[&K].bit_patches().count(), 1);
}

#[test]
fn a_set_supersedes_observed_bit_writes_but_not_concurrent_ones() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, setbit(0, true), 1);
    cluster.sync();
    // B observed bit 0; A's bit 6 is concurrent with B's SET.
    cluster.write(A, K, setbit(6, true), 2);
    cluster.write(B, K, Op::Set("a", TtlChange::Keep), 3);
    cluster.sync();
    for at in [A, B] {
        // "a" is 0110_0001; bit 6 set on top gives "c"; bit 0 stays clear.
        assert_eq!(bytes_at(&cluster, at), b"c".to_vec());
    }
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, Op::Set("a", TtlChange::Keep), 1);
    cluster.sync();
    cluster.write(A, K, setbit(0, true), 2);
    cluster.write(B, K, Op::Set("b", TtlChange::Keep), 3);
    cluster.sync();
    for at in [A, B] {
        // The concurrent bit write renders over the winning SET ("b").
        assert_eq!(bytes_at(&cluster, at), vec![b'b' | 0x80]);
    }
}

#[test]
fn a_delete_keeps_a_concurrent_unobserved_bit_write() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, setbit(0, true), 1);
    cluster.sync();
    cluster.write(A, K, Op::Delete, 2);
    cluster.write(B, K, setbit(9, true), 2);
    cluster.sync();
    for at in [A, B] {
        assert_eq!(bytes_at(&cluster, at), vec![0, 0b0100_0000]);
    }
}

#[test]
fn bit_writes_on_a_counter_apply_to_the_number_it_read() {
    let mut cluster = Cluster::new(2);
    cluster.write(A, K, Op::Set("10", TtlChange::Keep), 1);
    cluster.write(A, K, Op::Incr(Amount::from_int(1)), 2);
    cluster.sync();
    // "11" -> set the lowest bit of the second byte: '1' is 0x31, already odd;
    // clear it instead: "10", then B's concurrent INCR counts on top.
    cluster.write(A, K, setbit(15, false), 3);
    cluster.write(B, K, Op::Incr(Amount::from_int(5)), 3);
    cluster.sync();
    for at in [A, B] {
        assert_eq!(cluster.value(at, K).as_deref(), Some("15"));
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// SETBIT and GETBIT read one bit without rendering when they can: the
    /// point read must agree with the rendered bytes.
    #[test]
    fn a_point_read_of_a_bit_agrees_with_the_rendered_value(
        n in 2..=3usize,
        history in steps(any_op(), KEYS, 40),
        picks in picks(),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.deliver_rest(&picks);
        for replica in &cluster.replicas {
            for state in replica.keys.values() {
                let rendered = state.string_value().map(|v| v.to_bytes()).unwrap_or_default();
                for offset in 0..40u64 {
                    if let Some((on, len)) = state.bit_probe(offset) {
                        let byte = rendered.get((offset >> 3) as usize).copied().unwrap_or(0);
                        prop_assert_eq!(on, byte >> (7 - (offset & 7)) & 1 == 1, "bit {}", offset);
                        prop_assert_eq!(len, rendered.len() as u64);
                    }
                }
            }
        }
    }
}
