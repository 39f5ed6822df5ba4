//! String and counter commands: GET/SET and friends, ranges, APPEND, and
//! INCR/DECR/INCRBY/DECRBY/INCRBYFLOAT.
//!
//! Every string key is one CRDT (see `crdt::key`): SET-like writes are LWW
//! base writes, increments are per-replica runs that concurrent writers all
//! count, and APPEND/SETRANGE rewrite the whole value (LWW). NX/XX and
//! SETNX/MSETNX are checked against this node's state only: they are not a
//! global lock across regions (docs/semantics.md).

use bytes::Bytes;

use super::args::{
    self, err, err_owned, int, is, owned, Args, CmdResult, NAN_OR_INFINITY, NOT_AN_INTEGER,
    OVERFLOW, STRING_TOO_LONG, SYNTAX_ERROR, WRONGTYPE,
};
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{spec, CommandSpec, Context};
use crate::crdt::number::Amount;
use crate::crdt::{KeyDelta, KeyState, StrValue, TtlChange};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, (1, 1, 1), "string", "1.0.0", "Returns the string value of a key.", get),
    spec("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", set),
    spec("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", setnx),
    spec("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", setex),
    spec("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", psetex),
    spec("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", getset),
    spec("getdel", 2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", "Returns the string value of a key after deleting the key.", getdel),
    spec("getex", -2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", getex),
    spec("mget", -2, READONLY | FAST, (1, -1, 1), "string", "1.0.0", "Atomically returns the string values of one or more keys.", mget),
    spec("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", mset),
    spec("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", msetnx),
    spec("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", append),
    spec("strlen", 2, READONLY | FAST, (1, 1, 1), "string", "2.2.0", "Returns the length of a string value.", strlen),
    spec("getrange", 4, READONLY, (1, 1, 1), "string", "2.4.0", "Returns a substring of the string stored at a key.", getrange),
    spec("substr", 4, READONLY, (1, 1, 1), "string", "1.0.0", "Returns a substring from a string value.", getrange),
    spec("setrange", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", setrange),
    spec("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", incr),
    spec("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", decr),
    spec("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrby),
    spec("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", decrby),
    spec("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", incrbyfloat),
];

const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";

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

/// Refuses a string value longer than `proto-max-bulk-len`.
fn check_size(ctx: &Context, len: usize) -> Result<(), Reply> {
    if len > ctx.server.config.read().proto_max_bulk_len {
        Err(err(STRING_TOO_LONG))
    } else {
        Ok(())
    }
}

/// Redis's error for an expire time that is not positive or overflows
/// (the SET family here, the EXPIRE family in `keys`).
pub(crate) fn invalid_expire_time(command: &str) -> Reply {
    err_owned(format!("ERR invalid expire time in '{command}' command"))
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

/// The unit of an expire value: EX/PX count from now, EXAT/PXAT are Unix
/// times; EX/EXAT are seconds, PX/PXAT milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpireUnit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireUnit {
    /// The unit an option keyword names, if it names one.
    fn of(arg: &[u8]) -> Option<ExpireUnit> {
        [
            ("ex", ExpireUnit::Ex),
            ("px", ExpireUnit::Px),
            ("exat", ExpireUnit::ExAt),
            ("pxat", ExpireUnit::PxAt),
        ]
        .into_iter()
        .find(|(word, _)| is(arg, word))
        .map(|(_, unit)| unit)
    }

    fn in_seconds(self) -> bool {
        matches!(self, ExpireUnit::Ex | ExpireUnit::ExAt)
    }

    fn is_relative(self) -> bool {
        matches!(self, ExpireUnit::Ex | ExpireUnit::Px)
    }
}

/// Turns an expire value in `unit` into an absolute deadline, with
/// Redis's "invalid expire time" error for non-positive or overflowing
/// values.
fn deadline_from(unit: ExpireUnit, n: i64, now_ms: u64, command: &str) -> Result<u64, Reply> {
    let invalid = || invalid_expire_time(command);
    if n <= 0 {
        return Err(invalid());
    }
    let n = n as u64;
    let ms = if unit.in_seconds() {
        n.checked_mul(1000)
            .filter(|v| *v <= i64::MAX as u64)
            .ok_or_else(invalid)?
    } else {
        n
    };
    if unit.is_relative() {
        now_ms
            .checked_add(ms)
            .filter(|v| *v <= i64::MAX as u64)
            .ok_or_else(invalid)
    } else {
        Ok(ms)
    }
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
    /// The expiry unit and its (not yet parsed) value.
    expire: Option<(ExpireUnit, &'a Bytes)>,
}

/// Reads the options of SET or GETEX from the cursor to the end.
fn parse_string_options<'a>(
    args: &mut Args<'a>,
    for_set: bool,
) -> Result<StringOptions<'a>, Reply> {
    let mut o = StringOptions::default();
    while let Some(option) = args.next_if_any() {
        if for_set && is(option, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is(option, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is(option, "get") {
            o.get = true;
        } else if for_set && is(option, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(option, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else if let Some(unit) = ExpireUnit::of(option).filter(|&u| o.takes_expire(u)) {
            o.expire = Some((unit, args.next()?));
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    Ok(o)
}

impl StringOptions<'_> {
    /// Whether an expire in `unit` may follow the options read so far: not
    /// after KEEPTTL or PERSIST, nor after another unit (the same one may
    /// repeat).
    fn takes_expire(&self, unit: ExpireUnit) -> bool {
        !self.keepttl && !self.persist && self.expire.is_none_or(|(seen, _)| seen == unit)
    }

    /// The expiry these options ask for, with the expire value validated.
    fn expiry(&self, now_ms: u64, command: &str) -> Result<ExpiryOption, Reply> {
        Ok(match self.expire {
            Some((unit, value)) => {
                ExpiryOption::At(deadline_from(unit, int(value)?, now_ms, command)?)
            }
            None if self.keepttl => ExpiryOption::KeepTtl,
            None if self.persist => ExpiryOption::Persist,
            None => ExpiryOption::Unchanged,
        })
    }

    fn condition(&self) -> Condition {
        if self.nx {
            Condition::IfAbsent
        } else if self.xx {
            Condition::IfPresent
        } else {
            Condition::Always
        }
    }
}

// ----- GET / SET family -----

fn get(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    Ok(bulk_or_nil(read_string(ctx, key)?))
}

#[derive(PartialEq, Eq)]
enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

fn set(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let value = args.next()?;
    let now = ctx.store.now_ms();
    let options = parse_string_options(args, true)?;
    let expiry = options.expiry(now, "set")?;
    let condition = options.condition();
    let return_old = options.get;
    // Plain SET reads nothing (and, like Redis, counts no keyspace hit or
    // miss); GET needs the old value, NX/XX only its existence.
    let db = ctx.client.db;
    let (old, exists) = if return_old {
        let old = read_string(ctx, key)?;
        let exists = old.is_some();
        (old, exists)
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
        return Ok(reply_for(old, false));
    }
    let ttl = match expiry {
        ExpiryOption::Unchanged | ExpiryOption::Persist => TtlChange::Clear,
        ExpiryOption::KeepTtl => TtlChange::Keep,
        ExpiryOption::At(t) if t < now => {
            // Already in the past: the key ends up deleted, as in Redis.
            ctx.store.delete_key(db, key);
            return Ok(reply_for(old, true));
        }
        ExpiryOption::At(t) => TtlChange::Deadline(t),
    };
    write_value(ctx, key, owned(value), ttl);
    Ok(reply_for(old, true))
}

fn setnx(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let value = args.next()?;
    let db = ctx.client.db;
    if ctx.store.exists(db, key) {
        return Ok(Reply::Integer(0));
    }
    write_value(ctx, key, owned(value), TtlChange::Clear);
    Ok(Reply::Integer(1))
}

/// SETEX/PSETEX: `key amount value`, the amount in `unit`.
fn set_with_ttl(ctx: &mut Context, args: &mut Args, unit: ExpireUnit, command: &str) -> CmdResult {
    let key = args.key()?;
    let amount = args.int()?;
    let value = args.next()?;
    let now = ctx.store.now_ms();
    let deadline = deadline_from(unit, amount, now, command)?;
    write_value(ctx, key, owned(value), TtlChange::Deadline(deadline));
    Ok(Reply::ok())
}

fn setex(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_with_ttl(ctx, args, ExpireUnit::Ex, "setex")
}

fn psetex(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_with_ttl(ctx, args, ExpireUnit::Px, "psetex")
}

fn getset(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let value = args.next()?;
    let old = read_string(ctx, key)?;
    write_value(ctx, key, owned(value), TtlChange::Clear);
    Ok(bulk_or_nil(old))
}

fn getdel(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let old = read_string(ctx, key)?;
    if old.is_some() {
        let db = ctx.client.db;
        ctx.store.delete_key(db, key);
    }
    Ok(bulk_or_nil(old))
}

fn getex(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let now = ctx.store.now_ms();
    let expiry = parse_string_options(args, false)?.expiry(now, "getex")?;
    let Some(value) = read_string(ctx, key)? else {
        return Ok(Reply::Nil);
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
    Ok(Reply::Bulk(value))
}

/// Replaces the TTL of a visible key.
pub(crate) fn set_ttl(ctx: &mut Context, key: &[u8], change: TtlChange) {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        (state.delta_ttl(change, &mut || w.next_dot()), ())
    });
}

fn mget(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // A key of another type reads as nil here, as in Redis.
    let values = args
        .rest()
        .iter()
        .map(|key| bulk_or_nil(read_string(ctx, key).unwrap_or(None)))
        .collect();
    Ok(Reply::Array(values))
}

/// The `key value [key value ...]` pairs of MSET and MSETNX, or Redis's
/// wrong-arity error when the last key has no value.
fn key_value_pairs<'a>(
    args: &mut Args<'a>,
) -> Result<impl Iterator<Item = (&'a Bytes, &'a Bytes)> + Clone, Reply> {
    if !args.remaining().is_multiple_of(2) {
        return Err(args.wrong_arity());
    }
    Ok(args.rest().chunks_exact(2).map(|pair| (&pair[0], &pair[1])))
}

fn mset(ctx: &mut Context, args: &mut Args) -> CmdResult {
    for (key, value) in key_value_pairs(args)? {
        write_value(ctx, key, owned(value), TtlChange::Clear);
    }
    Ok(Reply::ok())
}

fn msetnx(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let pairs = key_value_pairs(args)?;
    let db = ctx.client.db;
    if pairs.clone().any(|(key, _)| ctx.store.exists(db, key)) {
        return Ok(Reply::Integer(0));
    }
    for (key, value) in pairs {
        write_value(ctx, key, owned(value), TtlChange::Clear);
    }
    Ok(Reply::Integer(1))
}

fn append(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let tail = args.next()?;
    let old = read_string_for_write(ctx, key)?.unwrap_or_default();
    let len = old.len() + tail.len();
    check_size(ctx, len)?;
    let mut value = Vec::with_capacity(len);
    value.extend_from_slice(&old);
    value.extend_from_slice(tail);
    write_value(ctx, key, Bytes::from(value), TtlChange::Keep);
    Ok(Reply::Integer(len as i64))
}

fn strlen(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let db = ctx.client.db;
    match ctx.store.lookup_read(db, key) {
        Some(state) if state.is_collection() => Err(err(WRONGTYPE)),
        state => Ok(Reply::Integer(
            state.and_then(|s| s.string_value()).map_or(0, |v| v.len()) as i64,
        )),
    }
}

/// GETRANGE (and SUBSTR): both bounds must be integers before the key is
/// read, so a bad bound is reported ahead of WRONGTYPE, as in Redis.
fn getrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let start = args.int()?;
    let end = args.int()?;
    let Some(value) = read_string(ctx, key)? else {
        return Ok(Reply::Bulk(Bytes::new()));
    };
    let len = value.len() as i64;
    // Redis: both negative and start > end → empty; negatives count from the
    // end; clamp to the string.
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::Bulk(Bytes::new()));
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
        return Ok(Reply::Bulk(Bytes::new()));
    }
    start = start.max(0);
    Ok(Reply::Bulk(value.slice(start as usize..=end as usize)))
}

fn setrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let offset = args.int_in(0..=i64::MAX, OFFSET_OUT_OF_RANGE)? as usize;
    let patch = args.next()?;
    let old = read_string_for_write(ctx, key)?;
    let old_len = old.as_ref().map_or(0, |v| v.len());
    if patch.is_empty() {
        // Nothing to write: Redis neither creates nor changes the key.
        return Ok(Reply::Integer(old_len as i64));
    }
    let needed = offset
        .checked_add(patch.len())
        .ok_or_else(|| err(STRING_TOO_LONG))?;
    check_size(ctx, needed)?;
    let mut value = old.map(|v| v.to_vec()).unwrap_or_default();
    if value.len() < needed {
        value.resize(needed, 0);
    }
    value[offset..needed].copy_from_slice(patch);
    let len = value.len();
    write_value(ctx, key, Bytes::from(value), TtlChange::Keep);
    Ok(Reply::Integer(len as i64))
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
) -> CmdResult {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        if state.is_collection() {
            return (KeyDelta::default(), Err(err(WRONGTYPE)));
        }
        match check(state.string_value()) {
            Ok((amount, reply)) => {
                let me = w.replica();
                let delta = state.delta_incr(me, amount, &mut || w.next_dot());
                (delta, Ok(reply))
            }
            Err(refused) => (KeyDelta::default(), Err(refused)),
        }
    })
}

fn increment_by(ctx: &mut Context, key: &[u8], by: i64) -> CmdResult {
    add_to_counter(ctx, key, |current| {
        let current = match current {
            None => 0,
            Some(StrValue::Raw(bytes)) => int(bytes)?,
            Some(StrValue::Merged(bytes) | StrValue::Rendered(bytes)) => int(&bytes)?,
            Some(StrValue::Number(n)) => n.to_i64().ok_or_else(|| err(NOT_AN_INTEGER))?,
        };
        let next = current.checked_add(by).ok_or_else(|| err(OVERFLOW))?;
        Ok((Amount::from_int(by), Reply::Integer(next)))
    })
}

fn incr(ctx: &mut Context, args: &mut Args) -> CmdResult {
    increment_by(ctx, args.key()?, 1)
}

fn decr(ctx: &mut Context, args: &mut Args) -> CmdResult {
    increment_by(ctx, args.key()?, -1)
}

fn incrby(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let by = args.int()?;
    increment_by(ctx, key, by)
}

fn decrby(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    // `i64::MIN` cannot be negated: Redis refuses it with its own text.
    let by = args.int_in(i64::MIN + 1..=i64::MAX, DECREMENT_OVERFLOW)?;
    increment_by(ctx, key, -by)
}

fn incrbyfloat(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    // Parsed now, reported only after the stored value is checked.
    let by = args.decimal();
    add_to_counter(ctx, key, |current| {
        // Like Redis, the stored value is checked before the increment.
        let current = match current {
            None => Amount::ZERO,
            Some(StrValue::Number(n)) => n,
            // A float beyond the exact range (or "inf") is refused with
            // NaN-or-Infinity: Redis would reach an infinity or a value
            // cordis cannot hold.
            Some(StrValue::Raw(bytes)) => args::decimal(bytes)?,
            Some(StrValue::Merged(bytes) | StrValue::Rendered(bytes)) => args::decimal(&bytes)?,
        };
        let by = by?;
        let next = current
            .checked_add(by)
            .ok_or_else(|| err(NAN_OR_INFINITY))?;
        Ok((by, Reply::Bulk(Bytes::from(next.to_bytes()))))
    })
}
