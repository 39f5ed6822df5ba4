//! DUMP and RESTORE: a key's value in Redis's own serialization (RDB
//! version 10 encodings with the version and CRC-64 footer, see
//! [`crate::rdb`]), so payloads move between cordis and redis-server both
//! ways.
//!
//! Across regions RESTORE is a whole-value write like SET or COPY with
//! REPLACE: whatever the key held here is an observed delete, the decoded
//! value is written under fresh dots, and its deadline is absolute, so
//! peers apply the same effect (docs/semantics.md, "DUMP and RESTORE").
//! IDLETIME and FREQ only shape this node's eviction metadata, which is
//! never replicated.
//!
//! MIGRATE checks its arguments and answers NOKEY as Redis does when none
//! of its keys exist; moving a key that exists would need a connection to
//! another server, which handlers never open, so it is refused (DUMP on
//! this node and RESTORE on the other do the same).

use bytes::Bytes;

use super::args::{err, int, is, Args, CmdResult, SYNTAX_ERROR};
use super::flags::{DENYOOM, MOVABLEKEYS, WRITE};
use super::{spec, CommandSpec, Context};
use crate::crdt::{KeyDelta, KeyState, TtlChange};
use crate::protocol::Reply;
use crate::rdb::{self, keystate, EncodeOptions, PayloadError};
use crate::store::evict::{lru_clock, Access, LRU_CLOCK_MAX};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("dump", 2, 0, (1, 1, 1), "generic", "2.6.0", "Returns a serialized representation of the value stored at a key.", dump),
    spec("restore", -4, WRITE | DENYOOM, (1, 1, 1), "generic", "2.6.0", "Creates a key from the serialized representation of a value.", restore),
    spec("migrate", -6, WRITE | MOVABLEKEYS, (3, 3, 1), "generic", "2.6.0", "Atomically transfers a key from one Redis instance to another.", migrate),
];

const MIGRATE_KEYS_NOT_EMPTY: &str =
    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
const MIGRATE_UNSUPPORTED: &str = "ERR MIGRATE of existing keys is not supported by cordis: it does not connect to other servers (use DUMP here and RESTORE there)";

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key ...]: Redis's
/// argument checks, NOKEY when no key exists, a refusal otherwise.
fn migrate(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let argv = args.argv();
    let mut keys = &argv[3..4];
    let mut at = 6;
    while at < argv.len() {
        let word = &argv[at];
        let more = argv.len() - 1 - at;
        if is(word, "copy") || is(word, "replace") {
            at += 1;
        } else if is(word, "auth") {
            if more < 1 {
                return Err(err(SYNTAX_ERROR));
            }
            at += 2;
        } else if is(word, "auth2") {
            if more < 2 {
                return Err(err(SYNTAX_ERROR));
            }
            at += 3;
        } else if is(word, "keys") {
            if !argv[3].is_empty() {
                return Err(err(MIGRATE_KEYS_NOT_EMPTY));
            }
            keys = &argv[at + 1..];
            break;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    int(&argv[5])?; // timeout
    int(&argv[4])?; // destination db
    let db = ctx.client.db;
    if !keys.iter().any(|key| ctx.store.exists(db, key)) {
        return Ok(Reply::simple("NOKEY"));
    }
    Err(err(MIGRATE_UNSUPPORTED))
}

/// MIGRATE's keys: the key argument, or what follows KEYS (none when KEYS
/// comes with a non-empty key argument, as Redis's getkeys says).
pub fn migrate_key_positions(argv: &[Bytes]) -> Option<Vec<usize>> {
    let mut at = 6;
    while at < argv.len() {
        let word = &argv[at];
        if is(word, "keys") {
            if !argv.get(3)?.is_empty() {
                return None;
            }
            return Some((at + 1..argv.len()).collect());
        }
        at += if is(word, "auth") {
            2
        } else if is(word, "auth2") {
            3
        } else {
            1
        };
    }
    (argv.len() > 3).then(|| vec![3])
}

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
const INVALID_TTL: &str = "ERR Invalid TTL value, must be >= 0";
const INVALID_IDLETIME: &str = "ERR Invalid IDLETIME value, must be >= 0";
const INVALID_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_DATA: &str = "ERR Bad data format";

/// The encoding limits Redis would use with this node's `*-max-*`
/// settings, so a DUMP looks like redis-server's for the same config.
fn encode_options(ctx: &Context) -> EncodeOptions {
    let config = ctx.server.config.read();
    let defaults = EncodeOptions::default();
    let size = |name: &str, default: usize| {
        config
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    EncodeOptions {
        hash_max_listpack_entries: size(
            "hash-max-listpack-entries",
            defaults.hash_max_listpack_entries,
        ),
        hash_max_listpack_value: size("hash-max-listpack-value", defaults.hash_max_listpack_value),
        set_max_intset_entries: size("set-max-intset-entries", defaults.set_max_intset_entries),
        zset_max_listpack_entries: size(
            "zset-max-listpack-entries",
            defaults.zset_max_listpack_entries,
        ),
        zset_max_listpack_value: size("zset-max-listpack-value", defaults.zset_max_listpack_value),
        list_max_listpack_size: config
            .get("list-max-listpack-size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(defaults.list_max_listpack_size),
        stream_node_max_bytes: size("stream-node-max-bytes", defaults.stream_node_max_bytes),
        stream_node_max_entries: size("stream-node-max-entries", defaults.stream_node_max_entries),
        compress: config.get("rdbcompression").is_none_or(|v| v == "yes"),
    }
}

/// `DUMP key`: the payload, or nil for a missing key.
fn dump(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let options = encode_options(ctx);
    let db = ctx.client.db;
    let state = ctx.store.lookup_read(db, key);
    let Some(value) = state.and_then(keystate::value_of) else {
        return Ok(Reply::Nil);
    };
    Ok(Reply::Bulk(Bytes::from(rdb::dump_payload(
        &value, &options,
    ))))
}

/// RESTORE's eviction hint: only one of IDLETIME and FREQ may be given.
#[derive(Clone, Copy)]
enum AccessHint {
    IdleSecs(i64),
    Freq(u8),
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`,
/// checking in Redis's order: options, existing key, TTL, footer, value.
fn restore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let ttl_arg = args.next()?;
    let payload = args.next()?;
    let (mut replace, mut absttl, mut hint) = (false, false, None);
    while let Some(option) = args.next_if_any() {
        let has_value = args.remaining() >= 1;
        if is(option, "replace") {
            replace = true;
        } else if is(option, "absttl") {
            absttl = true;
        } else if is(option, "idletime") && has_value && !matches!(hint, Some(AccessHint::Freq(_)))
        {
            let idle = args.int()?;
            if idle < 0 {
                return Err(err(INVALID_IDLETIME));
            }
            hint = Some(AccessHint::IdleSecs(idle));
        } else if is(option, "freq") && has_value && !matches!(hint, Some(AccessHint::IdleSecs(_)))
        {
            let freq = args.int()?;
            if !(0..=255).contains(&freq) {
                return Err(err(INVALID_FREQ));
            }
            hint = Some(AccessHint::Freq(freq as u8));
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    let db = ctx.client.db;
    if !replace && ctx.store.lookup(db, key).is_some() {
        return Err(err(BUSYKEY));
    }
    let ttl = int(ttl_arg)?;
    if ttl < 0 {
        return Err(err(INVALID_TTL));
    }
    let value = match rdb::parse_dump_payload(payload, false) {
        Ok(value) => value,
        Err(PayloadError::VersionOrChecksum) => return Err(err(BAD_PAYLOAD)),
        Err(PayloadError::BadData(_)) => return Err(err(BAD_DATA)),
    };
    let now = ctx.store.now_ms();
    let deadline = match (ttl, absttl) {
        (0, _) => None,
        (ttl, true) => Some(ttl as u64),
        (ttl, false) => Some(now.saturating_add(ttl as u64)),
    };
    if deadline.is_some_and(|d| d <= now) {
        // Already expired: Redis deletes what REPLACE would overwrite and
        // stores nothing.
        if replace {
            ctx.store.delete_key(db, key);
        }
        return Ok(Reply::ok());
    }
    let ttl_change = deadline.map_or(TtlChange::Clear, TtlChange::Deadline);
    ctx.store.write_key(db, key, |state, w| {
        let ts = w.ts();
        let mut next_dot = || w.next_dot();
        let delta = if state.is_empty() {
            KeyDelta::default()
        } else {
            state.delta_delete(ts, &mut next_dot)
        };
        let delta = delta
            .then(keystate::delta_for(value, ts, &mut next_dot))
            .then(KeyState::new().delta_ttl(ttl_change, &mut next_dot));
        (delta, ())
    });
    if let Some(hint) = hint {
        apply_access_hint(ctx, db, key, hint);
    }
    Ok(Reply::ok())
}

/// Redis's `objectSetLRUOrLFU`: FREQ sets the LFU counter under an LFU
/// policy, IDLETIME backdates the LRU clock under any other; the hint
/// that does not fit the policy is ignored.
fn apply_access_hint(ctx: &mut Context, db: usize, key: &[u8], hint: AccessHint) {
    let now = ctx.store.now_ms();
    let lfu = ctx.store.eviction_config().policy.is_lfu();
    let Some(current) = ctx.store.access_of(db, key) else {
        return;
    };
    let clock_now = lru_clock(now) as i64;
    let access = match hint {
        AccessHint::Freq(freq) if lfu => (lru_clock(now) << 8) | freq as u32,
        AccessHint::IdleSecs(idle) if !lfu => {
            let mut clock = clock_now - idle.min(LRU_CLOCK_MAX as i64 + 1);
            if clock < 0 {
                // Idle longer than the clock can tell: Redis's half-range.
                clock = (clock_now + (LRU_CLOCK_MAX / 2) as i64) % LRU_CLOCK_MAX as i64;
            }
            ((clock as u32) << 8) | current.counter() as u32
        }
        _ => return,
    };
    ctx.store.set_access_of(db, key, Access(access));
}
