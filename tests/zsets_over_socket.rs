//! The sorted-set family over a real socket, with the `redis` client crate
//! (and a raw RESP client for RESP3 shapes), against an in-process node on
//! `127.0.0.1:0`. Replies and error texts were checked against a real
//! `redis-server` 7.0 while writing these tests (the tests need no Redis).
//! Scores print as Redis 7.0 prints them, `%.17g` (`0.1` is
//! `0.10000000000000001`, `1e17` is `1e+17`), in both protocols.
//!
//! covers: zadd zincrby zrem zscore zmscore zcard zcount zlexcount zrange zrangestore zrangebyscore zrevrangebyscore zrangebylex zrevrangebylex zrevrange zrank zrevrank zpopmin zpopmax zrandmember zremrangebyscore zremrangebyrank zremrangebylex zunionstore zinterstore zdiffstore zscan zunion zinter zdiff zintercard zmpop bzpopmin bzpopmax bzmpop

use std::collections::BTreeSet;

use redis::Value;

mod support;

use support::client::{sorted, Conn};
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn setup(c: &mut Conn) {
    assert_eq!(
        c.int(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]),
        5
    );
}

#[test]
fn zadd_options_and_replies_follow_redis() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(
        c.int(&["ZADD", "z", "CH", "1", "a", "20", "b", "6", "f"]),
        2
    );
    assert_eq!(c.int(&["ZADD", "z", "NX", "100", "a", "7", "g"]), 1);
    assert_eq!(c.bulk(&["ZSCORE", "z", "a"]).as_deref(), Some("1"));
    assert_eq!(c.int(&["ZADD", "z", "XX", "9", "a", "9", "nothere"]), 0);
    assert_eq!(c.bulk(&["ZSCORE", "z", "nothere"]), None);
    assert_eq!(c.int(&["ZADD", "z", "GT", "CH", "5", "a", "1", "b"]), 0);
    assert_eq!(c.bulk(&["ZSCORE", "z", "a"]).as_deref(), Some("9"));
    assert_eq!(
        c.int(&["ZADD", "z", "LT", "CH", "0", "a", "100", "b", "1", "new"]),
        2
    );
    assert_eq!(
        c.bulk(&["ZADD", "z", "INCR", "2.5", "a"]).as_deref(),
        Some("2.5")
    );
    assert_eq!(c.bulk(&["ZADD", "z", "NX", "INCR", "2.5", "a"]), None);
    assert_eq!(c.bulk(&["ZADD", "z", "XX", "INCR", "1", "absent"]), None);
    assert_eq!(c.bulk(&["ZADD", "z", "GT", "INCR", "-1", "a"]), None);
    assert_eq!(c.int(&["ZADD", "z", "1", "dup", "2", "dup"]), 1);
    assert_eq!(c.bulk(&["ZSCORE", "z", "dup"]).as_deref(), Some("2"));
    for (args, text) in [
        (
            &["ZADD", "z", "XX", "NX", "1", "a"][..],
            "ERR XX and NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "GT", "LT", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "GT", "NX", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "INCR", "1", "a", "2", "b"],
            "ERR INCR option supports a single increment-element pair",
        ),
        (&["ZADD", "z", "NX", "1"], "ERR syntax error"),
        (&["ZADD", "z", "1", "a", "2"], "ERR syntax error"),
        (&["ZADD", "z", "abc", "a"], "ERR value is not a valid float"),
        (&["ZADD", "z", "nan", "a"], "ERR value is not a valid float"),
        (
            &["ZADD", "z", "1e400", "a"],
            "ERR value is not a valid float",
        ),
        (
            &["ZADD", "z", "1e-400", "a"],
            "ERR value is not a valid float",
        ),
        (
            &["ZADD", "z"],
            "ERR wrong number of arguments for 'zadd' command",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
    c.ok(&["SET", "s", "x"]);
    assert_eq!(c.err(&["ZADD", "s", "1", "a"]), WRONGTYPE);
    assert_eq!(c.status(&["TYPE", "z"]), "zset");
}

#[test]
fn zincrby_adds_and_refuses_nan() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.bulk(&["ZINCRBY", "z", "2.5", "a"]).as_deref(),
        Some("2.5")
    );
    assert_eq!(c.bulk(&["ZINCRBY", "z", "0.5", "a"]).as_deref(), Some("3"));
    assert_eq!(
        c.bulk(&["ZINCRBY", "z", "0.1", "b"]).as_deref(),
        Some("0.10000000000000001")
    );
    assert_eq!(
        c.bulk(&["ZINCRBY", "z", "inf", "x"]).as_deref(),
        Some("inf")
    );
    assert_eq!(
        c.err(&["ZINCRBY", "z", "-inf", "x"]),
        "ERR resulting score is not a number (NaN)"
    );
    assert_eq!(c.bulk(&["ZSCORE", "z", "x"]).as_deref(), Some("inf"));
    assert_eq!(
        c.err(&["ZINCRBY", "z", "abc", "a"]),
        "ERR value is not a valid float"
    );
    c.ok(&["SET", "s", "x"]);
    assert_eq!(c.err(&["ZINCRBY", "s", "1", "a"]), WRONGTYPE);
}

#[test]
fn zrem_zscore_zmscore_zcard() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(c.int(&["ZREM", "z", "a", "nope", "a"]), 1);
    assert_eq!(c.int(&["ZREM", "nokey", "a"]), 0);
    assert_eq!(c.int(&["ZCARD", "z"]), 4);
    assert_eq!(c.int(&["ZCARD", "nokey"]), 0);
    assert_eq!(c.bulk(&["ZSCORE", "z", "b"]).as_deref(), Some("2"));
    assert_eq!(c.bulk(&["ZSCORE", "nokey", "b"]), None);
    assert_eq!(
        c.v(&["ZMSCORE", "z", "b", "nope", "e"]),
        Value::Array(vec![
            Value::BulkString(b"2".to_vec()),
            Value::Nil,
            Value::BulkString(b"5".to_vec())
        ])
    );
    assert_eq!(c.int(&["ZREM", "z", "b", "c", "d", "e"]), 4);
    assert_eq!(c.int(&["EXISTS", "z"]), 0, "the last ZREM deletes the key");
    c.ok(&["SET", "s", "x"]);
    for cmd in [
        &["ZREM", "s", "a"][..],
        &["ZSCORE", "s", "a"],
        &["ZMSCORE", "s", "a"],
        &["ZCARD", "s"],
    ] {
        assert_eq!(c.err(cmd), WRONGTYPE, "{cmd:?}");
    }
}

#[test]
fn zcount_and_zlexcount_parse_ranges() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(c.int(&["ZCOUNT", "z", "-inf", "+inf"]), 5);
    assert_eq!(c.int(&["ZCOUNT", "z", "(1", "5"]), 4);
    assert_eq!(c.int(&["ZCOUNT", "z", "(1", "(5"]), 3);
    assert_eq!(c.int(&["ZCOUNT", "z", "5", "1"]), 0);
    assert_eq!(
        c.err(&["ZCOUNT", "z", "a", "b"]),
        "ERR min or max is not a float"
    );
    c.int(&["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"]);
    assert_eq!(c.int(&["ZLEXCOUNT", "l", "-", "+"]), 4);
    assert_eq!(c.int(&["ZLEXCOUNT", "l", "[b", "(d"]), 2);
    assert_eq!(c.int(&["ZLEXCOUNT", "l", "+", "-"]), 0);
    assert_eq!(
        c.err(&["ZLEXCOUNT", "l", "a", "b"]),
        "ERR min or max not valid string range item"
    );
}

#[test]
fn zrange_by_rank_score_and_lex_with_rev_limit_withscores() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(
        c.strings(&["ZRANGE", "z", "0", "-1"]),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        c.strings(&["ZRANGE", "z", "-2", "100", "WITHSCORES"]),
        ["d", "4", "e", "5"]
    );
    assert_eq!(c.strings(&["ZRANGE", "z", "0", "1", "REV"]), ["e", "d"]);
    assert!(c.strings(&["ZRANGE", "z", "3", "1"]).is_empty());
    assert_eq!(
        c.strings(&["ZRANGE", "z", "(1", "4", "BYSCORE", "LIMIT", "1", "2"]),
        ["c", "d"]
    );
    assert_eq!(
        c.strings(&["ZRANGE", "z", "4", "(1", "BYSCORE", "REV", "WITHSCORES"]),
        ["d", "4", "c", "3", "b", "2"]
    );
    assert!(c
        .strings(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"])
        .is_empty());
    assert_eq!(
        c.strings(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "3", "-1"]),
        ["d", "e"]
    );
    assert_eq!(c.strings(&["ZRANGE", "z", "[b", "(d", "BYLEX"]), ["b", "c"]);
    assert_eq!(
        c.strings(&["ZRANGE", "z", "+", "[c", "BYLEX", "REV"]),
        ["e", "d", "c"]
    );
    assert!(c.strings(&["ZRANGE", "nokey", "0", "-1"]).is_empty());
    for (args, text) in [
        (
            &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"][..],
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            &["ZRANGE", "z", "a", "b", "BYLEX", "WITHSCORES"],
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (
            &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
            "ERR syntax error",
        ),
        (
            &["ZRANGE", "z", "0", "-1", "LIMIT", "1"],
            "ERR syntax error",
        ),
        (
            &["ZRANGE", "z", "a", "b", "BYSCORE"],
            "ERR min or max is not a float",
        ),
        (
            &["ZRANGE", "z", "a", "b", "BYLEX"],
            "ERR min or max not valid string range item",
        ),
        (
            &["ZRANGE", "z", "a", "b"],
            "ERR value is not an integer or out of range",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
    c.ok(&["SET", "s", "x"]);
    assert_eq!(c.err(&["ZRANGE", "s", "0", "-1"]), WRONGTYPE);
}

#[test]
fn legacy_range_commands() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(
        c.strings(&[
            "ZRANGEBYSCORE",
            "z",
            "-inf",
            "+inf",
            "WITHSCORES",
            "LIMIT",
            "1",
            "2"
        ]),
        ["b", "2", "c", "3"]
    );
    assert_eq!(
        c.err(&["ZRANGEBYSCORE", "z", "0", "1", "REV"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.strings(&["ZREVRANGEBYSCORE", "z", "5", "(2", "LIMIT", "1", "1"]),
        ["d"]
    );
    assert_eq!(
        c.strings(&["ZREVRANGE", "z", "0", "1", "WITHSCORES"]),
        ["e", "5", "d", "4"]
    );
    assert_eq!(
        c.err(&["ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    c.int(&[
        "ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e",
    ]);
    assert_eq!(
        c.strings(&["ZRANGEBYLEX", "l", "(a", "[d", "LIMIT", "1", "2"]),
        ["c", "d"]
    );
    assert_eq!(
        c.strings(&["ZREVRANGEBYLEX", "l", "[d", "(a"]),
        ["d", "c", "b"]
    );
    assert_eq!(
        c.err(&["ZRANGEBYLEX", "l", "a", "b"]),
        "ERR min or max not valid string range item"
    );
    assert_eq!(
        c.err(&["ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"]),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
}

#[test]
fn zrangestore_stores_or_deletes() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(
        c.int(&[
            "ZRANGESTORE",
            "d",
            "z",
            "(1",
            "+inf",
            "BYSCORE",
            "LIMIT",
            "0",
            "2"
        ]),
        2
    );
    assert_eq!(
        c.strings(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
        ["b", "2", "c", "3"]
    );
    assert_eq!(
        c.err(&["ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"]),
        "ERR syntax error"
    );
    assert_eq!(c.int(&["ZRANGESTORE", "d", "nokey", "0", "-1"]), 0);
    assert_eq!(c.int(&["EXISTS", "d"]), 0);
}

#[test]
fn zrank_and_zrevrank_with_optional_withscore() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(c.int(&["ZRANK", "z", "c"]), 2);
    assert_eq!(c.int(&["ZREVRANK", "z", "c"]), 2);
    assert_eq!(c.int(&["ZREVRANK", "z", "e"]), 0);
    assert_eq!(c.v(&["ZRANK", "z", "nope"]), Value::Nil);
    assert_eq!(c.v(&["ZRANK", "nokey", "a"]), Value::Nil);
    assert_eq!(
        c.v(&["ZRANK", "z", "b", "WITHSCORE"]),
        Value::Array(vec![Value::Int(1), Value::BulkString(b"2".to_vec())])
    );
    assert_eq!(c.v(&["ZREVRANK", "z", "nope", "WITHSCORE"]), Value::Nil);
    assert_eq!(c.err(&["ZRANK", "z", "b", "x"]), "ERR syntax error");
}

#[test]
fn zpopmin_and_zpopmax() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(c.strings(&["ZPOPMIN", "z"]), ["a", "1"]);
    assert_eq!(c.strings(&["ZPOPMAX", "z", "2"]), ["e", "5", "d", "4"]);
    assert!(c.strings(&["ZPOPMIN", "z", "0"]).is_empty());
    assert_eq!(
        c.err(&["ZPOPMIN", "z", "-1"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(c.err(&["ZPOPMIN", "z", "1", "2"]), "ERR syntax error");
    assert!(c.strings(&["ZPOPMIN", "nokey"]).is_empty());
    assert_eq!(c.strings(&["ZPOPMIN", "z", "10"]), ["b", "2", "c", "3"]);
    assert_eq!(c.int(&["EXISTS", "z"]), 0);
}

#[test]
fn zrandmember_counts_and_errors() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    let all: BTreeSet<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
    let one = c.bulk(&["ZRANDMEMBER", "z"]).unwrap();
    assert!(all.contains(&one));
    let three = c.strings(&["ZRANDMEMBER", "z", "3"]);
    assert_eq!(three.iter().collect::<BTreeSet<_>>().len(), 3);
    assert_eq!(
        sorted(c.strings(&["ZRANDMEMBER", "z", "10"])),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(c.strings(&["ZRANDMEMBER", "z", "-7"]).len(), 7);
    let pairs = c.strings(&["ZRANDMEMBER", "z", "2", "WITHSCORES"]);
    assert_eq!(pairs.len(), 4);
    assert_eq!(c.bulk(&["ZRANDMEMBER", "nokey"]), None);
    assert!(c.strings(&["ZRANDMEMBER", "nokey", "2"]).is_empty());
    assert_eq!(c.err(&["ZRANDMEMBER", "z", "1", "foo"]), "ERR syntax error");
    assert_eq!(
        c.err(&["ZRANDMEMBER", "z", "a"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"]),
        "ERR value is out of range"
    );
    assert!(c
        .err(&["ZRANDMEMBER", "z", "-100000000"])
        .starts_with("ERR value is out of range"));
}

#[test]
fn zremrangeby_score_rank_and_lex() {
    let node = Node::start();
    let mut c = node.client();
    setup(&mut c);
    assert_eq!(c.int(&["ZREMRANGEBYSCORE", "z", "(1", "2"]), 1);
    assert_eq!(c.int(&["ZREMRANGEBYRANK", "z", "-1", "-1"]), 1);
    assert_eq!(c.strings(&["ZRANGE", "z", "0", "-1"]), ["a", "c", "d"]);
    assert_eq!(
        c.err(&["ZREMRANGEBYSCORE", "z", "a", "b"]),
        "ERR min or max is not a float"
    );
    assert_eq!(
        c.err(&["ZREMRANGEBYRANK", "z", "a", "b"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["ZREMRANGEBYLEX", "z", "a", "b"]),
        "ERR min or max not valid string range item"
    );
    c.int(&["ZADD", "l", "0", "a", "0", "b", "0", "c"]);
    assert_eq!(c.int(&["ZREMRANGEBYLEX", "l", "[a", "(c"]), 2);
    assert_eq!(c.int(&["ZREMRANGEBYLEX", "nokey", "-", "+"]), 0);
}

#[test]
fn zunionstore_zinterstore_zdiffstore() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
    c.int(&["ZADD", "z2", "10", "b", "20", "c", "30", "d"]);
    c.int(&["SADD", "s1", "a", "d", "x"]);
    assert_eq!(c.int(&["ZUNIONSTORE", "d", "2", "z1", "z2"]), 4);
    assert_eq!(
        c.strings(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
        ["a", "1", "b", "12", "c", "23", "d", "30"]
    );
    assert_eq!(
        c.int(&[
            "ZUNIONSTORE",
            "d",
            "2",
            "z1",
            "z2",
            "WEIGHTS",
            "2",
            "3",
            "AGGREGATE",
            "MAX"
        ]),
        4
    );
    assert_eq!(
        c.strings(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
        ["a", "2", "b", "30", "c", "60", "d", "90"]
    );
    assert_eq!(
        c.int(&["ZINTERSTORE", "d", "2", "z1", "z2", "AGGREGATE", "MIN"]),
        2
    );
    assert_eq!(
        c.strings(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
        ["b", "2", "c", "3"]
    );
    assert_eq!(
        c.int(&["ZUNIONSTORE", "d", "2", "z1", "s1", "WEIGHTS", "1", "5"]),
        5
    );
    assert_eq!(c.bulk(&["ZSCORE", "d", "a"]).as_deref(), Some("6"));
    assert_eq!(c.int(&["ZDIFFSTORE", "d", "2", "z1", "z2"]), 1);
    assert_eq!(
        c.strings(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
        ["a", "1"]
    );
    assert_eq!(c.int(&["ZINTERSTORE", "d", "2", "z1", "nokey"]), 0);
    assert_eq!(c.int(&["EXISTS", "d"]), 0);
    for (args, text) in [
        (
            &["ZUNIONSTORE", "d", "0", "z1"][..],
            "ERR at least 1 input key is needed for 'zunionstore' command",
        ),
        (
            &["ZINTERSTORE", "d", "0", "z1"],
            "ERR at least 1 input key is needed for 'zinterstore' command",
        ),
        (
            &["ZDIFFSTORE", "d", "0", "z1"],
            "ERR at least 1 input key is needed for 'zdiffstore' command",
        ),
        (&["ZUNIONSTORE", "d", "2", "z1"], "ERR syntax error"),
        (
            &["ZUNIONSTORE", "d", "1", "z1", "WEIGHTS"],
            "ERR syntax error",
        ),
        (
            &["ZUNIONSTORE", "d", "1", "z1", "WEIGHTS", "a"],
            "ERR weight value is not a float",
        ),
        (
            &["ZUNIONSTORE", "d", "1", "z1", "AGGREGATE", "foo"],
            "ERR syntax error",
        ),
        (
            &["ZDIFFSTORE", "d", "1", "z1", "WEIGHTS", "1"],
            "ERR syntax error",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
    c.ok(&["SET", "str", "x"]);
    assert_eq!(c.err(&["ZUNIONSTORE", "d", "1", "str"]), WRONGTYPE);
}

#[test]
fn zscan_visits_every_member_with_its_score() {
    let node = Node::start();
    let mut c = node.client();
    for i in 0..50 {
        c.int(&["ZADD", "z", &i.to_string(), &format!("m{i}")]);
    }
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    loop {
        let Value::Array(parts) = c.v(&["ZSCAN", "z", &cursor, "COUNT", "7"]) else {
            panic!()
        };
        let Value::BulkString(next) = &parts[0] else {
            panic!()
        };
        let items = support::client::strings_of(parts[1].clone());
        for pair in items.chunks(2) {
            assert_eq!(pair[0], format!("m{}", pair[1]));
            seen.insert(pair[0].clone());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 50);
    let Value::Array(parts) = c.v(&["ZSCAN", "z", "0", "MATCH", "m1", "COUNT", "100"]) else {
        panic!()
    };
    assert_eq!(support::client::strings_of(parts[1].clone()), ["m1", "1"]);
    assert_eq!(
        c.err(&["ZSCAN", "z", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
}

#[test]
fn resp3_scores_are_doubles_and_withscores_pairs_nest() {
    let node = Node::start();
    let mut raw = node.connect();
    raw.call_str(&["HELLO", "3"]);
    raw.call_str(&["ZADD", "z", "1", "a", "2.5", "b"]);
    assert_eq!(raw.call_text(&["ZSCORE", "z", "b"]), ",2.5\r\n");
    assert_eq!(raw.call_text(&["ZSCORE", "z", "x"]), "_\r\n");
    assert_eq!(
        raw.call_text(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    );
    assert_eq!(raw.call_text(&["ZPOPMIN", "z"]), "*2\r\n$1\r\na\r\n,1\r\n");
    assert_eq!(
        raw.call_text(&["ZPOPMIN", "z", "1"]),
        "*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    );
    raw.call_str(&["ZADD", "z", "3", "c"]);
    assert_eq!(
        raw.call_text(&["ZSCAN", "z", "0"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    );
    assert_eq!(raw.call_text(&["ZINCRBY", "z", "1", "c"]), ",4\r\n");
    assert_eq!(
        raw.call_text(&["ZADD", "z", "XX", "INCR", "1", "q"]),
        "_\r\n"
    );
    assert_eq!(
        raw.call_text(&["ZRANK", "z", "c", "WITHSCORE"]),
        "*2\r\n:0\r\n,4\r\n"
    );
    assert_eq!(raw.call_text(&["ZRANK", "z", "q", "WITHSCORE"]), "_\r\n");
}

// ----- ZUNION, ZINTER, ZDIFF, ZINTERCARD -----

/// A reply's strings, nested arrays flattened in order.
fn flat(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.into_iter().flat_map(flat).collect(),
        other => support::client::strings_of(Value::Array(vec![other])),
    }
}

#[test]
fn zunion_zinter_zdiff_reply_with_weights_aggregate_and_withscores() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
    c.int(&["ZADD", "z2", "10", "b", "20", "c", "30", "d"]);
    c.int(&["SADD", "s", "a", "d"]);
    assert_eq!(
        flat(c.v(&["ZUNION", "2", "z1", "z2", "WITHSCORES"])),
        ["a", "1", "b", "12", "c", "23", "d", "30"]
    );
    assert_eq!(
        c.strings(&["ZUNION", "2", "z1", "z2"]),
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        flat(c.v(&[
            "ZINTER",
            "2",
            "z1",
            "z2",
            "WEIGHTS",
            "1",
            "2",
            "AGGREGATE",
            "MIN",
            "WITHSCORES"
        ])),
        ["b", "2", "c", "3"]
    );
    // A plain set's members score 1.
    assert_eq!(
        flat(c.v(&["ZUNION", "2", "s", "z1", "AGGREGATE", "MAX", "WITHSCORES"])),
        ["a", "1", "d", "1", "b", "2", "c", "3"]
    );
    assert_eq!(
        flat(c.v(&["ZDIFF", "2", "z1", "z2", "WITHSCORES"])),
        ["a", "1"]
    );
    assert_eq!(
        c.strings(&["ZINTER", "2", "z1", "missing"]),
        Vec::<String>::new()
    );
    // inf + -inf is 0 in a sum, as in Redis.
    c.int(&["ZADD", "inf", "+inf", "p", "-inf", "n"]);
    assert_eq!(
        flat(c.v(&[
            "ZUNION",
            "2",
            "inf",
            "inf",
            "WEIGHTS",
            "1",
            "-1",
            "WITHSCORES"
        ])),
        ["n", "0", "p", "0"]
    );
    assert_eq!(
        flat(c.v(&["ZINTER", "1", "inf", "WEIGHTS", "0", "WITHSCORES"])),
        ["n", "0", "p", "0"]
    );
}

#[test]
fn zintercard_counts_up_to_its_limit() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
    c.int(&["ZADD", "z2", "1", "a", "2", "b", "3", "c", "4", "d"]);
    assert_eq!(c.int(&["ZINTERCARD", "2", "z1", "z2"]), 3);
    assert_eq!(c.int(&["ZINTERCARD", "2", "z1", "z2", "LIMIT", "2"]), 2);
    assert_eq!(c.int(&["ZINTERCARD", "2", "z1", "z2", "LIMIT", "0"]), 3);
    assert_eq!(c.int(&["ZINTERCARD", "2", "z1", "nothing"]), 0);
    assert_eq!(
        c.err(&["ZINTERCARD", "2", "z1", "z2", "LIMIT", "-1"]),
        "ERR LIMIT can't be negative"
    );
    assert_eq!(
        c.err(&["ZINTERCARD", "2", "z1", "z2", "LIMIT", "x"]),
        "ERR LIMIT can't be negative"
    );
    assert_eq!(
        c.err(&["ZINTERCARD", "1", "z1", "WITHSCORES"]),
        "ERR syntax error"
    );
}

#[test]
fn set_operations_refuse_bad_arguments_with_redis_texts() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["ZADD", "z", "1", "a"]);
    c.ok(&["SET", "str", "x"]);
    for name in ["zunion", "zinter", "zdiff", "zintercard"] {
        assert_eq!(
            c.err(&[name, "0", "z"]),
            format!("ERR at least 1 input key is needed for '{name}' command")
        );
        assert_eq!(c.err(&[name, "3", "z"]), "ERR syntax error");
        assert_eq!(
            c.err(&[name, "x", "z"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(c.err(&[name, "2", "z", "str"]), WRONGTYPE);
    }
    assert_eq!(
        c.err(&["ZUNION", "1", "z", "WEIGHTS", "nan"]),
        "ERR weight value is not a float"
    );
    assert_eq!(c.err(&["ZUNION", "1", "z", "WEIGHTS"]), "ERR syntax error");
    assert_eq!(
        c.err(&["ZUNION", "1", "z", "AGGREGATE"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["ZUNION", "1", "z", "AGGREGATE", "AVG"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["ZDIFF", "1", "z", "WEIGHTS", "1"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["ZUNIONSTORE", "d", "1", "z", "WITHSCORES"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["ZUNION", "1", "z", "LIMIT", "1"]),
        "ERR syntax error"
    );
}

// ----- ZMPOP, BZPOPMIN, BZPOPMAX, BZMPOP -----

#[test]
fn zmpop_pops_from_the_first_non_empty_sorted_set() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(
        flat(c.v(&["ZMPOP", "2", "none", "z", "MAX", "COUNT", "2"])),
        ["z", "c", "3", "b", "2"]
    );
    assert_eq!(flat(c.v(&["ZMPOP", "1", "z", "min"])), ["z", "a", "1"]);
    assert_eq!(c.int(&["EXISTS", "z"]), 0);
    let mut raw = node.connect();
    assert_eq!(raw.call_str(&["ZMPOP", "1", "z", "MIN"]), b"*-1\r\n");
    let numkeys = "ERR numkeys should be greater than 0";
    assert_eq!(c.err(&["ZMPOP", "0", "z", "MIN"]), numkeys);
    assert_eq!(c.err(&["ZMPOP", "x", "z", "MIN"]), numkeys);
    assert_eq!(c.err(&["ZMPOP", "1", "z", "MID"]), "ERR syntax error");
    assert_eq!(c.err(&["ZMPOP", "2", "z", "MIN"]), "ERR syntax error");
    assert_eq!(
        c.err(&["ZMPOP", "1", "z", "MIN", "COUNT", "0"]),
        "ERR count should be greater than 0"
    );
    c.ok(&["SET", "str", "x"]);
    assert_eq!(c.err(&["ZMPOP", "2", "str", "z", "MIN"]), WRONGTYPE);
    assert_eq!(c.err(&["BZPOPMIN", "str", "0"]), WRONGTYPE);
    assert_eq!(c.err(&["BZPOPMIN", "z", "-1"]), "ERR timeout is negative");
    assert_eq!(
        c.err(&["BZMPOP", "nan", "1", "z", "MIN"]),
        "ERR timeout is not a float or out of range"
    );
}

#[test]
fn bzpop_replies_flat_and_zmpop_nested_in_both_protocols() {
    let node = Node::start();
    let mut raw = node.connect();
    raw.call_str(&["ZADD", "z", "-1", "a", "0.1", "b", "1e17", "c"]);
    assert_eq!(
        raw.call_text(&["BZPOPMIN", "z", "0"]),
        "*3\r\n$1\r\nz\r\n$1\r\na\r\n$2\r\n-1\r\n"
    );
    raw.call_str(&["HELLO", "3"]);
    assert_eq!(
        raw.call_text(&["BZPOPMAX", "z", "0"]),
        "*3\r\n$1\r\nz\r\n$1\r\nc\r\n,1e+17\r\n"
    );
    assert_eq!(
        raw.call_text(&["ZMPOP", "1", "z", "MIN"]),
        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n,0.10000000000000001\r\n"
    );
    assert_eq!(raw.call_text(&["BZMPOP", "0.01", "1", "z", "MIN"]), "_\r\n");
    assert_eq!(raw.call_text(&["BZPOPMIN", "z", "0.01"]), "_\r\n");
}

/// Waits until the node counts `n` blocked clients (at most 5 s).
fn wait_blocked(node: &Node, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while node.state().blocked_clients() != n {
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {n} blocked clients"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn blocked_zset_pops_are_served_in_blocking_order() {
    let node = Node::start();
    let mut waiters = Vec::new();
    let commands: [&[&str]; 3] = [
        &["BZPOPMIN", "q", "5"],
        &["BZMPOP", "5", "1", "q", "MAX", "COUNT", "2"],
        &["BZPOPMAX", "other", "q", "5"],
    ];
    for (i, command) in commands.into_iter().enumerate() {
        let url = node.url();
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        waiters.push(std::thread::spawn(move || {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            flat(Conn::open(&url).v(&args))
        }));
        wait_blocked(&node, i + 1);
    }
    let mut c = node.client();
    assert_eq!(
        c.int(&["ZADD", "q", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]),
        5
    );
    // Served before ZADD's reply, first blocked first.
    assert_eq!(c.strings(&["ZRANGE", "q", "0", "-1"]), ["b"]);
    let got: Vec<Vec<String>> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(got[0], ["q", "a", "1"]);
    assert_eq!(got[1], ["q", "e", "5", "d", "4"]);
    assert_eq!(got[2], ["q", "c", "3"]);
}
