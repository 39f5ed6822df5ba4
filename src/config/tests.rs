//! Unit tests of the parameter table, CONFIG SET's checks, start-time
//! loading (file and flags) and CONFIG REWRITE.

use super::params::{self, Kind, Origin, Status};
use super::*;

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("cordis-config-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn failed(name: &str, reason: &str) -> String {
    format!("CONFIG SET failed (possibly related to argument '{name}') - {reason}")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn cli(args: &[&str]) -> Cli {
    Cli::parse_args(std::iter::once("cordis").chain(args.iter().copied())).unwrap()
}

// ----- the table -----

#[test]
fn the_table_has_every_redis_parameter_once_and_its_defaults_parse() {
    let all = params::all();
    let redis = all.iter().filter(|p| p.origin == Origin::Redis).count();
    // Redis 7.0.15's static_configs (TLS build): 178 rows.
    assert_eq!(redis, 178);
    let mut seen = std::collections::HashSet::new();
    for row in all {
        for name in row.names() {
            assert!(seen.insert(name), "{name} appears twice");
            assert_eq!(name, name.to_ascii_lowercase());
        }
        // Every default is a value its own kind accepts and prints alike.
        let start = row.start_default();
        if row.name != "dir" {
            assert_eq!(
                row.parse(&start, &start).as_deref(),
                Ok(start.as_str()),
                "{}",
                row.name
            );
        }
        assert_eq!(
            row.check_status(&start),
            Ok(()),
            "{} starts refused",
            row.name
        );
        if row.cordis_default.is_none() && row.dynamic_default.is_none() {
            assert_eq!(
                row.parse(row.redis_default, row.redis_default).as_deref(),
                Ok(row.redis_default),
                "{}",
                row.name
            );
        }
    }
    assert!(
        params::lookup("set-max-listpack-entries").is_none(),
        "not in 7.0"
    );
}

#[test]
fn typed_fields_start_at_the_table_defaults() {
    let config = Config::default();
    for row in params::all() {
        assert_eq!(config.value_of(row), row.start_default(), "{}", row.name);
    }
    assert_eq!(
        config.get("databases").unwrap(),
        crate::store::DB_COUNT.to_string()
    );
}

#[test]
fn config_get_prints_redis_formats() {
    let c = Config::default();
    let get = |n: &str| c.get(n).unwrap();
    assert_eq!(get("appendonly"), "no");
    assert_eq!(get("save"), "");
    assert_eq!(get("maxmemory"), "0");
    assert_eq!(get("maxmemory-policy"), "noeviction");
    assert_eq!(get("proto-max-bulk-len"), "536870912");
    assert_eq!(
        get("client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(get("oom-score-adj-values"), "0 200 800");
    assert_eq!(get("latency-tracking-info-percentiles"), "50 99 99.9");
    assert_eq!(get("unixsocketperm"), "0");
    assert_eq!(get("list-max-ziplist-size"), "-2");
    assert_eq!(get("SET-MAX-INTSET-ENTRIES"), "512");
    assert!(c.get("nosuch").is_none());
    assert!(Config::NAMES.contains(&"maxmemory"));
    assert!(!Config::NAMES.contains(&"rdb-key-save-delay"), "hidden");
    assert!(Config::param_names().any(|n| n == "rdb-key-save-delay"));
}

// ----- CONFIG SET by kind -----

#[test]
fn bools_round_trip_and_reject_other_words() {
    let mut c = Config::default();
    c.set("activerehashing", "NO").unwrap();
    assert_eq!(c.get("activerehashing").unwrap(), "no");
    assert_eq!(
        c.set("activerehashing", "maybe").unwrap_err(),
        failed("activerehashing", "argument must be 'yes' or 'no'")
    );
}

#[test]
fn integers_check_syntax_and_bounds() {
    let mut c = Config::default();
    c.set("maxclients", "50").unwrap();
    assert_eq!(c.maxclients, 50);
    assert_eq!(
        c.set("maxclients", "abc").unwrap_err(),
        failed("maxclients", "argument couldn't be parsed into an integer")
    );
    assert_eq!(
        c.set("maxclients", "0").unwrap_err(),
        failed(
            "maxclients",
            "argument must be between 1 and 4294967295 inclusive"
        )
    );
    assert_eq!(
        c.set("active-expire-effort", "11").unwrap_err(),
        failed(
            "active-expire-effort",
            "argument must be between 1 and 10 inclusive"
        )
    );
    c.set("list-max-listpack-size", "-1").unwrap();
    assert_eq!(c.get("list-max-listpack-size").unwrap(), "-1");
    assert!(
        c.set("timeout", "007").is_err(),
        "Redis refuses leading zeros"
    );
    // hz is a hint: capped, as Redis does.
    c.set("hz", "1000").unwrap();
    assert_eq!(c.hz, 500);
    assert_eq!(c.get("maxclients").unwrap(), "50", "errors changed nothing");
}

#[test]
fn memory_values_take_redis_units_in_any_case() {
    let mut c = Config::default();
    for (given, bytes) in [
        ("1gb", 1u64 << 30),
        ("100mb", 100 << 20),
        ("2MB", 2 << 20),
        ("1k", 1000),
        ("1kb", 1024),
        ("3G", 3_000_000_000),
        ("5000000", 5_000_000),
    ] {
        c.set(
            "client-query-buffer-limit",
            if bytes < 1 << 20 { "1mb" } else { given },
        )
        .unwrap();
        c.set("hash-max-listpack-value", given).unwrap();
        assert_eq!(
            c.get("hash-max-listpack-value").unwrap(),
            bytes.to_string(),
            "{given}"
        );
    }
    c.set("proto-max-bulk-len", "64mb").unwrap();
    assert_eq!(c.proto_max_bulk_len, 64 << 20);
    assert_eq!(
        c.set("proto-max-bulk-len", "12xb").unwrap_err(),
        failed("proto-max-bulk-len", "argument must be a memory value")
    );
    assert_eq!(
        c.set("proto-max-bulk-len", "1kb").unwrap_err(),
        failed(
            "proto-max-bulk-len",
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        )
    );
    assert_eq!(
        c.set("hash-max-listpack-value", "-1").unwrap_err(),
        failed("hash-max-listpack-value", "argument must be a memory value")
    );
}

#[test]
fn enums_accept_their_words_and_list_them_on_error() {
    let mut c = Config::default();
    c.set("appendfsync", "ALWAYS").unwrap();
    assert_eq!(c.get("appendfsync").unwrap(), "always");
    assert_eq!(
        c.set("appendfsync", "sometimes").unwrap_err(),
        failed(
            "appendfsync",
            "argument(s) must be one of the following: everysec, always, no"
        )
    );
    // Synonyms print as Redis prints them; flag enums print in table order.
    let oom = params::lookup("oom-score-adj").unwrap();
    assert_eq!(oom.parse("relative", "no").unwrap(), "yes");
    c.set("shutdown-on-sigterm", "force now").unwrap();
    assert_eq!(c.get("shutdown-on-sigterm").unwrap(), "now force");
    assert_eq!(
        c.set("shutdown-on-sigint", "save nosave").unwrap_err(),
        failed(
            "shutdown-on-sigint",
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        )
    );
}

#[test]
fn strings_and_specials_round_trip() {
    let mut c = Config::default();
    c.set("requirepass", "s3cret").unwrap();
    assert_eq!(c.requirepass, "s3cret");
    c.set("replica-announce-ip", "10.1.2.3").unwrap();
    assert_eq!(c.get("slave-announce-ip").unwrap(), "10.1.2.3");
    c.set("client-output-buffer-limit", "pubsub 64mb 16mb 90")
        .unwrap();
    assert_eq!(
        c.get("client-output-buffer-limit").unwrap(),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 90"
    );
    c.set("latency-tracking-info-percentiles", "50.0 99.90 100")
        .unwrap();
    assert_eq!(
        c.get("latency-tracking-info-percentiles").unwrap(),
        "50 99.9 100"
    );
    assert_eq!(
        c.set("save", "100").unwrap_err(),
        failed("save", "Invalid save parameters")
    );
    assert_eq!(
        c.set("notify-keyspace-events", "Kq").unwrap_err(),
        failed(
            "notify-keyspace-events",
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        )
    );
    assert_eq!(
        c.set("notify-keyspace-events", "Km").unwrap_err(),
        failed(
            "notify-keyspace-events",
            "key-miss events (class 'm') are not raised by cordis yet"
        )
    );
    let events = params::lookup("notify-keyspace-events").unwrap();
    assert_eq!(events.parse("KEA", "").unwrap(), "AKE");
    assert_eq!(events.parse("xgK", "").unwrap(), "gxK");
}

#[test]
fn aliases_share_one_value() {
    let mut c = Config::default();
    c.set("hash-max-ziplist-entries", "64").unwrap();
    assert_eq!(c.get("hash-max-ziplist-entries").unwrap(), "64");
    assert_eq!(c.get("hash-max-listpack-entries").unwrap(), "64");
    c.set("lua-time-limit", "100").unwrap();
    assert_eq!(c.get("busy-reply-threshold").unwrap(), "100");
    // Errors name the spelling that was used.
    assert_eq!(
        c.set("zset-max-ziplist-value", "x").unwrap_err(),
        failed("zset-max-ziplist-value", "argument must be a memory value")
    );
}

// ----- CONFIG SET's checks -----

#[test]
fn set_many_is_all_or_nothing() {
    let mut c = Config::default();
    let err = c
        .set_many(&pairs(&[("maxclients", "77"), ("timeout", "x")]))
        .unwrap_err();
    assert_eq!(
        err,
        failed("timeout", "argument couldn't be parsed into an integer")
    );
    assert_eq!(c.maxclients, 10_000, "the good first pair was not applied");
    c.set_many(&pairs(&[("maxclients", "77"), ("timeout", "5")]))
        .unwrap();
    assert_eq!((c.maxclients, c.timeout), (77, 5));
}

#[test]
fn duplicate_immutable_and_unknown_names_are_refused_first_problem_first() {
    let mut c = Config::default();
    assert_eq!(
        c.set_many(&pairs(&[("maxmemory", "0"), ("MAXMEMORY", "0")]))
            .unwrap_err(),
        failed("MAXMEMORY", "duplicate parameter")
    );
    assert_eq!(
        c.set("databases", "16").unwrap_err(),
        failed("databases", "can't set immutable config")
    );
    assert_eq!(
        c.set("nope", "1").unwrap_err(),
        "Unknown option or number of arguments for CONFIG SET - 'nope'"
    );
    // The first problem among the names wins over later ones and over
    // value errors.
    assert_eq!(
        c.set_many(&pairs(&[
            ("timeout", "x"),
            ("daemonize", "no"),
            ("nope", "1")
        ]))
        .unwrap_err(),
        failed("daemonize", "can't set immutable config")
    );
    assert_eq!(
        c.set_many(&pairs(&[("nope", "1"), ("daemonize", "no")]))
            .unwrap_err(),
        "Unknown option or number of arguments for CONFIG SET - 'nope'"
    );
}

#[test]
fn protected_parameters_need_enable_protected_configs() {
    let mut c = Config::default();
    assert_eq!(
        c.set("dbfilename", "x.rdb").unwrap_err(),
        failed("dbfilename", "can't set protected config")
    );
    c.apply_start("enable-protected-configs", "local").unwrap();
    assert!(c.set("dbfilename", "x.rdb").is_err());
    c.set_many_from(&pairs(&[("dbfilename", "x.rdb")]), true)
        .unwrap();
    assert_eq!(c.get("dbfilename").unwrap(), "x.rdb");
}

#[test]
fn refused_values_name_the_missing_feature() {
    let mut c = Config::default();
    for (name, value, feature) in [
        (
            "no-appendfsync-on-rewrite",
            "yes",
            "cordis keeps its appendfsync policy during AOF rewrites (only no is accepted)",
        ),
        (
            "client-output-buffer-limit",
            "normal 1mb 1mb 10",
            "cordis does not cap normal clients' replies yet (normal clients must stay 0 0 0)",
        ),
    ] {
        assert_eq!(c.set(name, value).unwrap_err(), failed(name, feature));
    }
    // The values that describe cordis are accepted (Redis's test suite
    // sets every parameter to its current value).
    c.set_many(&pairs(&[
        ("save", ""),
        ("appendonly", "no"),
        ("maxmemory", "0mb"),
        ("notify-keyspace-events", ""),
        ("port", "6379"),
    ]))
    .unwrap();
    // Eviction is built: a cap in Redis's units and every policy.
    c.set_many(&pairs(&[
        ("maxmemory", "100mb"),
        ("maxmemory-policy", "allkeys-lru"),
        ("maxmemory-samples", "10"),
        ("maxmemory-eviction-tenacity", "20"),
        ("lfu-log-factor", "5"),
        ("lfu-decay-time", "0"),
    ]))
    .unwrap();
    assert_eq!(c.get("maxmemory").unwrap(), "104857600");
    c.set("maxmemory", "1gb").unwrap();
    assert_eq!(c.get("maxmemory").unwrap(), "1073741824");
    for policy in [
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        c.set("maxmemory-policy", policy).unwrap();
        assert_eq!(c.get("maxmemory-policy").unwrap(), policy);
    }
    c.set("maxmemory", "0").unwrap();
    assert_eq!(
        c.set("port", "7000").unwrap_err(),
        failed(
            "port",
            "cordis cannot move its client listener while running yet"
        )
    );
}

#[test]
fn every_current_value_can_be_set_back() {
    // What Redis's "CONFIG sanity" test does for each mutable parameter.
    let mut c = Config::default();
    c.apply_start("enable-protected-configs", "yes").unwrap();
    for row in params::all() {
        if row.mutability == params::Mutability::Immutable {
            continue;
        }
        let value = c.value_of(row);
        c.set(row.name, &value)
            .unwrap_or_else(|e| panic!("{}: {e}", row.name));
        assert_eq!(c.value_of(row), value, "{}", row.name);
    }
}

// ----- start: file and flags -----

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let dir = TempDir::new("precedence");
    let path = dir.file(
        "c.toml",
        "port = 7000\nmaxclients = 5\nhz = 20\nhash-max-listpack-entries = 32\nslowlog-max-len = 7\n",
    );
    let mut cli = cli(&["--port", "7001", "--hash-max-listpack-entries", "64"]);
    cli.config = Some(path);
    let config = Config::load(&cli).unwrap();
    assert_eq!(config.port, 7001);
    assert_eq!(config.maxclients, 5);
    assert_eq!(config.hz, 20);
    assert_eq!(config.bind, "127.0.0.1");
    assert_eq!(config.get("hash-max-listpack-entries").unwrap(), "64");
    assert_eq!(config.get("slowlog-max-len").unwrap(), "7");
}

#[test]
fn any_parameter_is_a_flag_with_redis_style_values() {
    let cli = cli(&[
        "--port",
        "0",
        "--hash-max-ziplist-entries",
        "64",
        "--save",
        "",
        "--maxmemory=0mb",
        "--list-max-listpack-size",
        "-1",
        "--client-output-buffer-limit",
        "pubsub",
        "0",
        "0",
        "0",
        "--loglevel",
        "warning",
    ]);
    assert_eq!(cli.port, Some(0));
    assert_eq!(cli.loglevel.as_deref(), Some("warning"));
    let config = Config::load(&cli).unwrap();
    assert_eq!(config.get("hash-max-listpack-entries").unwrap(), "64");
    assert_eq!(config.get("save").unwrap(), "");
    assert_eq!(config.get("list-max-listpack-size").unwrap(), "-1");
    assert_eq!(
        config.get("client-output-buffer-limit").unwrap(),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 0 0 0"
    );
    assert_eq!(config.log_filter(), "warn");
}

#[test]
fn bad_flags_fail_clearly() {
    let unknown = Cli::parse_args(["cordis", "--no-such-flag", "1"]).unwrap_err();
    assert!(unknown.to_string().contains("--no-such-flag"), "{unknown}");
    let refused = Config::load(&cli(&["--no-appendfsync-on-rewrite", "yes"])).unwrap_err();
    assert_eq!(
        refused,
        "--no-appendfsync-on-rewrite: parameter 'no-appendfsync-on-rewrite': cordis keeps its appendfsync policy during AOF rewrites (only no is accepted)"
    );
    // The append-only file is built: on at start, and switched at run time
    // (CONFIG SET opens or closes it; tests/persistence.rs).
    let aof = Config::load(&cli(&["--appendonly", "yes"])).unwrap();
    assert_eq!(aof.get("appendonly").unwrap(), "yes");
    let mut running = Config::default();
    running.set("appendonly", "yes").unwrap();
    assert_eq!(running.get("appendonly").unwrap(), "yes");
    // Save points are built: accepted as Redis prints them.
    let saving = Config::load(&cli(&["--save", "900", "1", "300", "100"])).unwrap();
    assert_eq!(saving.get("save").unwrap(), "900 1 300 100");
    let out_of_range = Config::load(&cli(&["--maxclients", "0"])).unwrap_err();
    assert!(
        out_of_range.contains("between 1 and 4294967295"),
        "{out_of_range}"
    );
}

#[test]
fn file_keys_cover_the_table_and_reject_unknown_ones() {
    let file = FileConfig::parse(
        "maxmemory = \"0\"\nappendonly = false\nsave = \"\"\nzset-max-ziplist-entries = 64\npeers = [\"a:1\", \"b:2\"]\n",
    )
    .unwrap();
    let mut config = Config::default();
    for (k, v) in &file.pairs {
        config.apply_start(k, v).unwrap();
    }
    assert_eq!(config.get("zset-max-listpack-entries").unwrap(), "64");
    assert_eq!(config.peers, ["a:1", "b:2"]);
    let unknown = FileConfig::parse("no-such-key = 1").unwrap_err();
    assert!(unknown.contains("unknown key 'no-such-key'"), "{unknown}");
    // Immutable parameters are fine at start; refused values are not.
    config.apply_start("databases", "16").unwrap();
    let refused = config
        .apply_start("no-appendfsync-on-rewrite", "yes")
        .unwrap_err();
    assert!(refused.contains("AOF rewrites"), "{refused}");
}

#[test]
fn shipped_example_config_parses() {
    let text = include_str!("../../configs/cordis.toml");
    let parsed = FileConfig::parse(text).expect("configs/cordis.toml parses");
    assert_eq!(parsed.get("port"), Some("6379"));
    let mut config = Config::default();
    for (k, v) in &parsed.pairs {
        config
            .apply_start(k, v)
            .expect("every shipped value is accepted");
    }
    // The example shows the defaults.
    for row in params::all() {
        if parsed.get(row.name).is_some() {
            assert_eq!(config.value_of(row), row.start_default(), "{}", row.name);
        }
    }
}

#[test]
fn region_examples_parse_and_list_the_other_regions() {
    for text in [
        include_str!("../../configs/region-1.toml"),
        include_str!("../../configs/region-2.toml"),
        include_str!("../../configs/region-3.toml"),
    ] {
        let parsed = FileConfig::parse(text).expect("region config parses");
        let mut config = Config::default();
        for (k, v) in &parsed.pairs {
            config.apply_start(k, v).unwrap();
        }
        assert_eq!(config.peers.len(), 2);
        assert!(config.peer_port.is_some());
    }
}

#[test]
fn peer_flags_add_to_the_file_and_the_peer_port_follows_the_client_port() {
    let cli = Cli::parse_args([
        "cordis",
        "--peer",
        "10.0.0.1:16379",
        "--peer",
        "10.0.0.2:16379",
        "--peer-secret",
        "s",
    ])
    .unwrap();
    let config = Config::load(&cli).unwrap();
    assert_eq!(config.peers.len(), 2);
    assert_eq!(config.peer_secret, "s");
    assert!(config.replication_enabled());
    assert_eq!(config.effective_peer_port(), Ok(16379));
    let ephemeral = Config {
        port: 0,
        ..Config::default()
    };
    assert_eq!(ephemeral.effective_peer_port(), Ok(0));
    assert!(!Config::default().replication_enabled());
}

// ----- CONFIG REWRITE -----

#[test]
fn rewrite_keeps_comments_and_order_and_updates_values() {
    let dir = TempDir::new("rewrite");
    let original = "# top comment\n\n# the port\nport = 6379\n\n# idle seconds\ntimeout = 0 # inline\nhz = 10\n";
    let path = dir.file("node.toml", original);
    let mut config = Config::default();
    config
        .set_many(&pairs(&[
            ("timeout", "30"),
            ("hash-max-ziplist-entries", "64"),
            ("appendfsync", "always"),
            ("activerehashing", "no"),
        ]))
        .unwrap();
    config.rewrite(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# top comment\n\n# the port\nport = 6379\n"),
        "{text}"
    );
    assert!(
        text.contains("# idle seconds\ntimeout = 30 # inline\nhz = 10\n"),
        "{text}"
    );
    // New keys follow under one marker, in table order.
    assert!(
        text.ends_with(
            "hz = 10\n\n# Generated by CONFIG REWRITE\nactiverehashing = false\n\
             appendfsync = \"always\"\nhash-max-listpack-entries = 64\n"
        ),
        "{text}"
    );
    assert!(!text.contains("peer-secret"));
    // The rewritten file loads back to the same values.
    let mut reloaded = Config::default();
    for (k, v) in FileConfig::parse(&text).unwrap().pairs {
        reloaded.apply_start(&k, &v).unwrap();
    }
    for row in params::all() {
        assert_eq!(reloaded.value_of(row), config.value_of(row), "{}", row.name);
    }
    // A second rewrite with nothing changed leaves the file alone.
    config.rewrite(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(config.rewrite_file(None).unwrap_err(), NO_CONFIG_FILE);
}

#[test]
fn status_rows_carry_their_reasons() {
    for row in params::all() {
        match row.status {
            Status::OnlyValues { values, missing } => {
                assert!(!values.is_empty() && !missing.is_empty(), "{}", row.name)
            }
            Status::StartOnly { missing } | Status::Accepts { missing, .. } => {
                assert!(!missing.is_empty(), "{}", row.name)
            }
            Status::Supported | Status::Descriptive => {}
        }
        if let Kind::Enum { words, .. } = row.kind {
            assert!(!words.is_empty());
        }
    }
}

#[test]
fn docs_list_every_parameter() {
    let doc = include_str!("../../docs/compat.md");
    assert!(doc.contains("## Configuration parameters"));
    for row in params::all() {
        assert!(
            doc.contains(&format!("| `{}` |", row.name)),
            "{} is not in docs/compat.md",
            row.name
        );
    }
}
