//! The tokio side of replication: the peer listener, one dialing task per
//! configured peer (reconnecting with exponential backoff and jitter), and
//! the driver that moves frames between a socket and a [`PeerLink`]. The
//! driver locks the store only around calls into the link, never across
//! an await; every read and write has a deadline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::auth::Side;
use super::codec::{self, Msg};
use super::link::{LinkSettings, Out, PeerLink, Phase};
use super::status::{InboundInfo, ReplStatus};
use crate::store::{unix_ms, Store};

/// Authenticated inbound links allowed at once (peers are 2–16; the rest
/// is headroom for reconnects).
const MAX_INBOUND: usize = 64;

/// Unauthenticated inbound connections allowed at once. A connection past
/// this evicts the oldest pending one, and each must prove the secret
/// within the handshake timeout, so strangers holding connections open
/// cannot keep a peer out: its connection is the newest, and finishes its
/// handshake in a round trip.
const MAX_PENDING_HANDSHAKES: usize = 16;

/// Inbound connections that have not proved the secret yet, oldest first,
/// each with the token that evicts it.
#[derive(Default)]
struct PendingHandshakes {
    queue: Mutex<VecDeque<(u64, CancellationToken)>>,
}

impl PendingHandshakes {
    /// Registers connection `id`; returns its eviction token and whether
    /// an older pending connection was evicted to make room.
    fn admit(&self, id: u64) -> (CancellationToken, bool) {
        let token = CancellationToken::new();
        let mut queue = self.queue.lock();
        let evicted = if queue.len() >= MAX_PENDING_HANDSHAKES {
            queue
                .pop_front()
                .map(|(_, oldest)| oldest.cancel())
                .is_some()
        } else {
            false
        };
        queue.push_back((id, token.clone()));
        (token, evicted)
    }

    /// Connection `id` authenticated or closed.
    fn leave(&self, id: u64) {
        self.queue.lock().retain(|(pending, _)| *pending != id);
    }
}

/// At most one log line per second for a repeated event; the lines in
/// between are counted and reported with the next one, so a flood of bad
/// connections cannot flood the log.
struct LogThrottle {
    state: Mutex<(Option<std::time::Instant>, u64)>,
}

impl LogThrottle {
    const EVERY: Duration = Duration::from_secs(1);

    fn new() -> Self {
        LogThrottle {
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when a line may be written now (`n` = lines suppressed
    /// since the last one), `None` when this one is suppressed.
    fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock();
        let now = std::time::Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < Self::EVERY => {
                state.1 += 1;
                None
            }
            _ => {
                state.0 = Some(now);
                Some(std::mem::take(&mut state.1))
            }
        }
    }
}

/// A hook run on the locked store after remote changes were applied.
pub type AfterApply = Arc<dyn Fn(&mut Store) + Send + Sync>;

/// Everything the replication tasks share.
pub struct Shared {
    pub store: Arc<Mutex<Store>>,
    pub status: Arc<ReplStatus>,
    pub settings: LinkSettings,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub shutdown: CancellationToken,
    /// Run with the store still locked after a peer's message was applied
    /// (the server wakes clients blocked on lists that received elements).
    pub after_apply: Option<AfterApply>,
    /// TLS under the handshake, when `tls-replication` is on.
    pub tls: Option<super::tls::PeerTls>,
    inbound_count: AtomicUsize,
    pending: PendingHandshakes,
    refusal_log: LogThrottle,
    next_link: AtomicU64,
}

impl Shared {
    pub fn new(
        store: Arc<Mutex<Store>>,
        status: Arc<ReplStatus>,
        settings: LinkSettings,
        shutdown: CancellationToken,
    ) -> Shared {
        Shared {
            store,
            status,
            settings,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            shutdown,
            after_apply: None,
            inbound_count: AtomicUsize::new(0),
            pending: PendingHandshakes::default(),
            refusal_log: LogThrottle::new(),
            tls: None,
            next_link: AtomicU64::new(1),
        }
    }
}

/// Exponential backoff with full jitter between `min` and the current cap.
struct Backoff {
    min: Duration,
    max: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, cap: min }
    }

    fn next(&mut self) -> Duration {
        let cap = self.cap;
        self.cap = (self.cap * 2).min(self.max);
        let lo = self.min.as_millis() as u64;
        let hi = (cap.as_millis() as u64).max(lo + 1);
        Duration::from_millis(rand::thread_rng().gen_range(lo..=hi))
    }

    fn reset(&mut self) {
        self.cap = self.min;
    }
}

/// Accepts peer connections until shutdown.
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (socket, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!("peer accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let id = shared.next_link.fetch_add(1, Ordering::Relaxed);
        let (evict, evicted_older) = shared.pending.admit(id);
        if evicted_older {
            shared
                .status
                .handshakes_evicted
                .fetch_add(1, Ordering::Relaxed);
        }
        tokio::spawn(async move {
            shared.status.inbound.lock().push((
                id,
                InboundInfo {
                    remote: remote.to_string(),
                    state: "handshake",
                    ..InboundInfo::default()
                },
            ));
            let slot = Slot::Inbound(id);
            let _ = socket.set_nodelay(true);
            match shared.tls.clone() {
                None => {
                    run_link(
                        socket,
                        Some(remote),
                        Side::Acceptor,
                        slot,
                        Some(evict),
                        &shared,
                    )
                    .await;
                }
                Some(tls) => {
                    // The TLS handshake counts against the same deadline
                    // and eviction as the secret's.
                    let deadline =
                        Duration::from_millis(shared.settings.handshake_timeout_ms.max(1));
                    let accepted = tokio::select! {
                        _ = evict.cancelled() => Err("evicted by newer connections".to_string()),
                        a = tokio::time::timeout(deadline, tls.acceptor.accept(socket)) => match a {
                            Ok(Ok(stream)) => Ok(stream),
                            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                            Err(_) => Err("TLS handshake timed out".to_string()),
                        },
                    };
                    match accepted {
                        Ok(stream) => {
                            run_link(
                                stream,
                                Some(remote),
                                Side::Acceptor,
                                slot,
                                Some(evict),
                                &shared,
                            )
                            .await;
                        }
                        Err(reason) => refused(&shared, true, "", Some(remote), &reason),
                    }
                }
            }
            shared.pending.leave(id);
            shared.status.inbound.lock().retain(|(i, _)| *i != id);
        });
    }
}

/// Keeps an outbound link to configured peer `index` up until shutdown.
pub async fn dial_loop(index: usize, addr: String, shared: Arc<Shared>) {
    let mut backoff = Backoff::new(shared.backoff_min, shared.backoff_max);
    let connect_timeout = Duration::from_millis(shared.settings.timeout_ms.max(100));
    loop {
        if shared.shutdown.is_cancelled() {
            break;
        }
        set_peer_state(&shared, index, "connecting");
        let connected = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            c = tokio::time::timeout(connect_timeout, TcpStream::connect(&addr)) => c,
        };
        match connected {
            Ok(Ok(socket)) => {
                shared.status.peers[index].1.lock().connects += 1;
                let _ = socket.set_nodelay(true);
                let remote = socket.peer_addr().ok();
                let slot = Slot::Peer(index);
                let live = match shared.tls.clone() {
                    None => run_link(socket, remote, Side::Dialer, slot, None, &shared).await,
                    Some(tls) => match dial_tls(&tls, &addr, socket, connect_timeout).await {
                        Ok(stream) => {
                            run_link(stream, remote, Side::Dialer, slot, None, &shared).await
                        }
                        Err(reason) => {
                            refused(&shared, false, &addr, remote, &reason);
                            false
                        }
                    },
                };
                if live {
                    backoff.reset();
                }
            }
            Ok(Err(e)) => debug!(peer = %addr, "connect failed: {e}"),
            Err(_) => debug!(peer = %addr, "connect timed out"),
        }
        set_peer_state(&shared, index, "down");
        let wait = backoff.next();
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The client side of a peer link's TLS handshake, bounded by `within`.
async fn dial_tls(
    tls: &super::tls::PeerTls,
    addr: &str,
    socket: TcpStream,
    within: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = super::tls::server_name(addr)?;
    match tokio::time::timeout(within, tls.connector.connect(name, socket)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err("TLS handshake timed out".to_string()),
    }
}

/// Counts (inbound) and logs, throttled, a link that never got past its
/// handshake.
fn refused(shared: &Shared, inbound: bool, peer: &str, remote: Option<SocketAddr>, reason: &str) {
    if inbound {
        shared
            .status
            .handshakes_refused
            .fetch_add(1, Ordering::Relaxed);
    }
    if let Some(suppressed) = shared.refusal_log.admit() {
        warn!(
            peer = %peer,
            ?remote,
            suppressed,
            "peer link refused: {reason}"
        );
    }
}

/// A peer link's byte stream: TCP, or TLS over it.
pub trait LinkStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> LinkStream for S {}

fn set_peer_state(shared: &Shared, index: usize, state: &'static str) {
    shared.status.peers[index].1.lock().state = state;
}

/// Where a link reports its status.
#[derive(Clone, Copy)]
enum Slot {
    Peer(usize),
    Inbound(u64),
}

type Incoming = Result<(Msg, usize), String>;

/// Reads frames into `tx` until the connection ends, a frame is refused,
/// or nothing arrives for `timeout`.
async fn read_frames<R: AsyncRead + Unpin>(
    mut rd: R,
    tx: mpsc::Sender<Incoming>,
    limit: Arc<AtomicUsize>,
    timeout: Duration,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let before = buf.len();
            match codec::decode(&mut buf, limit.load(Ordering::Acquire)) {
                Ok(Some(msg)) => {
                    if tx.send(Ok((msg, before - buf.len()))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match tokio::time::timeout(timeout, rd.read_buf(&mut buf)).await {
            Err(_) => {
                let _ = tx.send(Err("read timed out".into())).await;
                return;
            }
            Ok(Ok(0)) => return,
            Ok(Err(e)) => {
                let _ = tx.send(Err(format!("read failed: {e}"))).await;
                return;
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// Runs one connection through a [`PeerLink`] until it closes. Returns
/// true if the link got past the handshake. An inbound connection brings
/// its eviction token from the pending pool (`evict`); once authenticated
/// it leaves the pool and takes one of the [`MAX_INBOUND`] link slots.
async fn run_link<S: LinkStream>(
    socket: S,
    remote: Option<SocketAddr>,
    side: Side,
    slot: Slot,
    evict: Option<CancellationToken>,
    shared: &Shared,
) -> bool {
    let pending_id = match slot {
        Slot::Inbound(id) => Some(id),
        Slot::Peer(_) => None,
    };
    let evicted = evict.unwrap_or_default();
    // Whether this inbound link holds one of the MAX_INBOUND slots.
    let mut holds_slot = false;
    let (rd, mut wr) = tokio::io::split(socket);
    let timeout = Duration::from_millis(shared.settings.timeout_ms.max(100));
    let limit = Arc::new(AtomicUsize::new(codec::MAX_HANDSHAKE_FRAME));
    let (tx, mut rx) = mpsc::channel::<Incoming>(32);
    let reader = tokio::spawn(read_frames(rd, tx, limit.clone(), timeout));
    let mut nonce = [0u8; 32];
    rand::thread_rng().fill(&mut nonce);
    let now = unix_ms();
    let mut link = PeerLink::new(
        side,
        shared.status.replica,
        shared.settings.clone(),
        nonce,
        now,
    );
    let mut outs = link.start(now);
    let mut writes = shared.status.subscribe_writes();
    writes.borrow_and_update();
    let tick_every = Duration::from_millis((shared.settings.heartbeat_ms / 2).clamp(10, 250));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = tokio::time::Instant::now();
    let mut tick_due = false;
    let mut frame = BytesMut::new();
    let mut was_live = false;
    let mut more = false;
    let mut bytes_in = 0u64;
    let reason: String = 'run: loop {
        // Send what the link produced.
        let mut sent = 0u64;
        for out in outs.drain(..) {
            match out {
                Out::Send(msg) => codec::encode(&msg, &mut frame),
                Out::Close(reason) => break 'run reason,
            }
        }
        // Raise the frame limit before the Ack that lets the peer send
        // large frames goes out.
        limit.store(link.frame_limit(), Ordering::Release);
        if !frame.is_empty() {
            sent = frame.len() as u64;
            // The flush pushes out what a TLS stream holds back.
            let write = async {
                wr.write_all(&frame).await?;
                wr.flush().await
            };
            match tokio::time::timeout(timeout, write).await {
                Ok(Ok(())) => frame.clear(),
                Ok(Err(e)) => break 'run format!("write failed: {e}"),
                Err(_) => break 'run "write timed out".to_string(),
            }
        }
        if link.phase() == Phase::Live && !was_live {
            if let Some(id) = pending_id {
                shared.pending.leave(id);
                if shared.inbound_count.fetch_add(1, Ordering::AcqRel) >= MAX_INBOUND {
                    shared.inbound_count.fetch_sub(1, Ordering::AcqRel);
                    break 'run "too many inbound peer links".to_string();
                }
                holds_slot = true;
            }
        }
        was_live |= link.phase() == Phase::Live;
        report(shared, slot, &link, sent, std::mem::take(&mut bytes_in)).await;

        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break 'run "shutting down".to_string(),
            _ = evicted.cancelled(), if !was_live => {
                break 'run "evicted: too many unauthenticated connections".to_string()
            }
            incoming = rx.recv() => match incoming {
                Some(Ok((msg, n))) => {
                    bytes_in = n as u64;
                    if side == Side::Dialer {
                        link.set_live_origins(shared.status.live_origins());
                    }
                    let now = unix_ms();
                    let mut store = lock_store(&shared.store).await;
                    outs = link.on_message(msg, &mut store, now);
                    if let Some(after_apply) = &shared.after_apply {
                        after_apply(&mut store);
                    }
                    outs.extend(link.pump(&mut store, now));
                    more = true;
                }
                Some(Err(e)) => break 'run e,
                None => break 'run "connection closed by peer".to_string(),
            },
            _ = tick.tick() => {
                tick_due = true;
            }
            changed = writes.changed() => {
                if changed.is_err() {
                    break 'run "node stopping".to_string();
                }
                let now = unix_ms();
                outs = link.pump(&mut *lock_store(&shared.store).await, now);
                more = true;
            }
            _ = std::future::ready(()), if more => {
                let now = unix_ms();
                outs = link.pump(&mut *lock_store(&shared.store).await, now);
                more = !outs.is_empty() || link.has_work();
            }
        }
        // Periodic duties run whenever due, even while messages keep
        // arriving (a long transfer must not starve heartbeats).
        if tick_due || last_tick.elapsed() >= tick_every {
            tick_due = false;
            last_tick = tokio::time::Instant::now();
            if side == Side::Dialer {
                link.set_live_origins(shared.status.live_origins());
            }
            let now = unix_ms();
            let mut store = lock_store(&shared.store).await;
            outs.extend(link.on_tick(&mut store, now));
            outs.extend(link.pump(&mut store, now));
            more = true;
        }
    };
    reader.abort();
    let peer = link.peer().map(|p| p.to_string()).unwrap_or_default();
    if holds_slot {
        shared.inbound_count.fetch_sub(1, Ordering::AcqRel);
    }
    if was_live {
        info!(peer = %peer, ?remote, "peer link closed: {reason}");
    } else {
        refused(shared, pending_id.is_some(), &peer, remote, &reason);
    }
    report(shared, slot, &link, 0, bytes_in).await;
    was_live
}

/// The store, waited for in short steps that yield to other tasks in
/// between: a long holder (a script past busy-reply-threshold, which
/// other clients are answered BUSY for meanwhile) never stalls the thread
/// that serves them.
async fn lock_store(store: &Mutex<Store>) -> parking_lot::MutexGuard<'_, Store> {
    loop {
        if let Some(guard) = store.try_lock_for(std::time::Duration::from_millis(5)) {
            return guard;
        }
        tokio::task::yield_now().await;
    }
}

/// Copies a link's view into the shared status (and trims nothing: the
/// housekeeping task trims the log from these acks).
async fn report(shared: &Shared, slot: Slot, link: &PeerLink, sent: u64, received: u64) {
    let stats = &link.stats;
    match slot {
        Slot::Peer(index) => {
            let (lag_ops, lag_ms) = if link.phase() == Phase::Live {
                link.lag(&*lock_store(&shared.store).await, unix_ms())
            } else {
                (0, 0)
            };
            let mut acked_changed = false;
            {
                let mut p = shared.status.peers[index].1.lock();
                p.state = if link.phase() == Phase::Live && link.is_syncing() {
                    "syncing"
                } else {
                    link.phase().name()
                };
                p.replica = link.peer().or(p.replica);
                if let Some(acked) = link.acked() {
                    if p.acked.as_ref() != Some(acked) {
                        p.acked = Some(acked.clone());
                        acked_changed = true;
                    }
                }
                p.lag_ops = lag_ops;
                p.lag_ms = lag_ms;
                p.bytes_sent += sent;
                p.bytes_received += received;
                p.full_syncs = p.full_syncs.max(stats.full_syncs);
                p.partial_syncs = p.partial_syncs.max(stats.partial_syncs);
                p.repairs = p.repairs.max(stats.repairs);
                p.id_reuse |= stats.id_reuse;
            }
            if acked_changed {
                shared.status.notify_acked();
            }
        }
        Slot::Inbound(id) => {
            let mut inbound = shared.status.inbound.lock();
            if let Some((_, l)) = inbound.iter_mut().find(|(i, _)| *i == id) {
                l.state = link.phase().name();
                l.replica = link.peer();
                l.bytes_received += received;
                let new_alarms = stats.skew_alarms.saturating_sub(l.skew_alarms);
                if new_alarms > 0 {
                    shared
                        .status
                        .skew_alarms
                        .fetch_add(new_alarms, Ordering::Relaxed);
                }
                l.batches_applied = stats.batches_applied;
                l.syncs_received = stats.syncs_received;
                l.repairs_requested = stats.repairs_requested;
                l.skew_alarms = stats.skew_alarms;
            }
        }
    }
}
