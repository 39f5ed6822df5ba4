//! The command layer: one declarative [`CommandSpec`] row per command, kept
//! in per-family tables (data: `strings`, `bitops` (SETBIT, BITFIELD),
//! `hyperloglog` (PF*), `lcs`, `keys`, `copy` (COPY, MOVE, SWAPDB), `dump`
//! (DUMP, RESTORE), `sort`,
//! `sets`, `hashes`, `zsets`, `geo` (on sorted sets, with `geohash`'s
//! arithmetic), `lists`; clients and the node: `connection` (incl. CLIENT,
//! MONITOR, RESET), `transactions`, `replication` (WAIT), `server` (INFO,
//! TIME, DEBUG), `config`, `command_docs` (COMMAND), `introspection`
//! (SLOWLOG, LATENCY), `memory`, `lifecycle` (SHUTDOWN, LOLWUT), `pubsub`
//! (SUBSCRIBE, PUBLISH, PUBSUB), `tracking` (CLIENT TRACKING);
//! `maxmemory` admits or refuses a command under the memory cap and
//! `write_quorum` under `min-replicas-to-write`; `typed`
//! holds what the collection families share, `blocking` the blocked-client
//! registry, `stats` the per-command records INFO and SLOWLOG read), and
//! the [`dispatch`] function that resolves a request to its row, checks
//! arity and authentication with Redis's exact error texts, queues it
//! inside MULTI, runs the handler, records its statistics, and hands the
//! write's delta batch to the replication log.
//!
//! Handlers are plain synchronous functions `fn(&mut Context, &mut Args) ->
//! CmdResult` ([`args`]): they read their request through the cursor,
//! return errors with `?`, and touch no sockets or tasks. A handler that
//! must wait (a blocking pop, WAIT) asks for it through
//! [`Context::park`]; the connection does the waiting.

pub mod args;
pub mod bitops;
pub mod blocking;
pub mod command_docs;
pub mod config;
pub mod connection;
pub mod context;
pub mod copy;
pub mod dump;
pub mod geo;
pub mod geohash;
pub mod hashes;
pub mod hyperloglog;
pub mod introspection;
pub mod keys;
pub mod lcs;
pub mod lifecycle;
pub mod lists;
pub mod maxmemory;
pub mod memory;
pub mod persistence;
pub mod propagate;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod stats;
pub mod streams;
pub mod strings;
pub mod tracking;
pub mod transactions;
pub mod typed;
pub mod write_quorum;
pub mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::protocol::Reply;
use args::{err, err_owned, wrong_arity};
pub use args::{Args, CmdResult};
pub use context::{ClientAction, ClientInfo, ClientState, Context, Park, ServerState, WaitOn};
use stats::clock;

/// A command handler: reads its arguments through the cursor (positioned
/// after the command name, or after the subcommand) and returns the reply,
/// or with `Err` the error reply.
pub type Handler = fn(&mut Context, &mut Args) -> CmdResult;

/// Command flags, as COMMAND reports them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const RANDOM: u32 = 1 << 5;
    pub const LOADING: u32 = 1 << 6;
    pub const STALE: u32 = 1 << 7;
    pub const FAST: u32 = 1 << 8;
    pub const NO_AUTH: u32 = 1 << 9;
    pub const MOVABLEKEYS: u32 = 1 << 10;
    /// MONITOR does not show the command after it runs: scripts show
    /// themselves before their commands instead (Redis's `skip_monitor`).
    pub const SKIP_MONITOR: u32 = 1 << 11;
    /// Refused inside MULTI (SAVE, SHUTDOWN, SYNC, PSYNC).
    pub const NO_MULTI: u32 = 1 << 12;
    /// Runs at once inside MULTI instead of being queued (MULTI, EXEC,
    /// DISCARD, WATCH, QUIT); internal, not shown by COMMAND.
    pub const ALLOW_IN_MULTI: u32 = 1 << 16;

    /// Flag bits with the names COMMAND prints.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (RANDOM, "random"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// One command, declared once: `COMMAND`, arity checks, MULTI's queueing
/// decision and the keys a blocked client waits on all read this row.
/// (Replication does not: a command replicates exactly when its run added
/// operations to the write batch, so a write that changed nothing ships
/// nothing, whatever its flags say.)
pub struct CommandSpec {
    /// Lower-case name (for a subcommand, just the subcommand word).
    pub name: &'static str,
    /// Redis's rule: positive = exact argument count (name included),
    /// negative = at least that many.
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Documentation group (COMMAND DOCS), e.g. "string".
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// The key arguments of `argv` by this row's key positions
    /// (`first_key`, `last_key` with Redis's negative-from-the-end rule,
    /// `step`); empty for commands without fixed key positions.
    pub fn key_args<'a>(&self, argv: &'a [Bytes]) -> Vec<&'a Bytes> {
        if self.first_key <= 0 || self.step <= 0 {
            return Vec::new();
        }
        let first = self.first_key as usize;
        let last = if self.last_key < 0 {
            argv.len() as i64 + self.last_key as i64
        } else {
            self.last_key as i64
        };
        if last < first as i64 {
            return Vec::new();
        }
        let last = (last as usize).min(argv.len().saturating_sub(1));
        argv.get(first..=last)
            .map(|keys| keys.iter().step_by(self.step as usize).collect())
            .unwrap_or_default()
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        flags::NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|&(_, name)| name)
            .collect()
    }
}

/// Shorthand for table rows without subcommands.
#[allow(clippy::too_many_arguments)]
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        summary,
        since,
        handler,
        subcommands: &[],
    }
}

/// Handler of a container command called with no subcommand; never runs
/// because arity is checked first, but every row needs one.
pub fn container_handler(_: &mut Context, args: &mut Args) -> CmdResult {
    Err(args.wrong_arity())
}

/// Every family's table, in the order COMMAND lists them.
pub fn all_commands() -> impl Iterator<Item = &'static CommandSpec> {
    strings::COMMANDS
        .iter()
        .chain(keys::COMMANDS)
        .chain(connection::COMMANDS)
        .chain(server::COMMANDS)
        .chain(config::COMMANDS)
        .chain(sets::COMMANDS)
        .chain(hashes::COMMANDS)
        .chain(transactions::COMMANDS)
        .chain(zsets::COMMANDS)
        .chain(lists::COMMANDS)
        .chain(replication::COMMANDS)
        .chain(command_docs::COMMANDS)
        .chain(memory::COMMANDS)
        .chain(lifecycle::COMMANDS)
        .chain(persistence::COMMANDS)
        .chain(introspection::COMMANDS)
        .chain(pubsub::COMMANDS)
        .chain(geo::COMMANDS)
        .chain(lcs::COMMANDS)
        .chain(sort::COMMANDS)
        .chain(copy::COMMANDS)
        .chain(hyperloglog::COMMANDS)
        .chain(bitops::COMMANDS)
        .chain(dump::COMMANDS)
        .chain(streams::COMMANDS)
        .chain(scripting::COMMANDS)
}

/// Name → row and its id in [`stats::command_table`] (a subcommand's id
/// is its container's plus one plus its position). Looked up once per
/// command, so it uses a fast hasher.
type CommandIndex =
    HashMap<&'static str, (&'static CommandSpec, usize), foldhash::fast::FixedState>;

fn command_index() -> &'static CommandIndex {
    static INDEX: OnceLock<CommandIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        stats::command_table()
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.parent.is_none())
            .map(|(id, e)| (e.spec.name, (e.spec, id)))
            .collect()
    })
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup_with_id(name).map(|(c, _)| c)
}

/// [`lookup`], with the row's id for the statistics.
fn lookup_with_id(name: &[u8]) -> Option<(&'static CommandSpec, usize)> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let key = std::str::from_utf8(lower).ok()?;
    command_index().get(key).copied()
}

/// A subcommand of `parent` (whose id is `parent_id`) and its id.
fn lookup_subcommand_with_id(
    parent: &'static CommandSpec,
    parent_id: usize,
    name: &[u8],
) -> Option<(&'static CommandSpec, usize)> {
    parent
        .subcommands
        .iter()
        .position(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
        .map(|at| (&parent.subcommands[at], parent_id + 1 + at))
}

/// Finds a subcommand of `parent` by name, case-insensitively.
pub fn lookup_subcommand(
    parent: &'static CommandSpec,
    name: &[u8],
) -> Option<&'static CommandSpec> {
    parent
        .subcommands
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The reply Redis gives for an unknown command.
fn unknown_command(args: &[Bytes]) -> Reply {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncate_for_error(&args[0])
    );
    for arg in &args[1..] {
        text.push('\'');
        text.push_str(&truncate_for_error(arg));
        text.push_str("' ");
    }
    err_owned(text)
}

/// Redis shows at most 128 characters of a name or argument in an error.
fn truncate_for_error(arg: &[u8]) -> String {
    let shown = &arg[..arg.len().min(128)];
    String::from_utf8_lossy(shown).into_owned()
}

/// Whether a command may run before AUTH.
fn allowed_without_auth(spec: &CommandSpec) -> bool {
    spec.flags & flags::NO_AUTH != 0
}

/// A request resolved to the row that runs it.
struct Resolved {
    command: &'static CommandSpec,
    /// The row's id in [`stats::command_table`].
    id: usize,
    /// Where the handler's arguments start: after the name, or after the
    /// subcommand.
    first_arg: usize,
}

impl Resolved {
    /// What the connection does for a handler that parked: the keys to
    /// wait on come from the row's key positions, not from the handler.
    fn parked(&self, park: Park, argv: &[Bytes]) -> ClientAction {
        match park {
            Park::Keys { wait_on, deadline } => {
                let mut keys = self.command.key_args(argv);
                if keys.is_empty() && self.command.flags & flags::MOVABLEKEYS != 0 {
                    // BLMPOP, BZMPOP: the keys `numkeys` names.
                    let at = command_docs::movable_keys(self.command.name, argv);
                    keys = at
                        .into_iter()
                        .flatten()
                        .filter_map(|i| argv.get(i))
                        .collect();
                }
                let take = match wait_on {
                    WaitOn::DeclaredKeys => keys.len(),
                    WaitOn::FirstKey => 1,
                };
                ClientAction::Block {
                    deadline,
                    keys: keys.into_iter().take(take).cloned().collect(),
                }
            }
            Park::Peers {
                numpeers,
                seq,
                timeout,
            } => ClientAction::WaitPeers {
                numpeers,
                seq,
                timeout,
            },
        }
    }

    fn run(&self, ctx: &mut Context, argv: &[Bytes]) -> Reply {
        let mut args = Args::new(argv, self.first_arg);
        (self.command.handler)(ctx, &mut args).unwrap_or_else(|refused| refused)
    }
}

/// A request refused before it ran: the error, and the row it named when
/// there was one (its `rejected_calls` count; an unknown command or
/// subcommand has none, as in Redis).
struct Refused {
    /// The row's id in [`stats::command_table`].
    command: Option<usize>,
    reply: Reply,
}

impl From<Reply> for Refused {
    fn from(reply: Reply) -> Self {
        Refused {
            command: None,
            reply,
        }
    }
}

/// Resolves a request to its command row, checking existence, the
/// subcommand, arity and authentication with Redis's exact errors.
fn resolve(ctx: &Context, args: &[Bytes]) -> Result<Resolved, Refused> {
    let Some((mut command, mut id)) = lookup_with_id(&args[0]) else {
        return Err(unknown_command(args).into());
    };
    let mut full_name: Option<String> = None;
    if !command.subcommands.is_empty() {
        if args.len() < 2 {
            // A container may run bare when its arity allows (COMMAND).
            if !command.arity_ok(1) {
                return Err(Refused {
                    command: Some(id),
                    reply: wrong_arity(command.name),
                });
            }
        } else {
            match lookup_subcommand_with_id(command, id, &args[1]) {
                Some((sub, sub_id)) => {
                    full_name = Some(format!("{}|{}", command.name, sub.name));
                    command = sub;
                    id = sub_id;
                }
                None => {
                    return Err(err_owned(format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        truncate_for_error(&args[1]),
                        command.name.to_ascii_uppercase()
                    ))
                    .into())
                }
            }
        }
    }
    if !command.arity_ok(args.len()) {
        return Err(Refused {
            command: Some(id),
            reply: wrong_arity(full_name.as_deref().unwrap_or(command.name)),
        });
    }
    if !ctx.client.authenticated && !allowed_without_auth(command) {
        return Err(Refused {
            command: Some(id),
            reply: err(args::NOAUTH),
        });
    }
    if ctx.client.multi.is_some() && command.flags & flags::NO_MULTI != 0 {
        return Err(Refused {
            command: Some(id),
            reply: err("ERR Command not allowed inside a transaction"),
        });
    }
    if ctx.client.resp == crate::protocol::RespVersion::Resp2
        && pubsub::subscribed(ctx)
        && !pubsub::ALLOWED_WHILE_SUBSCRIBED.contains(&command.name)
    {
        return Err(Refused {
            command: Some(id),
            reply: pubsub::not_allowed_while_subscribed(
                full_name.as_deref().unwrap_or(command.name),
            ),
        });
    }
    Ok(Resolved {
        command,
        id,
        first_arg: if full_name.is_some() { 2 } else { 1 },
    })
}

/// What a request gets while a script that passed `busy-reply-threshold`
/// holds the store, answered without it: the errors Redis checks first
/// (unknown command or subcommand, arity, authentication), SCRIPT KILL,
/// FUNCTION KILL and FUNCTION STATS, the commands Redis lets through that
/// need only the connection's state (MULTI; DISCARD and UNWATCH with no
/// WATCH, UNWATCH outside MULTI; QUIT), and BUSY for everything else. Inside MULTI a refusal
/// makes EXEC abort, and EXEC itself aborts the transaction with the BUSY
/// error, as Redis does. `None`: a command Redis also lets through that
/// needs the store here (AUTH, HELLO, WATCH, RESET, SHUTDOWN, UNWATCH
/// inside MULTI, and DISCARD, UNWATCH or EXEC while keys are watched); it waits for the script to
/// end. Refusals made here are not in the command statistics (those live
/// behind the store lock).
pub fn busy_reply(server: &ServerState, client: &mut ClientState, args: &[Bytes]) -> Option<Reply> {
    let reply = busy_answer(server, client, args)?;
    if let (Reply::Error(_), Some(multi)) = (&reply, client.multi.as_mut()) {
        multi.failed = true;
    }
    Some(reply)
}

fn busy_answer(server: &ServerState, client: &mut ClientState, args: &[Bytes]) -> Option<Reply> {
    let Some(top) = lookup(&args[0]) else {
        return Some(unknown_command(args));
    };
    let command = if !top.subcommands.is_empty() && args.len() >= 2 {
        match lookup_subcommand(top, &args[1]) {
            Some(sub) => sub,
            None => {
                return Some(err_owned(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    truncate_for_error(&args[1]),
                    top.name.to_ascii_uppercase()
                )))
            }
        }
    } else {
        top
    };
    if !command.arity_ok(args.len()) {
        let name = if std::ptr::eq(command, top) {
            top.name.to_owned()
        } else {
            format!("{}|{}", top.name, command.name)
        };
        return Some(wrong_arity(&name));
    }
    if !client.authenticated && !allowed_without_auth(command) {
        return Some(err(args::NOAUTH));
    }
    let is_eval = server
        .script_status
        .is_eval
        .load(std::sync::atomic::Ordering::Relaxed);
    let busy = if is_eval {
        crate::scripting::BUSY_EVAL
    } else {
        crate::scripting::BUSY_FUNCTION
    };
    let watching = !client.watching.is_empty();
    match (top.name, command.name) {
        ("script", "kill") => Some(scripting::kill(server, true).unwrap_or_else(|e| e)),
        ("function", "kill") => Some(scripting::kill(server, false).unwrap_or_else(|e| e)),
        ("function", "stats") => Some(scripting::stats_reply(server).unwrap_or_else(|e| e)),
        ("multi", _) if client.multi.is_some() => Some(err("ERR MULTI calls can not be nested")),
        ("multi", _) => {
            client.multi = Some(Default::default());
            Some(Reply::ok())
        }
        ("discard", _) if client.multi.is_none() => Some(err("ERR DISCARD without MULTI")),
        ("discard", _) if !watching => {
            client.multi = None;
            Some(Reply::ok())
        }
        ("unwatch", _) if !watching && client.multi.is_none() => Some(Reply::ok()),
        ("exec", _) if client.multi.is_some() && !watching => {
            client.multi = None;
            Some(err_owned(format!(
                "EXECABORT Transaction discarded because of: {busy}"
            )))
        }
        ("quit", _) => {
            client.action = Some(ClientAction::Close);
            Some(Reply::ok())
        }
        ("auth" | "hello" | "watch" | "unwatch" | "discard" | "exec" | "reset" | "shutdown", _) => {
            None
        }
        _ => Some(err(busy)),
    }
}

/// Whether a script past `busy-reply-threshold` is running (requests are
/// then answered by [`busy_reply`] instead of waiting for the store).
pub fn script_busy(server: &ServerState) -> bool {
    let status = &server.script_status;
    status.running.load(std::sync::atomic::Ordering::Acquire)
        && status.timed_out.load(std::sync::atomic::Ordering::Acquire)
}

/// Runs one request (`args` non-empty) and returns its reply. Inside MULTI
/// the request is queued instead (a refused one makes EXEC abort). A
/// write's deltas are closed into one batch and handed to the delta log
/// here, not in the handler, so an EXEC block leaves as one batch. Every
/// command run or refused here is recorded for INFO, SLOWLOG and LATENCY
/// ([`stats`]; queued ones are recorded when EXEC runs them). (The
/// connection's own command and error counters are kept once per
/// pipelined batch.)
pub fn dispatch(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let started = clock::ticks();
    let resolved = match resolve(ctx, args) {
        Ok(resolved) => resolved,
        Err(refused) => {
            transactions::refuse(ctx);
            ctx.store
                .introspection
                .rejected(refused.command, &refused.reply);
            return refused.reply;
        }
    };
    // Invalidations of keys evicted to make room reach even the client
    // about to run before its reply (as Redis evicts before the command
    // starts), so they are not held as that client's own.
    let tracking = &ctx.server.tracking;
    let running = tracking.is_active().then(|| tracking.current());
    if running.is_some() {
        tracking.set_current(0);
    }
    let admitted = maxmemory::admit(ctx, resolved.command, args)
        .and_then(|()| write_quorum::admit(ctx, resolved.command, args));
    if let Some(id) = running {
        ctx.server.tracking.set_current(id);
    }
    if let Err(oom) = admitted {
        transactions::refuse(ctx);
        ctx.store.introspection.rejected(Some(resolved.id), &oom);
        return oom;
    }
    if ctx.client.multi.is_some() {
        // Inside MULTI, the top-level row decides (subcommands never run
        // early).
        let top = lookup(&args[0]).unwrap_or(resolved.command);
        if let Some(queued) = transactions::queue(ctx, top, args) {
            ctx.store.introspection.count_error(&queued);
            return queued;
        }
    }
    ctx.store.begin_command();
    let ops_before = ctx.store.open_ops_len();
    let reply = resolved.run(ctx, args);
    tag_events(ctx, &resolved, args, ops_before);
    if !ctx.server.replica_feeds.is_empty() {
        propagate::collect(ctx, args, ops_before, &reply);
    }
    tracking::after_command(ctx, resolved.command, args);
    if let Some(ClientAction::Park(park)) = ctx.client.action {
        ctx.client.action = Some(resolved.parked(park, args));
    }
    if let Some(batch) = ctx.store.finish_batch() {
        ctx.client.last_write_seq = batch.last_seq;
        ctx.server.repl.note_local_write(batch.last_seq);
    }
    if ctx.store.record_removals || !ctx.client.effects.is_empty() {
        propagate::flush(ctx);
    }
    ctx.server.signal_ready_keys(ctx.store);
    record_run(ctx, &resolved, args, started, &reply);
    reply
}

/// Commands that may replicate without the WRITE flag (Redis's
/// `may-replicate`): PUBLISH, PFCOUNT and scripts; of SCRIPT, only FLUSH.
/// CLIENT PAUSE WRITE holds them and read-only scripts may not call them.
pub fn may_replicate(top: &CommandSpec, sub: Option<&CommandSpec>) -> bool {
    const NAMES: &[&str] = &["publish", "spublish", "pfcount", "eval", "evalsha", "fcall"];
    NAMES.contains(&top.name) || (top.name == "script" && sub.is_some_and(|s| s.name == "flush"))
}

/// Runs one command queued by MULTI, inside EXEC: no batch is closed, so
/// the whole block ships as one.
pub(crate) fn run_queued(ctx: &mut Context, args: &[Bytes]) -> Reply {
    run_nested(ctx, args, false)
}

/// Runs one command a script calls, like [`run_queued`]; MONITOR shows it
/// as coming from `lua`.
pub(crate) fn run_from_script(ctx: &mut Context, args: &[Bytes]) -> Reply {
    run_nested(ctx, args, true)
}

fn run_nested(ctx: &mut Context, args: &[Bytes], from_script: bool) -> Reply {
    let started = clock::ticks();
    match resolve(ctx, args) {
        Ok(resolved) => {
            let ops_before = ctx.store.open_ops_len();
            let reply = resolved.run(ctx, args);
            tag_events(ctx, &resolved, args, ops_before);
            if !ctx.server.replica_feeds.is_empty() {
                propagate::collect(ctx, args, ops_before, &reply);
            }
            tracking::after_command(ctx, resolved.command, args);
            record_run(ctx, &resolved, args, started, &reply);
            // As in Redis, MONITOR shows a command once it has run.
            if resolved.command.flags & (flags::ADMIN | flags::SKIP_MONITOR) == 0 {
                let origin = if from_script {
                    connection::MonitorOrigin::Script
                } else {
                    connection::MonitorOrigin::Client(&ctx.client.info.addr)
                };
                connection::feed_monitors(ctx.server, ctx.client.db, origin, args);
            }
            reply
        }
        Err(refused) => {
            ctx.store
                .introspection
                .rejected(refused.command, &refused.reply);
            refused.reply
        }
    }
}

/// Gives the key deltas a command added (from op `from` on) the keyspace
/// events it raises, so this node and every peer that applies the batch
/// raise the same ones. Done for every write, whatever this node's
/// `notify-keyspace-events`: a peer may want them.
fn tag_events(ctx: &mut Context, resolved: &Resolved, args: &[Bytes], from: usize) {
    if ctx.store.open_ops_len() == from {
        return;
    }
    // Events are named by the top-level command: XGROUP CREATE is
    // `xgroup` (its subcommand is read from the arguments).
    let name = if resolved.first_arg > 1 {
        lookup(&args[0]).map_or(resolved.command.name, |top| top.name)
    } else {
        resolved.command.name
    };
    // These tag their own deltas: whether they created a consumer
    // (`xgroup-createconsumer`) is not in their arguments.
    if matches!(name, "xreadgroup" | "xclaim" | "xautoclaim") {
        return;
    }
    let first_key = args.get(1).map_or(&b""[..], |k| &k[..]);
    ctx.store.tag_ops(from, |_, key, presence| {
        let position = usize::from(key != first_key);
        crate::pubsub::notify::command_events(name, args, position, presence)
    });
}

/// Records a command that ran. One that parked is recorded once, when it
/// completes, with the time since it first ran (Redis counts a blocked
/// command's wait in its time too); DEBUG SLEEP's pause counts as its
/// time, since the client waits for it.
#[inline]
fn record_run(ctx: &mut Context, resolved: &Resolved, args: &[Bytes], started: u64, reply: &Reply) {
    let now = clock::ticks();
    let mut ran = clock::nanos_between(started, now);
    match &ctx.client.action {
        None => {}
        Some(ClientAction::Block { .. }) => {
            ctx.client.parked_since.get_or_insert(started);
            return;
        }
        Some(ClientAction::Sleep(pause)) if resolved.command.name == "sleep" => {
            ran += pause.as_nanos() as u64
        }
        Some(_) => {}
    }
    let total = match ctx.client.parked_since.take() {
        None => ran,
        Some(since) => clock::nanos_between(since, now),
    };
    let stats = &mut ctx.store.introspection;
    stats.refresh(ctx.server);
    let command = (resolved.id, resolved.command);
    stats.ran(
        command,
        total,
        ran,
        reply,
        args,
        &ctx.client.info,
        ctx.server,
        now,
    );
}

impl ServerState {
    /// Runs one request outside any connection (tests, benchmarks, fuzz
    /// targets): locks the store for just this request and dispatches it.
    /// Connections batch pipelined requests under one lock instead.
    pub fn execute(&self, client: &mut ClientState, args: &[Bytes]) -> Reply {
        let mut store = self.store.lock();
        let mut ctx = Context {
            store: &mut store,
            client,
            server: self,
        };
        dispatch(&mut ctx, args)
    }
}

/// Name used for CLIENT LIST's `cmd=` field.
pub fn display_name(args: &[Bytes]) -> &'static str {
    lookup(&args[0]).map_or("unknown", |c| c.name)
}

#[cfg(test)]
mod tests;
