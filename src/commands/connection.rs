//! Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT and CLIENT.
//! They change only the calling client's session (protocol version, db,
//! name, authentication) or read the client registry.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{self, err, err_owned, int, is};
use super::context::ClientAction;
use super::flags::{ALLOW_IN_MULTI, FAST, LOADING, NOSCRIPT, NO_AUTH, STALE};
use super::{container_handler, spec, CommandSpec, Context};
use crate::protocol::{Reply, RespVersion};
use crate::store::DB_COUNT;

/// Version string reported to clients (HELLO, INFO). Clients gate features
/// on it, so it names the Redis release whose behaviour cordis follows.
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, FAST | STALE, (0, 0, 0), "connection", "1.0.0", "Returns the server's liveliness response.", legacy!(ping)),
    spec("echo", 2, FAST, (0, 0, 0), "connection", "1.0.0", "Returns the given string.", legacy!(echo)),
    spec("quit", -1, FAST | NO_AUTH | STALE | LOADING | NOSCRIPT | ALLOW_IN_MULTI, (0, 0, 0), "connection", "1.0.0", "Closes the connection.", legacy!(quit)),
    spec("hello", -1, FAST | NO_AUTH | STALE | LOADING | NOSCRIPT, (0, 0, 0), "connection", "6.0.0", "Handshakes with the Redis server.", legacy!(hello)),
    spec("auth", -2, FAST | NO_AUTH | STALE | LOADING | NOSCRIPT, (0, 0, 0), "connection", "1.0.0", "Authenticates the connection.", legacy!(auth)),
    spec("select", 2, FAST | STALE | LOADING, (0, 0, 0), "connection", "1.0.0", "Changes the selected database.", legacy!(select)),
    CommandSpec {
        subcommands: CLIENT_SUBCOMMANDS,
        ..spec("client", -2, 0, (0, 0, 0), "connection", "2.4.0", "A container for client connection commands.", container_handler)
    },
];

#[rustfmt::skip]
static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "Sets the connection name.", legacy!(client_setname)),
    spec("getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.6.9", "Returns the name of the connection.", legacy!(client_getname)),
    spec("id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Returns the unique client ID of the connection.", legacy!(client_id)),
    spec("list", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "2.4.0", "Lists open connections.", legacy!(client_list)),
    spec("info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "6.2.0", "Returns information about the connection.", legacy!(client_info)),
    spec("setinfo", 4, NOSCRIPT | LOADING | STALE, (0, 0, 0), "connection", "7.2.0", "Sets information specific to the client or connection.", legacy!(client_setinfo)),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "connection", "5.0.0", "Returns helpful text about the different subcommands.", legacy!(client_help)),
];

fn ping(_ctx: &mut Context, args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::simple("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => args::wrong_arity("ping"),
    }
}

fn echo(_ctx: &mut Context, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

fn quit(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    ctx.client.action = Some(ClientAction::Close);
    Reply::ok()
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

fn auth(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let result = match args.len() {
        2 => check_password(ctx, None, &args[1]),
        3 => check_password(ctx, Some(&args[1]), &args[2]),
        _ => return err(args::SYNTAX_ERROR),
    };
    match result {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

fn hello(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let mut version = None;
    let mut i = 1;
    if args.len() > 1 {
        match int(&args[1]) {
            Ok(v @ 2..=3) => version = Some(v),
            Ok(_) => return err("NOPROTO unsupported protocol version"),
            Err(_) => return err("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        if is(&args[i], "auth") && i + 2 < args.len() {
            if let Err(e) = check_password(ctx, Some(&args[i + 1]), &args[i + 2]) {
                return e;
            }
            i += 3;
        } else if is(&args[i], "setname") && i + 1 < args.len() {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return err_owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                args::text(&args[i])
            ));
        }
    }
    if !ctx.client.authenticated {
        return err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = name {
        if let Err(e) = set_name(ctx, name) {
            return e;
        }
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
    Reply::Map(vec![
        (field("server"), field("redis")),
        (field("version"), field(REDIS_COMPAT_VERSION)),
        (field("proto"), Reply::Integer(proto)),
        (field("id"), Reply::Integer(ctx.client.info.id as i64)),
        (field("mode"), field("standalone")),
        (field("role"), field("master")),
        (field("modules"), Reply::Array(vec![])),
    ])
}

fn select(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match int(&args[1]) {
        Ok(db) if (0..DB_COUNT as i64).contains(&db) => {
            ctx.client.db = db as usize;
            ctx.client.info.db.store(db as usize, Ordering::Relaxed);
            Reply::ok()
        }
        Ok(_) => err(args::DB_OUT_OF_RANGE),
        Err(e) => e,
    }
}

// ----- CLIENT -----

fn set_name(ctx: &mut Context, name: Bytes) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    *ctx.client.info.name.lock() = args::owned(&name);
    Ok(())
}

fn client_setname(ctx: &mut Context, args: &[Bytes]) -> Reply {
    match set_name(ctx, args[2].clone()) {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    }
}

fn client_getname(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    let name = ctx.client.info.name.lock().clone();
    if name.is_empty() {
        Reply::Nil
    } else {
        Reply::Bulk(name)
    }
}

fn client_id(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    Reply::Integer(ctx.client.info.id as i64)
}

fn client_list(ctx: &mut Context, args: &[Bytes]) -> Reply {
    // Accepted filters: TYPE normal|master|replica|pubsub, ID id [id...].
    let mut ids: Option<Vec<u64>> = None;
    let mut only_normal = true;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            if !(is(t, "normal")
                || is(t, "master")
                || is(t, "replica")
                || is(t, "pubsub")
                || is(t, "slave"))
            {
                return err_owned(format!("ERR Unknown client type '{}'", args::text(t)));
            }
            only_normal = is(t, "normal");
            i += 2;
        } else if is(&args[i], "id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[i + 1..] {
                match int(a) {
                    Ok(v) if v > 0 => list.push(v as u64),
                    _ => return err("ERR Invalid client ID"),
                }
            }
            ids = Some(list);
            i = args.len();
        } else {
            return err(args::SYNTAX_ERROR);
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
    Reply::Verbatim(Bytes::from(out))
}

fn client_info(ctx: &mut Context, _args: &[Bytes]) -> Reply {
    let mut line = ctx.client.info.describe();
    line.push('\n');
    Reply::Verbatim(Bytes::from(line))
}

fn client_setinfo(_ctx: &mut Context, args: &[Bytes]) -> Reply {
    if is(&args[2], "lib-name") || is(&args[2], "lib-ver") {
        Reply::ok()
    } else {
        err_owned(format!(
            "ERR Unrecognized option '{}'",
            args::text(&args[2])
        ))
    }
}

fn client_help(_ctx: &mut Context, _args: &[Bytes]) -> Reply {
    let lines = [
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
    ];
    args::help_reply(&lines)
}
