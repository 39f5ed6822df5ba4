//! One client connection's task: it performs the [`Step`]s its
//! [`ClientSession`] asks for (`super::session` decides what a client does
//! next, without I/O) and only moves bytes: reads into the session's input,
//! writes its replies with one flush per step, waits on timers, wake-ups
//! and peers' acks without holding the store. It enforces the per-client
//! limits the session computes: query buffer cap, idle `timeout`, and the
//! request deadline (a request that never completes is cut off).
//!
//! Every wait (read, park, WAIT, sleep, pause, a slow write) also waits on
//! the client's attention signal (`ClientInfo::attention`): a CLIENT KILL
//! ends the task there, a CLIENT UNBLOCK ends a blocking wait, and data
//! pushed to a MONITOR client's queue is written as it comes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::session::{ClientSession, Step, Unparked};
use crate::commands::{ClientInfo, ClientState, ServerState};

/// How much pushed data (MONITOR lines) one write takes from the queue;
/// the rest stays queued and counted against the queue's limit.
const PUSH_CHUNK: usize = 64 * 1024;

/// Removes the client from the registry however the task ends.
struct Registration<'a> {
    state: &'a ServerState,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.state.clients.remove(&self.id);
        if self.state.blocked.lock().holds(self.id) {
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
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        info.fd.store(socket.as_raw_fd() as i64, Ordering::Relaxed);
    }
    state.clients.insert(id, info.clone());
    info
}

/// A client's byte stream: a TCP socket, or a TLS stream over one.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for S {}

/// Serves a client already registered by [`admit`]; removes it from the
/// registry when the connection ends.
pub async fn serve_admitted<S: ClientStream>(
    mut socket: S,
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
    let info = session.client.info.clone();
    loop {
        let step = session.next_step(Instant::now());
        if flush(&mut socket, session, &state, &info).await.is_err() {
            return;
        }
        if info.is_killed() {
            debug!(client = id, "closing: killed");
            return;
        }
        match step {
            Step::Read { wait } => {
                match read_some(&mut socket, session, wait, &shutdown, &info).await {
                    ReadOutcome::Data(n) => {
                        count_input(&state, n);
                        session.on_read(n, Instant::now());
                    }
                    ReadOutcome::Attention => {}
                    ReadOutcome::Idle => session.on_idle(Instant::now()),
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
                let until = tokio::time::Instant::now() + duration;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        _ = shutdown.cancelled() => return,
                        _ = info.attention.notified() => {
                            if info.is_killed() {
                                return;
                            }
                        }
                    }
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
                let wait = state.repl.wait_acked(numpeers, seq, timeout);
                tokio::pin!(wait);
                if let Some(how) = info.take_unblock() {
                    session.on_peers_unblocked(how, state.repl.acked_count(seq));
                    continue;
                }
                loop {
                    tokio::select! {
                        n = &mut wait => {
                            session.on_peers_acked(n);
                            break;
                        }
                        _ = shutdown.cancelled() => return,
                        _ = info.attention.notified() => {
                            if info.is_killed() {
                                return;
                            }
                            if let Some(how) = info.take_unblock() {
                                session.on_peers_unblocked(how, state.repl.acked_count(seq));
                                break;
                            }
                        }
                    }
                }
            }
            Step::Paused { until, generation } => {
                state.paused_clients.fetch_add(1, Ordering::Relaxed);
                let outcome =
                    wait_paused(&mut socket, session, &state, until, generation, &shutdown).await;
                state.paused_clients.fetch_sub(1, Ordering::Relaxed);
                if !outcome {
                    return;
                }
            }
            Step::Close(reason) => {
                let _ = flush(&mut socket, session, &state, &info).await;
                debug!(client = id, "closing: {reason:?}");
                return;
            }
        }
    }
}

/// Writes the session's replies, then (a MONITOR client) its queued
/// pushes, chunk by chunk. A write the client does not take is abandoned
/// when the client is killed or its queue overflows.
async fn flush<S: ClientStream>(
    socket: &mut S,
    session: &mut ClientSession<'_>,
    state: &ServerState,
    info: &ClientInfo,
) -> std::io::Result<()> {
    loop {
        if !session.output().is_empty() {
            aof_before_reply(state, info).await?;
        }
        write_out(socket, session.output(), state, info).await?;
        let Some(queue) = session.push_queue().cloned() else {
            return Ok(());
        };
        if queue.overflowed() {
            warn!(
                client = info.id,
                "client cut off: its push queue (MONITOR, Pub/Sub) passed its output limit"
            );
            return Err(std::io::ErrorKind::ConnectionAborted.into());
        }
        if queue.drain_into(session.output(), PUSH_CHUNK) == 0 {
            info.omem.store(0, Ordering::Relaxed);
            return Ok(());
        }
        info.omem.store(queue.queued_bytes(), Ordering::Relaxed);
    }
}

/// Under `appendfsync always`, holds replies back until the append-only
/// file is durable up to every change made before them (by this client or
/// any other it may have read), without the store lock, so one fsync
/// answers every client that wrote meanwhile. A killed client stops
/// waiting. Under the other policies, writes the pending records to the
/// file first (see `Aof::before_reply`).
async fn aof_before_reply(state: &ServerState, info: &ClientInfo) -> std::io::Result<()> {
    let Some(aof) = state.persist.aof() else {
        return Ok(());
    };
    let Some(position) = aof.before_reply() else {
        return Ok(());
    };
    tokio::select! {
        _ = aof.durable_up_to(position) => Ok(()),
        _ = async {
            loop {
                info.attention.notified().await;
                if info.is_killed() {
                    break;
                }
            }
        } => Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
}

/// Waits out CLIENT PAUSE without the store lock, buffering what the
/// client sends. `false`: the client went away or the server is stopping.
async fn wait_paused<S: ClientStream>(
    socket: &mut S,
    session: &mut ClientSession<'_>,
    state: &ServerState,
    until: Instant,
    generation: u64,
    shutdown: &CancellationToken,
) -> bool {
    let mut changes = state.pause_changes.subscribe();
    if *changes.borrow_and_update() != generation {
        return true;
    }
    let info = session.client.info.clone();
    let expiry = tokio::time::sleep_until(until.into());
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = &mut expiry => return true,
            _ = changes.changed() => return true,
            _ = shutdown.cancelled() => return false,
            _ = info.attention.notified() => {
                if info.is_killed() {
                    return false;
                }
                if session.push_queue().is_some() {
                    return true; // write the pushes, then ask again
                }
            }
            read = socket.read_buf(session.input()) => match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    count_input(state, n);
                    session.on_read(n, Instant::now());
                    if session.input_over_limit() {
                        return false;
                    }
                }
            },
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
async fn wait_unparked<S: ClientStream>(
    socket: &mut S,
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
    let info = session.client.info.clone();
    if let Some(how) = info.take_unblock() {
        return Some(Unparked::Unblocked(how));
    }
    loop {
        tokio::select! {
            _ = &mut woken => return Some(Unparked::Woken),
            _ = &mut expiry => return Some(Unparked::TimedOut),
            _ = shutdown.cancelled() => return None,
            _ = info.attention.notified() => {
                if info.is_killed() {
                    return None;
                }
                if let Some(how) = info.take_unblock() {
                    return Some(Unparked::Unblocked(how));
                }
            }
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
    /// The attention signal fired (a kill, pushed data): look again.
    Attention,
    /// The client has been idle long enough to trim its query buffer.
    Idle,
    Closed,
    TimedOut,
    Shutdown,
}

async fn read_some<S: ClientStream>(
    socket: &mut S,
    session: &mut ClientSession<'_>,
    wait: Option<Duration>,
    shutdown: &CancellationToken,
    info: &ClientInfo,
) -> ReadOutcome {
    let trim = session.idle_trim_in(Instant::now());
    let idle = async {
        match trim {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    let input = session.input();
    let read = async {
        match wait {
            Some(w) => tokio::time::timeout(w, socket.read_buf(input)).await.ok(),
            None => Some(socket.read_buf(input).await),
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => ReadOutcome::Shutdown,
        _ = info.attention.notified() => ReadOutcome::Attention,
        _ = idle => ReadOutcome::Idle,
        result = read => match result {
            None => ReadOutcome::TimedOut,
            Some(Ok(0)) | Some(Err(_)) => ReadOutcome::Closed,
            Some(Ok(n)) => ReadOutcome::Data(n),
        },
    }
}

/// Writes `output` out; gives up (an error) when the client is killed
/// meanwhile. Each `write` is cancel-safe, so the attention signal can
/// interrupt a write the client does not take.
async fn write_out<S: ClientStream>(
    socket: &mut S,
    output: &mut BytesMut,
    state: &ServerState,
    info: &ClientInfo,
) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    state
        .stats
        .total_net_output_bytes
        .fetch_add(output.len() as u64, Ordering::Relaxed);
    while !output.is_empty() {
        tokio::select! {
            written = socket.write(output) => {
                let n = written?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                output.advance(n);
            }
            _ = info.attention.notified() => {
                // Pushed data is drained after this write, an unblock is
                // looked at when the next wait starts.
                if info.is_killed() {
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
            }
        }
    }
    output.clear();
    // A TLS stream may hold encrypted bytes back until flushed (a no-op
    // for TCP).
    loop {
        tokio::select! {
            flushed = socket.flush() => return flushed,
            _ = info.attention.notified() => {
                if info.is_killed() {
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
            }
        }
    }
}
