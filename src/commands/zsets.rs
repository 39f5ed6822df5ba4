//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT,
//! ZLEXCOUNT, the ZRANGE family (ZRANGE, ZRANGESTORE, ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE), ZRANK,
//! ZREVRANK, ZPOPMIN, ZPOPMAX, ZRANDMEMBER, the ZREMRANGEBY* family,
//! ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE and ZSCAN.
//!
//! Sorted sets are `crdt::zset`: members are add-wins, a ZADD's score is
//! LWW, ZINCRBYs from different regions add up, a ZADD or ZREM resets only
//! the increments it observed. ZPOPMIN/ZPOPMAX are a local pick plus an
//! observed remove, so two regions may pop the same member
//! (docs/semantics.md). Scores reply as `Reply::Double`: a bulk string in
//! RESP2, a double in RESP3, and WITHSCORES pairs nest in RESP3 as in
//! Redis 7.

use std::collections::HashMap;
use std::ops::Bound;

use bytes::Bytes;

use super::args::{err, int, is, NOT_A_FLOAT, SYNTAX_ERROR};
use super::flags::{DENYOOM, FAST, MOVABLEKEYS, RANDOM, READONLY, WRITE};
use super::typed::{self, read, scan_options, scan_reply, write};
use super::{spec, CommandSpec, Context};
use crate::crdt::orset::OrSet;
use crate::crdt::zset::{ZSet, ZSetDelta};
use crate::crdt::{ElementCrdt, Kind};
use crate::protocol::{format_double, Reply, RespVersion};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", legacy!(zadd)),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Increments the score of a member in a sorted set.", legacy!(zincrby)),
    spec("zrem", -3, WRITE | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", legacy!(zrem)),
    spec("zscore", 3, READONLY | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Returns the score of a member in a sorted set.", legacy!(zscore)),
    spec("zmscore", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set.", legacy!(zmscore)),
    spec("zcard", 2, READONLY | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Returns the number of members in a sorted set.", legacy!(zcard)),
    spec("zcount", 4, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", legacy!(zcount)),
    spec("zlexcount", 4, READONLY | FAST, (1, 1, 1), "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", legacy!(zlexcount)),
    spec("zrange", -4, READONLY, (1, 1, 1), "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes.", legacy!(zrange)),
    spec("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key.", legacy!(zrangestore)),
    spec("zrangebyscore", -4, READONLY, (1, 1, 1), "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores.", legacy!(zrangebyscore)),
    spec("zrevrangebyscore", -4, READONLY, (1, 1, 1), "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", legacy!(zrevrangebyscore)),
    spec("zrangebylex", -4, READONLY, (1, 1, 1), "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range.", legacy!(zrangebylex)),
    spec("zrevrangebylex", -4, READONLY, (1, 1, 1), "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", legacy!(zrevrangebylex)),
    spec("zrevrange", -4, READONLY, (1, 1, 1), "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", legacy!(zrevrange)),
    spec("zrank", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", legacy!(zrank)),
    spec("zrevrank", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", legacy!(zrevrank)),
    spec("zpopmin", -2, WRITE | FAST, (1, 1, 1), "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", legacy!(zpopmin)),
    spec("zpopmax", -2, WRITE | FAST, (1, 1, 1), "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", legacy!(zpopmax)),
    spec("zrandmember", -2, READONLY | RANDOM, (1, 1, 1), "sorted-set", "6.2.0", "Returns one or more random members from a sorted set.", legacy!(zrandmember)),
    spec("zremrangebyscore", 4, WRITE, (1, 1, 1), "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", legacy!(zremrangebyscore)),
    spec("zremrangebyrank", 4, WRITE, (1, 1, 1), "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", legacy!(zremrangebyrank)),
    spec("zremrangebylex", 4, WRITE, (1, 1, 1), "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", legacy!(zremrangebylex)),
    spec("zunionstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key.", legacy!(zunionstore)),
    spec("zinterstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key.", legacy!(zinterstore)),
    spec("zdiffstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key.", legacy!(zdiffstore)),
    spec("zscan", -3, READONLY | RANDOM, (1, 1, 1), "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set.", legacy!(zscan)),
];

const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";
const NOT_A_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_A_LEX_RANGE: &str = "ERR min or max not valid string range item";
const OUT_OF_RANGE: &str = "ERR value is out of range";
const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
/// The largest |count| ZRANDMEMBER accepts for repeated picks: larger
/// negative counts would build an unbounded reply (docs/semantics.md).
const MAX_RANDOM_PICKS: u64 = 1 << 24;

fn bulk(member: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(member))
}

fn resp3(ctx: &Context) -> bool {
    ctx.client.resp == RespVersion::Resp3
}

/// `member score` pairs: flat in RESP2, nested pairs in RESP3 (Redis 7).
fn scored_reply<'a>(
    resp3: bool,
    items: impl IntoIterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) -> Reply {
    let mut out = Vec::new();
    for (member, score) in items {
        if !withscores {
            out.push(bulk(member));
        } else if resp3 {
            out.push(Reply::Array(vec![bulk(member), Reply::Double(score)]));
        } else {
            out.push(bulk(member));
            out.push(Reply::Double(score));
        }
    }
    Reply::Array(out)
}

/// A score argument as Redis's `strtod` reads it (`inf`, `-inf`, `1e3`…);
/// NaN is refused.
fn parse_float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.len() > 256 {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// A score or weight argument: like [`parse_float`], and like Redis's
/// `getDoubleFromObject` also refusing values out of the `f64` range
/// (`1e400`, `1e-400`), which range bounds accept.
fn strict_float(arg: &[u8]) -> Option<f64> {
    let value = parse_float(arg)?;
    let mantissa = arg.split(|&b| b == b'e' || b == b'E').next().unwrap_or(b"");
    let overflow = value.is_infinite() && !arg.to_ascii_lowercase().windows(3).any(|w| w == b"inf");
    let underflow = value == 0.0 && mantissa.iter().any(|b| (b'1'..=b'9').contains(b));
    (!overflow && !underflow).then_some(value)
}

fn score_arg(arg: &[u8]) -> Result<f64, Reply> {
    strict_float(arg).ok_or_else(|| err(NOT_A_FLOAT))
}

/// `1.5`, `(1.5`, `-inf`, `+inf`: one end of a score range.
fn score_bound(arg: &[u8]) -> Result<Bound<f64>, Reply> {
    let bound = match arg.strip_prefix(b"(") {
        Some(rest) => parse_float(rest).map(Bound::Excluded),
        None => parse_float(arg).map(Bound::Included),
    };
    bound.ok_or_else(|| err(NOT_A_FLOAT_RANGE))
}

/// One end of a lex range: `-`, `+`, `[member`, `(member`.
#[derive(Clone, Debug)]
enum Lex {
    Min,
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

fn lex_bound(arg: &Bytes) -> Result<Lex, Reply> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Ok(Lex::Min),
        Some(b'+') if arg.len() == 1 => Ok(Lex::Max),
        Some(b'[') => Ok(Lex::Incl(arg.slice(1..))),
        Some(b'(') => Ok(Lex::Excl(arg.slice(1..))),
        _ => Err(err(NOT_A_LEX_RANGE)),
    }
}

fn above_min(member: &[u8], min: &Lex) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::Incl(b) => member >= b.as_ref(),
        Lex::Excl(b) => member > b.as_ref(),
    }
}

fn below_max(member: &[u8], max: &Lex) -> bool {
    match max {
        Lex::Max => true,
        Lex::Min => false,
        Lex::Incl(b) => member <= b.as_ref(),
        Lex::Excl(b) => member < b.as_ref(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// What to select, ends already in ascending order.
#[derive(Clone, Debug)]
enum Span {
    Rank(i64, i64),
    Score(Bound<f64>, Bound<f64>),
    Lex(Lex, Lex),
}

/// A parsed ZRANGE-family request.
struct RangeSpec {
    span: Span,
    rev: bool,
    offset: i64,
    /// Negative: no limit (Redis's default of -1).
    limit: i64,
    withscores: bool,
}

/// Parses `min max [options]` at `args[at..]` like Redis 7's
/// zrangeGenericCommand; `by`/`rev` are preset by the legacy commands.
fn parse_range(
    args: &[Bytes],
    at: usize,
    store: bool,
    by: Option<By>,
    rev: Option<bool>,
) -> Result<RangeSpec, Reply> {
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut offset, mut limit, mut withscores) = (0i64, -1i64, false);
    let mut j = at + 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = int(&args[j + 1])?;
            limit = int(&args[j + 2])?;
            j += 2;
        } else if rev_opt.is_none() && is(a, "rev") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && is(a, "bylex") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && is(a, "byscore") {
            by_opt = Some(By::Score);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(By::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return Err(err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == By::Lex {
        return Err(err(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[at], &args[at + 1]);
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let span = match by {
        By::Rank => Span::Rank(int(lo)?, int(hi)?),
        By::Score => Span::Score(score_bound(lo)?, score_bound(hi)?),
        By::Lex => Span::Lex(lex_bound(lo)?, lex_bound(hi)?),
    };
    Ok(RangeSpec {
        span,
        rev,
        offset,
        limit,
        withscores,
    })
}

/// Normalizes Redis's `start stop` rank pair against `len` (None: empty).
fn rank_window(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// The members a range request selects, in reply order.
fn select<'a>(z: &'a ZSet, spec: &RangeSpec) -> Vec<(&'a [u8], f64)> {
    let window = |iter: Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>| -> Vec<(&'a [u8], f64)> {
        if spec.offset < 0 {
            return Vec::new();
        }
        let take = if spec.limit < 0 {
            usize::MAX
        } else {
            spec.limit as usize
        };
        iter.skip(spec.offset as usize).take(take).collect()
    };
    match &spec.span {
        Span::Rank(start, stop) => {
            let Some((start, stop)) = rank_window(*start, *stop, z.len()) else {
                return Vec::new();
            };
            let n = stop - start + 1;
            if spec.rev {
                z.ascending().rev().skip(start).take(n).collect()
            } else {
                z.ascending().skip(start).take(n).collect()
            }
        }
        Span::Score(min, max) => {
            let range = z.score_range(*min, *max);
            if spec.rev {
                window(Box::new(range.rev()))
            } else {
                window(Box::new(range))
            }
        }
        Span::Lex(min, max) => {
            let (min, max) = (min.clone(), max.clone());
            if spec.rev {
                let min2 = min.clone();
                window(Box::new(
                    z.ascending()
                        .rev()
                        .skip_while(move |(m, _)| !below_max(m, &max))
                        .take_while(move |(m, _)| above_min(m, &min2)),
                ))
            } else {
                window(Box::new(
                    z.ascending()
                        .skip_while(move |(m, _)| !above_min(m, &min))
                        .take_while(move |(m, _)| below_max(m, &max)),
                ))
            }
        }
    }
}

// ----- writes -----

#[derive(Default)]
struct ZaddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

fn zadd(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let mut f = ZaddFlags::default();
    let mut at = 2;
    while at < args.len() {
        let a = &args[at];
        match () {
            _ if is(a, "nx") => f.nx = true,
            _ if is(a, "xx") => f.xx = true,
            _ if is(a, "gt") => f.gt = true,
            _ if is(a, "lt") => f.lt = true,
            _ if is(a, "ch") => f.ch = true,
            _ if is(a, "incr") => f.incr = true,
            _ => break,
        }
        at += 1;
    }
    let elements = args.len() - at;
    if elements == 0 || !elements.is_multiple_of(2) {
        return err(SYNTAX_ERROR);
    }
    if f.nx && f.xx {
        return err("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 2 {
        return err("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs: Vec<(f64, &Bytes)> = Vec::with_capacity(elements / 2);
    for pair in args[at..].chunks(2) {
        match score_arg(&pair[0]) {
            Ok(s) => pairs.push((s, &pair[1])),
            Err(e) => return e,
        }
    }
    zadd_generic(ctx, &args[1], &f, &pairs)
}

fn zincrby(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let amount = match score_arg(&args[2]) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let flags = ZaddFlags {
        incr: true,
        ..ZaddFlags::default()
    };
    zadd_generic(ctx, &args[1], &flags, &[(amount, &args[3])])
}

/// ZADD's element loop, as Redis's zsetAdd: each pair sees the effect of
/// the pairs before it; the delta keeps one change per member.
fn zadd_generic(ctx: &mut Context, key: &Bytes, f: &ZaddFlags, pairs: &[(f64, &Bytes)]) -> Reply {
    let result = write::<ZSet, _>(ctx, key, |z, w| {
        let mut delta = ZSetDelta::default();
        // Scores as this command has left them so far (None: removed).
        let mut pending: HashMap<&[u8], f64> = HashMap::new();
        let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
        let mut last_score = 0.0;
        let ts = w.ts();
        for &(score, member) in pairs {
            let current = match pending.get(member.as_ref()) {
                Some(&score) => Some(score),
                None => z.score(member),
            };
            let new_score = match current {
                Some(cur) => {
                    if f.nx {
                        continue;
                    }
                    let new_score = if f.incr { cur + score } else { score };
                    if new_score.is_nan() {
                        return Err(err(NAN_RESULT));
                    }
                    if (f.lt && new_score >= cur) || (f.gt && new_score <= cur) {
                        continue;
                    }
                    if new_score != cur {
                        updated += 1;
                    }
                    new_score
                }
                None => {
                    if f.xx {
                        continue;
                    }
                    added += 1;
                    score
                }
            };
            processed += 1;
            let new_score = if f.incr {
                // Increments stay counters so concurrent ones add up. A
                // member repeated in one command is not possible with INCR.
                match z.delta_incr(member, score, w.replica(), w.next_dot()) {
                    Ok((change, s)) => {
                        delta.push(change);
                        s
                    }
                    Err(_) => return Err(err(NAN_RESULT)),
                }
            } else {
                delta.push(z.delta_set(member, new_score + 0.0, ts, w.next_dot()));
                new_score + 0.0
            };
            if pairs.len() > 1 {
                pending.insert(member.as_ref(), new_score);
            }
            last_score = new_score;
        }
        Ok((delta, (added, updated, processed, last_score)))
    });
    match result {
        Err(e) => e,
        Ok((_, _, processed, score)) if f.incr => {
            if processed > 0 {
                Reply::Double(score)
            } else {
                Reply::Nil
            }
        }
        Ok((added, updated, _, _)) => Reply::Integer(if f.ch { added + updated } else { added }),
    }
}

/// Removes `members` (as observed) and returns how many were present.
fn remove_members(ctx: &mut Context, key: &[u8], members: Vec<Box<[u8]>>) -> Result<i64, Reply> {
    write::<ZSet, _>(ctx, key, |z, w| {
        let ts = w.ts();
        let mut delta = ZSetDelta::default();
        let mut next_dot = || w.next_dot();
        let mut removed = 0;
        for m in &members {
            if delta.changes.iter().any(|c| &c.member == m) {
                continue;
            }
            if let Some(change) = z.delta_remove(m, ts, &mut next_dot) {
                delta.changes.push(change);
                removed += 1;
            }
        }
        Ok((delta, removed))
    })
}

fn zrem(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let members = args[2..].iter().map(|m| Box::from(m.as_ref())).collect();
    remove_members(ctx, &args[1], members).map_or_else(|e| e, Reply::Integer)
}

fn zpop(ctx: &mut Context, args: &[Bytes], max: bool) -> Reply {
    if args.len() > 3 {
        return err(SYNTAX_ERROR);
    }
    let count = match args.get(2).map(|a| int(a)).transpose() {
        Ok(Some(n)) if n < 0 => return err(MUST_BE_POSITIVE),
        Ok(c) => c,
        Err(e) => return e,
    };
    let wanted = count.unwrap_or(1) as usize;
    let resp3 = resp3(ctx);
    let result = write::<ZSet, _>(ctx, &args[1], |z, w| {
        let picked: Vec<(Box<[u8]>, f64)> = if max {
            z.ascending()
                .rev()
                .take(wanted)
                .map(|(m, s)| (m.into(), s))
                .collect()
        } else {
            z.ascending()
                .take(wanted)
                .map(|(m, s)| (m.into(), s))
                .collect()
        };
        let ts = w.ts();
        let mut next_dot = || w.next_dot();
        let mut delta = ZSetDelta::default();
        for (m, _) in &picked {
            delta.changes.extend(z.delta_remove(m, ts, &mut next_dot));
        }
        Ok((delta, picked))
    });
    match result {
        Err(e) => e,
        Ok(picked) => {
            let items = picked.iter().map(|(m, s)| (m.as_ref(), *s));
            if count.is_none() {
                // No count: one flat pair in both protocols.
                scored_reply(false, items, true)
            } else {
                scored_reply(resp3, items, true)
            }
        }
    }
}

fn zpopmin(ctx: &mut Context, args: &[Bytes]) -> Reply {
    zpop(ctx, args, false)
}

fn zpopmax(ctx: &mut Context, args: &[Bytes]) -> Reply {
    zpop(ctx, args, true)
}

fn zremrange(ctx: &mut Context, args: &[Bytes], by: By) -> Reply {
    let spec = RangeSpec {
        span: match by {
            By::Rank => match (int(&args[2]), int(&args[3])) {
                (Ok(a), Ok(b)) => Span::Rank(a, b),
                (Err(e), _) | (_, Err(e)) => return e,
            },
            By::Score => match (score_bound(&args[2]), score_bound(&args[3])) {
                (Ok(a), Ok(b)) => Span::Score(a, b),
                (Err(e), _) | (_, Err(e)) => return e,
            },
            By::Lex => match (lex_bound(&args[2]), lex_bound(&args[3])) {
                (Ok(a), Ok(b)) => Span::Lex(a, b),
                (Err(e), _) | (_, Err(e)) => return e,
            },
        },
        rev: false,
        offset: 0,
        limit: -1,
        withscores: false,
    };
    let members = match typed::peek::<ZSet>(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(z)) => select(z, &spec)
            .into_iter()
            .map(|(m, _)| Box::from(m))
            .collect(),
    };
    remove_members(ctx, &args[1], members).map_or_else(|e| e, Reply::Integer)
}

fn zremrangebyscore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    zremrange(ctx, args, By::Score)
}

fn zremrangebyrank(ctx: &mut Context, args: &[Bytes]) -> Reply {
    zremrange(ctx, args, By::Rank)
}

fn zremrangebylex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    zremrange(ctx, args, By::Lex)
}

/// Replaces `key` (any type, and its TTL) with a sorted set of `scored`;
/// nothing stored (and the key deleted) when `scored` is empty.
fn store(ctx: &mut Context, key: &[u8], scored: Vec<(Box<[u8]>, f64)>) {
    super::typed::overwrite::<ZSet>(ctx, key, |ts, next_dot| {
        ZSet::delta_build(scored, ts, next_dot)
    });
}

// ----- reads -----

fn zscore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => z
            .and_then(|z| z.score(&args[2]))
            .map_or(Reply::Nil, Reply::Double),
        Err(e) => e,
    }
}

fn zmscore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn zcard(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => Reply::Integer(z.map_or(0, |z| z.len()) as i64),
        Err(e) => e,
    }
}

fn zcount(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (min, max) = match (score_bound(&args[2]), score_bound(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => Reply::Integer(z.map_or(0, |z| z.score_range(min, max).count()) as i64),
        Err(e) => e,
    }
}

fn zlexcount(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (min, max) = match (lex_bound(&args[2]), lex_bound(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let spec = RangeSpec {
        span: Span::Lex(min, max),
        rev: false,
        offset: 0,
        limit: -1,
        withscores: false,
    };
    match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => Reply::Integer(z.map_or(0, |z| select(z, &spec).len()) as i64),
        Err(e) => e,
    }
}

fn range_command(ctx: &mut Context, args: &[Bytes], by: Option<By>, rev: Option<bool>) -> Reply {
    let spec = match parse_range(args, 2, false, by, rev) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let resp3 = resp3(ctx);
    match read::<ZSet>(ctx, &args[1]) {
        Ok(None) => Reply::Array(Vec::new()),
        Ok(Some(z)) => scored_reply(resp3, select(z, &spec), spec.withscores),
        Err(e) => e,
    }
}

fn zrange(ctx: &mut Context, args: &[Bytes]) -> Reply {
    range_command(ctx, args, None, None)
}

fn zrangebyscore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    range_command(ctx, args, Some(By::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    range_command(ctx, args, Some(By::Score), Some(true))
}

fn zrangebylex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    range_command(ctx, args, Some(By::Lex), Some(false))
}

fn zrevrangebylex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    range_command(ctx, args, Some(By::Lex), Some(true))
}

fn zrevrange(ctx: &mut Context, args: &[Bytes]) -> Reply {
    range_command(ctx, args, Some(By::Rank), Some(true))
}

fn zrangestore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let spec = match parse_range(args, 3, true, None, None) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let picked: Vec<(Box<[u8]>, f64)> = match typed::peek::<ZSet>(ctx, &args[2]) {
        Err(e) => return e,
        Ok(None) => Vec::new(),
        Ok(Some(z)) => select(z, &spec)
            .into_iter()
            .map(|(m, s)| (Box::from(m), s))
            .collect(),
    };
    let n = picked.len() as i64;
    store(ctx, &args[1], picked);
    Reply::Integer(n)
}

fn rank_command(ctx: &mut Context, args: &[Bytes], rev: bool) -> Reply {
    let withscore = match args.len() {
        3 => false,
        4 if is(&args[3], "withscore") => true,
        _ => return err(SYNTAX_ERROR),
    };
    let z = match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let found = z.and_then(|z| {
        z.rank(&args[2])
            .map(|(rank, score)| (if rev { z.len() - 1 - rank } else { rank }, score))
    });
    match (found, withscore) {
        (None, false) => Reply::Nil,
        (None, true) => Reply::NilArray,
        (Some((rank, _)), false) => Reply::Integer(rank as i64),
        (Some((rank, score)), true) => {
            Reply::Array(vec![Reply::Integer(rank as i64), Reply::Double(score)])
        }
    }
}

fn zrank(ctx: &mut Context, args: &[Bytes]) -> Reply {
    rank_command(ctx, args, false)
}

fn zrevrank(ctx: &mut Context, args: &[Bytes]) -> Reply {
    rank_command(ctx, args, true)
}

fn zrandmember(ctx: &mut Context, args: &[Bytes]) -> Reply {
    if args.len() > 4 {
        return err(SYNTAX_ERROR);
    }
    let withscores = match args.get(3) {
        None => false,
        Some(a) if is(a, "withscores") => true,
        Some(_) => return err(SYNTAX_ERROR),
    };
    let count = match args.get(2).map(|a| int(a)).transpose() {
        Ok(c) => c,
        Err(e) => return e,
    };
    if count == Some(i64::MIN) {
        return err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
    }
    if withscores && count.is_some_and(|c| c.unsigned_abs() > (i64::MAX / 2) as u64) {
        return err(OUT_OF_RANGE);
    }
    if count.is_some_and(|c| c < 0 && c.unsigned_abs() > MAX_RANDOM_PICKS) {
        return err(
            "ERR value is out of range, cordis caps negative ZRANDMEMBER counts at 16777216",
        );
    }
    let resp3 = resp3(ctx);
    let db = ctx.client.db;
    let (state, rng) = ctx.store.lookup_read_with_rng(db, &args[1]);
    let z = match state.map(|s| s.typed::<ZSet>()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(z))) => Some(z),
        Some(Err(_)) => return typed::wrongtype(),
    };
    let mut random = |n: usize| rand::Rng::gen_range(rng, 0..n);
    let Some(count) = count else {
        return z
            .and_then(|z| z.random_member(&mut random))
            .map_or(Reply::Nil, |(m, _)| bulk(m));
    };
    let Some(z) = z else {
        return Reply::Array(Vec::new());
    };
    if count < 0 {
        // Negative: that many picks, repeats allowed.
        let picks: Vec<(&[u8], f64)> = (0..count.unsigned_abs())
            .filter_map(|_| z.random_member(&mut random))
            .collect();
        return scored_reply(resp3, picks, withscores);
    }
    let wanted = (count as usize).min(z.len());
    if wanted == z.len() {
        return scored_reply(resp3, z.ascending().collect::<Vec<_>>(), withscores);
    }
    let mut chosen: Vec<(&[u8], f64)> = Vec::with_capacity(wanted);
    let mut seen: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    while chosen.len() < wanted {
        if let Some((m, s)) = z.random_member(&mut random) {
            if seen.insert(m) {
                chosen.push((m, s));
            }
        }
    }
    scored_reply(resp3, chosen, withscores)
}

fn zscan(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let options = match scan_options(&mut super::Args::new(args, 2), false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let z = match read::<ZSet>(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let Some(z) = z else {
        return scan_reply(0, Vec::new());
    };
    let mut items = Vec::new();
    let next = z.scan(options.cursor, options.count, |m, score| {
        if options.matches(m) {
            items.push(bulk(m));
            // ZSCAN sends scores as bulk strings in both protocols.
            let mut text = Vec::new();
            format_double(score, &mut text);
            items.push(Reply::Bulk(Bytes::from(text)));
        }
    });
    scan_reply(next, items)
}

// ----- ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(how: Aggregate, acc: f64, value: f64) -> f64 {
    match how {
        Aggregate::Sum => {
            let sum = acc + value;
            if sum.is_nan() {
                0.0
            } else {
                sum
            }
        }
        Aggregate::Min => acc.min(value),
        Aggregate::Max => acc.max(value),
    }
}

/// One input of a set operation: its members with scores (a plain set's
/// members score 1, as in Redis).
type Source = Vec<(Box<[u8]>, f64)>;

fn read_source(ctx: &mut Context, key: &[u8]) -> Result<Source, Reply> {
    let db = ctx.client.db;
    let Some(state) = ctx.store.lookup(db, key) else {
        return Ok(Vec::new());
    };
    match state.typed::<ZSet>() {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(z)) => Ok(z.ascending().map(|(m, s)| (m.into(), s)).collect()),
        Err(Kind::Set) => Ok(state
            .typed::<OrSet>()
            .ok()
            .flatten()
            .map(|s| s.members().map(|m| (m.into(), 1.0)).collect())
            .unwrap_or_default()),
        Err(_) => Err(typed::wrongtype()),
    }
}

fn set_op_store(ctx: &mut Context, args: &[Bytes], op: SetOp, name: &str) -> Reply {
    let numkeys = match int(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 1 {
        return Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    if numkeys > (args.len() - 3) as i64 {
        return err(SYNTAX_ERROR);
    }
    let numkeys = numkeys as usize;
    let mut sources: Vec<Source> = Vec::with_capacity(numkeys);
    for key in &args[3..3 + numkeys] {
        match read_source(ctx, key) {
            Ok(s) => sources.push(s),
            Err(e) => return e,
        }
    }
    let mut weights = vec![1.0f64; numkeys];
    let mut how = Aggregate::Sum;
    let mut j = 3 + numkeys;
    while j < args.len() {
        let remaining = args.len() - j;
        if op != SetOp::Diff && remaining > numkeys && is(&args[j], "weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                match strict_float(&args[j + 1 + i]) {
                    Some(v) => *w = v,
                    None => return err("ERR weight value is not a float"),
                }
            }
            j += 1 + numkeys;
        } else if op != SetOp::Diff && remaining >= 2 && is(&args[j], "aggregate") {
            how = match &args[j + 1] {
                a if is(a, "sum") => Aggregate::Sum,
                a if is(a, "min") => Aggregate::Min,
                a if is(a, "max") => Aggregate::Max,
                _ => return err(SYNTAX_ERROR),
            };
            j += 2;
        } else {
            return err(SYNTAX_ERROR);
        }
    }
    let weighted = |score: f64, weight: f64| {
        let v = score * weight;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let result: Vec<(Box<[u8]>, f64)> = match op {
        SetOp::Diff => {
            let mut rest: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
            for s in &sources[1..] {
                rest.extend(s.iter().map(|(m, _)| m.as_ref()));
            }
            sources[0]
                .iter()
                .filter(|(m, _)| !rest.contains(m.as_ref()))
                .cloned()
                .collect()
        }
        SetOp::Union | SetOp::Inter => {
            // Smallest inputs first, as Redis orders them, so float sums
            // add up in the same order.
            let mut order: Vec<usize> = (0..numkeys).collect();
            order.sort_by_key(|&i| sources[i].len());
            let maps: Vec<HashMap<&[u8], f64>> = sources
                .iter()
                .map(|s| s.iter().map(|(m, v)| (m.as_ref(), *v)).collect())
                .collect();
            let mut out: Vec<(Box<[u8]>, f64)> = Vec::new();
            let mut done: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
            for &i in &order {
                for (m, v) in &sources[i] {
                    if !done.insert(m.as_ref()) {
                        continue;
                    }
                    let mut acc = weighted(*v, weights[i]);
                    let mut in_all = true;
                    for &k in order.iter().filter(|&&k| k != i) {
                        match maps[k].get(m.as_ref()) {
                            Some(other) => acc = aggregate(how, acc, weighted(*other, weights[k])),
                            None => in_all = false,
                        }
                    }
                    if op == SetOp::Union || in_all {
                        out.push((m.clone(), acc));
                    }
                }
                if op == SetOp::Inter {
                    break;
                }
            }
            out
        }
    };
    let n = result.len() as i64;
    store(ctx, &args[1], result);
    Reply::Integer(n)
}

fn zunionstore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_op_store(ctx, args, SetOp::Union, "zunionstore")
}

fn zinterstore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_op_store(ctx, args, SetOp::Inter, "zinterstore")
}

fn zdiffstore(ctx: &mut Context, args: &[Bytes]) -> Reply {
    set_op_store(ctx, args, SetOp::Diff, "zdiffstore")
}
