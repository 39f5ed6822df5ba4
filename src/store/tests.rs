//! Store behaviours: local writes and their deltas, expiry, placement of
//! tombstones, remote application and garbage collection.

use super::*;
use crate::crdt::TtlChange;

const A: ReplicaId = ReplicaId(0xA);
const B: ReplicaId = ReplicaId(0xB);

fn set(store: &mut Store, key: &str, value: &str, ttl: TtlChange) {
    let value = Bytes::copy_from_slice(value.as_bytes());
    store.write_key(0, key.as_bytes(), |state, w| {
        let ts = w.ts();
        (state.delta_set(value, ts, ttl, &mut || w.next_dot()), ())
    });
}

fn incr(store: &mut Store, key: &str, by: i64) {
    store.write_key(0, key.as_bytes(), |state, w| {
        let me = w.replica();
        (
            state.delta_incr(me, crate::crdt::Amount::from_int(by), &mut || w.next_dot()),
            (),
        )
    });
}

fn get(store: &mut Store, key: &str) -> Option<String> {
    store
        .lookup(0, key.as_bytes())
        .and_then(|s| s.string_value())
        .map(|v| String::from_utf8(v.to_bytes().to_vec()).unwrap())
}

fn ship(from: &Store, to: &mut Store) {
    let seen = to.version_vector().get(from.replica());
    for batch in from.delta_log().since(seen).expect("log holds everything") {
        to.apply_remote(batch).expect("in order");
    }
}

fn command<R>(store: &mut Store, f: impl FnOnce(&mut Store) -> R) -> R {
    store.begin_command();
    let r = f(store);
    store.finish_batch();
    r
}

#[test]
fn each_write_command_becomes_one_batch_with_contiguous_seqs() {
    let mut s = Store::new(A);
    command(&mut s, |s| {
        set(s, "k", "v", TtlChange::Deadline(u64::MAX / 2))
    });
    command(&mut s, |s| s.delete_key(0, b"k"));
    let batches: Vec<_> = s.delta_log().since(0).unwrap().cloned().collect();
    assert_eq!(batches.len(), 2);
    assert_eq!((batches[0].first_seq, batches[0].last_seq), (1, 2));
    assert_eq!((batches[1].first_seq, batches[1].last_seq), (3, 3));
    assert_eq!(s.version_vector().get(A), 3);
}

#[test]
fn expired_key_is_hidden_and_a_new_write_starts_clean() {
    let mut s = Store::new(A);
    s.set_time_override(Some(1_000));
    command(&mut s, |s| set(s, "k", "v", TtlChange::Deadline(1_500)));
    assert_eq!(get(&mut s, "k").as_deref(), Some("v"));
    s.set_time_override(Some(2_000));
    assert_eq!(get(&mut s, "k"), None);
    assert_eq!(s.dbsize(0), 0);
    command(&mut s, |s| incr(s, "k", 1));
    assert_eq!(get(&mut s, "k").as_deref(), Some("1"));
    assert_eq!(
        s.deadline(0, b"k"),
        Some(None),
        "the old TTL must not stick"
    );
}

#[test]
fn active_expiry_frees_keys_nobody_touches() {
    let mut s = Store::new(A);
    s.set_time_override(Some(1_000));
    for i in 0..200 {
        command(&mut s, |s| {
            set(s, &format!("k{i}"), "v", TtlChange::Deadline(1_100))
        });
    }
    command(&mut s, |s| set(s, "keep", "v", TtlChange::Clear));
    s.set_time_override(Some(5_000));
    let mut rounds = 0;
    while s.db(0).keys.volatile_len() > 0 && rounds < 100 {
        s.time_override = Some(5_000);
        s.active_expire_cycle(1000);
        rounds += 1;
    }
    assert_eq!(s.dbsize(0), 1);
    let stable = s.version_vector().clone();
    s.collect_garbage(&stable);
    assert_eq!(s.tombstones_pending(), 0);
}

#[test]
fn remote_batches_apply_once_and_in_order() {
    let mut a = Store::new(A);
    let mut b = Store::new(B);
    command(&mut a, |s| set(s, "x", "1", TtlChange::Keep));
    command(&mut a, |s| set(s, "x", "2", TtlChange::Keep));
    let batches: Vec<_> = a.delta_log().since(0).unwrap().cloned().collect();
    assert!(matches!(
        b.apply_remote(&batches[1]),
        Err(ApplyError::Gap { .. })
    ));
    assert_eq!(b.apply_remote(&batches[0]), Ok(true));
    assert_eq!(b.apply_remote(&batches[0]), Ok(false));
    assert_eq!(b.apply_remote(&batches[1]), Ok(true));
    assert_eq!(get(&mut b, "x").as_deref(), Some("2"));
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn concurrent_delete_and_write_converge_to_the_write() {
    let mut a = Store::new(A);
    let mut b = Store::new(B);
    command(&mut a, |s| set(s, "k", "old", TtlChange::Keep));
    ship(&a, &mut b);
    command(&mut a, |s| s.delete_key(0, b"k"));
    command(&mut b, |s| set(s, "k", "new", TtlChange::Keep));
    ship(&a, &mut b);
    ship(&b, &mut a);
    assert_eq!(get(&mut a, "k").as_deref(), Some("new"));
    assert_eq!(get(&mut b, "k").as_deref(), Some("new"));
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn concurrent_increments_on_two_nodes_add_up() {
    let mut a = Store::new(A);
    let mut b = Store::new(B);
    command(&mut a, |s| incr(s, "c", 5));
    command(&mut b, |s| incr(s, "c", 7));
    command(&mut b, |s| incr(s, "c", 1));
    ship(&a, &mut b);
    ship(&b, &mut a);
    assert_eq!(get(&mut a, "c").as_deref(), Some("13"));
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn flush_removes_only_what_the_flushing_node_had_seen() {
    let mut a = Store::new(A);
    let mut b = Store::new(B);
    command(&mut a, |s| set(s, "seen", "1", TtlChange::Keep));
    ship(&a, &mut b);
    command(&mut b, |s| set(s, "unseen", "2", TtlChange::Keep));
    command(&mut a, |s| s.flush_db(0));
    ship(&a, &mut b);
    ship(&b, &mut a);
    assert_eq!(get(&mut a, "seen"), None);
    assert_eq!(get(&mut b, "seen"), None);
    assert_eq!(get(&mut a, "unseen").as_deref(), Some("2"));
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn digest_is_all_zero_for_an_empty_dataset_and_changes_with_data() {
    let mut s = Store::new(A);
    assert_eq!(s.digest(), [0u8; 20]);
    command(&mut s, |s| set(s, "k", "v", TtlChange::Keep));
    assert_ne!(s.digest(), [0u8; 20]);
}
