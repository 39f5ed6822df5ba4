//! HyperLogLog values in Redis's own byte layout, and the HyperLogLog write
//! a key version holds.
//!
//! Layout (what GET returns and SET may hand back): a 16-byte header —
//! `HYLL`, one encoding byte (0 dense, 1 sparse), three zero bytes, the
//! cached cardinality as 8 little-endian bytes whose top bit marks it
//! stale — followed by 16384 6-bit registers, either packed (dense, 12288
//! bytes, least significant bits first) or run-length coded (sparse):
//! `00xxxxxx` ZERO (1–64 zero registers), `01xxxxxx yyyyyyyy` XZERO (1–16384
//! zero registers), `1vvvvvxx` VAL (value 1–32 repeated 1–4 times).
//!
//! Sparse updates follow Redis's in-place rules (split the opcode covering
//! the register, then merge equal neighbouring VALs), so a key fed the same
//! elements holds the same bytes as in Redis; a value that would need a
//! register above 32 or grow past `hll-sparse-max-bytes` turns dense.
//!
//! Replication: a PFADD/PFMERGE writes an [`HllWrite`] holding the whole
//! value it produced and supersedes the versions it observed. Concurrent
//! HyperLogLog writes all stay live and read as their register-wise max
//! ([`merge_values`]), so concurrent PFADDs in two regions all count.
//! Everything here is pure: callers hash elements and pass time.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::clock::Hlc;

/// Registers per HyperLogLog (2^14).
pub const REGISTERS: usize = 1 << 14;
/// Largest register value (6 bits).
pub const REGISTER_MAX: u8 = 63;
/// Header bytes before the registers.
pub const HEADER_LEN: usize = 16;
/// Length of a dense value, header included.
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTERS * 6).div_ceil(8);
/// Encoding byte of a dense value.
pub const DENSE: u8 = 0;
/// Encoding byte of a sparse value.
pub const SPARSE: u8 = 1;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
/// `hll-sparse-max-bytes` by default; also the bound used when concurrent
/// writes are merged on read (a read has no configuration at hand).
pub const DEFAULT_SPARSE_MAX: usize = 3000;
/// Byte 15's top bit: the cached cardinality is stale.
const CACHE_STALE: u8 = 0x80;

/// A HyperLogLog write of a string key: the whole value it left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HllWrite {
    pub ts: Hlc,
    pub bytes: Bytes,
}

/// The value's registers do not add up to 16384 (Redis's INVALIDOBJ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt;

/// True when `bytes` pass Redis's check for a HyperLogLog string: the
/// magic, a known encoding, and the exact length when dense. (A sparse
/// body is checked when it is read.)
pub fn looks_like_hll(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN
        && &bytes[..4] == b"HYLL"
        && bytes[4] <= SPARSE
        && (bytes[4] != DENSE || bytes.len() == DENSE_LEN)
}

/// One sparse opcode, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// A run of zero registers (`xzero`: the two-byte form).
    Zero {
        len: usize,
        xzero: bool,
    },
    Val {
        value: u8,
        len: usize,
    },
}

impl Op {
    /// The opcode at `body[at]` and its byte length; `None` when an XZERO
    /// is cut off by the end.
    fn at(body: &[u8], at: usize) -> Option<(Op, usize)> {
        let b = body[at];
        if b & 0x80 != 0 {
            let value = ((b >> 2) & 0x1f) + 1;
            let len = usize::from(b & 0x03) + 1;
            Some((Op::Val { value, len }, 1))
        } else if b & 0x40 != 0 {
            let low = *body.get(at + 1)?;
            let len = ((usize::from(b & 0x3f) << 8) | usize::from(low)) + 1;
            Some((Op::Zero { len, xzero: true }, 2))
        } else {
            let len = usize::from(b & 0x3f) + 1;
            Some((Op::Zero { len, xzero: false }, 1))
        }
    }

    fn span(self) -> usize {
        match self {
            Op::Zero { len, .. } | Op::Val { len, .. } => len,
        }
    }
}

fn push_val(out: &mut Vec<u8>, value: u8, len: usize) {
    out.push(0x80 | ((value - 1) << 2) | (len as u8 - 1));
}

/// A zero run as Redis writes it: ZERO up to 64 registers, XZERO beyond.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        out.push(0x40 | (l >> 8) as u8);
        out.push((l & 0xff) as u8);
    } else {
        out.push((len - 1) as u8);
    }
}

fn dense_get(regs: &[u8], index: usize) -> u8 {
    let byte = index * 6 / 8;
    let shift = index * 6 % 8;
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> shift) | (b1 << (8 - shift))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_put(regs: &mut [u8], index: usize, value: u8) {
    let byte = index * 6 / 8;
    let shift = index * 6 % 8;
    let v = u16::from(value & REGISTER_MAX);
    regs[byte] &= !((u16::from(REGISTER_MAX) << shift) as u8);
    regs[byte] |= (v << shift) as u8;
    if byte + 1 < regs.len() {
        let high = 8 - shift;
        regs[byte + 1] &= !((u16::from(REGISTER_MAX) >> high) as u8);
        regs[byte + 1] |= (v >> high) as u8;
    }
}

/// A HyperLogLog value being read or changed, in Redis's layout. Built
/// from bytes that pass [`looks_like_hll`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hll {
    bytes: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Self {
        Self::new()
    }
}

impl Hll {
    /// An empty value as Redis creates it: sparse, one XZERO of 16384.
    pub fn new() -> Self {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 2);
        bytes.extend_from_slice(b"HYLL");
        bytes.push(SPARSE);
        bytes.extend_from_slice(&[0; 11]);
        push_zeros(&mut bytes, REGISTERS);
        Hll { bytes }
    }

    /// An empty dense value (the registers of PFSELFTEST's reference).
    pub fn new_dense() -> Self {
        let mut bytes = vec![0; DENSE_LEN];
        bytes[..4].copy_from_slice(b"HYLL");
        Hll { bytes }
    }

    /// The value of `bytes`, or `None` when they are not a HyperLogLog.
    pub fn from_bytes(bytes: &[u8]) -> Option<Hll> {
        looks_like_hll(bytes).then(|| Hll {
            bytes: bytes.to_vec(),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        Bytes::from(self.bytes)
    }

    pub fn is_sparse(&self) -> bool {
        self.bytes[4] == SPARSE
    }

    /// The cached cardinality, if it is not stale.
    pub fn cached_cardinality(&self) -> Option<u64> {
        let raw: [u8; 8] = self.bytes[8..16].try_into().expect("header length");
        (raw[7] & CACHE_STALE == 0).then(|| u64::from_le_bytes(raw))
    }

    pub fn set_cached_cardinality(&mut self, card: u64) {
        self.bytes[8..16].copy_from_slice(&card.to_le_bytes());
    }

    pub fn invalidate_cache(&mut self) {
        self.bytes[15] |= CACHE_STALE;
    }

    /// Sets register `index` of a dense value to `value` (PFSELFTEST's
    /// packing check); a sparse value is left alone.
    pub fn set_register(&mut self, index: usize, value: u8) {
        if !self.is_sparse() {
            dense_put(&mut self.bytes[HEADER_LEN..], index, value);
        }
    }

    /// Raises register `index` to `count` if it is lower; true when it
    /// changed. `sparse_max` is `hll-sparse-max-bytes`.
    pub fn raise(&mut self, index: usize, count: u8, sparse_max: usize) -> Result<bool, Corrupt> {
        if !self.is_sparse() {
            let regs = &mut self.bytes[HEADER_LEN..];
            if dense_get(regs, index) >= count {
                return Ok(false);
            }
            dense_put(regs, index, count);
            return Ok(true);
        }
        if count > SPARSE_VAL_MAX_VALUE {
            return self.promote_and_raise(index, count);
        }
        self.sparse_raise(index, count, sparse_max)
    }

    fn promote_and_raise(&mut self, index: usize, count: u8) -> Result<bool, Corrupt> {
        self.to_dense()?;
        dense_put(&mut self.bytes[HEADER_LEN..], index, count);
        Ok(true)
    }

    /// Redis's in-place sparse update: find the opcode covering `index`,
    /// split it around the new VAL, then merge equal VAL neighbours in the
    /// few opcodes around the change.
    fn sparse_raise(
        &mut self,
        index: usize,
        count: u8,
        sparse_max: usize,
    ) -> Result<bool, Corrupt> {
        let end = self.bytes.len();
        let mut at = HEADER_LEN;
        let mut first = 0usize;
        let mut prev: Option<usize> = None;
        let mut found = None;
        while at < end {
            let (op, oplen) = Op::at(&self.bytes, at).ok_or(Corrupt)?;
            if index < first + op.span() {
                found = Some((op, oplen));
                break;
            }
            prev = Some(at);
            at += oplen;
            first += op.span();
        }
        let (op, oplen) = found.ok_or(Corrupt)?;
        let last = first + op.span() - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        match op {
            Op::Val { value, .. } if value >= count => return Ok(false),
            Op::Val { len: 1, .. }
            | Op::Zero {
                len: 1,
                xzero: false,
            } => {
                push_val(&mut seq, count, 1);
            }
            Op::Zero { .. } => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                push_val(&mut seq, count, 1);
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
            Op::Val { value, .. } => {
                if index != first {
                    push_val(&mut seq, value, index - first);
                }
                push_val(&mut seq, count, 1);
                if index != last {
                    push_val(&mut seq, value, last - index);
                }
            }
        }
        if seq.len() > oplen && self.bytes.len() + seq.len() - oplen > sparse_max {
            return self.promote_and_raise(index, count);
        }
        self.bytes.splice(at..at + oplen, seq);
        self.merge_neighbours(prev.unwrap_or(HEADER_LEN));
        self.invalidate_cache();
        Ok(true)
    }

    /// Merges adjacent VALs of one value (up to 4 registers) in the five
    /// opcodes from `from`, as Redis does after each update.
    fn merge_neighbours(&mut self, from: usize) {
        let mut p = from;
        let mut scan = 5;
        while p < self.bytes.len() && scan > 0 {
            scan -= 1;
            let Some((op, oplen)) = Op::at(&self.bytes, p) else {
                return;
            };
            let Op::Val { value, len } = op else {
                p += oplen;
                continue;
            };
            if let Some(&next) = self.bytes.get(p + 1) {
                if next & 0x80 != 0 {
                    let next_value = ((next >> 2) & 0x1f) + 1;
                    let merged = len + usize::from(next & 0x03) + 1;
                    if next_value == value && merged <= SPARSE_VAL_MAX_LEN {
                        self.bytes.remove(p);
                        self.bytes[p] = 0x80 | ((value - 1) << 2) | (merged as u8 - 1);
                        // Try the merged opcode against its right neighbour.
                        continue;
                    }
                }
            }
            p += 1;
        }
    }

    /// Converts a sparse value to dense (the cached cardinality is kept).
    pub fn to_dense(&mut self) -> Result<(), Corrupt> {
        if !self.is_sparse() {
            return Ok(());
        }
        let mut dense = vec![0u8; DENSE_LEN];
        dense[..HEADER_LEN].copy_from_slice(&self.bytes[..HEADER_LEN]);
        dense[4] = DENSE;
        let mut index = 0usize;
        self.for_each_run(|value, len| {
            if value != 0 {
                for i in index..index + len {
                    dense_put(&mut dense[HEADER_LEN..], i, value);
                }
            }
            index += len;
        })?;
        self.bytes = dense;
        Ok(())
    }

    /// Calls `visit(value, run length)` for the register runs in order;
    /// `Corrupt` unless they cover exactly 16384 registers. A VAL run that
    /// would pass the end stops the walk (so nothing is written past it).
    fn for_each_run(&self, mut visit: impl FnMut(u8, usize)) -> Result<(), Corrupt> {
        if !self.is_sparse() {
            let regs = &self.bytes[HEADER_LEN..];
            for i in 0..REGISTERS {
                visit(dense_get(regs, i), 1);
            }
            return Ok(());
        }
        let mut at = HEADER_LEN;
        let mut covered = 0usize;
        while at < self.bytes.len() {
            let (op, oplen) = Op::at(&self.bytes, at).ok_or(Corrupt)?;
            if covered + op.span() > REGISTERS {
                return Err(Corrupt);
            }
            match op {
                Op::Zero { len, .. } => visit(0, len),
                Op::Val { value, len } => visit(value, len),
            }
            covered += op.span();
            at += oplen;
        }
        if covered == REGISTERS {
            Ok(())
        } else {
            Err(Corrupt)
        }
    }

    /// Every register, one byte each.
    pub fn registers(&self) -> Result<Vec<u8>, Corrupt> {
        let mut regs = Vec::with_capacity(REGISTERS);
        self.for_each_run(|value, len| regs.extend(std::iter::repeat_n(value, len)))?;
        Ok(regs)
    }

    /// Raises `max[i]` to this value's register `i`, for every `i`.
    pub fn max_into(&self, max: &mut [u8]) -> Result<(), Corrupt> {
        let mut index = 0usize;
        self.for_each_run(|value, len| {
            for m in &mut max[index..index + len] {
                *m = (*m).max(value);
            }
            index += len;
        })
    }

    /// How many registers hold each value (index 0–63).
    pub fn histogram(&self) -> Result<[u32; 64], Corrupt> {
        let mut histo = [0u32; 64];
        self.for_each_run(|value, len| histo[usize::from(value)] += len as u32)?;
        Ok(histo)
    }

    /// Redis's PFDEBUG DECODE text of a sparse value (`z:`, `Z:`, `v:`).
    pub fn decode_sparse(&self) -> String {
        let mut words = Vec::new();
        let mut at = HEADER_LEN;
        while at < self.bytes.len() {
            let Some((op, oplen)) = Op::at(&self.bytes, at) else {
                break;
            };
            words.push(match op {
                Op::Zero { len, xzero: false } => format!("z:{len}"),
                Op::Zero { len, xzero: true } => format!("Z:{len}"),
                Op::Val { value, len } => format!("v:{value},{len}"),
            });
            at += oplen;
        }
        words.join(" ")
    }
}

/// The value of several concurrent HyperLogLog writes: the first (the
/// latest write) with every other one's registers raised into it, as
/// PFMERGE would write them. A value whose registers are corrupt is left
/// out (its write can only have come from a SET of bad bytes elsewhere).
pub fn merge_values(values: &[&Bytes], sparse_max: usize) -> Bytes {
    let Some((first, rest)) = values.split_first() else {
        return Bytes::new();
    };
    let Some(mut out) = Hll::from_bytes(first) else {
        return (*first).clone();
    };
    let mut max = vec![0u8; REGISTERS];
    let mut any_dense = false;
    for value in rest {
        if let Some(hll) = Hll::from_bytes(value) {
            any_dense |= !hll.is_sparse();
            let _ = hll.max_into(&mut max);
        }
    }
    // As PFMERGE: a dense input makes the result dense.
    if any_dense && out.to_dense().is_err() {
        return (*first).clone();
    }
    let mut changed = false;
    for (index, &value) in max.iter().enumerate() {
        if value != 0 {
            changed |= out.raise(index, value, sparse_max).unwrap_or(false);
        }
    }
    if changed {
        out.invalidate_cache();
    }
    out.into_bytes()
}
