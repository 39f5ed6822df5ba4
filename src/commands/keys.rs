//! Generic key commands: DEL/UNLINK, EXISTS, TOUCH, TYPE, the EXPIRE family,
//! TTL family, PERSIST, KEYS, SCAN, RANDOMKEY, RENAME(NX), DBSIZE and
//! FLUSHDB/FLUSHALL.
//!
//! Deletes (and flushes) are observed-removes: they take away what this node
//! has seen, so a concurrent write made elsewhere survives. TTLs are absolute
//! deadlines, so every node expires a key at the same moment.

use bytes::Bytes;

use super::args::{self, err, err_owned, int, is, SYNTAX_ERROR};
use super::flags::{FAST, RANDOM, READONLY, WRITE};
use super::strings::{read_string_for_write, set_ttl, write_value};
use super::{spec, CommandSpec, Context};
use crate::crdt::TtlChange;
use crate::protocol::Reply;
use crate::store::pattern::glob_match;
use crate::store::DB_COUNT;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, (1, -1, 1), "generic", "1.0.0", "Deletes one or more keys.", del),
    spec("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "4.0.0", "Asynchronously deletes one or more keys.", del),
    spec("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "1.0.0", "Determines whether one or more keys exist.", exists),
    spec("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", exists),
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
    spec("rename", 3, WRITE, (1, 2, 1), "generic", "1.0.0", "Renames a key and overwrites the destination.", rename),
    spec("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", renamenx),
    spec("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "1.0.0", "Returns the number of keys in the database.", dbsize),
    spec("flushdb", -1, WRITE, (0, 0, 0), "server", "1.0.0", "Removes all keys from the current database.", flushdb),
    spec("flushall", -1, WRITE, (0, 0, 0), "server", "1.0.0", "Removes all keys from all databases.", flushall),
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
    let name = if ctx.store.exists(db, &args[1]) {
        "string"
    } else {
        "none"
    };
    Reply::simple(name)
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
    let Some(cursor) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return err("ERR invalid cursor");
    };
    let mut pattern: Option<&Bytes> = None;
    let mut count = 10usize;
    let mut type_filter: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return err(SYNTAX_ERROR);
        }
        let value = &args[i + 1];
        if is(&args[i], "match") {
            pattern = Some(value);
        } else if is(&args[i], "count") {
            match int(value) {
                Ok(n) if n >= 1 => count = n as usize,
                Ok(_) => return err(SYNTAX_ERROR),
                Err(e) => return e,
            }
        } else if is(&args[i], "type") {
            type_filter = Some(value);
        } else {
            return err(SYNTAX_ERROR);
        }
        i += 2;
    }
    let db = ctx.client.db;
    let (next, found) = ctx.store.scan(db, cursor, count, |key, _state| {
        let type_ok = type_filter.is_none_or(|t| is(t, "string"));
        let match_ok = pattern.is_none_or(|p| p.as_ref() == b"*" || glob_match(p, key, false));
        type_ok && match_ok
    });
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(found.into_iter().map(Reply::Bulk).collect()),
    ])
}

fn randomkey(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    ctx.store.random_key(db).map_or(Reply::Nil, Reply::Bulk)
}

// ----- rename -----

/// Moves the value (and deadline) of `from` to `to`; false if `from` is
/// missing.
fn move_key(ctx: &mut Context, from: &Bytes, to: &Bytes) -> Result<(), Reply> {
    let value = read_string_for_write(ctx, from)?.ok_or_else(|| err(args::NO_SUCH_KEY))?;
    if from == to {
        return Ok(());
    }
    let db = ctx.client.db;
    let deadline = ctx.store.deadline(db, from).flatten();
    ctx.store.delete_key(db, from);
    let ttl = deadline.map_or(TtlChange::Clear, TtlChange::Deadline);
    write_value(ctx, to, value, ttl);
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
