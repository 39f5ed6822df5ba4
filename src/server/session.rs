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
//! - While CLIENT PAUSE is in force, a request it covers (every one for
//!   ALL; for WRITE, a command whose row has the WRITE flag, a
//!   may-replicate one, or EXEC of a queue holding one) is not run: the
//!   session answers [`Step::Paused`], the connection waits without the
//!   store lock, and the request runs once the pause ends. Requests the
//!   dispatcher would refuse (unknown, wrong arity) are answered at once.
//! - CLIENT REPLY OFF/SKIP decide, per command, whether its reply is sent.
//! - After each command, MONITOR clients get its line (not for refused
//!   or queued commands, nor for admin ones, as in Redis).
//! - Pushes (Pub/Sub messages and confirmations, MONITOR lines) queued for
//!   this client before a command's reply is written go out before it.
//! - The query buffer gives memory back as Redis's does: a client idle for
//!   [`IDLE_TRIM`] keeps no spare room at all, and a busy client whose
//!   buffer is more than twice the most it held in the last
//!   [`RESIZE_EVERY`] (and over [`RESIZE_THRESHOLD`]) is cut down to that.
//! - While a script past `busy-reply-threshold` holds the store, requests
//!   are answered without it (`commands::busy_reply`: BUSY, SCRIPT KILL,
//!   FUNCTION KILL/STATS); one that needs the store waits in short sleeps
//!   ([`Step::Sleep`]) rather than on the lock, so the thread keeps
//!   serving the other clients.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::commands::blocking::ParkedRequest;
use crate::commands::context::{client_flags, ReplyMode, UnblockHow, UNBLOCKED_ERROR};
use crate::commands::{self, flags, ClientAction, ClientState, CommandSpec, Context, ServerState};
use crate::protocol::{Limits, ProtocolError, Reply, RequestParser};

/// How long a batch waits for the store before checking whether a script
/// past `busy-reply-threshold` holds it.
const STORE_WAIT_STEP: Duration = Duration::from_millis(5);

/// The store, or `None` while a script past `busy-reply-threshold` holds
/// it (waiting for it then would stall every client this thread serves).
pub(super) fn store_unless_busy(
    state: &ServerState,
) -> Option<parking_lot::MutexGuard<'_, crate::store::Store>> {
    loop {
        if let Some(store) = state.store.try_lock() {
            return Some(store);
        }
        if commands::script_busy(state) {
            return None;
        }
        if let Some(store) = state.store.try_lock_for(STORE_WAIT_STEP) {
            return Some(store);
        }
    }
}

/// How soon a request that must wait for a busy script's end is retried.
const BUSY_RETRY: Duration = Duration::from_millis(10);

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
    /// CLIENT PAUSE holds the request at the queue's front: wait (without
    /// the store, buffering what the client sends) until the pause state
    /// moves past `generation` (UNPAUSE, a new PAUSE) or `until`, then ask
    /// again.
    Paused { until: Instant, generation: u64 },
    /// Write what is left and close.
    Close(CloseReason),
}

/// Why a session asked to close (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    Quit,
    ProtocolError(String),
    QueryBufferLimit,
    /// CLIENT KILL (or SKIPME no) closed this client after its reply.
    Killed,
}

/// How a parked command's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparked {
    /// A key it waits on received elements: run it again.
    Woken,
    /// The deadline passed: run it once more with blocking denied.
    TimedOut,
    /// CLIENT UNBLOCK: as a timeout, or with the UNBLOCKED error.
    Unblocked(UnblockHow),
}

/// Initial buffer size; buffers grow as large requests need.
pub const READ_CHUNK: usize = 16 * 1024;

/// A query buffer with at most this much spare room is left alone.
const RESIZE_MIN_SPARE: usize = 4 * 1024;
/// A busy client's query buffer is cut down only when larger than this
/// (Redis's `PROTO_RESIZE_THRESHOLD`).
const RESIZE_THRESHOLD: usize = 32 * 1024;
/// How often a busy client's query buffer is checked against its peak.
const RESIZE_EVERY: Duration = Duration::from_millis(100);
/// A client that sent nothing for this long keeps no spare query buffer.
pub const IDLE_TRIM: Duration = Duration::from_secs(2);

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
    /// Set by a batch that CLIENT PAUSE stopped.
    paused: Option<Step>,
    /// The query buffer's allocation: the largest room [`Self::input`]
    /// has had since it was last allocated here (CLIENT LIST's `qbuf` +
    /// `qbuf-free`).
    input_alloc: usize,
    /// The most bytes the query buffer held since the last resize check.
    input_peak: usize,
    last_resize: Instant,
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
            paused: None,
            input_alloc: READ_CHUNK,
            input_peak: 0,
            last_resize: now,
        }
    }

    /// Where the connection reads into (with room for one more read; an
    /// idle client's emptied buffer stays unallocated until bytes arrive).
    pub fn input(&mut self) -> &mut BytesMut {
        let trimmed = self.input_alloc == 0 && self.input.is_empty();
        if !trimmed && self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
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
        self.input_alloc = self.input_alloc.max(self.input.capacity());
        self.input_peak = self.input_peak.max(self.input.len());
        if n > 0 {
            self.last_activity = now;
        }
    }

    /// The parked command's wait ended (from a [`Step::WaitKeys`]).
    pub fn on_unparked(&mut self, how: Unparked) {
        let served = self
            .state
            .finish_wait(&mut self.state.store.lock(), self.client.info.id);
        if let Some(served) = served {
            // Served in blocking order by the write that filled a key
            // (`commands::blocking`), even if the deadline passed since.
            self.park_deadline = None;
            self.client.parked_since = None;
            self.pending.pop_front();
            self.client.last_write_seq = self.client.last_write_seq.max(served.last_write_seq);
            emit(&mut self.client, &served.reply, &mut self.output);
            count_commands(
                self.state,
                1,
                matches!(served.reply, Reply::Error(_)) as u64,
            );
            return;
        }
        match how {
            Unparked::Woken => {}
            Unparked::TimedOut | Unparked::Unblocked(UnblockHow::Timeout) => {
                self.park_deadline = None;
                self.run_with_blocking_denied();
            }
            Unparked::Unblocked(UnblockHow::Error) => {
                self.park_deadline = None;
                if self.pending.pop_front().is_some() {
                    let reply = Reply::Error(Bytes::from_static(UNBLOCKED_ERROR.as_bytes()));
                    emit(&mut self.client, &reply, &mut self.output);
                    count_commands(self.state, 1, 1);
                }
            }
        }
    }

    /// WAIT's wait ended with `acked` peers (from a [`Step::WaitPeers`]).
    pub fn on_peers_acked(&mut self, acked: usize) {
        self.end_peer_wait();
        emit(
            &mut self.client,
            &Reply::Integer(acked as i64),
            &mut self.output,
        );
    }

    /// CLIENT UNBLOCK ended WAIT's wait (`acked`: the count at that moment).
    pub fn on_peers_unblocked(&mut self, how: UnblockHow, acked: usize) {
        self.end_peer_wait();
        let reply = match how {
            UnblockHow::Timeout => Reply::Integer(acked as i64),
            UnblockHow::Error => Reply::Error(Bytes::from_static(UNBLOCKED_ERROR.as_bytes())),
        };
        emit(&mut self.client, &reply, &mut self.output);
    }

    fn end_peer_wait(&mut self) {
        if self.client.info.has_flag(client_flags::BLOCKED) {
            self.client.info.set_flag(client_flags::BLOCKED, false);
            self.state
                .waiting_peers_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The MONITOR queue this connection drains, if it is a monitor.
    pub fn push_queue(&self) -> Option<&std::sync::Arc<crate::pubsub::push::PushQueue>> {
        self.client.info.push.get()
    }

    /// Parses and runs whatever can run now, and says what to do next.
    pub fn next_step(&mut self, now: Instant) -> Step {
        loop {
            if let Err(error) = self.parse_buffered() {
                // Run what came before the bad bytes, then report and close.
                self.run_batch(now);
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
            if self.run_batch(now) > 0 {
                // The parked request (if any) completed; a new one starts.
                self.park_deadline = None;
            }
            if let Some(paused) = self.paused.take() {
                return paused;
            }
            match self.client.action.take() {
                Some(ClientAction::Close) => {
                    return Step::Close(
                        if self.client.info.has_flag(client_flags::CLOSE_AFTER_REPLY) {
                            CloseReason::Killed
                        } else {
                            CloseReason::Quit
                        },
                    )
                }
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
                    if !self.client.info.has_flag(client_flags::BLOCKED) {
                        self.client.info.take_unblock();
                        self.client.info.set_flag(client_flags::BLOCKED, true);
                        self.state
                            .waiting_peers_clients
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    return Step::WaitPeers {
                        numpeers,
                        seq,
                        timeout,
                    };
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

    /// How long until this client has been idle for [`IDLE_TRIM`] with
    /// spare query buffer to give back (`None`: nothing to give back); the
    /// connection then calls [`Self::on_idle`].
    pub fn idle_trim_in(&self, now: Instant) -> Option<Duration> {
        (self.input_spare() > RESIZE_MIN_SPARE)
            .then(|| (self.last_activity + IDLE_TRIM).saturating_duration_since(now))
    }

    /// The idle wait from [`Self::idle_trim_in`] passed: frees the query
    /// buffer's spare room if the client is still idle.
    pub fn on_idle(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_activity) >= IDLE_TRIM
            && self.input_spare() > RESIZE_MIN_SPARE
        {
            self.resize_input(self.input.len());
            self.publish_qbuf();
        }
    }

    fn input_spare(&self) -> usize {
        self.input_alloc.saturating_sub(self.input.len())
    }

    /// Moves the unread bytes into a buffer of `size` (at least their
    /// length), freeing the old one.
    fn resize_input(&mut self, size: usize) {
        let size = size.max(self.input.len());
        let mut resized = BytesMut::with_capacity(size);
        resized.extend_from_slice(&self.input);
        self.input = resized;
        self.input_alloc = size;
    }

    /// Every [`RESIZE_EVERY`]: a buffer far larger than what the client
    /// sent lately shrinks back to that (never below one read's room, which
    /// the next read would take again), then the peak starts over.
    fn check_input_size(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_resize) < RESIZE_EVERY {
            return;
        }
        self.last_resize = now;
        let alloc = self.input_alloc;
        let peak = self.input_peak.max(self.input.len());
        if self.input_spare() > RESIZE_MIN_SPARE && alloc > RESIZE_THRESHOLD && alloc / 2 > peak {
            self.resize_input(peak.max(READ_CHUNK));
        }
        self.input_peak = self.input.len();
    }

    /// CLIENT LIST's `qbuf` and `qbuf-free` between commands.
    fn publish_qbuf(&self) {
        let info = &self.client.info;
        info.qbuf.store(self.input.len(), Ordering::Relaxed);
        info.qbuf_free.store(self.input_spare(), Ordering::Relaxed);
    }

    /// Nothing can run: read, within the idle timeout and request deadline.
    fn read_step(&mut self, now: Instant) -> Step {
        self.check_input_size(now);
        self.publish_qbuf();
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

    /// Runs queued requests under one store lock until the queue is empty,
    /// a command asks the connection to act (QUIT, DEBUG SLEEP, a park), or
    /// CLIENT PAUSE holds the next one. Returns how many requests completed.
    fn run_batch(&mut self, now: Instant) -> u64 {
        if self.pending.is_empty() {
            return 0;
        }
        let state = self.state;
        let client = &mut self.client;
        let mut last_args: Option<Vec<Bytes>> = None;
        let (mut commands, mut errors) = (0u64, 0u64);
        {
            let Some(mut store) = store_unless_busy(state) else {
                return self.answer_busy();
            };
            while let Some(args) = self.pending.pop_front() {
                let row = resolve_row(&args);
                if let Some(step) = pause_holds(state, client, row, &args, now) {
                    self.pending.push_front(args);
                    self.paused = Some(step);
                    break;
                }
                let info = &client.info;
                let qbuf = request_len(&args) + self.input.len();
                info.qbuf.store(qbuf, Ordering::Relaxed);
                info.qbuf_free
                    .store(self.input_alloc.saturating_sub(qbuf), Ordering::Relaxed);
                if let Some((top, sub)) = row {
                    info.touch_with(top.name, sub.map(|s| s.name));
                }
                let queues = client.multi.is_some()
                    && row.is_some_and(|(top, _)| top.flags & flags::ALLOW_IN_MULTI == 0);
                let tracking = state.tracking.is_active();
                if tracking {
                    state.tracking.set_current(client.info.id);
                }
                let mut ctx = Context {
                    store: &mut store,
                    client,
                    server: state,
                };
                let reply = commands::dispatch(&mut ctx, &args);
                if tracking {
                    state.tracking.set_current(0);
                }
                if let Some(ClientAction::Block { keys, .. }) = &client.action {
                    // Nothing to pop: register under this same lock (so no
                    // push is missed), send nothing, keep the request to
                    // re-run. A CLIENT UNBLOCK left from an earlier wait
                    // does not count for this one.
                    client.info.take_unblock();
                    let args = client.parked_argv.take().unwrap_or(args);
                    let request = ParkedRequest {
                        argv: args.clone(),
                        info: client.info.clone(),
                        resp: client.resp,
                    };
                    let keys = keys.clone();
                    state.block_client(&mut store, client.info.id, client.db, keys, request);
                    self.pending.push_front(args);
                    break;
                }
                commands += 1;
                let failed = matches!(reply, Reply::Error(_));
                errors += failed as u64;
                if !state.monitors.is_empty() && !queues {
                    feed_monitors(state, client, row, &args);
                }
                // Pushes queued so far (its own confirmations, messages
                // it published to itself) go before its reply, as Redis
                // writes them into the same buffer first.
                if let Some(queue) = client.info.push.get() {
                    queue.drain_into(&mut self.output, usize::MAX);
                }
                // WAIT replies after waiting ([`Self::on_peers_acked`]).
                if !matches!(client.action, Some(ClientAction::WaitPeers { .. })) {
                    emit(client, &reply, &mut self.output);
                }
                if tracking {
                    // Invalidations this command caused for this client
                    // itself follow its reply.
                    state.tracking.release_deferred(client.info.id);
                    if let Some(queue) = client.info.push.get() {
                        queue.drain_into(&mut self.output, usize::MAX);
                    }
                }
                last_args = Some(args);
                if client.action.is_some() {
                    break;
                }
            }
        }
        let info = &client.info;
        info.multi.store(
            client
                .multi
                .as_ref()
                .map_or(-1, |m| m.commands.len() as i64),
            Ordering::Relaxed,
        );
        info.qbuf.store(self.input.len(), Ordering::Relaxed);
        info.qbuf_free.store(
            self.input_alloc.saturating_sub(self.input.len()),
            Ordering::Relaxed,
        );
        if last_args.is_some() {
            info.last_active_ms
                .store(info.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        count_commands(state, commands, errors);
        commands
    }

    /// A script past `busy-reply-threshold` holds the store: answers the
    /// queued requests without it ([`commands::busy_reply`]) until one
    /// must wait for the store, which is retried after a short sleep
    /// (never blocking the thread others are served on).
    fn answer_busy(&mut self) -> u64 {
        let mut answered = 0;
        while let Some(args) = self.pending.front() {
            let Some(reply) = commands::busy_reply(self.state, &mut self.client, args) else {
                self.paused = Some(Step::Sleep(BUSY_RETRY));
                break;
            };
            self.pending.pop_front();
            emit(&mut self.client, &reply, &mut self.output);
            count_commands(self.state, 1, matches!(reply, Reply::Error(_)) as u64);
            answered += 1;
            if self.client.action.is_some() {
                break;
            }
        }
        answered
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
        emit(&mut self.client, &reply, &mut self.output);
        count_commands(self.state, 1, matches!(reply, Reply::Error(_)) as u64);
    }
}

impl Drop for ClientSession<'_> {
    fn drop(&mut self) {
        self.end_peer_wait();
        if let Some(mut subs) = self.client.subscriptions.take() {
            self.state.pubsub.forget(&mut subs, self.client.info.id);
        }
        if self.client.tracking.take().is_some() {
            self.state.tracking.disable(self.client.info.id);
        }
        if self.client.info.has_flag(client_flags::MONITOR) {
            self.state.monitors.remove(self.client.info.id);
        }
        if self.client.info.has_flag(client_flags::REPLICA) {
            self.state.replica_feeds.detach(self.client.info.id);
        }
    }
}

/// Shared counters are touched once per batch, not per command: with many
/// clients on several threads, per-command atomics bounce cache lines
/// between cores.
fn count_commands(state: &ServerState, commands: u64, errors: u64) {
    let stats = &state.stats;
    stats
        .total_commands_processed
        .fetch_add(commands, Ordering::Relaxed);
    stats
        .total_error_replies
        .fetch_add(errors, Ordering::Relaxed);
}

/// Writes `reply` unless CLIENT REPLY (or a silent command) says not to.
fn emit(client: &mut ClientState, reply: &Reply, out: &mut BytesMut) {
    // A client attached with SYNC/PSYNC reads only the stream (Redis
    // never answers a replica's commands either).
    let replica = client.info.has_flag(client_flags::REPLICA);
    let send = if std::mem::take(&mut client.silent) || replica {
        false
    } else {
        match client.reply_mode {
            ReplyMode::On => true,
            ReplyMode::Off => false,
            ReplyMode::SkipNext => {
                client.reply_mode = ReplyMode::Skip;
                false
            }
            ReplyMode::Skip => {
                client.reply_mode = ReplyMode::On;
                false
            }
        }
    };
    if send {
        reply.encode(client.resp, out);
    }
}

/// A request's row as the dispatcher will resolve it: the top-level
/// command and, for a container, the subcommand; `None` when the
/// dispatcher will refuse it (unknown, unknown subcommand, wrong arity).
pub(crate) type Row = (&'static CommandSpec, Option<&'static CommandSpec>);

pub(crate) fn resolve_row(args: &[Bytes]) -> Option<Row> {
    let top = commands::lookup(args.first()?)?;
    let sub = if top.subcommands.is_empty() || args.len() < 2 {
        None
    } else {
        Some(commands::lookup_subcommand(top, &args[1])?)
    };
    sub.unwrap_or(top)
        .arity_ok(args.len())
        .then_some((top, sub))
}

fn may_write(row: Row) -> bool {
    let (top, sub) = row;
    sub.unwrap_or(top).flags & flags::WRITE != 0 || commands::may_replicate(top, sub)
}

/// EVAL, EVALSHA or FCALL of a script flagged `no-writes`: it cannot
/// write, so a write pause does not hold it (Redis takes such a script's
/// command flags from its shebang). An unknown script or function may
/// write, as may a script without a shebang.
fn runs_read_only_script(state: &ServerState, name: &str, args: &[Bytes]) -> bool {
    let Some(target) = args.get(1) else {
        return false;
    };
    let flags = match name {
        "eval" => crate::scripting::parse_shebang(target).ok().map(|(f, _)| f),
        "evalsha" => {
            let sha = String::from_utf8_lossy(target).to_ascii_lowercase();
            state.scripting.lock().script_flags(&sha)
        }
        "fcall" => {
            let function = String::from_utf8_lossy(target);
            // A peer's FUNCTION LOAD may not be compiled here yet: follow the
            // store first when it is free (never wait for it: a running
            // script holds it, and this check must not stall the client).
            let store = state.store.try_lock();
            let mut engine = state.scripting.lock();
            if let Some(store) = &store {
                crate::commands::scripting::follow_store(&mut engine, store, &state.script_status);
            }
            engine.function_flags(&function)
        }
        _ => None,
    };
    flags.is_some_and(|f| {
        f & crate::scripting::flags::NO_WRITES != 0 && f & crate::scripting::flags::EVAL_COMPAT == 0
    })
}

/// Whether CLIENT PAUSE holds this request now; the step to wait with.
fn pause_holds(
    state: &ServerState,
    client: &ClientState,
    row: Option<Row>,
    args: &[Bytes],
    now: Instant,
) -> Option<Step> {
    if !state.pause_set.load(Ordering::Acquire) {
        return None;
    }
    let pause = {
        let guard = state.pause.lock();
        if !guard.active(now) {
            // Expired: later commands skip the lock again.
            state.pause_set.store(false, Ordering::Release);
            return None;
        }
        *guard
    };
    let row = row?;
    let (top, sub) = row;
    if !client.authenticated && sub.unwrap_or(top).flags & flags::NO_AUTH == 0 {
        return None; // refused with NOAUTH at once
    }
    let held = !pause.write_only
        || (may_write(row) && !runs_read_only_script(state, top.name, args))
        || (top.name == "exec"
            && client.multi.as_ref().is_some_and(|m| {
                m.commands.iter().any(|c| {
                    resolve_row(c)
                        .is_some_and(|r| may_write(r) && !runs_read_only_script(state, r.0.name, c))
                })
            }));
    held.then(|| Step::Paused {
        until: pause.until.unwrap_or(now),
        generation: *state.pause_changes.borrow(),
    })
}

/// The size of a request as a RESP multibulk (CLIENT LIST's `qbuf` counts
/// the request being run).
fn request_len(args: &[Bytes]) -> usize {
    fn digits(mut n: usize) -> usize {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    3 + digits(args.len())
        + args
            .iter()
            .map(|a| 1 + digits(a.len()) + 2 + a.len() + 2)
            .sum::<usize>()
}

/// Gives every MONITOR client the line for a command that ran. Refused,
/// admin and `skip_monitor` commands are not shown, as in Redis (EXEC's
/// queued commands and a script's calls were shown as they ran).
fn feed_monitors(state: &ServerState, client: &ClientState, row: Option<Row>, args: &[Bytes]) {
    let Some((top, sub)) = row else {
        return;
    };
    if sub.unwrap_or(top).flags & (flags::ADMIN | flags::SKIP_MONITOR) != 0 {
        return;
    }
    if !client.authenticated && top.flags & flags::NO_AUTH == 0 {
        return;
    }
    let origin = commands::connection::MonitorOrigin::Client(&client.info.addr);
    commands::connection::feed_monitors(state, client.db, origin, args);
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
