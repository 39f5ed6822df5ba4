//! cordis: an active-active, geo-replicated cache that speaks the Redis
//! protocol. Every value is a CRDT; every write yields a delta that is
//! applied locally and queued for peers.
//!
//! Layout (dependencies point one way: `crdt` ← `store` ← `commands` ←
//! `server`; `crdt` ← `store` ← `replication`; `protocol` depends on
//! nothing internal):
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | RESP2/RESP3 request parsing (inline too), limits, reply encoding |
//! | [`crdt`] | pure data types: HLC, dots, version vectors, the key CRDT, exact counter numbers, and the collection CRDTs (OR-set, OR-map, sorted set, sequence) |
//! | [`store`] | 16 databases of key states, expiry, tombstones, remote deltas, the outgoing delta log, WATCH tokens, keys blocked clients wait on, digest, memory accounting |
//! | [`commands`] | the command tables (one module per family), argument parsing, handlers, the dispatcher, MULTI/EXEC, blocking pops |
//! | [`replication`] | peer links: handshake, delta streaming and acks, full sync, anti-entropy, what WAIT/INFO/GC read |
//! | [`server`] | accept loop, connections, pipelining, client limits, background tasks, shutdown |
//! | [`config`] | flags and TOML settings, CONFIG GET/SET view |

pub mod commands;
pub mod config;
pub mod crdt;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod store;
