//! Bitmap commands on string keys: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD and BITFIELD_RO, with Redis 7.0's replies and error texts.
//!
//! SETBIT and BITFIELD's SET/INCRBY write bit patches (`crdt::bitmap`), so
//! concurrent writes of different bits all survive and concurrent BITFIELD
//! increments all count; BITOP writes its destination as a whole value (a
//! SET, LWW). Reads see the key's rendered bytes, as GET does.

use bytes::Bytes;

use super::args::{err, int, is, Args, CmdResult, NOT_AN_INTEGER, SYNTAX_ERROR, WRONGTYPE};
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::strings::{read_string, write_value};
use super::{spec, CommandSpec, Context};
use crate::crdt::bitmap::{get_bit, BitField, BitOp, BitWrite, Overflow, MAX_BITMAP_BYTES};
use crate::crdt::{KeyDelta, TtlChange};
use crate::protocol::Reply;
use crate::store::WriteCtx;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("setbit", 4, WRITE | DENYOOM, (1, 1, 1), "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", setbit),
    spec("getbit", 3, READONLY | FAST, (1, 1, 1), "bitmap", "2.2.0", "Returns a bit value by offset.", getbit),
    spec("bitcount", -2, READONLY, (1, 1, 1), "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", bitcount),
    spec("bitpos", -3, READONLY, (1, 1, 1), "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", bitpos),
    spec("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", bitop),
    spec("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", bitfield),
    spec("bitfield_ro", -2, READONLY | FAST, (1, 1, 1), "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", bitfield_ro),
];

const BIT_OFFSET_OUT_OF_RANGE: &str = "ERR bit offset is not an integer or out of range";
const BIT_NOT_AN_INTEGER: &str = "ERR bit is not an integer or out of range";
const BITPOS_BIT: &str = "ERR The bit argument must be 1 or 0.";
const BITOP_NOT_ONE_KEY: &str = "ERR BITOP NOT must be called with a single source key.";
const BAD_BITFIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OVERFLOW: &str = "ERR Invalid OVERFLOW type specified";
const RO_ONLY_GET: &str = "ERR BITFIELD_RO only supports the GET subcommand";

/// A bit offset argument; with `hash_width`, the `#N` form means `N`
/// fields of that width. Like Redis, the byte it lands in must be below
/// `proto-max-bulk-len` (and cordis's own 4 GiB bitmap bound), which
/// bounds every string a bit write can grow.
fn bit_offset(ctx: &Context, arg: &[u8], hash_width: Option<u8>) -> Result<u64, Reply> {
    let bad = || err(BIT_OFFSET_OUT_OF_RANGE);
    let (digits, multiplier) = match (arg.first(), hash_width) {
        (Some(b'#'), Some(width)) => (&arg[1..], width as i64),
        _ => (arg, 1),
    };
    let offset = int(digits)
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(bad)?;
    let limit = (ctx.server.config.read().proto_max_bulk_len as u64).min(MAX_BITMAP_BYTES);
    if offset < 0 || (offset as u64 >> 3) >= limit {
        return Err(bad());
    }
    Ok(offset as u64)
}

/// The visible string value of `key` for a write (`None`: absent);
/// WRONGTYPE for another type.
fn current_bytes(state: &crate::crdt::KeyState) -> Result<Bytes, Reply> {
    if state.is_collection() {
        return Err(err(WRONGTYPE));
    }
    // A stored value is shared, not copied; a bitmap's is rendered.
    Ok(state
        .string_value()
        .map(|v| v.to_bytes())
        .unwrap_or_default())
}

/// The delta of a command's bit writes: patches, or on a single-region
/// node (`alone`) possibly the folded string (see
/// `KeyState::delta_bitmap_alone`).
fn bit_delta(
    state: &crate::crdt::KeyState,
    writes: &[BitWrite],
    alone: bool,
    w: &mut WriteCtx,
) -> KeyDelta {
    let (ts, me) = (w.ts(), w.replica());
    if alone {
        state.delta_bitmap_alone(writes, ts, me, &mut || w.next_dot())
    } else {
        state.delta_bitmap(writes, ts, me, &mut || w.next_dot())
    }
}

// ----- SETBIT / GETBIT -----

fn setbit(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let offset = bit_offset(ctx, args.next()?, None)?;
    let on = match int(args.next()?) {
        Ok(0) => false,
        Ok(1) => true,
        _ => return Err(err(BIT_NOT_AN_INTEGER)),
    };
    let db = ctx.client.db;
    let alone = ctx.store.single_region;
    ctx.store.write_key(db, key, |state, w| {
        let (was, len) = match probe_bit(state, offset) {
            Ok(found) => found,
            Err(e) => return (KeyDelta::default(), Err(e)),
        };
        let reach = (offset >> 3) + 1;
        let grows = len < reach || !state.has_value();
        // Nothing changes: no write, nothing shipped (Redis's dirty rule).
        if was == on && !grows {
            return (KeyDelta::default(), Ok(Reply::Integer(was as i64)));
        }
        let write = BitWrite {
            field: BitField::bit(offset),
            op: BitOp::Write(on as u64),
            reach,
        };
        let delta = bit_delta(state, &[write], alone, w);
        (delta, Ok(Reply::Integer(was as i64)))
    })
}

fn getbit(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let offset = bit_offset(ctx, args.next()?, None)?;
    let db = ctx.client.db;
    let on = match ctx.store.lookup_read(db, key) {
        None => false,
        Some(state) => probe_bit(state, offset)?.0,
    };
    Ok(Reply::Integer(on as i64))
}

/// The bit at `offset` of a key and its string's length, rendering the
/// value only when a point read cannot tell; WRONGTYPE for another type.
fn probe_bit(state: &crate::crdt::KeyState, offset: u64) -> Result<(bool, u64), Reply> {
    if state.is_collection() {
        return Err(err(WRONGTYPE));
    }
    Ok(state.bit_probe(offset).unwrap_or_else(|| {
        let bytes = state
            .string_value()
            .map(|v| v.to_bytes())
            .unwrap_or_default();
        (get_bit(&bytes, offset), bytes.len() as u64)
    }))
}

// ----- BITCOUNT / BITPOS -----

/// `BYTE` or `BIT`: whether a range counts bits.
fn range_unit(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(err(SYNTAX_ERROR))
    }
}

/// Redis's range normalisation: negative indexes count from the end of
/// `total`, then both clamp into `0..total`.
fn clamp_range(start: i64, end: i64, total: i64) -> (i64, i64) {
    let start = if start < 0 { total + start } else { start }.max(0);
    let end = if end < 0 { total + end } else { end }.max(0);
    (start, end.min(total - 1))
}

fn bitcount(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let Some(bytes) = read_string(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let (first_bit, last_bit) = match args.remaining() {
        0 => (0, bytes.len() as i64 * 8 - 1),
        2 | 3 => {
            let start = args.int()?;
            let end = args.int()?;
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Integer(0));
            }
            let in_bits = match args.next_if_any() {
                Some(unit) => range_unit(unit)?,
                None => false,
            };
            let len = bytes.len() as i64;
            if in_bits {
                clamp_range(start, end, len * 8)
            } else {
                let (s, e) = clamp_range(start, end, len);
                (s * 8, e * 8 + 7)
            }
        }
        _ => return Err(err(SYNTAX_ERROR)),
    };
    if first_bit > last_bit {
        return Ok(Reply::Integer(0));
    }
    Ok(Reply::Integer(count_ones(
        &bytes,
        first_bit as u64,
        last_bit as u64,
    )))
}

/// Set bits in the bit range `first..=last`.
fn count_ones(bytes: &[u8], first: u64, last: u64) -> i64 {
    let (first_byte, last_byte) = ((first >> 3) as usize, (last >> 3) as usize);
    let whole: u64 = bytes[first_byte..=last_byte]
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum();
    // Bits of the edge bytes outside the range: the high `first & 7` bits
    // of the first byte, the low `7 - last & 7` bits of the last.
    let head_mask = !(0xFFu8.checked_shr((first & 7) as u32).unwrap_or(0));
    let tail_mask = 0xFFu8.checked_shr((last & 7) as u32 + 1).unwrap_or(0);
    let head = (bytes[first_byte] & head_mask).count_ones() as u64;
    let tail = (bytes[last_byte] & tail_mask).count_ones() as u64;
    (whole - head - tail) as i64
}

fn bitpos(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let bit = args.int()?;
    if bit != 0 && bit != 1 {
        return Err(err(BITPOS_BIT));
    }
    let wanted = bit == 1;
    let Some(bytes) = read_string(ctx, key)? else {
        // A missing key is an endless run of zeros.
        return Ok(Reply::Integer(if wanted { -1 } else { 0 }));
    };
    let len = bytes.len() as i64;
    let (first_bit, last_bit, end_given) = match args.remaining() {
        0 => (0, len * 8 - 1, false),
        1..=3 => {
            let start = args.int()?;
            let mut unit_args = args.clone();
            let in_bits = match unit_args.rest().get(1) {
                Some(unit) => range_unit(unit)?,
                None => false,
            };
            let end = args.next_if_any().map(|a| int(a)).transpose()?;
            let total = if in_bits { len * 8 } else { len };
            let (s, e) = clamp_range(start, end.unwrap_or(total - 1), total);
            if in_bits {
                (s, e, end.is_some())
            } else {
                (s * 8, e * 8 + 7, end.is_some())
            }
        }
        _ => return Err(err(SYNTAX_ERROR)),
    };
    if first_bit > last_bit {
        return Ok(Reply::Integer(-1));
    }
    let found = first_bit_equal(&bytes, first_bit as u64, last_bit as u64, wanted);
    Ok(Reply::Integer(match found {
        Some(i) => i as i64,
        // No clear bit in range: with no explicit end the string continues
        // as zeros just past it.
        None if !wanted && !end_given => last_bit + 1,
        None => -1,
    }))
}

/// The first bit in `first..=last` that equals `wanted`, skipping whole
/// bytes that cannot hold it.
fn first_bit_equal(bytes: &[u8], first: u64, last: u64, wanted: bool) -> Option<u64> {
    let skip = if wanted { 0x00 } else { 0xFF };
    let mut i = first;
    while i <= last {
        if i & 7 == 0 && i + 7 <= last && bytes[(i >> 3) as usize] == skip {
            i += 8;
            continue;
        }
        if get_bit(bytes, i) == wanted {
            return Some(i);
        }
        i += 1;
    }
    None
}

// ----- BITOP -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bitwise {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let op = args
        .one_of(&[
            ("and", Bitwise::And),
            ("or", Bitwise::Or),
            ("xor", Bitwise::Xor),
            ("not", Bitwise::Not),
        ])
        .map_err(|_| err(SYNTAX_ERROR))?;
    let dest = args.key()?;
    let sources = args.rest();
    if op == Bitwise::Not && sources.len() != 1 {
        return Err(err(BITOP_NOT_ONE_KEY));
    }
    let mut values = Vec::with_capacity(sources.len());
    for key in sources {
        values.push(read_string(ctx, key)?.unwrap_or_default());
    }
    let max_len = values.iter().map(|v| v.len()).max().unwrap_or(0);
    let db = ctx.client.db;
    if max_len == 0 {
        ctx.store.delete_key(db, dest);
        return Ok(Reply::Integer(0));
    }
    let byte_of = |v: &Bytes, i: usize| v.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..max_len)
        .map(|i| {
            let first = byte_of(&values[0], i);
            let rest = values[1..].iter().map(|v| byte_of(v, i));
            match op {
                Bitwise::Not => !first,
                Bitwise::And => rest.fold(first, |acc, b| acc & b),
                Bitwise::Or => rest.fold(first, |acc, b| acc | b),
                Bitwise::Xor => rest.fold(first, |acc, b| acc ^ b),
            }
        })
        .collect();
    write_value(ctx, dest, Bytes::from(result), TtlChange::Clear);
    Ok(Reply::Integer(max_len as i64))
}

// ----- BITFIELD -----

#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

struct FieldCommand {
    field: BitField,
    op: FieldOp,
    overflow: Overflow,
}

/// A field type, `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u8), Reply> {
    let bad = || err(BAD_BITFIELD_TYPE);
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(bad()),
    };
    let width = int(&arg[1..]).map_err(|_| bad())?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&width) {
        return Err(bad());
    }
    Ok((signed, width as u8))
}

/// Parses every subcommand, checking them all before any runs, as Redis.
fn parse_bitfield(ctx: &Context, args: &mut Args) -> Result<Vec<FieldCommand>, Reply> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    while let Some(sub) = args.next_if_any() {
        let remaining = args.remaining();
        let op_args = if is(sub, "get") && remaining >= 2 {
            2
        } else if (is(sub, "set") || is(sub, "incrby")) && remaining >= 3 {
            3
        } else if is(sub, "overflow") && remaining >= 1 {
            let mode = args.next()?;
            overflow = if is(mode, "wrap") {
                Overflow::Wrap
            } else if is(mode, "sat") {
                Overflow::Sat
            } else if is(mode, "fail") {
                Overflow::Fail
            } else {
                return Err(err(BAD_OVERFLOW));
            };
            continue;
        } else {
            return Err(err(SYNTAX_ERROR));
        };
        let (signed, width) = field_type(args.next()?)?;
        let offset = bit_offset(ctx, args.next()?, Some(width))?;
        let op = if op_args == 2 {
            FieldOp::Get
        } else {
            let value = int(args.next()?).map_err(|_| err(NOT_AN_INTEGER))?;
            if is(sub, "set") {
                FieldOp::Set(value)
            } else {
                FieldOp::IncrBy(value)
            }
        };
        ops.push(FieldCommand {
            field: BitField {
                offset,
                width,
                signed,
            },
            op,
            overflow,
        });
    }
    Ok(ops)
}

fn bitfield(ctx: &mut Context, args: &mut Args) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

fn bitfield_generic(ctx: &mut Context, args: &mut Args, read_only: bool) -> CmdResult {
    let key = args.key()?;
    let ops = parse_bitfield(ctx, args)?;
    let writes = ops.iter().any(|o| !matches!(o.op, FieldOp::Get));
    if !writes {
        let bytes = read_string(ctx, key)?.unwrap_or_default();
        let replies = ops
            .iter()
            .map(|o| Reply::Integer(o.field.read(&bytes)))
            .collect();
        return Ok(Reply::Array(replies));
    }
    if read_only {
        return Err(err(RO_ONLY_GET));
    }
    // Every write pads the string up to the highest bit any write reaches,
    // even one that FAIL leaves undone, as Redis does.
    let highest_bit = ops
        .iter()
        .filter(|o| !matches!(o.op, FieldOp::Get))
        .map(|o| o.field.offset + o.field.width as u64 - 1)
        .max()
        .unwrap_or(0);
    let reach = (highest_bit >> 3) + 1;
    let db = ctx.client.db;
    let alone = ctx.store.single_region;
    ctx.store.write_key(db, key, |state, w| {
        let mut bytes = match current_bytes(state) {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => return (KeyDelta::default(), Err(e)),
        };
        let grows = (bytes.len() as u64) < reach || !state.has_value();
        if (bytes.len() as u64) < reach {
            bytes.resize(reach as usize, 0);
        }
        let mut patches = Vec::new();
        let mut replies = Vec::with_capacity(ops.len());
        for o in &ops {
            let f = o.field;
            let old = f.read(&bytes);
            let (target, reply_new) = match o.op {
                FieldOp::Get => {
                    replies.push(Reply::Integer(old));
                    continue;
                }
                FieldOp::Set(v) => (f.argument(v), false),
                FieldOp::IncrBy(by) => (f.argument(old) + by as i128, true),
            };
            let Some(new) = f.fit(target, o.overflow) else {
                replies.push(Reply::Nil);
                continue;
            };
            replies.push(Reply::Integer(if reply_new { new } else { old }));
            if new == old {
                continue;
            }
            f.write(&mut bytes, new as u64);
            let op = match o.op {
                FieldOp::IncrBy(by) => BitOp::Add {
                    amount: by,
                    overflow: o.overflow,
                },
                _ => BitOp::Write(new as u64),
            };
            patches.push(BitWrite {
                field: f,
                op,
                reach,
            });
        }
        if patches.is_empty() && grows {
            // Only the padding changed: a write of no bits records it.
            patches.push(BitWrite {
                field: BitField {
                    offset: 0,
                    width: 0,
                    signed: false,
                },
                op: BitOp::Write(0),
                reach,
            });
        }
        let delta = bit_delta(state, &patches, alone, w);
        (delta, Ok(Reply::Array(replies)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_ranges_count_only_their_bits() {
        let bytes = [0xFFu8, 0x0F];
        assert_eq!(count_ones(&bytes, 0, 15), 12);
        assert_eq!(count_ones(&bytes, 1, 6), 6);
        assert_eq!(count_ones(&bytes, 5, 12), 4);
        assert_eq!(count_ones(&bytes, 12, 15), 4);
    }

    #[test]
    fn field_types_follow_redis() {
        assert_eq!(field_type(b"i64"), Ok((true, 64)));
        assert_eq!(field_type(b"u63"), Ok((false, 63)));
        assert!(field_type(b"u64").is_err());
        assert!(field_type(b"i0").is_err());
        assert!(field_type(b"x8").is_err());
        assert!(field_type(b"i").is_err());
    }
}
