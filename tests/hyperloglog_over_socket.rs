//! The HyperLogLog family over a real socket, with the `redis` client
//! crate, against in-process nodes on `127.0.0.1:0`: replies, Redis's error
//! texts, the header's cached cardinality, sparse→dense promotion,
//! corrupted values refused without harm, two regions' PFADDs merged, and
//! (when `redis-server` is installed) GET bytes, counts and registers
//! compared byte for byte with a real Redis fed the same commands. Fixed
//! expected values below were taken from redis-server 7.0.
//!
//! covers: pfadd pfcount pfmerge pfdebug pfselftest

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Value;

mod support;

use cordis::config::Config;
use support::client::Conn;
use support::Node;

const NOT_AN_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Runs a command whose arguments may be binary.
fn raw(c: &mut Conn, args: &[&[u8]]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c.0)
}

fn get_bytes(c: &mut Conn, key: &str) -> Vec<u8> {
    match c.v(&["GET", key]) {
        Value::BulkString(b) => b,
        other => panic!("GET {key}: {other:?}"),
    }
}

fn err_of(r: redis::RedisResult<Value>) -> String {
    support::client::error_text(&r.expect_err("an error reply"))
}

/// Deterministic elements: `prefix-0`, `prefix-1`, …
fn elements(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("{prefix}-{i}")).collect()
}

fn pfadd(c: &mut Conn, key: &str, items: &[String]) -> i64 {
    let mut args = vec!["PFADD", key];
    args.extend(items.iter().map(|s| s.as_str()));
    c.int(&args)
}

#[test]
fn pfadd_and_pfcount_give_redis_replies_and_bytes() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["PFADD", "h"]), 1, "PFADD without elements creates");
    assert_eq!(c.int(&["PFADD", "h"]), 0);
    assert_eq!(c.int(&["EXISTS", "h"]), 1);
    assert_eq!(c.int(&["PFCOUNT", "h"]), 0);
    assert_eq!(c.int(&["PFADD", "h", "a", "b", "c"]), 1);
    assert_eq!(c.int(&["PFADD", "h", "a", "b", "c"]), 0);
    assert_eq!(c.int(&["PFADD", "h", ""]), 1);
    // Redis unshares a value PFADD touches into a raw string.
    assert_eq!(c.bulk(&["OBJECT", "ENCODING", "h"]).unwrap(), "raw");
    assert_eq!(c.int(&["DEL", "h"]), 1);
}

#[test]
fn sparse_bytes_and_decode_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["PFADD", "h", "a", "b", "c", "d", "e", "f", "g"]), 1);
    assert_eq!(c.int(&["PFCOUNT", "h"]), 7);
    // Redis 7.0.15's bytes for the same PFADD and PFCOUNT.
    let mut expected = b"HYLL\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00".to_vec();
    expected.extend_from_slice(b"Fm\x80V\x0c\x80D<\x848\x80P\xb1\x84I\x8c\x80Bm\x80BZ");
    assert_eq!(get_bytes(&mut c, "h"), expected);
    assert_eq!(
        c.bulk(&["PFDEBUG", "DECODE", "h"]).unwrap(),
        "Z:1646 v:1,1 Z:5645 v:1,1 Z:1085 v:2,1 z:57 v:1,1 Z:4274 v:2,1 Z:2445 v:1,1 Z:622 v:1,1 Z:603"
    );
    assert_eq!(c.status(&["PFDEBUG", "ENCODING", "h"]), "sparse");
    assert_eq!(c.int(&["PFDEBUG", "TODENSE", "h"]), 1);
    assert_eq!(c.int(&["PFDEBUG", "TODENSE", "h"]), 0);
    assert_eq!(c.status(&["PFDEBUG", "ENCODING", "h"]), "dense");
    assert_eq!(get_bytes(&mut c, "h").len(), 16 + 12288);
    assert_eq!(
        err_of(c.try_query(&["PFDEBUG", "DECODE", "h"])),
        "ERR HLL encoding is not sparse"
    );
    assert_eq!(c.int(&["PFCOUNT", "h"]), 7);
    let registers = c.v(&["PFDEBUG", "GETREG", "h"]);
    let Value::Array(regs) = registers else {
        panic!("GETREG: {registers:?}")
    };
    assert_eq!(regs.len(), 16384);
    assert_eq!(regs[1646], Value::Int(1));
    assert_eq!(regs[0], Value::Int(0));
}

#[test]
fn the_cached_cardinality_lives_in_byte_15() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["PFADD", "h", "a", "b", "c"]);
    assert_eq!(get_bytes(&mut c, "h")[15], 0x80, "stale after PFADD");
    assert_eq!(c.int(&["PFCOUNT", "h"]), 3);
    assert_eq!(get_bytes(&mut c, "h")[8..16], [3, 0, 0, 0, 0, 0, 0, 0]);
    c.int(&["PFADD", "h", "a", "b", "c"]);
    assert_eq!(get_bytes(&mut c, "h")[15], 0, "no change keeps the cache");
    c.int(&["PFADD", "h", "1", "2", "3"]);
    assert_eq!(get_bytes(&mut c, "h")[15], 0x80);
    // A value SET with a valid cache answers from it, as in Redis.
    let mut forged = get_bytes(&mut c, "h");
    forged[8..16].copy_from_slice(&42u64.to_le_bytes());
    raw(&mut c, &[b"SET", b"h", &forged]).unwrap();
    assert_eq!(c.int(&["PFCOUNT", "h"]), 42);
}

#[test]
fn counts_union_and_merge() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["PFADD", "h1", "a", "b", "c"]);
    c.int(&["PFADD", "h2", "b", "c", "d"]);
    c.int(&["PFADD", "h3", "c", "d", "e"]);
    assert_eq!(c.int(&["PFCOUNT", "h1", "h2", "h3", "missing"]), 5);
    c.ok(&["PFMERGE", "h", "h1", "h2", "h3"]);
    assert_eq!(c.int(&["PFCOUNT", "h"]), 5);
    c.ok(&["PFMERGE", "empty", "nothing1", "nothing2"]);
    assert_eq!(c.int(&["PFCOUNT", "empty"]), 0);
    c.ok(&["PFMERGE", "only"]);
    assert_eq!(c.int(&["EXISTS", "only"]), 1);
    c.ok(&["PFMERGE", "h1", "h1"]);
    assert_eq!(c.int(&["PFCOUNT", "h1"]), 3);
    // Larger sets stay within Redis's error bound.
    pfadd(&mut c, "big", &elements("x", 0, 20000));
    let n = c.int(&["PFCOUNT", "big"]);
    assert!((n - 20000).abs() < 20000 / 50, "estimate {n}");
}

#[test]
fn type_and_argument_errors_use_redis_texts() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "bar"]);
    c.int(&["LPUSH", "l", "x"]);
    c.int(&["PFADD", "h", "a"]);
    assert_eq!(c.err(&["PFADD", "s", "1"]), NOT_AN_HLL);
    assert_eq!(c.err(&["PFCOUNT", "s"]), NOT_AN_HLL);
    assert_eq!(c.err(&["PFCOUNT", "h", "s"]), NOT_AN_HLL);
    assert_eq!(c.err(&["PFMERGE", "h", "s"]), NOT_AN_HLL);
    assert_eq!(c.err(&["PFMERGE", "s", "h"]), NOT_AN_HLL);
    assert_eq!(c.err(&["PFADD", "l", "1"]), WRONGTYPE);
    assert_eq!(c.err(&["PFCOUNT", "l"]), WRONGTYPE);
    assert_eq!(
        c.err(&["PFDEBUG", "GETREG", "nokey"]),
        "ERR The specified key does not exist"
    );
    assert_eq!(
        c.err(&["PFDEBUG", "Nope", "h"]),
        "ERR Unknown PFDEBUG subcommand 'Nope'"
    );
    assert_eq!(
        c.err(&["PFDEBUG", "GETREG"]),
        "ERR wrong number of arguments for 'pfdebug' command"
    );
    assert_eq!(
        c.err(&["PFADD"]),
        "ERR wrong number of arguments for 'pfadd' command"
    );
    assert_eq!(
        c.err(&["PFSELFTEST", "x"]),
        "ERR wrong number of arguments for 'pfselftest' command"
    );
    assert_eq!(c.get_str("s"), "bar", "a refused PFADD changes nothing");
}

trait GetStr {
    fn get_str(&mut self, key: &str) -> String;
}

impl GetStr for Conn {
    fn get_str(&mut self, key: &str) -> String {
        self.bulk(&["GET", key]).unwrap()
    }
}

#[test]
fn corrupted_values_are_refused_not_crashed_on() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["PFADD", "h", "a", "b", "c"]);
    c.int(&["APPEND", "h", "hello"]);
    assert_eq!(c.err(&["PFCOUNT", "h"]), CORRUPT);
    c.int(&["DEL", "h"]);
    c.int(&["PFADD", "h", "a", "b", "c"]);
    c.int(&["SETRANGE", "h", "0", "0123"]);
    assert_eq!(c.err(&["PFCOUNT", "h"]), NOT_AN_HLL);
    c.int(&["DEL", "h"]);
    c.int(&["PFADD", "h", "a", "b", "c"]);
    c.int(&["SETRANGE", "h", "4", "x"]);
    assert_eq!(c.err(&["PFCOUNT", "h"]), NOT_AN_HLL);
    c.int(&["DEL", "h"]);
    c.int(&["PFADD", "h", "a", "b", "c"]);
    raw(&mut c, &[b"SETRANGE", b"h", b"4", b"\x00"]).unwrap();
    assert_eq!(
        c.err(&["PFCOUNT", "h"]),
        NOT_AN_HLL,
        "dense of wrong length"
    );
    // A sparse body claiming far more than 16384 registers.
    let mut huge = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
    huge.extend(std::iter::repeat_n([0x7f, 0xff], 100).flatten());
    raw(&mut c, &[b"SET", b"bad", &huge]).unwrap();
    assert_eq!(c.err(&["PFCOUNT", "bad"]), CORRUPT);
    assert_eq!(c.err(&["PFCOUNT", "bad", "h2"]), CORRUPT);
    assert_eq!(c.err(&["PFMERGE", "d", "bad"]), CORRUPT);
    assert_eq!(c.err(&["PFDEBUG", "TODENSE", "bad"]), CORRUPT);
    // Random corruption of real values: every reply is a count or an error.
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        c.int(&["DEL", "f"]);
        let n = (next() % 3000) as usize;
        pfadd(&mut c, "f", &elements(&format!("r{round}"), 0, n));
        let mut value = get_bytes(&mut c, "f");
        for _ in 0..1 + next() % 5 {
            let at = (next() as usize) % value.len();
            value[at] = next() as u8;
        }
        raw(&mut c, &[b"SET", b"f", &value]).unwrap();
        match c.try_query(&["PFCOUNT", "f"]) {
            Ok(Value::Int(_)) => {}
            Ok(other) => panic!("PFCOUNT replied {other:?}"),
            Err(e) => {
                let text = support::client::error_text(&e);
                assert!(text == CORRUPT || text == NOT_AN_HLL, "{text}");
            }
        }
        let _ = c.try_query(&["PFADD", "f", "more", "elements"]);
    }
    assert_eq!(c.status(&["PING"]), "PONG");
}

#[test]
fn sparse_values_turn_dense_past_hll_sparse_max_bytes() {
    let node = Node::start();
    let mut c = node.client();
    pfadd(&mut c, "h", &elements("e", 0, 500));
    assert_eq!(c.status(&["PFDEBUG", "ENCODING", "h"]), "sparse");
    pfadd(&mut c, "h", &elements("e", 500, 20000));
    assert_eq!(c.status(&["PFDEBUG", "ENCODING", "h"]), "dense");
    c.ok(&["CONFIG", "SET", "hll-sparse-max-bytes", "100"]);
    pfadd(&mut c, "small", &elements("e", 0, 100));
    assert_eq!(c.status(&["PFDEBUG", "ENCODING", "small"]), "dense");
    assert_eq!(
        c.strings(&["CONFIG", "GET", "hll-sparse-max-bytes"]),
        vec!["hll-sparse-max-bytes", "100"]
    );
}

#[test]
fn pfselftest_passes() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["PFSELFTEST"]);
}

/// Two peered nodes; PFADDs on each count on both.
#[test]
fn pfadds_in_two_regions_all_count() {
    let listeners: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let config = Config {
            peers: vec![addrs[1 - i].clone()],
            peer_secret: "hll-test-secret".into(),
            peer_heartbeat_ms: 100,
            reconnect_max_ms: 200,
            ..Config::default()
        };
        nodes.push(Node::member(config, Some(listener)));
    }
    let mut a = nodes[0].client();
    let mut b = nodes[1].client();
    pfadd(&mut a, "visitors", &elements("eu", 0, 300));
    pfadd(&mut b, "visitors", &elements("us", 0, 300));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ga, gb) = (get_bytes(&mut a, "visitors"), get_bytes(&mut b, "visitors"));
        let both = a.int(&["PFCOUNT", "visitors", "none"]);
        if ga == gb && (both - 600).abs() <= 12 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "regions did not converge: count {both}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ----- against a real redis-server, when one is installed -----

struct RedisServer {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A redis-server on a Unix socket in a fresh directory (no TCP port), or
/// `None` when none is installed.
fn redis_server() -> Option<(RedisServer, Conn)> {
    let dir = std::env::temp_dir().join(format!("cordis-hll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let socket = dir.join("redis.sock");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no"])
        .arg("--unixsocket")
        .arg(&socket)
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = RedisServer { child, dir };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = redis::Client::open(format!("redis+unix://{}", socket.display())).ok()?;
    let con = client.get_connection().ok()?;
    con.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    Some((server, Conn(con)))
}

#[test]
fn bytes_counts_and_registers_match_a_real_redis_server() {
    let Some((_server, mut redis)) = redis_server() else {
        eprintln!("skipped: no redis-server installed to compare with");
        return;
    };
    let node = Node::start();
    let mut c = node.client();
    let same = |c: &mut Conn, r: &mut Conn, args: &[&str]| {
        let ours = c.try_query(args);
        let theirs = r.try_query(args);
        match (&ours, &theirs) {
            (Ok(o), Ok(t)) => assert_eq!(o, t, "{args:?}"),
            (Err(o), Err(t)) => assert_eq!(
                support::client::error_text(o),
                support::client::error_text(t),
                "{args:?}"
            ),
            _ => panic!("{args:?}: cordis {ours:?}, redis {theirs:?}"),
        }
    };
    // Growing sets, through the sparse forms, the promotion and dense.
    let mut n = 0;
    for step in [1usize, 5, 20, 50, 100, 300, 700, 1500, 4000, 10000] {
        let batch = elements("m", n, n + step);
        n += step;
        for key in ["a", "b"] {
            let mut args = vec!["PFADD", key];
            args.extend(batch.iter().map(|s| s.as_str()));
            same(&mut c, &mut redis, &args);
        }
        same(&mut c, &mut redis, &["GET", "a"]);
        same(&mut c, &mut redis, &["PFCOUNT", "a"]);
        same(&mut c, &mut redis, &["GET", "a"]);
        same(&mut c, &mut redis, &["PFCOUNT", "a", "b", "c"]);
        same(&mut c, &mut redis, &["PFDEBUG", "ENCODING", "a"]);
    }
    for i in 0..50 {
        let batch = elements(&format!("k{i}"), 0, i * 7);
        let key = format!("s{}", i % 5);
        let mut args = vec!["PFADD", key.as_str()];
        args.extend(batch.iter().map(|s| s.as_str()));
        same(&mut c, &mut redis, &args);
        same(&mut c, &mut redis, &["GET", &key]);
    }
    same(&mut c, &mut redis, &["PFMERGE", "m", "s0", "s1", "s2"]);
    same(&mut c, &mut redis, &["GET", "m"]);
    same(&mut c, &mut redis, &["PFMERGE", "m2", "s3", "a"]);
    same(&mut c, &mut redis, &["GET", "m2"]);
    same(&mut c, &mut redis, &["PFDEBUG", "DECODE", "s4"]);
    same(&mut c, &mut redis, &["PFDEBUG", "GETREG", "s4"]);
    same(&mut c, &mut redis, &["GET", "s4"]);
    // Redis's bytes SET into cordis count the same, and the other way.
    let theirs = get_bytes(&mut redis, "m");
    raw(&mut c, &[b"SET", b"copy", &theirs]).unwrap();
    assert_eq!(
        c.int(&["PFCOUNT", "copy"]),
        redis.int(&["PFCOUNT", "m"]),
        "redis bytes in cordis"
    );
    let ours = get_bytes(&mut c, "m2");
    raw(&mut redis, &[b"SET", b"copy2", &ours]).unwrap();
    assert_eq!(
        redis.int(&["PFCOUNT", "copy2"]),
        c.int(&["PFCOUNT", "m2"]),
        "cordis bytes in redis"
    );
    // Corrupted payloads: the same verdict from both.
    let mut seed: u64 = 77;
    for round in 0..200 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut value = get_bytes(&mut c, &format!("s{}", round % 5));
        let at = (seed >> 33) as usize % value.len();
        value[at] = (seed >> 20) as u8;
        for conn in [&mut c, &mut redis] {
            raw(conn, &[b"SET", b"fz", &value]).unwrap();
        }
        same(&mut c, &mut redis, &["PFCOUNT", "fz"]);
        same(&mut c, &mut redis, &["PFADD", "fz", "x", "y", "z"]);
        same(&mut c, &mut redis, &["GET", "fz"]);
    }
}
