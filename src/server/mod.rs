//! The network side of a node: binding the client port, the accept loop with
//! `maxclients`, one task per connection (see [`connection`]; what a
//! client does next is decided by [`session`], without I/O), the periodic
//! housekeeping task (active expiry, tombstone collection, delta-log
//! trimming), the replication tasks (see [`crate::replication`]), and
//! graceful shutdown. Nothing here knows CRDT internals; commands run through
//! [`crate::commands::dispatch`].

pub mod connection;
pub mod limits;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::commands::ServerState;
use crate::config::Config;
use crate::crdt::ReplicaId;

/// Called (through [`crate::commands::scripting::HAND_OFF`]) on the thread
/// that runs a script once it passes `busy-reply-threshold`: gives this
/// runtime worker's other tasks to a fresh worker thread (tokio's
/// `block_in_place`), so every other client is served (BUSY, SCRIPT KILL)
/// while the script goes on here. It waits until a task spawned just
/// before runs elsewhere, which shows the hand-off took; answers whether
/// it did. Only a multi-thread runtime can hand off (`main` builds one
/// even for `threads 1`); elsewhere (a current-thread runtime, or no
/// runtime) it answers false and the script is stopped instead.
fn hand_off_runtime() -> bool {
    use std::sync::atomic::AtomicBool;
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return false;
    }
    let moved = Arc::new(AtomicBool::new(false));
    let marker = moved.clone();
    handle.spawn(async move { marker.store(true, Ordering::Release) });
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !moved.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    moved.load(Ordering::Acquire)
}

/// A running node: its address, shared state, and a way to stop it.
pub struct ServerHandle {
    pub local_addr: SocketAddr,
    /// Where the peer listener is bound (when replication is enabled).
    pub peer_addr: Option<SocketAddr>,
    /// Where the TLS client listener is bound (when `tls-port` is set).
    pub tls_addr: Option<SocketAddr>,
    pub state: Arc<ServerState>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Resolves when the node was asked to stop from inside (SHUTDOWN);
    /// the binary waits on this next to its signals.
    pub async fn stop_requested(&self) {
        self.shutdown.cancelled().await
    }

    /// Stops accepting, tells every connection to finish its current batch
    /// and close, and waits for the tasks (bounded).
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // Give connection tasks a moment to flush and drop.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.state.clients.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.save_at_shutdown();
    }

    /// SHUTDOWN SAVE, or plain SHUTDOWN / a signal with save points
    /// configured: the last snapshot and the clean-shutdown marker that
    /// lets the next start resume this incarnation. The store stays locked
    /// afterwards (the guard is leaked): nothing may be written after the
    /// marker, and the process is about to exit.
    fn save_at_shutdown(&self) {
        use crate::persist::{SHUTDOWN_NOSAVE, SHUTDOWN_SAVE};
        let (path, save_points) = {
            let config = self.state.config.read();
            (
                snapshot_path(&config),
                config.get("save").unwrap_or_default(),
            )
        };
        let mode = self.state.persist.shutdown_mode();
        let wanted = mode == SHUTDOWN_SAVE
            || (mode != SHUTDOWN_NOSAVE && !crate::persist::save_points(&save_points).is_empty());
        let aof = self.state.persist.aof();
        if !wanted && aof.is_none() {
            return;
        }
        let mut store = self.state.store.lock();
        if wanted {
            match crate::persist::save_at_shutdown(&self.state.persist, &mut store, &path) {
                Ok(()) => info!("saved {} before exiting", path.display()),
                Err(e) => tracing::error!("saving {} at shutdown failed: {e}", path.display()),
            }
        }
        // The AOF is complete whatever SHUTDOWN said (as Redis fsyncs it):
        // the next start may resume this incarnation from it.
        if let Some(aof) = aof {
            match aof.close_clean(&self.state.persist.identity()) {
                Ok(()) => info!("append-only file closed cleanly"),
                Err(e) => tracing::error!("closing the append-only file failed: {e}"),
            }
        }
        std::mem::forget(store);
    }
}

/// The snapshot path the config names.
fn snapshot_path(config: &Config) -> std::path::PathBuf {
    crate::persist::snapshot_path(
        &config.get("dir").unwrap_or_default(),
        &config.get("dbfilename").unwrap_or_default(),
    )
}

/// Binds the client port (and, with replication enabled, the peer port)
/// and starts serving. Must be called inside a tokio runtime.
pub async fn start(config: Config, config_file: Option<String>) -> std::io::Result<ServerHandle> {
    let peer_listener = if config.replication_enabled() {
        let port = config
            .effective_peer_port()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Some(std::net::TcpListener::bind((config.bind.as_str(), port))?)
    } else {
        None
    };
    start_with_peer_listener(config, config_file, peer_listener).await
}

/// [`start`] with a peer listener the caller bound already (tests bind
/// every node's listener first, so each can be configured with the others'
/// addresses).
pub async fn start_with_peer_listener(
    config: Config,
    config_file: Option<String>,
    peer_listener: Option<std::net::TcpListener>,
) -> std::io::Result<ServerHandle> {
    start_with_listeners(config, config_file, peer_listener, None).await
}

/// [`start_with_peer_listener`] with, optionally, the TLS client listener
/// bound by the caller too (tests bind 127.0.0.1:0, which `tls-port`
/// cannot say: 0 there means no TLS). With a TLS listener given, the
/// `tls-*` parameters still supply the certificates.
pub async fn start_with_listeners(
    mut config: Config,
    config_file: Option<String>,
    peer_listener: Option<std::net::TcpListener>,
    tls_listener: Option<std::net::TcpListener>,
) -> std::io::Result<ServerHandle> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let _ = crate::commands::scripting::HAND_OFF.set(hand_off_runtime);
    let tls_listener = match (tls_listener, tls::tls_port(&config)) {
        (Some(l), _) => Some(l),
        (None, Some(port)) => Some(std::net::TcpListener::bind((config.bind.as_str(), port))?),
        (None, None) => None,
    };
    let tls = match tls_listener {
        Some(l) => {
            l.set_nonblocking(true)?;
            let acceptor = tls::client_acceptor(&config).map_err(invalid)?;
            Some((TcpListener::from_std(l)?, acceptor))
        }
        None => None,
    };
    let tls_addr = match &tls {
        Some((l, _)) => Some(l.local_addr()?),
        None => None,
    };
    config.maxclients = limits::fit_maxclients(config.maxclients, config.peers.len()).maxclients;
    // Identity and data from disk first: a bad snapshot stops the start
    // with the file untouched.
    let load_started = std::time::Instant::now();
    let invalid_data = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let aof_paths = aof_paths(&config);
    let aof_enabled = config.get("appendonly").as_deref() == Some("yes");
    // Each mode drops the other's clean marker: a marker left by a life in
    // the other mode vouches for files this life is about to outdate.
    let other_marker = if aof_enabled {
        crate::persist::clean_marker_path(&snapshot_path(&config))
    } else {
        aof_paths.clean_marker()
    };
    if std::fs::remove_file(&other_marker).is_ok() {
        let _ = crate::persist::snapshot::sync_dir(&other_marker);
    }
    let mut aof_found = if aof_enabled {
        crate::persist::aof::open_at_start(&aof_paths).map_err(invalid_data)?
    } else {
        None
    };
    let mut aof_resumes = false;
    let restored = match &aof_found {
        Some(found) => {
            let configured = config.replica_id.as_deref();
            let identity = match &found.resume {
                Some(id) if configured.is_none_or(|n| n == id.name) => {
                    aof_resumes = true;
                    id.clone()
                }
                _ => crate::persist::NodeIdentity::fresh(
                    configured.or(found.base.as_ref().map(|b| b.meta.name.as_str())),
                ),
            };
            crate::persist::Restored {
                identity,
                snapshot: None,
            }
        }
        None => {
            crate::persist::restore_at_start(config.replica_id.as_deref(), &snapshot_path(&config))
                .map_err(|e| invalid_data(e.to_string()))?
        }
    };
    let replica: ReplicaId = restored.identity.replica_id();
    let listener = TcpListener::bind((config.bind.as_str(), config.port)).await?;
    let local_addr = listener.local_addr()?;
    let peer_listener = match peer_listener {
        Some(l) => {
            l.set_nonblocking(true)?;
            Some(TcpListener::from_std(l)?)
        }
        None => None,
    };
    let peer_addr = match &peer_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    if peer_listener.is_some() && config.peer_secret.is_empty() {
        warn!(
            "no peer secret configured: peer links are not authenticated (set CORDIS_PEER_SECRET)"
        );
    }
    let repl_config = replication_config(&config).map_err(invalid)?;
    let name_from_disk = config.replica_id.is_none()
        && (restored.snapshot.is_some()
            || aof_found
                .as_ref()
                .is_some_and(|f| f.base.is_some() || f.resume.is_some()));
    let state = ServerState::new(config, replica, config_file);
    state.persist.set_identity(restored.identity.clone());
    state.persist.set_name_from_disk(name_from_disk);
    if let Some((snap, resume)) = restored.snapshot {
        let read_ms = load_started.elapsed().as_millis() as u64;
        let mut store = state.store.lock();
        let (keys, records) = crate::persist::load_snapshot(&mut store, snap, resume)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        state
            .persist
            .note_loaded(keys, crate::persist::changes(&store));
        info!(
            keys,
            records,
            resumed = resume,
            read_ms,
            total_ms = load_started.elapsed().as_millis() as u64,
            "loaded the snapshot (node {}, incarnation {:08x})",
            restored.identity.name,
            restored.identity.incarnation
        );
    }
    if aof_enabled {
        open_aof(
            &state,
            aof_paths,
            aof_found.take(),
            aof_resumes,
            load_started,
        )
        .map_err(invalid_data)?;
    }
    let import = state.config.read().import_rdb.clone();
    if let Some(path) = import {
        import_rdb(&state, &path).map_err(invalid_data)?;
    }
    state
        .bound_port
        .store(local_addr.port() as u64, Ordering::Relaxed);
    *state.repl.peer_addr.lock() = peer_addr;
    // SHUTDOWN cancels the same token the handle does.
    let shutdown = state.shutdown.clone();
    let accept = tokio::spawn(accept_loop(listener, None, state.clone(), shutdown.clone()));
    let housekeeping = tokio::spawn(housekeeping_loop(state.clone(), shutdown.clone()));
    let mut tasks = vec![accept, housekeeping];
    if let Some((listener, acceptor)) = tls {
        tasks.push(tokio::spawn(accept_loop(
            listener,
            Some(acceptor),
            state.clone(),
            shutdown.clone(),
        )));
    }
    // Remote pushes wake clients blocked on those lists.
    let waker = state.clone();
    tasks.extend(crate::replication::spawn(
        peer_listener,
        state.store.clone(),
        state.repl.clone(),
        repl_config,
        shutdown.clone(),
        Some(Arc::new(move |store: &mut crate::store::Store| {
            waker.signal_ready_keys(store)
        })),
    ));
    Ok(ServerHandle {
        local_addr,
        peer_addr,
        tls_addr,
        state,
        shutdown,
        tasks,
    })
}

/// Once a second with the AOF on: follows `appendfsync`, and starts a
/// rewrite when `auto-aof-rewrite-percentage`/`-min-size` call for one.
fn aof_round(state: &ServerState, store: &crate::store::Store) {
    let Some(aof) = state.persist.aof() else {
        return;
    };
    let (policy, percentage, min_size) = {
        let c = state.config.read();
        let num = |k: &str| c.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (
            crate::persist::aof::FsyncPolicy::parse(&c.get("appendfsync").unwrap_or_default()),
            num("auto-aof-rewrite-percentage"),
            num("auto-aof-rewrite-min-size"),
        )
    };
    aof.set_policy(policy);
    if aof.auto_rewrite_due(percentage, min_size) {
        info!("starting an automatic append-only file rewrite");
        if let Err(e) = state.persist.rewrite_aof(store) {
            warn!("automatic AOF rewrite did not start: {e}");
        }
    }
}

/// `--import-rdb FILE`: a Redis RDB file's keys (with their deadlines)
/// and function libraries become local writes of this node, as RESTORE
/// REPLACE and FUNCTION LOAD REPLACE would make them, so they replicate to
/// peers and reach the AOF like any write. Keys already past their
/// deadline are skipped. A file that does not parse stops the start and
/// changes nothing.
fn import_rdb(state: &Arc<ServerState>, path: &std::path::Path) -> Result<(), String> {
    use crate::crdt::{KeyDelta, KeyState, TtlChange};
    let started = std::time::Instant::now();
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file =
        crate::rdb::file::parse_file(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut store = state.store.lock();
    let now = store.now_ms();
    let (mut loaded, mut expired) = (0u64, 0u64);
    // Batches of a thousand keys: each applies atomically at peers.
    for (i, entry) in file.keys.into_iter().enumerate() {
        if i % 1000 == 0 {
            if i > 0 {
                store.finish_batch();
            }
            store.begin_command();
        }
        if entry.expire_ms.is_some_and(|d| d <= now) {
            expired += 1;
            continue;
        }
        let ttl = entry
            .expire_ms
            .map_or(TtlChange::Clear, TtlChange::Deadline);
        let value = entry.value;
        store.write_key(entry.db, &entry.key, |current, w| {
            let ts = w.ts();
            let mut next_dot = || w.next_dot();
            let delta = if current.is_empty() {
                KeyDelta::default()
            } else {
                current.delta_delete(ts, &mut next_dot)
            };
            let delta = delta
                .then(crate::rdb::keystate::delta_for(value, ts, &mut next_dot))
                .then(KeyState::new().delta_ttl(ttl, &mut next_dot));
            (delta, ())
        });
        loaded += 1;
    }
    store.finish_batch();
    let libraries = file.functions.len();
    if libraries > 0 {
        let mut engine = state.scripting.lock();
        store.begin_command();
        for code in file.functions {
            let name = engine.load_library(code.clone(), true).map_err(|e| {
                format!("{}: a function library does not load: {e}", path.display())
            })?;
            store.write_library(&name, Some(code));
        }
        store.finish_batch();
        crate::commands::scripting::follow_store(&mut engine, &store, &state.script_status);
    }
    info!(
        keys = loaded,
        expired_skipped = expired,
        libraries,
        rdb_version = file.version,
        ms = started.elapsed().as_millis() as u64,
        "imported {}",
        path.display()
    );
    Ok(())
}

/// Where the config puts the AOF: `dir`/`appenddirname`/`appendfilename`.
fn aof_paths(config: &Config) -> crate::persist::aof::AofPaths {
    crate::persist::aof::AofPaths::new(
        &config.get("dir").unwrap_or_default(),
        &config.get("appenddirname").unwrap_or_default(),
        &config.get("appendfilename").unwrap_or_default(),
    )
}

/// `appendonly yes` at start: loads what the AOF holds (its base, then
/// every tail record in order), or, when there is no AOF yet, starts one
/// from the state loaded so far; then opens a new tail and journals every
/// change from here on. A corrupt file stops the start, untouched.
fn open_aof(
    state: &Arc<ServerState>,
    paths: crate::persist::aof::AofPaths,
    found: Option<crate::persist::aof::Found>,
    resumes: bool,
    started: std::time::Instant,
) -> Result<(), String> {
    use crate::persist::aof;
    let (truncate_ok, policy) = {
        let c = state.config.read();
        (
            c.get("aof-load-truncated").as_deref() != Some("no"),
            aof::FsyncPolicy::parse(&c.get("appendfsync").unwrap_or_default()),
        )
    };
    let mut store = state.store.lock();
    let manifest = match found {
        Some(found) => {
            if let Some(base) = found.base {
                // Never "resume" from the base alone: the tail says how far
                // this node's own sequence went.
                crate::persist::load_snapshot(&mut store, base, false)?;
            }
            let replayed = aof::replay(&paths, &found.manifest, &mut store, truncate_ok)?;
            if resumes {
                store.resume_own_sequence();
            }
            let keys = store.image_key_count() as u64;
            state
                .persist
                .note_loaded(keys, crate::persist::changes(&store));
            info!(
                keys,
                records = replayed.records,
                truncated_bytes = replayed.truncated_bytes,
                skipped_batches = replayed.skipped_batches,
                resumed = resumes,
                total_ms = started.elapsed().as_millis() as u64,
                "loaded the append-only file {}",
                paths.manifest().display()
            );
            found.manifest
        }
        None => {
            let base = state
                .persist
                .encode_base(&store)
                .map_err(|e| e.to_string())?;
            let manifest = aof::create_with_base(&paths, &base).map_err(|e| e.to_string())?;
            info!(
                "started the append-only file {}",
                paths.manifest().display()
            );
            manifest
        }
    };
    let aof = aof::Aof::open(paths, manifest, policy).map_err(|e| e.to_string())?;
    store.set_journal(Some(Arc::new(aof::AofJournal(aof.clone()))));
    state.persist.set_aof(Some(aof));
    Ok(())
}

/// Replication settings from the node's config.
fn replication_config(config: &Config) -> Result<crate::replication::ReplConfig, String> {
    Ok(crate::replication::ReplConfig {
        tls: tls::peer_tls(config)?,
        peers: config.peers.clone(),
        link: crate::replication::LinkSettings {
            secret: config.peer_secret.as_bytes().to_vec(),
            heartbeat_ms: config.peer_heartbeat_ms.max(1),
            timeout_ms: config.peer_timeout_ms.max(config.peer_heartbeat_ms * 2),
            handshake_timeout_ms: config.peer_handshake_timeout_ms.max(1),
            max_clock_skew_ms: config.max_clock_skew_ms,
            anti_entropy_ms: config.anti_entropy_interval_ms,
            ..crate::replication::LinkSettings::default()
        },
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(config.reconnect_max_ms.max(50)),
    })
}

/// Accepts clients on one listener: plain, or TLS when `tls` is given
/// (the handshake runs in the client's own task, bounded by
/// [`TLS_HANDSHAKE_TIMEOUT`], and counts against `maxclients` from
/// accept on).
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        state
            .stats
            .total_connections_received
            .fetch_add(1, Ordering::Relaxed);
        let maxclients = state.config.read().maxclients;
        if state.clients.len() >= maxclients {
            state
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(reject(socket));
            continue;
        }
        let _ = socket.set_nodelay(true);
        let info = connection::admit(&socket, peer, &state);
        match &tls {
            None => {
                tokio::spawn(connection::serve_admitted(
                    socket,
                    info,
                    state.clone(),
                    shutdown.clone(),
                ));
            }
            Some(acceptor) => {
                tokio::spawn(serve_tls(
                    acceptor.clone(),
                    socket,
                    info,
                    state.clone(),
                    shutdown.clone(),
                ));
            }
        }
    }
    info!("accept loop stopped");
}

/// How long a TLS client has to finish its handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes a TLS client's handshake, then serves it like a plain one. A
/// failed or slow handshake closes the connection (and unregisters the
/// client) with a debug line: a stranger's garbage is not worth a warning.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    socket: TcpStream,
    info: Arc<crate::commands::ClientInfo>,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(socket));
    let outcome = tokio::select! {
        _ = shutdown.cancelled() => None,
        outcome = handshake => Some(outcome),
    };
    let failure = match outcome {
        Some(Ok(Ok(stream))) => {
            return connection::serve_admitted(stream, info, state, shutdown).await;
        }
        Some(Ok(Err(e))) => Some(e.to_string()),
        Some(Err(_)) => Some("timed out".to_string()),
        None => None,
    };
    if let Some(reason) = failure {
        tracing::debug!(client = info.id, "TLS handshake failed: {reason}");
        state
            .stats
            .tls_handshake_failures
            .fetch_add(1, Ordering::Relaxed);
    }
    state.clients.remove(&info.id);
}

/// Tells a client over the limit why, then closes (Redis's exact text).
async fn reject(mut socket: TcpStream) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.write_all(b"-ERR max number of clients reached\r\n"),
    )
    .await;
}

/// Active expiry and, over `maxmemory`, an eviction round (so eviction
/// goes on without new commands) `hz` times a second; once a second,
/// tombstone collection
/// up to the causally stable vector and trimming of the delta log through
/// what every peer acked. Each round holds the store lock only for a
/// bounded amount of work.
/// Starts a background save when a `save` point is due.
fn save_point_round(state: &Arc<ServerState>, store: &mut crate::store::Store) {
    let (points, path) = {
        let config = state.config.read();
        (
            crate::persist::save_points(&config.get("save").unwrap_or_default()),
            snapshot_path(&config),
        )
    };
    if points.is_empty()
        || !state
            .persist
            .save_point_due(&points, crate::persist::changes(store))
    {
        return;
    }
    info!("save point reached: saving in the background");
    if let Err(e) = state.persist.bgsave(store, state.store.clone(), path) {
        warn!("background save not started: {e}");
    }
}

/// Once a second: which silent peers are past `peer-silence-limit-ms` /
/// `-bytes` (they stop holding back collection and trimming; see
/// `replication::silence`). Held bytes: the backlog plus the tombstones.
fn silence_round(state: &ServerState, store: &crate::store::Store) {
    if state.repl.peers.is_empty() {
        return;
    }
    let limits = {
        let config = state.config.read();
        let read = |name: &str| {
            config
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        crate::replication::silence::SilenceLimits {
            ms: read("peer-silence-limit-ms"),
            bytes: read("peer-silence-limit-bytes"),
        }
    };
    let held = (store.delta_log().bytes() + store.tombstone_bytes()) as u64;
    crate::replication::silence::update(
        &state.repl,
        limits,
        held,
        crate::replication::silence::now_ms(),
    );
}

async fn housekeeping_loop(state: Arc<ServerState>, shutdown: CancellationToken) {
    let mut rounds: u64 = 0;
    let mut last_replica_ping = std::time::Instant::now();
    loop {
        let hz = state.config.read().hz.max(1);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(1000 / hz as u64)) => {}
        }
        rounds += 1;
        // A script past busy-reply-threshold holds the store: skip the
        // round rather than stall the thread that answers BUSY.
        let Some(mut store) = session::store_unless_busy(&state) else {
            continue;
        };
        let started = std::time::Instant::now();
        store.active_expire_cycle(400);
        let ms = started.elapsed().as_millis() as u64;
        store.introspection.note_latency(&state, "expire-cycle", ms);
        if store.has_maxmemory() {
            crate::commands::maxmemory::evict_round(&mut store, &state.repl);
        }
        if store.record_removals {
            crate::commands::propagate::send_removals(&mut store, &state.replica_feeds);
        }
        if !state.replica_feeds.is_empty() {
            // Redis pings its replicas every `repl-ping-replica-period`
            // seconds, so an idle stream is not taken for a dead one.
            let period = state
                .config
                .read()
                .get("repl-ping-replica-period")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(10)
                .max(1);
            if last_replica_ping.elapsed() >= Duration::from_secs(period) {
                state.replica_feeds.ping();
                last_replica_ping = std::time::Instant::now();
            }
        }
        if rounds.is_multiple_of(hz as u64) {
            silence_round(&state, &store);
            let stability = state.repl.stability(store.version_vector());
            store.collect_garbage_with(&stability);
            let through = state.repl.trim_point(store.last_seq());
            store.delta_log_mut().trim_through(through);
            save_point_round(&state, &mut store);
            aof_round(&state, &store);
        }
    }
}
