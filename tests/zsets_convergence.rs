//! Convergence of whole nodes' stores for the sorted-set family, driven
//! through the real dispatcher (scaffolding copied from convergence.rs):
//! random ZADD/ZINCRBY/ZREM/ZPOPMIN/ZREMRANGEBY*/ZUNIONSTORE/ZRANGESTORE
//! commands, mixed with DEL, EXPIRE, SET and SADD on the same keys (type
//! conflicts), run on 2 or 3 stores; batches are shipped in a shuffled
//! interleaving (FIFO per origin) and at the end every node reports the same
//! `DEBUG DIGEST`, the same ranges with scores and the same TYPE.
//! `CORDIS_SEEDS` runs more seeds. The DESIGN §3 two-store merge cases
//! (concurrent ZADD: LWW; concurrent ZINCRBY: sum; ZREM vs a concurrent
//! ZINCRBY: the unobserved increment survives) are named tests at the end.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, deliver_everything, seeds, Node, NOW_MS};

/// A random sorted-set write (or another type's write on the same keys).
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("z{}", rng.gen_range(0..4));
    let other = format!("z{}", rng.gen_range(0..4));
    let member = ["a", "b", "c", "d", "e"][rng.gen_range(0..5)].to_string();
    let score = ["0", "1", "2.5", "-3", "10", "1e3", "inf", "0.1"][rng.gen_range(0..8)].to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..29) {
        0..=4 => s(&["ZADD", &key, &score, &member]),
        5 => s(&["ZADD", &key, "GT", "CH", &score, &member, "1", "x"]),
        6 => s(&["ZADD", &key, "NX", &score, &member]),
        7 => s(&["ZADD", &key, "XX", "INCR", &score, &member]),
        8..=10 => s(&[
            "ZINCRBY",
            &key,
            ["1", "-2", "0.5", "7"][rng.gen_range(0..4)],
            &member,
        ]),
        11..=12 => s(&["ZREM", &key, &member]),
        13 => s(&["ZPOPMIN", &key]),
        14 => s(&["ZPOPMAX", &key, "2"]),
        15 => s(&["ZREMRANGEBYSCORE", &key, "(0", "5"]),
        16 => s(&["ZREMRANGEBYRANK", &key, "0", "0"]),
        17 => s(&["ZUNIONSTORE", &key, "2", &key, &other, "WEIGHTS", "1", "2"]),
        18 => s(&["ZRANGESTORE", &key, &other, "0", "1"]),
        19 => s(&["DEL", &key]),
        20 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        21 => s(&["SET", &key, "v"]),
        22 => s(&["SADD", &key, &member]),
        23 => s(&["ZMPOP", "2", &key, &other, "MAX", "COUNT", "2"]),
        24 => s(&["BZPOPMIN", &key, &other, "0.01"]),
        25 => s(&["BZMPOP", "0.01", "1", &key, "MIN"]),
        26 => s(&["ZINTERSTORE", &key, "2", &key, &other, "AGGREGATE", "MAX"]),
        27 => s(&["ZDIFFSTORE", &other, "2", &key, &other]),
        _ => s(&["PEXPIREAT", &key, &(NOW_MS - 1).to_string()]),
    }
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.04, random_command, view);
}

fn view(node: &mut Node) -> Vec<(Reply, Reply, Reply)> {
    (0..4)
        .map(|k| {
            let key = format!("z{k}");
            (
                node.run(&["TYPE", &key]),
                node.run(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
                node.run(&["ZCARD", &key]),
            )
        })
        .collect()
}

#[test]
fn two_stores_with_shuffled_delivery_reach_equal_sorted_sets() {
    for seed in 0..seeds(200) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_with_cross_origin_reordering_reach_equal_sorted_sets() {
    for seed in 1000..(1000 + seeds(200)) {
        play(seed, 3, 150);
    }
}

// ----- DESIGN §3 two-store merge cases, through the dispatcher -----

fn score(node: &mut Node, key: &str, member: &str) -> Reply {
    node.run(&["ZSCORE", key, member])
}

fn double(text: &str) -> Reply {
    Reply::Double(text.parse().unwrap())
}

#[test]
fn concurrent_zadd_of_one_member_is_last_writer_wins() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["ZADD", "z", "5", "m"]);
    // Node 1's write comes later in HLC order (the clock moves past 0's).
    nodes[0]
        .state
        .store
        .lock()
        .set_time_override(Some(NOW_MS + 10));
    nodes[1]
        .state
        .store
        .lock()
        .set_time_override(Some(NOW_MS + 20));
    nodes[1].run(&["ZADD", "z", "7", "m"]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(score(n, "z", "m"), double("7"));
    }
}

#[test]
fn concurrent_zincrby_sums() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["ZADD", "z", "1", "m"]);
    deliver_everything(&nodes);
    nodes[0].run(&["ZINCRBY", "z", "2", "m"]);
    nodes[1].run(&["ZINCRBY", "z", "3.5", "m"]);
    nodes[1].run(&["ZINCRBY", "z", "1", "m"]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(score(n, "z", "m"), double("7.5"));
    }
}

#[test]
fn zrem_keeps_a_concurrent_unobserved_zincrby() {
    let mut nodes = vec![Node::new(1), Node::new(2)];
    nodes[0].run(&["ZADD", "z", "10", "m", "1", "other"]);
    nodes[0].run(&["ZINCRBY", "z", "5", "m"]);
    deliver_everything(&nodes);
    nodes[1].run(&["ZREM", "z", "m"]);
    nodes[0].run(&["ZINCRBY", "z", "1", "m"]);
    deliver_everything(&nodes);
    for n in nodes.iter_mut() {
        assert_eq!(
            score(n, "z", "m"),
            double("1"),
            "only the unobserved increment survives"
        );
        assert_eq!(n.run(&["ZCARD", "z"]), Reply::Integer(2));
    }
}
