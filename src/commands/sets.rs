//! Set commands: SADD, SREM, SISMEMBER, SMISMEMBER, SMEMBERS, SCARD, SPOP,
//! SRANDMEMBER, SMOVE, the SINTER/SUNION/SDIFF families and SSCAN.
//!
//! Sets are add-wins OR-sets (`crdt::orset`): SADD always writes a fresh
//! dot (so it wins over a concurrent SREM elsewhere, even for a member that
//! was already present), SREM removes what this node observed. SPOP is a
//! local random pick plus an observed remove, so two regions may pop the
//! same member (docs/semantics.md).

use std::collections::HashSet;

use bytes::Bytes;

use super::args::{
    check_repeated_picks, err, is, Args, CmdResult, COUNT_OUT_OF_RANGE, SYNTAX_ERROR,
};
use super::flags::{DENYOOM, FAST, MOVABLEKEYS, RANDOM, READONLY, WRITE};
use super::typed::{self, read, scan_options, scan_reply, write};
use super::{spec, CommandSpec, Context};
use crate::crdt::orset::{MemberChange, OrSet, SetDelta};
use crate::crdt::ElementCrdt;
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", sadd),
    spec("srem", -3, WRITE | FAST, (1, 1, 1), "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", srem),
    spec("sismember", 3, READONLY | FAST, (1, 1, 1), "set", "1.0.0", "Determines whether a member belongs to a set.", sismember),
    spec("smismember", -3, READONLY | FAST, (1, 1, 1), "set", "6.2.0", "Determines whether multiple members belong to a set.", smismember),
    spec("smembers", 2, READONLY, (1, 1, 1), "set", "1.0.0", "Returns all members of a set.", smembers),
    spec("scard", 2, READONLY | FAST, (1, 1, 1), "set", "1.0.0", "Returns the number of members in a set.", scard),
    spec("spop", -2, WRITE | RANDOM | FAST, (1, 1, 1), "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", spop),
    spec("srandmember", -2, READONLY | RANDOM, (1, 1, 1), "set", "1.0.0", "Get one or multiple random members from a set", srandmember),
    spec("smove", 4, WRITE | FAST, (1, 2, 1), "set", "1.0.0", "Moves a member from one set to another.", smove),
    spec("sinter", -2, READONLY, (1, -1, 1), "set", "1.0.0", "Returns the intersect of multiple sets.", sinter),
    spec("sintercard", -3, READONLY | MOVABLEKEYS, (0, 0, 0), "set", "7.0.0", "Returns the number of members of the intersect of multiple sets.", sintercard),
    spec("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", "Stores the intersect of multiple sets in a key.", sinterstore),
    spec("sunion", -2, READONLY, (1, -1, 1), "set", "1.0.0", "Returns the union of multiple sets.", sunion),
    spec("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", "Stores the union of multiple sets in a key.", sunionstore),
    spec("sdiff", -2, READONLY, (1, -1, 1), "set", "1.0.0", "Returns the difference of multiple sets.", sdiff),
    spec("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", "Stores the difference of multiple sets in a key.", sdiffstore),
    spec("sscan", -3, READONLY | RANDOM, (1, 1, 1), "set", "2.8.0", "Iterates over members of a set.", sscan),
];

const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
const TOO_MANY_NUMKEYS: &str = "ERR Number of keys can't be greater than number of args";
const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";

fn bulk(member: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(member))
}

fn sadd(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, members) = (args.key()?, args.rest());
    let added = write::<OrSet, _>(ctx, key, |set, w| {
        let mut delta = SetDelta::default();
        let mut added = 0;
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for member in members {
            if !seen.insert(member) {
                continue;
            }
            if !set.contains(member) {
                added += 1;
            }
            delta.changes.push(set.delta_add(member, w.next_dot()));
        }
        Ok((delta, added))
    })?;
    Ok(Reply::Integer(added))
}

fn srem(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, members) = (args.key()?, args.rest());
    let removed = write::<OrSet, _>(ctx, key, |set, _| {
        let mut delta = SetDelta::default();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for member in members {
            if seen.insert(member) {
                delta.push(set.delta_remove(member));
            }
        }
        let removed = delta.changes.len() as i64;
        Ok((delta, removed))
    })?;
    Ok(Reply::Integer(removed))
}

fn sismember(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, member) = (args.key()?, args.next()?);
    let set = read::<OrSet>(ctx, key)?;
    Ok(Reply::Integer(
        set.is_some_and(|s| s.contains(member)) as i64
    ))
}

fn smismember(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (key, members) = (args.key()?, args.rest());
    let set = read::<OrSet>(ctx, key)?;
    Ok(Reply::Array(
        members
            .iter()
            .map(|m| Reply::Integer(set.is_some_and(|s| s.contains(m)) as i64))
            .collect(),
    ))
}

fn smembers(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let set = read::<OrSet>(ctx, args.key()?)?;
    Ok(Reply::Set(set.map_or_else(Vec::new, |s| {
        s.members().map(bulk).collect()
    })))
}

fn scard(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let set = read::<OrSet>(ctx, args.key()?)?;
    Ok(Reply::Integer(set.map_or(0, |s| s.len()) as i64))
}

/// SPOP/SRANDMEMBER's optional count, with Redis's errors in Redis's
/// order: more than one argument after the key is a syntax error before
/// the count is read; a negative count (SRANDMEMBER only) is at most
/// [`MAX_REPEATED_PICKS`] picks.
fn optional_count(args: &mut Args, allow_negative: bool) -> Result<Option<i64>, Reply> {
    if args.remaining() > 1 {
        return Err(err(SYNTAX_ERROR));
    }
    if args.is_done() {
        return Ok(None);
    }
    let n = if allow_negative {
        args.int_in(-i64::MAX..=i64::MAX, COUNT_OUT_OF_RANGE)?
    } else {
        args.count()? as i64
    };
    check_repeated_picks(n)?;
    Ok(Some(n))
}

fn spop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let count = optional_count(args, false)?;
    let picked = write::<OrSet, _>(ctx, key, |set, w| {
        let wanted = count.unwrap_or(1).min(set.len() as i64) as usize;
        let mut picked: Vec<Box<[u8]>> = Vec::with_capacity(wanted);
        if wanted == set.len() {
            picked.extend(set.members().map(Box::from));
        } else {
            let mut chosen: HashSet<&[u8]> = HashSet::with_capacity(wanted);
            while chosen.len() < wanted {
                if let Some(m) = set.random_member(|n| w.random(n)) {
                    if chosen.insert(m) {
                        picked.push(m.into());
                    }
                }
            }
        }
        let mut delta = SetDelta::default();
        for member in &picked {
            delta.push(set.delta_remove(member));
        }
        Ok((delta, picked))
    })?;
    Ok(match count {
        None => picked.first().map_or(Reply::Nil, |m| bulk(m)),
        Some(_) => Reply::Set(picked.iter().map(|m| bulk(m)).collect()),
    })
}

fn srandmember(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let count = optional_count(args, true)?;
    let db = ctx.client.db;
    let (state, rng) = ctx.store.lookup_read_with_rng(db, key);
    let set = match state.map(|s| s.typed::<OrSet>()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(set))) => Some(set),
        Some(Err(_)) => return Err(typed::wrongtype()),
    };
    let mut random = |n: usize| rand::Rng::gen_range(rng, 0..n);
    let Some(count) = count else {
        return Ok(set
            .and_then(|s| s.random_member(&mut random))
            .map_or(Reply::Nil, bulk));
    };
    let Some(set) = set else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count < 0 {
        // Negative: that many picks, repeats allowed.
        let picks = count.unsigned_abs() as usize;
        return Ok(Reply::Array(
            (0..picks)
                .filter_map(|_| set.random_member(&mut random).map(bulk))
                .collect(),
        ));
    }
    let wanted = (count as usize).min(set.len());
    if wanted == set.len() {
        return Ok(Reply::Array(set.members().map(bulk).collect()));
    }
    let mut chosen: Vec<&[u8]> = Vec::with_capacity(wanted);
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(wanted);
    while chosen.len() < wanted {
        if let Some(m) = set.random_member(&mut random) {
            if seen.insert(m) {
                chosen.push(m);
            }
        }
    }
    Ok(Reply::Array(chosen.into_iter().map(bulk).collect()))
}

fn smove(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (source, destination, member) = (args.key()?, args.key()?, args.next()?);
    // Both keys must be sets (or absent) before anything changes.
    let present = typed::peek::<OrSet>(ctx, source)?.is_some_and(|s| s.contains(member));
    typed::peek::<OrSet>(ctx, destination)?;
    if !present {
        return Ok(Reply::Integer(0));
    }
    if source == destination {
        return Ok(Reply::Integer(1));
    }
    write::<OrSet, _>(ctx, source, |set, _| {
        let mut delta = SetDelta::default();
        delta.push(set.delta_remove(member));
        Ok((delta, ()))
    })?;
    write::<OrSet, _>(ctx, destination, |set, w| {
        let delta = SetDelta {
            changes: vec![set.delta_add(member, w.next_dot())],
        };
        Ok((delta, ()))
    })?;
    Ok(Reply::Integer(1))
}

/// The members of every key in `keys` (absent keys are empty sets), or
/// WRONGTYPE if any holds another type.
fn load_sets(ctx: &mut Context, keys: &[Bytes]) -> Result<Vec<Option<OrSet>>, Reply> {
    keys.iter()
        .map(|k| read::<OrSet>(ctx, k).map(|s| s.cloned()))
        .collect()
}

#[derive(Clone, Copy)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

/// The result of an algebra over loaded sets, in the first operand's order
/// (intersection, difference) or in first-seen order (union).
fn combine(sets: &[Option<OrSet>], op: Algebra, limit: usize) -> Vec<Box<[u8]>> {
    let mut out: Vec<Box<[u8]>> = Vec::new();
    match op {
        Algebra::Inter => {
            if sets.iter().any(|s| s.is_none()) {
                return out;
            }
            let mut order: Vec<&OrSet> = sets.iter().flatten().collect();
            // Iterate the smallest set and probe the others, as Redis does.
            order.sort_by_key(|s| s.len());
            let (smallest, rest) = order.split_first().expect("at least one key");
            for m in smallest.members() {
                if rest.iter().all(|s| s.contains(m)) {
                    out.push(m.into());
                    if limit != 0 && out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Algebra::Union => {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            for set in sets.iter().flatten() {
                for m in set.members() {
                    if seen.insert(m) {
                        out.push(m.into());
                    }
                }
            }
        }
        Algebra::Diff => {
            let Some((Some(first), others)) = sets.split_first() else {
                return out;
            };
            for m in first.members() {
                if !others.iter().flatten().any(|s| s.contains(m)) {
                    out.push(m.into());
                }
            }
        }
    }
    out
}

/// `SINTER|SUNION|SDIFF key [key ...]`.
fn algebra(ctx: &mut Context, args: &mut Args, op: Algebra) -> CmdResult {
    let sets = load_sets(ctx, args.rest())?;
    Ok(Reply::Set(
        combine(&sets, op, 0).iter().map(|m| bulk(m)).collect(),
    ))
}

/// `SINTERSTORE|SUNIONSTORE|SDIFFSTORE destination key [key ...]`.
fn algebra_store(ctx: &mut Context, args: &mut Args, op: Algebra) -> CmdResult {
    let destination = args.key()?;
    let sets = load_sets(ctx, args.rest())?;
    let members = combine(&sets, op, 0);
    let count = members.len() as i64;
    typed::overwrite::<OrSet>(ctx, destination, |_ts, next_dot| SetDelta {
        changes: members
            .into_iter()
            .map(|member| MemberChange {
                member,
                removes: Default::default(),
                add: Some(next_dot()),
            })
            .collect(),
    });
    Ok(Reply::Integer(count))
}

fn sinter(ctx: &mut Context, args: &mut Args) -> CmdResult {
    algebra(ctx, args, Algebra::Inter)
}

fn sunion(ctx: &mut Context, args: &mut Args) -> CmdResult {
    algebra(ctx, args, Algebra::Union)
}

fn sdiff(ctx: &mut Context, args: &mut Args) -> CmdResult {
    algebra(ctx, args, Algebra::Diff)
}

fn sinterstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    algebra_store(ctx, args, Algebra::Inter)
}

fn sunionstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    algebra_store(ctx, args, Algebra::Union)
}

fn sdiffstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    algebra_store(ctx, args, Algebra::Diff)
}

/// Takes an integer in `range`; `error` for anything else, a non-integer
/// included (Redis has one text for both in numkeys and LIMIT).
fn int_in_or<'a>(
    args: &mut Args<'a>,
    range: std::ops::RangeInclusive<i64>,
    error: &'static str,
) -> Result<i64, Reply> {
    args.int()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| err(error))
}

/// Reads the `numkeys key [key ...]` prefix shared by SINTERCARD and the
/// sorted-set/list commands that take one; returns the keys, leaving the
/// cursor on the first argument after them.
pub(crate) fn numkeys_prefix<'a>(args: &mut Args<'a>) -> Result<&'a [Bytes], Reply> {
    let n = int_in_or(args, 1..=i64::MAX, NUMKEYS_NOT_POSITIVE)? as usize;
    if n > args.remaining() {
        return Err(err(TOO_MANY_NUMKEYS));
    }
    args.take(n)
}

fn sintercard(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let keys = numkeys_prefix(args)?;
    let mut limit = 0usize;
    while let Some(option) = args.next_if_any() {
        if !is(option, "limit") || args.is_done() {
            return Err(err(SYNTAX_ERROR));
        }
        limit = int_in_or(args, 0..=i64::MAX, LIMIT_NEGATIVE)? as usize;
    }
    let sets = load_sets(ctx, keys)?;
    Ok(Reply::Integer(
        combine(&sets, Algebra::Inter, limit).len() as i64
    ))
}

fn sscan(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let options = scan_options(args, false)?;
    let Some(set) = read::<OrSet>(ctx, key)? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let mut items = Vec::new();
    let next = set.scan(options.cursor, options.count, |m| {
        if options.matches(m) {
            items.push(bulk(m));
        }
    });
    Ok(scan_reply(next, items))
}
