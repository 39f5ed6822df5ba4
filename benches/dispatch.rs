//! Full command dispatch (lookup, arity, auth, handler, batch close) for SET and GET, the way a
//! request outside a connection runs: `ServerState::execute` locks the store and dispatches.

use std::hint::black_box;

use bytes::Bytes;
use cordis::commands::{ClientState, ServerState};
use cordis::config::Config;
use cordis::crdt::ReplicaId;
use cordis::protocol::Reply;
use criterion::{criterion_group, criterion_main, Criterion};

const KEYS: usize = 10_000;

fn dispatch_benches(c: &mut Criterion) {
    let state = ServerState::new(Config::default(), ReplicaId(1), None);
    let mut client = ClientState::detached(true);

    let value = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    let sets: Vec<[Bytes; 3]> = (0..KEYS)
        .map(|i| {
            [
                Bytes::from_static(b"SET"),
                Bytes::from(format!("key:{i:06}")),
                value.clone(),
            ]
        })
        .collect();
    let gets: Vec<[Bytes; 2]> = sets
        .iter()
        .map(|s| [Bytes::from_static(b"GET"), s[1].clone()])
        .collect();
    for args in &sets {
        assert_eq!(state.execute(&mut client, args), Reply::ok());
    }
    assert_eq!(
        state.execute(&mut client, &gets[0]),
        Reply::bulk(value.clone())
    );

    let mut group = c.benchmark_group("dispatch");
    let mut i = 0;
    group.bench_function("set", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(state.execute(&mut client, &sets[i]))
        })
    });
    let mut i = 0;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(state.execute(&mut client, &gets[i]))
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch_benches);
criterion_main!(benches);
