//! One peer link as a state machine without I/O: messages and ticks in,
//! messages to send (or a reason to close) out. The tokio side
//! ([`super::net`]) only moves frames and calls these methods with the
//! store locked; nothing here awaits, so no lock is held across an await.
//!
//! A link has two ends. The **dialer** streams its own node's deltas (and
//! state transfers) to the **acceptor**, which applies them and answers
//! with its applied version vector. Each pair of nodes has two links, one
//! dialed by each, so every node streams to every peer.
//!
//! Phases:
//! 1. `Hello`: both send `Hello{version, replica, nonce}`.
//! 2. `Proof`: the acceptor proves the secret first (HMAC over both nonces,
//!    ids and its role); the dialer checks it, then proves in turn. Until
//!    the acceptor has checked the dialer's proof it applies nothing and
//!    accepts only handshake-sized frames.
//! 3. `Ack`: the acceptor sends its applied vector; the dialer resumes its
//!    stream from the acceptor's entry for the dialer when the delta log
//!    still holds it (a partial sync), or else begins a full state transfer.
//! 4. `Live`: batches in seq order, acks, heartbeats, anti-entropy digests
//!    and range repairs.

use bytes::Bytes;
use tracing::{info, warn};

use super::auth::{macs_equal, proof, Side};
use super::codec::{Msg, MAX_FRAME, MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION};
use crate::crdt::{CausalContext, HlcClock, KeyState, Payload, ReplicaId, VersionVector};
use crate::store::sync::{MentionedKeys, SyncEntry, SyncScope, BUCKETS};
use crate::store::{Store, DB_COUNT};

/// Settings a link reads (from the node's config).
#[derive(Clone, Debug)]
pub struct LinkSettings {
    pub secret: Vec<u8>,
    /// Send a heartbeat after this long without sending anything.
    pub heartbeat_ms: u64,
    /// Close the link after this long without hearing from the peer.
    pub timeout_ms: u64,
    /// Close the link when the handshake (both proofs) has not finished in
    /// this time: a stranger on the peer port cannot hold a slot for long.
    pub handshake_timeout_ms: u64,
    /// Remote timestamps further ahead of local wall time are flagged.
    pub max_clock_skew_ms: u64,
    /// Period of anti-entropy digest exchanges; 0 = never.
    pub anti_entropy_ms: u64,
    /// Approximate bytes of key states per state-transfer chunk.
    pub chunk_bytes: usize,
    /// Approximate bytes of batches per `Batches` frame.
    pub batch_bytes: usize,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            secret: Vec::new(),
            heartbeat_ms: 1000,
            timeout_ms: 10_000,
            handshake_timeout_ms: 2000,
            max_clock_skew_ms: 5000,
            anti_entropy_ms: 30_000,
            chunk_bytes: 256 * 1024,
            batch_bytes: 256 * 1024,
        }
    }
}

/// What the machine asks its driver to do. Outs live only until the driver
/// encodes them, a few at a time, so the size of a message held inline
/// does not matter.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Out {
    Send(Msg),
    /// Close the connection; the reason is logged.
    Close(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Hello,
    Proof,
    /// Dialer only: authenticated, waiting for the acceptor's vector.
    Ack,
    Live,
    Closed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Hello | Phase::Proof | Phase::Ack => "handshake",
            Phase::Live => "connected",
            Phase::Closed => "closed",
        }
    }
}

/// Counters a link reports (INFO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Dialer: full state transfers begun.
    pub full_syncs: u64,
    /// Dialer: streams resumed from the peer's acked position.
    pub partial_syncs: u64,
    /// Dialer: ranges shipped for anti-entropy.
    pub repairs: u64,
    /// Acceptor: batches applied, transfers completed, ranges requested.
    pub batches_applied: u64,
    pub syncs_received: u64,
    pub repairs_requested: u64,
    /// Remote timestamps seen further ahead than allowed.
    pub skew_alarms: u64,
    /// Dialer: the peer has seen more of this node's id than this node
    /// has written (a restarted node reusing its replica id).
    pub id_reuse: bool,
}

/// A state transfer being sent.
struct Sending {
    scope: SyncScope,
    names: Vec<(u8, Bytes)>,
    pos: usize,
    applied: VersionVector,
}

/// Anti-entropy digests being computed, a bounded step per pump.
struct Digesting {
    cursor: (usize, u64),
    acc: Vec<[u8; 20]>,
    /// The applied vector when the pass began: the digests are sent only
    /// if nothing was applied meanwhile.
    applied: VersionVector,
}

/// Slots hashed per anti-entropy step (one store lock hold).
const DIGEST_STEP: usize = 4096;

/// A state transfer being received.
struct Receiving {
    scope: SyncScope,
    ctx: CausalContext,
    applied: VersionVector,
    mentioned: MentionedKeys,
    functions: Option<Box<crate::crdt::FunctionLibraries>>,
    /// The transfer's id in the store's journal.
    transfer: u64,
}

pub struct PeerLink {
    side: Side,
    me: ReplicaId,
    settings: LinkSettings,
    my_nonce: [u8; 32],
    peer_nonce: [u8; 32],
    peer: Option<ReplicaId>,
    phase: Phase,
    started_ms: u64,
    last_sent_ms: u64,
    last_recv_ms: u64,
    last_digest_ms: u64,
    // Dialer.
    sent_through: u64,
    acked: VersionVector,
    ever_acked: bool,
    sending: Option<Sending>,
    repair_queue: Vec<u16>,
    digesting: Option<Digesting>,
    /// Replica ids currently streaming (this node's live links), set by
    /// the driver: origins not among them deliver nothing more by stream.
    live_origins: Vec<ReplicaId>,
    /// Since when the peer has been behind on an origin that is not live.
    behind_since: Option<u64>,
    // Acceptor.
    receiving: Option<Receiving>,
    /// The applied vector last sent in an `Ack`.
    last_ack: Option<VersionVector>,
    pub stats: LinkStats,
}

/// Rough size of a key state in a chunk.
fn approx_state_bytes(key: &[u8], state: &KeyState) -> usize {
    32 + key.len()
        + state
            .versions()
            .iter()
            .map(|v| match &v.payload {
                Payload::Str(w) => 48 + w.value.as_ref().map_or(0, |b| b.len()),
                Payload::Hll(w) => 48 + w.bytes.len(),
                _ => 32,
            })
            .sum::<usize>()
        // Collections: a rough per-element size (members, dots, values).
        + state
            .collections()
            .iter()
            .map(|c| c.len() * 64)
            .sum::<usize>()
}

impl PeerLink {
    /// A new link; `nonce` must be fresh random bytes.
    pub fn new(
        side: Side,
        me: ReplicaId,
        settings: LinkSettings,
        nonce: [u8; 32],
        now_ms: u64,
    ) -> PeerLink {
        PeerLink {
            side,
            me,
            settings,
            my_nonce: nonce,
            peer_nonce: [0; 32],
            peer: None,
            phase: Phase::Hello,
            started_ms: now_ms,
            last_sent_ms: now_ms,
            last_recv_ms: now_ms,
            last_digest_ms: now_ms,
            sent_through: 0,
            acked: VersionVector::new(),
            ever_acked: false,
            sending: None,
            repair_queue: Vec::new(),
            digesting: None,
            live_origins: Vec::new(),
            behind_since: None,
            receiving: None,
            last_ack: None,
            stats: LinkStats::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// The peer's replica id, once it said hello.
    pub fn peer(&self) -> Option<ReplicaId> {
        self.peer
    }

    /// Dialer: the acceptor's applied vector as last acknowledged.
    pub fn acked(&self) -> Option<&VersionVector> {
        self.ever_acked.then_some(&self.acked)
    }

    /// Tells the link which origins currently stream to this node.
    pub fn set_live_origins(&mut self, live: Vec<ReplicaId>) {
        self.live_origins = live;
    }

    /// Whether the peer lacks batches of an origin other than the two ends
    /// that no live link delivers (a node that left or restarted with a
    /// new id): only a state transfer from here can carry them.
    fn peer_behind_on_a_silent_origin(&self, store: &Store) -> bool {
        let peer = self.peer;
        store.version_vector().iter().any(|(origin, seq)| {
            origin != self.me
                && Some(origin) != peer
                && !self.live_origins.contains(&origin)
                && self.acked.get(origin) < seq
        })
    }

    /// Whether [`PeerLink::pump`] has work in progress (a transfer, a
    /// repair, a digest pass) even if its last call sent nothing.
    pub fn has_work(&self) -> bool {
        self.phase == Phase::Live
            && (self.sending.is_some() || !self.repair_queue.is_empty() || self.digesting.is_some())
    }

    pub fn is_syncing(&self) -> bool {
        self.sending.is_some() || self.receiving.is_some()
    }

    /// The largest frame the link accepts now.
    pub fn frame_limit(&self) -> usize {
        if self.phase == Phase::Live {
            MAX_FRAME
        } else {
            MAX_HANDSHAKE_FRAME
        }
    }

    /// Messages to send when the connection opens.
    pub fn start(&mut self, now_ms: u64) -> Vec<Out> {
        match self.side {
            Side::Dialer => vec![self.send(self.hello(), now_ms)],
            Side::Acceptor => Vec::new(),
        }
    }

    fn hello(&self) -> Msg {
        Msg::Hello {
            version: PROTOCOL_VERSION,
            replica: self.me,
            nonce: self.my_nonce,
        }
    }

    fn send(&mut self, msg: Msg, now_ms: u64) -> Out {
        self.last_sent_ms = now_ms;
        Out::Send(msg)
    }

    fn close(&mut self, reason: impl Into<String>) -> Vec<Out> {
        self.phase = Phase::Closed;
        self.sending = None;
        self.receiving = None;
        vec![Out::Close(reason.into())]
    }

    /// The proof `side` must send on this link.
    fn proof_of(&self, side: Side) -> [u8; 20] {
        let peer = self.peer.map_or(0, |p| p.0);
        let (dialer, acceptor) = match self.side {
            Side::Dialer => ((self.me.0, &self.my_nonce), (peer, &self.peer_nonce)),
            Side::Acceptor => ((peer, &self.peer_nonce), (self.me.0, &self.my_nonce)),
        };
        proof(&self.settings.secret, side, dialer, acceptor)
    }

    /// Handles one message from the peer.
    pub fn on_message(&mut self, msg: Msg, store: &mut Store, now_ms: u64) -> Vec<Out> {
        if self.phase == Phase::Closed {
            return Vec::new();
        }
        self.last_recv_ms = now_ms;
        match (self.phase, msg) {
            (
                Phase::Hello,
                Msg::Hello {
                    version,
                    replica,
                    nonce,
                },
            ) => {
                if version != PROTOCOL_VERSION {
                    return self.close(format!(
                        "peer speaks protocol version {version}, this node {PROTOCOL_VERSION}"
                    ));
                }
                if replica == self.me {
                    return self.close("connected to itself (same replica id)");
                }
                self.peer = Some(replica);
                self.peer_nonce = nonce;
                self.phase = Phase::Proof;
                match self.side {
                    Side::Dialer => Vec::new(),
                    Side::Acceptor => {
                        let hello = self.hello();
                        let mac = self.proof_of(Side::Acceptor);
                        vec![
                            self.send(hello, now_ms),
                            self.send(Msg::Proof { mac }, now_ms),
                        ]
                    }
                }
            }
            (Phase::Proof, Msg::Proof { mac }) => {
                let expected = match self.side {
                    Side::Dialer => self.proof_of(Side::Acceptor),
                    Side::Acceptor => self.proof_of(Side::Dialer),
                };
                if !macs_equal(&mac, &expected) {
                    return self.close("peer failed authentication (wrong peer secret?)");
                }
                match self.side {
                    Side::Dialer => {
                        self.phase = Phase::Ack;
                        let mac = self.proof_of(Side::Dialer);
                        vec![self.send(Msg::Proof { mac }, now_ms)]
                    }
                    Side::Acceptor => {
                        self.phase = Phase::Live;
                        vec![self.ack(store, now_ms)]
                    }
                }
            }
            (Phase::Ack, Msg::Ack { applied }) if self.side == Side::Dialer => {
                self.acked = applied;
                self.ever_acked = true;
                self.phase = Phase::Live;
                self.start_stream(store, now_ms)
            }
            (Phase::Live, msg) => match self.side {
                Side::Dialer => self.dialer_message(msg, store, now_ms),
                Side::Acceptor => self.acceptor_message(msg, store, now_ms),
            },
            (phase, msg) => self.close(format!("unexpected {} during {phase:?} phase", msg.kind())),
        }
    }

    // ----- dialer -----

    fn start_stream(&mut self, store: &mut Store, now_ms: u64) -> Vec<Out> {
        let from = self.acked.get(self.me);
        if from > store.last_seq() {
            self.stats.id_reuse = true;
            return self.close(format!(
                "peer has applied seq {from} of replica id {}, which only wrote {}: the id was reused after a restart; start the node with a new --replica-id",
                self.me,
                store.last_seq()
            ));
        }
        if store.delta_log().since(from).is_some() && !self.peer_behind_on_a_silent_origin(store) {
            self.sent_through = from;
            self.stats.partial_syncs += 1;
            Vec::new()
        } else {
            vec![self.begin_transfer(SyncScope::All, store, now_ms)]
        }
    }

    fn begin_transfer(&mut self, scope: SyncScope, store: &Store, now_ms: u64) -> Out {
        let snapshot = store.sync_snapshot(&scope);
        match scope {
            SyncScope::All => self.stats.full_syncs += 1,
            SyncScope::Buckets(_) => self.stats.repairs += 1,
        }
        let msg = Msg::SyncBegin {
            scope: scope.clone(),
            ctx: snapshot.ctx,
            applied: snapshot.applied.clone(),
            clock: snapshot.clock,
            keys: snapshot.names.len() as u64,
            functions: snapshot.functions.map(Box::new),
            flush_floors: snapshot.flush_floors,
        };
        self.sending = Some(Sending {
            scope,
            names: snapshot.names,
            pos: 0,
            applied: snapshot.applied,
        });
        self.send(msg, now_ms)
    }

    fn dialer_message(&mut self, msg: Msg, _store: &mut Store, _now_ms: u64) -> Vec<Out> {
        match msg {
            Msg::Ack { applied } => {
                self.acked.merge(&applied);
                Vec::new()
            }
            Msg::RepairRequest { buckets } => {
                if buckets.iter().any(|&b| b as usize >= BUCKETS) {
                    return self.close("repair request names a range that does not exist");
                }
                for b in buckets {
                    if !self.repair_queue.contains(&b) {
                        self.repair_queue.push(b);
                    }
                }
                Vec::new()
            }
            Msg::Heartbeat { .. } => Vec::new(),
            other => self.close(format!("unexpected {} from an acceptor", other.kind())),
        }
    }

    /// Produces the next bounded piece of outgoing data (a chunk of a
    /// state transfer, a range repair, or the next batches). Empty when
    /// there is nothing to send; the driver calls it again until then,
    /// releasing the store lock in between.
    pub fn pump(&mut self, store: &mut Store, now_ms: u64) -> Vec<Out> {
        if self.side != Side::Dialer || self.phase != Phase::Live {
            return Vec::new();
        }
        if let Some(sending) = &mut self.sending {
            let mut entries = Vec::new();
            let mut bytes = 0;
            while sending.pos < sending.names.len() && bytes < self.settings.chunk_bytes {
                let (db, key) = &sending.names[sending.pos];
                let state = store.state_of(*db as usize, key);
                bytes += approx_state_bytes(key, &state);
                entries.push(SyncEntry {
                    db: *db,
                    key: key.clone(),
                    state,
                });
                sending.pos += 1;
            }
            let done = sending.pos == sending.names.len();
            let mut out = Vec::new();
            if !entries.is_empty() {
                let ctx = store.causal_context().clone();
                out.push(self.send(Msg::SyncChunk { ctx, entries }, now_ms));
            }
            if done {
                let sending = self.sending.take().expect("sending");
                if sending.scope == SyncScope::All {
                    self.sent_through = sending.applied.get(self.me);
                }
                out.push(self.send(Msg::SyncEnd, now_ms));
            }
            return out;
        }
        if let Some(job) = &mut self.digesting {
            let next = store.bucket_digests_step(job.cursor, DIGEST_STEP, &mut job.acc);
            match next {
                Some(cursor) => {
                    job.cursor = cursor;
                    return Vec::new();
                }
                None => {
                    let job = self.digesting.take().expect("digesting");
                    let unchanged = &job.applied == store.version_vector()
                        && self.sent_through == store.last_seq();
                    if unchanged {
                        let msg = Msg::Digests {
                            applied: job.applied,
                            buckets: job.acc,
                        };
                        return vec![self.send(msg, now_ms)];
                    }
                    return Vec::new();
                }
            }
        }
        if !self.repair_queue.is_empty() {
            let mut buckets = std::mem::take(&mut self.repair_queue);
            buckets.sort_unstable();
            return vec![self.begin_transfer(SyncScope::Buckets(buckets), store, now_ms)];
        }
        let batches: Vec<_> = match store.delta_log().since(self.sent_through) {
            None => {
                // The log dropped batches this peer still needs.
                info!(
                    peer = ?self.peer,
                    "delta log no longer holds seq {}: full sync",
                    self.sent_through + 1
                );
                return vec![self.begin_transfer(SyncScope::All, store, now_ms)];
            }
            Some(iter) => {
                let mut bytes = 0;
                iter.take_while(|b| {
                    let fits = bytes < self.settings.batch_bytes;
                    bytes += b.approximate_bytes();
                    fits
                })
                .map(|b| (**b).clone())
                .collect()
            }
        };
        match batches.last() {
            None => Vec::new(),
            Some(last) => {
                self.sent_through = last.last_seq;
                vec![self.send(Msg::Batches(batches), now_ms)]
            }
        }
    }

    /// How far the peer is behind this node's own writes: (ops, ms). The
    /// milliseconds are the age of the oldest write it has not acked.
    pub fn lag(&self, store: &Store, now_ms: u64) -> (u64, u64) {
        let acked = self.acked.get(self.me);
        let ops = store.last_seq().saturating_sub(acked);
        if ops == 0 {
            return (0, 0);
        }
        let ms = store
            .delta_log()
            .since(acked)
            .and_then(|mut it| it.next().map(|b| b.hlc.physical_ms()))
            .map_or(0, |t| now_ms.saturating_sub(t));
        (ops, ms)
    }

    // ----- acceptor -----

    fn flag_skew(&mut self, hlc: crate::crdt::Hlc, now_ms: u64) {
        let ahead = HlcClock::skew_ahead_ms(hlc, now_ms);
        if ahead > self.settings.max_clock_skew_ms {
            self.stats.skew_alarms += 1;
            warn!(
                peer = ?self.peer,
                "peer clock {ahead} ms ahead of this node (max-clock-skew-ms {}); applied anyway",
                self.settings.max_clock_skew_ms
            );
        }
    }

    /// An `Ack` with the applied vector as it is now.
    fn ack(&mut self, store: &Store, now_ms: u64) -> Out {
        let applied = store.version_vector().clone();
        self.last_ack = Some(applied.clone());
        self.send(Msg::Ack { applied }, now_ms)
    }

    fn acceptor_message(&mut self, msg: Msg, store: &mut Store, now_ms: u64) -> Vec<Out> {
        let peer = self.peer.expect("live links know their peer");
        match msg {
            Msg::Batches(batches) => {
                for batch in &batches {
                    if batch.origin != peer {
                        return self.close(format!(
                            "peer {peer} sent a batch of origin {}",
                            batch.origin
                        ));
                    }
                    self.flag_skew(batch.hlc, now_ms);
                    match store.apply_remote(batch) {
                        Ok(applied) => self.stats.batches_applied += applied as u64,
                        Err(e) => return self.close(format!("refused batch: {e}")),
                    }
                }
                vec![self.ack(store, now_ms)]
            }
            Msg::SyncBegin {
                scope,
                ctx,
                applied,
                clock,
                functions,
                keys,
                flush_floors,
            } => {
                if self.receiving.is_some() {
                    return self.close("state transfer begun twice");
                }
                // Merging a context that has seen more of this node's id
                // than it wrote would make its next writes look seen (and
                // be dropped): the id was reused after an empty restart.
                if ctx.version_vector().get(self.me) > store.last_seq() {
                    self.stats.id_reuse = true;
                    return self.close(format!(
                        "peer has seen seq {} of replica id {}, which only wrote {}: the id was reused after a restart; start the node with a new --replica-id",
                        ctx.version_vector().get(self.me),
                        self.me,
                        store.last_seq()
                    ));
                }
                if let SyncScope::Buckets(b) = &scope {
                    if b.iter().any(|&b| b as usize >= BUCKETS) {
                        return self.close("transfer names a range that does not exist");
                    }
                }
                self.flag_skew(clock, now_ms);
                store.observe_clock(clock);
                let scope_is_full = scope == SyncScope::All;
                let functions = functions.filter(|_| scope_is_full);
                let transfer = store.next_transfer_id();
                if flush_floors.len() > DB_COUNT {
                    return self.close("transfer names a database that does not exist");
                }
                store.journal_sync_begin(transfer, &scope, &ctx, &applied, functions.as_deref());
                let mentioned = store.mentioned_keys_for_transfer(keys);
                if scope_is_full {
                    store.adopt_flush_floors(&flush_floors);
                }
                self.receiving = Some(Receiving {
                    scope,
                    ctx,
                    applied,
                    mentioned,
                    functions,
                    transfer,
                });
                Vec::new()
            }
            Msg::SyncChunk { ctx, entries } => {
                let Some(receiving) = &mut self.receiving else {
                    return self.close("state chunk outside a transfer");
                };
                for entry in &entries {
                    if entry.db as usize >= DB_COUNT
                        || !receiving.scope.contains(entry.db, &entry.key)
                    {
                        return self.close("state chunk names a key outside the transfer");
                    }
                }
                store.journal_sync_chunk(receiving.transfer, &ctx, &entries);
                for entry in entries {
                    store.merge_remote_state(entry.db as usize, &entry.key, &entry.state, &ctx);
                    receiving.mentioned.insert(entry.db, entry.key);
                }
                Vec::new()
            }
            Msg::SyncEnd => {
                let Some(mut receiving) = self.receiving.take() else {
                    return self.close("transfer end outside a transfer");
                };
                let full = receiving.scope == SyncScope::All;
                if let Some(functions) = &receiving.functions {
                    // Joined with the start context, before `finish_sync`
                    // merges it into this node's.
                    store.merge_remote_libraries(functions, &receiving.ctx);
                }
                store.finish_sync(
                    &receiving.scope,
                    &mut receiving.mentioned,
                    &receiving.ctx,
                    full.then_some(&receiving.applied),
                );
                store.journal_sync_end(receiving.transfer);
                if full {
                    self.stats.syncs_received += 1;
                }
                vec![self.ack(store, now_ms)]
            }
            Msg::Digests { applied, buckets } => {
                if buckets.len() != BUCKETS {
                    return self.close("digest list of the wrong length");
                }
                // Comparable only when both sides applied the same batches.
                if self.receiving.is_some() || store.version_vector() != &applied {
                    return Vec::new();
                }
                let mine = store.bucket_digests();
                let differing: Vec<u16> = (0..BUCKETS)
                    .filter(|&i| mine[i] != buckets[i])
                    .map(|i| i as u16)
                    .collect();
                if differing.is_empty() {
                    return Vec::new();
                }
                self.stats.repairs_requested += differing.len() as u64;
                info!(
                    peer = %peer,
                    ranges = differing.len(),
                    "anti-entropy: ranges differ, requesting repair"
                );
                vec![self.send(Msg::RepairRequest { buckets: differing }, now_ms)]
            }
            Msg::Heartbeat { hlc } => {
                self.flag_skew(hlc, now_ms);
                Vec::new()
            }
            other => self.close(format!("unexpected {} from a dialer", other.kind())),
        }
    }

    // ----- time -----

    /// Periodic duties: handshake and silence deadlines, heartbeats, and
    /// (dialer, caught up) anti-entropy digests.
    pub fn on_tick(&mut self, store: &mut Store, now_ms: u64) -> Vec<Out> {
        match self.phase {
            Phase::Closed => return Vec::new(),
            Phase::Live => {}
            _ => {
                if now_ms.saturating_sub(self.started_ms) > self.settings.handshake_timeout_ms {
                    return self.close("handshake did not finish in time");
                }
            }
        }
        if now_ms.saturating_sub(self.last_recv_ms) > self.settings.timeout_ms {
            return self.close(format!(
                "peer silent for {} ms",
                now_ms.saturating_sub(self.last_recv_ms)
            ));
        }
        let mut out = Vec::new();
        if self.phase != Phase::Live {
            return out;
        }
        if self.side == Side::Dialer && self.sending.is_none() {
            if !self.peer_behind_on_a_silent_origin(store) {
                self.behind_since = None;
            } else {
                let since = *self.behind_since.get_or_insert(now_ms);
                if now_ms.saturating_sub(since) > self.settings.timeout_ms {
                    self.behind_since = None;
                    info!(
                        peer = ?self.peer,
                        "peer lacks writes of an origin no longer streaming: full sync"
                    );
                    out.push(self.begin_transfer(SyncScope::All, store, now_ms));
                    return out;
                }
            }
        }
        // The acceptor re-acks when its vector moved (batches from other
        // origins, transfers): the dialer's view of it stays current for
        // tombstone stability and anti-entropy.
        if self.side == Side::Acceptor
            && self.receiving.is_none()
            && self.last_ack.as_ref() != Some(store.version_vector())
        {
            out.push(self.ack(store, now_ms));
        }
        // Digests are compared only when both sides applied the same
        // batches; computing them costs a pass over the keyspace, so only
        // when the peer's last ack says so.
        if self.side == Side::Dialer
            && self.settings.anti_entropy_ms > 0
            && self.sending.is_none()
            && self.digesting.is_none()
            && now_ms.saturating_sub(self.last_digest_ms) >= self.settings.anti_entropy_ms
            && self.sent_through == store.last_seq()
            && &self.acked == store.version_vector()
        {
            self.last_digest_ms = now_ms;
            self.digesting = Some(Digesting {
                cursor: (0, 0),
                acc: vec![[0u8; 20]; BUCKETS],
                applied: store.version_vector().clone(),
            });
        }
        if now_ms.saturating_sub(self.last_sent_ms) >= self.settings.heartbeat_ms {
            let hlc = store.clock().last();
            out.push(self.send(Msg::Heartbeat { hlc }, now_ms));
        }
        out
    }
}

#[cfg(test)]
mod tests;
