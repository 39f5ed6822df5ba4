//! Deserializers for the collections inside deltas and states, which arrive
//! from peers as untrusted bytes. `smallvec`'s own serde support reserves
//! whatever length the input claims (a fuzzer crashed a node with a claim of
//! 2^62 elements); going through `Vec`, whose deserializer caps its
//! up-front reservation, allocates only as elements actually arrive.
//! Ordered collections are also re-sorted, so a peer cannot break the
//! binary-search invariants. [`decode_untrusted`] decodes a whole message
//! so that no claimed length can reserve more than the bytes present.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use smallvec::{Array, SmallVec};

/// Decodes `bytes` (bincode 2, serde mode, standard configuration) as
/// sent by an untrusted peer, returning the value and the bytes used.
///
/// bincode counts every decoded value against its allocation limit at its
/// in-memory size (a one-byte varint `u64` counts 8, a `u128` 16) and
/// reserves a byte string's claimed length up front; sequences go through
/// serde's visitors, which reserve cautiously and count nothing. So a
/// legitimate message never counts more than 16 times its length, and a
/// limit of that size refuses any claimed length far beyond the bytes
/// present before it is reserved. The limit is a const generic, hence a
/// ladder of steps: a forged claim can reserve at most 64 times the
/// input's size.
pub fn decode_untrusted<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    /// What a legitimate message of `len` bytes may count (see above).
    const COUNTED_PER_BYTE: usize = 16;
    let needed = bytes.len().saturating_mul(COUNTED_PER_BYTE);
    macro_rules! within_the_first_limit_covering {
        ($($limit:expr),*) => {
            $(
                if needed <= $limit {
                    let config = bincode::config::standard().with_limit::<{ $limit }>();
                    return bincode::serde::decode_from_slice(bytes, config);
                }
            )*
        };
    }
    within_the_first_limit_covering!(
        1 << 12,
        1 << 14,
        1 << 16,
        1 << 18,
        1 << 20,
        1 << 22,
        1 << 24,
        1 << 26,
        1 << 28,
        1 << 30,
        1 << 32,
        1 << 34,
        1 << 36
    );
    Err(bincode::error::DecodeError::LimitExceeded)
}

/// A `SmallVec` read through `Vec`'s cautious deserializer.
pub fn smallvec<'de, D, A>(deserializer: D) -> Result<SmallVec<A>, D::Error>
where
    D: Deserializer<'de>,
    A: Array,
    A::Item: Deserialize<'de>,
{
    Vec::<A::Item>::deserialize(deserializer).map(SmallVec::from_vec)
}
