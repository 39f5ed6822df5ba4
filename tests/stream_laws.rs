//! Merge laws and semantics of the stream CRDT
//! (`cordis::crdt::stream::Stream`), on the in-memory model of
//! `tests/zset_laws.rs`: each replica has an id, a sequence counter, a
//! causal context and one `Stream`; a local write builds a delta with the
//! stream's mutators (as XADD, XDEL, XTRIM, XSETID and the group commands
//! do), applies it and logs it; delivery applies an origin's logged deltas
//! in order (FIFO per origin), origins interleaving freely.
//!
//! Checked: join commutative, associative, idempotent; applying a delta
//! equals joining its delta-state; replicas converge whatever the
//! interleaving; auto IDs never collide across replicas and strictly
//! increase per replica, so every replica ends with every entry in one
//! order and each origin's entries in the order it added them; XDEL is an
//! observed remove (a late arrival of a deleted entry stays deleted, an
//! unobserved concurrent XADD survives); concurrent explicit IDs both
//! survive; a reader that follows one replica by the last ID it saw
//! (XREAD) gets every entry, also those that arrive late with smaller IDs.

use bytes::Bytes;
use cordis::crdt::stream::{
    auto_id, origin_tag, Fields, Pending, Removal, Stream, StreamDelta, StreamId,
};
use cordis::crdt::{CausalContext, Dot, ElementCrdt, Hlc, ReplicaId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const IDS: [u64; 4] = [30, 10, 40, 20];
const GROUPS: [&str; 2] = ["g1", "g2"];

type Reading = (
    Vec<(StreamId, Vec<Bytes>)>,
    StreamId,
    Vec<(Bytes, cordis::crdt::stream::Group)>,
);

fn fields(v: u64) -> Fields {
    Fields::pack(&[Bytes::from_static(b"f"), Bytes::from(v.to_string())])
}

#[derive(Clone, Debug)]
enum Op {
    Add(u64),
    AddExplicit(u64),
    DelFirst,
    TrimTo(usize),
    SetId(u64),
    GroupDeliver(usize),
    GroupAck(usize),
    GroupDestroy(usize),
    Clear,
}

#[derive(Clone, Debug)]
enum Step {
    Write {
        at: usize,
        op: Op,
        now: u64,
    },
    Deliver {
        from: usize,
        to: usize,
        count: usize,
    },
}

#[derive(Clone, Debug)]
struct Event {
    dots: Vec<Dot>,
    delta: StreamDelta,
}

#[derive(Clone, Debug)]
struct Replica {
    id: ReplicaId,
    seq: u64,
    ctx: CausalContext,
    stream: Stream,
}

impl Replica {
    fn new(id: ReplicaId) -> Self {
        Replica {
            id,
            seq: 0,
            ctx: CausalContext::new(),
            stream: Stream::default(),
        }
    }

    fn write(&mut self, op: &Op, now: u64) -> Event {
        let ts = Hlc::new(now, 0);
        let mut dots = Vec::new();
        let (id, mut seq) = (self.id, self.seq);
        let mut next_dot = || {
            seq += 1;
            let d = Dot::new(id, seq);
            dots.push(d);
            d
        };
        let s = &self.stream;
        let delta = match *op {
            Op::Add(v) => {
                let last = s.last_id();
                let new_id = auto_id(now, origin_tag(id), last).unwrap();
                s.delta_add(new_id, fields(v), &mut next_dot)
            }
            Op::AddExplicit(ms) => {
                let new_id = StreamId::new(ms, 1);
                if new_id <= s.last_id() {
                    StreamDelta::default()
                } else {
                    s.delta_add(new_id, fields(ms), &mut next_dot)
                }
            }
            Op::DelFirst => match s.first_id() {
                Some(first) => s.delta_remove(&[first], Removal::Delete, &mut next_dot).0,
                None => StreamDelta::default(),
            },
            Op::TrimTo(keep) => {
                let ids: Vec<StreamId> = s
                    .range(StreamId::MIN, StreamId::MAX)
                    .map(|(i, _)| i)
                    .collect();
                let cut = ids.len().saturating_sub(keep);
                s.delta_remove(&ids[..cut], Removal::Trim, &mut next_dot).0
            }
            Op::SetId(ms) => {
                let mut meta = s.meta();
                meta.last_id = meta.last_id.max(StreamId::new(ms, 0));
                s.delta_set_meta(meta, &mut next_dot)
            }
            Op::GroupDeliver(g) => {
                let mut group = s.group(GROUPS[g].as_bytes()).cloned().unwrap_or_default();
                if let Some((next, _)) =
                    s.range(group.last_id.next().unwrap(), StreamId::MAX).next()
                {
                    group.last_id = next;
                    group.pending.insert(
                        next,
                        Pending {
                            consumer: "c".into(),
                            delivered_ms: now,
                            deliveries: 1,
                        },
                    );
                }
                s.delta_group(GROUPS[g].as_bytes(), Some(group), ts, &mut next_dot)
            }
            Op::GroupAck(g) => match s.group(GROUPS[g].as_bytes()) {
                Some(group) => {
                    let mut group = group.clone();
                    let first = group.pending.keys().next().copied();
                    if let Some(first) = first {
                        group.pending.remove(&first);
                    }
                    s.delta_group(GROUPS[g].as_bytes(), Some(group), ts, &mut next_dot)
                }
                None => StreamDelta::default(),
            },
            Op::GroupDestroy(g) => s.delta_group(GROUPS[g].as_bytes(), None, ts, &mut next_dot),
            Op::Clear => s.delta_clear(),
        };
        self.seq = seq;
        let event = Event { dots, delta };
        self.receive(&event);
        event
    }

    fn receive(&mut self, event: &Event) {
        self.stream.apply(&event.delta, &mut self.ctx);
        for &d in &event.dots {
            self.ctx.insert(d);
        }
    }

    fn state(&self) -> (Stream, CausalContext) {
        (self.stream.clone(), self.ctx.clone())
    }
}

fn join(a: &(Stream, CausalContext), b: &(Stream, CausalContext)) -> (Stream, CausalContext) {
    let z = a.0.join(&a.1, &b.0, &b.1);
    let mut ctx = a.1.clone();
    ctx.merge(&b.1);
    (z, ctx)
}

/// What a client reads: entries in order, the last ID, and the groups.
fn reading(s: &Stream) -> Reading {
    (
        s.range(StreamId::MIN, StreamId::MAX)
            .map(|(id, f)| (id, f.to_vec()))
            .collect(),
        s.last_id(),
        s.groups().map(|(n, g)| (n.clone(), g.clone())).collect(),
    )
}

fn same(
    a: &(Stream, CausalContext),
    b: &(Stream, CausalContext),
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(reading(&a.0), reading(&b.0), "{}: readings", what);
    prop_assert_eq!(&a.0, &b.0, "{}: states", what);
    prop_assert_eq!(
        a.1.version_vector(),
        b.1.version_vector(),
        "{}: contexts",
        what
    );
    Ok(())
}

struct Cluster {
    replicas: Vec<Replica>,
    logs: Vec<Vec<Event>>,
    /// delivered[from][to]: events of `from` applied at `to`.
    delivered: Vec<Vec<usize>>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Cluster {
            replicas: IDS[..n]
                .iter()
                .map(|&i| Replica::new(ReplicaId(i)))
                .collect(),
            logs: vec![Vec::new(); n],
            delivered: vec![vec![0; n]; n],
        }
    }

    fn write(&mut self, at: usize, op: &Op, now: u64) {
        let event = self.replicas[at].write(op, now);
        self.logs[at].push(event);
        self.delivered[at][at] = self.logs[at].len();
    }

    fn deliver(&mut self, from: usize, to: usize, count: usize) {
        for _ in 0..count {
            let i = self.delivered[from][to];
            if from == to || i >= self.logs[from].len() {
                return;
            }
            let event = self.logs[from][i].clone();
            self.replicas[to].receive(&event);
            self.delivered[from][to] += 1;
        }
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.replicas.len();
        for step in steps {
            match step {
                Step::Write { at, op, now } => self.write(at % n, op, *now),
                Step::Deliver { from, to, count } => self.deliver(from % n, to % n, *count),
            }
        }
    }

    fn deliver_rest(&mut self, picks: &[u32]) {
        let n = self.replicas.len();
        for &p in picks {
            self.deliver(p as usize % n, (p as usize / n) % n, 1);
        }
        self.sync();
    }

    fn sync(&mut self) {
        let n = self.replicas.len();
        for from in 0..n {
            for to in 0..n {
                self.deliver(from, to, usize::MAX);
            }
        }
    }

    fn ids(&self, at: usize) -> Vec<StreamId> {
        (self.replicas[at].stream.range(StreamId::MIN, StreamId::MAX))
            .map(|(id, _)| id)
            .collect()
    }
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..100u64).prop_map(Op::Add),
        2 => (1..60u64).prop_map(Op::AddExplicit),
        2 => Just(Op::DelFirst),
        1 => (0..4usize).prop_map(Op::TrimTo),
        1 => (0..80u64).prop_map(Op::SetId),
        2 => (0..2usize).prop_map(Op::GroupDeliver),
        1 => (0..2usize).prop_map(Op::GroupAck),
        1 => (0..2usize).prop_map(Op::GroupDestroy),
        1 => Just(Op::Clear),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..4usize, any_op(), 1..50u64).prop_map(|(at, op, now)| Step::Write { at, op, now }),
            2 => (0..4usize, 0..4usize, 1..4usize).prop_map(|(from, to, count)| Step::Deliver { from, to, count }),
        ],
        0..max,
    )
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn join_is_commutative(n in 2..=4usize, history in steps(40), a in 0..4usize, b in 0..4usize) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let (a, b) = (c.replicas[a % n].state(), c.replicas[b % n].state());
        same(&join(&a, &b), &join(&b, &a), "a ⊔ b vs b ⊔ a")?;
    }

    #[test]
    fn join_is_associative(n in 2..=4usize, history in steps(40), (a, b, d) in (0..4usize, 0..4usize, 0..4usize)) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let [a, b, d] = [a, b, d].map(|i| c.replicas[i % n].state());
        same(&join(&join(&a, &b), &d), &join(&a, &join(&b, &d)), "(a ⊔ b) ⊔ c vs a ⊔ (b ⊔ c)")?;
    }

    #[test]
    fn join_is_idempotent(n in 2..=4usize, history in steps(40), a in 0..4usize, b in 0..4usize) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let (a, b) = (c.replicas[a % n].state(), c.replicas[b % n].state());
        same(&join(&a, &a), &a, "a ⊔ a vs a")?;
        let ab = join(&a, &b);
        same(&join(&ab, &ab), &ab, "(a ⊔ b) ⊔ (a ⊔ b) vs a ⊔ b")?;
        same(&join(&ab, &b), &ab, "(a ⊔ b) ⊔ b vs a ⊔ b")?;
    }

    #[test]
    fn applying_a_delta_equals_joining_its_delta_state(n in 2..=4usize, history in steps(40)) {
        let mut c = Cluster::new(n);
        c.run(&history);
        for to in 0..n {
            for from in 0..n {
                let i = c.delivered[from][to];
                let Some(event) = c.logs[from].get(i).filter(|_| from != to) else { continue };
                let mut applied = c.replicas[to].clone();
                applied.receive(event);
                // The delta as a state: applied to an empty stream with a fresh
                // context, which then also holds every dot the write consumed.
                let mut delta_ctx = CausalContext::new();
                let mut delta_stream = Stream::default();
                delta_stream.apply(&event.delta, &mut delta_ctx);
                for &d in &event.dots {
                    delta_ctx.insert(d);
                }
                let joined = join(&c.replicas[to].state(), &(delta_stream, delta_ctx));
                same(&applied.state(), &joined, "apply(D) vs S ⊔ D")?;
            }
        }
    }

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        n in 2..=4usize,
        history in steps(48),
        picks in prop::collection::vec(0..16u32, 0..60),
    ) {
        let mut c = Cluster::new(n);
        c.run(&history);
        c.deliver_rest(&picks);
        let first = c.replicas[0].state();
        for r in &c.replicas[1..] {
            same(&r.state(), &first, "replica vs replica 0")?;
        }
    }

    #[test]
    fn garbage_collection_over_a_stable_vector_never_changes_a_read(
        n in 2..=4usize,
        history in steps(40),
        more in steps(30),
        picks in prop::collection::vec(0..16u32, 0..60),
    ) {
        let mut c = Cluster::new(n);
        c.run(&history);
        // Dots every replica has seen.
        let stable = c.replicas.iter().skip(1).fold(
            c.replicas[0].ctx.version_vector().clone(),
            |acc, r| acc.meet(r.ctx.version_vector()),
        );
        for r in c.replicas.iter_mut() {
            let before = reading(&r.stream);
            r.stream.collect_garbage(&stable);
            prop_assert_eq!(reading(&r.stream), before);
        }
        c.run(&more);
        c.deliver_rest(&picks);
        let first = reading(&c.replicas[0].stream);
        for r in &c.replicas[1..] {
            prop_assert_eq!(reading(&r.stream), first.clone(), "replicas differ after GC");
        }
    }

    #[test]
    fn a_follower_by_last_seen_id_never_skips_an_entry(
        n in 2..=4usize,
        history in steps(48),
        reads in prop::collection::vec(1..4usize, 48),
        picks in prop::collection::vec(0..16u32, 0..60),
    ) {
        // A reader on replica 0 follows the stream as XREAD does: it
        // passes back the last ID it got. Late entries from peers (IDs
        // below what it has read) must still reach it.
        let mut c = Cluster::new(n);
        let mut cursor = StreamId::MIN;
        let mut seen = std::collections::HashSet::new();
        let mut follow = |s: &Stream, cursor: &mut StreamId, limit: usize| {
            let got = s.read_after(s.position_after(*cursor), limit);
            for (id, _) in &got {
                seen.insert(*id);
            }
            if let Some((id, _)) = got.last() {
                *cursor = *id;
            }
            got.len()
        };
        // IDs whose entry left replica 0 at some point: a concurrent claim
        // of such an ID arriving later takes the ID's on-time place (see
        // `Arrivals::arrive`), so a reader already past it may miss that
        // one claim. Every other entry must be returned.
        let mut present = std::collections::HashSet::new();
        let mut departed = std::collections::HashSet::new();
        let mut track = |c: &Cluster| {
            let now: std::collections::HashSet<StreamId> = c.ids(0).into_iter().collect();
            departed.extend(present.difference(&now).copied());
            present = now;
        };
        for (i, step) in history.iter().enumerate() {
            match *step {
                // One batch at a time, so an entry that comes and goes
                // within one step is seen to go.
                Step::Deliver { from, to, count } => {
                    for _ in 0..count {
                        c.deliver(from % n, to % n, 1);
                        track(&c);
                    }
                }
                _ => {
                    c.run(std::slice::from_ref(step));
                    track(&c);
                }
            }
            follow(&c.replicas[0].stream, &mut cursor, reads[i]);
        }
        for &p in &picks {
            c.deliver(p as usize % n, (p as usize / n) % n, 1);
            track(&c);
        }
        for from in 0..n {
            for to in 0..n {
                while from != to && c.delivered[from][to] < c.logs[from].len() {
                    c.deliver(from, to, 1);
                    track(&c);
                }
            }
        }
        while follow(&c.replicas[0].stream, &mut cursor, 2) > 0 {}
        for id in c.ids(0) {
            prop_assert!(
                seen.contains(&id) || departed.contains(&id),
                "entry {:?} was never returned", id
            );
        }
    }

    #[test]
    fn full_state_join_agrees_with_delivering_every_delta(n in 2..=4usize, history in steps(40)) {
        let mut c = Cluster::new(n);
        c.run(&history);
        let joined = c.replicas.iter().skip(1).fold(c.replicas[0].state(), |acc, r| join(&acc, &r.state()));
        c.sync();
        prop_assert_eq!(reading(&joined.0), reading(&c.replicas[0].stream));
    }
}

#[test]
fn concurrent_auto_ids_in_one_millisecond_never_collide() {
    let mut c = Cluster::new(3);
    for r in 0..3 {
        c.write(r, &Op::Add(r as u64), 7);
        c.write(r, &Op::Add(r as u64 + 10), 7);
    }
    c.sync();
    let ids = c.ids(0);
    assert_eq!(ids.len(), 6, "every entry kept: {ids:?}");
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "no two entries share an ID");
    for r in 1..3 {
        assert_eq!(c.ids(r), ids, "one order on every replica");
    }
}

#[test]
fn each_origin_keeps_the_order_it_added_in() {
    let mut c = Cluster::new(2);
    // Replica 1's clock is behind: its later entries still sort after its
    // earlier ones, and after everything it had seen.
    c.write(0, &Op::Add(1), 50);
    c.deliver(0, 1, 1);
    c.write(1, &Op::Add(2), 10);
    c.write(1, &Op::Add(3), 10);
    c.write(0, &Op::Add(4), 51);
    c.sync();
    let values: Vec<Vec<Bytes>> = (c.replicas[0].stream.range(StreamId::MIN, StreamId::MAX))
        .map(|(_, f)| f.to_vec())
        .collect();
    let pos = |v: u64| values.iter().position(|f| f[1] == v.to_string()).unwrap();
    assert!(pos(1) < pos(2) && pos(2) < pos(3), "{values:?}");
    assert!(pos(1) < pos(4));
}

#[test]
fn a_deleted_entry_arriving_late_stays_deleted_and_an_unobserved_add_survives() {
    let mut c = Cluster::new(3);
    c.write(0, &Op::Add(1), 5);
    c.deliver(0, 1, 1);
    c.write(1, &Op::DelFirst, 6);
    c.write(2, &Op::Add(2), 6);
    // Replica 2 learns of the delete before the entry it deletes.
    c.deliver(1, 2, usize::MAX);
    c.sync();
    for r in 0..3 {
        let values: Vec<Bytes> = (c.replicas[r].stream.range(StreamId::MIN, StreamId::MAX))
            .map(|(_, f)| f.to_vec()[1].clone())
            .collect();
        assert_eq!(values, vec![Bytes::from("2")], "replica {r}");
    }
}

#[test]
fn concurrent_explicit_ids_that_collide_both_survive() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::AddExplicit(9), 1);
    c.write(1, &Op::AddExplicit(9), 1);
    c.sync();
    assert_eq!(c.ids(0), vec![StreamId::new(9, 1), StreamId::new(9, 1)]);
    assert_eq!(c.ids(0), c.ids(1));
    assert_eq!(c.replicas[0].stream.entry_count(), 2);
}

#[test]
fn concurrent_group_writes_resolve_to_the_later_one_and_redeliver() {
    let mut c = Cluster::new(2);
    c.write(0, &Op::Add(1), 1);
    c.write(0, &Op::Add(2), 2);
    c.sync();
    c.write(0, &Op::GroupDeliver(0), 3);
    c.write(0, &Op::GroupDeliver(0), 4);
    c.write(1, &Op::GroupDeliver(0), 5);
    c.sync();
    for r in 0..2 {
        let group = c.replicas[r].stream.group(b"g1").unwrap().clone();
        // Replica 1's single delivery was later: entry 2 goes out again.
        assert_eq!(group.pending.len(), 1);
        assert_eq!(group.last_id, c.ids(r)[0]);
    }
}

#[test]
fn auto_ids_move_past_the_last_id_and_carry_the_origin() {
    let tag = origin_tag(ReplicaId(0xabcd));
    let last = StreamId::new(100, 5);
    assert_eq!(auto_id(200, tag, last), Some(StreamId::new(200, tag)));
    let next = auto_id(50, tag, last).unwrap();
    assert!(next > last && next.ms == 100 && next.seq & 0xffff == tag);
    assert_eq!(auto_id(1, tag, StreamId::MAX), None);
    let edge = StreamId::new(7, u64::MAX - 1);
    assert_eq!(auto_id(7, 0xffff, edge), Some(StreamId::new(7, u64::MAX)));
    assert_eq!(auto_id(7, 3, edge), Some(StreamId::new(8, 3)));
}

#[test]
fn a_follower_at_an_id_whose_first_claim_was_deleted_reads_what_came_after() {
    // Found by the property above: regions 2 and 1 add one explicit ID;
    // 2 deletes its claim and adds an auto ID above it. Replica 0 reads
    // 2's claim (cursor 49-1), then gets the delete, 2's auto entry and
    // last 1's claim of the same ID: the follower must still get 49-40.
    let mut c = Cluster::new(3);
    let write = |at, op| Step::Write { at, op, now: 1 };
    c.run(&[
        write(2, Op::AddExplicit(49)),
        write(1, Op::AddExplicit(49)),
        write(2, Op::DelFirst),
        write(2, Op::Add(0)),
        Step::Deliver {
            from: 2,
            to: 0,
            count: 1,
        },
    ]);
    let s = &c.replicas[0].stream;
    let got: Vec<StreamId> = s
        .read_after(s.position_after(StreamId::MIN), 10)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(got, vec![StreamId::new(49, 1)]);
    let cursor = got[0];
    // 2's delete and auto entry first, then 1's claim (late).
    c.deliver(2, 0, usize::MAX);
    c.deliver_rest(&[]);
    let s = &c.replicas[0].stream;
    let after: Vec<StreamId> = s
        .read_after(s.position_after(cursor), 10)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    for id in c.ids(0) {
        assert!(
            id == cursor || after.contains(&id),
            "{id:?} skipped: read {after:?}"
        );
    }
}
