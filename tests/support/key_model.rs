//! A small model of replicas of one key, for the collection law suites
//! (`set_laws.rs`, `hash_laws.rs`): each replica has an id, a sequence
//! counter, an HLC-like clock, one causal context and the key's
//! `KeyState`. A local write builds a delta the way the store does
//! ([`Replica::write_with`]), applies it and logs it; delivery applies an
//! origin's logged deltas in order at another replica (FIFO per origin,
//! as the replication stream does), different origins interleaving freely.

use std::fmt::Debug;

use cordis::crdt::{CausalContext, Dot, Hlc, KeyDelta, KeyState, ReplicaId};
use proptest::prelude::*;

/// Replica ids, deliberately not in index order.
pub const IDS: [u64; 4] = [30, 10, 40, 20];

#[derive(Clone)]
pub struct Replica {
    pub id: ReplicaId,
    pub seq: u64,
    pub clock: u64,
    pub ctx: CausalContext,
    pub key: KeyState,
}

impl Replica {
    pub fn new(id: u64) -> Self {
        Replica {
            id: ReplicaId(id),
            seq: 0,
            clock: 0,
            ctx: CausalContext::new(),
            key: KeyState::new(),
        }
    }

    /// One local write: `build` sees the key, the write's timestamp and a
    /// source of fresh dots, and returns the delta; the delta is applied
    /// here and the write consumes at least one sequence number, as a
    /// store batch does.
    pub fn write_with(
        &mut self,
        build: impl FnOnce(&KeyState, Hlc, &mut dyn FnMut() -> Dot) -> KeyDelta,
    ) -> KeyDelta {
        self.clock += 1;
        let ts = Hlc(self.clock << 16);
        let (id, mut seq) = (self.id, self.seq);
        let mut next = || {
            seq += 1;
            Dot::new(id, seq)
        };
        let delta = build(&self.key, ts, &mut next);
        self.key.apply(&delta, &mut self.ctx);
        self.seq = seq.max(self.seq + 1);
        self.ctx.insert_up_to(self.id, self.seq);
        delta
    }
}

#[derive(Clone, Debug)]
pub enum Step<Op> {
    /// A local write at replica `at` (index modulo the cluster size).
    Write { at: usize, op: Op },
    /// Deliver the next `count` deltas of origin `from` to replica `to`.
    Deliver {
        from: usize,
        to: usize,
        count: usize,
    },
}

pub struct Cluster<Op> {
    pub replicas: Vec<Replica>,
    pub logs: Vec<Vec<KeyDelta>>,
    /// delivered[to][from]: how many of `from`'s deltas `to` applied.
    delivered: Vec<Vec<usize>>,
    pub write: fn(&mut Replica, &Op) -> KeyDelta,
}

impl<Op> Cluster<Op> {
    /// `n` replicas whose local writes `write` performs.
    pub fn new(n: usize, write: fn(&mut Replica, &Op) -> KeyDelta) -> Self {
        Cluster {
            replicas: IDS[..n].iter().map(|&id| Replica::new(id)).collect(),
            logs: (0..n).map(|_| Vec::new()).collect(),
            delivered: vec![vec![0; n]; n],
            write,
        }
    }

    pub fn run(&mut self, steps: &[Step<Op>]) {
        let n = self.replicas.len();
        for step in steps {
            match step {
                Step::Write { at, op } => {
                    let at = at % n;
                    let delta = (self.write)(&mut self.replicas[at], op);
                    self.logs[at].push(delta);
                    self.delivered[at][at] = self.logs[at].len();
                }
                Step::Deliver { from, to, count } => self.deliver(from % n, to % n, *count),
            }
        }
    }

    pub fn deliver(&mut self, from: usize, to: usize, count: usize) {
        for _ in 0..count {
            let next = self.delivered[to][from];
            if from == to || next >= self.logs[from].len() {
                return;
            }
            let replica = &mut self.replicas[to];
            replica.key.apply(&self.logs[from][next], &mut replica.ctx);
            self.delivered[to][from] += 1;
        }
    }

    /// Delivers everything everywhere.
    pub fn sync(&mut self) {
        let n = self.replicas.len();
        for to in 0..n {
            for from in 0..n {
                self.deliver(from, to, usize::MAX);
            }
        }
    }
}

/// Random histories of writes (from `op`) and partial deliveries.
pub fn steps<Op: Clone + Debug + 'static>(
    op: impl Strategy<Value = Op> + 'static,
    max: usize,
) -> impl Strategy<Value = Vec<Step<Op>>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..4usize, op).prop_map(|(at, op)| Step::Write { at, op }),
            2 => (0..4usize, 0..4usize, 1..4usize)
                .prop_map(|(from, to, count)| Step::Deliver { from, to, count }),
        ],
        1..max,
    )
}

/// The state join of two replicas, with the union of their contexts.
pub fn joined(a: &Replica, b: &Replica) -> (KeyState, CausalContext) {
    let state = a.key.join(&a.ctx, &b.key, &b.ctx);
    let mut ctx = a.ctx.clone();
    ctx.merge(&b.ctx);
    (state, ctx)
}

// ----- the merge laws, for any op model -----

/// join(x, y) = join(y, x) for two replicas after `history`.
pub fn check_join_commutes<Op>(
    mut cluster: Cluster<Op>,
    history: &[Step<Op>],
    a: usize,
    b: usize,
) -> Result<(), TestCaseError> {
    cluster.run(history);
    let n = cluster.replicas.len();
    let (x, y) = (&cluster.replicas[a % n], &cluster.replicas[b % n]);
    prop_assert_eq!(joined(x, y).0, joined(y, x).0);
    Ok(())
}

/// join(join(x, y), z) = join(x, join(y, z)) (needs three replicas).
pub fn check_join_associates<Op>(
    mut cluster: Cluster<Op>,
    history: &[Step<Op>],
) -> Result<(), TestCaseError> {
    cluster.run(history);
    let [x, y, z] = [
        &cluster.replicas[0],
        &cluster.replicas[1],
        &cluster.replicas[2],
    ];
    let (xy, xy_ctx) = joined(x, y);
    let left = xy.join(&xy_ctx, &z.key, &z.ctx);
    let (yz, yz_ctx) = joined(y, z);
    let right = x.key.join(&x.ctx, &yz, &yz_ctx);
    prop_assert_eq!(left, right);
    Ok(())
}

/// join(x, x) = x.
pub fn check_join_is_idempotent<Op>(
    mut cluster: Cluster<Op>,
    history: &[Step<Op>],
    a: usize,
) -> Result<(), TestCaseError> {
    cluster.run(history);
    let x = &cluster.replicas[a % cluster.replicas.len()];
    prop_assert_eq!(&x.key.join(&x.ctx, &x.key, &x.ctx), &x.key);
    Ok(())
}

/// Applying one more write's delta equals joining the delta's own state
/// (the delta applied to nothing, with a context holding exactly the dots
/// it names).
pub fn check_delta_equals_its_state_joined<Op>(
    mut cluster: Cluster<Op>,
    history: &[Step<Op>],
    extra: &Op,
) -> Result<(), TestCaseError> {
    cluster.run(history);
    let mut replica = cluster.replicas[0].clone();
    let before = replica.clone();
    let delta = (cluster.write)(&mut replica, extra);
    let mut delta_ctx = CausalContext::new();
    let mut delta_state = KeyState::new();
    delta_state.apply(&delta, &mut delta_ctx);
    let merged = before.key.join(&before.ctx, &delta_state, &delta_ctx);
    prop_assert_eq!(merged, replica.key);
    Ok(())
}

/// After every delta reached every replica, all hold the same state and
/// `read` the same.
pub fn check_convergence<Op, R: PartialEq + Debug>(
    mut cluster: Cluster<Op>,
    history: &[Step<Op>],
    read: fn(&Replica) -> R,
) -> Result<(), TestCaseError> {
    cluster.run(history);
    cluster.sync();
    let first = &cluster.replicas[0];
    for r in &cluster.replicas[1..] {
        prop_assert_eq!(&r.key, &first.key);
        prop_assert_eq!(read(r), read(first));
    }
    Ok(())
}
