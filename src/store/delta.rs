//! What a node ships to its peers: a [`Batch`] of per-key deltas for one
//! command (or one MULTI/EXEC block), and the bounded outgoing [`DeltaLog`]
//! that holds batches until replication has sent them.
//!
//! A batch consumes the contiguous local sequence numbers
//! `first_seq..=last_seq` (at least one), so a peer applies batches in order
//! and exactly once by comparing with its version vector.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::events::EventCodes;
use crate::crdt::{CollDelta, Dot, Hlc, KeyDelta, Payload, ReplicaId, Version, VersionVector};

/// One replicated effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A delta on one key of database `db`, with the keyspace events the
    /// command raised on it (peers raise them too).
    Key {
        db: u8,
        key: Bytes,
        delta: KeyDelta,
        events: EventCodes,
    },
    /// FLUSHDB: remove every version of database `db` whose dot `seen`
    /// covers (an observed-remove of everything the flushing node had seen).
    Flush { db: u8, seen: VersionVector },
    /// PUBLISH (`shard`: SPUBLISH): delivered to the subscribers of every
    /// node that applies the batch; it changes no data.
    Message {
        channel: Bytes,
        message: Bytes,
        shard: bool,
    },
    /// FUNCTION LOAD/DELETE/FLUSH/RESTORE: a change to the replicated
    /// function libraries (peers compile what it loads).
    Library(crate::crdt::LibraryDelta),
}

/// The deltas of one command, applied atomically at every peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub origin: ReplicaId,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The command's HLC timestamp (peers advance their clocks past it).
    pub hlc: Hlc,
    pub ops: Vec<Op>,
}

/// Heap bytes an allocation of `len` bytes really occupies: malloc rounds
/// up to 16-byte chunks and keeps an 8-byte header.
fn heap_block(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).div_ceil(16) * 16
    }
}

impl Batch {
    /// In-memory size of the batch as the log holds it (the `Arc` block,
    /// the op vector, keys, spilled small-vectors, values and collection
    /// changes), used to bound the log by bytes. Values shared with the
    /// store are counted too: the log may be what keeps them alive.
    pub fn approximate_bytes(&self) -> usize {
        use std::mem::size_of;
        let version_heap = |v: &Version| match &v.payload {
            Payload::Str(w) => {
                w.value.as_ref().map_or(0, |b| heap_block(b.len()))
                    + heap_block(w.observed.len() * size_of::<crate::crdt::key::RunMark>())
            }
            Payload::Hll(w) => heap_block(w.bytes.len()),
            _ => 0,
        };
        let op_heap = |op: &Op| match op {
            Op::Key { key, delta, .. } => {
                let removes = if delta.removes.spilled() {
                    heap_block(delta.removes.capacity() * size_of::<Dot>())
                } else {
                    0
                };
                let adds = if delta.adds.spilled() {
                    heap_block(delta.adds.capacity() * size_of::<Version>())
                } else {
                    0
                };
                heap_block(key.len())
                    + removes
                    + adds
                    + delta.adds.iter().map(version_heap).sum::<usize>()
                    + heap_block(delta.colls.capacity() * size_of::<CollDelta>())
                    + delta
                        .colls
                        .iter()
                        .map(|c| c.approximate_bytes())
                        .sum::<usize>()
            }
            Op::Flush { .. } => 0,
            Op::Message {
                channel, message, ..
            } => heap_block(channel.len()) + heap_block(message.len()),
            Op::Library(delta) => match delta {
                crate::crdt::LibraryDelta::Write {
                    name,
                    removes,
                    version,
                } => {
                    heap_block(name.len())
                        + heap_block(removes.len() * size_of::<Dot>())
                        + version.code.as_ref().map_or(0, |c| heap_block(c.len()))
                }
                crate::crdt::LibraryDelta::Flush { .. } => 0,
            },
        };
        heap_block(16 + size_of::<Batch>())
            + heap_block(self.ops.capacity() * size_of::<Op>())
            + self.ops.iter().map(op_heap).sum::<usize>()
    }
}

/// Largest encoded batch [`Batch::decode`] accepts: peer bytes are
/// untrusted, so decoding never allocates beyond this.
pub const MAX_ENCODED_BATCH: usize = 600 * 1024 * 1024;

/// Why bytes did not decode into a batch.
#[derive(Debug, thiserror::Error)]
#[error("malformed batch: {0}")]
pub struct DecodeError(String);

impl Batch {
    /// The batch in the peer wire format (bincode 2, serde mode, standard
    /// configuration: varint integers, little endian).
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("in-memory batches always encode")
    }

    /// Decodes a batch, refusing trailing bytes and anything that would
    /// need more than [`MAX_ENCODED_BATCH`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Batch, DecodeError> {
        if bytes.len() > MAX_ENCODED_BATCH {
            return Err(DecodeError(format!(
                "{} bytes, over the limit of {MAX_ENCODED_BATCH}",
                bytes.len()
            )));
        }
        let (batch, used): (Batch, usize) = crate::crdt::bounded::decode_untrusted(bytes)
            .map_err(|e| DecodeError(e.to_string()))?;
        if used != bytes.len() {
            return Err(DecodeError(format!(
                "{} trailing bytes",
                bytes.len() - used
            )));
        }
        Ok(batch)
    }
}

/// The outgoing replication log: batches in sequence order, bounded by
/// bytes. When full, the oldest batches are dropped and `dropped_through`
/// records the last sequence number lost, so a peer that still needs them
/// is known to require a full sync instead.
#[derive(Debug)]
pub struct DeltaLog {
    /// Batches with their approximate size (computed once, on push).
    batches: VecDeque<(Arc<Batch>, usize)>,
    bytes: usize,
    cap_bytes: usize,
    dropped_through: u64,
    /// Pub/Sub messages in batches dropped for lack of room (some peer may
    /// not have them: a full sync carries data, not messages).
    messages_dropped: u64,
}

impl DeltaLog {
    pub fn new(cap_bytes: usize) -> Self {
        DeltaLog {
            batches: VecDeque::new(),
            bytes: 0,
            cap_bytes,
            dropped_through: 0,
            messages_dropped: 0,
        }
    }

    pub fn push(&mut self, batch: Arc<Batch>) {
        let size = batch.approximate_bytes();
        self.bytes += size;
        self.batches.push_back((batch, size));
        self.enforce_cap();
    }

    /// Records that the batches through `seq` were never kept (a node
    /// without peers): anyone asking for them needs a full sync.
    pub fn pass_over(&mut self, seq: u64) {
        self.dropped_through = seq;
    }

    /// Drops the oldest batches until the log fits its cap.
    fn enforce_cap(&mut self) {
        while self.bytes > self.cap_bytes {
            match self.batches.pop_front() {
                Some((old, size)) => {
                    self.bytes -= size;
                    self.dropped_through = old.last_seq;
                    self.messages_dropped += old
                        .ops
                        .iter()
                        .filter(|op| matches!(op, Op::Message { .. }))
                        .count() as u64;
                }
                None => break,
            }
        }
    }

    /// Forgets batches up to `seq` (every peer has acknowledged them). A
    /// peer that later asks for them (a new peer) needs a full sync, so
    /// they count as dropped.
    pub fn trim_through(&mut self, seq: u64) {
        while self.batches.front().is_some_and(|(b, _)| b.last_seq <= seq) {
            let (old, size) = self.batches.pop_front().expect("front exists");
            self.bytes -= size;
            self.dropped_through = old.last_seq;
        }
    }

    /// Batches after `seq`, or `None` when some of them were dropped (the
    /// caller must fall back to a full sync).
    pub fn since(&self, seq: u64) -> Option<impl Iterator<Item = &Arc<Batch>>> {
        if seq < self.dropped_through {
            return None;
        }
        // Batches are in seq order: find the first one past `seq` by
        // binary search (replication asks on every write).
        let first = self.batches.partition_point(|(b, _)| b.last_seq <= seq);
        Some(self.batches.range(first..).map(|(b, _)| b))
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    /// Changes the cap (CONFIG SET replication-log-bytes); a lower cap
    /// takes effect at once.
    pub fn set_cap_bytes(&mut self, cap: usize) {
        self.cap_bytes = cap;
        self.enforce_cap();
    }

    /// An empty log whose history up to `seq` is gone (after a restore):
    /// a peer that needs any of it gets a full sync.
    pub fn start_after(&mut self, seq: u64) {
        self.dropped_through = self.dropped_through.max(seq);
    }

    pub fn dropped_through(&self) -> u64 {
        self.dropped_through
    }

    /// Messages dropped with batches the cap pushed out.
    pub fn messages_dropped(&self) -> u64 {
        self.messages_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64, value_len: usize) -> Arc<Batch> {
        let state = crate::crdt::KeyState::new();
        let mut n = seq;
        let delta = state.delta_set(
            Bytes::from(vec![b'x'; value_len]),
            Hlc(1),
            crate::crdt::TtlChange::Keep,
            &mut || {
                let d = crate::crdt::Dot::new(ReplicaId(1), n);
                n += 1;
                d
            },
        );
        Arc::new(Batch {
            origin: ReplicaId(1),
            first_seq: seq,
            last_seq: seq,
            hlc: Hlc(seq),
            ops: vec![Op::Key {
                db: 0,
                key: Bytes::from_static(b"k"),
                delta,
                events: EventCodes::NONE,
            }],
        })
    }

    #[test]
    fn log_never_exceeds_its_byte_cap_and_reports_what_it_dropped() {
        let mut log = DeltaLog::new(10_000);
        for seq in 1..=1000 {
            log.push(batch(seq, 100));
            assert!(log.bytes() <= 10_000);
        }
        assert!(log.len() < 1000);
        assert!(log.dropped_through() > 0);
        assert!(log.since(0).is_none(), "a peer at 0 needs a full sync");
        let tail: Vec<u64> = log.since(999).unwrap().map(|b| b.last_seq).collect();
        assert_eq!(tail, vec![1000]);
    }

    #[test]
    fn batches_round_trip_through_the_wire_format() {
        let original = batch(7, 40);
        let bytes = original.encode();
        assert_eq!(Batch::decode(&bytes).unwrap(), *original);
        assert!(
            Batch::decode(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Batch::decode(&longer).is_err(), "trailing garbage");
    }

    #[test]
    fn a_huge_claimed_length_does_not_reserve_memory() {
        // Found by the batch_decode fuzz target: a removes list claiming
        // 2^62 dots made smallvec reserve it up front and abort the process.
        let crash: &[u8] = &[
            0x01, 0x05, 0x5c, 0x5c, 0x5c, 0x00, 0x00, 0x00, 0xfd, 0x93, 0x00, 0x10, 0x00, 0xf6,
            0x00, 0x00, 0x02, 0x06,
        ];
        assert!(Batch::decode(crash).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_batch_decoder() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let valid = batch(3, 10).encode();
        for _ in 0..5000 {
            let mut bytes = if rng.gen_bool(0.5) {
                valid.clone()
            } else {
                (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
            };
            if !bytes.is_empty() {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            let _ = Batch::decode(&bytes);
        }
    }

    #[test]
    fn trimming_forgets_acknowledged_batches() {
        let mut log = DeltaLog::new(1 << 20);
        for seq in 1..=10 {
            log.push(batch(seq, 10));
        }
        log.trim_through(7);
        assert_eq!(log.len(), 3);
        assert_eq!(log.since(7).unwrap().count(), 3);
    }
}
