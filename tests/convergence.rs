//! Convergence of whole nodes' stores driven through the real dispatcher:
//! random commands of every implemented write kind run on 2 or 3 stores,
//! each store's outgoing batches are shipped to the others in a shuffled
//! interleaving (FIFO per origin, as replication streams them), and after
//! everything is delivered every node reports the same `DEBUG DIGEST` and
//! the same values. Commands cover strings, counters, keys, sets (so type
//! conflicts between regions arise) and MULTI/EXEC blocks. This is the core the replication layer drives.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node, NOW_MS};

/// A random write (or read, to mix lazy expiry in) on a small keyspace.
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("k{}", rng.gen_range(0..6));
    let other = format!("k{}", rng.gen_range(0..6));
    let value = ["a", "bb", "10", "-3", "2.5", "x y"][rng.gen_range(0..6)].to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let member = ["a", "b", "c", "d"][rng.gen_range(0..4)];
    let member2 = ["a", "b", "c", "d"][rng.gen_range(0..4)];
    match rng.gen_range(0..32) {
        22..=24 => s(&["SADD", &key, member, member2]),
        25 => s(&["SREM", &key, member]),
        26 => s(&["SPOP", &key]),
        27 => s(&["SMOVE", &key, &other, member]),
        28 => s(&["SINTERSTORE", &key, &other, &key]),
        29 => s(&["SUNIONSTORE", &other, &key, &other]),
        30 => s(&["SREM", &key, member, member2]),
        0..=3 => s(&["SET", &key, &value]),
        4 => s(&["SET", &key, &value, "EX", "100"]),
        5 => s(&["SET", &key, &value, "KEEPTTL"]),
        6..=8 => s(&["INCRBY", &key, &rng.gen_range(-5..10).to_string()]),
        9 => s(&["INCRBYFLOAT", &key, "0.25"]),
        10 => s(&["DEL", &key]),
        11 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        12 => s(&["PERSIST", &key]),
        13 => s(&["APPEND", &key, "z"]),
        14 => s(&["SETRANGE", &key, "1", "Q"]),
        15 => s(&["MSET", &key, &value, &other, "m"]),
        16 => s(&["GETSET", &key, &value]),
        17 => s(&["RENAME", &key, &other]),
        18 => s(&["SETNX", &key, &value]),
        19 => s(&["SELECT", &rng.gen_range(0..2).to_string()]),
        20 => {
            if rng.gen_ratio(1, 4) {
                s(&["FLUSHDB"])
            } else {
                s(&["GET", &key])
            }
        }
        _ => s(&["PEXPIREAT", &key, &(NOW_MS - 1).to_string()]),
    }
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.05, random_command, view);
}

/// Every key's value, deadline, type and set members, in databases 0 and 1
/// (digests cover values; this also compares what clients read).
fn view(node: &mut Node) -> Vec<(Reply, Reply, Reply, Vec<String>)> {
    let mut out = Vec::new();
    for db in ["0", "1"] {
        node.run(&["SELECT", db]);
        for k in 0..6 {
            let key = format!("k{k}");
            out.push((
                node.run(&["GET", &key]),
                node.run(&["PEXPIRETIME", &key]),
                node.run(&["TYPE", &key]),
                sorted_strings(node.run(&["SMEMBERS", &key])),
            ));
        }
    }
    out
}

#[test]
fn two_stores_with_shuffled_delivery_reach_equal_digests() {
    for seed in 0..seeds(300) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_with_cross_origin_reordering_reach_equal_digests() {
    for seed in 1000..(1000 + seeds(300)) {
        play(seed, 3, 150);
    }
}

#[test]
fn digest_is_independent_of_write_order() {
    let mut a = Node::new(1);
    let mut b = Node::new(2);
    for (k, v) in [("x", "1"), ("y", "2"), ("z", "3")] {
        a.run(&["SET", k, v]);
    }
    for (k, v) in [("z", "3"), ("x", "1"), ("y", "2")] {
        b.run(&["SET", k, v]);
    }
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.digest().len(), 40);
    b.run(&["SET", "x", "changed"]);
    assert_ne!(a.digest(), b.digest());
}

#[test]
fn every_write_command_hands_one_batch_to_the_delta_log() {
    let mut a = Node::new(1);
    let before = a.state.store.lock().delta_log().len();
    a.run(&["MSET", "a", "1", "b", "2", "c", "3"]);
    a.run(&["GET", "a"]);
    a.run(&["INCR", "a"]);
    let store = a.state.store.lock();
    assert_eq!(
        store.delta_log().len(),
        before + 2,
        "MSET is one batch, GET none, INCR one"
    );
}

/// The bulk strings of an array or set reply, sorted (an error reply, for
/// a key of another type, reads as one string).
fn sorted_strings(reply: Reply) -> Vec<String> {
    let mut out: Vec<String> = match reply {
        Reply::Array(items) | Reply::Set(items) => items
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect(),
        other => vec![format!("{other:?}")],
    };
    out.sort();
    out
}

#[test]
fn concurrent_creation_with_two_types_converges_and_is_counted_in_info() {
    let mut a = Node::new(1);
    let mut b = Node::new(2);
    a.run(&["SADD", "k", "m"]);
    b.run(&["SET", "k", "v"]);
    let nodes = [a, b];
    deliver_everything(&nodes);
    let [mut a, mut b] = nodes;
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.run(&["TYPE", "k"]), b.run(&["TYPE", "k"]));
    for node in [&mut a, &mut b] {
        let Reply::Verbatim(info) = node.run(&["INFO", "stats"]) else {
            panic!("INFO is verbatim text")
        };
        let info = String::from_utf8_lossy(&info).into_owned();
        assert!(info.contains("type_conflicts:1"), "{info}");
    }
    // A DEL that observed both types clears the conflict everywhere.
    a.run(&["DEL", "k"]);
    let nodes = [a, b];
    deliver_everything(&nodes);
    let [mut a, mut b] = nodes;
    assert_eq!(a.run(&["EXISTS", "k"]), Reply::Integer(0));
    assert_eq!(b.run(&["EXISTS", "k"]), Reply::Integer(0));
}
