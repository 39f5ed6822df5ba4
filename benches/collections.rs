//! What collection commands and their CRDTs cost: each family's write and
//! read commands through the dispatcher on a key that already holds 10,000
//! elements (commands a build does not have yet are skipped), and the set
//! CRDT's delta application and state join.

use std::hint::black_box;

use bytes::Bytes;
use cordis::commands::{lookup, ClientState, ServerState};
use cordis::config::Config;
use cordis::crdt::orset::{OrSet, SetDelta};
use cordis::crdt::{CausalContext, Dot, ElementCrdt, ReplicaId};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// A node holding a set, a hash, a sorted set and a list of 10,000
/// elements each (for the families this build implements).
fn loaded_node() -> (std::sync::Arc<ServerState>, ClientState) {
    let state = ServerState::new(Config::default(), ReplicaId(1), None);
    let mut client = ClientState::detached(true);
    for i in 0..10_000 {
        let member = format!("member:{i}");
        let score = i.to_string();
        for command in [
            vec!["SADD", "set", &member],
            vec!["HSET", "hash", &member, "value"],
            vec!["ZADD", "zset", &score, &member],
            vec!["RPUSH", "list", &member],
        ] {
            if lookup(command[0].as_bytes()).is_some() {
                state.execute(&mut client, &args(&command));
            }
        }
    }
    (state, client)
}

fn dispatch(c: &mut Criterion) {
    let (state, mut client) = loaded_node();
    let mut group = c.benchmark_group("collection_dispatch");
    let mut i = 0u64;
    let cases: &[(&str, &[&str])] = &[
        ("SADD new member", &["SADD", "set", "fresh"]),
        ("SISMEMBER", &["SISMEMBER", "set", "member:5000"]),
        ("SPOP + SADD", &["SPOP", "set"]),
        ("HSET", &["HSET", "hash", "member:5000", "other"]),
        ("HGET", &["HGET", "hash", "member:5000"]),
        ("ZADD", &["ZADD", "zset", "7", "member:5000"]),
        ("ZSCORE", &["ZSCORE", "zset", "member:5000"]),
        ("ZRANGE 0 9", &["ZRANGE", "zset", "0", "9"]),
        ("LPUSH + RPOP", &["LPUSH", "list", "x"]),
        ("LRANGE 0 99", &["LRANGE", "list", "0", "99"]),
    ];
    for (name, words) in cases {
        if lookup(words[0].as_bytes()).is_none() {
            continue;
        }
        group.bench_function(*name, |b| {
            b.iter(|| {
                i += 1;
                let mut command = args(words);
                if words[0] == "SADD" {
                    command[2] = Bytes::from(format!("fresh:{}", i % 1024));
                }
                let reply = state.execute(&mut client, black_box(&command));
                // Keep the collections' sizes steady.
                match words[0] {
                    "SPOP" => {
                        if let cordis::protocol::Reply::Bulk(m) = &reply {
                            let re_add = [
                                Bytes::from_static(b"SADD"),
                                Bytes::from_static(b"set"),
                                m.clone(),
                            ];
                            state.execute(&mut client, &re_add);
                        }
                    }
                    "LPUSH" => {
                        state.execute(&mut client, &args(&["RPOP", "list"]));
                    }
                    _ => {}
                }
                reply
            })
        });
    }
    group.finish();
}

/// A set of `n` members made by replica `id`, with its context.
fn set_of(id: u64, n: usize) -> (OrSet, CausalContext) {
    let mut set = OrSet::default();
    let mut ctx = CausalContext::new();
    for i in 0..n {
        let dot = Dot::new(ReplicaId(id), i as u64 + 1);
        let delta = SetDelta {
            changes: vec![set.delta_add(format!("m{i}").as_bytes(), dot)],
        };
        set.apply(&delta, &mut ctx);
    }
    (set, ctx)
}

fn set_crdt(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_crdt");
    let (base, base_ctx) = set_of(1, 10_000);
    group.bench_function("apply one remote SADD to a 10k set", |b| {
        let mut seq = 0u64;
        b.iter_batched(
            || (base.clone(), base_ctx.clone()),
            |(mut set, mut ctx)| {
                seq += 1;
                let delta = SetDelta {
                    changes: vec![set.delta_add(b"remote", Dot::new(ReplicaId(2), seq))],
                };
                set.apply(&delta, &mut ctx);
                set
            },
            BatchSize::LargeInput,
        )
    });
    let (left, left_ctx) = set_of(1, 1_000);
    let (right, right_ctx) = set_of(2, 1_000);
    group.bench_function("join two 1k sets", |b| {
        b.iter(|| black_box(left.join(&left_ctx, &right, &right_ctx)))
    });
    group.finish();
}

criterion_group!(benches, dispatch, set_crdt);
criterion_main!(benches);
