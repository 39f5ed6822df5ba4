//! Law of the silence bound (docs/replication.md, "Silent peers"): a node
//! that collects its tombstones leaving out a partitioned peer, and then
//! heals with that peer by full state transfers both ways, ends exactly
//! where it would have had it never collected anything, and nothing it
//! deleted comes back.
//!
//! Two in-process nodes A and B (the real dispatcher and store) share a
//! random history, are partitioned, run random histories on both sides
//! (A's delete-heavy: SREM, HDEL, ZREM, LPOP/RPOP, DEL, also on counters),
//! and heal. The history runs twice from the same seed:
//! - *bounded*: during the partition each node collects garbage with the
//!   other past the silence bound (`ReplStatus::stability`, as the server's
//!   housekeeping computes it), then the heal is a full state transfer
//!   A→B and B→A (their logs no longer serve each other);
//! - *reference*: no collection during the partition, the same transfers.
//!
//! Checked: both nodes converge (equal DEBUG DIGEST), the bounded run ends
//! with the reference run's digest, every member or key A removed during
//! the partition (and B did not write concurrently) is absent on both, and
//! a full collection after the heal changes no digest.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use cordis::crdt::{ReplicaId, VersionVector};
use cordis::protocol::Reply;
use cordis::replication::ReplStatus;
use cordis::store::sync::SyncScope;

mod support;

use support::inproc::{deliver_everything, seeds, Node};

const MEMBERS: [&str; 4] = ["m0", "m1", "m2", "m3"];

/// One random command; the key families are kept apart (no type
/// conflicts), and `delete_heavy` biases towards removals.
fn random_command(rng: &mut StdRng, delete_heavy: bool) -> Vec<String> {
    let k = rng.gen_range(0..3);
    let m = MEMBERS[rng.gen_range(0..MEMBERS.len())].to_string();
    let n = rng.gen_range(-3..6).to_string();
    let remove = delete_heavy && rng.gen_bool(0.6);
    let family = rng.gen_range(0..5);
    let v = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let key = |prefix: &str| format!("{prefix}{k}");
    if remove && rng.gen_bool(0.25) {
        let prefix = ["s", "h", "z", "l", "c"][family];
        return v(&["DEL", &key(prefix)]);
    }
    match (family, remove, rng.gen_range(0..2)) {
        (0, false, _) => v(&["SADD", &key("s"), &m]),
        (0, true, _) => v(&["SREM", &key("s"), &m]),
        (1, false, 0) => v(&["HSET", &key("h"), &m, &n]),
        (1, false, _) => v(&["HINCRBY", &key("h"), &m, &n]),
        (1, true, _) => v(&["HDEL", &key("h"), &m]),
        (2, false, 0) => v(&["ZADD", &key("z"), &n, &m]),
        (2, false, _) => v(&["ZINCRBY", &key("z"), &n, &m]),
        (2, true, _) => v(&["ZREM", &key("z"), &m]),
        (3, false, _) => v(&["RPUSH", &key("l"), &m]),
        (3, true, 0) => v(&["LPOP", &key("l")]),
        (3, true, _) => v(&["RPOP", &key("l")]),
        (_, false, 0) => v(&["SET", &key("c"), &n]),
        (_, false, _) => v(&["INCRBY", &key("c"), &n]),
        (_, true, _) => v(&["DEL", &key("c")]),
    }
}

fn run(node: &mut Node, cmd: &[String]) -> Reply {
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    node.run(&args)
}

/// A full state transfer from `from` to `to`, through the store API the
/// peer link uses (snapshot, per-key states with the context of the read,
/// `finish_sync` with the start context and applied vector).
fn full_transfer(from: &Node, to: &Node) {
    let (snapshot, entries, chunk_ctx) = {
        let source = from.state.store.lock();
        let snapshot = source.sync_snapshot(&SyncScope::All);
        let entries: Vec<_> = snapshot
            .names
            .iter()
            .map(|(db, key)| (*db, key.clone(), source.state_of(*db as usize, key)))
            .collect();
        let ctx = source.causal_context().clone();
        (snapshot, entries, ctx)
    };
    let mut target = to.state.store.lock();
    target.observe_clock(snapshot.clock);
    let mut mentioned = target.mentioned_keys_for_transfer(entries.len() as u64);
    for (db, key, state) in entries {
        target.merge_remote_state(db as usize, &key, &state, &chunk_ctx);
        mentioned.insert(db, key);
    }
    if let Some(functions) = &snapshot.functions {
        target.merge_remote_libraries(functions, &snapshot.ctx);
    }
    target.finish_sync(
        &SyncScope::All,
        &mut mentioned,
        &snapshot.ctx,
        Some(&snapshot.applied),
    );
}

/// Garbage collection on `node` as housekeeping runs it, with `peer`
/// configured, last acknowledged at `acked`, and past the bound or not.
fn collect(node: &Node, peer: ReplicaId, acked: &VersionVector, past_bound: bool) {
    let status = ReplStatus::new(node.state.replica, &["peer:1".into()]);
    {
        let mut p = status.peers[0].1.lock();
        p.replica = Some(peer);
        p.acked = Some(acked.clone());
        p.past_bound = past_bound;
    }
    let mut store = node.state.store.lock();
    let stability = status.stability(store.version_vector());
    store.collect_garbage_with(&stability);
}

fn vv(node: &Node) -> VersionVector {
    node.state.store.lock().version_vector().clone()
}

fn int(reply: Reply) -> i64 {
    match reply {
        Reply::Integer(i) => i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// What A removed during the partition and nobody wrote again: absent
/// members (key, member) and absent keys.
#[derive(Default)]
struct Removed {
    members: BTreeMap<(String, String), bool>,
    keys: BTreeMap<String, bool>,
}

impl Removed {
    fn note(&mut self, cmd: &[String]) {
        let key = cmd.get(1).cloned().unwrap_or_default();
        match cmd[0].as_str() {
            "DEL" => {
                self.keys.insert(key.clone(), true);
                for ((k, _), gone) in self.members.iter_mut() {
                    if *k == key {
                        *gone = true;
                    }
                }
            }
            "SREM" | "HDEL" | "ZREM" => {
                self.members.insert((key, cmd[2].clone()), true);
            }
            "SADD" | "HSET" | "HINCRBY" => {
                self.keys.insert(key.clone(), false);
                self.members.insert((key, cmd[2].clone()), false);
            }
            "ZADD" | "ZINCRBY" => {
                self.keys.insert(key.clone(), false);
                self.members.insert((key, cmd[3].clone()), false);
            }
            _ => {
                self.keys.insert(key, false);
            }
        }
    }

    /// Checks `node`: nothing listed as gone is there (keys B wrote during
    /// the partition are skipped: add-wins lets B's writes survive).
    fn check(&self, node: &mut Node, written_by_b: &HashSet<String>, seed: u64) {
        for ((key, member), gone) in &self.members {
            if !gone || written_by_b.contains(key) {
                continue;
            }
            let present = match &key[..1] {
                "s" => int(node.run(&["SISMEMBER", key, member])),
                "h" => int(node.run(&["HEXISTS", key, member])),
                _ => match node.run(&["ZSCORE", key, member]) {
                    Reply::Nil | Reply::NilArray => 0,
                    _ => 1,
                },
            };
            assert_eq!(present, 0, "seed {seed}: {key} {member} came back");
        }
        for (key, gone) in &self.keys {
            if *gone && !written_by_b.contains(key) {
                assert_eq!(
                    int(node.run(&["EXISTS", key])),
                    0,
                    "seed {seed}: deleted key {key} came back"
                );
            }
        }
    }
}

/// What a node's keys read as (for failure messages).
fn view(node: &mut Node) -> Vec<String> {
    let mut out = Vec::new();
    for k in 0..3 {
        for (cmd, prefix) in [
            (&["SMEMBERS"][..], "s"),
            (&["HGETALL"][..], "h"),
            (&["ZRANGE", "0", "-1", "WITHSCORES"][..], "z"),
            (&["LRANGE", "0", "-1"][..], "l"),
            (&["GET"][..], "c"),
        ] {
            let key = format!("{prefix}{k}");
            let mut args = vec![cmd[0], key.as_str()];
            args.extend(&cmd[1..]);
            // Sets and hashes read in no particular order: sorted here.
            let reply = match node.run(&args) {
                Reply::Set(mut items) | Reply::Array(mut items) if prefix == "s" => {
                    items.sort_by_key(|r| format!("{r:?}"));
                    format!("{items:?}")
                }
                Reply::Map(mut pairs) => {
                    pairs.sort_by_key(|p| format!("{p:?}"));
                    format!("{pairs:?}")
                }
                other => format!("{other:?}"),
            };
            out.push(format!("{key}: {reply}"));
        }
    }
    out
}

/// One history; returns the digest both nodes end with and the reads.
fn play(seed: u64, bounded: bool) -> (String, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut nodes = vec![Node::new(1), Node::new(2)];
    let (ra, rb) = (nodes[0].state.replica, nodes[1].state.replica);
    // Shared past: both nodes write, everything is delivered, and what is
    // stable is collected.
    for _ in 0..rng.gen_range(5..30) {
        let at = rng.gen_range(0..2);
        let cmd = random_command(&mut rng, false);
        run(&mut nodes[at], &cmd);
    }
    deliver_everything(&nodes);
    let (acked_a, acked_b) = (vv(&nodes[0]), vv(&nodes[1]));
    collect(&nodes[0], rb, &acked_b, false);
    collect(&nodes[1], ra, &acked_a, false);
    // Partition: A deletes a lot, B writes concurrently; each collects
    // (in the bounded run) with the other past the bound.
    let mut removed = Removed::default();
    let mut written_by_b = HashSet::new();
    for _ in 0..rng.gen_range(10..60) {
        if rng.gen_bool(0.7) {
            let cmd = random_command(&mut rng, true);
            run(&mut nodes[0], &cmd);
            removed.note(&cmd);
        } else {
            let cmd = random_command(&mut rng, false);
            run(&mut nodes[1], &cmd);
            written_by_b.insert(cmd[1].clone());
        }
        // Drawn in both runs, so that they play the same history.
        let collect_now = rng.gen_bool(0.2);
        if bounded && collect_now {
            collect(&nodes[0], rb, &acked_b, true);
            collect(&nodes[1], ra, &acked_a, true);
        }
    }
    if bounded {
        collect(&nodes[0], rb, &acked_b, true);
        collect(&nodes[1], ra, &acked_a, true);
    }
    // Heal: the logs no longer serve the other side, so state transfers.
    full_transfer(&nodes[0], &nodes[1]);
    full_transfer(&nodes[1], &nodes[0]);
    deliver_everything(&nodes);
    let (da, db) = (nodes[0].digest(), nodes[1].digest());
    assert_eq!(da, db, "seed {seed} (bounded {bounded}): digests differ");
    for node in nodes.iter_mut() {
        removed.check(node, &written_by_b, seed);
    }
    // Back in touch: a full collection changes nothing visible.
    let (acked_a, acked_b) = (vv(&nodes[0]), vv(&nodes[1]));
    collect(&nodes[0], rb, &acked_b, false);
    collect(&nodes[1], ra, &acked_a, false);
    assert_eq!(nodes[0].digest(), da, "seed {seed}: collection changed A");
    assert_eq!(nodes[1].digest(), da, "seed {seed}: collection changed B");
    (da, view(&mut nodes[0]))
}

#[test]
fn collecting_without_a_silent_peer_then_healing_by_state_transfer_equals_never_collecting() {
    for seed in 0..seeds(300) {
        let reference = play(seed, false);
        let bounded = play(seed, true);
        assert_eq!(
            bounded.1, reference.1,
            "seed {seed}: collecting past the bound changed the reads"
        );
        assert_eq!(
            bounded.0, reference.0,
            "seed {seed}: collecting past the bound changed the digest"
        );
    }
}

#[test]
fn a_counter_deleted_during_the_partition_keeps_its_reset_while_the_silent_peer_increments() {
    // A sees B's increments, deletes the counter, collects with B past the
    // bound; B, partitioned, keeps incrementing the same run. After the
    // heal only B's increments made after its last delivery count.
    let mut nodes = vec![Node::new(1), Node::new(2)];
    let (ra, rb) = (nodes[0].state.replica, nodes[1].state.replica);
    nodes[1].run(&["INCRBY", "c", "5"]);
    deliver_everything(&nodes);
    let (acked_a, acked_b) = (vv(&nodes[0]), vv(&nodes[1]));
    nodes[0].run(&["DEL", "c"]);
    nodes[1].run(&["INCRBY", "c", "1"]);
    for _ in 0..3 {
        collect(&nodes[0], rb, &acked_b, true);
        collect(&nodes[1], ra, &acked_a, true);
    }
    full_transfer(&nodes[0], &nodes[1]);
    full_transfer(&nodes[1], &nodes[0]);
    for node in nodes.iter_mut() {
        assert_eq!(node.run(&["GET", "c"]), Reply::Bulk(Bytes::from("1")));
    }
}
