//! String and counter commands: GET/SET and friends, ranges, APPEND, and
//! INCR/DECR/INCRBY/DECRBY/INCRBYFLOAT.
//!
//! Every string key is one CRDT (see `crdt::key`): SET-like writes are LWW
//! base writes, increments are per-replica runs that concurrent writers all
//! count, and APPEND/SETRANGE rewrite the whole value (LWW). NX/XX and
//! SETNX/MSETNX are checked against this node's state only: they are not a
//! global lock across regions (docs/semantics.md).

use bytes::Bytes;

use super::args::{self, err, err_owned, int, is, owned, SYNTAX_ERROR, WRONGTYPE};
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{spec, CommandSpec, Context};
use crate::crdt::number::{parse_decimal, Amount, DecimalError};
use crate::crdt::{KeyDelta, KeyState, StrValue, TtlChange};
use crate::protocol::{parse_integer, Reply};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, (1, 1, 1), "string", "1.0.0", "Returns the string value of a key.", legacy!(get)),
    spec("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", legacy!(set)),
    spec("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", legacy!(setnx)),
    spec("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", legacy!(setex)),
    spec("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", legacy!(psetex)),
    spec("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", legacy!(getset)),
    spec("getdel", 2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", "Returns the string value of a key after deleting the key.", legacy!(getdel)),
    spec("getex", -2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", legacy!(getex)),
    spec("mget", -2, READONLY | FAST, (1, -1, 1), "string", "1.0.0", "Atomically returns the string values of one or more keys.", legacy!(mget)),
    spec("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", legacy!(mset)),
    spec("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", legacy!(msetnx)),
    spec("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", legacy!(append)),
    spec("strlen", 2, READONLY | FAST, (1, 1, 1), "string", "2.2.0", "Returns the length of a string value.", legacy!(strlen)),
    spec("getrange", 4, READONLY, (1, 1, 1), "string", "2.4.0", "Returns a substring of the string stored at a key.", legacy!(getrange)),
    spec("substr", 4, READONLY, (1, 1, 1), "string", "1.0.0", "Returns a substring from a string value.", legacy!(getrange)),
    spec("setrange", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", legacy!(setrange)),
    spec("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", legacy!(incr)),
    spec("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", legacy!(decr)),
    spec("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", legacy!(incrby)),
    spec("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", legacy!(decrby)),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", legacy!(incrbyfloat)),
];

// ----- shared helpers -----

/// The value of a visible string key (`None` if absent), for read
/// commands: counts a keyspace hit or miss; WRONGTYPE for other types.
pub(crate) fn read_string(ctx: &mut Context, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let db = ctx.client.db;
    string_of(ctx.store.lookup_read(db, key))
}

/// The string value of a key's state, or WRONGTYPE.
fn string_of(state: Option<&KeyState>) -> Result<Option<Bytes>, Reply> {
    match state {
        None => Ok(None),
        Some(state) if state.is_collection() => Err(err(WRONGTYPE)),
        Some(state) => Ok(state.string_value().map(|v| v.to_bytes())),
    }
}

/// Like [`read_string`] for commands that read in order to write (APPEND,
/// SETRANGE, RENAME): Redis counts no hit or miss for those.
pub(crate) fn read_string_for_write(ctx: &mut Context, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let db = ctx.client.db;
    string_of(ctx.store.lookup(db, key))
}

/// Replaces the value of `key`.
pub(crate) fn write_value(ctx: &mut Context, key: &[u8], value: Bytes, ttl: TtlChange) {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        let ts = w.ts();
        (state.delta_set(value, ts, ttl, &mut || w.next_dot()), ())
    });
}

fn bulk_or_nil(value: Option<Bytes>) -> Reply {
    value.map_or(Reply::Nil, Reply::Bulk)
}

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpiryOption {
    Unchanged,
    /// Absolute deadline in Unix ms.
    At(u64),
    KeepTtl,
    Persist,
}

/// Turns EX/PX/EXAT/PXAT and its number into an absolute deadline, with
/// Redis's "invalid expire time" error for non-positive or overflowing
/// values.
fn deadline_from(unit: &[u8], value: &[u8], now_ms: u64, command: &str) -> Result<u64, Reply> {
    let n = int(value)?;
    let invalid = || err_owned(format!("ERR invalid expire time in '{command}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let n = n as u64;
    let ms = if is(unit, "ex") || is(unit, "exat") {
        n.checked_mul(1000)
            .filter(|v| *v <= i64::MAX as u64)
            .ok_or_else(invalid)?
    } else {
        n
    };
    if is(unit, "ex") || is(unit, "px") {
        now_ms
            .checked_add(ms)
            .filter(|v| *v <= i64::MAX as u64)
            .ok_or_else(invalid)
    } else {
        Ok(ms)
    }
}

fn is_expiry_unit(arg: &[u8]) -> bool {
    is(arg, "ex") || is(arg, "px") || is(arg, "exat") || is(arg, "pxat")
}

/// The options of SET (`for_set`) or GETEX, parsed the way Redis's
/// `parseExtendedStringArgumentsOrReply` does: an option may repeat (the
/// last EX/PX/... value wins), conflicting options are a syntax error, and
/// the expire value is only checked once every option has parsed.
#[derive(Default)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expiry unit keyword and its value.
    expire: Option<(&'a [u8], &'a [u8])>,
}

fn parse_string_options(args: &[Bytes], for_set: bool) -> Result<StringOptions<'_>, Reply> {
    let mut o = StringOptions::default();
    let mut i = if for_set { 3 } else { 2 };
    while i < args.len() {
        let a: &[u8] = &args[i];
        let next = args.get(i + 1);
        if for_set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is(a, "get") {
            o.get = true;
        } else if for_set && is(a, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(a, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else if is_expiry_unit(a)
            && !o.keepttl
            && !o.persist
            && o.expire
                .is_none_or(|(unit, _)| unit.eq_ignore_ascii_case(a))
        {
            let Some(value) = next else {
                return Err(err(SYNTAX_ERROR));
            };
            o.expire = Some((a, value));
            i += 1;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
        i += 1;
    }
    Ok(o)
}

impl StringOptions<'_> {
    /// The expiry these options ask for, with the expire value validated.
    fn expiry(&self, now_ms: u64, command: &str) -> Result<ExpiryOption, Reply> {
        Ok(match self.expire {
            Some((unit, value)) => ExpiryOption::At(deadline_from(unit, value, now_ms, command)?),
            None if self.keepttl => ExpiryOption::KeepTtl,
            None if self.persist => ExpiryOption::Persist,
            None => ExpiryOption::Unchanged,
        })
    }
}

// ----- GET / SET family -----

fn get(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read_string(ctx, &args[1]) {
        Ok(v) => bulk_or_nil(v),
        Err(e) => e,
    }
}

#[derive(PartialEq, Eq)]
enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

fn set(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let now = ctx.store.now_ms();
    let (options, expiry) = match parse_string_options(args, true).and_then(|o| {
        let expiry = o.expiry(now, "set")?;
        Ok((o, expiry))
    }) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let condition = if options.nx {
        Condition::IfAbsent
    } else if options.xx {
        Condition::IfPresent
    } else {
        Condition::Always
    };
    let return_old = options.get;
    let key = &args[1];
    // Plain SET reads nothing (and, like Redis, counts no keyspace hit or
    // miss); GET needs the old value, NX/XX only its existence.
    let db = ctx.client.db;
    let (old, exists) = if return_old {
        match read_string(ctx, key) {
            Ok(v) => {
                let exists = v.is_some();
                (v, exists)
            }
            Err(e) => return e,
        }
    } else if condition != Condition::Always {
        (None, ctx.store.exists(db, key))
    } else {
        (None, false)
    };
    let proceed = match condition {
        Condition::Always => true,
        Condition::IfAbsent => !exists,
        Condition::IfPresent => exists,
    };
    let reply_for = |old: Option<Bytes>, done: bool| {
        if return_old {
            bulk_or_nil(old)
        } else if done {
            Reply::ok()
        } else {
            Reply::Nil
        }
    };
    if !proceed {
        return reply_for(old, false);
    }
    let ttl = match expiry {
        ExpiryOption::Unchanged | ExpiryOption::Persist => TtlChange::Clear,
        ExpiryOption::KeepTtl => TtlChange::Keep,
        ExpiryOption::At(t) if t < now => {
            // Already in the past: the key ends up deleted, as in Redis.
            ctx.store.delete_key(db, key);
            return reply_for(old, true);
        }
        ExpiryOption::At(t) => TtlChange::Deadline(t),
    };
    write_value(ctx, key, owned(&args[2]), ttl);
    reply_for(old, true)
}

fn setnx(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    if ctx.store.exists(db, &args[1]) {
        return Reply::Integer(0);
    }
    write_value(ctx, &args[1], owned(&args[2]), TtlChange::Clear);
    Reply::Integer(1)
}

fn set_with_ttl(ctx: &mut Context, args: &[Bytes], unit: &str, command: &str) -> Reply {
    let now = ctx.store.now_ms();
    let deadline = match deadline_from(unit.as_bytes(), &args[2], now, command) {
        Ok(t) => t,
        Err(e) => return e,
    };
    write_value(
        ctx,
        &args[1],
        owned(&args[3]),
        TtlChange::Deadline(deadline),
    );
    Reply::ok()
}

fn setex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, "ex", "setex")
}

fn psetex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, "px", "psetex")
}

fn getset(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let old = match read_string(ctx, &args[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    write_value(ctx, &args[1], owned(&args[2]), TtlChange::Clear);
    bulk_or_nil(old)
}

fn getdel(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let old = match read_string(ctx, &args[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if old.is_some() {
        let db = ctx.client.db;
        ctx.store.delete_key(db, &args[1]);
    }
    bulk_or_nil(old)
}

fn getex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let now = ctx.store.now_ms();
    let expiry = match parse_string_options(args, false).and_then(|o| o.expiry(now, "getex")) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let key = &args[1];
    let value = match read_string(ctx, key) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let db = ctx.client.db;
    match expiry {
        ExpiryOption::Unchanged | ExpiryOption::KeepTtl => {}
        ExpiryOption::At(t) if t < now => {
            ctx.store.delete_key(db, key);
        }
        ExpiryOption::At(t) => set_ttl(ctx, key, TtlChange::Deadline(t)),
        ExpiryOption::Persist => {
            if ctx.store.deadline(db, key) != Some(None) {
                set_ttl(ctx, key, TtlChange::Persist);
            }
        }
    }
    Reply::Bulk(value)
}

/// Replaces the TTL of a visible key.
pub(crate) fn set_ttl(ctx: &mut Context, key: &[u8], change: TtlChange) {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        (state.delta_ttl(change, &mut || w.next_dot()), ())
    });
}

fn mget(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let values = args[1..]
        .iter()
        .map(|key| bulk_or_nil(read_string(ctx, key).unwrap_or(None)))
        .collect();
    Reply::Array(values)
}

fn mset(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return args::wrong_arity("mset");
    }
    for pair in args[1..].chunks_exact(2) {
        write_value(ctx, &pair[0], owned(&pair[1]), TtlChange::Clear);
    }
    Reply::ok()
}

fn msetnx(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return args::wrong_arity("msetnx");
    }
    let db = ctx.client.db;
    if args[1..]
        .chunks_exact(2)
        .any(|pair| ctx.store.exists(db, &pair[0]))
    {
        return Reply::Integer(0);
    }
    for pair in args[1..].chunks_exact(2) {
        write_value(ctx, &pair[0], owned(&pair[1]), TtlChange::Clear);
    }
    Reply::Integer(1)
}

fn too_big(ctx: &Context, len: usize) -> Option<Reply> {
    (len > ctx.server.config.read().proto_max_bulk_len)
        .then(|| err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
}

fn append(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let old = match read_string_for_write(ctx, &args[1]) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return e,
    };
    let len = old.len() + args[2].len();
    if let Some(e) = too_big(ctx, len) {
        return e;
    }
    let mut value = Vec::with_capacity(len);
    value.extend_from_slice(&old);
    value.extend_from_slice(&args[2]);
    write_value(ctx, &args[1], Bytes::from(value), TtlChange::Keep);
    Reply::Integer(len as i64)
}

fn strlen(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    match ctx.store.lookup_read(db, &args[1]) {
        Some(state) if state.is_collection() => err(WRONGTYPE),
        state => Reply::Integer(state.and_then(|s| s.string_value()).map_or(0, |v| v.len()) as i64),
    }
}

fn getrange(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (start, end) = match (int(&args[2]), int(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        _ => return err(args::NOT_AN_INTEGER),
    };
    let value = match read_string(ctx, &args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Bulk(Bytes::new()),
        Err(e) => return e,
    };
    let len = value.len() as i64;
    // Redis: both negative and start > end → empty; negatives count from the
    // end; clamp to the string.
    if start < 0 && end < 0 && start > end {
        return Reply::Bulk(Bytes::new());
    }
    let mut start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let mut end = if end < 0 { (len + end).max(0) } else { end };
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Reply::Bulk(Bytes::new());
    }
    start = start.max(0);
    Reply::Bulk(value.slice(start as usize..=end as usize))
}

fn setrange(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let offset = match int(&args[2]) {
        Ok(o) if o >= 0 => o as usize,
        Ok(_) => return err("ERR offset is out of range"),
        Err(e) => return e,
    };
    let patch = &args[3];
    let old = match read_string_for_write(ctx, &args[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let old_len = old.as_ref().map_or(0, |v| v.len());
    if patch.is_empty() {
        // Nothing to write: Redis neither creates nor changes the key.
        return Reply::Integer(old_len as i64);
    }
    let Some(needed) = offset.checked_add(patch.len()) else {
        return err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    };
    if let Some(e) = too_big(ctx, needed) {
        return e;
    }
    let mut value = old.map(|v| v.to_vec()).unwrap_or_default();
    if value.len() < needed {
        value.resize(needed, 0);
    }
    value[offset..needed].copy_from_slice(patch);
    let len = value.len();
    write_value(ctx, &args[1], Bytes::from(value), TtlChange::Keep);
    Reply::Integer(len as i64)
}

// ----- counters -----

/// Adds to this replica's increment run on `key` with a single keyspace
/// lookup: `check` sees the current value (`None` when absent or expired)
/// and returns the amount to add and the reply, or the error that leaves
/// the key untouched (only a visible key can fail, so a refused increment
/// ships no delta).
fn add_to_counter(
    ctx: &mut Context,
    key: &[u8],
    check: impl FnOnce(Option<StrValue>) -> Result<(Amount, Reply), Reply>,
) -> Reply {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        if state.is_collection() {
            return (KeyDelta::default(), err(WRONGTYPE));
        }
        match check(state.string_value()) {
            Ok((amount, reply)) => {
                let me = w.replica();
                (state.delta_incr(me, amount, &mut || w.next_dot()), reply)
            }
            Err(refused) => (KeyDelta::default(), refused),
        }
    })
}

fn increment_by(ctx: &mut Context, key: &[u8], by: i64) -> Reply {
    add_to_counter(ctx, key, |current| {
        let current = match current {
            None => 0,
            Some(StrValue::Raw(bytes)) => {
                parse_integer(bytes).ok_or_else(|| err(args::NOT_AN_INTEGER))?
            }
            Some(StrValue::Number(n)) => n.to_i64().ok_or_else(|| err(args::NOT_AN_INTEGER))?,
        };
        let next = current.checked_add(by).ok_or_else(|| err(args::OVERFLOW))?;
        Ok((Amount::from_int(by), Reply::Integer(next)))
    })
}

fn incr(ctx: &mut Context, args: &[Bytes]) -> Reply {
    increment_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Context, args: &[Bytes]) -> Reply {
    increment_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match int(&args[2]) {
        Ok(by) => increment_by(ctx, &args[1], by),
        Err(e) => e,
    }
}

fn decrby(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match int(&args[2]) {
        Ok(i64::MIN) => err("ERR decrement would overflow"),
        Ok(by) => increment_by(ctx, &args[1], -by),
        Err(e) => e,
    }
}

fn incrbyfloat(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let by = args::decimal(&args[2]);
    add_to_counter(ctx, &args[1], |current| {
        // Like Redis, the stored value is checked before the increment.
        let current = match current {
            None => Amount::ZERO,
            Some(StrValue::Number(n)) => n,
            Some(StrValue::Raw(bytes)) => match parse_decimal(bytes) {
                Ok(n) => n,
                // A float beyond the exact range (or "inf"): Redis would
                // reach an infinity or a value cordis cannot hold.
                Err(DecimalError::OutOfRange) => return Err(err(args::NAN_OR_INFINITY)),
                Err(DecimalError::Invalid) => return Err(err(args::NOT_A_FLOAT)),
            },
        };
        let by = by?;
        let next = current
            .checked_add(by)
            .ok_or_else(|| err(args::NAN_OR_INFINITY))?;
        Ok((by, Reply::Bulk(Bytes::from(next.to_bytes()))))
    })
}
