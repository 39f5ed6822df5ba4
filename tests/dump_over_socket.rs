//! DUMP and RESTORE over a real socket with the `redis` client crate,
//! against an in-process node on `127.0.0.1:0`: round trips of every type
//! and encoding, the payloads of Redis's older encodings (ziplist, zipmap,
//! intset, quicklist of ziplists, plain lists and text-score sorted sets),
//! TTL and ABSTTL, IDLETIME and FREQ, and Redis's error texts (compared
//! with a real `redis-server` 7.0 while writing them).
//!
//! covers: dump restore

use redis::Value;

mod support;

use cordis::rdb::crc64::crc64;
use support::client::Conn;
use support::Node;

const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_DATA: &str = "ERR Bad data format";

fn dump(c: &mut Conn, key: &str) -> Option<Vec<u8>> {
    match redis::cmd("DUMP").arg(key).query(&mut c.0).expect("DUMP") {
        Value::BulkString(b) => Some(b),
        Value::Nil => None,
        other => panic!("DUMP replied {other:?}"),
    }
}

fn restore(
    c: &mut Conn,
    key: &str,
    ttl: &str,
    payload: &[u8],
    options: &[&str],
) -> Result<(), String> {
    let mut cmd = redis::cmd("RESTORE");
    cmd.arg(key).arg(ttl).arg(payload);
    for o in options {
        cmd.arg(*o);
    }
    cmd.query::<Value>(&mut c.0)
        .map(|v| assert_eq!(v, Value::Okay))
        .map_err(|e| support::client::error_text(&e))
}

/// `body` (type byte and value) with the RDB version and CRC-64 footer.
fn framed(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Every read that shows a key's whole value.
fn read_all(c: &mut Conn, key: &str) -> Vec<String> {
    let kind = c.status(&["TYPE", key]);
    let mut out = vec![kind.clone()];
    out.extend(match kind.as_str() {
        // HyperLogLog bytes are not UTF-8.
        "string" => match redis::cmd("GET").arg(key).query(&mut c.0).expect("GET") {
            Value::BulkString(b) => vec![
                String::from_utf8_lossy(&b).into_owned(),
                b.len().to_string(),
            ],
            other => panic!("GET replied {other:?}"),
        },
        "list" => c.strings(&["LRANGE", key, "0", "-1"]),
        "set" => support::client::sorted(c.strings(&["SMEMBERS", key])),
        "hash" => {
            let mut pairs: Vec<String> = c
                .strings(&["HGETALL", key])
                .chunks(2)
                .map(|p| format!("{}={}", p[0], p[1]))
                .collect();
            pairs.sort();
            pairs
        }
        "zset" => c.strings(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        other => panic!("unexpected type {other}"),
    });
    out
}

fn fill(c: &mut Conn) {
    c.ok(&["SET", "str", "bar"]);
    c.ok(&["SET", "int", "-12345"]);
    c.ok(&["SET", "bigint", "123456789012345"]);
    c.ok(&["SET", "long", &"compressible ".repeat(200)]);
    c.int(&["INCRBY", "counter", "41"]);
    c.int(&["RPUSH", "list", "a", "1", "-300", "70000", "b"]);
    c.int(&["SADD", "intset", "3", "1", "-2"]);
    c.int(&["SADD", "set", "x", "y", "1"]);
    c.int(&["HSET", "hash", "f", "v", "n", "12"]);
    c.int(&["HINCRBY", "hash", "n", "5"]);
    c.int(&[
        "ZADD", "zset", "1", "a", "2.5", "b", "inf", "c", "-inf", "d", "0.1", "e",
    ]);
    for i in 0..1000 {
        let (m, v) = (format!("m{i}"), format!("value {i}"));
        c.int(&["RPUSH", "biglist", &v]);
        c.int(&["SADD", "bigset", &m]);
        c.int(&["SADD", "bigintset", &i.to_string()]);
        c.int(&["HSET", "bighash", &m, &v]);
        c.int(&["ZADD", "bigzset", &format!("{i}.25"), &m]);
    }
    c.int(&["PFADD", "hll", "a", "b", "c", "d"]);
    c.int(&["SETBIT", "bits", "1000", "1"]);
}

const KEYS: &[&str] = &[
    "str",
    "int",
    "bigint",
    "long",
    "counter",
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
    "hll",
    "bits",
];

#[test]
fn every_type_round_trips_through_dump_and_restore() {
    let node = Node::start();
    let mut c = node.client();
    fill(&mut c);
    for key in KEYS {
        let before = read_all(&mut c, key);
        let payload = dump(&mut c, key).expect("key exists");
        let copy = format!("{key}:copy");
        restore(&mut c, &copy, "0", &payload, &[]).unwrap();
        assert_eq!(read_all(&mut c, &copy), before, "{key}");
        assert_eq!(c.int(&["TTL", &copy]), -1);
        // The copy dumps to the same bytes.
        assert_eq!(dump(&mut c, &copy).unwrap(), payload, "{key}");
    }
    assert_eq!(c.int(&["PFCOUNT", "hll:copy"]), 4);
    assert_eq!(c.int(&["GETBIT", "bits:copy", "1000"]), 1);
    assert_eq!(c.int(&["INCRBY", "counter:copy", "1"]), 42);
    assert_eq!(c.int(&["PFADD", "hll:copy", "e"]), 1);
}

#[test]
fn dump_writes_redis_bytes_and_nil_for_a_missing_key() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "foo", "bar"]);
    // Byte for byte what redis-server 7.0 DUMPs for "bar".
    let expected = [
        0x00, 0x03, b'b', b'a', b'r', 0x0a, 0x00, 0xe6, 0xbe, 0x49, 0x60, 0xee, 0x66, 0xfd, 0x17,
    ];
    assert_eq!(dump(&mut c, "foo").unwrap(), expected);
    assert_eq!(dump(&mut c, "nonexisting_key"), None);
    c.int(&["SADD", "s", "1", "2"]);
    assert_eq!(dump(&mut c, "s").unwrap()[0], 11, "intset");
    c.int(&["HSET", "h", "f", "v"]);
    assert_eq!(dump(&mut c, "h").unwrap()[0], 16, "hash listpack");
    c.int(&["ZADD", "z", "1", "m"]);
    assert_eq!(dump(&mut c, "z").unwrap()[0], 17, "zset listpack");
    c.int(&["RPUSH", "l", "x"]);
    assert_eq!(dump(&mut c, "l").unwrap()[0], 18, "quicklist 2");
}

#[test]
fn restore_refuses_bad_input_with_redis_texts_in_redis_order() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "foo", "bar"]);
    let good = dump(&mut c, "foo").unwrap();
    assert_eq!(
        restore(&mut c, "foo", "0", b"...", &[]).unwrap_err(),
        "BUSYKEY Target key name already exists."
    );
    assert_eq!(
        restore(&mut c, "foo", "0", b"...", &["invalid-option"]).unwrap_err(),
        "ERR syntax error"
    );
    assert_eq!(
        restore(&mut c, "new", "0", &good, &["IDLETIME"]).unwrap_err(),
        "ERR syntax error"
    );
    assert_eq!(
        restore(&mut c, "new", "0", &good, &["IDLETIME", "x"]).unwrap_err(),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        restore(&mut c, "new", "0", &good, &["IDLETIME", "-1"]).unwrap_err(),
        "ERR Invalid IDLETIME value, must be >= 0"
    );
    assert_eq!(
        restore(&mut c, "new", "0", &good, &["FREQ", "256"]).unwrap_err(),
        "ERR Invalid FREQ value, must be >= 0 and <= 255"
    );
    assert_eq!(
        restore(&mut c, "new", "0", &good, &["IDLETIME", "1", "FREQ", "1"]).unwrap_err(),
        "ERR syntax error"
    );
    assert_eq!(
        restore(&mut c, "new", "-1", &good, &[]).unwrap_err(),
        "ERR Invalid TTL value, must be >= 0"
    );
    assert_eq!(
        restore(&mut c, "new", "1.5", &good, &[]).unwrap_err(),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        restore(&mut c, "new", "0", b"...", &[]).unwrap_err(),
        BAD_PAYLOAD
    );
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    assert_eq!(
        restore(&mut c, "new", "0", &flipped, &[]).unwrap_err(),
        BAD_PAYLOAD
    );
    assert_eq!(
        restore(&mut c, "new", "0", &framed(&good[..5], 11), &[]).unwrap_err(),
        BAD_PAYLOAD
    );
    for body in [
        &b"\x00\x09bar"[..],
        b"\x02\x00",
        b"\x0f\x00",
        b"\x63",
        b"",
        b"\x04\x01\x01f",
    ] {
        assert_eq!(
            restore(&mut c, "new", "0", &framed(body, 10), &[]).unwrap_err(),
            BAD_DATA,
            "{body:?}"
        );
    }
    assert_eq!(c.int(&["EXISTS", "new"]), 0);
    // An older RDB version is accepted.
    restore(&mut c, "old", "0", &framed(&good[..5], 9), &[]).unwrap();
    assert_eq!(c.bulk(&["GET", "old"]).unwrap(), "bar");
}

#[test]
fn restore_replace_ttl_and_absttl() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "foo", "bar1"]);
    let first = dump(&mut c, "foo").unwrap();
    c.ok(&["SET", "foo", "bar2"]);
    let second = dump(&mut c, "foo").unwrap();
    c.int(&["DEL", "foo"]);
    restore(&mut c, "foo", "0", &first, &[]).unwrap();
    restore(&mut c, "foo", "0", &second, &["REPLACE"]).unwrap();
    assert_eq!(c.bulk(&["GET", "foo"]).unwrap(), "bar2");
    restore(&mut c, "t", "5000", &first, &[]).unwrap();
    let pttl = c.int(&["PTTL", "t"]);
    assert!((3000..=5000).contains(&pttl), "{pttl}");
    restore(&mut c, "big", "2569591501", &first, &[]).unwrap();
    assert!(c.int(&["PTTL", "big"]) > 2_569_000_000);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    restore(
        &mut c,
        "abs",
        &(now + 3000).to_string(),
        &first,
        &["ABSTTL"],
    )
    .unwrap();
    let pttl = c.int(&["PTTL", "abs"]);
    assert!((2000..=3100).contains(&pttl), "{pttl}");
    // A deadline in the past stores nothing, and REPLACE still deletes.
    restore(
        &mut c,
        "foo",
        &(now - 3000).to_string(),
        &first,
        &["ABSTTL", "REPLACE"],
    )
    .unwrap();
    assert_eq!(c.int(&["EXISTS", "foo"]), 0);
    restore(
        &mut c,
        "gone",
        &(now - 3000).to_string(),
        &first,
        &["ABSTTL"],
    )
    .unwrap();
    assert_eq!(c.int(&["EXISTS", "gone"]), 0);
    // REPLACE over another type, and the old TTL does not survive.
    c.int(&["RPUSH", "l", "x"]);
    c.int(&["EXPIRE", "l", "100"]);
    restore(&mut c, "l", "0", &second, &["REPLACE"]).unwrap();
    assert_eq!(c.bulk(&["GET", "l"]).unwrap(), "bar2");
    assert_eq!(c.int(&["TTL", "l"]), -1);
}

#[test]
fn restore_sets_idle_time_under_lru_and_frequency_under_lfu() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "foo", "bar"]);
    let payload = dump(&mut c, "foo").unwrap();
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    restore(&mut c, "idle", "0", &payload, &["IDLETIME", "1000"]).unwrap();
    let idle = c.int(&["OBJECT", "IDLETIME", "idle"]);
    assert!((1000..=1010).contains(&idle), "{idle}");
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    restore(&mut c, "freq", "0", &payload, &["FREQ", "100"]).unwrap();
    assert_eq!(c.int(&["OBJECT", "FREQ", "freq"]), 100);
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
}

/// A ziplist of `entries` (strings only), as Redis 6 wrote them.
fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let (mut prev, mut tail) = (0usize, 10usize);
    for e in entries {
        assert!(e.len() < 64);
        tail = 10 + body.len();
        body.push(prev as u8);
        body.push(e.len() as u8);
        body.extend_from_slice(e);
        prev = e.len() + 2;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((10 + body.len() + 1) as u32).to_le_bytes());
    out.extend_from_slice(&(tail as u32).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xff);
    out
}

/// A raw RDB string (length < 64).
fn rdb_string(s: &[u8]) -> Vec<u8> {
    assert!(s.len() < 64);
    [&[s.len() as u8][..], s].concat()
}

#[test]
fn restore_reads_the_older_encodings() {
    let node = Node::start();
    let mut c = node.client();
    let hash_zl = [
        &[13u8][..],
        &rdb_string(&ziplist(&[b"f", b"v", b"g", b"w"])),
    ]
    .concat();
    restore(&mut c, "hz", "0", &framed(&hash_zl, 9), &[]).unwrap();
    assert_eq!(read_all(&mut c, "hz"), ["hash", "f=v", "g=w"]);
    let zset_zl = [
        &[12u8][..],
        &rdb_string(&ziplist(&[b"a", b"1.5", b"b", b"2"])),
    ]
    .concat();
    restore(&mut c, "zz", "0", &framed(&zset_zl, 9), &[]).unwrap();
    assert_eq!(read_all(&mut c, "zz"), ["zset", "a", "1.5", "b", "2"]);
    let list_zl = [&[10u8][..], &rdb_string(&ziplist(&[b"x", b"y"]))].concat();
    restore(&mut c, "lz", "0", &framed(&list_zl, 6), &[]).unwrap();
    assert_eq!(read_all(&mut c, "lz"), ["list", "x", "y"]);
    let quicklist = [
        &[14u8, 2][..],
        &rdb_string(&ziplist(&[b"p"])),
        &rdb_string(&ziplist(&[b"q", b"r"])),
    ]
    .concat();
    restore(&mut c, "ql", "0", &framed(&quicklist, 9), &[]).unwrap();
    assert_eq!(read_all(&mut c, "ql"), ["list", "p", "q", "r"]);
    let zipmap = [&[9u8][..], &rdb_string(&[1, 1, b'k', 1, 0, b'v', 0xff])].concat();
    restore(&mut c, "zm", "0", &framed(&zipmap, 3), &[]).unwrap();
    assert_eq!(read_all(&mut c, "zm"), ["hash", "k=v"]);
    let plain_list = [&[1u8, 2][..], &rdb_string(b"one"), &[0xc0, 0xfe]].concat();
    restore(&mut c, "pl", "0", &framed(&plain_list, 6), &[]).unwrap();
    assert_eq!(read_all(&mut c, "pl"), ["list", "one", "-2"]);
    let text_zset = [
        &[3u8, 2][..],
        &rdb_string(b"a"),
        &[3],
        b"1.5",
        &rdb_string(b"b"),
        &[254],
    ]
    .concat();
    restore(&mut c, "tz", "0", &framed(&text_zset, 6), &[]).unwrap();
    assert_eq!(read_all(&mut c, "tz"), ["zset", "a", "1.5", "b", "inf"]);
    let mut intset = vec![11u8, 16, 2, 0, 0, 0, 4, 0, 0, 0];
    intset.extend_from_slice(&[0xfe, 0xff, 7, 0, 9, 0, 0x10, 0x27]);
    restore(&mut c, "is", "0", &framed(&intset, 9), &[]).unwrap();
    assert_eq!(read_all(&mut c, "is"), ["set", "-2", "10000", "7", "9"]);
    // Duplicates, empties and NaN are bad data, as in Redis.
    let dup = [
        &[13u8][..],
        &rdb_string(&ziplist(&[b"f", b"v", b"f", b"w"])),
    ]
    .concat();
    assert_eq!(
        restore(&mut c, "x", "0", &framed(&dup, 9), &[]).unwrap_err(),
        BAD_DATA
    );
    let empty = [&[10u8][..], &rdb_string(&ziplist(&[]))].concat();
    assert_eq!(
        restore(&mut c, "x", "0", &framed(&empty, 9), &[]).unwrap_err(),
        BAD_DATA
    );
    let nan = [&[3u8, 1][..], &rdb_string(b"a"), &[253]].concat();
    assert_eq!(
        restore(&mut c, "x", "0", &framed(&nan, 9), &[]).unwrap_err(),
        BAD_DATA
    );
}

#[test]
fn truncated_and_forged_payloads_never_hurt_the_node() {
    let node = Node::start();
    let mut c = node.client();
    fill(&mut c);
    for key in ["list", "bighash", "bigzset", "intset", "long"] {
        let payload = dump(&mut c, key).unwrap();
        let body = &payload[..payload.len() - 10];
        for cut in (1..body.len()).step_by(body.len() / 40 + 1) {
            let err = restore(
                &mut c,
                "forged",
                "0",
                &framed(&body[..cut], 10),
                &["REPLACE"],
            )
            .unwrap_err();
            assert_eq!(err, BAD_DATA, "{key} cut at {cut}");
        }
        for at in (1..body.len()).step_by(body.len() / 40 + 1) {
            let mut forged = body.to_vec();
            forged[at] ^= 0x5a;
            let _ = restore(&mut c, "forged", "0", &framed(&forged, 10), &["REPLACE"]);
        }
    }
    assert_eq!(c.status(&["PING"]), "PONG");
}
