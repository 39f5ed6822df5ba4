//! What is pushed to clients that did not ask for it at that moment, and
//! who receives it: MONITOR's feed and the bounded per-client push queue
//! ([`push`]) now; channels, patterns, keyspace notifications and
//! client-tracking tables as they are built. It knows neither sockets (the
//! server delivers what is queued) nor CRDTs, and depends on nothing else
//! in the crate: a receiving client is anything that implements
//! [`push::Receiver`].

pub mod push;
