//! Data pushed to a client that did not ask for it at that moment: MONITOR
//! lines now, Pub/Sub messages later. Each receiving client has one bounded
//! [`PushQueue`]; producers (other clients' sessions) append to it without
//! waiting, and the receiver's connection task drains it into its socket as
//! it can. A receiver that does not keep up is cut off at its queue's
//! [`OutputLimit`] (Redis's `client-output-buffer-limit` rule: at the hard
//! limit at once, or once the soft limit has held for its seconds); the
//! producers and every other client are unaffected.
//!
//! Which limit: Redis 7.0 keeps MONITOR clients in the *normal* class for
//! output limits (`getClientType` reports a monitor as normal), and the
//! normal class is unlimited by default (`0 0 0`), so a stuck monitor in
//! Redis grows without bound. cordis does not allow that: a monitor queue
//! uses the replica class of `client-output-buffer-limit` (default `256mb
//! 64mb 60`, [`MONITOR_LIMIT`]); every other queue (a subscriber's, and a
//! RESP3 tracking client's invalidations) the pubsub class (default `32mb
//! 8mb 60`, [`PUBSUB_LIMIT`]). A CONFIG SET applies to existing queues
//! from their next push on.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tracing::warn;

/// One `client-output-buffer-limit` class: `hard` bytes (0 = none), or
/// `soft` bytes (0 = none) held for `soft_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: usize,
    pub soft: usize,
    pub soft_seconds: u64,
}

const MB: usize = 1024 * 1024;

/// Redis's replica-class default, applied to MONITOR queues (see the
/// module docs for why not the normal class).
pub const MONITOR_LIMIT: OutputLimit = OutputLimit {
    hard: 256 * MB,
    soft: 64 * MB,
    soft_seconds: 60,
};

/// Redis's pubsub-class default.
pub const PUBSUB_LIMIT: OutputLimit = OutputLimit {
    hard: 32 * MB,
    soft: 8 * MB,
    soft_seconds: 60,
};

/// What happened to a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// This push took the queue over its limit: the receiver must be cut
    /// off (reported once; later pushes are [`Pushed::Dropped`]).
    Overflowed,
    /// The queue was already cut off; the item was dropped.
    Dropped,
}

struct Inner {
    limit: OutputLimit,
    items: VecDeque<Bytes>,
    bytes: usize,
    soft_since: Option<Instant>,
    overflowed: bool,
}

/// A bounded queue of encoded frames for one receiving client.
pub struct PushQueue {
    inner: Mutex<Inner>,
    /// The receiver's attention signal (its connection task waits on it).
    wake: Arc<Notify>,
}

impl PushQueue {
    pub fn new(limit: OutputLimit, wake: Arc<Notify>) -> Arc<Self> {
        Arc::new(PushQueue {
            inner: Mutex::new(Inner {
                limit,
                items: VecDeque::new(),
                bytes: 0,
                soft_since: None,
                overflowed: false,
            }),
            wake,
        })
    }

    /// Appends `item` (never waits). Over the limit the queue is emptied
    /// and marked cut off, so its memory is released at once.
    pub fn push(&self, item: Bytes, now: Instant) -> Pushed {
        let mut q = self.inner.lock();
        if q.overflowed {
            return Pushed::Dropped;
        }
        q.bytes += item.len();
        q.items.push_back(item);
        let limit = q.limit;
        let hard = limit.hard > 0 && q.bytes >= limit.hard;
        let soft = if limit.soft > 0 && q.bytes >= limit.soft {
            let since = *q.soft_since.get_or_insert(now);
            now.saturating_duration_since(since) > Duration::from_secs(limit.soft_seconds)
        } else {
            q.soft_since = None;
            false
        };
        let result = if hard || soft {
            q.overflowed = true;
            q.items.clear();
            q.bytes = 0;
            Pushed::Overflowed
        } else {
            Pushed::Queued
        };
        drop(q);
        self.wake.notify_one();
        result
    }

    /// Moves queued frames into `out` until it holds about `max` bytes;
    /// returns how many bytes moved.
    pub fn drain_into(&self, out: &mut BytesMut, max: usize) -> usize {
        let mut q = self.inner.lock();
        let mut moved = 0;
        while out.len() < max {
            let Some(item) = q.items.pop_front() else {
                break;
            };
            q.bytes -= item.len();
            moved += item.len();
            out.extend_from_slice(&item);
        }
        if q.limit_reset_due(q.limit) {
            q.soft_since = None;
        }
        moved
    }

    /// A new limit (CONFIG SET client-output-buffer-limit), checked from
    /// the next push on.
    pub fn set_limit(&self, limit: OutputLimit) {
        self.inner.lock().limit = limit;
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.inner.lock().items.is_empty()
    }

    /// Whether the queue passed its limit (its receiver must go).
    pub fn overflowed(&self) -> bool {
        self.inner.lock().overflowed
    }
}

impl Inner {
    fn limit_reset_due(&self, limit: OutputLimit) -> bool {
        limit.soft == 0 || self.bytes < limit.soft
    }
}

/// What the push side needs of a receiving client, so this module knows
/// nothing of the command layer's client types: who it is, the signal its
/// connection task waits on, where to report its queued bytes (CLIENT
/// LIST's `omem`), and how to cut it off.
pub trait Receiver: Send + Sync {
    fn id(&self) -> u64;
    fn addr(&self) -> &str;
    fn attention(&self) -> Arc<Notify>;
    fn set_queued_bytes(&self, bytes: usize);
    /// Closes the client's connection (its task notices on `attention`).
    fn cut_off(&self);
    /// The client's push queue, made (with the pubsub class's limit) if it
    /// has none: another client's invalidations may be redirected to it.
    fn push_queue(&self) -> Arc<PushQueue>;
    /// The protocol the client speaks now.
    fn resp(&self) -> crate::protocol::RespVersion;
    /// Whether it subscribes to any channel, pattern or shard channel.
    fn subscribed(&self) -> bool;
}

/// A client in MONITOR mode.
struct Monitor {
    client: Arc<dyn Receiver>,
    queue: Arc<PushQueue>,
}

/// The node's MONITOR clients. Feeding is one atomic load when there are
/// none.
#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: RwLock<Vec<Monitor>>,
}

impl Monitors {
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Adds `client`, whose lines go to `queue` (its connection drains it).
    pub fn add(&self, client: Arc<dyn Receiver>, queue: Arc<PushQueue>) {
        let mut list = self.list.write();
        if list.iter().any(|m| m.client.id() == client.id()) {
            return;
        }
        list.push(Monitor { client, queue });
        self.count.store(list.len(), Ordering::Relaxed);
    }

    pub fn remove(&self, id: u64) {
        let mut list = self.list.write();
        list.retain(|m| m.client.id() != id);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Closes every client in the list and empties it.
    pub fn cut_off_all(&self) {
        let mut list = self.list.write();
        for m in list.drain(..) {
            m.client.cut_off();
        }
        self.count.store(0, Ordering::Relaxed);
    }

    /// Sends `line` to every monitor; a monitor whose queue overflows is
    /// told to close. Returns how many were cut off.
    pub fn feed(&self, line: Bytes) -> usize {
        let now = Instant::now();
        let mut cut = Vec::new();
        for m in self.list.read().iter() {
            if m.queue.push(line.clone(), now) == Pushed::Overflowed {
                m.client.set_queued_bytes(0);
                cut.push(m.client.clone());
            } else {
                m.client.set_queued_bytes(m.queue.queued_bytes());
            }
        }
        for client in &cut {
            warn!(
                client = client.id(),
                addr = %client.addr(),
                "closing MONITOR client: output queue over its limit"
            );
            client.cut_off();
            self.remove(client.id());
        }
        cut.len()
    }
}

/// MONITOR's line for a command: `+<secs>.<micros> [<db> <addr>] "arg" ...`
/// with Redis's quoting, and AUTH / HELLO AUTH secrets shown as
/// `(redacted)`.
pub fn monitor_line(db: usize, origin: &str, argv: &[Bytes], now: SystemTime) -> Bytes {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = String::with_capacity(64 + argv.iter().map(|a| a.len() + 3).sum::<usize>());
    let _ = write!(
        out,
        "+{}.{:06} [{db} {origin}]",
        since.as_secs(),
        since.subsec_micros()
    );
    let redacted = redacted_positions(argv);
    for (i, arg) in argv.iter().enumerate() {
        out.push(' ');
        if redacted.contains(&i) {
            out.push_str("\"(redacted)\"");
        } else {
            quote_into(&mut out, arg);
        }
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

/// Which arguments MONITOR and the slow log hide, as Redis redacts them:
/// every argument of AUTH, the user and password after HELLO's AUTH, the
/// value of CONFIG SET requirepass / masterauth, every ACL SETUSER rule,
/// and MIGRATE's AUTH / AUTH2 credentials.
pub fn redacted_positions(argv: &[Bytes]) -> Vec<usize> {
    let word = |i: usize| argv.get(i).map(|a| a.to_ascii_lowercase());
    let mut out = Vec::new();
    match word(0).as_deref() {
        Some(b"auth") => out.extend(1..argv.len()),
        Some(b"hello") => {
            let mut i = 2;
            while i < argv.len() {
                if argv[i].eq_ignore_ascii_case(b"auth") && i + 2 < argv.len() {
                    out.extend([i + 1, i + 2]);
                    i += 3;
                } else if argv[i].eq_ignore_ascii_case(b"setname") {
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        Some(b"config") if word(1).as_deref() == Some(b"set") => {
            let mut i = 3;
            while i < argv.len() {
                let name = &argv[i - 1];
                if name.eq_ignore_ascii_case(b"requirepass")
                    || name.eq_ignore_ascii_case(b"masterauth")
                {
                    out.push(i);
                }
                i += 2;
            }
        }
        Some(b"acl") if word(1).as_deref() == Some(b"setuser") => out.extend(2..argv.len()),
        Some(b"migrate") => {
            let mut i = 6;
            while i < argv.len() {
                if argv[i].eq_ignore_ascii_case(b"auth") && i + 1 < argv.len() {
                    out.push(i + 1);
                    i += 2;
                } else if argv[i].eq_ignore_ascii_case(b"auth2") && i + 2 < argv.len() {
                    out.extend([i + 1, i + 2]);
                    i += 3;
                } else if argv[i].eq_ignore_ascii_case(b"keys") {
                    break;
                } else {
                    i += 1;
                }
            }
        }
        _ => {}
    }
    out
}

/// Redis's `sdscatrepr`: a double-quoted string with `\n`, `\r`, `\t`,
/// `\a`, `\b`, `\\`, `\"` escaped and other non-printables as `\xHH`.
pub fn quote_into(out: &mut String, arg: &[u8]) {
    out.push('"');
    for &b in arg {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<Bytes> {
        w.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn a_monitor_line_quotes_like_redis() {
        let at = UNIX_EPOCH + Duration::from_micros(1_339_518_083_107_412);
        let line = monitor_line(0, "127.0.0.1:60866", &words(&["keys", "*"]), at);
        assert_eq!(
            &line[..],
            b"+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n"
        );
        let line = monitor_line(3, "a:1", &words(&["set", "k", "a\"b\n\x01"]), at);
        assert!(line.ends_with(b" \"set\" \"k\" \"a\\\"b\\n\\x01\"\r\n"));
    }

    #[test]
    fn auth_secrets_are_redacted() {
        let at = UNIX_EPOCH;
        let line = monitor_line(0, "x", &words(&["AUTH", "u", "p"]), at);
        assert!(line.ends_with(b"\"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"));
        let line = monitor_line(0, "x", &words(&["hello", "2", "AUTH", "u", "p"]), at);
        assert!(line.ends_with(b"\"hello\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"));
    }

    #[test]
    fn a_queue_is_cut_off_at_its_hard_limit_and_frees_its_memory() {
        let limit = OutputLimit {
            hard: 100,
            soft: 0,
            soft_seconds: 0,
        };
        let q = PushQueue::new(limit, Arc::new(Notify::new()));
        let now = Instant::now();
        for _ in 0..9 {
            assert_eq!(q.push(Bytes::from(vec![b'x'; 10]), now), Pushed::Queued);
        }
        assert_eq!(q.push(Bytes::from(vec![b'x'; 10]), now), Pushed::Overflowed);
        assert_eq!(q.queued_bytes(), 0);
        assert_eq!(q.push(Bytes::from_static(b"y"), now), Pushed::Dropped);
        assert!(q.overflowed());
    }

    #[test]
    fn the_soft_limit_must_hold_for_its_seconds() {
        let limit = OutputLimit {
            hard: 0,
            soft: 10,
            soft_seconds: 1,
        };
        let q = PushQueue::new(limit, Arc::new(Notify::new()));
        let t0 = Instant::now();
        assert_eq!(q.push(Bytes::from(vec![0; 20]), t0), Pushed::Queued);
        assert_eq!(
            q.push(Bytes::from(vec![0; 1]), t0 + Duration::from_millis(500)),
            Pushed::Queued
        );
        let mut out = BytesMut::new();
        q.drain_into(&mut out, 1 << 20);
        assert_eq!(out.len(), 21);
        // Below the soft limit again: the clock restarts.
        assert_eq!(
            q.push(Bytes::from(vec![0; 20]), t0 + Duration::from_secs(2)),
            Pushed::Queued
        );
        assert_eq!(
            q.push(Bytes::from(vec![0; 1]), t0 + Duration::from_millis(3100)),
            Pushed::Overflowed
        );
    }
}
