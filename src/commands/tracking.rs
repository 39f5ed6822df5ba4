//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO, and the two
//! moments the dispatcher gives the tracking tables (`pubsub::tracking`):
//! after a read-only command of a tracking client (its keys are
//! remembered) and around every command (who is running, for NOLOOP and
//! for sending a client's own invalidations after its reply).

use std::sync::Arc;

use bytes::Bytes;

use super::args::{err, err_owned, int, is, Args, CmdResult, SYNTAX_ERROR};
use super::context::TrackingFlags;
use super::{flags, CommandSpec, Context};
use crate::protocol::Reply;
use crate::pubsub::tracking::Mode;

const NOT_TRACKING: &str = "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled";

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN]
/// [OPTOUT] [NOLOOP]`, with Redis's checks in Redis's order.
pub fn client_tracking(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let switch = args.next()?.clone();
    let mut mode = Mode::default();
    while let Some(option) = args.next_if_any() {
        let more = !args.is_done();
        if is(option, "redirect") && more {
            if mode.redirect != 0 {
                return Err(err(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = int(args.next()?)?;
            let target = u64::try_from(id)
                .ok()
                .filter(|id| ctx.server.clients.contains_key(id));
            match target {
                Some(id) => mode.redirect = id,
                None => return Err(err("ERR The client ID you want redirect to does not exist")),
            }
        } else if is(option, "bcast") {
            mode.bcast = true;
        } else if is(option, "optin") {
            mode.optin = true;
        } else if is(option, "optout") {
            mode.optout = true;
        } else if is(option, "noloop") {
            mode.noloop = true;
        } else if is(option, "prefix") && more {
            mode.prefixes.push(args.next()?.clone());
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if is(&switch, "off") {
        disable(ctx);
        return Ok(Reply::ok());
    }
    if !is(&switch, "on") {
        return Err(err(SYNTAX_ERROR));
    }
    let current = ctx.client.tracking;
    if !mode.bcast && !mode.prefixes.is_empty() {
        return Err(err("ERR PREFIX option requires BCAST mode to be enabled"));
    }
    if current.is_some_and(|c| c.bcast != mode.bcast) {
        return Err(err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(err("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if mode.optin && mode.optout {
        return Err(err("ERR You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if current.is_some_and(|c| (mode.optin && c.optout) || (mode.optout && c.optin)) {
        return Err(err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if mode.bcast {
        check_prefixes(ctx, &mode.prefixes)?;
    }
    ctx.client.tracking = Some(TrackingFlags {
        bcast: mode.bcast,
        optin: mode.optin,
        optout: mode.optout,
        caching: false,
    });
    let info: Arc<dyn crate::pubsub::push::Receiver> = ctx.client.info.clone();
    ctx.server.tracking.enable(info, mode);
    Ok(Reply::ok())
}

/// Two prefixes of one client that would both cover some key are refused,
/// as Redis refuses them (new against existing, then new against new).
fn check_prefixes(ctx: &Context, prefixes: &[Bytes]) -> Result<(), Reply> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    let existing = ctx
        .server
        .tracking
        .mode_of(ctx.client.info.id)
        .map(|(m, _)| m.prefixes)
        .unwrap_or_default();
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, prefix) in prefixes.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(prefix, old)) {
            return Err(err_owned(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                show(prefix),
                show(old)
            )));
        }
        if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(prefix, o)) {
            return Err(err_owned(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                show(prefix),
                show(other)
            )));
        }
    }
    Ok(())
}

/// Tracking off for this client (CLIENT TRACKING OFF, RESET, leaving).
pub fn disable(ctx: &mut Context) {
    if ctx.client.tracking.take().is_some() {
        ctx.server.tracking.disable(ctx.client.info.id);
    }
}

/// `CLIENT CACHING YES|NO`: whether the next command's reads are tracked.
pub fn client_caching(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let Some(flags) = ctx.client.tracking.as_mut() else {
        return Err(err(NOT_TRACKING));
    };
    let choice = args.next()?;
    if is(choice, "yes") {
        if !flags.optin {
            return Err(err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(choice, "no") {
        if !flags.optout {
            return Err(err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(err(SYNTAX_ERROR));
    }
    flags.caching = true;
    Ok(Reply::ok())
}

/// `CLIENT GETREDIR`: -1 when not tracking, 0 without a redirect.
pub fn client_getredir(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let mode = ctx.server.tracking.mode_of(ctx.client.info.id);
    Ok(Reply::Integer(mode.map_or(-1, |(m, _)| m.redirect as i64)))
}

pub fn client_trackinginfo(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let word = |k: &'static str| Reply::Bulk(Bytes::from_static(k.as_bytes()));
    let tracked = ctx.server.tracking.mode_of(ctx.client.info.id);
    let flags = ctx.client.tracking.unwrap_or_default();
    let mut shown = vec![word(if tracked.is_some() { "on" } else { "off" })];
    let (redirect, prefixes) = match &tracked {
        Some((mode, broken)) => {
            if mode.bcast {
                shown.push(word("bcast"));
            }
            if mode.optin {
                shown.push(word("optin"));
                if flags.caching {
                    shown.push(word("caching-yes"));
                }
            }
            if mode.optout {
                shown.push(word("optout"));
                if flags.caching {
                    shown.push(word("caching-no"));
                }
            }
            if mode.noloop {
                shown.push(word("noloop"));
            }
            if *broken {
                shown.push(word("broken_redirect"));
            }
            (mode.redirect as i64, mode.prefixes.clone())
        }
        None => (-1, Vec::new()),
    };
    Ok(Reply::Map(vec![
        (word("flags"), Reply::Set(shown)),
        (word("redirect"), Reply::Integer(redirect)),
        (
            word("prefixes"),
            Reply::Array(prefixes.into_iter().map(Reply::Bulk).collect()),
        ),
    ]))
}

/// After a command ran: a default-mode tracking client's read-only
/// command remembers its keys (unless OPTIN without CACHING YES, or OPTOUT
/// with CACHING NO), and the one-command CACHING choice is spent — except
/// by CLIENT commands and inside MULTI, as Redis keeps it.
/// Tracks `keys` for the calling client as read (default mode, unless
/// OPTIN/OPTOUT say this command is not cached).
pub fn remember_keys(ctx: &mut Context, keys: &[&Bytes]) {
    let Some(flags) = ctx.client.tracking else {
        return;
    };
    let skip = (flags.optin && !flags.caching) || (flags.optout && flags.caching);
    if !flags.bcast && !skip && !keys.is_empty() {
        ctx.server
            .tracking
            .remember(ctx.client.info.id, keys.iter().copied());
    }
}

pub fn after_command(ctx: &mut Context, command: &CommandSpec, argv: &[Bytes]) {
    let Some(mut flags) = ctx.client.tracking else {
        return;
    };
    if command.flags & flags::READONLY != 0 {
        remember_keys(ctx, &command.key_args(argv));
    }
    if !argv[0].eq_ignore_ascii_case(b"client") && ctx.client.multi.is_none() {
        flags.caching = false;
        ctx.client.tracking = Some(flags);
    }
}
