//! Convergence of hash keys across whole nodes' stores driven through the
//! real dispatcher: random hash commands (plus SET, DEL, EXPIRE, RENAME,
//! FLUSHDB and SADD on the same keys, so type conflicts and whole-key
//! removes race with field writes) run on 2 or 3 stores, each store's
//! outgoing batches are shipped to the others in a shuffled interleaving
//! (FIFO per origin, as replication streams them), and after everything is
//! delivered every node reports the same `DEBUG DIGEST`, the same HGETALL,
//! HLEN and TYPE. Also the DESIGN.md §3 hash rules as two-store cases
//! through the dispatcher. `CORDIS_SEEDS` runs more seeds.

use bytes::Bytes;
use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node, NOW_MS};

/// A random hash command (or another family's write on the same keys).
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("h{}", rng.gen_range(0..4));
    let other = format!("h{}", rng.gen_range(0..4));
    let field = ["f", "g", "h", "i"][rng.gen_range(0..4)];
    let field2 = ["f", "g", "h", "i"][rng.gen_range(0..4)];
    let value = ["a", "10", "-3", "2.5", "x y", ""][rng.gen_range(0..6)];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..30) {
        0..=5 => s(&["HSET", &key, field, value]),
        6 => s(&["HSET", &key, field, value, field2, "v2"]),
        7 => s(&["HMSET", &key, field2, value]),
        8 => s(&["HSETNX", &key, field, value]),
        9..=12 => s(&["HINCRBY", &key, field, &rng.gen_range(-5..10).to_string()]),
        13 => s(&["HINCRBYFLOAT", &key, field, "0.25"]),
        14..=16 => s(&["HDEL", &key, field]),
        17 => s(&["HDEL", &key, field, field2]),
        18 => s(&["DEL", &key]),
        19 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        20 => s(&["PEXPIREAT", &key, &(NOW_MS - 1).to_string()]),
        21 => s(&["SET", &key, value]),
        22 => s(&["RENAME", &key, &other]),
        23 => s(&["SADD", &key, field]),
        24 => s(&["INCRBY", &key, "2"]),
        25 => {
            if rng.gen_ratio(1, 4) {
                s(&["FLUSHDB"])
            } else {
                s(&["HGETALL", &key])
            }
        }
        26 => s(&["HRANDFIELD", &key, "2"]),
        27 => s(&["PERSIST", &key]),
        _ => s(&["HGET", &key, field]),
    }
}

/// What every node must agree on after full delivery.
fn view(node: &mut Node) -> Vec<(Reply, Reply, Vec<String>)> {
    (0..4)
        .map(|k| {
            let key = format!("h{k}");
            (
                node.run(&["TYPE", &key]),
                node.run(&["HLEN", &key]),
                pairs(node.run(&["HGETALL", &key])),
            )
        })
        .collect()
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.04, random_command, view);
}

#[test]
fn two_stores_with_shuffled_delivery_agree_on_every_hash() {
    for seed in 0..seeds(300) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_with_cross_origin_reordering_agree_on_every_hash() {
    for seed in 5000..(5000 + seeds(200)) {
        play(seed, 3, 150);
    }
}

/// Two synced nodes; `setup` runs on the first before syncing.
fn pair(setup: &[&[&str]]) -> Vec<Node> {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    for args in setup {
        nodes[0].run(args);
    }
    deliver_everything(&nodes);
    nodes
}

fn hget_everywhere(nodes: &mut [Node], key: &str, field: &str) -> Vec<Reply> {
    nodes
        .iter_mut()
        .map(|n| n.run(&["HGET", key, field]))
        .collect()
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn concurrent_hset_of_one_field_is_last_writer_wins() {
    let mut nodes = pair(&[&["HSET", "h", "f", "start"]]);
    nodes[0].run(&["HSET", "h", "f", "one"]);
    // The wall clock is fixed, so both writes carry the same HLC: the
    // larger replica id (the second node) wins, the same way everywhere.
    nodes[1].run(&["HSET", "h", "f", "two"]);
    deliver_everything(&nodes);
    let reads = hget_everywhere(&mut nodes, "h", "f");
    assert_eq!(reads[0], reads[1]);
    assert_eq!(reads[0], bulk("two"));
}

#[test]
fn concurrent_hincrby_on_two_stores_sums() {
    let mut nodes = pair(&[&["HSET", "h", "n", "10"]]);
    nodes[0].run(&["HINCRBY", "h", "n", "5"]);
    nodes[1].run(&["HINCRBY", "h", "n", "-2"]);
    nodes[1].run(&["HINCRBYFLOAT", "h", "n", "0.5"]);
    deliver_everything(&nodes);
    assert_eq!(
        hget_everywhere(&mut nodes, "h", "n"),
        [bulk("13.5"), bulk("13.5")]
    );
}

#[test]
fn hdel_does_not_remove_a_concurrent_hset() {
    let mut nodes = pair(&[&["HSET", "h", "f", "old", "g", "keep"]]);
    assert_eq!(nodes[0].run(&["HDEL", "h", "f"]), Reply::Integer(1));
    nodes[1].run(&["HSET", "h", "f", "new"]);
    deliver_everything(&nodes);
    assert_eq!(
        hget_everywhere(&mut nodes, "h", "f"),
        [bulk("new"), bulk("new")]
    );
    // A later HDEL that observed it removes it everywhere.
    nodes[0].run(&["HDEL", "h", "f"]);
    deliver_everything(&nodes);
    assert_eq!(
        hget_everywhere(&mut nodes, "h", "f"),
        [Reply::Nil, Reply::Nil]
    );
    for n in nodes.iter_mut() {
        assert_eq!(n.run(&["HLEN", "h"]), Reply::Integer(1));
    }
}

#[test]
fn hset_on_one_store_and_hincrby_on_the_other_add_up() {
    let mut nodes = pair(&[&["HSET", "h", "n", "5"]]);
    nodes[0].run(&["HSET", "h", "n", "100"]);
    nodes[1].run(&["HINCRBY", "h", "n", "3"]);
    deliver_everything(&nodes);
    assert_eq!(
        hget_everywhere(&mut nodes, "h", "n"),
        [bulk("103"), bulk("103")]
    );
}

#[test]
fn del_of_the_hash_keeps_a_concurrent_field_write() {
    let mut nodes = pair(&[&["HSET", "h", "a", "1", "b", "2"]]);
    nodes[0].run(&["DEL", "h"]);
    nodes[1].run(&["HSET", "h", "c", "3"]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(pairs(n.run(&["HGETALL", "h"])), ["c", "3"]);
    }
}

#[test]
fn del_of_the_hash_resets_only_the_increments_it_observed() {
    let mut nodes = pair(&[]);
    nodes[1].run(&["HINCRBY", "h", "n", "5"]);
    deliver_everything(&nodes);
    // Node 0 deletes the hash (having seen +5) while node 1 adds 1 more to
    // the same increment run: only the unobserved +1 survives, as for a
    // string counter.
    nodes[0].run(&["DEL", "h"]);
    nodes[1].run(&["HINCRBY", "h", "n", "1"]);
    deliver_everything(&nodes);
    assert_eq!(
        hget_everywhere(&mut nodes, "h", "n"),
        [bulk("1"), bulk("1")]
    );
}

/// A HGETALL reply as sorted `field`, `value` strings (errors as text).
fn pairs(reply: Reply) -> Vec<String> {
    let mut entries: Vec<(String, String)> = match reply {
        Reply::Map(entries) => entries
            .into_iter()
            .map(|(f, v)| (text(f), text(v)))
            .collect(),
        other => return vec![format!("{other:?}")],
    };
    entries.sort();
    entries.into_iter().flat_map(|(f, v)| [f, v]).collect()
}

fn text(reply: Reply) -> String {
    match reply {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => format!("{other:?}"),
    }
}
