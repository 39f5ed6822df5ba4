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

/// A script that has not written is stopped at `busy-reply-threshold`
/// (cordis cannot answer BUSY to others yet), even through pcall, and the
/// node serves again right after.
#[test]
fn a_runaway_read_only_script_is_stopped_at_the_threshold() {
    let node = Node::start();
    let mut c = node.client();
    c.ok(&["CONFIG", "SET", "lua-time-limit", "50"]);
    for script in [
        "while true do end",
        "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
    ] {
        let e = c.err(&["EVAL", script, "0"]);
        assert!(
            e.starts_with("ERR Script stopped by cordis at busy-reply-threshold"),
            "{script}: {e}"
        );
        assert_eq!(c.status(&["PING"]), "PONG");
    }
    // A script that wrote is not stopped: it runs to its end.
    let started = std::time::Instant::now();
    let v = c.v(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'v') local t = redis.call('time')[1] + 0 \
         while redis.call('time')[1] + 0 < t + 2 do end return 'done'",
        "1",
        "k",
    ]);
    assert_eq!(v, Value::BulkString(b"done".to_vec()));
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    c.ok(&["CONFIG", "SET", "lua-time-limit", "5000"]);
}
