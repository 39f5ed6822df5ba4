//! What replication shares with the rest of the node: per-peer link
//! status for INFO, the acknowledged vectors that WAIT, log trimming and
//! tombstone collection read, and the signal that wakes the streaming
//! tasks on a local write. Plain data behind short locks; no I/O.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::crdt::{ReplicaId, VersionVector};
use crate::store::Stability;

/// One configured peer, as its outbound link (this node → that peer)
/// sees it.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    pub state: &'static str,
    pub replica: Option<ReplicaId>,
    /// The peer's applied vector, once it has acknowledged anything.
    pub acked: Option<VersionVector>,
    pub lag_ops: u64,
    pub lag_ms: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub full_syncs: u64,
    pub partial_syncs: u64,
    pub repairs: u64,
    pub connects: u64,
    pub id_reuse: bool,
    /// Since when (ms) the outbound link has not been up; `None` while it
    /// is (kept by [`super::silence`]).
    pub down_since_ms: Option<u64>,
    /// Silent past `peer-silence-limit-ms` or `-bytes`: this peer no longer
    /// holds back tombstone collection or log trimming, and gets a full
    /// state transfer when it returns.
    pub past_bound: bool,
}

/// One inbound link (a peer streaming to this node).
#[derive(Clone, Debug, Default)]
pub struct InboundInfo {
    pub remote: String,
    pub state: &'static str,
    pub replica: Option<ReplicaId>,
    pub bytes_received: u64,
    pub batches_applied: u64,
    pub syncs_received: u64,
    pub repairs_requested: u64,
    pub skew_alarms: u64,
}

pub struct ReplStatus {
    pub replica: ReplicaId,
    /// Configured peers, in configuration order: (address, status).
    pub peers: Vec<(String, Mutex<PeerInfo>)>,
    /// Inbound links by a local link number.
    pub inbound: Mutex<Vec<(u64, InboundInfo)>>,
    pub skew_alarms: AtomicU64,
    /// Inbound connections closed before they proved the secret (bad
    /// proof, garbage, handshake timeout, or evicted for a newer one).
    pub handshakes_refused: AtomicU64,
    /// Of those, the ones evicted because the pending pool was full.
    pub handshakes_evicted: AtomicU64,
    /// The address the peer listener bound, if any.
    pub peer_addr: Mutex<Option<SocketAddr>>,
    /// The silence bound and the bytes (backlog + tombstones) held at its
    /// last check, for INFO ([`super::silence`]).
    pub silence: Mutex<(super::silence::SilenceLimits, u64)>,
    acked: Notify,
    writes: watch::Sender<u64>,
}

impl ReplStatus {
    /// Configured peers whose link is connected with at most `max_lag_ms`
    /// of replication lag (`min-replicas-to-write` counts these).
    pub fn good_peers(&self, max_lag_ms: u64) -> usize {
        self.peers
            .iter()
            .filter(|(_, p)| {
                let p = p.lock();
                p.state == "connected" && p.lag_ms <= max_lag_ms
            })
            .count()
    }

    pub fn new(replica: ReplicaId, peers: &[String]) -> ReplStatus {
        ReplStatus {
            replica,
            peers: peers
                .iter()
                .map(|a| {
                    (
                        a.clone(),
                        Mutex::new(PeerInfo {
                            state: "connecting",
                            ..PeerInfo::default()
                        }),
                    )
                })
                .collect(),
            inbound: Mutex::new(Vec::new()),
            skew_alarms: AtomicU64::new(0),
            handshakes_refused: AtomicU64::new(0),
            handshakes_evicted: AtomicU64::new(0),
            peer_addr: Mutex::new(None),
            silence: Mutex::new(Default::default()),
            acked: Notify::new(),
            writes: watch::channel(0).0,
        }
    }

    /// Whether this node replicates at all: it has configured peers or
    /// listens for them (PUBLISH ships its message only then).
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty() || self.peer_addr.lock().is_some()
    }

    /// The dispatcher calls this after a write: wakes the streaming tasks.
    pub fn note_local_write(&self, seq: u64) {
        if !self.peers.is_empty() {
            self.writes.send_replace(seq);
        }
    }

    pub fn subscribe_writes(&self) -> watch::Receiver<u64> {
        self.writes.subscribe()
    }

    /// Called by a link after an acknowledgement arrived.
    pub fn notify_acked(&self) {
        self.acked.notify_waiters();
    }

    /// Peers whose acknowledged vector covers this node's seq `seq`.
    pub fn acked_count(&self, seq: u64) -> usize {
        self.peers
            .iter()
            .filter(|(_, p)| {
                p.lock()
                    .acked
                    .as_ref()
                    .is_some_and(|a| a.get(self.replica) >= seq)
            })
            .count()
    }

    /// WAIT: until `numpeers` peers acked `seq` or `timeout` passes (`None`
    /// = forever). Returns how many had.
    pub async fn wait_acked(&self, numpeers: usize, seq: u64, timeout: Option<Duration>) -> usize {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let notified = self.acked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let count = self.acked_count(seq);
            if count >= numpeers {
                return count;
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        return self.acked_count(seq);
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The causally stable vector: the meet of this node's applied vector
    /// and every configured peer's acknowledged one. A peer that never
    /// acknowledged makes nothing stable. No peers: `own`.
    ///
    /// Nothing is stable either while some peer has acknowledged a dot
    /// this node has not applied: batches of different origins arrive in
    /// any order, so such a dot may have been written before its writer
    /// saw a stable one (an EXPIRE's TTL version, say) and still be on its
    /// way here; collecting the stable dot's tombstone first would leave
    /// this node without it when the earlier write lands (the seeded
    /// simulation found this: a key's TTL lost on one node for good).
    /// Every dot written before its writer acknowledged the stable ones is
    /// in that writer's acknowledgement, so once this node has applied
    /// everything its peers acknowledged, none is still on its way.
    pub fn stable(&self, own: &VersionVector) -> VersionVector {
        self.meet(own, |_| true)
    }

    fn meet(&self, own: &VersionVector, counts: impl Fn(&PeerInfo) -> bool) -> VersionVector {
        let mut stable = own.clone();
        for (_, p) in &self.peers {
            let p = p.lock();
            // A peer past the silence bound is left out altogether: it
            // gets a full state transfer when it returns.
            if !counts(&p) {
                continue;
            }
            match &p.acked {
                Some(acked) if acked.iter().all(|(r, seq)| own.get(r) >= seq) => {
                    stable = stable.meet(acked)
                }
                _ => return VersionVector::new(),
            }
        }
        stable
    }

    /// What tombstone collection may treat as seen everywhere: the meet
    /// over the peers within the silence bound, and (for counter markers
    /// of other origins) the meet over all of them.
    pub fn stability(&self, own: &VersionVector) -> Stability {
        let strict = self.stable(own);
        if !self.peers.iter().any(|(_, p)| p.lock().past_bound) {
            return Stability::all(strict);
        }
        let mut within = vec![self.replica];
        within.extend(self.peers.iter().filter_map(|(_, p)| {
            let p = p.lock();
            (!p.past_bound).then_some(p.replica).flatten()
        }));
        Stability {
            stable: self.meet(own, |p| !p.past_bound),
            strict,
            within: Some(within),
        }
    }

    /// Through which of its own seqs this node may trim its delta log:
    /// every configured peer within the silence bound has them
    /// (`last_seq` when there is none).
    pub fn trim_point(&self, last_seq: u64) -> u64 {
        self.peers
            .iter()
            .filter_map(|(_, p)| {
                let p = p.lock();
                (!p.past_bound).then(|| p.acked.as_ref().map_or(0, |a| a.get(self.replica)))
            })
            .min()
            .unwrap_or(last_seq)
    }

    /// Replica ids with a live link to or from this node.
    pub fn live_origins(&self) -> Vec<ReplicaId> {
        let mut live: Vec<ReplicaId> = self
            .peers
            .iter()
            .filter_map(|(_, p)| {
                let p = p.lock();
                matches!(p.state, "connected" | "syncing")
                    .then_some(p.replica)
                    .flatten()
            })
            .collect();
        live.extend(
            self.inbound
                .lock()
                .iter()
                .filter(|(_, l)| l.state == "connected")
                .filter_map(|(_, l)| l.replica),
        );
        live
    }

    /// The peer lines of INFO replication.
    pub fn write_info(&self, out: &mut String) {
        let connected = self
            .peers
            .iter()
            .filter(|(_, p)| p.lock().state == "connected")
            .count();
        let _ = write!(out, "connected_peers:{connected}\r\n");
        let _ = write!(out, "configured_peers:{}\r\n", self.peers.len());
        let _ = write!(
            out,
            "peer_handshakes_refused:{}\r\npeer_handshakes_evicted:{}\r\n",
            self.handshakes_refused.load(Ordering::Relaxed),
            self.handshakes_evicted.load(Ordering::Relaxed)
        );
        match *self.peer_addr.lock() {
            Some(a) => {
                let _ = write!(out, "peer_listener:{a}\r\n");
            }
            None => out.push_str("peer_listener:\r\n"),
        }
        for (i, (addr, p)) in self.peers.iter().enumerate() {
            let p = p.lock();
            let _ = write!(
                out,
                "peer{i}:addr={addr},id={},state={},acked_seq={},lag_ops={},lag_ms={},bytes_sent={},bytes_received={},full_syncs={},partial_syncs={},repairs={},connects={},id_reuse={},silent_ms={},past_bound={}\r\n",
                p.replica.map(|r| r.to_string()).unwrap_or_default(),
                p.state,
                p.acked.as_ref().map_or(0, |a| a.get(self.replica)),
                p.lag_ops,
                p.lag_ms,
                p.bytes_sent,
                p.bytes_received,
                p.full_syncs,
                p.partial_syncs,
                p.repairs,
                p.connects,
                p.id_reuse as u8,
                p.down_since_ms
                    .map_or(0, |t| super::silence::now_ms().saturating_sub(t)),
                p.past_bound as u8,
            );
        }
        for (i, (_, l)) in self.inbound.lock().iter().enumerate() {
            let _ = write!(
                out,
                "inbound{i}:remote={},id={},state={},bytes_received={},batches_applied={},syncs_received={},repairs_requested={}\r\n",
                l.remote,
                l.replica.map(|r| r.to_string()).unwrap_or_default(),
                l.state,
                l.bytes_received,
                l.batches_applied,
                l.syncs_received,
                l.repairs_requested,
            );
        }
        super::silence::write_info(self, out);
        let _ = write!(
            out,
            "skew_alarms:{}\r\n",
            self.skew_alarms.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_stable_until_every_peer_acked() {
        let status = ReplStatus::new(ReplicaId(1), &["a:1".into(), "b:1".into()]);
        let mut own = VersionVector::new();
        own.raise(ReplicaId(1), 10);
        assert_eq!(status.stable(&own), VersionVector::new());
        assert_eq!(status.trim_point(10), 0);
        let mut acked = VersionVector::new();
        acked.raise(ReplicaId(1), 4);
        status.peers[0].1.lock().acked = Some(acked.clone());
        assert_eq!(status.stable(&own), VersionVector::new());
        status.peers[1].1.lock().acked = Some(own.clone());
        assert_eq!(status.stable(&own).get(ReplicaId(1)), 4);
        assert_eq!(status.trim_point(10), 4);
        assert_eq!(status.acked_count(4), 2);
        assert_eq!(status.acked_count(5), 1);
    }

    #[test]
    fn nothing_is_stable_while_a_peer_acked_a_dot_not_applied_here() {
        let status = ReplStatus::new(ReplicaId(1), &["a:1".into()]);
        let mut own = VersionVector::new();
        own.raise(ReplicaId(1), 10);
        own.raise(ReplicaId(3), 5);
        // The peer has applied origin 3's seq 6, still on its way here.
        let mut acked = own.clone();
        acked.raise(ReplicaId(3), 6);
        status.peers[0].1.lock().acked = Some(acked);
        assert_eq!(status.stable(&own), VersionVector::new());
        // Once applied here, the meet is stable again.
        own.raise(ReplicaId(3), 6);
        assert_eq!(status.stable(&own), own);
        // A peer behind this node is the ordinary case.
        let mut behind = VersionVector::new();
        behind.raise(ReplicaId(1), 4);
        status.peers[0].1.lock().acked = Some(behind.clone());
        assert_eq!(status.stable(&own), behind);
    }

    #[test]
    fn with_no_peers_everything_applied_is_stable() {
        let status = ReplStatus::new(ReplicaId(1), &[]);
        let mut own = VersionVector::new();
        own.raise(ReplicaId(1), 3);
        assert_eq!(status.stable(&own), own);
        assert_eq!(status.trim_point(3), 3);
    }
}
