//! Convergence of list keys driven through the real dispatcher: random
//! list commands (plus DEL, EXPIRE, SET, RENAME on the same keys, for type
//! conflicts) run on 2 or 3 in-process stores, each store's batches are
//! shipped to the others in a shuffled interleaving (FIFO per origin), and
//! after full delivery every node reports the same `DEBUG DIGEST` and the
//! same LRANGE/TYPE of every key. `CORDIS_SEEDS` runs more seeds.

use bytes::Bytes;
use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node};

/// A random list command (or a type-conflicting write) on a small keyspace.
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("k{}", rng.gen_range(0..4));
    let other = format!("k{}", rng.gen_range(0..4));
    let value = ["a", "bb", "c", "d", "e"][rng.gen_range(0..5)].to_string();
    let index = rng.gen_range(-4..5).to_string();
    let mut end = || ["LEFT", "RIGHT"][rng.gen_range(0..2)];
    let (from, to) = (end(), end());
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..29) {
        0..=3 => s(&["LPUSH", &key, &value, "z"]),
        4..=7 => s(&["RPUSH", &key, &value]),
        8 => s(&["LPUSHX", &key, &value]),
        9 => s(&["RPUSHX", &key, &value]),
        10 => s(&["LPOP", &key]),
        11 => s(&["RPOP", &key, "2"]),
        12 => s(&["LSET", &key, &index, &value]),
        13 => s(&["LINSERT", &key, "BEFORE", &value, "i"]),
        14 => s(&["LINSERT", &key, "AFTER", &value, "j"]),
        15 => s(&["LREM", &key, &index, &value]),
        16 => s(&["LTRIM", &key, &index, "-2"]),
        17 => s(&["LMOVE", &key, &other, from, to]),
        18 => s(&["RPOPLPUSH", &key, &other]),
        19 => s(&["BLPOP", &key, &other, "0.01"]),
        20 => s(&["BLMOVE", &key, &other, from, to, "0.01"]),
        21 => s(&["DEL", &key]),
        22 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        23 => s(&["SET", &key, &value]),
        24 => s(&["RENAME", &key, &other]),
        25 => s(&["LMPOP", "2", &key, &other, from, "COUNT", "2"]),
        26 => s(&["BLMPOP", "0.01", "1", &key, to]),
        27 => s(&["BRPOPLPUSH", &key, &other, "0.01"]),
        _ => {
            if rng.gen_ratio(1, 3) {
                s(&["FLUSHDB"])
            } else {
                s(&["LRANGE", &key, "0", "-1"])
            }
        }
    }
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.04, random_command, view);
}

fn view(node: &mut Node) -> Vec<(Reply, Reply)> {
    (0..4)
        .map(|k| {
            let key = format!("k{k}");
            (
                node.run(&["TYPE", &key]),
                node.run(&["LRANGE", &key, "0", "-1"]),
            )
        })
        .collect()
}

#[test]
fn two_stores_running_list_commands_reach_equal_digests() {
    for seed in 0..seeds(300) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_running_list_commands_reach_equal_digests() {
    for seed in 5000..(5000 + seeds(200)) {
        play(seed, 3, 150);
    }
}

#[test]
fn concurrent_pushes_on_two_stores_keep_every_element_in_one_order() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["RPUSH", "l", "m"]);
    deliver_everything(&nodes);
    nodes[0].run(&["LPUSH", "l", "a1", "a2"]);
    nodes[1].run(&["LPUSH", "l", "b1"]);
    nodes[0].run(&["RPUSH", "l", "ra"]);
    nodes[1].run(&["RPUSH", "l", "rb"]);
    nodes[0].run(&["LINSERT", "l", "AFTER", "m", "ia"]);
    nodes[1].run(&["LINSERT", "l", "AFTER", "m", "ib"]);
    deliver_everything(&nodes);
    let a = nodes[0].run(&["LRANGE", "l", "0", "-1"]);
    let b = nodes[1].run(&["LRANGE", "l", "0", "-1"]);
    assert_eq!(a, b);
    let Reply::Array(items) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        items.len(),
        8,
        "every concurrent insert survives: {items:?}"
    );
    let text: Vec<String> = items
        .iter()
        .map(|r| match r {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    // Each side's own order is kept; concurrent ones sit at their place.
    let at = |v: &str| text.iter().position(|t| t == v).unwrap();
    assert!(at("a2") < at("a1") && at("a1") < at("m"), "{text:?}");
    assert!(at("b1") < at("m"), "{text:?}");
    assert!(at("m") < at("ia") && at("m") < at("ib"), "{text:?}");
    assert!(at("ia") < at("ra") && at("ib") < at("rb"), "{text:?}");
}

#[test]
fn pop_keeps_a_concurrent_push_and_two_regions_may_pop_the_same_element() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["RPUSH", "l", "x", "y"]);
    deliver_everything(&nodes);
    // Both regions pop the head concurrently: both get "x" (at-least-once).
    let a = nodes[0].run(&["LPOP", "l"]);
    let b = nodes[1].run(&["LPOP", "l"]);
    assert_eq!(a, b);
    // A push concurrent with a pop survives.
    nodes[0].run(&["RPOP", "l"]);
    nodes[1].run(&["RPUSH", "l", "new"]);
    deliver_everything(&nodes);
    for node in nodes.iter_mut() {
        assert_eq!(
            node.run(&["LRANGE", "l", "0", "-1"]),
            Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"new"))])
        );
    }
}

#[test]
fn concurrent_lsets_of_one_element_keep_both_values_adjacent() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["RPUSH", "l", "a", "b", "c"]);
    deliver_everything(&nodes);
    nodes[0].run(&["LSET", "l", "1", "X"]);
    nodes[1].run(&["LSET", "l", "1", "Y"]);
    deliver_everything(&nodes);
    let a = nodes[0].run(&["LRANGE", "l", "0", "-1"]);
    assert_eq!(a, nodes[1].run(&["LRANGE", "l", "0", "-1"]));
    let Reply::Array(items) = a else { panic!() };
    assert_eq!(items.len(), 4);
    assert_eq!(items[0], Reply::Bulk(Bytes::from_static(b"a")));
    assert_eq!(items[3], Reply::Bulk(Bytes::from_static(b"c")));
}
