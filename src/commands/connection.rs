//! Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET,
//! MONITOR and CLIENT. They change the calling client's session (protocol
//! version, db, name, authentication, reply mode) or act on the client
//! registry (CLIENT LIST / KILL / PAUSE / UNBLOCK); the connection task
//! does the waiting and closing they ask for.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args::{
    err, err_owned, help_reply, int, is, owned, text, Args, CmdResult, DB_OUT_OF_RANGE,
    NOT_AN_INTEGER, SYNTAX_ERROR, TIMEOUT_NEGATIVE, TIMEOUT_NOT_INTEGER,
};
use super::context::{client_flags, ClientAction, ClientInfo, ReplyMode, UnblockHow};
use super::flags::{ADMIN, ALLOW_IN_MULTI, FAST, LOADING, NOSCRIPT, NO_AUTH, STALE};
use super::tracking;
use super::{container_handler, spec, CommandSpec, Context, ServerState};
use crate::protocol::{Reply, RespVersion};
use crate::store::DB_COUNT;

/// Version string reported to clients (HELLO, INFO). Clients gate features
/// on it, so it names the Redis release whose behaviour cordis follows.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, FAST | STALE, (0, 0, 0), "connection", "1.0.0", "Returns the server's liveliness response.", ping),
    spec("echo", 2, FAST, (0, 0, 0), "connection", "1.0.0", "Returns the given string.", echo),
    spec("quit", -1, FAST | NO_AUTH | STALE | LOADING | NOSCRIPT | ALLOW_IN_MULTI, (0, 0, 0), "connection", "1.0.0", "Closes the connection.", quit),
    spec("hello", -1, FAST | NO_AUTH | STALE | LOADING | NOSCRIPT, (0, 0, 0), "connection", "6.0.0", "Handshakes with the Redis server.", hello),
    spec("auth", -2, FAST | NO_AUTH | STALE | LOADING | NOSCRIPT, (0, 0, 0), "connection", "1.0.0", "Authenticates the connection.", auth),
    spec("select", 2, FAST | STALE | LOADING, (0, 0, 0), "connection", "1.0.0", "Changes the selected database.", select),
    spec("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_IN_MULTI, (0, 0, 0), "connection", "6.2.0", "Resets the connection.", reset),
    spec("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Listens for all requests received by the server in real-time.", monitor),
    CommandSpec {
        subcommands: CLIENT_SUBCOMMANDS,
        ..spec("client", -2, 0, (0, 0, 0), "connection", "2.4.0", "A container for client connection commands.", container_handler)
    },
];

#[rustfmt::skip]
static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("caching", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.0.0", "Instructs the server whether to track the keys in the next request.", tracking::client_caching),
    spec("getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "Returns the name of the connection.", client_getname),
    spec("getredir", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.0.0", "Returns the client ID to which the connection's tracking notifications are redirected.", tracking::client_getredir),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Returns helpful text about the different subcommands.", client_help),
    spec("id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Returns the unique client ID of the connection.", client_id),
    spec("info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "Returns information about the connection.", client_info),
    spec("kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "Terminates open connections.", client_kill),
    spec("list", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "Lists open connections.", client_list),
    spec("no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "7.0.0", "Sets the client eviction mode of the connection.", client_no_evict),
    spec("pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "3.0.0", "Suspends commands processing.", client_pause),
    spec("reply", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "3.2.0", "Instructs the server whether to reply to commands.", client_reply),
    spec("setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "Sets the connection name.", client_setname),
    spec("tracking", -3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.0.0", "Controls server-assisted client-side caching for the connection.", tracking::client_tracking),
    spec("trackinginfo", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "Returns information about server-assisted client-side caching for the connection.", tracking::client_trackinginfo),
    spec("unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Unblocks a client blocked by a blocking command from a different connection.", client_unblock),
    spec("unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "Resumes processing commands from paused clients.", client_unpause),
];

const INVALID_CLIENT_ID: &str = "ERR Invalid client ID";

/// Redis's reply for a subcommand called with an argument count its
/// handler does not take (CLIENT UNBLOCK with five words…).
fn subcommand_syntax_error(args: &Args) -> Reply {
    let sub = args.argv().get(1).map(|s| text(s)).unwrap_or_default();
    err_owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
    ))
}

fn ping(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.remaining() > 1 {
        return Err(args.wrong_arity());
    }
    let message = args.next_if_any();
    if let Some(reply) = super::pubsub::subscribed_ping(ctx, message) {
        return Ok(reply);
    }
    Ok(match message {
        None => Reply::simple("PONG"),
        Some(message) => Reply::Bulk(message.clone()),
    })
}

fn echo(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    Ok(Reply::Bulk(args.next()?.clone()))
}

fn quit(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    ctx.client.action = Some(ClientAction::Close);
    Ok(Reply::ok())
}

/// Checks a password against `requirepass`; the error is Redis's.
fn check_password(ctx: &mut Context, user: Option<&[u8]>, password: &[u8]) -> Result<(), Reply> {
    let required = ctx.server.config.read().requirepass.clone();
    if required.is_empty() && user.is_none() {
        return Err(err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    let user_ok = user.is_none_or(|u| u == b"default");
    // With no password set, the default user accepts any password.
    if user_ok && (required.is_empty() || required.as_bytes() == password) {
        ctx.client.authenticated = true;
        Ok(())
    } else {
        note_auth_failure(ctx);
        Err(err(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// Counts a refused AUTH and logs it at most once a second, with how many
/// went unlogged since, so a password guesser cannot flood the log.
fn note_auth_failure(ctx: &mut Context) {
    let stats = &ctx.server.stats;
    let total = stats.auth_failures.fetch_add(1, Ordering::Relaxed) + 1;
    let second = crate::store::unix_ms() / 1000;
    let last = stats.auth_failure_logged_at.load(Ordering::Relaxed);
    let mine = last != second
        && stats
            .auth_failure_logged_at
            .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
    if mine {
        let suppressed = stats.auth_failures_unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(
            client = %ctx.client.info.addr,
            total,
            suppressed,
            "AUTH failed: wrong password"
        );
    } else {
        stats.auth_failures_unlogged.fetch_add(1, Ordering::Relaxed);
    }
}

/// `AUTH password` or `AUTH user password`.
fn auth(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let first = args.next()?;
    let second = args.next_if_any();
    args.finish()?;
    let (user, password) = match second {
        None => (None, first),
        Some(password) => (Some(first.as_ref()), password),
    };
    check_password(ctx, user, password)?;
    Ok(Reply::ok())
}

/// HELLO's protocol version: 2 or 3.
fn protocol_version(arg: &[u8]) -> Result<i64, Reply> {
    match int(arg) {
        Ok(v @ 2..=3) => Ok(v),
        Ok(_) => Err(err("NOPROTO unsupported protocol version")),
        Err(_) => Err(err(
            "ERR Protocol version is not an integer or out of range",
        )),
    }
}

fn hello(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let version = args
        .next_if_any()
        .map(|v| protocol_version(v))
        .transpose()?;
    // Redis 7.0 acts on each option as it reads it: AUTH authenticates and
    // SETNAME names the client even if a later option is refused.
    while let Some(option) = args.next_if_any() {
        if is(option, "auth") && args.remaining() >= 2 {
            let user = args.next()?;
            let password = args.next()?;
            check_password(ctx, Some(user), password)?;
        } else if is(option, "setname") && !args.is_done() {
            set_name(ctx, args.next()?)?;
        } else {
            return Err(err_owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                text(option)
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(v) = version {
        ctx.client.resp = if v == 3 {
            RespVersion::Resp3
        } else {
            RespVersion::Resp2
        };
        ctx.client.info.resp.store(v as usize, Ordering::Relaxed);
    }
    let proto = if ctx.client.resp == RespVersion::Resp3 {
        3
    } else {
        2
    };
    let field = |k: &'static str| Reply::Bulk(Bytes::from_static(k.as_bytes()));
    Ok(Reply::Map(vec![
        (field("server"), field("redis")),
        (field("version"), field(REDIS_COMPAT_VERSION)),
        (field("proto"), Reply::Integer(proto)),
        (field("id"), Reply::Integer(ctx.client.info.id as i64)),
        (field("mode"), field("standalone")),
        (field("role"), field("master")),
        (field("modules"), Reply::Array(vec![])),
    ]))
}

fn select(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let db = args.int_in(0..=DB_COUNT as i64 - 1, DB_OUT_OF_RANGE)? as usize;
    ctx.client.db = db;
    ctx.client.info.db.store(db, Ordering::Relaxed);
    Ok(Reply::ok())
}

// ----- CLIENT -----

fn set_name(ctx: &mut Context, name: &Bytes) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    *ctx.client.info.name.lock() = owned(name);
    Ok(())
}

fn client_setname(ctx: &mut Context, args: &mut Args) -> CmdResult {
    set_name(ctx, args.next()?)?;
    Ok(Reply::ok())
}

fn client_getname(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let name = ctx.client.info.name.lock().clone();
    Ok(if name.is_empty() {
        Reply::Nil
    } else {
        Reply::Bulk(name)
    })
}

fn client_id(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(ctx.client.info.id as i64))
}

/// A client type as CLIENT LIST / KILL name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Master,
    Replica,
    PubSub,
}

/// Redis's `getClientTypeByName`, with its error for an unknown type.
fn client_type(name: &[u8]) -> Result<ClientType, Reply> {
    let types = [
        ("normal", ClientType::Normal),
        ("master", ClientType::Master),
        ("replica", ClientType::Replica),
        ("slave", ClientType::Replica),
        ("pubsub", ClientType::PubSub),
    ];
    types
        .iter()
        .find(|(word, _)| is(name, word))
        .map(|&(_, t)| t)
        .ok_or_else(|| err_owned(format!("ERR Unknown client type '{}'", text(name))))
}

/// Which type a client is: every cordis client is normal (a MONITOR client
/// too, as Redis reports it); no replicas, masters or subscribers yet.
fn type_of(_client: &ClientInfo) -> ClientType {
    ClientType::Normal
}

/// Every registered client, by id.
fn all_clients(ctx: &Context) -> Vec<std::sync::Arc<ClientInfo>> {
    let mut clients: Vec<_> = ctx
        .server
        .clients
        .iter()
        .map(|e| e.value().clone())
        .collect();
    clients.sort_by_key(|c| c.id);
    clients
}

/// One CLIENT LIST line with the live `b` flag.
fn describe(ctx: &Context, c: &ClientInfo) -> String {
    let blocked = ctx.server.blocked.lock().contains(c.id);
    let mut line = c.describe_with(blocked);
    line.push('\n');
    line
}

fn client_list(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // Redis 7.0: `TYPE t` alone, or `ID id [id ...]`, or nothing.
    let mut out = String::new();
    match args.remaining() {
        0 => {
            for c in all_clients(ctx) {
                out.push_str(&describe(ctx, &c));
            }
        }
        2 if is(args.peek().map_or(&b""[..], |a| a), "type") => {
            args.next()?;
            let wanted = client_type(args.next()?)?;
            for c in all_clients(ctx) {
                if type_of(&c) == wanted {
                    out.push_str(&describe(ctx, &c));
                }
            }
        }
        n if n >= 2 && is(args.peek().map_or(&b""[..], |a| a), "id") => {
            args.next()?;
            for id in args.rest() {
                let id = int(id).map_err(|_| err(INVALID_CLIENT_ID))?;
                if let Some(c) = u64::try_from(id)
                    .ok()
                    .and_then(|id| ctx.server.clients.get(&id).map(|c| c.clone()))
                {
                    out.push_str(&describe(ctx, &c));
                }
            }
        }
        _ => return Err(err(SYNTAX_ERROR)),
    }
    Ok(Reply::Verbatim(Bytes::from(out)))
}

fn client_info(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let line = describe(ctx, &ctx.client.info.clone());
    Ok(Reply::Verbatim(Bytes::from(line)))
}

/// CLIENT KILL's filters (all must match).
#[derive(Default)]
struct KillFilter {
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    client_type: Option<ClientType>,
    id: Option<u64>,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo, me: u64) -> bool {
        self.addr.as_ref().is_none_or(|a| a == c.addr.as_bytes())
            && self.laddr.as_ref().is_none_or(|a| a == c.laddr.as_bytes())
            && self.client_type.is_none_or(|t| t == type_of(c))
            && self.id.is_none_or(|id| id == c.id)
            && !(self.skipme && c.id == me)
    }
}

/// `CLIENT KILL addr:port` (old form: `+OK` or `-ERR No such client`, may
/// kill the caller) or `CLIENT KILL <filter> <value> ...` (the number
/// killed; SKIPME defaults to yes).
fn client_kill(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let old_form = args.remaining() == 1;
    let mut filter = KillFilter {
        skipme: !old_form,
        ..KillFilter::default()
    };
    if old_form {
        filter.addr = Some(args.next()?.clone());
    } else {
        while let Some(option) = args.next_if_any() {
            let Some(value) = args.next_if_any() else {
                return Err(err(SYNTAX_ERROR));
            };
            if is(option, "id") {
                match int(value) {
                    Ok(id) if id > 0 => filter.id = Some(id as u64),
                    _ => return Err(err("ERR client-id should be greater than 0")),
                }
            } else if is(option, "type") {
                filter.client_type = Some(client_type(value)?);
            } else if is(option, "addr") {
                filter.addr = Some(value.clone());
            } else if is(option, "laddr") {
                filter.laddr = Some(value.clone());
            } else if is(option, "user") {
                // The default user is the only one; every client is it.
                if value.as_ref() != b"default" {
                    return Err(err_owned(format!("ERR No such user '{}'", text(value))));
                }
            } else if is(option, "skipme") {
                filter.skipme = if is(value, "yes") {
                    true
                } else if is(value, "no") {
                    false
                } else {
                    return Err(err(SYNTAX_ERROR));
                };
            } else {
                return Err(err(SYNTAX_ERROR));
            }
        }
    }
    let me = ctx.client.info.id;
    let mut killed = 0;
    let mut close_me = false;
    for c in all_clients(ctx) {
        if !filter.matches(&c, me) {
            continue;
        }
        killed += 1;
        if c.id == me {
            close_me = true;
        } else {
            kill_client(ctx, &c);
        }
    }
    if close_me {
        // After the reply (Redis's CLOSE_AFTER_REPLY).
        ctx.client
            .info
            .set_flag(client_flags::CLOSE_AFTER_REPLY, true);
        ctx.client.action = Some(ClientAction::Close);
    }
    if old_form {
        if killed == 0 {
            Err(err("ERR No such client"))
        } else {
            Ok(Reply::ok())
        }
    } else {
        Ok(Reply::Integer(killed))
    }
}

/// Closes another client: it leaves the registry now (CLIENT LIST and
/// `connected_clients` stop counting it at once, as Redis frees it
/// synchronously) and its connection task stops at its current wait.
pub fn kill_client(ctx: &Context, c: &ClientInfo) {
    c.kill();
    ctx.server.clients.remove(&c.id);
    ctx.server.monitors.remove(c.id);
    ctx.server.replica_feeds.detach(c.id);
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`: the mode is checked before the
/// timeout, as Redis does.
fn client_pause(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.remaining() > 2 {
        return Err(subcommand_syntax_error(args));
    }
    let timeout = args.next()?;
    let write_only = match args.next_if_any() {
        None => false,
        Some(mode) if is(mode, "write") => true,
        Some(mode) if is(mode, "all") => false,
        Some(_) => return Err(err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = int(timeout).map_err(|_| err(TIMEOUT_NOT_INTEGER))?;
    if ms < 0 {
        return Err(err(TIMEOUT_NEGATIVE));
    }
    if ms > 0 {
        let until = Instant::now()
            .checked_add(Duration::from_millis(ms as u64))
            .ok_or_else(|| err("ERR timeout is out of range"))?;
        ctx.server.pause_clients(until, write_only);
        // Deleting an expired key is a write: both modes hold expiry.
        let until_ms = ctx.store.now_ms().saturating_add(ms as u64);
        ctx.store.hold_expiry_until(until_ms);
    }
    Ok(Reply::ok())
}

fn client_unpause(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    ctx.server.unpause_clients();
    ctx.store.release_expiry();
    Ok(Reply::ok())
}

/// `CLIENT REPLY ON|OFF|SKIP`: only ON answers; the session applies the
/// mode (see [`ReplyMode`]).
fn client_reply(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let mode = args.next()?;
    if is(mode, "on") {
        ctx.client.reply_mode = ReplyMode::On;
    } else if is(mode, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if is(mode, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(err(SYNTAX_ERROR));
    }
    Ok(Reply::ok())
}

fn client_no_evict(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let on = args.one_of(&[("on", true), ("off", false)])?;
    ctx.client.info.set_flag(client_flags::NO_EVICT, on);
    Ok(Reply::ok())
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: 1 if the client was blocked (in a
/// blocking pop or WAIT) and is now answered, 0 otherwise.
fn client_unblock(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.remaining() > 2 {
        return Err(subcommand_syntax_error(args));
    }
    let id = args.next()?;
    let how = match args.next_if_any() {
        None => UnblockHow::Timeout,
        Some(r) if is(r, "timeout") => UnblockHow::Timeout,
        Some(r) if is(r, "error") => UnblockHow::Error,
        Some(_) => return Err(err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let id = int(id).map_err(|_| err(NOT_AN_INTEGER))?;
    let Some(target) = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.server.clients.get(&id).map(|c| c.clone()))
    else {
        return Ok(Reply::Integer(0));
    };
    let blocked =
        ctx.server.blocked.lock().contains(target.id) || target.has_flag(client_flags::BLOCKED);
    if !blocked || target.id == ctx.client.info.id {
        return Ok(Reply::Integer(0));
    }
    target.request_unblock(how);
    Ok(Reply::Integer(1))
}

fn client_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "HELP",
        "    Print this help.",
    ]))
}

// ----- RESET, MONITOR -----

/// RESET (Redis 7.0): leaves MULTI and unwatches, stops MONITOR, back to
/// db 0, RESP2, no name, replies on, and unauthenticated when a password
/// is required, and every subscription dropped (without confirmations, as
/// Redis).
fn reset(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let client = &mut *ctx.client;
    client.multi = None;
    client.release_watches(ctx.store);
    super::pubsub::forget_subscriptions(ctx);
    tracking::disable(ctx);
    let client = &mut *ctx.client;
    if client.info.has_flag(client_flags::MONITOR) {
        ctx.server.monitors.remove(client.info.id);
        client.info.set_flag(client_flags::MONITOR, false);
        client.info.omem.store(0, Ordering::Relaxed);
    }
    client.db = 0;
    client.info.db.store(0, Ordering::Relaxed);
    client.resp = RespVersion::Resp2;
    client.info.resp.store(2, Ordering::Relaxed);
    *client.info.name.lock() = Bytes::new();
    client.reply_mode = ReplyMode::On;
    client.authenticated = !ctx.server.requires_auth();
    Ok(Reply::simple("RESET"))
}

/// MONITOR: from now on this connection receives a line for every command
/// any client runs (see `server::push`). A second MONITOR answers nothing.
fn monitor(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    if ctx.client.deny_blocking {
        return Err(err("ERR MONITOR isn't allowed for DENY BLOCKING client"));
    }
    if ctx.client.info.has_flag(client_flags::MONITOR) {
        ctx.client.silent = true;
        return Ok(Reply::ok());
    }
    let limit = *ctx.server.monitor_output_limit.lock();
    let info = ctx.client.info.clone();
    info.set_flag(client_flags::MONITOR, true);
    let queue = info.push_queue_or_new(limit);
    ctx.server.monitors.add(info, queue);
    Ok(Reply::ok())
}

/// Where a command MONITOR shows came from: a client (its address) or a
/// script (`lua`, as Redis shows a script's own client).
#[derive(Clone, Copy)]
pub enum MonitorOrigin<'a> {
    Client(&'a str),
    Script,
}

/// Gives every MONITOR client the line for `argv`, run in database `db`.
/// Monitors whose queues overflow are cut off and counted.
pub fn feed_monitors(server: &ServerState, db: usize, origin: MonitorOrigin, argv: &[Bytes]) {
    if server.monitors.is_empty() {
        return;
    }
    let origin = match origin {
        MonitorOrigin::Client(addr) => addr,
        MonitorOrigin::Script => "lua",
    };
    let now = std::time::SystemTime::now();
    let line = crate::pubsub::push::monitor_line(db, origin, argv, now);
    let cut = server.monitors.feed(line);
    if cut > 0 {
        server
            .stats
            .client_output_limit_disconnections
            .fetch_add(cut as u64, Ordering::Relaxed);
    }
}
