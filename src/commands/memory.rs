//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP.
//!
//! MEMORY USAGE measures a key's whole footprint in cordis, CRDT metadata
//! included: the key bytes, its keyspace slot, the `KeyState` struct, and
//! the state's contents as the replication codec encodes them (values,
//! versions with their dots and timestamps, collection elements with
//! their tags and tombstones), plus a per-allocation overhead for each
//! heap block the encoding stands for. It is exact for what it counts and
//! computed over every element, so SAMPLES is accepted (as Redis checks
//! it) but not needed.

use bytes::Bytes;

use super::args::{err, help_reply, int, is, Args, CmdResult, SYNTAX_ERROR};
use super::flags::{LOADING, READONLY, STALE};
use super::{container_handler, spec, CommandSpec, Context};
use crate::crdt::KeyState;
use crate::protocol::Reply;
use crate::store::memory;
use crate::store::DB_COUNT;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: MEMORY_SUBCOMMANDS,
        ..spec("memory", -2, 0, (0, 0, 0), "server", "4.0.0", "A container for memory diagnostics commands.", container_handler)
    },
];

#[rustfmt::skip]
static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    spec("doctor", 2, 0, (0, 0, 0), "server", "4.0.0", "Outputs a memory problems report.", memory_doctor),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "server", "4.0.0", "Returns helpful text about the different subcommands.", memory_help),
    spec("malloc-stats", 2, 0, (0, 0, 0), "server", "4.0.0", "Returns the allocator statistics.", memory_malloc_stats),
    spec("purge", 2, 0, (0, 0, 0), "server", "4.0.0", "Asks the allocator to release memory.", memory_purge),
    spec("stats", 2, 0, (0, 0, 0), "server", "4.0.0", "Returns details about memory usage.", memory_stats),
    spec("usage", -3, READONLY, (2, 2, 1), "server", "4.0.0", "Estimates the memory usage of a key.", memory_usage),
];

/// What one keyspace entry costs beside its key and state: the slot in
/// the keyspace table and the index entry that finds it.
const SLOT_OVERHEAD: usize = 48;
/// Allocator bookkeeping per heap block.
const PER_ALLOCATION: usize = 16;

/// The bytes `key` with `state` occupies (see the module docs).
pub fn key_footprint(key: &[u8], state: &KeyState) -> usize {
    let encoded = bincode::serde::encode_to_vec(state, bincode::config::standard())
        .map(|v| v.len())
        .unwrap_or(0);
    let blocks = 1 + state.collections().len() + encoded / 64;
    key.len() + SLOT_OVERHEAD + std::mem::size_of::<KeyState>() + encoded + blocks * PER_ALLOCATION
}

/// `MEMORY USAGE key [SAMPLES count]`: nil for a missing key.
fn memory_usage(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    while let Some(option) = args.next_if_any() {
        if is(option, "samples") && !args.is_done() {
            let samples = int(args.next()?)?;
            if samples < 0 {
                return Err(err(SYNTAX_ERROR));
            }
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    let db = ctx.client.db;
    Ok(match ctx.store.lookup_untouched(db, key) {
        Some(state) => Reply::Integer(key_footprint(key, state) as i64),
        None => Reply::Nil,
    })
}

fn memory_stats(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let field = |k: &str| Reply::Bulk(Bytes::from(k.to_string()));
    let int = |n: usize| Reply::Integer(n as i64);
    let used = memory::used_memory();
    let rss = memory::rss_bytes();
    let backlog = ctx.store.delta_log().bytes();
    let clients = ctx.server.clients.len() * (16 * 1024 + 1024);
    let keys: usize = (0..DB_COUNT).map(|db| ctx.store.dbsize(db)).sum();
    let mut fields = vec![
        (field("peak.allocated"), int(used)),
        (field("total.allocated"), int(used)),
        (field("startup.allocated"), int(0)),
        (field("replication.backlog"), int(backlog)),
        (field("clients.slaves"), int(0)),
        (field("clients.normal"), int(clients)),
        (field("cluster.links"), int(0)),
        (field("aof.buffer"), int(0)),
        (field("lua.caches"), int(0)),
        (field("functions.caches"), int(0)),
    ];
    for db in 0..DB_COUNT {
        let n = ctx.store.dbsize(db);
        if n == 0 {
            continue;
        }
        fields.push((
            field(&format!("db.{db}")),
            Reply::Map(vec![
                (field("overhead.hashtable.main"), int(n * SLOT_OVERHEAD)),
                (field("overhead.hashtable.expires"), int(0)),
                (field("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    let overhead = backlog + clients + keys * SLOT_OVERHEAD;
    let dataset = used.saturating_sub(overhead);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    fields.extend([
        (field("overhead.total"), int(overhead)),
        (field("keys.count"), int(keys)),
        (
            field("keys.bytes-per-key"),
            int(used.checked_div(keys).unwrap_or(0)),
        ),
        (field("dataset.bytes"), int(dataset)),
        (
            field("dataset.percentage"),
            Reply::Double(100.0 * ratio(dataset, used)),
        ),
        (field("peak.percentage"), Reply::Double(100.0)),
        (field("allocator.allocated"), int(used)),
        (field("allocator.active"), int(used)),
        (field("allocator.resident"), int(rss)),
        (field("allocator-fragmentation.ratio"), Reply::Double(1.0)),
        (field("allocator-fragmentation.bytes"), int(0)),
        (
            field("allocator-rss.ratio"),
            Reply::Double(ratio(rss, used)),
        ),
        (field("allocator-rss.bytes"), int(rss.saturating_sub(used))),
        (field("rss-overhead.ratio"), Reply::Double(1.0)),
        (field("rss-overhead.bytes"), int(0)),
        (field("fragmentation"), Reply::Double(ratio(rss, used))),
        (field("fragmentation.bytes"), int(rss.saturating_sub(used))),
    ]);
    Ok(Reply::Map(fields))
}

fn memory_doctor(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let text = if memory::used_memory() < 5 * 1024 * 1024 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
    };
    Ok(Reply::Verbatim(Bytes::from_static(text.as_bytes())))
}

/// The system allocator has no statistics to print (Redis's text for a
/// build without jemalloc).
fn memory_malloc_stats(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Bulk(Bytes::from_static(
        b"Stats not supported for the current allocator",
    )))
}

fn memory_purge(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::ok())
}

fn memory_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Print this help.",
    ]))
}
