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
use cordis::crdt::{Amount, ElementCrdt, KeyDelta, Kind, TtlChange};
use proptest::prelude::*;

mod support;

use support::key_model::{self, joined, steps, Replica};

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

type Read = Option<BTreeMap<String, String>>;
type Step = key_model::Step<Op>;
type Cluster = key_model::Cluster<Op>;

fn cluster(n: usize) -> Cluster {
    Cluster::new(n, write)
}

/// One local write of `op` at `replica`.
fn write(replica: &mut Replica, op: &Op) -> KeyDelta {
    let id = replica.id;
    replica.write_with(|state, ts, mut next| {
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
        match op {
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
        }
    })
}

/// The hash as field → value text; `None` when the key is another type.
fn read(r: &Replica) -> Read {
    match r.key.typed::<OrMap>() {
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

fn field(r: &Replica, f: &str) -> Option<String> {
    read(r).and_then(|m| m.get(f).cloned())
}

/// Runs one local write at replica `at`.
fn write_at(cluster: &mut Cluster, at: usize, op: Op) {
    cluster.run(&[Step::Write { at, op }]);
}

/// What every replica reads for `f`.
fn all_read(cluster: &Cluster, f: &str) -> Vec<Option<String>> {
    cluster.replicas.iter().map(|r| field(r, f)).collect()
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
        key_model::check_convergence(cluster(n), &history, read)?;
    }

    /// Joining two replicas' whole states gives what delivering the missing
    /// deltas gives (the anti-entropy path agrees with the delta path).
    #[test]
    fn state_join_agrees_with_delta_delivery(history in steps(op(), 50)) {
        let mut cluster = cluster(2);
        cluster.run(&history);
        let (state, _) = joined(&cluster.replicas[0], &cluster.replicas[1]);
        cluster.sync();
        prop_assert_eq!(state, cluster.replicas[0].key.clone());
    }

    #[test]
    fn garbage_collection_over_a_stable_vector_changes_no_read(n in 2..=3usize, history in steps(op(), 50)) {
        let mut cluster = cluster(n);
        cluster.run(&history);
        cluster.sync();
        let stable = cluster.replicas[0].ctx.version_vector().clone();
        for r in &mut cluster.replicas {
            let before = read(r);
            r.key.collect_garbage(&stable);
            prop_assert_eq!(read(r), before);
        }
        let first = cluster.replicas[0].key.clone();
        for r in &cluster.replicas[1..] {
            prop_assert_eq!(&r.key, &first);
        }
    }
}

/// A cluster where both replicas hold field `f` = `start`.
fn synced_with(start: &'static str) -> Cluster {
    let mut cluster = cluster(2);
    let v = VALUES.iter().position(|v| *v == start).unwrap();
    write_at(&mut cluster, 0, Op::Set(0, v));
    cluster.sync();
    cluster
}

#[test]
fn concurrent_hsets_of_a_field_resolve_by_lww() {
    let mut cluster = synced_with("1");
    // Replica 1's clock is ahead: its write wins wherever it lands.
    cluster.replicas[1].clock = 50;
    write_at(&mut cluster, 1, Op::Set(0, 2)); // "x"
    write_at(&mut cluster, 0, Op::Set(0, 1)); // "10"
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("x".into()), Some("x".into())]
    );
}

#[test]
fn concurrent_hsets_with_equal_clocks_resolve_by_replica() {
    let mut cluster = cluster(2);
    write_at(&mut cluster, 0, Op::Set(0, 1)); // replica 30: "10"
    write_at(&mut cluster, 1, Op::Set(0, 2)); // replica 10: "x"
    cluster.sync();
    // Same HLC: the larger replica id (30, replica 0) wins.
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("10".into()), Some("10".into())]
    );
}

#[test]
fn concurrent_hincrbys_all_count() {
    let mut cluster = synced_with("10");
    write_at(&mut cluster, 0, Op::Incr(0, 3));
    write_at(&mut cluster, 1, Op::Incr(0, 2));
    write_at(&mut cluster, 1, Op::Incr(0, 2));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("17".into()), Some("17".into())]
    );
}

#[test]
fn hdel_keeps_a_concurrent_unobserved_hset() {
    let mut cluster = synced_with("1");
    write_at(&mut cluster, 0, Op::Del(0));
    write_at(&mut cluster, 1, Op::Set(0, 2));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("x".into()), Some("x".into())]
    );
}

#[test]
fn hdel_keeps_a_concurrent_unobserved_hincrby() {
    let mut cluster = synced_with("10");
    write_at(&mut cluster, 0, Op::Del(0));
    write_at(&mut cluster, 1, Op::Incr(0, 4));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("4".into()), Some("4".into())]
    );
}

#[test]
fn hdel_resets_only_the_increments_it_observed() {
    let mut cluster = cluster(2);
    write_at(&mut cluster, 1, Op::Incr(0, 5));
    cluster.sync();
    // Replica 0 deletes the field (having seen +5) while replica 1 adds 1
    // more to the same run: only the unobserved +1 survives.
    write_at(&mut cluster, 0, Op::Del(0));
    write_at(&mut cluster, 1, Op::Incr(0, 1));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("1".into()), Some("1".into())]
    );
}

#[test]
fn del_of_the_whole_hash_resets_only_the_increments_it_observed() {
    let mut cluster = cluster(2);
    write_at(&mut cluster, 1, Op::Incr(0, 5));
    write_at(&mut cluster, 1, Op::Set(1, 0));
    cluster.sync();
    write_at(&mut cluster, 0, Op::Delete);
    write_at(&mut cluster, 1, Op::Incr(0, 1));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("1".into()), Some("1".into())]
    );
    assert_eq!(all_read(&cluster, "g"), [None, None]);
}

#[test]
fn hset_on_one_side_and_hincrby_on_the_other_add_up() {
    let mut cluster = synced_with("1");
    write_at(&mut cluster, 0, Op::Incr(0, 3));
    cluster.sync();
    // Both see 4; replica 0 sets 10 while replica 1 adds 2: 10 + 2.
    write_at(&mut cluster, 0, Op::Set(0, 1));
    write_at(&mut cluster, 1, Op::Incr(0, 2));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("12".into()), Some("12".into())]
    );
}

#[test]
fn increments_concurrent_with_a_non_numeric_hset_leave_its_value() {
    let mut cluster = synced_with("1");
    write_at(&mut cluster, 0, Op::Set(0, 2)); // "x"
    write_at(&mut cluster, 1, Op::Incr(0, 2));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
        [Some("x".into()), Some("x".into())]
    );
}

#[test]
fn float_increments_sum_exactly() {
    let mut cluster = cluster(3);
    write_at(&mut cluster, 0, Op::IncrFloat(0, "0.1"));
    write_at(&mut cluster, 1, Op::IncrFloat(0, "0.1"));
    write_at(&mut cluster, 2, Op::IncrFloat(0, "0.1"));
    cluster.sync();
    assert_eq!(
        all_read(&cluster, "f"),
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
    write_at(&mut cluster, 0, Op::Set(0, 1));
    write_at(&mut cluster, 1, Op::Set(0, 2));
    cluster.sync();
    assert!(!plain(&cluster, 0));
    write_at(&mut cluster, 1, Op::Set(0, 0));
    cluster.sync();
    assert!(plain(&cluster, 0) && plain(&cluster, 1));
}

#[test]
fn concurrent_creation_as_hash_and_string_resolves_to_the_later_claim() {
    let mut cluster = cluster(2);
    cluster.replicas[0].clock = 100;
    write_at(&mut cluster, 0, Op::Set(0, 0));
    write_at(&mut cluster, 1, Op::SetString);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.key.kind(), Some(Kind::Hash));
        assert!(r.key.has_type_conflict());
    }
    // A DEL that observed both clears the conflict.
    write_at(&mut cluster, 1, Op::Delete);
    cluster.sync();
    for r in &cluster.replicas {
        assert_eq!(r.key.kind(), None);
        assert!(r.key.collections().is_empty());
    }
    let _ = OrMap::KIND;
}
