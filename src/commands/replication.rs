//! Replication-facing commands: WAIT. The handler only reads the peers'
//! acknowledgements; the waiting itself is a [`Park::Peers`] the
//! connection performs without holding the store.

use std::time::Duration;

use super::args::{err, int, Args, CmdResult, TIMEOUT_NEGATIVE, TIMEOUT_NOT_INTEGER};
use super::{spec, CommandSpec, Context, Park};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("wait", 3, 0, (0, 0, 0), "generic", "3.0.0", "Blocks until this client's last write has been acknowledged by the given number of peers, or the timeout (ms, 0 = forever) passes. Returns how many peers acknowledged.", wait),
];

/// `WAIT numpeers timeout`: the number of peers that acknowledged this
/// client's last write. Inside EXEC (blocking denied) it answers the
/// current count at once, as Redis does.
fn wait(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let numpeers = args.int()?;
    let timeout = int(args.next()?).map_err(|_| err(TIMEOUT_NOT_INTEGER))?;
    if timeout < 0 {
        return Err(err(TIMEOUT_NEGATIVE));
    }
    let seq = ctx.client.last_write_seq;
    let acked = ctx.server.repl.acked_count(seq);
    let numpeers = numpeers.max(0) as usize;
    let now = Reply::Integer(acked as i64);
    if acked >= numpeers {
        return Ok(now);
    }
    let timeout = (timeout > 0).then(|| Duration::from_millis(timeout as u64));
    ctx.park(
        Park::Peers {
            numpeers,
            seq,
            timeout,
        },
        now,
    )
}
