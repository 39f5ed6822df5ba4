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
use cordis::crdt::orset::{MemberChange, OrSet, SetDelta};
use cordis::crdt::{CollDelta, Dot, ElementCrdt, KeyDelta, Kind, TtlChange};
use proptest::prelude::*;

mod support;

use support::key_model::{self, steps, Replica};

const MEMBERS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Clone, Debug)]
enum Op {
    Add(usize),
    Remove(usize),
    Delete,
    SetString,
}

type Step = key_model::Step<Op>;
type Cluster = key_model::Cluster<Op>;

fn cluster(n: usize) -> Cluster {
    Cluster::new(n, write)
}

/// One local write of `op` at `replica`.
fn write(replica: &mut Replica, op: &Op) -> KeyDelta {
    replica.write_with(|state, ts, mut next| {
        let set = match state.typed::<OrSet>() {
            Ok(Some(set)) => set.clone(),
            _ => OrSet::default(),
        };
        match op {
            Op::Add(m) => {
                let change = SetDelta {
                    changes: vec![set.delta_add(MEMBERS[*m].as_bytes(), next())],
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
        }
    })
}

/// The members a replica's key reads as (`None`: another type).
fn members(r: &Replica) -> Option<BTreeSet<String>> {
    match r.key.typed::<OrSet>() {
        Ok(Some(set)) => Some(
            set.members()
                .map(|m| String::from_utf8(m.to_vec()).unwrap())
                .collect(),
        ),
        Ok(None) => Some(BTreeSet::new()),
        Err(_) => None,
    }
}

/// The set element changes of a delta.
fn set_changes(delta: &KeyDelta) -> impl Iterator<Item = &MemberChange> {
    delta.colls.iter().flat_map(|c| match c {
        CollDelta::Set(d) => d.changes.iter(),
        #[allow(unreachable_patterns)]
        _ => [].iter(),
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..MEMBERS.len()).prop_map(Op::Add),
        4 => (0..MEMBERS.len()).prop_map(Op::Remove),
        1 => Just(Op::Delete),
        1 => Just(Op::SetString),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn join_is_commutative(n in 2..=4usize, history in steps(op(), 40), a in 0..4usize, b in 0..4usize) {
        key_model::check_join_commutes(cluster(n), &history, a, b)?;
    }

    #[test]
    fn join_is_associative(n in 3..=4usize, history in steps(op(), 40)) {
        key_model::check_join_associates(cluster(n), &history)?;
    }

    #[test]
    fn join_is_idempotent(n in 2..=4usize, history in steps(op(), 40), a in 0..4usize) {
        key_model::check_join_is_idempotent(cluster(n), &history, a)?;
    }

    #[test]
    fn applying_a_delta_equals_joining_its_delta_state(n in 2..=4usize, history in steps(op(), 40), extra in op()) {
        key_model::check_delta_equals_its_state_joined(cluster(n), &history, &extra)?;
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(n in 2..=4usize, history in steps(op(), 60)) {
        key_model::check_convergence(cluster(n), &history, members)?;
    }

    /// Every add whose dot no remove (or delete, or SET) ever took is
    /// present on every replica after delivery, when the key reads as a set.
    #[test]
    fn checker_every_unremoved_add_is_present_everywhere(n in 2..=4usize, history in steps(op(), 60)) {
        let mut cluster = cluster(n);
        cluster.run(&history);
        cluster.sync();
        let changes = || cluster.logs.iter().flatten().flat_map(set_changes);
        let removed: BTreeSet<Dot> = changes().flat_map(|c| c.removes.iter()).collect();
        let survivors: BTreeSet<String> = changes()
            .filter(|c| c.add.is_some_and(|dot| !removed.contains(&dot)))
            .map(|c| String::from_utf8(c.member.to_vec()).unwrap())
            .collect();
        for r in &cluster.replicas {
            if let Some(members) = members(r) {
                for m in &survivors {
                    prop_assert!(members.contains(m), "{m} lost at {:?}", r.id);
                }
            }
        }
    }
}

#[test]
fn add_wins_over_a_concurrent_remove() {
    let mut cluster = cluster(2);
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
        assert_eq!(members(r).unwrap(), BTreeSet::from(["a".to_string()]));
    }
}

#[test]
fn remove_takes_what_it_observed() {
    let mut cluster = cluster(2);
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
        assert_eq!(members(r).unwrap(), BTreeSet::from(["b".to_string()]));
    }
}

#[test]
fn delete_keeps_a_concurrent_unobserved_add() {
    let mut cluster = cluster(2);
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
        assert_eq!(members(r).unwrap(), BTreeSet::from(["b".to_string()]));
    }
}

#[test]
fn concurrent_creation_as_two_types_resolves_to_the_later_claim_everywhere() {
    // Replica 0 (clock ahead) creates a set; replica 1 a string, earlier.
    let mut cluster = cluster(2);
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
