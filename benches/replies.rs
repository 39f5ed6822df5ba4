//! Reply encoding the way a pipelining client sees it: one batch of replies, encoded back to back
//! into one output buffer, per redis-benchmark test at `-P 16` (`+OK` for SET, 3-byte bulk
//! strings for GET with redis-benchmark's default `-d 3`, integers for INCR), plus a mixed batch in
//! RESP2 and RESP3 and an LRANGE-style array of 100 bulk strings.
//!
//! Parsing the matching request batches is in `benches/protocol.rs`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use cordis::protocol::{Reply, RespVersion};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PIPELINE: usize = 16;

fn batch(make: impl Fn(usize) -> Reply) -> Vec<Reply> {
    (0..PIPELINE).map(make).collect()
}

/// The replies to one pipelined batch of mixed commands: statuses, values, misses, counters and
/// an error, in the proportions a cache client might produce.
fn mixed(i: usize) -> Reply {
    match i % 8 {
        0 | 1 => Reply::ok(),
        2 | 3 => Reply::bulk(Bytes::from(format!("value-{i:04}-0123456789"))),
        4 => Reply::Nil,
        5 | 6 => Reply::Integer(1_000_000 + i as i64),
        _ => Reply::error("ERR value is not an integer or out of range"),
    }
}

fn encode_all(replies: &[Reply], version: RespVersion, out: &mut BytesMut) -> usize {
    out.clear();
    for reply in replies {
        reply.encode(version, out);
    }
    out.len()
}

fn reply_batches(c: &mut Criterion) {
    let cases: Vec<(&str, Vec<Reply>, RespVersion)> = vec![
        ("set_ok_x16", batch(|_| Reply::ok()), RespVersion::Resp2),
        (
            "get_bulk_3b_x16",
            batch(|_| Reply::bulk(Bytes::from_static(b"xxx"))),
            RespVersion::Resp2,
        ),
        (
            "incr_integer_x16",
            batch(|i| Reply::Integer(12_345 + i as i64)),
            RespVersion::Resp2,
        ),
        ("get_nil_x16", batch(|_| Reply::Nil), RespVersion::Resp2),
        ("mixed_x16_resp2", batch(mixed), RespVersion::Resp2),
        ("mixed_x16_resp3", batch(mixed), RespVersion::Resp3),
    ];
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut group = c.benchmark_group("replies");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    for (name, replies, version) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(encode_all(black_box(replies), *version, &mut out)))
        });
    }
    group.finish();

    // One reply holding 100 elements, like LRANGE mylist 0 99 with redis-benchmark's values.
    let array = vec![Reply::Array(
        (0..100)
            .map(|_| Reply::bulk(Bytes::from_static(b"xxx")))
            .collect(),
    )];
    let mut group = c.benchmark_group("replies");
    group.throughput(Throughput::Elements(100));
    group.bench_function("lrange_100_array", |b| {
        b.iter(|| black_box(encode_all(black_box(&array), RespVersion::Resp2, &mut out)))
    });
    group.finish();
}

criterion_group!(benches, reply_batches);
criterion_main!(benches);
