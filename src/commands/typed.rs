//! Plumbing shared by the collection families (hashes, sets, sorted sets,
//! lists): reading a key as one collection type with Redis's WRONGTYPE
//! error for any other, writing element changes through the store, the
//! `*STORE` overwrite, and the cursor/MATCH/COUNT options of the SCAN
//! family.

use bytes::Bytes;

use super::args::{err, is, Args, SYNTAX_ERROR, WRONGTYPE};
use super::Context;
use crate::crdt::{Dot, ElementCrdt, Hlc, KeyDelta, KeyState};
use crate::protocol::Reply;
use crate::store::pattern::glob_match;
use crate::store::WriteCtx;

pub(crate) fn wrongtype() -> Reply {
    err(WRONGTYPE)
}

/// The key as collection `T` for a read command (counts a keyspace hit or
/// miss): `Ok(None)` when absent, WRONGTYPE when another type.
pub(crate) fn read<'a, T: ElementCrdt>(
    ctx: &'a mut Context,
    key: &[u8],
) -> Result<Option<&'a T>, Reply> {
    let db = ctx.client.db;
    match ctx.store.lookup_read(db, key) {
        None => Ok(None),
        Some(state) => state.typed::<T>().map_err(|_| wrongtype()),
    }
}

/// Like [`read`] without counting a hit or miss (reads made to decide a
/// write, such as SMOVE's destination check).
pub(crate) fn peek<'a, T: ElementCrdt>(
    ctx: &'a mut Context,
    key: &[u8],
) -> Result<Option<&'a T>, Reply> {
    let db = ctx.client.db;
    match ctx.store.lookup(db, key) {
        None => Ok(None),
        Some(state) => state.typed::<T>().map_err(|_| wrongtype()),
    }
}

/// Runs a write on the key as collection `T` (empty when absent). `change`
/// returns the element changes and a result, or an error that leaves the
/// key untouched; WRONGTYPE when the key holds another type.
pub(crate) fn write<T: ElementCrdt, R>(
    ctx: &mut Context,
    key: &[u8],
    change: impl FnOnce(&T, &mut WriteCtx) -> Result<(T::Delta, R), Reply>,
) -> Result<R, Reply> {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        let empty;
        let current = match state.typed::<T>() {
            Err(_) => return (KeyDelta::default(), Err(wrongtype())),
            Ok(Some(current)) => current,
            Ok(None) => {
                empty = T::default();
                &empty
            }
        };
        match change(current, w) {
            Ok((elements, result)) => {
                let ts = w.ts();
                let delta = state.delta_collection::<T>(elements, ts, &mut || w.next_dot());
                (delta, Ok(result))
            }
            Err(e) => (KeyDelta::default(), Err(e)),
        }
    })
}

/// Replaces whatever `key` holds (any type, and its TTL) with a fresh
/// collection `T` built by `build` from the write's timestamp and fresh
/// dots; an empty result just deletes the key (the `*STORE` commands).
pub(crate) fn overwrite<T: ElementCrdt>(
    ctx: &mut Context,
    key: &[u8],
    build: impl FnOnce(Hlc, &mut dyn FnMut() -> Dot) -> T::Delta,
) {
    let db = ctx.client.db;
    ctx.store.write_key(db, key, |state, w| {
        let ts = w.ts();
        let mut next_dot = || w.next_dot();
        let mut delta = if state.is_empty() {
            KeyDelta::default()
        } else {
            state.delta_delete(ts, &mut next_dot)
        };
        let elements = build(ts, &mut next_dot);
        if !T::delta_is_empty(&elements) {
            delta = delta.then(KeyState::new().delta_collection::<T>(elements, ts, &mut next_dot));
        }
        (delta, ())
    });
}

/// The options of SCAN, SSCAN, HSCAN and ZSCAN.
pub(crate) struct ScanOptions<'a> {
    pub cursor: u64,
    pub pattern: Option<&'a Bytes>,
    pub count: usize,
    /// SCAN's TYPE filter (refused by the per-key scans).
    pub type_filter: Option<&'a Bytes>,
}

impl ScanOptions<'_> {
    /// Whether `item` passes MATCH.
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| p.as_ref() == b"*" || glob_match(p, item, false))
    }
}

/// Reads `cursor [MATCH pattern] [COUNT count] [TYPE type]` from the
/// cursor's position to the end, with Redis's errors.
pub(crate) fn scan_options<'a>(
    args: &mut Args<'a>,
    allow_type: bool,
) -> Result<ScanOptions<'a>, Reply> {
    let cursor = std::str::from_utf8(args.next()?)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| err("ERR invalid cursor"))?;
    let mut options = ScanOptions {
        cursor,
        pattern: None,
        count: 10,
        type_filter: None,
    };
    while let Some(option) = args.next_if_any() {
        if args.is_done() {
            return Err(err(SYNTAX_ERROR));
        }
        if is(option, "match") {
            options.pattern = Some(args.next()?);
        } else if is(option, "count") {
            options.count = args.int_in(1..=i64::MAX, SYNTAX_ERROR)? as usize;
        } else if allow_type && is(option, "type") {
            options.type_filter = Some(args.next()?);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    Ok(options)
}

/// The `[cursor, [items…]]` reply of the SCAN family.
pub(crate) fn scan_reply(next: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(items),
    ])
}
