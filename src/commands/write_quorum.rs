//! `min-replicas-to-write` / `min-replicas-max-lag`: while fewer than the
//! wanted number of configured peers are *good*, writes are refused with
//! Redis's NOREPLICAS error, so an operator can stop a region from taking
//! writes its peers have not been hearing about. A good peer is one whose
//! outbound link is connected and whose replication lag is at most
//! `min-replicas-max-lag` seconds (Redis counts replicas that acked within
//! that time). Reads always run; with the default 0 this is one atomic load.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::err;
use super::flags::WRITE;
use super::maxmemory::queue_has_flag;
use super::{CommandSpec, Context};
use crate::config::Config;
use crate::protocol::Reply;

/// Redis's reply to a write refused for want of good replicas.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// The two settings packed into one word for the dispatcher's hot path:
/// the wanted count in the low half, the lag bound (seconds) in the high.
pub(crate) fn packed_settings(config: &Config) -> u64 {
    let read = |name: &str| {
        config
            .get(name)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    u64::from(read("min-replicas-max-lag")) << 32 | u64::from(read("min-replicas-to-write"))
}

/// Runs before a command (and before MULTI queues one): refuses a write,
/// or an EXEC whose queue holds one, while too few peers are good.
#[inline]
pub(crate) fn admit(ctx: &mut Context, command: &CommandSpec, args: &[Bytes]) -> Result<(), Reply> {
    let settings = ctx.server.write_quorum.load(Ordering::Relaxed);
    if settings as u32 == 0 {
        return Ok(());
    }
    admit_with_quorum(ctx, command, &args[0])
}

/// Whether writes are refused now: `min-replicas-to-write` wants more good
/// peers than there are (scripts check this before each write they call).
pub(crate) fn short_of_peers(server: &super::ServerState) -> bool {
    let settings = server.write_quorum.load(Ordering::Relaxed);
    let (wanted, max_lag_s) = (settings as u32 as usize, settings >> 32);
    wanted > 0 && server.repl.good_peers(max_lag_s * 1000) < wanted
}

#[cold]
fn admit_with_quorum(ctx: &mut Context, command: &CommandSpec, name: &[u8]) -> Result<(), Reply> {
    let is_exec = name.eq_ignore_ascii_case(b"exec");
    let writes = command.flags & WRITE != 0 || (is_exec && queue_has_flag(ctx, WRITE));
    if !writes || !short_of_peers(ctx.server) {
        return Ok(());
    }
    if is_exec {
        // As Redis's execCommandAbort: the transaction is gone.
        ctx.client.multi = None;
        ctx.client.release_watches(ctx.store);
        return Err(super::args::err_owned(format!(
            "EXECABORT Transaction discarded because of: {NOREPLICAS}"
        )));
    }
    Err(err(NOREPLICAS))
}
