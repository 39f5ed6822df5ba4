//! The dispatcher's side of `maxmemory`: the check before every command
//! (evict first, then refuse a command that may grow memory with Redis's
//! `OOM` error, as `processCommand` does), and the translation of the
//! eviction parameters in [`Config`] into the store's settings. The
//! eviction itself is `store::evict`.

use bytes::Bytes;

use super::args::err_owned;
use super::flags::DENYOOM;
use super::{lookup, lookup_subcommand, CommandSpec, Context};
use crate::config::Config;
use crate::protocol::Reply;
use crate::replication::ReplStatus;
use crate::store::evict::{EvictionConfig, Outcome, Policy};
use crate::store::Store;

/// Redis's reply to a command refused over the cap.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The store's eviction settings from the parameter table's values.
pub fn eviction_config(config: &Config) -> EvictionConfig {
    let defaults = EvictionConfig::default();
    let number = |name: &str, default: usize| {
        config
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    EvictionConfig {
        maxmemory: number("maxmemory", 0),
        policy: config
            .get("maxmemory-policy")
            .and_then(|p| Policy::parse(&p))
            .unwrap_or(defaults.policy),
        samples: number("maxmemory-samples", defaults.samples),
        tenacity: number("maxmemory-eviction-tenacity", defaults.tenacity as usize) as u32,
        lfu_log_factor: number("lfu-log-factor", defaults.lfu_log_factor as usize) as u32,
        lfu_decay_time: number("lfu-decay-time", defaults.lfu_decay_time as usize) as u32,
    }
}

/// Runs before a command (and before MULTI queues one): with a cap set,
/// evicts what the policy allows, and returns the refusal when memory is
/// still over the cap and the command may grow it. Without a cap this is
/// one load and compare.
#[inline]
pub(crate) fn admit(ctx: &mut Context, command: &CommandSpec, args: &[Bytes]) -> Result<(), Reply> {
    if !ctx.store.has_maxmemory() {
        return Ok(());
    }
    admit_over_cap(ctx, command, &args[0])
}

#[cold]
fn admit_over_cap(ctx: &mut Context, command: &CommandSpec, name: &[u8]) -> Result<(), Reply> {
    if evict(ctx) != Outcome::Fail {
        return Ok(());
    }
    // The request's own word: a subcommand row (SLOWLOG RESET) is no
    // transaction command.
    let named = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    let is_exec = named("exec");
    let grows_memory = command.flags & DENYOOM != 0 || (is_exec && queue_has_flag(ctx, DENYOOM));
    // Inside MULTI every command but the ones that end it is refused:
    // queueing itself takes memory (Redis does the same).
    let queueing =
        ctx.client.multi.is_some() && !["exec", "discard", "quit", "reset"].into_iter().any(named);
    if !(grows_memory || queueing) {
        return Ok(());
    }
    if is_exec {
        // EXEC refused: the transaction is discarded, as Redis's
        // execCommandAbort does.
        ctx.client.multi = None;
        ctx.client.release_watches(ctx.store);
        return Err(err_owned(format!(
            "EXECABORT Transaction discarded because of: {OOM_ERROR}"
        )));
    }
    Err(err_owned(OOM_ERROR.to_string()))
}

/// Installs the eviction settings of a changed configuration (CONFIG SET)
/// and starts evicting at once if the new cap is already exceeded, with a
/// warning in the log as Redis gives.
pub(crate) fn apply_config(ctx: &mut Context, next: &Config) {
    let settings = eviction_config(next);
    let changed = settings.maxmemory != ctx.store.eviction_config().maxmemory;
    ctx.store.set_eviction_config(settings);
    if changed && ctx.store.over_maxmemory() {
        tracing::warn!(
            "maxmemory set to {} bytes, below the {} bytes in use: keys will be evicted or writes refused, as maxmemory-policy says",
            settings.maxmemory,
            crate::store::memory::used_memory()
        );
    }
    evict(ctx);
}

/// One eviction round; its deletes go to replication like any write.
pub(crate) fn evict(ctx: &mut Context) -> Outcome {
    evict_round(ctx.store, &ctx.server.repl)
}

/// One eviction round on `store` (the dispatcher's, and the background
/// cycle's). Over the cap, the delta log first drops what every peer has
/// acknowledged (everything, with no peers): memory nobody needs goes
/// before data does, rather than waiting for the once-a-second trim.
pub fn evict_round(store: &mut Store, repl: &ReplStatus) -> Outcome {
    if store.over_maxmemory() {
        let through = repl.trim_point(store.last_seq());
        store.delta_log_mut().trim_through(through);
    }
    let evicted = store.perform_evictions();
    if let Some(batch) = evicted.batch {
        repl.note_local_write(batch.last_seq);
    }
    evicted.outcome
}

/// Whether a queued transaction holds a command with `flag` (DENYOOM: may
/// grow memory; WRITE).
pub(crate) fn queue_has_flag(ctx: &Context, flag: u32) -> bool {
    let Some(tx) = ctx.client.multi.as_ref() else {
        return false;
    };
    tx.commands.iter().any(|queued| {
        let Some(command) = lookup(&queued[0]) else {
            return false;
        };
        let row = match queued.get(1) {
            Some(sub) if !command.subcommands.is_empty() => {
                lookup_subcommand(command, sub).unwrap_or(command)
            }
            _ => command,
        };
        row.flags & flag != 0
    })
}
