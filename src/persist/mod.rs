//! Persistence: the node's identity across restarts ([`identity`]), the
//! snapshot file ([`snapshot`]: format, checksum, atomic writes), the
//! background save's steps ([`bgsave`]), the
//! append-only file ([`aof`]: records, fsync policies, rewrite, replay), and what
//! SAVE, BGSAVE, save points, SHUTDOWN SAVE, LASTSAVE and INFO persistence
//! share ([`Persistence`]). Knows neither RESP nor the command table: the
//! commands call in here with the store they hold locked.
//!
//! See `docs/persistence.md` for the formats, guarantees and recovery.

pub mod aof;
pub mod bgsave;
pub mod crc;
pub mod identity;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::store::Store;
pub use identity::NodeIdentity;
use snapshot::{SnapshotMeta, Written};

/// What SHUTDOWN asked for.
pub const SHUTDOWN_DEFAULT: u8 = 0;
pub const SHUTDOWN_SAVE: u8 = 1;
pub const SHUTDOWN_NOSAVE: u8 = 2;

/// Save bookkeeping INFO persistence and LASTSAVE read.
#[derive(Debug, Clone)]
pub struct SaveStatus {
    /// Unix seconds of the last successful save (start time before any).
    pub last_save_unix: u64,
    pub last_bgsave_ok: bool,
    pub saves: u64,
    pub bgsave_started: Option<Instant>,
    pub bgsave_keys_total: u64,
    pub last_bgsave_secs: i64,
    /// The store's change count at the last successful save.
    pub changes_at_last_save: u64,
    /// When the last save point fired (for the retry delay after a failure).
    pub last_attempt: Option<Instant>,
    pub loaded_keys: u64,
}

/// Persistence state of a running node.
pub struct Persistence {
    identity: Mutex<NodeIdentity>,
    status: Mutex<SaveStatus>,
    shutdown_mode: AtomicU8,
    /// The open append-only file, with `appendonly yes`.
    aof: Mutex<Option<Arc<aof::Aof>>>,
    /// Whether the node's name came from its files (not config, not
    /// generated at this start).
    name_from_disk: std::sync::atomic::AtomicBool,
    /// The background save running now.
    bgsave_run: Mutex<Option<Arc<BgsaveRun>>>,
}

/// Keys a background save step encodes at most while holding the lock.
pub const STEP_KEYS: usize = 4096;
/// How long a step holds the lock at most (checked every 64 keys; one key
/// is never split, so a huge value takes its own time).
pub const STEP_TIME: std::time::Duration = std::time::Duration::from_millis(2);

/// The least pause between two steps.
const STEP_PAUSE_MIN: std::time::Duration = std::time::Duration::from_micros(200);

/// One background save's flags, shared with its thread.
#[derive(Default)]
struct BgsaveRun {
    /// Set (with the store locked) to end the run without writing.
    stopped: std::sync::atomic::AtomicBool,
    /// Set by the thread as it ends, whichever way.
    finished: std::sync::atomic::AtomicBool,
    processed: std::sync::atomic::AtomicU64,
}

/// The store's count of changes: local writes plus batches applied from
/// peers (what save points count).
pub fn changes(store: &Store) -> u64 {
    store.last_seq() + store.stats.remote_batches_applied
}

fn unix_secs() -> u64 {
    crate::store::unix_ms() / 1000
}

impl Persistence {
    pub fn new(identity: NodeIdentity) -> Self {
        Persistence {
            identity: Mutex::new(identity),
            status: Mutex::new(SaveStatus {
                last_save_unix: unix_secs(),
                last_bgsave_ok: true,
                saves: 0,
                bgsave_started: None,
                bgsave_keys_total: 0,
                last_bgsave_secs: -1,
                changes_at_last_save: 0,
                last_attempt: None,
                loaded_keys: 0,
            }),
            shutdown_mode: AtomicU8::new(SHUTDOWN_DEFAULT),
            aof: Mutex::new(None),
            name_from_disk: std::sync::atomic::AtomicBool::new(false),
            bgsave_run: Mutex::new(None),
        }
    }

    pub fn set_name_from_disk(&self, yes: bool) {
        self.name_from_disk.store(yes, Ordering::Relaxed);
    }

    /// Whether the name was read from a snapshot or AOF at start.
    pub fn name_from_disk(&self) -> bool {
        self.name_from_disk.load(Ordering::Relaxed)
    }

    pub fn set_aof(&self, aof: Option<Arc<aof::Aof>>) {
        *self.aof.lock() = aof;
    }

    pub fn aof(&self) -> Option<Arc<aof::Aof>> {
        self.aof.lock().clone()
    }

    /// The whole state as snapshot bytes (an AOF base), encoded under the
    /// caller's lock.
    pub fn encode_base(&self, store: &Store) -> std::io::Result<Vec<u8>> {
        snapshot::encode_to_vec(&self.meta(store), store.image_keys()).map(|(bytes, _)| bytes)
    }

    /// BGREWRITEAOF: the base is this instant's state; see
    /// [`aof::Aof::start_rewrite`].
    pub fn rewrite_aof(&self, store: &Store) -> Result<(), String> {
        let aof = self
            .aof()
            .ok_or("BGREWRITEAOF needs the append-only file, which is off (CONFIG SET appendonly yes turns it on)")?;
        if aof.rewrite_in_progress() {
            return Err("Background append only file rewriting already in progress".into());
        }
        let base = self.encode_base(store).map_err(|e| e.to_string())?;
        aof.start_rewrite(base)
    }

    /// Installs the identity the start chose.
    pub fn set_identity(&self, identity: NodeIdentity) {
        *self.identity.lock() = identity;
    }

    pub fn identity(&self) -> NodeIdentity {
        self.identity.lock().clone()
    }

    pub fn status(&self) -> SaveStatus {
        self.status.lock().clone()
    }

    /// Records a load at start: `keys` loaded, the store's change count.
    pub fn note_loaded(&self, keys: u64, changes: u64) {
        let mut s = self.status.lock();
        s.loaded_keys = keys;
        s.changes_at_last_save = changes;
    }

    pub fn set_shutdown_mode(&self, mode: u8) {
        self.shutdown_mode.store(mode, Ordering::Relaxed);
    }

    pub fn shutdown_mode(&self) -> u8 {
        self.shutdown_mode.load(Ordering::Relaxed)
    }

    pub fn bgsave_in_progress(&self) -> bool {
        self.status.lock().bgsave_started.is_some()
    }

    fn meta(&self, store: &Store) -> SnapshotMeta {
        let identity = self.identity();
        SnapshotMeta {
            name: identity.name,
            incarnation: identity.incarnation,
            saved_unix_ms: crate::store::unix_ms(),
            keys: store.image_key_count() as u64,
            image: store.image_header(),
        }
    }

    /// SAVE: writes the snapshot now, with the store held (so the file is
    /// exactly this instant). Blocks the caller for the whole write.
    pub fn save(&self, store: &Store, path: &Path) -> std::io::Result<Written> {
        let meta = self.meta(store);
        let result = snapshot::write(path, &meta, store.image_keys());
        let mut s = self.status.lock();
        if result.is_ok() {
            s.last_save_unix = unix_secs();
            s.saves += 1;
            s.changes_at_last_save = changes(store);
        }
        result
    }

    /// BGSAVE, called with the store locked (`store`, the guard of
    /// `handle`). Lists every key name and installs a capture of every
    /// change from now on; a thread then encodes the keys in steps of at
    /// most [`STEP_KEYS`] keys or [`STEP_TIME`], taking the lock for each
    /// and handing it on fairly, so clients wait at most a step. At the end
    /// the capture comes off and the file is the header as of now, the
    /// keys as of their steps, and the captured changes (see
    /// `snapshot`'s module docs): loading it gives the state at the last
    /// step. `Err` when one is already running.
    pub fn bgsave(
        self: &Arc<Self>,
        store: &mut Store,
        handle: Arc<Mutex<Store>>,
        path: PathBuf,
    ) -> Result<(), &'static str> {
        let run = Arc::new(BgsaveRun::default());
        {
            let mut s = self.status.lock();
            if s.bgsave_started.is_some() {
                return Err("Background save already in progress");
            }
            s.bgsave_started = Some(Instant::now());
            s.bgsave_keys_total = store.image_key_count() as u64;
            s.last_attempt = Some(Instant::now());
        }
        let listing = Instant::now();
        let save = bgsave::SteppedSave::begin(store, self.meta(store));
        tracing::info!(
            keys = save.total(),
            listed_ms = listing.elapsed().as_millis() as u64,
            "background save started"
        );
        *self.bgsave_run.lock() = Some(run.clone());
        let me = self.clone();
        let thread_run = run.clone();
        let spawned = std::thread::Builder::new()
            .name("cordis-bgsave".into())
            .spawn(move || me.bgsave_steps(&thread_run, &handle, save, path));
        if spawned.is_err() {
            bgsave::finish_hooks(store);
            *self.bgsave_run.lock() = None;
            self.status.lock().bgsave_started = None;
            return Err("ERR cannot start the background save thread");
        }
        Ok(())
    }

    /// The background save's thread: the steps, then the write.
    fn bgsave_steps(
        &self,
        run: &BgsaveRun,
        handle: &Mutex<Store>,
        mut save: bgsave::SteppedSave,
        path: PathBuf,
    ) {
        // The lock, unless the run was stopped meanwhile (whoever stopped
        // it holds the store and has taken the capture off).
        let lock = || loop {
            if run.stopped.load(Ordering::Acquire) {
                return None;
            }
            if let Some(guard) = handle.try_lock_for(std::time::Duration::from_millis(10)) {
                if run.stopped.load(Ordering::Acquire) {
                    return None;
                }
                return Some(guard);
            }
        };
        let mut stepped: std::io::Result<bool> = Ok(true);
        while matches!(stepped, Ok(true)) {
            let Some(mut guard) = lock() else {
                return self.bgsave_done(run, None, 0);
            };
            let held = Instant::now();
            stepped = save.step(&mut guard, STEP_KEYS, STEP_TIME);
            run.processed.store(save.processed(), Ordering::Relaxed);
            parking_lot::MutexGuard::unlock_fair(guard);
            // Leave the lock free for as long as the step held it, so the
            // save takes at most half of the store's time while it runs
            // (the event loop re-takes the lock per command and would
            // otherwise see it back in the save's hands at once).
            std::thread::sleep(held.elapsed().max(STEP_PAUSE_MIN));
        }
        let Some(mut guard) = lock() else {
            tracing::info!("background save stopped");
            return self.bgsave_done(run, None, 0);
        };
        let changes_at_end = changes(&guard);
        let ended = match stepped {
            Ok(_) => save.end(&mut guard),
            Err(e) => {
                save.abandon(&mut guard);
                Err(e)
            }
        };
        drop(guard);
        let written = ended.and_then(|ended| {
            let records = ended.records_len();
            ended.write(&path).map(|w| (w, records))
        });
        match &written {
            Ok((w, records)) => tracing::info!(
                bytes = w.bytes,
                change_records_bytes = records,
                "background save done: {}",
                path.display()
            ),
            Err(e) => tracing::error!("background save to {} failed: {e}", path.display()),
        }
        self.bgsave_done(run, Some(written.is_ok()), changes_at_end);
    }

    /// Records how a run ended: `Some(ok)`, or `None` when it was stopped
    /// (then the last status stands, as for a save Redis cancels).
    fn bgsave_done(&self, run: &BgsaveRun, ok: Option<bool>, changes_at_cut: u64) {
        let mut s = self.status.lock();
        let started = s.bgsave_started.take();
        if let Some(ok) = ok {
            s.last_bgsave_secs = started.map_or(0, |t| t.elapsed().as_secs() as i64);
            s.last_bgsave_ok = ok;
            if ok {
                s.last_save_unix = unix_secs();
                s.saves += 1;
                s.changes_at_last_save = changes_at_cut;
            }
        }
        drop(s);
        let mut current = self.bgsave_run.lock();
        if current.as_ref().is_some_and(|r| std::ptr::eq(&**r, run)) {
            *current = None;
        }
        run.finished.store(true, Ordering::Release);
    }

    /// Keys a running background save has encoded so far.
    pub fn bgsave_keys_processed(&self) -> u64 {
        self.bgsave_run
            .lock()
            .as_ref()
            .map_or(0, |r| r.processed.load(Ordering::Relaxed))
    }

    /// Stops a running background save (SHUTDOWN, DEBUG RELOAD: a SAVE
    /// follows), called with the store locked: its capture comes off here
    /// and its thread ends without writing, or, past its last step,
    /// once its file is written. Returns at once when none runs.
    pub fn stop_bgsave(&self, store: &mut Store) {
        let Some(run) = self.bgsave_run.lock().clone() else {
            return;
        };
        run.stopped.store(true, Ordering::Release);
        bgsave::finish_hooks(store);
        // The thread is between steps (the caller holds the lock) and sees
        // the flag within one try-lock wait, or is past its last step and
        // writing the file, which it finishes first (bounded by the write).
        while !run.finished.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Whether a save point is due: some `(seconds, changes)` pair with at
    /// least that many changes and that many seconds since the last save.
    /// After a failed background save, points wait 5 s between tries (as
    /// Redis does).
    pub fn save_point_due(&self, points: &[(u64, u64)], changes_now: u64) -> bool {
        let s = self.status.lock();
        if s.bgsave_started.is_some() {
            return false;
        }
        if !s.last_bgsave_ok && s.last_attempt.is_some_and(|t| t.elapsed().as_secs() < 5) {
            return false;
        }
        let changed = changes_now.saturating_sub(s.changes_at_last_save);
        let elapsed = unix_secs().saturating_sub(s.last_save_unix);
        points
            .iter()
            .any(|&(secs, min_changes)| changed >= min_changes && elapsed >= secs)
    }
}

/// Parses the canonical `save` value ("900 1 300 100") into pairs.
pub fn save_points(text: &str) -> Vec<(u64, u64)> {
    let words: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    words.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// Where the snapshot lives: `dir` joined with `dbfilename`.
pub fn snapshot_path(dir: &str, dbfilename: &str) -> PathBuf {
    Path::new(if dir.is_empty() { "." } else { dir }).join(dbfilename)
}

// ----- restart -----

/// The marker a clean shutdown leaves next to the snapshot it wrote last:
/// the node issued nothing after that snapshot, so its next start may
/// resume the incarnation. Removed (durably) at start before any write.
pub fn clean_marker_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.file_name().unwrap_or_default().to_os_string();
    name.push(".clean");
    snapshot.with_file_name(name)
}

fn marker_text(replica: crate::crdt::ReplicaId, seq: u64, checksum: u32) -> String {
    format!("cordis clean shutdown v1 replica={replica} seq={seq} checksum={checksum:08x}\n")
}

/// Writes the clean-shutdown marker for the snapshot just written.
pub fn write_clean_marker(snapshot: &Path, store: &Store, checksum: u32) -> std::io::Result<()> {
    let marker = clean_marker_path(snapshot);
    let text = marker_text(store.replica(), store.last_seq(), checksum);
    let tmp = snapshot::temp_path(&marker);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &marker)?;
    snapshot::sync_dir(&marker)
}

/// The save a stopping node makes (SHUTDOWN SAVE, or a signal or plain
/// SHUTDOWN with save points configured), then the clean-shutdown marker.
/// The caller holds the store and keeps holding it until the process
/// exits, so no write can follow the marker.
pub fn save_at_shutdown(
    persist: &Persistence,
    store: &mut Store,
    path: &Path,
) -> std::io::Result<()> {
    persist.stop_bgsave(store);
    let written = persist.save(store, path)?;
    write_clean_marker(path, store, written.checksum)
}

/// Installs a snapshot read from disk: its keys, then the changes a
/// background save recorded while it encoded them. Returns how many keys
/// the file held and how many changes were replayed.
pub fn load_snapshot(
    store: &mut Store,
    snap: snapshot::Snapshot,
    resume: bool,
) -> Result<(u64, u64), String> {
    let keys = snap.entries.len() as u64;
    if snap.records.is_empty() {
        // Nothing changed while it was written: every key once, as of one
        // instant.
        store.restore_image(snap.meta.image, snap.entries, resume);
        return Ok((keys, 0));
    }
    store.restore_stepped_image(snap.meta.image, snap.entries, resume);
    store.cover_held_dots();
    let replayed = aof::replay_captured(store, &snap.records)?;
    if resume {
        store.resume_own_sequence();
    }
    Ok((keys, replayed.records))
}

/// What a start found on disk and decided.
pub struct Restored {
    pub identity: NodeIdentity,
    /// The snapshot to install, and whether the incarnation resumes.
    pub snapshot: Option<(snapshot::Snapshot, bool)>,
}

/// Reads the snapshot at `path` (if any) and chooses the identity: the
/// snapshot's incarnation when a clean-shutdown marker vouches that it is
/// complete (the marker is then removed, durably, before anything else),
/// else a fresh incarnation of the configured name (or the snapshot's
/// name, or a random one). A corrupt or truncated file is an error and
/// stays untouched.
pub fn restore_at_start(
    configured_name: Option<&str>,
    path: &Path,
) -> Result<Restored, snapshot::SnapshotError> {
    let Some(snap) = snapshot::read(path)? else {
        return Ok(Restored {
            identity: NodeIdentity::fresh(configured_name),
            snapshot: None,
        });
    };
    let name_matches = configured_name.is_none_or(|n| n == snap.meta.name);
    let marker = clean_marker_path(path);
    let vouched = std::fs::read_to_string(&marker)
        .map(|text| {
            text == marker_text(
                snap.meta.image.replica,
                snap.meta.image.last_seq,
                snap.checksum,
            )
        })
        .unwrap_or(false);
    // The marker goes before any write of this life: once it is gone, a
    // crash from here on restarts as a new incarnation.
    let marker_gone = match std::fs::remove_file(&marker) {
        Ok(()) => snapshot::sync_dir(&marker).is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    let resume = vouched && marker_gone && name_matches;
    let identity = if resume {
        NodeIdentity {
            name: snap.meta.name.clone(),
            incarnation: snap.meta.incarnation,
        }
    } else {
        NodeIdentity::fresh(configured_name.or(Some(snap.meta.name.as_str())))
    };
    Ok(Restored {
        identity,
        snapshot: Some((snap, resume)),
    })
}
