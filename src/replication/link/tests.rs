//! The link state machine on its own: two stores, a dialer and an
//! acceptor, messages carried by hand (through the codec, as on a socket).

use bytes::{Bytes, BytesMut};

use super::*;
use crate::crdt::TtlChange;
use crate::replication::codec;

const A: ReplicaId = ReplicaId(0xa);
const B: ReplicaId = ReplicaId(0xb);

fn settings(secret: &str) -> LinkSettings {
    LinkSettings {
        secret: secret.as_bytes().to_vec(),
        anti_entropy_ms: 0,
        chunk_bytes: 200,
        ..LinkSettings::default()
    }
}

fn set(store: &mut Store, key: &str, value: &str) {
    store.begin_command();
    store.write_key(0, key.as_bytes(), |state, w| {
        let ts = w.ts();
        (
            state.delta_set(
                Bytes::copy_from_slice(value.as_bytes()),
                ts,
                TtlChange::Clear,
                &mut || w.next_dot(),
            ),
            (),
        )
    });
    store.finish_batch();
}

/// A dialer on `a` and an acceptor on `b`, with the frames between them.
struct Pair {
    a: Store,
    b: Store,
    dialer: PeerLink,
    acceptor: PeerLink,
    closed: Vec<String>,
    now: u64,
}

impl Pair {
    fn new(a: Store, b: Store, dialer_secret: &str, acceptor_secret: &str) -> Pair {
        Pair {
            dialer: PeerLink::new(
                Side::Dialer,
                a.replica(),
                settings(dialer_secret),
                [1; 32],
                0,
            ),
            acceptor: PeerLink::new(
                Side::Acceptor,
                b.replica(),
                settings(acceptor_secret),
                [2; 32],
                0,
            ),
            a,
            b,
            closed: Vec::new(),
            now: 0,
        }
    }

    /// Through the codec, as a socket would carry it.
    fn wire(msg: Msg, limit: usize) -> Msg {
        let mut buf = BytesMut::new();
        codec::encode(&msg, &mut buf);
        codec::decode(&mut buf, limit).unwrap().unwrap()
    }

    /// Delivers messages both ways (pumping the dialer) until quiet.
    fn run(&mut self, mut to_acceptor: Vec<Out>) {
        for _ in 0..10_000 {
            let mut to_dialer = Vec::new();
            for out in to_acceptor.drain(..) {
                match out {
                    Out::Send(m) => {
                        let m = Self::wire(m, self.acceptor.frame_limit());
                        to_dialer.extend(self.acceptor.on_message(m, &mut self.b, self.now));
                    }
                    Out::Close(r) => self.closed.push(format!("dialer: {r}")),
                }
            }
            let mut next = Vec::new();
            for out in to_dialer {
                match out {
                    Out::Send(m) => {
                        let m = Self::wire(m, self.dialer.frame_limit());
                        next.extend(self.dialer.on_message(m, &mut self.a, self.now));
                    }
                    Out::Close(r) => self.closed.push(format!("acceptor: {r}")),
                }
            }
            next.extend(self.dialer.pump(&mut self.a, self.now));
            if next.is_empty() && !self.dialer.has_work() {
                return;
            }
            to_acceptor = next;
        }
        panic!("links did not go quiet");
    }

    fn connect(&mut self) {
        let hello = self.dialer.start(self.now);
        self.run(hello);
    }
}

#[test]
fn handshake_then_deltas_stream_in_order_and_are_acked() {
    let mut p = Pair::new(Store::new(A), Store::new(B), "s", "s");
    set(&mut p.a, "k1", "v1");
    p.connect();
    assert!(p.closed.is_empty(), "{:?}", p.closed);
    assert_eq!(p.dialer.phase(), Phase::Live);
    assert_eq!(p.acceptor.phase(), Phase::Live);
    assert_eq!(p.dialer.stats.partial_syncs, 1);
    for i in 0..20 {
        set(&mut p.a, &format!("k{i}"), "v");
    }
    p.run(Vec::new());
    assert_eq!(p.b.version_vector().get(A), p.a.last_seq());
    assert_eq!(p.dialer.acked().unwrap().get(A), p.a.last_seq());
    assert_eq!(p.a.digest(), p.b.digest());
    assert_eq!(p.dialer.lag(&p.a, 0), (0, 0));
}

#[test]
fn a_wrong_secret_is_refused_and_nothing_is_applied() {
    let mut a = Store::new(A);
    set(&mut a, "k", "v");
    let mut p = Pair::new(a, Store::new(B), "right", "wrong");
    p.connect();
    assert_eq!(p.closed.len(), 1, "{:?}", p.closed);
    assert!(p.closed[0].contains("authentication"), "{:?}", p.closed);
    assert_eq!(p.dialer.phase(), Phase::Closed);
    assert_eq!(p.b.version_vector().get(A), 0);
    assert_eq!(p.b.dbsize(0), 0);
}

#[test]
fn an_acceptor_applies_nothing_before_the_dialer_proves_the_secret() {
    let mut b = Store::new(B);
    let mut acceptor = PeerLink::new(Side::Acceptor, B, settings("s"), [2; 32], 0);
    let hello = Msg::Hello {
        version: codec::PROTOCOL_VERSION,
        replica: A,
        nonce: [9; 32],
    };
    acceptor.on_message(hello, &mut b, 0);
    // A batch instead of a proof: refused, nothing applied.
    let mut a = Store::new(A);
    set(&mut a, "k", "v");
    let batch = (**a.delta_log().since(0).unwrap().next().unwrap()).clone();
    let out = acceptor.on_message(Msg::Batches(vec![batch]), &mut b, 0);
    assert!(matches!(&out[..], [Out::Close(_)]));
    assert_eq!(b.dbsize(0), 0);
    assert_eq!(acceptor.frame_limit(), codec::MAX_HANDSHAKE_FRAME);
}

#[test]
fn a_peer_of_another_protocol_version_or_the_same_id_is_refused() {
    let mut b = Store::new(B);
    let mut acceptor = PeerLink::new(Side::Acceptor, B, settings("s"), [2; 32], 0);
    let out = acceptor.on_message(
        Msg::Hello {
            version: 99,
            replica: A,
            nonce: [0; 32],
        },
        &mut b,
        0,
    );
    assert!(matches!(&out[..], [Out::Close(r)] if r.contains("version")));
    let mut acceptor = PeerLink::new(Side::Acceptor, B, settings("s"), [2; 32], 0);
    let out = acceptor.on_message(
        Msg::Hello {
            version: codec::PROTOCOL_VERSION,
            replica: B,
            nonce: [0; 32],
        },
        &mut b,
        0,
    );
    assert!(matches!(&out[..], [Out::Close(r)] if r.contains("itself")));
}

#[test]
fn a_reconnect_resumes_from_the_acked_position() {
    let mut p = Pair::new(Store::new(A), Store::new(B), "s", "s");
    set(&mut p.a, "x", "1");
    p.connect();
    // The link drops; A keeps writing; a new link resumes.
    for i in 0..5 {
        set(&mut p.a, &format!("y{i}"), "2");
    }
    let (a, b) = (p.a, p.b);
    let mut p = Pair::new(a, b, "s", "s");
    p.connect();
    assert!(p.closed.is_empty(), "{:?}", p.closed);
    assert_eq!(p.dialer.stats.partial_syncs, 1);
    assert_eq!(p.dialer.stats.full_syncs, 0);
    assert_eq!(p.a.digest(), p.b.digest());
}

#[test]
fn a_backlog_that_lost_what_the_peer_needs_forces_a_chunked_full_sync() {
    let mut a = Store::new(A);
    a.delta_log_mut().set_cap_bytes(2000);
    for i in 0..100 {
        set(&mut a, &format!("key{i}"), "some value");
    }
    let mut b = Store::new(B);
    set(&mut b, "mine", "b");
    assert!(a.delta_log().since(0).is_none());
    let mut p = Pair::new(a, b, "s", "s");
    p.connect();
    assert!(p.closed.is_empty(), "{:?}", p.closed);
    assert_eq!(p.dialer.stats.full_syncs, 1);
    assert_eq!(p.acceptor.stats.syncs_received, 1);
    assert_eq!(p.b.version_vector().get(A), p.a.last_seq());
    assert_eq!(p.b.dbsize(0), 101);
    // The stream continues after the transfer, in order.
    set(&mut p.a, "after", "x");
    p.run(Vec::new());
    assert_eq!(p.b.version_vector().get(A), p.a.last_seq());
    assert!(p.closed.is_empty(), "{:?}", p.closed);
}

#[test]
fn a_peer_that_saw_more_of_this_id_than_it_wrote_is_refused() {
    let mut old = Store::new(A);
    for i in 0..3 {
        set(&mut old, &format!("k{i}"), "v");
    }
    let mut b = Store::new(B);
    for batch in old.delta_log().since(0).unwrap() {
        b.apply_remote(batch).unwrap();
    }
    // A restarts empty with the same id.
    let mut p = Pair::new(Store::new(A), b, "s", "s");
    p.connect();
    assert!(p.dialer.stats.id_reuse);
    assert!(
        p.closed.iter().any(|r| r.contains("reused")),
        "{:?}",
        p.closed
    );
}

#[test]
fn differing_ranges_are_detected_and_repaired() {
    let mut p = Pair::new(Store::new(A), Store::new(B), "s", "s");
    set(&mut p.a, "k", "v");
    p.connect();
    // Damage B behind replication's back: a key A never had, made by a
    // transfer from a third store whose vector does not show.
    let mut c = Store::new(ReplicaId(0xc));
    set(&mut c, "stray", "s");
    let st = c.state_of(0, b"stray");
    p.b.merge_remote_state(0, b"stray", &st, c.causal_context());
    assert_ne!(p.a.digest(), p.b.digest());
    p.dialer.settings.anti_entropy_ms = 1;
    p.now = 10;
    let out = p.dialer.on_tick(&mut p.a, p.now);
    assert!(p.dialer.has_work(), "a digest pass began");
    p.run(out);
    assert_eq!(p.acceptor.stats.repairs_requested, 1);
    assert_eq!(p.dialer.stats.repairs, 1);
    // The range now reads as A's: the stray key, which A never saw, stays
    // (add-wins); B sends it to A over its own link, so both converge.
    assert!(p.b.exists(0, b"stray"));
    assert!(p.closed.is_empty(), "{:?}", p.closed);
}

#[test]
fn silence_closes_the_link_and_idle_links_heartbeat() {
    let mut p = Pair::new(Store::new(A), Store::new(B), "s", "s");
    p.connect();
    let out = p.dialer.on_tick(&mut p.a, 1500);
    assert!(out
        .iter()
        .any(|o| matches!(o, Out::Send(Msg::Heartbeat { .. }))));
    let out = p.dialer.on_tick(&mut p.a, 20_000);
    assert!(matches!(&out[..], [Out::Close(r)] if r.contains("silent")));
}

#[test]
fn a_stalled_handshake_times_out() {
    let mut b = Store::new(B);
    let mut acceptor = PeerLink::new(Side::Acceptor, B, settings("s"), [2; 32], 0);
    let out = acceptor.on_tick(&mut b, 60_000);
    assert!(matches!(&out[..], [Out::Close(r)] if r.contains("handshake")));
}

#[test]
fn remote_clocks_far_ahead_are_flagged_but_applied() {
    let mut p = Pair::new(Store::new(A), Store::new(B), "s", "s");
    p.now = crate::store::unix_ms();
    p.connect();
    let far = crate::crdt::Hlc::new(crate::store::unix_ms() + 3_600_000, 0);
    p.a.observe_clock(far);
    set(&mut p.a, "k", "v");
    p.run(Vec::new());
    assert_eq!(p.acceptor.stats.skew_alarms, 1);
    assert_eq!(p.a.digest(), p.b.digest());
}

#[test]
fn writes_of_an_origin_that_no_longer_streams_come_by_state_transfer() {
    const C: ReplicaId = ReplicaId(0xc);
    let mut c = Store::new(C);
    set(&mut c, "from-c", "1");
    let mut a = Store::new(A);
    for batch in c.delta_log().since(0).unwrap() {
        a.apply_remote(batch).unwrap();
    }
    // C streams to this node: resuming is enough, C will reach B itself.
    let mut p = Pair::new(a, Store::new(B), "s", "s");
    p.dialer.set_live_origins(vec![C]);
    p.connect();
    assert_eq!(p.dialer.stats.partial_syncs, 1);
    assert!(!p.b.exists(0, b"from-c"));
    // C is gone: only a transfer from A can carry its write to B.
    let (a, b) = (p.a, p.b);
    let mut p = Pair::new(a, b, "s", "s");
    p.connect();
    assert_eq!(p.dialer.stats.full_syncs, 1);
    p.b.begin_command();
    assert!(p.b.exists(0, b"from-c"));
    assert_eq!(p.b.version_vector().get(C), 1);
    assert_eq!(p.a.digest(), p.b.digest());
}
