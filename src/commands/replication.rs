//! Replication-facing commands: WAIT. The handler only reads the peers'
//! acknowledgements; the waiting itself is a [`ClientAction`] the
//! connection task performs without holding the store.

use std::time::Duration;

use bytes::Bytes;

use super::args::{self, err};
use super::context::ClientAction;
use super::{spec, CommandSpec, Context};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("wait", 3, 0, (0, 0, 0), "generic", "3.0.0", "Blocks until this client's last write has been acknowledged by the given number of peers, or the timeout (ms, 0 = forever) passes. Returns how many peers acknowledged.", wait),
];

fn integer(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn wait(ctx: &mut Context, args: &[Bytes]) -> Reply {
    let Some(numpeers) = integer(&args[1]) else {
        return err(args::NOT_AN_INTEGER);
    };
    let Some(timeout) = integer(&args[2]) else {
        return err(args::NOT_AN_INTEGER);
    };
    if timeout < 0 {
        return err("ERR timeout is negative");
    }
    let seq = ctx.client.last_write_seq;
    let acked = ctx.server.repl.acked_count(seq);
    let numpeers = numpeers.max(0) as usize;
    if acked < numpeers {
        ctx.client.action = Some(ClientAction::WaitPeers {
            numpeers,
            seq,
            timeout: (timeout > 0).then(|| Duration::from_millis(timeout as u64)),
        });
    }
    Reply::Integer(acked as i64)
}
