//! Reading a whole Redis RDB file (what `redis-server` writes with SAVE,
//! version 10 and earlier), for `cordis --import-rdb`: the `REDIS<nnnn>`
//! header, auxiliary fields, database selectors, size hints, per-key
//! expiry and LRU/LFU hints, function libraries, every key's value through
//! the shared value decoder ([`super::decode_value_prefix`]), then EOF and
//! the CRC-64 (checked unless it is zero, as Redis's `rdbchecksum no`
//! writes). Hostile input gives an error naming the byte offset, never a
//! panic.

use bytes::Bytes;

use super::{crc64, decode_value_prefix, RdbValue, Reader, RDB_VERSION};

const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION_PRE_GA: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;

/// One key of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileKey {
    pub db: usize,
    pub key: Bytes,
    pub value: RdbValue,
    /// Absolute Unix ms deadline, if the key had one.
    pub expire_ms: Option<u64>,
}

/// What a file holds.
#[derive(Debug, Default)]
pub struct RdbFile {
    pub version: u16,
    pub keys: Vec<FileKey>,
    /// Function library codes (FUNCTION LOAD's argument), in file order.
    pub functions: Vec<Bytes>,
}

/// Parses a whole RDB file.
pub fn parse_file(bytes: &[u8]) -> Result<RdbFile, String> {
    if bytes.len() < 9 || &bytes[..5] != b"REDIS" {
        return Err("not a Redis RDB file (no REDIS header)".into());
    }
    let version: u16 = std::str::from_utf8(&bytes[5..9])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or("bad RDB version in the header")?;
    if version == 0 || version > RDB_VERSION {
        return Err(format!(
            "RDB version {version}; this build reads up to {RDB_VERSION} (Redis 7.0)"
        ));
    }
    let mut out = RdbFile {
        version,
        ..RdbFile::default()
    };
    let mut r = Reader::new(&bytes[9..]);
    let at = |r: &Reader| 9 + r.position();
    let mut db = 0usize;
    let mut expire_ms: Option<u64> = None;
    loop {
        let start = at(&r);
        let fail = |what: &str| format!("{what} at byte {start}");
        let op = r.byte().map_err(|_| fail("the file ends before EOF"))?;
        match op {
            OP_EOF => {
                let body_end = at(&r);
                if version >= 5 {
                    let crc = r.bytes(8).map_err(|_| fail("the checksum is cut short"))?;
                    let crc = u64::from_le_bytes(crc.try_into().expect("8 bytes"));
                    if crc != 0 && crc != crc64::crc64(0, &bytes[..body_end]) {
                        return Err("RDB checksum mismatch".into());
                    }
                }
                if r.remaining() != 0 {
                    return Err(format!("{} bytes after the end of the file", r.remaining()));
                }
                return Ok(out);
            }
            OP_AUX => {
                r.string().map_err(|_| fail("bad auxiliary field"))?;
                r.string().map_err(|_| fail("bad auxiliary field"))?;
            }
            OP_RESIZEDB => {
                r.length().map_err(|_| fail("bad size hint"))?;
                r.length().map_err(|_| fail("bad size hint"))?;
            }
            OP_SELECTDB => {
                let n = r.length().map_err(|_| fail("bad database number"))?;
                if n >= crate::store::DB_COUNT as u64 {
                    return Err(fail(&format!(
                        "database {n} (cordis has {})",
                        crate::store::DB_COUNT
                    )));
                }
                db = n as usize;
            }
            OP_EXPIRETIME_MS => {
                let b = r.bytes(8).map_err(|_| fail("cut-short expiry"))?;
                expire_ms = Some(u64::from_le_bytes(b.try_into().expect("8 bytes")));
            }
            OP_EXPIRETIME => {
                let b = r.bytes(4).map_err(|_| fail("cut-short expiry"))?;
                expire_ms = Some(u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64 * 1000);
            }
            OP_IDLE => {
                r.length().map_err(|_| fail("bad idle time"))?;
            }
            OP_FREQ => {
                r.byte().map_err(|_| fail("bad frequency"))?;
            }
            OP_FUNCTION2 => {
                let code = r.string().map_err(|_| fail("bad function library"))?;
                out.functions.push(Bytes::copy_from_slice(&code));
            }
            OP_FUNCTION_PRE_GA => {
                return Err(fail("a pre-release (7.0 RC) function library"));
            }
            OP_MODULE_AUX => {
                return Err(fail("module data (cordis loads no Redis modules)"));
            }
            type_byte => {
                let key = r.string().map_err(|_| fail("bad key name"))?;
                let key = Bytes::copy_from_slice(&key);
                let rest = &bytes[at(&r)..];
                let (value, used) = decode_value_prefix(type_byte, rest).map_err(|e| {
                    fail(&format!(
                        "bad value of type {type_byte} for key {:?}: {e:?}",
                        String::from_utf8_lossy(&key)
                    ))
                })?;
                r.bytes(used).expect("the decoder read these bytes");
                out.keys.push(FileKey {
                    db,
                    key,
                    value,
                    expire_ms: expire_ms.take(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{encode_file, EncodeOptions};

    fn sample() -> Vec<u8> {
        encode_file(
            &[
                (
                    0,
                    vec![(b"s".to_vec(), RdbValue::String(b"v".to_vec()), None)],
                ),
                (
                    3,
                    vec![(
                        b"t".to_vec(),
                        RdbValue::String(b"w".to_vec()),
                        Some(4_000_000_000_000),
                    )],
                ),
            ],
            &EncodeOptions::default(),
        )
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let file = parse_file(&sample()).unwrap();
        assert_eq!(file.keys.len(), 2);
        assert_eq!(file.keys[0].db, 0);
        assert_eq!(&file.keys[0].key[..], b"s");
        assert_eq!(file.keys[1].db, 3);
        assert_eq!(file.keys[1].expire_ms, Some(4_000_000_000_000));
    }

    #[test]
    fn every_truncation_and_a_flipped_checksum_are_errors() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(parse_file(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(parse_file(&bad).unwrap_err(), "RDB checksum mismatch");
    }
}
