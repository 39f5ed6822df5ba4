//! The bitmap family over a real socket, with the `redis` client crate,
//! against in-process nodes on `127.0.0.1:0`. Every expected reply below
//! (values, lengths, positions and error texts) was taken from a real
//! `redis-server` 7.0 given the same commands (the tests need no Redis).
//! The last tests link two nodes and check the merge rule of
//! docs/semantics.md end to end.
//!
//! covers: setbit getbit bitcount bitpos bitop bitfield bitfield_ro

use std::time::{Duration, Instant};

use redis::Value;

mod support;

use cordis::config::Config;
use support::client::Conn;
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

fn bytes(c: &mut Conn, key: &str) -> Vec<u8> {
    match c.v(&["GET", key]) {
        Value::BulkString(b) => b,
        Value::Nil => Vec::new(),
        other => panic!("GET {key}: {other:?}"),
    }
}

/// A BITFIELD reply as integers, `None` for nil.
fn fields(c: &mut Conn, args: &[&str]) -> Vec<Option<i64>> {
    match c.v(args) {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(n) => Some(n),
                Value::Nil => None,
                other => panic!("{args:?}: unexpected {other:?}"),
            })
            .collect(),
        other => panic!("{args:?}: expected an array, got {other:?}"),
    }
}

#[test]
fn setbit_returns_the_old_bit_and_pads_with_zeros() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["SETBIT", "k", "7", "1"]), 0);
    assert_eq!(c.int(&["SETBIT", "k", "7", "1"]), 1);
    assert_eq!(c.int(&["SETBIT", "k", "100", "0"]), 0);
    assert_eq!(c.int(&["STRLEN", "k"]), 13);
    let mut expected = vec![0u8; 13];
    expected[0] = 1;
    assert_eq!(bytes(&mut c, "k"), expected);
    assert_eq!(c.int(&["GETBIT", "k", "7"]), 1);
    assert_eq!(c.int(&["GETBIT", "k", "99999"]), 0);
    assert_eq!(c.int(&["GETBIT", "missing", "3"]), 0);
    // String commands see the rendered bytes and bit writes see theirs.
    assert_eq!(c.int(&["APPEND", "k", "ab"]), 15);
    assert_eq!(c.int(&["SETRANGE", "k", "0", "Z"]), 15);
    assert_eq!(c.int(&["GETBIT", "k", "1"]), 1);
    assert_eq!(
        c.bulk(&["GETRANGE", "k", "13", "14"]).as_deref(),
        Some("ab")
    );
    c.ok(&["SET", "n", "10"]);
    assert_eq!(c.int(&["INCR", "n"]), 11);
    assert_eq!(c.int(&["SETBIT", "n", "15", "0"]), 1);
    assert_eq!(c.int(&["INCRBY", "n", "5"]), 15);
    assert_eq!(c.bulk(&["GET", "n"]).as_deref(), Some("15"));
}

#[test]
fn bit_offsets_and_values_are_checked_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.err(&["SETBIT", "k", "-1", "1"]), BAD_OFFSET);
    assert_eq!(c.err(&["SETBIT", "k", "4294967296", "1"]), BAD_OFFSET);
    assert_eq!(c.err(&["GETBIT", "k", "foo"]), BAD_OFFSET);
    assert_eq!(
        c.err(&["SETBIT", "k", "1", "2"]),
        "ERR bit is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["SETBIT", "k", "1", "x"]),
        "ERR bit is not an integer or out of range"
    );
    // proto-max-bulk-len bounds the string a bit write may grow.
    c.ok(&["CONFIG", "SET", "proto-max-bulk-len", "1048576"]);
    assert_eq!(c.err(&["SETBIT", "big", "8388608", "1"]), BAD_OFFSET);
    assert_eq!(c.int(&["SETBIT", "big", "8388607", "1"]), 0);
    assert_eq!(c.int(&["STRLEN", "big"]), 1048576);
    assert_eq!(
        c.err(&["BITFIELD", "big2", "SET", "u8", "#1048576", "1"]),
        BAD_OFFSET
    );
    assert_eq!(
        c.err(&["BITFIELD", "big2", "SET", "u8", "#9223372036854775807", "1"]),
        BAD_OFFSET
    );
    assert_eq!(c.int(&["EXISTS", "big2"]), 0);
    // cordis's own bound (docs/semantics.md): no bitmap past 4 GiB, even
    // when proto-max-bulk-len allows more.
    c.ok(&["CONFIG", "SET", "proto-max-bulk-len", "8gb"]);
    assert_eq!(c.err(&["SETBIT", "big", "34359738368", "1"]), BAD_OFFSET);
    assert_eq!(
        c.err(&["BITFIELD", "big", "SET", "i64", "#536870912", "1"]),
        BAD_OFFSET
    );
}

#[test]
fn other_types_answer_wrongtype() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["LPUSH", "l", "x"]);
    for args in [
        &["SETBIT", "l", "0", "1"][..],
        &["GETBIT", "l", "0"],
        &["BITCOUNT", "l"],
        &["BITPOS", "l", "1"],
        &["BITOP", "OR", "d", "l"],
        &["BITFIELD", "l", "GET", "u8", "0"],
        &["BITFIELD", "l", "SET", "u8", "0", "1"],
        &["BITFIELD_RO", "l", "GET", "i8", "0"],
    ] {
        assert_eq!(c.err(args), WRONGTYPE, "{args:?}");
    }
}

#[test]
fn bitcount_counts_byte_and_bit_ranges() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "foobar"]);
    assert_eq!(c.int(&["BITCOUNT", "s"]), 26);
    assert_eq!(c.int(&["BITCOUNT", "s", "1", "1"]), 6);
    assert_eq!(c.int(&["BITCOUNT", "s", "5", "30", "BIT"]), 17);
    assert_eq!(c.int(&["BITCOUNT", "s", "-2", "-1"]), 7);
    assert_eq!(c.int(&["BITCOUNT", "s", "-1", "-2", "FOO"]), 0);
    assert_eq!(c.int(&["BITCOUNT", "nokey", "a", "b"]), 0);
    assert_eq!(c.err(&["BITCOUNT", "s", "0"]), "ERR syntax error");
    assert_eq!(
        c.err(&["BITCOUNT", "s", "0", "1", "FOO"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["BITCOUNT", "s", "a", "b"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn bitpos_finds_set_and_clear_bits() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "foobar"]);
    assert_eq!(c.int(&["BITPOS", "s", "1"]), 1);
    assert_eq!(c.int(&["BITPOS", "s", "0"]), 0);
    assert_eq!(c.int(&["BITPOS", "s", "1", "2"]), 17);
    assert_eq!(c.int(&["BITPOS", "s", "1", "2", "-1", "BYTE"]), 17);
    assert_eq!(c.int(&["BITPOS", "s", "1", "7", "15", "BIT"]), 9);
    assert_eq!(c.int(&["BITPOS", "nokey", "0"]), 0);
    assert_eq!(c.int(&["BITPOS", "nokey", "1"]), -1);
    c.ok(&["SET", "e", ""]);
    assert_eq!(c.int(&["BITPOS", "e", "0"]), -1);
    // All ones: no explicit end means the zeros just past the string.
    assert_eq!(c.int(&["SETBIT", "ff", "0", "1"]), 0);
    c.v(&["BITFIELD", "ff", "SET", "u16", "0", "65535"]);
    assert_eq!(c.int(&["BITPOS", "ff", "0"]), 16);
    assert_eq!(c.int(&["BITPOS", "ff", "0", "0", "-1"]), -1);
    assert_eq!(c.int(&["BITPOS", "ff", "0", "1"]), 16);
    assert_eq!(
        c.err(&["BITPOS", "s", "2"]),
        "ERR The bit argument must be 1 or 0."
    );
    assert_eq!(
        c.err(&["BITPOS", "s", "1", "0", "1", "FOO"]),
        "ERR syntax error"
    );
}

#[test]
fn bitop_stores_the_combination_and_deletes_an_empty_result() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "a", "abc"]);
    c.ok(&["SET", "b", "xyzw"]);
    assert_eq!(c.int(&["BITOP", "AND", "d", "a", "b"]), 4);
    assert_eq!(bytes(&mut c, "d"), b"``b\0");
    assert_eq!(c.int(&["BITOP", "OR", "d", "a", "b"]), 4);
    assert_eq!(bytes(&mut c, "d"), b"y{{w");
    assert_eq!(c.int(&["BITOP", "XOR", "d", "a", "b"]), 4);
    assert_eq!(bytes(&mut c, "d"), b"\x19\x1b\x19w");
    assert_eq!(c.int(&["BITOP", "NOT", "d", "a"]), 3);
    assert_eq!(bytes(&mut c, "d"), vec![!b'a', !b'b', !b'c']);
    assert_eq!(
        c.err(&["BITOP", "NOT", "d", "a", "b"]),
        "ERR BITOP NOT must be called with a single source key."
    );
    assert_eq!(c.err(&["BITOP", "FOO", "d", "a"]), "ERR syntax error");
    c.int(&["EXPIRE", "d", "100"]);
    assert_eq!(c.int(&["BITOP", "OR", "d", "a"]), 3);
    assert_eq!(c.int(&["TTL", "d"]), -1, "BITOP replaces the TTL as SET");
    assert_eq!(c.int(&["BITOP", "OR", "d", "nokey1", "nokey2"]), 0);
    assert_eq!(c.int(&["EXISTS", "d"]), 0);
}

#[test]
fn bitfield_gets_sets_and_increments_every_type() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        fields(
            &mut c,
            &[
                "BITFIELD", "bf", "SET", "i8", "0", "-100", "GET", "i8", "0", "GET", "u8", "0",
                "INCRBY", "i8", "0", "-100", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "-100",
                "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-1",
            ]
        ),
        [
            Some(0),
            Some(-100),
            Some(156),
            Some(56),
            Some(-44),
            Some(-45)
        ]
    );
    assert_eq!(
        fields(
            &mut c,
            &[
                "BITFIELD", "b2", "SET", "u8", "#1", "1", "GET", "u8", "8", "INCRBY", "u4", "#3",
                "20"
            ]
        ),
        [Some(0), Some(1), Some(5)]
    );
    assert_eq!(
        fields(
            &mut c,
            &[
                "BITFIELD",
                "b3",
                "SET",
                "i64",
                "0",
                "-9223372036854775808",
                "INCRBY",
                "i64",
                "0",
                "-1",
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "i64",
                "0",
                "-1",
            ]
        ),
        [
            Some(0),
            Some(9223372036854775807),
            Some(9223372036854775806)
        ]
    );
    assert_eq!(
        fields(
            &mut c,
            &["BITFIELD_RO", "b3", "GET", "i64", "0", "GET", "u4", "1"]
        ),
        [Some(9223372036854775806), Some(15)]
    );
    assert_eq!(
        fields(
            &mut c,
            &[
                "BITFIELD", "b4", "SET", "u2", "0", "-1", "OVERFLOW", "SAT", "SET", "u2", "2",
                "-1", "SET", "i3", "4", "9", "OVERFLOW", "FAIL", "SET", "i3", "4", "9",
            ]
        ),
        [Some(0), Some(0), Some(0), None]
    );
    assert_eq!(bytes(&mut c, "b4"), vec![0b1111_0110]);
    for width in 1..=63 {
        let t = format!("u{width}");
        let max = ((1u128 << width) - 1) as i64;
        let got = fields(
            &mut c,
            &["BITFIELD", "u", "SET", &t, "3", "-1", "GET", &t, "3"],
        );
        assert_eq!(got[1], Some(max), "{t}");
    }
    // FAIL leaves the field but the string still grows to the write.
    assert_eq!(
        fields(
            &mut c,
            &["BITFIELD", "b5", "OVERFLOW", "FAIL", "INCRBY", "u8", "100", "300"]
        ),
        [None]
    );
    assert_eq!(c.int(&["STRLEN", "b5"]), 14);
    assert_eq!(fields(&mut c, &["BITFIELD", "nokey"]), []);
    assert_eq!(c.int(&["EXISTS", "nokey"]), 0);
}

#[test]
fn bitfield_refuses_bad_types_offsets_and_subcommands() {
    let node = Node::start();
    let mut c = node.client();
    for t in ["u64", "i65", "i0", "x8", "i", "I8"] {
        assert_eq!(c.err(&["BITFIELD", "k", "GET", t, "0"]), BAD_TYPE, "{t}");
    }
    assert_eq!(c.err(&["BITFIELD", "k", "GET", "i8", "-1"]), BAD_OFFSET);
    assert_eq!(c.err(&["BITFIELD", "k", "GET", "i8", "#-1"]), BAD_OFFSET);
    assert_eq!(c.err(&["BITFIELD", "k", "GET", "i8", "#"]), BAD_OFFSET);
    assert_eq!(
        c.err(&["BITFIELD", "k", "OVERFLOW", "FOO"]),
        "ERR Invalid OVERFLOW type specified"
    );
    assert_eq!(c.err(&["BITFIELD", "k", "BAR"]), "ERR syntax error");
    assert_eq!(c.err(&["BITFIELD", "k", "GET", "i8"]), "ERR syntax error");
    assert_eq!(
        c.err(&["BITFIELD", "k", "SET", "i8", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["BITFIELD", "k", "SET", "i8", "0", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["BITFIELD_RO", "k", "SET", "i8", "0", "1"]),
        "ERR BITFIELD_RO only supports the GET subcommand"
    );
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
}

const PEER_SECRET: &str = "bitops-peer-secret";

/// Two nodes A and B linked as peers.
fn two_linked_nodes() -> (Node, Node) {
    let listeners: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let mut nodes = listeners.into_iter().enumerate().map(|(i, listener)| {
        let config = Config {
            peers: vec![addrs[1 - i].clone()],
            peer_secret: PEER_SECRET.into(),
            peer_heartbeat_ms: 100,
            reconnect_max_ms: 200,
            ..Config::default()
        };
        Node::member(config, Some(listener))
    });
    (nodes.next().unwrap(), nodes.next().unwrap())
}

/// Waits (bounded) until `check` holds on the client.
fn eventually(c: &mut Conn, what: &str, mut check: impl FnMut(&mut Conn) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check(c) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bits_and_increments_written_on_two_nodes_all_reach_both() {
    let (a, b) = two_linked_nodes();
    let (mut on_a, mut on_b) = (a.client(), b.client());
    on_a.int(&["SETBIT", "m", "1", "1"]);
    on_b.int(&["SETBIT", "m", "6", "1"]);
    on_a.v(&["BITFIELD", "c", "INCRBY", "u8", "0", "200"]);
    on_b.v(&["BITFIELD", "c", "INCRBY", "u8", "0", "100"]);
    for c in [&mut on_a, &mut on_b] {
        eventually(c, "both bits", |c| {
            c.int(&["GETBIT", "m", "1"]) == 1 && c.int(&["GETBIT", "m", "6"]) == 1
        });
        assert_eq!(bytes(c, "m"), vec![0b0100_0010]);
        eventually(c, "both increments", |c| {
            fields(c, &["BITFIELD_RO", "c", "GET", "u8", "0"]) == [Some(44)]
        });
    }
}
