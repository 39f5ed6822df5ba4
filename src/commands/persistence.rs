//! SAVE, BGSAVE [SCHEDULE], LASTSAVE, BGREWRITEAOF, DEBUG RELOAD, and the INFO
//! persistence section: thin handlers over [`crate::persist`], which owns
//! the file format and the save bookkeeping. The snapshot path is `dir`
//! joined with `dbfilename`, read from the config at each call.

use bytes::Bytes;

use super::args::{err, err_owned, is, Args, CmdResult, SYNTAX_ERROR};
use super::flags::{ADMIN, FAST, LOADING, NOSCRIPT, NO_MULTI, STALE};
use super::{spec, CommandSpec, Context};
use crate::persist;
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), "server", "1.0.0", "Synchronously saves the database(s) to disk.", save),
    spec("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), "server", "1.0.0", "Asynchronously saves the database(s) to disk.", bgsave),
    spec("lastsave", 1, LOADING | STALE | FAST, (0, 0, 0), "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", lastsave),
    spec("bgrewriteaof", 1, ADMIN | NOSCRIPT, (0, 0, 0), "server", "1.0.0", "Asynchronously rewrites the append-only file to disk.", bgrewriteaof),
];

/// The configured snapshot path.
pub fn snapshot_path(ctx: &Context) -> std::path::PathBuf {
    let config = ctx.server.config.read();
    persist::snapshot_path(
        &config.get("dir").unwrap_or_default(),
        &config.get("dbfilename").unwrap_or_default(),
    )
}

/// Saves now, under the lock the handler holds; Redis's bare `ERR` on
/// failure (the log says why).
pub fn save_now(ctx: &mut Context) -> Result<(), Reply> {
    if ctx.server.persist.bgsave_in_progress() {
        return Err(err("ERR Background save already in progress"));
    }
    let path = snapshot_path(ctx);
    match ctx.server.persist.save(ctx.store, &path) {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!("save to {} failed: {e}", path.display());
            Err(err("ERR"))
        }
    }
}

/// BGREWRITEAOF: the AOF's new base is this instant's state, written by a
/// thread while the node serves (see `persist::aof`).
fn bgrewriteaof(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    ctx.server
        .persist
        .rewrite_aof(ctx.store)
        .map_err(|e| err_owned(format!("ERR {e}")))?;
    Ok(Reply::simple(
        "Background append only file rewriting started",
    ))
}

/// CONFIG SET appendonly, called before the new config is installed:
/// `yes` starts a fresh AOF from this instant's state (the base is encoded
/// under the lock, a pause like SAVE's; Redis forks a rewrite) and
/// journals every change from here on; `no` stops journaling, writes and
/// fsyncs what was handed over, and leaves the files.
pub fn switch_aof(ctx: &mut Context, next: &crate::config::Config) -> Result<(), Reply> {
    use persist::aof;
    let wanted = next.get("appendonly").as_deref() == Some("yes");
    let running = ctx.server.persist.aof();
    match (wanted, running) {
        (true, None) => {
            let paths = aof::AofPaths::new(
                &next.get("dir").unwrap_or_default(),
                &next.get("appenddirname").unwrap_or_default(),
                &next.get("appendfilename").unwrap_or_default(),
            );
            let policy = aof::FsyncPolicy::parse(&next.get("appendfsync").unwrap_or_default());
            let base = ctx.server.persist.encode_base(ctx.store);
            let opened = base
                .and_then(|base| aof::create_fresh(&paths, &base))
                .and_then(|manifest| aof::Aof::open(paths.clone(), manifest, policy));
            match opened {
                Ok(aof) => {
                    ctx.store
                        .set_journal(Some(std::sync::Arc::new(aof::AofJournal(aof.clone()))));
                    ctx.server.persist.set_aof(Some(aof));
                    tracing::info!("append-only file turned on: {}", paths.manifest().display());
                    Ok(())
                }
                Err(e) => {
                    tracing::error!("turning the append-only file on failed: {e}");
                    Err(err_owned(format!(
                        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - cannot start the append-only file in {}: {e}",
                        paths.dir.display()
                    )))
                }
            }
        }
        (false, Some(aof)) => {
            ctx.store.set_journal(None);
            ctx.server.persist.set_aof(None);
            if !aof.close() {
                tracing::error!("the append-only file's last records could not be written");
            }
            tracing::info!("append-only file turned off");
            Ok(())
        }
        _ => Ok(()),
    }
}

fn save(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    save_now(ctx)?;
    Ok(Reply::ok())
}

/// `BGSAVE [SCHEDULE]`: SCHEDULE only matters while an AOF rewrite runs,
/// and cordis has none, so both forms start a save at once.
fn bgsave(ctx: &mut Context, args: &mut Args) -> CmdResult {
    if args.remaining() > 1 {
        return Err(err(SYNTAX_ERROR));
    }
    if let Some(word) = args.next_if_any() {
        if !is(word, "schedule") {
            return Err(err(SYNTAX_ERROR));
        }
    }
    let path = snapshot_path(ctx);
    match ctx
        .server
        .persist
        .bgsave(ctx.store, ctx.server.store.clone(), path)
    {
        Ok(()) => Ok(Reply::Simple(Bytes::from_static(
            b"Background saving started",
        ))),
        Err(text) => Err(err_owned(
            text.strip_prefix("ERR ")
                .map_or(format!("ERR {text}"), |t| format!("ERR {t}")),
        )),
    }
}

fn lastsave(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    Ok(Reply::Integer(
        ctx.server.persist.status().last_save_unix as i64,
    ))
}

/// `DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]`: save (unless NOSAVE), then
/// replace the dataset with what the file holds. The node keeps its
/// incarnation: it is the same life, and the file is exactly its state.
pub fn debug_reload(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let mut nosave = false;
    while let Some(word) = args.next_if_any() {
        if is(word, "nosave") {
            nosave = true;
        } else if is(word, "merge") || is(word, "noflush") {
            return Err(err(
                "ERR DEBUG RELOAD MERGE and NOFLUSH are not supported: a cordis snapshot replaces the dataset",
            ));
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if !nosave {
        // A running background save stops: this save replaces it.
        ctx.server.persist.stop_bgsave(ctx.store);
        save_now(ctx)?;
    }
    let path = snapshot_path(ctx);
    let snap = match persist::snapshot::read(&path) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(err(
                "ERR Error trying to load the RDB dump, check server logs.",
            ))
        }
        Err(e) => {
            tracing::error!("DEBUG RELOAD: {e}");
            return Err(err(
                "ERR Error trying to load the RDB dump, check server logs.",
            ));
        }
    };
    let (keys, _) = persist::load_snapshot(ctx.store, snap, true).map_err(|e| {
        tracing::error!("DEBUG RELOAD: {e}");
        err("ERR Error trying to load the RDB dump, check server logs.")
    })?;
    ctx.server
        .persist
        .note_loaded(keys, persist::changes(ctx.store));
    Ok(Reply::ok())
}

/// INFO persistence, Redis's fields in Redis's order.
pub fn info_persistence(ctx: &mut Context, out: &mut String) {
    let s = ctx.server.persist.status();
    let changes = persist::changes(ctx.store).saturating_sub(s.changes_at_last_save);
    let in_progress = s.bgsave_started.is_some();
    let mut put = |line: String| {
        out.push_str(&line);
        out.push_str("\r\n");
    };
    put("loading:0".into());
    put("async_loading:0".into());
    put("current_cow_peak:0".into());
    put("current_cow_size:0".into());
    put("current_cow_size_age:0".into());
    put("current_fork_perc:0.00".into());
    put(format!(
        "current_save_keys_processed:{}",
        ctx.server.persist.bgsave_keys_processed()
    ));
    put(format!(
        "current_save_keys_total:{}",
        if in_progress { s.bgsave_keys_total } else { 0 }
    ));
    put(format!("rdb_changes_since_last_save:{changes}"));
    put(format!("rdb_bgsave_in_progress:{}", in_progress as u8));
    put(format!("rdb_last_save_time:{}", s.last_save_unix));
    put(format!(
        "rdb_last_bgsave_status:{}",
        if s.last_bgsave_ok { "ok" } else { "err" }
    ));
    put(format!("rdb_last_bgsave_time_sec:{}", s.last_bgsave_secs));
    put(format!(
        "rdb_current_bgsave_time_sec:{}",
        s.bgsave_started
            .map_or(-1, |t| t.elapsed().as_secs() as i64)
    ));
    put(format!("rdb_saves:{}", s.saves));
    put("rdb_last_cow_size:0".into());
    put("rdb_last_load_keys_expired:0".into());
    put(format!("rdb_last_load_keys_loaded:{}", s.loaded_keys));
    let aof = ctx.server.persist.aof().map(|a| a.status());
    let a = aof.clone().unwrap_or(persist::aof::AofStatus {
        last_rewrite_secs: -1,
        last_rewrite_ok: true,
        last_write_ok: true,
        ..Default::default()
    });
    let ok = |b: bool| if b { "ok" } else { "err" };
    put(format!("aof_enabled:{}", aof.is_some() as u8));
    put(format!(
        "aof_rewrite_in_progress:{}",
        a.rewrite_started.is_some() as u8
    ));
    put("aof_rewrite_scheduled:0".into());
    put(format!("aof_last_rewrite_time_sec:{}", a.last_rewrite_secs));
    put(format!(
        "aof_current_rewrite_time_sec:{}",
        a.rewrite_started
            .map_or(-1, |t| t.elapsed().as_secs() as i64)
    ));
    put(format!(
        "aof_last_bgrewrite_status:{}",
        ok(a.last_rewrite_ok)
    ));
    put(format!("aof_rewrites:{}", a.rewrites));
    put(format!(
        "aof_rewrites_consecutive_failures:{}",
        a.rewrite_failures_in_a_row
    ));
    put(format!("aof_last_write_status:{}", ok(a.last_write_ok)));
    put("aof_last_cow_size:0".into());
    put("module_fork_in_progress:0".into());
    put("module_fork_last_cow_size:0".into());
    if aof.is_some() {
        // Redis prints these only with the AOF on.
        put(format!("aof_current_size:{}", a.current_size));
        put(format!("aof_base_size:{}", a.base_size));
        put("aof_pending_rewrite:0".into());
        put(format!("aof_buffer_length:{}", a.pending_bytes));
        put("aof_pending_bio_fsync:0".into());
        put("aof_delayed_fsync:0".into());
    }
    let identity = ctx.server.persist.identity();
    put(format!("node_name:{}", identity.name));
    put(format!("node_incarnation:{:08x}", identity.incarnation));
}
