//! Replication-facing commands: WAIT, SYNC / PSYNC, and CLUSTER. WAIT's
//! handler only reads the peers' acknowledgements; the waiting itself is a
//! [`Park::Peers`] the connection performs without holding the store.
//!
//! SYNC and PSYNC attach the caller as a Redis-style replica of this node:
//! it gets the dataset as an RDB file (PSYNC first `+FULLRESYNC <replid>
//! <offset>`; a partial resync is never offered), then every later write
//! here as commands (see [`super::propagate`] for what is sent). This is
//! a one-way feed for tools that read Redis's replication stream; cordis's
//! own regions replicate over peer links instead. It is refused on a node
//! with peers: writes merged from other regions are not translated into
//! commands, so such a stream would miss them.
//!
//! cordis is not a Redis Cluster node (`cluster_enabled:0`; its regions
//! each hold every key), so every CLUSTER subcommand answers what Redis
//! answers with cluster support disabled.

use std::time::Duration;

use bytes::Bytes;

use super::args::{err, err_owned, int, Args, CmdResult, TIMEOUT_NEGATIVE, TIMEOUT_NOT_INTEGER};
use super::context::client_flags;
use super::flags::{ADMIN, LOADING, NOSCRIPT, NO_MULTI, STALE};
use super::{container_handler, spec, CommandSpec, Context, Park};
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sync", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), "server", "1.0.0", "An internal command used in replication.", sync),
    spec("psync", -3, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), "server", "2.8.0", "An internal command used in replication.", psync),
    spec("replconf", -1, ADMIN | NOSCRIPT | STALE, (0, 0, 0), "server", "3.0.0", "An internal command for configuring the replication stream.", replconf),
    spec("replicaof", 3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), "server", "5.0.0", "Configures a server as replica of another, or promotes it to a master. cordis is always a master: only REPLICAOF NO ONE is accepted.", replicaof),
    spec("slaveof", 3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), "server", "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master. cordis is always a master: only SLAVEOF NO ONE is accepted.", replicaof),
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

/// Why SYNC/PSYNC is refused on a node with peers.
const SYNC_WITH_PEERS: &str = "ERR SYNC/PSYNC is refused on a node with peers: cordis does not translate writes merged from other regions into replication-stream commands, so the stream would miss them";

fn sync(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    attach(ctx, false)
}

/// `PSYNC replid offset`: always a full resynchronization.
fn psync(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    attach(ctx, true)
}

fn attach(ctx: &mut Context, psync: bool) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR Replica can't be in multi"));
    }
    if ctx.client.info.has_flag(client_flags::REPLICA) {
        // Already attached: Redis ignores a repeated SYNC.
        ctx.client.silent = true;
        return Ok(Reply::ok());
    }
    if !ctx.store.single_region {
        return Err(err(SYNC_WITH_PEERS));
    }
    let rdb = super::propagate::snapshot(ctx.store).map_err(|key| {
        err_owned(format!(
            "ERR SYNC/PSYNC cannot send this dataset: key '{}' has no Redis serialization in cordis",
            String::from_utf8_lossy(&key)
        ))
    })?;
    let feeds = &ctx.server.replica_feeds;
    let mut preamble = Vec::with_capacity(rdb.len() + 80);
    if psync {
        preamble.extend_from_slice(
            format!("+FULLRESYNC {} {}\r\n", ctx.server.run_id, feeds.offset()).as_bytes(),
        );
    }
    preamble.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
    preamble.extend_from_slice(&rdb);
    let limit = *ctx.server.monitor_output_limit.lock();
    let info = ctx.client.info.clone();
    info.set_flag(client_flags::REPLICA, true);
    let queue = info.push_queue_or_new(limit);
    queue.push(Bytes::from(preamble), std::time::Instant::now());
    feeds.attach(info, queue);
    ctx.store.record_removals = true;
    ctx.client.silent = true;
    Ok(Reply::ok())
}

/// Why `REPLICAOF host port` is refused.
const NOT_A_REPLICA: &str = "ERR cordis cannot be a Redis replica (its regions replicate active-active over peer links, see --peer); only REPLICAOF NO ONE is accepted";

/// `REPLICAOF NO ONE` (cordis is a master already: OK); `REPLICAOF host
/// port` is refused after Redis's own port check.
fn replicaof(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let host = args.next()?;
    let port = args.next()?;
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        return Ok(Reply::ok());
    }
    int(port)?;
    Err(err(NOT_A_REPLICA))
}

/// `REPLCONF option value …`, as a replica sends it before and after
/// PSYNC: the handshake options (`listening-port`, `ip-address`, `capa`)
/// are acknowledged; `ACK offset` gets no reply, as in Redis. cordis sends
/// the stream in one format whatever the replica's capabilities, and keeps
/// no per-replica offsets (a reconnecting replica resynchronizes in full).
fn replconf(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let rest = args.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(err(super::args::SYNTAX_ERROR));
    }
    if rest
        .first()
        .is_some_and(|o| o.eq_ignore_ascii_case(b"ack") || o.eq_ignore_ascii_case(b"getack"))
    {
        ctx.client.silent = true;
    }
    Ok(Reply::ok())
}
