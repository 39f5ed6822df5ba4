//! The stream family over a real socket, with the `redis` client crate,
//! against an in-process node on `127.0.0.1:0`. Replies and error texts
//! were compared with a real `redis-server` 7.0 while writing these tests
//! (the tests need no Redis). Auto IDs differ from Redis's by design: their
//! `seq` carries the origin's tag (docs/semantics.md, "Streams").
//!
//! covers: xadd xrange xrevrange xlen xdel xtrim xsetid xread xreadgroup xack xclaim xautoclaim xpending xgroup xinfo

use std::thread;
use std::time::{Duration, Instant};

use redis::Value;

mod support;

use support::client::Conn;
use support::Node;

/// Flattens a reply to its leaf strings (for compact comparisons).
fn flat(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        Value::Map(pairs) => pairs
            .iter()
            .flat_map(|(k, v)| flat(k).into_iter().chain(flat(v)))
            .collect(),
        Value::BulkString(b) => vec![String::from_utf8(b.clone()).unwrap()],
        Value::SimpleString(s) => vec![s.clone()],
        Value::Int(n) => vec![n.to_string()],
        Value::Nil => vec!["(nil)".into()],
        other => panic!("unexpected {other:?}"),
    }
}

fn q(c: &mut Conn, args: &[&str]) -> Vec<String> {
    flat(&c.v(args))
}

#[test]
fn xadd_ids_ranges_and_errors_follow_redis() {
    let node = Node::start();
    let mut c = node.client();
    let a = c.bulk(&["XADD", "s", "*", "f", "1"]).unwrap();
    let b = c.bulk(&["XADD", "s", "*", "f", "2"]).unwrap();
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    assert!(parse(&a) < parse(&b), "auto IDs increase: {a} {b}");
    assert_eq!(c.int(&["XLEN", "s"]), 2);
    assert_eq!(
        q(&mut c, &["XRANGE", "s", "-", "+"]),
        vec![&a[..], "f", "1", &b, "f", "2"]
    );
    assert_eq!(
        q(&mut c, &["XREVRANGE", "s", "+", "-", "COUNT", "1"]),
        vec![&b[..], "f", "2"]
    );
    assert_eq!(
        q(&mut c, &["XRANGE", "s", &format!("({a}"), "+"]),
        vec![&b[..], "f", "2"]
    );
    assert_eq!(c.v(&["XRANGE", "s", "-", "+", "COUNT", "0"]), Value::Nil);
    // Explicit and ms-* IDs behave as in Redis.
    assert_eq!(
        c.bulk(&["XADD", "e", "123-456", "a", "1"]).as_deref(),
        Some("123-456")
    );
    assert_eq!(
        c.bulk(&["XADD", "e", "123-*", "a", "2"]).as_deref(),
        Some("123-457")
    );
    assert_eq!(
        c.err(&["XADD", "e", "100-1", "a", "3"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        c.err(&["XADD", "z", "0-0", "a", "3"]),
        "ERR The ID specified in XADD must be greater than 0-0"
    );
    assert_eq!(
        c.err(&["XADD", "e", "abc", "a", "3"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        c.err(&["XADD", "e", "*", "a"]),
        "ERR wrong number of arguments for 'xadd' command"
    );
    assert_eq!(
        c.v(&["XADD", "nope", "NOMKSTREAM", "*", "a", "1"]),
        Value::Nil
    );
    assert_eq!(c.int(&["EXISTS", "nope"]), 0);
    assert_eq!(c.status(&["TYPE", "s"]), "stream");
    assert_eq!(
        c.bulk(&["OBJECT", "ENCODING", "s"]).as_deref(),
        Some("stream")
    );
    c.ok(&["SET", "str", "v"]);
    assert!(c
        .err(&["XADD", "str", "*", "a", "1"])
        .starts_with("WRONGTYPE"));
}

#[test]
fn xdel_xtrim_and_xsetid_keep_the_metadata() {
    let node = Node::start();
    let mut c = node.client();
    for i in 1..=10 {
        c.bulk(&["XADD", "s", &format!("{i}-0"), "f", &i.to_string()]);
    }
    assert_eq!(c.int(&["XDEL", "s", "1-0", "2-0", "99-0"]), 2);
    assert_eq!(c.int(&["XTRIM", "s", "MAXLEN", "5"]), 3);
    assert_eq!(c.int(&["XTRIM", "s", "MINID", "7"]), 1);
    assert_eq!(c.int(&["XLEN", "s"]), 4);
    assert_eq!(
        c.bulk(&["XADD", "s", "MAXLEN", "2", "11-0", "f", "11"])
            .as_deref(),
        Some("11-0")
    );
    assert_eq!(q(&mut c, &["XRANGE", "s", "-", "+"])[0], "10-0");
    assert_eq!(
        c.err(&["XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "-1"]),
        "ERR The LIMIT argument must be >= 0."
    );
    assert_eq!(
        c.err(&["XTRIM", "s", "MAXLEN", "1", "LIMIT", "10"]),
        "ERR syntax error, LIMIT cannot be used without the special ~ option"
    );
    assert_eq!(
        c.err(&["XSETID", "s", "5-0"]),
        "ERR The ID specified in XSETID is smaller than the target stream top item"
    );
    c.ok(&[
        "XSETID",
        "s",
        "50-0",
        "ENTRIESADDED",
        "100",
        "MAXDELETEDID",
        "9-0",
    ]);
    let info = q(&mut c, &["XINFO", "STREAM", "s"]);
    let field = |name: &str| info[info.iter().position(|x| x == name).unwrap() + 1].clone();
    assert_eq!(field("last-generated-id"), "50-0");
    assert_eq!(field("entries-added"), "100");
    assert_eq!(field("max-deleted-entry-id"), "9-0");
    assert_eq!(c.err(&["XSETID", "missing", "1-0"]), "ERR no such key");
}

#[test]
fn consumer_groups_deliver_ack_claim_and_report() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(
        c.err(&["XGROUP", "CREATE", "s", "g", "$"]),
        "BUSYGROUP Consumer Group name already exists"
    );
    for i in 1..=3 {
        c.bulk(&["XADD", "s", &format!("{i}-0"), "f", &i.to_string()]);
    }
    assert_eq!(
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                ">"
            ]
        ),
        vec!["s", "1-0", "f", "1", "2-0", "f", "2"]
    );
    assert_eq!(
        q(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]
        ),
        vec!["s", "3-0", "f", "3"]
    );
    assert_eq!(
        q(&mut c, &["XPENDING", "s", "g"]),
        vec!["3", "1-0", "3-0", "alice", "2", "bob", "1"]
    );
    assert_eq!(c.int(&["XACK", "s", "g", "1-0", "1-0"]), 1);
    // History: alice's own pending entries.
    assert_eq!(
        q(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"]
        ),
        vec!["s", "2-0", "f", "2"]
    );
    assert_eq!(
        q(&mut c, &["XCLAIM", "s", "g", "bob", "0", "2-0", "JUSTID"]),
        vec!["2-0"]
    );
    assert_eq!(
        q(
            &mut c,
            &[
                "XAUTOCLAIM",
                "s",
                "g",
                "carol",
                "0",
                "0-0",
                "COUNT",
                "10",
                "JUSTID"
            ]
        ),
        vec!["0-0", "2-0", "3-0"]
    );
    let pending = q(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "carol"]);
    assert_eq!(pending[0], "2-0");
    assert_eq!(pending[1], "carol");
    assert_eq!(c.int(&["XGROUP", "CREATECONSUMER", "s", "g", "dave"]), 1);
    assert_eq!(c.int(&["XGROUP", "DELCONSUMER", "s", "g", "carol"]), 2);
    c.ok(&["XGROUP", "SETID", "s", "g", "0"]);
    let groups = q(&mut c, &["XINFO", "GROUPS", "s"]);
    assert_eq!(
        &groups[..8],
        &[
            "name",
            "g",
            "consumers",
            "3",
            "pending",
            "0",
            "last-delivered-id",
            "0-0"
        ]
    );
    let consumers = q(&mut c, &["XINFO", "CONSUMERS", "s", "g"]);
    assert!(consumers.contains(&"dave".to_string()));
    assert!(q(&mut c, &["XINFO", "STREAM", "s", "FULL"]).contains(&"groups".to_string()));
    assert_eq!(c.int(&["XGROUP", "DESTROY", "s", "g"]), 1);
    assert!(c
        .err(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"])
        .starts_with("NOGROUP No such key 's' or consumer group 'g'"));
    assert!(c
        .err(&["XGROUP", "SETID", "s", "g", "0"])
        .starts_with("NOGROUP No such consumer group 'g'"));
}

#[test]
fn a_blocking_xread_with_dollar_wakes_for_the_next_entry_only() {
    let node = Node::start();
    let mut c = node.client();
    c.bulk(&["XADD", "s", "1-0", "f", "old"]);
    let url = node.url();
    let reader = thread::spawn(move || {
        let mut r = Conn::open(&url);
        let started = Instant::now();
        let reply = flat(&r.v(&["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"]));
        (reply, started.elapsed())
    });
    thread::sleep(Duration::from_millis(200));
    c.bulk(&["XADD", "s", "2-0", "f", "new"]);
    let (reply, waited) = reader.join().unwrap();
    assert_eq!(reply, vec!["s", "2-0", "f", "new"]);
    assert!(waited < Duration::from_secs(4), "woken by the XADD");
    // A timed-out read answers nil.
    assert_eq!(
        c.v(&["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]),
        Value::Nil
    );
    assert_eq!(
        c.err(&["XREAD", "STREAMS", "s", "t", "0"]),
        "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
    );
}

#[test]
fn a_blocked_group_reader_learns_that_its_stream_was_deleted() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let url = node.url();
    let reader = thread::spawn(move || {
        let mut r = Conn::open(&url);
        r.err(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "5000",
            "STREAMS",
            "s",
            ">",
        ])
    });
    thread::sleep(Duration::from_millis(200));
    c.int(&["DEL", "s"]);
    assert_eq!(
        reader.join().unwrap(),
        "UNBLOCKED the stream key no longer exists"
    );
}

#[test]
fn copy_and_rename_keep_entries_ids_and_groups() {
    let node = Node::start();
    let mut c = node.client();
    c.bulk(&["XADD", "s", "5-1", "f", "v"]);
    c.ok(&["XGROUP", "CREATE", "s", "g", "0"]);
    assert_eq!(c.int(&["COPY", "s", "t"]), 1);
    c.ok(&["RENAME", "s", "u"]);
    for key in ["t", "u"] {
        assert_eq!(q(&mut c, &["XRANGE", key, "-", "+"]), vec!["5-1", "f", "v"]);
        assert_eq!(q(&mut c, &["XINFO", "GROUPS", key])[1], "g");
    }
}

/// A stream that arrives whole (RENAME, COPY) owes its groups nothing: its
/// group state already says what was read, so `>` does not hand out
/// entries the group delivered (and acknowledged) before the move.
#[test]
fn a_renamed_or_copied_stream_does_not_redeliver_what_its_groups_read() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]);
    for id in ["1-1", "2-1", "3-1"] {
        c.bulk(&["XADD", "s", id, "f", "v"]).unwrap();
    }
    let read = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
    );
    assert_eq!(
        read.iter().filter(|w| w.ends_with("-1")).count(),
        3,
        "{read:?}"
    );
    assert_eq!(c.int(&["XACK", "s", "g", "1-1", "2-1", "3-1"]), 3);
    assert_eq!(c.int(&["COPY", "s", "copied"]), 1);
    c.ok(&["RENAME", "s", "moved"]);
    for key in ["moved", "copied"] {
        assert_eq!(
            c.v(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", key, ">"]),
            Value::Nil,
            "{key}"
        );
    }
    // New entries still flow.
    c.bulk(&["XADD", "moved", "4-1", "f", "v"]).unwrap();
    let next = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "moved", ">"],
    );
    assert!(next.contains(&"4-1".to_string()), "{next:?}");
}
