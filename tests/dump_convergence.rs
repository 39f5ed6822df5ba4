//! Convergence of RESTORE driven through the real dispatcher
//! (`support::inproc::play`): random writes of every type on a few keys,
//! mixed with RESTORE (plain, REPLACE, with a relative or absolute TTL, an
//! already-expired ABSTTL) of payloads of every type, DUMP, DEL and
//! EXPIRE, on 2 or 3 in-process stores whose batches are shipped in
//! shuffled order (FIFO per origin). After full delivery every node must
//! report the same `DEBUG DIGEST` and the same type, TTL and value of
//! every key. `CORDIS_SEEDS` runs more seeds.

use rand::Rng;

use cordis::protocol::Reply;
use cordis::rdb::{dump_payload, EncodeOptions, RdbValue};

mod support;

use support::inproc::{self, seeds, Node, NOW_MS};

const KEYS: usize = 3;

/// A RESTORE payload of a random small value of a random type.
fn random_payload(rng: &mut impl Rng) -> Vec<u8> {
    let n = rng.gen_range(1..4);
    let item = |i: usize| format!("e{i}").into_bytes();
    let value = match rng.gen_range(0..6) {
        0 => RdbValue::String(rng.gen_range(0..100).to_string().into_bytes()),
        1 => RdbValue::String(b"restored text".to_vec()),
        2 => RdbValue::List((0..n).map(|_| item(rng.gen_range(0..5))).collect()),
        3 => RdbValue::Set((0..n).map(item).collect()),
        4 => RdbValue::Hash(
            (0..n)
                .map(|i| (item(i), rng.gen_range(0..9).to_string().into_bytes()))
                .collect(),
        ),
        _ => RdbValue::ZSet(
            (0..n)
                .map(|i| (item(i), rng.gen_range(-3..3) as f64))
                .collect(),
        ),
    };
    dump_payload(&value, &EncodeOptions::default())
}

fn random_command(rng: &mut impl Rng) -> Vec<Vec<u8>> {
    let key = format!("k{}", rng.gen_range(0..KEYS));
    let value = rng.gen_range(0..6).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
    let restore = |rng: &mut dyn rand::RngCore, options: &[&str]| {
        let mut args = s(&["RESTORE", &key]);
        let ttl = if options.contains(&"ABSTTL") {
            // Half in the past (stores nothing), half in the future.
            (NOW_MS as i64 + rng.gen_range(-500..500)).to_string()
        } else {
            ["0", "0", "300"][rng.gen_range(0..3)].to_string()
        };
        args.push(ttl.into_bytes());
        args.push(random_payload(&mut rand::rngs::StdRng::seed_from_u64(
            rng.gen(),
        )));
        args.extend(options.iter().map(|o| o.as_bytes().to_vec()));
        args
    };
    match rng.gen_range(0..16) {
        0 => s(&["RPUSH", &key, &value]),
        1 => s(&["SADD", &key, &value]),
        2 => s(&["ZINCRBY", &key, "1", &value]),
        3 => s(&["SET", &key, &value]),
        4 => s(&["INCRBY", &key, &value]),
        5 => s(&["HINCRBY", &key, "e0", &value]),
        6 | 7 => restore(rng, &[]),
        8..=10 => restore(rng, &["REPLACE"]),
        11 => restore(rng, &["REPLACE", "ABSTTL"]),
        12 => s(&["DUMP", &key]),
        13 => s(&["DEL", &key]),
        14 => s(&["EXPIRE", &key, &rng.gen_range(1..500).to_string()]),
        _ => s(&["PERSIST", &key]),
    }
}

use rand::SeedableRng;

/// Type, TTL and whole value of every key.
fn view(node: &mut Node) -> Vec<(Reply, Reply, Reply)> {
    (0..KEYS)
        .map(|k| {
            let key = format!("k{k}");
            let kind = node.run(&["TYPE", &key]);
            let value = match &kind {
                Reply::Simple(t) if t.as_ref() == b"string" => node.run(&["GET", &key]),
                Reply::Simple(t) if t.as_ref() == b"list" => node.run(&["LRANGE", &key, "0", "-1"]),
                Reply::Simple(t) if t.as_ref() == b"set" => node.run(&["SORT", &key, "ALPHA"]),
                Reply::Simple(t) if t.as_ref() == b"zset" => {
                    node.run(&["ZRANGE", &key, "0", "-1", "WITHSCORES"])
                }
                Reply::Simple(t) if t.as_ref() == b"hash" => {
                    let fields = node.run(&["HKEYS", &key]);
                    let mut names: Vec<Vec<u8>> = match fields {
                        Reply::Array(items) => items
                            .into_iter()
                            .filter_map(|r| match r {
                                Reply::Bulk(b) => Some(b.to_vec()),
                                _ => None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    names.sort();
                    let pairs: Vec<Reply> = names
                        .iter()
                        .map(|f| node.run(&["HGET", &key, std::str::from_utf8(f).unwrap()]))
                        .collect();
                    Reply::Array(pairs)
                }
                _ => Reply::Nil,
            };
            (kind, node.run(&["PTTL", &key]), value)
        })
        .collect()
}

fn play(seed: u64, node_count: usize, steps: usize) {
    inproc::play(seed, node_count, steps, 0.05, random_command, view);
}

#[test]
fn two_stores_restoring_payloads_reach_equal_digests() {
    for seed in 0..seeds(200) {
        play(seed, 2, 120);
    }
}

#[test]
fn three_stores_restoring_payloads_reach_equal_digests() {
    for seed in 0..seeds(80) {
        play(seed, 3, 150);
    }
}
