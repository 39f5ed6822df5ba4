//! Set commands, OBJECT and the type rules shared by every collection, over
//! a real socket with the `redis` client crate against an in-process node
//! on `127.0.0.1:0`. Replies and error texts were checked against
//! redis-server 7.0 while writing these tests.
//!
//! covers: sadd srem sismember smismember smembers scard spop srandmember smove sinter sintercard sinterstore sunion sunionstore sdiff sdiffstore sscan object
//! (the line above, with its `//! covers:` prefix, feeds the coverage guard)

mod support;

use std::collections::BTreeSet;

use redis::Value;
use support::client::{sorted, Conn};
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn set_of(c: &mut Conn, key: &str) -> Vec<String> {
    sorted(c.strings(&["SMEMBERS", key]))
}

#[test]
fn sadd_counts_new_members_and_srem_counts_removed_ones() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["SADD", "s", "a", "b", "a"]), 2);
    assert_eq!(c.int(&["SADD", "s", "b", "c"]), 1);
    assert_eq!(set_of(&mut c, "s"), ["a", "b", "c"]);
    assert_eq!(c.int(&["SCARD", "s"]), 3);
    assert_eq!(c.int(&["SREM", "s", "a", "zz", "a"]), 1);
    assert_eq!(c.int(&["SISMEMBER", "s", "a"]), 0);
    assert_eq!(c.int(&["SISMEMBER", "s", "b"]), 1);
    assert_eq!(
        c.strings(&["SMISMEMBER", "s", "a", "b", "c"]),
        ["0", "1", "1"]
    );
    assert_eq!(c.status(&["TYPE", "s"]), "set");
    // Removing the last member deletes the key.
    assert_eq!(c.int(&["SREM", "s", "b", "c"]), 2);
    assert_eq!(c.int(&["EXISTS", "s"]), 0);
    assert_eq!(c.status(&["TYPE", "s"]), "none");
    assert_eq!(c.int(&["SCARD", "s"]), 0);
    assert_eq!(c.int(&["SREM", "s", "x"]), 0);
    assert!(c.strings(&["SMEMBERS", "s"]).is_empty());
}

#[test]
fn every_set_command_refuses_other_types_with_wrongtype() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "str", "x"]);
    c.int(&["SADD", "s", "a"]);
    for args in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SMEMBERS", "str"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SRANDMEMBER", "str"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "a"],
        &["SINTER", "s", "str"],
        &["SINTERCARD", "2", "s", "str"],
        &["SINTERSTORE", "d", "s", "str"],
        &["SUNION", "str"],
        &["SUNIONSTORE", "d", "str"],
        &["SDIFF", "s", "str"],
        &["SDIFFSTORE", "d", "str"],
        &["SSCAN", "str", "0"],
        // String commands refuse sets.
        &["GET", "s"],
        &["APPEND", "s", "x"],
        &["INCR", "s"],
        &["STRLEN", "s"],
        &["GETSET", "s", "x"],
    ] {
        assert_eq!(c.err(args), WRONGTYPE, "{args:?}");
    }
    // MGET answers nil for a non-string, as Redis does.
    assert_eq!(c.v(&["MGET", "s"]), Value::Array(vec![Value::Nil]));
    // SET overwrites any type.
    c.ok(&["SET", "s", "now-a-string"]);
    assert_eq!(c.status(&["TYPE", "s"]), "string");
    assert_eq!(c.bulk(&["GET", "s"]).as_deref(), Some("now-a-string"));
}

#[test]
fn spop_and_srandmember_follow_redis_counts_and_shapes() {
    let node = Node::start();
    let mut c = node.client();
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", "s"];
    args.extend(members.iter().map(|s| s.as_str()));
    assert_eq!(c.int(&args), 50);

    let one = c.bulk(&["SRANDMEMBER", "s"]).unwrap();
    assert!(members.contains(&one));
    let distinct = c.strings(&["SRANDMEMBER", "s", "10"]);
    assert_eq!(distinct.len(), 10);
    assert_eq!(distinct.iter().collect::<BTreeSet<_>>().len(), 10);
    assert_eq!(c.strings(&["SRANDMEMBER", "s", "100"]).len(), 50);
    assert_eq!(c.strings(&["SRANDMEMBER", "s", "-80"]).len(), 80);
    assert_eq!(c.int(&["SCARD", "s"]), 50, "SRANDMEMBER removes nothing");

    let popped = c.bulk(&["SPOP", "s"]).unwrap();
    assert_eq!(c.int(&["SISMEMBER", "s", &popped]), 0);
    let popped = c.strings(&["SPOP", "s", "9"]);
    assert_eq!(popped.iter().collect::<BTreeSet<_>>().len(), 9);
    assert_eq!(c.int(&["SCARD", "s"]), 40);
    assert!(c.strings(&["SPOP", "s", "0"]).is_empty());
    assert_eq!(c.strings(&["SPOP", "s", "1000"]).len(), 40);
    assert_eq!(c.int(&["EXISTS", "s"]), 0);

    assert_eq!(c.bulk(&["SPOP", "nokey"]), None);
    assert!(c.strings(&["SPOP", "nokey", "3"]).is_empty());
    assert_eq!(c.bulk(&["SRANDMEMBER", "nokey"]), None);
    assert!(c.strings(&["SRANDMEMBER", "nokey", "3"]).is_empty());

    assert_eq!(
        c.err(&["SPOP", "s", "-1"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(c.err(&["SPOP", "s", "1", "2"]), "ERR syntax error");
    assert_eq!(
        c.err(&["SPOP", "s", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["SRANDMEMBER", "s", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    c.int(&["SADD", "s", "a"]);
    assert!(c
        .err(&["SRANDMEMBER", "s", "-9223372036854775807"])
        .starts_with("ERR value is out of range"));
}

#[test]
fn smove_moves_one_member_between_sets() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["SADD", "src", "a", "b"]);
    c.int(&["SADD", "dst", "c"]);
    assert_eq!(c.int(&["SMOVE", "src", "dst", "a"]), 1);
    assert_eq!(set_of(&mut c, "src"), ["b"]);
    assert_eq!(set_of(&mut c, "dst"), ["a", "c"]);
    assert_eq!(c.int(&["SMOVE", "src", "dst", "zz"]), 0);
    assert_eq!(c.int(&["SMOVE", "nokey", "dst", "a"]), 0);
    assert_eq!(c.int(&["SMOVE", "dst", "dst", "a"]), 1);
    assert_eq!(c.int(&["SMOVE", "src", "fresh", "b"]), 1);
    assert_eq!(c.int(&["EXISTS", "src"]), 0);
    assert_eq!(set_of(&mut c, "fresh"), ["b"]);
}

#[test]
fn set_algebra_and_store_variants_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["SADD", "a", "1", "2", "3", "4"]);
    c.int(&["SADD", "b", "3", "4", "5"]);
    c.int(&["SADD", "c", "4", "6"]);
    assert_eq!(sorted(c.strings(&["SINTER", "a", "b", "c"])), ["4"]);
    assert_eq!(sorted(c.strings(&["SINTER", "a", "b"])), ["3", "4"]);
    assert!(c.strings(&["SINTER", "a", "nokey"]).is_empty());
    assert_eq!(
        sorted(c.strings(&["SUNION", "a", "b", "nokey"])),
        ["1", "2", "3", "4", "5"]
    );
    assert_eq!(sorted(c.strings(&["SDIFF", "a", "b", "c"])), ["1", "2"]);
    assert!(c.strings(&["SDIFF", "nokey", "a"]).is_empty());

    assert_eq!(c.int(&["SINTERCARD", "2", "a", "b"]), 2);
    assert_eq!(c.int(&["SINTERCARD", "2", "a", "b", "LIMIT", "1"]), 1);
    assert_eq!(c.int(&["SINTERCARD", "2", "a", "b", "limit", "0"]), 2);
    assert_eq!(
        c.err(&["SINTERCARD", "0", "a"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        c.err(&["SINTERCARD", "x", "a"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        c.err(&["SINTERCARD", "3", "a", "b"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        c.err(&["SINTERCARD", "1", "a", "LIMIT", "-1"]),
        "ERR LIMIT can't be negative"
    );
    assert_eq!(
        c.err(&["SINTERCARD", "1", "a", "LIMIT", "x"]),
        "ERR LIMIT can't be negative"
    );
    assert_eq!(c.err(&["SINTERCARD", "1", "a", "foo"]), "ERR syntax error");

    // *STORE overwrites the destination, whatever it held, and its TTL.
    c.ok(&["SET", "d", "string", "EX", "100"]);
    assert_eq!(c.int(&["SINTERSTORE", "d", "a", "b"]), 2);
    assert_eq!(set_of(&mut c, "d"), ["3", "4"]);
    assert_eq!(c.int(&["TTL", "d"]), -1);
    assert_eq!(c.int(&["SUNIONSTORE", "d", "b", "c"]), 4);
    assert_eq!(set_of(&mut c, "d"), ["3", "4", "5", "6"]);
    assert_eq!(c.int(&["SDIFFSTORE", "d", "a", "b"]), 2);
    assert_eq!(set_of(&mut c, "d"), ["1", "2"]);
    // An empty result deletes the destination.
    assert_eq!(c.int(&["SDIFFSTORE", "d", "nokey"]), 0);
    assert_eq!(c.int(&["EXISTS", "d"]), 0);
    // The destination may be one of the sources.
    assert_eq!(c.int(&["SUNIONSTORE", "a", "a", "c"]), 5);
    assert_eq!(set_of(&mut c, "a"), ["1", "2", "3", "4", "6"]);
}

#[test]
fn sscan_returns_every_member_with_match_and_count() {
    let node = Node::start();
    let mut c = node.client();
    let members: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    for chunk in members.chunks(100) {
        let mut args = vec!["SADD", "s"];
        args.extend(chunk.iter().map(|s| s.as_str()));
        c.int(&args);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = c.v(&["SSCAN", "s", &cursor, "COUNT", "25"]);
        let Value::Array(parts) = reply else {
            panic!("SSCAN replied {reply:?}")
        };
        let Value::BulkString(next) = &parts[0] else {
            panic!("cursor {parts:?}")
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        seen.extend(support::client::strings_of(parts[1].clone()));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    let reply = c.v(&["SSCAN", "s", "0", "MATCH", "m1?", "COUNT", "1000"]);
    let Value::Array(parts) = reply else { panic!() };
    assert_eq!(support::client::strings_of(parts[1].clone()).len(), 10);
    assert_eq!(c.err(&["SSCAN", "s", "x"]), "ERR invalid cursor");
    assert_eq!(
        c.err(&["SSCAN", "s", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["SSCAN", "s", "0", "TYPE", "string"]),
        "ERR syntax error"
    );
    let empty = c.v(&["SSCAN", "nokey", "0"]);
    assert_eq!(
        empty,
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
    );
}

#[test]
fn smembers_is_a_resp3_set_after_hello_3() {
    let node = Node::start();
    let mut raw = node.connect();
    let _ = raw.call_str(&["HELLO", "3"]);
    assert_eq!(raw.call_str(&["SADD", "s", "a"]), b":1\r\n");
    assert_eq!(raw.call_str(&["SMEMBERS", "s"]), b"~1\r\n$1\r\na\r\n");
}

#[test]
fn scan_type_filters_by_the_value_type() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "str", "x"]);
    c.int(&["SADD", "set", "a"]);
    let found = |c: &mut Conn, t: &str| {
        let Value::Array(parts) = c.v(&["SCAN", "0", "COUNT", "100", "TYPE", t]) else {
            panic!()
        };
        sorted(support::client::strings_of(parts[1].clone()))
    };
    assert_eq!(found(&mut c, "set"), ["set"]);
    assert_eq!(found(&mut c, "STRING"), ["str"]);
    assert!(found(&mut c, "hash").is_empty());
}

#[test]
fn rename_moves_a_set_with_its_ttl() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["SADD", "s", "a", "b"]);
    c.int(&["EXPIRE", "s", "100"]);
    c.ok(&["SET", "t", "old"]);
    c.ok(&["RENAME", "s", "t"]);
    assert_eq!(c.int(&["EXISTS", "s"]), 0);
    assert_eq!(c.status(&["TYPE", "t"]), "set");
    assert_eq!(set_of(&mut c, "t"), ["a", "b"]);
    let ttl = c.int(&["TTL", "t"]);
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(c.int(&["RENAMENX", "t", "u"]), 1);
    assert_eq!(set_of(&mut c, "u"), ["a", "b"]);
}

#[test]
fn object_reports_encodings_and_refuses_unknown_subcommands() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "n", "12345"]);
    c.ok(&["SET", "short", "hello"]);
    c.ok(&["SET", "long", &"x".repeat(100)]);
    c.int(&["SADD", "s", "a"]);
    assert_eq!(c.bulk(&["OBJECT", "ENCODING", "n"]).as_deref(), Some("int"));
    assert_eq!(
        c.bulk(&["OBJECT", "ENCODING", "short"]).as_deref(),
        Some("embstr")
    );
    assert_eq!(
        c.bulk(&["OBJECT", "ENCODING", "long"]).as_deref(),
        Some("raw")
    );
    assert_eq!(
        c.bulk(&["OBJECT", "ENCODING", "s"]).as_deref(),
        Some("hashtable")
    );
    assert_eq!(c.bulk(&["OBJECT", "ENCODING", "nokey"]), None);
    assert_eq!(c.int(&["OBJECT", "REFCOUNT", "s"]), 1);
    assert_eq!(c.int(&["OBJECT", "IDLETIME", "s"]), 0);
    assert!(c
        .err(&["OBJECT", "FREQ", "s"])
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    assert_eq!(
        c.err(&["OBJECT", "foo"]),
        "ERR unknown subcommand 'foo'. Try OBJECT HELP."
    );
    assert_eq!(
        c.err(&["OBJECT"]),
        "ERR wrong number of arguments for 'object' command"
    );
    assert!(c.strings(&["OBJECT", "HELP"])[0].starts_with("OBJECT <subcommand>"));
}
