//! MULTI/EXEC/DISCARD/WATCH/UNWATCH over a real socket, plus the promise
//! that an EXEC block leaves the node as one delta batch (so peers apply it
//! atomically). Replies were checked against redis-server 7.0.
//!
//! covers: multi exec discard watch unwatch sync psync replconf replicaof slaveof

mod support;

use std::time::Duration;

use redis::Value;
use support::client::Conn;
use support::Node;

fn pipeline_replies(c: &mut Conn, commands: &[&[&str]]) -> Vec<Value> {
    commands.iter().map(|args| c.v(args)).collect()
}

#[test]
fn exec_runs_the_queue_and_returns_every_reply_in_order() {
    let node = Node::start();
    let mut raw = node.connect();
    assert_eq!(raw.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.call_str(&["SET", "a", "1"]), b"+QUEUED\r\n");
    assert_eq!(raw.call_str(&["SADD", "a", "x"]), b"+QUEUED\r\n");
    assert_eq!(raw.call_str(&["INCR", "a"]), b"+QUEUED\r\n");
    // A runtime error inside EXEC is that command's reply; the rest run.
    assert_eq!(
        raw.call_str(&["EXEC"]),
        b"*3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:2\r\n"
    );
    // An empty transaction replies an empty array.
    assert_eq!(raw.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.call_str(&["EXEC"]), b"*0\r\n");
    // A WATCH-aborted EXEC is a null array: `*-1` in RESP2, `_` in RESP3.
    let mut other = node.client();
    assert_eq!(raw.call_str(&["WATCH", "a"]), b"+OK\r\n");
    other.ok(&["SET", "a", "changed"]);
    assert_eq!(raw.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.call_str(&["EXEC"]), b"*-1\r\n");
    let _ = raw.call_str(&["HELLO", "3"]);
    assert_eq!(raw.call_str(&["WATCH", "a"]), b"+OK\r\n");
    other.ok(&["SET", "a", "again"]);
    assert_eq!(raw.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.call_str(&["EXEC"]), b"_\r\n");
}

#[test]
fn exec_denies_blocking_so_wait_and_blpop_answer_at_once_inside_it() {
    // Redis 7.0: inside EXEC, WAIT answers the current ack count and BLPOP
    // nil at once, and EXEC returns one reply per queued command.
    let node = Node::start();
    let mut raw = node.connect();
    let queue = |raw: &mut support::Raw| {
        assert_eq!(raw.call_str(&["MULTI"]), b"+OK\r\n");
        for args in [
            &["SET", "a", "1"][..],
            &["WAIT", "1", "100"],
            &["BLPOP", "nothing", "0"],
        ] {
            assert_eq!(raw.call_str(args), b"+QUEUED\r\n");
        }
    };
    queue(&mut raw);
    let started = std::time::Instant::now();
    assert_eq!(raw.call_str(&["EXEC"]), b"*3\r\n+OK\r\n:0\r\n*-1\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "EXEC must not wait on WAIT's timeout or BLPOP's forever"
    );
    let _ = raw.call_str(&["HELLO", "3"]);
    queue(&mut raw);
    assert_eq!(raw.call_str(&["EXEC"]), b"*3\r\n+OK\r\n:0\r\n_\r\n");
    // Through a client library too, and the connection keeps serving.
    let mut c = node.client();
    let replies: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("b")
        .arg("2")
        .cmd("WAIT")
        .arg(1)
        .arg(100)
        .cmd("BLPOP")
        .arg("nothing")
        .arg(0)
        .query(&mut c.0)
        .expect("EXEC replies");
    assert_eq!(
        replies,
        vec![Value::Okay, Value::Int(0), Value::Nil],
        "one reply per queued command"
    );
    assert_eq!(c.bulk(&["GET", "b"]).as_deref(), Some("2"));
}

#[test]
fn a_command_refused_while_queueing_aborts_exec() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "a", "1"]), "QUEUED");
    assert_eq!(
        c.err(&["NOSUCHCOMMAND"]),
        "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: "
    );
    assert_eq!(
        c.err(&["EXEC"]),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(c.bulk(&["GET", "a"]), None);

    c.ok(&["MULTI"]);
    assert_eq!(
        c.err(&["SET", "a"]),
        "ERR wrong number of arguments for 'set' command"
    );
    assert_eq!(
        c.err(&["EXEC"]),
        "EXECABORT Transaction discarded because of previous errors."
    );
    // The connection is out of the transaction afterwards.
    c.ok(&["SET", "a", "2"]);
}

#[test]
fn misplaced_transaction_commands_get_redis_errors() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.err(&["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(c.err(&["DISCARD"]), "ERR DISCARD without MULTI");
    assert_eq!(
        c.err(&["WATCH"]),
        "ERR wrong number of arguments for 'watch' command"
    );
    c.ok(&["MULTI"]);
    assert_eq!(c.err(&["MULTI"]), "ERR MULTI calls can not be nested");
    assert_eq!(
        c.err(&["WATCH", "x"]),
        "ERR WATCH inside MULTI is not allowed"
    );
    // Neither error aborts the transaction.
    assert_eq!(c.status(&["INCR", "n"]), "QUEUED");
    assert_eq!(c.v(&["EXEC"]), Value::Array(vec![Value::Int(1)]));
}

#[test]
fn discard_drops_the_queue() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "a", "1"]), "QUEUED");
    c.ok(&["DISCARD"]);
    assert_eq!(c.bulk(&["GET", "a"]), None);
}

#[test]
fn exec_fails_when_another_client_changed_a_watched_key() {
    let node = Node::start();
    let mut c = node.client();
    let mut other = node.client();
    c.ok(&["SET", "w", "1"]);
    c.ok(&["WATCH", "w", "unrelated"]);
    other.ok(&["SET", "w", "2"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "w", "mine"]), "QUEUED");
    assert_eq!(c.v(&["EXEC"]), Value::Nil);
    assert_eq!(c.bulk(&["GET", "w"]).as_deref(), Some("2"));

    // A watch on an untouched key lets EXEC through; EXEC clears watches.
    c.ok(&["WATCH", "w"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "w", "mine"]), "QUEUED");
    assert_eq!(c.v(&["EXEC"]), Value::Array(vec![Value::Okay]));
    other.ok(&["SET", "w", "3"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["GET", "w"]), "QUEUED");
    assert_eq!(
        c.v(&["EXEC"]),
        Value::Array(vec![Value::BulkString(b"3".to_vec())])
    );
}

#[test]
fn unwatch_and_the_clients_own_writes_behave_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    let mut other = node.client();
    c.ok(&["WATCH", "w"]);
    c.ok(&["UNWATCH"]);
    other.ok(&["SET", "w", "x"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["GET", "w"]), "QUEUED");
    assert_eq!(
        c.v(&["EXEC"]),
        Value::Array(vec![Value::BulkString(b"x".to_vec())])
    );
    // The watching client's own write also counts as a change.
    c.ok(&["WATCH", "w"]);
    c.ok(&["SET", "w", "y"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["GET", "w"]), "QUEUED");
    assert_eq!(c.v(&["EXEC"]), Value::Nil);
    // Expiry of a watched key is a change too.
    c.ok(&["SET", "e", "1", "PX", "30"]);
    c.ok(&["WATCH", "e"]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(other.bulk(&["GET", "e"]), None);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "e", "2"]), "QUEUED");
    assert_eq!(c.v(&["EXEC"]), Value::Nil);
}

#[test]
fn watches_of_a_closed_connection_are_released() {
    let node = Node::start();
    let state = node.state();
    {
        let mut c = node.client();
        c.ok(&["WATCH", "a", "b", "c"]);
        assert_eq!(state.store.lock().watched_keys(), 3);
    }
    // The connection task releases them once it sees the socket close.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while state.store.lock().watched_keys() != 0 {
        assert!(std::time::Instant::now() < deadline, "watches leaked");
        std::thread::sleep(Duration::from_millis(10));
    }
    // UNWATCH, EXEC and DISCARD release them too.
    let mut c = node.client();
    c.ok(&["WATCH", "a", "b"]);
    c.ok(&["UNWATCH"]);
    c.ok(&["WATCH", "a"]);
    c.ok(&["MULTI"]);
    c.ok(&["DISCARD"]);
    c.ok(&["WATCH", "b"]);
    let replies = pipeline_replies(&mut c, &[&["MULTI"], &["SET", "a", "1"], &["EXEC"]]);
    assert_eq!(replies[2], Value::Array(vec![Value::Okay]));
    assert_eq!(state.store.lock().watched_keys(), 0);
}

#[test]
fn an_exec_block_leaves_as_one_delta_batch() {
    let node = Node::start();
    let state = node.state();
    let before = state.store.lock().delta_log().len();
    let mut c = node.client();
    c.ok(&["MULTI"]);
    for args in [
        &["SET", "a", "1"][..],
        &["SADD", "s", "x", "y"],
        &["INCR", "n"],
        &["DEL", "a"],
    ] {
        assert_eq!(c.status(args), "QUEUED");
    }
    let Value::Array(replies) = c.v(&["EXEC"]) else {
        panic!()
    };
    assert_eq!(replies.len(), 4);
    let store = state.store.lock();
    assert_eq!(
        store.delta_log().len(),
        before + 1,
        "one batch for the block"
    );
    let batch = store.delta_log().since(0).unwrap().last().unwrap().clone();
    assert_eq!(batch.ops.len(), 4);
}

#[test]
fn a_flush_breaks_only_the_watches_of_keys_it_emptied() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "held", "1"]);
    c.ok(&["WATCH", "held"]);
    c.ok(&["FLUSHALL"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["PING"]), "QUEUED");
    assert_eq!(
        c.v(&["EXEC"]),
        Value::Nil,
        "the flush deleted a watched key"
    );

    // An absent key is still absent after a flush: EXEC runs (Redis 7.0).
    for flush in ["FLUSHALL", "FLUSHDB"] {
        c.ok(&["WATCH", "absent"]);
        c.ok(&[flush]);
        c.ok(&["MULTI"]);
        assert_eq!(c.status(&["PING"]), "QUEUED");
        assert_eq!(
            c.v(&["EXEC"]),
            Value::Array(vec![Value::SimpleString("PONG".into())]),
            "{flush}"
        );
    }
}

/// `min-replicas-to-write` above the number of connected peers refuses
/// writes (and EXECs holding one) with Redis's texts; reads still run.
#[test]
fn min_replicas_to_write_refuses_writes_without_enough_peers() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "1"]);
    c.ok(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
    assert_eq!(c.err(&["SET", "k", "2"]), NOREPLICAS);
    assert_eq!(c.bulk(&["GET", "k"]).as_deref(), Some("1"));

    // Queued under the setting: refused at queue time, EXEC aborts.
    c.ok(&["MULTI"]);
    assert_eq!(c.err(&["INCR", "k"]), NOREPLICAS);
    assert_eq!(
        c.err(&["EXEC"]),
        "EXECABORT Transaction discarded because of previous errors."
    );

    // Queued before the setting: EXEC itself is refused.
    c.ok(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["INCR", "k"]), "QUEUED");
    let mut other = node.client();
    other.ok(&["CONFIG", "SET", "min-replicas-to-write", "2"]);
    assert_eq!(
        c.err(&["EXEC"]),
        format!("EXECABORT Transaction discarded because of: {NOREPLICAS}")
    );
    // A read-only EXEC is not.
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["GET", "k"]), "QUEUED");
    assert_eq!(
        c.v(&["EXEC"]),
        Value::Array(vec![Value::BulkString(b"1".to_vec())])
    );
    other.ok(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(c.int(&["INCR", "k"]), 2);
}

/// Reads from `raw` until `want` bytes have arrived (bounded by the
/// socket's read timeout).
fn read_exactly(raw: &mut support::Raw, want: usize) -> Vec<u8> {
    use std::io::Read;
    let mut out = vec![0u8; want];
    raw.stream
        .read_exact(&mut out)
        .expect("stream bytes in time");
    out
}

/// Attaches `raw` with SYNC and returns the RDB file it was sent.
fn attach_sync(raw: &mut support::Raw) -> Vec<u8> {
    raw.send(b"SYNC\r\n");
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n") {
        header.extend(read_exactly(raw, 1));
    }
    assert_eq!(header[0], b'$', "{:?}", String::from_utf8_lossy(&header));
    let len: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    read_exactly(raw, len)
}

fn stream_of(commands: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for args in commands {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        out.extend(support::multibulk(&args));
    }
    out
}

#[test]
fn sync_sends_an_rdb_then_the_effects_of_writes_with_blocks_inside_multi() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "before", "1"]);
    let mut replica = node.connect();
    let rdb = attach_sync(&mut replica);
    assert!(rdb.starts_with(b"REDIS0010"), "{rdb:?}");
    // EOF opcode, then the CRC-64 of everything before it.
    assert_eq!(rdb[rdb.len() - 9], 0xFF);
    // One write: no MULTI around it; a SELECT first.
    c.ok(&["SET", "a", "1"]);
    // A block with one write: not wrapped either; reads are not sent.
    c.ok(&["MULTI"]);
    c.v(&["GET", "a"]);
    c.v(&["INCR", "a"]);
    c.v(&["EXEC"]);
    // A write that changed nothing is not sent.
    assert_eq!(c.int(&["DEL", "missing"]), 0);
    // Two writes, the second in db 1: MULTI … EXEC with the SELECT inside.
    c.ok(&["MULTI"]);
    c.v(&["SET", "b", "2"]);
    c.v(&["SELECT", "1"]);
    c.v(&["SET", "c", "3"]);
    c.v(&["EXEC"]);
    c.ok(&["SELECT", "0"]);
    let want = stream_of(&[
        &["SELECT", "0"],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["MULTI"],
        &["SET", "b", "2"],
        &["SELECT", "1"],
        &["SET", "c", "3"],
        &["EXEC"],
    ]);
    let got = read_exactly(&mut replica, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    // A relative TTL goes as an absolute one.
    c.ok(&["SET", "t", "v"]);
    assert_eq!(c.int(&["EXPIRE", "t", "100"]), 1);
    let deadline: u64 = {
        let ms = c.int(&["PEXPIRETIME", "t"]);
        ms as u64
    };
    let want = stream_of(&[
        &["SELECT", "0"],
        &["SET", "t", "v"],
        &["PEXPIREAT", "t", &deadline.to_string()],
    ]);
    let got = read_exactly(&mut replica, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn save_shutdown_and_sync_are_refused_inside_multi_and_abort_exec() {
    let node = Node::start();
    let mut raw = node.connect();
    for command in ["SAVE", "SHUTDOWN", "SYNC"] {
        assert_eq!(raw.call_str(&["MULTI"]), b"+OK\r\n");
        assert_eq!(raw.call_str(&["SET", "foo", "bar"]), b"+QUEUED\r\n");
        assert_eq!(
            raw.call_str(&[command]),
            b"-ERR Command not allowed inside a transaction\r\n"
        );
        assert_eq!(
            raw.call_str(&["EXEC"]),
            b"-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
    }
    assert_eq!(raw.call_str(&["GET", "foo"]), b"$-1\r\n");
}

#[test]
fn replicaof_no_one_is_accepted_and_replicaof_a_host_is_refused() {
    let node = Node::start();
    let mut raw = node.connect();
    assert_eq!(raw.call_str(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(
        raw.call_str(&["REPLICAOF", "localhost", "x"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
    let refused = raw.call_text(&["SLAVEOF", "localhost", "6379"]);
    assert!(
        refused.starts_with("-ERR cordis cannot be a Redis replica"),
        "{refused}"
    );
}

#[test]
fn psync_after_replconf_answers_fullresync_then_sends_the_rdb_and_writes() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "k", "v"]);
    let mut replica = node.connect();
    assert_eq!(
        replica.call_str(&["REPLCONF", "listening-port", "6380"]),
        b"+OK\r\n"
    );
    assert_eq!(
        replica.call_str(&["REPLCONF", "capa", "eof", "capa", "psync2"]),
        b"+OK\r\n"
    );
    replica.send(b"PSYNC ? -1\r\n");
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend(read_exactly(&mut replica, 1));
    }
    let line = String::from_utf8_lossy(&line).to_string();
    let words: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(words[0], "+FULLRESYNC", "{line}");
    assert_eq!(words[1].len(), 40, "{line}");
    assert!(words[2].parse::<u64>().is_ok(), "{line}");
    // Then the RDB as a bulk without its trailing CRLF, as SYNC sends it.
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n") {
        header.extend(read_exactly(&mut replica, 1));
    }
    let len: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    let rdb = read_exactly(&mut replica, len);
    assert!(rdb.starts_with(b"REDIS0010"), "{rdb:?}");
    c.ok(&["SET", "after", "1"]);
    let want = stream_of(&[&["SELECT", "0"], &["SET", "after", "1"]]);
    let got = read_exactly(&mut replica, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}
