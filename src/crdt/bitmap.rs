//! Bitmap writes on a string key (SETBIT, BITFIELD SET/INCRBY) as *bit
//! patches*: versions of the key that are rendered over its base value when
//! it is read.
//!
//! A patch names a field (a bit offset, a width of 0..=64 bits, signedness),
//! an operation (write these bits, or add an amount under an overflow mode)
//! and the length in bytes the string must have at least once it applies
//! (`reach`, Redis's zero padding up to the highest bit written). Reading a
//! key renders: the base value (the winning SET, plus counter increments),
//! padded to the largest reach, then every live patch in `(ts, dot)` order.
//!
//! Why this meets the merge rule:
//! - concurrent SETBITs on different bits are different versions, both live;
//!   on the same bit the later `(ts, dot)` applies last (LWW per bit);
//! - concurrent BITFIELD INCRBYs are separate `Add` patches that all apply,
//!   each under its overflow mode, to the merged value;
//! - a SET (or BITOP into the key, APPEND, SETRANGE) removes the patches it
//!   observed, like it resets the increments it observed; concurrent patches
//!   it did not observe apply on top of its value.
//!
//! Cost: a local write removes the patches of its own that it fully covers,
//! and a WRAP increment folds into this replica's latest patch of the same
//! field, so a key holds about one patch per distinct field written since the
//! last whole-value write.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::causal::{Dot, ReplicaId};
use super::clock::Hlc;
use super::key::{KeyDelta, KeyState, Payload, TtlChange, Version};

/// What BITFIELD does when an increment or a SET leaves the field's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    /// Modular arithmetic (two's complement for signed fields).
    Wrap,
    /// Clamp to the field's minimum or maximum.
    Sat,
    /// Leave the field unchanged (the command replies nil).
    Fail,
}

/// A run of `width` bits starting at bit `offset` (bit 0 is the most
/// significant bit of byte 0, as in Redis), read as a signed or unsigned
/// integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitField {
    pub offset: u64,
    pub width: u8,
    pub signed: bool,
}

/// What a patch does to its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitOp {
    /// Store these bits (the low `width` bits); width 0 only pads.
    Write(u64),
    /// Add `amount` to the field's current value under `overflow`.
    Add { amount: i64, overflow: Overflow },
}

/// The longest string a bit write may grow (4 GiB, past Redis's 512 MB
/// default `proto-max-bulk-len`): commands refuse offsets beyond it and a
/// peer's patch reaching further is refused when decoded, so a small
/// message can never make a node allocate without bound.
pub const MAX_BITMAP_BYTES: u64 = 1 << 32;

/// How many patches a key of a single-region node holds before they fold
/// into its string (see [`KeyState::delta_bitmap_alone`]).
pub const ALONE_PATCH_LIMIT: usize = 32;

/// One bitmap write on a key, a [`Payload::Bits`] version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedBitPatch")]
pub struct BitPatch {
    pub ts: Hlc,
    pub field: BitField,
    pub op: BitOp,
    /// The string is at least this many bytes long once the patch applies.
    pub reach: u64,
}

/// A patch as decoded from a peer, before its bounds are checked.
#[derive(Deserialize)]
struct UncheckedBitPatch {
    ts: Hlc,
    field: BitField,
    op: BitOp,
    reach: u64,
}

impl TryFrom<UncheckedBitPatch> for BitPatch {
    type Error = &'static str;

    fn try_from(p: UncheckedBitPatch) -> Result<Self, Self::Error> {
        let width = p.field.width;
        let sized = match p.op {
            BitOp::Write(_) => width <= 64,
            BitOp::Add { .. } => (1..=64).contains(&width),
        };
        if !sized || p.reach > MAX_BITMAP_BYTES || p.field.offset >= MAX_BITMAP_BYTES * 8 {
            return Err("bit patch out of bounds");
        }
        Ok(BitPatch {
            ts: p.ts,
            field: p.field,
            op: p.op,
            reach: p.reach,
        })
    }
}

/// A bitmap write a command asks for, before it gets a dot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitWrite {
    pub field: BitField,
    pub op: BitOp,
    pub reach: u64,
}

impl BitField {
    pub fn bit(offset: u64) -> BitField {
        BitField {
            offset,
            width: 1,
            signed: false,
        }
    }

    fn end(&self) -> u64 {
        self.offset.saturating_add(self.width as u64)
    }

    fn covers(&self, other: &BitField) -> bool {
        self.offset <= other.offset && other.end() <= self.end()
    }

    fn overlaps(&self, other: &BitField) -> bool {
        self.offset < other.end() && other.offset < self.end()
    }

    fn min(&self) -> i128 {
        if self.signed {
            -(1i128 << (self.width - 1))
        } else {
            0
        }
    }

    fn max(&self) -> i128 {
        if self.signed {
            (1i128 << (self.width - 1)) - 1
        } else {
            (1i128 << self.width) - 1
        }
    }

    /// The field's value in `bytes`, bits past the end reading as zero.
    pub fn read(&self, bytes: &[u8]) -> i64 {
        let mut raw: u64 = 0;
        for i in 0..self.width as u64 {
            raw = (raw << 1) | get_bit(bytes, self.offset + i) as u64;
        }
        if self.signed && self.width > 0 && self.width < 64 && raw >> (self.width - 1) & 1 == 1 {
            // Sign-extend.
            (raw | (u64::MAX << self.width)) as i64
        } else {
            raw as i64
        }
    }

    /// Stores the low `width` bits of `value`; bits past the end of
    /// `bytes` are dropped (the reach makes room before a write).
    pub fn write(&self, bytes: &mut [u8], value: u64) {
        for i in 0..self.width as u64 {
            let bit = value >> (self.width as u64 - 1 - i) & 1 == 1;
            set_bit(bytes, self.offset + i, bit);
        }
    }

    /// `value` brought into the field's range under `overflow` (`None`:
    /// FAIL and out of range). Redis's arithmetic: WRAP keeps the low
    /// `width` bits (sign-extended for signed fields), SAT clamps.
    pub fn fit(&self, value: i128, overflow: Overflow) -> Option<i64> {
        if (self.min()..=self.max()).contains(&value) {
            return Some(value as i64);
        }
        match overflow {
            Overflow::Fail => None,
            Overflow::Sat => Some(value.clamp(self.min(), self.max()) as i64),
            Overflow::Wrap => {
                let modulus = 1i128 << self.width;
                let mut low = value.rem_euclid(modulus);
                if self.signed && low > self.max() {
                    low -= modulus;
                }
                Some(low as i64)
            }
        }
    }

    /// The value of an unsigned field's argument as Redis reads it: an
    /// `i64` taken as its `u64` bit pattern.
    pub fn argument(&self, value: i64) -> i128 {
        if self.signed {
            value as i128
        } else {
            value as u64 as i128
        }
    }
}

pub fn get_bit(bytes: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    bytes
        .get(byte)
        .is_some_and(|b| b >> (7 - (offset & 7)) & 1 == 1)
}

fn set_bit(bytes: &mut [u8], offset: u64, on: bool) {
    let Some(b) = bytes.get_mut((offset >> 3) as usize) else {
        return;
    };
    let mask = 1u8 << (7 - (offset & 7));
    if on {
        *b |= mask;
    } else {
        *b &= !mask;
    }
}

impl BitPatch {
    /// Applies the patch to `bytes`, already padded to its reach.
    fn apply(&self, bytes: &mut [u8]) {
        match self.op {
            BitOp::Write(value) => self.field.write(bytes, value),
            BitOp::Add { amount, overflow } => {
                let old = self.field.read(bytes);
                let sum = self.field.argument(old) + amount as i128;
                if let Some(new) = self.field.fit(sum, overflow) {
                    self.field.write(bytes, new as u64);
                }
            }
        }
    }
}

/// The bytes of `base` with `patches` applied in `(ts, dot)` order, padded
/// to the largest reach.
pub fn render<'a>(base: &[u8], patches: impl Iterator<Item = (Dot, &'a BitPatch)>) -> Vec<u8> {
    let mut ordered: SmallVec<[(Dot, &BitPatch); 4]> = patches.collect();
    ordered.sort_by_key(|(dot, p)| (p.ts, *dot));
    let reach = ordered.iter().map(|(_, p)| p.reach).max().unwrap_or(0);
    let len = (base.len() as u64).max(reach) as usize;
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(base);
    bytes.resize(len, 0);
    for (_, patch) in ordered {
        patch.apply(&mut bytes);
    }
    bytes
}

impl KeyState {
    /// The live bit patches with their dots.
    pub fn bit_patches(&self) -> impl Iterator<Item = (Dot, &BitPatch)> + '_ {
        self.versions().iter().filter_map(|v| match &v.payload {
            Payload::Bits(p) => Some((v.dot, &**p)),
            _ => None,
        })
    }

    /// The bit at `offset` and the length of the rendered string, read
    /// without rendering it; `None` when an increment could touch the bit
    /// (then render). The key must read as a string or nothing.
    pub fn bit_probe(&self, offset: u64) -> Option<(bool, u64)> {
        let counted = self
            .versions()
            .iter()
            .any(|v| matches!(v.payload, Payload::Incr(_)));
        if counted {
            return None;
        }
        let base = self.base_bytes();
        let mut len = base.map_or(0, |b| b.len() as u64);
        let probe = BitField::bit(offset);
        // The last write of the bit in render order decides it.
        let mut last: Option<((Hlc, Dot), bool)> = None;
        for (dot, patch) in self.bit_patches() {
            len = len.max(patch.reach);
            if !patch.field.overlaps(&probe) {
                continue;
            }
            let BitOp::Write(value) = patch.op else {
                return None;
            };
            let shift = patch.field.end() - 1 - offset;
            let on = value >> shift & 1 == 1;
            if last.is_none_or(|(at, _)| (patch.ts, dot) > at) {
                last = Some(((patch.ts, dot), on));
            }
        }
        let on = match last {
            Some((_, on)) => on,
            None => base.is_some_and(|b| get_bit(b, offset)),
        };
        Some((on, len))
    }

    /// The delta of one command's bitmap writes at replica `me`, applied in
    /// order after everything the key holds now.
    ///
    /// A key with live counter increments is first rewritten as the bytes
    /// it reads as (a SET that keeps the TTL), so the patches apply to what
    /// the command saw rather than under increments counted on top.
    pub fn delta_bitmap(
        &self,
        writes: &[BitWrite],
        ts: Hlc,
        me: ReplicaId,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> KeyDelta {
        let mut delta = KeyDelta::default();
        if writes.is_empty() {
            return delta;
        }
        let counted = self
            .versions()
            .iter()
            .any(|v| matches!(v.payload, Payload::Incr(_)));
        if counted {
            let bytes = self
                .string_value()
                .map(|v| v.to_bytes())
                .unwrap_or_default();
            delta = self.delta_set(bytes, ts, TtlChange::Keep, &mut *next_dot);
        }
        for write in writes {
            // Only patches that existed before the command are superseded
            // (a rewrite above already removed them all).
            if !counted {
                self.supersede(write, me, &mut delta);
            }
            let op = match (write.op, self.folded_increment(write, me, &delta)) {
                (BitOp::Add { amount, overflow }, Some((dot, earlier))) => {
                    delta.removes.push(dot);
                    BitOp::Add {
                        amount: amount.wrapping_add(earlier),
                        overflow,
                    }
                }
                (op, _) => op,
            };
            delta.adds.push(Version {
                dot: next_dot(),
                payload: Payload::Bits(Box::new(BitPatch {
                    ts,
                    field: write.field,
                    op,
                    reach: write.reach,
                })),
            });
        }
        delta
    }

    /// [`Self::delta_bitmap`] for a node no other region writes to. There no
    /// write is concurrent with another, so patches buy nothing: once the
    /// key holds [`ALONE_PATCH_LIMIT`] of them, or a write would more than
    /// double the string, the command's writes fold into the rendered bytes
    /// and the key is rewritten as that string (a SET that keeps the TTL).
    /// Memory then follows the string's length, as in Redis, and the
    /// rewrite's copy is amortised over the patches (or the doubling) it
    /// absorbs.
    pub fn delta_bitmap_alone(
        &self,
        writes: &[BitWrite],
        ts: Hlc,
        me: ReplicaId,
        next_dot: &mut impl FnMut() -> Dot,
    ) -> KeyDelta {
        let reach = writes.iter().map(|w| w.reach).max().unwrap_or(0);
        let (mut patches, mut len) = (0usize, self.base_bytes().map_or(0, |b| b.len() as u64));
        for (_, patch) in self.bit_patches() {
            patches += 1;
            len = len.max(patch.reach);
        }
        let fold = patches + writes.len() > ALONE_PATCH_LIMIT || reach > 2 * len + 64;
        if writes.is_empty() || !fold {
            return self.delta_bitmap(writes, ts, me, next_dot);
        }
        let mut bytes = self
            .string_value()
            .map(|v| v.to_bytes().to_vec())
            .unwrap_or_default();
        if (bytes.len() as u64) < reach {
            bytes.resize(reach as usize, 0);
        }
        for write in writes {
            let patch = BitPatch {
                ts,
                field: write.field,
                op: write.op,
                reach: write.reach,
            };
            patch.apply(&mut bytes);
        }
        self.delta_set(bytes.into(), ts, TtlChange::Keep, next_dot)
    }

    /// Removes the live patches a write overwrites entirely (and that do
    /// not make the string longer than it will) and that no later increment
    /// reads: rendering without them gives the same bytes, since the write
    /// applies after them. An increment after a patch it overlaps added to
    /// that patch's bits, so the patch must stay for the sum to stay right.
    fn supersede(&self, write: &BitWrite, _me: ReplicaId, delta: &mut KeyDelta) {
        if !matches!(write.op, BitOp::Write(_)) {
            return;
        }
        let increments: SmallVec<[((Hlc, Dot), BitField); 4]> = self
            .bit_patches()
            .filter(|(_, p)| matches!(p.op, BitOp::Add { .. }))
            .map(|(dot, p)| ((p.ts, dot), p.field))
            .collect();
        for (dot, patch) in self.bit_patches() {
            let covered = patch.field.width == 0 || write.field.covers(&patch.field);
            if !covered || patch.reach > write.reach || delta.removes.contains(&dot) {
                continue;
            }
            let read_later = increments
                .iter()
                .any(|(at, field)| *at > (patch.ts, dot) && field.overlaps(&patch.field));
            if !read_later {
                delta.removes.push(dot);
            }
        }
    }

    /// For a WRAP increment: this replica's live WRAP increment of the same
    /// field, when no live patch touching the field comes after it, so the
    /// two fold into one (modular sums commute with every other increment).
    fn folded_increment(
        &self,
        write: &BitWrite,
        me: ReplicaId,
        delta: &KeyDelta,
    ) -> Option<(Dot, i64)> {
        if !matches!(
            write.op,
            BitOp::Add {
                overflow: Overflow::Wrap,
                ..
            }
        ) || !delta
            .adds
            .iter()
            .all(|v| v.dot.replica != me || !is_bits(v))
        {
            return None;
        }
        let latest = self
            .bit_patches()
            .filter(|(dot, p)| p.field.overlaps(&write.field) && !delta.removes.contains(dot))
            .max_by_key(|(dot, p)| (p.ts, *dot))?;
        let (dot, patch) = latest;
        match patch.op {
            BitOp::Add {
                amount,
                overflow: Overflow::Wrap,
            } if dot.replica == me && patch.field == write.field && patch.reach <= write.reach => {
                Some((dot, amount))
            }
            _ => None,
        }
    }
}

fn is_bits(v: &Version) -> bool {
    matches!(v.payload, Payload::Bits(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(offset: u64, width: u8, signed: bool) -> BitField {
        BitField {
            offset,
            width,
            signed,
        }
    }

    #[test]
    fn fields_read_and_write_big_endian_bits() {
        let mut bytes = vec![0u8; 2];
        field(4, 8, false).write(&mut bytes, 0xAB);
        assert_eq!(bytes, vec![0x0A, 0xB0]);
        assert_eq!(field(4, 8, false).read(&bytes), 0xAB);
        assert_eq!(field(4, 8, true).read(&bytes), 0xABu8 as i8 as i64);
        // Past the end reads zero.
        assert_eq!(field(12, 8, false).read(&bytes), 0);
    }

    #[test]
    fn patches_from_peers_are_bounded() {
        let patch = |width: u8, op: BitOp, reach: u64| BitPatch {
            ts: Hlc(1),
            field: field(8, width, false),
            op,
            reach,
        };
        let round_trip = |p: BitPatch| {
            let bytes = bincode::serde::encode_to_vec(p, bincode::config::standard()).unwrap();
            bincode::serde::decode_from_slice::<BitPatch, _>(&bytes, bincode::config::standard())
                .map(|(p, _)| p)
        };
        let add = BitOp::Add {
            amount: 1,
            overflow: Overflow::Wrap,
        };
        assert!(round_trip(patch(8, add, 2)).is_ok());
        assert!(round_trip(patch(0, BitOp::Write(0), 2)).is_ok());
        assert!(round_trip(patch(0, add, 2)).is_err());
        assert!(round_trip(patch(65, BitOp::Write(0), 2)).is_err());
        assert!(round_trip(patch(8, BitOp::Write(0), MAX_BITMAP_BYTES + 1)).is_err());
    }

    #[test]
    fn overflow_modes_follow_redis() {
        let u8f = field(0, 8, false);
        assert_eq!(u8f.fit(256, Overflow::Wrap), Some(0));
        assert_eq!(u8f.fit(-1, Overflow::Wrap), Some(255));
        assert_eq!(u8f.fit(300, Overflow::Sat), Some(255));
        assert_eq!(u8f.fit(-5, Overflow::Sat), Some(0));
        assert_eq!(u8f.fit(256, Overflow::Fail), None);
        let i8f = field(0, 8, true);
        assert_eq!(i8f.fit(128, Overflow::Wrap), Some(-128));
        assert_eq!(i8f.fit(-129, Overflow::Wrap), Some(127));
        assert_eq!(i8f.fit(1000, Overflow::Sat), Some(127));
        let i64f = field(0, 64, true);
        assert_eq!(
            i64f.fit(i64::MAX as i128 + 1, Overflow::Wrap),
            Some(i64::MIN)
        );
        // An unsigned field reads a negative argument as its u64 pattern.
        let u4 = field(0, 4, false);
        assert_eq!(u4.fit(u4.argument(-1), Overflow::Sat), Some(15));
        assert_eq!(u4.fit(u4.argument(-1), Overflow::Wrap), Some(15));
    }
    /// Writes on a single-region node read the same whether they stay
    /// patches or fold into the string, and folding bounds the patches.
    #[test]
    fn folding_alone_reads_as_the_patches_do() {
        use super::super::causal::CausalContext;
        use rand::{rngs::SmallRng, Rng, SeedableRng};
        let me = ReplicaId(1);
        let mut rng = SmallRng::seed_from_u64(7);
        let (mut patched, mut folded) = (KeyState::new(), KeyState::new());
        let (mut ctx_a, mut ctx_b) = (CausalContext::new(), CausalContext::new());
        let mut seq = 0;
        // What Redis would hold: every write applied in place, in order.
        let mut model: Vec<u8> = Vec::new();
        for step in 0..400u64 {
            let offset = match step % 3 {
                0 => rng.gen_range(0..64),
                1 => rng.gen_range(0..4096),
                _ => step * 40,
            };
            let width = rng.gen_range(1..=16u8);
            let op = if rng.gen_bool(0.3) {
                BitOp::Add {
                    amount: rng.gen_range(-300..300),
                    overflow: [Overflow::Wrap, Overflow::Sat, Overflow::Fail][rng.gen_range(0..3)],
                }
            } else {
                BitOp::Write(rng.gen())
            };
            let write = BitWrite {
                field: field(offset, width, rng.gen_bool(0.5)),
                op,
                reach: (offset + width as u64).div_ceil(8),
            };
            let ts = Hlc(step + 1);
            if model.len() < write.reach as usize {
                model.resize(write.reach as usize, 0);
            }
            BitPatch {
                ts,
                field: write.field,
                op: write.op,
                reach: write.reach,
            }
            .apply(&mut model);
            let mut next = || {
                seq += 1;
                Dot::new(me, seq)
            };
            let a = patched.delta_bitmap(&[write], ts, me, &mut next);
            let b = folded.delta_bitmap_alone(&[write], ts, me, &mut next);
            patched.apply(&a, &mut ctx_a);
            folded.apply(&b, &mut ctx_b);
            let read = |k: &KeyState| k.string_value().map(|v| v.to_bytes()).unwrap_or_default();
            assert_eq!(read(&folded), model, "folded, step {step}");
            assert_eq!(read(&patched), model, "patched, step {step}");
            assert!(folded.bit_patches().count() <= ALONE_PATCH_LIMIT);
        }
    }
}
