//! Merge laws of HyperLogLog keys in the per-key CRDT (`crdt::key` with
//! `crdt::hll` writes), as named property tests: replicas make PFADD-like
//! writes (the same register updates PFADD makes), SETs and DELs on one
//! key; then
//! - the state join is commutative, associative and idempotent;
//! - applying a write's delta equals joining the delta's own state;
//! - replicas that receive the same writes in any order (FIFO per origin)
//!   read the same bytes;
//! - with only PFADDs, the merged registers are the register-wise max of
//!   every element added anywhere (concurrent PFADDs all count).

use bytes::Bytes;
use cordis::commands::hyperloglog::register_of;
use cordis::crdt::hll::{Hll, DEFAULT_SPARSE_MAX, REGISTERS};
use cordis::crdt::{CausalContext, Dot, HlcClock, KeyDelta, KeyState, ReplicaId};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// PFADD of elements `e<n>`.
    Add(Vec<u16>),
    Set,
    Delete,
}

#[derive(Clone)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    ctx: CausalContext,
    key: KeyState,
    clock: HlcClock,
}

impl Replica {
    fn new(id: u64) -> Self {
        Replica {
            id: ReplicaId(id),
            seq: 1,
            ctx: CausalContext::new(),
            key: KeyState::new(),
            clock: HlcClock::new(),
        }
    }

    /// A local write: its delta, applied here too.
    fn write(&mut self, op: &Op, now: u64) -> KeyDelta {
        let ts = self.clock.tick(now);
        let id = self.id;
        let mut seq = self.seq;
        let mut next_dot = || {
            seq += 1;
            Dot::new(id, seq - 1)
        };
        let delta = match op {
            Op::Add(elements) => {
                let current = self.key.string_value().map(|v| v.to_bytes());
                let mut hll = current
                    .and_then(|b| Hll::from_bytes(&b))
                    .unwrap_or_default();
                for e in elements {
                    let (index, run) = register_of(format!("e{e}").as_bytes());
                    hll.raise(index, run, DEFAULT_SPARSE_MAX).unwrap();
                }
                hll.invalidate_cache();
                self.key.delta_hll(hll.into_bytes(), ts, &mut next_dot)
            }
            Op::Set => self.key.delta_set(
                Bytes::from_static(b"plain"),
                ts,
                cordis::crdt::TtlChange::Keep,
                &mut next_dot,
            ),
            Op::Delete => self.key.delta_delete(ts, &mut next_dot),
        };
        self.seq = seq;
        self.key.apply(&delta, &mut self.ctx);
        delta
    }

    fn receive(&mut self, delta: &KeyDelta) {
        self.key.apply(delta, &mut self.ctx);
    }

    fn read(&self) -> Option<Bytes> {
        self.key.string_value().map(|v| v.to_bytes())
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0u16..3000, 0..40).prop_map(Op::Add),
        1 => Just(Op::Set),
        1 => Just(Op::Delete),
    ]
}

/// Writes at three replicas (index, op), with occasional full syncs
/// between some of them first so that some writes observe others.
fn history() -> impl Strategy<Value = Vec<(usize, Op, bool)>> {
    prop::collection::vec((0usize..3, op(), any::<bool>()), 1..12)
}

/// Runs the history: each write happens at its replica; when the flag is
/// set, that replica first receives everything logged so far. Returns the
/// replicas and every origin's log.
fn run(history: &[(usize, Op, bool)]) -> (Vec<Replica>, Vec<Vec<KeyDelta>>) {
    let mut replicas: Vec<Replica> = [30, 10, 20].into_iter().map(Replica::new).collect();
    let mut logs: Vec<Vec<KeyDelta>> = vec![Vec::new(); 3];
    let mut delivered = [[0usize; 3]; 3];
    for (step, (at, op, sync)) in history.iter().enumerate() {
        if *sync {
            for from in 0..3 {
                if from != *at {
                    for d in &logs[from][delivered[*at][from]..] {
                        replicas[*at].receive(d);
                    }
                    delivered[*at][from] = logs[from].len();
                }
            }
        }
        let delta = replicas[*at].write(op, 1_000 + step as u64);
        logs[*at].push(delta);
        delivered[*at][*at] = logs[*at].len();
    }
    (replicas, logs)
}

fn state_with_ctx(r: &Replica) -> (KeyState, CausalContext) {
    (r.key.clone(), r.ctx.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn join_is_commutative(h in history()) {
        let (reps, _) = run(&h);
        let (a, ca) = state_with_ctx(&reps[0]);
        let (b, cb) = state_with_ctx(&reps[1]);
        let ab = a.join(&ca, &b, &cb);
        let ba = b.join(&cb, &a, &ca);
        prop_assert_eq!(ab.versions(), ba.versions());
        prop_assert_eq!(
            ab.string_value().map(|v| v.to_bytes()),
            ba.string_value().map(|v| v.to_bytes())
        );
    }

    #[test]
    fn join_is_associative(h in history()) {
        let (reps, _) = run(&h);
        let (a, ca) = state_with_ctx(&reps[0]);
        let (b, cb) = state_with_ctx(&reps[1]);
        let (c, cc) = state_with_ctx(&reps[2]);
        let mut cab = ca.clone();
        cab.merge(&cb);
        let mut cbc = cb.clone();
        cbc.merge(&cc);
        let left = a.join(&ca, &b, &cb).join(&cab, &c, &cc);
        let right = a.join(&ca, &b.join(&cb, &c, &cc), &cbc);
        prop_assert_eq!(left.versions(), right.versions());
        prop_assert_eq!(
            left.string_value().map(|v| v.to_bytes()),
            right.string_value().map(|v| v.to_bytes())
        );
    }

    #[test]
    fn join_is_idempotent(h in history()) {
        let (reps, _) = run(&h);
        let (a, ca) = state_with_ctx(&reps[0]);
        let aa = a.join(&ca, &a, &ca);
        prop_assert_eq!(aa.versions(), a.versions());
    }

    #[test]
    fn applying_a_delta_equals_joining_its_state(h in history(), extra in op()) {
        let (mut reps, _) = run(&h);
        let before = reps[1].clone();
        let delta = reps[0].write(&extra, 9_999);
        let mut applied = before.clone();
        applied.receive(&delta);
        let mut delta_ctx = CausalContext::new();
        let mut delta_state = KeyState::new();
        delta_state.apply(&delta, &mut delta_ctx);
        let joined = before.key.join(&before.ctx, &delta_state, &delta_ctx);
        prop_assert_eq!(applied.key.versions(), joined.versions());
        prop_assert_eq!(applied.read(), joined.string_value().map(|v| v.to_bytes()));
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(h in history(), order in prop::collection::vec(0usize..3, 0..60)) {
        let (mut reps, logs) = run(&h);
        // Deliver in an interleaving picked by `order`, then the rest.
        let mut next = [[0usize; 3]; 3];
        for (to, row) in next.iter_mut().enumerate() {
            // A replica holds its own writes already.
            row[to] = logs[to].len();
        }
        for (step, &from) in order.iter().enumerate() {
            let to = step % 3;
            if from != to && next[to][from] < logs[from].len() {
                reps[to].receive(&logs[from][next[to][from]]);
                next[to][from] += 1;
            }
        }
        for to in 0..3 {
            for from in 0..3 {
                for d in &logs[from][next[to][from]..] {
                    reps[to].receive(d);
                }
            }
        }
        // Already-applied deltas arriving again change nothing.
        for d in &logs[2] {
            reps[0].receive(d);
        }
        prop_assert_eq!(reps[0].read(), reps[1].read());
        prop_assert_eq!(reps[1].read(), reps[2].read());
    }

    #[test]
    fn concurrent_pfadds_all_count(adds in prop::collection::vec((0usize..3, prop::collection::vec(0u16..3000, 1..60)), 1..10)) {
        let history: Vec<(usize, Op, bool)> =
            adds.iter().map(|(at, e)| (*at, Op::Add(e.clone()), false)).collect();
        let (mut reps, logs) = run(&history);
        for (to, replica) in reps.iter_mut().enumerate() {
            for (from, log) in logs.iter().enumerate() {
                if from != to {
                    for d in log {
                        replica.receive(d);
                    }
                }
            }
        }
        let mut expected = vec![0u8; REGISTERS];
        for (_, elements) in &adds {
            for e in elements {
                let (index, run) = register_of(format!("e{e}").as_bytes());
                expected[index] = expected[index].max(run);
            }
        }
        for r in &reps {
            let bytes = r.read().expect("a HyperLogLog value");
            let regs = Hll::from_bytes(&bytes).expect("valid").registers().expect("not corrupt");
            prop_assert_eq!(&regs, &expected);
        }
    }
}
