//! Deserializers for the collections inside deltas and states, which arrive
//! from peers as untrusted bytes. `smallvec`'s own serde support reserves
//! whatever length the input claims (a fuzzer crashed a node with a claim of
//! 2^62 elements); going through `Vec`, whose deserializer caps its
//! up-front reservation, allocates only as elements actually arrive.
//! Ordered collections are also re-sorted, so a peer cannot break the
//! binary-search invariants.

use serde::{Deserialize, Deserializer};
use smallvec::{Array, SmallVec};

/// A `SmallVec` read through `Vec`'s cautious deserializer.
pub fn smallvec<'de, D, A>(deserializer: D) -> Result<SmallVec<A>, D::Error>
where
    D: Deserializer<'de>,
    A: Array,
    A::Item: Deserialize<'de>,
{
    Vec::<A::Item>::deserialize(deserializer).map(SmallVec::from_vec)
}
