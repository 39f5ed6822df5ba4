//! Convergence of SORT … STORE, COPY, MOVE and SWAPDB driven through the
//! real dispatcher (`support::inproc::play`): random writes of every type
//! on a few keys in databases 0 and 1, mixed with SORT STORE (plain, ALPHA,
//! BY/GET patterns), COPY (DB, REPLACE), MOVE, SWAPDB and SELECT, run on 2
//! or 3 in-process stores whose batches are shipped in shuffled order
//! (FIFO per origin). After full delivery every node must report the same
//! `DEBUG DIGEST` and the same value, type and TTL of every key in both
//! databases. `CORDIS_SEEDS` runs more seeds.

use rand::Rng;

use cordis::protocol::Reply;

mod support;

use support::inproc::{self, seeds, Node};

const KEYS: usize = 4;

/// A random command on the small keyspace `k0..k3` (and weights `w_*`).
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    let key = format!("k{}", rng.gen_range(0..KEYS));
    let other = format!("k{}", rng.gen_range(0..KEYS));
    let value = rng.gen_range(0..6).to_string();
    let db = rng.gen_range(0..2).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..24) {
        0..=2 => s(&["RPUSH", &key, &value, "3"]),
        3 => s(&["SADD", &key, &value, "7"]),
        4 => s(&["ZADD", &key, &value, &format!("m{value}")]),
        5 => s(&["SET", &key, &value]),
        6 => s(&["INCRBY", &key, &value]),
        7 => s(&["HSET", &key, "f", &value]),
        8 => s(&[
            "SET",
            &format!("w_{value}"),
            &rng.gen_range(0..9).to_string(),
        ]),
        9 => s(&["SORT", &key, "STORE", &other]),
        10 => s(&[
            "SORT", &key, "ALPHA", "DESC", "LIMIT", "0", "3", "STORE", &other,
        ]),
        11 => s(&[
            "SORT", &key, "BY", "w_*", "GET", "#", "GET", "w_*", "STORE", &other,
        ]),
        12 => s(&["SORT", &key, "BY", "nosort", "STORE", &other]),
        13 => s(&["COPY", &key, &other]),
        14 => s(&["COPY", &key, &other, "DB", &db, "REPLACE"]),
        15 => s(&["MOVE", &key, &db]),
        16 => s(&["SWAPDB", "0", "1"]),
        17 => s(&["SELECT", &db]),
        18 => s(&["DEL", &key]),
        19 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        20 => s(&["LPOP", &key]),
        21 => s(&["SREM", &key, &value]),
        22 => s(&["INCRBY", &key, "1"]),
        _ => {
            if rng.gen_ratio(1, 4) {
                s(&["FLUSHDB"])
            } else {
                s(&["SORT", &key, "ALPHA"])
            }
        }
    }
}

/// Type, TTL and visible value of every key in databases 0 and 1 (the
/// node's own selected database is restored after).
fn view(node: &mut Node) -> Vec<(Reply, Reply, Reply)> {
    let selected = node.client.db.to_string();
    let mut seen = Vec::new();
    for db in ["0", "1"] {
        node.run(&["SELECT", db]);
        for k in 0..KEYS {
            let key = format!("k{k}");
            let kind = node.run(&["TYPE", &key]);
            let value = match &kind {
                Reply::Simple(t) if t.as_ref() == b"string" => node.run(&["GET", &key]),
                Reply::Simple(t) if t.as_ref() == b"list" => node.run(&["LRANGE", &key, "0", "-1"]),
                Reply::Simple(t) if t.as_ref() == b"set" => node.run(&["SORT", &key, "ALPHA"]),
                Reply::Simple(t) if t.as_ref() == b"zset" => {
                    node.run(&["ZRANGE", &key, "0", "-1", "WITHSCORES"])
                }
                Reply::Simple(t) if t.as_ref() == b"hash" => node.run(&["HGET", &key, "f"]),
                _ => Reply::Nil,
            };
            seen.push((kind, node.run(&["PTTL", &key]), value));
        }
    }
    node.run(&["SELECT", &selected]);
    seen
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.05, random_command, view);
}

#[test]
fn two_stores_sorting_copying_and_moving_reach_equal_digests() {
    for seed in 0..seeds(200) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_sorting_copying_and_moving_reach_equal_digests() {
    for seed in 0..seeds(80) {
        play(seed, 3, 150);
    }
}
