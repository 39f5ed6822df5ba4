//! The client state machine without sockets: bytes in, steps and reply
//! bytes out.

use std::time::{Duration, Instant};

use super::*;
use crate::commands::context::UnblockHow;
use crate::config::Config;
use crate::crdt::ReplicaId;

fn server() -> std::sync::Arc<ServerState> {
    ServerState::new(Config::default(), ReplicaId(7), None)
}

fn session(state: &ServerState) -> ClientSession<'_> {
    ClientSession::new(state, ClientState::detached(true), Instant::now())
}

/// Appends `bytes` as if one read brought them.
fn send(session: &mut ClientSession<'_>, bytes: &[u8]) {
    session.input().extend_from_slice(bytes);
    session.on_read(bytes.len(), Instant::now());
}

/// Takes the replies written so far.
fn replies(session: &mut ClientSession<'_>) -> String {
    let text = String::from_utf8_lossy(session.output()).into_owned();
    session.output().clear();
    text
}

fn command(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        out.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
    }
    out
}

#[test]
fn a_pipeline_is_answered_in_one_output_then_the_session_reads() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, b"PING\r\n");
    send(&mut s, &command(&["SET", "k", "v"]));
    send(&mut s, &command(&["GET", "k"]));
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(replies(&mut s), "+PONG\r\n+OK\r\n$1\r\nv\r\n");
}

#[test]
fn a_half_sent_request_reads_within_the_request_deadline() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, b"*2\r\n$3\r\nGET\r\n");
    let Step::Read { wait: Some(wait) } = s.next_step(Instant::now()) else {
        panic!("expected a bounded read");
    };
    assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
    assert_eq!(replies(&mut s), "");
    send(&mut s, b"$1\r\nk\r\n");
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(replies(&mut s), "$-1\r\n");
}

#[test]
fn a_blocking_pop_parks_and_holds_the_requests_after_it() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["BLPOP", "q", "0.5"]));
    send(&mut s, &command(&["PING"]));
    let Step::WaitKeys { deadline: Some(_) } = s.next_step(Instant::now()) else {
        panic!("expected the pop to park with a deadline");
    };
    assert_eq!(replies(&mut s), "", "a parked command sends nothing");
    assert!(state.blocked.lock().contains(0), "registered as blocked");
    s.on_unparked(Unparked::TimedOut);
    assert!(!state.blocked.lock().contains(0), "unregistered");
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(
        replies(&mut s),
        "*-1\r\n+PONG\r\n",
        "nil, then what followed"
    );
}

#[test]
fn a_woken_pop_runs_again_and_a_miss_keeps_the_first_deadline() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["BRPOP", "q", "1"]));
    let Step::WaitKeys { deadline: first } = s.next_step(Instant::now()) else {
        panic!("expected a park");
    };
    // Woken, but another client took the element: it parks again.
    s.on_unparked(Unparked::Woken);
    assert_eq!(
        s.next_step(Instant::now()),
        Step::WaitKeys { deadline: first }
    );
    state.execute(
        &mut ClientState::detached(true),
        &[
            Bytes::from_static(b"RPUSH"),
            Bytes::from_static(b"q"),
            Bytes::from_static(b"x"),
        ],
    );
    s.on_unparked(Unparked::Woken);
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(replies(&mut s), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
}

#[test]
fn blmove_waits_only_on_its_source_key() {
    let state = server();
    let mut s = session(&state);
    send(
        &mut s,
        &command(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]),
    );
    assert_eq!(
        s.next_step(Instant::now()),
        Step::WaitKeys { deadline: None }
    );
    let blocked = state.blocked.lock();
    assert_eq!(blocked.keys_of(0), vec![Bytes::from_static(b"src")]);
}

#[test]
fn wait_without_enough_peers_parks_and_replies_after_the_wait() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["SET", "a", "1"]));
    send(&mut s, &command(&["WAIT", "1", "100"]));
    let step = s.next_step(Instant::now());
    let Step::WaitPeers {
        numpeers: 1,
        timeout: Some(timeout),
        ..
    } = step
    else {
        panic!("expected WAIT to park, got {step:?}");
    };
    assert_eq!(timeout, Duration::from_millis(100));
    assert_eq!(replies(&mut s), "+OK\r\n", "WAIT's reply waits");
    s.on_peers_acked(0);
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(replies(&mut s), ":0\r\n");
}

#[test]
fn exec_denies_blocking_and_always_returns_its_full_array() {
    let state = server();
    let mut s = session(&state);
    for words in [
        &["MULTI"][..],
        &["SET", "a", "1"],
        &["WAIT", "1", "100"],
        &["BLPOP", "nothing", "0"],
        &["EXEC"],
    ] {
        send(&mut s, &command(words));
    }
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(
        replies(&mut s),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:0\r\n*-1\r\n"
    );
    assert!(!s.client.deny_blocking, "EXEC restores the flag");
}

#[test]
fn quit_replies_then_closes() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["QUIT"]));
    send(&mut s, &command(&["PING"]));
    assert_eq!(s.next_step(Instant::now()), Step::Close(CloseReason::Quit));
    assert_eq!(replies(&mut s), "+OK\r\n");
}

#[test]
fn a_framing_error_answers_what_came_before_then_closes() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, b"PING\r\n*1\r\n+oops\r\n");
    let Step::Close(CloseReason::ProtocolError(text)) = s.next_step(Instant::now()) else {
        panic!("expected a protocol error close");
    };
    assert_eq!(text, "Protocol error: expected '$', got '+'");
    assert_eq!(
        replies(&mut s),
        "+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n"
    );
}

#[test]
fn before_auth_requests_run_one_at_a_time() {
    let config = Config {
        requirepass: "secret".into(),
        ..Config::default()
    };
    let state = ServerState::new(config, ReplicaId(7), None);
    let mut s = ClientSession::new(&state, ClientState::detached(false), Instant::now());
    send(&mut s, &command(&["GET", "k"]));
    send(&mut s, &command(&["AUTH", "secret"]));
    send(&mut s, &command(&["GET", "k"]));
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(
        replies(&mut s),
        "-NOAUTH Authentication required.\r\n+OK\r\n$-1\r\n"
    );
}

#[test]
fn a_query_buffer_over_the_limit_closes() {
    let config = Config {
        client_query_buffer_limit: 16,
        ..Config::default()
    };
    let state = ServerState::new(config, ReplicaId(7), None);
    let mut s = session(&state);
    send(&mut s, b"*2\r\n$3\r\nSET\r\n$100\r\n");
    send(&mut s, &[b'x'; 40]);
    assert_eq!(
        s.next_step(Instant::now()),
        Step::Close(CloseReason::QueryBufferLimit)
    );
}

#[test]
fn the_idle_timeout_bounds_the_read_from_the_last_activity() {
    let config = Config {
        timeout: 10,
        ..Config::default()
    };
    let state = ServerState::new(config, ReplicaId(7), None);
    let start = Instant::now();
    let mut s = ClientSession::new(&state, ClientState::detached(true), start);
    assert_eq!(
        s.next_step(start + Duration::from_secs(4)),
        Step::Read {
            wait: Some(Duration::from_secs(6))
        }
    );
}

#[test]
fn debug_sleep_asks_for_a_pause() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["DEBUG", "SLEEP", "0.25"]));
    assert_eq!(
        s.next_step(Instant::now()),
        Step::Sleep(Duration::from_millis(250))
    );
    assert_eq!(replies(&mut s), "+OK\r\n");
}

#[test]
fn client_pause_write_holds_a_write_but_not_a_read_until_unpause() {
    let state = server();
    let mut admin = session(&state);
    send(&mut admin, &command(&["CLIENT", "PAUSE", "60000", "WRITE"]));
    assert_eq!(admin.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(replies(&mut admin), "+OK\r\n");

    let mut s = session(&state);
    send(&mut s, &command(&["GET", "k"]));
    send(&mut s, &command(&["SET", "k", "v"]));
    send(&mut s, &command(&["PING"]));
    let Step::Paused { generation, .. } = s.next_step(Instant::now()) else {
        panic!("the write waits out the pause");
    };
    assert_eq!(replies(&mut s), "$-1\r\n", "the read before it ran");
    // Asked again while still paused: still held, nothing after it ran.
    assert!(matches!(s.next_step(Instant::now()), Step::Paused { .. }));
    assert_eq!(replies(&mut s), "");

    send(&mut admin, &command(&["CLIENT", "UNPAUSE"]));
    admin.next_step(Instant::now());
    assert_eq!(replies(&mut admin), "+OK\r\n");
    assert_ne!(*state.pause_changes.borrow(), generation);
    assert_eq!(s.next_step(Instant::now()), Step::Read { wait: None });
    assert_eq!(replies(&mut s), "+OK\r\n+PONG\r\n");
}

#[test]
fn client_pause_all_holds_reads_and_ends_at_its_deadline() {
    let state = server();
    let mut admin = session(&state);
    send(&mut admin, &command(&["CLIENT", "PAUSE", "50"]));
    admin.next_step(Instant::now());
    let mut s = session(&state);
    send(&mut s, &command(&["GET", "k"]));
    let Step::Paused { until, .. } = s.next_step(Instant::now()) else {
        panic!("a read waits under PAUSE ALL");
    };
    // A refused request is answered at once even while paused.
    let mut t = session(&state);
    send(&mut t, &command(&["SET", "k"]));
    assert_eq!(t.next_step(Instant::now()), Step::Read { wait: None });
    assert!(replies(&mut t).starts_with("-ERR wrong number of arguments"));
    // Past the deadline the read runs.
    assert_eq!(
        s.next_step(until + Duration::from_millis(1)),
        Step::Read { wait: None }
    );
    assert_eq!(replies(&mut s), "$-1\r\n");
}

#[test]
fn an_exec_holding_a_write_is_paused_by_pause_write() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["MULTI"]));
    send(&mut s, &command(&["SET", "k", "v"]));
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "+OK\r\n+QUEUED\r\n");
    state.pause_clients(Instant::now() + Duration::from_secs(60), true);
    send(&mut s, &command(&["EXEC"]));
    assert!(matches!(s.next_step(Instant::now()), Step::Paused { .. }));
    state.unpause_clients();
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "*1\r\n+OK\r\n");
}

#[test]
fn client_reply_off_and_on() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["CLIENT", "REPLY", "OFF"]));
    send(&mut s, &command(&["PING", "a"]));
    send(&mut s, &command(&["CLIENT", "REPLY", "ON"]));
    send(&mut s, &command(&["PING", "b"]));
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "+OK\r\n$1\r\nb\r\n");
}

#[test]
fn client_reply_skip_drops_only_the_next_reply() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["CLIENT", "REPLY", "SKIP"]));
    send(&mut s, &command(&["PING", "a"]));
    send(&mut s, &command(&["PING", "b"]));
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "$1\r\nb\r\n");
    // ON right after SKIP answers, and replies stay on.
    send(&mut s, &command(&["CLIENT", "REPLY", "SKIP"]));
    send(&mut s, &command(&["CLIENT", "REPLY", "ON"]));
    send(&mut s, &command(&["PING"]));
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "+OK\r\n+PONG\r\n");
}

#[test]
fn client_unblock_error_answers_a_parked_pop_with_unblocked() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["BLPOP", "q", "0"]));
    send(&mut s, &command(&["PING"]));
    assert_eq!(
        s.next_step(Instant::now()),
        Step::WaitKeys { deadline: None }
    );
    s.on_unparked(Unparked::Unblocked(UnblockHow::Error));
    s.next_step(Instant::now());
    assert_eq!(
        replies(&mut s),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n+PONG\r\n"
    );
    send(&mut s, &command(&["BLPOP", "q", "0"]));
    s.next_step(Instant::now());
    s.on_unparked(Unparked::Unblocked(UnblockHow::Timeout));
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "*-1\r\n");
}

#[test]
fn a_monitor_sees_other_clients_commands_but_not_admin_or_refused_ones() {
    let state = server();
    let mut m = session(&state);
    send(&mut m, &command(&["MONITOR"]));
    m.next_step(Instant::now());
    assert_eq!(replies(&mut m), "+OK\r\n");
    let queue = m.push_queue().expect("a monitor queue").clone();
    let mut s = session(&state);
    send(&mut s, &command(&["SET", "foo", "bar"]));
    send(&mut s, &command(&["CONFIG", "GET", "port"]));
    send(&mut s, &command(&["NOSUCH"]));
    send(&mut s, &command(&["AUTH", "secret"]));
    s.next_step(Instant::now());
    let mut out = BytesMut::new();
    queue.drain_into(&mut out, 1 << 20);
    let text = String::from_utf8_lossy(&out).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with('+') && lines[0].ends_with("[0 local] \"SET\" \"foo\" \"bar\""));
    assert!(lines[1].ends_with("\"AUTH\" \"(redacted)\""));
}

#[test]
fn reset_restores_the_connection_defaults() {
    let state = server();
    let mut s = session(&state);
    send(&mut s, &command(&["SELECT", "3"]));
    send(&mut s, &command(&["CLIENT", "SETNAME", "x"]));
    send(&mut s, &command(&["MULTI"]));
    send(&mut s, &command(&["RESET"]));
    send(&mut s, &command(&["CLIENT", "GETNAME"]));
    s.next_step(Instant::now());
    assert_eq!(replies(&mut s), "+OK\r\n+OK\r\n+OK\r\n+RESET\r\n$-1\r\n");
    assert_eq!(s.client.db, 0);
    assert!(s.client.multi.is_none());
}
