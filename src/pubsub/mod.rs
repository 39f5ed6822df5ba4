//! What is pushed to clients that did not ask for it at that moment, and
//! who receives it: MONITOR's feed and the bounded per-client push queue
//! ([`push`]), channel, pattern and shard-channel subscriptions
//! ([`channels`]), keyspace notifications ([`notify`]) and client-side
//! caching's invalidations ([`tracking`]). It knows
//! neither sockets (the server delivers what is queued) nor CRDTs: a
//! receiving client is anything that implements [`push::Receiver`], and
//! keyspace events reach it through the store's `Notifier` hook. It uses
//! the store's glob matcher for patterns.

pub mod channels;
pub mod notify;
pub mod push;
pub mod replica_feed;
pub mod tracking;
