//! Peer bytes are untrusted: a frame's claimed lengths must not make the
//! decoder reserve memory beyond what the link's phase allows. A global
//! allocator that records the largest single request checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use cordis::crdt::{Hlc, KeyDelta, ReplicaId};
use cordis::replication::codec::{decode, encode, Msg, MAX_FRAME, MAX_HANDSHAKE_FRAME};
use cordis::store::{Batch, Op};

/// Passes every request to the system allocator, remembering the largest.
struct LargestRequest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for LargestRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestRequest = LargestRequest;

/// A small Batches frame whose key claims `claimed` bytes (bincode's
/// varint: 253 then a little-endian u64), with only ten present.
fn frame_with_claimed_key_length(claimed: u64) -> BytesMut {
    let key = Bytes::from_static(b"KKKKKKKKKK");
    let msg = Msg::Batches(vec![Batch {
        origin: ReplicaId(9),
        first_seq: 1,
        last_seq: 1,
        hlc: Hlc::new(1, 0),
        ops: vec![Op::Key {
            db: 0,
            key,
            delta: KeyDelta::default(),
            events: Default::default(),
        }],
    }]);
    let mut framed = BytesMut::new();
    encode(&msg, &mut framed);
    let body = framed.split_off(4).to_vec();
    let at = body
        .windows(11)
        .position(|w| w[0] == 10 && &w[1..] == b"KKKKKKKKKK")
        .expect("the key's length byte");
    let mut patched = body[..at].to_vec();
    patched.push(253);
    patched.extend_from_slice(&claimed.to_le_bytes());
    patched.extend_from_slice(&body[at + 1..]);
    let mut out = BytesMut::new();
    out.extend_from_slice(&(patched.len() as u32).to_be_bytes());
    out.extend_from_slice(&patched);
    out
}

/// Decodes `frame` with `limit` and returns whether it was refused and the
/// largest single allocation made meanwhile. (One test runs both cases in
/// turn, since the record is process-wide.)
fn decode_recording_the_largest_allocation(mut frame: BytesMut, limit: usize) -> (bool, usize) {
    LARGEST.store(0, Ordering::Relaxed);
    let refused = decode(&mut frame, limit).is_err();
    (refused, LARGEST.load(Ordering::Relaxed))
}

#[test]
fn a_claimed_length_cannot_reserve_more_than_the_frame_carries() {
    let frame = frame_with_claimed_key_length(500_000_000);
    assert!(frame.len() < 100, "a small frame: {} bytes", frame.len());
    for (phase, limit) in [
        ("before authentication", MAX_HANDSHAKE_FRAME),
        ("after authentication", MAX_FRAME),
    ] {
        let (refused, largest) = decode_recording_the_largest_allocation(frame.clone(), limit);
        assert!(
            refused,
            "{phase}: a claim beyond the bytes present is refused"
        );
        assert!(
            largest <= 64 * 1024,
            "{phase}: a {}-byte frame made the decoder reserve {largest} bytes",
            frame.len()
        );
    }
    // An honest frame still decodes.
    let (refused, _) = decode_recording_the_largest_allocation(
        frame_with_claimed_key_length(10),
        MAX_HANDSHAKE_FRAME,
    );
    assert!(!refused, "the untampered frame decodes");

    // A stream consumer group's change claiming 2^53 removed dots in a
    // 48-byte batch (found by fuzz/batch_decode: the list was read with
    // smallvec's own deserializer, which reserved what the input claimed,
    // 2^57 bytes). Read through `Vec`, a list reserves at most serde's
    // cautious 1 MiB before its elements arrive.
    let group_change = include_bytes!("fixtures/batch-decode-group-removes.bin");
    LARGEST.store(0, Ordering::Relaxed);
    let refused = Batch::decode(group_change).is_err();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(refused, "the forged group change is refused");
    assert!(
        largest <= 1 << 20,
        "a {}-byte batch made the decoder reserve {largest} bytes",
        group_change.len()
    );

    // A sorted set's member claiming 2^48 score entries in a 44-byte
    // frame before authentication (found by fuzz/peer_frame: the
    // replicated form read them with smallvec's own deserializer).
    let zset_frame = include_bytes!("fixtures/peer-frame-zset-entries.bin");
    let (_, largest) = decode_recording_the_largest_allocation(
        BytesMut::from(&zset_frame[..]),
        MAX_HANDSHAKE_FRAME,
    );
    assert!(
        largest <= 1 << 20,
        "a {}-byte frame made the decoder reserve {largest} bytes",
        zset_frame.len()
    );
}
