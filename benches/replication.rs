//! What replication costs, per key and per batch: applying string and counter deltas (local,
//! remote and duplicate), joining diverged key states (CRDT merge), applying a peer's batch to a
//! whole store, and the peer wire format (encode/decode of a batch).
//!
//! `benches/store.rs` covers local SET/GET through the store, applying a SET overwrite delta and
//! joining a SET-vs-INCR divergence.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cordis::crdt::{Amount, ReplicaId, TtlChange};
use cordis::store::{Batch, Store};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

#[path = "support/replica.rs"]
mod replica;
use replica::Replica;

fn delta_application(c: &mut Criterion) {
    let mut group = c.benchmark_group("crdt");

    // INCR on a counter this replica already increments: the delta replaces its own run.
    let mut a = Replica::new(1);
    a.set(b"10", 1_000);
    a.incr(1);
    let next_incr = a.incr_delta(1);
    group.bench_function("apply_incr_delta_own_run", |b| {
        b.iter_batched_ref(
            || (a.state.clone(), a.ctx.clone()),
            |(state, ctx)| state.apply(black_box(&next_incr), ctx),
            BatchSize::SmallInput,
        )
    });

    // A peer's INCR arriving at a replica with its own run: the peer's run is added beside it.
    let mut a = Replica::new(1);
    let mut b_replica = Replica::new(2);
    let base = a.set(b"10", 1_000);
    b_replica.apply(&base);
    b_replica.incr(3);
    let remote_incr = a.incr(5);
    group.bench_function("apply_remote_incr_delta", |b| {
        b.iter_batched_ref(
            || (b_replica.state.clone(), b_replica.ctx.clone()),
            |(state, ctx)| state.apply(black_box(&remote_incr), ctx),
            BatchSize::SmallInput,
        )
    });

    // A peer's SET overwriting a counter both replicas saw: removes base and runs, adds the value.
    let mut b_after = b_replica.clone();
    b_after.apply(&remote_incr);
    let remote_set = a.set(b"hello", 2_000);
    group.bench_function("apply_remote_set_over_counter", |b| {
        b.iter_batched_ref(
            || (b_after.state.clone(), b_after.ctx.clone()),
            |(state, ctx)| state.apply(black_box(&remote_set), ctx),
            BatchSize::SmallInput,
        )
    });

    // Redelivery of a delta already applied (idempotence): no clone needed, the state stays put.
    let mut dup = b_after.clone();
    dup.apply(&remote_set);
    let before = dup.state.clone();
    group.bench_function("apply_duplicate_delta", |b| {
        b.iter(|| dup.state.apply(black_box(&remote_set), &mut dup.ctx))
    });
    assert_eq!(dup.state, before);
    group.finish();
}

fn joins(c: &mut Criterion) {
    let mut group = c.benchmark_group("crdt");

    // Two replicas that saw the same SET, then both SET concurrently (LWW: both versions kept).
    let mut a = Replica::new(1);
    let mut b_replica = Replica::new(2);
    let base = a.set(b"base", 1_000);
    b_replica.apply(&base);
    a.set(b"from a", 2_000);
    b_replica.set(b"from b", 2_001);
    let joined = a.state.join(&a.ctx, &b_replica.state, &b_replica.ctx);
    assert_eq!(joined.versions().len(), 2);
    group.bench_function("join_concurrent_sets", |b| {
        b.iter(|| {
            black_box(
                a.state
                    .join(&a.ctx, black_box(&b_replica.state), &b_replica.ctx),
            )
        })
    });

    // Three replicas incrementing one counter; a and b have exchanged everything, c has not.
    let mut replicas = [Replica::new(1), Replica::new(2), Replica::new(3)];
    let base = replicas[0].set(b"0", 1_000);
    for r in &mut replicas[1..] {
        r.apply(&base);
    }
    for (i, r) in replicas.iter_mut().enumerate() {
        for _ in 0..=i {
            r.incr(i as i64 + 1);
        }
    }
    let (ab, c_replica) = {
        let [a, b_replica, c_replica] = &replicas;
        let state = a.state.join(&a.ctx, &b_replica.state, &b_replica.ctx);
        let mut ctx = a.ctx.clone();
        ctx.merge(&b_replica.ctx);
        (
            Replica {
                id: a.id,
                seq: a.seq,
                state,
                ctx,
            },
            c_replica.clone(),
        )
    };
    group.bench_function("join_counter_runs", |b| {
        b.iter(|| {
            black_box(
                ab.state
                    .join(&ab.ctx, black_box(&c_replica.state), &c_replica.ctx),
            )
        })
    });
    let all = ab.state.join(&ab.ctx, &c_replica.state, &c_replica.ctx);
    assert_eq!(
        all.string_value().map(|v| v.to_bytes()),
        Some(Bytes::from_static(b"14")) // 0 + 1 + 2*2 + 3*3
    );

    // The common anti-entropy case: both sides already equal.
    group.bench_function("join_equal_states", |b| {
        b.iter(|| black_box(ab.state.join(&ab.ctx, black_box(&ab.state), &ab.ctx)))
    });

    // Reading a counter: the base plus every run no base write has observed.
    group.bench_function("read_counter_three_runs", |b| {
        b.iter(|| black_box(black_box(&all).string_value().map(|v| v.len())))
    });
    group.finish();
}

const KEYS: usize = 10_000;
const BATCH_KEYS: usize = 16;

/// A node producing batches for a peer: each command writes `BATCH_KEYS` keys (like an MSET of
/// 16 keys) or increments one counter, cycling over `KEYS` keys.
struct Origin {
    store: Store,
    keys: Vec<Vec<u8>>,
    next: usize,
    value: Bytes,
}

impl Origin {
    fn new(id: u64) -> Self {
        Origin {
            store: Store::new(ReplicaId(id)),
            keys: (0..KEYS)
                .map(|i| format!("key:{i:06}").into_bytes())
                .collect(),
            next: 0,
            value: Bytes::from_static(b"0123456789abcdef"),
        }
    }

    fn set_batch(&mut self) -> Arc<Batch> {
        self.store.begin_command();
        for _ in 0..BATCH_KEYS {
            let key = &self.keys[self.next];
            self.next = (self.next + 1) % KEYS;
            let value = self.value.clone();
            self.store.write_key(0, key, |state, w| {
                let ts = w.ts();
                (
                    state.delta_set(value, ts, TtlChange::Clear, &mut || w.next_dot()),
                    (),
                )
            });
        }
        self.store.finish_batch().expect("SETs write")
    }

    fn incr_batch(&mut self) -> Arc<Batch> {
        self.store.begin_command();
        self.store.write_key(0, b"counter", |state, w| {
            let me = w.replica();
            (
                state.delta_incr(me, Amount::from_int(1), &mut || w.next_dot()),
                (),
            )
        });
        self.store.finish_batch().expect("INCR writes")
    }
}

/// Times applying `iters` fresh batches from `origin` to `replica`; making them is not timed.
fn apply_batches(
    origin: &mut Origin,
    replica: &mut Store,
    iters: u64,
    make: fn(&mut Origin) -> Arc<Batch>,
) -> Duration {
    let batches: Vec<Arc<Batch>> = (0..iters).map(|_| make(origin)).collect();
    let start = Instant::now();
    for batch in &batches {
        let applied = replica.apply_remote(black_box(batch)).expect("in order");
        debug_assert!(applied);
    }
    let elapsed = start.elapsed();
    drop(batches);
    elapsed
}

fn store_replication(c: &mut Criterion) {
    let mut origin = Origin::new(2);
    let mut replica = Store::new(ReplicaId(1));
    // The replica holds every key before timing starts: the timed batches overwrite.
    for _ in 0..KEYS / BATCH_KEYS + 1 {
        let batch = origin.set_batch();
        replica.apply_remote(&batch).expect("in order");
    }
    assert_eq!(replica.dbsize(0), KEYS);

    let mut group = c.benchmark_group("replication");
    group.throughput(Throughput::Elements(BATCH_KEYS as u64));
    group.bench_function("apply_remote_batch_16_sets", |b| {
        b.iter_custom(|iters| apply_batches(&mut origin, &mut replica, iters, Origin::set_batch))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("apply_remote_incr", |b| {
        b.iter_custom(|iters| apply_batches(&mut origin, &mut replica, iters, Origin::incr_batch))
    });

    let batch = origin.set_batch();
    let bytes = batch.encode();
    assert_eq!(Batch::decode(&bytes).expect("round trip"), *batch);
    group.throughput(Throughput::Elements(BATCH_KEYS as u64));
    group.bench_function("encode_batch_16_sets", |b| {
        b.iter(|| black_box(black_box(&batch).encode()))
    });
    group.bench_function("decode_batch_16_sets", |b| {
        b.iter(|| black_box(Batch::decode(black_box(&bytes)).expect("valid")))
    });
    group.finish();
}

criterion_group!(benches, delta_application, joins, store_replication);
criterion_main!(benches);
