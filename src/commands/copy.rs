//! COPY, MOVE and SWAPDB: commands that duplicate or move whole keys
//! between names and logical databases.
//!
//! Across regions each is a plain write, applied at peers as one batch: the
//! destination is overwritten like a SET/`*STORE` with the source's visible
//! value under fresh dots (and its deadline), and a move's source side is
//! an observed delete. Concurrent writes made elsewhere stay where they
//! were made (docs/semantics.md, "Copies, moves and SWAPDB").

use std::collections::HashSet;

use bytes::Bytes;

use super::args::{err, err_owned, int, is, Args, CmdResult, DB_OUT_OF_RANGE, SYNTAX_ERROR};
use super::flags::{DENYOOM, FAST, WRITE};
use super::{spec, CommandSpec, Context};
use crate::crdt::{KeyDelta, KeyState, TtlChange};
use crate::protocol::Reply;
use crate::store::DB_COUNT;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", "6.2.0", "Copies the value of a key to a new key.", copy),
    spec("move", 3, WRITE | FAST, (1, 1, 1), "generic", "1.0.0", "Moves a key to another database.", move_key),
    spec("swapdb", 3, WRITE | FAST, (0, 0, 0), "server", "4.0.0", "Swaps two Redis databases.", swapdb),
];

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// A database index as Redis's `getIntFromObjectOrReply` reads it, then
/// checked against the 16 databases. `invalid` replaces both integer
/// errors when given (SWAPDB's texts).
fn db_index(arg: &[u8], invalid: Option<&'static str>) -> Result<usize, Reply> {
    let value = int(arg).map_err(|e| invalid.map_or(e, err))?;
    if value < i32::MIN as i64 || value > i32::MAX as i64 {
        return Err(match invalid {
            Some(text) => err(text),
            None => err_owned(format!(
                "ERR value is out of range, value must between {} and {}",
                i32::MIN,
                i32::MAX
            )),
        });
    }
    if !(0..DB_COUNT as i64).contains(&value) {
        return Err(err(DB_OUT_OF_RANGE));
    }
    Ok(value as usize)
}

/// Overwrites `key` in `db` with `source`'s visible value and deadline
/// (no deadline clears one), as a fresh write: whatever the destination
/// held is an observed delete (COPY, MOVE, SWAPDB, RENAME).
pub(super) fn write_copy(ctx: &mut Context, db: usize, key: &[u8], source: &KeyState) {
    let ttl = source
        .deadline()
        .map_or(TtlChange::Clear, TtlChange::Deadline);
    ctx.store.write_key(db, key, |state, w| {
        let ts = w.ts();
        let mut next_dot = || w.next_dot();
        let delta = if state.is_empty() {
            KeyDelta::default()
        } else {
            state.delta_delete(ts, &mut next_dot)
        };
        let delta = delta
            .then(source.delta_copy_value(ts, &mut next_dot))
            .then(KeyState::new().delta_ttl(ttl, &mut next_dot));
        (delta, ())
    });
}

/// `COPY source destination [DB index] [REPLACE]`.
fn copy(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let from = args.key()?;
    let to = args.key()?;
    let source_db = ctx.client.db;
    let mut target_db = source_db;
    let mut replace = false;
    while let Some(option) = args.next_if_any() {
        if is(option, "replace") {
            replace = true;
        } else if is(option, "db") && args.remaining() >= 1 {
            target_db = db_index(args.next()?, None)?;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if source_db == target_db && from == to {
        return Err(err(SAME_OBJECT));
    }
    let Some(source) = ctx.store.lookup_read(source_db, from).cloned() else {
        return Ok(Reply::Integer(0));
    };
    if !replace && ctx.store.exists(target_db, to) {
        return Ok(Reply::Integer(0));
    }
    write_copy(ctx, target_db, to, &source);
    Ok(Reply::Integer(1))
}

/// `MOVE key db`: a copy into the other database plus a delete here, in
/// one batch; refused (0) when the target already has the key.
fn move_key(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let target_db = db_index(args.next()?, None)?;
    let source_db = ctx.client.db;
    if source_db == target_db {
        return Err(err(SAME_OBJECT));
    }
    let Some(source) = ctx.store.lookup(source_db, key).cloned() else {
        return Ok(Reply::Integer(0));
    };
    if ctx.store.exists(target_db, key) {
        return Ok(Reply::Integer(0));
    }
    write_copy(ctx, target_db, key, &source);
    ctx.store.delete_key(source_db, key);
    Ok(Reply::Integer(1))
}

/// The visible keys of `db` with their states.
fn snapshot(ctx: &mut Context, db: usize) -> Vec<(Bytes, KeyState)> {
    let keys = ctx.store.keys_where(db, |_| true);
    keys.into_iter()
        .filter_map(|key| {
            let state = ctx.store.lookup(db, &key)?.clone();
            Some((key, state))
        })
        .collect()
}

/// `SWAPDB index1 index2`: every key this node sees in each database is
/// rewritten into the other one (and deleted where the other has no such
/// key), all in one batch, so peers apply the exchange atomically.
fn swapdb(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let first = db_index(args.next()?, Some("ERR invalid first DB index"))?;
    let second = db_index(args.next()?, Some("ERR invalid second DB index"))?;
    if first == second {
        return Ok(Reply::ok());
    }
    let first_keys = snapshot(ctx, first);
    let second_keys = snapshot(ctx, second);
    for (keys, here, other) in [
        (&first_keys, first, &second_keys),
        (&second_keys, second, &first_keys),
    ] {
        let overwritten: HashSet<&Bytes> = other.iter().map(|(k, _)| k).collect();
        for (key, _) in keys {
            if !overwritten.contains(key) {
                ctx.store.delete_key(here, key);
            }
        }
    }
    for (key, state) in &first_keys {
        write_copy(ctx, second, key, state);
    }
    for (key, state) in &second_keys {
        write_copy(ctx, first, key, state);
    }
    Ok(Reply::ok())
}
