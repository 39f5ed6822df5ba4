//! The snapshot file: the whole CRDT state of a node, versioned and
//! checksummed.
//!
//! Layout (integers big-endian unless bincode's):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `CORDISSN` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 4 + n | length, then bincode 2 (serde, standard) of [`SnapshotMeta`] |
//! | (4 + n)* | chunks: length (> 0), then bincode of a sequence of [`SyncEntry`] |
//! | 4 | zero: the end of the chunks |
//! | (4 + n)* | change records (version 3): pieces of one byte string of records framed as in an AOF tail (`super::aof`) |
//! | 4 | zero: the end of the records |
//! | 4 | CRC-32C of every byte before it |
//!
//! A SAVE writes no change records: its keys are one instant. A BGSAVE
//! encodes the keys in bounded steps while the node serves, so each key is
//! as of its own step; the header is the state before the first step, and
//! the records are every change applied from then until the last step.
//! Loading replays them over the keys, and since applying a change is a
//! join (idempotent), a key that already held it is unchanged: the result
//! is the state at the last step.
//!
//! Chunks keep the writer's and the reader's buffers small and let a reader
//! refuse a bad length before it reserves anything. A file is written to a
//! temporary name in the same directory, fsynced, renamed over the old one,
//! and the directory fsynced, so a crash leaves the old file or the new
//! one, never a mix. A reader checks the magic, the version and the
//! checksum before decoding anything, and refuses a file with trailing
//! bytes; the error says what is wrong and the file is left as it is.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crc::{crc32c, Crc32c};
use crate::crdt::KeyState;
use crate::store::image::ImageHeader;
use crate::store::sync::SyncEntry;

pub const MAGIC: &[u8; 8] = b"CORDISSN";
/// 2 added the function libraries to the header, 3 the change records
/// after the keys; versions 1 and 2 are still read (no libraries, no
/// records).
pub const FORMAT_VERSION: u32 = 3;

/// Largest piece of the change records written in one section.
const RECORD_PIECE: usize = 16 << 20;

/// Entries per chunk.
const CHUNK_ENTRIES: usize = 4096;

/// Largest chunk or header a reader accepts (a chunk holds at least one
/// key, whose value may be 512 MB).
const MAX_SECTION: usize = 1 << 30;

/// What precedes the keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The node's name and incarnation when it saved.
    pub name: String,
    pub incarnation: u32,
    pub saved_unix_ms: u64,
    /// How many entries follow (checked on load).
    pub keys: u64,
    pub image: ImageHeader,
}

/// A snapshot as read back.
#[derive(Debug)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub entries: Vec<SyncEntry>,
    /// Changes to replay over the entries (AOF-framed records; empty but
    /// for a background save's file).
    pub records: Vec<u8>,
    /// The file's CRC-32C (the clean-shutdown marker names it).
    pub checksum: u32,
}

/// One key as written, by reference (encodes exactly as a [`SyncEntry`]).
#[derive(Serialize)]
struct EntryRef<'a> {
    db: u8,
    key: KeyBytes<'a>,
    state: &'a KeyState,
}

/// A key's bytes, serialized as `Bytes` is (a byte string, not a sequence
/// of numbers).
struct KeyBytes<'a>(&'a [u8]);

impl Serialize for KeyBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is a Redis RDB file, not a cordis snapshot")]
    RedisRdb { path: String },
    #[error("{path} is not a cordis snapshot (bad magic)")]
    BadMagic { path: String },
    #[error(
        "{path} has snapshot format version {found}; this build reads version {FORMAT_VERSION}"
    )]
    Version { path: String, found: u32 },
    #[error("{path} is truncated or corrupt: {what}")]
    Corrupt { path: String, what: String },
}

/// Counting writer that also checksums.
struct Sink<W: Write> {
    out: W,
    crc: Crc32c,
    written: u64,
}

impl<W: Write> Sink<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn section(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.put(&(body.len() as u32).to_be_bytes())?;
        self.put(body)
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> std::io::Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// What a save wrote.
#[derive(Clone, Copy, Debug)]
pub struct Written {
    pub bytes: u64,
    pub checksum: u32,
}

/// Writes a snapshot atomically at `path`: `meta`, then `keys` (which
/// must yield `meta.keys` entries).
pub fn write<'a>(
    path: &Path,
    meta: &SnapshotMeta,
    keys: impl Iterator<Item = (u8, &'a [u8], &'a KeyState)>,
) -> std::io::Result<Written> {
    let tmp = temp_path(path);
    let result = write_to(&tmp, meta, keys).and_then(|written| {
        std::fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(written)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_to<'a>(
    tmp: &Path,
    meta: &SnapshotMeta,
    keys: impl Iterator<Item = (u8, &'a [u8], &'a KeyState)>,
) -> std::io::Result<Written> {
    let file = File::create(tmp)?;
    let (out, written) = encode_into(BufWriter::with_capacity(1 << 20, file), meta, keys)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(written)
}

/// The whole file in memory: what BGSAVE encodes under the lock (the
/// cut) before a thread writes it.
pub fn encode_to_vec<'a>(
    meta: &SnapshotMeta,
    keys: impl Iterator<Item = (u8, &'a [u8], &'a KeyState)>,
) -> std::io::Result<(Vec<u8>, Written)> {
    encode_into(Vec::new(), meta, keys)
}

/// Writes already-encoded snapshot bytes atomically at `path`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn encode_into<'a, W: Write>(
    out: W,
    meta: &SnapshotMeta,
    keys: impl Iterator<Item = (u8, &'a [u8], &'a KeyState)>,
) -> std::io::Result<(W, Written)> {
    let mut sink = Sink {
        out,
        crc: Crc32c::default(),
        written: 0,
    };
    sink.put(MAGIC)?;
    sink.put(&FORMAT_VERSION.to_be_bytes())?;
    sink.section(&encode(meta)?)?;
    let mut chunk: Vec<EntryRef<'a>> = Vec::with_capacity(CHUNK_ENTRIES);
    let mut count = 0u64;
    for (db, key, state) in keys {
        chunk.push(EntryRef {
            db,
            key: KeyBytes(key),
            state,
        });
        count += 1;
        if chunk.len() == CHUNK_ENTRIES {
            sink.section(&encode(&chunk)?)?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        sink.section(&encode(&chunk)?)?;
    }
    if count != meta.keys {
        return Err(std::io::Error::other(format!(
            "snapshot meta promises {} keys, {count} were written",
            meta.keys
        )));
    }
    sink.put(&0u32.to_be_bytes())?;
    // No change records.
    sink.put(&0u32.to_be_bytes())?;
    let checksum = sink.crc.finish();
    sink.out.write_all(&checksum.to_be_bytes())?;
    let written = Written {
        bytes: sink.written + 4,
        checksum,
    };
    Ok((sink.out, written))
}

/// A snapshot encoded in steps (BGSAVE): key chunks as each step encodes
/// them, then, at the end, the header and the change records captured
/// since the first step.
#[derive(Default)]
pub struct SteppedSnapshot {
    /// Key chunk sections, each with its length.
    body: Vec<u8>,
    keys: u64,
}

impl SteppedSnapshot {
    /// Encodes one chunk of keys (at most [`CHUNK_ENTRIES`] make sense).
    pub fn push_chunk<'a>(
        &mut self,
        keys: impl Iterator<Item = (u8, &'a [u8], &'a KeyState)>,
    ) -> std::io::Result<()> {
        let chunk: Vec<EntryRef<'a>> = keys
            .map(|(db, key, state)| EntryRef {
                db,
                key: KeyBytes(key),
                state,
            })
            .collect();
        if chunk.is_empty() {
            return Ok(());
        }
        let encoded = encode(&chunk)?;
        self.body
            .extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        self.body.extend_from_slice(&encoded);
        self.keys += chunk.len() as u64;
        Ok(())
    }

    /// Keys encoded so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// The whole file in memory: `meta` (its key count is set here), the
    /// chunks, then `records`.
    pub fn finish(self, meta: SnapshotMeta, records: &[u8]) -> std::io::Result<(Vec<u8>, Written)> {
        let capacity = self.body.len() + records.len() + 4096;
        self.assemble(Vec::with_capacity(capacity), meta, records)
    }

    /// Writes the whole file atomically at `path` (as [`write`] does).
    pub fn write(
        self,
        path: &Path,
        meta: SnapshotMeta,
        records: &[u8],
    ) -> std::io::Result<Written> {
        let tmp = temp_path(path);
        let result = File::create(&tmp)
            .and_then(|file| self.assemble(BufWriter::with_capacity(1 << 20, file), meta, records))
            .and_then(|(out, written)| {
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                std::fs::rename(&tmp, path)?;
                sync_dir(path)?;
                Ok(written)
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn assemble<W: Write>(
        self,
        out: W,
        mut meta: SnapshotMeta,
        records: &[u8],
    ) -> std::io::Result<(W, Written)> {
        meta.keys = self.keys;
        let mut sink = Sink {
            out,
            crc: Crc32c::default(),
            written: 0,
        };
        sink.put(MAGIC)?;
        sink.put(&FORMAT_VERSION.to_be_bytes())?;
        sink.section(&encode(&meta)?)?;
        sink.put(&self.body)?;
        sink.put(&0u32.to_be_bytes())?;
        for piece in records.chunks(RECORD_PIECE) {
            sink.section(piece)?;
        }
        sink.put(&0u32.to_be_bytes())?;
        let checksum = sink.crc.finish();
        sink.out.write_all(&checksum.to_be_bytes())?;
        let written = Written {
            bytes: sink.written + 4,
            checksum,
        };
        Ok((sink.out, written))
    }
}

/// The temporary name a save writes before it renames.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Makes a rename in `path`'s directory durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Reads and checks a snapshot. `Ok(None)` when there is no file.
pub fn read(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    let p = || path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SnapshotError::Io { path: p(), source }),
    };
    decode(&bytes).map(Some).map_err(|e| e.at(p()))
}

/// A decode error before the path is known.
enum Bad {
    Rdb,
    Magic,
    Version(u32),
    Corrupt(String),
}

impl Bad {
    fn at(self, path: String) -> SnapshotError {
        match self {
            Bad::Rdb => SnapshotError::RedisRdb { path },
            Bad::Magic => SnapshotError::BadMagic { path },
            Bad::Version(found) => SnapshotError::Version { path, found },
            Bad::Corrupt(what) => SnapshotError::Corrupt { path, what },
        }
    }
}

fn corrupt(what: impl Into<String>) -> Bad {
    Bad::Corrupt(what.into())
}

/// Decodes snapshot bytes (see the module docs for the layout).
fn decode(bytes: &[u8]) -> Result<Snapshot, Bad> {
    if bytes.starts_with(b"REDIS") {
        return Err(Bad::Rdb);
    }
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(if bytes.len() < 8 && MAGIC.starts_with(bytes) {
            corrupt(format!("only {} bytes", bytes.len()))
        } else {
            Bad::Magic
        });
    }
    if bytes.len() < 12 {
        return Err(corrupt("ends inside the header"));
    }
    let version = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(Bad::Version(version));
    }
    if bytes.len() < 12 + 4 + 4 + 4 {
        return Err(corrupt("ends inside the header"));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_be_bytes(tail.try_into().expect("4 bytes"));
    let checksum = crc32c(body);
    if stored != checksum {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:08x}, computed {checksum:08x}): the file was cut short or changed"
        )));
    }
    let mut at = 12;
    let section = |at: &mut usize| -> Result<Option<&[u8]>, Bad> {
        let len_bytes = body
            .get(*at..*at + 4)
            .ok_or_else(|| corrupt("a section length runs past the end"))?;
        let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        *at += 4;
        if len == 0 {
            return Ok(None);
        }
        if len > MAX_SECTION {
            return Err(corrupt(format!("a section claims {len} bytes")));
        }
        let section = body
            .get(*at..*at + len)
            .ok_or_else(|| corrupt("a section runs past the end"))?;
        *at += len;
        Ok(Some(section))
    };
    let meta_bytes = section(&mut at)?.ok_or_else(|| corrupt("empty header"))?;
    let meta: SnapshotMeta = if version == 1 {
        decode_exact::<v1::SnapshotMeta>(meta_bytes, "header")?.into()
    } else {
        decode_exact(meta_bytes, "header")?
    };
    let mut entries = Vec::with_capacity((meta.keys as usize).min(body.len() / 4));
    while let Some(chunk) = section(&mut at)? {
        let part: Vec<SyncEntry> = decode_exact(chunk, "key chunk")?;
        entries.extend(part);
    }
    let mut records = Vec::new();
    if version >= 3 {
        while let Some(piece) = section(&mut at)? {
            records.extend_from_slice(piece);
        }
    }
    if at != body.len() {
        return Err(corrupt(format!(
            "{} bytes after the last chunk",
            body.len() - at
        )));
    }
    if entries.len() as u64 != meta.keys {
        return Err(corrupt(format!(
            "header promises {} keys, the file holds {}",
            meta.keys,
            entries.len()
        )));
    }
    Ok(Snapshot {
        meta,
        entries,
        records,
        checksum,
    })
}

fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Bad> {
    let (value, used) = crate::crdt::bounded::decode_untrusted::<T>(bytes)
        .map_err(|e| corrupt(format!("{what} does not decode: {e}")))?;
    if used != bytes.len() {
        return Err(corrupt(format!("{what} has trailing bytes")));
    }
    Ok(value)
}

/// The header of format version 1 (before function libraries).
mod v1 {
    use serde::Deserialize;

    use crate::crdt::{CausalContext, Hlc, ReplicaId, VersionVector};
    use crate::store::image::ImageHeader;

    #[derive(Deserialize)]
    pub struct SnapshotMeta {
        name: String,
        incarnation: u32,
        saved_unix_ms: u64,
        keys: u64,
        image: Image,
    }

    #[derive(Deserialize)]
    struct Image {
        replica: ReplicaId,
        last_seq: u64,
        clock: Hlc,
        ctx: CausalContext,
        applied: VersionVector,
        flush_floors: Vec<VersionVector>,
    }

    impl From<SnapshotMeta> for super::SnapshotMeta {
        fn from(old: SnapshotMeta) -> Self {
            let i = old.image;
            super::SnapshotMeta {
                name: old.name,
                incarnation: old.incarnation,
                saved_unix_ms: old.saved_unix_ms,
                keys: old.keys,
                image: ImageHeader {
                    replica: i.replica,
                    last_seq: i.last_seq,
                    clock: i.clock,
                    ctx: i.ctx,
                    applied: i.applied,
                    flush_floors: i.flush_floors,
                    functions: Default::default(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::ReplicaId;
    use crate::store::Store;
    use bytes::Bytes;

    fn meta(keys: u64) -> SnapshotMeta {
        SnapshotMeta {
            name: "t".into(),
            incarnation: 7,
            saved_unix_ms: 1,
            keys,
            image: Store::new(ReplicaId(5)).image_header(),
        }
    }

    fn states() -> Vec<(u8, Bytes, KeyState)> {
        (0..10u8)
            .map(|i| (i % 2, Bytes::from(format!("k{i}")), KeyState::new()))
            .collect()
    }

    #[test]
    fn a_stepped_file_without_changes_holds_what_a_save_holds() {
        let keys = states();
        let (whole, _) =
            encode_to_vec(&meta(10), keys.iter().map(|(d, k, s)| (*d, &k[..], s))).unwrap();
        let mut stepped = SteppedSnapshot::default();
        for part in keys.chunks(3) {
            stepped
                .push_chunk(part.iter().map(|(d, k, s)| (*d, &k[..], s)))
                .unwrap();
        }
        let (bytes, _) = stepped.finish(meta(0), &[]).unwrap();
        // Chunk boundaries differ, so compare what the files hold.
        let (a, b) = (decode(&whole).ok().unwrap(), decode(&bytes).ok().unwrap());
        assert_eq!(a.meta, b.meta);
        assert_eq!(a.entries, b.entries);
        assert!(a.records.is_empty() && b.records.is_empty());
    }

    #[test]
    fn change_records_read_back_across_pieces() {
        let records: Vec<u8> = (0..(RECORD_PIECE + 100)).map(|i| i as u8).collect();
        let (bytes, _) = SteppedSnapshot::default()
            .finish(meta(0), &records)
            .unwrap();
        let snap = decode(&bytes).ok().unwrap();
        assert_eq!(snap.records, records);
    }

    #[test]
    fn a_version_2_file_still_reads() {
        let keys = states();
        let (mut bytes, _) =
            encode_to_vec(&meta(10), keys.iter().map(|(d, k, s)| (*d, &k[..], s))).unwrap();
        // Version 2 had no change records: drop their terminator.
        bytes.truncate(bytes.len() - 8);
        bytes[8..12].copy_from_slice(&2u32.to_be_bytes());
        let crc = crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        let snap = decode(&bytes).ok().expect("a version 2 file decodes");
        assert_eq!(snap.entries.len(), 10);
        assert!(snap.records.is_empty());
    }
}
