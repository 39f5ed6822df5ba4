//! Replication-facing commands: WAIT, and CLUSTER. WAIT's handler only
//! reads the peers' acknowledgements; the waiting itself is a
//! [`Park::Peers`] the connection performs without holding the store.
//! cordis is not a Redis Cluster node (`cluster_enabled:0`; its regions
//! each hold every key), so every CLUSTER subcommand answers what Redis
//! answers with cluster support disabled.

use std::time::Duration;

use super::args::{err, int, Args, CmdResult, TIMEOUT_NEGATIVE, TIMEOUT_NOT_INTEGER};
use super::flags::{ADMIN, LOADING, NOSCRIPT, STALE};
use super::{container_handler, spec, CommandSpec, Context, Park};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("wait", 3, 0, (0, 0, 0), "generic", "3.0.0", "Blocks until this client's last write has been acknowledged by the given number of peers, or the timeout (ms, 0 = forever) passes. Returns how many peers acknowledged.", wait),
    CommandSpec { subcommands: CLUSTER_SUBCOMMANDS, ..spec("cluster", -2, 0, NO_KEYS, "cluster", "3.0.0", "A container for Redis Cluster commands.", container_handler) },
];

const NO_KEYS: (i32, i32, i32) = (0, 0, 0);

#[rustfmt::skip]
static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    spec("addslots", -3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Assigns new hash slots to a node.", cluster_disabled),
    spec("addslotsrange", -4, ADMIN | STALE, NO_KEYS, "cluster", "7.0.0", "Assigns new hash slot ranges to a node.", cluster_disabled),
    spec("bumpepoch", 2, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Advances the cluster config epoch.", cluster_disabled),
    spec("count-failure-reports", 3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Returns the number of active failure reports active for a node.", cluster_disabled),
    spec("countkeysinslot", 3, STALE, NO_KEYS, "cluster", "3.0.0", "Returns the number of keys in a hash slot.", cluster_disabled),
    spec("delslots", -3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Sets hash slots as unbound for a node.", cluster_disabled),
    spec("delslotsrange", -4, ADMIN | STALE, NO_KEYS, "cluster", "7.0.0", "Sets hash slot ranges as unbound for a node.", cluster_disabled),
    spec("failover", -2, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Forces a replica to perform a manual failover of its master.", cluster_disabled),
    spec("flushslots", 2, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Deletes all slots information from a node.", cluster_disabled),
    spec("forget", 3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Removes a node from the nodes table.", cluster_disabled),
    spec("getkeysinslot", 4, STALE, NO_KEYS, "cluster", "3.0.0", "Returns the key names in a hash slot.", cluster_disabled),
    spec("help", 2, LOADING | STALE, NO_KEYS, "cluster", "5.0.0", "Returns helpful text about the different subcommands.", cluster_disabled),
    spec("info", 2, STALE, NO_KEYS, "cluster", "3.0.0", "Returns information about the state of a node.", cluster_disabled),
    spec("keyslot", 3, STALE, NO_KEYS, "cluster", "3.0.0", "Returns the hash slot for a key.", cluster_disabled),
    spec("links", 2, STALE, NO_KEYS, "cluster", "7.0.0", "Returns a list of all TCP links to and from peer nodes.", cluster_disabled),
    spec("meet", -4, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Forces a node to handshake with another node.", cluster_disabled),
    spec("myid", 2, STALE, NO_KEYS, "cluster", "3.0.0", "Returns the ID of a node.", cluster_disabled),
    spec("nodes", 2, STALE, NO_KEYS, "cluster", "3.0.0", "Returns the cluster configuration for a node.", cluster_disabled),
    spec("replicas", 3, ADMIN | STALE, NO_KEYS, "cluster", "5.0.0", "Lists the replica nodes of a master node.", cluster_disabled),
    spec("replicate", 3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Configure a node as replica of a master node.", cluster_disabled),
    spec("reset", -2, ADMIN | STALE | NOSCRIPT, NO_KEYS, "cluster", "3.0.0", "Resets a node.", cluster_disabled),
    spec("saveconfig", 2, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Forces a node to save the cluster configuration to disk.", cluster_disabled),
    spec("set-config-epoch", 3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Sets the configuration epoch for a new node.", cluster_disabled),
    spec("setslot", -4, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Binds a hash slot to a node.", cluster_disabled),
    spec("shards", 2, STALE, NO_KEYS, "cluster", "7.0.0", "Returns the mapping of cluster slots to shards.", cluster_disabled),
    spec("slaves", 3, ADMIN | STALE, NO_KEYS, "cluster", "3.0.0", "Lists the replica nodes of a master node.", cluster_disabled),
    spec("slots", 2, STALE, NO_KEYS, "cluster", "3.0.0", "Returns the mapping of cluster slots to nodes.", cluster_disabled),
];

/// Every CLUSTER subcommand: Redis's answer when cluster support is off.
fn cluster_disabled(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Err(err("ERR This instance has cluster support disabled"))
}

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
