//! One client connection's task: it performs the [`Step`]s its
//! [`ClientSession`] asks for (`super::session` decides what a client does
//! next, without I/O) and only moves bytes: reads into the session's input,
//! writes its replies with one flush per step, waits on timers, wake-ups
//! and peers' acks without holding the store. It enforces the per-client
//! limits the session computes: query buffer cap, idle `timeout`, and the
//! request deadline (a request that never completes is cut off).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::session::{ClientSession, Step, Unparked};
use crate::commands::{ClientInfo, ClientState, ServerState};

/// Removes the client from the registry however the task ends.
struct Registration<'a> {
    state: &'a ServerState,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.state.clients.remove(&self.id);
        if self.state.blocked.lock().contains(self.id) {
            self.state
                .unblock_client(&mut self.state.store.lock(), self.id);
        }
    }
}

/// Releases the session's WATCHes however the task ends.
struct ReleaseWatches<'s, 'a> {
    session: &'s mut ClientSession<'a>,
    state: &'a ServerState,
}

impl Drop for ReleaseWatches<'_, '_> {
    fn drop(&mut self) {
        let client = &mut self.session.client;
        if !client.watching.is_empty() {
            let mut store = self.state.store.lock();
            client.release_watches(&mut store);
        }
    }
}

/// Puts a new client in the registry. The accept loop calls this before
/// spawning the connection task, so `maxclients` counts a client from the
/// moment it is accepted (a burst of connects cannot all slip past the
/// check before their tasks first run).
pub fn admit(socket: &TcpStream, peer: SocketAddr, state: &ServerState) -> Arc<ClientInfo> {
    let id = state.next_client_id.fetch_add(1, Ordering::Relaxed);
    let local = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let info = Arc::new(ClientInfo::new(id, peer.to_string(), local));
    state.clients.insert(id, info.clone());
    info
}

/// Serves a client already registered by [`admit`]; removes it from the
/// registry when the connection ends.
pub async fn serve_admitted(
    mut socket: TcpStream,
    info: Arc<ClientInfo>,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
) {
    let id = info.id;
    let _registration = Registration { state: &state, id };
    let client = ClientState::new(info, !state.requires_auth());
    let mut session = ClientSession::new(&state, client, Instant::now());
    let guard = ReleaseWatches {
        session: &mut session,
        state: &state,
    };
    let session = &mut *guard.session;
    loop {
        let step = session.next_step(Instant::now());
        if write_out(&mut socket, session.output(), &state)
            .await
            .is_err()
        {
            return;
        }
        match step {
            Step::Read { wait } => {
                match read_some(&mut socket, session.input(), wait, &shutdown).await {
                    ReadOutcome::Data(n) => {
                        count_input(&state, n);
                        session.on_read(n, Instant::now());
                    }
                    ReadOutcome::Closed | ReadOutcome::Shutdown => return,
                    ReadOutcome::TimedOut => {
                        debug!(
                            client = id,
                            "closing: idle timeout or request deadline passed"
                        );
                        return;
                    }
                }
            }
            Step::Sleep(duration) => {
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            Step::WaitKeys { deadline } => {
                let Some(how) =
                    wait_unparked(&mut socket, session, &state, deadline, &shutdown).await
                else {
                    return;
                };
                session.on_unparked(how);
            }
            Step::WaitPeers {
                numpeers,
                seq,
                timeout,
            } => {
                let acked = tokio::select! {
                    n = state.repl.wait_acked(numpeers, seq, timeout) => n,
                    _ = shutdown.cancelled() => return,
                };
                session.on_peers_acked(acked);
            }
            Step::Close(reason) => {
                let _ = write_out(&mut socket, session.output(), &state).await;
                debug!(client = id, "closing: {reason:?}");
                return;
            }
        }
    }
}

fn count_input(state: &ServerState, n: usize) {
    state
        .stats
        .total_net_input_bytes
        .fetch_add(n as u64, Ordering::Relaxed);
}

/// Waits, without the store lock, for a parked client's wake-up or
/// deadline. Bytes the client sends meanwhile are buffered (they run after
/// the parked command, as in Redis). `None`: the client disconnected, sent
/// more than the query buffer limit, or the server is shutting down.
async fn wait_unparked(
    socket: &mut TcpStream,
    session: &mut ClientSession<'_>,
    state: &ServerState,
    deadline: Option<Instant>,
    shutdown: &CancellationToken,
) -> Option<Unparked> {
    let Some(wake) = state.blocked.lock().waker(session.client.info.id) else {
        return Some(Unparked::Woken);
    };
    let expiry = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    let woken = wake.notified();
    tokio::pin!(woken);
    loop {
        tokio::select! {
            _ = &mut woken => return Some(Unparked::Woken),
            _ = &mut expiry => return Some(Unparked::TimedOut),
            _ = shutdown.cancelled() => return None,
            read = socket.read_buf(session.input()) => match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    count_input(state, n);
                    session.on_read(n, Instant::now());
                    if session.input_over_limit() {
                        return None;
                    }
                }
            },
        }
    }
}

/// Why reading stopped.
enum ReadOutcome {
    /// This many bytes arrived.
    Data(usize),
    Closed,
    TimedOut,
    Shutdown,
}

async fn read_some(
    socket: &mut TcpStream,
    input: &mut BytesMut,
    wait: Option<Duration>,
    shutdown: &CancellationToken,
) -> ReadOutcome {
    let read = async {
        match wait {
            Some(w) => tokio::time::timeout(w, socket.read_buf(input)).await.ok(),
            None => Some(socket.read_buf(input).await),
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => ReadOutcome::Shutdown,
        result = read => match result {
            None => ReadOutcome::TimedOut,
            Some(Ok(0)) | Some(Err(_)) => ReadOutcome::Closed,
            Some(Ok(n)) => ReadOutcome::Data(n),
        },
    }
}

async fn write_out(
    socket: &mut TcpStream,
    output: &mut BytesMut,
    state: &ServerState,
) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    state
        .stats
        .total_net_output_bytes
        .fetch_add(output.len() as u64, Ordering::Relaxed);
    socket.write_all(output).await?;
    output.clear();
    Ok(())
}
