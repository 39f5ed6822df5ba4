//! cordis: an active-active, geo-replicated cache that speaks the Redis
//! protocol. Every value is a CRDT; every write yields a delta that is
//! applied locally and queued for peers.
//!
//! Layout (dependencies point one way: `crdt` ← `store` ← `commands` ←
//! `server`; `crdt` ← `store` ← `replication`; `pubsub` ← `commands`;
//! `protocol` and `pubsub` depend on nothing internal):
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | RESP2/RESP3 request parsing (inline too), limits, reply encoding |
//! | [`crdt`] | pure data types: HLC, dots, version vectors, the key CRDT, exact counter numbers, the collection CRDTs (OR-set, OR-map, sorted set, sequence) and the `ElementCrdt` trait they share (`crdt::element`) |
//! | [`store`] | 16 databases of key states, expiry, tombstones, remote deltas, the outgoing delta log, WATCH tokens, keys blocked clients wait on, digest, memory accounting |
//! | [`commands`] | the command tables (one module per family), the argument cursor and shared error texts (`commands::args`), handlers `fn(&mut Context, &mut Args) -> CmdResult`, the dispatcher, MULTI/EXEC, the one park path for blocking commands |
//! | [`replication`] | peer links: handshake, delta streaming and acks, full sync, anti-entropy, what WAIT/INFO/GC read |
//! | [`server`] | accept loop, the connection tasks that move bytes, the sans-I/O client session that decides what a client does next (pipelining, client limits, parking), background tasks, shutdown |
//! | [`pubsub`] | what is pushed to clients unasked (MONITOR now; Pub/Sub, notifications, tracking later) and its bounded per-client queues; depends on nothing internal |
//! | [`scripting`] | the Lua VMs and their sandbox, Lua↔reply conversions, the EVAL script cache and FUNCTION libraries; scripts reach commands through a host the command layer gives each run |
//! | [`config`] | flags and TOML settings, CONFIG GET/SET view |
//! | [`rdb`] | Redis's value serialization (RDB v10 encodings, DUMP payload framing, CRC-64, LZF) and its bridge to the key CRDT; depends on `crdt` only |
//! | [`persist`] | node identity across restarts (name + incarnation), the snapshot file, save bookkeeping |

pub mod commands;
pub mod config;
pub mod crdt;
pub mod persist;
pub mod protocol;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod store;
