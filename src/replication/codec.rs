//! The peer wire format, in one place: the [`Msg`] vocabulary and its
//! framing. A frame is a 4-byte big-endian length followed by the message
//! in bincode 2 (serde mode, standard configuration). Peer bytes are
//! untrusted: a frame longer than the limit of the link's phase is refused
//! before it is read, and no length claimed inside a frame can reserve
//! more than the frame carries (`crdt::bounded::decode_untrusted`).
//! The protocol version travels in [`Msg::Hello`]; a peer speaking another
//! version is refused.

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use crate::crdt::bounded::decode_untrusted;
use crate::crdt::{CausalContext, FunctionLibraries, Hlc, ReplicaId, VersionVector};
use crate::store::sync::{SyncEntry, SyncScope};
use crate::store::Batch;

/// Version of this vocabulary; bumped on any incompatible change.
/// 2: function libraries (batch op `Library`, `SyncBegin::functions`).
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest frame accepted before a peer has authenticated.
pub const MAX_HANDSHAKE_FRAME: usize = 4 * 1024;

/// Largest frame accepted from an authenticated peer (a batch can carry a
/// 512 MB value, as a client may send one).
pub const MAX_FRAME: usize = 600 * 1024 * 1024;

/// Bytes of the length prefix.
pub const HEADER: usize = 4;

/// Everything peers say to each other. The dialer of a link streams its
/// own deltas (and state transfers); the acceptor applies them and acks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// First frame each way.
    Hello {
        version: u32,
        replica: ReplicaId,
        nonce: [u8; 32],
    },
    /// HMAC over both nonces, both ids and the role (see `auth`).
    Proof {
        mac: [u8; 20],
    },
    /// Acceptor → dialer: the acceptor's applied version vector.
    Ack {
        applied: VersionVector,
    },
    /// Dialer → acceptor: consecutive batches of the dialer's own writes.
    Batches(Vec<Batch>),
    /// Dialer → acceptor: a state transfer begins. `ctx`, `applied` and
    /// `clock` are the dialer's when it took the list of keys.
    SyncBegin {
        scope: SyncScope,
        ctx: CausalContext,
        applied: VersionVector,
        clock: Hlc,
        keys: u64,
        /// The dialer's function libraries at that instant (full
        /// transfers), joined at `SyncEnd`.
        functions: Option<Box<FunctionLibraries>>,
        /// Per database, the dialer's FLUSHDB floors (full transfers;
        /// since protocol 3): the receiver adopts them at once, so writes
        /// a flush removed that reach it late are removed again.
        flush_floors: Vec<VersionVector>,
    },
    /// Key states, read when the dialer's context was `ctx`.
    SyncChunk {
        ctx: CausalContext,
        entries: Vec<SyncEntry>,
    },
    SyncEnd,
    /// Dialer → acceptor: per-range digests, valid for the data covered by
    /// `applied`.
    Digests {
        applied: VersionVector,
        buckets: Vec<[u8; 20]>,
    },
    /// Acceptor → dialer: ship these ranges.
    RepairRequest {
        buckets: Vec<u16>,
    },
    Heartbeat {
        hlc: Hlc,
    },
}

impl Msg {
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "hello",
            Msg::Proof { .. } => "proof",
            Msg::Ack { .. } => "ack",
            Msg::Batches(_) => "batches",
            Msg::SyncBegin { .. } => "sync-begin",
            Msg::SyncChunk { .. } => "sync-chunk",
            Msg::SyncEnd => "sync-end",
            Msg::Digests { .. } => "digests",
            Msg::RepairRequest { .. } => "repair-request",
            Msg::Heartbeat { .. } => "heartbeat",
        }
    }
}

/// Why bytes from a peer were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("frame of {len} bytes over the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Appends one framed message to `out`.
pub fn encode(msg: &Msg, out: &mut BytesMut) {
    let body = bincode::serde::encode_to_vec(msg, bincode::config::standard())
        .expect("in-memory messages always encode");
    out.put_u32(body.len() as u32);
    out.extend_from_slice(&body);
}

/// Takes one complete frame off the front of `buf` and decodes it;
/// `Ok(None)` when the frame is not complete yet. `limit` is the largest
/// body accepted, checked before waiting for the body.
pub fn decode(buf: &mut BytesMut, limit: usize) -> Result<Option<Msg>, CodecError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > limit {
        return Err(CodecError::TooLarge { len, limit });
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    buf.advance(HEADER);
    let body = buf.split_to(len);
    // The frame's own length bounds what decoding may reserve.
    let (msg, used): (Msg, usize) =
        decode_untrusted(&body).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes",
            body.len() - used
        )));
    }
    Ok(Some(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn hello() -> Msg {
        Msg::Hello {
            version: PROTOCOL_VERSION,
            replica: ReplicaId(7),
            nonce: [3; 32],
        }
    }

    #[test]
    fn messages_round_trip_and_partial_frames_wait() {
        let mut buf = BytesMut::new();
        encode(&hello(), &mut buf);
        encode(&Msg::SyncEnd, &mut buf);
        let whole = buf.clone();
        let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
        assert_eq!(decode(&mut partial, MAX_FRAME), Ok(Some(hello())));
        assert_eq!(decode(&mut partial, MAX_FRAME), Ok(None));
        assert_eq!(decode(&mut buf, MAX_FRAME), Ok(Some(hello())));
        assert_eq!(decode(&mut buf, MAX_FRAME), Ok(Some(Msg::SyncEnd)));
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_frame_is_refused_before_its_body_arrives() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode(&mut buf, MAX_HANDSHAKE_FRAME),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut valid = BytesMut::new();
        encode(&hello(), &mut valid);
        for _ in 0..5000 {
            let mut bytes: Vec<u8> = if rng.gen_bool(0.5) {
                valid.to_vec()
            } else {
                let n = rng.gen_range(0..64);
                let mut v = (n as u32).to_be_bytes().to_vec();
                v.extend((0..n).map(|_| rng.gen::<u8>()));
                v
            };
            let i = rng.gen_range(HEADER.min(bytes.len())..bytes.len().max(HEADER + 1));
            if i < bytes.len() {
                bytes[i] = rng.gen();
            }
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = decode(&mut buf, MAX_HANDSHAKE_FRAME);
        }
    }
}
