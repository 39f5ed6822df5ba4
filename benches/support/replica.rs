//! A replica's view of one key for the CRDT benchmarks (`store.rs`,
//! `replication.rs`): its versions, causal context and next sequence
//! number, with local SET/INCRBY deltas.
#![allow(dead_code)]

use bytes::Bytes;
use cordis::crdt::{Amount, CausalContext, Dot, Hlc, KeyDelta, KeyState, ReplicaId, TtlChange};

/// A replica's view of one key: its versions, its causal context and its next sequence number.
#[derive(Clone)]
pub struct Replica {
    pub id: ReplicaId,
    pub seq: u64,
    pub state: KeyState,
    pub ctx: CausalContext,
}

impl Replica {
    pub fn new(id: u64) -> Self {
        Replica {
            id: ReplicaId(id),
            seq: 0,
            state: KeyState::new(),
            ctx: CausalContext::new(),
        }
    }

    pub fn set_delta(&mut self, value: &'static [u8], ms: u64) -> KeyDelta {
        let (id, seq) = (self.id, &mut self.seq);
        let mut next = || {
            *seq += 1;
            Dot::new(id, *seq)
        };
        self.state.delta_set(
            Bytes::from_static(value),
            Hlc::new(ms, 0),
            TtlChange::Clear,
            &mut next,
        )
    }

    pub fn incr_delta(&mut self, by: i64) -> KeyDelta {
        let (id, seq) = (self.id, &mut self.seq);
        let mut next = || {
            *seq += 1;
            Dot::new(id, *seq)
        };
        self.state.delta_incr(id, Amount::from_int(by), &mut next)
    }

    pub fn apply(&mut self, delta: &KeyDelta) {
        self.state.apply(delta, &mut self.ctx);
    }

    /// Computes and applies one local SET; returns its delta for the peers.
    pub fn set(&mut self, value: &'static [u8], ms: u64) -> KeyDelta {
        let d = self.set_delta(value, ms);
        self.apply(&d);
        d
    }

    /// Computes and applies one local INCRBY; returns its delta for the peers.
    pub fn incr(&mut self, by: i64) -> KeyDelta {
        let d = self.incr_delta(by);
        self.apply(&d);
        d
    }
}
