//! The network side of a node: binding the client port, the accept loop with
//! `maxclients`, one task per connection (see [`connection`]), the periodic
//! housekeeping task (active expiry, tombstone collection), and graceful
//! shutdown. Nothing here knows CRDT internals; commands run through
//! [`crate::commands::dispatch`].

pub mod connection;

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

/// A running node: its address, shared state, and a way to stop it.
pub struct ServerHandle {
    pub local_addr: SocketAddr,
    pub state: Arc<ServerState>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops accepting, tells every connection to finish its current batch
    /// and close, and waits for the tasks (bounded).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // Give connection tasks a moment to flush and drop.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.state.clients.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Picks the replica id: configured, or random (and printed by the caller).
pub fn choose_replica_id(config: &Config) -> ReplicaId {
    ReplicaId(
        config
            .replica_id
            .unwrap_or_else(|| rand::random::<u64>() | 1),
    )
}

/// Binds the client port and starts serving. Must be called inside a tokio
/// runtime.
pub async fn start(config: Config, config_file: Option<String>) -> std::io::Result<ServerHandle> {
    let replica = choose_replica_id(&config);
    let listener = TcpListener::bind((config.bind.as_str(), config.port)).await?;
    let local_addr = listener.local_addr()?;
    let state = ServerState::new(config, replica, config_file);
    state
        .bound_port
        .store(local_addr.port() as u64, Ordering::Relaxed);
    let shutdown = CancellationToken::new();
    let accept = tokio::spawn(accept_loop(listener, state.clone(), shutdown.clone()));
    let housekeeping = tokio::spawn(housekeeping_loop(state.clone(), shutdown.clone()));
    Ok(ServerHandle {
        local_addr,
        state,
        shutdown,
        tasks: vec![accept, housekeeping],
    })
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>, shutdown: CancellationToken) {
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
        tokio::spawn(connection::serve_admitted(
            socket,
            info,
            state.clone(),
            shutdown.clone(),
        ));
    }
    info!("accept loop stopped");
}

/// Tells a client over the limit why, then closes (Redis's exact text).
async fn reject(mut socket: TcpStream) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.write_all(b"-ERR max number of clients reached\r\n"),
    )
    .await;
}

/// Active expiry `hz` times a second and tombstone collection once a second.
/// Each round holds the store lock only for a bounded amount of work.
async fn housekeeping_loop(state: Arc<ServerState>, shutdown: CancellationToken) {
    let mut rounds: u64 = 0;
    loop {
        let hz = state.config.read().hz.max(1);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(1000 / hz as u64)) => {}
        }
        rounds += 1;
        let mut store = state.store.lock();
        store.active_expire_cycle(400);
        if rounds.is_multiple_of(hz as u64) {
            store.collect_garbage();
        }
    }
}
