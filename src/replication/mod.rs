//! Active-active replication between regions (DESIGN.md §2): peer links
//! with a versioned wire format and shared-secret handshake, streaming of
//! this node's own deltas in seq order with version-vector acks, a bounded
//! backlog (the store's delta log, trimmed through what every peer acked),
//! resumption or full state transfer on reconnect, anti-entropy by range
//! digests, and the acked vectors that tombstone collection and WAIT read.
//!
//! Depends on `store` and `crdt` only; knows neither RESP nor the command
//! table. Layout:
//! - [`codec`]: messages and framing (the only place bytes are encoded).
//! - [`auth`]: HMAC and the handshake proofs.
//! - [`link`]: the per-link state machine, without I/O.
//! - [`net`]: tokio tasks that move frames (listener, dialers, drivers).
//! - [`status`]: what INFO, WAIT and housekeeping read.
//! - [`silence`]: the bound after which a silent peer stops holding back
//!   tombstone collection and the backlog.
//! - [`tls`]: the TLS acceptor and connector of peer links, when on.
//!
//! See `docs/replication.md` for the protocol and its guarantees.

pub mod auth;
pub mod codec;
pub mod link;
pub mod net;
pub mod silence;
pub mod status;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
pub use link::LinkSettings;
pub use status::ReplStatus;

/// What replication needs from the node's configuration.
#[derive(Clone, Debug)]
pub struct ReplConfig {
    pub peers: Vec<String>,
    pub link: LinkSettings,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Mutual-certificate TLS under the handshake (`tls-replication yes`).
    pub tls: Option<tls::PeerTls>,
}

/// Starts the peer listener (if given) and one dialer per peer. The tasks
/// end when `shutdown` is cancelled.
pub fn spawn(
    listener: Option<TcpListener>,
    store: Arc<Mutex<Store>>,
    status: Arc<ReplStatus>,
    config: ReplConfig,
    shutdown: CancellationToken,
    after_apply: Option<net::AfterApply>,
) -> Vec<JoinHandle<()>> {
    let mut shared = net::Shared::new(store, status, config.link, shutdown);
    shared.after_apply = after_apply;
    shared.backoff_min = config.backoff_min;
    shared.backoff_max = config.backoff_max;
    shared.tls = config.tls;
    let shared = Arc::new(shared);
    let mut tasks = Vec::new();
    if let Some(listener) = listener {
        tasks.push(tokio::spawn(net::accept_loop(listener, shared.clone())));
    }
    for (index, addr) in config.peers.iter().enumerate() {
        tasks.push(tokio::spawn(net::dial_loop(
            index,
            addr.clone(),
            shared.clone(),
        )));
    }
    tasks
}
