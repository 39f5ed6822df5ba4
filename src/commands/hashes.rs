//! Hash commands: HSET, HSETNX, HMSET, HGET, HMGET, HDEL, HEXISTS, HLEN,
//! HSTRLEN, HKEYS, HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD and
//! HSCAN.
//!
//! Hashes are OR-maps of string-like fields (`crdt::ormap`): HSET is a
//! last-writer-wins write of the field, HINCRBY/HINCRBYFLOAT add to this
//! replica's increment run (concurrent increments all count), HDEL removes
//! what this node observed, so a concurrent HSET or HINCRBY elsewhere
//! survives it (docs/semantics.md, "Hashes").

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::args::{
    self, check_repeated_picks, err, is, owned, Args, CmdResult, COUNT_OUT_OF_RANGE, OUT_OF_RANGE,
};
use super::flags::{DENYOOM, FAST, RANDOM, READONLY, WRITE};
use super::typed::{self, read, scan_options, scan_reply, write};
use super::{spec, CommandSpec, Context};
use crate::crdt::number::{parse_decimal, Amount, DecimalError};
use crate::crdt::ormap::{FieldValue, HashDelta, OrMap};
use crate::crdt::ElementCrdt;
use crate::protocol::{parse_integer, Reply, RespVersion};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", hset),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", hsetnx),
    spec("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Sets the values of multiple fields.", hmset),
    spec("hget", 3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Returns the value of a field in a hash.", hget),
    spec("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Returns the values of all fields in a hash.", hmget),
    spec("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", hdel),
    spec("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Determines whether a field exists in a hash.", hexists),
    spec("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Returns the number of fields in a hash.", hlen),
    spec("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", "3.2.0", "Returns the length of the value of a field.", hstrlen),
    spec("hkeys", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "Returns all fields in a hash.", hkeys),
    spec("hvals", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "Returns all values in a hash.", hvals),
    spec("hgetall", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "Returns all fields and values in a hash.", hgetall),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", hincrby),
    spec("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", hincrbyfloat),
    spec("hrandfield", -2, READONLY | RANDOM, (1, 1, 1), "hash", "6.2.0", "Returns one or more random fields from a hash.", hrandfield),
    spec("hscan", -3, READONLY | RANDOM, (1, 1, 1), "hash", "2.8.0", "Iterates over fields and values of a hash.", hscan),
];

/// A stored field that HINCRBY cannot read as an integer.
const HASH_VALUE_NOT_AN_INTEGER: &str = "ERR hash value is not an integer";
/// A stored field that HINCRBYFLOAT cannot read as a number.
const HASH_VALUE_NOT_A_FLOAT: &str = "ERR hash value is not a float";
const INCREMENT_NAN_OR_INFINITY: &str = "ERR value is NaN or Infinity";

fn bulk(bytes: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(bytes))
}

fn value_reply(value: FieldValue<'_>) -> Reply {
    Reply::Bulk(value.to_bytes())
}

/// The `field value` pairs left on the cursor (an odd count refused with
/// the command's arity error); a field named twice takes its last value,
/// as in Redis.
fn field_value_pairs<'a>(args: &mut Args<'a>) -> Result<Vec<(&'a Bytes, &'a Bytes)>, Reply> {
    if !args.remaining().is_multiple_of(2) {
        return Err(args.wrong_arity());
    }
    let single = args.remaining() == 2;
    let mut pairs: Vec<(&Bytes, &Bytes)> = Vec::with_capacity(args.remaining() / 2);
    let mut at: HashMap<&[u8], usize> = HashMap::new();
    while let Some(field) = args.next_if_any() {
        let value = args.next()?;
        if single {
            pairs.push((field, value));
            continue;
        }
        match at.get(field.as_ref()) {
            Some(&i) => pairs[i].1 = value,
            None => {
                at.insert(field, pairs.len());
                pairs.push((field, value));
            }
        }
    }
    Ok(pairs)
}

/// Writes `key field value [field value ...]`; returns how many fields
/// were new.
fn set_pairs(ctx: &mut Context, args: &mut Args) -> Result<i64, Reply> {
    let key = args.key()?;
    let pairs = field_value_pairs(args)?;
    write::<OrMap, _>(ctx, key, |map, w| {
        let ts = w.ts();
        // Sized exactly: the delta also sits in the replication log.
        let mut delta = HashDelta {
            changes: Vec::with_capacity(pairs.len()),
        };
        let mut added = 0;
        for (field, value) in pairs {
            if !map.contains(field) {
                added += 1;
            }
            let change = map.delta_set(field, owned(value), ts, &mut || w.next_dot());
            delta.changes.push(change);
        }
        Ok((delta, added))
    })
}

fn hset(ctx: &mut Context, args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(set_pairs(ctx, args)?))
}

fn hmset(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_pairs(ctx, args)?;
    Ok(Reply::ok())
}

fn hsetnx(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, field, value) = (args.key()?, args.next()?, args.next()?);
    let added = write::<OrMap, _>(ctx, key, |map, w| {
        if map.contains(field) {
            return Ok((HashDelta::default(), 0));
        }
        let mut delta = HashDelta {
            changes: Vec::with_capacity(1),
        };
        let ts = w.ts();
        delta
            .changes
            .push(map.delta_set(field, owned(value), ts, &mut || w.next_dot()));
        Ok((delta, 1))
    })?;
    Ok(Reply::Integer(added))
}

fn hget(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, field) = (args.key()?, args.next()?);
    let map = read::<OrMap>(ctx, key)?;
    Ok(map
        .and_then(|m| m.get(field))
        .map_or(Reply::Nil, value_reply))
}

fn hmget(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, fields) = (args.key()?, args.rest());
    let map = read::<OrMap>(ctx, key)?;
    Ok(Reply::Array(
        fields
            .iter()
            .map(|f| map.and_then(|m| m.get(f)).map_or(Reply::Nil, value_reply))
            .collect(),
    ))
}

fn hdel(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, fields) = (args.key()?, args.rest());
    let removed = write::<OrMap, _>(ctx, key, |map, w| {
        let ts = w.ts();
        let mut delta = HashDelta {
            changes: Vec::with_capacity(fields.len()),
        };
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for field in fields {
            if seen.insert(field) {
                delta.push(map.delta_delete(field, ts, &mut || w.next_dot()));
            }
        }
        let removed = delta.changes.len() as i64;
        Ok((delta, removed))
    })?;
    Ok(Reply::Integer(removed))
}

fn hexists(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, field) = (args.key()?, args.next()?);
    let map = read::<OrMap>(ctx, key)?;
    Ok(Reply::Integer(map.is_some_and(|m| m.contains(field)) as i64))
}

fn hlen(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let map = read::<OrMap>(ctx, args.key()?)?;
    Ok(Reply::Integer(map.map_or(0, |m| m.len()) as i64))
}

fn hstrlen(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, field) = (args.key()?, args.next()?);
    let map = read::<OrMap>(ctx, key)?;
    Ok(Reply::Integer(
        map.and_then(|m| m.get(field)).map_or(0, |v| v.len()) as i64,
    ))
}

fn hkeys(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let map = read::<OrMap>(ctx, args.key()?)?;
    Ok(Reply::Array(map.map_or_else(Vec::new, |m| {
        m.entries().map(|(f, _)| bulk(f)).collect()
    })))
}

fn hvals(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let map = read::<OrMap>(ctx, args.key()?)?;
    Ok(Reply::Array(map.map_or_else(Vec::new, |m| {
        m.entries().map(|(_, v)| value_reply(v)).collect()
    })))
}

fn hgetall(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let map = read::<OrMap>(ctx, args.key()?)?;
    Ok(Reply::Map(map.map_or_else(Vec::new, |m| {
        m.entries()
            .map(|(f, v)| (bulk(f), value_reply(v)))
            .collect()
    })))
}

/// Adds `amount` to this replica's increment run on `field`; `check` sees
/// the field's current value (`None` when absent) and returns the reply,
/// or the error that leaves the hash untouched.
fn add_to_field(
    ctx: &mut Context,
    key: &[u8],
    field: &[u8],
    amount: Amount,
    check: impl FnOnce(Option<FieldValue<'_>>) -> CmdResult,
) -> CmdResult {
    write::<OrMap, _>(ctx, key, |map, w| {
        let reply = check(map.get(field))?;
        let me = w.replica();
        let change = map.delta_incr(field, me, amount, &mut || w.next_dot());
        Ok((
            HashDelta {
                changes: vec![change],
            },
            reply,
        ))
    })
}

fn hincrby(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, field) = (args.key()?, args.next()?);
    // Like Redis, the increment is parsed before the key's type is checked.
    let by = args.int()?;
    add_to_field(ctx, key, field, Amount::from_int(by), |current| {
        let current = match current {
            None => 0,
            Some(FieldValue::Raw(bytes)) => {
                parse_integer(bytes).ok_or_else(|| err(HASH_VALUE_NOT_AN_INTEGER))?
            }
            Some(FieldValue::Number(n)) => {
                n.to_i64().ok_or_else(|| err(HASH_VALUE_NOT_AN_INTEGER))?
            }
        };
        let next = current.checked_add(by).ok_or_else(|| err(args::OVERFLOW))?;
        Ok(Reply::Integer(next))
    })
}

/// HINCRBYFLOAT's increment with Redis's errors; an infinite increment has
/// its own message, a finite one beyond cordis's exact range gets the
/// "would produce NaN or Infinity" one (docs/semantics.md, Counters).
fn float_increment(arg: &[u8]) -> Result<Amount, Reply> {
    parse_decimal(arg).map_err(|e| match e {
        DecimalError::Invalid => err(args::NOT_A_FLOAT),
        DecimalError::OutOfRange => {
            let unsigned = arg
                .strip_prefix(b"-")
                .or(arg.strip_prefix(b"+"))
                .unwrap_or(arg);
            let infinite = is(unsigned, "inf") || is(unsigned, "infinity");
            err(if infinite {
                INCREMENT_NAN_OR_INFINITY
            } else {
                args::NAN_OR_INFINITY
            })
        }
    })
}

/// A stored field read as a number for HINCRBYFLOAT.
fn stored_decimal(bytes: &[u8]) -> Result<Amount, Reply> {
    parse_decimal(bytes).map_err(|e| match e {
        DecimalError::OutOfRange => err(args::NAN_OR_INFINITY),
        DecimalError::Invalid => err(HASH_VALUE_NOT_A_FLOAT),
    })
}

fn hincrbyfloat(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, field) = (args.key()?, args.next()?);
    let by = float_increment(args.next()?)?;
    add_to_field(ctx, key, field, by, |current| {
        let current = match current {
            None => Amount::ZERO,
            Some(FieldValue::Number(n)) => n,
            Some(FieldValue::Raw(bytes)) => stored_decimal(bytes)?,
        };
        let next = current
            .checked_add(by)
            .ok_or_else(|| err(args::NAN_OR_INFINITY))?;
        Ok(Reply::Bulk(Bytes::from(next.to_bytes())))
    })
}

/// HRANDFIELD's `count [WITHVALUES]`, with Redis's errors and order of
/// checks, plus cordis's cap on repeated picks.
fn randfield_count(args: &mut Args) -> Result<(i64, bool), Reply> {
    // Redis refuses i64::MIN, whose negation (the number of picks) overflows.
    let count = args.int_in(-i64::MAX..=i64::MAX, COUNT_OUT_OF_RANGE)?;
    let with_values = args.keyword("withvalues");
    args.finish()?;
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(err(OUT_OF_RANGE));
    }
    check_repeated_picks(count)?;
    Ok((count, with_values))
}

fn hrandfield(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let counted = if args.is_done() {
        None
    } else {
        Some(randfield_count(args)?)
    };
    let resp3 = ctx.client.resp == RespVersion::Resp3;
    let db = ctx.client.db;
    let (state, rng) = ctx.store.lookup_read_with_rng(db, key);
    let map = match state.map(|s| s.typed::<OrMap>()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(map))) => Some(map),
        Some(Err(_)) => return Err(typed::wrongtype()),
    };
    let mut random = |n: usize| rand::Rng::gen_range(rng, 0..n);
    let Some((count, with_values)) = counted else {
        return Ok(map
            .and_then(|m| m.random_entry(&mut random))
            .map_or(Reply::Nil, |(f, _)| bulk(f)));
    };
    let Some(map) = map else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picks: Vec<(&[u8], FieldValue<'_>)> = if count < 0 {
        // Negative: that many picks, repeats allowed.
        (0..count.unsigned_abs())
            .filter_map(|_| map.random_entry(&mut random))
            .collect()
    } else if count as usize >= map.len() {
        map.entries().collect()
    } else if (count as usize).saturating_mul(3) > map.len() {
        // Most of the hash: shuffle the first `count` of all entries rather
        // than drawing until enough distinct fields turned up.
        let mut all: Vec<(&[u8], FieldValue<'_>)> = map.entries().collect();
        let wanted = count as usize;
        for i in 0..wanted {
            let j = i + random(all.len() - i);
            all.swap(i, j);
        }
        all.truncate(wanted);
        all
    } else {
        let wanted = count as usize;
        let mut chosen = Vec::with_capacity(wanted);
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(wanted);
        while chosen.len() < wanted {
            if let Some((f, v)) = map.random_entry(&mut random) {
                if seen.insert(f) {
                    chosen.push((f, v));
                }
            }
        }
        chosen
    };
    let mut out = Vec::with_capacity(picks.len() * if with_values { 2 } else { 1 });
    for (field, value) in picks {
        match (with_values, resp3) {
            (false, _) => out.push(bulk(field)),
            // RESP3 pairs each field with its value.
            (true, true) => out.push(Reply::Array(vec![bulk(field), value_reply(value)])),
            (true, false) => {
                out.push(bulk(field));
                out.push(value_reply(value));
            }
        }
    }
    Ok(Reply::Array(out))
}

/// The scan cursor argument read alone, as [`scan_options`] reads it.
fn scan_cursor_alone(cursor: &Bytes) -> Result<u64, Reply> {
    let alone = std::slice::from_ref(cursor);
    Ok(scan_options(&mut Args::new(alone, 0), false)?.cursor)
}

fn hscan(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // Redis checks the cursor, then the key, then the options: a missing
    // key answers an empty scan and another type WRONGTYPE even when the
    // options are bad. (The key is looked up, a hit or miss, either way.)
    let key = args.key()?;
    let cursor = args.clone().next()?;
    let options = scan_options(args, false);
    let map = read::<OrMap>(ctx, key);
    if options.is_err() {
        scan_cursor_alone(cursor)?;
    }
    let Some(map) = map? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let options = options?;
    let mut items = Vec::new();
    let next = map.scan(options.cursor, options.count, |f, v| {
        if options.matches(f) {
            items.push(bulk(f));
            items.push(value_reply(v));
        }
    });
    Ok(scan_reply(next, items))
}
