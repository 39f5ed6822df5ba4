//! Causality bookkeeping: replica ids, dots, version vectors and the causal
//! context of a replica.
//!
//! Every local write event gets a *dot* `(replica, seq)` with `seq` contiguous
//! per origin. A [`VersionVector`] summarises "every dot of origin r up to n";
//! a [`CausalContext`] adds the dots seen out of order (for example a remove
//! of a dot that has not been delivered yet), so "has this dot been seen?" has
//! an exact answer while the summary stays compact.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// A replica's stable identity. Ids order deterministically, which breaks
/// ties between concurrent writes with equal timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub u64);

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The identity of one write event: the origin replica and its sequence
/// number there (starting at 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub replica: ReplicaId,
    pub seq: u64,
}

impl Dot {
    pub fn new(replica: ReplicaId, seq: u64) -> Self {
        Dot { replica, seq }
    }
}

/// For each origin, the highest sequence number such that every dot up to it
/// has been seen. Kept sorted by replica id; absent means zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionVector {
    #[serde(deserialize_with = "sorted_entries")]
    entries: SmallVec<[(ReplicaId, u64); 4]>,
}

/// Entries from a peer, sorted by replica with duplicates merged (max) and
/// zeros dropped, so lookups by binary search stay correct.
fn sorted_entries<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SmallVec<[(ReplicaId, u64); 4]>, D::Error> {
    let raw: SmallVec<[(ReplicaId, u64); 4]> = super::bounded::smallvec(deserializer)?;
    let mut vv = VersionVector::new();
    for (replica, seq) in raw {
        vv.raise(replica, seq);
    }
    Ok(vv.entries)
}

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, replica: ReplicaId) -> u64 {
        match self.entries.binary_search_by_key(&replica, |e| e.0) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Raises the entry for `replica` to at least `seq`.
    pub fn raise(&mut self, replica: ReplicaId, seq: u64) {
        match self.entries.binary_search_by_key(&replica, |e| e.0) {
            Ok(i) => {
                if self.entries[i].1 < seq {
                    self.entries[i].1 = seq
                }
            }
            Err(i) => {
                if seq > 0 {
                    self.entries.insert(i, (replica, seq))
                }
            }
        }
    }

    pub fn covers(&self, dot: Dot) -> bool {
        dot.seq <= self.get(dot.replica)
    }

    /// Pointwise maximum.
    pub fn merge(&mut self, other: &VersionVector) {
        for &(replica, seq) in &other.entries {
            self.raise(replica, seq);
        }
    }

    /// Pointwise minimum over the replicas of both vectors (absent = 0).
    pub fn meet(&self, other: &VersionVector) -> VersionVector {
        let mut out = VersionVector::new();
        for &(replica, seq) in &self.entries {
            out.raise(replica, seq.min(other.get(replica)));
        }
        out
    }

    /// True when every entry of `other` is at or below this vector's.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.entries.iter().all(|&(r, s)| self.get(r) >= s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Sum of all entries: the number of events this vector covers.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.1).sum()
    }
}

/// What a replica has seen: a version vector plus the dots seen beyond it
/// (out of order). Dots in the cloud fold into the vector as the gaps fill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalContext {
    vv: VersionVector,
    cloud: BTreeSet<Dot>,
}

impl CausalContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn version_vector(&self) -> &VersionVector {
        &self.vv
    }

    pub fn contains(&self, dot: Dot) -> bool {
        self.vv.covers(dot) || self.cloud.contains(&dot)
    }

    /// Records `dot` as seen.
    pub fn insert(&mut self, dot: Dot) {
        if self.vv.covers(dot) {
            return;
        }
        if dot.seq == self.vv.get(dot.replica) + 1 {
            self.vv.raise(dot.replica, dot.seq);
            self.absorb_cloud(dot.replica);
        } else {
            self.cloud.insert(dot);
        }
    }

    /// Marks every dot of `replica` up to `seq` as seen.
    pub fn insert_up_to(&mut self, replica: ReplicaId, seq: u64) {
        self.vv.raise(replica, seq);
        self.absorb_cloud(replica);
    }

    pub fn merge(&mut self, other: &CausalContext) {
        self.vv.merge(&other.vv);
        for &dot in &other.cloud {
            if !self.vv.covers(dot) {
                self.cloud.insert(dot);
            }
        }
        let replicas: Vec<ReplicaId> = self.vv.iter().map(|e| e.0).collect();
        for replica in replicas {
            self.absorb_cloud(replica);
        }
        // Cloud dots of replicas absent from the vector may now be contiguous.
        let starts: Vec<ReplicaId> = self
            .cloud
            .iter()
            .filter(|d| d.seq == 1)
            .map(|d| d.replica)
            .collect();
        for replica in starts {
            self.absorb_cloud(replica);
        }
    }

    /// Number of out-of-order dots held (pending removes, mostly).
    pub fn cloud_len(&self) -> usize {
        self.cloud.len()
    }

    fn absorb_cloud(&mut self, replica: ReplicaId) {
        // The common case (every dot seen in order) has nothing to absorb.
        if self.cloud.is_empty() {
            return;
        }
        loop {
            let next = Dot::new(replica, self.vv.get(replica) + 1);
            if self.cloud.remove(&next) {
                self.vv.raise(replica, next.seq);
            } else {
                break;
            }
        }
        // Drop cloud dots the vector now covers.
        let floor = self.vv.get(replica);
        if floor > 0 {
            let covered: Vec<Dot> = self
                .cloud
                .range(Dot::new(replica, 0)..=Dot::new(replica, floor))
                .copied()
                .collect();
            for dot in covered {
                self.cloud.remove(&dot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ReplicaId = ReplicaId(1);
    const B: ReplicaId = ReplicaId(2);

    #[test]
    fn out_of_order_dots_fold_into_the_vector_once_the_gap_fills() {
        let mut ctx = CausalContext::new();
        ctx.insert(Dot::new(A, 2));
        ctx.insert(Dot::new(A, 3));
        assert_eq!(ctx.version_vector().get(A), 0);
        assert!(ctx.contains(Dot::new(A, 3)));
        assert!(!ctx.contains(Dot::new(A, 1)));
        ctx.insert(Dot::new(A, 1));
        assert_eq!(ctx.version_vector().get(A), 3);
        assert_eq!(ctx.cloud_len(), 0);
    }

    #[test]
    fn merging_contexts_is_a_union() {
        let mut x = CausalContext::new();
        x.insert_up_to(A, 5);
        x.insert(Dot::new(B, 3));
        let mut y = CausalContext::new();
        y.insert_up_to(B, 2);
        x.merge(&y);
        assert_eq!(x.version_vector().get(B), 3);
        assert_eq!(x.version_vector().get(A), 5);
        assert_eq!(x.cloud_len(), 0);
    }

    #[test]
    fn meet_is_pointwise_minimum() {
        let mut x = VersionVector::new();
        x.raise(A, 5);
        x.raise(B, 1);
        let mut y = VersionVector::new();
        y.raise(A, 3);
        let m = x.meet(&y);
        assert_eq!(m.get(A), 3);
        assert_eq!(m.get(B), 0);
        assert!(x.dominates(&m));
    }
}
