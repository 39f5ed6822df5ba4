//! Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT and CLIENT.
//! They change only the calling client's session (protocol version, db,
//! name, authentication) or read the client registry.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{
    err, err_owned, help_reply, int, is, owned, text, Args, CmdResult, DB_OUT_OF_RANGE,
    SYNTAX_ERROR,
};
use super::context::ClientAction;
use super::flags::{ALLOW_IN_MULTI, FAST, LOADING, NOSCRIPT, NO_AUTH, STALE};
use super::{container_handler, spec, CommandSpec, Context};
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
    CommandSpec {
        subcommands: CLIENT_SUBCOMMANDS,
        ..spec("client", -2, 0, (0, 0, 0), "connection", "2.4.0", "A container for client connection commands.", container_handler)
    },
];

#[rustfmt::skip]
static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "Sets the connection name.", client_setname),
    spec("getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "Returns the name of the connection.", client_getname),
    spec("id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Returns the unique client ID of the connection.", client_id),
    spec("list", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "Lists open connections.", client_list),
    spec("info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "Returns information about the connection.", client_info),
    spec("setinfo", 4, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "7.2.0", "Sets information specific to the client or connection.", client_setinfo),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Returns helpful text about the different subcommands.", client_help),
];

const INVALID_CLIENT_ID: &str = "ERR Invalid client ID";

fn ping(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.remaining() > 1 {
        return Err(args.wrong_arity());
    }
    Ok(match args.next_if_any() {
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
        Err(err(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
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

/// CLIENT LIST's TYPE filter: whether it asks for normal clients (the
/// only kind cordis has); Redis's error for an unknown type.
fn lists_normal_clients(client_type: &[u8]) -> Result<bool, Reply> {
    let known = ["normal", "master", "replica", "pubsub", "slave"];
    if !known.iter().any(|t| is(client_type, t)) {
        return Err(err_owned(format!(
            "ERR Unknown client type '{}'",
            text(client_type)
        )));
    }
    Ok(is(client_type, "normal"))
}

/// CLIENT LIST's `ID id [id ...]`: every argument left, each a positive
/// integer.
fn client_ids(args: &mut Args) -> Result<Vec<u64>, Reply> {
    args.rest()
        .iter()
        .map(|id| match int(id) {
            Ok(id) if id > 0 => Ok(id as u64),
            _ => Err(err(INVALID_CLIENT_ID)),
        })
        .collect()
}

fn client_list(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // Accepted filters: TYPE normal|master|replica|pubsub, ID id [id...].
    let mut ids: Option<Vec<u64>> = None;
    let mut only_normal = true;
    while let Some(filter) = args.next_if_any() {
        if is(filter, "type") && !args.is_done() {
            only_normal = lists_normal_clients(args.next()?)?;
        } else if is(filter, "id") && !args.is_done() {
            ids = Some(client_ids(args)?);
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    let mut clients: Vec<_> = ctx
        .server
        .clients
        .iter()
        .map(|e| e.value().clone())
        .collect();
    clients.sort_by_key(|c| c.id);
    let mut out = String::new();
    for c in clients {
        if !only_normal || ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        out.push_str(&c.describe());
        out.push('\n');
    }
    Ok(Reply::Verbatim(Bytes::from(out)))
}

fn client_info(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let mut line = ctx.client.info.describe();
    line.push('\n');
    Ok(Reply::Verbatim(Bytes::from(line)))
}

/// CLIENT SETINFO accepts LIB-NAME and LIB-VER and ignores the value.
fn client_setinfo(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let option = args.next()?;
    if is(option, "lib-name") || is(option, "lib-ver") {
        Ok(Reply::ok())
    } else {
        Err(err_owned(format!(
            "ERR Unrecognized option '{}'",
            text(option)
        )))
    }
}

fn client_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
        "    Return information about client connections.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <option> <value>",
        "    Set client meta attr (LIB-NAME or LIB-VER).",
        "HELP",
        "    Print this help.",
    ]))
}
