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

use super::args::{err, err_owned, int, is, SYNTAX_ERROR};
use super::flags::{DENYOOM, FAST, MOVABLEKEYS, RANDOM, READONLY, WRITE};
use super::typed::{self, read, scan_options, scan_reply, write};
use super::{spec, CommandSpec, Context};
use crate::crdt::orset::{MemberChange, OrSet, SetDelta};
use crate::crdt::ElementCrdt;
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", legacy!(sadd)),
    spec("srem", -3, WRITE | FAST, (1, 1, 1), "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", legacy!(srem)),
    spec("sismember", 3, READONLY | FAST, (1, 1, 1), "set", "1.0.0", "Determines whether a member belongs to a set.", legacy!(sismember)),
    spec("smismember", -3, READONLY | FAST, (1, 1, 1), "set", "6.2.0", "Determines whether multiple members belong to a set.", legacy!(smismember)),
    spec("smembers", 2, READONLY, (1, 1, 1), "set", "1.0.0", "Returns all members of a set.", legacy!(smembers)),
    spec("scard", 2, READONLY | FAST, (1, 1, 1), "set", "1.0.0", "Returns the number of members in a set.", legacy!(scard)),
    spec("spop", -2, WRITE | RANDOM | FAST, (1, 1, 1), "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", legacy!(spop)),
    spec("srandmember", -2, READONLY | RANDOM, (1, 1, 1), "set", "1.0.0", "Get one or multiple random members from a set", legacy!(srandmember)),
    spec("smove", 4, WRITE | FAST, (1, 2, 1), "set", "1.0.0", "Moves a member from one set to another.", legacy!(smove)),
    spec("sinter", -2, READONLY, (1, -1, 1), "set", "1.0.0", "Returns the intersect of multiple sets.", legacy!(sinter)),
    spec("sintercard", -3, READONLY | MOVABLEKEYS, (0, 0, 0), "set", "7.0.0", "Returns the number of members of the intersect of multiple sets.", legacy!(sintercard)),
    spec("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", "Stores the intersect of multiple sets in a key.", legacy!(sinterstore)),
    spec("sunion", -2, READONLY, (1, -1, 1), "set", "1.0.0", "Returns the union of multiple sets.", legacy!(sunion)),
    spec("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", "Stores the union of multiple sets in a key.", legacy!(sunionstore)),
    spec("sdiff", -2, READONLY, (1, -1, 1), "set", "1.0.0", "Returns the difference of multiple sets.", legacy!(sdiff)),
    spec("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", "1.0.0", "Stores the difference of multiple sets in a key.", legacy!(sdiffstore)),
    spec("sscan", -3, READONLY | RANDOM, (1, 1, 1), "set", "2.8.0", "Iterates over members of a set.", legacy!(sscan)),
];

fn bulk(member: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(member))
}

fn sadd(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let result = write::<OrSet, _>(ctx, &args[1], |set, w| {
        let mut delta = SetDelta::default();
        let mut added = 0;
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for member in &args[2..] {
            if !seen.insert(member) {
                continue;
            }
            if !set.contains(member) {
                added += 1;
            }
            delta.changes.push(set.delta_add(member, w.next_dot()));
        }
        Ok((delta, added))
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn srem(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let result = write::<OrSet, _>(ctx, &args[1], |set, _| {
        let mut delta = SetDelta::default();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for member in &args[2..] {
            if seen.insert(member) {
                delta.push(set.delta_remove(member));
            }
        }
        let removed = delta.changes.len() as i64;
        Ok((delta, removed))
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn sismember(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrSet>(ctx, &args[1]) {
        Ok(set) => Reply::Integer(set.is_some_and(|s| s.contains(&args[2])) as i64),
        Err(e) => e,
    }
}

fn smismember(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrSet>(ctx, &args[1]) {
        Ok(set) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| Reply::Integer(set.is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn smembers(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrSet>(ctx, &args[1]) {
        Ok(set) => Reply::Set(set.map_or_else(Vec::new, |s| s.members().map(bulk).collect())),
        Err(e) => e,
    }
}

fn scard(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<OrSet>(ctx, &args[1]) {
        Ok(set) => Reply::Integer(set.map_or(0, |s| s.len()) as i64),
        Err(e) => e,
    }
}

/// Most picks a negative SRANDMEMBER count may ask for: each pick is a
/// reply element, and Redis would try to build any size (and run out of
/// memory); cordis refuses beyond this.
pub(crate) const MAX_REPEATED_PICKS: u64 = 1 << 24;

/// SPOP/SRANDMEMBER's optional count, with Redis's range errors.
fn parse_count(arg: &[u8], allow_negative: bool) -> Result<i64, Reply> {
    let n = int(arg)?;
    if !allow_negative && n < 0 {
        return Err(err("ERR value is out of range, must be positive"));
    }
    if n == i64::MIN {
        return Err(err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if n < 0 && n.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(err_owned(format!(
            "ERR value is out of range, cordis returns at most {MAX_REPEATED_PICKS} repeated picks"
        )));
    }
    Ok(n)
}

fn spop(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return err(SYNTAX_ERROR);
    }
    let count = match args.get(2).map(|a| parse_count(a, false)).transpose() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let result = write::<OrSet, _>(ctx, &args[1], |set, w| {
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
    });
    match (result, count) {
        (Err(e), _) => e,
        (Ok(picked), None) => picked.first().map_or(Reply::Nil, |m| bulk(m)),
        (Ok(picked), Some(_)) => Reply::Set(picked.iter().map(|m| bulk(m)).collect()),
    }
}

fn srandmember(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return err(SYNTAX_ERROR);
    }
    let count = match args.get(2).map(|a| parse_count(a, true)).transpose() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let db = ctx.client.db;
    let (state, rng) = ctx.store.lookup_read_with_rng(db, &args[1]);
    let set = match state.map(|s| s.typed::<OrSet>()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(set))) => Some(set),
        Some(Err(_)) => return typed::wrongtype(),
    };
    let mut random = |n: usize| rand::Rng::gen_range(rng, 0..n);
    let Some(count) = count else {
        return set
            .and_then(|s| s.random_member(&mut random))
            .map_or(Reply::Nil, bulk);
    };
    let Some(set) = set else {
        return Reply::Array(Vec::new());
    };
    if count < 0 {
        // Negative: that many picks, repeats allowed.
        let picks = count.unsigned_abs() as usize;
        return Reply::Array(
            (0..picks)
                .filter_map(|_| set.random_member(&mut random).map(bulk))
                .collect(),
        );
    }
    let wanted = (count as usize).min(set.len());
    if wanted == set.len() {
        return Reply::Array(set.members().map(bulk).collect());
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
    Reply::Array(chosen.into_iter().map(bulk).collect())
}

fn smove(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (source, destination, member) = (&args[1], &args[2], &args[3]);
    // Both keys must be sets (or absent) before anything changes.
    let present = match typed::peek::<OrSet>(ctx, source) {
        Ok(set) => set.is_some_and(|s| s.contains(member)),
        Err(e) => return e,
    };
    if let Err(e) = typed::peek::<OrSet>(ctx, destination) {
        return e;
    }
    if !present {
        return Reply::Integer(0);
    }
    if source == destination {
        return Reply::Integer(1);
    }
    let removed = write::<OrSet, _>(ctx, source, |set, _| {
        let mut delta = SetDelta::default();
        delta.push(set.delta_remove(member));
        Ok((delta, ()))
    });
    if let Err(e) = removed {
        return e;
    }
    let added = write::<OrSet, _>(ctx, destination, |set, w| {
        let delta = SetDelta {
            changes: vec![set.delta_add(member, w.next_dot())],
        };
        Ok((delta, ()))
    });
    added.map_or_else(|e| e, |()| Reply::Integer(1))
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
            let Some(Some(first)) = sets.first() else {
                return out;
            };
            for m in first.members() {
                if !sets[1..].iter().flatten().any(|s| s.contains(m)) {
                    out.push(m.into());
                }
            }
        }
    }
    out
}

fn algebra(ctx: &mut Context, keys: &[Bytes], op: Algebra) -> Reply {
    match load_sets(ctx, keys) {
        Ok(sets) => Reply::Set(combine(&sets, op, 0).iter().map(|m| bulk(m)).collect()),
        Err(e) => e,
    }
}

fn algebra_store(ctx: &mut Context, args: &[Bytes], op: Algebra) -> Reply {
    let sets = match load_sets(ctx, &args[2..]) {
        Ok(sets) => sets,
        Err(e) => return e,
    };
    let members = combine(&sets, op, 0);
    let count = members.len() as i64;
    typed::overwrite::<OrSet>(ctx, &args[1], |_ts, next_dot| SetDelta {
        changes: members
            .into_iter()
            .map(|member| MemberChange {
                member,
                removes: Default::default(),
                add: Some(next_dot()),
            })
            .collect(),
    });
    Reply::Integer(count)
}

fn sinter(ctx: &mut Context, args: &[Bytes]) -> Reply {
    algebra(ctx, &args[1..], Algebra::Inter)
}

fn sunion(ctx: &mut Context, args: &[Bytes]) -> Reply {
    algebra(ctx, &args[1..], Algebra::Union)
}

fn sdiff(ctx: &mut Context, args: &[Bytes]) -> Reply {
    algebra(ctx, &args[1..], Algebra::Diff)
}

fn sinterstore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    algebra_store(ctx, args, Algebra::Inter)
}

fn sunionstore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    algebra_store(ctx, args, Algebra::Union)
}

fn sdiffstore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    algebra_store(ctx, args, Algebra::Diff)
}

/// Parses the `numkeys key [key ...]` prefix shared by SINTERCARD and the
/// sorted-set/list commands that take one; returns the keys and the index
/// of the first argument after them.
pub(crate) fn numkeys_prefix(args: &[Bytes], at: usize) -> Result<(&[Bytes], usize), Reply> {
    let n = int(&args[at]).map_err(|_| err("ERR numkeys should be greater than 0"))?;
    if n <= 0 {
        return Err(err("ERR numkeys should be greater than 0"));
    }
    let n = n as usize;
    if n > args.len() - at - 1 {
        return Err(err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok((&args[at + 1..at + 1 + n], at + 1 + n))
}

fn sintercard(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (keys, mut i) = match numkeys_prefix(args, 1) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let mut limit = 0usize;
    while i < args.len() {
        if is(&args[i], "limit") && i + 1 < args.len() {
            match int(&args[i + 1]) {
                Ok(n) if n >= 0 => limit = n as usize,
                _ => return err("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return err(SYNTAX_ERROR);
        }
    }
    match load_sets(ctx, keys) {
        Ok(sets) => Reply::Integer(combine(&sets, Algebra::Inter, limit).len() as i64),
        Err(e) => e,
    }
}

fn sscan(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let options = match scan_options(&mut super::Args::new(args, 2), false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let set = match read::<OrSet>(ctx, &args[1]) {
        Ok(Some(set)) => set,
        Ok(None) => return scan_reply(0, Vec::new()),
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let next = set.scan(options.cursor, options.count, |m| {
        if options.matches(m) {
            items.push(bulk(m));
        }
    });
    scan_reply(next, items)
}
