//! Generic key commands: DEL/UNLINK, EXISTS, TOUCH, TYPE, OBJECT, the EXPIRE
//! family, TTL family, PERSIST, KEYS, SCAN (with TYPE), RANDOMKEY,
//! RENAME(NX) of any type, DBSIZE and FLUSHDB/FLUSHALL.
//!
//! Deletes (and flushes) are observed-removes: they take away what this node
//! has seen, so a concurrent write made elsewhere survives. TTLs are absolute
//! deadlines, so every node expires a key at the same moment.

use bytes::Bytes;

use super::args::{self, err, err_owned, help_reply, int, is, SYNTAX_ERROR};
use super::flags::{FAST, LOADING, RANDOM, READONLY, STALE, WRITE};
use super::strings::set_ttl;
use super::typed::{scan_options, scan_reply};
use super::{container_handler, spec, CommandSpec, Context};
use crate::crdt::{KeyDelta, KeyState, Kind, StrValue, TtlChange};
use crate::protocol::Reply;
use crate::store::pattern::glob_match;
use crate::store::DB_COUNT;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, (1, -1, 1), "generic", "1.0.0", "Deletes one or more keys.", legacy!(del)),
    spec("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "4.0.0", "Asynchronously deletes one or more keys.", legacy!(del)),
    spec("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "1.0.0", "Determines whether one or more keys exist.", legacy!(exists)),
    spec("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", legacy!(exists)),
    spec("type", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", "Determines the type of value stored at a key.", legacy!(key_type)),
    spec("expire", -3, WRITE | FAST, (1, 1, 1), "generic", "1.0.0", "Sets the expiration time of a key in seconds.", legacy!(expire)),
    spec("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", legacy!(pexpire)),
    spec("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", legacy!(expireat)),
    spec("pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", legacy!(pexpireat)),
    spec("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", "Returns the expiration time in seconds of a key.", legacy!(ttl)),
    spec("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", legacy!(pttl)),
    spec("expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", legacy!(expiretime)),
    spec("pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", legacy!(pexpiretime)),
    spec("persist", 2, WRITE | FAST, (1, 1, 1), "generic", "2.2.0", "Removes the expiration time of a key.", legacy!(persist)),
    spec("keys", 2, READONLY, (0, 0, 0), "generic", "1.0.0", "Returns all key names that match a pattern.", legacy!(keys)),
    spec("scan", -2, READONLY, (0, 0, 0), "generic", "2.8.0", "Iterates over the key names in the database.", legacy!(scan)),
    spec("randomkey", 1, READONLY | RANDOM, (0, 0, 0), "generic", "1.0.0", "Returns a random key name from the database.", legacy!(randomkey)),
    CommandSpec { name: "object", arity: -2, flags: 0, first_key: 0, last_key: 0, step: 0, group: "generic", since: "2.2.3", summary: "A container for object introspection commands.", handler: container_handler, subcommands: OBJECT_SUBCOMMANDS },
    spec("rename", 3, WRITE, (1, 2, 1), "generic", "1.0.0", "Renames a key and overwrites the destination.", legacy!(rename)),
    spec("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", legacy!(renamenx)),
    spec("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "1.0.0", "Returns the number of keys in the database.", legacy!(dbsize)),
    spec("flushdb", -1, WRITE, (0, 0, 0), "server", "1.0.0", "Removes all keys from the current database.", legacy!(flushdb)),
    spec("flushall", -1, WRITE, (0, 0, 0), "server", "1.0.0", "Removes all keys from all databases.", legacy!(flushall)),
];

#[rustfmt::skip]
static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("encoding", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "Returns the internal encoding of a Redis object.", legacy!(object_encoding)),
    spec("freq", 3, READONLY | RANDOM, (2, 2, 1), "generic", "4.0.0", "Returns the logarithmic access frequency counter of a Redis object.", legacy!(object_stat)),
    spec("idletime", 3, READONLY | RANDOM, (2, 2, 1), "generic", "2.2.3", "Returns the time since the last access to a Redis object.", legacy!(object_stat)),
    spec("refcount", 3, READONLY, (2, 2, 1), "generic", "2.2.3", "Returns the reference count of a value of a key.", legacy!(object_stat)),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "generic", "6.2.0", "Returns helpful text about the different subcommands.", legacy!(object_help)),
];

fn del(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let removed = args[1..]
        .iter()
        .filter(|key| ctx.store.delete_key(db, key))
        .count();
    Reply::Integer(removed as i64)
}

fn exists(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let found = args[1..]
        .iter()
        .filter(|key| ctx.store.exists(db, key))
        .count();
    Reply::Integer(found as i64)
}

fn key_type(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let kind = ctx.store.lookup(db, &args[1]).and_then(|s| s.kind());
    Reply::simple(kind.map_or("none", Kind::name))
}

fn object_help(_ctx: &mut Context, _args: &[Bytes]) -> Reply {
    help_reply(&[
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
    ])
}

/// OBJECT ENCODING names the representation: strings as Redis would
/// (`int`, `embstr`, `raw`), collections by their CRDT layout.
fn object_encoding(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let Some(state) = ctx.store.lookup(db, &args[2]) else {
        return Reply::Nil;
    };
    let name = match state.collection() {
        Some(coll) => coll.encoding(),
        None => match state.string_value() {
            Some(StrValue::Number(n)) if n.to_i64().is_some() => "int",
            Some(StrValue::Raw(b)) if crate::protocol::parse_integer(b).is_some() => "int",
            Some(v) if v.len() <= 44 => "embstr",
            _ => "raw",
        },
    };
    Reply::Bulk(Bytes::from_static(name.as_bytes()))
}

/// OBJECT REFCOUNT/IDLETIME/FREQ: cordis keeps no access metadata, so it
/// answers as a fresh Redis object would (refcount 1, idle 0) and, like
/// Redis without an LFU policy, refuses FREQ.
fn object_stat(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    if !ctx.store.exists(db, &args[2]) {
        return Reply::Nil;
    }
    if args[1].eq_ignore_ascii_case(b"freq") {
        return err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    let refcount = args[1].eq_ignore_ascii_case(b"refcount");
    Reply::Integer(refcount as i64)
}

// ----- expiry -----

fn expire(ctx: &mut Context, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, false, "expire")
}

fn pexpire(ctx: &mut Context, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, false, "pexpire")
}

fn expireat(ctx: &mut Context, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Context, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX, XX, GT, LT.
fn expire_generic(
    ctx: &mut Context,
    args: &[Bytes],
    unit_ms: i64,
    absolute: bool,
    command: &str,
) -> Reply {
    let amount = match int(&args[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        if is(option, "nx") {
            nx = true;
        } else if is(option, "xx") {
            xx = true;
        } else if is(option, "gt") {
            gt = true;
        } else if is(option, "lt") {
            lt = true;
        } else {
            return err_owned(format!("ERR Unsupported option {}", args::text(option)));
        }
    }
    if nx && (xx || gt || lt) {
        return err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return err("ERR GT and LT options at the same time are not compatible");
    }
    let now = ctx.store.now_ms() as i64;
    let invalid = || err_owned(format!("ERR invalid expire time in '{command}' command"));
    let Some(ms) = amount.checked_mul(unit_ms) else {
        return invalid();
    };
    let deadline = if absolute {
        Some(ms)
    } else {
        ms.checked_add(now)
    };
    let Some(deadline) = deadline else {
        return invalid();
    };
    let db = ctx.client.db;
    let Some(current) = ctx.store.deadline(db, &args[1]) else {
        return Reply::Integer(0);
    };
    // No TTL counts as an infinite one for GT/LT.
    let allowed = match current {
        None => !(xx || gt),
        Some(c) => !nx && (!gt || deadline > c as i64) && (!lt || deadline < c as i64),
    };
    if !allowed {
        return Reply::Integer(0);
    }
    if deadline <= now {
        ctx.store.delete_key(db, &args[1]);
    } else {
        set_ttl(ctx, &args[1], TtlChange::Deadline(deadline as u64));
    }
    Reply::Integer(1)
}

/// TTL/PTTL/EXPIRETIME/PEXPIRETIME: -2 missing, -1 no expiry.
fn ttl_generic(ctx: &mut Context, key: &[u8], show: impl Fn(u64, u64) -> i64) -> Reply {
    let db = ctx.client.db;
    let now = ctx.store.now_ms();
    match ctx.store.deadline(db, key) {
        None => Reply::Integer(-2),
        Some(None) => Reply::Integer(-1),
        Some(Some(deadline)) => Reply::Integer(show(deadline, now)),
    }
}

fn ttl(ctx: &mut Context, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |d, now| {
        ((d.saturating_sub(now) + 500) / 1000) as i64
    })
}

fn pttl(ctx: &mut Context, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |d, now| d.saturating_sub(now) as i64)
}

fn expiretime(ctx: &mut Context, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |d, _| (d / 1000) as i64)
}

fn pexpiretime(ctx: &mut Context, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |d, _| d as i64)
}

fn persist(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    match ctx.store.deadline(db, &args[1]) {
        Some(Some(_)) => {
            set_ttl(ctx, &args[1], TtlChange::Persist);
            Reply::Integer(1)
        }
        _ => Reply::Integer(0),
    }
}

// ----- iteration -----

fn keys(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let pattern = &args[1];
    let match_all = pattern.as_ref() == b"*";
    let found = ctx
        .store
        .keys_where(db, |k| match_all || glob_match(pattern, k, false));
    Reply::Array(found.into_iter().map(Reply::Bulk).collect())
}

fn scan(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let options = match scan_options(&mut super::Args::new(args, 1), true) {
        Ok(o) => o,
        Err(e) => return e,
    };
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
    scan_reply(next, found.into_iter().map(Reply::Bulk).collect())
}

fn randomkey(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    ctx.store.random_key(db).map_or(Reply::Nil, Reply::Bulk)
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
        .ok_or_else(|| err(args::NO_SUCH_KEY))?;
    if from == to {
        return Ok(());
    }
    ctx.store.delete_key(db, from);
    let ttl = source
        .deadline()
        .map_or(TtlChange::Clear, TtlChange::Deadline);
    ctx.store.write_key(db, to, |state, w| {
        let ts = w.ts();
        let mut next_dot = || w.next_dot();
        let delta = if state.is_empty() {
            KeyDelta::default()
        } else {
            state.delta_delete(ts, &mut next_dot)
        };
        let delta = delta
            .then(source.delta_copy_value(ts, &mut next_dot))
            .then(KeyState::new().delta_ttl(ttl, &mut next_dot));
        (delta, ())
    });
    Ok(())
}

fn rename(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match move_key(ctx, &args[1], &args[2]) {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

fn renamenx(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    if !ctx.store.exists(db, &args[1]) {
        return err(args::NO_SUCH_KEY);
    }
    if ctx.store.exists(db, &args[2]) {
        return Reply::Integer(0);
    }
    match move_key(ctx, &args[1], &args[2]) {
        Ok(()) => Reply::Integer(1),
        Err(e) => e,
    }
}

// ----- databases -----

fn dbsize(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    Reply::Integer(ctx.store.dbsize(ctx.client.db) as i64)
}

/// FLUSHDB/FLUSHALL accept ASYNC or SYNC (both run at once here).
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => is(&args[1], "async") || is(&args[1], "sync"),
        _ => false,
    }
}

fn flushdb(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return err(SYNTAX_ERROR);
    }
    ctx.store.flush_db(ctx.client.db);
    Reply::ok()
}

fn flushall(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return err(SYNTAX_ERROR);
    }
    for db in 0..DB_COUNT {
        ctx.store.flush_db(db);
    }
    Reply::ok()
}
