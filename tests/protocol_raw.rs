//! The wire protocol and the per-client limits, driven with raw bytes over
//! `std::net::TcpStream` against a node started in process on
//! `127.0.0.1:0`: malformed RESP, size limits, inline commands, pipelining,
//! `maxclients`, idle timeout, the request deadline, `requirepass`, a
//! random-bytes fuzz over the socket, and a random-argv fuzz straight into
//! `cordis::commands::dispatch`.
//!
//! The node and the raw client come from the shared harness in
//! `support/mod.rs`: every socket read has a timeout and every node is shut
//! down when its `Node` is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cordis::commands::{self, ClientState, ServerState};
use cordis::config::Config;
use cordis::crdt::ReplicaId;

mod support;

use support::{multibulk, Node, Raw, IO_TIMEOUT};

// ----- harness -----

/// A small deterministic PRNG (xorshift64*), so fuzz runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ----- malformed input -----

#[test]
fn malformed_resp_gets_a_protocol_error_and_only_that_connection_closes() {
    let node = Node::start();
    let mut bystander = node.connect();
    assert_eq!(bystander.call(&[b"SET", b"k", b"v"]), b"+OK\r\n");
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n:5\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$abc\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-1\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n+k\r\n",
            "-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"SET \"a b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"SET 'a'b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (input, want) in cases {
        let mut c = node.connect();
        c.send(input);
        assert_eq!(
            String::from_utf8(c.reply()).unwrap(),
            *want,
            "for {:?}",
            String::from_utf8_lossy(input)
        );
        c.expect_closed(IO_TIMEOUT);
    }
    // Nobody else noticed.
    assert_eq!(bystander.call(&[b"GET", b"k"]), b"$1\r\nv\r\n");
    node.assert_serving();
}

#[test]
fn commands_before_the_bad_bytes_still_run_and_reply() {
    let node = Node::start();
    let mut c = node.connect();
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n*1\r\n:5\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
    assert_eq!(c.reply(), b"-ERR Protocol error: expected '$', got ':'\r\n");
    c.expect_closed(IO_TIMEOUT);
    let mut d = node.connect();
    assert_eq!(d.call(&[b"GET", b"k"]), b"$1\r\nv\r\n");
}

#[test]
fn bulk_length_over_512mb_is_refused() {
    let node = Node::start();
    let mut c = node.connect();
    c.send(b"*1\r\n$536870913\r\n");
    assert_eq!(c.reply(), b"-ERR Protocol error: invalid bulk length\r\n");
    c.expect_closed(IO_TIMEOUT);
    // Exactly 512 MB is a legal announcement: the node waits for the data.
    let mut ok = node.connect();
    ok.send(b"*1\r\n$536870912\r\nabc");
    ok.expect_silence(Duration::from_millis(200));
    node.assert_serving();
}

#[test]
fn bulk_length_over_a_lowered_proto_max_bulk_len_is_refused() {
    let node = Node::with(Config {
        proto_max_bulk_len: 1024 * 1024,
        ..Config::default()
    });
    let mut c = node.connect();
    c.send(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n");
    assert_eq!(c.reply(), b"-ERR Protocol error: invalid bulk length\r\n");
    c.expect_closed(IO_TIMEOUT);
    let mut ok = node.connect();
    let big = vec![b'x'; 1024 * 1024];
    let reply = ok.call(&[b"ECHO", &big]);
    assert_eq!(reply.len(), big.len() + "$1048576\r\n\r\n".len());
}

#[test]
fn config_set_proto_max_bulk_len_applies_to_open_connections() {
    let node = Node::start();
    let mut c = node.connect();
    assert_eq!(
        c.call(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1048576"]),
        b"+OK\r\n"
    );
    c.send(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n");
    assert_eq!(c.reply(), b"-ERR Protocol error: invalid bulk length\r\n");
    c.expect_closed(IO_TIMEOUT);
}

#[test]
fn info_counts_the_bytes_actually_received() {
    let node = Node::start();
    let mut c = node.connect();
    let request = multibulk(&[b"SET", b"k", &[b'v'; 1000]]);
    c.send(&request);
    assert_eq!(c.reply(), b"+OK\r\n");
    let info = c.call(&[b"INFO", b"stats"]);
    let text = String::from_utf8_lossy(&info);
    let received: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("total_net_input_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO stats has total_net_input_bytes");
    // The SET, then the INFO request itself (counted when it was read).
    let info_request = multibulk(&[b"INFO", b"stats"]).len();
    assert_eq!(received, request.len() + info_request);
}

#[test]
fn inline_line_over_64kb_is_refused() {
    let node = Node::start();
    let mut c = node.connect();
    let mut line = b"ECHO ".to_vec();
    line.resize(70 * 1024, b'a');
    c.send(&line);
    assert_eq!(
        c.reply(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    c.expect_closed(IO_TIMEOUT);
    node.assert_serving();
}

#[test]
fn inline_line_just_under_64kb_is_accepted() {
    let node = Node::start();
    let mut c = node.connect();
    let mut line = b"ECHO ".to_vec();
    line.resize(64 * 1024 - 10, b'a');
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    let reply = c.reply();
    assert!(reply.starts_with(b"$65521\r\naaa"), "{:?}", &reply[..20]);
}

#[test]
fn multibulk_header_line_over_64kb_is_refused() {
    let node = Node::start();
    let mut c = node.connect();
    let mut input = b"*1".to_vec();
    input.resize(70 * 1024, b'1');
    c.send(&input);
    assert_eq!(
        c.reply(),
        b"-ERR Protocol error: too big mbulk count string\r\n"
    );
    c.expect_closed(IO_TIMEOUT);
}

// ----- well-formed input -----

#[test]
fn inline_commands_work_with_quoting() {
    let node = Node::start();
    let mut c = node.connect();
    c.send(b"PING\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
    c.send(b"PING\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
    c.send(b"SET \"a b\" 'c d'\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    c.send(b"GET \"a b\"\r\n");
    assert_eq!(c.reply(), b"$3\r\nc d\r\n");
    c.send(b"ECHO \"\\x41\\n\\\"\"\r\n");
    assert_eq!(c.reply(), b"$3\r\nA\n\"\r\n");
    c.send(b"ECHO 'it\\'s'\r\n");
    assert_eq!(c.reply(), b"$4\r\nit's\r\n");
    c.send(b"  set   k\t v  \r\n\r\n\r\nget k\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.reply(), b"$1\r\nv\r\n");
    c.send(b"NOSUCH a\r\n");
    assert_eq!(
        c.reply(),
        b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n"
    );
}

#[test]
fn quit_in_a_pipeline_stops_the_commands_after_it() {
    let node = Node::start();
    let mut c = node.connect();
    c.send(b"SET k 1\r\nQUIT\r\nSET k 2\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    c.expect_closed(IO_TIMEOUT);
    let mut d = node.connect();
    assert_eq!(d.call(&[b"GET", b"k"]), b"$1\r\n1\r\n");
}

#[test]
fn empty_and_null_multibulks_are_skipped() {
    let node = Node::start();
    let mut c = node.connect();
    c.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
    c.expect_silence(Duration::from_millis(100));
}

#[test]
fn pipelined_commands_in_one_write_get_every_reply_in_order() {
    let node = Node::start();
    let mut c = node.connect();
    let mut batch = Vec::new();
    for i in 0..1000 {
        if i % 3 == 0 {
            batch.extend_from_slice(b"INCR counter\r\n");
        } else {
            batch.extend_from_slice(&multibulk(&[b"INCR", b"counter"]));
        }
    }
    batch.extend_from_slice(&multibulk(&[b"GET", b"counter"]));
    c.send(&batch);
    for i in 1..=1000 {
        assert_eq!(c.reply(), format!(":{i}\r\n").into_bytes());
    }
    assert_eq!(c.reply(), b"$4\r\n1000\r\n");
}

#[test]
fn a_request_split_across_many_writes_is_reassembled() {
    let node = Node::start();
    let mut c = node.connect();
    let value = vec![b'z'; 300 * 1024];
    let request = multibulk(&[b"SET", b"big", &value]);
    for piece in request.chunks(4096) {
        c.send(piece);
    }
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.call(&[b"STRLEN", b"big"]), b":307200\r\n");
    // Byte by byte, too.
    for byte in multibulk(&[b"ECHO", b"hi"]) {
        c.send(&[byte]);
    }
    assert_eq!(c.reply(), b"$2\r\nhi\r\n");
}

#[test]
fn binary_safe_values_round_trip() {
    let node = Node::start();
    let mut c = node.connect();
    let value: Vec<u8> = (0..=255u8).collect();
    assert_eq!(c.call(&[b"SET", b"\r\n\0key", &value]), b"+OK\r\n");
    let mut want = b"$256\r\n".to_vec();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    assert_eq!(c.call(&[b"GET", b"\r\n\0key"]), want);
}

// ----- client limits -----

#[test]
fn maxclients_rejects_the_extra_client_with_redis_error() {
    let node = Node::with(Config {
        maxclients: 2,
        ..Config::default()
    });
    let mut a = node.connect();
    let mut b = node.connect();
    assert_eq!(a.call(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(b.call(&[b"PING"]), b"+PONG\r\n");
    let mut extra = node.connect();
    assert_eq!(extra.reply(), b"-ERR max number of clients reached\r\n");
    extra.expect_closed(IO_TIMEOUT);
    // The admitted clients are unaffected.
    assert_eq!(a.call(&[b"PING"]), b"+PONG\r\n");
    // Once one leaves, a new client gets in.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(3);
    while node.connected_clients() > 1 {
        assert!(Instant::now() < deadline, "closed client never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = node.connect();
    assert_eq!(c.call(&[b"PING"]), b"+PONG\r\n");
    let info = c.call(&[b"INFO", b"stats"]);
    assert!(String::from_utf8_lossy(&info).contains("rejected_connections:1\r\n"));
}

#[test]
fn maxclients_holds_under_a_burst_of_connections() {
    let node = Node::with(Config {
        maxclients: 2,
        ..Config::default()
    });
    // Connect many at once, before any of them has been served.
    let mut burst: Vec<Raw> = (0..12).map(|_| node.connect()).collect();
    let mut admitted = 0;
    let mut rejected = 0;
    for c in &mut burst {
        c.send(b"PING\r\n");
        match c.reply().as_slice() {
            b"+PONG\r\n" => admitted += 1,
            b"-ERR max number of clients reached\r\n" => rejected += 1,
            other => panic!("unexpected {:?}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!((admitted, rejected), (2, 10));
}

#[test]
fn idle_timeout_closes_an_idle_client() {
    let node = Node::with(Config {
        timeout: 1,
        ..Config::default()
    });
    let mut c = node.connect();
    assert_eq!(c.call(&[b"PING"]), b"+PONG\r\n");
    let start = Instant::now();
    c.expect_closed(Duration::from_secs(4));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "closed too early: {waited:?}"
    );
    node.assert_serving();
}

#[test]
fn an_active_client_is_not_closed_by_the_idle_timeout() {
    let node = Node::with(Config {
        timeout: 1,
        ..Config::default()
    });
    let mut c = node.connect();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.call(&[b"PING"]), b"+PONG\r\n");
    }
}

#[test]
fn request_deadline_closes_a_client_that_stalls_mid_request() {
    let node = Node::with(Config {
        request_deadline: 1,
        ..Config::default()
    });
    let mut c = node.connect();
    assert_eq!(c.call(&[b"PING"]), b"+PONG\r\n");
    c.send(b"*2\r\n$4\r\nECHO\r\n$5\r\nab");
    let start = Instant::now();
    c.expect_closed(Duration::from_secs(4));
    assert!(start.elapsed() >= Duration::from_millis(800));
    // A half inline line stalls the same way.
    let mut d = node.connect();
    d.send(b"PIN");
    d.expect_closed(Duration::from_secs(4));
    node.assert_serving();
}

#[test]
fn request_deadline_applies_when_the_stall_falls_between_two_arguments() {
    // Every byte sent so far has been parsed (the header and the first
    // argument are complete), so nothing is left in the read buffer, yet
    // the request is unfinished: the deadline must still apply.
    let node = Node::with(Config {
        request_deadline: 1,
        ..Config::default()
    });
    let mut c = node.connect();
    c.send(b"*2\r\n$4\r\nECHO\r\n");
    c.expect_closed(Duration::from_secs(4));
    let mut d = node.connect();
    d.send(b"*3\r\n");
    d.expect_closed(Duration::from_secs(4));
    node.assert_serving();
}

#[test]
fn request_deadline_counts_from_the_first_byte_even_if_bytes_trickle() {
    let node = Node::with(Config {
        request_deadline: 1,
        ..Config::default()
    });
    let mut c = node.connect();
    let start = Instant::now();
    c.send(b"*2\r\n");
    // One byte every 200 ms never finishes the request within 1 s.
    let mut closed = false;
    for byte in b"$4\r\nECHO\r\n$100\r\n".iter().cycle().take(25) {
        std::thread::sleep(Duration::from_millis(200));
        if c.stream.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        c.stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        match c.stream.read(&mut probe) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => panic!("unexpected reply {:?}", &probe[..n]),
            Err(_) => {}
        }
    }
    assert!(closed, "slow-loris client was never cut off");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_query_buffer_over_the_limit_closes_the_client() {
    let node = Node::with(Config {
        client_query_buffer_limit: 64 * 1024,
        ..Config::default()
    });
    let mut c = node.connect();
    c.send(b"*2\r\n$4\r\nECHO\r\n$1000000\r\n");
    // More than the limit of a single unfinished argument.
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..8 {
        if c.stream.write_all(&chunk).is_err() {
            break;
        }
    }
    c.expect_closed(IO_TIMEOUT);
    node.assert_serving();
}

#[test]
fn unauthenticated_clients_cannot_send_large_requests() {
    let node = Node::with(Config {
        requirepass: "pw".into(),
        ..Config::default()
    });
    let mut big = node.connect();
    let value = vec![b'x'; 20_000];
    assert_eq!(
        big.call(&[b"SET", b"k", &value]),
        b"-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    big.expect_closed(IO_TIMEOUT);
    let mut many = node.connect();
    let args: Vec<&[u8]> = std::iter::once(&b"MSET"[..])
        .chain(std::iter::repeat_n(&b"a"[..], 12))
        .collect();
    assert_eq!(
        many.call(&args),
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    many.expect_closed(IO_TIMEOUT);
    // In one pipeline, what follows a good AUTH is no longer capped.
    let mut ok = node.connect();
    let mut pipeline = multibulk(&[b"AUTH", b"pw"]);
    pipeline.extend_from_slice(&multibulk(&[b"SET", b"k", &value]));
    pipeline.extend_from_slice(&multibulk(&[b"STRLEN", b"k"]));
    ok.send(&pipeline);
    assert_eq!(ok.reply(), b"+OK\r\n");
    assert_eq!(ok.reply(), b"+OK\r\n");
    assert_eq!(ok.reply(), b":20000\r\n");
    assert_eq!(ok.call(&[b"PING"]), b"+PONG\r\n");
}

#[test]
fn pipelined_requests_before_auth_are_all_answered() {
    let node = Node::with(Config {
        requirepass: "pw".into(),
        ..Config::default()
    });
    let mut c = node.connect();
    c.send(b"PING\r\nPING\r\nAUTH pw\r\nPING\r\n");
    assert_eq!(c.reply(), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.reply(), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
}

#[test]
fn requirepass_refuses_commands_until_auth() {
    let node = Node::with(Config {
        requirepass: "pw".into(),
        ..Config::default()
    });
    let mut c = node.connect();
    c.send(b"GET k\r\n");
    assert_eq!(c.reply(), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(
        c.call(&[b"SET", b"k", b"v"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.call(&[b"AUTH", b"nope"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.call(&[b"AUTH", b"pw"]), b"+OK\r\n");
    assert_eq!(c.call(&[b"SET", b"k", b"v"]), b"+OK\r\n");
    // Arity is checked before authentication, as in Redis.
    let mut d = node.connect();
    assert_eq!(
        d.call(&[b"GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        d.call(&[b"GET", b"k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    // QUIT works unauthenticated.
    assert_eq!(d.call(&[b"QUIT"]), b"+OK\r\n");
    d.expect_closed(IO_TIMEOUT);
}

#[test]
fn shutdown_closes_connected_clients() {
    let mut node = Node::start();
    let mut c = node.connect();
    assert_eq!(c.call(&[b"PING"]), b"+PONG\r\n");
    node.shutdown();
    c.expect_closed(IO_TIMEOUT);
    assert!(TcpStream::connect_timeout(&node.addr, Duration::from_secs(1)).is_err());
}

// ----- fuzzing -----

/// Bytes biased towards RESP punctuation so the parser reaches deep states.
fn fuzz_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    const PUNCT: &[u8] = b"*$\r\n0123456789-+: \"'\\x";
    const WORDS: &[&[u8]] = &[
        b"*2\r\n",
        b"*1\r\n",
        b"$3\r\n",
        b"$4\r\nPING\r\n",
        b"GET k\r\n",
        b"SET k v\r\n",
        b"INCR n\r\n",
        b"ECHO \"a\\x41\"\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        match rng.below(10) {
            0..=3 => out.push(*rng.pick(PUNCT)),
            4..=6 => {
                let word: &[u8] = WORDS[rng.below(WORDS.len())];
                out.extend_from_slice(word)
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out
}

#[test]
fn random_bytes_never_take_the_node_down() {
    let node = Node::start();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut bystander = node.connect();
    assert_eq!(bystander.call(&[b"SET", b"stay", b"1"]), b"+OK\r\n");
    let start = Instant::now();
    for round in 0..150 {
        let len = 1 + rng.below(600);
        let input = fuzz_bytes(&mut rng, len);
        let mut c = node.connect();
        // The server may close early (protocol error); a failed write is fine.
        let _ = c.stream.write_all(&input);
        let _ = c.stream.shutdown(Shutdown::Write);
        // Drain until the server closes (it sees EOF, or a protocol error).
        c.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut sink = [0u8; 8192];
        loop {
            match c.stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("round {round}: connection neither answered nor closed: {e}"),
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "fuzz too slow");
    }
    node.assert_serving();
    assert_eq!(bystander.call(&[b"GET", b"stay"]), b"$1\r\n1\r\n");
}

/// Argument values that reach the parsing edge cases of the handlers.
const INTERESTING: &[&str] = &[
    "k",
    "k2",
    "n",
    "",
    "0",
    "1",
    "-1",
    "2",
    "10",
    "100",
    "1000000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "1.5",
    "-0.5",
    "1e3",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "abc",
    " 1",
    "01",
    "nx",
    "xx",
    "gt",
    "lt",
    "ex",
    "px",
    "exat",
    "pxat",
    "get",
    "keepttl",
    "persist",
    "count",
    "match",
    "type",
    "string",
    "*",
    "?",
    "[a-",
    "\\",
    "async",
    "sync",
    "auth",
    "setname",
    "default",
    "id",
    "normal",
    "2",
    "3",
    "maxclients",
    "timeout",
    "hz",
    "requirepass",
    "proto-max-bulk-len",
    "server",
    "all",
    "digest",
    "sleep",
    "lib-name",
];

#[test]
fn random_argument_vectors_never_panic_in_dispatch() {
    // SAVE and DEBUG RELOAD come up: their snapshot goes to a directory of
    // this test's own, never the working directory nodes load from.
    let mut config = Config::default();
    let dir = std::env::temp_dir().join(format!("cordis-dispatch-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    config
        .apply_start("dir", dir.to_str().expect("utf-8 temp dir"))
        .expect("dir is accepted");
    let state = ServerState::new(config, ReplicaId(7), None);
    let mut client = ClientState::detached(true);
    let mut names: Vec<String> = commands::all_commands()
        .flat_map(|c| {
            let mut v = vec![c.name.to_string()];
            v.extend(
                c.subcommands
                    .iter()
                    .map(|s| format!("{} {}", c.name, s.name)),
            );
            v
        })
        .collect();
    names.push("nosuchcommand".into());
    names.push("GeT".into());
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let base_ms = 1_700_000_000_000u64;
    let mut now = base_ms;
    for _ in 0..30_000 {
        let name = rng.pick(&names).clone();
        let mut args: Vec<Bytes> = name
            .split(' ')
            .map(|w| Bytes::from(w.to_string()))
            .collect();
        for _ in 0..rng.below(7) {
            let arg = match rng.below(8) {
                0 => {
                    let len = rng.below(12);
                    Bytes::from((0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>())
                }
                1 => Bytes::from((rng.next() as i64 % 100_000).to_string()),
                _ => Bytes::from(rng.pick(INTERESTING).to_string()),
            };
            args.push(arg);
        }
        // Move the clock now and then so expiry paths run too.
        if rng.below(50) == 0 {
            now += rng.below(5_000) as u64;
        }
        // Never sleep, never lock everyone out.
        if args[0].eq_ignore_ascii_case(b"config") && args.len() > 2 {
            let lowered = args[2].to_ascii_lowercase();
            if lowered == b"requirepass" || lowered == b"maxclients" || lowered == b"timeout" {
                continue;
            }
        }
        state.store.lock().set_time_override(Some(now));
        let _reply = state.execute(&mut client, &args);
        client.action = None;
        if rng.below(200) == 0 {
            let mut store = state.store.lock();
            store.active_expire_cycle(100);
            let stable = store.version_vector().clone();
            store.collect_garbage(&stable);
        }
    }
    // The state is still consistent enough to answer (once out of any
    // transaction or subscription the random commands opened).
    let _ = state.execute(&mut client, &[Bytes::from_static(b"RESET")]);
    let reply = state.execute(&mut client, &[Bytes::from_static(b"PING")]);
    assert_eq!(reply, cordis::protocol::Reply::simple("PONG"));
    let _ = std::fs::remove_dir_all(&dir);
}
