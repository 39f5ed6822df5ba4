//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT,
//! ZLEXCOUNT, the ZRANGE family (ZRANGE, ZRANGESTORE, ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE), ZRANK,
//! ZREVRANK, ZPOPMIN, ZPOPMAX, ZMPOP, the blocking BZPOPMIN, BZPOPMAX and
//! BZMPOP, ZRANDMEMBER, the ZREMRANGEBY* family, the algebra ZUNION,
//! ZINTER, ZDIFF, ZINTERCARD, ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, and
//! ZSCAN.
//!
//! Sorted sets are `crdt::zset`: members are add-wins, a ZADD's score is
//! LWW, ZINCRBYs from different regions add up, a ZADD or ZREM resets only
//! the increments it observed. ZPOPMIN/ZPOPMAX (and ZMPOP and the
//! blocking pops) are a local pick plus an observed remove, so two regions may pop the same member
//! (docs/semantics.md). Scores reply as `Reply::Double`: a bulk string in
//! RESP2, a double in RESP3, and WITHSCORES pairs nest in RESP3 as in
//! Redis 7.

use std::collections::HashMap;
use std::ops::Bound;

use bytes::Bytes;

use super::args::{
    check_repeated_picks, err, int, is, parse_float, strict_float, Args, CmdResult,
    COUNT_OUT_OF_RANGE, OUT_OF_RANGE, SYNTAX_ERROR,
};
use super::flags::{DENYOOM, FAST, MOVABLEKEYS, NOSCRIPT, RANDOM, READONLY, WRITE};
use super::typed::{self, read, scan_options, scan_reply, write};
use super::{spec, CommandSpec, Context};
use crate::crdt::orset::OrSet;
use crate::crdt::zset::{ZSet, ZSetDelta};
use crate::crdt::{ElementCrdt, Kind};
use crate::protocol::{format_score, Reply, RespVersion};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", zadd),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Increments the score of a member in a sorted set.", zincrby),
    spec("zrem", -3, WRITE | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", zrem),
    spec("zscore", 3, READONLY | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Returns the score of a member in a sorted set.", zscore),
    spec("zmscore", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set.", zmscore),
    spec("zcard", 2, READONLY | FAST, (1, 1, 1), "sorted-set", "1.2.0", "Returns the number of members in a sorted set.", zcard),
    spec("zcount", 4, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", zcount),
    spec("zlexcount", 4, READONLY | FAST, (1, 1, 1), "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", zlexcount),
    spec("zrange", -4, READONLY, (1, 1, 1), "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes.", zrange),
    spec("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key.", zrangestore),
    spec("zrangebyscore", -4, READONLY, (1, 1, 1), "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores.", zrangebyscore),
    spec("zrevrangebyscore", -4, READONLY, (1, 1, 1), "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", zrevrangebyscore),
    spec("zrangebylex", -4, READONLY, (1, 1, 1), "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range.", zrangebylex),
    spec("zrevrangebylex", -4, READONLY, (1, 1, 1), "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", zrevrangebylex),
    spec("zrevrange", -4, READONLY, (1, 1, 1), "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", zrevrange),
    spec("zrank", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", zrank),
    spec("zrevrank", -3, READONLY | FAST, (1, 1, 1), "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", zrevrank),
    spec("zpopmin", -2, WRITE | FAST, (1, 1, 1), "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zpopmin),
    spec("zpopmax", -2, WRITE | FAST, (1, 1, 1), "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zpopmax),
    spec("zrandmember", -2, READONLY | RANDOM, (1, 1, 1), "sorted-set", "6.2.0", "Returns one or more random members from a sorted set.", zrandmember),
    spec("zremrangebyscore", 4, WRITE, (1, 1, 1), "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", zremrangebyscore),
    spec("zremrangebyrank", 4, WRITE, (1, 1, 1), "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", zremrangebyrank),
    spec("zremrangebylex", 4, WRITE, (1, 1, 1), "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", zremrangebylex),
    spec("zunionstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key.", zunionstore),
    spec("zinterstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key.", zinterstore),
    spec("zdiffstore", -4, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key.", zdiffstore),
    spec("zunion", -3, READONLY | MOVABLEKEYS, (0, 0, 0), "sorted-set", "6.2.0", "Returns the union of multiple sorted sets.", zunion),
    spec("zinter", -3, READONLY | MOVABLEKEYS, (0, 0, 0), "sorted-set", "6.2.0", "Returns the intersect of multiple sorted sets.", zinter),
    spec("zdiff", -3, READONLY | MOVABLEKEYS, (0, 0, 0), "sorted-set", "6.2.0", "Returns the difference between multiple sorted sets.", zdiff),
    spec("zintercard", -3, READONLY | MOVABLEKEYS, (0, 0, 0), "sorted-set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", zintercard),
    spec("zmpop", -4, WRITE | MOVABLEKEYS, (0, 0, 0), "sorted-set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", zmpop),
    spec("bzpopmin", -3, WRITE | NOSCRIPT | FAST, (1, -2, 1), "sorted-set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", bzpopmin),
    spec("bzpopmax", -3, WRITE | NOSCRIPT | FAST, (1, -2, 1), "sorted-set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", bzpopmax),
    spec("bzmpop", -5, WRITE | MOVABLEKEYS | NOSCRIPT, (0, 0, 0), "sorted-set", "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", bzmpop),
    spec("zscan", -3, READONLY | RANDOM, (1, 1, 1), "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set.", zscan),
];

const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";
const NOT_A_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_A_LEX_RANGE: &str = "ERR min or max not valid string range item";
const WEIGHT_NOT_A_FLOAT: &str = "ERR weight value is not a float";

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

/// `1.5`, `(1.5`, `-inf`, `+inf`: one end of a score range. Bounds read
/// leniently ([`parse_float`]: `1e400` is `inf`), while scores and
/// weights are strict (`Args::float`, [`strict_float`]).
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

impl RangeSpec {
    /// Every member of `span` in ascending order, without scores or LIMIT
    /// (ZLEXCOUNT, the ZREMRANGEBY* family).
    fn whole(span: Span) -> Self {
        RangeSpec {
            span,
            rev: false,
            offset: 0,
            limit: -1,
            withscores: false,
        }
    }
}

/// The span between `lo` and `hi` (ascending ends), read as `by` says:
/// ranks as integers, scores as [`score_bound`]s, lex ends as
/// [`lex_bound`]s.
fn span(by: By, lo: &Bytes, hi: &Bytes) -> Result<Span, Reply> {
    Ok(match by {
        By::Rank => Span::Rank(int(lo)?, int(hi)?),
        By::Score => Span::Score(score_bound(lo)?, score_bound(hi)?),
        By::Lex => Span::Lex(lex_bound(lo)?, lex_bound(hi)?),
    })
}

/// Reads `min max [options]` to the end like Redis 7's
/// zrangeGenericCommand; `by`/`rev` are preset by the older commands
/// (ZRANGEBYSCORE, ZREVRANGE…). The bounds are parsed only after the
/// options, as Redis does: BYSCORE, BYLEX and REV decide how to read them.
fn parse_range(
    args: &mut Args,
    store: bool,
    by: Option<By>,
    rev: Option<bool>,
) -> Result<RangeSpec, Reply> {
    let (mut lo, mut hi) = (args.next()?, args.next()?);
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut offset, mut limit, mut withscores) = (0i64, -1i64, false);
    while let Some(a) = args.next_if_any() {
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && args.remaining() >= 2 {
            offset = args.int()?;
            limit = args.int()?;
        } else if rev_opt.is_none() && is(a, "rev") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && is(a, "bylex") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && is(a, "byscore") {
            by_opt = Some(By::Score);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
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
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    Ok(RangeSpec {
        span: span(by, lo, hi)?,
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
pub(crate) struct ZaddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// Reads ZADD's leading flags (any order, any case) up to the first
/// argument that is not one.
fn zadd_flags(args: &mut Args) -> ZaddFlags {
    let mut f = ZaddFlags::default();
    loop {
        let flag = if args.keyword("nx") {
            &mut f.nx
        } else if args.keyword("xx") {
            &mut f.xx
        } else if args.keyword("gt") {
            &mut f.gt
        } else if args.keyword("lt") {
            &mut f.lt
        } else if args.keyword("ch") {
            &mut f.ch
        } else if args.keyword("incr") {
            &mut f.incr
        } else {
            return f;
        };
        *flag = true;
    }
}

fn zadd(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let f = zadd_flags(args);
    let elements = args.remaining();
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(err(SYNTAX_ERROR));
    }
    if f.nx && f.xx {
        return Err(err(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(err(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && elements > 2 {
        return Err(err(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs: Vec<(f64, &Bytes)> = Vec::with_capacity(elements / 2);
    while !args.is_done() {
        let score = args.float()?;
        pairs.push((score, args.next()?));
    }
    zadd_generic(ctx, key, &f, &pairs)
}

fn zincrby(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let amount = args.float()?;
    let member = args.next()?;
    let flags = ZaddFlags {
        incr: true,
        ..ZaddFlags::default()
    };
    zadd_generic(ctx, key, &flags, &[(amount, member)])
}

/// ZADD's element loop, as Redis's zsetAdd: each pair sees the effect of
/// the pairs before it; the delta keeps one change per member. (GEOADD
/// runs through here too: a GEOADD is a ZADD.)
pub(crate) fn zadd_generic(
    ctx: &mut Context,
    key: &Bytes,
    f: &ZaddFlags,
    pairs: &[(f64, &Bytes)],
) -> CmdResult {
    let (added, updated, processed, score) = write::<ZSet, _>(ctx, key, |z, w| {
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
    })?;
    if f.incr {
        // The new score, or nil when NX/XX/GT/LT skipped the member.
        return Ok(if processed > 0 {
            Reply::Double(score)
        } else {
            Reply::Nil
        });
    }
    Ok(Reply::Integer(if f.ch { added + updated } else { added }))
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

fn zrem(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let members = args.rest().iter().map(|m| Box::from(m.as_ref())).collect();
    Ok(Reply::Integer(remove_members(ctx, key, members)?))
}

/// `ZPOPMIN key [count]` / `ZPOPMAX key [count]`.
fn zpop(ctx: &mut Context, args: &mut Args, max: bool) -> CmdResult {
    // Extra arguments are a syntax error, checked before the count.
    if args.remaining() > 2 {
        return Err(err(SYNTAX_ERROR));
    }
    let key = args.key()?;
    let count = optional_count(args)?;
    let wanted = count.unwrap_or(1) as usize;
    let resp3 = resp3(ctx);
    let picked = pop_members(ctx, key, max, wanted)?;
    let items = picked.iter().map(|(m, s)| (m.as_ref(), *s));
    // No count: one flat pair in both protocols.
    let nested = resp3 && count.is_some();
    Ok(scored_reply(nested, items, true))
}

/// Removes (observed) and returns up to `wanted` of the lowest- or, with
/// `max`, highest-scoring members of `key`, in pop order.
fn pop_members(ctx: &mut Context, key: &[u8], max: bool, wanted: usize) -> Result<Source, Reply> {
    write::<ZSet, _>(ctx, key, |z, w| {
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
    })
}

/// An optional trailing count: `None` when no argument is left, else a
/// non-negative integer (`Args::count`'s errors).
fn optional_count(args: &mut Args) -> Result<Option<u64>, Reply> {
    if args.is_done() {
        return Ok(None);
    }
    args.count().map(Some)
}

fn zpopmin(ctx: &mut Context, args: &mut Args) -> CmdResult {
    zpop(ctx, args, false)
}

fn zpopmax(ctx: &mut Context, args: &mut Args) -> CmdResult {
    zpop(ctx, args, true)
}

fn zremrange(ctx: &mut Context, args: &mut Args, by: By) -> CmdResult {
    let key = args.key()?;
    let (lo, hi) = (args.next()?, args.next()?);
    let spec = RangeSpec::whole(span(by, lo, hi)?);
    let members = match typed::peek::<ZSet>(ctx, key)? {
        None => return Ok(Reply::Integer(0)),
        Some(z) => select(z, &spec)
            .into_iter()
            .map(|(m, _)| Box::from(m))
            .collect(),
    };
    Ok(Reply::Integer(remove_members(ctx, key, members)?))
}

fn zremrangebyscore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    zremrange(ctx, args, By::Score)
}

fn zremrangebyrank(ctx: &mut Context, args: &mut Args) -> CmdResult {
    zremrange(ctx, args, By::Rank)
}

fn zremrangebylex(ctx: &mut Context, args: &mut Args) -> CmdResult {
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

fn zscore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let member = args.next()?;
    let z = read::<ZSet>(ctx, key)?;
    Ok(z.and_then(|z| z.score(member))
        .map_or(Reply::Nil, Reply::Double))
}

fn zmscore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let members = args.rest();
    let z = read::<ZSet>(ctx, key)?;
    Ok(Reply::Array(
        members
            .iter()
            .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
            .collect(),
    ))
}

fn zcard(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let z = read::<ZSet>(ctx, args.key()?)?;
    Ok(Reply::Integer(z.map_or(0, |z| z.len()) as i64))
}

fn zcount(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (min, max) = (score_bound(args.next()?)?, score_bound(args.next()?)?);
    let z = read::<ZSet>(ctx, key)?;
    Ok(Reply::Integer(
        z.map_or(0, |z| z.score_range(min, max).count()) as i64,
    ))
}

fn zlexcount(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (lo, hi) = (args.next()?, args.next()?);
    let spec = RangeSpec::whole(span(By::Lex, lo, hi)?);
    let z = read::<ZSet>(ctx, key)?;
    Ok(Reply::Integer(
        z.map_or(0, |z| select(z, &spec).len()) as i64
    ))
}

fn range_command(
    ctx: &mut Context,
    args: &mut Args,
    by: Option<By>,
    rev: Option<bool>,
) -> CmdResult {
    let key = args.key()?;
    let spec = parse_range(args, false, by, rev)?;
    let resp3 = resp3(ctx);
    Ok(match read::<ZSet>(ctx, key)? {
        None => Reply::Array(Vec::new()),
        Some(z) => scored_reply(resp3, select(z, &spec), spec.withscores),
    })
}

fn zrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, None, None)
}

fn zrangebyscore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, Some(By::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, Some(By::Score), Some(true))
}

fn zrangebylex(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, Some(By::Lex), Some(false))
}

fn zrevrangebylex(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, Some(By::Lex), Some(true))
}

fn zrevrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    range_command(ctx, args, Some(By::Rank), Some(true))
}

fn zrangestore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (destination, source) = (args.key()?, args.key()?);
    let spec = parse_range(args, true, None, None)?;
    let picked: Vec<(Box<[u8]>, f64)> = match typed::peek::<ZSet>(ctx, source)? {
        None => Vec::new(),
        Some(z) => select(z, &spec)
            .into_iter()
            .map(|(m, s)| (Box::from(m), s))
            .collect(),
    };
    let n = picked.len() as i64;
    store(ctx, destination, picked);
    Ok(Reply::Integer(n))
}

/// `ZRANK key member [WITHSCORE]` / `ZREVRANK ...`.
fn rank_command(ctx: &mut Context, args: &mut Args, rev: bool) -> CmdResult {
    let key = args.key()?;
    let member = args.next()?;
    let withscore = args.keyword("withscore");
    args.finish()?;
    let z = read::<ZSet>(ctx, key)?;
    let found = z.and_then(|z| {
        z.rank(member)
            .map(|(rank, score)| (if rev { z.len() - 1 - rank } else { rank }, score))
    });
    Ok(match (found, withscore) {
        (None, false) => Reply::Nil,
        (None, true) => Reply::NilArray,
        (Some((rank, _)), false) => Reply::Integer(rank as i64),
        (Some((rank, score)), true) => {
            Reply::Array(vec![Reply::Integer(rank as i64), Reply::Double(score)])
        }
    })
}

fn zrank(ctx: &mut Context, args: &mut Args) -> CmdResult {
    rank_command(ctx, args, false)
}

fn zrevrank(ctx: &mut Context, args: &mut Args) -> CmdResult {
    rank_command(ctx, args, true)
}

/// ZRANDMEMBER's count, checked as Redis does (after WITHSCORES was
/// recognised): `i64::MIN` cannot be negated, a WITHSCORES reply of
/// |count| pairs must fit, and cordis caps repeated picks.
fn random_count(arg: &[u8], withscores: bool) -> Result<i64, Reply> {
    let count = int(arg)?;
    if count == i64::MIN {
        return Err(err(COUNT_OUT_OF_RANGE));
    }
    if withscores && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(err(OUT_OF_RANGE));
    }
    check_repeated_picks(count)?;
    Ok(count)
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`.
fn zrandmember(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    // Redis rejects a stray argument after the count before it parses
    // the count, so the count is read here and parsed after.
    let count_arg = args.next_if_any();
    let withscores = args.keyword("withscores");
    args.finish()?;
    let count = count_arg
        .map(|arg| random_count(arg, withscores))
        .transpose()?;
    let resp3 = resp3(ctx);
    let db = ctx.client.db;
    let (state, rng) = ctx.store.lookup_read_with_rng(db, key);
    let z = match state.map(|s| s.typed::<ZSet>()) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(z))) => Some(z),
        Some(Err(_)) => return Err(typed::wrongtype()),
    };
    let mut random = |n: usize| rand::Rng::gen_range(rng, 0..n);
    let Some(count) = count else {
        return Ok(z
            .and_then(|z| z.random_member(&mut random))
            .map_or(Reply::Nil, |(m, _)| bulk(m)));
    };
    let Some(z) = z else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count < 0 {
        // Negative: that many picks, repeats allowed.
        let picks: Vec<(&[u8], f64)> = (0..count.unsigned_abs())
            .filter_map(|_| z.random_member(&mut random))
            .collect();
        return Ok(scored_reply(resp3, picks, withscores));
    }
    let wanted = (count as usize).min(z.len());
    if wanted == z.len() {
        return Ok(scored_reply(
            resp3,
            z.ascending().collect::<Vec<_>>(),
            withscores,
        ));
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
    Ok(scored_reply(resp3, chosen, withscores))
}

fn zscan(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let options = scan_options(args, false)?;
    let Some(z) = read::<ZSet>(ctx, key)? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let mut items = Vec::new();
    let next = z.scan(options.cursor, options.count, |m, score| {
        if options.matches(m) {
            items.push(bulk(m));
            // ZSCAN sends scores as bulk strings in both protocols, in
            // the text Redis stores them as.
            let mut text = Vec::new();
            format_score(score, &mut text);
            items.push(Reply::Bulk(Bytes::from(text)));
        }
    });
    Ok(scan_reply(next, items))
}

// ----- ZUNION, ZINTER, ZDIFF, ZINTERCARD and their *STORE forms -----

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

/// What a set operation does with its result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: into a destination key.
    Store,
    /// ZUNION, ZINTER, ZDIFF: as the reply (WITHSCORES allowed).
    Reply,
    /// ZINTERCARD: only the size (LIMIT allowed).
    Cardinality,
}

/// The options after the keys, as Redis reads them.
struct SetOpOptions {
    weights: Vec<f64>,
    how: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";

/// Reads `[WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
/// [LIMIT limit]` (any order, repeatable) to the end, each only where
/// Redis takes it: WEIGHTS and AGGREGATE not for ZDIFF* nor ZINTERCARD,
/// WITHSCORES only for a reply, LIMIT only for ZINTERCARD.
fn set_op_options(
    args: &mut Args,
    op: SetOp,
    output: Output,
    numkeys: usize,
) -> Result<SetOpOptions, Reply> {
    let mut options = SetOpOptions {
        weights: vec![1.0f64; numkeys],
        how: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let scored = op != SetOp::Diff && output != Output::Cardinality;
    while let Some(option) = args.next_if_any() {
        // As in Redis, WEIGHTS followed by fewer than `numkeys` values is
        // a syntax error, whatever those values are.
        if scored && is(option, "weights") && args.remaining() >= numkeys {
            for w in options.weights.iter_mut() {
                *w = strict_float(args.next()?).ok_or_else(|| err(WEIGHT_NOT_A_FLOAT))?;
            }
        } else if scored && is(option, "aggregate") && !args.is_done() {
            options.how = args.one_of(&[
                ("sum", Aggregate::Sum),
                ("min", Aggregate::Min),
                ("max", Aggregate::Max),
            ])?;
        } else if output == Output::Reply && is(option, "withscores") {
            options.withscores = true;
        } else if output == Output::Cardinality && is(option, "limit") && !args.is_done() {
            let limit = int(args.next()?).map_err(|_| err(LIMIT_NEGATIVE))?;
            if limit < 0 {
                return Err(err(LIMIT_NEGATIVE));
            }
            options.limit = usize::try_from(limit).unwrap_or(usize::MAX);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    Ok(options)
}

/// `[destination] numkeys key [key ...] [options]`. The inputs are read
/// (WRONGTYPE) before the options are parsed, in Redis's order.
fn set_op(ctx: &mut Context, args: &mut Args, op: SetOp, output: Output) -> CmdResult {
    let destination = match output {
        Output::Store => Some(args.key()?),
        _ => None,
    };
    let numkeys = args.int()?;
    if numkeys < 1 {
        return Err(Reply::error(format!(
            "ERR at least 1 input key is needed for '{}' command",
            args.name().to_ascii_lowercase().escape_ascii()
        )));
    }
    // Fewer keys than `numkeys` left: syntax error.
    if numkeys as u64 > args.remaining() as u64 {
        return Err(err(SYNTAX_ERROR));
    }
    let keys = args.take(numkeys as usize)?;
    let numkeys = keys.len();
    let mut sources: Vec<Source> = Vec::with_capacity(numkeys);
    for key in keys {
        sources.push(read_source(ctx, key)?);
    }
    let options = set_op_options(args, op, output, numkeys)?;
    if output == Output::Cardinality {
        return Ok(Reply::Integer(
            intersection_size(&sources, options.limit) as i64
        ));
    }
    let mut result = combine(&sources, op, &options);
    let n = result.len() as i64;
    match destination {
        Some(destination) => {
            store(ctx, destination, result);
            Ok(Reply::Integer(n))
        }
        None => {
            // A sorted set's order: score, then member bytes.
            result.sort_by(|(ma, sa), (mb, sb)| sa.total_cmp(sb).then_with(|| ma.cmp(mb)));
            let items = result.iter().map(|(m, s)| (m.as_ref(), *s));
            Ok(scored_reply(resp3(ctx), items, options.withscores))
        }
    }
}

/// How many members every input holds, counting no further than `limit`
/// (0: no limit).
fn intersection_size(sources: &[Source], limit: usize) -> usize {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    let others: Vec<std::collections::HashSet<&[u8]>> = order[1..]
        .iter()
        .map(|&i| sources[i].iter().map(|(m, _)| m.as_ref()).collect())
        .collect();
    let mut count = 0;
    for (member, _) in &sources[order[0]] {
        if others.iter().all(|set| set.contains(member.as_ref())) {
            count += 1;
            if limit != 0 && count >= limit {
                break;
            }
        }
    }
    count
}

/// The members and scores of `op` over `sources` (unsorted).
fn combine(sources: &[Source], op: SetOp, options: &SetOpOptions) -> Vec<(Box<[u8]>, f64)> {
    let (weights, how) = (&options.weights, options.how);
    let numkeys = sources.len();
    let weighted = |score: f64, weight: f64| {
        let v = score * weight;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    match op {
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
    }
}

fn zunionstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Union, Output::Store)
}

fn zinterstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Inter, Output::Store)
}

fn zdiffstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Diff, Output::Store)
}

fn zunion(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Union, Output::Reply)
}

fn zinter(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Inter, Output::Reply)
}

fn zdiff(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Diff, Output::Reply)
}

fn zintercard(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_op(ctx, args, SetOp::Inter, Output::Cardinality)
}

// ----- ZMPOP and the blocking pops -----

/// The first of `keys` holding a sorted set (WRONGTYPE for a key of
/// another type met before it), as Redis's pops scan them.
fn first_zset<'a>(ctx: &mut Context, keys: &'a [Bytes]) -> Result<Option<&'a Bytes>, Reply> {
    for key in keys {
        if typed::peek::<ZSet>(ctx, key)?.is_some_and(|z| z.len() > 0) {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// `MIN` or `MAX` (true for MAX); syntax error otherwise.
fn min_or_max(args: &mut Args) -> Result<bool, Reply> {
    args.one_of(&[("min", false), ("max", true)])
}

/// `numkeys key [key ...] MIN|MAX [COUNT count]`, in Redis's order.
fn mpop_args<'a>(args: &mut Args<'a>) -> Result<(&'a [Bytes], bool, usize), Reply> {
    let keys = super::lists::mpop_keys(args)?;
    let max = min_or_max(args)?;
    Ok((keys, max, super::lists::mpop_count(args)?))
}

/// ZMPOP's reply from the first non-empty sorted set: `[key, [[member,
/// score] ...]]` in both protocols; `None` when all are empty.
fn mpop_first(
    ctx: &mut Context,
    keys: &[Bytes],
    max: bool,
    count: usize,
) -> Result<Option<Reply>, Reply> {
    let Some(key) = first_zset(ctx, keys)? else {
        return Ok(None);
    };
    let popped = pop_members(ctx, key, max, count)?;
    let items = popped.iter().map(|(m, s)| (m.as_ref(), *s));
    Ok(Some(Reply::Array(vec![
        Reply::Bulk(key.clone()),
        scored_reply(true, items, true),
    ])))
}

fn zmpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (keys, max, count) = mpop_args(args)?;
    Ok(mpop_first(ctx, keys, max, count)?.unwrap_or(Reply::NilArray))
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`: the
/// timeout is checked after the other arguments, as in Redis.
fn bzmpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let timeout_arg = args.next()?;
    let (keys, max, count) = mpop_args(args)?;
    let timeout = super::lists::parse_timeout(timeout_arg)?;
    match mpop_first(ctx, keys, max, count)? {
        Some(reply) => Ok(reply),
        None => {
            super::lists::block_or_nil(ctx, super::WaitOn::DeclaredKeys, timeout, Reply::NilArray)
        }
    }
}

/// `BZPOPMIN key [key ...] timeout` / `BZPOPMAX`: `[key, member, score]`
/// (flat in both protocols) from the first non-empty sorted set, else
/// blocks on all of them.
fn bzpop(ctx: &mut Context, args: &mut Args, max: bool) -> CmdResult {
    let Some((timeout, keys)) = args.rest().split_last() else {
        return Err(args.wrong_arity());
    };
    let timeout = super::lists::parse_timeout(timeout)?;
    let Some(key) = first_zset(ctx, keys)? else {
        return super::lists::block_or_nil(
            ctx,
            super::WaitOn::DeclaredKeys,
            timeout,
            Reply::NilArray,
        );
    };
    let mut reply = vec![Reply::Bulk(key.clone())];
    for (member, score) in pop_members(ctx, key, max, 1)? {
        reply.push(bulk(&member));
        reply.push(Reply::Double(score));
    }
    Ok(Reply::Array(reply))
}

fn bzpopmin(ctx: &mut Context, args: &mut Args) -> CmdResult {
    bzpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut Context, args: &mut Args) -> CmdResult {
    bzpop(ctx, args, true)
}
