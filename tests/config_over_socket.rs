//! CONFIG GET/SET/REWRITE over a real socket against the parameter table:
//! every Redis 7.0 parameter is known, aliases answer under both names,
//! values that ask for behaviour cordis lacks are refused naming it, and
//! CONFIG REWRITE round-trips through the TOML file the node started with.
//! Expected texts were taken from Redis 7.0.15's config.c.
//!
//! covers: config

mod support;

use support::Node;

#[test]
fn every_redis_encoding_knob_is_accepted_and_read_back() {
    let node = Node::start();
    let mut c = node.client();
    for (name, value) in [
        ("set-max-intset-entries", "512"),
        ("hash-max-listpack-entries", "64"),
        ("zset-max-listpack-value", "32"),
        ("list-max-listpack-size", "-2"),
        ("stream-node-max-entries", "100"),
        ("lazyfree-lazy-user-del", "yes"),
        ("slowlog-log-slower-than", "10000"),
    ] {
        c.ok(&["CONFIG", "SET", name, value]);
        assert_eq!(c.strings(&["CONFIG", "GET", name]), [name, value]);
    }
}

#[test]
fn an_alias_answers_under_both_names() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "hash-max-ziplist-entries", "77"]);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "hash-max-listpack-entries"]),
        ["hash-max-listpack-entries", "77"]
    );
    assert_eq!(
        c.strings(&["CONFIG", "GET", "hash-max-ziplist-entries"]),
        ["hash-max-ziplist-entries", "77"]
    );
    // A pattern finds a name and its alias, each once.
    let found = c.strings(&["CONFIG", "GET", "maxmemory", "maxmemory*", "bind", "*of"]);
    let names: Vec<&String> = found.iter().step_by(2).collect();
    for wanted in [
        "slaveof",
        "replicaof",
        "maxmemory",
        "maxmemory-samples",
        "bind",
    ] {
        assert!(names.iter().any(|n| *n == wanted), "{wanted} in {names:?}");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "no name twice: {names:?}");
}

#[test]
fn a_plain_name_is_echoed_as_typed_and_finds_hidden_parameters() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.strings(&["CONFIG", "GET", "MAXCLIENTS"]),
        ["MAXCLIENTS", "10000"]
    );
    let all = c.strings(&["CONFIG", "GET", "*"]);
    assert!(
        !all.iter().any(|n| n == "key-load-delay"),
        "hidden from globs"
    );
    assert_eq!(
        c.strings(&["CONFIG", "GET", "key-load-delay"]),
        ["key-load-delay", "0"]
    );
    assert!(
        all.len() / 2 > 150,
        "every parameter is listed: {}",
        all.len() / 2
    );
}

#[test]
fn values_that_ask_for_missing_features_are_refused_naming_them() {
    let node = Node::start();
    let mut c = node.client();
    let refused = c.err(&["CONFIG", "SET", "maxmemory-clients", "100mb"]);
    assert!(
        refused.starts_with(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - "
        ) && refused.contains("evict clients"),
        "{refused}"
    );
    // What describes cordis today is accepted.
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
    c.ok(&["CONFIG", "SET", "save", ""]);
    c.ok(&["CONFIG", "SET", "appendonly", "no"]);
}

#[test]
fn config_set_errors_and_all_or_nothing_match_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.err(&["CONFIG", "SET", "maxclients", "10", "maxclients", "20"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - duplicate parameter"
    );
    assert_eq!(
        c.err(&["CONFIG", "SET", "daemonize", "no"]),
        "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"
    );
    assert_eq!(
        c.err(&["CONFIG", "SET", "activerehashing", "maybe"]),
        "ERR CONFIG SET failed (possibly related to argument 'activerehashing') - argument must be 'yes' or 'no'"
    );
    assert!(c
        .err(&["CONFIG", "SET", "hz", "20", "maxclients", "abc"])
        .starts_with("ERR CONFIG SET failed (possibly related to argument 'maxclients')"));
    assert_eq!(c.strings(&["CONFIG", "GET", "hz"]), ["hz", "10"]);
    assert_eq!(
        c.err(&["CONFIG", "REWRITE"]),
        "ERR The server is running without a config file"
    );
    // cordis's own start-time settings may be restated (Redis's CONFIG
    // sanity test sets every parameter to its current value), not changed.
    let current = c.strings(&["CONFIG", "GET", "peer-timeout-ms"]);
    c.ok(&["CONFIG", "SET", "peer-timeout-ms", &current[1]]);
    let refused = c.err(&["CONFIG", "SET", "peer-timeout-ms", "1234"]);
    assert!(refused.contains("restart the node"), "{refused}");
}

#[test]
fn config_rewrite_updates_the_start_file_and_keeps_its_comments() {
    let dir = std::env::temp_dir().join(format!("cordis-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node.toml");
    std::fs::write(
        &path,
        "# clients idle this long are closed\ntimeout = 0\n\n# background task frequency\nhz = 10\n",
    )
    .unwrap();
    {
        let node = Node::from_file(&path);
        let mut c = node.client();
        c.ok(&[
            "CONFIG",
            "SET",
            "timeout",
            "300",
            "hash-max-listpack-entries",
            "99",
        ]);
        c.ok(&["CONFIG", "REWRITE"]);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("# clients idle this long are closed"),
        "{text}"
    );
    assert!(text.contains("# background task frequency"), "{text}");
    assert!(text.contains("timeout = 300"), "{text}");
    assert!(text.contains("hash-max-listpack-entries = 99"), "{text}");
    // A node started from the rewritten file has the values.
    let node = Node::from_file(&path);
    let mut c = node.client();
    assert_eq!(c.strings(&["CONFIG", "GET", "timeout"]), ["timeout", "300"]);
    assert_eq!(
        c.strings(&["CONFIG", "GET", "hash-max-listpack-entries"]),
        ["hash-max-listpack-entries", "99"]
    );
    drop(node);
    std::fs::remove_dir_all(dir).ok();
}
