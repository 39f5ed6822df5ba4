//! The silence bound: how long, and for how many bytes, a configured peer
//! whose link is down may hold back tombstone collection and delta-log
//! trimming on this node.
//!
//! Without a bound, a peer that never comes back keeps every tombstone and
//! every batch written since it left (the log up to its byte cap). With
//! `peer-silence-limit-ms` / `peer-silence-limit-bytes`, a peer silent for
//! longer than the first, or while this node holds more than the second in
//! backlog and tombstones, is marked *past the bound*: the stable vector is
//! computed without it ([`ReplStatus::stability`]) and the log is trimmed
//! past its acked point ([`ReplStatus::trim_point`]). When it returns, the
//! log cannot serve its acked position, so its link starts a full state
//! transfer, whose causal context covers everything collected (the safety
//! argument is in docs/replication.md, "Silent peers"). The mark clears
//! once its outbound link is connected again (its acks are then current).
//!
//! Plain bookkeeping over [`ReplStatus`]; the server's housekeeping calls
//! [`update`] once a second. No I/O.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::status::{PeerInfo, ReplStatus};

/// The two bounds; 0 = that bound is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SilenceLimits {
    pub ms: u64,
    pub bytes: u64,
}

/// How long a link must have been down before the byte bound applies.
pub const BYTE_BOUND_GRACE_MS: u64 = 1000;

/// Wall-clock milliseconds (the silence clock of INFO and [`update`]).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether a link in this state delivers this node's writes to its peer.
fn is_up(p: &PeerInfo) -> bool {
    matches!(p.state, "connected" | "syncing")
}

/// One pass: notes when each peer's link went down, marks peers past the
/// bound (`held_bytes`: this node's backlog plus tombstone bytes), and
/// clears the mark of a peer whose link is connected again. Returns how
/// many peers are past the bound.
pub fn update(status: &ReplStatus, limits: SilenceLimits, held_bytes: u64, now_ms: u64) -> usize {
    *status.silence.lock() = (limits, held_bytes);
    let mut past = 0;
    for (addr, p) in &status.peers {
        let mut p = p.lock();
        if is_up(&p) {
            p.down_since_ms = None;
            if p.past_bound && p.state == "connected" {
                p.past_bound = false;
                info!(peer = %addr, "peer past the silence bound is back and in sync");
            }
        } else {
            let since = *p.down_since_ms.get_or_insert(now_ms);
            let silent = now_ms.saturating_sub(since);
            let by_time = limits.ms > 0 && silent >= limits.ms;
            // The byte bound needs the link down for a round at least, so
            // a node that restarts holding much (or a link that blips)
            // does not cut its peers off before they can reconnect.
            let by_bytes =
                limits.bytes > 0 && held_bytes >= limits.bytes && silent >= BYTE_BOUND_GRACE_MS;
            if !p.past_bound && (by_time || by_bytes) {
                p.past_bound = true;
                warn!(
                    peer = %addr,
                    silent_ms = silent,
                    held_bytes,
                    "peer past the silence bound: it no longer holds back tombstone collection or the backlog, and gets a full sync when it returns"
                );
            }
        }
        past += p.past_bound as usize;
    }
    past
}

/// Bytes this node holds because some peer is silent and still within the
/// bound (0 when every silent peer is past it, or none is silent).
pub fn held_for_silent(status: &ReplStatus, held_bytes: u64) -> u64 {
    let holding = status.peers.iter().any(|(_, p)| {
        let p = p.lock();
        !is_up(&p) && !p.past_bound
    });
    if holding {
        held_bytes
    } else {
        0
    }
}

/// INFO lines of the bound (as of the last [`update`]).
pub fn write_info(status: &ReplStatus, out: &mut String) {
    use std::fmt::Write as _;
    let (limits, held_bytes) = *status.silence.lock();
    let past = status
        .peers
        .iter()
        .filter(|(_, p)| p.lock().past_bound)
        .count();
    let _ = write!(
        out,
        "peer_silence_limit_ms:{}\r\npeer_silence_limit_bytes:{}\r\npeers_past_silence_bound:{past}\r\nheld_for_silent_peers_bytes:{}\r\n",
        limits.ms,
        limits.bytes,
        held_for_silent(status, held_bytes),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{ReplicaId, VersionVector};

    fn vv(entries: &[(u64, u64)]) -> VersionVector {
        let mut v = VersionVector::new();
        for &(r, s) in entries {
            v.raise(ReplicaId(r), s);
        }
        v
    }

    #[test]
    fn a_peer_down_past_the_time_bound_stops_holding_back_collection_and_trimming() {
        let status = ReplStatus::new(ReplicaId(1), &["a:1".into(), "b:1".into()]);
        for (i, (_, p)) in status.peers.iter().enumerate() {
            let mut p = p.lock();
            p.replica = Some(ReplicaId(2 + i as u64));
            p.acked = Some(vv(&[(1, 3 + 4 * i as u64)]));
            p.state = "connected";
        }
        let own = vv(&[(1, 10)]);
        let limits = SilenceLimits { ms: 1000, bytes: 0 };
        assert_eq!(update(&status, limits, 0, 5_000), 0);
        assert_eq!(status.trim_point(10), 3);
        // Peer a goes down: held back until the bound passes.
        status.peers[0].1.lock().state = "down";
        assert_eq!(update(&status, limits, 0, 6_000), 0);
        assert_eq!(status.stability(&own).stable.get(ReplicaId(1)), 3);
        assert_eq!(held_for_silent(&status, 77), 77);
        assert_eq!(update(&status, limits, 0, 6_999), 0);
        assert_eq!(update(&status, limits, 0, 7_000), 1);
        let st = status.stability(&own);
        assert_eq!(st.stable.get(ReplicaId(1)), 7);
        assert_eq!(st.strict.get(ReplicaId(1)), 3);
        assert_eq!(st.within, Some(vec![ReplicaId(1), ReplicaId(3)]));
        assert_eq!(status.trim_point(10), 7);
        assert_eq!(held_for_silent(&status, 77), 0);
        // Syncing keeps it out; connected again clears the mark.
        status.peers[0].1.lock().state = "syncing";
        assert_eq!(update(&status, limits, 0, 8_000), 1);
        status.peers[0].1.lock().state = "connected";
        assert_eq!(update(&status, limits, 0, 9_000), 0);
        assert_eq!(
            status.stability(&own),
            crate::store::Stability::all(vv(&[(1, 3)]))
        );
    }

    #[test]
    fn the_byte_bound_marks_silent_peers_only_and_zero_means_unbounded() {
        let status = ReplStatus::new(ReplicaId(1), &["a:1".into(), "b:1".into()]);
        status.peers[1].1.lock().state = "connected";
        let off = SilenceLimits::default();
        assert_eq!(update(&status, off, u64::MAX, 0), 0);
        let limits = SilenceLimits { ms: 0, bytes: 100 };
        assert_eq!(update(&status, limits, 99, 1), 0);
        assert_eq!(update(&status, limits, 100, 2), 0, "within the grace");
        assert_eq!(update(&status, limits, 99, 1001), 0);
        assert_eq!(update(&status, limits, 100, 1001), 1);
        assert!(status.peers[0].1.lock().past_bound);
        assert!(!status.peers[1].1.lock().past_bound);
        // With every silent peer past the bound and no peer that never
        // acked left inside it, only the connected peer's acks count; it
        // never acked, so nothing is stable yet.
        let own = vv(&[(1, 5)]);
        assert_eq!(status.stability(&own).stable, VersionVector::new());
        status.peers[1].1.lock().acked = Some(own.clone());
        assert_eq!(status.stability(&own).stable, own);
        assert_eq!(status.trim_point(5), 5);
    }
}
