//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted as
//! numbers or (ALPHA) as bytes, optionally by weights looked up through a
//! `BY` pattern (`weight_*`, `obj_*->field`), windowed by `LIMIT`, each
//! element mapped through `GET` patterns, and (SORT only) stored as a list
//! with `STORE`, Redis 7.0's `sort.c` semantics and error texts.
//!
//! `STORE` is a `*STORE` overwrite of the destination with a fresh list
//! (docs/semantics.md); everything else only reads.

use std::cmp::Ordering;

use bytes::Bytes;

use super::args::{err, is, Args, CmdResult, SYNTAX_ERROR};
use super::flags::{DENYOOM, MOVABLEKEYS, READONLY, WRITE};
use super::typed::{self, wrongtype};
use super::{spec, CommandSpec, Context};
use crate::crdt::list::{End, List, ListEdit};
use crate::crdt::ormap::OrMap;
use crate::crdt::orset::OrSet;
use crate::crdt::zset::ZSet;
use crate::crdt::Kind;
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sort", -2, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "generic", "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", sort),
    spec("sort_ro", -2, READONLY | MOVABLEKEYS, (1, 1, 1), "generic", "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set.", sort_ro),
];

const NOT_A_DOUBLE: &str = "ERR One or more scores can't be converted into double";

/// The parsed options of one SORT call.
struct SortRequest<'a> {
    source: &'a Bytes,
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    by: Option<&'a Bytes>,
    /// A `BY` pattern without `*` (such as `nosort`): keep native order.
    dont_sort: bool,
    gets: Vec<&'a Bytes>,
    store: Option<&'a Bytes>,
}

fn sort(ctx: &mut Context, args: &mut Args) -> CmdResult {
    run(ctx, args, false)
}

fn sort_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    run(ctx, args, true)
}

/// Reads the options in Redis's order: each keyword with enough words
/// after it, anything else a syntax error (STORE is unknown to SORT_RO).
fn parse<'a>(args: &mut Args<'a>, readonly: bool) -> Result<SortRequest<'a>, Reply> {
    let mut request = SortRequest {
        source: args.key()?,
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        by: None,
        dont_sort: false,
        gets: Vec::new(),
        store: None,
    };
    while let Some(option) = args.next_if_any() {
        let left = args.remaining();
        if is(option, "asc") {
            request.desc = false;
        } else if is(option, "desc") {
            request.desc = true;
        } else if is(option, "alpha") {
            request.alpha = true;
        } else if is(option, "limit") && left >= 2 {
            request.limit_start = args.int()?;
            request.limit_count = args.int()?;
        } else if !readonly && is(option, "store") && left >= 1 {
            request.store = Some(args.next()?);
        } else if is(option, "by") && left >= 1 {
            let pattern = args.next()?;
            request.dont_sort = !pattern.contains(&b'*');
            request.by = Some(pattern);
        } else if is(option, "get") && left >= 1 {
            request.gets.push(args.next()?);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    Ok(request)
}

/// The source's elements in native order (list order, set order, sorted
/// set by score), or WRONGTYPE for a string or hash; empty when absent.
fn load_elements(ctx: &mut Context, key: &[u8]) -> Result<(Vec<Bytes>, Option<Kind>), Reply> {
    let db = ctx.client.db;
    let Some(state) = ctx.store.lookup_read(db, key) else {
        return Ok((Vec::new(), None));
    };
    let kind = state.kind();
    let elements = match kind {
        Some(Kind::List) => state
            .typed::<List>()
            .ok()
            .flatten()
            .map(|l| l.values().map(Bytes::copy_from_slice).collect())
            .unwrap_or_default(),
        Some(Kind::Set) => state
            .typed::<OrSet>()
            .ok()
            .flatten()
            .map(|s| s.members().map(Bytes::copy_from_slice).collect())
            .unwrap_or_default(),
        Some(Kind::ZSet) => state
            .typed::<ZSet>()
            .ok()
            .flatten()
            .map(|z| {
                z.ascending()
                    .map(|(m, _)| Bytes::copy_from_slice(m))
                    .collect()
            })
            .unwrap_or_default(),
        Some(_) => return Err(wrongtype()),
        None => Vec::new(),
    };
    Ok((elements, kind))
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element and the key read as a string, or,
/// with a non-empty `->field` suffix after the `*`, as a hash field. A
/// pattern without `*`, a missing key or a key of another type gives none.
fn lookup_by_pattern(ctx: &mut Context, pattern: &[u8], element: &[u8]) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(Bytes::copy_from_slice(element));
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after_star = &pattern[star + 1..];
    let arrow = after_star
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&at| at + 2 < after_star.len());
    let (suffix, field) = match arrow {
        Some(at) => (&after_star[..at], Some(&after_star[at + 2..])),
        None => (after_star, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    let db = ctx.client.db;
    let state = ctx.store.lookup_read(db, &key)?;
    match field {
        Some(field) => {
            let hash = state.typed::<OrMap>().ok().flatten()?;
            hash.get(field).map(|v| v.to_bytes())
        }
        None if state.kind() == Some(Kind::String) => state.string_value().map(|v| v.to_bytes()),
        None => None,
    }
}

/// A number as C's `strtod` reads a whole value (Redis's SORT check):
/// leading spaces allowed, the text must be consumed up to its end (or a
/// NUL byte), NaN and out-of-range values refused; an empty text is 0.
fn sort_score(text: &[u8]) -> Option<f64> {
    let text = match text.iter().position(|&b| b == 0) {
        Some(nul) => &text[..nul],
        None => text,
    };
    if text.is_empty() {
        return Some(0.0);
    }
    let body = match text.iter().position(|b| !b" \t\n\x0b\x0c\r".contains(b)) {
        Some(at) => &text[at..],
        None => return None,
    };
    let (negative, unsigned) = match body.first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    let value = if unsigned.len() > 2 && unsigned[..2].eq_ignore_ascii_case(b"0x") {
        hex_float(&unsigned[2..])?
    } else {
        let decimal = std::str::from_utf8(unsigned).ok()?;
        if decimal.starts_with(['+', '-']) {
            return None;
        }
        // Rust's parser reads the same decimal and inf/infinity/nan
        // grammar; range errors are checked as strtod's ERANGE.
        let value = decimal.parse::<f64>().ok()?;
        let named = decimal
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !b"eE".contains(&b));
        let mantissa = decimal.split(['e', 'E']).next().unwrap_or("");
        let nonzero_digits = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
        let overflow = value.is_infinite() && !named;
        let underflow = nonzero_digits && value.abs() < f64::MIN_POSITIVE;
        if overflow || underflow {
            return None;
        }
        value
    };
    let value = if negative { -value } else { value };
    (!value.is_nan()).then_some(value)
}

/// The digits after `0x` of a C hexadecimal float (`1f`, `1.8p3`).
fn hex_float(text: &[u8]) -> Option<f64> {
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'p' || b == b'P') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &b""[..]),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    for &digit in whole {
        value = value * 16.0 + (digit as char).to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for &digit in fraction {
        value += (digit as char).to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    if let Some(exponent) = exponent {
        let power: i32 = std::str::from_utf8(exponent).ok()?.parse().ok()?;
        value *= 2f64.powi(power);
    }
    value.is_finite().then_some(value)
}

/// One element with what it is compared by.
struct Entry {
    element: Bytes,
    score: f64,
    by_value: Option<Bytes>,
}

/// Redis's `sortCompare` for the request's mode, before DESC.
fn compare(a: &Entry, b: &Entry, alpha: bool, by_pattern: bool) -> Ordering {
    if !alpha {
        // Equal scores fall back to the elements' bytes, so the order is
        // deterministic.
        return a
            .score
            .partial_cmp(&b.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.element.cmp(&b.element));
    }
    if by_pattern {
        // A missing weight sorts first.
        return a.by_value.cmp(&b.by_value);
    }
    a.element.cmp(&b.element)
}

/// Redis's LIMIT arithmetic: the inclusive window `[start, end]` over
/// `len` elements (empty when `end < start`), never past either end.
fn window(len: i64, limit_start: i64, limit_count: i64) -> (i64, i64) {
    let mut start = limit_start.clamp(0, len);
    let count = limit_count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    (start, end.min(len - 1))
}

fn run(ctx: &mut Context, args: &mut Args, readonly: bool) -> CmdResult {
    let mut request = parse(args, readonly)?;
    let (elements, kind) = load_elements(ctx, request.source)?;
    // A set has no order of its own: storing it by a constant still sorts
    // (ALPHA), so the stored list is the same everywhere; so does a script
    // (Redis's rule, so its effects do not depend on the set's layout).
    if request.dont_sort
        && kind == Some(Kind::Set)
        && (request.store.is_some() || ctx.client.in_script)
    {
        request.dont_sort = false;
        request.alpha = true;
        request.by = None;
    }
    let len = elements.len() as i64;
    let (start, end) = window(len, request.limit_start, request.limit_count);

    let selected: Vec<Bytes> = if request.dont_sort {
        let native_ordered = kind != Some(Kind::Set);
        let mut elements = elements;
        if native_ordered && request.desc {
            elements.reverse();
        }
        window_of(elements, start, end)
    } else {
        let mut entries = Vec::with_capacity(elements.len());
        let mut not_a_double = false;
        for element in elements {
            let weight = match request.by {
                Some(pattern) => lookup_by_pattern(ctx, pattern, &element),
                None => None,
            };
            let mut entry = Entry {
                element,
                score: 0.0,
                by_value: None,
            };
            if request.alpha {
                entry.by_value = weight;
            } else {
                let text = match (&weight, request.by) {
                    (Some(w), _) => Some(w.as_ref()),
                    (None, None) => Some(entry.element.as_ref()),
                    (None, Some(_)) => None,
                };
                if let Some(text) = text {
                    match sort_score(text) {
                        Some(score) => entry.score = score,
                        None => not_a_double = true,
                    }
                }
            }
            entries.push(entry);
        }
        if not_a_double {
            return Err(err(NOT_A_DOUBLE));
        }
        let (alpha, by_pattern, desc) = (request.alpha, request.by.is_some(), request.desc);
        entries.sort_by(|a, b| {
            let order = compare(a, b, alpha, by_pattern);
            if desc {
                order.reverse()
            } else {
                order
            }
        });
        window_of(entries.into_iter().map(|e| e.element).collect(), start, end)
    };

    let mut output: Vec<Option<Bytes>> =
        Vec::with_capacity(selected.len() * request.gets.len().max(1));
    for element in selected {
        if request.gets.is_empty() {
            output.push(Some(element));
            continue;
        }
        for pattern in &request.gets {
            output.push(lookup_by_pattern(ctx, pattern, &element));
        }
    }

    match request.store {
        None => Ok(Reply::Array(
            output
                .into_iter()
                .map(|v| v.map_or(Reply::Nil, Reply::Bulk))
                .collect(),
        )),
        Some(destination) => {
            let stored = output.len() as i64;
            typed::overwrite::<List>(ctx, destination, |_ts, next_dot| {
                let empty = List::default();
                let mut edit = ListEdit::new(&empty);
                for value in &output {
                    // A missing GET stores an empty string.
                    edit.push(End::Right, value.as_deref().unwrap_or(b""), next_dot());
                }
                edit.finish()
            });
            Ok(Reply::Integer(stored))
        }
    }
}

/// The elements at positions `start..=end`.
fn window_of(elements: Vec<Bytes>, start: i64, end: i64) -> Vec<Bytes> {
    if end < start || start < 0 {
        return Vec::new();
    }
    elements
        .into_iter()
        .skip(start as usize)
        .take((end - start + 1) as usize)
        .collect()
}

/// Redis's `sortGetKeys`: the source, then the last STORE's destination
/// (LIMIT skips two words, BY and GET one, as the parser reads them).
pub fn sort_key_positions(argv: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut at = 2;
    while at < argv.len() {
        let word = &argv[at];
        if is(word, "limit") {
            at += 2;
        } else if is(word, "get") || is(word, "by") {
            at += 1;
        } else if is(word, "store") && at + 1 < argv.len() {
            store = Some(at + 1);
        }
        at += 1;
    }
    keys.extend(store);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_strtod() {
        assert_eq!(sort_score(b"1.5"), Some(1.5));
        assert_eq!(sort_score(b"  7"), Some(7.0));
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"1e-400"), None);
        assert_eq!(sort_score(b"7 "), None);
        assert_eq!(sort_score(b"not-a-double"), None);
        assert_eq!(sort_score(b"   "), None);
        assert_eq!(sort_score(b"--1"), None);
    }

    #[test]
    fn limit_window_matches_redis_arithmetic() {
        assert_eq!(window(5, 0, -1), (0, 4));
        assert_eq!(window(5, 5, 10), (4, 3));
        assert_eq!(window(5, -10, 100), (0, 4));
        assert_eq!(window(3, 2, i64::MAX), (2, 2));
        assert_eq!(window(0, 0, -1), (-1, -2));
    }

    #[test]
    fn store_keys_are_the_last_store_target() {
        let argv: Vec<Bytes> = [
            "sort", "abc", "store", "invalid", "store", "stillbad", "store", "def",
        ]
        .iter()
        .map(|s| Bytes::from(s.to_string()))
        .collect();
        assert_eq!(sort_key_positions(&argv), vec![1, 7]);
        let argv: Vec<Bytes> = ["sort", "abc", "get", "store", "limit", "1", "2"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(sort_key_positions(&argv), vec![1]);
    }
}
