//! SORT/SORT_RO and the key copies (COPY, MOVE, SWAPDB) over a real socket
//! with the `redis` client crate (and a raw client for RESP3 shapes),
//! against an in-process node on `127.0.0.1:0`. Replies and error texts
//! were compared with a real `redis-server` 7.0 while writing these tests
//! (the tests need no Redis).
//!
//! covers: sort sort_ro copy move swapdb

use redis::Value;

mod support;

use support::client::Conn;
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_A_DOUBLE: &str = "ERR One or more scores can't be converted into double";
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

fn rpush(c: &mut Conn, key: &str, values: &[&str]) {
    let mut args = vec!["RPUSH", key];
    args.extend_from_slice(values);
    c.int(&args);
}

#[test]
fn sort_orders_numbers_then_bytes_and_windows_with_limit() {
    let node = Node::start();
    let mut c = node.client();
    rpush(&mut c, "l", &["3", "1", "2", "10", "1.5", "-inf", "01"]);
    // Equal scores (1 and 01) fall back to comparing the elements' bytes.
    assert_eq!(
        c.strings(&["SORT", "l"]),
        ["-inf", "01", "1", "1.5", "2", "3", "10"]
    );
    assert_eq!(
        c.strings(&["SORT", "l", "DESC"]),
        ["10", "3", "2", "1.5", "1", "01", "-inf"]
    );
    assert_eq!(
        c.strings(&["SORT", "l", "ALPHA"]),
        ["-inf", "01", "1", "1.5", "10", "2", "3"]
    );
    assert_eq!(c.strings(&["SORT", "l", "LIMIT", "1", "2"]), ["01", "1"]);
    assert_eq!(c.strings(&["SORT", "l", "LIMIT", "5", "-1"]), ["3", "10"]);
    assert_eq!(
        c.strings(&["SORT", "l", "LIMIT", "-10", "2"]),
        ["-inf", "01"]
    );
    assert!(c.strings(&["SORT", "l", "LIMIT", "7", "10"]).is_empty());
    assert_eq!(
        c.strings(&["SORT", "l", "LIMIT", "6", "9223372036854775807"]),
        ["10"]
    );
    assert!(c.strings(&["SORT", "missing"]).is_empty());
    rpush(&mut c, "bad", &["1", "x"]);
    assert_eq!(c.err(&["SORT", "bad"]), NOT_A_DOUBLE);
    for text in ["nan", "1e400", "7 "] {
        c.int(&["DEL", "bad"]);
        rpush(&mut c, "bad", &[text]);
        assert_eq!(c.err(&["SORT", "bad"]), NOT_A_DOUBLE, "{text}");
    }
    // strtod's reading: leading spaces, hex, and the empty string (0).
    c.int(&["DEL", "odd"]);
    rpush(&mut c, "odd", &["0x10", " 3", ""]);
    assert_eq!(c.strings(&["SORT", "odd"]), ["", " 3", "0x10"]);
}

#[test]
fn sort_by_nosort_keeps_native_order_of_lists_and_sorted_sets() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["LPUSH", "testa", "2", "1", "4", "3", "5"]);
    assert_eq!(
        c.strings(&["SORT", "testa", "BY", "nosort"]),
        ["5", "3", "4", "1", "2"]
    );
    assert_eq!(
        c.strings(&["SORT", "testa", "BY", "nosort", "DESC", "LIMIT", "1", "2"]),
        ["1", "4"]
    );
    c.int(&[
        "ZADD", "z", "1", "a", "5", "b", "2", "c", "10", "d", "3", "e",
    ]);
    assert_eq!(
        c.strings(&["SORT", "z", "BY", "nosort"]),
        ["a", "c", "e", "b", "d"]
    );
    assert_eq!(
        c.strings(&["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "0", "2"]),
        ["d", "b"]
    );
    assert_eq!(
        c.strings(&["SORT", "z", "ALPHA", "DESC"]),
        ["e", "d", "c", "b", "a"]
    );
    // A set stored BY a constant is still sorted (ALPHA), so every node
    // stores the same list.
    c.int(&["SADD", "s", "b", "aa", "c", "a"]);
    assert_eq!(c.int(&["SORT", "s", "BY", "_", "STORE", "dst"]), 4);
    assert_eq!(
        c.strings(&["LRANGE", "dst", "0", "-1"]),
        ["a", "aa", "b", "c"]
    );
}

#[test]
fn sort_by_and_get_patterns_read_strings_and_hash_fields() {
    let node = Node::start();
    let mut c = node.client();
    rpush(&mut c, "ids", &["1", "2", "3"]);
    c.ok(&["MSET", "w_1", "30", "w_2", "10", "w_3", "20"]);
    c.int(&["HSET", "o_1", "name", "one", "rank", "2"]);
    c.int(&["HSET", "o_2", "name", "two", "rank", "3"]);
    c.int(&["HSET", "o_3", "name", "three", "rank", "1"]);
    assert_eq!(c.strings(&["SORT", "ids", "BY", "w_*"]), ["2", "3", "1"]);
    assert_eq!(
        c.strings(&["SORT", "ids", "BY", "o_*->rank"]),
        ["3", "1", "2"]
    );
    assert_eq!(
        c.v(&[
            "SORT",
            "ids",
            "BY",
            "w_*",
            "GET",
            "#",
            "GET",
            "o_*->name",
            "GET",
            "none_*"
        ]),
        Value::Array(vec![
            Value::BulkString(b"2".to_vec()),
            Value::BulkString(b"two".to_vec()),
            Value::Nil,
            Value::BulkString(b"3".to_vec()),
            Value::BulkString(b"three".to_vec()),
            Value::Nil,
            Value::BulkString(b"1".to_vec()),
            Value::BulkString(b"one".to_vec()),
            Value::Nil,
        ])
    );
    // A GET without `*` names no key; `->` with nothing after it is part
    // of the key name.
    c.ok(&["SET", "x:1->", "arrow"]);
    assert_eq!(
        c.v(&["SORT", "ids", "BY", "nosort", "GET", "const", "GET", "x:*->", "LIMIT", "0", "1"]),
        Value::Array(vec![Value::Nil, Value::BulkString(b"arrow".to_vec())])
    );
    // Missing weights count as 0 (numeric) or sort first (ALPHA).
    c.int(&["DEL", "w_2"]);
    assert_eq!(c.strings(&["SORT", "ids", "BY", "w_*"]), ["2", "3", "1"]);
    c.ok(&["MSET", "a_1", "b", "a_3", "a"]);
    assert_eq!(
        c.strings(&["SORT", "ids", "BY", "a_*", "ALPHA"]),
        ["2", "3", "1"]
    );
    assert_eq!(
        c.strings(&["SORT", "ids", "BY", "a_*", "ALPHA", "DESC"]),
        ["1", "3", "2"]
    );
    c.ok(&["SET", "w_2", "heavy"]);
    assert_eq!(c.err(&["SORT", "ids", "BY", "w_*"]), NOT_A_DOUBLE);
}

#[test]
fn sort_store_replaces_the_destination_with_a_list() {
    let node = Node::start();
    let mut c = node.client();
    rpush(&mut c, "l", &["3", "1", "2"]);
    c.ok(&["SET", "dst", "old"]);
    c.int(&["EXPIRE", "dst", "100"]);
    assert_eq!(c.int(&["SORT", "l", "STORE", "dst"]), 3);
    assert_eq!(c.strings(&["LRANGE", "dst", "0", "-1"]), ["1", "2", "3"]);
    assert_eq!(c.int(&["TTL", "dst"]), -1);
    // GET results are stored; a missing one as an empty string.
    c.ok(&["SET", "n_1", "one"]);
    assert_eq!(
        c.int(&["SORT", "l", "GET", "n_*", "GET", "#", "STORE", "dst"]),
        6
    );
    assert_eq!(
        c.strings(&["LRANGE", "dst", "0", "-1"]),
        ["one", "1", "", "2", "", "3"]
    );
    // An empty result deletes the destination and stores nothing.
    assert_eq!(
        c.int(&["SORT", "l", "LIMIT", "10", "10", "STORE", "dst"]),
        0
    );
    assert_eq!(c.int(&["EXISTS", "dst"]), 0);
    assert_eq!(c.int(&["SORT", "missing", "STORE", "l"]), 0);
    assert_eq!(c.int(&["EXISTS", "l"]), 0);
    assert_eq!(
        c.strings(&["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "bad", "STORE", "def"]),
        ["abc", "def"]
    );
    assert_eq!(
        c.strings(&["COMMAND", "GETKEYS", "SORT_RO", "abc"]),
        ["abc"]
    );
}

#[test]
fn sort_errors_follow_redis() {
    let node = Node::start();
    let mut c = node.client();
    rpush(&mut c, "l", &["1"]);
    c.ok(&["SET", "str", "v"]);
    c.int(&["HSET", "h", "f", "v"]);
    assert_eq!(c.err(&["SORT", "str"]), WRONGTYPE);
    assert_eq!(c.err(&["SORT", "h"]), WRONGTYPE);
    for args in [
        &["SORT", "l", "foo"][..],
        &["SORT", "l", "LIMIT", "1"],
        &["SORT", "l", "STORE"],
        &["SORT", "l", "GET"],
        &["SORT", "l", "BY"],
        &["SORT_RO", "l", "STORE", "x"],
    ] {
        assert_eq!(c.err(args), "ERR syntax error", "{args:?}");
    }
    assert_eq!(
        c.err(&["SORT", "l", "LIMIT", "x", "1"]),
        "ERR value is not an integer or out of range"
    );
    // Options are read before the key's type is checked.
    assert_eq!(c.err(&["SORT", "str", "foo"]), "ERR syntax error");
    assert_eq!(
        c.err(&["SORT"]),
        "ERR wrong number of arguments for 'sort' command"
    );
    assert_eq!(c.strings(&["SORT_RO", "l", "BY", "nosort"]), ["1"]);
}

#[test]
fn sort_get_misses_are_resp3_nulls() {
    let node = Node::start();
    let mut raw = node.connect();
    raw.call_text(&["HELLO", "3"]);
    raw.call_text(&["RPUSH", "l", "1"]);
    assert_eq!(
        raw.call_text(&["SORT", "l", "GET", "nope_*", "GET", "#"]),
        "*2\r\n_\r\n$1\r\n1\r\n"
    );
}

#[test]
fn copy_duplicates_every_type_with_its_deadline() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "v"]);
    c.int(&["EXPIRE", "s", "100"]);
    c.int(&["INCRBY", "n", "5"]);
    rpush(&mut c, "l", &["a", "b"]);
    c.int(&["SADD", "set", "x", "y"]);
    c.int(&["ZADD", "z", "1.5", "m"]);
    c.int(&["HSET", "h", "f", "v"]);
    for key in ["s", "n", "l", "set", "z", "h"] {
        assert_eq!(c.int(&["COPY", key, &format!("{key}2")]), 1, "{key}");
    }
    assert_eq!(c.bulk(&["GET", "s2"]).as_deref(), Some("v"));
    let ttl = c.int(&["TTL", "s2"]);
    assert!((1..=100).contains(&ttl), "{ttl}");
    assert_eq!(c.int(&["TTL", "l2"]), -1);
    assert_eq!(c.int(&["INCR", "n2"]), 6);
    assert_eq!(c.bulk(&["GET", "n"]).as_deref(), Some("5"));
    assert_eq!(c.strings(&["LRANGE", "l2", "0", "-1"]), ["a", "b"]);
    assert_eq!(c.int(&["SCARD", "set2"]), 2);
    assert_eq!(c.bulk(&["ZSCORE", "z2", "m"]).as_deref(), Some("1.5"));
    assert_eq!(c.bulk(&["HGET", "h2", "f"]).as_deref(), Some("v"));
    // The copy is independent of its source.
    rpush(&mut c, "l2", &["c"]);
    assert_eq!(c.int(&["LLEN", "l"]), 2);

    assert_eq!(c.int(&["COPY", "l", "s2"]), 0);
    assert_eq!(c.int(&["COPY", "nokey", "x"]), 0);
    assert_eq!(c.int(&["COPY", "l", "s2", "REPLACE"]), 1);
    assert_eq!(c.int(&["TTL", "s2"]), -1);
    assert_eq!(c.strings(&["LRANGE", "s2", "0", "-1"]), ["a", "b"]);
    assert_eq!(c.int(&["COPY", "s", "s", "DB", "3"]), 1);
    c.ok(&["SELECT", "3"]);
    assert_eq!(c.bulk(&["GET", "s"]).as_deref(), Some("v"));
    c.ok(&["SELECT", "0"]);
    for (args, text) in [
        (&["COPY", "s", "s"][..], SAME_OBJECT),
        (&["COPY", "s", "s", "DB", "0"], SAME_OBJECT),
        (
            &["COPY", "s", "t", "DB", "16"],
            "ERR DB index is out of range",
        ),
        (
            &["COPY", "s", "t", "DB", "-1"],
            "ERR DB index is out of range",
        ),
        (
            &["COPY", "s", "t", "DB", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["COPY", "s", "t", "DB", "99999999999"],
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ),
        (&["COPY", "s", "t", "DB"], "ERR syntax error"),
        (&["COPY", "s", "t", "FOO"], "ERR syntax error"),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
}

#[test]
fn move_takes_the_key_and_deadline_to_another_database() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v", "EX", "100"]);
    assert_eq!(c.int(&["MOVE", "k", "1"]), 1);
    assert_eq!(c.int(&["EXISTS", "k"]), 0);
    assert_eq!(c.int(&["MOVE", "k", "1"]), 0);
    c.ok(&["SELECT", "1"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
    let ttl = c.int(&["TTL", "k"]);
    assert!((1..=100).contains(&ttl), "{ttl}");
    // The target already holding the key refuses the move.
    c.ok(&["SELECT", "0"]);
    c.ok(&["SET", "k", "other"]);
    assert_eq!(c.int(&["MOVE", "k", "1"]), 0);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("other"));
    for (args, text) in [
        (&["MOVE", "k", "0"][..], SAME_OBJECT),
        (&["MOVE", "k", "16"], "ERR DB index is out of range"),
        (
            &["MOVE", "k", "x"],
            "ERR value is not an integer or out of range",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
}

#[test]
fn swapdb_exchanges_two_databases() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "a", "zero"]);
    rpush(&mut c, "only0", &["x"]);
    c.ok(&["SELECT", "1"]);
    c.ok(&["SET", "a", "one"]);
    c.int(&["HSET", "only1", "f", "v"]);
    c.int(&["EXPIRE", "only1", "100"]);
    c.ok(&["SWAPDB", "0", "1"]);
    assert_eq!(c.bulk(&["GET", "a"]).as_deref(), Some("zero"));
    assert_eq!(c.strings(&["LRANGE", "only0", "0", "-1"]), ["x"]);
    assert_eq!(c.int(&["EXISTS", "only1"]), 0);
    c.ok(&["SELECT", "0"]);
    assert_eq!(c.bulk(&["GET", "a"]).as_deref(), Some("one"));
    assert_eq!(c.bulk(&["HGET", "only1", "f"]).as_deref(), Some("v"));
    assert!(c.int(&["TTL", "only1"]) > 0);
    assert_eq!(c.int(&["DBSIZE"]), 2);
    c.ok(&["SWAPDB", "0", "0"]);
    assert_eq!(c.int(&["DBSIZE"]), 2);
    for (args, text) in [
        (&["SWAPDB", "0", "16"][..], "ERR DB index is out of range"),
        (&["SWAPDB", "-1", "0"], "ERR DB index is out of range"),
        (&["SWAPDB", "x", "0"], "ERR invalid first DB index"),
        (&["SWAPDB", "0", "x"], "ERR invalid second DB index"),
        (
            &["SWAPDB", "99999999999", "0"],
            "ERR invalid first DB index",
        ),
    ] {
        assert_eq!(c.err(args), text, "{args:?}");
    }
}

#[test]
fn swapdb_wakes_a_client_blocked_on_the_swapped_in_list() {
    let node = Node::start();
    let mut waiter = node.client();
    let mut c = node.client();
    c.ok(&["SELECT", "1"]);
    rpush(&mut c, "q", &["item"]);
    let blocked = std::thread::spawn(move || waiter.v(&["BLPOP", "q", "5"]));
    // Give the waiter time to block before the swap.
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.ok(&["SWAPDB", "0", "1"]);
    assert_eq!(
        blocked.join().unwrap(),
        Value::Array(vec![
            Value::BulkString(b"q".to_vec()),
            Value::BulkString(b"item".to_vec())
        ])
    );
}
