//! Server commands: INFO (every Redis 7.0 section, fed by the dispatcher's
//! records in [`super::stats`]), TIME and DEBUG (the subcommands Redis's
//! test suite uses; those needing what cordis lacks say what). CONFIG is
//! in `super::config`, COMMAND in `super::command_docs`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::args::{self, err, err_owned, Args, CmdResult};
use super::connection::REDIS_COMPAT_VERSION;
use super::context::ClientAction;
use super::flags::{ADMIN, FAST, LOADING, NOSCRIPT, RANDOM, STALE};
use super::{container_handler, lookup, spec, CommandSpec, Context};
use crate::protocol::Reply;
use crate::store::memory;
use crate::store::pattern::glob_match;
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
    spec("help", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Returns helpful text about the DEBUG subcommands.", debug_help),
    spec("set-active-expire", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Turns the periodic expiry of keys off (0) or on (1).", debug_set_active_expire),
    spec("populate", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Creates <count> string keys <prefix>:<n> (default prefix 'key') that do not exist yet.", debug_populate),
    spec("log", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Writes a message to the server log.", debug_log),
    spec("stringmatch-len", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Runs the glob matcher against random patterns and strings.", debug_stringmatch_len),
    spec("quicklist-packed-threshold", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Accepted: cordis lists have no packed/plain node split, so any threshold holds.", debug_quicklist_packed_threshold),
    spec("set-skip-checksum-validation", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis has no DUMP/RESTORE payloads to validate.", debug_missing),
    spec("reload", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Saves the snapshot, then replaces the dataset with what the file holds.", super::persistence::debug_reload),
    spec("loadaof", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis keeps no AOF.", debug_missing),
    spec("object", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis values have no Redis object header (refcount, LRU, serialized length).", debug_missing),
    spec("listpack", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis collections are CRDTs, not listpacks.", debug_missing),
    spec("quicklist", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis lists are CRDTs, not quicklists.", debug_missing),
    spec("jmap", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis does not run on a JVM or jemalloc heap to dump.", debug_missing),
    spec("change-repl-id", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis peers track per-origin sequence numbers, not a replication id.", debug_missing),
    spec("pause-cron", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis cannot pause its housekeeping task.", debug_missing),
    spec("replybuffer", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), "server", "1.0.0", "Refused: cordis has no resizable per-client reply buffer.", debug_missing),
];

// ----- INFO -----

/// Every section in Redis's order; the `bool` says whether bare INFO /
/// INFO default includes it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

fn info(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let words: Vec<String> = args
        .rest()
        .iter()
        .map(|a| args::text(a).to_ascii_lowercase())
        .collect();
    let all = words.iter().any(|w| w == "all" || w == "everything");
    let default = words.is_empty() || words.iter().any(|w| w == "default");
    let wanted = |section: &str, in_default: bool| {
        all || (default && in_default)
            || words
                .iter()
                .any(|w| w == section || (section == "modules" && w == "module_list"))
    };
    ctx.store.introspection.refresh(ctx.server);
    let mut out = String::new();
    for &(section, in_default) in SECTIONS {
        if !wanted(section, in_default) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let title = if section == "cpu" {
            "CPU".to_string()
        } else {
            capitalized(section)
        };
        let _ = writeln!(out, "# {title}\r");
        match section {
            "server" => info_server(ctx, &mut out),
            "clients" => info_clients(ctx, &mut out),
            "memory" => info_memory(ctx, &mut out),
            "persistence" => super::persistence::info_persistence(ctx, &mut out),
            "stats" => info_stats(ctx, &mut out),
            "replication" => info_replication(ctx, &mut out),
            "cpu" => info_cpu(&mut out),
            "commandstats" => info_commandstats(ctx, &mut out),
            "errorstats" => info_errorstats(ctx, &mut out),
            "latencystats" => info_latencystats(ctx, &mut out),
            "cluster" => line!(out, "cluster_enabled:0"),
            "keyspace" => info_keyspace(ctx, &mut out),
            _ => {} // modules: none
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
use line;

/// `uname -r`-style kernel release, read once.
fn os_release() -> &'static str {
    static RELEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RELEASE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

fn info_server(ctx: &mut Context, out: &mut String) {
    let server = ctx.server;
    let uptime = server.started.elapsed().as_secs();
    let hz = server.config.read().hz;
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        other => other,
    };
    line!(out, "redis_version:{REDIS_COMPAT_VERSION}");
    line!(out, "redis_git_sha1:00000000");
    line!(out, "redis_git_dirty:0");
    line!(out, "redis_build_id:0");
    line!(out, "cordis_version:{}", env!("CARGO_PKG_VERSION"));
    line!(out, "redis_mode:standalone");
    line!(out, "os:{os} {} {}", os_release(), std::env::consts::ARCH);
    line!(out, "arch_bits:{}", usize::BITS);
    line!(out, "monotonic_clock:POSIX clock_gettime");
    line!(out, "multiplexing_api:tokio");
    line!(out, "atomicvar_api:c11-builtin");
    line!(out, "gcc_version:0.0.0");
    line!(out, "process_id:{}", std::process::id());
    line!(out, "process_supervised:no");
    line!(out, "run_id:{}", server.run_id);
    line!(
        out,
        "tcp_port:{}",
        server.bound_port.load(Ordering::Relaxed)
    );
    line!(out, "server_time_usec:{}", unix_micros());
    line!(out, "uptime_in_seconds:{uptime}");
    line!(out, "uptime_in_days:{}", uptime / 86400);
    line!(out, "hz:{hz}");
    line!(out, "configured_hz:{hz}");
    line!(
        out,
        "lru_clock:{}",
        crate::store::evict::lru_clock(crate::store::unix_ms())
    );
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
    line!(out, "io_threads_active:0");
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

fn info_clients(ctx: &mut Context, out: &mut String) {
    let server = ctx.server;
    line!(out, "connected_clients:{}", server.clients.len());
    line!(out, "cluster_connections:0");
    line!(out, "maxclients:{}", server.config.read().maxclients);
    line!(out, "client_recent_max_input_buffer:0");
    line!(out, "client_recent_max_output_buffer:0");
    line!(out, "blocked_clients:{}", server.blocked_clients());
    line!(out, "tracking_clients:{}", ctx.server.tracking.clients());
    line!(out, "clients_in_timeout_table:0");
}

fn info_memory(ctx: &mut Context, out: &mut String) {
    let used = memory::used_memory();
    let rss = memory::rss_bytes();
    let peak = ctx.store.introspection.note_memory_peak(used);
    let startup = ctx.store.introspection.startup_memory(used);
    let log = ctx.store.delta_log().bytes();
    let overhead = startup + log;
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(startup).max(1);
    let human = memory::human_bytes;
    let (maxmemory, policy) = {
        let config = ctx.server.config.read();
        (
            config
                .get("maxmemory")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0),
            config
                .get("maxmemory-policy")
                .unwrap_or_else(|| "noeviction".into()),
        )
    };
    let total_system = total_system_memory();
    line!(out, "used_memory:{used}");
    line!(out, "used_memory_human:{}", human(used));
    line!(out, "used_memory_rss:{rss}");
    line!(out, "used_memory_rss_human:{}", human(rss));
    line!(out, "used_memory_peak:{peak}");
    line!(out, "used_memory_peak_human:{}", human(peak));
    line!(
        out,
        "used_memory_peak_perc:{:.2}%",
        used as f64 * 100.0 / peak.max(1) as f64
    );
    line!(out, "used_memory_overhead:{overhead}");
    line!(out, "used_memory_startup:{startup}");
    line!(out, "used_memory_dataset:{dataset}");
    line!(
        out,
        "used_memory_dataset_perc:{:.2}%",
        dataset as f64 * 100.0 / net as f64
    );
    // The allocator's own figures where it gives them (jemalloc), else the
    // counted bytes and the RSS.
    let alloc = memory::allocator_stats().unwrap_or(memory::AllocatorStats {
        allocated: used,
        active: used,
        resident: rss,
        retained: 0,
    });
    line!(out, "allocator_allocated:{}", alloc.allocated);
    line!(out, "allocator_active:{}", alloc.active);
    line!(out, "allocator_resident:{}", alloc.resident);
    line!(out, "total_system_memory:{total_system}");
    line!(out, "total_system_memory_human:{}", human(total_system));
    // The Lua engine's figures, as of its last run (read without its lock:
    // INFO may run inside a script).
    let lua = &ctx.server.script_status;
    let load = |v: &std::sync::atomic::AtomicUsize| v.load(std::sync::atomic::Ordering::Relaxed);
    let (vm_eval, vm_functions) = (load(&lua.eval_memory), load(&lua.function_memory));
    let (scripts_eval, functions_mem) = (load(&lua.scripts_memory), load(&lua.functions_memory));
    line!(out, "used_memory_lua:{vm_eval}");
    line!(out, "used_memory_vm_eval:{vm_eval}");
    line!(out, "used_memory_lua_human:{}", human(vm_eval));
    line!(out, "used_memory_scripts_eval:{scripts_eval}");
    line!(
        out,
        "number_of_cached_scripts:{}",
        load(&lua.cached_scripts)
    );
    line!(out, "number_of_functions:{}", load(&lua.function_count));
    line!(out, "number_of_libraries:{}", load(&lua.function_libraries));
    line!(out, "used_memory_vm_functions:{vm_functions}");
    line!(out, "used_memory_vm_total:{}", vm_eval + vm_functions);
    line!(
        out,
        "used_memory_vm_total_human:{}",
        human(vm_eval + vm_functions)
    );
    line!(out, "used_memory_functions:{functions_mem}");
    line!(out, "used_memory_scripts:{}", scripts_eval + functions_mem);
    line!(
        out,
        "used_memory_scripts_human:{}",
        human(scripts_eval + functions_mem)
    );
    line!(out, "maxmemory:{maxmemory}");
    line!(out, "maxmemory_human:{}", human(maxmemory));
    line!(out, "maxmemory_policy:{policy}");
    // Redis's breakdown: fragmentation inside the allocator's active pages,
    // then resident pages the allocator holds beyond those, then RSS beyond
    // what the allocator holds (code, stacks, other libraries).
    let ratio = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    let diff = |a: usize, b: usize| a as i64 - b as i64;
    line!(
        out,
        "allocator_frag_ratio:{:.2}",
        ratio(alloc.active, alloc.allocated)
    );
    line!(
        out,
        "allocator_frag_bytes:{}",
        diff(alloc.active, alloc.allocated)
    );
    line!(
        out,
        "allocator_rss_ratio:{:.2}",
        ratio(alloc.resident, alloc.active)
    );
    line!(
        out,
        "allocator_rss_bytes:{}",
        diff(alloc.resident, alloc.active)
    );
    line!(out, "rss_overhead_ratio:{:.2}", ratio(rss, alloc.resident));
    line!(out, "rss_overhead_bytes:{}", diff(rss, alloc.resident));
    line!(out, "mem_fragmentation_ratio:{:.2}", ratio(rss, used));
    line!(out, "mem_fragmentation_bytes:{}", diff(rss, used));
    line!(out, "mem_not_counted_for_evict:0");
    line!(out, "mem_replication_backlog:{log}");
    line!(out, "mem_total_replication_buffers:{log}");
    line!(out, "mem_clients_slaves:0");
    line!(out, "mem_clients_normal:0");
    line!(out, "mem_cluster_links:0");
    line!(out, "mem_aof_buffer:0");
    line!(out, "mem_allocator:{}", memory::allocator_name());
    line!(out, "active_defrag_running:0");
    line!(
        out,
        "lazyfree_pending_objects:{}",
        crate::store::lazyfree::pending_objects()
    );
    line!(
        out,
        "lazyfreed_objects:{}",
        crate::store::lazyfree::freed_objects()
    );
    line!(out, "replication_log_bytes:{log}");
}

/// Physical memory from /proc/meminfo (0 where unavailable).
fn total_system_memory() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn info_stats(ctx: &mut Context, out: &mut String) {
    let s = &ctx.server.stats;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let (ops, input_kbps, output_kbps) = ctx.store.introspection.instantaneous(ctx.server);
    let st = &ctx.store.stats;
    let intro = &ctx.store.introspection;
    let input = load(&s.total_net_input_bytes);
    let output = load(&s.total_net_output_bytes);
    line!(
        out,
        "total_connections_received:{}",
        load(&s.total_connections_received)
    );
    line!(out, "total_commands_processed:{}", intro.total_calls());
    line!(out, "instantaneous_ops_per_sec:{ops}");
    line!(out, "total_net_input_bytes:{input}");
    line!(out, "total_net_output_bytes:{output}");
    line!(out, "total_net_repl_input_bytes:0");
    line!(out, "total_net_repl_output_bytes:0");
    line!(out, "instantaneous_input_kbps:{input_kbps:.2}");
    line!(out, "instantaneous_output_kbps:{output_kbps:.2}");
    line!(out, "instantaneous_input_repl_kbps:0.00");
    line!(out, "instantaneous_output_repl_kbps:0.00");
    line!(
        out,
        "rejected_connections:{}",
        load(&s.rejected_connections)
    );
    line!(
        out,
        "tls_handshake_failures:{}",
        load(&s.tls_handshake_failures)
    );
    line!(out, "acl_access_denied_auth:{}", load(&s.auth_failures));
    line!(out, "sync_full:0");
    line!(out, "sync_partial_ok:0");
    line!(out, "sync_partial_err:0");
    line!(out, "expired_keys:{}", st.expired_keys);
    line!(out, "expired_stale_perc:0.00");
    line!(out, "expired_time_cap_reached_count:0");
    line!(out, "expire_cycle_cpu_milliseconds:0");
    line!(out, "evicted_keys:{}", st.evicted_keys);
    line!(out, "evicted_clients:0");
    let (exceeded_total, exceeded_now) = ctx.store.eviction_exceeded_ms();
    line!(out, "total_eviction_exceeded_time:{exceeded_total}");
    line!(out, "current_eviction_exceeded_time:{exceeded_now}");
    line!(out, "keyspace_hits:{}", st.keyspace_hits);
    line!(out, "keyspace_misses:{}", st.keyspace_misses);
    {
        use crate::pubsub::channels::Kind;
        let pubsub = &ctx.server.pubsub;
        line!(out, "pubsub_channels:{}", pubsub.distinct(Kind::Channel));
        line!(out, "pubsub_patterns:{}", pubsub.distinct(Kind::Pattern));
        line!(out, "pubsubshard_channels:{}", pubsub.distinct(Kind::Shard));
    }
    line!(out, "latest_fork_usec:0");
    line!(out, "total_forks:0");
    line!(out, "migrate_cached_sockets:0");
    line!(out, "slave_expires_tracked_keys:0");
    line!(out, "active_defrag_hits:0");
    line!(out, "active_defrag_misses:0");
    line!(out, "active_defrag_key_hits:0");
    line!(out, "active_defrag_key_misses:0");
    line!(out, "total_active_defrag_time:0");
    line!(out, "current_active_defrag_time:0");
    let (keys, items, prefixes) = ctx.server.tracking.totals();
    line!(out, "tracking_total_keys:{keys}");
    line!(out, "tracking_total_items:{items}");
    line!(out, "tracking_total_prefixes:{prefixes}");
    line!(out, "unexpected_error_replies:0");
    line!(out, "total_error_replies:{}", intro.total_errors());
    line!(out, "dump_payload_sanitizations:0");
    // Not Redis's meaning (socket reads and writes): cordis does not count
    // those yet and reports the commands processed instead.
    line!(
        out,
        "total_reads_processed:{}",
        load(&s.total_commands_processed)
    );
    line!(
        out,
        "total_writes_processed:{}",
        load(&s.total_commands_processed)
    );
    line!(out, "io_threaded_reads_processed:0");
    line!(out, "io_threaded_writes_processed:0");
    line!(out, "reply_buffer_shrinks:0");
    line!(out, "reply_buffer_expands:0");
    line!(out, "type_conflicts:{}", st.type_conflicts);
}

fn info_replication(ctx: &mut Context, out: &mut String) {
    let store = &ctx.store;
    line!(out, "role:master");
    line!(out, "cordis_role:active-active");
    line!(out, "replica_id:{}", store.replica());
    line!(out, "connected_slaves:0");
    ctx.server.repl.write_info(out);
    line!(out, "local_seq:{}", store.last_seq());
    line!(out, "master_failover_state:no-failover");
    line!(out, "master_replid:{}", ctx.server.run_id);
    line!(
        out,
        "master_replid2:0000000000000000000000000000000000000000"
    );
    line!(out, "master_repl_offset:{}", store.last_seq());
    line!(out, "second_repl_offset:-1");
    line!(out, "repl_backlog_active:0");
    line!(out, "repl_backlog_size:{}", store.delta_log().cap_bytes());
    line!(out, "repl_backlog_first_byte_offset:0");
    line!(out, "repl_backlog_histlen:0");
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
        "replication_log_messages_dropped:{}",
        store.delta_log().messages_dropped()
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
    line!(out, "tombstones_bytes:{}", store.tombstone_bytes());
    line!(
        out,
        "tombstones_collected:{}",
        store.stats.tombstones_collected
    );
}

/// CPU time of this process and of its waited-for children, from getrusage.
fn info_cpu(out: &mut String) {
    fn usage(who: libc::c_int) -> (libc::timeval, libc::timeval) {
        // SAFETY: getrusage only writes the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        (ru.ru_stime, ru.ru_utime)
    }
    let tv = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (csys, cuser) = usage(libc::RUSAGE_CHILDREN);
    line!(out, "used_cpu_sys:{}", tv(sys));
    line!(out, "used_cpu_user:{}", tv(user));
    line!(out, "used_cpu_sys_children:{}", tv(csys));
    line!(out, "used_cpu_user_children:{}", tv(cuser));
    #[cfg(target_os = "linux")]
    {
        let (msys, muser) = usage(libc::RUSAGE_THREAD);
        line!(out, "used_cpu_sys_main_thread:{}", tv(msys));
        line!(out, "used_cpu_user_main_thread:{}", tv(muser));
    }
}

/// INFO's `#:\r\n`-free spelling of a name.
fn info_safe(name: &str) -> String {
    name.replace(['#', ':', '\r', '\n'], "_")
}

fn info_commandstats(ctx: &mut Context, out: &mut String) {
    let table = super::stats::command_table();
    let stats = &ctx.store.introspection;
    for (id, entry) in table.entries.iter().enumerate() {
        let Some(c) = stats.command(id) else {
            continue;
        };
        if c.calls == 0 && c.failed == 0 && c.rejected == 0 {
            continue;
        }
        let usec = c.nanos / 1000;
        let per_call = if c.calls == 0 {
            0.0
        } else {
            c.nanos as f64 / 1000.0 / c.calls as f64
        };
        line!(
            out,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
            info_safe(&entry.full_name),
            c.calls,
            c.rejected,
            c.failed
        );
    }
}

fn info_errorstats(ctx: &mut Context, out: &mut String) {
    for (prefix, count) in ctx.store.introspection.errors() {
        line!(out, "errorstat_{}:count={count}", info_safe(prefix));
    }
}

fn info_latencystats(ctx: &mut Context, out: &mut String) {
    let stats = &ctx.store.introspection;
    if !stats.settings().latency_tracking {
        return;
    }
    let table = super::stats::command_table();
    let percentiles = &stats.settings().percentiles;
    for (id, entry) in table.entries.iter().enumerate() {
        let Some(h) = stats.command(id).and_then(|c| c.histogram.as_deref()) else {
            continue;
        };
        let values: Vec<String> = percentiles
            .iter()
            .map(|&p| format!("p{p}={:.3}", h.value_at_percentile(p) as f64 / 1000.0))
            .collect();
        line!(
            out,
            "latency_percentiles_usec_{}:{}",
            info_safe(&entry.full_name),
            values.join(",")
        );
    }
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

fn debug_help(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(args::help_reply(&[
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DIGEST",
        "    Output a hex signature representing the current DB content.",
        "LOG <message>",
        "    Write <message> to the server log.",
        "POPULATE <count> [<prefix>] [<size>]",
        "    Create <count> string keys named key:<num>. If <prefix> is specified then",
        "    it is used instead of the 'key' prefix. These are not propagated to",
        "    replicas. Cluster slots are not respected so keys not belonging to the",
        "    current node can be created in cluster mode.",
        "QUICKLIST-PACKED-THRESHOLD <size>",
        "    Sets the threshold for elements to be inserted as plain vs packed nodes",
        "    (accepted; cordis lists have no such split).",
        "SET-ACTIVE-EXPIRE <0|1>",
        "    Setting it to 0 disables expiring keys in background when they are not",
        "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
        "    default.",
        "SLEEP <seconds>",
        "    Stop the server for <seconds>. Decimals allowed.",
        "STRINGMATCH-LEN",
        "    Run a fuzz tester against the stringmatchlen() function.",
        "HELP",
        "    Print this help.",
    ]))
}

/// The DEBUG subcommands for behaviour cordis lacks answer what is missing
/// (the row's summary says it).
fn debug_missing(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let sub = args::text(&args.argv()[1]).to_ascii_lowercase();
    let why = DEBUG_SUBCOMMANDS
        .iter()
        .find(|c| c.name == sub)
        .map_or("not supported", |c| {
            c.summary
                .trim_start_matches("Refused: ")
                .trim_end_matches('.')
        });
    Err(err_owned(format!(
        "ERR DEBUG {} is not supported: {why}",
        sub.to_ascii_uppercase()
    )))
}

fn debug_set_active_expire(ctx: &mut Context, args: &mut Args) -> CmdResult {
    // Redis reads it with atoi: anything but a non-zero number turns it off.
    let on = args::int(args.next()?).unwrap_or(0) != 0;
    ctx.store.active_expire = on;
    Ok(Reply::ok())
}

fn debug_populate(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let count = args.int_in(0..=i64::MAX, "ERR count must be greater than or equal to 0")? as u64;
    let prefix = args
        .next_if_any()
        .cloned()
        .unwrap_or(Bytes::from_static(b"key"));
    let size = match args.next_if_any() {
        Some(word) => Some(
            args::int(word)
                .map_err(|_| err(args::NOT_AN_INTEGER))?
                .max(0) as usize,
        ),
        None => None,
    };
    args.finish()?;
    let set = lookup(b"set").map(|c| c.handler);
    let Some(set) = set else {
        return Err(err("ERR DEBUG POPULATE needs SET"));
    };
    let db = ctx.client.db;
    for j in 0..count {
        let mut key = prefix.to_vec();
        let _ = write!(KeyBuf(&mut key), ":{j}");
        if ctx.store.exists(db, &key) {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if let Some(size) = size {
            value.resize(size, 0);
        }
        let argv = [
            Bytes::from_static(b"set"),
            Bytes::from(key),
            Bytes::from(value),
        ];
        set(ctx, &mut Args::new(&argv, 1))?;
    }
    Ok(Reply::ok())
}

/// `write!` into a byte vector.
struct KeyBuf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for KeyBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn debug_log(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    tracing::warn!("DEBUG LOG: {}", args::text(args.next()?));
    Ok(Reply::ok())
}

/// Redis's stringmatchlen fuzzer, on cordis's glob matcher: random
/// patterns and strings over a small alphabet; surviving is passing.
fn debug_stringmatch_len(_ctx: &mut Context, _args: &mut Args) -> CmdResult {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let alphabet = b"*?[]^-\\abc";
    let random = |rng: &mut rand::rngs::ThreadRng| {
        let len = rng.gen_range(0..32);
        (0..len)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect::<Vec<u8>>()
    };
    for _ in 0..100_000 {
        let pattern = random(&mut rng);
        let text = random(&mut rng);
        std::hint::black_box(glob_match(&pattern, &text, rng.gen()));
    }
    Ok(Reply::Simple(Bytes::from_static(
        b"Apparently Redis did not crash: test passed",
    )))
}

fn debug_quicklist_packed_threshold(_ctx: &mut Context, args: &mut Args) -> CmdResult {
    let word = args.next()?;
    match crate::config::params::parse_memory(&args::text(word)) {
        Some(v) if v > 0 && v <= 4 * 1024 * 1024 * 1024 => Ok(Reply::ok()),
        _ => Err(err(
            "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
        )),
    }
}
