//! What this node's writes look like as a Redis replication stream, for
//! the clients attached with SYNC/PSYNC (`replication`): after every
//! command that changed the dataset, the commands that reproduce its
//! *effect* on a Redis replica holding the same data.
//!
//! Rules, in order:
//! - A command that changed nothing (no op in the write batch) sends
//!   nothing, whatever its flags; PUBLISH always goes (Redis sends it to
//!   replicas).
//! - EXEC and scripts send nothing themselves: the commands they ran
//!   collect their own effects, and the whole block leaves inside
//!   MULTI … EXEC when it holds more than one effect.
//! - Commands whose replay on the same data gives the same data go as
//!   sent ([`VERBATIM`]).
//! - Commands whose result depends on time, chance or blocking go as
//!   Redis rewrites them: relative TTLs become `PEXPIREAT` / `SET … PXAT`
//!   (or `DEL` when the key is gone), GETEX `PERSIST`, GETDEL `DEL`,
//!   INCRBYFLOAT `SET … KEEPTTL`, RESTORE with its TTL made absolute, the
//!   multi-key and blocking pops the plain pop of what they popped.
//! - Anything else goes as the resulting state of each key it touched:
//!   `DEL key`, or `RESTORE key <deadline> <payload> REPLACE ABSTTL` with
//!   the value in Redis's own serialization (a stream write goes as the
//!   RESTORE of the whole stream, type 19). Should a key's value have no
//!   Redis serialization, the attached clients are cut off rather than
//!   sent a stream that silently differs.
//! - Keys that leave the dataset without a command naming them (expired
//!   on this node, evicted) go as `DEL key`, before the command's own
//!   effects.

use bytes::Bytes;

use super::Context;
use crate::protocol::Reply;
use crate::pubsub::replica_feed::Effect;
use crate::rdb::{self, keystate, EncodeOptions};
use crate::store::Store;

/// Commands replayed as sent. Each is deterministic on a replica holding
/// the same data (no randomness, no relative time, no blocking).
const VERBATIM: &[&str] = &[
    "set",
    "setnx",
    "mset",
    "msetnx",
    "getset",
    "append",
    "setrange",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "del",
    "unlink",
    "rename",
    "renamenx",
    "copy",
    "move",
    "swapdb",
    "persist",
    "flushdb",
    "flushall",
    "lpush",
    "rpush",
    "lpushx",
    "rpushx",
    "linsert",
    "lset",
    "lrem",
    "ltrim",
    "lpop",
    "rpop",
    "lmove",
    "rpoplpush",
    "sadd",
    "srem",
    "smove",
    "sinterstore",
    "sunionstore",
    "sdiffstore",
    "hset",
    "hsetnx",
    "hmset",
    "hdel",
    "hincrby",
    "zadd",
    "zincrby",
    "zrem",
    "zremrangebyscore",
    "zremrangebyrank",
    "zremrangebylex",
    "zpopmin",
    "zpopmax",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zrangestore",
    "setbit",
    "bitop",
    "pfadd",
    "pfmerge",
    "geoadd",
    "sort",
];

/// Commands that run others, whose effects are collected one by one.
const CONTAINERS: &[&str] = &[
    "exec",
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

fn b(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// Records the effects of a command that just ran (its ops start at
/// `ops_before`) in the client's pending list.
pub(crate) fn collect(ctx: &mut Context, args: &[Bytes], ops_before: usize, reply: &Reply) {
    let name = lower(&args[0]);
    if CONTAINERS.contains(&name.as_str()) {
        return;
    }
    let db = ctx.client.db;
    if name == "publish" {
        ctx.client.effects.push((db, args.to_vec()));
        return;
    }
    let touched = ctx.store.touched_since(ops_before);
    if touched.is_empty() {
        return;
    }
    let effects = match rewrite(ctx.store, &name, db, args, reply) {
        Some(effects) => effects,
        None if VERBATIM.contains(&name.as_str()) && !has_relative_ttl(&name, args) => {
            vec![(db, args.to_vec())]
        }
        None => match key_states(ctx.store, &touched) {
            Some(effects) => effects,
            None => {
                tracing::warn!(
                    command = %name,
                    "closing SYNC/PSYNC clients: a write touched a key with no Redis serialization in cordis"
                );
                ctx.server.replica_feeds.cut_off_all();
                Vec::new()
            }
        },
    };
    ctx.client.effects.extend(effects);
}

/// Whether SET carries EX/PX/EXAT/PXAT (then it goes as `SET … PXAT`).
fn has_relative_ttl(name: &str, args: &[Bytes]) -> bool {
    name == "set"
        && args.iter().skip(3).any(|a| {
            ["ex", "px", "exat", "pxat"]
                .iter()
                .any(|o| a.eq_ignore_ascii_case(o.as_bytes()))
        })
}

/// `PEXPIREAT key deadline`, `PERSIST key` or `DEL key` for a key's TTL
/// after the command.
fn ttl_effect(store: &mut Store, db: usize, key: &Bytes, persist: bool) -> Vec<Bytes> {
    match store.deadline(db, key) {
        None => vec![b("DEL"), key.clone()],
        Some(Some(ms)) => vec![b("PEXPIREAT"), key.clone(), Bytes::from(ms.to_string())],
        Some(None) if persist => vec![b("PERSIST"), key.clone()],
        Some(None) => vec![],
    }
}

/// The Redis rewrite of a command whose effect is not its request.
fn rewrite(
    store: &mut Store,
    name: &str,
    db: usize,
    args: &[Bytes],
    reply: &Reply,
) -> Option<Vec<Effect>> {
    let one = |argv: Vec<Bytes>| Some(vec![(db, argv)]).filter(|v| !v[0].1.is_empty());
    let key = args.get(1)?;
    match name {
        "set" | "setex" | "psetex" if name != "set" || has_relative_ttl(name, args) => {
            let value = if name == "set" {
                &args[2]
            } else {
                args.get(3)?
            };
            match store.deadline(db, key) {
                Some(Some(ms)) => one(vec![
                    b("SET"),
                    key.clone(),
                    value.clone(),
                    b("PXAT"),
                    Bytes::from(ms.to_string()),
                ]),
                None => one(vec![b("DEL"), key.clone()]),
                Some(None) => None,
            }
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => one(ttl_effect(store, db, key, false)),
        "getex" => one(ttl_effect(store, db, key, true)),
        "getdel" => one(vec![b("DEL"), key.clone()]),
        // As sent, with a relative TTL made absolute (ABSTTL).
        "restore" => {
            let mut argv = args.to_vec();
            if let Some(Some(ms)) = store.deadline(db, key) {
                argv[2] = Bytes::from(ms.to_string());
                if !args[4..].iter().any(|a| a.eq_ignore_ascii_case(b"absttl")) {
                    argv.push(b("ABSTTL"));
                }
            }
            one(argv)
        }
        "incrbyfloat" => match reply {
            Reply::Bulk(value) => one(vec![b("SET"), key.clone(), value.clone(), b("KEEPTTL")]),
            _ => None,
        },
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let Reply::Array(items) = reply else {
                return None;
            };
            let Some(Reply::Bulk(popped_from)) = items.first() else {
                return None;
            };
            let pop = match name {
                "blpop" => "LPOP",
                "brpop" => "RPOP",
                "bzpopmin" => "ZPOPMIN",
                _ => "ZPOPMAX",
            };
            one(vec![b(pop), popped_from.clone()])
        }
        "brpoplpush" => one(vec![b("RPOPLPUSH"), key.clone(), args.get(2)?.clone()]),
        "blmove" => one(vec![
            b("LMOVE"),
            key.clone(),
            args.get(2)?.clone(),
            args.get(3)?.clone(),
            args.get(4)?.clone(),
        ]),
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => {
            let Reply::Array(items) = reply else {
                return None;
            };
            let (Some(Reply::Bulk(popped_from)), Some(Reply::Array(popped))) =
                (items.first(), items.get(1))
            else {
                return None;
            };
            // The direction follows `numkeys` and the keys.
            let at = usize::from(name.starts_with('b')) + 1;
            let numkeys: usize = std::str::from_utf8(args.get(at)?).ok()?.parse().ok()?;
            let direction = lower(args.get(at + 1 + numkeys)?);
            let pop = match direction.as_str() {
                "left" => "LPOP",
                "right" => "RPOP",
                "min" => "ZPOPMIN",
                "max" => "ZPOPMAX",
                _ => return None,
            };
            one(vec![
                b(pop),
                popped_from.clone(),
                Bytes::from(popped.len().to_string()),
            ])
        }
        _ => None,
    }
}

/// The resulting state of every key (and flushed database) `touched`
/// names, once each; `None` if one holds a value with no Redis
/// serialization here.
fn key_states(store: &mut Store, touched: &[(usize, Option<Bytes>)]) -> Option<Vec<Effect>> {
    let mut seen: Vec<&(usize, Option<Bytes>)> = Vec::new();
    let mut out = Vec::new();
    for entry in touched {
        if seen.contains(&entry) {
            continue;
        }
        seen.push(entry);
        let (db, key) = entry;
        let Some(key) = key else {
            out.push((*db, vec![b("FLUSHDB")]));
            continue;
        };
        out.push((*db, key_state(store, *db, key)?));
    }
    Some(out)
}

/// `DEL key`, or the RESTORE that recreates the key as it is now.
fn key_state(store: &mut Store, db: usize, key: &Bytes) -> Option<Vec<Bytes>> {
    let Some(state) = store.lookup_untouched(db, key) else {
        return Some(vec![b("DEL"), key.clone()]);
    };
    let deadline = state.deadline();
    let value = keystate::value_of(state)?;
    let payload = rdb::dump_payload(&value, &EncodeOptions::default());
    let mut argv = vec![
        b("RESTORE"),
        key.clone(),
        Bytes::from(deadline.unwrap_or(0).to_string()),
        Bytes::from(payload),
        b("REPLACE"),
    ];
    if deadline.is_some() {
        argv.push(b("ABSTTL"));
    }
    Some(argv)
}

/// Sends what the top-level command that just ended made to the attached
/// clients: first the keys that left on their own (one DEL each), then
/// the command's effects (several inside MULTI … EXEC). With no client
/// attached any more, stops recording removals.
pub(crate) fn flush(ctx: &mut Context) {
    let feeds = &ctx.server.replica_feeds;
    if feeds.is_empty() {
        ctx.store.record_removals = false;
        ctx.store.take_removals();
        ctx.client.effects.clear();
        return;
    }
    send_removals(ctx.store, feeds);
    let effects = std::mem::take(&mut ctx.client.effects);
    feeds.send(&effects);
}

/// One `DEL key` per key that expired or was evicted since the last call.
pub fn send_removals(store: &mut Store, feeds: &crate::pubsub::replica_feed::ReplicaFeeds) {
    for (db, key) in store.take_removals() {
        feeds.send(&[(db, vec![b("DEL"), key])]);
    }
}

/// The whole dataset as an RDB file (what SYNC sends first); `Err` names
/// a key whose value has no Redis serialization here.
pub(crate) fn snapshot(store: &mut Store) -> Result<Vec<u8>, Bytes> {
    let mut dbs = Vec::new();
    for db in 0..crate::store::DB_COUNT {
        let mut entries = Vec::new();
        for key in store.keys_where(db, |_| true) {
            let Some(state) = store.lookup_untouched(db, &key) else {
                continue;
            };
            let deadline = state.deadline();
            let Some(value) = keystate::value_of(state) else {
                return Err(key);
            };
            entries.push((key.to_vec(), value, deadline));
        }
        dbs.push((db, entries));
    }
    Ok(rdb::encode_file(&dbs, &EncodeOptions::default()))
}
