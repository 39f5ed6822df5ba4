//! Feeds arbitrary bytes, split at an arbitrary point, to the client
//! request parser: it must never panic, and the split must not change the
//! requests it yields.
#![no_main]

use bytes::BytesMut;
use cordis::protocol::{Limits, RequestParser};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &[&[u8]]) -> (Vec<Vec<bytes::Bytes>>, bool) {
    let limits = Limits {
        max_bulk_len: 1 << 20,
        ..Limits::default()
    };
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.next_request(&mut buf) {
                Ok(Some(args)) => out.push(args),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = data[0] as usize % data.len();
    let body = &data[1..];
    let split = split.min(body.len());
    let whole = parse_all(&[body]);
    let halves = parse_all(&[&body[..split], &body[split..]]);
    assert_eq!(whole, halves, "splitting the input changed the parse");
});
