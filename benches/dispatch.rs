//! Full command dispatch (lookup, arity, auth, handler, batch close) for SET and GET, the way a
//! connection runs each request: lock the store, build a `Context`, call `dispatch`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use cordis::commands::{dispatch, ClientInfo, ClientState, Context, ServerState};
use cordis::config::Config;
use cordis::crdt::ReplicaId;
use cordis::protocol::Reply;
use criterion::{criterion_group, criterion_main, Criterion};

const KEYS: usize = 10_000;

fn run(state: &ServerState, client: &mut ClientState, args: &[Bytes]) -> Reply {
    let mut store = state.store.lock();
    let mut ctx = Context {
        store: &mut store,
        client,
        server: state,
    };
    dispatch(&mut ctx, args)
}

fn dispatch_benches(c: &mut Criterion) {
    let state = ServerState::new(Config::default(), ReplicaId(1), None);
    let info = Arc::new(ClientInfo::new(
        1,
        "127.0.0.1:50000".to_string(),
        "127.0.0.1:6379".to_string(),
    ));
    let mut client = ClientState::new(info, true);

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
        assert_eq!(run(&state, &mut client, args), Reply::ok());
    }
    assert_eq!(
        run(&state, &mut client, &gets[0]),
        Reply::bulk(value.clone())
    );

    let mut group = c.benchmark_group("dispatch");
    let mut i = 0;
    group.bench_function("set", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(run(&state, &mut client, &sets[i]))
        })
    });
    let mut i = 0;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(run(&state, &mut client, &gets[i]))
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch_benches);
criterion_main!(benches);
