//! Merge laws and DESIGN.md §3 semantics of the add-wins set, driven
//! through the key CRDT (`KeyState` holding an `OrSet`) the way the store
//! drives it: each replica has a causal context and one key; a local write
//! builds a delta with the set's mutators, applies it and logs it; delivery
//! applies an origin's logged deltas in order at another replica.
//!
//! Checked: join commutative, associative, idempotent; a delta applied
//! equals its delta-state joined; any FIFO interleaving converges; add wins
//! over a concurrent remove; a Jepsen-style checker (every add that no
//! remove observed is present everywhere after delivery); and concurrent
//! creation of the key as a set and as a string resolves the same way
//! everywhere (the later claim wins).

use std::collections::BTreeSet;

use bytes::Bytes;
use cordis::crdt::orset::{OrSet, SetDelta};
use cordis::crdt::{
    CausalContext, Dot, ElementCrdt, Hlc, KeyDelta, KeyState, Kind, ReplicaId, TtlChange,
};
use proptest::prelude::*;

const IDS: [u64; 4] = [30, 10, 40, 20];
const MEMBERS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Clone, Debug)]
enum Op {
    Add(usize),
    Remove(usize),
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

#[derive(Clone, Debug)]
struct Event {
    delta: KeyDelta,
    /// The member an add made, with its dot (for the checker).
    added: Option<(usize, Dot)>,
}

#[derive(Clone)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    clock: u64,
    ctx: CausalContext,
    key: KeyState,
}

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

    fn write(&mut self, op: &Op) -> Event {
        self.clock += 1;
        let ts = Hlc(self.clock << 16);
        let (id, mut seq) = (self.id, self.seq);
        let mut next = || {
            seq += 1;
            Dot::new(id, seq)
        };
        let mut added = None;
        let state = &self.key;
        let set = match state.typed::<OrSet>() {
            Ok(Some(set)) => set.clone(),
            _ => OrSet::default(),
        };
        let delta = match op {
            Op::Add(m) => {
                let dot = next();
                added = Some((*m, dot));
                let change = SetDelta {
                    changes: vec![set.delta_add(MEMBERS[*m].as_bytes(), dot)],
                };
                // A write to a key of another type starts from scratch, as
                // the store purges what it replaces.
                let base = if state.typed::<OrSet>().is_err() {
                    state.delta_purge()
                } else {
                    KeyDelta::default()
                };
                base.then(state.delta_collection::<OrSet>(change, ts, &mut next))
            }
            Op::Remove(m) => {
                let mut change = SetDelta::default();
                change.push(set.delta_remove(MEMBERS[*m].as_bytes()));
                state.delta_collection::<OrSet>(change, ts, &mut next)
            }
            Op::Delete => state.delta_delete(ts, &mut next),
            Op::SetString => {
                state.delta_set(Bytes::from_static(b"str"), ts, TtlChange::Keep, &mut next)
            }
        };
        self.key.apply(&delta, &mut self.ctx);
        self.seq = seq.max(self.seq + 1);
        self.ctx.insert_up_to(self.id, self.seq);
        Event { delta, added }
    }

    fn receive(&mut self, event: &Event) {
        self.key.apply(&event.delta, &mut self.ctx);
    }

    fn members(&self) -> Option<BTreeSet<String>> {
        match self.key.typed::<OrSet>() {
            Ok(Some(set)) => Some(
                set.members()
                    .map(|m| String::from_utf8(m.to_vec()).unwrap())
                    .collect(),
            ),
            Ok(None) => Some(BTreeSet::new()),
            Err(_) => None,
        }
    }
}

struct Cluster {
    replicas: Vec<Replica>,
    logs: Vec<Vec<Event>>,
    /// delivered[to][from]: how many of `from`'s events `to` applied.
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

    fn run(&mut self, steps: &[Step]) {
        let n = self.replicas.len();
        for step in steps {
            match step {
                Step::Write { at, op } => {
                    let at = at % n;
                    let event = self.replicas[at].write(op);
                    self.logs[at].push(event);
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
            let event = self.logs[from][next].clone();
            self.replicas[to].receive(&event);
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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..MEMBERS.len()).prop_map(Op::Add),
        4 => (0..MEMBERS.len()).prop_map(Op::Remove),
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
        let event = replica.write(&extra);
        // The delta's own state: the delta applied to nothing, with a
        // context holding exactly the dots it names.
        let mut delta_ctx = CausalContext::new();
        let mut delta_state = KeyState::new();
        delta_state.apply(&event.delta, &mut delta_ctx);
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
            prop_assert_eq!(r.members(), cluster.replicas[0].members());
        }
    }

    /// Every add whose dot no remove (or delete, or SET) ever took is
    /// present on every replica after delivery, when the key reads as a set.
    #[test]
    fn checker_every_unremoved_add_is_present_everywhere(n in 2..=4usize, history in steps(60)) {
        let mut cluster = Cluster::new(n);
        cluster.run(&history);
        cluster.sync();
        let removed: BTreeSet<Dot> = cluster
            .logs
            .iter()
            .flatten()
            .flat_map(|e| {
                let element_removes = e.delta.colls.iter().flat_map(|c| match c {
                    cordis::crdt::CollDelta::Set(d) => d
                        .changes
                        .iter()
                        .flat_map(|ch| ch.removes.iter())
                        .collect::<Vec<_>>(),
                    #[allow(unreachable_patterns)]
                    _ => Vec::new(),
                });
                element_removes.collect::<Vec<_>>()
            })
            .collect();
        let survivors: BTreeSet<&str> = cluster
            .logs
            .iter()
            .flatten()
            .filter_map(|e| e.added)
            .filter(|(_, dot)| !removed.contains(dot))
            .map(|(m, _)| MEMBERS[m])
            .collect();
        for r in &cluster.replicas {
            if let Some(members) = r.members() {
                for m in &survivors {
                    prop_assert!(members.contains(*m), "{m} lost at {:?}", r.id);
                }
            }
        }
    }
}

#[test]
fn add_wins_over_a_concurrent_remove() {
    let mut cluster = Cluster::new(2);
    cluster.run(&[Step::Write {
        at: 0,
        op: Op::Add(0),
    }]);
    cluster.sync();
    // Replica 1 removes "a" while replica 0 re-adds it, concurrently.
    cluster.run(&[
        Step::Write {
            at: 1,
            op: Op::Remove(0),
        },
        Step::Write {
            at: 0,
            op: Op::Add(0),
        },
    ]);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.members().unwrap(), BTreeSet::from(["a".to_string()]));
    }
}

#[test]
fn remove_takes_what_it_observed() {
    let mut cluster = Cluster::new(2);
    cluster.run(&[
        Step::Write {
            at: 0,
            op: Op::Add(0),
        },
        Step::Write {
            at: 0,
            op: Op::Add(1),
        },
    ]);
    cluster.sync();
    cluster.run(&[Step::Write {
        at: 1,
        op: Op::Remove(0),
    }]);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.members().unwrap(), BTreeSet::from(["b".to_string()]));
    }
}

#[test]
fn delete_keeps_a_concurrent_unobserved_add() {
    let mut cluster = Cluster::new(2);
    cluster.run(&[Step::Write {
        at: 0,
        op: Op::Add(0),
    }]);
    cluster.sync();
    cluster.run(&[
        Step::Write {
            at: 1,
            op: Op::Delete,
        },
        Step::Write {
            at: 0,
            op: Op::Add(1),
        },
    ]);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.members().unwrap(), BTreeSet::from(["b".to_string()]));
    }
}

#[test]
fn concurrent_creation_as_two_types_resolves_to_the_later_claim_everywhere() {
    // Replica 0 (clock ahead) creates a set; replica 1 a string, earlier.
    let mut cluster = Cluster::new(2);
    cluster.replicas[0].clock = 100;
    cluster.run(&[
        Step::Write {
            at: 0,
            op: Op::Add(0),
        },
        Step::Write {
            at: 1,
            op: Op::SetString,
        },
    ]);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.key.kind(), Some(Kind::Set));
        assert!(r.key.has_type_conflict());
        assert_eq!(r.key.string_value(), None);
    }
    // A later SET that observed both removes the loser and wins.
    cluster.run(&[Step::Write {
        at: 1,
        op: Op::SetString,
    }]);
    cluster.replicas[1].clock = 1000;
    cluster.run(&[Step::Write {
        at: 1,
        op: Op::SetString,
    }]);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.key.kind(), Some(Kind::String));
        assert!(!r.key.has_type_conflict());
        assert!(r.key.collections().is_empty());
    }
    let _ = OrSet::KIND;
}
