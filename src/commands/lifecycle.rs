//! LOLWUT and SHUTDOWN.
//!
//! SHUTDOWN stops the node through the server's one shutdown path (the
//! token `ServerHandle::shutdown` cancels): the accept loop stops, every
//! connection finishes its batch and closes, and the binary exits. SAVE
//! saves the snapshot (and the final save at exit leaves the marker that
//! lets the next start resume this incarnation); plain SHUTDOWN saves when
//! save points are configured, as Redis does; NOSAVE never saves.

use bytes::Bytes;
use tracing::warn;

use super::args::{err, is, Args, CmdResult, NOT_AN_INTEGER, SYNTAX_ERROR};
use super::connection::REDIS_COMPAT_VERSION;
use super::context::ClientAction;
use super::flags::{ADMIN, FAST, LOADING, NOSCRIPT, NO_MULTI, READONLY, STALE};
use super::{spec, CommandSpec, Context};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lolwut", -1, READONLY | FAST, (0, 0, 0), "server", "5.0.0", "Displays computer art and the Redis version", lolwut),
    spec("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI, (0, 0, 0), "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", shutdown),
];

/// `LOLWUT [VERSION v]`: a small drawing for versions 5 and 6, then the
/// version line, as Redis ends every LOLWUT; Redis 7.0's own LOLWUT is the
/// version line alone.
fn lolwut(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let mut version = 7;
    if args.remaining() >= 2 && is(args.peek().map_or(&b""[..], |a| a), "version") {
        args.next()?;
        version = super::args::int(args.next()?).map_err(|_| err(NOT_AN_INTEGER))?;
    }
    let mut out = String::new();
    if version == 5 || version == 6 {
        let rows = 8;
        for row in 0..rows {
            let line: String = (0..32)
                .map(|col| match (row * 7 + col * 3 + row * col) % 5 {
                    0 => '⠿',
                    1 => '⠶',
                    2 => '⠛',
                    3 => '⠤',
                    _ => ' ',
                })
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
        out.push_str("cordis after Georg Nees. ");
    }
    out.push_str("Redis ver. ");
    out.push_str(REDIS_COMPAT_VERSION);
    out.push('\n');
    Ok(Reply::Verbatim(Bytes::from(out)))
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`, Redis 7.0's checks in
/// its order; a successful one sends no reply (the connection closes).
fn shutdown(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    while let Some(word) = args.next_if_any() {
        if is(word, "nosave") {
            nosave = true;
        } else if is(word, "save") {
            save = true;
        } else if is(word, "now") {
            now = true;
        } else if is(word, "force") {
            force = true;
        } else if is(word, "abort") {
            abort = true;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(err(SYNTAX_ERROR));
    }
    if abort {
        // Shutdown never waits for anything, so none is ever in progress.
        return Err(err("ERR No shutdown in progress."));
    }
    if ctx.client.deny_blocking && !now {
        return Err(err(
            "ERR SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client",
        ));
    }
    if save {
        // Redis refuses to stop when the save fails (unless FORCE); the
        // final save with the clean-shutdown marker runs once every
        // connection has stopped.
        if let Err(e) = super::persistence::save_now(ctx) {
            if !force {
                return Err(e);
            }
        }
    }
    ctx.server.persist.set_shutdown_mode(if save {
        crate::persist::SHUTDOWN_SAVE
    } else if nosave {
        crate::persist::SHUTDOWN_NOSAVE
    } else {
        crate::persist::SHUTDOWN_DEFAULT
    });
    warn!(
        client = ctx.client.info.id,
        "SHUTDOWN requested by a client: stopping"
    );
    ctx.server.shutdown.cancel();
    ctx.client.silent = true;
    ctx.client.action = Some(ClientAction::Close);
    Ok(Reply::ok())
}
