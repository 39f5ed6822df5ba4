//! Merge laws and DESIGN.md §3 semantics of the hash CRDT (`OrMap`), driven
//! through the key CRDT (`KeyState` holding an `OrMap`) the way the store
//! drives it: each replica has a causal context and one key; a local write
//! builds a delta with the hash's mutators, applies it and logs it; delivery
//! applies an origin's logged deltas in order at another replica.
//!
//! Checked: join commutative, associative, idempotent; a delta applied
//! equals its delta-state joined; any FIFO interleaving converges (states
//! and reads); garbage collection over a stable vector changes no read; and
//! the hash rules as named tests: concurrent HSETs of a field resolve by
//! LWW (HLC, then replica), concurrent HINCRBYs all count, an HDEL keeps a
//! concurrent HSET it did not observe, an HSET resets only the increments
//! it observed, an HDEL resets only observed increments, and a concurrent
//! hash/string creation resolves the same way everywhere.

use std::collections::BTreeMap;

use bytes::Bytes;
use cordis::crdt::ormap::{HashDelta, OrMap};
use cordis::crdt::{
    Amount, CausalContext, Dot, ElementCrdt, Hlc, KeyDelta, KeyState, Kind, ReplicaId, TtlChange,
};
use proptest::prelude::*;

const IDS: [u64; 4] = [30, 10, 40, 20];
const FIELDS: [&str; 3] = ["f", "g", "h"];
const VALUES: [&str; 4] = ["1", "10", "x", "2.5"];

#[derive(Clone, Debug)]
enum Op {
    Set(usize, usize),
    Incr(usize, i64),
    IncrFloat(usize, &'static str),
    Del(usize),
    Delete,
    SetString,
}

#[derive(Clone, Debug)]
enum Step {
    Write {
        at: usize,
        op: Op,
    },
    Deliver {
        from: usize,
        to: usize,
        count: usize,
    },
}

#[derive(Clone)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    clock: u64,
    ctx: CausalContext,
    key: KeyState,
}

type Read = Option<BTreeMap<String, String>>;

impl Replica {
    fn new(id: u64) -> Self {
        Replica {
            id: ReplicaId(id),
            seq: 0,
            clock: 0,
            ctx: CausalContext::new(),
            key: KeyState::new(),
        }
    }

    fn write(&mut self, op: &Op) -> KeyDelta {
        self.clock += 1;
        let ts = Hlc(self.clock << 16);
        let (id, mut seq) = (self.id, self.seq);
        let mut next = || {
            seq += 1;
            Dot::new(id, seq)
        };
        let state = &self.key;
        let map = match state.typed::<OrMap>() {
            Ok(Some(map)) => map.clone(),
            _ => OrMap::default(),
        };
        // A hash write to a key of another type starts from scratch, as the
        // store purges what it replaces (the commands refuse it instead).
        let base = if state.typed::<OrMap>().is_err() {
            state.delta_purge()
        } else {
            KeyDelta::default()
        };
        let field = |f: &usize| FIELDS[*f].as_bytes();
        let mut change = HashDelta::default();
        let delta = match op {
            Op::Set(f, v) => {
                let value = Bytes::from_static(VALUES[*v].as_bytes());
                change.push(Some(map.delta_set(field(f), value, ts, &mut next)));
                base.then(state.delta_collection::<OrMap>(change, ts, &mut next))
            }
            Op::Incr(f, by) => {
                change.push(Some(map.delta_incr(
                    field(f),
                    id,
                    Amount::from_int(*by),
                    &mut next,
                )));
                base.then(state.delta_collection::<OrMap>(change, ts, &mut next))
            }
            Op::IncrFloat(f, by) => {
                let by = cordis::crdt::number::parse_decimal(by.as_bytes()).unwrap();
                change.push(Some(map.delta_incr(field(f), id, by, &mut next)));
                base.then(state.delta_collection::<OrMap>(change, ts, &mut next))
            }
            Op::Del(f) => {
                change.push(map.delta_delete(field(f), ts, &mut next));
                state.delta_collection::<OrMap>(change, ts, &mut next)
            }
            Op::Delete => state.delta_delete(ts, &mut next),
            Op::SetString => {
                state.delta_set(Bytes::from_static(b"str"), ts, TtlChange::Keep, &mut next)
            }
        };
        self.key.apply(&delta, &mut self.ctx);
        self.seq = seq.max(self.seq + 1);
        self.ctx.insert_up_to(self.id, self.seq);
        delta
    }

    /// The hash as field → value text; `None` when the key is another type.
    fn read(&self) -> Read {
        match self.key.typed::<OrMap>() {
            Ok(Some(map)) => {
                assert_eq!(map.len(), map.entries().count(), "HLEN count drifted");
                Some(
                    map.entries()
                        .map(|(f, v)| {
                            (
                                String::from_utf8(f.to_vec()).unwrap(),
                                String::from_utf8(v.to_bytes().to_vec()).unwrap(),
                            )
                        })
                        .collect(),
                )
            }
            Ok(None) => Some(BTreeMap::new()),
            Err(_) => None,
        }
    }

    fn field(&self, f: &str) -> Option<String> {
        self.read().and_then(|m| m.get(f).cloned())
    }
}

struct Cluster {
    replicas: Vec<Replica>,
    logs: Vec<Vec<KeyDelta>>,
    /// delivered[to][from]: how many of `from`'s deltas `to` applied.
    delivered: Vec<Vec<usize>>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Cluster {
            replicas: IDS[..n].iter().map(|&id| Replica::new(id)).collect(),
            logs: vec![Vec::new(); n],
            delivered: vec![vec![0; n]; n],
        }
    }

    fn write(&mut self, at: usize, op: Op) {
        self.run(&[Step::Write { at, op }]);
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.replicas.len();
        for step in steps {
            match step {
                Step::Write { at, op } => {
                    let at = at % n;
                    let delta = self.replicas[at].write(op);
                    self.logs[at].push(delta);
                    self.delivered[at][at] = self.logs[at].len();
                }
                Step::Deliver { from, to, count } => self.deliver(from % n, to % n, *count),
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, count: usize) {
        for _ in 0..count {
            let next = self.delivered[to][from];
            if from == to || next >= self.logs[from].len() {
                return;
            }
            let delta = self.logs[from][next].clone();
            let replica = &mut self.replicas[to];
            replica.key.apply(&delta, &mut replica.ctx);
            self.delivered[to][from] += 1;
        }
    }

    fn sync(&mut self) {
        let n = self.replicas.len();
        for to in 0..n {
            for from in 0..n {
                self.deliver(from, to, usize::MAX);
            }
        }
    }

    fn all_read(&self, field: &str) -> Vec<Option<String>> {
        self.replicas.iter().map(|r| r.field(field)).collect()
    }
}

fn op() -> impl Strategy<Value = Op> {
    let field = 0..FIELDS.len();
    prop_oneof![
        6 => (field.clone(), 0..VALUES.len()).prop_map(|(f, v)| Op::Set(f, v)),
        4 => (field.clone(), -3..4i64).prop_map(|(f, by)| Op::Incr(f, by)),
        1 => (field.clone(), prop_oneof![Just("0.1"), Just("-1.5")]).prop_map(|(f, by)| Op::IncrFloat(f, by)),
        4 => field.prop_map(Op::Del),
        1 => Just(Op::Delete),
        1 => Just(Op::SetString),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..4usize, op()).prop_map(|(at, op)| Step::Write { at, op }),
            2 => (0..4usize, 0..4usize, 1..4usize)
                .prop_map(|(from, to, count)| Step::Deliver { from, to, count }),
        ],
        1..max,
    )
}

fn joined(a: &Replica, b: &Replica) -> (KeyState, CausalContext) {
    let state = a.key.join(&a.ctx, &b.key, &b.ctx);
    let mut ctx = a.ctx.clone();
    ctx.merge(&b.ctx);
    (state, ctx)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn join_is_commutative(n in 2..=4usize, history in steps(40), a in 0..4usize, b in 0..4usize) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let (x, y) = (&cluster.replicas[a % n], &cluster.replicas[b % n]);
        prop_assert_eq!(joined(x, y).0, joined(y, x).0);
    }

    #[test]
    fn join_is_associative(n in 3..=4usize, history in steps(40)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let [x, y, z] = [&cluster.replicas[0], &cluster.replicas[1], &cluster.replicas[2]];
        let (xy, xy_ctx) = joined(x, y);
        let left = xy.join(&xy_ctx, &z.key, &z.ctx);
        let (yz, yz_ctx) = joined(y, z);
        let right = x.key.join(&x.ctx, &yz, &yz_ctx);
        prop_assert_eq!(left, right);
    }

    #[test]
    fn join_is_idempotent(n in 2..=4usize, history in steps(40), a in 0..4usize) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let x = &cluster.replicas[a % n];
        prop_assert_eq!(&x.key.join(&x.ctx, &x.key, &x.ctx), &x.key);
    }

    #[test]
    fn applying_a_delta_equals_joining_its_delta_state(n in 2..=4usize, history in steps(40), extra in op()) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let mut replica = cluster.replicas[0].clone();
        let before = replica.clone();
        let delta = replica.write(&extra);
        // The delta's own state: the delta applied to nothing, with a
        // context holding exactly the dots it names.
        let mut delta_ctx = CausalContext::new();
        let mut delta_state = KeyState::new();
        delta_state.apply(&delta, &mut delta_ctx);
        let merged = before.key.join(&before.ctx, &delta_state, &delta_ctx);
        prop_assert_eq!(merged, replica.key);
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(n in 2..=4usize, history in steps(60)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.sync();
        let first = cluster.replicas[0].key.clone();
        for r in &cluster.replicas[1..] {
            prop_assert_eq!(&r.key, &first);
            prop_assert_eq!(r.read(), cluster.replicas[0].read());
        }
    }

    /// Joining two replicas' whole states gives what delivering the missing
    /// deltas gives (the anti-entropy path agrees with the delta path).
    #[test]
    fn state_join_agrees_with_delta_delivery(history in steps(50)) {
        let mut cluster = Cluster::new(2);
        cluster.run(&history);
        let (state, _) = joined(&cluster.replicas[0], &cluster.replicas[1]);
        cluster.sync();
        prop_assert_eq!(state, cluster.replicas[0].key.clone());
    }

    #[test]
    fn garbage_collection_over_a_stable_vector_changes_no_read(n in 2..=3usize, history in steps(50)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.sync();
        let stable = cluster.replicas[0].ctx.version_vector().clone();
        for r in &mut cluster.replicas {
            let before = r.read();
            r.key.collect_garbage(&stable);
            prop_assert_eq!(r.read(), before);
        }
        let first = cluster.replicas[0].key.clone();
        for r in &cluster.replicas[1..] {
            prop_assert_eq!(&r.key, &first);
        }
    }
}

/// A cluster where both replicas hold field `f` = `start`.
fn synced_with(start: &'static str) -> Cluster {
    let mut cluster = Cluster::new(2);
    let v = VALUES.iter().position(|v| *v == start).unwrap();
    cluster.write(0, Op::Set(0, v));
    cluster.sync();
    cluster
}

#[test]
fn concurrent_hsets_of_a_field_resolve_by_lww() {
    let mut cluster = synced_with("1");
    // Replica 1's clock is ahead: its write wins wherever it lands.
    cluster.replicas[1].clock = 50;
    cluster.write(1, Op::Set(0, 2)); // "x"
    cluster.write(0, Op::Set(0, 1)); // "10"
    cluster.sync();
    assert_eq!(cluster.all_read("f"), [Some("x".into()), Some("x".into())]);
}

#[test]
fn concurrent_hsets_with_equal_clocks_resolve_by_replica() {
    let mut cluster = Cluster::new(2);
    cluster.write(0, Op::Set(0, 1)); // replica 30: "10"
    cluster.write(1, Op::Set(0, 2)); // replica 10: "x"
    cluster.sync();
    // Same HLC: the larger replica id (30, replica 0) wins.
    assert_eq!(
        cluster.all_read("f"),
        [Some("10".into()), Some("10".into())]
    );
}

#[test]
fn concurrent_hincrbys_all_count() {
    let mut cluster = synced_with("10");
    cluster.write(0, Op::Incr(0, 3));
    cluster.write(1, Op::Incr(0, 2));
    cluster.write(1, Op::Incr(0, 2));
    cluster.sync();
    assert_eq!(
        cluster.all_read("f"),
        [Some("17".into()), Some("17".into())]
    );
}

#[test]
fn hdel_keeps_a_concurrent_unobserved_hset() {
    let mut cluster = synced_with("1");
    cluster.write(0, Op::Del(0));
    cluster.write(1, Op::Set(0, 2));
    cluster.sync();
    assert_eq!(cluster.all_read("f"), [Some("x".into()), Some("x".into())]);
}

#[test]
fn hdel_keeps_a_concurrent_unobserved_hincrby() {
    let mut cluster = synced_with("10");
    cluster.write(0, Op::Del(0));
    cluster.write(1, Op::Incr(0, 4));
    cluster.sync();
    assert_eq!(cluster.all_read("f"), [Some("4".into()), Some("4".into())]);
}

#[test]
fn hdel_resets_only_the_increments_it_observed() {
    let mut cluster = Cluster::new(2);
    cluster.write(1, Op::Incr(0, 5));
    cluster.sync();
    // Replica 0 deletes the field (having seen +5) while replica 1 adds 1
    // more to the same run: only the unobserved +1 survives.
    cluster.write(0, Op::Del(0));
    cluster.write(1, Op::Incr(0, 1));
    cluster.sync();
    assert_eq!(cluster.all_read("f"), [Some("1".into()), Some("1".into())]);
}

#[test]
fn del_of_the_whole_hash_resets_only_the_increments_it_observed() {
    let mut cluster = Cluster::new(2);
    cluster.write(1, Op::Incr(0, 5));
    cluster.write(1, Op::Set(1, 0));
    cluster.sync();
    cluster.write(0, Op::Delete);
    cluster.write(1, Op::Incr(0, 1));
    cluster.sync();
    assert_eq!(cluster.all_read("f"), [Some("1".into()), Some("1".into())]);
    assert_eq!(cluster.all_read("g"), [None, None]);
}

#[test]
fn hset_on_one_side_and_hincrby_on_the_other_add_up() {
    let mut cluster = synced_with("1");
    cluster.write(0, Op::Incr(0, 3));
    cluster.sync();
    // Both see 4; replica 0 sets 10 while replica 1 adds 2: 10 + 2.
    cluster.write(0, Op::Set(0, 1));
    cluster.write(1, Op::Incr(0, 2));
    cluster.sync();
    assert_eq!(
        cluster.all_read("f"),
        [Some("12".into()), Some("12".into())]
    );
}

#[test]
fn increments_concurrent_with_a_non_numeric_hset_leave_its_value() {
    let mut cluster = synced_with("1");
    cluster.write(0, Op::Set(0, 2)); // "x"
    cluster.write(1, Op::Incr(0, 2));
    cluster.sync();
    assert_eq!(cluster.all_read("f"), [Some("x".into()), Some("x".into())]);
}

#[test]
fn float_increments_sum_exactly() {
    let mut cluster = Cluster::new(3);
    cluster.write(0, Op::IncrFloat(0, "0.1"));
    cluster.write(1, Op::IncrFloat(0, "0.1"));
    cluster.write(2, Op::IncrFloat(0, "0.1"));
    cluster.sync();
    assert_eq!(
        cluster.all_read("f"),
        [Some("0.3".into()), Some("0.3".into()), Some("0.3".into())]
    );
}

#[test]
fn plain_fields_stay_inline_until_counters_or_conflicts_appear() {
    let mut cluster = synced_with("1");
    let plain = |c: &Cluster, r: usize| {
        let map = c.replicas[r].key.typed::<OrMap>().unwrap().unwrap();
        matches!(
            map.field_state(b"f"),
            Some(cordis::crdt::ormap::FieldState::Plain(_))
        )
    };
    assert!(plain(&cluster, 0) && plain(&cluster, 1));
    // Concurrent writes need the full form until one write observes both.
    cluster.write(0, Op::Set(0, 1));
    cluster.write(1, Op::Set(0, 2));
    cluster.sync();
    assert!(!plain(&cluster, 0));
    cluster.write(1, Op::Set(0, 0));
    cluster.sync();
    assert!(plain(&cluster, 0) && plain(&cluster, 1));
}

#[test]
fn concurrent_creation_as_hash_and_string_resolves_to_the_later_claim() {
    let mut cluster = Cluster::new(2);
    cluster.replicas[0].clock = 100;
    cluster.write(0, Op::Set(0, 0));
    cluster.write(1, Op::SetString);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.key.kind(), Some(Kind::Hash));
        assert!(r.key.has_type_conflict());
    }
    // A DEL that observed both clears the conflict.
    cluster.write(1, Op::Delete);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.key.kind(), None);
        assert!(r.key.collections().is_empty());
    }
    let _ = OrMap::KIND;
}
