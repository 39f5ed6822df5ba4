//! covers: flushall flushdb unlink
//!
//! Lazy freeing and the allocator's figures on a real node over a socket:
//! FLUSHALL/FLUSHDB ASYNC (and the plain forms under
//! `lazyfree-lazy-user-flush yes`) answer at once, the data is gone, the
//! flushed keys are freed on the lazyfree thread (`lazyfreed_objects`
//! grows by them, `lazyfree_pending_objects` returns to 0) while other
//! clients are served; SYNC frees inline; UNLINK of a big set; and
//! `used_memory` tracks what the allocator holds.
//!
//! This binary installs the counting allocator the cordis binary uses, so
//! `used_memory` is real here. The lazyfree counters are process-wide, so
//! the tests take turns (one lock). No assertion is on speed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use cordis::store::memory::CountingAllocator;

mod support;

use support::client::Conn;
use support::Node;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Generous bound for background work; only a hang fails on it.
const PATIENCE: Duration = Duration::from_secs(60);

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn info_text(c: &mut Conn) -> String {
    match c.v(&["INFO", "memory"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO replied {other:?}"),
    }
}

fn info_str(c: &mut Conn, field: &str) -> String {
    let prefix = format!("{field}:");
    info_text(c)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("INFO memory has no {field}"))
}

fn info_num(c: &mut Conn, field: &str) -> u64 {
    info_str(c, field)
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number"))
}

/// Waits until the lazyfree thread has nothing pending.
fn drained(c: &mut Conn) {
    let deadline = Instant::now() + PATIENCE;
    while info_num(c, "lazyfree_pending_objects") != 0 {
        assert!(Instant::now() < deadline, "lazyfree never drained");
        thread::sleep(Duration::from_millis(10));
    }
}

/// `used_memory` once the once-a-second trim of the delta log has run.
fn settled_used(c: &mut Conn) -> u64 {
    thread::sleep(Duration::from_millis(1200));
    info_num(c, "used_memory")
}

fn populate(c: &mut Conn, db: &str, keys: u64, prefix: &str) {
    c.ok(&["SELECT", db]);
    c.ok(&["DEBUG", "POPULATE", &keys.to_string(), prefix, "16"]);
    assert!(c.int(&["DBSIZE"]) >= keys as i64);
}

/// Pings on its own connection until stopped; counts the replies.
struct Pinger {
    stop: Arc<AtomicBool>,
    replies: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Pinger {
    fn start(node: &Node) -> Pinger {
        let mut c = node.client();
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), replies.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                assert_eq!(c.status(&["PING"]), "PONG");
                r.fetch_add(1, Ordering::Relaxed);
            }
        });
        Pinger {
            stop,
            replies,
            thread: Some(thread),
        }
    }

    fn replies(&self) -> u64 {
        self.replies.load(Ordering::Relaxed)
    }

    /// Waits (bounded) for `more` replies past what it had counted.
    fn served(&self, more: u64) {
        let want = self.replies() + more;
        let deadline = Instant::now() + PATIENCE;
        while self.replies() < want {
            assert!(Instant::now() < deadline, "PINGs stopped being served");
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("pinger ok");
    }
}

#[test]
fn flushall_async_frees_the_keys_on_the_lazyfree_thread() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    populate(&mut c, "0", 200_000, "a");
    populate(&mut c, "3", 50_000, "b");
    c.ok(&["SELECT", "0"]);
    drained(&mut c);
    let freed_before = info_num(&mut c, "lazyfreed_objects");
    let pinger = Pinger::start(&node);
    pinger.served(1);
    c.ok(&["FLUSHALL", "ASYNC"]);
    // Another client is served while (or after) the drop runs.
    pinger.served(10);
    // The data is gone at once, in every database.
    assert_eq!(c.int(&["DBSIZE"]), 0);
    c.ok(&["SELECT", "3"]);
    assert_eq!(c.int(&["DBSIZE"]), 0);
    assert_eq!(c.bulk(&["GET", "b:1"]), None);
    drained(&mut c);
    pinger.served(1);
    pinger.finish();
    // Every flushed key went through the lazyfree thread.
    let freed = info_num(&mut c, "lazyfreed_objects") - freed_before;
    assert_eq!(freed, 250_000);
    // CONFIG RESETSTAT starts the count again, as in Redis.
    c.ok(&["CONFIG", "RESETSTAT"]);
    assert_eq!(info_num(&mut c, "lazyfreed_objects"), 0);
    // The node still writes and reads.
    c.ok(&["SET", "after", "1"]);
    assert_eq!(c.bulk(&["GET", "after"]).as_deref(), Some("1"));
}

#[test]
fn flushdb_async_empties_only_the_selected_database() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    populate(&mut c, "1", 1000, "k");
    populate(&mut c, "2", 500, "k");
    drained(&mut c);
    let freed_before = info_num(&mut c, "lazyfreed_objects");
    c.ok(&["SELECT", "1"]);
    c.ok(&["FLUSHDB", "ASYNC"]);
    assert_eq!(c.int(&["DBSIZE"]), 0);
    c.ok(&["SELECT", "2"]);
    assert_eq!(c.int(&["DBSIZE"]), 500);
    drained(&mut c);
    assert_eq!(info_num(&mut c, "lazyfreed_objects") - freed_before, 1000);
}

#[test]
fn lazyfree_lazy_user_flush_decides_the_plain_forms() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    let flush_and_count = |c: &mut Conn, args: &[&str]| {
        populate(c, "0", 2000, "p");
        drained(c);
        let before = info_num(c, "lazyfreed_objects");
        c.ok(args);
        assert_eq!(c.int(&["DBSIZE"]), 0, "{args:?}");
        drained(c);
        info_num(c, "lazyfreed_objects") - before
    };
    // Default: plain FLUSHALL / FLUSHDB free inline.
    assert_eq!(flush_and_count(&mut c, &["FLUSHALL"]), 0);
    assert_eq!(flush_and_count(&mut c, &["FLUSHDB"]), 0);
    c.ok(&["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"]);
    assert_eq!(flush_and_count(&mut c, &["FLUSHALL"]), 2000);
    assert_eq!(flush_and_count(&mut c, &["FLUSHDB"]), 2000);
    // SYNC still means inline, whatever the parameter says.
    assert_eq!(flush_and_count(&mut c, &["FLUSHALL", "SYNC"]), 0);
    assert_eq!(flush_and_count(&mut c, &["FLUSHDB", "SYNC"]), 0);
    c.ok(&["CONFIG", "SET", "lazyfree-lazy-user-flush", "no"]);
    assert_eq!(flush_and_count(&mut c, &["FLUSHDB", "ASYNC"]), 2000);
    // Anything else is a syntax error, and flushes nothing.
    populate(&mut c, "0", 10, "s");
    assert!(c.err(&["FLUSHALL", "LATER"]).contains("syntax error"));
    assert!(c
        .err(&["FLUSHDB", "ASYNC", "SYNC"])
        .contains("syntax error"));
    assert_eq!(c.int(&["DBSIZE"]), 10);
}

#[test]
fn unlink_of_a_big_set() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "big"];
    sadd.extend(members.iter().map(String::as_str));
    assert_eq!(c.int(&sadd), 1000);
    c.ok(&["SET", "small", "x"]);
    assert_eq!(c.int(&["UNLINK", "big", "small", "missing"]), 2);
    assert_eq!(c.int(&["EXISTS", "big", "small"]), 0);
    assert_eq!(c.int(&["SCARD", "big"]), 0);
    assert_eq!(c.int(&["SADD", "big", "again"]), 1);
    assert_eq!(c.int(&["SCARD", "big"]), 1);
}

#[test]
fn used_memory_tracks_the_allocator_and_falls_after_a_flush() {
    let _turn = one_at_a_time();
    let node = Node::start();
    let mut c = node.client();
    // The harness keeps the delta log, which would hold the loaded writes
    // after the flush: without it the keyspace is all that was loaded.
    c.ok(&["CONFIG", "SET", "replication-log-bytes", "0"]);
    drained(&mut c);
    let empty = settled_used(&mut c);
    // 300k keys: the allocator's fixed overhead (thread caches, arena
    // metadata, ~1.5 MB) is not in used_memory, and with compact keys
    // 100k of them no longer dwarf it.
    populate(&mut c, "0", 300_000, "m");
    let loaded = settled_used(&mut c);
    assert!(
        loaded > empty + 300_000 * 50,
        "300k keys added only {} bytes",
        loaded - empty
    );
    #[cfg(feature = "jemalloc")]
    {
        assert!(info_str(&mut c, "mem_allocator").starts_with("jemalloc-"));
        // used_memory is what jemalloc holds in live allocations, within
        // 10% (issue 16), read back through the allocator's own stats.
        let allocated = info_num(&mut c, "allocator_allocated") as f64;
        let used = info_num(&mut c, "used_memory") as f64;
        assert!(
            (used - allocated).abs() <= 0.10 * allocated,
            "used_memory {used} vs jemalloc's allocated {allocated}"
        );
        assert!(info_num(&mut c, "allocator_resident") as f64 >= allocated * 0.9);
    }
    c.ok(&["FLUSHALL", "ASYNC"]);
    drained(&mut c);
    let after = settled_used(&mut c);
    assert!(
        after < empty + (loaded - empty) / 10,
        "after FLUSHALL ASYNC used_memory is {after} (empty {empty}, loaded {loaded})"
    );
}
