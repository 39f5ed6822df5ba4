//! Server commands: INFO, COMMAND (generated from the command tables), TIME
//! and DEBUG DIGEST/SLEEP. (CONFIG is in `super::config`.)

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::args::{self, Args, CmdResult};
use super::connection::REDIS_COMPAT_VERSION;
use super::context::ClientAction;
use super::flags::{ADMIN, FAST, LOADING, NOSCRIPT, RANDOM, STALE};
use super::{container_handler, spec, CommandSpec, Context};
use crate::protocol::Reply;
use crate::store::memory;
use crate::store::DB_COUNT;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("info", -1, LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Returns information and statistics about the server.", info),
    spec("time", 1, LOADING | STALE | FAST | RANDOM, (0, 0, 0), "server", "2.6.0", "Returns the server time.", time),
    CommandSpec {
        subcommands: DEBUG_SUBCOMMANDS,
        ..spec("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "A container for debugging commands.", container_handler)
    },
];

#[rustfmt::skip]
static DEBUG_SUBCOMMANDS: &[CommandSpec] = &[
    spec("digest", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Returns a digest of the whole dataset, equal on converged nodes.", debug_digest),
    spec("sleep", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Pauses this connection for the given seconds (may be fractional).", debug_sleep),
];

// ----- INFO -----

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "stats",
    "replication",
    "keyspace",
];

fn info(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let wanted: Vec<String> = args
        .rest()
        .iter()
        .map(|a| args::text(a).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let mut out = String::new();
    for &section in DEFAULT_SECTIONS {
        if !all && !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let _ = writeln!(out, "# {}\r", capitalized(section));
        match section {
            "server" => info_server(ctx, &mut out),
            "clients" => info_clients(ctx, &mut out),
            "memory" => info_memory(ctx, &mut out),
            "stats" => info_stats(ctx, &mut out),
            "replication" => info_replication(ctx, &mut out),
            _ => info_keyspace(ctx, &mut out),
        }
    }
    Ok(Reply::Verbatim(Bytes::from(out)))
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{ let _ = write!($out, $($arg)*); $out.push_str("\r\n"); }};
}

fn info_server(ctx: &mut Context, out: &mut String) {
    let server = ctx.server;
    let uptime = server.started.elapsed().as_secs();
    line!(out, "redis_version:{REDIS_COMPAT_VERSION}");
    line!(out, "cordis_version:{}", env!("CARGO_PKG_VERSION"));
    line!(out, "redis_mode:standalone");
    line!(
        out,
        "os:{} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    line!(out, "arch_bits:{}", usize::BITS);
    line!(out, "multiplexing_api:tokio");
    line!(out, "process_id:{}", std::process::id());
    line!(out, "run_id:{}", server.run_id);
    line!(
        out,
        "tcp_port:{}",
        server.bound_port.load(Ordering::Relaxed)
    );
    line!(out, "server_time_usec:{}", crate::store::unix_ms() * 1000);
    line!(out, "uptime_in_seconds:{uptime}");
    line!(out, "uptime_in_days:{}", uptime / 86400);
    line!(out, "hz:{}", server.config.read().hz);
    line!(
        out,
        "executable:{}",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    line!(
        out,
        "config_file:{}",
        server.config_file.clone().unwrap_or_default()
    );
}

fn info_clients(ctx: &mut Context, out: &mut String) {
    line!(out, "connected_clients:{}", ctx.server.clients.len());
    line!(out, "maxclients:{}", ctx.server.config.read().maxclients);
    line!(out, "blocked_clients:0");
}

fn info_memory(ctx: &mut Context, out: &mut String) {
    let used = memory::used_memory();
    let rss = memory::rss_bytes();
    line!(out, "used_memory:{used}");
    line!(out, "used_memory_human:{}", memory::human_bytes(used));
    line!(out, "used_memory_rss:{rss}");
    line!(out, "used_memory_rss_human:{}", memory::human_bytes(rss));
    line!(
        out,
        "replication_log_bytes:{}",
        ctx.store.delta_log().bytes()
    );
    line!(out, "maxmemory:0");
    line!(out, "maxmemory_human:0B");
    line!(out, "maxmemory_policy:noeviction");
    line!(out, "mem_allocator:libc");
}

fn info_stats(ctx: &mut Context, out: &mut String) {
    let s = &ctx.server.stats;
    let st = &ctx.store.stats;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let fields = [
        (
            "total_connections_received",
            load(&s.total_connections_received),
        ),
        (
            "total_commands_processed",
            load(&s.total_commands_processed),
        ),
        ("total_net_input_bytes", load(&s.total_net_input_bytes)),
        ("total_net_output_bytes", load(&s.total_net_output_bytes)),
        ("rejected_connections", load(&s.rejected_connections)),
        ("expired_keys", st.expired_keys),
        ("evicted_keys", 0),
        ("keyspace_hits", st.keyspace_hits),
        ("keyspace_misses", st.keyspace_misses),
        ("total_error_replies", load(&s.total_error_replies)),
        ("type_conflicts", st.type_conflicts),
    ];
    for (name, value) in fields {
        line!(out, "{name}:{value}");
    }
}

fn info_replication(ctx: &mut Context, out: &mut String) {
    let store = &ctx.store;
    line!(out, "role:master");
    line!(out, "cordis_role:active-active");
    line!(out, "replica_id:{}", store.replica());
    line!(out, "connected_slaves:0");
    ctx.server.repl.write_info(out);
    line!(out, "local_seq:{}", store.last_seq());
    line!(out, "master_repl_offset:{}", store.last_seq());
    line!(out, "replication_log_batches:{}", store.delta_log().len());
    line!(out, "replication_log_bytes:{}", store.delta_log().bytes());
    line!(
        out,
        "replication_log_cap_bytes:{}",
        store.delta_log().cap_bytes()
    );
    line!(
        out,
        "replication_log_dropped_through:{}",
        store.delta_log().dropped_through()
    );
    line!(
        out,
        "remote_batches_applied:{}",
        store.stats.remote_batches_applied
    );
    line!(
        out,
        "remote_batches_duplicate:{}",
        store.stats.remote_batches_duplicate
    );
    line!(out, "tombstones_pending:{}", store.tombstones_pending());
    line!(
        out,
        "tombstones_collected:{}",
        store.stats.tombstones_collected
    );
}

fn info_keyspace(ctx: &mut Context, out: &mut String) {
    for db in 0..DB_COUNT {
        let keys = ctx.store.dbsize(db);
        if keys > 0 {
            let expires = ctx.store.db(db).keys.volatile_len();
            line!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0");
        }
    }
}

// ----- TIME -----

fn time(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(now.as_secs().to_string())),
        Reply::Bulk(Bytes::from(now.subsec_micros().to_string())),
    ]))
}

// ----- DEBUG -----

fn debug_digest(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let digest = ctx.store.digest();
    let mut hex = String::with_capacity(40);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(Reply::Simple(Bytes::from(hex)))
}

fn debug_sleep(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // Redis reads the argument with strtod and never complains: the longest
    // numeric prefix counts, anything else (or a negative) sleeps 0 s.
    let arg = args.next()?;
    let text = args::text(&arg[..arg.len().min(64)]);
    let seconds = (0..=text.len())
        .rev()
        .filter(|&end| text.is_char_boundary(end))
        .find_map(|end| text[..end].trim_start().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(0.0);
    ctx.client.action = Some(ClientAction::Sleep(Duration::from_secs_f64(
        seconds.min(3600.0),
    )));
    Ok(Reply::ok())
}
