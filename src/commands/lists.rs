//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE,
//! LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and the
//! blocking BLPOP, BRPOP, BLMOVE.
//!
//! Lists are sequence CRDTs (`crdt::list`): pushes and inserts get dense
//! position ids so concurrent ones all survive in one order; pops, LREM,
//! LTRIM and LSET remove what this node observed, so two regions may pop
//! the same element (at-least-once across regions; docs/semantics.md).
//!
//! Blocking pops: when nothing is available the handler parks the client
//! ([`Context::park`]); the connection registers the keys
//! ([`super::blocking`]), waits without the store lock, re-runs the command
//! when a key receives elements (a local write or a remote delta), and at
//! the deadline re-runs it once more with blocking denied, which replies
//! nil. Inside EXEC (blocking denied) they answer at once.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args::{err, int, is, NO_SUCH_KEY, SYNTAX_ERROR};
use super::flags::{DENYOOM, FAST, NOSCRIPT, READONLY, WRITE};
use super::typed::{peek, read, write};
use super::{spec, CommandSpec, Context, Park, WaitOn};
use crate::crdt::list::{End, List, ListEdit};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", legacy!(lpush)),
    spec("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", legacy!(rpush)),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.", legacy!(lpushx)),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", "2.2.0", "Appends an element to a list only when the list exists.", legacy!(rpushx)),
    spec("lpop", -2, WRITE | FAST, (1, 1, 1), "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", legacy!(lpop)),
    spec("rpop", -2, WRITE | FAST, (1, 1, 1), "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", legacy!(rpop)),
    spec("llen", 2, READONLY | FAST, (1, 1, 1), "list", "1.0.0", "Returns the length of a list.", legacy!(llen)),
    spec("lrange", 4, READONLY, (1, 1, 1), "list", "1.0.0", "Returns a range of elements from a list.", legacy!(lrange)),
    spec("lindex", 3, READONLY, (1, 1, 1), "list", "1.0.0", "Returns an element from a list by its index.", legacy!(lindex)),
    spec("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", "1.0.0", "Sets the value of an element in a list by its index.", legacy!(lset)),
    spec("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", "2.2.0", "Inserts an element before or after another element in a list.", legacy!(linsert)),
    spec("lrem", 4, WRITE, (1, 1, 1), "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", legacy!(lrem)),
    spec("ltrim", 4, WRITE, (1, 1, 1), "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", legacy!(ltrim)),
    spec("lpos", -3, READONLY, (1, 1, 1), "list", "6.0.6", "Returns the index of matching elements in a list.", legacy!(lpos)),
    spec("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", legacy!(lmove)),
    spec("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", legacy!(rpoplpush)),
    spec("blpop", -3, WRITE | NOSCRIPT, (1, -2, 1), "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", legacy!(blpop)),
    spec("brpop", -3, WRITE | NOSCRIPT, (1, -2, 1), "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", legacy!(brpop)),
    spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT, (1, 2, 1), "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", legacy!(blmove)),
];

fn bulk(value: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(value))
}

fn push(ctx: &mut Context, args: &[Bytes], end: End, only_existing: bool) -> Reply {
    let result = write::<List, _>(ctx, &args[1], |list, w| {
        if only_existing && list.is_empty() {
            return Ok((Default::default(), 0));
        }
        let mut edit = ListEdit::new(list);
        for value in &args[2..] {
            edit.push(end, value, w.next_dot());
        }
        let len = edit.len() as i64;
        Ok((edit.finish(), len))
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn lpush(ctx: &mut Context, args: &[Bytes]) -> Reply {
    push(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Context, args: &[Bytes]) -> Reply {
    push(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Context, args: &[Bytes]) -> Reply {
    push(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Context, args: &[Bytes]) -> Reply {
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

fn pop(ctx: &mut Context, args: &[Bytes], end: End) -> Reply {
    if args.len() > 3 {
        return super::args::wrong_arity(if end == End::Left { "lpop" } else { "rpop" });
    }
    let Some(count_arg) = args.get(2) else {
        return match pop_values(ctx, &args[1], end, 1) {
            Ok(Some(mut values)) => values.pop().map_or(Reply::Nil, |v| bulk(&v)),
            Ok(None) => Reply::Nil,
            Err(e) => e,
        };
    };
    let count = match int(count_arg) {
        Ok(n) if n >= 0 => n as usize,
        Ok(_) => return err("ERR value is out of range, must be positive"),
        Err(e) => return e,
    };
    if count == 0 {
        // Redis answers without touching the list: nil when the key is
        // missing, an empty array otherwise (and WRONGTYPE for others).
        return match read::<List>(ctx, &args[1]) {
            Ok(Some(_)) => Reply::Array(Vec::new()),
            Ok(None) => Reply::NilArray,
            Err(e) => e,
        };
    }
    match pop_values(ctx, &args[1], end, count) {
        Ok(Some(values)) => Reply::Array(values.iter().map(|v| bulk(v)).collect()),
        Ok(None) => Reply::NilArray,
        Err(e) => e,
    }
}

fn lpop(ctx: &mut Context, args: &[Bytes]) -> Reply {
    pop(ctx, args, End::Left)
}

fn rpop(ctx: &mut Context, args: &[Bytes]) -> Reply {
    pop(ctx, args, End::Right)
}

fn llen(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match read::<List>(ctx, &args[1]) {
        Ok(list) => Reply::Integer(list.map_or(0, |l| l.len()) as i64),
        Err(e) => e,
    }
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

fn lrange(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (start, stop) = match (int(&args[2]), int(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let list = match read::<List>(ctx, &args[1]) {
        Ok(Some(list)) => list,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    let Some((from, to)) = range_of(start, stop, list.len()) else {
        return Reply::Array(Vec::new());
    };
    let items: Vec<Reply> = list.range_values(from, to).map(bulk).collect();
    Reply::Array(items)
}

/// A Redis list index (negative from the end) as a position, if in range.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let at = if index < 0 { index + len } else { index };
    (0..len).contains(&at).then_some(at as usize)
}

fn lindex(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let index = match int(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match read::<List>(ctx, &args[1]) {
        Ok(Some(list)) => position(index, list.len())
            .and_then(|at| list.at(at))
            .map_or(Reply::Nil, |(_, v)| bulk(v)),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn lset(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let index = match int(&args[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let result = write::<List, _>(ctx, &args[1], |list, w| {
        if list.is_empty() {
            return Err(err(NO_SUCH_KEY));
        }
        let Some((id, _)) = position(index, list.len()).and_then(|at| list.at(at)) else {
            return Err(err("ERR index out of range"));
        };
        // Observed remove of the old element, the new value right after it.
        let id = id.clone();
        let mut edit = ListEdit::new(list);
        edit.insert_at(&id, false, &args[3], w.next_dot());
        edit.discard(&id);
        Ok((edit.finish(), ()))
    });
    result.map_or_else(|e| e, |()| Reply::ok())
}

fn linsert(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let before = if is(&args[2], "before") {
        true
    } else if is(&args[2], "after") {
        false
    } else {
        return err(SYNTAX_ERROR);
    };
    let result = write::<List, _>(ctx, &args[1], |list, w| {
        if list.is_empty() {
            return Ok((Default::default(), 0));
        }
        let Some((pivot, _)) = list.iter().find(|(_, v)| *v == args[3].as_ref()) else {
            return Ok((Default::default(), -1));
        };
        let mut edit = ListEdit::new(list);
        edit.insert_at(pivot, before, &args[4], w.next_dot());
        let len = edit.len() as i64;
        Ok((edit.finish(), len))
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn lrem(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let count = match int(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let target = &args[3];
    let result = write::<List, _>(ctx, &args[1], |list, _| {
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
    });
    result.map_or_else(|e| e, Reply::Integer)
}

fn ltrim(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (start, stop) = match (int(&args[2]), int(&args[3])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let result = write::<List, _>(ctx, &args[1], |list, _| {
        let keep = range_of(start, stop, list.len());
        let mut edit = ListEdit::new(list);
        for (at, (id, _)) in list.iter().enumerate() {
            if !keep.is_some_and(|(from, to)| (from..=to).contains(&at)) {
                edit.discard(id);
            }
        }
        Ok((edit.finish(), ()))
    });
    result.map_or_else(|e| e, |()| Reply::ok())
}

fn lpos(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return err(SYNTAX_ERROR);
        };
        let n = match int(value) {
            Ok(n) => n,
            Err(e) => return e,
        };
        if is(&args[i], "rank") {
            if n == 0 {
                return err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            // -i64::MIN does not exist; the farthest rank is the same search.
            rank = n.max(-i64::MAX);
        } else if is(&args[i], "count") {
            if n < 0 {
                return err("ERR COUNT can't be negative");
            }
            count = Some(n);
        } else if is(&args[i], "maxlen") {
            if n < 0 {
                return err("ERR MAXLEN can't be negative");
            }
            maxlen = n;
        } else {
            return err(SYNTAX_ERROR);
        }
        i += 2;
    }
    let list = match read::<List>(ctx, &args[1]) {
        Ok(list) => list,
        Err(e) => return e,
    };
    let target = args[2].as_ref();
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
    match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
        None => found.first().map_or(Reply::Nil, |&at| Reply::Integer(at)),
    }
}

fn end_arg(arg: &[u8]) -> Option<End> {
    if is(arg, "left") {
        Some(End::Left)
    } else if is(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
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
    let Some(mut values) = pop_values(ctx, source, from, 1)? else {
        return Ok(None);
    };
    let Some(value) = values.pop() else {
        return Ok(None);
    };
    write::<List, _>(ctx, destination, |list, w| {
        let mut edit = ListEdit::new(list);
        edit.push(to, &value, w.next_dot());
        Ok((edit.finish(), ()))
    })?;
    Ok(Some(value))
}

fn lmove(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (Some(from), Some(to)) = (end_arg(&args[3]), end_arg(&args[4])) else {
        return err(SYNTAX_ERROR);
    };
    match move_element(ctx, &args[1], &args[2], from, to) {
        Ok(value) => value.map_or(Reply::Nil, |v| bulk(&v)),
        Err(e) => e,
    }
}

fn rpoplpush(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match move_element(ctx, &args[1], &args[2], End::Right, End::Left) {
        Ok(value) => value.map_or(Reply::Nil, |v| bulk(&v)),
        Err(e) => e,
    }
}

// ----- blocking -----

/// The blocking commands' timeout: seconds as a decimal, 0 = forever.
/// Values too large for Redis's millisecond arithmetic get the error Redis
/// 7.0 gives them ("timeout is negative", from its overflow).
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let not_float = || err("ERR timeout is not a float or out of range");
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
    let negative = || err("ERR timeout is negative");
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
fn block_or_nil(
    ctx: &mut Context,
    wait_on: WaitOn,
    timeout: Option<Duration>,
    nil: Reply,
) -> Reply {
    let deadline = timeout.map(|t| Instant::now() + t);
    ctx.park(Park::Keys { wait_on, deadline }, nil)
        .unwrap_or_else(|e| e)
}

fn blocking_pop(ctx: &mut Context, args: &[Bytes], end: End) -> Reply {
    let timeout = match parse_timeout(&args[args.len() - 1]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let keys = &args[1..args.len() - 1];
    for key in keys {
        match peek::<List>(ctx, key) {
            Ok(Some(list)) if !list.is_empty() => {}
            Ok(_) => continue,
            Err(e) => return e,
        }
        match pop_values(ctx, key, end, 1) {
            Ok(Some(mut values)) => {
                if let Some(v) = values.pop() {
                    return Reply::Array(vec![Reply::Bulk(key.clone()), bulk(&v)]);
                }
            }
            Ok(None) => {}
            Err(e) => return e,
        }
    }
    block_or_nil(ctx, WaitOn::DeclaredKeys, timeout, Reply::NilArray)
}

fn blpop(ctx: &mut Context, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, End::Left)
}

fn brpop(ctx: &mut Context, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, End::Right)
}

fn blmove(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let (Some(from), Some(to)) = (end_arg(&args[3]), end_arg(&args[4])) else {
        return err(SYNTAX_ERROR);
    };
    let timeout = match parse_timeout(&args[5]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    match move_element(ctx, &args[1], &args[2], from, to) {
        Ok(Some(value)) => bulk(&value),
        Ok(None) => block_or_nil(ctx, WaitOn::FirstKey, timeout, Reply::Nil),
        Err(e) => e,
    }
}
