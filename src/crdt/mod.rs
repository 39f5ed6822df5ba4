//! Pure replicated data types: the hybrid logical clock, dots and version
//! vectors, exact counter numbers, and the per-key CRDT every value is stored
//! as. No I/O, no clocks, no randomness: callers pass time and dots in.
//!
//! - [`clock`]: HLC timestamps (`Hlc`) and the clock state.
//! - [`causal`]: replica ids, dots, version vectors, causal contexts.
//! - [`number`]: fixed-point decimals for INCRBY/INCRBYFLOAT.
//! - [`key`]: the key CRDT (versions + deltas) with its mutators and reads.
//! - [`element`]: the [`ElementCrdt`] trait every collection type
//!   implements and the [`Kind`] of a value (a leaf the types import).
//! - [`collection`]: collection values inside a key (the enums over the
//!   four types) and the type-conflict rule.
//! - [`members`]: the stable-slot member table sets, hashes and sorted sets
//!   store their elements in.
//! - [`orset`]: the add-wins set.
//! - [`zset`]: the sorted set (add-wins members, LWW + counter scores).
//! - [`list`]: the sequence (dense position ids, observed-remove pops).
//! - [`ormap`]: the hash (field → string-like value, observed-remove).
//! - [`stream`]: the stream (immutable entries by ID, observed-remove
//!   deletes, metadata and consumer-group registers).
//! - [`functions`]: the replicated function libraries (causal LWW per
//!   name, DELETE tombstones, observed-remove FLUSH).
//! - [`hll`]: HyperLogLog values in Redis's layout and their writes.
//! - [`compact`]: key names and values stored in as few heap blocks as
//!   their sizes allow.
//! - [`bounded`]: deserializers that keep untrusted peer input from
//!   reserving unbounded memory or breaking sort invariants.
//!
//! The merge laws are property tests in `tests/crdt_laws.rs`.

pub mod bitmap;
pub mod bounded;
pub mod causal;
pub mod clock;
pub mod collection;
pub mod compact;
pub mod element;
pub mod functions;
pub mod hll;
pub mod key;
pub mod list;
pub mod members;
pub mod number;
pub mod ormap;
pub mod orset;
pub mod stream;
pub mod zset;

pub use causal::{CausalContext, Dot, ReplicaId, VersionVector};
pub use clock::{Hlc, HlcClock};
pub use collection::{CollDelta, Collection};
pub use element::{ElementCrdt, Kind};
pub use functions::{FunctionLibraries, LibraryDelta, LibraryVersion};
pub use key::{KeyDelta, KeyState, Payload, StrValue, TtlChange, Version};
pub use number::Amount;
