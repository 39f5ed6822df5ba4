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

use super::args::{self, err, err_owned, int, is, owned, wrong_arity, SYNTAX_ERROR};
use super::flags::{DENYOOM, FAST, RANDOM, READONLY, WRITE};
use super::sets::MAX_REPEATED_PICKS;
use super::typed::{self, read, scan_options, scan_reply, write};
use super::{spec, CommandSpec, Context};
use crate::crdt::number::{parse_decimal, Amount, DecimalError};
use crate::crdt::ormap::{FieldValue, HashDelta, OrMap};
use crate::crdt::ElementCrdt;
use crate::protocol::{parse_integer, Reply, RespVersion};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", legacy!(hset)),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", legacy!(hsetnx)),
    spec("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Sets the values of multiple fields.", legacy!(hmset)),
    spec("hget", 3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Returns the value of a field in a hash.", legacy!(hget)),
    spec("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Returns the values of all fields in a hash.", legacy!(hmget)),
    spec("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", legacy!(hdel)),
    spec("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Determines whether a field exists in a hash.", legacy!(hexists)),
    spec("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", "2.0.0", "Returns the number of fields in a hash.", legacy!(hlen)),
    spec("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", "3.2.0", "Returns the length of the value of a field.", legacy!(hstrlen)),
    spec("hkeys", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "Returns all fields in a hash.", legacy!(hkeys)),
    spec("hvals", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "Returns all values in a hash.", legacy!(hvals)),
    spec("hgetall", 2, READONLY, (1, 1, 1), "hash", "2.0.0", "Returns all fields and values in a hash.", legacy!(hgetall)),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", legacy!(hincrby)),
    spec("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", legacy!(hincrbyfloat)),
    spec("hrandfield", -2, READONLY | RANDOM, (1, 1, 1), "hash", "6.2.0", "Returns one or more random fields from a hash.", legacy!(hrandfield)),
    spec("hscan", -3, READONLY | RANDOM, (1, 1, 1), "hash", "2.8.0", "Iterates over fields and values of a hash.", legacy!(hscan)),
];

const NOT_AN_INTEGER: &str = "ERR hash value is not an integer";
const NOT_A_FLOAT: &str = "ERR hash value is not a float";
const INCREMENT_NAN_OR_INFINITY: &str = "ERR value is NaN or Infinity";

fn bulk(bytes: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(bytes))
}

fn value_reply(value: FieldValue<'_>) -> Reply {
    Reply::Bulk(value.to_bytes())
}

/// Writes the `field value` pairs of `args[2..]` (odd counts refused with
/// the arity error of `name`); returns how many fields were new.
fn set_pairs(ctx: &mut Context, args: &[Bytes], name: &str) -> Result<i64, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(wrong_arity(name));
    }
    // A field named twice takes its last value, as in Redis.
    let mut pairs: Vec<(&Bytes, &Bytes)> = Vec::with_capacity((args.len() - 2) / 2);
    if args.len() == 4 {
        pairs.push((&args[2], &args[3]));
    } else {
        let mut at: HashMap<&[u8], usize> = HashMap::new();
        for pair in args[2..].chunks_exact(2) {
            match at.get(pair[0].as_ref()) {
                Some(&i) => pairs[i].1 = &pair[1],
                None => {
                    at.insert(&pair[0], pairs.len());
                    pairs.push((&pair[0], &pair[1]));
                }
            }
        }
    }
    write::<OrMap, _>(ctx, &args[1], |map, w| {
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

fn hset(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_pairs(ctx, args, "hset").map_or_else(|e| e, Reply::Integer)
}

fn hmset(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_pairs(ctx, args, "hmset").map_or_else(|e| e, |_| Reply::ok())
}

fn hsetnx(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (field, value) = (&args[2], &args[3]);
    let result = write::<OrMap, _>(ctx, &args[1], |map, w| {
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
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn hget(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => map
            .and_then(|m| m.get(&args[2]))
            .map_or(Reply::Nil, value_reply),
        Err(e) => e,
    }
}

fn hmget(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => Reply::Array(
            args[2..]
                .iter()
                .map(|f| map.and_then(|m| m.get(f)).map_or(Reply::Nil, value_reply))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn hdel(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let result = write::<OrMap, _>(ctx, &args[1], |map, w| {
        let ts = w.ts();
        let mut delta = HashDelta {
            changes: Vec::with_capacity(args.len() - 2),
        };
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for field in &args[2..] {
            if seen.insert(field) {
                delta.push(map.delta_delete(field, ts, &mut || w.next_dot()));
            }
        }
        let removed = delta.changes.len() as i64;
        Ok((delta, removed))
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn hexists(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => Reply::Integer(map.is_some_and(|m| m.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

fn hlen(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => Reply::Integer(map.map_or(0, |m| m.len()) as i64),
        Err(e) => e,
    }
}

fn hstrlen(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => Reply::Integer(map.and_then(|m| m.get(&args[2])).map_or(0, |v| v.len()) as i64),
        Err(e) => e,
    }
}

fn hkeys(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => {
            Reply::Array(map.map_or_else(Vec::new, |m| m.entries().map(|(f, _)| bulk(f)).collect()))
        }
        Err(e) => e,
    }
}

fn hvals(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => Reply::Array(map.map_or_else(Vec::new, |m| {
            m.entries().map(|(_, v)| value_reply(v)).collect()
        })),
        Err(e) => e,
    }
}

fn hgetall(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrMap>(ctx, &args[1]) {
        Ok(map) => Reply::Map(map.map_or_else(Vec::new, |m| {
            m.entries()
                .map(|(f, v)| (bulk(f), value_reply(v)))
                .collect()
        })),
        Err(e) => e,
    }
}

/// Adds `amount` to this replica's increment run on `field`; `check` sees
/// the field's current value (`None` when absent) and returns the reply,
/// or the error that leaves the hash untouched.
fn add_to_field(
    ctx: &mut Context,
    args: &[Bytes],
    amount: Amount,
    check: impl FnOnce(Option<FieldValue<'_>>) -> Result<Reply, Reply>,
) -> Reply {
    let field = &args[2];
    let result = write::<OrMap, _>(ctx, &args[1], |map, w| {
        let reply = check(map.get(field))?;
        let me = w.replica();
        let change = map.delta_incr(field, me, amount, &mut || w.next_dot());
        Ok((
            HashDelta {
                changes: vec![change],
            },
            reply,
        ))
    });
    result.unwrap_or_else(|e| e)
}

fn hincrby(ctx: &mut Context, args: &[Bytes]) -> Reply {
    // Like Redis, the increment is parsed before the key's type is checked.
    let by = match int(&args[3]) {
        Ok(by) => by,
        Err(e) => return e,
    };
    add_to_field(ctx, args, Amount::from_int(by), |current| {
        let current = match current {
            None => 0,
            Some(FieldValue::Raw(bytes)) => {
                parse_integer(bytes).ok_or_else(|| err(NOT_AN_INTEGER))?
            }
            Some(FieldValue::Number(n)) => n.to_i64().ok_or_else(|| err(NOT_AN_INTEGER))?,
        };
        let next = current.checked_add(by).ok_or_else(|| err(args::OVERFLOW))?;
        Ok(Reply::Integer(next))
    })
}

/// HINCRBYFLOAT's increment with Redis's errors; an infinite increment has
/// its own message, a finite one beyond cordis's exact range gets the
/// "would produce NaN or Infinity" one (docs/semantics.md, Counters).
fn float_increment(arg: &[u8]) -> Result<Amount, Reply> {
    match parse_decimal(arg) {
        Ok(by) => Ok(by),
        Err(DecimalError::Invalid) => Err(err(args::NOT_A_FLOAT)),
        Err(DecimalError::OutOfRange) => {
            let unsigned = arg
                .strip_prefix(b"-")
                .or(arg.strip_prefix(b"+"))
                .unwrap_or(arg);
            let infinite = is(unsigned, "inf") || is(unsigned, "infinity");
            Err(err(if infinite {
                INCREMENT_NAN_OR_INFINITY
            } else {
                args::NAN_OR_INFINITY
            }))
        }
    }
}

fn hincrbyfloat(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let by = match float_increment(&args[3]) {
        Ok(by) => by,
        Err(e) => return e,
    };
    add_to_field(ctx, args, by, |current| {
        let current = match current {
            None => Amount::ZERO,
            Some(FieldValue::Number(n)) => n,
            Some(FieldValue::Raw(bytes)) => match parse_decimal(bytes) {
                Ok(n) => n,
                Err(DecimalError::OutOfRange) => return Err(err(args::NAN_OR_INFINITY)),
                Err(DecimalError::Invalid) => return Err(err(NOT_A_FLOAT)),
            },
        };
        let next = current
            .checked_add(by)
            .ok_or_else(|| err(args::NAN_OR_INFINITY))?;
        Ok(Reply::Bulk(Bytes::from(next.to_bytes())))
    })
}

/// HRANDFIELD's count and WITHVALUES flag, with Redis's errors and order
/// of checks, plus cordis's cap on repeated picks.
fn parse_randfield(args: &[Bytes]) -> Result<(i64, bool), Reply> {
    let count = int(&args[2])?;
    if count == i64::MIN {
        return Err(err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let with_values = match args.len() {
        3 => false,
        4 if is(&args[3], "withvalues") => true,
        _ => return Err(err(SYNTAX_ERROR)),
    };
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(err("ERR value is out of range"));
    }
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(err_owned(format!(
            "ERR value is out of range, cordis returns at most {MAX_REPEATED_PICKS} repeated picks"
        )));
    }
    Ok((count, with_values))
}

fn hrandfield(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let counted = if args.len() > 2 {
        match parse_randfield(args) {
            Ok(parsed) => Some(parsed),
            Err(e) => return e,
        }
    } else {
        None
    };
    let resp3 = ctx.client.resp == RespVersion::Resp3;
    let db = ctx.client.db;
    let (state, rng) = ctx.store.lookup_read_with_rng(db, &args[1]);
    let map = match state.map(|s| s.typed::<OrMap>()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(map))) => Some(map),
        Some(Err(_)) => return typed::wrongtype(),
    };
    let mut random = |n: usize| rand::Rng::gen_range(rng, 0..n);
    let Some((count, with_values)) = counted else {
        return map
            .and_then(|m| m.random_entry(&mut random))
            .map_or(Reply::Nil, |(f, _)| bulk(f));
    };
    let Some(map) = map else {
        return Reply::Array(Vec::new());
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
    Reply::Array(out)
}

fn hscan(ctx: &mut Context, args: &[Bytes]) -> Reply {
    // Redis checks the cursor, then the key, then the options: a missing
    // key answers an empty scan and another type WRONGTYPE even when the
    // options are bad.
    let parsed = scan_options(&mut super::Args::new(args, 2), false);
    let map = match (&parsed, read::<OrMap>(ctx, &args[1])) {
        (Err(e), _) if scan_options(&mut super::Args::new(&args[..3], 2), false).is_err() => {
            return e.clone()
        }
        (_, Ok(Some(map))) => map,
        (_, Ok(None)) => return scan_reply(0, Vec::new()),
        (_, Err(e)) => return e,
    };
    let options = match parsed {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let next = map.scan(options.cursor, options.count, |f, v| {
        if options.matches(f) {
            items.push(bulk(f));
            items.push(value_reply(v));
        }
    });
    scan_reply(next, items)
}
