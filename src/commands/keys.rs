//! Generic key commands: DEL/UNLINK, EXISTS, TOUCH, TYPE, OBJECT, the EXPIRE
//! family, TTL family, PERSIST, KEYS, SCAN (with TYPE), RANDOMKEY,
//! RENAME(NX) of any type, DBSIZE and FLUSHDB/FLUSHALL.
//!
//! Deletes (and flushes) are observed-removes: they take away what this node
//! has seen, so a concurrent write made elsewhere survives. TTLs are absolute
//! deadlines, so every node expires a key at the same moment.

use bytes::Bytes;

use super::args::{err, err_owned, help_reply, is, text, Args, CmdResult, NO_SUCH_KEY};
use super::flags::{FAST, LOADING, RANDOM, READONLY, STALE, WRITE};
use super::strings::{invalid_expire_time, set_ttl};
use super::typed::{scan_options, scan_reply};
use super::{container_handler, spec, CommandSpec, Context};
use crate::crdt::{Kind, StrValue, TtlChange};
use crate::protocol::Reply;
use crate::store::pattern::glob_match;
use crate::store::DB_COUNT;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, (1, -1, 1), "generic", "1.0.0", "Deletes one or more keys.", del),
    spec("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "4.0.0", "Asynchronously deletes one or more keys.", del),
    spec("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "1.0.0", "Determines whether one or more keys exist.", exists),
    spec("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", touch),
    spec("type", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", "Determines the type of value stored at a key.", key_type),
    spec("expire", -3, WRITE | FAST, (1, 1, 1), "generic", "1.0.0", "Sets the expiration time of a key in seconds.", expire),
    spec("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", pexpire),
    spec("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", expireat),
    spec("pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", pexpireat),
    spec("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", "Returns the expiration time in seconds of a key.", ttl),
    spec("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", pttl),
    spec("expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", expiretime),
    spec("pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", pexpiretime),
    spec("persist", 2, WRITE | FAST, (1, 1, 1), "generic", "2.2.0", "Removes the expiration time of a key.", persist),
    spec("keys", 2, READONLY, (0, 0, 0), "generic", "1.0.0", "Returns all key names that match a pattern.", keys),
    spec("scan", -2, READONLY, (0, 0, 0), "generic", "2.8.0", "Iterates over the key names in the database.", scan),
    spec("randomkey", 1, READONLY | RANDOM, (0, 0, 0), "generic", "1.0.0", "Returns a random key name from the database.", randomkey),
    CommandSpec { name: "object", arity: -2, flags: 0, first_key: 0, last_key: 0, step: 0, group: "generic", since: "2.2.3", summary: "A container for object introspection commands.", handler: container_handler, subcommands: OBJECT_SUBCOMMANDS },
    spec("rename", 3, WRITE, (1, 2, 1), "generic", "1.0.0", "Renames a key and overwrites the destination.", rename),
    spec("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", renamenx),
    spec("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "1.0.0", "Returns the number of keys in the database.", dbsize),
    spec("flushdb", -1, WRITE, (0, 0, 0), "server", "1.0.0", "Removes all keys from the current database.", flushdb),
    spec("flushall", -1, WRITE, (0, 0, 0), "server", "1.0.0", "Removes all keys from all databases.", flushall),
];

#[rustfmt::skip]
static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("encoding", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "Returns the internal encoding of a Redis object.", object_encoding),
    spec("freq", 3, READONLY | RANDOM, (2, 2, 1), "generic", "4.0.0", "Returns the logarithmic access frequency counter of a Redis object.", object_freq),
    spec("idletime", 3, READONLY | RANDOM, (2, 2, 1), "generic", "2.2.3", "Returns the time since the last access to a Redis object.", object_idletime),
    spec("refcount", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "Returns the reference count of a value of a key.", object_refcount),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "generic", "6.2.0", "Returns helpful text about the different subcommands.", object_help),
];

const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn del(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let db = ctx.client.db;
    let removed = args
        .rest()
        .iter()
        .filter(|key| ctx.store.delete_key(db, key))
        .count();
    Ok(Reply::Integer(removed as i64))
}

fn exists(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let db = ctx.client.db;
    let found = args
        .rest()
        .iter()
        .filter(|key| ctx.store.exists(db, key))
        .count();
    Ok(Reply::Integer(found as i64))
}

/// TOUCH: EXISTS that counts as an access (hits, misses and the keys'
/// LRU/LFU data), as Redis's lookupKeyRead does.
fn touch(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let db = ctx.client.db;
    let found = args
        .rest()
        .iter()
        .filter(|key| ctx.store.lookup_read(db, key).is_some())
        .count();
    Ok(Reply::Integer(found as i64))
}

fn key_type(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    let kind = ctx.store.lookup_untouched(db, key).and_then(|s| s.kind());
    Ok(Reply::simple(kind.map_or("none", Kind::name)))
}

fn object_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Print this help.",
    ]))
}

/// OBJECT ENCODING names the representation: strings as Redis would
/// (`int`, `embstr`, `raw`), collections by their CRDT layout.
fn object_encoding(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    let Some(state) = ctx.store.lookup_untouched(db, key) else {
        return Ok(Reply::Nil);
    };
    let name = match state.collection() {
        Some(coll) => coll.encoding(),
        None if state.holds_hll_write() => "raw",
        None => match state.string_value() {
            Some(StrValue::Number(n)) if n.to_i64().is_some() => "int",
            Some(StrValue::Raw(b)) if crate::protocol::parse_integer(b).is_some() => "int",
            Some(v) if v.len() <= 44 => "embstr",
            _ => "raw",
        },
    };
    Ok(Reply::Bulk(Bytes::from_static(name.as_bytes())))
}

/// OBJECT FREQ: the key's LFU counter after decay; tracked only under an
/// LFU policy (Redis's error otherwise). A missing key is nil first.
/// Reading it is no access.
fn object_freq(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    let Some(access) = ctx.store.access_of(db, key) else {
        return Ok(Reply::Nil);
    };
    let config = ctx.store.eviction_config();
    if !config.policy.is_lfu() {
        return Err(err(LFU_NOT_SELECTED));
    }
    let decay = config.lfu_decay_time;
    let now = ctx.store.now_ms();
    Ok(Reply::Integer(access.decayed_counter(now, decay) as i64))
}

/// OBJECT IDLETIME: seconds since the last access by the LRU clock;
/// refused under an LFU policy, as Redis does.
fn object_idletime(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    let Some(access) = ctx.store.access_of(db, key) else {
        return Ok(Reply::Nil);
    };
    if ctx.store.eviction_config().policy.is_lfu() {
        return Err(err(LFU_SELECTED));
    }
    Ok(Reply::Integer(access.idle_secs(ctx.store.now_ms()) as i64))
}

/// OBJECT REFCOUNT: values are never shared between keys, so 1.
fn object_refcount(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    if !ctx.store.exists(db, key) {
        return Ok(Reply::Nil);
    }
    Ok(Reply::Integer(1))
}

// ----- expiry -----

fn expire(ctx: &mut Context, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

fn pexpire(ctx: &mut Context, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

fn expireat(ctx: &mut Context, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Context, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// The NX, XX, GT and LT options of the EXPIRE family.
#[derive(Default)]
struct ExpireConditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Reads the EXPIRE options from the cursor to the end, then refuses
/// incompatible ones, with Redis's texts.
fn expire_conditions(args: &mut Args) -> Result<ExpireConditions, Reply> {
    let mut c = ExpireConditions::default();
    while let Some(option) = args.next_if_any() {
        if is(option, "nx") {
            c.nx = true;
        } else if is(option, "xx") {
            c.xx = true;
        } else if is(option, "gt") {
            c.gt = true;
        } else if is(option, "lt") {
            c.lt = true;
        } else {
            return Err(err_owned(format!(
                "ERR Unsupported option {}",
                text(option)
            )));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if c.gt && c.lt {
        return Err(err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(c)
}

impl ExpireConditions {
    /// Whether a key whose deadline is `current` (`None`: no TTL) may get
    /// `deadline`. No TTL counts as an infinite one for GT/LT.
    fn allow(&self, current: Option<u64>, deadline: i64) -> bool {
        match current {
            None => !(self.xx || self.gt),
            Some(c) => {
                !self.nx && (!self.gt || deadline > c as i64) && (!self.lt || deadline < c as i64)
            }
        }
    }
}

/// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX, XX, GT, LT.
fn expire_generic(
    ctx: &mut Context,
    args: &mut Args,
    unit_ms: i64,
    absolute: bool,
    command: &str,
) -> CmdResult {
    let key = args.key()?;
    let amount = args.int()?;
    let conditions = expire_conditions(args)?;
    let now = ctx.store.now_ms() as i64;
    let invalid = || invalid_expire_time(command);
    let ms = amount.checked_mul(unit_ms).ok_or_else(invalid)?;
    let deadline = if absolute {
        Some(ms)
    } else {
        ms.checked_add(now)
    };
    let deadline = deadline.ok_or_else(invalid)?;
    let db = ctx.client.db;
    let Some(current) = ctx.store.deadline(db, key) else {
        return Ok(Reply::Integer(0));
    };
    if !conditions.allow(current, deadline) {
        return Ok(Reply::Integer(0));
    }
    if deadline <= now {
        ctx.store.delete_key(db, key);
    } else {
        set_ttl(ctx, key, TtlChange::Deadline(deadline as u64));
    }
    Ok(Reply::Integer(1))
}

/// TTL/PTTL/EXPIRETIME/PEXPIRETIME: -2 missing, -1 no expiry, otherwise
/// `show(deadline, now)`.
fn ttl_generic(ctx: &mut Context, args: &mut Args, show: impl Fn(u64, u64) -> i64) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    let now = ctx.store.now_ms();
    Ok(match ctx.store.deadline(db, key) {
        None => Reply::Integer(-2),
        Some(None) => Reply::Integer(-1),
        Some(Some(deadline)) => Reply::Integer(show(deadline, now)),
    })
}

fn ttl(ctx: &mut Context, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, |d, now| {
        ((d.saturating_sub(now) + 500) / 1000) as i64
    })
}

fn pttl(ctx: &mut Context, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, |d, now| d.saturating_sub(now) as i64)
}

fn expiretime(ctx: &mut Context, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, |d, _| (d / 1000) as i64)
}

fn pexpiretime(ctx: &mut Context, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, |d, _| d as i64)
}

fn persist(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    match ctx.store.deadline(db, key) {
        Some(Some(_)) => {
            set_ttl(ctx, key, TtlChange::Persist);
            Ok(Reply::Integer(1))
        }
        _ => Ok(Reply::Integer(0)),
    }
}

// ----- iteration -----

fn keys(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let pattern = args.next()?;
    let db = ctx.client.db;
    let match_all = pattern.as_ref() == b"*";
    let found = ctx
        .store
        .keys_where(db, |k| match_all || glob_match(pattern, k, false));
    Ok(Reply::Array(found.into_iter().map(Reply::Bulk).collect()))
}

fn scan(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let options = scan_options(args, true)?;
    let db = ctx.client.db;
    let (next, found) = ctx
        .store
        .scan(db, options.cursor, options.count, |key, state| {
            let type_ok = options.type_filter.is_none_or(|t| {
                state
                    .kind()
                    .is_some_and(|k| k.name().as_bytes().eq_ignore_ascii_case(t))
            });
            type_ok && options.matches(key)
        });
    Ok(scan_reply(
        next,
        found.into_iter().map(Reply::Bulk).collect(),
    ))
}

fn randomkey(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let db = ctx.client.db;
    Ok(ctx.store.random_key(db).map_or(Reply::Nil, Reply::Bulk))
}

// ----- rename -----

/// Moves the value (of any type) and deadline of `from` to `to`,
/// overwriting `to`; "no such key" if `from` is missing. The destination
/// gets fresh dots: it is a new write there, while the source is an
/// observed delete.
fn move_key(ctx: &mut Context, from: &Bytes, to: &Bytes) -> Result<(), Reply> {
    let db = ctx.client.db;
    let source = ctx
        .store
        .lookup(db, from)
        .cloned()
        .ok_or_else(|| err(NO_SUCH_KEY))?;
    if from == to {
        return Ok(());
    }
    ctx.store.delete_key(db, from);
    super::copy::write_copy(ctx, db, to, &source);
    Ok(())
}

fn rename(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let from = args.key()?;
    let to = args.key()?;
    move_key(ctx, from, to)?;
    Ok(Reply::ok())
}

fn renamenx(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let from = args.key()?;
    let to = args.key()?;
    let db = ctx.client.db;
    if !ctx.store.exists(db, from) {
        return Err(err(NO_SUCH_KEY));
    }
    if ctx.store.exists(db, to) {
        return Ok(Reply::Integer(0));
    }
    move_key(ctx, from, to)?;
    Ok(Reply::Integer(1))
}

// ----- databases -----

fn dbsize(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(ctx.store.dbsize(ctx.client.db) as i64))
}

/// FLUSHDB/FLUSHALL accept ASYNC or SYNC, and nothing else. Returns
/// whether the flushed memory is freed lazily: ASYNC, or neither word and
/// `lazyfree-lazy-user-flush yes`, as in Redis.
fn read_flush_mode(ctx: &Context, args: &mut Args) -> Result<bool, Reply> {
    let lazy = if args.is_done() {
        None
    } else {
        Some(args.one_of(&[("async", true), ("sync", false)])?)
    };
    args.finish()?;
    Ok(lazy.unwrap_or_else(|| {
        ctx.server
            .config
            .read()
            .get("lazyfree-lazy-user-flush")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    }))
}

/// Frees what a flush removed: on the lazyfree thread, or here and then
/// hands the freed pages back to the OS from that thread.
fn dispose_flushed(flushed: Vec<crate::store::FlushedDb>, lazy: bool) {
    use crate::store::lazyfree;
    let objects: usize = flushed.iter().map(|f| f.objects()).sum();
    if objects == 0 {
        return;
    }
    if lazy {
        lazyfree::free_later(flushed, objects);
    } else {
        drop(flushed);
        lazyfree::release_memory_later();
    }
}

fn flushdb(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let lazy = read_flush_mode(ctx, args)?;
    let flushed = ctx.store.flush_db_detached(ctx.client.db);
    dispose_flushed(vec![flushed], lazy);
    Ok(Reply::ok())
}

fn flushall(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let lazy = read_flush_mode(ctx, args)?;
    let flushed = (0..DB_COUNT)
        .map(|db| ctx.store.flush_db_detached(db))
        .collect();
    dispose_flushed(flushed, lazy);
    Ok(Reply::ok())
}
