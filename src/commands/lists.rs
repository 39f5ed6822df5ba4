//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE,
//! LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH, LMPOP and
//! the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
//!
//! Lists are sequence CRDTs (`crdt::list`): pushes and inserts get dense
//! position ids so concurrent ones all survive in one order; pops, LREM,
//! LTRIM and LSET remove what this node observed, so two regions may pop
//! the same element (at-least-once across regions; docs/semantics.md).
//!
//! Blocking pops: when nothing is available the handler parks the client
//! ([`Context::park`]); the connection registers the request
//! ([`super::blocking`]) and waits without the store lock; the write that
//! gives a key elements (a local command or a remote delta) runs the
//! blocked commands again in blocking order, and at the deadline the
//! command runs once more with blocking denied, which replies nil. Inside
//! EXEC (blocking denied) they answer at once.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args::{
    err, int, is, Args, CmdResult, NO_SUCH_KEY, SYNTAX_ERROR, TIMEOUT_NEGATIVE, TIMEOUT_NOT_FLOAT,
};
use super::flags::{DENYOOM, FAST, MOVABLEKEYS, NOSCRIPT, READONLY, WRITE};
use super::typed::{peek, read, write};
use super::{spec, CommandSpec, Context, Park, WaitOn};
use crate::crdt::list::{End, List, ListEdit};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", lpush),
    spec("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", rpush),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.", lpushx),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "2.2.0", "Appends an element to a list only when the list exists.", rpushx),
    spec("lpop", -2, WRITE | FAST, (1, 1, 1), "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", lpop),
    spec("rpop", -2, WRITE | FAST, (1, 1, 1), "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", rpop),
    spec("llen", 2, READONLY | FAST, (1, 1, 1), "list", "1.0.0", "Returns the length of a list.", llen),
    spec("lrange", 4, READONLY, (1, 1, 1), "list", "1.0.0", "Returns a range of elements from a list.", lrange),
    spec("lindex", 3, READONLY, (1, 1, 1), "list", "1.0.0", "Returns an element from a list by its index.", lindex),
    spec("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", "1.0.0", "Sets the value of an element in a list by its index.", lset),
    spec("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", "2.2.0", "Inserts an element before or after another element in a list.", linsert),
    spec("lrem", 4, WRITE, (1, 1, 1), "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", lrem),
    spec("ltrim", 4, WRITE, (1, 1, 1), "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", ltrim),
    spec("lpos", -3, READONLY, (1, 1, 1), "list", "6.0.6", "Returns the index of matching elements in a list.", lpos),
    spec("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", lmove),
    spec("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", rpoplpush),
    spec("blpop", -3, WRITE | NOSCRIPT, (1, -2, 1), "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blpop),
    spec("brpop", -3, WRITE | NOSCRIPT, (1, -2, 1), "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", brpop),
    spec("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT, (1, 2, 1), "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", brpoplpush),
    spec("lmpop", -4, WRITE | MOVABLEKEYS, (0, 0, 0), "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", lmpop),
    spec("blmpop", -5, WRITE | MOVABLEKEYS | NOSCRIPT, (0, 0, 0), "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blmpop),
    spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT, (1, 2, 1), "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", blmove),
];

fn bulk(value: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(value))
}

/// `key element [element ...]`: pushes each element at `end` in turn;
/// with `only_existing` (LPUSHX, RPUSHX) nothing happens to a missing key.
fn push(ctx: &mut Context, args: &mut Args, end: End, only_existing: bool) -> CmdResult {
    let key = args.key()?;
    let values = args.rest();
    let len = write::<List, _>(ctx, key, |list, w| {
        if only_existing && list.is_empty() {
            return Ok((Default::default(), 0));
        }
        let mut edit = ListEdit::new(list);
        for value in values {
            edit.push(end, value, w.next_dot());
        }
        let len = edit.len() as i64;
        Ok((edit.finish(), len))
    })?;
    Ok(Reply::Integer(len))
}

fn lpush(ctx: &mut Context, args: &mut Args) -> CmdResult {
    push(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Context, args: &mut Args) -> CmdResult {
    push(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Context, args: &mut Args) -> CmdResult {
    push(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Context, args: &mut Args) -> CmdResult {
    push(ctx, args, End::Right, true)
}

/// Pops up to `count` elements from `end` of `key` (an observed remove).
/// `Ok(None)` when the key holds no list.
fn pop_values(
    ctx: &mut Context,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Box<[u8]>>>, Reply> {
    write::<List, _>(ctx, key, |list, _| {
        if list.is_empty() {
            return Ok((Default::default(), None));
        }
        // Walk from the end once (popping one by one would rescan the
        // already-removed prefix each time).
        let taken: Vec<_> = match end {
            End::Left => list.iter().take(count).collect(),
            End::Right => list.iter().rev().take(count).collect(),
        };
        let mut edit = ListEdit::new(list);
        let mut popped = Vec::with_capacity(taken.len());
        for (id, _) in taken {
            popped.extend(edit.remove(id));
        }
        Ok((edit.finish(), Some(popped)))
    })
}

/// Pops one element from `end` of `key`, if it holds a list.
fn pop_one(ctx: &mut Context, key: &[u8], end: End) -> Result<Option<Box<[u8]>>, Reply> {
    Ok(pop_values(ctx, key, end, 1)?.and_then(|mut values| values.pop()))
}

/// `LPOP key [count]` / `RPOP key [count]`.
fn pop(ctx: &mut Context, args: &mut Args, end: End) -> CmdResult {
    // Too many arguments is an arity error (Redis checks it before the
    // count), not a syntax error.
    if args.remaining() > 2 {
        return Err(args.wrong_arity());
    }
    let key = args.key()?;
    if args.is_done() {
        return Ok(pop_one(ctx, key, end)?.map_or(Reply::Nil, |v| bulk(&v)));
    }
    // A negative count is refused with MUST_BE_POSITIVE (`Args::count`).
    let count = args.count()? as usize;
    if count == 0 {
        // Redis answers without touching the list: nil when the key is
        // missing, an empty array otherwise (and WRONGTYPE for others).
        return Ok(match read::<List>(ctx, key)? {
            Some(_) => Reply::Array(Vec::new()),
            None => Reply::NilArray,
        });
    }
    Ok(match pop_values(ctx, key, end, count)? {
        Some(values) => Reply::Array(values.iter().map(|v| bulk(v)).collect()),
        None => Reply::NilArray,
    })
}

fn lpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    pop(ctx, args, End::Left)
}

fn rpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    pop(ctx, args, End::Right)
}

fn llen(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let list = read::<List>(ctx, args.key()?)?;
    Ok(Reply::Integer(list.map_or(0, |l| l.len()) as i64))
}

/// Redis's index range rule (LRANGE, LTRIM): negative indexes count from
/// the end; `None` when the range is empty.
fn range_of(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

fn lrange(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (start, stop) = (args.int()?, args.int()?);
    let Some(list) = read::<List>(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let Some((from, to)) = range_of(start, stop, list.len()) else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(Reply::Array(
        list.range_values(from, to).map(bulk).collect(),
    ))
}

/// A Redis list index (negative from the end) as a position, if in range.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let at = if index < 0 { index + len } else { index };
    (0..len).contains(&at).then_some(at as usize)
}

fn lindex(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let index = args.int()?;
    let Some(list) = read::<List>(ctx, key)? else {
        return Ok(Reply::Nil);
    };
    Ok(position(index, list.len())
        .and_then(|at| list.at(at))
        .map_or(Reply::Nil, |(_, v)| bulk(v)))
}

fn lset(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let index = args.int()?;
    let value = args.next()?;
    write::<List, _>(ctx, key, |list, w| {
        if list.is_empty() {
            return Err(err(NO_SUCH_KEY));
        }
        let Some((id, _)) = position(index, list.len()).and_then(|at| list.at(at)) else {
            return Err(err("ERR index out of range"));
        };
        // Observed remove of the old element, the new value right after it.
        let id = id.clone();
        let mut edit = ListEdit::new(list);
        edit.insert_at(&id, false, value, w.next_dot());
        edit.discard(&id);
        Ok((edit.finish(), ()))
    })?;
    Ok(Reply::ok())
}

fn linsert(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let before = args.one_of(&[("before", true), ("after", false)])?;
    let pivot_value = args.next()?;
    let value = args.next()?;
    let len = write::<List, _>(ctx, key, |list, w| {
        if list.is_empty() {
            return Ok((Default::default(), 0));
        }
        let Some((pivot, _)) = list.iter().find(|(_, v)| *v == pivot_value.as_ref()) else {
            return Ok((Default::default(), -1));
        };
        let mut edit = ListEdit::new(list);
        edit.insert_at(pivot, before, value, w.next_dot());
        let len = edit.len() as i64;
        Ok((edit.finish(), len))
    })?;
    Ok(Reply::Integer(len))
}

fn lrem(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let count = args.int()?;
    let target = args.next()?;
    let removed = write::<List, _>(ctx, key, |list, _| {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let matching = |(_, v): &(&crate::crdt::list::ElementId, &[u8])| *v == target.as_ref();
        let ids: Vec<_> = if count < 0 {
            list.iter()
                .rev()
                .filter(matching)
                .take(limit)
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            list.iter()
                .filter(matching)
                .take(limit)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let mut edit = ListEdit::new(list);
        for id in &ids {
            edit.discard(id);
        }
        Ok((edit.finish(), ids.len() as i64))
    })?;
    Ok(Reply::Integer(removed))
}

fn ltrim(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (start, stop) = (args.int()?, args.int()?);
    write::<List, _>(ctx, key, |list, _| {
        let keep = range_of(start, stop, list.len());
        let mut edit = ListEdit::new(list);
        for (at, (id, _)) in list.iter().enumerate() {
            if !keep.is_some_and(|(from, to)| (from..=to).contains(&at)) {
                edit.discard(id);
            }
        }
        Ok((edit.finish(), ()))
    })?;
    Ok(Reply::ok())
}

/// LPOS's options.
struct LposOptions {
    rank: i64,
    /// `None`: no COUNT, a single position (or nil) is the reply.
    count: Option<i64>,
    /// 0: scan the whole list.
    maxlen: i64,
}

/// Reads `[RANK rank] [COUNT num-matches] [MAXLEN len]` to the end, as
/// Redis does: the option's name first (anything else, or a name without a
/// value, is a syntax error), then its value. COUNT and MAXLEN give their
/// own text for a negative value and for one that is not an integer.
fn lpos_options(args: &mut Args) -> Result<LposOptions, Reply> {
    let mut options = LposOptions {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let non_negative = |args: &mut Args, text: &'static str| {
        int(args.next()?)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| err(text))
    };
    while let Some(option) = args.next_if_any() {
        if args.is_done() {
            return Err(err(SYNTAX_ERROR));
        }
        if is(option, "rank") {
            let n = args.int()?;
            if n == 0 {
                return Err(err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
            // -i64::MIN does not exist; the farthest rank is the same search.
            options.rank = n.max(-i64::MAX);
        } else if is(option, "count") {
            options.count = Some(non_negative(args, "ERR COUNT can't be negative")?);
        } else if is(option, "maxlen") {
            options.maxlen = non_negative(args, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    Ok(options)
}

fn lpos(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let target = args.next()?.as_ref();
    let LposOptions {
        rank,
        count,
        maxlen,
    } = lpos_options(args)?;
    let list = read::<List>(ctx, key)?;
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(n) => n as usize,
        None => 1,
    };
    let scan_limit = if maxlen == 0 {
        usize::MAX
    } else {
        maxlen as usize
    };
    let mut found: Vec<i64> = Vec::new();
    if let Some(list) = list {
        let len = list.len();
        let skip = (rank.unsigned_abs() - 1).min(usize::MAX as u64) as usize;
        let matches = |(at, v): (usize, &[u8])| (v == target).then_some(at as i64);
        let hits: Box<dyn Iterator<Item = i64>> = if rank > 0 {
            Box::new(
                list.values()
                    .take(scan_limit)
                    .enumerate()
                    .filter_map(matches),
            )
        } else {
            Box::new(
                list.values()
                    .rev()
                    .take(scan_limit)
                    .enumerate()
                    .filter_map(matches)
                    .map(move |from_end| len as i64 - 1 - from_end),
            )
        };
        found.extend(hits.skip(skip).take(wanted));
    }
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
        None => found.first().map_or(Reply::Nil, |&at| Reply::Integer(at)),
    })
}

/// Takes a `LEFT`/`RIGHT` argument (any case); syntax error otherwise.
fn end_arg(args: &mut Args) -> Result<End, Reply> {
    args.one_of(&[("left", End::Left), ("right", End::Right)])
}

/// LMOVE's core: pops from `from` of `source`, pushes to `to` of
/// `destination`. `Ok(None)` when the source holds no list.
fn move_element(
    ctx: &mut Context,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Option<Box<[u8]>>, Reply> {
    // Redis checks the destination's type before popping anything.
    let source_present = peek::<List>(ctx, source)?.is_some_and(|l| !l.is_empty());
    if !source_present {
        return Ok(None);
    }
    peek::<List>(ctx, destination)?;
    if source == destination {
        return write::<List, _>(ctx, source, |list, w| {
            let mut edit = ListEdit::new(list);
            let value = edit.pop(from);
            if let Some(v) = &value {
                edit.push(to, v, w.next_dot());
            }
            Ok((edit.finish(), value))
        });
    }
    let Some(value) = pop_one(ctx, source, from)? else {
        return Ok(None);
    };
    write::<List, _>(ctx, destination, |list, w| {
        let mut edit = ListEdit::new(list);
        edit.push(to, &value, w.next_dot());
        Ok((edit.finish(), ()))
    })?;
    Ok(Some(value))
}

fn lmove(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (source, destination) = (args.key()?, args.key()?);
    let (from, to) = (end_arg(args)?, end_arg(args)?);
    let moved = move_element(ctx, source, destination, from, to)?;
    Ok(moved.map_or(Reply::Nil, |v| bulk(&v)))
}

fn rpoplpush(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (source, destination) = (args.key()?, args.key()?);
    let moved = move_element(ctx, source, destination, End::Right, End::Left)?;
    Ok(moved.map_or(Reply::Nil, |v| bulk(&v)))
}

// ----- blocking -----

/// The blocking commands' timeout: seconds as a decimal, 0 = forever.
/// Values too large for Redis's millisecond arithmetic get the error Redis
/// 7.0 gives them ("timeout is negative", from its overflow).
pub(super) fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let not_float = || err(TIMEOUT_NOT_FLOAT);
    let text = std::str::from_utf8(arg).map_err(|_| not_float())?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return Err(not_float());
    }
    let seconds: f64 = text.parse().map_err(|_| not_float())?;
    if seconds.is_nan() {
        return Err(not_float());
    }
    let negative = || err(TIMEOUT_NEGATIVE);
    if seconds < 0.0 {
        return Err(negative());
    }
    let ms = seconds * 1000.0;
    if !ms.is_finite() || ms >= i64::MAX as f64 {
        return Err(negative());
    }
    if ms == 0.0 {
        return Ok(None);
    }
    // Redis rounds to whole milliseconds, at least one.
    Ok(Some(Duration::from_millis((ms.ceil() as u64).max(1))))
}

/// Parks the client on `wait_on` (nothing available now); where blocking
/// is denied the command answers `nil` at once, as if it timed out.
pub(super) fn block_or_nil(
    ctx: &mut Context,
    wait_on: WaitOn,
    timeout: Option<Duration>,
    nil: Reply,
) -> CmdResult {
    let deadline = timeout.map(|t| Instant::now() + t);
    ctx.park(Park::Keys { wait_on, deadline }, nil)
}

/// `BLPOP key [key ...] timeout` / `BRPOP ...`: pops from the first key
/// that holds a non-empty list, else blocks on all of them.
fn blocking_pop(ctx: &mut Context, args: &mut Args, end: End) -> CmdResult {
    // The timeout comes last; arity guarantees it and at least one key.
    let Some((timeout, keys)) = args.rest().split_last() else {
        return Err(args.wrong_arity());
    };
    let timeout = parse_timeout(timeout)?;
    for key in keys {
        let has_elements = peek::<List>(ctx, key)?.is_some_and(|list| !list.is_empty());
        if !has_elements {
            continue;
        }
        if let Some(value) = pop_one(ctx, key, end)? {
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), bulk(&value)]));
        }
    }
    block_or_nil(ctx, WaitOn::DeclaredKeys, timeout, Reply::NilArray)
}

fn blpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    blocking_pop(ctx, args, End::Left)
}

fn brpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    blocking_pop(ctx, args, End::Right)
}

fn blmove(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (source, destination) = (args.key()?, args.key()?);
    let (from, to) = (end_arg(args)?, end_arg(args)?);
    let timeout = parse_timeout(args.next()?)?;
    match move_element(ctx, source, destination, from, to)? {
        Some(value) => Ok(bulk(&value)),
        None => block_or_nil(ctx, WaitOn::FirstKey, timeout, Reply::Nil),
    }
}

fn brpoplpush(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (source, destination) = (args.key()?, args.key()?);
    let timeout = parse_timeout(args.next()?)?;
    match move_element(ctx, source, destination, End::Right, End::Left)? {
        Some(value) => Ok(bulk(&value)),
        None => block_or_nil(ctx, WaitOn::FirstKey, timeout, Reply::Nil),
    }
}

// ----- LMPOP / BLMPOP -----

const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
const COUNT_NOT_POSITIVE: &str = "ERR count should be greater than 0";

/// `numkeys key [key ...] LEFT|RIGHT [COUNT count]`, read in Redis's
/// order: numkeys (1 or more), the end, then COUNT once (1 or more).
fn mpop_args<'a>(args: &mut Args<'a>) -> Result<(&'a [Bytes], End, usize), Reply> {
    let keys = mpop_keys(args)?;
    let end = end_arg(args)?;
    Ok((keys, end, mpop_count(args)?))
}

/// `numkeys key [key ...]` of LMPOP and ZMPOP, followed by at least one
/// more argument (their end word).
pub(super) fn mpop_keys<'a>(args: &mut Args<'a>) -> Result<&'a [Bytes], Reply> {
    let numkeys = positive(args.next()?, NUMKEYS_NOT_POSITIVE)?;
    // The end must follow the keys: fewer arguments is a syntax error.
    if numkeys >= args.remaining() as u64 {
        return Err(err(SYNTAX_ERROR));
    }
    args.take(numkeys as usize)
}

/// `[COUNT count]` to the end (once, at least 1; default 1).
pub(super) fn mpop_count(args: &mut Args) -> Result<usize, Reply> {
    let mut count = None;
    while let Some(option) = args.next_if_any() {
        if count.is_none() && is(option, "count") && !args.is_done() {
            count = Some(positive(args.next()?, COUNT_NOT_POSITIVE)?);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    // A count beyond the length pops everything.
    Ok(count.unwrap_or(1).min(usize::MAX as u64) as usize)
}

/// An integer of at least 1; `error` for anything else (Redis gives the
/// same text for a non-integer).
fn positive(arg: &[u8], error: &'static str) -> Result<u64, Reply> {
    match int(arg) {
        Ok(n) if n >= 1 => Ok(n as u64),
        _ => Err(err(error)),
    }
}

/// Pops up to `count` from the first key holding a non-empty list:
/// `[key, [element ...]]`, or `None` when every list is empty.
fn mpop_first(
    ctx: &mut Context,
    keys: &[Bytes],
    end: End,
    count: usize,
) -> Result<Option<Reply>, Reply> {
    for key in keys {
        let has_elements = peek::<List>(ctx, key)?.is_some_and(|list| !list.is_empty());
        if !has_elements {
            continue;
        }
        if let Some(values) = pop_values(ctx, key, end, count)? {
            let values = values.iter().map(|v| bulk(v)).collect();
            return Ok(Some(Reply::Array(vec![
                Reply::Bulk(key.clone()),
                Reply::Array(values),
            ])));
        }
    }
    Ok(None)
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
fn lmpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (keys, end, count) = mpop_args(args)?;
    Ok(mpop_first(ctx, keys, end, count)?.unwrap_or(Reply::NilArray))
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`: the
/// timeout is checked after the other arguments, as in Redis.
fn blmpop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let timeout_arg = args.next()?;
    let (keys, end, count) = mpop_args(args)?;
    let timeout = parse_timeout(timeout_arg)?;
    match mpop_first(ctx, keys, end, count)? {
        Some(reply) => Ok(reply),
        None => block_or_nil(ctx, WaitOn::DeclaredKeys, timeout, Reply::NilArray),
    }
}
