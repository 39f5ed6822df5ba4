//! Redis's serialization format for one value (RDB version 10, as Redis
//! 7.0 writes it) and the DUMP/RESTORE payload around it: the value's type
//! byte and encoding, then the 2-byte RDB version and a CRC-64, both
//! little-endian.
//!
//! This module owns the bytes only: [`RdbValue`] is a plain value (string,
//! list, set, hash, sorted set or stream) with no CRDT state, so the DUMP/RESTORE
//! commands and an RDB file importer share one decoder. The bridge to the
//! key CRDT is [`keystate`].
//!
//! Decoding is written for hostile input: every length is checked against
//! the bytes present before anything is read or allocated, the compact
//! encodings are validated whole (headers, counts, back-lengths, sort
//! order), duplicates and NaN scores are refused as Redis refuses them,
//! and nothing panics (see the `rdb_payload` fuzz target).

pub mod crc64;
pub mod file;
pub mod intset;
pub mod keystate;
pub mod listpack;
pub mod lzf;
pub mod stream;
mod value;
pub mod ziplist;

pub use value::{decode_value, decode_value_prefix, encode_value, Reader};

/// The RDB version this code writes (Redis 7.0) and the newest it reads.
pub const RDB_VERSION: u16 = 10;

/// RDB value type bytes (`rdb.h`); the ones cordis writes are marked.
pub mod types {
    /// Written for every string.
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    /// Written for sets that are not all integers, or too many for an intset.
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    /// Written for hashes past the listpack limits.
    pub const HASH: u8 = 4;
    /// Written for sorted sets past the listpack limits.
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    /// Written for small all-integer sets.
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    /// Streams of Redis 5 and 6 (read only).
    pub const STREAM_LISTPACKS: u8 = 15;
    /// Written for small hashes.
    pub const HASH_LISTPACK: u8 = 16;
    /// Written for small sorted sets.
    pub const ZSET_LISTPACK: u8 = 17;
    /// Written for every list.
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// Written for every stream (Redis 7.0).
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// Streams of Redis 7.2 (read only; their payloads carry RDB version
    /// 11, which RESTORE refuses as Redis 7.0 does).
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// One value in plain form. Collections keep the order Redis gave (lists
/// in list order; the others as encoded) and never hold duplicates.
#[derive(Clone, Debug, PartialEq)]
pub enum RdbValue {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
    Stream(Box<stream::StreamValue>),
}

/// Why a value did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    #[error("payload ends early")]
    Truncated,
    #[error("corrupt {0}")]
    Corrupt(&'static str),
    #[error("empty collection")]
    Empty,
    #[error("duplicate element")]
    Duplicate,
    #[error("NaN score")]
    NanScore,
    #[error("unsupported value type {0}")]
    UnsupportedType(u8),
    #[error("bytes left after the value")]
    TrailingBytes,
}

/// Why RESTORE refuses a payload, in Redis's two classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Too short, a newer RDB version, or a checksum mismatch.
    VersionOrChecksum,
    /// The value inside does not decode.
    BadData(RdbError),
}

/// How compactly to encode, as Redis's `*-max-*` parameters say (Redis
/// converts to its own limits on load, so these only shape the bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// `list-max-listpack-size`: negative = byte budget per node (−1 →
    /// 4 KB … −5 → 64 KB), positive = elements per node.
    pub list_max_listpack_size: i64,
    /// `stream-node-max-bytes` and `stream-node-max-entries`: where a
    /// stream's listpacks split (0 = no limit).
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: usize,
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes.
    pub compress: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
            compress: true,
        }
    }
}

/// The DUMP payload of `value`: type byte, encoding, RDB version, CRC-64.
pub fn dump_payload(value: &RdbValue, options: &EncodeOptions) -> Vec<u8> {
    let (type_byte, body) = encode_value(value, options);
    let mut out = Vec::with_capacity(1 + body.len() + 10);
    out.push(type_byte);
    out.extend_from_slice(&body);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// One key of an RDB file: its name, value and deadline (Unix ms).
pub type FileEntry = (Vec<u8>, RdbValue, Option<u64>);

/// A whole RDB file (version 10) as Redis 7.0 lays it out: the `REDIS0010`
/// magic, then per non-empty database a SELECTDB and a RESIZEDB opcode and
/// its keys (a key with a deadline preceded by EXPIRETIME_MS), then EOF and
/// the CRC-64 of everything before it, little-endian. `dbs` pairs a
/// database index with its keys. No auxiliary fields are written (loaders
/// treat them as optional).
pub fn encode_file(dbs: &[(usize, Vec<FileEntry>)], options: &EncodeOptions) -> Vec<u8> {
    const OP_EXPIRETIME_MS: u8 = 0xFC;
    const OP_RESIZEDB: u8 = 0xFB;
    const OP_SELECTDB: u8 = 0xFE;
    const OP_EOF: u8 = 0xFF;
    let mut out = format!("REDIS{RDB_VERSION:04}").into_bytes();
    for (db, entries) in dbs.iter().filter(|(_, e)| !e.is_empty()) {
        out.push(OP_SELECTDB);
        value::push_length(&mut out, *db);
        out.push(OP_RESIZEDB);
        value::push_length(&mut out, entries.len());
        value::push_length(&mut out, entries.iter().filter(|e| e.2.is_some()).count());
        for (key, rdb_value, deadline) in entries {
            if let Some(ms) = deadline {
                out.push(OP_EXPIRETIME_MS);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            let (type_byte, body) = encode_value(rdb_value, options);
            out.push(type_byte);
            value::push_string(&mut out, key, options.compress);
            out.extend_from_slice(&body);
        }
    }
    out.push(OP_EOF);
    let crc = crc64::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a payload's footer as Redis's `verifyDumpPayload` does and
/// returns what precedes it (type byte and value).
pub fn verify_dump_payload(payload: &[u8], skip_checksum: bool) -> Result<&[u8], PayloadError> {
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(PayloadError::VersionOrChecksum);
    };
    let footer = &payload[body_len..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    if !skip_checksum {
        let crc = crc64::crc64(0, &payload[..body_len + 2]);
        if crc.to_le_bytes() != footer[2..10] {
            return Err(PayloadError::VersionOrChecksum);
        }
    }
    Ok(&payload[..body_len])
}

/// Verifies and decodes a DUMP payload. Like Redis, bytes between the
/// value's end and the footer are ignored.
pub fn parse_dump_payload(payload: &[u8], skip_checksum: bool) -> Result<RdbValue, PayloadError> {
    let body = verify_dump_payload(payload, skip_checksum)?;
    let (&type_byte, rest) = body
        .split_first()
        .ok_or(PayloadError::BadData(RdbError::Truncated))?;
    decode_value_prefix(type_byte, rest)
        .map(|(value, _)| value)
        .map_err(PayloadError::BadData)
}

/// Redis's `string2ll` test: `bytes` is an integer written the one way
/// Redis writes it (no sign but `-`, no leading zeros, no `-0`, in i64).
pub fn canonical_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && (digits.len() > 1 || bytes.len() > 1))
    {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
