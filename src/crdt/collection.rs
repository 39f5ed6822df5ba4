//! Collection values — hashes, sets, sorted sets, lists — as they sit inside
//! a key's CRDT ([`super::KeyState`]), and the one trait every collection
//! type implements so the key, the store and replication can treat them
//! alike.
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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::causal::{CausalContext, Dot, VersionVector};
use super::clock::Hlc;
use super::list::{List, ListDelta};
use super::ormap::{HashDelta, OrMap};
use super::orset::{OrSet, SetDelta};
use super::zset::{ZSet, ZSetDelta};

/// The type of a key's value, as TYPE names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    String,
    List,
    Set,
    ZSet,
    Hash,
}

impl Kind {
    /// The name TYPE and SCAN TYPE use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Hash => "hash",
        }
    }
}

/// One collection type's CRDT. Implementors are pure (no clock, no
/// randomness: callers pass timestamps, dots and random numbers in).
pub trait ElementCrdt:
    Default + Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned
{
    /// What one write changes; applied locally and shipped unchanged.
    type Delta: Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned;

    const KIND: Kind;

    /// Applies a delta, recording every dot it names in `ctx`. Idempotent:
    /// an element dot already in `ctx` is never added again.
    fn apply(&mut self, delta: &Self::Delta, ctx: &mut CausalContext);

    /// State merge with another replica's state (each with its context):
    /// an element dot survives if both sides hold it or the side lacking it
    /// never saw it.
    fn join(&self, self_ctx: &CausalContext, other: &Self, other_ctx: &CausalContext) -> Self;

    /// Number of visible elements (SCARD, HLEN, ZCARD, LLEN).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when nothing at all is stored (no elements, no markers).
    fn is_blank(&self) -> bool;

    /// The delta that removes everything this state holds (DEL, SET over
    /// the key, purge of an expired key).
    fn delta_clear(&self) -> Self::Delta;

    /// DEL's delta: like [`Self::delta_clear`], but it may leave markers
    /// made with fresh dots (a hash's counter fields remember the totals
    /// they reset, so concurrent increments count from the right place).
    fn delta_delete_all(&self, _ts: Hlc, _next_dot: &mut dyn FnMut() -> Dot) -> Self::Delta {
        self.delta_clear()
    }

    /// Calls `visit` with every dot the state holds (element dots and any
    /// internal markers): a full-state sync records them as seen.
    fn for_each_dot(&self, visit: &mut dyn FnMut(Dot));

    /// The delta that removes every element dot `seen` covers (a remote
    /// FLUSHDB's observed-remove, and late arrivals it already removed).
    fn delta_remove_covered(&self, seen: &VersionVector) -> Self::Delta;

    /// A delta that recreates this value's visible content with fresh dots
    /// on an empty key (RENAME's destination, *STORE commands).
    fn delta_copy(&self, ts: Hlc, next_dot: &mut dyn FnMut() -> Dot) -> Self::Delta;

    /// Appends `next` (computed on the state `delta` produces) to `delta`.
    fn delta_then(delta: &mut Self::Delta, next: Self::Delta);

    fn delta_is_empty(delta: &Self::Delta) -> bool;

    /// Rough in-memory size of a delta, for the byte-bounded delta log.
    fn delta_bytes(delta: &Self::Delta) -> usize;

    /// Feeds the visible content, in a canonical order, to a digest.
    fn digest(&self, feed: &mut dyn FnMut(&[u8]));

    /// Drops internal markers every replica has seen (`stable` covers them).
    fn collect_garbage(&mut self, _stable: &VersionVector) {}

    /// OBJECT ENCODING's answer.
    fn encoding(&self) -> &'static str;

    fn wrap(self) -> Collection;
    fn wrap_delta(delta: Self::Delta) -> CollDelta;
    fn of(coll: &Collection) -> Option<&Self>;
    fn of_mut(coll: &mut Collection) -> Option<&mut Self>;
    fn delta_of(delta: &CollDelta) -> Option<&Self::Delta>;
    fn unwrap_delta(delta: CollDelta) -> Result<Self::Delta, CollDelta>;
}

/// The enum glue every `ElementCrdt` impl needs (`wrap`, `wrap_delta`,
/// `of`, `of_mut`, `delta_of`, `unwrap_delta`), written once: `$variant`
/// names the type's variant in both [`Collection`] and [`CollDelta`].
macro_rules! collection_glue {
    ($variant:ident) => {
        fn wrap(self) -> $crate::crdt::Collection {
            $crate::crdt::Collection::$variant(self)
        }

        fn wrap_delta(delta: Self::Delta) -> $crate::crdt::CollDelta {
            $crate::crdt::CollDelta::$variant(delta)
        }

        fn of(coll: &$crate::crdt::Collection) -> Option<&Self> {
            match coll {
                $crate::crdt::Collection::$variant(c) => Some(c),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }

        fn of_mut(coll: &mut $crate::crdt::Collection) -> Option<&mut Self> {
            match coll {
                $crate::crdt::Collection::$variant(c) => Some(c),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }

        fn delta_of(delta: &$crate::crdt::CollDelta) -> Option<&Self::Delta> {
            match delta {
                $crate::crdt::CollDelta::$variant(d) => Some(d),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }

        fn unwrap_delta(
            delta: $crate::crdt::CollDelta,
        ) -> Result<Self::Delta, $crate::crdt::CollDelta> {
            match delta {
                $crate::crdt::CollDelta::$variant(d) => Ok(d),
                #[allow(unreachable_patterns)]
                other => Err(other),
            }
        }
    };
}
pub(crate) use collection_glue;

/// A collection value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Collection {
    Set(OrSet),
    ZSet(ZSet),
    List(List),
    Hash(OrMap),
}

/// A delta to one collection value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CollDelta {
    Set(SetDelta),
    ZSet(ZSetDelta),
    List(ListDelta),
    Hash(HashDelta),
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
            other => unreachable!("no collection for {other:?}"),
        }
    }

    pub fn len(&self) -> usize {
        with_collection!(self, c: T => <T as ElementCrdt>::len(c))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
