//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL,
//! FCALL_RO and FUNCTION, over the Lua engine in [`crate::scripting`].
//!
//! A script runs to its end under the store lock its connection holds, like
//! EXEC: its commands go through the dispatcher's queued path
//! ([`super::run_queued`]), so every write it makes joins the one delta
//! batch the dispatcher closes after EVAL (peers apply the script's
//! effects atomically and never re-run it), and keyspace events, tracking
//! invalidations and per-command statistics are the same as for the
//! commands outside a script. The checks Redis makes for each command a
//! script calls (`script.c`) live in [`ScriptHost`].

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{err, err_owned, Args, CmdResult};
use super::flags::{
    ADMIN, DENYOOM, FAST, LOADING, MOVABLEKEYS, NOSCRIPT, READONLY, SKIP_MONITOR, STALE, WRITE,
};
use super::{container_handler, spec, CommandSpec, Context};
use crate::protocol::{Reply, RespVersion};
use crate::scripting::{self, flags as sflags, Host, Target};

const NO_KEYS: (i32, i32, i32) = (0, 0, 0);

#[rustfmt::skip]
static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("load", 3, NOSCRIPT | STALE, NO_KEYS, "scripting", "2.6.0", "Loads a server-side Lua script to the script cache.", script_load),
    spec("exists", -3, NOSCRIPT, NO_KEYS, "scripting", "2.6.0", "Determines whether server-side Lua scripts exist in the script cache.", script_exists),
    spec("flush", -2, NOSCRIPT, NO_KEYS, "scripting", "2.6.0", "Removes all server-side Lua scripts from the script cache.", script_flush),
    spec("kill", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, "scripting", "2.6.0", "Terminates a server-side Lua script during execution.", script_kill),
    spec("help", 2, LOADING | STALE, NO_KEYS, "scripting", "5.0.0", "Returns helpful text about the different subcommands.", script_help),
];

#[rustfmt::skip]
static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    spec("load", -3, WRITE | DENYOOM | NOSCRIPT, NO_KEYS, "scripting", "7.0.0", "Creates a library.", function_load),
    spec("delete", 3, WRITE | NOSCRIPT, NO_KEYS, "scripting", "7.0.0", "Deletes a library and its functions.", function_delete),
    spec("list", -2, NOSCRIPT, NO_KEYS, "scripting", "7.0.0", "Returns information about all libraries.", function_list),
    spec("dump", 2, NOSCRIPT, NO_KEYS, "scripting", "7.0.0", "Dumps all libraries into a serialized binary payload.", function_dump),
    spec("restore", -3, WRITE | DENYOOM | NOSCRIPT, NO_KEYS, "scripting", "7.0.0", "Restores all libraries from a payload.", function_restore),
    spec("flush", -2, WRITE | NOSCRIPT, NO_KEYS, "scripting", "7.0.0", "Deletes all libraries and functions.", function_flush),
    spec("stats", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, "scripting", "7.0.0", "Returns information about a function during execution.", function_stats),
    spec("kill", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, "scripting", "7.0.0", "Terminates a function during execution.", function_kill),
    spec("help", 2, LOADING | STALE, NO_KEYS, "scripting", "7.0.0", "Returns helpful text about the different subcommands.", function_help),
];

/// Internal: may run while a script is busy (SCRIPT KILL, FUNCTION KILL,
/// FUNCTION STATS); not shown by COMMAND.
pub const ALLOW_BUSY: u32 = 1 << 17;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("eval", -3, NOSCRIPT | SKIP_MONITOR | STALE | MOVABLEKEYS, NO_KEYS, "scripting", "2.6.0", "Executes a server-side Lua script.", eval),
    spec("evalsha", -3, NOSCRIPT | SKIP_MONITOR | STALE | MOVABLEKEYS, NO_KEYS, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", evalsha),
    spec("eval_ro", -3, NOSCRIPT | SKIP_MONITOR | STALE | READONLY | MOVABLEKEYS, NO_KEYS, "scripting", "7.0.0", "Executes a read-only server-side Lua script.", eval_ro),
    spec("evalsha_ro", -3, NOSCRIPT | SKIP_MONITOR | STALE | READONLY | MOVABLEKEYS, NO_KEYS, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", evalsha_ro),
    spec("fcall", -3, NOSCRIPT | SKIP_MONITOR | STALE | MOVABLEKEYS, NO_KEYS, "scripting", "7.0.0", "Invokes a function.", fcall),
    spec("fcall_ro", -3, NOSCRIPT | SKIP_MONITOR | STALE | READONLY | MOVABLEKEYS, NO_KEYS, "scripting", "7.0.0", "Invokes a read-only function.", fcall_ro),
    CommandSpec { subcommands: SCRIPT_SUBCOMMANDS, ..spec("script", -2, 0, NO_KEYS, "scripting", "2.6.0", "A container for Lua scripts management commands.", container_handler) },
    CommandSpec { subcommands: FUNCTION_SUBCOMMANDS, ..spec("function", -2, 0, NO_KEYS, "scripting", "7.0.0", "A container for function commands.", container_handler) },
];

/// Silences the unused-import lint for flags used only in rows.
const _: u32 = FAST | ADMIN;

/// How the script was asked for.
enum Source<'a> {
    Body(&'a Bytes),
    Sha(&'a Bytes),
    Function(&'a Bytes),
}

fn eval(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let body = args.next()?;
    run(ctx, args, Source::Body(body), false)
}

fn evalsha(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let sha = args.next()?;
    run(ctx, args, Source::Sha(sha), false)
}

fn eval_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let body = args.next()?;
    run(ctx, args, Source::Body(body), true)
}

fn evalsha_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let sha = args.next()?;
    run(ctx, args, Source::Sha(sha), true)
}

fn fcall(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let name = args.next()?;
    run(ctx, args, Source::Function(name), false)
}

fn fcall_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let name = args.next()?;
    run(ctx, args, Source::Function(name), true)
}

/// `numkeys` and the keys and arguments after it, with Redis's errors.
fn keys_and_args<'a>(
    args: &mut Args<'a>,
    function: bool,
) -> Result<(&'a [Bytes], &'a [Bytes]), Reply> {
    let numkeys = args.next()?;
    let numkeys = match super::args::int(numkeys) {
        Ok(n) => n,
        Err(e) if function => {
            let _ = e;
            return Err(err("ERR Bad number of keys provided"));
        }
        Err(e) => return Err(e),
    };
    let rest = args.rest();
    if numkeys > rest.len() as i64 {
        return Err(err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(err("ERR Number of keys can't be negative"));
    }
    Ok(rest.split_at(numkeys as usize))
}

fn run(ctx: &mut Context, args: &mut Args, source: Source, ro: bool) -> CmdResult {
    let command = args.argv();
    // MONITOR shows a script before the commands it calls (the row is
    // `skip_monitor`, so the dispatcher does not show it again after).
    let origin = super::connection::MonitorOrigin::Client(&ctx.client.info.addr);
    super::connection::feed_monitors(ctx.server, ctx.client.db, origin, command);
    let (keys, argv) = keys_and_args(args, matches!(source, Source::Function(_)))?;
    let server = ctx.server;
    let mut engine = synced_engine(server, ctx.store);
    let sha;
    let (target, script_flags) = match source {
        Source::Body(body) => {
            let (found, found_flags) = engine
                .load_script(body)
                .map_err(|e| err_owned(format!("ERR {e}")))?;
            sha = found;
            (Target::Script(&sha), found_flags)
        }
        Source::Sha(given) => {
            if given.len() != 40 {
                return Err(err(scripting::NOSCRIPT));
            }
            sha = String::from_utf8_lossy(given).to_ascii_lowercase();
            let Some(found_flags) = engine.script_flags(&sha) else {
                return Err(err(scripting::NOSCRIPT));
            };
            (Target::Script(&sha), found_flags)
        }
        Source::Function(name) => {
            let name = std::str::from_utf8(name).map_err(|_| err("ERR Function not found"))?;
            let Some(found_flags) = engine.function_flags(name) else {
                return Err(err("ERR Function not found"));
            };
            sha = name.to_owned();
            (Target::Function(&sha), found_flags)
        }
    };
    let compat = script_flags & sflags::EVAL_COMPAT != 0;
    let oom_now = ctx.store.has_maxmemory() && ctx.store.over_maxmemory();
    if !compat {
        if script_flags & sflags::NO_WRITES == 0 && ro {
            return Err(err(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
        if oom_now && script_flags & (sflags::ALLOW_OOM | sflags::NO_WRITES) == 0 {
            return Err(err("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'"));
        }
        if script_flags & sflags::NO_WRITES == 0 && super::write_quorum::short_of_peers(server) {
            return Err(err(super::write_quorum::NOREPLICAS));
        }
    }
    let readonly = ro || (!compat && script_flags & sflags::NO_WRITES != 0);
    let allow_oom = !compat && script_flags & sflags::ALLOW_OOM != 0;
    let status = &server.script_status;
    status.wrote.store(false, Ordering::Relaxed);
    // `status.threshold_ms` follows the configuration (set in
    // `ServerState::replace_config`), not read per run.
    let saved_db = ctx.client.db;
    let saved_resp = ctx.client.resp;
    let saved_deny = std::mem::replace(&mut ctx.client.deny_blocking, true);
    let saved_in_script = std::mem::replace(&mut ctx.client.in_script, true);
    let outcome = {
        let mut host = ScriptHost {
            ctx,
            readonly,
            allow_oom,
            oom_at_start: oom_now,
            wrote: false,
            read: false,
        };
        // Commands a script calls track no keys of their own: as in Redis,
        // a script that read anything tracks the keys it declared.
        let tracking = host.ctx.client.tracking.take();
        *status.current.lock() = Some((sha.clone(), command.to_vec()));
        let outcome = engine.run(&mut host, status, target, keys, argv);
        *status.current.lock() = None;
        let read = host.read;
        host.ctx.client.tracking = tracking;
        if read {
            super::tracking::remember_keys(host.ctx, &keys.iter().collect::<Vec<_>>());
        }
        outcome
    };
    drop(engine);
    ctx.client.db = saved_db;
    ctx.client.resp = saved_resp;
    ctx.client.deny_blocking = saved_deny;
    ctx.client.in_script = saved_in_script;
    if matches!(
        ctx.client.action,
        Some(super::ClientAction::Park(_) | super::ClientAction::Block { .. })
    ) {
        ctx.client.action = None;
    }
    status.wrote.store(false, Ordering::Relaxed);
    if outcome.error_counted && matches!(outcome.reply, Reply::Error(_)) {
        ctx.store.introspection.error_already_counted();
    }
    Ok(outcome.reply)
}

/// Set once by the server: moves the other clients off the thread that
/// runs a script past `busy-reply-threshold`, so they are answered
/// (BUSY, SCRIPT KILL) while it goes on; answers whether it could. A node
/// without it (tests that run commands in-process) stops such a script.
pub static HAND_OFF: std::sync::OnceLock<fn() -> bool> = std::sync::OnceLock::new();

fn hand_off() -> bool {
    HAND_OFF.get().is_some_and(|f| f())
}

/// What a script's `redis.call` runs through: Redis's checks for a
/// command called from a script, then the dispatcher's queued path.
struct ScriptHost<'c, 'a> {
    ctx: &'c mut Context<'a>,
    readonly: bool,
    allow_oom: bool,
    /// Memory was over `maxmemory` when the script started.
    oom_at_start: bool,
    wrote: bool,
    /// The script called a read-only command (its declared keys are then
    /// tracked for CLIENT TRACKING).
    read: bool,
}

impl ScriptHost<'_, '_> {
    /// Redis's checks for a command a script calls (`scriptCall`): on a
    /// refusal, the error and the command's row id when it has one.
    fn check(&mut self, argv: &[Bytes]) -> Result<(), (Option<usize>, Reply)> {
        let unknown = || (None, err("ERR Unknown Redis command called from script"));
        let Some((top, top_id)) = super::lookup_with_id(&argv[0]) else {
            return Err(unknown());
        };
        let (command, id) = if !top.subcommands.is_empty() && argv.len() >= 2 {
            match super::lookup_subcommand_with_id(top, top_id, &argv[1]) {
                Some(found) => found,
                None => return Err(unknown()),
            }
        } else {
            (top, top_id)
        };
        let refuse = |text: &'static str| Err((Some(id), err(text)));
        if !command.arity_ok(argv.len()) || !top.arity_ok(argv.len()) {
            return refuse("ERR Wrong number of args calling Redis command from script");
        }
        let flags = command.flags | top.flags;
        if flags & NOSCRIPT != 0 {
            return refuse("ERR This Redis command is not allowed from script");
        }
        let writes = flags & WRITE != 0;
        self.read |= command.flags & READONLY != 0;
        // A may-replicate command (PUBLISH) counts as a write here, so a
        // read-only script can run under CLIENT PAUSE WRITE.
        let sub = (!std::ptr::eq(command, top)).then_some(command);
        if self.readonly && (writes || super::may_replicate(top, sub)) {
            return refuse("ERR Write commands are not allowed from read-only scripts.");
        }
        if !self.allow_oom && !self.wrote && self.oom_at_start && flags & DENYOOM != 0 {
            return refuse(super::maxmemory::OOM_ERROR);
        }
        if writes && super::write_quorum::short_of_peers(self.ctx.server) {
            return refuse(super::write_quorum::NOREPLICAS);
        }
        if writes {
            self.wrote = true;
            self.ctx
                .server
                .script_status
                .wrote
                .store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Host for ScriptHost<'_, '_> {
    fn call(&mut self, argv: Vec<Bytes>, resp3: bool) -> Reply {
        match self.check(&argv) {
            Ok(()) => {}
            Err((id, refused)) => {
                // Redis counts a refusal inside a script as the command's
                // rejected call and as an error reply (the script's own
                // error reply is then not counted again).
                self.ctx.store.introspection.rejected(id, &refused);
                return refused;
            }
        }
        self.ctx.client.resp = if resp3 {
            RespVersion::Resp3
        } else {
            RespVersion::Resp2
        };
        super::run_from_script(self.ctx, &argv)
    }

    fn timed_out(&self) -> fn() -> bool {
        hand_off
    }

    fn log(&mut self, level: i64, message: &str) {
        match level {
            0 => tracing::debug!(target: "lua", "{message}"),
            1 | 2 => tracing::info!(target: "lua", "{message}"),
            _ => tracing::warn!(target: "lua", "{message}"),
        }
    }
}

fn script_load(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let body = args.next()?;
    let mut engine = ctx.server.scripting.lock();
    let (sha, _) = engine
        .load_script(body)
        .map_err(|e| err_owned(format!("ERR {e}")))?;
    engine.refresh_memory(&ctx.server.script_status);
    Ok(Reply::bulk(sha))
}

fn script_exists(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let engine = ctx.server.scripting.lock();
    let found = args
        .rest()
        .iter()
        .map(|sha| {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            Reply::Integer(engine.script_exists(&sha) as i64)
        })
        .collect();
    Ok(Reply::Array(found))
}

fn script_flush(ctx: &mut Context, args: &mut Args) -> CmdResult {
    flush_mode(args, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")?;
    let mut engine = ctx.server.scripting.lock();
    engine.flush_scripts();
    engine.refresh_memory(&ctx.server.script_status);
    Ok(Reply::ok())
}

/// `[ASYNC|SYNC]`: both flush at once here.
fn flush_mode(args: &mut Args, error: &'static str) -> Result<(), Reply> {
    match args.remaining() {
        0 => Ok(()),
        1 => {
            let mode = args.next()?;
            if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") {
                Ok(())
            } else {
                Err(err(error))
            }
        }
        _ => Err(err(error)),
    }
}

/// SCRIPT KILL / FUNCTION KILL when no script is running on this client's
/// connection path (a busy script is answered before the store lock; see
/// [`busy_reply`]).
fn script_kill(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    kill(ctx.server, true)
}

fn function_kill(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    kill(ctx.server, false)
}

/// Redis's `scriptKill`.
pub fn kill(server: &super::ServerState, is_eval: bool) -> CmdResult {
    let status = &server.script_status;
    if !status.running.load(Ordering::Acquire) {
        return Err(err("NOTBUSY No scripts in execution right now."));
    }
    if status.wrote.load(Ordering::Acquire) {
        return Err(err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."));
    }
    let running_eval = status.is_eval.load(Ordering::Relaxed);
    if is_eval && !running_eval {
        return Err(err(scripting::BUSY_FUNCTION));
    }
    if !is_eval && running_eval {
        return Err(err(scripting::BUSY_EVAL));
    }
    status.kill_requested.store(true, Ordering::Release);
    Ok(Reply::ok())
}

fn script_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help(
        "SCRIPT",
        &[
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}

fn function_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(help(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "FUNCTION STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    ))
}

fn help(name: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(Bytes::from(format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    out.extend(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::copy_from_slice(l.as_bytes()))),
    );
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Print this help."));
    Reply::Array(out)
}

fn function_load(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let mut replace = false;
    let mut code = None;
    while let Some(arg) = args.next_if_any() {
        if arg.eq_ignore_ascii_case(b"replace") && !replace && args.remaining() > 0 {
            replace = true;
            continue;
        }
        if args.remaining() > 0 {
            return Err(err_owned(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(arg)
            )));
        }
        code = Some(arg.clone());
    }
    let Some(code) = code else {
        return Err(err("ERR Function code is missing"));
    };
    let mut engine = synced_engine(ctx.server, ctx.store);
    // Compiling here first gives the client Redis's errors; only a
    // library that loads is written to the replicated set.
    let name = engine
        .load_library(code.clone(), replace)
        .map_err(|e| err_owned(format!("ERR {e}")))?;
    ctx.store.write_library(&name, Some(code));
    follow_store(&mut engine, ctx.store, &ctx.server.script_status);
    Ok(Reply::bulk(name))
}

fn function_delete(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let name = String::from_utf8_lossy(args.next()?).into_owned();
    let mut engine = synced_engine(ctx.server, ctx.store);
    // The replicated set decides: a library that did not compile on this
    // node can still be deleted everywhere.
    if ctx.store.function_libraries().get(&name).is_none() {
        return Err(err("ERR Library not found"));
    }
    ctx.store.write_library(&name, None);
    follow_store(&mut engine, ctx.store, &ctx.server.script_status);
    Ok(Reply::ok())
}

/// The engine, its libraries first brought in line with the replicated
/// set in the store (peers' FUNCTION writes arrive there).
fn synced_engine<'s>(
    server: &'s super::ServerState,
    store: &crate::store::Store,
) -> parking_lot::MutexGuard<'s, scripting::Engine> {
    let mut engine = server.scripting.lock();
    follow_store(&mut engine, store, &server.script_status);
    engine
}

/// Recompiles what changed in the replicated libraries since the engine
/// last followed them (nothing, usually).
pub(crate) fn follow_store(
    engine: &mut scripting::Engine,
    store: &crate::store::Store,
    status: &scripting::RunStatus,
) {
    let generation = store.functions_generation();
    if !engine.follows(generation) {
        engine.follow(generation, store.function_libraries().visible());
    }
    engine.refresh_memory(status);
}

fn function_flush(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.argv().len() > 3 {
        return Err(super::introspection::subcommand_syntax_error(
            args, "FUNCTION",
        ));
    }
    flush_mode(args, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")?;
    let mut engine = synced_engine(ctx.server, ctx.store);
    // A fresh VM (as Redis frees its functions VM), then the replicated
    // flush; `follow_store` keeps whatever the flush did not cover.
    engine.flush_libraries();
    ctx.store.flush_libraries();
    follow_store(&mut engine, ctx.store, &ctx.server.script_status);
    Ok(Reply::ok())
}

fn function_list(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    while let Some(arg) = args.next_if_any() {
        if !with_code && arg.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
            continue;
        }
        if pattern.is_none() && arg.eq_ignore_ascii_case(b"libraryname") {
            match args.next_if_any() {
                Some(p) => pattern = Some(p),
                None => return Err(err("ERR library name argument was not given")),
            }
            continue;
        }
        return Err(err_owned(format!(
            "ERR Unknown argument {}",
            String::from_utf8_lossy(arg)
        )));
    }
    let engine = synced_engine(ctx.server, ctx.store);
    let mut out = Vec::new();
    for lib in engine.libraries() {
        if let Some(p) = pattern {
            if !crate::store::pattern::glob_match(p, lib.name.as_bytes(), true) {
                continue;
            }
        }
        let functions = lib
            .functions()
            .map(|f| {
                Reply::Map(vec![
                    (Reply::bulk("name"), Reply::bulk(f.name.to_owned())),
                    (
                        Reply::bulk("description"),
                        f.description
                            .map_or(Reply::Nil, |d| Reply::bulk(d.to_owned())),
                    ),
                    (Reply::bulk("flags"), Reply::Set(flag_names(f.flags))),
                ])
            })
            .collect();
        let mut entry = vec![
            (Reply::bulk("library_name"), Reply::bulk(lib.name.clone())),
            (Reply::bulk("engine"), Reply::bulk("LUA")),
            (Reply::bulk("functions"), Reply::Array(functions)),
        ];
        if with_code {
            entry.push((Reply::bulk("library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(entry));
    }
    Ok(Reply::Array(out))
}

fn flag_names(f: u32) -> Vec<Reply> {
    sflags::NAMES
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, name)| Reply::simple(name))
        .collect()
}

fn function_stats(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    drop(synced_engine(ctx.server, ctx.store));
    stats_reply(ctx.server)
}

/// FUNCTION STATS from what the run status shows (no engine lock, so it
/// also answers while a script runs): the running function, its command
/// and how long it has run; the library and function counts. While an
/// EVAL script runs, Redis answers BUSY instead.
pub fn stats_reply(server: &super::ServerState) -> CmdResult {
    let status = &server.script_status;
    let running = if status.running.load(Ordering::Acquire) {
        if status.is_eval.load(Ordering::Relaxed) {
            return Err(err(scripting::BUSY_EVAL));
        }
        match status.current.lock().clone() {
            Some((name, command)) => {
                let started = status.started_ms.load(Ordering::Relaxed);
                Reply::Map(vec![
                    (Reply::bulk("name"), Reply::bulk(name)),
                    (
                        Reply::bulk("command"),
                        Reply::Array(command.into_iter().map(Reply::Bulk).collect()),
                    ),
                    (
                        Reply::bulk("duration_ms"),
                        Reply::Integer(scripting::unix_ms().saturating_sub(started) as i64),
                    ),
                ])
            }
            None => Reply::Nil,
        }
    } else {
        Reply::Nil
    };
    Ok(Reply::Map(vec![
        (Reply::bulk("running_script"), running),
        (
            Reply::bulk("engines"),
            Reply::Map(vec![(
                Reply::bulk("LUA"),
                Reply::Map(vec![
                    (
                        Reply::bulk("libraries_count"),
                        Reply::Integer(status.function_libraries.load(Ordering::Relaxed) as i64),
                    ),
                    (
                        Reply::bulk("functions_count"),
                        Reply::Integer(status.function_count.load(Ordering::Relaxed) as i64),
                    ),
                ]),
            )]),
        ),
    ]))
}

/// FUNCTION DUMP's payload: per library the opcode 245 and its code as a
/// length-prefixed string, then the RDB version (2 bytes) and a CRC64 of
/// everything before (8 bytes, little-endian), as Redis lays it out.
fn function_dump(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let engine = synced_engine(ctx.server, ctx.store);
    let mut out = Vec::new();
    for lib in engine.libraries() {
        out.push(245u8);
        put_length(&mut out, lib.code.len());
        out.extend_from_slice(&lib.code);
    }
    out.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(Reply::Bulk(out.into()))
}

fn put_length(out: &mut Vec<u8>, len: usize) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16384 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

fn read_length(data: &[u8], at: &mut usize) -> Option<usize> {
    let first = *data.get(*at)?;
    *at += 1;
    match first >> 6 {
        0 => Some((first & 0x3f) as usize),
        1 => {
            let second = *data.get(*at)?;
            *at += 1;
            Some((((first & 0x3f) as usize) << 8) | second as usize)
        }
        _ if first == 0x80 => {
            let bytes = data.get(*at..*at + 4)?;
            *at += 4;
            Some(u32::from_be_bytes(bytes.try_into().ok()?) as usize)
        }
        _ if first == 0x81 => {
            let bytes = data.get(*at..*at + 8)?;
            *at += 8;
            usize::try_from(u64::from_be_bytes(bytes.try_into().ok()?)).ok()
        }
        _ => None,
    }
}

/// Redis's CRC64 (Jones polynomial, reflected).
fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn function_restore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.argv().len() > 4 {
        return Err(super::introspection::subcommand_syntax_error(
            args, "FUNCTION",
        ));
    }
    let payload = args.next()?;
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy =
        match args.next_if_any() {
            None => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
            Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
            Some(_) => return Err(err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    args.finish()?;
    let bad = || err("ERR DUMP payload version or checksum are wrong");
    if payload.len() < 10 {
        return Err(bad());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let crc = u64::from_le_bytes(footer[2..].try_into().map_err(|_| bad())?);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > 10 || crc64(&payload[..payload.len() - 8]) != crc {
        return Err(bad());
    }
    let mut codes = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if body[at] != 245 {
            return Err(err("ERR given type is not a function"));
        }
        at += 1;
        let len = read_length(body, &mut at).ok_or_else(|| err("ERR can not read data type"))?;
        let code = body
            .get(at..at.saturating_add(len))
            .ok_or_else(|| err("ERR can not read data type"))?;
        at += len;
        codes.push(Bytes::copy_from_slice(code));
    }
    let mut engine = synced_engine(ctx.server, ctx.store);
    // Load into a scratch engine first, so a bad payload changes nothing.
    let mut scratch = scripting::Engine::new();
    let mut names = Vec::new();
    for code in &codes {
        names.push(
            scratch
                .load_library(code.clone(), false)
                .map_err(|e| err_owned(format!("ERR {e}")))?,
        );
    }
    if policy == Policy::Append {
        for name in &names {
            if engine.library(name).is_some() {
                return Err(err_owned(format!("ERR Library {name} already exists")));
            }
        }
    }
    if policy == Policy::Flush {
        engine.flush_libraries();
        ctx.store.flush_libraries();
        follow_store(&mut engine, ctx.store, &ctx.server.script_status);
    }
    // Each library is written to the replicated set as it loads, so what
    // replicates is what this node holds even if one fails midway.
    let mut outcome = Ok(Reply::ok());
    for code in codes {
        match engine.load_library(code.clone(), policy != Policy::Append) {
            Ok(name) => ctx.store.write_library(&name, Some(code)),
            Err(e) => {
                outcome = Err(err_owned(format!("ERR {e}")));
                break;
            }
        }
    }
    follow_store(&mut engine, ctx.store, &ctx.server.script_status);
    outcome
}

/// `busy-reply-threshold` (alias `lua-time-limit`) in ms.
pub(crate) fn busy_threshold_ms(config: &crate::config::Config) -> u64 {
    config
        .get("busy-reply-threshold")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000)
}
