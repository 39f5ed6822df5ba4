//! Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH.
//!
//! Between MULTI and EXEC the dispatcher queues commands (after checking
//! that they exist and have the right arity; a refused command makes EXEC
//! abort, as in Redis). EXEC runs the queue under the store lock the
//! connection already holds, so no other client's command interleaves, and
//! every write in it lands in one delta batch: peers apply the block
//! atomically too. WATCH is optimistic locking against *this node's* view:
//! EXEC fails if a watched key changed here since WATCH, whether by a local
//! client, a remote delta or expiry. It does not lock the key in other
//! regions (docs/semantics.md).

use bytes::Bytes;

use super::args::{err, Args, CmdResult};
use super::context::QueuedTransaction;
use super::flags::{ALLOW_IN_MULTI, FAST, LOADING, NOSCRIPT, STALE};
use super::{spec, CommandSpec, Context};
use crate::protocol::Reply;

/// Most commands one transaction may queue, so a client cannot grow a
/// queue without bound.
pub const MAX_QUEUED_COMMANDS: usize = 1 << 20;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_IN_MULTI, (0, 0, 0), "transactions", "1.2.0", "Starts a transaction.", multi),
    spec("exec", 1, NOSCRIPT | LOADING | STALE | ALLOW_IN_MULTI, (0, 0, 0), "transactions", "1.2.0", "Executes all commands in a transaction.", exec),
    spec("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_IN_MULTI, (0, 0, 0), "transactions", "2.0.0", "Discards a transaction.", discard),
    spec("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_IN_MULTI, (1, -1, 1), "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", watch),
    spec("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), "transactions", "2.2.0", "Forgets about watched keys of a transaction.", unwatch),
];

/// Queues a command while a transaction is open. Returns the reply to send
/// now (`QUEUED`), or `None` when the command runs immediately instead.
pub(crate) fn queue(ctx: &mut Context, command: &CommandSpec, args: &[Bytes]) -> Option<Reply> {
    let tx = ctx.client.multi.as_mut()?;
    if command.flags & ALLOW_IN_MULTI != 0 {
        return None;
    }
    if tx.commands.len() >= MAX_QUEUED_COMMANDS {
        tx.failed = true;
        return Some(err("ERR too many commands queued in this transaction"));
    }
    tx.commands.push(args.to_vec());
    Some(Reply::simple("QUEUED"))
}

/// Marks the open transaction (if any) as failed: a command was refused
/// while queueing.
pub(crate) fn refuse(ctx: &mut Context) {
    if let Some(tx) = ctx.client.multi.as_mut() {
        tx.failed = true;
    }
}

fn multi(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(QueuedTransaction::default());
    Ok(Reply::ok())
}

fn exec(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let Some(tx) = ctx.client.multi.take() else {
        return Err(err("ERR EXEC without MULTI"));
    };
    let changed = ctx
        .client
        .watching
        .iter()
        .any(|(db, key, token)| ctx.store.watch_token(*db, key) != *token);
    ctx.client.release_watches(ctx.store);
    if tx.failed {
        return Err(err(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    if changed {
        return Ok(Reply::NilArray);
    }
    // Queued commands answer at once: a blocking one cannot park inside
    // EXEC, as in Redis.
    let denied = std::mem::replace(&mut ctx.client.deny_blocking, true);
    let replies = tx
        .commands
        .iter()
        .map(|queued| super::run_queued(ctx, queued))
        .collect();
    ctx.client.deny_blocking = denied;
    Ok(Reply::Array(replies))
}

fn discard(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(err("ERR DISCARD without MULTI"));
    }
    ctx.client.release_watches(ctx.store);
    Ok(Reply::ok())
}

fn watch(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in args.rest() {
        let already = ctx
            .client
            .watching
            .iter()
            .any(|(d, k, _)| *d == db && k == key);
        if !already {
            let key = Bytes::copy_from_slice(key);
            let token = ctx.store.watch_key(db, &key);
            ctx.client.watching.push((db, key, token));
        }
    }
    Ok(Reply::ok())
}

fn unwatch(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    ctx.client.release_watches(ctx.store);
    Ok(Reply::ok())
}
