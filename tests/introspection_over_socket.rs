//! covers: slowlog latency
//!
//! What the dispatcher records, read back over a real socket: INFO's
//! sections (commandstats, errorstats, latencystats, cpu, persistence…),
//! SLOWLOG, LATENCY and the DEBUG subcommands Redis's suite uses. Texts are
//! Redis 7.0.15's.

use std::time::Duration;

use redis::Value;

mod support;

use support::client::Conn;
use support::Node;

fn info(c: &mut Conn, section: &str) -> String {
    match c.v(&["INFO", section]) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO gave {other:?}"),
    }
}

/// The value of `field:` in an INFO text.
fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim_end().to_string())
}

fn sections(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(str::to_string)
        .collect()
}

#[test]
fn info_sections_default_all_and_several() {
    let node = Node::start();
    let mut c = node.client();
    let default = [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Modules",
        "Errorstats",
        "Cluster",
        "Keyspace",
    ];
    assert_eq!(sections(&info(&mut c, "default")), default);
    let bare = match c.v(&["INFO"]) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(sections(&bare), default);
    let all = sections(&info(&mut c, "all"));
    assert!(all.contains(&"Commandstats".to_string()));
    assert!(all.contains(&"Latencystats".to_string()));
    assert_eq!(sections(&info(&mut c, "everything")), all);
    let cpu = info(&mut c, "cpu");
    assert_eq!(sections(&cpu), ["CPU"]);
    assert!(field(&cpu, "used_cpu_user").is_some());
    let Value::BulkString(two) = c.v(&["INFO", "keyspace", "CPU", "cluster"]) else {
        panic!()
    };
    assert_eq!(
        sections(&String::from_utf8(two).unwrap()),
        ["CPU", "Cluster", "Keyspace"]
    );
    assert_eq!(info(&mut c, "nosuchsection"), "");
    let server = info(&mut c, "server");
    assert_eq!(field(&server, "redis_version").as_deref(), Some("7.0.15"));
    assert!(field(&server, "configured_hz").is_some());
    let persistence = info(&mut c, "persistence");
    assert_eq!(field(&persistence, "loading").as_deref(), Some("0"));
    assert_eq!(field(&persistence, "aof_enabled").as_deref(), Some("0"));
    assert_eq!(
        field(&persistence, "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
    let memory = info(&mut c, "memory");
    assert!(field(&memory, "used_memory_peak").is_some());
    assert_eq!(
        field(&memory, "lazyfree_pending_objects").as_deref(),
        Some("0")
    );
    assert_eq!(
        field(&info(&mut c, "cluster"), "cluster_enabled").as_deref(),
        Some("0")
    );
}

#[test]
fn commandstats_count_calls_rejections_failures_and_errors() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "RESETSTAT"]);
    c.ok(&["SET", "k", "v"]);
    c.ok(&["SET", "k2", "v"]);
    assert_eq!(
        c.err(&["SET", "k"]),
        "ERR wrong number of arguments for 'set' command"
    );
    assert!(c.err(&["LPUSH", "k", "x"]).starts_with("WRONGTYPE"));
    assert!(c.err(&["NOSUCHCMD"]).starts_with("ERR unknown command"));
    c.v(&["CONFIG", "GET", "maxclients"]);
    let stats = info(&mut c, "commandstats");
    let set = field(&stats, "cmdstat_set").unwrap();
    assert!(set.starts_with("calls=2,usec="), "{set}");
    assert!(set.ends_with(",rejected_calls=1,failed_calls=0"), "{set}");
    let lpush = field(&stats, "cmdstat_lpush").unwrap();
    assert!(
        lpush.ends_with("rejected_calls=0,failed_calls=1"),
        "{lpush}"
    );
    assert!(field(&stats, "cmdstat_config|get")
        .unwrap()
        .starts_with("calls=1,"));
    let errors = info(&mut c, "errorstats");
    assert_eq!(field(&errors, "errorstat_ERR").as_deref(), Some("count=2"));
    assert_eq!(
        field(&errors, "errorstat_WRONGTYPE").as_deref(),
        Some("count=1")
    );
    assert_eq!(
        field(&info(&mut c, "stats"), "total_error_replies").as_deref(),
        Some("3")
    );
    let latency = info(&mut c, "latencystats");
    let set = field(&latency, "latency_percentiles_usec_set").unwrap();
    assert!(set.starts_with("p50=") && set.contains(",p99=") && set.contains(",p99.9="));
    c.ok(&["CONFIG", "RESETSTAT"]);
    let stats = info(&mut c, "commandstats");
    assert!(field(&stats, "cmdstat_set").is_none());
    assert!(field(&info(&mut c, "errorstats"), "errorstat_ERR").is_none());
}

#[test]
fn errors_inside_exec_count_for_the_inner_command() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "RESETSTAT"]);
    c.ok(&["MULTI"]);
    assert_eq!(c.status(&["SET", "a", "b"]), "QUEUED");
    assert_eq!(c.status(&["LPUSH", "a", "x"]), "QUEUED");
    // The client crate turns the error inside EXEC's array into an Err.
    let _ = c.try_query(&["EXEC"]);
    let stats = info(&mut c, "commandstats");
    let set = field(&stats, "cmdstat_set").unwrap();
    assert!(set.starts_with("calls=1,"), "{set}");
    assert!(set.ends_with("rejected_calls=0,failed_calls=0"), "{set}");
    assert!(field(&stats, "cmdstat_lpush")
        .unwrap()
        .ends_with("failed_calls=1"));
    assert!(field(&stats, "cmdstat_exec")
        .unwrap()
        .ends_with("failed_calls=0"));
    // A refused command while queueing: rejected, and EXEC fails.
    c.ok(&["MULTI"]);
    assert_eq!(
        c.err(&["SET"]),
        "ERR wrong number of arguments for 'set' command"
    );
    assert!(c.err(&["EXEC"]).starts_with("EXECABORT"));
    let stats = info(&mut c, "commandstats");
    assert!(field(&stats, "cmdstat_set")
        .unwrap()
        .contains("rejected_calls=1"));
    let errors = info(&mut c, "errorstats");
    assert_eq!(
        field(&errors, "errorstat_EXECABORT").as_deref(),
        Some("count=1")
    );
}

fn slowlog_entries(c: &mut Conn, args: &[&str]) -> Vec<Vec<Value>> {
    match c.v(args) {
        Value::Array(items) => items
            .into_iter()
            .map(|e| match e {
                Value::Array(fields) => fields,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn slowlog_logs_slow_commands_with_redis_entry_shape() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SLOWLOG", "RESET"]);
    assert_eq!(c.int(&["SLOWLOG", "LEN"]), 0);
    c.ok(&["CLIENT", "SETNAME", "slowpoke"]);
    assert_eq!(c.status(&["PING"]), "PONG");
    // Default threshold 10 ms: a 20 ms DEBUG SLEEP is logged, PING is not.
    c.ok(&["DEBUG", "SLEEP", "0.02"]);
    assert_eq!(c.int(&["SLOWLOG", "LEN"]), 1);
    let entries = slowlog_entries(&mut c, &["SLOWLOG", "GET"]);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.len(), 6);
    assert!(matches!(e[0], Value::Int(_)));
    assert!(matches!(e[1], Value::Int(t) if t > 1_600_000_000));
    assert!(matches!(e[2], Value::Int(us) if us >= 20_000));
    assert_eq!(words(&e[3]), ["DEBUG", "SLEEP", "0.02"]);
    assert!(matches!(&e[4], Value::BulkString(addr) if addr.contains(&b':')));
    assert_eq!(e[5], Value::BulkString(b"slowpoke".to_vec()));
    assert_eq!(slowlog_entries(&mut c, &["SLOWLOG", "GET", "0"]).len(), 0);
    assert_eq!(slowlog_entries(&mut c, &["SLOWLOG", "GET", "-1"]).len(), 1);
    for bad in ["-2", "x"] {
        assert_eq!(
            c.err(&["SLOWLOG", "GET", bad]),
            "ERR count should be greater than or equal to -1"
        );
    }
    assert_eq!(
        c.err(&["SLOWLOG", "GET", "1", "2"]),
        "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
    );
    assert_eq!(
        c.err(&["SLOWLOG", "LEN", "x"]),
        "ERR wrong number of arguments for 'slowlog|len' command"
    );
    assert!(c.strings(&["SLOWLOG", "HELP"])[0].starts_with("SLOWLOG <subcommand>"));
    c.ok(&["SLOWLOG", "RESET"]);
    assert_eq!(c.int(&["SLOWLOG", "LEN"]), 0);
}

#[test]
fn slowlog_trims_long_commands_and_skips_exec() {
    let node = Node::start();
    let mut c = node.client();
    // EXEC itself is not logged; the slow command inside it is.
    c.ok(&["SLOWLOG", "RESET"]);
    c.ok(&["MULTI"]);
    c.status(&["DEBUG", "SLEEP", "0.02"]);
    c.v(&["EXEC"]);
    let entries = slowlog_entries(&mut c, &["SLOWLOG", "GET"]);
    let logged: Vec<Vec<String>> = entries.iter().map(|e| words(&e[3])).collect();
    assert_eq!(logged, [["DEBUG", "SLEEP", "0.02"]]);
}

#[test]
fn latency_subcommands_answer_like_redis() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "RESETSTAT"]);
    assert_eq!(c.v(&["LATENCY", "LATEST"]), Value::Array(vec![]));
    assert_eq!(
        c.v(&["LATENCY", "HISTORY", "command"]),
        Value::Array(vec![])
    );
    assert_eq!(c.int(&["LATENCY", "RESET"]), 0);
    assert_eq!(c.int(&["LATENCY", "RESET", "blabla"]), 0);
    assert_eq!(
        c.err(&["LATENCY", "GRAPH", "command"]),
        "ERR No samples available for event 'command'"
    );
    assert_eq!(
        c.err(&["LATENCY", "HELP", "xxx"]),
        "ERR wrong number of arguments for 'latency|help' command"
    );
    let doctor = match c.v(&["LATENCY", "DOCTOR"]) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("{other:?}"),
    };
    assert!(
        doctor.contains("Latency monitoring is disabled"),
        "{doctor}"
    );

    c.ok(&["CONFIG", "RESETSTAT"]);
    c.ok(&["SET", "a", "b"]);
    c.ok(&["SET", "c", "d"]);
    c.bulk(&["GET", "a"]);
    c.v(&["CONFIG", "GET", "hz"]);
    let Value::Array(histo) = c.v(&["LATENCY", "HISTOGRAM", "set", "blabla", "config"]) else {
        panic!()
    };
    // set, then config's subcommands with data: config|get and
    // config|resetstat (recorded after it reset).
    assert_eq!(histo.len(), 6, "{histo:?}");
    assert_eq!(histo[0], Value::BulkString(b"set".to_vec()));
    let Value::Array(set) = &histo[1] else {
        panic!()
    };
    assert_eq!(set[0], Value::BulkString(b"calls".to_vec()));
    assert_eq!(set[1], Value::Int(2));
    assert_eq!(set[2], Value::BulkString(b"histogram_usec".to_vec()));
    let Value::Array(cdf) = &set[3] else { panic!() };
    assert_eq!(cdf.last(), Some(&Value::Int(2)), "{cdf:?}");
    assert_eq!(histo[2], Value::BulkString(b"config|get".to_vec()));
    let Value::Array(all) = c.v(&["LATENCY", "HISTOGRAM"]) else {
        panic!()
    };
    // set, get, config|get, config|resetstat, latency|histogram.
    assert_eq!(all.len(), 10, "{all:?}");
}

#[test]
fn a_slow_expire_cycle_is_a_latency_event() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    let fill = "for i = 1, tonumber(ARGV[1]) do redis.call('sadd', KEYS[1], i) end";
    c.v(&["EVAL", fill, "1", "big", "200000"]);
    assert_eq!(c.int(&["PEXPIRE", "big", "10"]), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.int(&["DBSIZE"]) > 0 {
        assert!(std::time::Instant::now() < deadline, "key never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    let Value::Array(latest) = c.v(&["LATENCY", "LATEST"]) else {
        panic!()
    };
    let events: Vec<Value> = latest
        .iter()
        .filter_map(|e| match e {
            Value::Array(fields) => fields.first().cloned(),
            _ => None,
        })
        .collect();
    assert!(
        events.contains(&Value::BulkString(b"expire-cycle".to_vec())),
        "{latest:?}"
    );
}

#[test]
fn debug_set_active_expire_stops_and_restarts_expiry() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for i in 0..20 {
        c.ok(&["SET", &format!("k{i}"), "v", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(400));
    // Nobody touched the keys and the cycle is off: still counted.
    assert_eq!(c.int(&["DBSIZE"]), 20);
    c.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c.int(&["DBSIZE"]) > 0 {
        assert!(std::time::Instant::now() < deadline, "keys never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn debug_subcommands_the_suite_uses() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["DEBUG", "POPULATE", "5"]);
    assert_eq!(c.int(&["DBSIZE"]), 5);
    assert_eq!(c.bulk(&["GET", "key:3"]).as_deref(), Some("value:3"));
    c.ok(&["DEBUG", "POPULATE", "3", "p", "10"]);
    assert_eq!(c.int(&["STRLEN", "p:1"]), 10);
    c.ok(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]);
    assert_eq!(
        c.err(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"]),
        "ERR argument must be a memory value bigger than 1 and smaller than 4gb"
    );
    assert_eq!(
        c.status(&["DEBUG", "STRINGMATCH-LEN"]),
        "Apparently Redis did not crash: test passed"
    );
    c.ok(&["DEBUG", "LOG", "hello"]);
    // (DEBUG RELOAD saves and reloads: tests/persistence.rs.)
    let loadaof = c.err(&["DEBUG", "LOADAOF"]);
    assert!(
        loadaof.starts_with("ERR DEBUG LOADAOF is not supported: "),
        "{loadaof}"
    );
    assert!(loadaof.contains("AOF"), "{loadaof}");
    assert!(c
        .err(&["DEBUG", "JMAP"])
        .starts_with("ERR DEBUG JMAP is not supported"));
    assert!(c.strings(&["DEBUG", "HELP"])[0].starts_with("DEBUG <subcommand>"));
}
