//! Dispatcher behaviours, argv in and reply out, without a socket: lookup,
//! Redis's arity rule and error texts, subcommands, authentication, and the
//! hand-off of each write's batch to the delta log.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::config::Config;
use crate::crdt::ReplicaId;

struct Harness {
    state: Arc<ServerState>,
    client: ClientState,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let needs_auth = !config.requirepass.is_empty();
        Harness {
            state: ServerState::new(config, ReplicaId(1), None),
            client: ClientState::detached(!needs_auth),
        }
    }

    fn run(&mut self, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        self.state.execute(&mut self.client, &args)
    }
}

fn error(text: &str) -> Reply {
    Reply::Error(Bytes::copy_from_slice(text.as_bytes()))
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn unknown_command_names_it_and_its_first_arguments() {
    let mut h = Harness::new(Config::default());
    assert_eq!(
        h.run(&["FOO", "a", "b"]),
        error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        h.run(&["nope"]),
        error("ERR unknown command 'nope', with args beginning with: ")
    );
}

#[test]
fn wrong_arity_is_refused_before_the_handler_runs() {
    let mut h = Harness::new(Config::default());
    assert_eq!(
        h.run(&["GET"]),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        h.run(&["get", "a", "b"]),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        h.run(&["SET", "k"]),
        error("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(
        h.run(&["MSET", "a", "1", "b"]),
        error("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(
        h.run(&["CONFIG", "GET"]),
        error("ERR wrong number of arguments for 'config|get' command")
    );
    assert_eq!(
        h.run(&["CONFIG"]),
        error("ERR wrong number of arguments for 'config' command")
    );
    assert_eq!(h.state.store.lock().dbsize(0), 0);
}

#[test]
fn commands_are_case_insensitive() {
    let mut h = Harness::new(Config::default());
    assert_eq!(h.run(&["sEt", "k", "v"]), Reply::ok());
    assert_eq!(h.run(&["GeT", "k"]), bulk("v"));
}

#[test]
fn unknown_subcommand_suggests_help() {
    let mut h = Harness::new(Config::default());
    assert_eq!(
        h.run(&["CLIENT", "bogus"]),
        error("ERR unknown subcommand 'bogus'. Try CLIENT HELP.")
    );
}

#[test]
fn bare_command_lists_every_table_row() {
    let mut h = Harness::new(Config::default());
    let Reply::Array(rows) = h.run(&["COMMAND"]) else {
        panic!("COMMAND must reply an array")
    };
    assert_eq!(
        h.run(&["COMMAND", "COUNT"]),
        Reply::Integer(rows.len() as i64)
    );
    assert!(rows.len() >= 50, "every family is listed");
}

#[test]
fn arity_of_every_row_follows_redis_sign_rule() {
    for command in all_commands() {
        let n = command.arity.unsigned_abs() as usize;
        assert!(
            command.arity_ok(n),
            "{} accepts its own arity",
            command.name
        );
        assert!(
            !command.arity_ok(n - 1),
            "{} needs its arguments",
            command.name
        );
        if command.arity > 0 {
            assert!(!command.arity_ok(n + 1), "{} is exact", command.name);
        } else {
            assert!(command.arity_ok(n + 3), "{} takes more", command.name);
        }
    }
}

#[test]
fn without_auth_only_auth_hello_and_quit_run() {
    let config = Config {
        requirepass: "secret".into(),
        ..Config::default()
    };
    let mut h = Harness::new(config);
    assert_eq!(
        h.run(&["GET", "k"]),
        error("NOAUTH Authentication required.")
    );
    assert_eq!(
        h.run(&["AUTH", "wrong"]),
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    let failures = |h: &Harness| {
        h.state
            .stats
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(failures(&h), 1);
    h.run(&["HELLO", "2", "AUTH", "default", "wrong"]);
    assert_eq!(failures(&h), 2, "HELLO AUTH counts too");
    assert_eq!(h.run(&["AUTH", "secret"]), Reply::ok());
    assert_eq!(failures(&h), 2, "a good password is not counted");
    assert_eq!(h.run(&["GET", "k"]), Reply::Nil);
}

#[test]
fn reads_and_failed_writes_hand_nothing_to_the_delta_log() {
    // A peer port makes the node replicate, so writes are logged.
    let mut h = Harness::new(Config {
        peer_port: Some(17391),
        ..Config::default()
    });
    h.run(&["SET", "k", "abc"]);
    let before = h.state.store.lock().delta_log().len();
    h.run(&["GET", "k"]);
    h.run(&["INCR", "k"]);
    h.run(&["SET", "k", "v", "NX"]);
    h.run(&["SET", "k", "v", "EX", "0"]);
    assert_eq!(h.state.store.lock().delta_log().len(), before);
    h.run(&["SET", "k", "v2"]);
    assert_eq!(h.state.store.lock().delta_log().len(), before + 1);
    assert_eq!(h.client.last_write_seq, h.state.store.lock().last_seq());
}

#[test]
fn a_node_without_peers_logs_no_batches_and_a_late_reader_needs_a_full_sync() {
    let mut h = Harness::new(Config::default());
    for i in 0..100 {
        h.run(&["SET", &format!("k{i}"), "v"]);
    }
    let store = h.state.store.lock();
    assert_eq!(store.delta_log().len(), 0);
    assert_eq!(store.delta_log().bytes(), 0);
    assert_eq!(store.last_seq(), 100);
    assert!(
        store.delta_log().since(0).is_none(),
        "nothing to resend from"
    );
}

#[test]
fn failed_increments_change_nothing() {
    let mut h = Harness::new(Config::default());
    h.run(&["SET", "n", "9223372036854775807"]);
    assert_eq!(
        h.run(&["INCR", "n"]),
        error("ERR increment or decrement would overflow")
    );
    assert_eq!(h.run(&["GET", "n"]), bulk("9223372036854775807"));
    h.run(&["SET", "s", "abc"]);
    assert_eq!(
        h.run(&["INCRBYFLOAT", "s", "1"]),
        error("ERR value is not a valid float")
    );
    assert_eq!(
        h.run(&["INCRBY", "s", "x"]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(h.run(&["GET", "s"]), bulk("abc"));
}

#[test]
fn counters_read_back_as_redis_formats_them() {
    let mut h = Harness::new(Config::default());
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("0.1"));
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "0.2"]), bulk("0.3"));
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "-0.3"]), bulk("0"));
    assert_eq!(h.run(&["INCR", "f"]), Reply::Integer(1));
    assert_eq!(h.run(&["SET", "f", "10"]), Reply::ok());
    assert_eq!(h.run(&["DECRBY", "f", "3"]), Reply::Integer(7));
    assert_eq!(h.run(&["GET", "f"]), bulk("7"));
    assert_eq!(h.run(&["APPEND", "f", "5"]), Reply::Integer(2));
    assert_eq!(h.run(&["INCR", "f"]), Reply::Integer(76));
}

#[test]
fn only_read_commands_count_keyspace_hits_and_misses() {
    let mut h = Harness::new(Config::default());
    h.run(&["SET", "k", "v"]);
    h.run(&["SET", "k", "w"]);
    h.run(&["APPEND", "k", "x"]);
    h.run(&["INCR", "n"]);
    {
        let store = h.state.store.lock();
        assert_eq!(
            (store.stats.keyspace_hits, store.stats.keyspace_misses),
            (0, 0)
        );
    }
    h.run(&["GET", "k"]);
    h.run(&["GET", "missing"]);
    let store = h.state.store.lock();
    assert_eq!(
        (store.stats.keyspace_hits, store.stats.keyspace_misses),
        (1, 1)
    );
}
