//! The append-only file (`appendonly yes`): every change the store applies
//! (local batches, batches from peers, state transfers from peers) is
//! appended as a checksummed record, with Redis's `appendfsync` policies;
//! BGREWRITEAOF compacts it into a snapshot-format base plus a fresh tail;
//! a start loads the base, replays the tail files in order, and goes on
//! appending. Knows neither RESP nor the command table.
//!
//! Files, in `dir`/`appenddirname` (names from `appendfilename`, Redis 7's
//! multi-part layout with cordis's own formats):
//! - `<name>.manifest`: text, `cordis aof manifest v1`, then `base <file>`
//!   (at most one) and `incr <file>` lines, oldest first. Replaced
//!   atomically; it alone says which files count.
//! - `<name>.<n>.base.cordis`: a snapshot file (`super::snapshot`'s format).
//! - `<name>.<n>.incr.cordis`: `CORDISAO`, format version (u32 BE), then
//!   records: length (u32 BE), CRC-32C of the payload (u32 BE), payload
//!   (bincode 2, serde standard, of [`Record`]).
//!
//! Durability: every record is handed to the writer thread under the store
//! lock (so in the order the store applied them). Under `always` the thread
//! writes and fsyncs whatever has gathered, as one group, and publishes how
//! far the file is durable; a client's replies wait until the file is
//! durable up to every record handed over before them, without the store
//! lock (group commit: one fsync covers every client that wrote
//! meanwhile). `everysec` writes at once and fsyncs once a second; `no`
//! writes and leaves fsync to the OS. See `docs/persistence.md`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use super::crc::crc32c;
use super::snapshot::{self, sync_dir, temp_path};
use crate::crdt::bounded::decode_untrusted;
use crate::crdt::{CausalContext, FunctionLibraries, VersionVector};
use crate::store::journal::Journal;
use crate::store::sync::{SyncEntry, SyncScope};
use crate::store::{Batch, Store};

pub const MAGIC: &[u8; 8] = b"CORDISAO";
pub const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 12;
const MANIFEST_FIRST_LINE: &str = "cordis aof manifest v1";
/// Largest record accepted when reading (a batch may carry a 512 MB value).
const MAX_RECORD: usize = 600 << 20;

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always = 0,
    EverySec = 1,
    No = 2,
}

impl FsyncPolicy {
    pub fn parse(text: &str) -> FsyncPolicy {
        match text {
            "always" => FsyncPolicy::Always,
            "no" => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }

    fn from_u8(v: u8) -> FsyncPolicy {
        match v {
            0 => FsyncPolicy::Always,
            2 => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }
}

/// One journaled change, as written (borrowing what the store holds).
#[derive(Serialize)]
enum RecordRef<'a> {
    Batch(&'a Batch),
    SyncBegin {
        transfer: u64,
        scope: &'a SyncScope,
        ctx: &'a CausalContext,
        applied: &'a VersionVector,
        functions: Option<&'a FunctionLibraries>,
        /// Written again at the head of a new tail (a rewrite happened
        /// mid-transfer): the keys merged before are in the base, so the
        /// end must not take them for unmentioned.
        resumed: bool,
    },
    SyncChunk {
        transfer: u64,
        ctx: &'a CausalContext,
        entries: &'a [SyncEntry],
    },
    SyncEnd {
        transfer: u64,
    },
    /// A full transfer's FLUSHDB floors, adopted (last, so files written
    /// before it existed read the same).
    FlushFloors {
        floors: &'a [VersionVector],
    },
}

/// One journaled change, as read back (same shape as [`RecordRef`]).
#[derive(Deserialize)]
enum Record {
    Batch(Batch),
    SyncBegin {
        transfer: u64,
        scope: SyncScope,
        ctx: CausalContext,
        applied: VersionVector,
        functions: Option<FunctionLibraries>,
        resumed: bool,
    },
    SyncChunk {
        transfer: u64,
        ctx: CausalContext,
        entries: Vec<SyncEntry>,
    },
    SyncEnd {
        transfer: u64,
    },
    FlushFloors {
        floors: Vec<VersionVector>,
    },
}

// ----- paths and manifest -----

/// Where a node's AOF files live.
#[derive(Clone, Debug)]
pub struct AofPaths {
    pub dir: PathBuf,
    pub name: String,
}

impl AofPaths {
    /// `dir`/`appenddirname`, files named after `appendfilename`.
    pub fn new(dir: &str, dirname: &str, filename: &str) -> AofPaths {
        let root = Path::new(if dir.is_empty() { "." } else { dir });
        AofPaths {
            dir: root.join(dirname),
            name: filename.to_owned(),
        }
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.name))
    }

    fn base_name(&self, n: u64) -> String {
        format!("{}.{n}.base.cordis", self.name)
    }

    fn incr_name(&self, n: u64) -> String {
        format!("{}.{n}.incr.cordis", self.name)
    }

    /// The marker a clean shutdown leaves: the files are complete.
    pub fn clean_marker(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest.clean", self.name))
    }

    /// The number in one of this AOF's file names.
    fn index_of(&self, file: &str) -> Option<u64> {
        let rest = file.strip_prefix(&self.name)?.strip_prefix('.')?;
        let (n, kind) = rest.split_once('.')?;
        matches!(kind, "base.cordis" | "incr.cordis")
            .then(|| n.parse().ok())
            .flatten()
    }
}

/// Which files make up the AOF, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub base: Option<String>,
    pub incrs: Vec<String>,
}

impl Manifest {
    fn text(&self) -> String {
        let mut out = format!("{MANIFEST_FIRST_LINE}\n");
        if let Some(b) = &self.base {
            out.push_str(&format!("base {b}\n"));
        }
        for i in &self.incrs {
            out.push_str(&format!("incr {i}\n"));
        }
        out
    }

    fn parse(paths: &AofPaths, text: &str) -> Result<Manifest, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MANIFEST_FIRST_LINE) {
            return Err("not a cordis AOF manifest (bad first line)".into());
        }
        let mut m = Manifest::default();
        for line in lines {
            let (kind, file) = line
                .split_once(' ')
                .ok_or_else(|| format!("bad manifest line {line:?}"))?;
            if paths.index_of(file).is_none() {
                return Err(format!(
                    "manifest names a file that is not its own: {file:?}"
                ));
            }
            match kind {
                "base" if m.base.is_none() && m.incrs.is_empty() => m.base = Some(file.into()),
                "incr" => m.incrs.push(file.into()),
                _ => return Err(format!("bad manifest line {line:?}")),
            }
        }
        Ok(m)
    }

    fn next_index(&self, paths: &AofPaths) -> u64 {
        self.base
            .iter()
            .chain(self.incrs.iter())
            .filter_map(|f| paths.index_of(f))
            .max()
            .unwrap_or(0)
            + 1
    }

    fn write(&self, paths: &AofPaths) -> std::io::Result<()> {
        let path = paths.manifest();
        let tmp = temp_path(&path);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(self.text().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        sync_dir(&path)
    }
}

/// Starts an AOF where there is none: `base` (snapshot bytes of the state
/// now) as its first base, and a manifest naming only it.
pub fn create_with_base(paths: &AofPaths, base: &[u8]) -> std::io::Result<Manifest> {
    std::fs::create_dir_all(&paths.dir)?;
    let name = paths.base_name(1);
    snapshot::write_bytes(&paths.dir.join(&name), base)?;
    let manifest = Manifest {
        base: Some(name),
        incrs: Vec::new(),
    };
    manifest.write(paths)?;
    Ok(manifest)
}

/// Starts a fresh AOF at run time (CONFIG SET appendonly yes): `base` (the
/// state now) under numbers past any earlier manifest's, a manifest naming
/// only it, then the earlier manifest's files removed (Redis's rewrite
/// replaces them the same way).
pub fn create_fresh(paths: &AofPaths, base: &[u8]) -> std::io::Result<Manifest> {
    std::fs::create_dir_all(&paths.dir)?;
    let earlier = read_manifest(paths).ok().flatten().unwrap_or_default();
    let n = earlier.next_index(paths);
    let name = paths.base_name(n);
    snapshot::write_bytes(&paths.dir.join(&name), base)?;
    let manifest = Manifest {
        base: Some(name),
        incrs: Vec::new(),
    };
    manifest.write(paths)?;
    let _ = std::fs::remove_file(paths.clean_marker());
    for file in earlier.base.iter().chain(earlier.incrs.iter()) {
        let _ = std::fs::remove_file(paths.dir.join(file));
    }
    Ok(manifest)
}

/// Reads the manifest; `Ok(None)` when there is none (no AOF yet).
pub fn read_manifest(paths: &AofPaths) -> Result<Option<Manifest>, String> {
    match std::fs::read_to_string(paths.manifest()) {
        Ok(text) => Manifest::parse(paths, &text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", paths.manifest().display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", paths.manifest().display())),
    }
}

// ----- writing -----

/// Write statistics INFO persistence reads.
#[derive(Clone, Debug, Default)]
pub struct AofStatus {
    pub rewrite_started: Option<Instant>,
    pub last_rewrite_secs: i64,
    pub last_rewrite_ok: bool,
    pub rewrites: u64,
    pub rewrite_failures_in_a_row: u64,
    pub last_write_ok: bool,
    /// Bytes of the base file and of all tail files now.
    pub base_size: u64,
    pub current_size: u64,
    /// Tail size when the last rewrite finished (auto-rewrite compares).
    pub size_at_last_rewrite: u64,
    pub pending_bytes: u64,
}

struct Writer {
    manifest: Manifest,
    /// The tail file records go to now (shared, so a write or fsync can
    /// run with this lock released).
    file: Arc<File>,
    tail_name: String,
    tail_size: u64,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    /// Bytes of records handed over since the file was opened (the
    /// position a reply waits for under `always`).
    handed: u64,
    /// How much of `handed` is written to the file (maybe not fsynced).
    written: u64,
    /// Bytes written since the last fsync.
    unsynced: bool,
    last_fsync: Instant,
    /// Framed `SyncBegin { resumed: true }` records of transfers not yet
    /// ended, written at the head of every new tail. At most
    /// [`OPEN_TRANSFERS`]: a transfer whose link dropped never ends.
    open_transfers: std::collections::BTreeMap<u64, Vec<u8>>,
}

/// `always` group gathering: one wait step, and the most a group waits
/// for more clients before its write and fsync (small beside an fsync).
const GATHER_STEP: Duration = Duration::from_micros(100);
const GATHER_MAX: Duration = Duration::from_micros(1000);

impl Writer {
    /// Books a write of `bytes` (taken from `pending`, covering records up
    /// to `upto`): on success the tail grows and needs an fsync; on failure
    /// the bytes go back ahead of newer ones for the next try (a partial
    /// write leaves a torn record a restart cuts).
    fn after_write(&mut self, bytes: Vec<u8>, upto: u64, result: std::io::Result<()>) -> bool {
        match result {
            Ok(()) => {
                self.tail_size += bytes.len() as u64;
                self.unsynced = true;
                self.written = self.written.max(upto);
                true
            }
            Err(e) => {
                tracing::error!("AOF: writing {} failed: {e}", self.tail_name);
                let mut back = bytes;
                back.extend_from_slice(&self.pending);
                self.pending = back;
                false
            }
        }
    }
}

/// How many unended transfers a tail carries over (far more than peers).
const OPEN_TRANSFERS: usize = 64;

/// A node's open AOF.
pub struct Aof {
    paths: AofPaths,
    policy: AtomicU8,
    writer: Mutex<Writer>,
    wake: Condvar,
    status: Mutex<AofStatus>,
    stopping: AtomicBool,
    /// Held by whoever writes to the tail file (the writer thread writes
    /// a group outside `writer`'s lock, so appenders never wait on I/O).
    io: Mutex<()>,
    /// How many handed-over bytes are written and fsynced.
    durable: tokio::sync::watch::Sender<u64>,
}

/// A record framed for a tail file: length, CRC-32C, payload.
fn frame(record: &RecordRef) -> Option<Vec<u8>> {
    let payload = match bincode::serde::encode_to_vec(record, bincode::config::standard()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("AOF: cannot encode a record: {e}");
            return None;
        }
    };
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Some(out)
}

fn new_tail(path: &Path) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    f.write_all(MAGIC)?;
    f.write_all(&FORMAT_VERSION.to_be_bytes())?;
    f.sync_all()?;
    sync_dir(path)?;
    Ok(f)
}

impl Aof {
    /// Opens the AOF for appending: a new tail file after what `manifest`
    /// lists (added to it durably), and starts the writer thread.
    pub fn open(
        paths: AofPaths,
        mut manifest: Manifest,
        policy: FsyncPolicy,
    ) -> std::io::Result<Arc<Aof>> {
        std::fs::create_dir_all(&paths.dir)?;
        let n = manifest.next_index(&paths);
        let tail_name = paths.incr_name(n);
        let file = new_tail(&paths.dir.join(&tail_name))?;
        // Tails with no record (a start with no write after it) go, so
        // restarts do not pile up empty files.
        let empty: Vec<String> = manifest
            .incrs
            .iter()
            .filter(|f| {
                std::fs::metadata(paths.dir.join(f)).is_ok_and(|m| m.len() <= HEADER as u64)
            })
            .cloned()
            .collect();
        manifest.incrs.retain(|f| !empty.contains(f));
        manifest.incrs.push(tail_name.clone());
        manifest.write(&paths)?;
        for f in &empty {
            let _ = std::fs::remove_file(paths.dir.join(f));
        }
        let sizes = files_size(&paths, &manifest);
        let aof = Arc::new(Aof {
            writer: Mutex::new(Writer {
                manifest,
                file: Arc::new(file),
                tail_name,
                tail_size: HEADER as u64,
                pending: Vec::new(),
                handed: 0,
                written: 0,
                unsynced: false,
                last_fsync: Instant::now(),
                open_transfers: Default::default(),
            }),
            paths,
            policy: AtomicU8::new(policy as u8),
            wake: Condvar::new(),
            status: Mutex::new(AofStatus {
                last_rewrite_secs: -1,
                last_rewrite_ok: true,
                last_write_ok: true,
                base_size: sizes.0,
                current_size: sizes.0 + sizes.1,
                size_at_last_rewrite: sizes.0 + sizes.1,
                ..AofStatus::default()
            }),
            stopping: AtomicBool::new(false),
            io: Mutex::new(()),
            durable: tokio::sync::watch::channel(0).0,
        });
        let me = aof.clone();
        std::thread::Builder::new()
            .name("cordis-aof".into())
            .spawn(move || me.writer_loop())?;
        Ok(aof)
    }

    pub fn paths(&self) -> &AofPaths {
        &self.paths
    }

    pub fn set_policy(&self, policy: FsyncPolicy) {
        self.policy.store(policy as u8, Ordering::Relaxed);
    }

    pub fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn status(&self) -> AofStatus {
        let mut s = self.status.lock().clone();
        s.pending_bytes = self.writer.lock().pending.len() as u64;
        s
    }

    fn append(&self, record: &RecordRef) {
        let Some(framed) = frame(record) else {
            self.status.lock().last_write_ok = false;
            return;
        };
        let resumed = match record {
            RecordRef::SyncBegin {
                transfer,
                scope,
                ctx,
                applied,
                functions,
                ..
            } => frame(&RecordRef::SyncBegin {
                transfer: *transfer,
                scope,
                ctx,
                applied,
                functions: *functions,
                resumed: true,
            })
            .map(|f| (*transfer, f)),
            _ => None,
        };
        let mut w = self.writer.lock();
        match (record, resumed) {
            (_, Some((transfer, f))) => {
                w.open_transfers.insert(transfer, f);
                while w.open_transfers.len() > OPEN_TRANSFERS {
                    w.open_transfers.pop_first();
                }
            }
            (RecordRef::SyncEnd { transfer }, _) => {
                w.open_transfers.remove(transfer);
            }
            _ => {}
        }
        let was_empty = w.pending.is_empty();
        w.handed += framed.len() as u64;
        if was_empty {
            w.pending = framed;
        } else {
            w.pending.extend_from_slice(&framed);
        }
        drop(w);
        // Under `always` the writer thread does the group's fsync: the
        // first record after a drain wakes it. Otherwise the replying
        // connection writes the records itself (`before_reply`), as Redis
        // writes before it answers, and the thread picks up the rest
        // (peers' batches) on its 100 ms round: a futex wake-up per record
        // cost over a third of SET's throughput.
        if was_empty && self.policy() == FsyncPolicy::Always {
            self.wake.notify_one();
        }
    }

    /// Called before a connection sends replies. Under `always`, returns
    /// the position the replies must wait for (every record handed over so
    /// far; `None` when all of it is durable). Under `everysec` and `no`,
    /// writes whatever is pending to the file now (one write for every
    /// client's records gathered meanwhile), so an acknowledged write
    /// survives kill -9 of the process, as in Redis, and returns `None`.
    pub fn before_reply(&self) -> Option<u64> {
        let w = self.writer.lock();
        if self.policy() == FsyncPolicy::Always {
            let handed = w.handed;
            drop(w);
            return (handed > *self.durable.borrow()).then_some(handed);
        }
        if w.written < w.handed {
            drop(w);
            let ok = self.write_out_pending();
            if !ok {
                self.note_write(false);
            }
        }
        None
    }

    /// Waits until the file is durable up to `position` (see
    /// [`Aof::before_reply`]). While writes fail the wait goes on
    /// (the writer retries once a second and INFO reports the failure): an
    /// `always` reply is never sent for a change that is not on disk.
    pub async fn durable_up_to(&self, position: u64) {
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|&d| d >= position).await;
    }

    fn write_pending(w: &mut Writer) -> bool {
        if w.pending.is_empty() {
            return true;
        }
        let bytes = std::mem::take(&mut w.pending);
        let result = (&*w.file).write_all(&bytes);
        let upto = w.handed;
        w.after_write(bytes, upto, result)
    }

    /// fsyncs the tail with `w` locked (flush, close, tail switch).
    /// Unconditional: `unsynced` may be false only because the writer
    /// thread's own fsync is still running.
    fn fsync(w: &mut Writer) -> bool {
        match w.file.sync_data() {
            Ok(()) => {
                w.unsynced = false;
                w.last_fsync = Instant::now();
                true
            }
            Err(e) => {
                tracing::error!("AOF: fsync of {} failed: {e}", w.tail_name);
                false
            }
        }
    }

    fn note_write(&self, ok: bool) {
        let tail = self.writer.lock().tail_size;
        let mut s = self.status.lock();
        s.last_write_ok = ok;
        s.current_size = s.base_size + tail;
    }

    /// The writer thread: writes what is pending as soon as it is handed
    /// over; under `always` fsyncs each group and publishes the durable
    /// position, under `everysec` fsyncs once a second.
    fn writer_loop(self: Arc<Self>) {
        loop {
            {
                let mut w = self.writer.lock();
                if w.pending.is_empty() && !self.stopping.load(Ordering::Relaxed) {
                    self.wake.wait_for(&mut w, Duration::from_millis(100));
                }
            }
            if self.policy() == FsyncPolicy::Always {
                self.gather_group();
            }
            let ok = self.write_out_pending() && self.fsync_if_due();
            self.note_write(ok);
            if !ok && !self.stopping.load(Ordering::Relaxed) {
                // A full or failing disk: retry once a second instead of
                // spinning (what failed stays pending, in order).
                std::thread::sleep(Duration::from_secs(1));
            }
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    /// Under `always`, lets the group grow while clients are still adding
    /// to it: the thread is woken by the first record after an fsync, and
    /// the clients whose replies that fsync released are sending their
    /// next commands right then. Waits in short steps while the pending
    /// bytes keep growing, at most [`GATHER_MAX`].
    fn gather_group(&self) {
        let started = Instant::now();
        let mut seen = self.writer.lock().pending.len();
        while started.elapsed() < GATHER_MAX {
            std::thread::sleep(GATHER_STEP);
            let now = self.writer.lock().pending.len();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Takes what is pending and writes it with the writer's lock released
    /// (appenders, who hold the store lock, never wait on I/O). `io` keeps
    /// the writes in order.
    fn write_out_pending(&self) -> bool {
        let _io = self.io.lock();
        let (bytes, upto, file) = {
            let mut w = self.writer.lock();
            if w.pending.is_empty() {
                return true;
            }
            (std::mem::take(&mut w.pending), w.handed, w.file.clone())
        };
        let result = (&*file).write_all(&bytes);
        self.writer.lock().after_write(bytes, upto, result)
    }

    /// fsyncs what is written when the policy says it is time (each group
    /// under `always`, once a second under `everysec`, never under `no`),
    /// with no lock held, and publishes the durable position.
    fn fsync_if_due(&self) -> bool {
        let mut w = self.writer.lock();
        let due = match self.policy() {
            FsyncPolicy::Always => true,
            FsyncPolicy::EverySec => w.last_fsync.elapsed() >= Duration::from_secs(1),
            FsyncPolicy::No => false,
        };
        if !(w.unsynced && due) {
            return true;
        }
        // Everything up to `upto` was written before this fsync starts; a
        // write meanwhile sets `unsynced` again for the next one.
        let upto = w.written;
        let file = w.file.clone();
        w.unsynced = false;
        drop(w);
        let result = file.sync_data();
        let mut w = self.writer.lock();
        w.last_fsync = Instant::now();
        match result {
            Ok(()) => {
                drop(w);
                self.durable.send_modify(|d| *d = (*d).max(upto));
                true
            }
            Err(e) => {
                tracing::error!("AOF: fsync of {} failed: {e}", w.tail_name);
                w.unsynced = true;
                false
            }
        }
    }

    /// Writes and fsyncs everything handed over so far.
    pub fn flush(&self) -> bool {
        let _io = self.io.lock();
        let mut w = self.writer.lock();
        let ok = Self::write_pending(&mut w) && Self::fsync(&mut w);
        let handed = w.handed;
        drop(w);
        if ok {
            self.durable.send_replace(handed);
        }
        self.note_write(ok);
        ok
    }

    /// Stops appending (CONFIG SET appendonly no; the caller has taken the
    /// journal off the store): everything handed over is written and
    /// fsynced, and the writer thread ends. The files stay.
    pub fn close(&self) -> bool {
        let ok = self.flush();
        self.stopping.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        ok
    }

    /// A clean stop (the caller holds the store until the process exits):
    /// everything written and fsynced, then the marker that lets the next
    /// start resume `identity`'s incarnation.
    pub fn close_clean(&self, identity: &super::NodeIdentity) -> std::io::Result<()> {
        self.stopping.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        let _io = self.io.lock();
        let mut w = self.writer.lock();
        if !(Self::write_pending(&mut w) && Self::fsync(&mut w)) {
            return Err(std::io::Error::other("the AOF could not be written"));
        }
        let text = marker_text(identity, &w.tail_name, w.tail_size);
        let marker = self.paths.clean_marker();
        let tmp = temp_path(&marker);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &marker)?;
        sync_dir(&marker)
    }

    // ----- rewrite -----

    pub fn rewrite_in_progress(&self) -> bool {
        self.status.lock().rewrite_started.is_some()
    }

    /// BGREWRITEAOF, called with the store locked: `base` is the whole
    /// state encoded at this instant (a snapshot); records from now on go
    /// to a new tail. A thread writes the base, then the manifest that
    /// names only it and the new tail, then removes the old files.
    pub fn start_rewrite(self: &Arc<Self>, base: Vec<u8>) -> Result<(), String> {
        {
            let mut s = self.status.lock();
            if s.rewrite_started.is_some() {
                return Err("Background append only file rewriting already in progress".into());
            }
            s.rewrite_started = Some(Instant::now());
        }
        let switched = self.switch_tail();
        let (n, tail) = match switched {
            Ok(v) => v,
            Err(e) => {
                self.finish_rewrite(false, 0);
                return Err(format!("cannot start a new AOF tail: {e}"));
            }
        };
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("cordis-aofrw".into())
            .spawn(move || {
                let base_name = me.paths.base_name(n);
                let result =
                    snapshot::write_bytes(&me.paths.dir.join(&base_name), &base).and_then(|()| {
                        let mut w = me.writer.lock();
                        let keep_from = w
                            .manifest
                            .incrs
                            .iter()
                            .position(|i| *i == tail)
                            .unwrap_or(0);
                        let manifest = Manifest {
                            base: Some(base_name.clone()),
                            incrs: w.manifest.incrs[keep_from..].to_vec(),
                        };
                        manifest.write(&me.paths)?;
                        let old = std::mem::replace(&mut w.manifest, manifest);
                        drop(w);
                        for file in old.base.iter().chain(old.incrs.iter()) {
                            if !me.writer.lock().manifest.incrs.contains(file) {
                                let _ = std::fs::remove_file(me.paths.dir.join(file));
                            }
                        }
                        Ok(())
                    });
                match &result {
                    Ok(()) => tracing::info!("AOF rewrite done: base {base_name}"),
                    Err(e) => tracing::error!("AOF rewrite failed: {e}"),
                }
                me.finish_rewrite(result.is_ok(), base.len() as u64);
            });
        if spawned.is_err() {
            self.finish_rewrite(false, 0);
            return Err("cannot start the AOF rewrite thread".into());
        }
        Ok(())
    }

    /// Everything pending goes to the old tail (fsynced), a new tail opens
    /// and the manifest lists it. Returns its index and name.
    fn switch_tail(&self) -> std::io::Result<(u64, String)> {
        let _io = self.io.lock();
        let mut w = self.writer.lock();
        if !(Self::write_pending(&mut w) && Self::fsync(&mut w)) {
            return Err(std::io::Error::other(
                "the current tail could not be written",
            ));
        }
        let n = w.manifest.next_index(&self.paths);
        let name = self.paths.incr_name(n);
        let file = new_tail(&self.paths.dir.join(&name))?;
        let mut manifest = w.manifest.clone();
        manifest.incrs.push(name.clone());
        manifest.write(&self.paths)?;
        w.manifest = manifest;
        w.file = Arc::new(file);
        w.tail_name = name.clone();
        w.tail_size = HEADER as u64;
        w.unsynced = false;
        let carried: Vec<u8> = w.open_transfers.values().flatten().copied().collect();
        w.pending = carried;
        let handed = w.handed;
        drop(w);
        // Everything handed over so far is in the old tail, fsynced.
        self.durable.send_replace(handed);
        Ok((n, name))
    }

    fn finish_rewrite(&self, ok: bool, base_size: u64) {
        let tail = self.writer.lock().tail_size;
        let mut s = self.status.lock();
        let started = s.rewrite_started.take();
        s.last_rewrite_secs = started.map_or(0, |t| t.elapsed().as_secs() as i64);
        s.last_rewrite_ok = ok;
        if ok {
            s.rewrites += 1;
            s.rewrite_failures_in_a_row = 0;
            s.base_size = base_size;
            s.current_size = base_size + tail;
            s.size_at_last_rewrite = s.current_size;
        } else {
            s.rewrite_failures_in_a_row += 1;
        }
    }

    /// Whether `auto-aof-rewrite-percentage` / `-min-size` call for a
    /// rewrite now (Redis's rule: the AOF grew by that percentage since the
    /// last rewrite and is at least the minimum size).
    pub fn auto_rewrite_due(&self, percentage: u64, min_size: u64) -> bool {
        let s = self.status.lock();
        if percentage == 0
            || s.rewrite_started.is_some()
            || !s.last_rewrite_ok && s.rewrite_failures_in_a_row > 0
        {
            return false;
        }
        let base = s.size_at_last_rewrite.max(1);
        s.current_size >= min_size
            && (s.current_size.saturating_sub(base)) * 100 / base >= percentage
    }
}

fn files_size(paths: &AofPaths, manifest: &Manifest) -> (u64, u64) {
    let size = |f: &String| std::fs::metadata(paths.dir.join(f)).map_or(0, |m| m.len());
    (
        manifest.base.iter().map(size).sum(),
        manifest.incrs.iter().map(size).sum(),
    )
}

fn marker_text(identity: &super::NodeIdentity, tail: &str, size: u64) -> String {
    let name: String = identity.name.bytes().map(|b| format!("{b:02x}")).collect();
    format!(
        "cordis aof clean shutdown v1 name={name} incarnation={:08x} tail={tail} size={size}\n",
        identity.incarnation
    )
}

/// The journal the store writes through.
pub struct AofJournal(pub Arc<Aof>);

impl Journal for AofJournal {
    fn batch(&self, batch: &Batch) {
        self.0.append(&RecordRef::Batch(batch));
    }

    fn sync_begin(
        &self,
        transfer: u64,
        scope: &SyncScope,
        ctx: &CausalContext,
        applied: &VersionVector,
        functions: Option<&FunctionLibraries>,
        resumed: bool,
    ) {
        self.0.append(&RecordRef::SyncBegin {
            transfer,
            scope,
            ctx,
            applied,
            functions,
            resumed,
        });
    }

    fn sync_chunk(&self, transfer: u64, ctx: &CausalContext, entries: &[SyncEntry]) {
        self.0.append(&RecordRef::SyncChunk {
            transfer,
            ctx,
            entries,
        });
    }

    fn sync_end(&self, transfer: u64) {
        self.0.append(&RecordRef::SyncEnd { transfer });
    }

    fn flush_floors(&self, floors: &[VersionVector]) {
        self.0.append(&RecordRef::FlushFloors { floors });
    }
}

// ----- loading -----

/// What a start found in the AOF directory.
pub struct Found {
    pub manifest: Manifest,
    pub base: Option<snapshot::Snapshot>,
    /// The identity a clean-shutdown marker vouches for (files complete).
    pub resume: Option<super::NodeIdentity>,
}

/// Reads the manifest, the base and the clean marker (removed durably
/// before anything else, as the snapshot's). `Ok(None)`: no AOF yet. Any
/// file the manifest does not name is left over from an interrupted
/// rewrite and removed.
pub fn open_at_start(paths: &AofPaths) -> Result<Option<Found>, String> {
    let Some(manifest) = read_manifest(paths)? else {
        return Ok(None);
    };
    let base = match &manifest.base {
        Some(b) => Some(
            snapshot::read(&paths.dir.join(b))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the AOF base {b} the manifest names is missing"))?,
        ),
        None => None,
    };
    for f in &manifest.incrs {
        if !paths.dir.join(f).exists() {
            return Err(format!("the AOF file {f} the manifest names is missing"));
        }
    }
    let marker = paths.clean_marker();
    let marker_text_found = std::fs::read_to_string(&marker).ok();
    let marker_gone = match std::fs::remove_file(&marker) {
        Ok(()) => sync_dir(&marker).is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    let resume = marker_text_found.and_then(|text| {
        let tail = manifest.incrs.last()?;
        let size = std::fs::metadata(paths.dir.join(tail)).ok()?.len();
        let fields: HashMap<&str, &str> = text
            .trim_end()
            .strip_prefix("cordis aof clean shutdown v1 ")?
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let name_hex = fields.get("name")?;
        let name_bytes: Option<Vec<u8>> = (0..name_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(name_hex.get(i..i + 2)?, 16).ok())
            .collect();
        let identity = super::NodeIdentity {
            name: String::from_utf8(name_bytes?).ok()?,
            incarnation: u32::from_str_radix(fields.get("incarnation")?, 16).ok()?,
        };
        (marker_gone && text == marker_text(&identity, tail, size)).then_some(identity)
    });
    if let Ok(entries) = std::fs::read_dir(&paths.dir) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let listed = manifest.base.as_ref() == Some(&file) || manifest.incrs.contains(&file);
            if paths.index_of(&file).is_some() && !listed {
                tracing::info!("AOF: removing {file}, left over from an interrupted rewrite");
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(Some(Found {
        manifest,
        base,
        resume,
    }))
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    pub records: u64,
    /// Bytes cut from the end of the last tail (an incomplete record).
    pub truncated_bytes: u64,
    /// Batches that did not follow on from what was applied (skipped:
    /// peers send them again).
    pub skipped_batches: u64,
}

/// A state transfer being replayed.
struct Transfer {
    scope: SyncScope,
    ctx: CausalContext,
    applied: VersionVector,
    functions: Option<FunctionLibraries>,
    mentioned: crate::store::sync::MentionedKeys,
    resumed: bool,
}

/// Replays every tail file the manifest lists into `store` (which holds
/// the base already), in order. An incomplete record at the very end of
/// the last file is cut off when `truncate_ok` (aof-load-truncated), else
/// an error; a bad checksum or record anywhere is an error, and nothing
/// is changed on disk then.
pub fn replay(
    paths: &AofPaths,
    manifest: &Manifest,
    store: &mut Store,
    truncate_ok: bool,
) -> Result<Replayed, String> {
    let mut out = Replayed::default();
    let mut transfers: HashMap<u64, Transfer> = HashMap::new();
    for (i, file) in manifest.incrs.iter().enumerate() {
        let path = paths.dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let last_file = i + 1 == manifest.incrs.len();
        let where_ = |at: usize| format!("{} at byte {at}", path.display());
        if bytes.len() < HEADER {
            if last_file && truncate_ok && MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
                // Cut while the header was being written: an empty tail.
                out.truncated_bytes += bytes.len() as u64;
                rewrite_header(&path)?;
                continue;
            }
            return Err(format!("{}: too short for an AOF file", path.display()));
        }
        if &bytes[..8] != MAGIC {
            return Err(format!(
                "{}: not a cordis AOF file (bad magic)",
                path.display()
            ));
        }
        let version = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(format!(
                "{}: AOF format version {version}; this build reads version {FORMAT_VERSION}",
                path.display()
            ));
        }
        if let Some(at) = replay_from(&bytes, HEADER, store, &mut transfers, &mut out, &where_)? {
            truncated(&path, &bytes, at, last_file, truncate_ok, &mut out)?;
        }
    }
    if !transfers.is_empty() {
        tracing::warn!(
            "AOF: {} state transfer(s) had not ended when the node stopped; their keys are kept, unmentioned keys are not removed",
            transfers.len()
        );
    }
    Ok(out)
}

/// Replays the framed records in `bytes` from `at` on. `Ok(Some(at))`: an
/// incomplete record starts at `at` (the caller decides whether that is a
/// truncation to cut); a bad length, checksum or record is an error.
fn replay_from(
    bytes: &[u8],
    mut at: usize,
    store: &mut Store,
    transfers: &mut HashMap<u64, Transfer>,
    out: &mut Replayed,
    where_: &dyn Fn(usize) -> String,
) -> Result<Option<usize>, String> {
    while at < bytes.len() {
        let incomplete = |need: usize| at + need > bytes.len();
        if incomplete(8) {
            return Ok(Some(at));
        }
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4"));
        if len > MAX_RECORD {
            return Err(format!("{}: record length {len} is impossible", where_(at)));
        }
        if incomplete(8 + len) {
            return Ok(Some(at));
        }
        let payload = &bytes[at + 8..at + 8 + len];
        if crc32c(payload) != crc {
            return Err(format!("{}: record checksum mismatch", where_(at)));
        }
        let (record, used): (Record, usize) =
            decode_untrusted(payload).map_err(|e| format!("{}: bad record: {e}", where_(at)))?;
        if used != len {
            return Err(format!("{}: record has trailing bytes", where_(at)));
        }
        apply(store, record, transfers, out);
        out.records += 1;
        at += 8 + len;
    }
    Ok(None)
}

/// Replays records a background save captured (framed as in a tail file)
/// into `store`, which holds the save's keys already. The whole file was
/// checksummed, so an incomplete record is corruption, not a crash's cut.
pub fn replay_captured(store: &mut Store, bytes: &[u8]) -> Result<Replayed, String> {
    let mut out = Replayed::default();
    let mut transfers = HashMap::new();
    let where_ = |at: usize| format!("the snapshot's change records at byte {at}");
    if let Some(at) = replay_from(bytes, 0, store, &mut transfers, &mut out, &where_)? {
        return Err(format!("{}: an incomplete record", where_(at)));
    }
    Ok(out)
}

/// A journal that keeps its records in memory, framed as in a tail file:
/// what changed while a background save scanned the keyspace in steps.
#[derive(Default)]
pub struct CapturedRecords {
    bytes: Mutex<Vec<u8>>,
    /// A record that could not be encoded: the save must fail.
    failed: AtomicBool,
}

impl CapturedRecords {
    fn put(&self, record: &RecordRef) {
        match frame(record) {
            Some(framed) => self.bytes.lock().extend_from_slice(&framed),
            None => self.failed.store(true, Ordering::Relaxed),
        }
    }

    /// The records so far (emptied), or `None` if one was lost.
    pub fn take(&self) -> Option<Vec<u8>> {
        let bytes = std::mem::take(&mut *self.bytes.lock());
        (!self.failed.load(Ordering::Relaxed)).then_some(bytes)
    }

    /// Bytes held now.
    pub fn len(&self) -> usize {
        self.bytes.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Journal for CapturedRecords {
    fn batch(&self, batch: &Batch) {
        self.put(&RecordRef::Batch(batch));
    }

    fn sync_begin(
        &self,
        transfer: u64,
        scope: &SyncScope,
        ctx: &CausalContext,
        applied: &VersionVector,
        functions: Option<&FunctionLibraries>,
        resumed: bool,
    ) {
        self.put(&RecordRef::SyncBegin {
            transfer,
            scope,
            ctx,
            applied,
            functions,
            resumed,
        });
    }

    fn sync_chunk(&self, transfer: u64, ctx: &CausalContext, entries: &[SyncEntry]) {
        self.put(&RecordRef::SyncChunk {
            transfer,
            ctx,
            entries,
        });
    }

    fn sync_end(&self, transfer: u64) {
        self.put(&RecordRef::SyncEnd { transfer });
    }

    fn flush_floors(&self, floors: &[VersionVector]) {
        self.put(&RecordRef::FlushFloors { floors });
    }
}

fn truncated(
    path: &Path,
    bytes: &[u8],
    at: usize,
    last_file: bool,
    truncate_ok: bool,
    out: &mut Replayed,
) -> Result<(), String> {
    if !last_file || !truncate_ok {
        return Err(format!(
            "{} ends inside a record at byte {at}{}",
            path.display(),
            if last_file {
                " (aof-load-truncated is no)"
            } else {
                " and is not the last file"
            }
        ));
    }
    let cut = (bytes.len() - at) as u64;
    tracing::warn!(
        "AOF: {} ends with an incomplete record ({cut} bytes after byte {at}): truncating it there",
        path.display()
    );
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.set_len(at as u64)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    out.truncated_bytes += cut;
    Ok(())
}

fn rewrite_header(path: &Path) -> Result<(), String> {
    let mut f = File::create(path).map_err(|e| e.to_string())?;
    f.write_all(MAGIC)
        .and_then(|()| f.write_all(&FORMAT_VERSION.to_be_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(|e| e.to_string())
}

/// Applies one record as the store first did (the replication link's
/// steps for transfers).
fn apply(
    store: &mut Store,
    record: Record,
    transfers: &mut HashMap<u64, Transfer>,
    out: &mut Replayed,
) {
    match record {
        Record::Batch(batch) => {
            if store.replay_batch(&batch).is_err() {
                out.skipped_batches += 1;
            }
        }
        Record::SyncBegin {
            transfer,
            scope,
            ctx,
            applied,
            functions,
            resumed,
        } => {
            transfers.insert(
                transfer,
                Transfer {
                    scope,
                    ctx,
                    applied,
                    functions,
                    mentioned: Default::default(),
                    resumed,
                },
            );
        }
        Record::SyncChunk {
            transfer,
            ctx,
            entries,
        } => {
            let Some(t) = transfers.get_mut(&transfer) else {
                return;
            };
            for entry in entries {
                if (entry.db as usize) < crate::store::DB_COUNT {
                    store.merge_remote_state(entry.db as usize, &entry.key, &entry.state, &ctx);
                    t.mentioned.insert(entry.db, entry.key);
                }
            }
        }
        Record::SyncEnd { transfer } => {
            let Some(mut t) = transfers.remove(&transfer) else {
                return;
            };
            if let Some(functions) = &t.functions {
                store.merge_remote_libraries(functions, &t.ctx);
            }
            let full = t.scope == SyncScope::All;
            // A resumed transfer's earlier keys are in the base, not in
            // `mentioned`: no key is taken for absent at the sender then.
            let scope = if t.resumed {
                SyncScope::Buckets(Vec::new())
            } else {
                t.scope
            };
            store.finish_sync(&scope, &mut t.mentioned, &t.ctx, full.then_some(&t.applied));
        }
        Record::FlushFloors { floors } => store.apply_flush_floors(&floors),
    }
}
