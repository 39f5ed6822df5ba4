//! DUMP/RESTORE against a real `redis-server` (7.0): every type, in its
//! small and large encodings, DUMPed by Redis and RESTOREd into cordis,
//! and DUMPed by cordis and RESTOREd into Redis, with every value compared
//! and Redis's OBJECT ENCODING of what cordis wrote checked. Skipped, with
//! a message, when no `redis-server` is on the PATH (CI installs one).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Value;

mod support;

use support::client::Conn;
use support::Node;

/// A `redis-server` child on a loopback port, killed (by its PID) on drop,
/// with its own directory, removed after it.
struct RedisServer {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_redis() -> Option<RedisServer> {
    start_redis_with(&[])
}

/// [`start_redis`] with extra command-line arguments.
fn start_redis_with(extra: &[&str]) -> Option<RedisServer> {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: no redis-server on the PATH; the cross test needs one");
        return None;
    }
    // A free port picked by the OS, released just before Redis binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Its own directory, so no dump.rdb lying in the working directory
    // (cordis writes its snapshot under that name) is loaded.
    let dir =
        std::env::temp_dir().join(format!("cordis-cross-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir for redis-server");
    let child = Command::new("redis-server")
        .args([
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let server = RedisServer { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}

fn query(c: &mut Conn, args: &[&[u8]]) -> Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c.0)
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

fn dump(c: &mut Conn, key: &str) -> Vec<u8> {
    match query(c, &[b"DUMP", key.as_bytes()]) {
        Value::BulkString(b) => b,
        other => panic!("DUMP {key} replied {other:?}"),
    }
}

fn restore(c: &mut Conn, key: &str, payload: &[u8]) {
    assert_eq!(
        query(c, &[b"RESTORE", key.as_bytes(), b"0", payload, b"REPLACE"]),
        Value::Okay,
        "RESTORE {key}"
    );
}

/// A key's whole value in a comparable form (sets and hashes sorted).
fn read(c: &mut Conn, key: &str) -> Vec<Vec<u8>> {
    let kind = match query(c, &[b"TYPE", key.as_bytes()]) {
        Value::SimpleString(s) => s,
        other => panic!("TYPE replied {other:?}"),
    };
    let items = |v: Value| -> Vec<Vec<u8>> {
        match v {
            Value::Array(items) | Value::Set(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::BulkString(b) => b,
                    other => panic!("element {other:?}"),
                })
                .collect(),
            Value::BulkString(b) => vec![b],
            other => panic!("reply {other:?}"),
        }
    };
    let k = key.as_bytes();
    let mut out = match kind.as_str() {
        "string" => items(query(c, &[b"GET", k])),
        "list" => items(query(c, &[b"LRANGE", k, b"0", b"-1"])),
        "set" => {
            let mut m = items(query(c, &[b"SMEMBERS", k]));
            m.sort();
            m
        }
        "hash" => {
            let flat = items(query(c, &[b"HGETALL", k]));
            let mut pairs: Vec<Vec<u8>> = flat
                .chunks(2)
                .map(|p| [&p[0][..], b"=", &p[1][..]].concat())
                .collect();
            pairs.sort();
            pairs
        }
        "zset" => items(query(c, &[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"])),
        other => panic!("type {other}"),
    };
    out.insert(0, kind.into_bytes());
    out
}

/// The same data on any server, through ordinary commands.
fn fill(c: &mut Conn) {
    let mut run = |args: &[&str]| {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        query(c, &bytes);
    };
    run(&["SET", "str", "bar"]);
    run(&["SET", "int", "-12345"]);
    run(&["SET", "bigint", "9223372036854775807"]);
    run(&["SET", "long", &"lzf compressible text ".repeat(100)]);
    run(&[
        "RPUSH",
        "list",
        "a",
        "1",
        "-300",
        "70000",
        "b",
        "4611686018427387904",
    ]);
    run(&["SADD", "intset", "3", "1", "-2", "100000", "-9000000000"]);
    run(&["SADD", "set", "x", "y", "1"]);
    run(&["HSET", "hash", "f", "v", "n", "12"]);
    run(&[
        "ZADD", "zset", "1", "a", "2.5", "b", "inf", "c", "-inf", "d", "0.1", "e", "-0.75", "f",
        "1e300", "g",
    ]);
    for chunk in 0..10 {
        let mut list = vec!["RPUSH".to_string(), "biglist".into()];
        let mut set = vec!["SADD".to_string(), "bigset".into()];
        let mut ints = vec!["SADD".to_string(), "bigintset".into()];
        let mut hash = vec!["HSET".to_string(), "bighash".into()];
        let mut zset = vec!["ZADD".to_string(), "bigzset".into()];
        for i in chunk * 100..(chunk + 1) * 100 {
            list.push(format!("list item {i}"));
            set.push(format!("m{i}"));
            ints.push(i.to_string());
            hash.extend([format!("field{i}"), format!("value {i}")]);
            zset.extend([format!("{}", i as f64 / 7.0), format!("m{i}")]);
        }
        for cmd in [list, set, ints, hash, zset] {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            run(&args);
        }
    }
    run(&["HSET", "widehash", "f", &"x".repeat(100)]);
    run(&["RPUSH", "biglist", &"y".repeat(20_000)]);
    run(&["PFADD", "hll", "a", "b", "c", "d", "e"]);
    run(&["SETBIT", "bits", "12345", "1"]);
}

const KEYS: &[&str] = &[
    "str",
    "int",
    "bigint",
    "long",
    "list",
    "intset",
    "set",
    "hash",
    "zset",
    "biglist",
    "bigset",
    "bigintset",
    "bighash",
    "bigzset",
    "widehash",
    "hll",
    "bits",
];

#[test]
fn payloads_move_between_redis_and_cordis_both_ways() {
    let Some(redis_server) = start_redis() else {
        return;
    };
    let node = Node::start();
    let mut cordis = node.client();
    let mut redis = Conn::open(&format!("redis://127.0.0.1:{}/", redis_server.port));
    fill(&mut redis);
    for key in KEYS {
        let expected = read(&mut redis, key);
        let payload = dump(&mut redis, key);
        restore(&mut cordis, key, &payload);
        assert_eq!(read(&mut cordis, key), expected, "Redis → cordis: {key}");
        let back = dump(&mut cordis, key);
        let copy = format!("{key}:from-cordis");
        restore(&mut redis, &copy, &back);
        assert_eq!(read(&mut redis, &copy), expected, "cordis → Redis: {key}");
    }
    // Redis counts the restored HyperLogLog and keeps the encodings it
    // would have chosen itself.
    assert_eq!(
        query(&mut redis, &[b"PFCOUNT", b"hll:from-cordis"]),
        Value::Int(5)
    );
    assert_eq!(query(&mut cordis, &[b"PFCOUNT", b"hll"]), Value::Int(5));
    for (key, encoding) in [
        ("hash", "listpack"),
        ("bighash", "hashtable"),
        ("widehash", "hashtable"),
        ("intset", "intset"),
        ("bigintset", "hashtable"),
        ("set", "hashtable"),
        ("zset", "listpack"),
        ("bigzset", "skiplist"),
        ("list", "quicklist"),
        ("biglist", "quicklist"),
        ("int", "int"),
    ] {
        let copy = format!("{key}:from-cordis");
        let got = query(&mut redis, &[b"OBJECT", b"ENCODING", copy.as_bytes()]);
        assert_eq!(
            got,
            Value::BulkString(encoding.as_bytes().to_vec()),
            "{key}"
        );
    }
    // Byte-identical where nothing is LZF-compressed or a non-integral
    // score (cordis's LZF matcher and score text differ from Redis's, the
    // values never do).
    for key in ["str", "int", "bigint", "hash", "set"] {
        assert_eq!(dump(&mut cordis, key), dump(&mut redis, key), "{key}");
    }
    drop(redis_server);
}

#[test]
fn a_redis_server_replica_of_cordis_loads_its_rdb_and_follows_its_writes() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "before", "1"]);
    c.int(&["RPUSH", "list", "a", "b", "c"]);
    c.int(&["SADD", "set", "x", "y", "z"]);
    c.v(&["XADD", "stream", "1-1", "f", "v"]);
    c.ok(&["XGROUP", "CREATE", "stream", "g", "0"]);
    let port = node.addr.port().to_string();
    let Some(redis) = start_redis_with(&["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    let mut r = Conn::open(&format!("redis://127.0.0.1:{}/", redis.port));
    let wait_for = |r: &mut Conn, key: &str, want: Option<&str>| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = r.bulk(&["GET", key]);
            if got.as_deref() == want {
                return;
            }
            assert!(Instant::now() < deadline, "{key}: {got:?}, want {want:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&mut r, "before", Some("1"));
    // Writes after the sync, including ones sent as their effects: a
    // random pop, a float increment, a relative TTL, a transaction.
    let popped = c.bulk(&["SPOP", "set"]).expect("a member");
    c.bulk(&["INCRBYFLOAT", "f", "1.5"]);
    c.int(&["EXPIRE", "list", "500"]);
    c.v(&["XADD", "stream", "2-1", "f", "w"]);
    c.v(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "stream", ">"]);
    c.ok(&["MULTI"]);
    c.v(&["LPOP", "list"]);
    c.v(&["SET", "after", "2"]);
    c.v(&["EXEC"]);
    wait_for(&mut r, "after", Some("2"));
    assert_eq!(r.int(&["XLEN", "stream"]), 2);
    assert_eq!(
        r.v(&["XPENDING", "stream", "g"]),
        c.v(&["XPENDING", "stream", "g"])
    );
    assert_eq!(r.bulk(&["GET", "f"]).as_deref(), Some("1.5"));
    assert_eq!(r.strings(&["LRANGE", "list", "0", "-1"]), ["b", "c"]);
    let ttl = r.int(&["TTL", "list"]);
    assert!((490..=500).contains(&ttl), "{ttl}");
    let mut members = r.strings(&["SMEMBERS", "set"]);
    members.sort();
    let mut want = c.strings(&["SMEMBERS", "set"]);
    want.sort();
    assert_eq!(members, want);
    assert!(!members.contains(&popped));
    c.int(&["DEL", "before"]);
    wait_for(&mut r, "before", None);
}

/// XINFO STREAM FULL without the radix-tree sizes (Redis's internal node
/// counts, which cordis only estimates).
fn stream_info(c: &mut Conn, key: &str) -> Vec<Value> {
    let Value::Array(items) = query(c, &[b"XINFO", b"STREAM", key.as_bytes(), b"FULL"]) else {
        panic!("XINFO STREAM {key}");
    };
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let name = &pair[0];
        if let Value::BulkString(n) = name {
            if n.starts_with(b"radix-tree") {
                continue;
            }
        }
        out.extend(pair.iter().cloned());
    }
    out
}

/// The same stream on any server: entries with changing fields, an XDEL,
/// two groups (one with a PEL over two consumers, one idle consumer).
fn fill_stream(c: &mut Conn, key: &str, with_delete: bool) {
    let mut run = |args: &[&str]| {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        query(c, &bytes);
    };
    for i in 1..=150 {
        let id = format!("{i}-1");
        let value = format!("value {i}");
        if i % 10 == 0 {
            run(&["XADD", key, &id, "other", &value, "n", "12"]);
        } else {
            run(&["XADD", key, &id, "f", &value]);
        }
    }
    if with_delete {
        run(&["XDEL", key, "3-1", "120-1"]);
    }
    run(&["XGROUP", "CREATE", key, "grp", "0"]);
    run(&["XGROUP", "CREATE", key, "late", "$"]);
    run(&["XGROUP", "CREATECONSUMER", key, "grp", "idle"]);
    run(&[
        "XREADGROUP",
        "GROUP",
        "grp",
        "alice",
        "COUNT",
        "3",
        "STREAMS",
        key,
        ">",
    ]);
    run(&[
        "XREADGROUP",
        "GROUP",
        "grp",
        "bob",
        "COUNT",
        "2",
        "STREAMS",
        key,
        ">",
    ]);
    run(&["XACK", key, "grp", "2-1"]);
}

#[test]
fn streams_move_between_redis_and_cordis_both_ways() {
    let Some(redis_server) = start_redis() else {
        return;
    };
    let node = Node::start();
    let mut cordis = node.client();
    let mut redis = Conn::open(&format!("redis://127.0.0.1:{}/", redis_server.port));
    for c in [&mut cordis, &mut redis] {
        query(c, &[b"CONFIG", b"SET", b"rdbcompression", b"no"]);
    }
    for (key, with_delete) in [("plain", false), ("deleted", true)] {
        fill_stream(&mut redis, key, with_delete);
        let expected = stream_info(&mut redis, key);
        let payload = dump(&mut redis, key);
        restore(&mut cordis, key, &payload);
        assert_eq!(
            stream_info(&mut cordis, key),
            expected,
            "Redis → cordis: {key}"
        );
        let back = dump(&mut cordis, key);
        if !with_delete {
            // Nothing cordis does not keep: Redis's bytes exactly.
            assert_eq!(back, payload, "{key}: byte-identical DUMP");
        }
        let copy = format!("{key}:from-cordis");
        restore(&mut redis, &copy, &back);
        assert_eq!(
            stream_info(&mut redis, &copy),
            expected,
            "cordis → Redis: {key}"
        );
        // And cordis's own round trip.
        let again = format!("{key}:again");
        restore(&mut cordis, &again, &back);
        assert_eq!(
            stream_info(&mut cordis, &again),
            expected,
            "cordis → cordis: {key}"
        );
    }
    // A stream built in cordis moves to Redis and reads the same there.
    fill_stream(&mut cordis, "native", true);
    let payload = dump(&mut cordis, "native");
    restore(&mut redis, "native", &payload);
    assert_eq!(
        stream_info(&mut redis, "native"),
        stream_info(&mut cordis, "native")
    );
    // Hostile payloads: a wrong checksum, a truncation, a forged count.
    let good = dump(&mut cordis, "native");
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut truncated = good[..good.len() / 2].to_vec();
    truncated.extend_from_slice(&good[good.len() - 10..]);
    let reply = |c: &mut Conn, payload: &[u8]| -> String {
        let mut cmd = redis::cmd("RESTORE");
        cmd.arg("hostile").arg(0).arg(payload);
        match cmd.query::<Value>(&mut c.0) {
            Err(e) => e.to_string(),
            Ok(v) => format!("{v:?}"),
        }
    };
    assert!(reply(&mut cordis, &bad_crc).contains("DUMP payload version or checksum are wrong"));
    // The truncated body with a fixed-up checksum reads as bad data.
    let body_len = truncated.len() - 8;
    let crc = cordis::rdb::crc64::crc64(0, &truncated[..body_len]);
    truncated[body_len..].copy_from_slice(&crc.to_le_bytes());
    assert!(reply(&mut cordis, &truncated).contains("Bad data format"));
    drop(redis_server);
}

#[test]
fn a_redis_rdb_file_imports_with_every_type_deadlines_databases_and_functions() {
    let Some(redis_server) = start_redis() else {
        return;
    };
    let mut r = Conn::open(&format!("redis://127.0.0.1:{}/", redis_server.port));
    fill(&mut r);
    fill_stream(&mut r, "stream", true);
    query(&mut r, &[b"SET", b"ttl", b"x", b"EX", b"100000"]);
    query(&mut r, &[b"SELECT", b"2"]);
    query(&mut r, &[b"SET", b"in-db-2", b"y"]);
    query(&mut r, &[b"SELECT", b"0"]);
    let lib = b"#!lua name=imported\nredis.register_function('imported_f', function() return 'from redis' end)";
    query(&mut r, &[b"FUNCTION", b"LOAD", lib]);
    assert_eq!(query(&mut r, &[b"SAVE"]), Value::Okay);
    let file = redis_server.dir.join("dump.rdb");

    let node = Node::with(cordis::config::Config {
        import_rdb: Some(file),
        ..cordis::config::Config::default()
    });
    let mut c = node.client();
    for key in KEYS.iter().filter(|k| !["hll", "bits"].contains(k)) {
        assert_eq!(read(&mut c, key), read(&mut r, key), "{key}");
    }
    for key in ["hll", "bits"] {
        assert_eq!(
            query(&mut c, &[b"GET", key.as_bytes()]),
            query(&mut r, &[b"GET", key.as_bytes()]),
            "{key}"
        );
    }
    assert_eq!(stream_info(&mut c, "stream"), stream_info(&mut r, "stream"));
    assert_eq!(
        query(&mut c, &[b"XRANGE", b"stream", b"-", b"+"]),
        query(&mut r, &[b"XRANGE", b"stream", b"-", b"+"])
    );
    let Value::Int(ttl) = query(&mut c, &[b"TTL", b"ttl"]) else {
        panic!("TTL is an integer");
    };
    assert!((99_000..=100_000).contains(&ttl), "deadline kept: {ttl}");
    query(&mut c, &[b"SELECT", b"2"]);
    assert_eq!(
        query(&mut c, &[b"GET", b"in-db-2"]),
        Value::BulkString(b"y".to_vec())
    );
    assert_eq!(
        query(&mut c, &[b"FCALL", b"imported_f", b"0"]),
        Value::BulkString(b"from redis".to_vec())
    );
}
