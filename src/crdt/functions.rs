//! The replicated set of function libraries (FUNCTION LOAD/DELETE/FLUSH/
//! RESTORE): library name → code, merged as a causal last-writer-wins
//! register per name plus an observed-remove flush.
//!
//! Each name holds the *versions* no write has yet observed and replaced:
//! a version is a dot, the writing command's HLC and either the code (a
//! LOAD) or nothing (a DELETE tombstone). A write removes every version of
//! its name the writer had seen and adds its own, so concurrent writes
//! leave several versions; the one with the largest `(hlc, replica)` is
//! what the name reads as, and a tombstone winning means the library is
//! absent. So a DELETE beats a concurrent LOAD with a smaller timestamp
//! (it does not come back), and a LOAD with a larger one survives it.
//!
//! A FLUSH removes every version whose dot its version vector covers (what
//! the flushing node had seen) and nothing else: a LOAD made concurrently in
//! another region survives. The flush's vector is kept as a `floor` so a
//! covered version that reaches a node after the flush (through a third
//! node) is dropped on arrival.
//!
//! Removed dots go into the caller's causal context (the store's), so a
//! version whose removal arrived first is never added. Pure data: no clock,
//! no I/O. The convergence laws are tests in `tests/function_laws.rs`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{CausalContext, Dot, Hlc, VersionVector};

/// One write of a library name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryVersion {
    pub dot: Dot,
    /// The writing command's timestamp (ties: the origin's replica id).
    pub hlc: Hlc,
    /// The library's code; `None` for a FUNCTION DELETE tombstone.
    pub code: Option<Bytes>,
}

impl LibraryVersion {
    /// The last-writer-wins order between concurrent versions.
    fn rank(&self) -> (Hlc, super::ReplicaId, u64) {
        (self.hlc, self.dot.replica, self.dot.seq)
    }
}

/// A change to the library set, applied the same way locally and at peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LibraryDelta {
    /// LOAD (`code` set) or DELETE (`code` empty) of `name`: removes the
    /// versions `removes` names and adds `version`.
    Write {
        name: String,
        removes: Vec<Dot>,
        version: LibraryVersion,
    },
    /// FLUSH: removes every version `seen` covers.
    Flush { seen: VersionVector },
}

/// The library set of one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionLibraries {
    names: BTreeMap<String, Vec<LibraryVersion>>,
    /// The union of every flush applied: versions it covers are gone.
    floor: VersionVector,
}

impl FunctionLibraries {
    pub fn new() -> Self {
        Self::default()
    }

    /// The library code `name` reads as, if it is present.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        Self::winner(self.names.get(name)?)
    }

    fn winner(versions: &[LibraryVersion]) -> Option<&Bytes> {
        versions.iter().max_by_key(|v| v.rank())?.code.as_ref()
    }

    /// The present libraries, by name.
    pub fn visible(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.names
            .iter()
            .filter_map(|(name, versions)| Some((name.as_str(), Self::winner(versions)?)))
    }

    /// Versions held (present libraries and tombstones).
    pub fn version_count(&self) -> usize {
        self.names.values().map(Vec::len).sum()
    }

    /// A LOAD (`Some(code)`) or DELETE (`None`) of `name` at `hlc` with the
    /// fresh dot `dot`, replacing every version this node holds.
    pub fn delta_write(&self, name: &str, code: Option<Bytes>, hlc: Hlc, dot: Dot) -> LibraryDelta {
        let removes = self
            .names
            .get(name)
            .map(|vs| vs.iter().map(|v| v.dot).collect())
            .unwrap_or_default();
        LibraryDelta::Write {
            name: name.to_owned(),
            removes,
            version: LibraryVersion { dot, hlc, code },
        }
    }

    /// A FLUSH of everything this node has seen (`seen`: its context's
    /// version vector).
    pub fn delta_flush(seen: &VersionVector) -> LibraryDelta {
        LibraryDelta::Flush { seen: seen.clone() }
    }

    /// Applies a delta (local or remote). Every dot it removes or adds is
    /// recorded in `ctx`.
    pub fn apply(&mut self, delta: &LibraryDelta, ctx: &mut CausalContext) {
        match delta {
            LibraryDelta::Write {
                name,
                removes,
                version,
            } => {
                let fresh = !ctx.contains(version.dot) && !self.floor.covers(version.dot);
                for &dot in removes {
                    ctx.insert(dot);
                }
                let versions = self.names.entry(name.clone()).or_default();
                versions.retain(|v| !removes.contains(&v.dot));
                if fresh && !versions.iter().any(|v| v.dot == version.dot) {
                    versions.push(version.clone());
                }
                ctx.insert(version.dot);
                if versions.is_empty() {
                    self.names.remove(name);
                }
            }
            LibraryDelta::Flush { seen } => {
                self.floor.merge(seen);
                self.drop_floored();
            }
        }
    }

    fn drop_floored(&mut self) {
        let floor = &self.floor;
        self.names.retain(|_, versions| {
            versions.retain(|v| !floor.covers(v.dot));
            !versions.is_empty()
        });
    }

    /// The join of two replicas' sets, each with the context it had when
    /// it was read: a version survives if both hold it, or if the side
    /// without it never saw its dot; then both floors apply.
    pub fn join(&self, my_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self {
        let mut names: BTreeMap<String, Vec<LibraryVersion>> = BTreeMap::new();
        let empty = Vec::new();
        let all: std::collections::BTreeSet<&String> =
            self.names.keys().chain(other.names.keys()).collect();
        for name in all {
            let mine = self.names.get(name).unwrap_or(&empty);
            let theirs = other.names.get(name).unwrap_or(&empty);
            let mut kept: Vec<LibraryVersion> = mine
                .iter()
                .filter(|v| theirs.contains(v) || !other_ctx.contains(v.dot))
                .cloned()
                .collect();
            for v in theirs {
                if !mine.contains(v) && !my_ctx.contains(v.dot) {
                    kept.push(v.clone());
                }
            }
            if !kept.is_empty() {
                kept.sort_by_key(|v| v.dot);
                names.insert(name.clone(), kept);
            }
        }
        let mut floor = self.floor.clone();
        floor.merge(&other.floor);
        let mut joined = FunctionLibraries { names, floor };
        joined.drop_floored();
        joined
    }

    /// Forgets floor entries every replica has applied (`stable`): no
    /// version they cover can still arrive anywhere.
    pub fn collect_garbage(&mut self, stable: &VersionVector) {
        let mut kept = VersionVector::new();
        for (r, s) in self.floor.iter() {
            if stable.get(r) < s {
                kept.raise(r, s);
            }
        }
        self.floor = kept;
    }

    /// The dots of every version held (what a node that has this state
    /// has seen at least).
    pub fn for_each_dot(&self, f: &mut impl FnMut(Dot)) {
        for versions in self.names.values() {
            for v in versions {
                f(v.dot);
            }
        }
    }

    /// Versions in a canonical order, for comparing replicas in tests.
    pub fn canonical(&self) -> Vec<(String, Vec<LibraryVersion>)> {
        self.names
            .iter()
            .map(|(n, vs)| {
                let mut vs = vs.clone();
                vs.sort_by_key(|v| v.dot);
                (n.clone(), vs)
            })
            .collect()
    }
}
