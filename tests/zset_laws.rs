//! Merge laws and DESIGN §3 semantics of the sorted-set CRDT
//! (`cordis::crdt::zset::ZSet`), on a small in-memory model: each replica
//! has an id, a sequence counter, a causal context and one `ZSet`; a local
//! write builds a delta with the ZSet's mutators (as the ZADD/ZINCRBY/ZREM
//! commands do), applies it and logs it; delivery applies an origin's
//! logged deltas in order (FIFO per origin), origins interleaving freely.
//!
//! Checked: join commutative, associative, idempotent; applying a delta
//! equals joining its delta-state; replicas converge whatever the
//! interleaving; garbage collection over a causally stable vector never
//! changes a read; concurrent ZADDs of one member resolve LWW; concurrent
//! ZINCRBYs sum; ZREM keeps a concurrent unobserved ZINCRBY or ZADD
//! (add-wins) and counts only the unobserved increments; a ZADD resets only
//! the increments it observed.

use cordis::crdt::zset::{ZSet, ZSetDelta};
use cordis::crdt::{CausalContext, Dot, ElementCrdt, Hlc, ReplicaId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const IDS: [u64; 4] = [30, 10, 40, 20];
const MEMBERS: [&str; 3] = ["a", "b", "c"];
const SCORES: [f64; 6] = [0.0, 1.0, -2.5, 10.0, 0.1, 1e9];

#[derive(Clone, Debug)]
enum Op {
    Add(usize, f64),
    Incr(usize, f64),
    Rem(usize),
    Clear,
}

#[derive(Clone, Debug)]
enum Step {
    Write {
        at: usize,
        op: Op,
        now: u64,
    },
    Deliver {
        from: usize,
        to: usize,
        count: usize,
    },
}

#[derive(Clone, Debug)]
struct Event {
    dots: Vec<Dot>,
    delta: ZSetDelta,
}

#[derive(Clone, Debug)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    ctx: CausalContext,
    zset: ZSet,
}

impl Replica {
    fn new(id: ReplicaId) -> Self {
        Replica {
            id,
            seq: 0,
            ctx: CausalContext::new(),
            zset: ZSet::default(),
        }
    }

    fn write(&mut self, op: &Op, now: u64) -> Event {
        let ts = Hlc::new(now, 0);
        let mut dots = Vec::new();
        let (id, mut seq) = (self.id, self.seq);
        let mut next_dot = || {
            seq += 1;
            let d = Dot::new(id, seq);
            dots.push(d);
            d
        };
        let z = &self.zset;
        let delta = match *op {
            Op::Add(m, s) => ZSetDelta {
                changes: vec![z.delta_set(MEMBERS[m].as_bytes(), s, ts, next_dot())],
            },
            Op::Incr(m, by) => ZSetDelta {
                changes: z
                    .delta_incr(MEMBERS[m].as_bytes(), by, id, next_dot())
                    .map(|(c, _)| vec![c])
                    .unwrap_or_default(),
            },
            Op::Rem(m) => ZSetDelta {
                changes: z
                    .delta_remove(MEMBERS[m].as_bytes(), ts, &mut next_dot)
                    .into_iter()
                    .collect(),
            },
            Op::Clear => z.delta_clear(),
        };
        self.seq = seq;
        let event = Event { dots, delta };
        self.receive(&event);
        event
    }

    fn receive(&mut self, event: &Event) {
        self.zset.apply(&event.delta, &mut self.ctx);
        for &d in &event.dots {
            self.ctx.insert(d);
        }
    }

    fn state(&self) -> (ZSet, CausalContext) {
        (self.zset.clone(), self.ctx.clone())
    }
}

fn join(a: &(ZSet, CausalContext), b: &(ZSet, CausalContext)) -> (ZSet, CausalContext) {
    let z = a.0.join(&a.1, &b.0, &b.1);
    let mut ctx = a.1.clone();
    ctx.merge(&b.1);
    (z, ctx)
}

/// What a client reads: members with scores in rank order.
fn reading(z: &ZSet) -> Vec<(String, u64)> {
    z.ascending()
        .map(|(m, s)| (String::from_utf8(m.to_vec()).unwrap(), s.to_bits()))
        .collect()
}

fn same(
    a: &(ZSet, CausalContext),
    b: &(ZSet, CausalContext),
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(reading(&a.0), reading(&b.0), "{}: readings", what);
    prop_assert_eq!(&a.0, &b.0, "{}: states", what);
    prop_assert_eq!(
        a.1.version_vector(),
        b.1.version_vector(),
        "{}: contexts",
        what
    );
    Ok(())
}

struct Cluster {
    replicas: Vec<Replica>,
    logs: Vec<Vec<Event>>,
    /// delivered[from][to]: events of `from` applied at `to`.
    delivered: Vec<Vec<usize>>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Cluster {
            replicas: IDS[..n]
                .iter()
                .map(|&i| Replica::new(ReplicaId(i)))
                .collect(),
            logs: vec![Vec::new(); n],
            delivered: vec![vec![0; n]; n],
        }
    }

    fn write(&mut self, at: usize, op: &Op, now: u64) {
        let event = self.replicas[at].write(op, now);
        self.logs[at].push(event);
        self.delivered[at][at] = self.logs[at].len();
    }

    fn deliver(&mut self, from: usize, to: usize, count: usize) {
        for _ in 0..count {
            let i = self.delivered[from][to];
            if from == to || i >= self.logs[from].len() {
                return;
            }
            let event = self.logs[from][i].clone();
            self.replicas[to].receive(&event);
            self.delivered[from][to] += 1;
        }
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.replicas.len();
        for step in steps {
            match step {
                Step::Write { at, op, now } => self.write(at % n, op, *now),
                Step::Deliver { from, to, count } => self.deliver(from % n, to % n, *count),
            }
        }
    }

    fn deliver_rest(&mut self, picks: &[u32]) {
        let n = self.replicas.len();
        for &p in picks {
            self.deliver(p as usize % n, (p as usize / n) % n, 1);
        }
        self.sync();
    }

    fn sync(&mut self) {
        let n = self.replicas.len();
        for from in 0..n {
            for to in 0..n {
                self.deliver(from, to, usize::MAX);
            }
        }
    }

    fn score(&self, at: usize, member: &str) -> Option<f64> {
        self.replicas[at].zset.score(member.as_bytes())
    }
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, prop::sample::select(SCORES.to_vec())).prop_map(|(m, s)| Op::Add(m, s)),
        4 => (0..3usize, prop::sample::select(vec![1.0, -1.0, 0.5, 3.0])).prop_map(|(m, s)| Op::Incr(m, s)),
        2 => (0..3usize).prop_map(Op::Rem),
        1 => Just(Op::Clear),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..4usize, any_op(), 1..50u64).prop_map(|(at, op, now)| Step::Write { at, op, now }),
            2 => (0..4usize, 0..4usize, 1..4usize).prop_map(|(from, to, count)| Step::Deliver { from, to, count }),
        ],
        0..max,
    )
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn join_is_commutative(n in 2..=4usize, history in steps(40), a in 0..4usize, b in 0..4usize) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let (a, b) = (c.replicas[a % n].state(), c.replicas[b % n].state());
        same(&join(&a, &b), &join(&b, &a), "a ⊔ b vs b ⊔ a")?;
    }

    #[test]
    fn join_is_associative(n in 2..=4usize, history in steps(40), (a, b, d) in (0..4usize, 0..4usize, 0..4usize)) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let [a, b, d] = [a, b, d].map(|i| c.replicas[i % n].state());
        same(&join(&join(&a, &b), &d), &join(&a, &join(&b, &d)), "(a ⊔ b) ⊔ c vs a ⊔ (b ⊔ c)")?;
    }

    #[test]
    fn join_is_idempotent(n in 2..=4usize, history in steps(40), a in 0..4usize, b in 0..4usize) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let (a, b) = (c.replicas[a % n].state(), c.replicas[b % n].state());
        same(&join(&a, &a), &a, "a ⊔ a vs a")?;
        let ab = join(&a, &b);
        same(&join(&ab, &ab), &ab, "(a ⊔ b) ⊔ (a ⊔ b) vs a ⊔ b")?;
        same(&join(&ab, &b), &ab, "(a ⊔ b) ⊔ b vs a ⊔ b")?;
    }

    #[test]
    fn applying_a_delta_equals_joining_its_delta_state(n in 2..=4usize, history in steps(40)) {
        let mut c = Cluster::new(n);
        c.run(&history);
        for to in 0..n {
            for from in 0..n {
                let i = c.delivered[from][to];
                let Some(event) = c.logs[from].get(i).filter(|_| from != to) else { continue };
                let mut applied = c.replicas[to].clone();
                applied.receive(event);
                // The delta as a state: applied to an empty set with a fresh
                // context, which then also holds every dot the write consumed.
                let mut delta_ctx = CausalContext::new();
                let mut delta_zset = ZSet::default();
                delta_zset.apply(&event.delta, &mut delta_ctx);
                for &d in &event.dots {
                    delta_ctx.insert(d);
                }
                let joined = join(&c.replicas[to].state(), &(delta_zset, delta_ctx));
                same(&applied.state(), &joined, "apply(D) vs S ⊔ D")?;
            }
        }
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        n in 2..=4usize,
        history in steps(48),
        picks in prop::collection::vec(0..16u32, 0..60),
    ) {
        let mut c = Cluster::new(n);
        c.run(&history);
        c.deliver_rest(&picks);
        let first = c.replicas[0].state();
        for r in &c.replicas[1..] {
            same(&r.state(), &first, "replica vs replica 0")?;
        }
    }

    #[test]
    fn garbage_collection_over_a_stable_vector_never_changes_a_read(
        n in 2..=4usize,
        history in steps(40),
        more in steps(30),
        picks in prop::collection::vec(0..16u32, 0..60),
    ) {
        let mut c = Cluster::new(n);
        c.run(&history);
        // Dots every replica has seen.
        let stable = c.replicas.iter().skip(1).fold(
            c.replicas[0].ctx.version_vector().clone(),
            |acc, r| acc.meet(r.ctx.version_vector()),
        );
        for r in c.replicas.iter_mut() {
            let before = reading(&r.zset);
            r.zset.collect_garbage(&stable);
            prop_assert_eq!(reading(&r.zset), before);
        }
        c.run(&more);
        c.deliver_rest(&picks);
        let first = reading(&c.replicas[0].zset);
        for r in &c.replicas[1..] {
            prop_assert_eq!(reading(&r.zset), first.clone(), "replicas differ after GC");
        }
    }

    #[test]
    fn full_state_join_agrees_with_delivering_every_delta(n in 2..=4usize, history in steps(40)) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let joined = c.replicas.iter().skip(1).fold(c.replicas[0].state(), |acc, r| join(&acc, &r.state()));
        c.sync();
        prop_assert_eq!(reading(&joined.0), reading(&c.replicas[0].zset));
    }
}

#[test]
fn concurrent_zadds_of_one_member_resolve_to_the_later_timestamp() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Add(0, 5.0), 20);
    c.write(1, &Op::Add(0, 7.0), 10);
    c.sync();
    assert_eq!(c.score(0, "a"), Some(5.0));
    assert_eq!(c.score(1, "a"), Some(5.0));
}

#[test]
fn concurrent_zadds_with_equal_timestamps_resolve_by_dot() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Add(0, 5.0), 10); // replica 30
    c.write(1, &Op::Add(0, 7.0), 10); // replica 10
    c.sync();
    assert_eq!(
        c.score(0, "a"),
        Some(5.0),
        "the larger replica id wins a tie"
    );
    assert_eq!(c.score(1, "a"), Some(5.0));
}

#[test]
fn concurrent_zincrbys_sum() {
    let mut c = Cluster::new(3);
    c.write(0, &Op::Add(0, 1.0), 1);
    c.sync();
    c.write(0, &Op::Incr(0, 2.0), 2);
    c.write(1, &Op::Incr(0, 3.0), 2);
    c.write(2, &Op::Incr(0, 0.5), 2);
    c.write(1, &Op::Incr(0, 1.0), 3);
    c.sync();
    for r in 0..3 {
        assert_eq!(c.score(r, "a"), Some(7.5));
    }
}

#[test]
fn zrem_keeps_a_concurrent_unobserved_zincrby() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Add(0, 10.0), 1);
    c.write(0, &Op::Incr(0, 5.0), 2);
    c.sync();
    // Replica 1 removes what it saw (score 15); replica 0 concurrently
    // continues its increment run by 1.
    c.write(1, &Op::Rem(0), 3);
    c.write(0, &Op::Incr(0, 1.0), 3);
    c.sync();
    assert_eq!(
        c.score(0, "a"),
        Some(1.0),
        "only the unobserved increment counts"
    );
    assert_eq!(c.score(1, "a"), Some(1.0));
}

#[test]
fn zrem_keeps_a_concurrent_unobserved_zadd() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Add(0, 1.0), 1);
    c.sync();
    c.write(1, &Op::Rem(0), 2);
    c.write(0, &Op::Add(0, 4.0), 2);
    c.sync();
    assert_eq!(c.score(0, "a"), Some(4.0));
    assert_eq!(c.score(1, "a"), Some(4.0));
}

#[test]
fn an_observed_zrem_removes_the_member_everywhere() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Add(0, 1.0), 1);
    c.write(0, &Op::Incr(0, 1.0), 2);
    c.sync();
    c.write(1, &Op::Rem(0), 3);
    c.sync();
    assert_eq!(c.score(0, "a"), None);
    assert_eq!(c.replicas[0].zset.len(), 0);
}

#[test]
fn zadd_resets_only_the_increments_it_observed() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Incr(0, 5.0), 1);
    c.sync();
    c.write(0, &Op::Add(0, 100.0), 5);
    c.write(1, &Op::Incr(0, 2.0), 2);
    c.sync();
    assert_eq!(c.score(0, "a"), Some(102.0));
    assert_eq!(c.score(1, "a"), Some(102.0));
}

#[test]
fn opposite_infinite_increments_never_produce_nan() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Incr(0, f64::INFINITY), 1);
    c.write(1, &Op::Incr(0, f64::NEG_INFINITY), 1);
    c.sync();
    let s = c.score(0, "a").unwrap();
    assert!(!s.is_nan());
    assert_eq!(c.score(1, "a"), Some(s));
}

#[test]
fn ranges_follow_score_then_member_order() {
    let mut c = Cluster::new(1);
    c.write(0, &Op::Add(1, 1.0), 1);
    c.write(0, &Op::Add(0, 1.0), 1);
    c.write(0, &Op::Add(2, -1.0), 1);
    let order: Vec<String> = reading(&c.replicas[0].zset)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(order, ["c", "a", "b"]);
    assert_eq!(c.replicas[0].zset.rank(b"b").map(|r| r.0), Some(2));
}
