//! Collection values — hashes, sets, sorted sets, lists — as they sit inside
//! a key's CRDT ([`super::KeyState`]): the [`Collection`] and [`CollDelta`]
//! enums over the four types, which let the key, the store and replication
//! treat them alike through [`ElementCrdt`] (defined in
//! [`super::element`], which the types import instead of this module).
//!
//! A collection is a *dot store* over elements: each element carries the
//! dots of the writes that made it, a delta names the element dots it
//! removes and the element dots it adds, and the node-wide causal context
//! says which dots were ever seen. So, exactly as for string keys, a remove
//! only takes what it observed and concurrent adds survive (add-wins), and a
//! state merge keeps an element unless the other side saw its dot and
//! dropped it. No per-element tombstones are kept.
//!
//! Which type a key has: each collection write that *creates* the key (the
//! key was not visible as that type) also adds a `Created { ts, kind }`
//! version to the key. When regions create one key with different types
//! concurrently, the type whose live creation has the larger HLC wins (a
//! string's time is its winning SET's HLC); the loser is hidden on every
//! node and removed by the next DEL or SET that observes it.

use serde::{Deserialize, Serialize};

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::element::{ElementCrdt, Kind};
use super::list::{List, ListDelta};
use super::ormap::{HashDelta, OrMap};
use super::orset::{OrSet, SetDelta};
use super::stream::{Stream, StreamDelta};
use super::zset::{ZSet, ZSetDelta};

/// A collection value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Collection {
    Set(OrSet),
    ZSet(ZSet),
    List(List),
    Hash(OrMap),
    Stream(Stream),
}

/// A delta to one collection value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CollDelta {
    Set(SetDelta),
    ZSet(ZSetDelta),
    List(ListDelta),
    Hash(HashDelta),
    Stream(StreamDelta),
}

/// Runs `$body` with `$x` bound to the concrete collection inside `$c`
/// (and `$t` naming its type).
macro_rules! with_collection {
    ($c:expr, $x:ident : $t:ident => $body:expr) => {
        match $c {
            Collection::Set($x) => {
                #[allow(dead_code)]
                type $t = OrSet;
                $body
            }
            Collection::ZSet($x) => {
                #[allow(dead_code)]
                type $t = ZSet;
                $body
            }
            Collection::List($x) => {
                #[allow(dead_code)]
                type $t = List;
                $body
            }
            Collection::Hash($x) => {
                #[allow(dead_code)]
                type $t = OrMap;
                $body
            }
            Collection::Stream($x) => {
                #[allow(dead_code)]
                type $t = Stream;
                $body
            }
        }
    };
}

macro_rules! with_delta {
    ($d:expr, $x:ident : $t:ident => $body:expr) => {
        match $d {
            CollDelta::Set($x) => {
                #[allow(dead_code)]
                type $t = OrSet;
                $body
            }
            CollDelta::ZSet($x) => {
                #[allow(dead_code)]
                type $t = ZSet;
                $body
            }
            CollDelta::List($x) => {
                #[allow(dead_code)]
                type $t = List;
                $body
            }
            CollDelta::Hash($x) => {
                #[allow(dead_code)]
                type $t = OrMap;
                $body
            }
            CollDelta::Stream($x) => {
                #[allow(dead_code)]
                type $t = Stream;
                $body
            }
        }
    };
}

impl Collection {
    pub fn kind(&self) -> Kind {
        with_collection!(self, _c: T => T::KIND)
    }

    /// An empty collection of `kind` (not `Kind::String`).
    pub fn empty(kind: Kind) -> Collection {
        match kind {
            Kind::Set => Collection::Set(OrSet::default()),
            Kind::ZSet => Collection::ZSet(ZSet::default()),
            Kind::List => Collection::List(List::default()),
            Kind::Hash => Collection::Hash(OrMap::default()),
            Kind::Stream => Collection::Stream(Stream::default()),
            other => unreachable!("no collection for {other:?}"),
        }
    }

    pub fn len(&self) -> usize {
        with_collection!(self, c: T => <T as ElementCrdt>::len(c))
    }

    /// No visible value (a stream with no entries can still exist).
    pub fn is_empty(&self) -> bool {
        with_collection!(self, c: T => <T as ElementCrdt>::is_empty(c))
    }

    pub fn is_blank(&self) -> bool {
        with_collection!(self, c: T => <T as ElementCrdt>::is_blank(c))
    }

    pub fn delta_clear(&self) -> CollDelta {
        with_collection!(self, c: T => T::wrap_delta(c.delta_clear()))
    }

    pub fn delta_delete_all(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> CollDelta {
        with_collection!(self, c: T => T::wrap_delta(c.delta_delete_all(ts, next_dot)))
    }

    pub fn for_each_dot(&self, visit: &mut dyn FnMut(Dot)) {
        with_collection!(self, c: T => c.for_each_dot(visit))
    }

    pub fn delta_remove_covered(&self, seen: &VersionVector) -> CollDelta {
        with_collection!(self, c: T => T::wrap_delta(c.delta_remove_covered(seen)))
    }

    pub fn delta_copy(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> CollDelta {
        with_collection!(self, c: T => T::wrap_delta(c.delta_copy(ts, next_dot)))
    }

    /// Applies `delta` if it is of this collection's kind.
    pub fn apply(&mut self, delta: &CollDelta, ctx: &mut CausalContext) {
        with_collection!(self, c: T => {
            if let Some(d) = T::delta_of(delta) {
                c.apply(d, ctx)
            }
        })
    }

    /// Joins with a same-kind collection of another replica (`None`: the
    /// other replica holds no collection of this kind).
    pub fn join(
        &self,
        self_ctx: &CausalContext,
        other: Option<&Collection>,
        other_ctx: &CausalContext,
    ) -> Collection {
        with_collection!(self, c: T => {
            let empty = T::default();
            let theirs = other.and_then(T::of).unwrap_or(&empty);
            c.join(self_ctx, theirs, other_ctx).wrap()
        })
    }

    pub fn digest(&self, feed: &mut dyn FnMut(&[u8])) {
        with_collection!(self, c: T => c.digest(feed))
    }

    pub fn collect_garbage(&mut self, stable: &VersionVector) {
        with_collection!(self, c: T => c.collect_garbage(stable))
    }

    /// See [`super::KeyState::observes_runs_of`].
    pub fn observes_runs_of(&self, silent: &dyn Fn(ReplicaId) -> bool) -> bool {
        with_collection!(self, c: T => c.observes_runs_of(silent))
    }

    pub fn encoding(&self) -> &'static str {
        with_collection!(self, c: T => c.encoding())
    }
}

impl CollDelta {
    pub fn kind(&self) -> Kind {
        with_delta!(self, _d: T => T::KIND)
    }

    pub fn is_empty(&self) -> bool {
        with_delta!(self, d: T => T::delta_is_empty(d))
    }

    pub fn approximate_bytes(&self) -> usize {
        with_delta!(self, d: T => T::delta_bytes(d))
    }

    /// Appends `next` when both are of one kind; otherwise hands it back.
    pub fn then(&mut self, next: CollDelta) -> Option<CollDelta> {
        with_delta!(self, d: T => match T::unwrap_delta(next) {
            Ok(next) => {
                T::delta_then(d, next);
                None
            }
            Err(other) => Some(other),
        })
    }
}
