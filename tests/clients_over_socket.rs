//! covers: client reset monitor memory lolwut shutdown command migrate cluster
//! Client administration over a real socket: CLIENT KILL / PAUSE / REPLY /
//! UNBLOCK / LIST, MONITOR (and its output limit), RESET, COMMAND GETKEYS
//! and LIST FILTERBY, MEMORY, LOLWUT and SHUTDOWN, with Redis 7.0's
//! replies. Every node binds 127.0.0.1:0 and is dropped (shut down) at the
//! end of its test; every read has a timeout.

use std::io::Read;
use std::time::{Duration, Instant};

use cordis::config::Config;
use cordis::pubsub::push::OutputLimit;

mod support;

use support::{Node, Raw};

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn id_of(c: &mut Raw) -> String {
    let reply = text(c.call_str(&["CLIENT", "ID"]));
    reply.trim_start_matches(':').trim().to_string()
}

/// The `addr=` field of a client's own CLIENT INFO line.
fn addr_of(c: &mut Raw) -> String {
    let info = text(c.call_str(&["CLIENT", "INFO"]));
    info.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .expect("addr field")
        .to_string()
}

#[test]
fn client_kill_closes_another_client_while_others_are_served() {
    let node = Node::start();
    let mut admin = node.connect();
    let mut victim = node.connect();
    let mut bystander = node.connect();
    let victim_id = id_of(&mut victim);
    assert_eq!(
        admin.call_str(&["CLIENT", "KILL", "ID", &victim_id]),
        b":1\r\n"
    );
    victim.expect_closed(Duration::from_secs(2));
    assert_eq!(bystander.call_str(&["PING"]), b"+PONG\r\n");

    // The old form by address, and its error when nothing matches.
    let mut second = node.connect();
    let addr = addr_of(&mut second);
    assert_eq!(admin.call_str(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    second.expect_closed(Duration::from_secs(2));
    assert_eq!(
        admin.call_str(&["CLIENT", "KILL", &addr]),
        b"-ERR No such client\r\n"
    );
    // A blocked client is killed out of its wait.
    let mut blocked = node.connect();
    let blocked_id = id_of(&mut blocked);
    blocked.send(&support::multibulk(&[b"BLPOP", b"q", b"0"]));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        admin.call_str(&["CLIENT", "KILL", "ID", &blocked_id, "SKIPME", "yes"]),
        b":1\r\n"
    );
    blocked.expect_closed(Duration::from_secs(2));
    assert_eq!(bystander.call_str(&["PING"]), b"+PONG\r\n");
}

#[test]
fn client_kill_filters_and_errors_are_redis_s() {
    let node = Node::start();
    let mut c = node.connect();
    assert_eq!(
        c.call_str(&["CLIENT", "KILL"]),
        b"-ERR wrong number of arguments for 'client|kill' command\r\n"
    );
    assert_eq!(
        c.call_str(&["CLIENT", "KILL", "ID", "10", "wrong_arg"]),
        b"-ERR syntax error\r\n"
    );
    for bad in ["str", "-1", "0"] {
        assert_eq!(
            c.call_str(&["CLIENT", "KILL", "ID", bad]),
            b"-ERR client-id should be greater than 0\r\n"
        );
    }
    assert_eq!(
        c.call_str(&["CLIENT", "KILL", "TYPE", "wrong_type"]),
        b"-ERR Unknown client type 'wrong_type'\r\n"
    );
    assert_eq!(
        c.call_str(&["CLIENT", "KILL", "USER", "wrong_user"]),
        b"-ERR No such user 'wrong_user'\r\n"
    );
    assert_eq!(
        c.call_str(&["CLIENT", "KILL", "SKIPME", "yes_or_no"]),
        b"-ERR syntax error\r\n"
    );
    let mut other = node.connect();
    let laddr = text(other.call_str(&["CLIENT", "INFO"]))
        .split_whitespace()
        .find_map(|f| f.strip_prefix("laddr=").map(str::to_string))
        .unwrap();
    // LADDR and TYPE normal match everyone but the caller (SKIPME yes).
    assert_eq!(
        c.call_str(&["CLIENT", "KILL", "LADDR", &laddr, "TYPE", "normal", "USER", "default"]),
        b":1\r\n"
    );
    other.expect_closed(Duration::from_secs(2));
    // SKIPME no kills the caller too, after its reply.
    assert_eq!(c.call_str(&["CLIENT", "KILL", "SKIPME", "no"]), b":1\r\n");
    c.expect_closed(Duration::from_secs(2));
    node.assert_serving();
}

#[test]
fn client_pause_write_holds_a_write_but_not_a_read_and_unpause_releases_it() {
    let node = Node::start();
    let mut admin = node.connect();
    assert_eq!(
        admin.call_str(&["CLIENT", "PAUSE", "20000", "WRITE"]),
        b"+OK\r\n"
    );
    let mut writer = node.connect();
    writer.send(&support::multibulk(&[b"SET", b"k", b"v"]));
    writer.expect_silence(Duration::from_millis(200));
    let mut reader = node.connect();
    assert_eq!(reader.call_str(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(node.state().blocked_clients(), 1, "the held writer counts");
    // A refused write is answered at once.
    assert_eq!(
        reader.call_str(&["SET", "k"]),
        b"-ERR wrong number of arguments for 'set' command\r\n"
    );
    assert_eq!(admin.call_str(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    assert_eq!(writer.reply(), b"+OK\r\n");
    assert_eq!(reader.call_str(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(
        admin.call_str(&["CLIENT", "PAUSE", "10", "SOME"]),
        b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"
    );
    assert_eq!(
        admin.call_str(&["CLIENT", "PAUSE", "-1"]),
        b"-ERR timeout is negative\r\n"
    );
    assert_eq!(
        admin.call_str(&["CLIENT", "PAUSE", "abc"]),
        b"-ERR timeout is not an integer or out of range\r\n"
    );
}

#[test]
fn client_pause_all_ends_by_itself_at_its_timeout() {
    let node = Node::start();
    let mut admin = node.connect();
    assert_eq!(
        admin.call_str(&["CLIENT", "PAUSE", "300", "ALL"]),
        b"+OK\r\n"
    );
    let start = Instant::now();
    let mut reader = node.connect();
    assert_eq!(reader.call_str(&["PING"]), b"+PONG\r\n");
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn client_reply_off_and_skip_silence_replies() {
    let node = Node::start();
    let mut c = node.connect();
    c.send(&support::multibulk(&[b"CLIENT", b"REPLY", b"OFF"]));
    c.send(&support::multibulk(&[b"PING", b"pong"]));
    c.send(&support::multibulk(&[b"PING", b"pong2"]));
    c.expect_silence(Duration::from_millis(100));
    assert_eq!(c.call_str(&["CLIENT", "REPLY", "ON"]), b"+OK\r\n");
    assert_eq!(c.call_str(&["PING", "pong3"]), b"$5\r\npong3\r\n");
    c.send(&support::multibulk(&[b"CLIENT", b"REPLY", b"SKIP"]));
    c.send(&support::multibulk(&[b"PING", b"pong"]));
    assert_eq!(c.call_str(&["PING", "pong2"]), b"$5\r\npong2\r\n");
    assert_eq!(
        c.call_str(&["CLIENT", "REPLY", "MAYBE"]),
        b"-ERR syntax error\r\n"
    );
}

#[test]
fn client_unblock_answers_a_blpop_with_nil_or_the_unblocked_error() {
    let node = Node::start();
    let mut admin = node.connect();
    let mut blocked = node.connect();
    let id = id_of(&mut blocked);
    assert_eq!(admin.call_str(&["CLIENT", "UNBLOCK", &id]), b":0\r\n");
    blocked.send(&support::multibulk(&[b"BLPOP", b"q", b"0"]));
    std::thread::sleep(Duration::from_millis(50));
    assert!(text(admin.call_str(&["CLIENT", "LIST", "ID", &id])).contains("flags=b "));
    assert_eq!(admin.call_str(&["CLIENT", "UNBLOCK", &id]), b":1\r\n");
    assert_eq!(blocked.reply(), b"*-1\r\n");
    blocked.send(&support::multibulk(&[b"BLPOP", b"q", b"0"]));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        admin.call_str(&["CLIENT", "UNBLOCK", &id, "ERROR"]),
        b":1\r\n"
    );
    assert_eq!(
        blocked.reply(),
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
    assert_eq!(blocked.call_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        admin.call_str(&["CLIENT", "UNBLOCK", &id, "LATER"]),
        b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
    assert_eq!(
        admin.call_str(&["CLIENT", "UNBLOCK", "x"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
}

#[test]
fn client_list_and_info_show_redis_7_0_fields() {
    let node = Node::start();
    let mut c = node.connect();
    let info = text(c.call_str(&["CLIENT", "INFO"]));
    let line = info.split_once("\r\n").unwrap().1;
    for field in [
        "flags=N ",
        "db=0 ",
        "multi=-1 ",
        "qbuf=26 ",
        "omem=0 ",
        "events=r ",
        "cmd=client|info ",
        "user=default ",
        "redir=-1 ",
        "resp=2",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(
        !line.contains("fd=0 ") && !line.contains("lib-name"),
        "{line}"
    );
    let list = text(c.call_str(&["CLIENT", "LIST"]));
    assert!(list.contains("cmd=client|list "), "{list}");
    assert_eq!(c.call_str(&["CLIENT", "NO-EVICT", "on"]), b"+OK\r\n");
    assert!(text(c.call_str(&["CLIENT", "INFO"])).contains("flags=e "));
    assert_eq!(c.call_str(&["CLIENT", "GETREDIR"]), b":-1\r\n");
    assert_eq!(
        c.call_str(&["CLIENT", "SETINFO", "lib-name", "x"]),
        b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"
    );
    let id = id_of(&mut c);
    c.call_str(&["MULTI"]);
    c.call_str(&["SET", "a", "b"]);
    let mut other = node.connect();
    let info = text(other.call_str(&["CLIENT", "LIST", "ID", &id]));
    assert!(
        info.contains("flags=xe ") && info.contains("multi=1 "),
        "{info}"
    );
}

#[test]
fn monitor_sees_another_client_s_commands() {
    let node = Node::start();
    let mut m = node.connect();
    assert_eq!(m.call_str(&["MONITOR"]), b"+OK\r\n");
    let mut c = node.connect();
    let addr = addr_of(&mut c);
    c.call_str(&["SET", "foo", "bar"]);
    c.call_str(&["SELECT", "2"]);
    c.call_str(&["AUTH", "secret"]);
    c.call_str(&["CONFIG", "GET", "port"]);
    c.call_str(&["GET", "foo"]);
    // CLIENT INFO is not an admin command: shown, as Redis does.
    assert!(text(m.reply()).ends_with(&format!("[0 {addr}] \"CLIENT\" \"INFO\"\r\n")));
    let first = text(m.reply());
    assert!(first.starts_with('+'), "{first}");
    let (stamp, rest) = first[1..].split_once(' ').unwrap();
    let (secs, micros) = stamp.split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{stamp}");
    assert_eq!(rest, format!("[0 {addr}] \"SET\" \"foo\" \"bar\"\r\n"));
    assert!(text(m.reply()).ends_with(&format!("[2 {addr}] \"SELECT\" \"2\"\r\n")));
    assert!(text(m.reply()).ends_with("\"AUTH\" \"(redacted)\"\r\n"));
    // CONFIG is an admin command: not shown.
    assert!(text(m.reply()).ends_with(&format!("[2 {addr}] \"GET\" \"foo\"\r\n")));
}

#[test]
fn monitor_shows_a_script_before_its_commands_as_lua() {
    let node = Node::start();
    let mut m = node.connect();
    assert_eq!(m.call_str(&["MONITOR"]), b"+OK\r\n");
    let mut c = node.connect();
    let addr = addr_of(&mut c);
    c.call_str(&["SELECT", "3"]);
    let body = "redis.call('set',KEYS[1],ARGV[1]) return redis.call('get',KEYS[1])";
    assert_eq!(
        c.call_str(&["EVAL", body, "1", "foo", "bar"]),
        b"$3\r\nbar\r\n"
    );
    assert!(text(m.reply()).ends_with("\"CLIENT\" \"INFO\"\r\n"));
    assert!(text(m.reply()).ends_with("\"SELECT\" \"3\"\r\n"));
    let eval = text(m.reply());
    assert!(
        eval.ends_with(&format!(
            "[3 {addr}] \"EVAL\" \"{body}\" \"1\" \"foo\" \"bar\"\r\n"
        )),
        "{eval}"
    );
    assert!(text(m.reply()).ends_with("[3 lua] \"set\" \"foo\" \"bar\"\r\n"));
    assert!(text(m.reply()).ends_with("[3 lua] \"get\" \"foo\"\r\n"));
    // A function: FCALL first, then its command from `lua`.
    let lib =
        "#!lua name=t\nredis.register_function('f', function() return redis.call('incr', 'n') end)";
    c.call_str(&["FUNCTION", "LOAD", lib]);
    assert!(text(m.reply()).contains("\"FUNCTION\" \"LOAD\""));
    assert_eq!(c.call_str(&["FCALL", "f", "0"]), b":1\r\n");
    assert!(text(m.reply()).ends_with(&format!("[3 {addr}] \"FCALL\" \"f\" \"0\"\r\n")));
    assert!(text(m.reply()).ends_with("[3 lua] \"incr\" \"n\"\r\n"));
    // Inside EXEC, the queued commands show as they run, a script's own
    // commands after it, EXEC last.
    c.call_str(&["MULTI"]);
    c.call_str(&["SET", "a", "1"]);
    c.call_str(&["EVAL", "return redis.call('get','a')", "0"]);
    c.call_str(&["EXEC"]);
    for expected in [
        "\"MULTI\"",
        "\"SET\" \"a\" \"1\"",
        "\"EVAL\" \"return redis.call('get','a')\" \"0\"",
        "[3 lua] \"get\" \"a\"",
        "\"EXEC\"",
    ] {
        let line = text(m.reply());
        assert!(
            line.ends_with(&format!("{expected}\r\n")),
            "{line} / {expected}"
        );
    }
}

#[test]
fn migrate_answers_nokey_refuses_existing_keys_and_redacts_credentials() {
    let node = Node::start();
    let mut m = node.connect();
    assert_eq!(m.call_str(&["MONITOR"]), b"+OK\r\n");
    let mut c = node.connect();
    let migrate = |c: &mut Raw, extra: &[&str]| {
        let mut args = vec!["MIGRATE", "127.0.0.1", "1", "key", "9", "5000"];
        args.extend_from_slice(extra);
        text(c.call_str(&args))
    };
    assert_eq!(migrate(&mut c, &[]), "+NOKEY\r\n");
    assert_eq!(migrate(&mut c, &["AUTH2", "user", "pw"]), "+NOKEY\r\n");
    assert_eq!(migrate(&mut c, &["AUTH"]), "-ERR syntax error\r\n");
    assert_eq!(
        migrate(&mut c, &["KEYS", "a"]),
        "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n"
    );
    let bad_db = text(c.call_str(&["MIGRATE", "h", "1", "key", "x", "5000"]));
    assert_eq!(bad_db, "-ERR value is not an integer or out of range\r\n");
    c.call_str(&["SET", "key", "v"]);
    assert!(migrate(&mut c, &[]).starts_with("-ERR MIGRATE of existing keys is not supported"));
    assert_eq!(
        text(c.call_str(&["GET", "key"])),
        "$1\r\nv\r\n",
        "the key stays"
    );
    let keys = text(c.call_str(&[
        "COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "AUTH", "p", "KEYS", "a", "b",
    ]));
    assert_eq!(keys, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert!(text(c.call_str(&["COMMAND", "INFO", "migrate"])).contains("movablekeys"));
    assert!(text(m.reply()).ends_with("\"key\" \"9\" \"5000\"\r\n"));
    let line = text(m.reply());
    assert!(
        line.ends_with("\"AUTH2\" \"(redacted)\" \"(redacted)\"\r\n"),
        "{line}"
    );
}

/// `qbuf` + `qbuf-free` of the client named `name`, from CLIENT LIST.
fn query_buffer_of(c: &mut Raw, name: &str) -> usize {
    let list = text(c.call_str(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))
        .unwrap_or_else(|| panic!("{name} in {list}"));
    let field = |f: &str| -> usize {
        let at = line.find(&format!(" {f}=")).unwrap() + f.len() + 2;
        line[at..].split(' ').next().unwrap().parse().unwrap()
    };
    field("qbuf") + field("qbuf-free")
}

#[test]
fn query_buffers_shrink_when_idle_and_after_a_big_request() {
    let node = Node::start();
    let mut q = node.connect();
    let mut admin = node.connect();
    assert_eq!(q.call_str(&["CLIENT", "SETNAME", "q"]), b"+OK\r\n");
    let fresh = query_buffer_of(&mut admin, "q");
    assert!((16384..32768).contains(&fresh), "{fresh}");
    // Idle for two seconds: no spare room kept.
    let start = Instant::now();
    while query_buffer_of(&mut admin, "q") != 0 {
        assert!(start.elapsed() < Duration::from_secs(8), "idle buffer kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(q.call_str(&["PING"]), b"+PONG\r\n", "still served");
    // A 400 KB request grows the buffer; small ones after it shrink it
    // back, though not to nothing.
    let big = "A".repeat(400_000);
    assert_eq!(q.call_str(&["SET", "x", &big]), b"+OK\r\n");
    let grown = query_buffer_of(&mut admin, "q");
    assert!(grown > 32768, "{grown}");
    let start = Instant::now();
    let shrunk = loop {
        assert_eq!(q.call_str(&["SET", "x", "small"]), b"+OK\r\n");
        let now = query_buffer_of(&mut admin, "q");
        if now < grown {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "buffer not shrunk"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(shrunk > 0, "{shrunk}");
    assert_eq!(text(q.call_str(&["STRLEN", "x"])), ":5\r\n");
}

#[test]
fn cluster_subcommands_answer_that_cluster_support_is_disabled() {
    let node = Node::start();
    let mut c = node.connect();
    for sub in [&["INFO"][..], &["HELP"], &["KEYSLOT", "k"], &["SLOTS"]] {
        let mut args = vec!["CLUSTER"];
        args.extend_from_slice(sub);
        assert_eq!(
            text(c.call_str(&args)),
            "-ERR This instance has cluster support disabled\r\n"
        );
    }
    assert_eq!(
        text(c.call_str(&["CLUSTER", "KEYSLOT"])),
        "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"
    );
    let listed = text(c.call_str(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "cl*help"]));
    assert!(
        listed.contains("cluster|help") && listed.contains("client|help"),
        "{listed}"
    );
    let scripting = text(c.call_str(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting"]));
    assert!(
        scripting.contains("\r\neval\r\n") && scripting.contains("script|kill"),
        "{scripting}"
    );
    assert!(!scripting.contains("\r\nset\r\n"), "{scripting}");
}

#[test]
fn a_monitor_that_never_reads_is_cut_off_while_others_are_served() {
    let node = Node::start();
    *node.state().monitor_output_limit.lock() = OutputLimit {
        hard: 1 << 20,
        soft: 0,
        soft_seconds: 0,
    };
    let mut m = node.connect();
    assert_eq!(m.call_str(&["MONITOR"]), b"+OK\r\n");
    let mut writer = node.connect();
    let value = "x".repeat(64 * 1024);
    let start = Instant::now();
    // ~64 MB of monitor lines against a 1 MB limit (and the socket
    // buffers): the monitor must go, the writer must not notice.
    for i in 0..1000 {
        assert_eq!(writer.call_str(&["SET", "k", &value]), b"+OK\r\n");
        if node
            .state()
            .stats
            .client_output_limit_disconnections
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            assert!(i > 0);
            break;
        }
    }
    assert_eq!(
        node.state()
            .stats
            .client_output_limit_disconnections
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the monitor was cut off"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(node.connect().call_str(&["PING"]), b"+PONG\r\n");
    // The monitor's socket ends after at most what the kernel buffered.
    m.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut total = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match m.stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(total < 32 << 20, "{total} bytes reached a cut-off monitor");
    assert_eq!(writer.call_str(&["GET", "missing"]), b"$-1\r\n");
}

#[test]
fn reset_leaves_multi_and_restores_defaults() {
    let node = Node::start();
    let mut c = node.connect();
    c.call_str(&["SELECT", "2"]);
    c.call_str(&["SET", "in2", "x"]);
    c.call_str(&["CLIENT", "SETNAME", "someone"]);
    c.call_str(&["HELLO", "3"]);
    assert_eq!(c.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.call_str(&["RESET"]), b"+RESET\r\n");
    assert_eq!(c.call_str(&["CLIENT", "GETNAME"]), b"$-1\r\n");
    assert_eq!(
        c.call_str(&["GET", "in2"]),
        b"$-1\r\n",
        "back in db 0, RESP2"
    );
    assert_eq!(c.call_str(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");

    let guarded = Node::with(Config {
        requirepass: "pw".into(),
        ..Config::default()
    });
    let mut c = guarded.connect();
    assert_eq!(c.call_str(&["AUTH", "pw"]), b"+OK\r\n");
    assert_eq!(c.call_str(&["RESET"]), b"+RESET\r\n");
    assert_eq!(
        c.call_str(&["GET", "x"]),
        b"-NOAUTH Authentication required.\r\n"
    );
}

#[test]
fn command_getkeys_list_and_help() {
    let node = Node::start();
    let mut c = node.connect();
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "get", "key"]),
        b"*1\r\n$3\r\nkey\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "zunionstore", "dst", "2", "a", "b"]),
        b"*3\r\n$3\r\ndst\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "memory", "usage", "key"]),
        b"*1\r\n$3\r\nkey\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYSANDFLAGS", "set", "k1", "v1"]),
        b"*1\r\n*2\r\n$2\r\nk1\r\n*2\r\n+OW\r\n+update\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "nosuch", "x"]),
        b"-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "ping", "x"]),
        b"-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "sintercard", "5", "a"]),
        b"-ERR Invalid arguments specified for command\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "GETKEYS", "get", "a", "b"]),
        b"-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|k*"]),
        b"*1\r\n$11\r\nclient|kill\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "LIST", "FILTERBY", "MODULE", "none"]),
        b"*0\r\n"
    );
    assert_eq!(
        c.call_str(&["COMMAND", "LIST", "FILTERBY", "bad", "x"]),
        b"-ERR syntax error\r\n"
    );
    assert!(
        text(c.call_str(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]))
            .contains("client|list")
    );
    assert!(text(c.call_str(&["COMMAND", "HELP"])).contains("GETKEYS <full-command>"));
}

#[test]
fn memory_usage_measures_a_key_and_grows_with_it() {
    let node = Node::start();
    let mut c = node.connect();
    c.call_str(&["SET", "small", "v"]);
    c.call_str(&["SET", "large", &"v".repeat(10_000)]);
    let usage = |c: &mut Raw, key: &str| -> i64 {
        let r = text(c.call_str(&["MEMORY", "USAGE", key]));
        r.trim_start_matches(':')
            .trim()
            .parse()
            .expect("an integer")
    };
    let small = usage(&mut c, "small");
    let large = usage(&mut c, "large");
    assert!(small > 0 && large > small + 10_000, "{small} {large}");
    c.call_str(&["RPUSH", "list", "a", "b", "c"]);
    assert!(usage(&mut c, "list") > 0);
    assert_eq!(c.call_str(&["MEMORY", "USAGE", "missing"]), b"$-1\r\n");
    assert_eq!(
        c.call_str(&["MEMORY", "USAGE", "small", "SAMPLES", "-1"]),
        b"-ERR syntax error\r\n"
    );
    assert!(c
        .call_str(&["MEMORY", "USAGE", "small", "SAMPLES", "0"])
        .starts_with(b":"));
    assert!(text(c.call_str(&["MEMORY", "STATS"])).contains("keys.count"));
    assert!(text(c.call_str(&["MEMORY", "DOCTOR"])).contains("Sam"));
    assert_eq!(c.call_str(&["MEMORY", "PURGE"]), b"+OK\r\n");
    assert!(text(c.call_str(&["MEMORY", "HELP"])).contains("USAGE <key> [SAMPLES <count>]"));
    assert!(text(c.call_str(&["MEMORY", "MALLOC-STATS"])).contains("not supported"));
}

#[test]
fn lolwut_ends_with_the_version_line() {
    let node = Node::start();
    let mut c = node.connect();
    assert_eq!(c.call_str(&["LOLWUT"]), b"$18\r\nRedis ver. 7.0.15\n\r\n");
    let art = text(c.call_str(&["LOLWUT", "VERSION", "5"]));
    assert!(
        art.ends_with("Redis ver. 7.0.15\n\r\n") && art.len() > 40,
        "{art}"
    );
    assert_eq!(
        c.call_str(&["LOLWUT", "VERSION", "x"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
}

#[test]
fn shutdown_stops_the_node() {
    let mut node = Node::start();
    let mut c = node.connect();
    assert_eq!(
        c.call_str(&["SHUTDOWN", "ABORT"]),
        b"-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        c.call_str(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        b"-ERR syntax error\r\n"
    );
    // SHUTDOWN SAVE saves and stops: tests/persistence.rs (this node's
    // dir is the working directory, which a test must not write into).
    let mut other = node.connect();
    assert_eq!(other.call_str(&["PING"]), b"+PONG\r\n");
    c.send(&support::multibulk(&[b"SHUTDOWN", b"NOSAVE"]));
    c.expect_closed(Duration::from_secs(5));
    other.expect_closed(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect_timeout(&node.addr, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.shutdown();
}

#[test]
fn keys_past_their_deadline_are_hidden_but_not_expired_during_a_pause() {
    // Redis 7.0: deleting an expired key is a write, so a pause holds it.
    let node = Node::start();
    let mut c = node.connect();
    let expired_keys = |c: &mut Raw| -> u64 {
        text(c.call_str(&["INFO", "stats"]))
            .lines()
            .find_map(|l| l.strip_prefix("expired_keys:")?.trim().parse().ok())
            .expect("INFO stats has expired_keys")
    };
    let before = expired_keys(&mut c);
    c.call_str(&["MULTI"]);
    c.call_str(&["SET", "foo", "bar", "PX", "10"]);
    c.call_str(&["SET", "bar", "foo", "PX", "10"]);
    c.call_str(&["CLIENT", "PAUSE", "50000", "WRITE"]);
    c.call_str(&["EXEC"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.call_str(&["GET", "foo"]), b"$-1\r\n", "logically expired");
    assert_eq!(c.call_str(&["GET", "bar"]), b"$-1\r\n");
    assert_eq!(expired_keys(&mut c), before, "nothing expired while paused");
    c.call_str(&["CLIENT", "UNPAUSE"]);
    c.call_str(&["GET", "foo"]);
    c.call_str(&["GET", "bar"]);
    assert_eq!(expired_keys(&mut c), before + 2, "expired once unpaused");
}
