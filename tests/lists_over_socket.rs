//! The list commands over a real socket through the `redis` client (and a
//! raw socket where the exact nil shape matters), against `Node::start()`:
//! replies, Redis's error texts, WRONGTYPE, blocking pops woken by another
//! client, by a remote batch, and timing out; inside a transaction they
//! never block; concurrent pushes and pops on two nodes; blocked clients
//! served in the order they blocked (also from a peer's push, and after a
//! whole EXEC); LMPOP, BLMPOP and BRPOPLPUSH.
//! covers: lpush rpush lpushx rpushx lpop rpop llen lrange lindex lset linsert lrem ltrim lpos lmove rpoplpush blpop brpop blmove brpoplpush lmpop blmpop

mod support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value;

use cordis::commands::{ClientState, ServerState};
use cordis::config::Config;
use cordis::crdt::ReplicaId;
use support::client::Conn;
use support::Node;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn pushes_pops_and_lengths() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.int(&["RPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(c.int(&["LPUSH", "l", "y", "z"]), 5);
    assert_eq!(
        c.strings(&["LRANGE", "l", "0", "-1"]),
        ["z", "y", "a", "b", "c"]
    );
    assert_eq!(c.int(&["LPUSHX", "missing", "a"]), 0);
    assert_eq!(c.int(&["RPUSHX", "missing", "a"]), 0);
    assert_eq!(c.int(&["EXISTS", "missing"]), 0);
    assert_eq!(c.int(&["LPUSHX", "l", "x"]), 6);
    assert_eq!(c.int(&["RPUSHX", "l", "d", "e"]), 8);
    assert_eq!(c.int(&["LLEN", "l"]), 8);
    assert_eq!(c.int(&["LLEN", "missing"]), 0);
    assert_eq!(c.bulk(&["LPOP", "l"]).as_deref(), Some("x"));
    assert_eq!(c.bulk(&["RPOP", "l"]).as_deref(), Some("e"));
    assert_eq!(c.strings(&["LPOP", "l", "2"]), ["z", "y"]);
    assert_eq!(c.strings(&["RPOP", "l", "2"]), ["d", "c"]);
    assert_eq!(c.strings(&["LPOP", "l", "0"]), Vec::<String>::new());
    assert_eq!(c.strings(&["LPOP", "l", "10"]), ["a", "b"]);
    assert_eq!(
        c.int(&["EXISTS", "l"]),
        0,
        "popping the last element deletes the key"
    );
    assert_eq!(c.bulk(&["LPOP", "l"]), None);
    assert_eq!(c.v(&["RPOP", "l", "3"]), Value::Nil);
    assert_eq!(
        c.err(&["LPOP", "l", "-1"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(
        c.err(&["LPOP", "l", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.err(&["LPOP", "l", "1", "2"]),
        "ERR wrong number of arguments for 'lpop' command"
    );
    assert_eq!(
        c.err(&["LPUSH", "l"]),
        "ERR wrong number of arguments for 'lpush' command"
    );
    assert_eq!(c.status(&["TYPE", "missing"]), "none");
    c.int(&["RPUSH", "t", "a"]);
    assert_eq!(c.status(&["TYPE", "t"]), "list");
    assert_eq!(
        c.bulk(&["OBJECT", "ENCODING", "t"]).as_deref(),
        Some("quicklist")
    );
}

#[test]
fn nil_shapes_match_redis_exactly() {
    let node = Node::start();
    let mut raw = node.connect();
    assert_eq!(raw.call_str(&["LPOP", "missing"]), b"$-1\r\n");
    assert_eq!(raw.call_str(&["LPOP", "missing", "2"]), b"*-1\r\n");
    assert_eq!(raw.call_str(&["RPOP", "missing", "0"]), b"*-1\r\n");
    assert_eq!(raw.call_str(&["LINDEX", "missing", "0"]), b"$-1\r\n");
    assert_eq!(raw.call_str(&["LPOS", "missing", "a"]), b"$-1\r\n");
    assert_eq!(
        raw.call_str(&["LPOS", "missing", "a", "COUNT", "0"]),
        b"*0\r\n"
    );
    assert_eq!(
        raw.call_str(&["LMOVE", "missing", "d", "LEFT", "LEFT"]),
        b"$-1\r\n"
    );
    assert_eq!(raw.call_str(&["BLPOP", "missing", "0.01"]), b"*-1\r\n");
    assert_eq!(raw.call_str(&["BRPOP", "missing", "0.01"]), b"*-1\r\n");
    assert_eq!(
        raw.call_str(&["BLMOVE", "missing", "d", "LEFT", "RIGHT", "0.01"]),
        b"$-1\r\n"
    );
    raw.call_str(&["RPUSH", "l", "a"]);
    assert_eq!(raw.call_str(&["LPOP", "l", "0"]), b"*0\r\n");
}

#[test]
fn ranges_indexes_and_sets() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["RPUSH", "l", "a", "b", "c", "d", "e"]);
    assert_eq!(c.strings(&["LRANGE", "l", "1", "2"]), ["b", "c"]);
    assert_eq!(c.strings(&["LRANGE", "l", "-2", "100"]), ["d", "e"]);
    assert_eq!(c.strings(&["LRANGE", "l", "-100", "0"]), ["a"]);
    assert_eq!(c.strings(&["LRANGE", "l", "3", "1"]), Vec::<String>::new());
    assert_eq!(c.strings(&["LRANGE", "l", "9", "10"]), Vec::<String>::new());
    assert_eq!(
        c.strings(&["LRANGE", "missing", "0", "-1"]),
        Vec::<String>::new()
    );
    assert_eq!(
        c.err(&["LRANGE", "l", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c.bulk(&["LINDEX", "l", "0"]).as_deref(), Some("a"));
    assert_eq!(c.bulk(&["LINDEX", "l", "-1"]).as_deref(), Some("e"));
    assert_eq!(c.bulk(&["LINDEX", "l", "3"]).as_deref(), Some("d"));
    assert_eq!(c.bulk(&["LINDEX", "l", "5"]), None);
    assert_eq!(c.bulk(&["LINDEX", "l", "-6"]), None);
    assert_eq!(
        c.err(&["LINDEX", "l", "x"]),
        "ERR value is not an integer or out of range"
    );
    c.ok(&["LSET", "l", "1", "B"]);
    c.ok(&["LSET", "l", "-1", "E"]);
    assert_eq!(
        c.strings(&["LRANGE", "l", "0", "-1"]),
        ["a", "B", "c", "d", "E"]
    );
    assert_eq!(c.err(&["LSET", "missing", "0", "x"]), "ERR no such key");
    assert_eq!(c.err(&["LSET", "l", "5", "x"]), "ERR index out of range");
    assert_eq!(c.err(&["LSET", "l", "-6", "x"]), "ERR index out of range");
    c.ok(&["LTRIM", "l", "1", "-2"]);
    assert_eq!(c.strings(&["LRANGE", "l", "0", "-1"]), ["B", "c", "d"]);
    c.ok(&["LTRIM", "l", "-100", "1"]);
    assert_eq!(c.strings(&["LRANGE", "l", "0", "-1"]), ["B", "c"]);
    c.ok(&["LTRIM", "missing", "0", "1"]);
    c.ok(&["LTRIM", "l", "5", "10"]);
    assert_eq!(
        c.int(&["EXISTS", "l"]),
        0,
        "trimming everything deletes the key"
    );
    assert_eq!(
        c.err(&["LTRIM", "l", "0", "x"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn linsert_lrem_and_lpos() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["RPUSH", "l", "a", "b", "a", "c", "a"]);
    assert_eq!(c.int(&["LINSERT", "l", "BEFORE", "b", "x"]), 6);
    assert_eq!(c.int(&["LINSERT", "l", "after", "c", "y"]), 7);
    assert_eq!(
        c.strings(&["LRANGE", "l", "0", "-1"]),
        ["a", "x", "b", "a", "c", "y", "a"]
    );
    assert_eq!(c.int(&["LINSERT", "l", "BEFORE", "zz", "q"]), -1);
    assert_eq!(c.int(&["LINSERT", "missing", "BEFORE", "a", "q"]), 0);
    assert_eq!(
        c.err(&["LINSERT", "l", "MIDDLE", "a", "q"]),
        "ERR syntax error"
    );
    // Repeated inserts at one spot keep their local order.
    for v in ["1", "2", "3"] {
        c.int(&["LINSERT", "l", "BEFORE", "c", v]);
    }
    assert_eq!(
        c.strings(&["LRANGE", "l", "3", "7"]),
        ["a", "1", "2", "3", "c"]
    );
    for v in ["4", "5"] {
        c.int(&["LINSERT", "l", "AFTER", "c", v]);
    }
    assert_eq!(c.strings(&["LRANGE", "l", "7", "10"]), ["c", "5", "4", "y"]);

    assert_eq!(c.int(&["LPOS", "l", "a"]), 0);
    assert_eq!(c.int(&["LPOS", "l", "a", "RANK", "2"]), 3);
    assert_eq!(c.int(&["LPOS", "l", "a", "RANK", "-1"]), 11);
    assert_eq!(
        c.strings(&["LPOS", "l", "a", "COUNT", "0"]),
        ["0", "3", "11"]
    );
    assert_eq!(
        c.strings(&["LPOS", "l", "a", "COUNT", "2", "RANK", "-1"]),
        ["11", "3"]
    );
    assert_eq!(
        c.strings(&["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "4"]),
        ["0", "3"]
    );
    assert_eq!(c.v(&["LPOS", "l", "nope"]), Value::Nil);
    assert_eq!(
        c.err(&["LPOS", "l", "a", "RANK", "0"]),
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
    );
    assert_eq!(
        c.err(&["LPOS", "l", "a", "COUNT", "-1"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        c.err(&["LPOS", "l", "a", "MAXLEN", "-1"]),
        "ERR MAXLEN can't be negative"
    );
    assert_eq!(c.err(&["LPOS", "l", "a", "RANK"]), "ERR syntax error");
    assert_eq!(c.err(&["LPOS", "l", "a", "FOO", "1"]), "ERR syntax error");
    // Redis checks the option's name before its value, and COUNT/MAXLEN
    // answer a non-integer with their own text.
    assert_eq!(c.err(&["LPOS", "l", "a", "FOO", "abc"]), "ERR syntax error");
    assert_eq!(
        c.err(&["LPOS", "l", "a", "COUNT", "abc"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        c.err(&["LPOS", "l", "a", "RANK", "abc"]),
        "ERR value is not an integer or out of range"
    );

    assert_eq!(c.int(&["LREM", "l", "1", "a"]), 1);
    assert_eq!(c.int(&["LREM", "l", "-1", "a"]), 1);
    assert_eq!(c.strings(&["LRANGE", "l", "0", "1"]), ["x", "b"]);
    assert_eq!(c.int(&["RPUSH", "m", "k", "j", "k", "k"]), 4);
    assert_eq!(c.int(&["LREM", "m", "0", "k"]), 3);
    assert_eq!(c.int(&["LREM", "m", "0", "zz"]), 0);
    assert_eq!(c.int(&["LREM", "missing", "0", "k"]), 0);
    assert_eq!(
        c.err(&["LREM", "m", "x", "k"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn lmove_and_rpoplpush() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["RPUSH", "src", "a", "b", "c"]);
    assert_eq!(
        c.bulk(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]).as_deref(),
        Some("a")
    );
    assert_eq!(
        c.bulk(&["LMOVE", "src", "dst", "right", "left"]).as_deref(),
        Some("c")
    );
    assert_eq!(c.strings(&["LRANGE", "dst", "0", "-1"]), ["c", "a"]);
    assert_eq!(c.bulk(&["RPOPLPUSH", "dst", "src"]).as_deref(), Some("a"));
    assert_eq!(c.strings(&["LRANGE", "src", "0", "-1"]), ["a", "b"]);
    // Same key: a rotation.
    assert_eq!(
        c.bulk(&["LMOVE", "src", "src", "LEFT", "RIGHT"]).as_deref(),
        Some("a")
    );
    assert_eq!(c.strings(&["LRANGE", "src", "0", "-1"]), ["b", "a"]);
    assert_eq!(c.bulk(&["RPOPLPUSH", "missing", "src"]), None);
    assert_eq!(
        c.err(&["LMOVE", "src", "dst", "UP", "LEFT"]),
        "ERR syntax error"
    );
    c.ok(&["SET", "str", "x"]);
    assert_eq!(c.err(&["LMOVE", "src", "str", "LEFT", "LEFT"]), WRONGTYPE);
    assert_eq!(
        c.strings(&["LRANGE", "src", "0", "-1"]),
        ["b", "a"],
        "nothing popped"
    );
    assert_eq!(c.err(&["RPOPLPUSH", "str", "src"]), WRONGTYPE);
    assert_eq!(c.bulk(&["RPOPLPUSH", "dst", "dst"]).as_deref(), Some("c"));
}

#[test]
fn every_list_command_refuses_other_types() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "s", "x"]);
    for args in [
        &["LPUSH", "s", "a"][..],
        &["RPUSH", "s", "a"],
        &["LPUSHX", "s", "a"],
        &["RPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "2"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "-1"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"],
        &["LINSERT", "s", "BEFORE", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["LMOVE", "s", "d", "LEFT", "LEFT"],
        &["RPOPLPUSH", "s", "d"],
        &["BLPOP", "s", "0"],
        &["BRPOP", "s", "0"],
        &["BLMOVE", "s", "d", "LEFT", "LEFT", "0"],
    ] {
        assert_eq!(c.err(args), WRONGTYPE, "{args:?}");
    }
    c.int(&["RPUSH", "l", "a"]);
    assert_eq!(c.err(&["GET", "l"]), WRONGTYPE);
    assert_eq!(c.err(&["SADD", "l", "a"]), WRONGTYPE);
}

#[test]
fn blocking_timeouts_are_parsed_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    for (timeout, error) in [
        ("x", "ERR timeout is not a float or out of range"),
        ("0.5x", "ERR timeout is not a float or out of range"),
        ("nan", "ERR timeout is not a float or out of range"),
        ("-1", "ERR timeout is negative"),
        ("inf", "ERR timeout is negative"),
        ("1e20", "ERR timeout is negative"),
    ] {
        assert_eq!(c.err(&["BLPOP", "k", timeout]), error, "{timeout}");
        assert_eq!(
            c.err(&["BLMOVE", "k", "d", "LEFT", "LEFT", timeout]),
            error,
            "{timeout}"
        );
    }
    assert_eq!(
        c.err(&["BLMOVE", "k", "d", "UP", "LEFT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        c.err(&["BLPOP", "k"]),
        "ERR wrong number of arguments for 'blpop' command"
    );
}

#[test]
fn blocking_pops_serve_available_elements_at_once() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["RPUSH", "b", "1", "2"]);
    assert_eq!(c.strings(&["BLPOP", "a", "b", "0"]), ["b", "1"]);
    assert_eq!(c.strings(&["BRPOP", "a", "b", "0"]), ["b", "2"]);
    c.int(&["RPUSH", "b", "3"]);
    assert_eq!(
        c.bulk(&["BLMOVE", "b", "d", "LEFT", "LEFT", "0"])
            .as_deref(),
        Some("3")
    );
    assert_eq!(c.strings(&["LRANGE", "d", "0", "-1"]), ["3"]);
}

#[test]
fn blpop_times_out_with_nil_and_the_connection_goes_on() {
    let node = Node::start();
    let mut c = node.client();
    let started = Instant::now();
    assert_eq!(c.v(&["BLPOP", "empty", "0.2"]), Value::Nil);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(
        c.v(&["BLMOVE", "empty", "d", "LEFT", "LEFT", "0.05"]),
        Value::Nil
    );
    assert_eq!(c.status(&["PING"]), "PONG");
}

#[test]
fn blpop_is_woken_by_a_push_from_another_client() {
    let node = Node::start();
    let url = node.url();
    let waiter = thread::spawn(move || {
        let mut c = Conn::open(&url);
        let started = Instant::now();
        let got = c.strings(&["BLPOP", "q1", "q2", "0"]);
        (got, started.elapsed())
    });
    thread::sleep(Duration::from_millis(200));
    let mut other = node.client();
    // Other clients are not held up by the blocked one.
    assert_eq!(other.status(&["PING"]), "PONG");
    assert_eq!(other.int(&["RPUSH", "q2", "v1", "v2"]), 2);
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, ["q2", "v1"]);
    assert!(waited < Duration::from_secs(3));
    assert_eq!(other.strings(&["LRANGE", "q2", "0", "-1"]), ["v2"]);

    // BRPOP and BLMOVE likewise.
    let url = node.url();
    let waiter = thread::spawn(move || {
        let mut c = Conn::open(&url);
        let a = c.strings(&["BRPOP", "r", "5"]);
        let b = c.bulk(&["BLMOVE", "m", "out", "RIGHT", "LEFT", "5"]);
        (a, b)
    });
    thread::sleep(Duration::from_millis(150));
    other.int(&["LPUSH", "r", "x", "y"]);
    thread::sleep(Duration::from_millis(150));
    other.int(&["RPUSH", "m", "moved"]);
    let (a, b) = waiter.join().unwrap();
    assert_eq!(a, ["r", "x"]);
    assert_eq!(b.as_deref(), Some("moved"));
    assert_eq!(other.strings(&["LRANGE", "out", "0", "-1"]), ["moved"]);
}

#[test]
fn two_blocked_clients_get_one_element_each() {
    let node = Node::start();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let url = node.url();
            thread::spawn(move || Conn::open(&url).strings(&["BLPOP", "shared", "5"]))
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut c = node.client();
    c.int(&["RPUSH", "shared", "one"]);
    thread::sleep(Duration::from_millis(100));
    c.int(&["RPUSH", "shared", "two"]);
    let mut got: Vec<String> = waiters
        .into_iter()
        .map(|w| w.join().unwrap()[1].clone())
        .collect();
    got.sort();
    assert_eq!(got, ["one", "two"]);
    assert_eq!(c.int(&["EXISTS", "shared"]), 0);
}

#[test]
fn a_client_disconnecting_while_blocked_is_cleaned_up() {
    let node = Node::start();
    {
        let mut raw = node.connect();
        raw.send(&support::multibulk(&[b"BLPOP", b"gone", b"0"]));
        thread::sleep(Duration::from_millis(150));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while node.connected_clients() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(node.connected_clients(), 0);
    // A later push is not swallowed by the departed client.
    let mut c = node.client();
    c.int(&["RPUSH", "gone", "kept"]);
    assert_eq!(c.strings(&["LRANGE", "gone", "0", "-1"]), ["kept"]);
}

#[test]
fn pipelined_commands_after_a_blocking_pop_run_once_it_is_served() {
    let node = Node::start();
    let mut raw = node.connect();
    let mut bytes = support::multibulk(&[b"BLPOP", b"p", b"0"]);
    bytes.extend(support::multibulk(&[b"PING"]));
    raw.send(&bytes);
    thread::sleep(Duration::from_millis(150));
    node.client().int(&["RPUSH", "p", "v"]);
    assert_eq!(raw.reply(), b"*2\r\n$1\r\np\r\n$1\r\nv\r\n");
    assert_eq!(raw.reply(), b"+PONG\r\n");
}

#[test]
fn commands_sent_while_blocked_run_once_the_pop_is_served() {
    let node = Node::start();
    let mut raw = node.connect();
    raw.send(&support::multibulk(&[b"BLPOP", b"w", b"0"]));
    thread::sleep(Duration::from_millis(150));
    raw.send(&support::multibulk(&[b"PING"]));
    thread::sleep(Duration::from_millis(150));
    node.client().int(&["RPUSH", "w", "v"]);
    assert_eq!(raw.reply(), b"*2\r\n$1\r\nw\r\n$1\r\nv\r\n");
    assert_eq!(raw.reply(), b"+PONG\r\n");
    // And after a timeout too.
    raw.send(&support::multibulk(&[b"BLPOP", b"w", b"0.2"]));
    thread::sleep(Duration::from_millis(50));
    raw.send(&support::multibulk(&[b"PING"]));
    assert_eq!(raw.reply(), b"*-1\r\n");
    assert_eq!(raw.reply(), b"+PONG\r\n");
}

/// A node whose state the test can reach, to apply remote batches to it.
struct ReachableNode {
    rt: tokio::runtime::Runtime,
    handle: Option<cordis::server::ServerHandle>,
}

impl ReachableNode {
    fn start() -> Self {
        let config = Config {
            bind: "127.0.0.1".into(),
            port: 0,
            ..Config::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.block_on(cordis::server::start(config, None)).unwrap();
        // `replicate` ships batches by hand: keep them although no peers
        // are configured.
        handle.state.store.lock().keep_delta_log = true;
        ReachableNode {
            rt,
            handle: Some(handle),
        }
    }

    fn state(&self) -> Arc<ServerState> {
        self.handle.as_ref().unwrap().state.clone()
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.handle.as_ref().unwrap().local_addr)
    }
}

impl Drop for ReachableNode {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.rt.block_on(handle.shutdown());
        }
    }
}

/// Ships every batch of `from` that `to` has not applied, then wakes
/// `to`'s blocked clients as the replication layer does.
fn replicate(from: &ServerState, to: &ServerState) {
    let source = from.store.lock();
    let mut target = to.store.lock();
    let have = target.version_vector().get(from.replica);
    let batches: Vec<_> = source.delta_log().since(have).unwrap().cloned().collect();
    for batch in batches {
        target.apply_remote(&batch).unwrap();
    }
    to.signal_ready_keys(&mut target);
}

#[test]
fn blpop_is_woken_by_a_remote_batch() {
    let node = ReachableNode::start();
    let remote = ServerState::new(Config::default(), ReplicaId(0xfeed), None);
    remote.store.lock().keep_delta_log = true;
    let url = node.url();
    let waiter = thread::spawn(move || Conn::open(&url).strings(&["BLPOP", "geo", "5"]));
    thread::sleep(Duration::from_millis(200));
    let mut client = ClientState::detached(true);
    let args: Vec<Bytes> = ["RPUSH", "geo", "from-afar"]
        .iter()
        .map(|a| Bytes::from_static(a.as_bytes()))
        .collect();
    remote.execute(&mut client, &args);
    replicate(&remote, &node.state());
    assert_eq!(waiter.join().unwrap(), ["geo", "from-afar"]);
    let mut c = Conn::open(&node.url());
    assert_eq!(c.int(&["EXISTS", "geo"]), 0);
}

#[test]
fn concurrent_pushes_on_two_nodes_merge_in_one_order() {
    let a = ReachableNode::start();
    let b = ReachableNode::start();
    let (mut ca, mut cb) = (Conn::open(&a.url()), Conn::open(&b.url()));
    ca.int(&["RPUSH", "l", "base"]);
    replicate(&a.state(), &b.state());
    ca.int(&["LPUSH", "l", "a"]);
    cb.int(&["LPUSH", "l", "b"]);
    assert_eq!(ca.bulk(&["RPOP", "l"]).as_deref(), Some("base"));
    assert_eq!(
        cb.bulk(&["RPOP", "l"]).as_deref(),
        Some("base"),
        "both pop it"
    );
    replicate(&a.state(), &b.state());
    replicate(&b.state(), &a.state());
    let left = ca.strings(&["LRANGE", "l", "0", "-1"]);
    assert_eq!(left, cb.strings(&["LRANGE", "l", "0", "-1"]));
    assert_eq!(super_sorted(left), ["a", "b"]);
}

#[test]
fn blocking_pops_with_blocking_denied_answer_as_if_timed_out() {
    let state = ServerState::new(Config::default(), ReplicaId(7), None);
    let mut client = ClientState::detached(true);
    client.deny_blocking = true;
    let run = |client: &mut ClientState, args: &[&'static str]| {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::from_static(a.as_bytes()))
            .collect();
        state.execute(client, &args)
    };
    use cordis::protocol::Reply;
    assert_eq!(run(&mut client, &["BLPOP", "k", "0"]), Reply::NilArray);
    assert_eq!(
        run(&mut client, &["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]),
        Reply::Nil
    );
    assert!(client.action.is_none(), "no blocking inside a transaction");
    run(&mut client, &["RPUSH", "k", "v"]);
    assert_eq!(
        run(&mut client, &["BRPOP", "k", "0"]),
        Reply::Array(vec![
            Reply::Bulk(Bytes::from_static(b"k")),
            Reply::Bulk(Bytes::from_static(b"v"))
        ])
    );
}

fn super_sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ----- LMPOP, BLMPOP, BRPOPLPUSH; FIFO service -----

/// A reply's strings, nested arrays flattened in order.
fn flat(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.into_iter().flat_map(flat).collect(),
        other => support::client::strings_of(Value::Array(vec![other])),
    }
}

/// Waits until the node counts `n` blocked clients (at most 5 s).
fn wait_blocked(node: &Node, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.state().blocked_clients() != n {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lmpop_pops_from_the_first_non_empty_list() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["RPUSH", "b", "1", "2", "3"]);
    c.int(&["RPUSH", "c", "x"]);
    let got = c.v(&["LMPOP", "3", "a", "b", "c", "LEFT", "COUNT", "2"]);
    assert_eq!(flat(got), ["b", "1", "2"]);
    let got = c.v(&["LMPOP", "2", "b", "c", "RIGHT", "COUNT", "10"]);
    assert_eq!(flat(got), ["b", "3"]);
    assert_eq!(c.int(&["EXISTS", "b"]), 0);
    let got = c.v(&["LMPOP", "1", "c", "left"]);
    assert_eq!(flat(got), ["c", "x"]);
    let mut raw = node.connect();
    assert_eq!(raw.call_str(&["LMPOP", "1", "c", "LEFT"]), b"*-1\r\n");
    // The reply nests the elements: [key, [element ...]].
    c.int(&["RPUSH", "n", "v"]);
    assert_eq!(
        raw.call_str(&["LMPOP", "1", "n", "LEFT"]),
        b"*2\r\n$1\r\nn\r\n*1\r\n$1\r\nv\r\n"
    );
}

#[test]
fn lmpop_and_blmpop_refuse_bad_arguments_with_redis_texts() {
    let node = Node::start();
    let mut c = node.client();
    let numkeys = "ERR numkeys should be greater than 0";
    let count = "ERR count should be greater than 0";
    let syntax = "ERR syntax error";
    assert_eq!(c.err(&["LMPOP", "0", "k", "LEFT"]), numkeys);
    assert_eq!(c.err(&["LMPOP", "-1", "k", "LEFT"]), numkeys);
    assert_eq!(c.err(&["LMPOP", "x", "k", "LEFT"]), numkeys);
    assert_eq!(
        c.err(&["LMPOP", "9223372036854775807", "k", "LEFT"]),
        syntax
    );
    assert_eq!(c.err(&["LMPOP", "2", "k", "LEFT"]), syntax);
    assert_eq!(c.err(&["LMPOP", "1", "k", "MIDDLE"]), syntax);
    assert_eq!(c.err(&["LMPOP", "1", "k", "LEFT", "COUNT", "0"]), count);
    assert_eq!(c.err(&["LMPOP", "1", "k", "LEFT", "COUNT", "-3"]), count);
    assert_eq!(c.err(&["LMPOP", "1", "k", "LEFT", "COUNT"]), syntax);
    assert_eq!(
        c.err(&["LMPOP", "1", "k", "LEFT", "COUNT", "1", "COUNT", "1"]),
        syntax
    );
    assert_eq!(
        c.err(&["LMPOP", "1"]),
        "ERR wrong number of arguments for 'lmpop' command"
    );
    // BLMPOP reads numkeys and the options before the timeout.
    assert_eq!(c.err(&["BLMPOP", "-1", "0", "k", "LEFT"]), numkeys);
    assert_eq!(
        c.err(&["BLMPOP", "-1", "1", "k", "LEFT"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        c.err(&["BLMPOP", "abc", "1", "k", "LEFT"]),
        "ERR timeout is not a float or out of range"
    );
    c.ok(&["SET", "s", "v"]);
    assert_eq!(c.err(&["LMPOP", "2", "missing", "s", "LEFT"]), WRONGTYPE);
    assert_eq!(c.err(&["BLMPOP", "0", "1", "s", "LEFT"]), WRONGTYPE);
    assert_eq!(c.err(&["BRPOPLPUSH", "s", "d", "0"]), WRONGTYPE);
    assert_eq!(
        c.err(&["BRPOPLPUSH", "k", "d", "-1"]),
        "ERR timeout is negative"
    );
}

#[test]
fn brpoplpush_moves_at_once_or_when_woken() {
    let node = Node::start();
    let mut c = node.client();
    c.int(&["RPUSH", "src", "a", "b"]);
    assert_eq!(
        c.bulk(&["BRPOPLPUSH", "src", "dst", "0"]).as_deref(),
        Some("b")
    );
    assert_eq!(c.strings(&["LRANGE", "dst", "0", "-1"]), ["b"]);
    let url = node.url();
    let waiter = thread::spawn(move || Conn::open(&url).bulk(&["BRPOPLPUSH", "empty", "dst", "5"]));
    wait_blocked(&node, 1);
    c.int(&["RPUSH", "empty", "late"]);
    assert_eq!(waiter.join().unwrap().as_deref(), Some("late"));
    assert_eq!(c.strings(&["LRANGE", "dst", "0", "-1"]), ["late", "b"]);
    // Timing out answers nil.
    let mut raw = node.connect();
    assert_eq!(
        raw.call_str(&["BRPOPLPUSH", "none", "dst", "0.05"]),
        b"$-1\r\n"
    );
}

#[test]
fn blmpop_blocks_then_pops_up_to_count_from_the_pushed_list() {
    let node = Node::start();
    let url = node.url();
    let waiter = thread::spawn(move || {
        flat(Conn::open(&url).v(&["BLMPOP", "5", "2", "m1", "m2", "RIGHT", "COUNT", "2"]))
    });
    wait_blocked(&node, 1);
    let mut c = node.client();
    c.int(&["RPUSH", "m2", "1", "2", "3"]);
    assert_eq!(waiter.join().unwrap(), ["m2", "3", "2"]);
    assert_eq!(c.strings(&["LRANGE", "m2", "0", "-1"]), ["1"]);
    let mut raw = node.connect();
    assert_eq!(
        raw.call_str(&["BLMPOP", "0.05", "1", "nothing", "LEFT"]),
        b"*-1\r\n"
    );
}

#[test]
fn blocked_clients_are_served_in_the_order_they_blocked() {
    let node = Node::start();
    let mut waiters = Vec::new();
    for i in 0..3 {
        let url = node.url();
        waiters.push(thread::spawn(move || {
            Conn::open(&url).strings(&["BLPOP", "fifo", "5"])
        }));
        wait_blocked(&node, i + 1);
    }
    let mut c = node.client();
    // One push of three elements: one each, first blocked first served,
    // and all served before the push's reply (nothing is left to see).
    assert_eq!(c.int(&["RPUSH", "fifo", "1", "2", "3", "4"]), 4);
    assert_eq!(c.strings(&["LRANGE", "fifo", "0", "-1"]), ["4"]);
    let got: Vec<Vec<String>> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(got, [["fifo", "1"], ["fifo", "2"], ["fifo", "3"]]);
}

#[test]
fn a_client_woken_by_a_transaction_sees_the_state_after_exec() {
    let node = Node::start();
    let url = node.url();
    let waiter = thread::spawn(move || Conn::open(&url).strings(&["BLPOP", "tx", "5"]));
    wait_blocked(&node, 1);
    let mut c = node.client();
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["RPUSH", "tx", "a", "b"]), "QUEUED");
    assert_eq!(c.status(&["LPOP", "tx"]), "QUEUED");
    c.v(&["EXEC"]);
    assert_eq!(waiter.join().unwrap(), ["tx", "b"]);
    assert_eq!(c.int(&["EXISTS", "tx"]), 0);
}

#[test]
fn chained_blmoves_are_served_in_the_same_pass() {
    let node = Node::start();
    let url = node.url();
    let first =
        thread::spawn(move || Conn::open(&url).bulk(&["BLMOVE", "c1", "c2", "LEFT", "LEFT", "5"]));
    wait_blocked(&node, 1);
    let url = node.url();
    let second = thread::spawn(move || Conn::open(&url).strings(&["BLPOP", "c2", "5"]));
    wait_blocked(&node, 2);
    let mut c = node.client();
    c.int(&["RPUSH", "c1", "hop"]);
    assert_eq!(c.int(&["EXISTS", "c1", "c2"]), 0, "both served at once");
    assert_eq!(first.join().unwrap().as_deref(), Some("hop"));
    assert_eq!(second.join().unwrap(), ["c2", "hop"]);
}

#[test]
fn a_blocked_pop_is_not_served_from_a_key_of_another_type() {
    let node = Node::start();
    let url = node.url();
    let waiter = thread::spawn(move || Conn::open(&url).strings(&["BLPOP", "t", "5"]));
    wait_blocked(&node, 1);
    let mut c = node.client();
    c.int(&["ZADD", "t", "1", "m"]);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(node.state().blocked_clients(), 1, "still blocked");
    c.int(&["DEL", "t"]);
    c.int(&["RPUSH", "t", "v"]);
    assert_eq!(waiter.join().unwrap(), ["t", "v"]);
}

const PEER_SECRET: &str = "lists-peer-secret";

/// Two nodes A and B linked as peers.
fn two_linked_nodes() -> (Node, Node) {
    let listeners: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let mut nodes = listeners.into_iter().enumerate().map(|(i, listener)| {
        let config = Config {
            peers: vec![addrs[1 - i].clone()],
            peer_secret: PEER_SECRET.into(),
            peer_heartbeat_ms: 100,
            reconnect_max_ms: 200,
            ..Config::default()
        };
        Node::member(config, Some(listener))
    });
    (nodes.next().unwrap(), nodes.next().unwrap())
}

#[test]
fn a_client_blocked_on_node_b_is_woken_by_a_push_on_node_a() {
    let (a, b) = two_linked_nodes();
    let mut waiters = Vec::new();
    for i in 0..2 {
        let url = b.url();
        waiters.push(thread::spawn(move || {
            Conn::open(&url).strings(&["BLPOP", "geo", "10"])
        }));
        wait_blocked(&b, i + 1);
    }
    let mut on_a = a.client();
    assert_eq!(on_a.int(&["RPUSH", "geo", "first", "second"]), 2);
    let got: Vec<Vec<String>> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(got, [["geo", "first"], ["geo", "second"]]);
    let mut on_b = b.client();
    assert_eq!(on_b.int(&["EXISTS", "geo"]), 0);
}
