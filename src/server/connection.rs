//! One client connection: read bytes, parse every request already buffered,
//! run the whole batch under a single store lock, write all replies with one
//! flush. Enforces the per-client limits: query buffer cap, idle `timeout`,
//! and the request deadline (a request that never completes is cut off).
//! A framing error gets Redis's `-ERR Protocol error: ...` and closes only
//! this connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::commands::{self, ClientAction, ClientInfo, ClientState, Context, ServerState};
use crate::protocol::{Limits, RequestParser};

/// Initial read buffer size; it grows as large requests need.
const READ_CHUNK: usize = 16 * 1024;

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

/// A client's session state; releases its WATCHes however the task ends.
struct Session<'a> {
    state: &'a ServerState,
    client: ClientState,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if !self.client.watching.is_empty() {
            let mut store = self.state.store.lock();
            self.client.release_watches(&mut store);
        }
    }
}

/// How a blocked client's wait ended.
enum BlockOutcome {
    /// A key it waits on received elements: re-run the command.
    Woken,
    /// The deadline passed: answer without blocking.
    TimedOut,
    /// The client disconnected or the server is shutting down.
    Gone,
}

/// Waits, without the store lock, for a blocked client's wake-up or
/// deadline. Bytes the client sends meanwhile are buffered (they run after
/// the blocking command, as in Redis); a closed socket ends the wait.
async fn wait_unblocked(
    socket: &mut TcpStream,
    input: &mut BytesMut,
    state: &ServerState,
    id: u64,
    deadline: Option<Instant>,
    settings: &ConnSettings,
    shutdown: &CancellationToken,
) -> BlockOutcome {
    let Some(wake) = state.blocked.lock().waker(id) else {
        return BlockOutcome::Woken;
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
        if input.capacity() - input.len() < READ_CHUNK / 4 {
            input.reserve(READ_CHUNK);
        }
        tokio::select! {
            _ = &mut woken => return BlockOutcome::Woken,
            _ = &mut expiry => return BlockOutcome::TimedOut,
            _ = shutdown.cancelled() => return BlockOutcome::Gone,
            read = socket.read_buf(input) => match read {
                Ok(0) | Err(_) => return BlockOutcome::Gone,
                Ok(n) => {
                    state
                        .stats
                        .total_net_input_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if input.len() > settings.query_limit {
                        return BlockOutcome::Gone;
                    }
                }
            },
        }
    }
}

/// Runs the request at the queue's front as if inside a transaction, so a
/// blocking command answers now (its timeout reply) instead of blocking.
fn run_without_blocking(
    state: &ServerState,
    client: &mut ClientState,
    pending: &mut VecDeque<Vec<Bytes>>,
    output: &mut BytesMut,
) {
    let Some(args) = pending.pop_front() else {
        return;
    };
    let saved = std::mem::replace(&mut client.deny_blocking, true);
    let reply = {
        let mut store = state.store.lock();
        let mut ctx = Context {
            store: &mut store,
            client,
            server: state,
        };
        commands::dispatch(&mut ctx, &args)
    };
    client.deny_blocking = saved;
    client.action = None;
    reply.encode(client.resp, output);
    state
        .stats
        .total_commands_processed
        .fetch_add(1, Ordering::Relaxed);
}

/// Why reading stopped.
enum ReadOutcome {
    /// This many bytes arrived.
    Data(usize),
    Closed,
    TimedOut,
    Shutdown,
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
    let mut session = Session {
        state: &state,
        client: ClientState::new(info.clone(), !state.requires_auth()),
    };
    let client = &mut session.client;

    let mut settings = ConnSettings::load(&state);
    let mut parser = RequestParser::new(settings.limits());
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    let mut pending: VecDeque<Vec<Bytes>> = VecDeque::new();
    let mut last_activity = Instant::now();
    // When the oldest incomplete request started arriving.
    let mut partial_since: Option<Instant> = None;
    // The deadline of the blocking command at the queue's front, kept
    // across the re-runs that find nothing again.
    let mut block_deadline: Option<Option<Instant>> = None;
    let mut read_while_blocked = false;

    loop {
        // 1. Parse every complete request already buffered.
        // False when parsing stopped early with bytes left to look at.
        let mut drained = true;
        loop {
            // Until AUTH succeeds, requests are capped small and parsed one
            // at a time, so the caps lift for what follows a good AUTH in
            // the same pipeline (as in Redis).
            parser.set_authenticated(client.authenticated);
            if !client.authenticated && !pending.is_empty() {
                drained = input.is_empty();
                break;
            }
            match parser.next_request(&mut input) {
                Ok(Some(args)) => pending.push_back(args),
                Ok(None) => break,
                Err(protocol_error) => {
                    // Run what came before the bad bytes, then report and close.
                    run_batch(&state, client, &mut pending, &mut output);
                    protocol_error.to_reply().encode(client.resp, &mut output);
                    let _ = write_out(&mut socket, &mut output, &state).await;
                    debug!(
                        client = id,
                        "closing after protocol error: {protocol_error}"
                    );
                    return;
                }
            }
        }
        // A request is under way while bytes are buffered or the parser
        // holds the finished part of a multibulk (its bytes are consumed).
        partial_since = if input.is_empty() && !parser.is_mid_request() {
            None
        } else {
            partial_since.or(Some(Instant::now()))
        };

        // 2. Run them and send all replies at once.
        while !pending.is_empty() {
            if run_batch(&state, client, &mut pending, &mut output) > 0 {
                // The blocked request (if any) completed; a new one starts.
                block_deadline = None;
            }
            if write_out(&mut socket, &mut output, &state).await.is_err() {
                return;
            }
            match client.action.take() {
                Some(ClientAction::Close) => return,
                Some(ClientAction::Sleep(duration)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(duration) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                Some(ClientAction::Block { deadline, .. }) => {
                    // A re-run that blocks again keeps the first deadline.
                    let deadline = *block_deadline.get_or_insert(deadline);
                    let outcome = wait_unblocked(
                        &mut socket,
                        &mut input,
                        &state,
                        id,
                        deadline,
                        &settings,
                        &shutdown,
                    )
                    .await;
                    state.unblock_client(&mut state.store.lock(), id);
                    read_while_blocked = !input.is_empty();
                    match outcome {
                        BlockOutcome::Woken => {}
                        BlockOutcome::TimedOut => {
                            block_deadline = None;
                            run_without_blocking(&state, client, &mut pending, &mut output);
                            if write_out(&mut socket, &mut output, &state).await.is_err() {
                                return;
                            }
                        }
                        BlockOutcome::Gone => return,
                    }
                }
                Some(ClientAction::WaitPeers {
                    numpeers,
                    seq,
                    timeout,
                }) => {
                    let acked = tokio::select! {
                        n = state.repl.wait_acked(numpeers, seq, timeout) => n,
                        _ = shutdown.cancelled() => return,
                    };
                    crate::protocol::Reply::Integer(acked as i64).encode(client.resp, &mut output);
                    if write_out(&mut socket, &mut output, &state).await.is_err() {
                        return;
                    }
                }
                // The dispatcher resolves every park before returning.
                Some(ClientAction::Park(_)) | None => block_deadline = None,
            }
        }
        // Requests that arrived while the client was blocked are already
        // buffered: parse them before reading again.
        if !drained || std::mem::take(&mut read_while_blocked) {
            continue;
        }

        // 3. Read more, within the idle timeout and request deadline.
        if settings.refresh(&state) {
            parser.set_limits(settings.limits());
        }
        if input.len() > settings.query_limit {
            debug!(
                client = id,
                "closing: query buffer over client-query-buffer-limit"
            );
            return;
        }
        let wait = read_deadline(&settings, last_activity, partial_since);
        match read_some(&mut socket, &mut input, wait, &shutdown).await {
            ReadOutcome::Data(n) => {
                last_activity = Instant::now();
                state
                    .stats
                    .total_net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
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
}

/// The settings a connection consults on every loop, copied so the hot
/// path does an uncontended atomic load instead of taking the shared config
/// lock; refreshed when CONFIG SET bumps the epoch.
struct ConnSettings {
    epoch: u64,
    timeout: u64,
    request_deadline: u64,
    query_limit: usize,
    max_bulk_len: usize,
}

impl ConnSettings {
    fn load(state: &ServerState) -> Self {
        let epoch = state.config_epoch.load(Ordering::Acquire);
        let config = state.config.read();
        ConnSettings {
            epoch,
            timeout: config.timeout,
            request_deadline: config.request_deadline,
            query_limit: config.client_query_buffer_limit,
            max_bulk_len: config.proto_max_bulk_len,
        }
    }

    /// Reloads after a config change; true if anything was reloaded.
    fn refresh(&mut self, state: &ServerState) -> bool {
        let changed = state.config_epoch.load(Ordering::Acquire) != self.epoch;
        if changed {
            *self = ConnSettings::load(state);
        }
        changed
    }

    fn limits(&self) -> Limits {
        Limits {
            max_bulk_len: self.max_bulk_len,
            ..Limits::default()
        }
    }
}

/// How long the next read may wait: the nearer of the idle timeout and the
/// deadline of a half-received request (`None` = forever).
fn read_deadline(
    settings: &ConnSettings,
    last_activity: Instant,
    partial_since: Option<Instant>,
) -> Option<Duration> {
    let idle = (settings.timeout > 0)
        .then(|| Duration::from_secs(settings.timeout).saturating_sub(last_activity.elapsed()));
    let partial = partial_since
        .filter(|_| settings.request_deadline > 0)
        .map(|since| {
            Duration::from_secs(settings.request_deadline).saturating_sub(since.elapsed())
        });
    match (idle, partial) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn read_some(
    socket: &mut TcpStream,
    input: &mut BytesMut,
    wait: Option<Duration>,
    shutdown: &CancellationToken,
) -> ReadOutcome {
    if input.capacity() - input.len() < READ_CHUNK / 4 {
        input.reserve(READ_CHUNK);
    }
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

/// Runs queued requests under one store lock until the queue is empty or a
/// command asks the connection to act (QUIT, DEBUG SLEEP, a blocking pop
/// that found nothing). Returns how many requests completed.
fn run_batch(
    state: &ServerState,
    client: &mut ClientState,
    pending: &mut VecDeque<Vec<Bytes>>,
    output: &mut BytesMut,
) -> u64 {
    if pending.is_empty() {
        return 0;
    }
    let mut last_args: Option<Vec<Bytes>> = None;
    let (mut commands, mut errors) = (0u64, 0u64);
    {
        let mut store = state.store.lock();
        while let Some(args) = pending.pop_front() {
            let mut ctx = Context {
                store: &mut store,
                client,
                server: state,
            };
            let reply = commands::dispatch(&mut ctx, &args);
            if let Some(ClientAction::Block { keys, .. }) = &client.action {
                // Nothing to pop: register under this same lock (so no push
                // is missed), send nothing, and keep the request to re-run.
                state.block_client(&mut store, client.info.id, client.db, keys.clone());
                pending.push_front(args);
                break;
            }
            commands += 1;
            errors += matches!(reply, crate::protocol::Reply::Error(_)) as u64;
            // WAIT replies after waiting, from the connection loop.
            if !matches!(client.action, Some(ClientAction::WaitPeers { .. })) {
                reply.encode(client.resp, output);
            }
            last_args = Some(args);
            if client.action.is_some() {
                break;
            }
        }
    }
    // Shared counters are touched once per batch, not per command: with
    // many clients on several threads, per-command atomics bounce cache
    // lines between cores.
    if let Some(args) = last_args {
        client.info.touch(commands::display_name(&args));
    }
    let stats = &state.stats;
    stats
        .total_commands_processed
        .fetch_add(commands, Ordering::Relaxed);
    stats
        .total_error_replies
        .fetch_add(errors, Ordering::Relaxed);
    commands
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
