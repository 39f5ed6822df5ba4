//! What the store tells the rest of the node as it changes, without knowing
//! who listens: keyspace events (the codes a command tagged its key deltas
//! with, whether a key appeared or vanished, expirations) and Pub/Sub
//! messages that arrived in a peer's batch. The server installs a
//! [`Notifier`] (the `pubsub` layer implements it); the store calls it under
//! its own lock, so a notifier must never wait.
//!
//! Event codes are numbers into the notification table that the `pubsub`
//! layer owns; the store only carries them, so a peer raises the same
//! events as the node where the command ran.

use serde::{Deserialize, Serialize};

/// Up to two keyspace events a command raised on one key (0 = none), in
/// the order it raised them. Shipped with the key's delta.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventCodes(pub [u8; 2]);

impl EventCodes {
    pub const NONE: EventCodes = EventCodes([0, 0]);
    /// The code of `evicted` in the notification table (the store raises
    /// it itself; a test in `pubsub::notify` keeps the two in step).
    pub const EVICTED: u8 = 49;

    pub fn one(code: u8) -> Self {
        EventCodes([code, 0])
    }

    pub fn two(first: u8, second: u8) -> Self {
        EventCodes([first, second])
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0, 0]
    }

    /// The codes set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.iter().copied().filter(|&c| c != 0)
    }
}

/// How a key's existence changed with one delta, on this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// The key did not exist (or had expired) and now holds a value.
    pub created: bool,
    /// The key held a value and now holds none.
    pub removed: bool,
}

/// Someone interested in what the store does. Every method is called with
/// the store locked and must return at once.
pub trait Notifier: Send + Sync {
    /// Whether keyspace events are wanted at all (checked before any work).
    fn wants_key_events(&self) -> bool;
    /// A key in `db` changed: the command's `codes`, and how its presence
    /// changed here.
    fn key_changed(&self, db: usize, key: &[u8], codes: EventCodes, presence: Presence);
    /// A key in `db` expired on this node.
    fn key_expired(&self, db: usize, key: &[u8]);
    /// A FLUSHDB or FLUSHALL (local or a peer's) emptied data.
    fn flushed(&self);
    /// A command's batch, a peer's batch or an expiry cycle is complete:
    /// what was gathered per batch can go out.
    fn end_of_batch(&self);
    /// A Pub/Sub message published on another node.
    fn message(&self, channel: &[u8], message: &[u8], shard: bool);
}
