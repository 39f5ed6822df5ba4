//! Every command the node implements, driven over a real socket with the
//! `redis` client crate (blocking API) against a node started in process on
//! `127.0.0.1:0`. Replies and error texts are Redis 7's, checked against a
//! real `redis-server` while these tests were written (the tests themselves
//! need no Redis).
//!
//! Each test starts its own node (the shared harness in `support/mod.rs`)
//! on its own tokio runtime and shuts it down when the `Node` is dropped;
//! every socket read has a timeout.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cordis::config::Config;
use redis::Value;

mod support;

use support::client::{sorted, strings_of, Conn};
use support::Node;

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ----- strings: GET / SET -----

#[test]
fn set_then_get_returns_the_value_and_missing_key_is_nil() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
    assert_eq!(c.bulk(&["GET", "missing"]), None);
    assert_eq!(
        c.err(&["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        c.err(&["GET", "a", "b"]),
        "ERR wrong number of arguments for 'get' command"
    );
}

#[test]
fn set_nx_on_existing_key_returns_nil() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.v(&["SET", "k", "w", "NX"]), Value::Nil);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
    c.ok(&["SET", "fresh", "w", "nx"]);
    assert_eq!(c.bulk(&["GET", "fresh"]).as_deref(), Some("w"));
}

#[test]
fn set_xx_only_overwrites_an_existing_key() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.v(&["SET", "k", "v", "XX"]), Value::Nil);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    c.ok(&["SET", "k", "v"]);
    c.ok(&["SET", "k", "w", "XX"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("w"));
}

#[test]
fn set_ex_and_px_set_a_ttl_and_plain_set_clears_it() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v", "EX", "100"]);
    let ttl = c.int(&["TTL", "k"]);
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    c.ok(&["SET", "k", "v", "PX", "50000"]);
    let pttl = c.int(&["PTTL", "k"]);
    assert!((49_000..=50_000).contains(&pttl), "pttl {pttl}");
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.int(&["TTL", "k"]), -1);
}

#[test]
fn set_exat_and_pxat_set_absolute_deadlines() {
    let node = Node::start();
    let mut c = node.client();
    let at_s = unix_ms() / 1000 + 1000;
    c.ok(&["SET", "k", "v", "EXAT", &at_s.to_string()]);
    assert_eq!(c.int(&["EXPIRETIME", "k"]), at_s);
    let at_ms = unix_ms() + 123_456;
    c.ok(&["SET", "k", "v", "PXAT", &at_ms.to_string()]);
    assert_eq!(c.int(&["PEXPIRETIME", "k"]), at_ms);
    // A deadline in the past stores nothing but still answers OK.
    c.ok(&["SET", "k", "v", "EXAT", "1"]);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    c.ok(&["SET", "k", "v", "PXAT", "1"]);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
}

#[test]
fn set_keepttl_keeps_the_existing_deadline() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v", "EX", "100"]);
    c.ok(&["SET", "k", "w", "KEEPTTL"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("w"));
    assert!(c.int(&["TTL", "k"]) > 90);
}

#[test]
fn set_get_returns_the_old_value() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.v(&["SET", "k", "v", "GET"]), Value::Nil);
    assert_eq!(c.bulk(&["SET", "k", "w", "GET"]).as_deref(), Some("v"));
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("w"));
    // GET with NX: the old value comes back and nothing is written.
    assert_eq!(
        c.bulk(&["SET", "k", "x", "NX", "GET"]).as_deref(),
        Some("w")
    );
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("w"));
    // GET with XX on a missing key: nil, nothing written.
    assert_eq!(c.v(&["SET", "nk", "x", "XX", "GET"]), Value::Nil);
    assert_eq!(c.int(&["EXISTS", "nk"]), 0);
}

#[test]
fn set_with_repeated_options_is_accepted_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v", "NX", "NX"]);
    c.ok(&["SET", "k", "v", "KEEPTTL", "KEEPTTL"]);
    assert_eq!(
        c.bulk(&["SET", "k", "v", "GET", "GET"]).as_deref(),
        Some("v")
    );
    // The same expiry option twice: the last value wins.
    c.ok(&["SET", "k", "v", "EX", "10", "ex", "2000"]);
    assert!(c.int(&["TTL", "k"]) > 1000);
}

#[test]
fn set_with_conflicting_or_malformed_options_is_a_syntax_error() {
    let node = Node::start();
    let mut c = node.client();
    for args in [
        &["SET", "k", "v", "NX", "XX"][..],
        &["SET", "k", "v", "XX", "NX"],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "EX", "10", "KEEPTTL"],
        &["SET", "k", "v", "KEEPTTL", "PX", "10"],
        &["SET", "k", "v", "EXAT", "10", "PXAT", "10"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "FOO"],
        &["SET", "k", "v", "PERSIST"],
        // Options are all parsed before the expire value is looked at.
        &["SET", "k", "v", "EX", "abc", "FOO"],
        &["SET", "k", "v", "EX", "0", "FOO"],
    ] {
        assert_eq!(c.err(args), "ERR syntax error", "{args:?}");
    }
    assert_eq!(c.int(&["EXISTS", "k"]), 0, "no failed SET wrote");
    assert_eq!(
        c.err(&["SET", "k"]),
        "ERR wrong number of arguments for 'set' command"
    );
}

#[test]
fn set_with_invalid_expire_time_names_the_command() {
    let node = Node::start();
    let mut c = node.client();
    for value in ["0", "-1", "9223372036854775"] {
        assert_eq!(
            c.err(&["SET", "k", "v", "EX", value]),
            "ERR invalid expire time in 'set' command",
            "EX {value}"
        );
    }
    assert_eq!(
        c.err(&["SET", "k", "v", "PX", "9223372036854775807"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        c.err(&["SET", "k", "v", "PXAT", "0"]),
        "ERR invalid expire time in 'set' command"
    );
    for value in ["abc", "1.5", ""] {
        assert_eq!(
            c.err(&["SET", "k", "v", "EX", value]),
            "ERR value is not an integer or out of range"
        );
    }
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
}

#[test]
fn setnx_sets_only_a_missing_key() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["SETNX", "k", "v"]), 1);
    assert_eq!(c.int(&["SETNX", "k", "w"]), 0);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
}

#[test]
fn setex_and_psetex_set_value_and_ttl() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SETEX", "k", "100", "v"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
    assert!((99..=100).contains(&c.int(&["TTL", "k"])));
    c.ok(&["PSETEX", "p", "100000", "v"]);
    assert!(c.int(&["PTTL", "p"]) > 99_000);
    assert_eq!(
        c.err(&["SETEX", "k", "0", "v"]),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        c.err(&["SETEX", "k", "-5", "v"]),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        c.err(&["PSETEX", "k", "0", "v"]),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(
        c.err(&["SETEX", "k", "abc", "v"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["SETEX", "k", "10"]),
        "ERR wrong number of arguments for 'setex' command"
    );
}

#[test]
fn getset_returns_old_value_and_clears_ttl() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.v(&["GETSET", "k", "v"]), Value::Nil);
    c.ok(&["SET", "k", "v", "EX", "100"]);
    assert_eq!(c.bulk(&["GETSET", "k", "w"]).as_deref(), Some("v"));
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("w"));
    assert_eq!(c.int(&["TTL", "k"]), -1);
}

#[test]
fn getdel_returns_the_value_and_deletes_the_key() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.bulk(&["GETDEL", "k"]).as_deref(), Some("v"));
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    assert_eq!(c.v(&["GETDEL", "k"]), Value::Nil);
}

#[test]
fn getex_changes_or_removes_the_ttl() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.bulk(&["GETEX", "k"]).as_deref(), Some("v"));
    assert_eq!(c.int(&["TTL", "k"]), -1);
    assert_eq!(c.bulk(&["GETEX", "k", "EX", "100"]).as_deref(), Some("v"));
    assert!((99..=100).contains(&c.int(&["TTL", "k"])));
    assert_eq!(c.bulk(&["GETEX", "k", "PX", "50000"]).as_deref(), Some("v"));
    assert!(c.int(&["PTTL", "k"]) <= 50_000);
    let at = unix_ms() / 1000 + 500;
    assert_eq!(
        c.bulk(&["GETEX", "k", "EXAT", &at.to_string()]).as_deref(),
        Some("v")
    );
    assert_eq!(c.int(&["EXPIRETIME", "k"]), at);
    let at_ms = unix_ms() + 77_000;
    c.v(&["GETEX", "k", "PXAT", &at_ms.to_string()]);
    assert_eq!(c.int(&["PEXPIRETIME", "k"]), at_ms);
    assert_eq!(c.bulk(&["GETEX", "k", "PERSIST"]).as_deref(), Some("v"));
    assert_eq!(c.int(&["TTL", "k"]), -1);
    assert_eq!(
        c.bulk(&["GETEX", "k", "PERSIST", "PERSIST"]).as_deref(),
        Some("v")
    );
    // A deadline in the past deletes the key after returning it.
    assert_eq!(c.bulk(&["GETEX", "k", "PXAT", "1"]).as_deref(), Some("v"));
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    assert_eq!(c.v(&["GETEX", "missing", "EX", "10"]), Value::Nil);
}

#[test]
fn getex_option_errors_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    for args in [
        &["GETEX", "k", "EX", "10", "PX", "10"][..],
        &["GETEX", "k", "PERSIST", "EX", "10"],
        &["GETEX", "k", "EX", "10", "PERSIST"],
        &["GETEX", "k", "KEEPTTL"],
        &["GETEX", "k", "NX"],
        &["GETEX", "k", "GET"],
        &["GETEX", "k", "FOO"],
        &["GETEX", "k", "EX"],
        &["GETEX", "k", "EX", "abc", "FOO"],
    ] {
        assert_eq!(c.err(args), "ERR syntax error", "{args:?}");
    }
    assert_eq!(
        c.err(&["GETEX", "k", "EX", "0"]),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        c.err(&["GETEX", "k", "PX", "-1"]),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        c.err(&["GETEX", "k", "EX", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.int(&["TTL", "k"]), -1, "failed GETEX changed nothing");
}

#[test]
fn mget_returns_nil_for_missing_keys_and_mset_sets_all() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MSET", "a", "1", "b", "2"]);
    assert_eq!(
        c.strings(&["MGET", "a", "missing", "b"]),
        ["1", "(nil)", "2"]
    );
    assert_eq!(
        c.err(&["MSET", "a", "1", "b"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        c.err(&["MGET"]),
        "ERR wrong number of arguments for 'mget' command"
    );
}

#[test]
fn msetnx_sets_nothing_when_any_key_exists() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["MSETNX", "a", "1", "b", "2"]), 1);
    assert_eq!(c.int(&["MSETNX", "b", "x", "c", "3"]), 0);
    assert_eq!(c.int(&["EXISTS", "c"]), 0);
    assert_eq!(c.bulk(&["GET", "b"]).as_deref(), Some("2"));
    assert_eq!(
        c.err(&["MSETNX", "e", "5", "f"]),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

#[test]
fn append_creates_or_extends_and_returns_the_length() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["APPEND", "k", "hello"]), 5);
    assert_eq!(c.int(&["APPEND", "k", " world"]), 11);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("hello world"));
    // APPEND keeps the TTL.
    c.ok(&["SET", "t", "a", "EX", "100"]);
    c.int(&["APPEND", "t", "b"]);
    assert!(c.int(&["TTL", "t"]) > 0);
}

#[test]
fn strlen_counts_bytes_and_is_zero_for_missing() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "hello"]);
    assert_eq!(c.int(&["STRLEN", "k"]), 5);
    assert_eq!(c.int(&["STRLEN", "missing"]), 0);
    c.ok(&["SET", "n", "12345"]);
    c.int(&["INCR", "n"]);
    assert_eq!(c.int(&["STRLEN", "n"]), 5);
}

#[test]
fn getrange_and_substr_follow_redis_index_rules() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "hello world"]);
    let cases = [
        ("0", "4", "hello"),
        ("-5", "-1", "world"),
        ("5", "1", ""),
        ("-1", "-5", ""),
        ("0", "-100", "h"),
        ("-100", "-1", "hello world"),
        ("100", "200", ""),
        ("0", "100", "hello world"),
        ("6", "6", "w"),
    ];
    for (start, end, want) in cases {
        assert_eq!(
            c.bulk(&["GETRANGE", "s", start, end]).as_deref(),
            Some(want),
            "GETRANGE {start} {end}"
        );
        assert_eq!(c.bulk(&["SUBSTR", "s", start, end]).as_deref(), Some(want));
    }
    assert_eq!(
        c.bulk(&["GETRANGE", "missing", "0", "-1"]).as_deref(),
        Some("")
    );
    assert_eq!(
        c.err(&["GETRANGE", "s", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn setrange_overwrites_pads_with_zeros_and_checks_offset() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "Hello World"]);
    assert_eq!(c.int(&["SETRANGE", "s", "6", "Redis"]), 11);
    assert_eq!(c.bulk(&["GET", "s"]).as_deref(), Some("Hello Redis"));
    assert_eq!(c.int(&["SETRANGE", "p", "3", "x"]), 4);
    assert_eq!(c.bulk(&["GET", "p"]).as_deref(), Some("\0\0\0x"));
    // An empty patch on a missing key creates nothing.
    assert_eq!(c.int(&["SETRANGE", "e", "0", ""]), 0);
    assert_eq!(c.int(&["EXISTS", "e"]), 0);
    assert_eq!(
        c.err(&["SETRANGE", "s", "-1", "x"]),
        "ERR offset is out of range"
    );
    assert_eq!(
        c.err(&["SETRANGE", "s", "abc", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["SETRANGE", "s", "536870912", "x"]),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(c.bulk(&["GET", "s"]).as_deref(), Some("Hello Redis"));
}

#[test]
fn lcs_reports_the_subsequence_its_length_and_its_runs() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s1", "ohmytext"]);
    c.ok(&["SET", "s2", "mynewtext"]);
    assert_eq!(c.bulk(&["LCS", "s1", "s2"]).as_deref(), Some("mytext"));
    assert_eq!(c.int(&["LCS", "s1", "s2", "len"]), 6);
    let run = |a: (i64, i64), b: (i64, i64), len: Option<i64>| {
        let pair = |(s, e): (i64, i64)| Value::Array(vec![Value::Int(s), Value::Int(e)]);
        let mut item = vec![pair(a), pair(b)];
        item.extend(len.map(Value::Int));
        Value::Array(item)
    };
    let idx = |runs: Vec<Value>, len: i64| {
        Value::Array(vec![
            Value::BulkString(b"matches".to_vec()),
            Value::Array(runs),
            Value::BulkString(b"len".to_vec()),
            Value::Int(len),
        ])
    };
    // Runs come last first, as Redis walks its table back.
    assert_eq!(
        c.v(&["LCS", "s1", "s2", "IDX"]),
        idx(
            vec![run((4, 7), (5, 8), None), run((2, 3), (0, 1), None)],
            6
        )
    );
    assert_eq!(
        c.v(&["LCS", "s1", "s2", "IDX", "WITHMATCHLEN"]),
        idx(
            vec![run((4, 7), (5, 8), Some(4)), run((2, 3), (0, 1), Some(2))],
            6
        )
    );
    assert_eq!(
        c.v(&["LCS", "s1", "s2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]),
        idx(vec![run((4, 7), (5, 8), Some(4))], 6)
    );
    // A negative minimum is no minimum.
    assert_eq!(
        c.v(&["LCS", "s1", "s2", "IDX", "MINMATCHLEN", "-4"]),
        idx(
            vec![run((4, 7), (5, 8), None), run((2, 3), (0, 1), None)],
            6
        )
    );
    // Missing keys are empty strings.
    assert_eq!(c.bulk(&["LCS", "s1", "nokey"]).as_deref(), Some(""));
    assert_eq!(c.v(&["LCS", "nokey", "nokey2", "IDX"]), idx(vec![], 0));
    for (args, text) in [
        (
            &["LCS", "s1", "s2", "IDX", "LEN"][..],
            "ERR If you want both the length and indexes, please just use IDX.",
        ),
        (&["LCS", "s1", "s2", "MINMATCHLEN"], "ERR syntax error"),
        (
            &["LCS", "s1", "s2", "MINMATCHLEN", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["LCS", "s1", "s2", "foo"], "ERR syntax error"),
        (
            &["LCS", "s1"],
            "ERR wrong number of arguments for 'lcs' command",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
    c.int(&["RPUSH", "list", "a"]);
    assert_eq!(
        c.err(&["LCS", "s1", "list"]),
        "ERR The specified keys must contain string values"
    );
    // A wrong type is reported before a bad option.
    assert_eq!(
        c.err(&["LCS", "list", "s1", "foo"]),
        "ERR The specified keys must contain string values"
    );
}

#[test]
fn lcs_refuses_a_table_larger_than_proto_max_bulk_len() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "proto-max-bulk-len", "1048576"]);
    // 601 x 601 cells of 4 bytes is just over 1 MiB; 401 x 401 is under.
    c.ok(&["SET", "big", &"a".repeat(600)]);
    c.ok(&["SET", "small", &"a".repeat(400)]);
    assert_eq!(
        c.err(&["LCS", "big", "big", "LEN"]),
        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
    );
    assert_eq!(c.int(&["LCS", "small", "small", "LEN"]), 400);
    assert_eq!(c.int(&["LCS", "big", "small", "LEN"]), 400);
}

#[test]
fn lcs_replies_nest_as_a_map_in_resp3() {
    let node = Node::start();
    let mut raw = node.connect();
    raw.call_str(&["HELLO", "3"]);
    raw.call_str(&["SET", "a", "ohmytext"]);
    raw.call_str(&["SET", "b", "mynewtext"]);
    assert_eq!(
        raw.call_text(&["LCS", "a", "b", "IDX", "WITHMATCHLEN"]),
        "%2\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n"
    );
}

// ----- counters -----

#[test]
fn incr_decr_incrby_decrby_count_from_zero() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["INCR", "n"]), 1);
    assert_eq!(c.int(&["INCRBY", "n", "10"]), 11);
    assert_eq!(c.int(&["DECR", "n"]), 10);
    assert_eq!(c.int(&["DECRBY", "n", "3"]), 7);
    assert_eq!(c.int(&["INCRBY", "n", "-10"]), -3);
    assert_eq!(c.bulk(&["GET", "n"]).as_deref(), Some("-3"));
    assert_eq!(c.int(&["DECR", "fresh"]), -1);
    c.ok(&["SET", "s", "41"]);
    assert_eq!(c.int(&["INCR", "s"]), 42);
}

#[test]
fn incr_on_a_non_integer_is_an_error_and_leaves_the_value() {
    let node = Node::start();
    let mut c = node.client();
    for bad in ["abc", " 1", "1 ", "010", "1.5", "", "99999999999999999999"] {
        c.ok(&["SET", "k", bad]);
        for args in [
            &["INCR", "k"][..],
            &["DECR", "k"],
            &["INCRBY", "k", "1"],
            &["DECRBY", "k", "1"],
        ] {
            assert_eq!(
                c.err(args),
                "ERR value is not an integer or out of range",
                "{args:?} on {bad:?}"
            );
        }
        assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some(bad));
    }
    assert_eq!(
        c.err(&["INCRBY", "n", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["INCRBY", "n", "1.5"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.int(&["EXISTS", "n"]), 0);
}

#[test]
fn incr_overflow_is_refused_and_value_unchanged() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "max", "9223372036854775807"]);
    assert_eq!(
        c.err(&["INCR", "max"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        c.err(&["INCRBY", "max", "1"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        c.bulk(&["GET", "max"]).as_deref(),
        Some("9223372036854775807")
    );
    c.ok(&["SET", "min", "-9223372036854775808"]);
    assert_eq!(
        c.err(&["DECR", "min"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        c.bulk(&["GET", "min"]).as_deref(),
        Some("-9223372036854775808")
    );
    c.ok(&["SET", "m", "5"]);
    assert_eq!(
        c.err(&["DECRBY", "m", "-9223372036854775808"]),
        "ERR decrement would overflow"
    );
    assert_eq!(
        c.err(&["INCRBY", "m", "9223372036854775807"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(c.bulk(&["GET", "m"]).as_deref(), Some("5"));
}

#[test]
fn incrbyfloat_adds_exactly_and_formats_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "f", "10.5"]);
    assert_eq!(
        c.bulk(&["INCRBYFLOAT", "f", "0.1"]).as_deref(),
        Some("10.6")
    );
    assert_eq!(c.bulk(&["INCRBYFLOAT", "f", "-5"]).as_deref(), Some("5.6"));
    assert_eq!(c.bulk(&["INCRBYFLOAT", "g", "0.1"]).as_deref(), Some("0.1"));
    assert_eq!(c.bulk(&["INCRBYFLOAT", "g", "0.2"]).as_deref(), Some("0.3"));
    assert_eq!(c.bulk(&["GET", "g"]).as_deref(), Some("0.3"));
    assert_eq!(
        c.bulk(&["INCRBYFLOAT", "e", "5.0e3"]).as_deref(),
        Some("5000")
    );
    assert_eq!(c.bulk(&["INCRBYFLOAT", "e", "-5000"]).as_deref(), Some("0"));
    c.ok(&["SET", "x", "1e3"]);
    assert_eq!(c.bulk(&["INCRBYFLOAT", "x", "1"]).as_deref(), Some("1001"));
    c.ok(&["SET", "z", "010"]);
    assert_eq!(c.bulk(&["INCRBYFLOAT", "z", "1"]).as_deref(), Some("11"));
}

#[test]
fn incrbyfloat_errors_leave_the_value_unchanged() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "f", "1.5"]);
    for bad in ["abc", "nan", "", " 1", "1 "] {
        assert_eq!(
            c.err(&["INCRBYFLOAT", "f", bad]),
            "ERR value is not a valid float",
            "increment {bad:?}"
        );
    }
    for inf in ["inf", "-inf", "+Infinity"] {
        assert_eq!(
            c.err(&["INCRBYFLOAT", "f", inf]),
            "ERR increment would produce NaN or Infinity"
        );
    }
    assert_eq!(c.bulk(&["GET", "f"]).as_deref(), Some("1.5"));
    c.ok(&["SET", "s", "abc"]);
    assert_eq!(
        c.err(&["INCRBYFLOAT", "s", "1"]),
        "ERR value is not a valid float"
    );
    assert_eq!(c.bulk(&["GET", "s"]).as_deref(), Some("abc"));
    // A float value cannot be INCRed.
    assert_eq!(
        c.err(&["INCR", "f"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.bulk(&["GET", "f"]).as_deref(), Some("1.5"));
}

// ----- generic key commands -----

#[test]
fn del_and_unlink_count_the_keys_removed() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MSET", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(c.int(&["DEL", "a", "b", "missing", "a"]), 2);
    assert_eq!(c.int(&["UNLINK", "c", "c"]), 1);
    assert_eq!(c.int(&["DBSIZE"]), 0);
    assert_eq!(
        c.err(&["DEL"]),
        "ERR wrong number of arguments for 'del' command"
    );
}

#[test]
fn exists_and_touch_count_repeated_keys_each_time() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "a", "1"]);
    assert_eq!(c.int(&["EXISTS", "a", "a", "missing"]), 2);
    assert_eq!(c.int(&["TOUCH", "a", "a", "missing"]), 2);
}

#[test]
fn type_reports_string_or_none() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "a", "1"]);
    c.int(&["INCR", "n"]);
    assert_eq!(c.status(&["TYPE", "a"]), "string");
    assert_eq!(c.status(&["TYPE", "n"]), "string");
    assert_eq!(c.status(&["TYPE", "missing"]), "none");
}

#[test]
fn expire_family_sets_relative_and_absolute_deadlines() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.int(&["EXPIRE", "k", "100"]), 1);
    assert!((99..=100).contains(&c.int(&["TTL", "k"])));
    assert_eq!(c.int(&["PEXPIRE", "k", "5000"]), 1);
    let pttl = c.int(&["PTTL", "k"]);
    assert!((4_000..=5_000).contains(&pttl), "{pttl}");
    assert_eq!(c.int(&["EXPIREAT", "k", "99999999999"]), 1);
    assert_eq!(c.int(&["EXPIRETIME", "k"]), 99_999_999_999);
    assert_eq!(c.int(&["PEXPIREAT", "k", "99999999999999"]), 1);
    assert_eq!(c.int(&["PEXPIRETIME", "k"]), 99_999_999_999_999);
    assert_eq!(c.int(&["EXPIRETIME", "k"]), 99_999_999_999);
    assert_eq!(c.int(&["EXPIRE", "missing", "10"]), 0);
    // Zero, negative or past deadlines delete the key.
    assert_eq!(c.int(&["EXPIRE", "k", "0"]), 1);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.int(&["PEXPIRE", "k", "-5"]), 1);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.int(&["EXPIREAT", "k", "1"]), 1);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.int(&["PEXPIREAT", "k", "-1"]), 1);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
}

#[test]
fn expire_nx_xx_gt_lt_follow_redis_rules() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    // No TTL: XX and GT refuse (no TTL counts as infinite), NX and LT set.
    assert_eq!(c.int(&["EXPIRE", "k", "100", "XX"]), 0);
    assert_eq!(c.int(&["EXPIRE", "k", "100", "GT"]), 0);
    assert_eq!(c.int(&["EXPIRE", "k", "100", "LT"]), 1);
    c.int(&["PERSIST", "k"]);
    assert_eq!(c.int(&["EXPIRE", "k", "100", "NX"]), 1);
    assert_eq!(c.int(&["EXPIRE", "k", "200", "NX"]), 0);
    assert_eq!(c.int(&["EXPIRE", "k", "200", "XX"]), 1);
    assert_eq!(c.int(&["EXPIRE", "k", "50", "GT"]), 0);
    assert_eq!(c.int(&["EXPIRE", "k", "500", "GT"]), 1);
    assert_eq!(c.int(&["EXPIRE", "k", "600", "LT"]), 0);
    assert_eq!(c.int(&["EXPIRE", "k", "50", "lt"]), 1);
    assert_eq!(c.int(&["EXPIRE", "k", "60", "xx", "gt"]), 1);
    assert!((59..=60).contains(&c.int(&["TTL", "k"])));
    assert_eq!(c.int(&["PEXPIRE", "k", "1000000", "GT"]), 1);
    assert_eq!(c.int(&["EXPIREAT", "k", "99999999999", "NX"]), 0);
    assert_eq!(c.int(&["PEXPIREAT", "k", "99999999999999", "XX"]), 1);
    assert_eq!(
        c.err(&["EXPIRE", "k", "10", "NX", "XX"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        c.err(&["EXPIRE", "k", "10", "NX", "GT"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        c.err(&["PEXPIRE", "k", "10", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        c.err(&["EXPIRE", "k", "10", "FOO"]),
        "ERR Unsupported option FOO"
    );
    assert_eq!(
        c.err(&["EXPIRE", "k", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["EXPIRE", "k"]),
        "ERR wrong number of arguments for 'expire' command"
    );
    assert_eq!(c.int(&["PEXPIRETIME", "k"]), 99_999_999_999_999);
}

#[test]
fn expire_with_an_overflowing_time_is_an_invalid_expire_time() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    for (cmd, value) in [
        ("EXPIRE", "9223372036854775807"),
        ("EXPIRE", "-9223372036854775808"),
        ("PEXPIRE", "9223372036854775807"),
        ("EXPIREAT", "9223372036854775807"),
    ] {
        assert_eq!(
            c.err(&[cmd, "k", value]),
            format!(
                "ERR invalid expire time in '{}' command",
                cmd.to_lowercase()
            )
        );
    }
    assert_eq!(c.int(&["TTL", "k"]), -1);
}

#[test]
fn ttl_family_reports_minus_two_for_missing_and_minus_one_for_persistent() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(c.int(&[cmd, "missing"]), -2, "{cmd}");
        assert_eq!(c.int(&[cmd, "k"]), -1, "{cmd}");
    }
}

#[test]
fn persist_removes_a_ttl_once() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v", "EX", "100"]);
    assert_eq!(c.int(&["PERSIST", "k"]), 1);
    assert_eq!(c.int(&["TTL", "k"]), -1);
    assert_eq!(c.int(&["PERSIST", "k"]), 0);
    assert_eq!(c.int(&["PERSIST", "missing"]), 0);
}

#[test]
fn keys_matches_glob_patterns() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&[
        "MSET", "hello", "1", "hallo", "1", "hxllo", "1", "other", "1",
    ]);
    assert_eq!(
        sorted(c.strings(&["KEYS", "h?llo"])),
        ["hallo", "hello", "hxllo"]
    );
    assert_eq!(sorted(c.strings(&["KEYS", "h[ae]llo"])), ["hallo", "hello"]);
    assert_eq!(sorted(c.strings(&["KEYS", "h[^e]llo"])), ["hallo", "hxllo"]);
    assert_eq!(sorted(c.strings(&["KEYS", "*"])).len(), 4);
    assert!(c.strings(&["KEYS", "nomatch*"]).is_empty());
}

/// Iterates SCAN to the end; returns every key seen and the call count.
fn scan_all(c: &mut Conn, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let reply = c.v(&args);
        calls += 1;
        let Value::Array(parts) = reply else {
            panic!("SCAN reply {reply:?}")
        };
        let [Value::BulkString(next), page] = &parts[..] else {
            panic!("SCAN reply {parts:?}")
        };
        keys.extend(strings_of(page.clone()));
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return (keys, calls);
        }
        assert!(calls < 10_000, "SCAN does not terminate");
    }
}

#[test]
fn scan_full_iteration_returns_every_key() {
    let node = Node::start();
    let mut c = node.client();
    let all: BTreeSet<String> = (0..500).map(|i| format!("key:{i}")).collect();
    for chunk in all.iter().collect::<Vec<_>>().chunks(100) {
        let mut args = vec!["MSET"];
        for k in chunk {
            args.push(k.as_str());
            args.push("v");
        }
        c.ok(&args);
    }
    let (seen, calls) = scan_all(&mut c, &["COUNT", "7"]);
    assert!(calls > 10, "COUNT bounds each step ({calls} calls)");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique, all);
    let (default_count, _) = scan_all(&mut c, &[]);
    assert_eq!(default_count.into_iter().collect::<BTreeSet<_>>(), all);
}

#[test]
fn scan_match_and_type_filter_keys() {
    let node = Node::start();
    let mut c = node.client();
    for i in 0..50 {
        c.ok(&["SET", &format!("user:{i}"), "x"]);
        c.ok(&["SET", &format!("item:{i}"), "x"]);
    }
    let (users, _) = scan_all(&mut c, &["MATCH", "user:*", "COUNT", "10"]);
    assert_eq!(users.len(), 50);
    assert!(users.iter().all(|k| k.starts_with("user:")));
    let (strings, _) = scan_all(&mut c, &["TYPE", "string", "COUNT", "100"]);
    assert_eq!(strings.len(), 100);
    let (hashes, _) = scan_all(&mut c, &["TYPE", "hash"]);
    assert!(hashes.is_empty());
    let (both, _) = scan_all(&mut c, &["match", "item:1*", "type", "STRING"]);
    assert_eq!(both.len(), 11);
}

#[test]
fn scan_argument_errors_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.err(&["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(c.err(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
    assert_eq!(
        c.err(&["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.err(&["SCAN", "0", "MATCH"]), "ERR syntax error");
    assert_eq!(c.err(&["SCAN", "0", "FOO", "bar"]), "ERR syntax error");
    assert_eq!(
        c.err(&["SCAN"]),
        "ERR wrong number of arguments for 'scan' command"
    );
}

#[test]
fn randomkey_returns_an_existing_key_or_nil() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.v(&["RANDOMKEY"]), Value::Nil);
    c.ok(&["MSET", "a", "1", "b", "2", "c", "3"]);
    for _ in 0..20 {
        let k = c.bulk(&["RANDOMKEY"]).unwrap();
        assert!(["a", "b", "c"].contains(&k.as_str()), "{k}");
    }
}

#[test]
fn rename_moves_value_and_ttl() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "a", "1", "EX", "100"]);
    c.ok(&["SET", "b", "old"]);
    c.ok(&["RENAME", "a", "b"]);
    assert_eq!(c.int(&["EXISTS", "a"]), 0);
    assert_eq!(c.bulk(&["GET", "b"]).as_deref(), Some("1"));
    assert!(c.int(&["TTL", "b"]) > 90);
    c.ok(&["RENAME", "b", "b"]);
    assert_eq!(c.bulk(&["GET", "b"]).as_deref(), Some("1"));
    assert_eq!(c.err(&["RENAME", "missing", "x"]), "ERR no such key");
    assert_eq!(c.err(&["RENAME", "missing", "missing"]), "ERR no such key");
}

#[test]
fn renamenx_refuses_an_existing_destination() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MSET", "a", "1", "b", "2"]);
    assert_eq!(c.int(&["RENAMENX", "a", "b"]), 0);
    assert_eq!(c.int(&["RENAMENX", "a", "a"]), 0);
    assert_eq!(c.int(&["RENAMENX", "a", "c"]), 1);
    assert_eq!(c.bulk(&["GET", "c"]).as_deref(), Some("1"));
    assert_eq!(c.int(&["EXISTS", "a"]), 0);
    assert_eq!(c.err(&["RENAMENX", "missing", "x"]), "ERR no such key");
}

#[test]
fn dbsize_flushdb_and_flushall_work_per_database() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MSET", "a", "1", "b", "2"]);
    c.ok(&["SELECT", "3"]);
    c.ok(&["SET", "c", "3"]);
    assert_eq!(c.int(&["DBSIZE"]), 1);
    c.ok(&["FLUSHDB"]);
    assert_eq!(c.int(&["DBSIZE"]), 0);
    c.ok(&["SET", "c", "3"]);
    c.ok(&["SELECT", "0"]);
    assert_eq!(c.int(&["DBSIZE"]), 2, "FLUSHDB left other databases alone");
    c.ok(&["FLUSHDB", "ASYNC"]);
    c.ok(&["FLUSHDB", "sync"]);
    c.ok(&["FLUSHALL"]);
    c.ok(&["SELECT", "3"]);
    assert_eq!(c.int(&["DBSIZE"]), 0, "FLUSHALL emptied every database");
    c.ok(&["FLUSHALL", "ASYNC"]);
    assert_eq!(c.err(&["FLUSHDB", "foo"]), "ERR syntax error");
    assert_eq!(c.err(&["FLUSHALL", "async", "sync"]), "ERR syntax error");
    assert_eq!(
        c.err(&["DBSIZE", "x"]),
        "ERR wrong number of arguments for 'dbsize' command"
    );
}

#[test]
fn select_isolates_the_sixteen_databases() {
    let node = Node::start();
    let mut c = node.client();
    for db in 0..16 {
        c.ok(&["SELECT", &db.to_string()]);
        c.ok(&["SET", "k", &format!("db{db}")]);
    }
    for db in 0..16 {
        c.ok(&["SELECT", &db.to_string()]);
        assert_eq!(
            c.bulk(&["GET", "k"]).as_deref(),
            Some(format!("db{db}").as_str())
        );
        assert_eq!(c.int(&["DBSIZE"]), 1);
    }
    // Another client starts in db 0.
    let mut other = node.client();
    assert_eq!(other.bulk(&["GET", "k"]).as_deref(), Some("db0"));
    assert_eq!(c.err(&["SELECT", "16"]), "ERR DB index is out of range");
    assert_eq!(c.err(&["SELECT", "-1"]), "ERR DB index is out of range");
    assert_eq!(
        c.err(&["SELECT", "abc"]),
        "ERR value is not an integer or out of range"
    );
}

// ----- expiry -----

#[test]
fn expired_key_is_gone_on_access_lazily() {
    let node = Node::with(Config {
        hz: 1,
        ..Config::default()
    });
    let mut c = node.client();
    c.ok(&["SET", "k", "v", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(c.v(&["GET", "k"]), Value::Nil);
    assert_eq!(c.int(&["TTL", "k"]), -2);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    // Writing to the expired key starts afresh.
    c.ok(&["SET", "k2", "v", "PX", "30"]);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(c.int(&["INCR", "k2"]), 1);
}

#[test]
fn expired_key_leaves_dbsize_without_being_touched() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "short", "v", "PX", "100"]);
    c.ok(&["SET", "long", "v"]);
    assert_eq!(c.int(&["DBSIZE"]), 2);
    let deadline = Instant::now() + Duration::from_secs(3);
    while c.int(&["DBSIZE"]) != 1 {
        assert!(
            Instant::now() < deadline,
            "active expiry did not remove the key within 3 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let info = c.bulk(&["INFO", "stats"]).unwrap();
    assert!(info.contains("expired_keys:1\r\n"), "{info}");
}

// ----- connection -----

#[test]
fn ping_and_echo_reply_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.status(&["PING"]), "PONG");
    assert_eq!(c.bulk(&["PING", "hi"]).as_deref(), Some("hi"));
    assert_eq!(
        c.err(&["PING", "a", "b"]),
        "ERR wrong number of arguments for 'ping' command"
    );
    assert_eq!(c.bulk(&["ECHO", "hello"]).as_deref(), Some("hello"));
    assert_eq!(
        c.err(&["ECHO"]),
        "ERR wrong number of arguments for 'echo' command"
    );
}

#[test]
fn unknown_command_error_lists_its_arguments() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.err(&["XYZ", "a", "b"]),
        "ERR unknown command 'XYZ', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        c.err(&["nosuch"]),
        "ERR unknown command 'nosuch', with args beginning with: "
    );
}

#[test]
fn quit_replies_ok_and_closes_the_connection() {
    let node = Node::start();
    let mut raw = node.connect();
    assert_eq!(raw.call_str(&["QUIT"]), b"+OK\r\n");
    let mut rest = Vec::new();
    let n = raw
        .stream
        .read_to_end(&mut rest)
        .expect("closed, not timed out");
    assert_eq!(n, 0);
    // The node still serves others.
    assert_eq!(node.client().status(&["PING"]), "PONG");
}

#[test]
fn hello_3_switches_to_resp3_replies() {
    let node = Node::start();
    let mut raw = node.connect();
    let hello = raw.call_text(&["HELLO", "3"]);
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n"));
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"));
    assert!(hello.contains(
        "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    ));
    assert_eq!(raw.call_str(&["GET", "missing"]), b"_\r\n");
    assert_eq!(raw.call_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        raw.call_str(&["CONFIG", "GET", "maxclients"]),
        b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    let info = raw.call_text(&["INFO", "server"]);
    assert!(info.starts_with('='), "{info}");
    assert!(info.contains("txt:# Server\r\n"));
    let client = raw.call_text(&["CLIENT", "INFO"]);
    assert!(
        client.starts_with('=') && client.contains("resp=3"),
        "{client}"
    );
    assert_eq!(raw.call_str(&["COMMAND", "INFO", "nosuch"]), b"*1\r\n_\r\n");
    // Back to RESP2.
    let hello2 = raw.call_text(&["HELLO", "2"]);
    assert!(hello2.starts_with("*14\r\n"), "{hello2}");
    assert_eq!(raw.call_str(&["GET", "missing"]), b"$-1\r\n");
    assert_eq!(
        raw.call_str(&["CONFIG", "GET", "maxclients"]),
        b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
}

#[test]
fn hello_through_the_client_library_in_resp3() {
    let node = Node::start();
    let mut c = Conn::open(&format!("redis://{}/?protocol=resp3", node.addr));
    let Value::Map(fields) = c.v(&["HELLO", "3"]) else {
        panic!("HELLO 3 is a map")
    };
    assert!(fields.contains(&(Value::BulkString(b"proto".to_vec()), Value::Int(3))));
    assert_eq!(c.v(&["GET", "missing"]), Value::Nil);
    assert!(matches!(
        c.v(&["CLIENT", "INFO"]),
        Value::VerbatimString { .. }
    ));
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
}

#[test]
fn hello_errors_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.err(&["HELLO", "4"]),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        c.err(&["HELLO", "1"]),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        c.err(&["HELLO", "abc"]),
        "ERR Protocol version is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["HELLO", "2", "foo"]),
        "ERR Syntax error in HELLO option 'foo'"
    );
    assert_eq!(
        c.err(&["HELLO", "3", "AUTH"]),
        "ERR Syntax error in HELLO option 'AUTH'"
    );
    // HELLO with no version just reports (still RESP2 here).
    let Value::Array(items) = c.v(&["HELLO"]) else {
        panic!("RESP2 HELLO is a flat array")
    };
    assert_eq!(items.len(), 14);
    // SETNAME sets the name.
    c.v(&["HELLO", "2", "SETNAME", "conn1"]);
    assert_eq!(c.bulk(&["CLIENT", "GETNAME"]).as_deref(), Some("conn1"));
}

#[test]
fn auth_without_a_configured_password_is_an_error() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.err(&["AUTH", "foo"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    assert_eq!(c.err(&["AUTH", "a", "b", "c"]), "ERR syntax error");
}

#[test]
fn requirepass_gives_noauth_until_auth_and_wrongpass_on_a_bad_password() {
    let node = Node::with(Config {
        requirepass: "secret".into(),
        ..Config::default()
    });
    let mut raw = node.connect();
    assert_eq!(
        raw.call_text(&["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        raw.call_text(&["PING"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        raw.call_text(&["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        raw.call_text(&["AUTH", "default", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        raw.call_text(&["AUTH", "nouser", "secret"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(raw
        .call_text(&["HELLO", "3"])
        .starts_with("-NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(raw.call_text(&["AUTH", "secret"]), "+OK\r\n");
    assert_eq!(raw.call_text(&["SET", "k", "v"]), "+OK\r\n");

    // HELLO AUTH authenticates and switches protocol at once.
    let mut raw2 = node.connect();
    assert!(raw2
        .call_text(&["HELLO", "3", "AUTH", "default", "wrong"])
        .starts_with("-WRONGPASS"));
    assert!(raw2
        .call_text(&["HELLO", "3", "AUTH", "default", "secret"])
        .starts_with("%7\r\n"));
    assert_eq!(raw2.call_text(&["GET", "k"]), "$1\r\nv\r\n");

    // And the client library's password in the URL works.
    let mut c = Conn::open(&format!("redis://:secret@{}/", node.addr));
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
}

#[test]
fn client_setname_getname_id_list_and_info() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.v(&["CLIENT", "GETNAME"]), Value::Nil);
    c.ok(&["CLIENT", "SETNAME", "worker-1"]);
    assert_eq!(c.bulk(&["CLIENT", "GETNAME"]).as_deref(), Some("worker-1"));
    assert_eq!(
        c.err(&["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    let id = c.int(&["CLIENT", "ID"]);
    assert!(id > 0);
    let mut other = node.client();
    let other_id = other.int(&["CLIENT", "ID"]);
    assert_ne!(id, other_id);

    let list = c.bulk(&["CLIENT", "LIST"]).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    let mine = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .expect("own line");
    assert!(mine.contains(" name=worker-1 "), "{mine}");
    assert!(mine.contains(" db=0 "), "{mine}");
    let only = c
        .bulk(&["CLIENT", "LIST", "ID", &other_id.to_string()])
        .unwrap();
    assert_eq!(only.lines().count(), 1);
    assert!(only.starts_with(&format!("id={other_id} ")));
    let normal = c.bulk(&["CLIENT", "LIST", "TYPE", "normal"]).unwrap();
    assert_eq!(normal.lines().count(), 2);

    c.ok(&["SELECT", "2"]);
    let info = c.bulk(&["CLIENT", "INFO"]).unwrap();
    assert!(
        info.starts_with(&format!("id={id} addr=127.0.0.1:")),
        "{info}"
    );
    assert!(info.contains(" db=2 ") && info.ends_with('\n'), "{info}");

    assert_eq!(
        c.err(&["CLIENT"]),
        "ERR wrong number of arguments for 'client' command"
    );
    assert_eq!(
        c.err(&["CLIENT", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
    );
    assert_eq!(
        c.err(&["CLIENT", "SETNAME"]),
        "ERR wrong number of arguments for 'client|setname' command"
    );
    assert_eq!(
        c.err(&["CLIENT", "LIST", "TYPE", "foo"]),
        "ERR Unknown client type 'foo'"
    );
    assert_eq!(
        c.err(&["CLIENT", "LIST", "ID", "abc"]),
        "ERR Invalid client ID"
    );
    assert_eq!(c.err(&["CLIENT", "LIST", "foo"]), "ERR syntax error");
    assert!(!c.strings(&["CLIENT", "HELP"]).is_empty());
    // Redis 7.0 has no CLIENT SETINFO (7.2 added it).
    assert_eq!(
        c.err(&["CLIENT", "SETINFO", "LIB-NAME", "x"]),
        "ERR unknown subcommand 'SETINFO'. Try CLIENT HELP."
    );
}

// ----- server -----

#[test]
fn info_sections_are_present_and_selectable() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "a", "1"]);
    c.ok(&["SET", "b", "1", "EX", "100"]);
    let all = c.bulk(&["INFO"]).unwrap();
    for section in [
        "# Server\r\n",
        "# Clients\r\n",
        "# Memory\r\n",
        "# Stats\r\n",
        "# Replication\r\n",
        "# Keyspace\r\n",
    ] {
        assert!(all.contains(section), "missing {section:?}");
    }
    assert!(all.contains(&format!("tcp_port:{}\r\n", node.addr.port())));
    assert!(all.contains("redis_version:7."));
    assert!(all.contains("db0:keys=2,expires=1,avg_ttl=0\r\n"), "{all}");
    let server = c.bulk(&["INFO", "server"]).unwrap();
    assert!(server.starts_with("# Server\r\n"));
    assert!(!server.contains("# Clients"));
    let two = c.bulk(&["INFO", "clients", "KEYSPACE"]).unwrap();
    assert!(
        two.contains("# Clients\r\nconnected_clients:1\r\n"),
        "{two}"
    );
    assert!(two.contains("# Keyspace\r\n"));
    assert!(!two.contains("# Server"));
    assert_eq!(c.bulk(&["INFO", "nosuchsection"]).as_deref(), Some(""));
    let repl = c.bulk(&["INFO", "replication"]).unwrap();
    assert!(repl.contains("role:master\r\n"));
    assert!(c.bulk(&["INFO", "everything"]).unwrap().contains("# Stats"));
}

#[test]
fn config_get_set_and_resetstat() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.strings(&["CONFIG", "GET", "maxclients"]),
        ["maxclients", "10000"]
    );
    c.ok(&["CONFIG", "SET", "maxclients", "50"]);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "maxclients"]),
        ["maxclients", "50"]
    );
    c.ok(&["CONFIG", "SET", "timeout", "100", "hz", "20"]);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "timeout", "hz"]),
        ["timeout", "100", "hz", "20"]
    );
    let many = c.strings(&["CONFIG", "GET", "*max*"]);
    assert!(many.contains(&"maxclients".to_string()));
    assert!(many.contains(&"maxmemory".to_string()));
    assert_eq!(c.strings(&["CONFIG", "GET", "save"]), ["save", ""]);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "appendonly"]),
        ["appendonly", "no"]
    );
    assert!(c.strings(&["CONFIG", "GET", "nosuch"]).is_empty());
    assert_eq!(
        c.err(&["CONFIG", "SET", "nope", "1"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'nope'"
    );
    assert_eq!(
        c.err(&["CONFIG", "SET", "maxclients", "abc"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        c.err(&["CONFIG", "SET", "maxclients", "100", "timeout"]),
        "ERR syntax error"
    );
    // All or nothing: a bad pair leaves the good one unapplied.
    assert!(c
        .err(&["CONFIG", "SET", "maxclients", "77", "timeout", "x"])
        .starts_with("ERR CONFIG SET failed"));
    assert_eq!(
        c.strings(&["CONFIG", "GET", "maxclients"]),
        ["maxclients", "50"]
    );
    assert_eq!(
        c.err(&["CONFIG", "GET"]),
        "ERR wrong number of arguments for 'config|get' command"
    );
    assert_eq!(
        c.err(&["CONFIG", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try CONFIG HELP."
    );

    for _ in 0..5 {
        c.status(&["PING"]);
    }
    c.ok(&["CONFIG", "RESETSTAT"]);
    let stats = c.bulk(&["INFO", "stats"]).unwrap();
    let processed: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(processed <= 1, "RESETSTAT zeroed the counter ({processed})");
    assert!(stats.contains("keyspace_hits:0\r\n"));
}

#[test]
fn time_returns_seconds_and_microseconds() {
    let node = Node::start();
    let mut c = node.client();
    let parts = c.strings(&["TIME"]);
    assert_eq!(parts.len(), 2);
    let secs: i64 = parts[0].parse().unwrap();
    let micros: i64 = parts[1].parse().unwrap();
    assert!((secs - unix_ms() / 1000).abs() <= 2);
    assert!((0..1_000_000).contains(&micros));
    assert_eq!(
        c.err(&["TIME", "x"]),
        "ERR wrong number of arguments for 'time' command"
    );
}

#[test]
fn debug_digest_is_forty_hex_chars_and_equal_for_equal_data() {
    let a = Node::start();
    let b = Node::start();
    let mut ca = a.client();
    let mut cb = b.client();
    let empty = ca.status(&["DEBUG", "DIGEST"]);
    assert_eq!(empty, "0".repeat(40));
    let writes = [
        ["SET", "k1", "v1"],
        ["SET", "k2", "v2"],
        ["SET", "k3", "v3"],
        ["SET", "k1", "v1b"],
    ];
    for w in &writes {
        ca.ok(w);
    }
    // Same final data, different order (and a detour) on b.
    cb.ok(&["SET", "k3", "v3"]);
    cb.ok(&["SET", "k1", "zzz"]);
    cb.ok(&["SET", "k2", "v2"]);
    cb.ok(&["SET", "k1", "v1b"]);
    cb.ok(&["SET", "gone", "x"]);
    cb.int(&["DEL", "gone"]);
    let da = ca.status(&["DEBUG", "DIGEST"]);
    let db = cb.status(&["DEBUG", "DIGEST"]);
    assert_eq!(da.len(), 40);
    assert!(da
        .chars()
        .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
    assert_ne!(da, empty);
    assert_eq!(da, db);
    cb.ok(&["SET", "k2", "different"]);
    assert_ne!(cb.status(&["DEBUG", "DIGEST"]), da);
    assert_eq!(
        ca.err(&["DEBUG"]),
        "ERR wrong number of arguments for 'debug' command"
    );
}

#[test]
fn debug_sleep_pauses_only_the_calling_connection() {
    let node = Node::start();
    let mut c = node.client();
    let mut other = node.client();
    let start = Instant::now();
    c.ok(&["DEBUG", "SLEEP", "0.5"]);
    // Another client is served meanwhile.
    assert_eq!(other.status(&["PING"]), "PONG");
    assert!(start.elapsed() < Duration::from_millis(450));
    assert_eq!(c.status(&["PING"]), "PONG");
    assert!(start.elapsed() >= Duration::from_millis(480));
    // Like Redis (strtod), a bad number sleeps 0 s instead of failing.
    c.ok(&["DEBUG", "SLEEP", "abc"]);
    c.ok(&["DEBUG", "SLEEP", "0"]);
    c.ok(&["DEBUG", "SLEEP", "-1"]);
}

#[test]
fn command_count_info_docs_and_list_describe_the_table() {
    let node = Node::start();
    let mut c = node.client();
    let Value::Array(all) = c.v(&["COMMAND"]) else {
        panic!("COMMAND is an array")
    };
    assert_eq!(c.int(&["COMMAND", "COUNT"]), all.len() as i64);
    // COMMAND LIST names subcommands too (`config|get`), COUNT does not.
    let names = c.strings(&["COMMAND", "LIST"]);
    assert_eq!(names.iter().filter(|n| !n.contains('|')).count(), all.len());
    assert!(names.iter().any(|n| n == "config|get"));

    let Value::Array(info) = c.v(&["COMMAND", "INFO", "get", "nosuch", "SET"]) else {
        panic!("COMMAND INFO is an array")
    };
    assert_eq!(info.len(), 3);
    assert_eq!(info[1], Value::Nil);
    let Value::Array(get) = &info[0] else {
        panic!("entry is an array")
    };
    assert_eq!(get.len(), 10);
    assert_eq!(get[0], Value::BulkString(b"get".to_vec()));
    assert_eq!(get[1], Value::Int(2));
    let flags = strings_of(get[2].clone());
    assert!(flags.contains(&"readonly".into()) && flags.contains(&"fast".into()));
    assert_eq!(&get[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)]);
    let Value::Array(set) = &info[2] else {
        panic!()
    };
    assert_eq!(set[1], Value::Int(-3));
    assert!(strings_of(set[2].clone()).contains(&"write".into()));
    // Container commands list their subcommands.
    let Value::Array(client) = &c.v(&["COMMAND", "INFO", "client"]) else {
        panic!()
    };
    let Value::Array(entry) = &client[0] else {
        panic!()
    };
    let Value::Array(subs) = &entry[9] else {
        panic!("subcommands array")
    };
    assert!(subs.iter().any(
        |s| matches!(s, Value::Array(e) if e[0] == Value::BulkString(b"client|setname".to_vec()))
    ));

    let docs = c.v(&["COMMAND", "DOCS", "get"]);
    let Value::Array(pair) = docs else {
        panic!("RESP2 DOCS is a flat array")
    };
    assert_eq!(pair[0], Value::BulkString(b"get".to_vec()));
    let fields = strings_of_map(&pair[1]);
    assert!(fields.contains(&(
        "summary".into(),
        "Returns the string value of a key.".into()
    )));
    assert!(fields.contains(&("group".into(), "string".into())));
    assert_eq!(c.v(&["COMMAND", "DOCS", "nosuch"]), Value::Array(vec![]));
    assert_eq!(
        c.err(&["COMMAND", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try COMMAND HELP."
    );
}

fn strings_of_map(v: &Value) -> Vec<(String, String)> {
    let Value::Array(items) = v else {
        panic!("flat map {v:?}")
    };
    items
        .chunks(2)
        .filter_map(|kv| match (&kv[0], &kv[1]) {
            (Value::BulkString(k), Value::BulkString(v)) => Some((
                String::from_utf8(k.clone()).unwrap(),
                String::from_utf8(v.clone()).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

/// Every top-level command the node lists is exercised by a test in this
/// file; a new command fails this until it gets tests here.
#[test]
fn every_listed_command_is_covered_by_this_suite() {
    const COVERED: &[&str] = &[
        "get",
        "set",
        "setnx",
        "setex",
        "psetex",
        "getset",
        "getdel",
        "getex",
        "mget",
        "mset",
        "msetnx",
        "append",
        "strlen",
        "getrange",
        "substr",
        "setrange",
        "incr",
        "decr",
        "incrby",
        "decrby",
        "incrbyfloat",
        "lcs",
        "del",
        "unlink",
        "exists",
        "touch",
        "type",
        "expire",
        "pexpire",
        "expireat",
        "pexpireat",
        "ttl",
        "pttl",
        "expiretime",
        "pexpiretime",
        "persist",
        "keys",
        "scan",
        "randomkey",
        "rename",
        "renamenx",
        "dbsize",
        "flushdb",
        "flushall",
        "ping",
        "echo",
        "quit",
        "hello",
        "auth",
        "select",
        "client",
        "info",
        "time",
        "config",
        "command",
        "debug",
        "wait",
    ];
    let node = Node::start();
    let mut c = node.client();
    // COMMAND LIST names subcommands too (`client|list`); suites cover
    // commands by their top-level name.
    let listed: BTreeSet<String> = c
        .strings(&["COMMAND", "LIST"])
        .into_iter()
        .filter(|name| !name.contains('|'))
        .collect();
    let mut covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    covered.extend(support::client::covered_by_family_suites());
    let missing: Vec<_> = listed.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "commands without socket tests: {missing:?}"
    );
}

#[test]
fn wrong_arity_errors_use_the_lowercase_command_name() {
    let node = Node::start();
    let mut c = node.client();
    for (args, name) in [
        (&["SETNX", "k"][..], "setnx"),
        (&["GETSET", "k"], "getset"),
        (&["GETDEL"], "getdel"),
        (&["GETEX"], "getex"),
        (&["APPEND", "k"], "append"),
        (&["STRLEN"], "strlen"),
        (&["GETRANGE", "k", "0"], "getrange"),
        (&["SETRANGE", "k", "0"], "setrange"),
        (&["INCR"], "incr"),
        (&["DECRBY", "k"], "decrby"),
        (&["INCRBYFLOAT", "k"], "incrbyfloat"),
        (&["TYPE"], "type"),
        (&["TTL"], "ttl"),
        (&["PERSIST"], "persist"),
        (&["KEYS"], "keys"),
        (&["RANDOMKEY", "x"], "randomkey"),
        (&["RENAME", "a"], "rename"),
        (&["SELECT"], "select"),
        (&["Exists"], "exists"),
    ] {
        assert_eq!(
            c.err(args),
            format!("ERR wrong number of arguments for '{name}' command")
        );
    }
}

#[test]
fn wait_without_peers_replies_zero_at_once_or_after_its_timeout() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert_eq!(c.int(&["WAIT", "0", "0"]), 0);
    let start = std::time::Instant::now();
    assert_eq!(c.int(&["WAIT", "1", "100"]), 0);
    assert!(start.elapsed() >= std::time::Duration::from_millis(90));
    assert_eq!(
        c.err(&["WAIT", "x", "0"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.err(&["WAIT", "1", "-1"]), "ERR timeout is negative");
    assert_eq!(
        c.err(&["WAIT", "1", "1.5"]),
        "ERR timeout is not an integer or out of range"
    );
    // Redis's integer parser takes no sign but '-'.
    assert_eq!(
        c.err(&["WAIT", "+1", "0"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["WAIT", "1"]),
        "ERR wrong number of arguments for 'wait' command"
    );
    // The connection still serves after a wait.
    assert_eq!(c.int(&["EXISTS", "k"]), 1);
}
