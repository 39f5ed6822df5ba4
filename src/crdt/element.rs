//! What every collection type (set, sorted set, list, hash) is to the rest
//! of the crate: the [`ElementCrdt`] trait, the [`Kind`] a key's value
//! has, and the `collection_glue!` macro that writes each type's
//! `Collection`/`CollDelta` enum glue. The types import this module, and
//! `collection` imports the types, so the types and `collection` no longer
//! import each other (the trait still names the two enums in its glue
//! methods' signatures).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::causal::{CausalContext, Dot, ReplicaId, VersionVector};
use super::clock::Hlc;
use super::collection::{CollDelta, Collection};

/// The type of a key's value, as TYPE names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    String,
    List,
    Set,
    ZSet,
    Hash,
    Stream,
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
            Kind::Stream => "stream",
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

    /// Whether an internal marker records a counter run of an origin
    /// `silent` accepts (see `KeyState::observes_runs_of`).
    fn observes_runs_of(&self, _silent: &dyn Fn(ReplicaId) -> bool) -> bool {
        false
    }

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
