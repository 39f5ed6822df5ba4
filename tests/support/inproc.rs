//! In-process nodes for the convergence suites: a [`Node`] is a
//! `ServerState` plus one client session, driven through the real
//! dispatcher with a fixed wall clock; [`deliver_one`] ships one batch from
//! a node's outgoing delta log to another (FIFO per origin, as replication
//! streams them), [`deliver_everything`] until nothing moves, and [`play`]
//! runs one random history (commands, MULTI blocks, shuffled deliveries)
//! and checks that every node ends with the same digest and reads.

use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
        // A peer port makes the config count as replicating (so the store
        // keeps its delta log and writes every type in its replicated
        // form, not the single-region one); `ServerState::new` binds
        // nothing, and no peers are dialed: batches are shipped by hand.
        let config = Config {
            peer_port: Some(0),
            ..Config::default()
        };
        assert!(config.replication_enabled());
        let state = ServerState::new(config, ReplicaId(id), None);
        {
            let mut store = state.store.lock();
            store.set_time_override(Some(NOW_MS));
            assert!(store.keep_delta_log && !store.single_region);
        }
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
            // As the replication layer does after every remote batch.
            nodes[to].state.signal_ready_keys(&mut target);
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

/// Evicts one key on `node` under a random eviction policy, as a node over
/// `maxmemory` would (an observed delete in its own batch).
fn evict_one(node: &mut Node, rng: &mut StdRng) {
    const POLICIES: [&str; 7] = [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ];
    let policy = POLICIES[rng.gen_range(0..POLICIES.len())];
    node.run(&["CONFIG", "SET", "maxmemory-policy", policy]);
    let mut store = node.state.store.lock();
    store.begin_command();
    store.evict_one();
    store.finish_batch();
}

/// Seeds to run: the default, or `CORDIS_SEEDS` for a longer local search.
pub fn seeds(default: u64) -> u64 {
    std::env::var("CORDIS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One random history on `node_count` in-process nodes: `steps` times,
/// either a MULTI/EXEC block of 1–4 commands (with probability
/// `multi_chance`), a single command from `random_command`, an eviction on
/// one node (see [`evict_one`]), or the delivery
/// of a few batches between two random nodes (FIFO per origin). After full
/// delivery every node must report the same DEBUG DIGEST and the same
/// `view` (the family's reads of its keys). Failures name the seed.
pub fn play<V: PartialEq + std::fmt::Debug, A: AsRef<[u8]>>(
    seed: u64,
    node_count: usize,
    steps: usize,
    multi_chance: f64,
    random_command: impl Fn(&mut StdRng) -> Vec<A>,
    view: impl Fn(&mut Node) -> V,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut nodes: Vec<Node> = (0..node_count)
        .map(|i| Node::new(0x100 + i as u64))
        .collect();
    let run_random = |node: &mut Node, rng: &mut StdRng| {
        // Arguments are bytes: RESTORE's payloads are not UTF-8.
        let args: Vec<Bytes> = (random_command(rng).iter())
            .map(|a| Bytes::copy_from_slice(a.as_ref()))
            .collect();
        node.state.execute(&mut node.client, &args);
        // No connection runs these nodes: a blocking command that found
        // nothing just leaves its (ignored) action behind.
        node.client.action = None;
    };
    for _ in 0..steps {
        if rng.gen_bool(multi_chance) {
            let n = rng.gen_range(0..node_count);
            nodes[n].run(&["MULTI"]);
            for _ in 0..rng.gen_range(1..5) {
                run_random(&mut nodes[n], &mut rng);
            }
            nodes[n].run(&["EXEC"]);
        } else if rng.gen_bool(0.6) {
            let n = rng.gen_range(0..node_count);
            run_random(&mut nodes[n], &mut rng);
        } else if rng.gen_bool(0.1) {
            let n = rng.gen_range(0..node_count);
            evict_one(&mut nodes[n], &mut rng);
        } else {
            let from = rng.gen_range(0..node_count);
            let to = rng.gen_range(0..node_count);
            for _ in 0..rng.gen_range(1..4) {
                deliver_one(&nodes, from, to);
            }
        }
    }
    deliver_everything(&nodes);
    let digests: Vec<String> = nodes.iter_mut().map(|n| n.digest()).collect();
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(
            d, &digests[0],
            "seed {seed}: node {i} digest differs after full delivery"
        );
    }
    let views: Vec<V> = nodes.iter_mut().map(view).collect();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v, &views[0], "seed {seed}: node {i} reads differ");
    }
}
