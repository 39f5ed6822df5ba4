//! covers: touch
//!
//! `maxmemory` and the eviction policies on real nodes over a socket: the
//! cap holds under load for every policy, each picks the victims it should,
//! `noeviction` answers Redis's OOM error to writes and keeps serving reads,
//! OBJECT IDLETIME/FREQ, and two nodes evicting under load still converge.
//!
//! This binary installs the counting allocator the cordis binary uses, so
//! `used_memory` is real here. All nodes of the process share that one
//! count, so the tests take turns (one lock) and size their caps from the
//! memory in use when they start.

use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use cordis::config::Config;
use cordis::store::memory::CountingAllocator;

mod support;

use support::client::Conn;
use support::Node;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// One test at a time: they share the process's memory count.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn info_field(c: &mut Conn, field: &str) -> u64 {
    let text = match c.v(&["INFO", "all"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO replied {other:?}"),
    };
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number"))
}

fn used(c: &mut Conn) -> u64 {
    info_field(c, "used_memory")
}

/// `used_memory` once the once-a-second trim of the delta log has run, so
/// a cap below it can only be met by evicting keys.
fn settled_used(c: &mut Conn) -> u64 {
    thread::sleep(Duration::from_millis(1200));
    used(c)
}

fn value(len: usize) -> String {
    "v".repeat(len)
}

/// SETs `count` keys `{prefix}{i}` with `value` in pipelines of 100,
/// calling `after_each` between pipelines; every reply must be OK.
fn set_keys(
    c: &mut Conn,
    prefix: &str,
    count: usize,
    value: &str,
    mut after_each: impl FnMut(&mut Conn),
) {
    for start in (0..count).step_by(100) {
        let mut pipe = redis::pipe();
        for i in start..(start + 100).min(count) {
            pipe.cmd("SET")
                .arg(format!("{prefix}{i}"))
                .arg(value)
                .ignore();
        }
        pipe.query::<()>(&mut c.0)
            .unwrap_or_else(|e| panic!("SET pipeline at {prefix}{start}: {e}"));
        after_each(c);
    }
}

/// SETs `count` keys `{prefix}{i}` in pipelines of 100, answering each
/// SET on its own so an OOM refusal does not stop the rest; returns how
/// many were refused (any other error fails the test).
fn set_keys_past_oom(c: &mut Conn, prefix: &str, count: usize, value: &str) -> usize {
    let mut refused = 0;
    for start in (0..count).step_by(100) {
        let mut pipe = redis::pipe();
        for i in start..(start + 100).min(count) {
            pipe.cmd("SET").arg(format!("{prefix}{i}")).arg(value);
        }
        // Raw replies, so one error does not hide the others.
        let n = (start + 100).min(count) - start;
        let packed = pipe.get_packed_pipeline();
        let replies = redis::ConnectionLike::req_packed_commands(&mut c.0, &packed, 0, n)
            .unwrap_or_else(|e| panic!("SET pipeline at {prefix}{start}: {e}"));
        for reply in replies {
            match reply {
                redis::Value::Okay => {}
                redis::Value::ServerError(e) if e.code() == "OOM" => refused += 1,
                other => panic!("SET at {prefix}{start}: {other:?}"),
            }
        }
    }
    refused
}

fn existing(c: &mut Conn, prefix: &str, range: std::ops::Range<usize>) -> usize {
    let keys: Vec<String> = range.map(|i| format!("{prefix}{i}")).collect();
    let mut args = vec!["EXISTS"];
    args.extend(keys.iter().map(String::as_str));
    c.int(&args) as usize
}

#[test]
fn memory_stays_under_the_cap_under_load() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
        c.ok(&["FLUSHALL"]);
        let cap = settled_used(&mut c) + 3 * 1024 * 1024;
        c.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
        c.ok(&["CONFIG", "SET", "maxmemory-policy", policy]);
        let before = info_field(&mut c, "evicted_keys");
        // 8 MB of values into a 3 MB budget, with a TTL for the volatile
        // policies to act on.
        let v = value(1000);
        let mut peak = 0;
        for start in (0..8000).step_by(100) {
            let mut pipe = redis::pipe();
            for i in start..start + 100 {
                pipe.cmd("SET").arg(format!("load:{i}")).arg(&v);
                if policy.starts_with("volatile") {
                    pipe.arg("EX").arg(1000 + i);
                }
                pipe.ignore();
            }
            pipe.query::<()>(&mut c.0)
                .unwrap_or_else(|e| panic!("{policy}: SET pipeline at {start}: {e}"));
            peak = peak.max(used(&mut c));
        }
        // Eviction runs before each command, so one pipeline of 100 SETs
        // (and its buffers) is the most memory can run ahead of the cap.
        assert!(
            peak <= cap + 1024 * 1024,
            "{policy}: used_memory peaked at {peak}, cap {cap}"
        );
        let evicted = info_field(&mut c, "evicted_keys") - before;
        let keys = c.int(&["DBSIZE"]) as u64;
        assert!(evicted > 4000, "{policy}: evicted {evicted}");
        assert_eq!(keys + evicted, 8000, "{policy}: kept or evicted");
    }
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    // Every access counts, so the hot keys' counters are certain.
    c.ok(&["CONFIG", "SET", "lfu-log-factor", "0"]);
    let v = value(1000);
    set_keys(&mut c, "k:", 2000, &v, |_| {});
    for _ in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("GET").arg(format!("k:{i}")).ignore();
        }
        pipe.query::<()>(&mut c.0).unwrap();
    }
    assert!(c.int(&["OBJECT", "FREQ", "k:0"]) >= 20);
    assert_eq!(c.int(&["OBJECT", "FREQ", "k:1999"]), 5);
    let cap = settled_used(&mut c);
    c.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
    set_keys(&mut c, "new:", 800, &v, |_| {});
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    let hot = existing(&mut c, "k:", 0..200);
    assert!(info_field(&mut c, "evicted_keys") >= 700);
    assert!(
        hot >= 195,
        "only {hot} of 200 frequently read keys survived"
    );
}

#[test]
fn allkeys_lru_evicts_untouched_keys_and_keeps_recently_read_ones() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let v = value(1000);
    set_keys(&mut c, "k:", 2000, &v, |_| {});
    // The LRU clock counts seconds: let the keys age, then read a few.
    thread::sleep(Duration::from_millis(900));
    settled_used(&mut c);
    for i in 0..200 {
        c.bulk(&["GET", &format!("k:{i}")]).expect("present");
    }
    // Just read (a second boundary may pass under load).
    assert!(c.int(&["OBJECT", "IDLETIME", "k:0"]) <= 1);
    assert!(c.int(&["OBJECT", "IDLETIME", "k:1999"]) >= 2);
    // Every new key now has to push an old one out.
    let cap = settled_used(&mut c);
    c.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
    set_keys(&mut c, "new:", 800, &v, |_| {});
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    let hot = existing(&mut c, "k:", 0..200);
    let cold = existing(&mut c, "k:", 200..2000);
    assert!(info_field(&mut c, "evicted_keys") >= 700);
    assert!(hot >= 190, "only {hot} of 200 recently read keys survived");
    assert!(cold <= 1100, "{cold} of 1800 untouched keys survived");
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    let v = value(1000);
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        c.ok(&["FLUSHALL"]);
        c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
        c.ok(&["CONFIG", "SET", "maxmemory-policy", policy]);
        set_keys(&mut c, "persistent:", 500, &v, |_| {});
        for i in 0..500 {
            c.ok(&["SET", &format!("volatile:{i}"), &v, "EX", "1000"]);
        }
        let cap = settled_used(&mut c) - 200 * 1024;
        c.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
        assert_eq!(c.status(&["PING"]), "PONG");
        assert_eq!(existing(&mut c, "persistent:", 0..500), 500, "{policy}");
        let left = existing(&mut c, "volatile:", 0..500);
        assert!(left < 400, "{policy}: {left} volatile keys left");
        // Only keys without a TTL remain evictable-or-not: none qualify,
        // so a write that needs room is refused and reads still work.
        c.ok(&["CONFIG", "SET", "maxmemory", "1"]);
        assert_eq!(c.err(&["SET", "x", "y"]), OOM, "{policy}");
        assert_eq!(c.bulk(&["GET", "persistent:7"]).as_deref(), Some(&*v));
        assert_eq!(existing(&mut c, "volatile:", 0..500), 0, "{policy}");
        assert_eq!(existing(&mut c, "persistent:", 0..500), 500, "{policy}");
    }
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
}

#[test]
fn volatile_ttl_evicts_the_soonest_deadlines_first() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]);
    c.ok(&["CONFIG", "SET", "maxmemory-samples", "10"]);
    let v = value(1000);
    // Key i expires after 1000 + 10·i seconds: key 0 first.
    for i in 0..1000 {
        let ttl = (1000 + 10 * i).to_string();
        c.ok(&["SET", &format!("t:{i}"), &v, "EX", &ttl]);
    }
    let cap = settled_used(&mut c) - 200 * 1024;
    c.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
    assert_eq!(c.status(&["PING"]), "PONG");
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    let soonest = existing(&mut c, "t:", 0..200);
    let latest = existing(&mut c, "t:", 800..1000);
    assert!(soonest <= 100, "{soonest} of the 200 soonest survived");
    assert!(latest >= 195, "only {latest} of the 200 latest survived");
}

#[test]
fn noeviction_answers_oom_to_writes_and_serves_reads() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "kept", "value"]);
    c.ok(&["CONFIG", "SET", "maxmemory", "1mb"]);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "maxmemory"]),
        vec!["maxmemory".to_string(), "1048576".to_string()]
    );
    c.ok(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(c.err(&["SET", "a", "b"]), OOM);
    assert_eq!(c.err(&["INCR", "n"]), OOM);
    assert_eq!(c.err(&["LPUSH", "l", "x"]), OOM);
    assert_eq!(c.bulk(&["GET", "kept"]).as_deref(), Some("value"));
    assert_eq!(c.int(&["EXISTS", "kept"]), 1);
    // Not denyoom: DEL frees memory, so Redis lets it through.
    assert_eq!(c.int(&["DEL", "nothing"]), 0);
    // Inside MULTI every command is refused at queue time; EXEC aborts.
    c.ok(&["MULTI"]);
    assert_eq!(c.err(&["GET", "kept"]), OOM);
    assert_eq!(
        c.err(&["EXEC"]),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(info_field(&mut c, "evicted_keys"), 0);
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    c.ok(&["SET", "a", "b"]);
}

#[test]
fn exec_of_a_queued_write_is_refused_over_the_cap_but_reads_run() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    let mut admin = node.client();
    c.ok(&["SET", "x", "1"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["GET", "x"]), "QUEUED");
    assert_eq!(c.status(&["PING"]), "QUEUED");
    admin.ok(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(
        support::client::strings_of(c.v(&["EXEC"])),
        vec!["1".to_string(), "PONG".to_string()]
    );
    admin.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "x", "2"]), "QUEUED");
    admin.ok(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(
        c.err(&["EXEC"]),
        format!("EXECABORT Transaction discarded because of: {OOM}")
    );
    admin.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    // The transaction is gone and nothing ran.
    assert_eq!(c.err(&["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(c.bulk(&["GET", "x"]).as_deref(), Some("1"));
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    assert!(c
        .err(&["OBJECT", "FREQ", "k"])
        .starts_with("ERR An LFU maxmemory policy is not selected, access frequency not tracked."));
    assert_eq!(c.v(&["OBJECT", "IDLETIME", "missing"]), redis::Value::Nil);
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    c.ok(&["CONFIG", "SET", "lfu-log-factor", "0"]);
    assert!(c
        .err(&["OBJECT", "IDLETIME", "k"])
        .starts_with("ERR An LFU maxmemory policy is selected, idle time not tracked."));
    let before = c.int(&["OBJECT", "FREQ", "k"]);
    for _ in 0..10 {
        c.bulk(&["GET", "k"]);
    }
    // With log factor 0 every access counts; OBJECT itself is no access.
    assert_eq!(c.int(&["OBJECT", "FREQ", "k"]), before + 10);
    assert_eq!(c.int(&["OBJECT", "FREQ", "k"]), before + 10);
    assert_eq!(c.int(&["TOUCH", "k", "missing"]), 1);
    assert_eq!(c.int(&["OBJECT", "FREQ", "k"]), before + 11);
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    thread::sleep(Duration::from_millis(1100));
    assert!(c.int(&["OBJECT", "IDLETIME", "k"]) >= 1);
    // TYPE, TTL and EXISTS are no access; TOUCH is.
    c.status(&["TYPE", "k"]);
    c.int(&["TTL", "k"]);
    c.int(&["EXISTS", "k"]);
    assert!(c.int(&["OBJECT", "IDLETIME", "k"]) >= 1);
    c.int(&["TOUCH", "k"]);
    assert_eq!(c.int(&["OBJECT", "IDLETIME", "k"]), 0);
}

const SECRET: &str = "eviction-test-secret";

/// Two nodes linked as peers.
fn pair() -> (Node, Node) {
    let listeners = [
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    ];
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let [first, second] = listeners;
    let config = |peer: &str| Config {
        peers: vec![peer.to_string()],
        peer_secret: SECRET.into(),
        peer_heartbeat_ms: 100,
        peer_timeout_ms: 1500,
        reconnect_max_ms: 200,
        anti_entropy_interval_ms: 500,
        ..Config::default()
    };
    (
        Node::member(config(&addrs[1]), Some(first)),
        Node::member(config(&addrs[0]), Some(second)),
    )
}

fn digest(c: &mut Conn) -> String {
    c.status(&["DEBUG", "DIGEST"])
}

#[test]
fn an_eviction_replicates_and_counts_only_where_it_was_chosen() {
    let _turn = one_at_a_time();
    let (a, b) = pair();
    let mut ca = a.client();
    let mut cb = b.client();
    let v = value(1000);
    set_keys(&mut ca, "k:", 2000, &v, |_| {});
    await_equal_digests(&mut ca, &mut cb);
    assert_eq!(cb.int(&["DBSIZE"]), 2000);
    // Only node a has a cap; node b keeps no cap and must not evict.
    let cap = settled_used(&mut ca) - 512 * 1024;
    ca.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    ca.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
    assert_eq!(ca.status(&["PING"]), "PONG");
    ca.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    let evicted = info_field(&mut ca, "evicted_keys");
    assert!(evicted > 0, "node a evicted nothing");
    await_equal_digests(&mut ca, &mut cb);
    assert_eq!(cb.int(&["DBSIZE"]), 2000 - evicted as i64);
    assert_eq!(info_field(&mut cb, "evicted_keys"), 0);
}

/// Polls until both nodes report the same digest twice in a row.
fn await_equal_digests(ca: &mut Conn, cb: &mut Conn) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (String::new(), String::new());
    loop {
        let now = (digest(ca), digest(cb));
        if now.0 == now.1 && now == last {
            return;
        }
        assert!(Instant::now() < deadline, "no convergence: {now:?}");
        last = now;
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_nodes_evicting_under_load_converge() {
    let _turn = one_at_a_time();
    let (a, b) = pair();
    let mut ca = a.client();
    let mut cb = b.client();
    // Both nodes read the one count of this process, and each holds every
    // key (about 13 MB each once replicated): a cap 16 MB over what is in
    // use now makes both evict. Because the count is shared, one node can
    // be over the cap with nothing of its own left to evict while the
    // other (or a delta log waiting for an ack) holds the memory; such a
    // node answers OOM, which real nodes, each with its own memory, would
    // not. The writers carry on past OOM: convergence is the point here.
    let cap = used(&mut ca) + 16 * 1024 * 1024;
    for c in [&mut ca, &mut cb] {
        c.ok(&["CONFIG", "SET", "maxmemory", &cap.to_string()]);
        c.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    }
    let writers: Vec<_> = [a.url(), b.url()]
        .into_iter()
        .enumerate()
        .map(|(n, url)| {
            thread::spawn(move || {
                let mut c = Conn::open(&url);
                let v = value(1000);
                // Half the keys are written on both nodes (concurrent
                // writes to the same keys), half on one.
                set_keys_past_oom(&mut c, "shared:", 4000, &v)
                    + set_keys_past_oom(&mut c, &format!("own{n}:"), 4000, &v)
            })
        })
        .collect();
    let refused: usize = writers
        .into_iter()
        .map(|w| w.join().expect("writer finished"))
        .sum();
    let evicted = info_field(&mut ca, "evicted_keys") + info_field(&mut cb, "evicted_keys");
    assert!(evicted > 0, "no node evicted ({refused} SETs refused)");
    // Stop evicting, then every node must reach the same state.
    for c in [&mut ca, &mut cb] {
        c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    }
    await_equal_digests(&mut ca, &mut cb);
    let (ka, kb) = (ca.int(&["DBSIZE"]), cb.int(&["DBSIZE"]));
    assert_eq!(ka, kb);
    assert!(ka < 12_000, "{ka} keys kept of 12000 written");
}

/// On a node with no peers a SETBIT far out costs the string's bytes, as
/// in Redis (its bit writes fold into the string), so it counts towards
/// `maxmemory` and the next command evicts for it: Redis's tracking unit
/// relies on exactly this.
#[test]
fn a_far_setbit_alone_takes_its_bytes_and_the_next_command_evicts() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    let before = settled_used(&mut c);
    assert_eq!(c.int(&["SETBIT", "probe", "1600000", "0"]), 0);
    let grown = used(&mut c).saturating_sub(before);
    assert!(
        grown >= 190_000,
        "SETBIT of bit 1600000 grew used_memory by {grown}"
    );
    assert_eq!(c.int(&["DEL", "probe"]), 1);

    let limit = settled_used(&mut c) + 100 * 1024;
    c.ok(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    c.ok(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]);
    c.ok(&["SETEX", "volatile-key", "10000", "x"]);
    assert_eq!(c.int(&["SETBIT", "big-key", "1600000", "0"]), 0);
    assert_eq!(c.int(&["GETBIT", "big-key", "0"]), 0);
    assert_eq!(
        c.int(&["EXISTS", "volatile-key"]),
        0,
        "volatile-key was not evicted"
    );
    assert_eq!(c.int(&["STRLEN", "big-key"]), 200_001);
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
}
