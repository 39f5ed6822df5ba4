//! Merge laws of the replicated function libraries
//! (`cordis::crdt::FunctionLibraries`), on an in-memory model: each replica
//! has an id, a sequence counter, a causal context and one library set; a
//! local FUNCTION LOAD, DELETE or FLUSH builds a delta with the set's
//! mutators (as the store does), applies it and logs it; delivery applies
//! an origin's logged deltas in order (FIFO per origin), origins
//! interleaving freely, and a full-sync join of one replica's whole state
//! into another's may happen at any time.
//!
//! Checked: replicas converge whatever the interleaving (by deltas, by
//! joins, or both); join is commutative, associative and idempotent;
//! without concurrency the set reads as a plain map written in history
//! order; of concurrent writes to a name the largest HLC wins, whether it
//! is a LOAD or a DELETE; a FLUSH removes what its node had seen and keeps a concurrent
//! LOAD made elsewhere, also when that LOAD reaches a third node after the
//! flush.

use bytes::Bytes;
use cordis::crdt::{CausalContext, Dot, FunctionLibraries, Hlc, LibraryDelta, ReplicaId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const NAMES: [&str; 3] = ["lib_a", "lib_b", "lib_c"];

#[derive(Clone, Debug)]
enum Action {
    /// Replica `at` loads `NAMES[name]` with code version `code`.
    Load {
        at: usize,
        name: usize,
        code: u8,
    },
    Delete {
        at: usize,
        name: usize,
    },
    Flush {
        at: usize,
    },
    /// Delivers the next undelivered delta of `from` to `to`.
    Deliver {
        from: usize,
        to: usize,
    },
    /// A full sync: `to` joins `from`'s whole state.
    Join {
        from: usize,
        to: usize,
    },
    /// The clock of `at` moves on by `ms` (so HLCs interleave).
    Tick {
        at: usize,
        ms: u8,
    },
}

#[derive(Clone)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    now_ms: u64,
    ctx: CausalContext,
    libs: FunctionLibraries,
    /// Every delta this replica made, in order.
    log: Vec<LibraryDelta>,
    /// How many of each origin's deltas this replica applied.
    delivered: Vec<usize>,
}

impl Replica {
    fn new(i: usize, n: usize) -> Replica {
        Replica {
            id: ReplicaId(i as u64 + 1),
            seq: 0,
            now_ms: 1_000,
            ctx: CausalContext::new(),
            libs: FunctionLibraries::new(),
            log: Vec::new(),
            delivered: vec![0; n],
        }
    }

    fn hlc(&mut self) -> Hlc {
        self.now_ms += 1;
        Hlc::new(self.now_ms, self.id.0 as u16)
    }

    fn write(&mut self, name: &str, code: Option<Bytes>) {
        self.seq += 1;
        let dot = Dot::new(self.id, self.seq);
        let hlc = self.hlc();
        let delta = self.libs.delta_write(name, code, hlc, dot);
        self.commit(delta);
    }

    fn flush(&mut self) {
        self.seq += 1;
        let mut seen = self.ctx.version_vector().clone();
        seen.raise(self.id, self.seq);
        self.commit(FunctionLibraries::delta_flush(&seen));
    }

    fn commit(&mut self, delta: LibraryDelta) {
        self.libs.apply(&delta, &mut self.ctx);
        // The store records the batch's dots when it closes.
        self.ctx.insert(Dot::new(self.id, self.seq));
        self.log.push(delta);
    }

    fn reading(&self) -> Vec<(String, Bytes)> {
        self.libs
            .visible()
            .map(|(n, c)| (n.to_owned(), c.clone()))
            .collect()
    }
}

fn code(name: &str, version: u8) -> Bytes {
    Bytes::from(format!(
        "#!lua name={name}\nredis.register_function('{name}_f', function() return {version} end)"
    ))
}

/// Delivers `from`'s next delta to `to`, with the dot its batch carried.
fn deliver(replicas: &mut [Replica], from: usize, to: usize) {
    if from == to {
        return;
    }
    let next = replicas[to].delivered[from];
    let Some(delta) = replicas[from].log.get(next).cloned() else {
        return;
    };
    // Each logged delta drew one seq: seqs 1..=log.len() in log order.
    let dot = Dot::new(replicas[from].id, next as u64 + 1);
    // As `Store::apply_remote`: the per-origin count deduplicates, and the
    // delta is applied even when its own dot is already known (a later
    // write's removal can name it first).
    let target = &mut replicas[to];
    target.libs.apply(&delta, &mut target.ctx);
    target.ctx.insert(dot);
    target.delivered[from] += 1;
}

/// A full sync of `from`'s state into `to` (as SyncBegin/SyncEnd do):
/// join the sets, merge the contexts, and count every delta of every
/// origin `from` had as delivered.
fn full_sync(replicas: &mut [Replica], from: usize, to: usize) {
    if from == to {
        return;
    }
    let source = replicas[from].clone();
    let target = &mut replicas[to];
    target.libs = target.libs.join(&target.ctx, &source.libs, &source.ctx);
    target.ctx.merge(&source.ctx);
    for (origin, count) in source.delivered.iter().enumerate() {
        target.delivered[origin] = target.delivered[origin].max(*count);
    }
    // `from`'s own deltas are all in its state.
    target.delivered[from] = target.delivered[from].max(source.log.len());
}

fn deliver_everything(replicas: &mut [Replica]) {
    let n = replicas.len();
    loop {
        let before: Vec<Vec<usize>> = replicas.iter().map(|r| r.delivered.clone()).collect();
        for from in 0..n {
            for to in 0..n {
                while replicas[to].delivered[from] < replicas[from].log.len() && from != to {
                    deliver(replicas, from, to);
                }
            }
        }
        let after: Vec<Vec<usize>> = replicas.iter().map(|r| r.delivered.clone()).collect();
        if before == after {
            break;
        }
    }
}

fn play(n: usize, actions: &[Action]) -> Vec<Replica> {
    let mut replicas: Vec<Replica> = (0..n).map(|i| Replica::new(i, n)).collect();
    for action in actions {
        match *action {
            Action::Load { at, name, code: v } => {
                let name = NAMES[name];
                replicas[at % n].write(name, Some(code(name, v)));
            }
            Action::Delete { at, name } => replicas[at % n].write(NAMES[name], None),
            Action::Flush { at } => replicas[at % n].flush(),
            Action::Deliver { from, to } => deliver(&mut replicas, from % n, to % n),
            Action::Join { from, to } => full_sync(&mut replicas, from % n, to % n),
            Action::Tick { at, ms } => replicas[at % n].now_ms += ms as u64,
        }
    }
    replicas
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, any::<u8>()).prop_map(|(at, name, code)| Action::Load { at, name, code }),
        2 => (0..3usize, 0..3usize).prop_map(|(at, name)| Action::Delete { at, name }),
        1 => (0..3usize).prop_map(|at| Action::Flush { at }),
        6 => (0..3usize, 0..3usize).prop_map(|(from, to)| Action::Deliver { from, to }),
        1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Action::Join { from, to }),
        2 => (0..3usize, 0..5u8).prop_map(|(at, ms)| Action::Tick { at, ms }),
    ]
}

proptest! {
    #![proptest_config(Config::with_cases(512))]

    #[test]
    fn replicas_converge_whatever_the_interleaving(
        n in 2..4usize,
        actions in prop::collection::vec(action(), 0..60),
    ) {
        let mut replicas = play(n, &actions);
        deliver_everything(&mut replicas);
        let first = replicas[0].libs.canonical();
        for r in &replicas[1..] {
            prop_assert_eq!(&r.libs.canonical(), &first);
            prop_assert_eq!(r.reading(), replicas[0].reading());
        }
    }

    #[test]
    fn join_is_commutative_associative_and_idempotent(
        actions in prop::collection::vec(action(), 0..60),
    ) {
        let r = play(3, &actions);
        let join = |a: &Replica, b: &Replica| {
            let mut ctx = a.ctx.clone();
            ctx.merge(&b.ctx);
            (a.libs.join(&a.ctx, &b.libs, &b.ctx), ctx)
        };
        let ab = join(&r[0], &r[1]);
        let ba = join(&r[1], &r[0]);
        prop_assert_eq!(ab.0.canonical(), ba.0.canonical());
        prop_assert_eq!(ab.0.visible().collect::<Vec<_>>(), ba.0.visible().collect::<Vec<_>>());

        let aa = r[0].libs.join(&r[0].ctx, &r[0].libs, &r[0].ctx);
        prop_assert_eq!(aa.canonical(), r[0].libs.canonical());

        let ab_c = ab.0.join(&ab.1, &r[2].libs, &r[2].ctx);
        let bc = join(&r[1], &r[2]);
        let a_bc = r[0].libs.join(&r[0].ctx, &bc.0, &bc.1);
        prop_assert_eq!(ab_c.canonical(), a_bc.canonical());
    }

    #[test]
    fn without_concurrency_every_replica_reads_as_the_last_write(
        actions in prop::collection::vec(action(), 0..60),
    ) {
        // Every write is delivered everywhere before the next one, so each
        // write has seen all before it: the set must read as a plain map
        // updated in history order, whichever replica wrote and whatever
        // the clocks said.
        let mut replicas = play(3, &[]);
        let mut model: std::collections::BTreeMap<String, Bytes> = Default::default();
        for action in &actions {
            match *action {
                Action::Load { at, name, code: v } => {
                    let name = NAMES[name];
                    replicas[at].write(name, Some(code(name, v)));
                    model.insert(name.to_owned(), code(name, v));
                }
                Action::Delete { at, name } => {
                    replicas[at].write(NAMES[name], None);
                    model.remove(NAMES[name]);
                }
                Action::Flush { at } => {
                    replicas[at].flush();
                    model.clear();
                }
                Action::Tick { at, ms } => replicas[at].now_ms += ms as u64,
                Action::Deliver { .. } | Action::Join { .. } => {}
            }
            deliver_everything(&mut replicas);
            let expected: Vec<(String, Bytes)> = model.clone().into_iter().collect();
            for r in &replicas {
                prop_assert_eq!(r.reading(), expected.clone());
            }
        }
    }
}

#[test]
fn a_delete_with_a_later_timestamp_beats_a_concurrent_load() {
    let mut r = play(2, &[]);
    r[1].now_ms += 100;
    r[0].write("lib_a", Some(code("lib_a", 1)));
    r[1].write("lib_a", None);
    deliver_everything(&mut r);
    for replica in &r {
        assert_eq!(replica.libs.get("lib_a"), None);
    }
    // A LOAD after it (seen the tombstone) brings the name back.
    r[0].now_ms += 1_000;
    r[0].write("lib_a", Some(code("lib_a", 2)));
    deliver_everything(&mut r);
    for replica in &r {
        assert_eq!(replica.libs.get("lib_a"), Some(&code("lib_a", 2)));
        // The tombstone was replaced, not kept beside the load.
        assert_eq!(replica.libs.version_count(), 1);
    }
}

#[test]
fn a_load_with_a_later_timestamp_survives_a_concurrent_delete() {
    let mut r = play(2, &[]);
    r[0].write("lib_a", Some(code("lib_a", 1)));
    deliver_everything(&mut r);
    r[0].now_ms += 100;
    r[1].write("lib_a", None);
    r[0].write("lib_a", Some(code("lib_a", 2)));
    deliver_everything(&mut r);
    for replica in &r {
        assert_eq!(replica.libs.get("lib_a"), Some(&code("lib_a", 2)));
    }
}

#[test]
fn a_flush_keeps_a_concurrent_load_made_elsewhere_even_through_a_third_node() {
    let mut r = play(3, &[]);
    r[0].write("lib_a", Some(code("lib_a", 1)));
    deliver_everything(&mut r);
    // Replica 1 loads lib_b unseen by 0; 0 flushes what it has seen.
    r[1].write("lib_b", Some(code("lib_b", 1)));
    r[0].flush();
    // 2 gets the flush first, then lib_b.
    deliver(&mut r, 0, 2);
    deliver(&mut r, 1, 2);
    deliver_everything(&mut r);
    for replica in &r {
        assert_eq!(replica.libs.get("lib_a"), None);
        assert_eq!(replica.libs.get("lib_b"), Some(&code("lib_b", 1)));
    }
}

#[test]
fn a_load_the_flusher_had_seen_stays_gone_when_it_arrives_after_the_flush() {
    let mut r = play(3, &[]);
    r[1].write("lib_b", Some(code("lib_b", 1)));
    // 0 sees lib_b and flushes; 2 gets the flush before lib_b itself.
    deliver(&mut r, 1, 0);
    r[0].flush();
    deliver(&mut r, 0, 2);
    assert_eq!(r[2].libs.get("lib_b"), None);
    deliver(&mut r, 1, 2);
    assert_eq!(r[2].libs.get("lib_b"), None, "covered by the flush's floor");
    deliver_everything(&mut r);
    for replica in &r {
        assert_eq!(replica.reading(), Vec::new());
    }
}
