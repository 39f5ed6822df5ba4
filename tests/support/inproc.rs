//! In-process nodes for the convergence suites: a [`Node`] is a
//! `ServerState` plus one client session, driven through the real
//! dispatcher with a fixed wall clock; [`deliver_one`] ships one batch from
//! a node's outgoing delta log to another (FIFO per origin, as replication
//! streams them), [`deliver_everything`] until nothing moves.

use std::sync::Arc;

use bytes::Bytes;

use cordis::commands::{ClientState, ServerState};
use cordis::config::Config;
use cordis::crdt::ReplicaId;
use cordis::protocol::Reply;

/// Fixed wall clock for every node, so expiry decisions agree.
pub const NOW_MS: u64 = 1_800_000_000_000;

pub struct Node {
    pub state: Arc<ServerState>,
    pub client: ClientState,
}

impl Node {
    pub fn new(id: u64) -> Node {
        let state = ServerState::new(Config::default(), ReplicaId(id), None);
        state.store.lock().set_time_override(Some(NOW_MS));
        Node {
            state,
            client: ClientState::detached(true),
        }
    }

    pub fn run(&mut self, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        self.state.execute(&mut self.client, &args)
    }

    pub fn digest(&mut self) -> String {
        match self.run(&["DEBUG", "DIGEST"]) {
            Reply::Simple(d) => String::from_utf8(d.to_vec()).unwrap(),
            other => panic!("DEBUG DIGEST replied {other:?}"),
        }
    }
}

/// Ships the next undelivered batch of `from` to `to`; false if none.
pub fn deliver_one(nodes: &[Node], from: usize, to: usize) -> bool {
    if from == to {
        return false;
    }
    let origin = nodes[from].state.replica;
    let mut target = nodes[to].state.store.lock();
    let have = target.version_vector().get(origin);
    let source = nodes[from].state.store.lock();
    let next = source
        .delta_log()
        .since(have)
        .expect("log cap is large enough for the test")
        .next()
        .cloned();
    drop(source);
    match next {
        Some(batch) => {
            target
                .apply_remote(&batch)
                .expect("batches arrive in order");
            true
        }
        None => false,
    }
}

pub fn deliver_everything(nodes: &[Node]) {
    loop {
        let mut moved = false;
        for from in 0..nodes.len() {
            for to in 0..nodes.len() {
                while deliver_one(nodes, from, to) {
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
}

/// Seeds to run: the default, or `CORDIS_SEEDS` for a longer local search.
pub fn seeds(default: u64) -> u64 {
    std::env::var("CORDIS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
