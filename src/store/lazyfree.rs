//! Lazy freeing: memory that a command unlinked from the keyspace (a whole
//! database after FLUSHDB/FLUSHALL ASYNC, or with `lazyfree-lazy-user-flush
//! yes` the plain forms) is dropped on a background thread, off the serving
//! path, as Redis's lazyfree thread does. The command itself only swaps the
//! table out under the store lock; what peers observe (the flush op) is the
//! same whichever way the memory is freed.
//!
//! One process-wide worker, started on first use. It counts the objects
//! queued and not yet freed (INFO `lazyfree_pending_objects`) and those
//! freed so far (`lazyfreed_objects`), and once its queue is empty hands
//! the freed memory back to the OS ([`super::memory::release_free_memory`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

/// Something to drop, and how many objects (keys) it counts for.
struct Job {
    value: Box<dyn Send>,
    objects: usize,
}

static PENDING: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);
/// The worker's queue; `None` if its thread could not be started.
static WORKER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();

fn worker() -> Option<&'static Mutex<Sender<Job>>> {
    WORKER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("cordis-lazyfree".into())
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        drop(job.value);
                        FREED.fetch_add(job.objects as u64, Ordering::Relaxed);
                        let left = PENDING.fetch_sub(job.objects, Ordering::AcqRel) - job.objects;
                        if left == 0 {
                            super::memory::release_free_memory();
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(Mutex::new(tx)),
                Err(e) => {
                    tracing::warn!("lazyfree thread not started, freeing inline: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Drops `value` on the lazyfree thread; `objects` is what it counts for in
/// `lazyfree_pending_objects` until then. Frees inline if the thread could
/// not be started.
pub fn free_later<T: Send + 'static>(value: T, objects: usize) {
    let Some(worker) = worker() else {
        drop(value);
        return;
    };
    PENDING.fetch_add(objects, Ordering::AcqRel);
    let job = Job {
        value: Box::new(value),
        objects,
    };
    let sender = worker.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(mpsc::SendError(job)) = sender.send(job) {
        drop(sender);
        PENDING.fetch_sub(job.objects, Ordering::AcqRel);
        drop(job.value);
    }
}

/// After a large synchronous free: hands the freed memory back to the OS
/// from the lazyfree thread (a purge of hundreds of MB takes a while).
pub fn release_memory_later() {
    free_later((), 0);
}

/// Objects queued for the lazyfree thread and not yet freed.
pub fn pending_objects() -> usize {
    PENDING.load(Ordering::Acquire)
}

/// Objects the lazyfree thread has freed since the process started.
pub fn freed_objects() -> u64 {
    FREED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT: `lazyfreed_objects` starts again from 0 (objects
/// still pending are counted when freed).
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_queued_value_is_dropped_on_the_worker() {
        struct Flag(Arc<Mutex<Option<std::thread::ThreadId>>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(std::thread::current().id());
            }
        }
        let dropped_on = Arc::new(Mutex::new(None));
        free_later(Flag(dropped_on.clone()), 3);
        let deadline = Instant::now() + Duration::from_secs(10);
        while dropped_on.lock().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the lazyfree thread never dropped it"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let thread = dropped_on.lock().unwrap().unwrap();
        assert_ne!(thread, std::thread::current().id());
    }
}
