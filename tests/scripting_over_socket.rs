//! Lua scripting over a real socket, with the `redis` client crate,
//! against an in-process node on `127.0.0.1:0`: EVAL/EVALSHA and their
//! read-only forms, SCRIPT LOAD/EXISTS/FLUSH/KILL, shebang flags, the
//! sandbox's errors, Redis's Lua↔RESP conversion rules in both directions,
//! commands a script may not call, scripts inside MULTI, and FUNCTION
//! LOAD/LIST/DELETE/DUMP/RESTORE/FLUSH/STATS with FCALL/FCALL_RO. A second
//! part checks, with two in-process stores, that one EVAL's writes leave as
//! one delta batch that a peer applies whole.
//!
//! covers: eval evalsha eval_ro evalsha_ro script fcall fcall_ro function

mod support;

use redis::Value;
use support::Node;

fn script_error_of(c: &mut support::client::Conn, args: &[&str]) -> String {
    c.err(args)
}

#[test]
fn eval_returns_converted_values() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.bulk(&["EVAL", "return 'hello'", "0"]),
        Some("hello".into())
    );
    assert_eq!(c.int(&["EVAL", "return 100.5", "0"]), 100);
    assert_eq!(c.int(&["EVAL", "return true", "0"]), 1);
    assert_eq!(c.v(&["EVAL", "return false", "0"]), Value::Nil);
    assert_eq!(c.status(&["EVAL", "return {ok='fine'}", "0"]), "fine");
    assert_eq!(
        c.err(&["EVAL", "return {err='ERR this is an error'}", "0"]),
        "ERR this is an error"
    );
    assert_eq!(
        c.strings(&[
            "EVAL",
            "return {KEYS[1],KEYS[2],ARGV[1]}",
            "2",
            "a",
            "b",
            "c"
        ]),
        vec!["a", "b", "c"]
    );
    // A table stops at its first nil.
    assert_eq!(
        c.strings(&["EVAL", "return {'a','b',nil,'d'}", "0"]),
        vec!["a", "b"]
    );
}

#[test]
fn redis_replies_reach_lua_with_redis_types() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["SET", "x", "0"]);
    assert_eq!(
        c.strings(&[
            "EVAL",
            "local v = redis.pcall('incr', KEYS[1]) return {type(v), v}",
            "1",
            "x"
        ]),
        vec!["number", "1"]
    );
    assert_eq!(
        c.strings(&[
            "EVAL",
            "local v = redis.pcall('set', 'y', 'z') return {type(v), v['ok']}",
            "0"
        ]),
        vec!["table", "OK"]
    );
    c.ok(&["SET", "s", "text"]);
    assert_eq!(
        c.strings(&[
            "EVAL",
            "local v = redis.pcall('incr', 's') return {type(v), v['err']}",
            "0"
        ]),
        vec!["table", "ERR value is not an integer or out of range"]
    );
    assert_eq!(
        c.int(&[
            "EVAL",
            "return redis.call('get', 'missing') == false and 1 or 0",
            "0"
        ]),
        1
    );
    // RESP3 in the script: a map arrives as {map=...}, nil as nil.
    assert_eq!(c.int(&["HSET", "h", "f", "v"]), 1);
    assert_eq!(
        c.bulk(&[
            "EVAL",
            "redis.setresp(3) return redis.call('hgetall', 'h')['map']['f']",
            "0"
        ]),
        Some("v".into())
    );
    assert_eq!(
        c.int(&[
            "EVAL",
            "redis.setresp(3) return redis.call('get', 'missing') == nil and 1 or 0",
            "0"
        ]),
        1
    );
}

#[test]
fn script_errors_carry_redis_texts() {
    let node = Node::start();
    let mut c = node.client();
    let e = script_error_of(&mut c, &["EVAL", "return a", "0"]);
    assert!(
        e.starts_with("ERR Script attempted to access nonexistent global variable 'a' script: "),
        "{e}"
    );
    assert!(e.ends_with(", on @user_script:1."), "{e}");
    let e = c.err(&["EVAL", "a = 10", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = c.err(&["EVAL", "redis.call = function() end", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = c.err(&["EVAL", "setmetatable(_G, {})", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = c.err(&["EVAL", "print('x')", "0"]);
    assert!(e.contains("nonexistent global variable 'print'"), "{e}");
    let e = c.err(&["EVAL", "return redis.call('nosuch')", "0"]);
    assert!(
        e.starts_with("ERR Unknown Redis command called from script"),
        "{e}"
    );
    let e = c.err(&["EVAL", "return redis.call('eval', 'return 1', '0')", "0"]);
    assert!(
        e.starts_with("ERR This Redis command is not allowed from script"),
        "{e}"
    );
    let e = c.err(&["EVAL", "return redis.call('get')", "0"]);
    assert!(
        e.starts_with("ERR Wrong number of args calling Redis command from script"),
        "{e}"
    );
    let e = c.err(&["EVAL", "return redis.call()", "0"]);
    assert!(
        e.starts_with("ERR Please specify at least one argument for this redis lib call"),
        "{e}"
    );
    let e = c.err(&["EVAL", "return redis.call('get', {})", "0"]);
    assert!(
        e.starts_with("ERR Lua redis lib command arguments must be strings or integers"),
        "{e}"
    );
    let e = c.err(&["EVAL", "return +", "0"]);
    assert!(
        e.starts_with("ERR Error compiling script (new function): user_script:1:"),
        "{e}"
    );
    assert_eq!(
        c.err(&["EVAL", "return 1", "2", "a"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        c.err(&["EVAL", "return 1", "-1"]),
        "ERR Number of keys can't be negative"
    );
    assert_eq!(
        c.err(&["EVAL", "return 1", "x"]),
        "ERR value is not an integer or out of range"
    );
    // The error_reply helper's code split.
    assert_eq!(
        c.err(&["EVAL", "return redis.error_reply('My Error')", "0"]),
        "My Error"
    );
    // Binary chunks are refused.
    let e = c.err(&[
        "EVAL",
        "return loadstring(string.dump(function() return 1 end))()",
        "0",
    ]);
    assert!(e.contains("attempt to call a nil value"), "{e}");
}

#[test]
fn evalsha_and_the_script_cache() {
    let node = Node::start();
    let mut c = node.client();
    let sha = c.bulk(&["SCRIPT", "LOAD", "return 'cached'"]).unwrap();
    assert_eq!(sha.len(), 40);
    assert_eq!(c.bulk(&["EVALSHA", &sha, "0"]), Some("cached".into()));
    assert_eq!(
        c.bulk(&["EVALSHA", &sha.to_uppercase(), "0"]),
        Some("cached".into())
    );
    assert_eq!(
        c.v(&[
            "SCRIPT",
            "EXISTS",
            &sha,
            "ffffffffffffffffffffffffffffffffffffffff"
        ]),
        Value::Array(vec![Value::Int(1), Value::Int(0)])
    );
    assert_eq!(
        c.err(&["EVALSHA", "nosuch", "0"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    c.ok(&["SCRIPT", "FLUSH"]);
    assert_eq!(
        c.err(&["EVALSHA", &sha, "0"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(
        c.err(&["SCRIPT", "FLUSH", "LAZY"]),
        "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
    );
    assert_eq!(
        c.err(&["SCRIPT", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    // redis.sha1hex agrees with the cache's names.
    assert_eq!(
        c.bulk(&["EVAL", "return redis.sha1hex('')", "0"]),
        Some("da39a3ee5e6b4b0d3255bfef95601890afd80709".into())
    );
}

#[test]
fn read_only_scripts_may_not_publish() {
    let node = Node::start();
    let mut c = node.client();
    for script in [
        vec!["EVAL_RO", "return redis.call('publish','ch','msg')", "0"],
        vec![
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')",
            "0",
        ],
    ] {
        let e = c.err(&script);
        assert!(
            e.starts_with("ERR Write commands are not allowed from read-only scripts. script:"),
            "{e}"
        );
    }
    assert_eq!(
        c.int(&["EVAL", "return redis.call('publish','ch','msg')", "0"]),
        0
    );
}

#[test]
fn read_only_scripts_and_shebang_flags() {
    let node = Node::start();
    let mut c = node.client();
    let e = c.err(&["EVAL_RO", "return redis.call('set', 'k', 'v')", "0"]);
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    c.ok(&["SET", "k", "v"]);
    assert_eq!(
        c.bulk(&["EVAL_RO", "return redis.call('get', 'k')", "0"]),
        Some("v".into())
    );
    let e = c.err(&[
        "EVAL",
        "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'w')",
        "0",
    ]);
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    assert_eq!(
        c.err(&["EVAL_RO", "#!lua\nreturn 1", "0"]),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(
        c.err(&["EVAL", "#!lua flags=bogus\nreturn 1", "0"]),
        "ERR Unexpected flag in script shebang: bogus"
    );
    assert_eq!(
        c.err(&["EVAL", "#!python\nreturn 1", "0"]),
        "ERR Unexpected engine in script shebang: #!python"
    );
    assert_eq!(c.err(&["EVAL", "#!lua", "0"]), "ERR Invalid script shebang");
    assert_eq!(
        c.int(&["EVAL", "#!lua flags=no-writes,allow-oom\nreturn 7", "0"]),
        7
    );
}

#[test]
fn scripts_inside_multi_and_select_isolation() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["MULTI"]);
    assert_eq!(
        c.status(&["EVAL", "return redis.call('incr', 'n')", "0"]),
        "QUEUED"
    );
    assert_eq!(c.status(&["INCR", "n"]), "QUEUED");
    assert_eq!(
        c.v(&["EXEC"]),
        Value::Array(vec![Value::Int(1), Value::Int(2)])
    );
    // SELECT inside a script does not move the caller.
    c.ok(&["SET", "where", "db0"]);
    assert_eq!(
        c.status(&["EVAL", "return redis.call('select', '1')", "0"]),
        "OK"
    );
    assert_eq!(c.bulk(&["GET", "where"]), Some("db0".into()));
}

#[test]
fn cjson_and_bit_libraries() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(
        c.bulk(&[
            "EVAL",
            "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')",
            "0"
        ]),
        Some("0 -5000 -1 0.0003 1023.2 0".into())
    );
    assert_eq!(
        c.bulk(&["EVAL", "return cjson.encode({1, 2, 'x'})", "0"]),
        Some("[1,2,\"x\"]".into())
    );
    assert_eq!(c.int(&["EVAL", "return bit.band(0xff, 0x0f)", "0"]), 15);
    assert_eq!(
        c.bulk(&["EVAL", "return bit.tohex(65535, 4)", "0"]),
        Some("ffff".into())
    );
    let e = c.err(&["EVAL", "cjson.encode = 1", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
}

#[test]
fn functions_load_call_list_and_restore() {
    let node = Node::start();
    let mut c = node.client();
    let code = "#!lua name=lib1\nredis.register_function('f1', function(keys, args) return redis.call('set', keys[1], args[1]) end)\nredis.register_function{function_name='f2', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
    assert_eq!(c.bulk(&["FUNCTION", "LOAD", code]), Some("lib1".into()));
    assert_eq!(
        c.err(&["FUNCTION", "LOAD", code]),
        "ERR Library 'lib1' already exists"
    );
    assert_eq!(
        c.bulk(&["FUNCTION", "LOAD", "REPLACE", code]),
        Some("lib1".into())
    );
    assert_eq!(c.status(&["FCALL", "f1", "1", "k", "v"]), "OK");
    assert_eq!(c.bulk(&["FCALL_RO", "f2", "1", "k"]), Some("v".into()));
    assert_eq!(
        c.err(&["FCALL_RO", "f1", "1", "k", "v"]),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(c.err(&["FCALL", "nosuch", "0"]), "ERR Function not found");
    assert_eq!(
        c.err(&["FCALL", "f1", "x"]),
        "ERR Bad number of keys provided"
    );
    assert_eq!(
        c.err(&["FUNCTION", "LOAD", "return 1"]),
        "ERR Missing library metadata"
    );
    assert_eq!(
        c.err(&["FUNCTION", "LOAD", "#!lua name=empty\nreturn 1"]),
        "ERR No functions registered"
    );
    let e = c.err(&["FUNCTION", "LOAD", "#!lua name=bad\nredis.call('ping')"]);
    assert!(e.starts_with("ERR Error registering functions:"), "{e}");
    match c.v(&["FUNCTION", "LIST"]) {
        Value::Array(libs) => assert_eq!(libs.len(), 1),
        other => panic!("FUNCTION LIST: {other:?}"),
    }
    let dump = match c.v(&["FUNCTION", "DUMP"]) {
        Value::BulkString(b) => b,
        other => panic!("FUNCTION DUMP: {other:?}"),
    };
    c.ok(&["FUNCTION", "FLUSH"]);
    assert_eq!(
        c.err(&["FCALL", "f1", "1", "k", "v"]),
        "ERR Function not found"
    );
    let restored: Value = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .query(&mut c.0)
        .unwrap();
    assert_eq!(restored, Value::Okay);
    assert_eq!(c.bulk(&["FCALL_RO", "f2", "1", "k"]), Some("v".into()));
    let mut forged = dump.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    let refused = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&forged)
        .query::<Value>(&mut c.0);
    assert!(refused.is_err());
    c.ok(&["FUNCTION", "DELETE", "lib1"]);
    assert_eq!(
        c.err(&["FUNCTION", "DELETE", "lib1"]),
        "ERR Library not found"
    );
    assert_eq!(
        c.err(&["FUNCTION", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    assert!(matches!(
        c.v(&["FUNCTION", "STATS"]),
        Value::Array(_) | Value::Map(_)
    ));
}

#[test]
fn info_reports_the_script_cache() {
    let node = Node::start();
    let mut c = node.client();
    c.bulk(&["SCRIPT", "LOAD", "return 1"]);
    let info = c.bulk(&["INFO", "memory"]).unwrap();
    assert!(info.contains("number_of_cached_scripts:1"), "{info}");
    let lua = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_lua:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap();
    assert!(lua > 0);
}

/// One EVAL's several writes leave as one delta batch, which the peer
/// applies whole: after it, the peer sees every write, never a part.
#[test]
fn one_eval_with_several_writes_reaches_the_peer_as_one_batch() {
    use support::inproc;
    let mut nodes = vec![inproc::Node::new(1), inproc::Node::new(2)];
    let before = nodes[0]
        .state
        .store
        .lock()
        .delta_log()
        .since(0)
        .unwrap()
        .count();
    nodes[0].run(&[
        "EVAL",
        "redis.call('set', 'a', '1') redis.call('sadd', 's', 'x', 'y') redis.call('rpush', 'l', 'p') return 1",
        "0",
    ]);
    let after = nodes[0]
        .state
        .store
        .lock()
        .delta_log()
        .since(0)
        .unwrap()
        .count();
    assert_eq!(after - before, 1, "one batch for the whole script");
    assert!(inproc::deliver_one(&nodes, 0, 1));
    assert!(
        !inproc::deliver_one(&nodes, 0, 1),
        "nothing left after the one batch"
    );
    let peer = &mut nodes[1];
    assert_eq!(
        peer.run(&["GET", "a"]),
        cordis::protocol::Reply::Bulk("1".into())
    );
    assert_eq!(
        peer.run(&["SCARD", "s"]),
        cordis::protocol::Reply::Integer(2)
    );
    assert_eq!(
        peer.run(&["LLEN", "l"]),
        cordis::protocol::Reply::Integer(1)
    );
}

/// Polls `PING` on `c` until it answers an error starting with `prefix`
/// (or PONG when `prefix` is empty), for at most five seconds.
fn wait_for_ping(c: &mut support::client::Conn, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let answer = match c.try_query(&["PING"]) {
            Ok(_) => String::new(),
            Err(e) => support::client::error_text(&e),
        };
        let matched = if prefix.is_empty() {
            answer.is_empty()
        } else {
            answer.starts_with(prefix)
        };
        if matched {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "PING kept answering {answer:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Past `busy-reply-threshold` a running script makes the node answer
/// BUSY to everyone else; SCRIPT KILL stops one that has not written (even
/// through pcall) and FUNCTION KILL a function, each refusing the other
/// kind; FUNCTION STATS shows the running function; the node serves again
/// right after. A script that wrote cannot be killed and runs to its end.
#[test]
fn a_runaway_script_makes_others_busy_until_killed() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "busy-reply-threshold", "50"]);
    for script in [
        "while true do end",
        "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
    ] {
        let url = node.url();
        let runner = std::thread::spawn(move || {
            let mut r = support::client::Conn::open(&url);
            r.err(&["EVAL", script, "0"])
        });
        let busy = wait_for_ping(&mut c, "BUSY");
        assert_eq!(
            busy,
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        );
        assert!(c.err(&["FUNCTION", "KILL"]).starts_with("BUSY"));
        assert!(c.err(&["FUNCTION", "STATS"]).starts_with("BUSY"));
        c.ok(&["SCRIPT", "KILL"]);
        wait_for_ping(&mut c, "");
        let killed = runner.join().unwrap();
        assert!(
            killed.contains("Script killed by user with SCRIPT KILL"),
            "{killed}"
        );
    }

    let lib = "#!lua name=spin\nredis.register_function('spin', function() local a = 1 while true do a = a + 1 end end)";
    c.bulk(&["FUNCTION", "LOAD", lib]);
    let url = node.url();
    let runner = std::thread::spawn(move || {
        let mut r = support::client::Conn::open(&url);
        r.err(&["FCALL", "spin", "0"])
    });
    let busy = wait_for_ping(&mut c, "BUSY");
    assert!(busy.contains("FUNCTION KILL"), "{busy}");
    let stats = format!("{:?}", c.v(&["FUNCTION", "STATS"]));
    assert!(
        stats.contains("spin") && stats.contains("duration_ms"),
        "{stats}"
    );
    assert!(c.err(&["SCRIPT", "KILL"]).starts_with("BUSY"));
    c.ok(&["FUNCTION", "KILL"]);
    wait_for_ping(&mut c, "");
    runner.join().unwrap();

    // A script that wrote runs on: UNKILLABLE, then it ends by itself.
    let url = node.url();
    let runner = std::thread::spawn(move || {
        let mut r = support::client::Conn::open(&url);
        r.v(&[
            "EVAL",
            "redis.call('set', KEYS[1], 'v') local t = redis.call('time')[1] + 0 \
             while redis.call('time')[1] + 0 < t + 2 do end return 'done'",
            "1",
            "k",
        ])
    });
    wait_for_ping(&mut c, "BUSY");
    assert!(c.err(&["SCRIPT", "KILL"]).starts_with("UNKILLABLE"));
    assert_eq!(runner.join().unwrap(), Value::BulkString(b"done".to_vec()));
    wait_for_ping(&mut c, "");
    assert_eq!(c.bulk(&["GET", "k"]), Some("v".into()));
    c.ok(&["CONFIG", "SET", "busy-reply-threshold", "5000"]);
}

/// The value of `field` in an INFO section (`None` when absent).
fn info_field(c: &mut support::client::Conn, section: &str, field: &str) -> Option<String> {
    let text = c.bulk(&["INFO", section]).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
}

/// As Redis counts them: an error a command called by a script answered,
/// or a refusal of that command inside the script, is counted once (when
/// the command answers), with the command's failed or rejected call and
/// the script's failed call; an error the script builds itself is counted
/// when the script replies.
#[test]
fn script_errors_are_counted_once_in_error_stats() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "RESETSTAT"]);
    let e = c.err(&["EVAL", "return redis.call('select',99)", "0"]);
    assert!(e.starts_with("ERR DB index is out of range"), "{e}");
    assert_eq!(
        info_field(&mut c, "errorstats", "errorstat_ERR").as_deref(),
        Some("count=1")
    );
    assert_eq!(
        info_field(&mut c, "stats", "total_error_replies").as_deref(),
        Some("1")
    );
    let select = info_field(&mut c, "commandstats", "cmdstat_select").unwrap();
    assert!(
        select.starts_with("calls=1,") && select.ends_with("rejected_calls=0,failed_calls=1"),
        "{select}"
    );
    let eval = info_field(&mut c, "commandstats", "cmdstat_eval").unwrap();
    assert!(eval.ends_with("rejected_calls=0,failed_calls=1"), "{eval}");

    // pcall: the command's error is counted, the script succeeds.
    c.ok(&["CONFIG", "RESETSTAT"]);
    assert_eq!(
        c.int(&["EVAL", "local t = redis.pcall('select',99) return 1", "0"]),
        1
    );
    assert_eq!(
        info_field(&mut c, "errorstats", "errorstat_ERR").as_deref(),
        Some("count=1")
    );
    let eval = info_field(&mut c, "commandstats", "cmdstat_eval").unwrap();
    assert!(eval.ends_with("failed_calls=0"), "{eval}");

    // A refusal inside the script counts as the command's rejected call
    // (OOM is the same path; the suite's "Consistent eval error reporting"
    // covers it: in-process nodes have no memory gauge to exceed).
    c.ok(&["CONFIG", "RESETSTAT"]);
    let e = c.err(&["EVAL_RO", "return redis.call('set','x','y')", "1", "x"]);
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    let set = info_field(&mut c, "commandstats", "cmdstat_set").unwrap();
    assert!(
        set.starts_with("calls=0,") && set.ends_with("rejected_calls=1,failed_calls=0"),
        "{set}"
    );
    assert_eq!(
        info_field(&mut c, "stats", "total_error_replies").as_deref(),
        Some("1")
    );
    let eval_ro = info_field(&mut c, "commandstats", "cmdstat_eval_ro").unwrap();
    assert!(
        eval_ro.ends_with("rejected_calls=0,failed_calls=1"),
        "{eval_ro}"
    );
    assert_eq!(
        info_field(&mut c, "errorstats", "errorstat_ERR").as_deref(),
        Some("count=1")
    );

    // An error the script makes is counted when it replies.
    c.ok(&["CONFIG", "RESETSTAT"]);
    assert_eq!(
        c.err(&["EVAL", "return redis.error_reply('MY_ERR custom')", "0"]),
        "MY_ERR custom"
    );
    assert_eq!(
        info_field(&mut c, "errorstats", "errorstat_MY_ERR").as_deref(),
        Some("count=1")
    );
}

fn hex_of(c: &mut support::client::Conn, expr: &str) -> String {
    let script = format!(
        "local e = {expr} local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h"
    );
    c.bulk(&["EVAL", &script, "0"]).unwrap()
}

#[test]
fn cmsgpack_packs_and_unpacks_as_redis() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(hex_of(&mut c, "cmsgpack.pack(0.1)"), "cb3fb999999999999a");
    assert_eq!(
        hex_of(&mut c, "cmsgpack.pack(-1099511627776)"),
        "d3ffffff0000000000"
    );
    assert_eq!(hex_of(&mut c, "cmsgpack.pack(1.5)"), "ca3fc00000");
    assert_eq!(
        hex_of(
            &mut c,
            "cmsgpack.pack(5, -1, 200, 'ab', true, false, nil, {1, 2})"
        ),
        "05ffccc8a26162c3c2c0920102"
    );
    // A circular table is cut at 16 levels, the last as nil.
    let deep = hex_of(
        &mut c,
        "(function() local a = {} a[1] = a return cmsgpack.pack(a) end)()",
    );
    assert_eq!(deep, format!("{}c0", "91".repeat(16)));
    assert_eq!(
        c.strings(&[
            "EVAL",
            "local t = cmsgpack.unpack(cmsgpack.pack({a = 'x', b = {1, 2, 3}})) \
             return {t.a, tostring(#t.b), tostring(t.b[3])}",
            "0"
        ]),
        vec!["x", "3", "3"]
    );
    // unpack_limit walks a stream of objects; -1 at its end.
    assert_eq!(
        c.strings(&[
            "EVAL",
            "local e = cmsgpack.pack('one', 'two') \
             local o1, a = cmsgpack.unpack_limit(e, 1, 0) \
             local o2, b = cmsgpack.unpack_one(e, o1) \
             return {tostring(o1), a, tostring(o2), b}",
            "0"
        ]),
        vec!["4", "one", "-1", "two"]
    );
    let e = c.err(&["EVAL", "return cmsgpack.unpack('\\217')", "0"]);
    assert!(e.contains("Missing bytes in input."), "{e}");
    let e = c.err(&["EVAL", "cmsgpack.pack = function() return 1 end", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
}

#[test]
fn scripts_take_thousands_of_command_arguments() {
    let node = Node::start();
    let mut c = node.client();
    let script =
        "local a = {} for i = 1, 7999 do a[i] = 1 end return redis.call('lpush', 'l', unpack(a))";
    assert_eq!(c.int(&["EVAL", script, "0"]), 7999);
    let script =
        "local a = {} for i = 1, 7999 do a[i] = 1 end return redis.pcall('rpush', 'l', unpack(a))";
    assert_eq!(c.int(&["EVAL", script, "0"]), 15998);
    let e = c.err(&["EVAL", "return redis.call('ping', {})", "0"]);
    assert!(
        e.starts_with("ERR Lua redis lib command arguments must be strings or integers"),
        "{e}"
    );
}

#[test]
fn scripts_refuse_xread_block_and_sort_sets_by_constant() {
    let node = Node::start();
    let mut c = node.client();
    let e = c.err(&[
        "EVAL",
        "return redis.pcall('xread','BLOCK',0,'STREAMS','s','$')",
        "1",
        "s",
    ]);
    assert_eq!(
        e,
        "ERR xread command is not allowed with BLOCK option from scripts"
    );
    c.int(&["SADD", "myset", "b", "aa", "c", "a"]);
    assert_eq!(
        c.strings(&[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'by', '_')",
            "1",
            "myset"
        ]),
        vec!["a", "aa", "b", "c"]
    );
}

#[test]
fn function_names_metadata_and_argument_errors_follow_redis() {
    let node = Node::start();
    let mut c = node.client();
    let lib = "#!lua name=lib1\nredis.register_function('Hello', function() return 'hi' end)";
    assert_eq!(c.bulk(&["FUNCTION", "LOAD", lib]), Some("lib1".into()));
    assert_eq!(c.bulk(&["FCALL", "hello", "0"]), Some("hi".into()));
    assert_eq!(c.bulk(&["FCALL", "HELLO", "0"]), Some("hi".into()));
    // register_function kept by a callback cannot register at FCALL.
    let lib2 = "#!lua name=lib2\nlocal r = redis\nr.register_function('late', function() r.register_function('x', function() end) end)";
    c.bulk(&["FUNCTION", "LOAD", lib2]);
    let e = c.err(&["FCALL", "late", "0"]);
    assert!(
        e.contains("redis.register_function can only be called on FUNCTION LOAD command"),
        "{e}"
    );
    let e = c.err(&[
        "FUNCTION",
        "LOAD",
        "#! name=test\nredis.register_function('foo', function() return 1 end)",
    ]);
    assert_eq!(e, "ERR Engine '' not found");
    assert_eq!(
        c.bulk(&[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=\"foo\"\nredis.register_function('foo', function() return 1 end)"
        ]),
        Some("foo".into())
    );
    assert_eq!(
        c.err(&["FUNCTION", "RESTORE", "a", "b", "c"]),
        "ERR unknown subcommand or wrong number of arguments for 'RESTORE'. Try FUNCTION HELP."
    );
    assert_eq!(
        c.err(&["FUNCTION", "FLUSH", "sync", "extra"]),
        "ERR unknown subcommand or wrong number of arguments for 'FLUSH'. Try FUNCTION HELP."
    );
}

/// Commands Redis lets through while a script is busy that need only the
/// connection: MULTI is entered; a command refused with BUSY inside it
/// makes EXEC abort; EXEC during the busy script aborts the transaction
/// with the BUSY error; the connection then is out of MULTI.
#[test]
fn multi_during_a_busy_script_is_aborted_not_half_run() {
    let node = Node::start();
    let mut c = node.client();
    let mut other = node.client();
    c.ok(&["CONFIG", "SET", "busy-reply-threshold", "50"]);
    c.ok(&["SET", "xx", "1"]);
    let url = node.url();
    let runner = std::thread::spawn(move || {
        let mut r = support::client::Conn::open(&url);
        r.err(&["EVAL", "while true do end", "0"])
    });
    wait_for_ping(&mut c, "BUSY");
    other.ok(&["MULTI"]);
    assert!(other.err(&["INCR", "xx"]).starts_with("BUSY"));
    let e = other.err(&["EXEC"]);
    assert!(
        e.starts_with(
            "EXECABORT Transaction discarded because of: BUSY Redis is busy running a script."
        ),
        "{e}"
    );
    c.ok(&["SCRIPT", "KILL"]);
    wait_for_ping(&mut c, "");
    runner.join().unwrap();
    assert_eq!(other.bulk(&["PING", "asdf"]), Some("asdf".into()));
    assert_eq!(c.bulk(&["GET", "xx"]), Some("1".into()));
    c.ok(&["CONFIG", "SET", "busy-reply-threshold", "5000"]);
}

/// The error reply of EVAL `script` whose Lua error is `message`, as
/// Redis words it.
fn eval_error(script: &str, message: &str) -> String {
    format!(
        "ERR user_script:1: {message} script: {}, on @user_script:1.",
        cordis::scripting::sha1_hex(script.as_bytes())
    )
}

// Every expected value below is what redis-server 7.0.15 answered.
#[test]
fn struct_packs_unpacks_and_sizes_as_redis() {
    let node = Node::start();
    let mut c = node.client();
    let all = "-1, 255, -2, 65535, -3, 4294967295, -4, 2^53, 7, 0.5, 0.1";
    assert_eq!(
        hex_of(&mut c, &format!("struct.pack('>bBhHiIlLTfd', {all})")),
        "fffffffefffffffffffdfffffffffffffffffffffffc002000000000000000000000000000073f0000003fb999999999999a"
    );
    assert_eq!(
        hex_of(&mut c, &format!("struct.pack('<bBhHiIlLTfd', {all})")),
        "fffffefffffffdfffffffffffffffcffffffffffffff000000000000200007000000000000000000003f9a9999999999b93f"
    );
    assert_eq!(
        hex_of(
            &mut c,
            "struct.pack('!4 b x h c3 s i', 1, 2, 'abc', 'de', 3)"
        ),
        "01000200616263646500000003000000"
    );
    // No overflow checks: integers pass through a 64-bit word.
    assert_eq!(
        hex_of(&mut c, "struct.pack('>I2 i10 L', 70000, -1, 2^64)"),
        "11700000ffffffffffffffff0000000000000000"
    );
    assert_eq!(
        hex_of(&mut c, "struct.pack('c0 I3', 'ab', 16777215)"),
        "6162ffffff"
    );
    assert_eq!(
        c.strings(&[
            "EVAL",
            "local r = {struct.unpack('>h H c0 s !4 i d', '\\255\\254\\0\\3abcxy\\0\\0\\0\\0\\0\\0\\0\\0\\7' .. struct.pack('>d', 0.25))} \
             for i = 1, #r do r[i] = tostring(r[i]) end return r",
            "0"
        ]),
        vec!["-2", "abc", "xy", "0", "1.0081347363381e-308", "25"]
    );
    assert_eq!(
        c.v(&[
            "EVAL",
            "return {struct.unpack('<i3 B', '\\1\\2\\3\\4\\5\\6', 2)}",
            "0"
        ]),
        Value::Array(vec![Value::Int(262914), Value::Int(5), Value::Int(6)])
    );
    assert_eq!(c.int(&["EVAL", "return struct.size('!bd')", "0"]), 16);
    assert_eq!(c.int(&["EVAL", "return struct.size('>i!4bic7')", "0"]), 19);
}

#[test]
fn struct_errors_read_as_redis() {
    let node = Node::start();
    let mut c = node.client();
    let cases = [
        (
            "return struct.pack('>I2 z', 1)",
            "bad argument #1 to 'pack' (invalid format option 'z')",
        ),
        (
            "return struct.pack('=i', 1)",
            "bad argument #1 to 'pack' (invalid format option '=')",
        ),
        (
            "return struct.pack('i33', 1)",
            "integral size 33 is larger than limit of 32",
        ),
        (
            "return struct.pack('c5', 'ab')",
            "bad argument #3 to 'pack' (string too short)",
        ),
        (
            "return struct.pack('!4bi', 1)",
            "bad argument #3 to 'pack' (number expected, got nil)",
        ),
        (
            "return struct.pack('!3')",
            "alignment 3 is not a power of 2",
        ),
        (
            "return struct.unpack('>I2', 'ab', 2)",
            "bad argument #2 to 'unpack' (data string too short)",
        ),
        (
            "return struct.unpack('s', 'abc')",
            "unfinished string in data",
        ),
        (
            "return struct.unpack('c0', 'abc')",
            "format 'c0' needs a previous size",
        ),
        (
            "return struct.unpack('b', 'abc', 0)",
            "bad argument #3 to 'unpack' (offset must be 1 or greater)",
        ),
        (
            "return struct.size('s')",
            "bad argument #1 to 'size' (option 's' has no fixed size)",
        ),
        (
            "return struct.size('c0')",
            "bad argument #1 to 'size' (option 'c0' has no fixed size)",
        ),
    ];
    for (script, message) in cases {
        assert_eq!(
            c.err(&["EVAL", script, "0"]),
            eval_error(script, message),
            "{script}"
        );
    }
    let e = c.err(&["EVAL", "struct.pack = nil", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
}
