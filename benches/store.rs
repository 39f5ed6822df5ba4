//! Store and CRDT micro-benchmarks: local writes and reads through `Store`, and the key CRDT's
//! delta application and state join.

use std::hint::black_box;

use bytes::Bytes;
use cordis::crdt::{ReplicaId, TtlChange};
use cordis::store::Store;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

#[path = "support/replica.rs"]
mod replica;
use replica::Replica;

const KEYS: usize = 10_000;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

/// One SET command the way the command layer runs it: one write, one closed batch.
fn set(store: &mut Store, key: &[u8], value: Bytes) {
    store.begin_command();
    store.write_key(0, key, |state, w| {
        let ts = w.ts();
        (
            state.delta_set(value, ts, TtlChange::Clear, &mut || w.next_dot()),
            (),
        )
    });
    store.finish_batch();
}

fn store_ops(c: &mut Criterion) {
    let value = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let mut store = Store::new(ReplicaId(1));
    for k in &keys {
        set(&mut store, k, value.clone());
    }

    let mut group = c.benchmark_group("store");
    let mut i = 0;
    group.bench_function("set_existing_key", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            set(&mut store, &keys[i], value.clone());
        })
    });
    let mut i = 0;
    group.bench_function("get_existing_key", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            store.begin_command();
            let v = store
                .lookup(0, &keys[i])
                .and_then(|s| s.string_value())
                .map(|v| v.len());
            black_box(v)
        })
    });
    group.bench_function("get_missing_key", |b| {
        b.iter(|| {
            store.begin_command();
            black_box(store.lookup(0, b"no-such-key").is_some())
        })
    });
    group.finish();
}

fn crdt_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("crdt");

    // Overwrite of a key holding one value: the delta removes the old version, adds the new one.
    let mut a = Replica::new(1);
    let first = a.set_delta(b"first value", 1_000);
    a.apply(&first);
    let overwrite = a.set_delta(b"second value", 2_000);
    group.bench_function("apply_set_delta", |b| {
        b.iter_batched_ref(
            || (a.state.clone(), a.ctx.clone()),
            |(state, ctx)| state.apply(black_box(&overwrite), ctx),
            BatchSize::SmallInput,
        )
    });

    // Two replicas that diverged: both saw a common SET, then wrote concurrently.
    let mut a = Replica::new(1);
    let mut b_replica = Replica::new(2);
    let base = a.set_delta(b"10", 1_000);
    a.apply(&base);
    b_replica.apply(&base);
    for _ in 0..3 {
        let d = a.incr_delta(1);
        a.apply(&d);
    }
    let d = b_replica.set_delta(b"20", 1_500);
    b_replica.apply(&d);
    for _ in 0..2 {
        let d = b_replica.incr_delta(5);
        b_replica.apply(&d);
    }
    group.bench_function("join_diverged_states", |b| {
        b.iter(|| {
            black_box(
                a.state
                    .join(&a.ctx, black_box(&b_replica.state), &b_replica.ctx),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, store_ops, crdt_ops);
criterion_main!(benches);
