//! Wire-protocol micro-benchmarks: parsing a pipelined batch of requests and encoding replies.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use cordis::protocol::{Limits, Reply, RequestParser, RespVersion};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const BATCH: usize = 100;

/// `BATCH` RESP-encoded `SET key:<i> <32-byte value>` requests back to back, as a pipelining
/// client sends them.
fn pipelined_sets() -> Vec<u8> {
    let value = "v".repeat(32);
    let mut out = Vec::new();
    for i in 0..BATCH {
        let key = format!("key:{i:06}");
        out.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
                key.len(),
                key,
                value.len(),
                value
            )
            .as_bytes(),
        );
    }
    out
}

fn parse(c: &mut Criterion) {
    let input = pipelined_sets();
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("parse_100_pipelined_sets", |b| {
        b.iter_batched_ref(
            || {
                (
                    RequestParser::new(Limits::default()),
                    BytesMut::from(&input[..]),
                )
            },
            |(parser, buf)| {
                let mut requests = 0;
                while let Some(args) = parser.next_request(buf).expect("valid RESP") {
                    black_box(&args);
                    requests += 1;
                }
                assert_eq!(requests, BATCH);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let replies: Vec<Reply> = (0..BATCH)
        .map(|i| Reply::bulk(Bytes::from(format!("value-{i:06}-{}", "x".repeat(20)))))
        .collect();
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("encode_100_bulk_replies", |b| {
        b.iter(|| {
            out.clear();
            for reply in &replies {
                reply.encode(RespVersion::Resp2, &mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
