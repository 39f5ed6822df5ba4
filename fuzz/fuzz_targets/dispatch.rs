//! Runs arbitrary argument vectors (NUL-separated words, one command per
//! line) through the command dispatcher on one store: no input may panic.
//! A line that starts with byte 0x01 is a Lua script instead: the rest of
//! the line runs as `EVAL <script> 2 k1 k2 a1`, so the fuzzer explores
//! script bodies directly (seed it with `fuzz/dispatch.dict`: Lua tokens,
//! `redis.call`, `cjson`, `cmsgpack`, `struct`, `bit`).
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use cordis::commands::{ClientState, ServerState};
use cordis::config::Config;
use cordis::crdt::ReplicaId;
use libfuzzer_sys::fuzz_target;

fn state() -> &'static Arc<ServerState> {
    static STATE: OnceLock<Arc<ServerState>> = OnceLock::new();
    STATE.get_or_init(|| ServerState::new(Config::default(), ReplicaId(1), None))
}

fuzz_target!(|data: &[u8]| {
    let state = state();
    let mut client = ClientState::detached(true);
    for line in data.split(|&b| b == b'\n') {
        if let Some(script) = line.strip_prefix(&[1u8]) {
            let args: Vec<Bytes> = [b"EVAL".as_slice(), script, b"2", b"k1", b"k2", b"a1"]
                .into_iter()
                .map(Bytes::copy_from_slice)
                .collect();
            let _ = state.execute(&mut client, &args);
            client.action = None;
            continue;
        }
        let args: Vec<Bytes> = line
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(Bytes::copy_from_slice)
            .collect();
        if args.is_empty() {
            continue;
        }
        // DEBUG SLEEP only records an action for the connection; nothing
        // here sleeps.
        let _ = state.execute(&mut client, &args);
        client.action = None;
    }
});
