//! Hash commands over a real socket with the `redis` client crate against
//! an in-process node on `127.0.0.1:0`: replies, RESP2/RESP3 shapes and
//! error texts, checked against redis-server 7.0 while writing these tests.
//!
//! covers: hset hsetnx hget hmget hmset hdel hexists hlen hstrlen hkeys hvals hgetall hincrby hincrbyfloat hrandfield hscan
//! (the line above, with its `//! covers:` prefix, feeds the coverage guard)

mod support;

use std::collections::{BTreeMap, BTreeSet};

use redis::Value;
use support::client::{sorted, strings_of, Conn};
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn hash_of(c: &mut Conn, key: &str) -> BTreeMap<String, String> {
    let flat = c.strings(&["HGETALL", key]);
    flat.chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

#[test]
fn hset_hget_and_friends_follow_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["HSET", "h", "a", "1", "b", "2", "a", "3"]), 2);
    assert_eq!(c.bulk(&["HGET", "h", "a"]).as_deref(), Some("3"));
    assert_eq!(c.int(&["HSET", "h", "a", "4", "c", "5"]), 1);
    assert_eq!(c.bulk(&["HGET", "h", "zz"]), None);
    assert_eq!(c.bulk(&["HGET", "nokey", "a"]), None);
    assert_eq!(c.int(&["HLEN", "h"]), 3);
    assert_eq!(c.int(&["HLEN", "nokey"]), 0);
    assert_eq!(c.int(&["HEXISTS", "h", "a"]), 1);
    assert_eq!(c.int(&["HEXISTS", "h", "zz"]), 0);
    assert_eq!(c.int(&["HEXISTS", "nokey", "a"]), 0);
    assert_eq!(
        c.strings(&["HMGET", "h", "a", "zz", "c"]),
        ["4", "(nil)", "5"]
    );
    assert_eq!(c.strings(&["HMGET", "nokey", "a", "b"]), ["(nil)", "(nil)"]);
    assert_eq!(sorted(c.strings(&["HKEYS", "h"])), ["a", "b", "c"]);
    assert_eq!(sorted(c.strings(&["HVALS", "h"])), ["2", "4", "5"]);
    assert!(c.strings(&["HKEYS", "nokey"]).is_empty());
    assert!(c.strings(&["HVALS", "nokey"]).is_empty());
    assert_eq!(
        hash_of(&mut c, "h"),
        BTreeMap::from([
            ("a".into(), "4".into()),
            ("b".into(), "2".into()),
            ("c".into(), "5".into())
        ])
    );
    assert!(hash_of(&mut c, "nokey").is_empty());
    assert_eq!(c.status(&["TYPE", "h"]), "hash");
    assert_eq!(
        c.bulk(&["OBJECT", "ENCODING", "h"]).as_deref(),
        Some("hashtable")
    );

    c.ok(&["HMSET", "h", "d", "6", "e", "7"]);
    assert_eq!(c.int(&["HLEN", "h"]), 5);
    assert_eq!(c.int(&["HSETNX", "h", "d", "x"]), 0);
    assert_eq!(c.bulk(&["HGET", "h", "d"]).as_deref(), Some("6"));
    assert_eq!(c.int(&["HSETNX", "h", "f", "x"]), 1);
    assert_eq!(c.int(&["HSETNX", "fresh", "f", "x"]), 1);
    assert_eq!(c.bulk(&["HGET", "fresh", "f"]).as_deref(), Some("x"));

    assert_eq!(c.int(&["HSTRLEN", "h", "f"]), 1);
    c.int(&["HSET", "h", "long", "hello world"]);
    assert_eq!(c.int(&["HSTRLEN", "h", "long"]), 11);
    assert_eq!(c.int(&["HSTRLEN", "h", "zz"]), 0);
    assert_eq!(c.int(&["HSTRLEN", "nokey", "zz"]), 0);
    // Empty values and binary-safe fields.
    assert_eq!(c.int(&["HSET", "h", "", ""]), 1);
    assert_eq!(c.bulk(&["HGET", "h", ""]).as_deref(), Some(""));
    assert_eq!(c.int(&["HEXISTS", "h", ""]), 1);
}

#[test]
fn hdel_counts_removed_fields_and_deletes_the_emptied_key() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(c.int(&["HDEL", "h", "a", "zz", "a"]), 1);
    assert_eq!(c.int(&["HLEN", "h"]), 2);
    assert_eq!(c.int(&["HDEL", "nokey", "a"]), 0);
    // A counter field is deleted like any other.
    c.int(&["HINCRBY", "h", "n", "5"]);
    assert_eq!(c.int(&["HDEL", "h", "n"]), 1);
    assert_eq!(c.int(&["HEXISTS", "h", "n"]), 0);
    assert_eq!(c.int(&["HINCRBY", "h", "n", "1"]), 1);
    assert_eq!(c.int(&["HDEL", "h", "b", "c", "n"]), 3);
    assert_eq!(c.int(&["EXISTS", "h"]), 0);
    assert_eq!(c.status(&["TYPE", "h"]), "none");
    assert_eq!(c.int(&["HLEN", "h"]), 0);
}

#[test]
fn arity_and_pair_errors_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    for (args, name) in [
        (&["HSET", "h"][..], "hset"),
        (&["HSET", "h", "a"], "hset"),
        (&["HSET", "h", "a", "1", "b"], "hset"),
        (&["HMSET", "h", "a"], "hmset"),
        (&["HMSET", "h", "a", "1", "b"], "hmset"),
        (&["HSETNX", "h", "a"], "hsetnx"),
        (&["HGET", "h"], "hget"),
        (&["HMGET", "h"], "hmget"),
        (&["HDEL", "h"], "hdel"),
        (&["HEXISTS", "h"], "hexists"),
        (&["HLEN"], "hlen"),
        (&["HSTRLEN", "h"], "hstrlen"),
        (&["HKEYS"], "hkeys"),
        (&["HVALS", "h", "x"], "hvals"),
        (&["HGETALL"], "hgetall"),
        (&["HINCRBY", "h", "a"], "hincrby"),
        (&["HINCRBYFLOAT", "h", "a"], "hincrbyfloat"),
        (&["HRANDFIELD"], "hrandfield"),
        (&["HSCAN", "h"], "hscan"),
    ] {
        assert_eq!(
            c.err(args),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{args:?}"
        );
    }
    assert_eq!(c.int(&["EXISTS", "h"]), 0, "refused writes leave no key");
}

#[test]
fn every_hash_command_refuses_other_types_with_wrongtype() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "str", "x"]);
    c.int(&["HSET", "h", "a", "1"]);
    for args in [
        &["HSET", "str", "a", "1"][..],
        &["HSETNX", "str", "a", "1"],
        &["HMSET", "str", "a", "1"],
        &["HGET", "str", "a"],
        &["HMGET", "str", "a"],
        &["HDEL", "str", "a"],
        &["HEXISTS", "str", "a"],
        &["HLEN", "str"],
        &["HSTRLEN", "str", "a"],
        &["HKEYS", "str"],
        &["HVALS", "str"],
        &["HGETALL", "str"],
        &["HINCRBY", "str", "a", "1"],
        &["HINCRBYFLOAT", "str", "a", "1"],
        &["HRANDFIELD", "str"],
        &["HRANDFIELD", "str", "2"],
        &["HSCAN", "str", "0"],
        // Other families refuse hashes.
        &["GET", "h"],
        &["INCR", "h"],
        &["APPEND", "h", "x"],
        &["SADD", "h", "x"],
        &["SMEMBERS", "h"],
    ] {
        assert_eq!(c.err(args), WRONGTYPE, "{args:?}");
    }
    assert_eq!(c.bulk(&["GET", "str"]).as_deref(), Some("x"));
    // Argument errors come before the type check, as in Redis.
    assert_eq!(
        c.err(&["HINCRBY", "str", "a", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["HINCRBYFLOAT", "str", "a", "inf"]),
        "ERR value is NaN or Infinity"
    );
    // SET overwrites a hash.
    c.ok(&["SET", "h", "now-a-string"]);
    assert_eq!(c.status(&["TYPE", "h"]), "string");
}

#[test]
fn hincrby_and_hincrbyfloat_follow_redis_numbers_and_errors() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(c.int(&["HINCRBY", "h", "n", "-7"]), -2);
    assert_eq!(c.bulk(&["HGET", "h", "n"]).as_deref(), Some("-2"));
    assert_eq!(c.int(&["HSTRLEN", "h", "n"]), 2);
    c.int(&["HSET", "h", "n", "10"]);
    assert_eq!(c.int(&["HINCRBY", "h", "n", "1"]), 11);

    c.int(&["HSET", "h", "s", "hello", "f", "1.5", "sp", " 1"]);
    for field in ["s", "f", "sp"] {
        assert_eq!(
            c.err(&["HINCRBY", "h", field, "1"]),
            "ERR hash value is not an integer"
        );
    }
    assert_eq!(
        c.err(&["HINCRBY", "h", "n", "x"]),
        "ERR value is not an integer or out of range"
    );
    c.int(&["HSET", "h", "big", "9223372036854775807"]);
    assert_eq!(
        c.err(&["HINCRBY", "h", "big", "1"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        c.bulk(&["HGET", "h", "big"]).as_deref(),
        Some("9223372036854775807")
    );

    assert_eq!(
        c.bulk(&["HINCRBYFLOAT", "h", "fl", "0.1"]).as_deref(),
        Some("0.1")
    );
    assert_eq!(
        c.bulk(&["HINCRBYFLOAT", "h", "fl", "0.2"]).as_deref(),
        Some("0.3")
    );
    assert_eq!(
        c.bulk(&["HINCRBYFLOAT", "h", "f", "1"]).as_deref(),
        Some("2.5")
    );
    assert_eq!(
        c.bulk(&["HINCRBYFLOAT", "h", "n", "3.0"]).as_deref(),
        Some("14")
    );
    assert_eq!(
        c.bulk(&["HINCRBYFLOAT", "h", "e", "1.5e3"]).as_deref(),
        Some("1500")
    );
    // A float result is no longer an integer.
    assert_eq!(
        c.err(&["HINCRBY", "h", "fl", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        c.err(&["HINCRBYFLOAT", "h", "s", "1"]),
        "ERR hash value is not a float"
    );
    assert_eq!(
        c.err(&["HINCRBYFLOAT", "h", "sp", "1"]),
        "ERR hash value is not a float"
    );
    assert_eq!(
        c.err(&["HINCRBYFLOAT", "h", "x", "abc"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        c.err(&["HINCRBYFLOAT", "h", "x", "nan"]),
        "ERR value is not a valid float"
    );
    for inf in ["inf", "-inf", "+Infinity"] {
        assert_eq!(
            c.err(&["HINCRBYFLOAT", "h", "x", inf]),
            "ERR value is NaN or Infinity"
        );
    }
    c.int(&["HSET", "h", "inf", "inf"]);
    assert_eq!(
        c.err(&["HINCRBYFLOAT", "h", "inf", "1"]),
        "ERR increment would produce NaN or Infinity"
    );
    assert_eq!(
        c.int(&["HEXISTS", "h", "x"]),
        0,
        "refused increments write nothing"
    );
}

#[test]
fn hrandfield_follows_redis_counts_and_shapes() {
    let node = Node::start();
    let mut c = node.client();
    let fields: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
    let mut args = vec!["HSET", "h"];
    for f in &fields {
        args.push(f);
        args.push("v");
    }
    assert_eq!(c.int(&args), 30);

    let one = c.bulk(&["HRANDFIELD", "h"]).unwrap();
    assert!(fields.contains(&one));
    let distinct = c.strings(&["HRANDFIELD", "h", "10"]);
    assert_eq!(distinct.iter().collect::<BTreeSet<_>>().len(), 10);
    let most = c.strings(&["HRANDFIELD", "h", "25"]);
    assert_eq!(most.iter().collect::<BTreeSet<_>>().len(), 25);
    assert!(most.iter().all(|f| fields.contains(f)));
    assert_eq!(c.strings(&["HRANDFIELD", "h", "100"]).len(), 30);
    assert_eq!(c.strings(&["HRANDFIELD", "h", "-50"]).len(), 50);
    assert!(c.strings(&["HRANDFIELD", "h", "0"]).is_empty());
    let with_values = c.strings(&["HRANDFIELD", "h", "5", "WITHVALUES"]);
    assert_eq!(with_values.len(), 10);
    assert!(with_values
        .chunks(2)
        .all(|p| fields.contains(&p[0]) && p[1] == "v"));
    assert_eq!(
        c.strings(&["HRANDFIELD", "h", "-7", "withvalues"]).len(),
        14
    );

    assert_eq!(c.bulk(&["HRANDFIELD", "nokey"]), None);
    assert!(c.strings(&["HRANDFIELD", "nokey", "3"]).is_empty());
    assert!(c
        .strings(&["HRANDFIELD", "nokey", "3", "WITHVALUES"])
        .is_empty());

    assert_eq!(
        c.err(&["HRANDFIELD", "h", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["HRANDFIELD", "h", "1", "WITHVALUE"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["HRANDFIELD", "h", "1", "WITHVALUES", "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["HRANDFIELD", "h", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        c.err(&["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"]),
        "ERR value is out of range"
    );
    assert_eq!(
        c.err(&["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"]),
        "ERR value is out of range"
    );
    // cordis caps huge repeated-pick counts instead of building the reply.
    assert!(c
        .err(&["HRANDFIELD", "h", "-9223372036854775807"])
        .starts_with("ERR value is out of range"));
}

#[test]
fn hgetall_and_hrandfield_use_resp3_maps_and_pairs_after_hello_3() {
    let node = Node::start();
    let mut raw = node.connect();
    let _ = raw.call_str(&["HELLO", "3"]);
    assert_eq!(raw.call_str(&["HSET", "h", "a", "1"]), b":1\r\n");
    assert_eq!(
        raw.call_str(&["HGETALL", "h"]),
        b"%1\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(raw.call_str(&["HGETALL", "nokey"]), b"%0\r\n");
    assert_eq!(
        raw.call_str(&["HRANDFIELD", "h", "1", "WITHVALUES"]),
        b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        raw.call_str(&["HRANDFIELD", "h", "-2", "WITHVALUES"]),
        b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(raw.call_str(&["HRANDFIELD", "h"]), b"$1\r\na\r\n");
    assert_eq!(raw.call_str(&["HRANDFIELD", "nokey"]), b"_\r\n");
    assert_eq!(raw.call_str(&["HGET", "h", "zz"]), b"_\r\n");
    // RESP2 flattens both.
    let mut raw2 = node.connect();
    assert_eq!(
        raw2.call_str(&["HGETALL", "h"]),
        b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        raw2.call_str(&["HRANDFIELD", "h", "1", "WITHVALUES"]),
        b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
}

#[test]
fn hscan_returns_every_field_with_match_and_count() {
    let node = Node::start();
    let mut c = node.client();
    for chunk in (0..300).collect::<Vec<_>>().chunks(100) {
        let pairs: Vec<String> = chunk
            .iter()
            .flat_map(|i| [format!("f{i}"), format!("v{i}")])
            .collect();
        let mut args = vec!["HSET", "h"];
        args.extend(pairs.iter().map(|s| s.as_str()));
        c.int(&args);
    }
    let mut seen = BTreeMap::new();
    let mut cursor = "0".to_string();
    loop {
        let Value::Array(parts) = c.v(&["HSCAN", "h", &cursor, "COUNT", "25"]) else {
            panic!("HSCAN shape")
        };
        let Value::BulkString(next) = &parts[0] else {
            panic!("cursor {parts:?}")
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        let items = strings_of(parts[1].clone());
        for p in items.chunks(2) {
            seen.insert(p[0].clone(), p[1].clone());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.iter().all(|(f, v)| f[1..] == v[1..]));
    let Value::Array(parts) = c.v(&["HSCAN", "h", "0", "MATCH", "f1?", "COUNT", "1000"]) else {
        panic!()
    };
    assert_eq!(strings_of(parts[1].clone()).len(), 20);
    assert_eq!(c.err(&["HSCAN", "h", "x"]), "ERR invalid cursor");
    assert_eq!(
        c.err(&["HSCAN", "h", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(c.err(&["HSCAN", "h", "0", "NOVALUES"]), "ERR syntax error");
    // The key is looked up before the options are read, as in Redis.
    assert_eq!(c.err(&["HSCAN", "nokey", "x"]), "ERR invalid cursor");
    c.ok(&["SET", "str", "x"]);
    assert_eq!(c.err(&["HSCAN", "str", "0", "FOO"]), WRONGTYPE);
    assert_eq!(
        c.v(&["HSCAN", "nokey", "0", "FOO"]),
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
    );
    assert_eq!(
        c.v(&["HSCAN", "nokey", "0"]),
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
    );
}

#[test]
fn hashes_expire_rename_and_delete_like_any_key() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["HSET", "h", "a", "1", "b", "2"]);
    c.int(&["HINCRBY", "h", "n", "3"]);
    c.int(&["EXPIRE", "h", "100"]);
    c.ok(&["RENAME", "h", "g"]);
    assert_eq!(c.int(&["EXISTS", "h"]), 0);
    assert_eq!(c.status(&["TYPE", "g"]), "hash");
    assert_eq!(
        hash_of(&mut c, "g"),
        BTreeMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("n".into(), "3".into())
        ])
    );
    let ttl = c.int(&["TTL", "g"]);
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(c.int(&["HINCRBY", "g", "n", "1"]), 4);
    assert_eq!(c.int(&["DEL", "g"]), 1);
    assert_eq!(
        c.int(&["HINCRBY", "g", "n", "1"]),
        1,
        "DEL reset the counter"
    );
    c.int(&["PEXPIRE", "g", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(c.int(&["HLEN", "g"]), 0);
    assert_eq!(c.int(&["HSET", "g", "z", "1"]), 1);
    assert_eq!(c.int(&["TTL", "g"]), -1);
    assert_eq!(hash_of(&mut c, "g").len(), 1);
}
