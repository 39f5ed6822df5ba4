//! Property tests of the list CRDT (`cordis::crdt::list`), named as the
//! laws they check: the state join is commutative, associative and
//! idempotent; applying a delta equals joining its delta-state; 2–4
//! replicas receiving the same writes in any interleaving (FIFO per origin)
//! converge; and the DESIGN §3 list rules: concurrent inserts all survive in
//! one order, pops are observed-removes (a concurrent push survives, two
//! regions may pop the same element), ids are always strictly between their
//! neighbours.

use cordis::crdt::list::{between, ElementId, End, List, ListDelta, ListEdit};
use cordis::crdt::{CausalContext, Dot, ElementCrdt, ReplicaId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const IDS: [u64; 4] = [11, 7, 23, 5];

/// A list write, positions taken modulo the current length.
#[derive(Clone, Debug)]
enum Op {
    Push(bool, u8),
    /// Enough values in one delta to take the bulk apply path.
    PushMany(bool, u8),
    Pop(bool),
    Insert(usize, bool, u8),
    Set(usize, u8),
    Remove(usize),
    Trim(usize, usize),
    Clear,
}

#[derive(Clone)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    list: List,
    ctx: CausalContext,
}

impl Replica {
    fn new(id: ReplicaId) -> Self {
        Replica {
            id,
            seq: 0,
            list: List::default(),
            ctx: CausalContext::new(),
        }
    }

    fn next_dot(&mut self) -> Dot {
        self.seq += 1;
        Dot::new(self.id, self.seq)
    }

    /// Runs `op` locally and returns its delta (already applied here).
    fn write(&mut self, op: &Op) -> ListDelta {
        let base = self.list.clone();
        let len = base.len();
        let id_at = |i: usize| base.at(i % len.max(1)).map(|(id, _)| id.clone());
        let delta = {
            let mut edit = ListEdit::new(&base);
            match *op {
                Op::Push(left, v) => {
                    let end = if left { End::Left } else { End::Right };
                    edit.push(end, &[v], self.next_dot());
                }
                Op::PushMany(left, v) => {
                    let end = if left { End::Left } else { End::Right };
                    for i in 0..20u8 {
                        edit.push(end, &[v.wrapping_add(i)], self.next_dot());
                    }
                }
                Op::Pop(left) => {
                    edit.pop(if left { End::Left } else { End::Right });
                }
                Op::Insert(i, before, v) => {
                    if let Some(pivot) = id_at(i) {
                        edit.insert_at(&pivot, before, &[v], self.next_dot());
                    }
                }
                Op::Set(i, v) => {
                    if let Some(id) = id_at(i) {
                        edit.insert_at(&id, false, &[v], self.next_dot());
                        edit.remove(&id);
                    }
                }
                Op::Remove(i) => {
                    if let Some(id) = id_at(i) {
                        edit.remove(&id);
                    }
                }
                Op::Trim(from, count) => {
                    for (at, (id, _)) in base.iter().enumerate() {
                        if at < from || at >= from + count {
                            edit.remove(id);
                        }
                    }
                }
                Op::Clear => return self.apply_own(base.delta_clear()),
            }
            edit.finish()
        };
        self.apply_own(delta)
    }

    fn apply_own(&mut self, delta: ListDelta) -> ListDelta {
        self.list.apply(&delta, &mut self.ctx);
        delta
    }

    fn receive(&mut self, delta: &ListDelta) {
        self.list.apply(delta, &mut self.ctx);
    }

    fn values(&self) -> Vec<u8> {
        self.list.values().map(|v| v[0]).collect()
    }
}

struct Cluster {
    replicas: Vec<Replica>,
    logs: Vec<Vec<ListDelta>>,
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

    fn write(&mut self, at: usize, op: &Op) {
        let delta = self.replicas[at].write(op);
        self.logs[at].push(delta);
    }

    fn pending(&self, from: usize, to: usize) -> usize {
        if from == to {
            0
        } else {
            self.logs[from].len() - self.delivered[to][from]
        }
    }

    fn deliver(&mut self, from: usize, to: usize, count: usize) {
        for _ in 0..count.min(self.pending(from, to)) {
            let delta = &self.logs[from][self.delivered[to][from]];
            self.replicas[to].receive(delta);
            self.delivered[to][from] += 1;
        }
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.replicas.len();
        for step in steps {
            match step {
                Step::Write(at, op) => self.write(at % n, op),
                Step::Deliver(from, to, count) => self.deliver(from % n, to % n, *count),
            }
        }
    }

    fn deliver_rest(&mut self, picks: &[u32]) {
        let n = self.replicas.len();
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
}

#[derive(Clone, Debug)]
enum Step {
    Write(usize, Op),
    Deliver(usize, usize, usize),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0..8u8).prop_map(|(l, v)| Op::Push(l, v)),
        1 => (any::<bool>(), 0..8u8).prop_map(|(l, v)| Op::PushMany(l, v)),
        2 => any::<bool>().prop_map(Op::Pop),
        3 => (0..8usize, any::<bool>(), 0..8u8).prop_map(|(i, b, v)| Op::Insert(i, b, v)),
        1 => (0..8usize, 0..8u8).prop_map(|(i, v)| Op::Set(i, v)),
        1 => (0..8usize).prop_map(Op::Remove),
        1 => (0..3usize, 0..25usize).prop_map(|(f, c)| Op::Trim(f, c)),
        1 => Just(Op::Clear),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..4usize, any_op()).prop_map(|(at, op)| Step::Write(at, op)),
            2 => (0..4usize, 0..4usize, 1..4usize).prop_map(|(f, t, c)| Step::Deliver(f, t, c)),
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

fn join(a: &Replica, b: &Replica) -> Replica {
    let mut ctx = a.ctx.clone();
    ctx.merge(&b.ctx);
    Replica {
        id: a.id,
        seq: a.seq,
        list: a.list.join(&a.ctx, &b.list, &b.ctx),
        ctx,
    }
}

/// Ids are in strictly increasing order and every value is one byte.
fn assert_well_formed(list: &List) {
    let ids: Vec<&ElementId> = list.iter().map(|(id, _)| id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn join_is_commutative(n in 2..=4usize, history in steps(40), a in 0..4usize, b in 0..4usize) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let (x, y) = (&cluster.replicas[a % n], &cluster.replicas[b % n]);
        prop_assert_eq!(join(x, y).list, join(y, x).list);
    }

    #[test]
    fn join_is_associative(n in 3..=4usize, history in steps(40)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let [x, y, z] = [&cluster.replicas[0], &cluster.replicas[1], &cluster.replicas[2]];
        prop_assert_eq!(join(&join(x, y), z).list, join(x, &join(y, z)).list);
    }

    #[test]
    fn join_is_idempotent(n in 2..=4usize, history in steps(40), a in 0..4usize) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        let x = &cluster.replicas[a % n];
        prop_assert_eq!(&join(x, x).list, &x.list);
    }

    #[test]
    fn applying_a_delta_equals_joining_its_delta_state(n in 2..=4usize, history in steps(40)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        // Every pending delta, delivered in FIFO order both ways.
        for to in 0..n {
            for from in 0..n {
                while cluster.pending(from, to) > 0 {
                    let delta = cluster.logs[from][cluster.delivered[to][from]].clone();
                    let target = &cluster.replicas[to];
                    let mut delta_state = Replica::new(ReplicaId(999));
                    delta_state.receive(&delta);
                    let joined = join(target, &delta_state);
                    cluster.deliver(from, to, 1);
                    prop_assert_eq!(&cluster.replicas[to].list, &joined.list);
                }
            }
        }
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        n in 2..=4usize,
        history in steps(60),
        picks in prop::collection::vec(any::<u32>(), 1..8),
    ) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.deliver_rest(&picks);
        for r in &cluster.replicas {
            assert_well_formed(&r.list);
            prop_assert_eq!(&r.list, &cluster.replicas[0].list);
        }
        // Also equal to the join of everyone's state.
        let mut all = cluster.replicas[0].clone();
        for r in &cluster.replicas[1..] {
            all = join(&all, r);
        }
        prop_assert_eq!(&all.list, &cluster.replicas[0].list);
    }

    #[test]
    fn a_new_id_always_sorts_strictly_between_its_neighbours(
        ops in prop::collection::vec((0..40usize, 0..4usize), 1..120),
    ) {
        // One replica inserting anywhere, from four "replica ids".
        let mut ids: Vec<ElementId> = Vec::new();
        for (seq, (at, who)) in ops.into_iter().enumerate() {
            let dot = Dot::new(ReplicaId(IDS[who]), seq as u64 + 1);
            let i = if ids.is_empty() { 0 } else { at % (ids.len() + 1) };
            let lo = i.checked_sub(1).map(|j| &ids[j]);
            let hi = ids.get(i);
            let id = between(lo, hi, dot);
            prop_assert!(lo.is_none_or(|lo| *lo < id) && hi.is_none_or(|hi| id < *hi));
            prop_assert_eq!(id.dot(), dot);
            ids.insert(i, id);
        }
    }
}

fn replicas(n: usize) -> Vec<Replica> {
    IDS[..n]
        .iter()
        .map(|&id| Replica::new(ReplicaId(id)))
        .collect()
}

#[test]
fn concurrent_pushes_at_one_end_all_survive_in_one_order() {
    let mut r = replicas(2);
    let a = r[0].write(&Op::Push(true, 1));
    let b = r[1].write(&Op::Push(true, 2));
    r[0].receive(&b);
    r[1].receive(&a);
    assert_eq!(r[0].values(), r[1].values());
    let mut sorted = r[0].values();
    sorted.sort();
    assert_eq!(sorted, [1, 2]);
}

#[test]
fn concurrent_inserts_after_one_pivot_all_survive_next_to_it() {
    let mut r = replicas(3);
    let base = r[0].write(&Op::Push(false, 0));
    let tail = r[0].write(&Op::Push(false, 9));
    for replica in &mut r[1..] {
        replica.receive(&base);
        replica.receive(&tail);
    }
    let deltas: Vec<ListDelta> = (0..3)
        .map(|i| r[i].write(&Op::Insert(0, false, 10 + i as u8)))
        .collect();
    for (i, replica) in r.iter_mut().enumerate() {
        for (j, d) in deltas.iter().enumerate() {
            if i != j {
                replica.receive(d);
            }
        }
    }
    let values = r[0].values();
    assert!(r.iter().all(|x| x.values() == values));
    assert_eq!(values.len(), 5);
    assert_eq!((values[0], values[4]), (0, 9), "{values:?}");
}

#[test]
fn a_pop_keeps_a_concurrent_push() {
    let mut r = replicas(2);
    let base = r[0].write(&Op::Push(false, 1));
    r[1].receive(&base);
    let pop = r[0].write(&Op::Pop(true));
    let push = r[1].write(&Op::Push(true, 2));
    r[0].receive(&push);
    r[1].receive(&pop);
    assert_eq!(r[0].values(), [2]);
    assert_eq!(r[1].values(), [2]);
}

#[test]
fn two_regions_may_pop_the_same_element_and_it_goes_once() {
    let mut r = replicas(2);
    let base = r[0].write(&Op::Push(false, 1));
    let more = r[0].write(&Op::Push(false, 2));
    r[1].receive(&base);
    r[1].receive(&more);
    let head = |x: &Replica| x.list.first().map(|(_, v)| v[0]);
    assert_eq!(head(&r[0]), head(&r[1]));
    let pop_a = r[0].write(&Op::Pop(true));
    let pop_b = r[1].write(&Op::Pop(true));
    assert_eq!(pop_a, pop_b, "both popped the same element (at-least-once)");
    r[0].receive(&pop_b);
    r[1].receive(&pop_a);
    assert_eq!(r[0].values(), [2]);
    assert_eq!(r[1].values(), [2]);
}

#[test]
fn a_delta_arriving_twice_is_applied_once() {
    let mut r = replicas(2);
    let d = r[0].write(&Op::Push(false, 1));
    r[1].receive(&d);
    let pop = r[1].write(&Op::Pop(false));
    r[1].receive(&d);
    assert!(r[1].values().is_empty());
    r[0].receive(&pop);
    assert!(r[0].values().is_empty());
}

#[test]
fn delta_copy_recreates_the_values_in_order() {
    let mut r = replicas(1);
    for v in [3, 1, 2] {
        r[0].write(&Op::Push(false, v));
    }
    let mut seq = 100;
    let copy = r[0].list.delta_copy(Default::default(), &mut || {
        seq += 1;
        Dot::new(ReplicaId(1), seq)
    });
    let mut fresh = Replica::new(ReplicaId(1));
    fresh.receive(&copy);
    assert_eq!(fresh.values(), [3, 1, 2]);
}

#[test]
fn memory_per_element_is_reported() {
    // Not an assertion on speed: documents the sizes the docs quote.
    println!(
        "size_of ElementId = {}, List = {}, Box<[u8]> = {}",
        std::mem::size_of::<ElementId>(),
        std::mem::size_of::<List>(),
        std::mem::size_of::<Box<[u8]>>()
    );
    assert!(std::mem::size_of::<ElementId>() <= 40);
}
