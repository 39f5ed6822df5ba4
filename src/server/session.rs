//! What a client connection does next, decided without I/O: a
//! [`ClientSession`] takes the bytes the connection read and the outcome of
//! each wait, parses requests, runs them in batches under one store lock,
//! collects the replies, and answers with the next [`Step`] — read more,
//! sleep, wait for a key or for peers, or close. The connection task
//! (`super::connection`) only performs the steps and moves bytes, as the
//! peer link's state machine does for replication.
//!
//! Rules it keeps:
//! - Every request already buffered is parsed and run before the next read,
//!   and all their replies leave with one write (pipelining).
//! - Until AUTH succeeds, requests are parsed one at a time with small
//!   caps, so the caps lift for what follows a good AUTH in one pipeline.
//! - A parked command (a blocking pop that found nothing) holds the queue:
//!   requests sent after it run only once it is served or times out, as in
//!   Redis. A re-run that finds nothing again keeps the first deadline; at
//!   the deadline it runs once more with blocking denied (its timeout
//!   reply).
//! - A framing error answers Redis's protocol error after the replies of
//!   the requests before it, and closes only this connection.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::commands::{self, ClientAction, ClientState, Context, ServerState};
use crate::protocol::{Limits, ProtocolError, Reply, RequestParser};

/// What the connection must do next. Before every step it writes out
/// whatever replies [`ClientSession::output`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read more bytes into [`ClientSession::input`], waiting at most
    /// `wait` (`None`: forever); report them with
    /// [`ClientSession::on_read`]. Running out of time closes the client
    /// (idle `timeout`, or the deadline of a half-sent request).
    Read { wait: Option<Duration> },
    /// Pause (DEBUG SLEEP) without holding the store, then ask again.
    Sleep(Duration),
    /// The command at the queue's front is parked on keys: wait for its
    /// wake-up or `deadline`, buffering what the client sends meanwhile,
    /// and report with [`ClientSession::on_unparked`].
    WaitKeys { deadline: Option<Instant> },
    /// WAIT: wait until `numpeers` peers acked `seq` or `timeout`, and
    /// report how many did with [`ClientSession::on_peers_acked`].
    WaitPeers {
        numpeers: usize,
        seq: u64,
        timeout: Option<Duration>,
    },
    /// Write what is left and close.
    Close(CloseReason),
}

/// Why a session asked to close (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    Quit,
    ProtocolError(String),
    QueryBufferLimit,
}

/// How a parked command's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparked {
    /// A key it waits on received elements: run it again.
    Woken,
    /// The deadline passed: run it once more with blocking denied.
    TimedOut,
}

/// Initial buffer size; buffers grow as large requests need.
pub const READ_CHUNK: usize = 16 * 1024;

/// One client's protocol state: buffers, parser, the queue of parsed
/// requests, and the timers the next read depends on.
pub struct ClientSession<'a> {
    state: &'a ServerState,
    pub client: ClientState,
    settings: ConnSettings,
    parser: RequestParser,
    input: BytesMut,
    output: BytesMut,
    pending: VecDeque<Vec<Bytes>>,
    last_activity: Instant,
    /// When the oldest incomplete request started arriving.
    partial_since: Option<Instant>,
    /// The deadline of the parked command at the queue's front, kept
    /// across the re-runs that find nothing again.
    park_deadline: Option<Option<Instant>>,
}

impl<'a> ClientSession<'a> {
    pub fn new(state: &'a ServerState, client: ClientState, now: Instant) -> Self {
        let settings = ConnSettings::load(state);
        ClientSession {
            state,
            client,
            parser: RequestParser::new(settings.limits()),
            settings,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: BytesMut::with_capacity(READ_CHUNK),
            pending: VecDeque::new(),
            last_activity: now,
            partial_since: None,
            park_deadline: None,
        }
    }

    /// Where the connection reads into (with room for one more read).
    pub fn input(&mut self) -> &mut BytesMut {
        if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
            self.input.reserve(READ_CHUNK);
        }
        &mut self.input
    }

    /// Replies to send before the next step; the connection clears it once
    /// written.
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.output
    }

    /// Whether what the client sent while parked already exceeds the query
    /// buffer limit (the connection then drops it).
    pub fn input_over_limit(&self) -> bool {
        self.input.len() > self.settings.query_limit
    }

    /// `n` bytes arrived at `now` (from a [`Step::Read`]).
    pub fn on_read(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.last_activity = now;
        }
    }

    /// The parked command's wait ended (from a [`Step::WaitKeys`]).
    pub fn on_unparked(&mut self, how: Unparked) {
        self.state
            .unblock_client(&mut self.state.store.lock(), self.client.info.id);
        if how == Unparked::TimedOut {
            self.park_deadline = None;
            self.run_with_blocking_denied();
        }
    }

    /// WAIT's wait ended with `acked` peers (from a [`Step::WaitPeers`]).
    pub fn on_peers_acked(&mut self, acked: usize) {
        Reply::Integer(acked as i64).encode(self.client.resp, &mut self.output);
    }

    /// Parses and runs whatever can run now, and says what to do next.
    pub fn next_step(&mut self, now: Instant) -> Step {
        loop {
            if let Err(error) = self.parse_buffered() {
                // Run what came before the bad bytes, then report and close.
                self.run_batch();
                error.to_reply().encode(self.client.resp, &mut self.output);
                return Step::Close(CloseReason::ProtocolError(error.to_string()));
            }
            self.partial_since = if self.input.is_empty() && !self.parser.is_mid_request() {
                None
            } else {
                self.partial_since.or(Some(now))
            };
            if self.pending.is_empty() {
                return self.read_step(now);
            }
            if self.run_batch() > 0 {
                // The parked request (if any) completed; a new one starts.
                self.park_deadline = None;
            }
            match self.client.action.take() {
                Some(ClientAction::Close) => return Step::Close(CloseReason::Quit),
                Some(ClientAction::Sleep(duration)) => return Step::Sleep(duration),
                Some(ClientAction::Block { deadline, .. }) => {
                    // A re-run that parks again keeps the first deadline.
                    let deadline = *self.park_deadline.get_or_insert(deadline);
                    return Step::WaitKeys { deadline };
                }
                Some(ClientAction::WaitPeers {
                    numpeers,
                    seq,
                    timeout,
                }) => {
                    return Step::WaitPeers {
                        numpeers,
                        seq,
                        timeout,
                    }
                }
                // The dispatcher resolves every park before returning.
                Some(ClientAction::Park(_)) | None => self.park_deadline = None,
            }
        }
    }

    /// Moves every complete request buffered into the queue (one at a time
    /// before AUTH).
    fn parse_buffered(&mut self) -> Result<(), ProtocolError> {
        loop {
            self.parser.set_authenticated(self.client.authenticated);
            if !self.client.authenticated && !self.pending.is_empty() {
                return Ok(());
            }
            match self.parser.next_request(&mut self.input) {
                Ok(Some(args)) => self.pending.push_back(args),
                Ok(None) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }

    /// Nothing can run: read, within the idle timeout and request deadline.
    fn read_step(&mut self, now: Instant) -> Step {
        if self.settings.refresh(self.state) {
            self.parser.set_limits(self.settings.limits());
        }
        if self.input_over_limit() {
            return Step::Close(CloseReason::QueryBufferLimit);
        }
        Step::Read {
            wait: self.read_deadline(now),
        }
    }

    /// How long the next read may wait: the nearer of the idle timeout and
    /// the deadline of a half-received request (`None` = forever).
    fn read_deadline(&self, now: Instant) -> Option<Duration> {
        let settings = &self.settings;
        let since = |start: Instant| now.saturating_duration_since(start);
        let idle = (settings.timeout > 0).then(|| {
            Duration::from_secs(settings.timeout).saturating_sub(since(self.last_activity))
        });
        let partial = self
            .partial_since
            .filter(|_| settings.request_deadline > 0)
            .map(|start| {
                Duration::from_secs(settings.request_deadline).saturating_sub(since(start))
            });
        match (idle, partial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs queued requests under one store lock until the queue is empty
    /// or a command asks the connection to act (QUIT, DEBUG SLEEP, a park).
    /// Returns how many requests completed.
    fn run_batch(&mut self) -> u64 {
        if self.pending.is_empty() {
            return 0;
        }
        let state = self.state;
        let client = &mut self.client;
        let mut last_args: Option<Vec<Bytes>> = None;
        let (mut commands, mut errors) = (0u64, 0u64);
        {
            let mut store = state.store.lock();
            while let Some(args) = self.pending.pop_front() {
                let mut ctx = Context {
                    store: &mut store,
                    client,
                    server: state,
                };
                let reply = commands::dispatch(&mut ctx, &args);
                if let Some(ClientAction::Block { keys, .. }) = &client.action {
                    // Nothing to pop: register under this same lock (so no
                    // push is missed), send nothing, keep the request to
                    // re-run.
                    state.block_client(&mut store, client.info.id, client.db, keys.clone());
                    self.pending.push_front(args);
                    break;
                }
                commands += 1;
                errors += matches!(reply, Reply::Error(_)) as u64;
                // WAIT replies after waiting ([`Self::on_peers_acked`]).
                if !matches!(client.action, Some(ClientAction::WaitPeers { .. })) {
                    reply.encode(client.resp, &mut self.output);
                }
                last_args = Some(args);
                if client.action.is_some() {
                    break;
                }
            }
        }
        // Shared counters are touched once per batch, not per command:
        // with many clients on several threads, per-command atomics bounce
        // cache lines between cores.
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

    /// Runs the request at the queue's front with blocking denied, so a
    /// parked command gives its timeout reply now.
    fn run_with_blocking_denied(&mut self) {
        let Some(args) = self.pending.pop_front() else {
            return;
        };
        let saved = std::mem::replace(&mut self.client.deny_blocking, true);
        let reply = {
            let mut store = self.state.store.lock();
            let mut ctx = Context {
                store: &mut store,
                client: &mut self.client,
                server: self.state,
            };
            commands::dispatch(&mut ctx, &args)
        };
        self.client.deny_blocking = saved;
        self.client.action = None;
        reply.encode(self.client.resp, &mut self.output);
        self.state
            .stats
            .total_commands_processed
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The settings a connection consults on every step, copied so the hot
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

#[cfg(test)]
mod tests;
