//! The `cordis` binary: parse flags, load the config, start the node, wait
//! for SIGINT/SIGTERM, shut down gracefully. Wiring only.

use cordis::config::{Cli, Config};
use cordis::store::memory::CountingAllocator;

// Counts what the allocator hands out (INFO's used_memory, maxmemory) over
// the build's allocator: jemalloc by default, chosen on measurements (see
// docs/performance.md, "Allocator, 2026-12-03").
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() {
    cordis::store::memory::start_allocator_upkeep();
    let cli = Cli::parse_or_exit();
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cordis: {e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(config.log_filter())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One thread: every command serializes on the keyspace lock anyway, so
    // a single event loop avoids lock hand-offs between cores and leaves the
    // other cores to the kernel's network stack (and, in benchmarks, to the
    // load generator). More threads parallelize only socket I/O and parsing.
    // Built multi-thread even for one thread (one worker): a script past
    // busy-reply-threshold then hands the other connections to a fresh
    // worker (tokio's `block_in_place`), so they get BUSY and can SCRIPT
    // KILL it, as in Redis; a current-thread runtime cannot.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.threads > 0 {
        runtime.worker_threads(config.threads);
    }
    // Tasks woken by one poll of the I/O driver run in the order their
    // sockets became ready. tokio's default runs the last-woken task first
    // (its LIFO slot), so of two clients that wrote at once the second was
    // served first; Redis serves them in arrival order, and clients (and
    // Redis's own tests) that send a blocking read on one connection and a
    // write on another depend on it.
    #[cfg(tokio_unstable)]
    runtime.disable_lifo_slot();
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cordis: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let config_file = cli.config.as_ref().map(|p| p.display().to_string());
    let generated_id = config.replica_id.is_none();
    runtime.block_on(async move {
        let handle = match cordis::server::start(config, config_file).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("cordis: cannot start: {e}");
                std::process::exit(1);
            }
        };
        let identity = handle.state.persist.identity();
        if generated_id && !handle.state.persist.name_from_disk() {
            println!(
                "cordis: generated node name {} (pass --node-name {} to keep it)",
                identity.name, identity.name
            );
        }
        println!(
            "cordis: node {} incarnation {:08x}",
            identity.name, identity.incarnation
        );
        if let Some(peer_addr) = handle.peer_addr {
            println!(
                "cordis: peer listener on {peer_addr}, {} configured peers",
                handle.state.repl.peers.len()
            );
        }
        if let Some(tls_addr) = handle.tls_addr {
            println!("cordis: TLS clients on {tls_addr}");
        }
        // Tests and scripts read this line to learn the port.
        println!(
            "cordis ready: listening on {} (replica id {})",
            handle.local_addr, handle.state.replica
        );
        tokio::select! {
            signal = wait_for_signal() => {
                // shutdown-on-sigint / shutdown-on-sigterm: save or nosave.
                let flags = handle.state.config.read().get(signal).unwrap_or_default();
                let words: Vec<&str> = flags.split(' ').collect();
                if words.contains(&"nosave") {
                    handle.state.persist.set_shutdown_mode(cordis::persist::SHUTDOWN_NOSAVE);
                } else if words.contains(&"save") {
                    handle.state.persist.set_shutdown_mode(cordis::persist::SHUTDOWN_SAVE);
                }
            }
            _ = handle.stop_requested() => {}
        }
        println!("cordis: shutting down");
        handle.shutdown().await;
    });
}

/// Waits for SIGINT or SIGTERM; returns the parameter that says what to do.
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "shutdown-on-sigint",
        _ = term.recv() => "shutdown-on-sigterm",
    }
}
