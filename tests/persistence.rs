//! Persistence through the real binary (each node a `cordis` process on
//! 127.0.0.1:0 with its own temporary `dir`, killed by its own handle):
//! SAVE then kill -9 then restart gives the same digest and reads for
//! every type; a clean SHUTDOWN SAVE resumes the incarnation and a kill -9
//! does not; corrupt and truncated snapshots refuse the start and stay
//! untouched; save points and BGSAVE write in the background; and a node
//! restarted empty under the same flags while its peer and its own
//! clients keep writing loses no acknowledged write (issue 17, finding 1).
//! Plus, in process, the round-trip law: save + load changes no read,
//! digest or merge.
//!
//! The append-only file through the binary too: kill -9 under load with
//! `appendfsync always` keeps every acknowledged write; a clean shutdown
//! resumes the incarnation from it and a kill -9 restores the data under
//! a new one; BGREWRITEAOF compacts it; a truncated tail is cut (or
//! refused with `aof-load-truncated no`) and a corrupt record refuses the
//! start with the files untouched; a node restarted with its AOF in a
//! two-node mesh resyncs partially.
//!
//! covers: save bgsave lastsave bgrewriteaof

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

use support::client::Conn;

/// A running `cordis` process, killed (SIGKILL) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// kill -9, and wait for it to be gone.
    fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits (bounded) for the process to exit by itself.
    fn wait_exit(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "cordis did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cordis-persistence-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn file(&self) -> PathBuf {
        self.0.join("dump.rdb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(dir: &TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cordis"));
    command
        .args(["--bind", "127.0.0.1", "--port", "0", "--dir", dir.path()])
        .args(args)
        .env("CORDIS_PEER_SECRET", "persistence-test-secret")
        .env_remove("CORDIS_REQUIREPASS");
    command
}

/// Starts a node; returns it and its client address (from the ready line).
fn start(dir: &TempDir, args: &[&str]) -> (Process, String) {
    let (process, lines) = start_lines(dir, args);
    let addr = lines
        .last()
        .and_then(|ready| ready.strip_prefix("cordis ready: listening on "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .to_string();
    (process, addr)
}

/// Starts a node that must refuse to start: its exit status and stderr.
fn start_refused(dir: &TempDir, args: &[&str]) -> (i32, String) {
    let child = command(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cordis runs");
    let mut process = Process(child);
    let stderr = process.0.stderr.take().expect("stderr");
    let status = Process(std::mem::replace(
        &mut process.0,
        Command::new("true").spawn().unwrap(),
    ))
    .wait_exit();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).unwrap();
    (status.code().unwrap_or(-1), text)
}

fn conn(addr: &str) -> Conn {
    Conn::open(&format!("redis://{addr}/"))
}

fn info_field(c: &mut Conn, section: &str, field: &str) -> String {
    let text = c.bulk(&["INFO", section]).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .trim()
        .to_string()
}

fn digest(c: &mut Conn) -> String {
    c.status(&["DEBUG", "DIGEST"])
}

/// Writes every type, with deletes (tombstones), TTLs and counters.
fn write_every_type(c: &mut Conn) {
    c.ok(&["SET", "str", "value"]);
    c.ok(&["SET", "gone", "soon"]);
    c.int(&["DEL", "gone"]);
    c.int(&["INCRBY", "counter", "41"]);
    c.int(&["INCR", "counter"]);
    c.v(&["INCRBYFLOAT", "float", "1.5"]);
    c.ok(&["SET", "ttl", "x", "EX", "100000"]);
    c.int(&["SADD", "set", "a", "b", "c"]);
    c.int(&["SREM", "set", "b"]);
    c.int(&["RPUSH", "list", "1", "2", "3", "4"]);
    c.v(&["LPOP", "list"]);
    c.int(&["LPUSH", "list", "0"]);
    c.int(&["HSET", "hash", "f1", "v1", "f2", "v2"]);
    c.int(&["HINCRBY", "hash", "n", "7"]);
    c.int(&["HDEL", "hash", "f2"]);
    c.int(&["ZADD", "zset", "1", "one", "2", "two"]);
    c.v(&["ZINCRBY", "zset", "5", "one"]);
    c.int(&["ZREM", "zset", "two"]);
    c.int(&["PFADD", "hll", "a", "b", "c", "d"]);
    c.int(&["SETBIT", "bits", "77", "1"]);
    c.int(&["GEOADD", "geo", "13.36", "38.11", "Palermo"]);
    c.ok(&["SELECT", "3"]);
    c.ok(&["SET", "in-db-3", "yes"]);
    c.ok(&["SELECT", "0"]);
}

/// What the every-type keys read as.
fn read_every_type(c: &mut Conn) -> Vec<Value> {
    let reads: &[&[&str]] = &[
        &["GET", "str"],
        &["EXISTS", "gone"],
        &["GET", "counter"],
        &["GET", "float"],
        &["SMEMBERS", "set"],
        &["LRANGE", "list", "0", "-1"],
        &["HGETALL", "hash"],
        &["ZRANGE", "zset", "0", "-1", "WITHSCORES"],
        &["PFCOUNT", "hll"],
        &["GETBIT", "bits", "77"],
        &["GEOPOS", "geo", "Palermo"],
        &["DBSIZE"],
    ];
    let mut out: Vec<Value> = reads.iter().map(|r| c.v(r)).collect();
    let ttl = c.int(&["TTL", "ttl"]);
    out.push(Value::Boolean(ttl > 99_000));
    c.ok(&["SELECT", "3"]);
    out.push(c.v(&["GET", "in-db-3"]));
    c.ok(&["SELECT", "0"]);
    out
}

#[test]
fn save_then_kill_9_then_restart_keeps_every_type_with_an_equal_digest() {
    let dir = TempDir::new("save-kill");
    let (node, addr) = start(&dir, &["--node-name", "eu"]);
    let mut c = conn(&addr);
    write_every_type(&mut c);
    // Reads first: PFCOUNT refreshes the HyperLogLog's cached count, which
    // the digest covers (as in Redis).
    let before = (read_every_type(&mut c), digest(&mut c));
    let incarnation = info_field(&mut c, "persistence", "node_incarnation");
    c.ok(&["SAVE"]);
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_changes_since_last_save"),
        "0"
    );
    let lastsave = c.int(&["LASTSAVE"]);
    assert!(
        lastsave > 1_700_000_000,
        "LASTSAVE is a Unix time: {lastsave}"
    );
    node.kill9();

    let (_node, addr) = start(&dir, &["--node-name", "eu"]);
    let mut c = conn(&addr);
    assert_eq!((read_every_type(&mut c), digest(&mut c)), before);
    assert_ne!(
        info_field(&mut c, "persistence", "rdb_last_load_keys_loaded"),
        "0"
    );
    // Killed: whatever it wrote after the save may have reached peers, so
    // the restarted node is a new incarnation of the same name.
    assert_eq!(info_field(&mut c, "persistence", "node_name"), "eu");
    assert_ne!(
        info_field(&mut c, "persistence", "node_incarnation"),
        incarnation
    );
    // And it keeps writing normally on top of the loaded state.
    assert_eq!(c.int(&["INCR", "counter"]), 43);
}

#[test]
fn function_libraries_survive_save_and_kill_9() {
    let dir = TempDir::new("functions");
    let (node, addr) = start(&dir, &[]);
    let mut c = conn(&addr);
    let code = "#!lua name=kept\nredis.register_function('kept_f', function(keys, args) return 'still here' end)";
    assert_eq!(c.bulk(&["FUNCTION", "LOAD", code]).as_deref(), Some("kept"));
    let gone = "#!lua name=gone\nredis.register_function('gone_f', function() return 1 end)";
    c.bulk(&["FUNCTION", "LOAD", gone]);
    c.ok(&["FUNCTION", "DELETE", "gone"]);
    c.ok(&["SAVE"]);
    node.kill9();

    let (_node, addr) = start(&dir, &[]);
    let mut c = conn(&addr);
    assert_eq!(
        c.bulk(&["FCALL", "kept_f", "0"]).as_deref(),
        Some("still here")
    );
    assert_eq!(c.err(&["FCALL", "gone_f", "0"]), "ERR Function not found");
    assert_eq!(
        c.err(&["FUNCTION", "DELETE", "gone"]),
        "ERR Library not found"
    );
}

#[test]
fn a_snapshot_of_format_version_1_still_loads() {
    // Written by the release before function libraries joined the header
    // (SET greeting hello, HSET h f v, INCRBY n 42, SAVE).
    let dir = TempDir::new("format-v1");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/snapshot-v1.rdb"
        ),
        dir.file(),
    )
    .unwrap();
    let (_node, addr) = start(&dir, &["--node-name", "eu"]);
    let mut c = conn(&addr);
    assert_eq!(c.bulk(&["GET", "greeting"]).as_deref(), Some("hello"));
    assert_eq!(c.bulk(&["HGET", "h", "f"]).as_deref(), Some("v"));
    assert_eq!(c.int(&["INCR", "n"]), 43);
    assert_eq!(c.strings(&["FUNCTION", "LIST"]), Vec::<String>::new());
    // It saves in the current format and loads again.
    c.ok(&["SAVE"]);
    let bytes = std::fs::read(dir.file()).unwrap();
    assert_eq!(
        &bytes[8..12],
        &cordis::persist::snapshot::FORMAT_VERSION.to_be_bytes()
    );
}

#[test]
fn a_clean_shutdown_save_resumes_the_incarnation_and_a_kill_9_does_not() {
    let dir = TempDir::new("resume");
    let (node, addr) = start(&dir, &["--replica-id", "us"]);
    let mut c = conn(&addr);
    for _ in 0..5 {
        c.int(&["INCR", "n"]);
    }
    let id = info_field(&mut c, "replication", "replica_id");
    let seq = info_field(&mut c, "replication", "local_seq");
    let _ = c.try_query(&["SHUTDOWN", "SAVE"]);
    assert!(node.wait_exit().success());
    assert!(dir.0.join("dump.rdb.clean").exists());

    let (node, addr) = start(&dir, &["--replica-id", "us"]);
    let mut c = conn(&addr);
    assert_eq!(info_field(&mut c, "replication", "replica_id"), id);
    assert_eq!(info_field(&mut c, "replication", "local_seq"), seq);
    // The marker is spent at start: a crash from now on is not clean.
    assert!(!dir.0.join("dump.rdb.clean").exists());
    assert_eq!(c.int(&["INCR", "n"]), 6);
    let next_seq: u64 = info_field(&mut c, "replication", "local_seq")
        .parse()
        .unwrap();
    assert_eq!(next_seq, seq.parse::<u64>().unwrap() + 1);
    c.ok(&["SAVE"]);
    node.kill9();

    let (_node, addr) = start(&dir, &["--replica-id", "us"]);
    let mut c = conn(&addr);
    assert_ne!(info_field(&mut c, "replication", "replica_id"), id);
    assert_eq!(info_field(&mut c, "replication", "local_seq"), "0");
    assert_eq!(c.bulk(&["GET", "n"]).as_deref(), Some("6"));
}

#[test]
fn corrupt_or_truncated_snapshots_refuse_the_start_and_stay_untouched() {
    let dir = TempDir::new("corrupt");
    let (node, addr) = start(&dir, &[]);
    let mut c = conn(&addr);
    write_every_type(&mut c);
    c.ok(&["SAVE"]);
    node.kill9();
    let good = std::fs::read(dir.file()).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cut short by one byte",
            good[..good.len() - 1].to_vec(),
            "truncated or corrupt",
        ),
        (
            "cut in half",
            good[..good.len() / 2].to_vec(),
            "truncated or corrupt",
        ),
        ("only the magic", good[..8].to_vec(), "truncated or corrupt"),
        ("one bit flipped", flipped, "checksum mismatch"),
        (
            "a Redis RDB file",
            b"REDIS0010\xfa\x09redis-ver".to_vec(),
            "Redis RDB file",
        ),
        (
            "not a snapshot",
            b"hello world, not a snapshot".to_vec(),
            "not a cordis snapshot",
        ),
    ];
    for (what, bytes, message) in cases {
        std::fs::write(dir.file(), &bytes).unwrap();
        let (code, stderr) = start_refused(&dir, &[]);
        assert_ne!(code, 0, "{what}: the start must fail");
        assert!(
            stderr.contains(message) && stderr.contains("dump.rdb"),
            "{what}: stderr names the file and the problem: {stderr}"
        );
        assert_eq!(
            std::fs::read(dir.file()).unwrap(),
            bytes,
            "{what}: file untouched"
        );
    }
    // The good file still loads.
    std::fs::write(dir.file(), &good).unwrap();
    let (_node, addr) = start(&dir, &[]);
    assert_eq!(conn(&addr).bulk(&["GET", "str"]).as_deref(), Some("value"));
}

#[test]
fn save_points_and_bgsave_write_in_the_background() {
    let dir = TempDir::new("bgsave");
    let (_node, addr) = start(&dir, &["--save", "1 1"]);
    let mut c = conn(&addr);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "save"]),
        vec!["save".to_string(), "1 1".to_string()]
    );
    c.ok(&["SET", "k", "v"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "persistence", "rdb_saves") == "0" {
        assert!(Instant::now() < deadline, "the save point never fired");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.file().exists());
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
        "ok"
    );
    assert_eq!(c.status(&["BGSAVE"]), "Background saving started");
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == "1" {
        assert!(Instant::now() < deadline, "BGSAVE never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        c.status(&["BGSAVE", "SCHEDULE"]),
        "Background saving started"
    );
    assert_eq!(c.err(&["BGSAVE", "NOW"]), "ERR syntax error");
    // CONFIG SET save "" turns save points off; DEBUG RELOAD waits for a
    // background save still running.
    c.ok(&["CONFIG", "SET", "save", ""]);
    c.ok(&["DEBUG", "RELOAD"]);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("v"));
}

/// Reserves a free loopback port for a peer listener (bound on port 0,
/// then released, so both nodes can name each other before either starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writers on one node: SADD of unique members and INCR, counting only
/// what the node acknowledged.
fn write_acked(addr: &str, tag: &str, count: usize) -> (Vec<String>, u64) {
    let mut c = conn(addr);
    let mut members = Vec::new();
    let mut incrs = 0;
    for i in 0..count {
        let member = format!("{tag}-{i}");
        if let Ok(Value::Int(1)) = c.try_query(&["SADD", "acked", &member]) {
            members.push(member);
        }
        if c.try_query(&["INCR", "acked-count"]).is_ok() {
            incrs += 1;
        }
    }
    (members, incrs)
}

fn as_args(flags: &[String]) -> Vec<&str> {
    flags.iter().map(|s| s.as_str()).collect()
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_restarted_empty_with_the_same_flags_loses_no_acknowledged_write() {
    let (dir_a, dir_b) = (TempDir::new("reuse-a"), TempDir::new("reuse-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let flags = |name: &'static str, mine: u16, peer: u16| -> Vec<String> {
        vec![
            "--replica-id".into(),
            name.into(),
            "--peer-port".into(),
            mine.to_string(),
            "--peer".into(),
            format!("127.0.0.1:{peer}"),
            "--peer-heartbeat-ms".into(),
            "100".into(),
            "--peer-timeout-ms".into(),
            "1500".into(),
            "--reconnect-max-ms".into(),
            "200".into(),
        ]
    };
    let flags_a = flags("a", port_a, port_b);
    let flags_b = flags("b", port_b, port_a);
    let (node_a, addr_a) = start(&dir_a, &as_args(&flags_a));
    let (_node_b, addr_b) = start(&dir_b, &as_args(&flags_b));

    // First life of A: writes on both sides, replicated before the kill.
    let (mut members, mut incrs) = write_acked(&addr_a, "a1", 150);
    let (m, n) = write_acked(&addr_b, "b1", 50);
    members.extend(m);
    incrs += n;
    let (mut ca, mut cb) = (conn(&addr_a), conn(&addr_b));
    wait_until("the first writes converge", 20, || {
        digest(&mut ca) == digest(&mut cb) && cb.int(&["SCARD", "acked"]) == members.len() as i64
    });
    node_a.kill9();

    // A comes back empty under the very same flags and, while it rejoins,
    // both nodes take more writes than A's first life made.
    let (_node_a, addr_a) = start(&dir_a, &as_args(&flags_a));
    let writers: Vec<_> = [(addr_a.clone(), "a2", 400), (addr_b.clone(), "b2", 200)]
        .into_iter()
        .map(|(addr, tag, count)| std::thread::spawn(move || write_acked(&addr, tag, count)))
        .collect();
    for w in writers {
        let (m, n) = w.join().unwrap();
        members.extend(m);
        incrs += n;
    }
    let (mut ca, mut cb) = (conn(&addr_a), conn(&addr_b));
    wait_until("every node holds every acknowledged write", 30, || {
        ca.int(&["SCARD", "acked"]) == members.len() as i64
            && cb.int(&["SCARD", "acked"]) == members.len() as i64
            && digest(&mut ca) == digest(&mut cb)
    });
    for c in [&mut ca, &mut cb] {
        let held: std::collections::HashSet<String> =
            c.strings(&["SMEMBERS", "acked"]).into_iter().collect();
        assert!(members.iter().all(|m| held.contains(m)));
        assert_eq!(c.bulk(&["GET", "acked-count"]), Some(incrs.to_string()));
    }
    for c in [&mut ca, &mut cb] {
        let peers = c.bulk(&["INFO", "replication"]).unwrap_or_default();
        assert!(
            !peers.contains("id_reuse=1"),
            "no link was refused: {peers}"
        );
    }
}

/// Starts a node; returns it and the stdout lines it printed up to and
/// including its ready line (stdout keeps draining, so the node never
/// blocks on a full pipe).
fn start_lines(dir: &TempDir, args: &[&str]) -> (Process, Vec<String>) {
    let mut child = command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cordis starts");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut before = Vec::new();
    for line in lines.by_ref() {
        let ready = line.starts_with("cordis ready: ");
        before.push(line);
        if ready {
            break;
        }
    }
    assert!(
        before
            .last()
            .is_some_and(|l| l.starts_with("cordis ready: ")),
        "a ready line: {before:?}"
    );
    std::thread::spawn(move || for _ in lines {});
    (process, before)
}

#[test]
fn a_name_read_back_from_the_snapshot_is_not_announced_as_generated() {
    let dir = TempDir::new("name-lines");
    let (node, lines) = start_lines(&dir, &[]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cordis: generated node name")),
        "{lines:?}"
    );
    let addr = lines
        .iter()
        .find_map(|l| l.strip_prefix("cordis ready: listening on "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .to_string();
    conn(&addr).ok(&["SAVE"]);
    node.kill9();
    let (_node, lines) = start_lines(&dir, &[]);
    assert!(
        !lines.iter().any(|l| l.contains("generated")),
        "the name came from the snapshot: {lines:?}"
    );
}

// ----- the append-only file -----

/// The AOF directory of a node started in `dir` with the defaults.
fn aof_dir(dir: &TempDir) -> PathBuf {
    dir.0.join("appendonlydir")
}

/// The files the manifest lists, oldest first (`base`/`incr`, name).
fn manifest_files(dir: &TempDir) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(aof_dir(dir).join("appendonly.aof.manifest")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let (k, f) = l.split_once(' ').unwrap();
            (k.to_string(), f.to_string())
        })
        .collect()
}

#[test]
fn aof_always_kill_9_under_load_keeps_every_acknowledged_write() {
    let dir = TempDir::new("aof-always");
    let flags = ["--appendonly", "yes", "--appendfsync", "always"];
    let (node, addr) = start(&dir, &flags);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each writer counts what the node acknowledged, per type.
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let addr = addr.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = conn(&addr);
                let mut acked = [0u64; 6];
                let mut keys = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("s-{t}-{i}");
                    let results = [
                        c.try_query(&["SET", &key, "v"]).is_ok(),
                        c.try_query(&["INCR", &format!("c-{t}")]).is_ok(),
                        c.try_query(&["SADD", &format!("set-{t}"), &i.to_string()])
                            .is_ok(),
                        c.try_query(&["LPUSH", &format!("l-{t}"), "x"]).is_ok(),
                        c.try_query(&["HINCRBY", &format!("h-{t}"), "f", "1"])
                            .is_ok(),
                        c.try_query(&["ZINCRBY", &format!("z-{t}"), "1", "m"])
                            .is_ok(),
                    ];
                    if results[0] {
                        keys.push(key);
                    }
                    for (n, ok) in acked.iter_mut().zip(results) {
                        *n += ok as u64;
                    }
                    if results.iter().all(|ok| !ok) {
                        break;
                    }
                    i += 1;
                }
                (acked, keys)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<([u64; 6], Vec<String>)> =
        writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        results.iter().all(|(a, _)| a[1] > 10),
        "the writers got going"
    );

    let (_node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    for (t, (acked, keys)) in results.iter().enumerate() {
        for key in keys {
            assert_eq!(c.bulk(&["GET", key]).as_deref(), Some("v"), "{key}");
        }
        let num = |c: &mut Conn, args: &[&str]| -> u64 {
            c.bulk(args).map_or(0, |v| v.parse::<f64>().unwrap() as u64)
        };
        // Counters may hold one unacknowledged write more (cut mid-reply).
        assert!(num(&mut c, &["GET", &format!("c-{t}")]) >= acked[1]);
        assert!(c.int(&["SCARD", &format!("set-{t}")]) as u64 >= acked[2]);
        assert!(c.int(&["LLEN", &format!("l-{t}")]) as u64 >= acked[3]);
        assert!(num(&mut c, &["HGET", &format!("h-{t}"), "f"]) >= acked[4]);
        assert!(num(&mut c, &["ZSCORE", &format!("z-{t}"), "m"]) >= acked[5]);
    }
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
}

#[test]
fn aof_clean_shutdown_resumes_the_incarnation_and_kill_9_keeps_the_data_under_a_new_one() {
    let dir = TempDir::new("aof-resume");
    let flags = ["--appendonly", "yes", "--node-name", "eu"];
    let (node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    write_every_type(&mut c);
    let before = (read_every_type(&mut c), digest(&mut c));
    let incarnation = info_field(&mut c, "persistence", "node_incarnation");
    let seq = info_field(&mut c, "replication", "local_seq");
    // Plain SHUTDOWN with no save points: the AOF alone carries the data.
    let _ = c.try_query(&["SHUTDOWN"]);
    assert!(node.wait_exit().success());
    assert!(aof_dir(&dir).join("appendonly.aof.manifest.clean").exists());
    assert!(!dir.file().exists(), "no snapshot was written");

    let (node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    assert_eq!((read_every_type(&mut c), digest(&mut c)), before);
    assert_eq!(
        info_field(&mut c, "persistence", "node_incarnation"),
        incarnation
    );
    assert_eq!(info_field(&mut c, "replication", "local_seq"), seq);
    assert!(!aof_dir(&dir).join("appendonly.aof.manifest.clean").exists());
    assert_eq!(c.int(&["INCR", "counter"]), 43);
    let after = (read_every_type(&mut c), digest(&mut c));
    // everysec: a reply goes out only after its records are written (the
    // fsync comes within a second), so a kill -9 right after the last
    // reply loses nothing acknowledged.
    node.kill9();

    let (_node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    assert_eq!((read_every_type(&mut c), digest(&mut c)), after);
    assert_ne!(
        info_field(&mut c, "persistence", "node_incarnation"),
        incarnation
    );
    assert_eq!(info_field(&mut c, "persistence", "node_name"), "eu");
}

#[test]
fn bgrewriteaof_compacts_into_a_base_and_a_restart_loads_base_and_tail() {
    let plain = TempDir::new("aof-off");
    let (_off, addr) = start(&plain, &[]);
    assert!(conn(&addr)
        .err(&["BGREWRITEAOF"])
        .starts_with("ERR BGREWRITEAOF needs the append-only file"));

    let dir = TempDir::new("aof-rewrite");
    let flags = ["--appendonly", "yes"];
    let (_node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    for i in 0..500 {
        c.int(&["INCR", "n"]);
        c.ok(&["SET", &format!("k{}", i % 50), &i.to_string()]);
    }
    assert_eq!(
        c.status(&["BGREWRITEAOF"]),
        "Background append only file rewriting started"
    );
    wait_until("the rewrite ends", 20, || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    assert_eq!(info_field(&mut c, "persistence", "aof_rewrites"), "1");
    assert_eq!(
        info_field(&mut c, "persistence", "aof_last_bgrewrite_status"),
        "ok"
    );
    let files = manifest_files(&dir);
    assert_eq!(files.len(), 2, "one base and one tail: {files:?}");
    assert_eq!(files[0].0, "base");
    // Only the listed files remain.
    let on_disk = std::fs::read_dir(aof_dir(&dir)).unwrap().count();
    assert_eq!(on_disk, 3, "base, tail and manifest");
    c.int(&["INCR", "n"]);
    let before = digest(&mut c);
    std::thread::sleep(Duration::from_millis(300));
    drop(_node);

    let (_node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    assert_eq!(c.bulk(&["GET", "n"]).as_deref(), Some("501"));
    assert_eq!(c.bulk(&["GET", "k49"]).as_deref(), Some("499"));
    assert_eq!(digest(&mut c), before);
}

#[test]
fn a_truncated_aof_tail_is_cut_and_a_corrupt_record_refuses_the_start_untouched() {
    let dir = TempDir::new("aof-damage");
    let flags = ["--appendonly", "yes"];
    let (node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    for i in 0..20 {
        c.ok(&["SET", &format!("k{i}"), "v"]);
    }
    let _ = c.try_query(&["SHUTDOWN", "NOSAVE"]);
    assert!(node.wait_exit().success());
    let (kind, tail) = manifest_files(&dir).pop().unwrap();
    assert_eq!(kind, "incr");
    let tail = aof_dir(&dir).join(tail);
    let complete = std::fs::read(&tail).unwrap();
    // A record cut short by a crash: its length says 100, 3 bytes follow.
    let mut cut = complete.clone();
    cut.extend_from_slice(&[0, 0, 0, 100, 1, 2, 3]);
    std::fs::write(&tail, &cut).unwrap();

    let mut strict = flags.to_vec();
    strict.extend(["--aof-load-truncated", "no"]);
    let (code, stderr) = start_refused(&dir, &strict);
    assert_ne!(code, 0);
    assert!(stderr.contains("ends inside a record"), "{stderr}");
    assert_eq!(
        std::fs::read(&tail).unwrap(),
        cut,
        "refused: left untouched"
    );

    let (node, addr) = start(&dir, &flags);
    let mut c = conn(&addr);
    assert_eq!(c.int(&["DBSIZE"]), 20);
    assert_eq!(
        std::fs::read(&tail).unwrap(),
        complete,
        "the cut record is gone"
    );
    let _ = c.try_query(&["SHUTDOWN", "NOSAVE"]);
    assert!(node.wait_exit().success());

    // A flipped byte inside the first record: refused, nothing changed.
    let mut corrupt = complete.clone();
    corrupt[12 + 8 + 2] ^= 0x40;
    std::fs::write(&tail, &corrupt).unwrap();
    let manifest_before = std::fs::read(aof_dir(&dir).join("appendonly.aof.manifest")).unwrap();
    let (code, stderr) = start_refused(&dir, &flags);
    assert_ne!(code, 0);
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert_eq!(std::fs::read(&tail).unwrap(), corrupt);
    assert_eq!(
        std::fs::read(aof_dir(&dir).join("appendonly.aof.manifest")).unwrap(),
        manifest_before
    );
}

#[test]
fn a_node_restarted_with_its_aof_resumes_and_resyncs_partially() {
    let (dir_a, dir_b) = (TempDir::new("aof-mesh-a"), TempDir::new("aof-mesh-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let flags = |name: &'static str, mine: u16, peer: u16| -> Vec<String> {
        [
            "--replica-id",
            name,
            "--appendonly",
            "yes",
            "--peer-port",
            &mine.to_string(),
            "--peer",
            &format!("127.0.0.1:{peer}"),
            "--peer-heartbeat-ms",
            "100",
            "--peer-timeout-ms",
            "1500",
            "--reconnect-max-ms",
            "200",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let flags_a = flags("a", port_a, port_b);
    let flags_b = flags("b", port_b, port_a);
    let (node_a, addr_a) = start(&dir_a, &as_args(&flags_a));
    let (_node_b, addr_b) = start(&dir_b, &as_args(&flags_b));
    let (mut members, mut incrs) = write_acked(&addr_a, "a1", 100);
    let (m, n) = write_acked(&addr_b, "b1", 100);
    members.extend(m);
    incrs += n;
    let (mut ca, mut cb) = (conn(&addr_a), conn(&addr_b));
    wait_until("the first writes converge", 20, || {
        digest(&mut ca) == digest(&mut cb) && ca.int(&["SCARD", "acked"]) == members.len() as i64
    });
    let syncs = |c: &mut Conn| -> u64 {
        let text = c.bulk(&["INFO", "replication"]).unwrap_or_default();
        text.split("full_syncs=")
            .skip(1)
            .map(|rest| rest.split(',').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let full_before = syncs(&mut cb);
    let incarnation = info_field(&mut ca, "persistence", "node_incarnation");
    let _ = ca.try_query(&["SHUTDOWN"]);
    assert!(node_a.wait_exit().success());
    // B goes on writing while A is down.
    let (m, n) = write_acked(&addr_b, "b2", 100);
    members.extend(m);
    incrs += n;

    let (_node_a, addr_a) = start(&dir_a, &as_args(&flags_a));
    let mut ca = conn(&addr_a);
    assert_eq!(
        info_field(&mut ca, "persistence", "node_incarnation"),
        incarnation
    );
    let (m, n) = write_acked(&addr_a, "a2", 100);
    members.extend(m);
    incrs += n;
    wait_until("every acknowledged write is on both nodes", 30, || {
        ca.int(&["SCARD", "acked"]) == members.len() as i64
            && cb.int(&["SCARD", "acked"]) == members.len() as i64
            && digest(&mut ca) == digest(&mut cb)
    });
    for c in [&mut ca, &mut cb] {
        assert_eq!(c.bulk(&["GET", "acked-count"]), Some(incrs.to_string()));
    }
    assert_eq!(syncs(&mut cb), full_before, "B sent A no full sync");
    assert_eq!(syncs(&mut ca), 0, "A asked B for no full sync");
}

// ----- the round-trip law, in process -----

use support::inproc::Node as InprocNode;

/// A random write of any type (with deletes, TTLs and flushes, so the state
/// holds tombstones and out-of-order context).
fn random_write(rng: &mut StdRng) -> Vec<String> {
    let key = |rng: &mut StdRng, p: &str| format!("{p}{}", rng.gen_range(0..4));
    let n = || rand::random::<u8>().to_string();
    let v: Vec<String> = match rng.gen_range(0..20) {
        0 => vec!["SET".into(), key(rng, "s"), n()],
        1 => vec!["INCRBY".into(), key(rng, "c"), n()],
        2 => vec!["APPEND".into(), key(rng, "s"), n()],
        3 => vec!["SADD".into(), key(rng, "set"), n(), n()],
        4 => vec!["SREM".into(), key(rng, "set"), n()],
        5 => vec!["RPUSH".into(), key(rng, "l"), n(), n()],
        6 => vec!["LPOP".into(), key(rng, "l")],
        7 => vec!["HSET".into(), key(rng, "h"), n(), n()],
        8 => vec!["HINCRBY".into(), key(rng, "h"), "f".into(), n()],
        9 => vec!["ZADD".into(), key(rng, "z"), n(), n()],
        10 => vec!["ZINCRBY".into(), key(rng, "z"), n(), "m".into()],
        11 => vec!["ZREM".into(), key(rng, "z"), n()],
        12 => vec!["PFADD".into(), key(rng, "p"), n()],
        13 => vec!["SETBIT".into(), key(rng, "b"), n(), "1".into()],
        14 => vec!["DEL".into(), key(rng, "s"), key(rng, "set"), key(rng, "l")],
        15 => vec!["EXPIRE".into(), key(rng, "h"), "100000".into()],
        16 => vec!["PERSIST".into(), key(rng, "h")],
        17 if rng.gen_bool(0.1) => vec!["FLUSHDB".into()],
        _ => vec!["HDEL".into(), key(rng, "h"), n()],
    };
    v
}

/// A reply as text, with the elements of unordered replies (hash fields,
/// set members) sorted: their order is not part of the state.
fn normalized(reply: cordis::protocol::Reply) -> String {
    use cordis::protocol::Reply;
    match reply {
        Reply::Map(pairs) => {
            let mut items: Vec<String> = pairs.iter().map(|p| format!("{p:?}")).collect();
            items.sort();
            format!("map {items:?}")
        }
        Reply::Set(members) => {
            let mut items: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
            items.sort();
            format!("set {items:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Every key's reads on a node.
fn reads(node: &mut InprocNode) -> Vec<String> {
    let mut out = Vec::new();
    for p in ["s", "c", "set", "l", "h", "z", "p", "b"] {
        for i in 0..4 {
            let k = format!("{p}{i}");
            for cmd in [vec!["TYPE", &k], vec!["DUMP-ANY", &k], vec!["PTTL", &k]] {
                let reply = match cmd[0] {
                    "DUMP-ANY" => match p {
                        "s" | "c" | "b" => node.run(&["GET", &k]),
                        "set" => node.run(&["SMEMBERS", &k]),
                        "l" => node.run(&["LRANGE", &k, "0", "-1"]),
                        "h" => node.run(&["HGETALL", &k]),
                        "z" => node.run(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]),
                        _ => node.run(&["PFCOUNT", &k]),
                    },
                    _ => node.run(&cmd),
                };
                out.push(normalized(reply));
            }
        }
    }
    out
}

#[test]
fn snapshot_round_trip_changes_no_read_digest_or_merge() {
    let dir = TempDir::new("law");
    for seed in 0..support::inproc::seeds(30) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut nodes = vec![InprocNode::new(0x100), InprocNode::new(0x200)];
        for _ in 0..200 {
            let who = rng.gen_range(0..2);
            let cmd = random_write(&mut rng);
            let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
            nodes[who].run(&args);
            if rng.gen_bool(0.3) {
                let (from, to) = if rng.gen_bool(0.5) { (0, 1) } else { (1, 0) };
                support::inproc::deliver_one(&nodes, from, to);
            }
        }
        // Save node 0 and load the file into a fresh node with its id.
        let path = dir.0.join(format!("law-{seed}.snap"));
        {
            let store = nodes[0].state.store.lock();
            nodes[0].state.persist.save(&store, &path).expect("saves");
        }
        let snap = cordis::persist::snapshot::read(&path).unwrap().unwrap();
        let mut loaded = InprocNode::new(0x100);
        loaded
            .state
            .store
            .lock()
            .restore_image(snap.meta.image, snap.entries, true);
        // Every key's CRDT state, the context and the vectors are equal.
        {
            let (a, b) = (nodes[0].state.store.lock(), loaded.state.store.lock());
            assert_eq!(a.image_header(), b.image_header(), "seed {seed}");
            let mut keys_a: Vec<_> = a
                .image_keys()
                .map(|(d, k, s)| (d, k.to_vec(), format!("{s:?}")))
                .collect();
            let mut keys_b: Vec<_> = b
                .image_keys()
                .map(|(d, k, s)| (d, k.to_vec(), format!("{s:?}")))
                .collect();
            keys_a.sort();
            keys_b.sort();
            assert_eq!(keys_a, keys_b, "seed {seed}: key states differ");
        }
        assert_eq!(nodes[0].digest(), loaded.digest(), "seed {seed}");
        assert_eq!(reads(&mut nodes[0]), reads(&mut loaded), "seed {seed}");
        // Merging the peer's pending batches gives the same result on both.
        let mut pair = [nodes.remove(0), nodes.remove(0)];
        let mut loaded_pair = [loaded, InprocNode::new(0x300)];
        support::inproc::deliver_everything(&pair[..]);
        std::mem::swap(&mut pair[1], &mut loaded_pair[1]);
        // loaded_pair = [loaded, original node 1]; pair = [original 0, spare]
        support::inproc::deliver_everything(&loaded_pair[..]);
        assert_eq!(
            pair[0].digest(),
            loaded_pair[0].digest(),
            "seed {seed}: merge"
        );
        assert_eq!(
            reads(&mut pair[0]),
            reads(&mut loaded_pair[0]),
            "seed {seed}: merge reads"
        );
    }
}

/// Every key's CRDT state on a node, sorted by name (compared with the
/// states' own equality: a member table's order is not state).
fn key_states(node: &InprocNode) -> Vec<(u8, bytes::Bytes, cordis::crdt::KeyState)> {
    let store = node.state.store.lock();
    let mut keys: Vec<_> = store
        .image_keys()
        .map(|(d, k, s)| (d, bytes::Bytes::copy_from_slice(k), s.clone()))
        .collect();
    keys.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    keys
}

/// The stepped background save's law: with writes and peers' batches
/// applied between its steps (including FLUSHDB and deletes of keys not
/// reached yet), the file it ends with loads to exactly the state at its
/// end: key states, context, vectors, digest and reads. Steps are one to
/// three keys, so most writes land between them.
#[test]
fn a_stepped_background_save_loads_to_the_state_at_its_end() {
    use cordis::persist::bgsave::SteppedSave;
    use cordis::persist::snapshot::SnapshotMeta;
    let dir = TempDir::new("stepped");
    let mut replayed_total = 0;
    for seed in 0..support::inproc::seeds(40) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut nodes = vec![InprocNode::new(0x100), InprocNode::new(0x200)];
        let write = |nodes: &mut Vec<InprocNode>, rng: &mut StdRng| {
            let who = rng.gen_range(0..2);
            let k = |rng: &mut StdRng, p: &str| format!("{p}{}", rng.gen_range(0..4));
            // Multi-key writes too: each key of one batch gets its own dot.
            let cmd: Vec<String> = match rng.gen_range(0..12) {
                0 => vec![
                    "MSET".into(),
                    k(rng, "s"),
                    "m1".into(),
                    k(rng, "s"),
                    "m2".into(),
                ],
                1 => vec!["RENAME".into(), k(rng, "h"), k(rng, "h")],
                2 => vec!["COPY".into(), k(rng, "z"), k(rng, "z"), "REPLACE".into()],
                3 => vec!["SMOVE".into(), k(rng, "set"), k(rng, "set"), "7".into()],
                _ => random_write(rng),
            };
            let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
            nodes[who].run(&args);
            if rng.gen_bool(0.3) {
                let (from, to) = if rng.gen_bool(0.5) { (0, 1) } else { (1, 0) };
                support::inproc::deliver_one(nodes, from, to);
            }
        };
        for _ in 0..150 {
            write(&mut nodes, &mut rng);
        }
        let mut save = {
            let mut store = nodes[0].state.store.lock();
            let meta = SnapshotMeta {
                name: "stepped".into(),
                incarnation: 1,
                saved_unix_ms: 0,
                keys: 0,
                image: store.image_header(),
            };
            SteppedSave::begin(&mut store, meta)
        };
        loop {
            for _ in 0..rng.gen_range(0..4) {
                write(&mut nodes, &mut rng);
            }
            let mut store = nodes[0].state.store.lock();
            let more = save
                .step(&mut store, rng.gen_range(1..=3), Duration::from_secs(1))
                .expect("a step encodes");
            if !more {
                break;
            }
        }
        for _ in 0..rng.gen_range(0..4) {
            write(&mut nodes, &mut rng);
        }
        let path = dir.0.join(format!("stepped-{seed}.snap"));
        {
            let mut store = nodes[0].state.store.lock();
            save.end(&mut store)
                .expect("the save ends")
                .write(&path)
                .expect("the file is written");
        }
        // Writes after the end are not in the file.
        let expected_states = key_states(&nodes[0]);
        let expected_header = nodes[0].state.store.lock().image_header();
        let expected_digest = nodes[0].digest();
        let expected_reads = reads(&mut nodes[0]);
        write(&mut nodes, &mut rng);
        let snap = cordis::persist::snapshot::read(&path).unwrap().unwrap();
        let mut loaded = InprocNode::new(0x100);
        let (_, replayed) = {
            let mut store = loaded.state.store.lock();
            cordis::persist::load_snapshot(&mut store, snap, true).expect("loads")
        };
        replayed_total += replayed;
        let mut header = loaded.state.store.lock().image_header();
        // The clock only has to be past every dot; the saving node's may
        // have read a later instant that no change carried.
        assert!(header.clock <= expected_header.clock, "seed {seed}");
        header.clock = expected_header.clock;
        assert_eq!(header, expected_header, "seed {seed}");
        let got_states = key_states(&loaded);
        if got_states != expected_states {
            let diff: Vec<_> = got_states
                .iter()
                .filter(|e| !expected_states.contains(e))
                .chain(expected_states.iter().filter(|e| !got_states.contains(e)))
                .collect();
            panic!("seed {seed}: key states differ:\n{diff:#?}");
        }
        assert_eq!(loaded.digest(), expected_digest, "seed {seed}");
        assert_eq!(reads(&mut loaded), expected_reads, "seed {seed}");
    }
    assert!(
        replayed_total > 0,
        "no change landed between steps: the law was not exercised"
    );
}

/// BGSAVE through the binary while a client keeps writing: write `i` is a
/// MULTI of `INCR ctr` (giving `i`), `SET w:(i % 500) i` and `DEL key:i`
/// (a key DEBUG POPULATE made, reached by the save's steps or not yet).
/// After kill -9 and a restart, the data is exactly the first `c` writes
/// for `c` = the restored counter: every write acknowledged before BGSAVE
/// answered is in, none after the writer stopped.
#[test]
fn bgsave_under_writes_then_kill_9_restores_a_prefix_of_the_writes() {
    let dir = TempDir::new("bgsave-writes");
    const POPULATED: u64 = 300_000;
    let (node, addr) = start(&dir, &[]);
    let mut c = conn(&addr);
    c.ok(&["DEBUG", "POPULATE", &POPULATED.to_string()]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(AtomicU64::new(0));
    let writer = {
        let (addr, stop, acked) = (addr.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut w = conn(&addr);
            let mut pipe = redis::pipe();
            while !stop.load(Ordering::Relaxed) {
                let i = acked.load(Ordering::Relaxed) + 1;
                pipe.clear();
                pipe.atomic()
                    .cmd("INCR")
                    .arg("ctr")
                    .cmd("SET")
                    .arg(format!("w:{}", i % 500))
                    .arg(i)
                    .cmd("DEL")
                    .arg(format!("key:{i}"));
                let (n, _, _): (u64, String, i64) = pipe.query(&mut w.0).expect("a write");
                assert_eq!(n, i, "writes are sequential");
                acked.store(i, Ordering::Relaxed);
            }
        })
    };
    wait_until("the writer starts", 10, || {
        acked.load(Ordering::Relaxed) > 100
    });
    assert_eq!(c.status(&["BGSAVE"]), "Background saving started");
    let before_save = acked.load(Ordering::Relaxed);
    wait_until("BGSAVE ends", 60, || {
        info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0"
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer");
    let after_stop = acked.load(Ordering::Relaxed);
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
        "ok"
    );
    node.kill9();
    let (_node, addr) = start(&dir, &[]);
    let mut c = conn(&addr);
    let restored: u64 = c.bulk(&["GET", "ctr"]).expect("ctr").parse().unwrap();
    assert!(
        (before_save..=after_stop).contains(&restored),
        "restored {restored} writes; {before_save} were acknowledged before BGSAVE, {after_stop} in all"
    );
    for j in 0..500u64 {
        let last = (1..=restored).rev().find(|i| i % 500 == j);
        assert_eq!(
            c.bulk(&["GET", &format!("w:{j}")]),
            last.map(|i| i.to_string()),
            "w:{j} after {restored} writes"
        );
    }
    for i in (1..=after_stop + 10).step_by(7) {
        let exists = c.int(&["EXISTS", &format!("key:{i}")]);
        assert_eq!(
            exists,
            (i > restored) as i64,
            "key:{i} after {restored} writes"
        );
    }
    let expected_keys = POPULATED - restored.min(POPULATED) + restored.min(500) + 1;
    assert_eq!(c.int(&["DBSIZE"]) as u64, expected_keys);
    eprintln!(
        "BGSAVE under writes: {before_save} writes before BGSAVE, {restored} in the file, {after_stop} in all"
    );
}

/// CONFIG SET appendonly at run time: `yes` starts an AOF from the data
/// already there (a kill -9 afterwards loses nothing acknowledged under
/// `always`), `no` stops it and leaves the files; BGREWRITEAOF with it off
/// names what is missing.
#[test]
fn config_set_appendonly_turns_the_aof_on_and_off_at_run_time() {
    let dir = TempDir::new("aof-runtime");
    let (node, addr) = start(&dir, &[]);
    let mut c = conn(&addr);
    c.ok(&["SET", "before", "1"]);
    assert!(c
        .err(&["BGREWRITEAOF"])
        .contains("append-only file, which is off"));
    c.ok(&["CONFIG", "SET", "appendfsync", "always"]);
    c.ok(&["CONFIG", "SET", "appendonly", "yes"]);
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
    assert_eq!(
        c.strings(&["CONFIG", "GET", "appendonly"]),
        vec!["appendonly".to_string(), "yes".to_string()]
    );
    for i in 0..200 {
        c.int(&["RPUSH", "after", &i.to_string()]);
    }
    node.kill9();
    // `always` on the restarted node too: the kill -9 below must lose nothing.
    let (node, addr) = start(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = conn(&addr);
    assert_eq!(c.bulk(&["GET", "before"]).as_deref(), Some("1"));
    assert_eq!(c.int(&["LLEN", "after"]), 200);
    c.ok(&["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "0");
    c.ok(&["SET", "unlogged", "x"]);
    assert!(aof_dir(&dir).join("appendonly.aof.manifest").exists());
    // On again: a fresh AOF from the state now, the earlier files replaced.
    c.ok(&["CONFIG", "SET", "appendonly", "yes"]);
    c.ok(&["SET", "logged", "y"]);
    assert_eq!(
        manifest_files(&dir)
            .iter()
            .filter(|(k, _)| k == "base")
            .count(),
        1
    );
    node.kill9();
    let (_node, addr) = start(&dir, &["--appendonly", "yes"]);
    let mut c = conn(&addr);
    assert_eq!(c.bulk(&["GET", "unlogged"]).as_deref(), Some("x"));
    assert_eq!(c.bulk(&["GET", "logged"]).as_deref(), Some("y"));
    assert_eq!(c.int(&["LLEN", "after"]), 200);
}
