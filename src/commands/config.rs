//! CONFIG GET, SET, RESETSTAT, REWRITE and HELP over the parameter table
//! (`crate::config::params`, every Redis 7.0 parameter and cordis's own).
//! The table decides names, aliases, values and refusals; this module only
//! speaks Redis's protocol for it and installs a changed configuration.

use bytes::Bytes;

use super::args::{err, err_owned, help_reply, text, Args, CmdResult, SYNTAX_ERROR};
use super::flags::{ADMIN, LOADING, NOSCRIPT, STALE};
use super::{container_handler, spec, CommandSpec, Context};
use crate::config::params::{self, Param};
use crate::protocol::Reply;
use crate::store::pattern::glob_match;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: CONFIG_SUBCOMMANDS,
        ..spec("config", -2, 0, (0, 0, 0), "server", "2.0.0", "A container for server configuration commands.", container_handler)
    },
];

#[rustfmt::skip]
static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    spec("get", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "Returns the effective values of configuration parameters.", config_get),
    spec("set", -4, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "Sets configuration parameters in-flight.", config_set),
    spec("resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.0.0", "Resets the server's statistics.", config_resetstat),
    spec("rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "2.8.0", "Persists the effective configuration to file.", config_rewrite),
    spec("help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", "Returns helpful text about the different subcommands.", config_help),
];

/// Whether a CONFIG GET argument is a glob (Redis looks for `[`, `*`, `?`).
fn is_pattern(arg: &[u8]) -> bool {
    arg.iter().any(|b| matches!(b, b'[' | b'*' | b'?'))
}

/// `CONFIG GET parameter [parameter …]`, as Redis 7.0 answers it: a plain
/// name (or alias, any case) is looked up and echoed as typed, hidden
/// parameters included; a pattern matches every visible name and alias.
/// Each spelling appears once.
fn config_get(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let config = ctx.server.config.read();
    let mut found: Vec<(Bytes, &'static Param)> = Vec::new();
    let mut add = |spelled: Bytes, row: &'static Param| {
        if !found.iter().any(|(s, _)| s.eq_ignore_ascii_case(&spelled)) {
            found.push((spelled, row));
        }
    };
    for arg in args.rest() {
        if !is_pattern(arg) {
            if let Some(row) = params::lookup(&text(arg)) {
                add(arg.clone(), row);
            }
            continue;
        }
        for row in params::all().iter().filter(|row| !row.hidden) {
            for name in row.names() {
                if glob_match(arg, name.as_bytes(), true) {
                    add(Bytes::from_static(name.as_bytes()), row);
                }
            }
        }
    }
    Ok(Reply::Map(
        found
            .into_iter()
            .map(|(name, row)| {
                let value = config.value_of(row);
                (Reply::Bulk(name), Reply::Bulk(Bytes::from(value)))
            })
            .collect(),
    ))
}

/// Whether a client connects over loopback (`enable-protected-configs
/// local` lets such clients change protected parameters).
fn is_local(addr: &str) -> bool {
    addr.starts_with("127.") || addr.starts_with("[::1]") || addr == "local"
}

/// `CONFIG SET parameter value [parameter value …]`: all or nothing, with
/// the table's checks and Redis's texts.
fn config_set(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // Redis: a name without a value is a syntax error, not an arity error.
    if !args.remaining().is_multiple_of(2) {
        return Err(err(SYNTAX_ERROR));
    }
    let pairs: Vec<(String, String)> = args
        .rest()
        .chunks_exact(2)
        .map(|pair| (text(&pair[0]), text(&pair[1])))
        .collect();
    let mut next = ctx.server.config.read().clone();
    next.set_many_from(&pairs, is_local(&ctx.client.info.addr))
        .map_err(|e| err_owned(format!("ERR {e}")))?;
    ctx.store
        .delta_log_mut()
        .set_cap_bytes(next.replication_log_bytes);
    super::persistence::switch_aof(ctx, &next)?;
    // A lower cap takes effect at once, as Redis starts evicting on it.
    super::maxmemory::apply_config(ctx, &next);
    ctx.server.replace_config(next);
    Ok(Reply::ok())
}

fn config_resetstat(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    ctx.server.stats.reset();
    ctx.store.introspection.reset();
    ctx.store.stats = Default::default();
    crate::store::lazyfree::reset_stats();
    Ok(Reply::ok())
}

/// `CONFIG REWRITE`: writes the current values into the TOML file the
/// node started with, keeping its comments.
fn config_rewrite(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let config = ctx.server.config.read();
    match config.rewrite_file(ctx.server.config_file.as_deref()) {
        Ok(()) => {
            tracing::warn!("CONFIG REWRITE executed with success.");
            Ok(Reply::ok())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(err_owned(format!("ERR {e}")))
        }
    }
}

fn config_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help_reply(&[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Print this help.",
    ]))
}
