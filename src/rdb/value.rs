//! Decoding and encoding of one value's body (what follows the type byte)
//! in every encoding Redis 7.0 reads, and the cursor over RDB primitives
//! (lengths, strings with their integer and LZF forms, doubles) that an
//! RDB file reader also needs.

use std::borrow::Cow;
use std::collections::HashSet;

use super::listpack::{self, Entry};
use super::types::*;
use super::{canonical_i64, intset, lzf, ziplist, EncodeOptions, RdbError, RdbValue};

/// The length byte's special forms (top two bits `11`).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;
/// Quicklist node containers (`quicklist.h`).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// A bounds-checked cursor over RDB bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.at
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.at
    }

    pub fn byte(&mut self) -> Result<u8, RdbError> {
        let b = *self.data.get(self.at).ok_or(RdbError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if n > self.remaining() {
            return Err(RdbError::Truncated);
        }
        let out = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    /// A length, or (`true`, code) for a string's special encoding.
    fn length_or_encoding(&mut self) -> Result<(u64, bool), RdbError> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => ((first & 0x3F) as u64, false),
            1 => ((((first & 0x3F) as u64) << 8) | self.byte()? as u64, false),
            2 => match first {
                0x80 => (
                    u32::from_be_bytes(self.bytes(4)?.try_into().expect("4")) as u64,
                    false,
                ),
                0x81 => (
                    u64::from_be_bytes(self.bytes(8)?.try_into().expect("8")),
                    false,
                ),
                _ => return Err(RdbError::Corrupt("length")),
            },
            _ => ((first & 0x3F) as u64, true),
        })
    }

    /// A plain length (`rdbLoadLen`).
    pub fn length(&mut self) -> Result<u64, RdbError> {
        match self.length_or_encoding()? {
            (len, false) => Ok(len),
            _ => Err(RdbError::Corrupt("length")),
        }
    }

    /// An element count, refused when even one byte per element cannot be
    /// present (so no allocation trusts a claimed count).
    pub fn count(&mut self) -> Result<usize, RdbError> {
        let n = self.length()?;
        if n > self.remaining() as u64 {
            return Err(RdbError::Truncated);
        }
        Ok(n as usize)
    }

    /// A string in any of its forms (raw, integer, LZF).
    pub fn string(&mut self) -> Result<Cow<'a, [u8]>, RdbError> {
        match self.length_or_encoding()? {
            (len, false) => {
                let len = usize::try_from(len).map_err(|_| RdbError::Truncated)?;
                Ok(Cow::Borrowed(self.bytes(len)?))
            }
            (code, true) => {
                let n: i64 = match code as u8 {
                    ENC_INT8 => self.byte()? as i8 as i64,
                    ENC_INT16 => i16::from_le_bytes(self.bytes(2)?.try_into().expect("2")) as i64,
                    ENC_INT32 => i32::from_le_bytes(self.bytes(4)?.try_into().expect("4")) as i64,
                    ENC_LZF => {
                        let compressed = self.length()?;
                        let original = self.length()?;
                        let compressed =
                            usize::try_from(compressed).map_err(|_| RdbError::Truncated)?;
                        let original =
                            usize::try_from(original).map_err(|_| RdbError::Corrupt("lzf"))?;
                        let input = self.bytes(compressed)?;
                        return lzf::decompress(input, original)
                            .map(Cow::Owned)
                            .ok_or(RdbError::Corrupt("lzf"));
                    }
                    _ => return Err(RdbError::Corrupt("string encoding")),
                };
                Ok(Cow::Owned(n.to_string().into_bytes()))
            }
        }
    }

    /// A little-endian signed 64-bit integer (`rdbLoadMillisecondTime`).
    pub fn i64_le(&mut self) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.bytes(8)?.try_into().expect("8")))
    }

    /// A little-endian binary double (`RDB_TYPE_ZSET_2`).
    pub fn binary_double(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.bytes(8)?.try_into().expect("8")))
    }

    /// A double as length-prefixed text (`RDB_TYPE_ZSET`, old RDBs).
    pub fn string_double(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => parse_score(self.bytes(len as usize)?).ok_or(RdbError::Corrupt("double")),
        }
    }
}

/// A score written as text, as `strtod` reads Redis's own forms.
fn parse_score(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Decodes a value body that must use every byte of `data`.
pub fn decode_value(type_byte: u8, data: &[u8]) -> Result<RdbValue, RdbError> {
    let (value, used) = decode_value_prefix(type_byte, data)?;
    if used != data.len() {
        return Err(RdbError::TrailingBytes);
    }
    Ok(value)
}

/// Decodes the value body at the start of `data`; returns it and the
/// bytes it took (an RDB file has more after it).
pub fn decode_value_prefix(type_byte: u8, data: &[u8]) -> Result<(RdbValue, usize), RdbError> {
    let mut reader = Reader::new(data);
    let value = read_value(type_byte, &mut reader)?;
    Ok((value, reader.position()))
}

fn nonempty<T>(items: Vec<T>) -> Result<Vec<T>, RdbError> {
    if items.is_empty() {
        Err(RdbError::Empty)
    } else {
        Ok(items)
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a [u8]>) -> Result<(), RdbError> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(RdbError::Duplicate);
        }
    }
    Ok(())
}

fn checked_score(score: f64) -> Result<f64, RdbError> {
    if score.is_nan() {
        Err(RdbError::NanScore)
    } else {
        Ok(score)
    }
}

/// The entries of a compact blob as (member, score) pairs.
fn scored_pairs(entries: Vec<Entry<'_>>) -> Result<Vec<(Vec<u8>, f64)>, RdbError> {
    if !entries.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt("odd sorted set entries"));
    }
    let mut pairs = Vec::with_capacity(entries.len() / 2);
    for pair in entries.chunks_exact(2) {
        let score = match pair[1] {
            Entry::Int(n) => n as f64,
            Entry::Str(text) => parse_score(text).ok_or(RdbError::Corrupt("score"))?,
        };
        pairs.push((pair[0].to_vec(), checked_score(score)?));
    }
    let pairs = nonempty(pairs)?;
    unique(pairs.iter().map(|(m, _)| m.as_slice()))?;
    Ok(pairs)
}

/// A hash's field and value.
type FieldValue = (Vec<u8>, Vec<u8>);

/// The entries of a compact blob as (field, value) pairs.
fn hash_pairs(entries: Vec<Entry<'_>>) -> Result<Vec<FieldValue>, RdbError> {
    if !entries.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt("odd hash entries"));
    }
    let pairs: Vec<_> = entries
        .chunks_exact(2)
        .map(|pair| (pair[0].to_vec(), pair[1].to_vec()))
        .collect();
    let pairs = nonempty(pairs)?;
    unique(pairs.iter().map(|(f, _)| f.as_slice()))?;
    Ok(pairs)
}

fn read_value(type_byte: u8, r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    Ok(match type_byte {
        STRING => RdbValue::String(r.string()?.into_owned()),
        LIST => {
            let n = r.count()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.string()?.into_owned());
            }
            RdbValue::List(nonempty(items)?)
        }
        SET => {
            let n = r.count()?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                members.push(r.string()?.into_owned());
            }
            let members = nonempty(members)?;
            unique(members.iter().map(Vec::as_slice))?;
            RdbValue::Set(members)
        }
        ZSET | ZSET_2 => {
            let n = r.count()?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let member = r.string()?.into_owned();
                let score = if type_byte == ZSET_2 {
                    r.binary_double()?
                } else {
                    r.string_double()?
                };
                pairs.push((member, checked_score(score)?));
            }
            let pairs = nonempty(pairs)?;
            unique(pairs.iter().map(|(m, _)| m.as_slice()))?;
            RdbValue::ZSet(pairs)
        }
        HASH => {
            let n = r.count()?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let field = r.string()?.into_owned();
                let value = r.string()?.into_owned();
                pairs.push((field, value));
            }
            let pairs = nonempty(pairs)?;
            unique(pairs.iter().map(|(f, _)| f.as_slice()))?;
            RdbValue::Hash(pairs)
        }
        LIST_QUICKLIST | LIST_QUICKLIST_2 => {
            let nodes = r.count()?;
            if nodes == 0 {
                return Err(RdbError::Empty);
            }
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = if type_byte == LIST_QUICKLIST_2 {
                    r.length()?
                } else {
                    CONTAINER_PACKED
                };
                let blob = r.string()?;
                if blob.is_empty() {
                    return Err(RdbError::Corrupt("empty quicklist node"));
                }
                match container {
                    CONTAINER_PLAIN => items.push(blob.into_owned()),
                    CONTAINER_PACKED => {
                        let entries = if type_byte == LIST_QUICKLIST_2 {
                            listpack::parse(&blob)?
                        } else {
                            ziplist::parse(&blob)?
                        };
                        // Empty nodes are skipped, as Redis does.
                        items.extend(entries.into_iter().map(Entry::to_vec));
                    }
                    _ => return Err(RdbError::Corrupt("quicklist container")),
                }
            }
            RdbValue::List(nonempty(items)?)
        }
        HASH_ZIPMAP => {
            let blob = r.string()?;
            let pairs: Vec<_> = ziplist::parse_zipmap(&blob)?
                .into_iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .collect();
            let pairs = nonempty(pairs)?;
            unique(pairs.iter().map(|(f, _)| f.as_slice()))?;
            RdbValue::Hash(pairs)
        }
        LIST_ZIPLIST => {
            let blob = r.string()?;
            let entries = ziplist::parse(&blob)?;
            RdbValue::List(nonempty(entries.into_iter().map(Entry::to_vec).collect())?)
        }
        SET_INTSET => {
            let blob = r.string()?;
            let members = intset::parse(&blob)?;
            RdbValue::Set(nonempty(
                members
                    .into_iter()
                    .map(|m| m.to_string().into_bytes())
                    .collect(),
            )?)
        }
        ZSET_ZIPLIST => RdbValue::ZSet(scored_pairs(ziplist::parse(&r.string()?)?)?),
        ZSET_LISTPACK => RdbValue::ZSet(scored_pairs(listpack::parse(&r.string()?)?)?),
        HASH_ZIPLIST => RdbValue::Hash(hash_pairs(ziplist::parse(&r.string()?)?)?),
        HASH_LISTPACK => RdbValue::Hash(hash_pairs(listpack::parse(&r.string()?)?)?),
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
            RdbValue::Stream(Box::new(super::stream::decode(type_byte, r)?))
        }
        other => return Err(RdbError::UnsupportedType(other)),
    })
}

// ----- encoding -----

pub(crate) fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push((len & 0xff) as u8);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A string as Redis's `rdbSaveRawString` writes it: small canonical
/// integers in their integer form, long strings LZF-compressed when that
/// saves at least four bytes.
pub(crate) fn push_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(n) = canonical_i64(s) {
            if let Ok(v) = i8::try_from(n) {
                out.extend_from_slice(&[0xC0 | ENC_INT8, v as u8]);
                return;
            } else if let Ok(v) = i16::try_from(n) {
                out.push(0xC0 | ENC_INT16);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            } else if let Ok(v) = i32::try_from(n) {
                out.push(0xC0 | ENC_INT32);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(packed) = lzf::compress(s, s.len() - 3) {
            out.push(0xC0 | ENC_LZF);
            push_length(out, packed.len());
            push_length(out, s.len());
            out.extend_from_slice(&packed);
            return;
        }
    }
    push_length(out, s.len());
    out.extend_from_slice(s);
}

/// A score as Redis's listpack holds it: integral values as integers,
/// others as text `strtod` reads back exactly (never longer than Redis's
/// 128-byte parse buffer).
fn score_text(score: f64) -> Vec<u8> {
    if score == 0.0 && score.is_sign_negative() {
        b"-0".to_vec()
    } else if score.fract() == 0.0 && score.abs() < (1u64 << 53) as f64 {
        (score as i64).to_string().into_bytes()
    } else if score.is_infinite() {
        if score > 0.0 {
            b"inf".to_vec()
        } else {
            b"-inf".to_vec()
        }
    } else {
        format!("{score:e}").into_bytes()
    }
}

/// Bytes per quicklist node for a negative `list-max-listpack-size`.
fn node_byte_budget(fill: i64) -> usize {
    const BUDGETS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    let level = (fill.unsigned_abs() as usize).clamp(1, BUDGETS.len());
    BUDGETS[level - 1]
}

/// Splits a list into listpack nodes as Redis's quicklist fills them.
fn list_nodes(items: &[Vec<u8>], fill: i64) -> Vec<Vec<u8>> {
    // A positive fill counts elements, with Redis's 8 KB safety limit.
    let (max_count, max_bytes) = if fill > 0 {
        (fill as usize, 8192)
    } else {
        (usize::MAX, node_byte_budget(fill))
    };
    let mut nodes = Vec::new();
    let mut node = listpack::Writer::new();
    let mut in_node = 0;
    for item in items {
        let grows = listpack::Writer::entry_size(item);
        if in_node > 0 && (in_node >= max_count || node.len() + grows > max_bytes) {
            nodes.push(std::mem::take(&mut node).finish());
            in_node = 0;
        }
        node.push(item);
        in_node += 1;
    }
    if in_node > 0 {
        nodes.push(node.finish());
    }
    nodes
}

/// The type byte and body Redis 7.0 would write for `value`, choosing
/// the compact encodings within `options`' limits.
pub fn encode_value(value: &RdbValue, options: &EncodeOptions) -> (u8, Vec<u8>) {
    let compress = options.compress;
    let mut out = Vec::new();
    let type_byte = match value {
        RdbValue::String(s) => {
            push_string(&mut out, s, compress);
            STRING
        }
        RdbValue::List(items) => {
            let nodes = list_nodes(items, options.list_max_listpack_size);
            push_length(&mut out, nodes.len());
            for node in &nodes {
                push_length(&mut out, CONTAINER_PACKED as usize);
                push_string(&mut out, node, compress);
            }
            LIST_QUICKLIST_2
        }
        RdbValue::Set(members) => {
            let ints: Option<Vec<i64>> = (members.len() <= options.set_max_intset_entries)
                .then(|| members.iter().map(|m| canonical_i64(m)).collect())
                .flatten();
            match ints {
                Some(mut ints) => {
                    push_string(&mut out, &intset::build(&mut ints), compress);
                    SET_INTSET
                }
                None => {
                    push_length(&mut out, members.len());
                    for member in members {
                        push_string(&mut out, member, compress);
                    }
                    SET
                }
            }
        }
        RdbValue::Hash(pairs) => {
            let small = pairs.len() <= options.hash_max_listpack_entries
                && pairs.iter().all(|(f, v)| {
                    f.len() <= options.hash_max_listpack_value
                        && v.len() <= options.hash_max_listpack_value
                });
            if small {
                let mut lp = listpack::Writer::new();
                for (field, value) in pairs {
                    lp.push(field);
                    lp.push(value);
                }
                push_string(&mut out, &lp.finish(), compress);
                HASH_LISTPACK
            } else {
                push_length(&mut out, pairs.len());
                for (field, value) in pairs {
                    push_string(&mut out, field, compress);
                    push_string(&mut out, value, compress);
                }
                HASH
            }
        }
        RdbValue::ZSet(pairs) => {
            let mut sorted: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
            // Redis's order: score (with -0 equal to 0), then member bytes.
            sorted.sort_by(|a, b| {
                (a.1.partial_cmp(&b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            });
            let small = pairs.len() <= options.zset_max_listpack_entries
                && pairs
                    .iter()
                    .all(|(m, _)| m.len() <= options.zset_max_listpack_value);
            if small {
                let mut lp = listpack::Writer::new();
                for (member, score) in sorted {
                    lp.push(member);
                    lp.push(&score_text(*score));
                }
                push_string(&mut out, &lp.finish(), compress);
                ZSET_LISTPACK
            } else {
                push_length(&mut out, pairs.len());
                // Highest score first, as Redis walks its skiplist.
                for (member, score) in sorted.into_iter().rev() {
                    push_string(&mut out, member, compress);
                    out.extend_from_slice(&score.to_le_bytes());
                }
                ZSET_2
            }
        }
        RdbValue::Stream(stream) => {
            super::stream::encode(stream, options, &mut out);
            STREAM_LISTPACKS_2
        }
    };
    (type_byte, out)
}
