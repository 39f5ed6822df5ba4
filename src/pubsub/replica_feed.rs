//! The clients that attached with SYNC or PSYNC and receive this node's
//! writes as a Redis replication stream: RESP arrays of commands, with a
//! `SELECT` whenever the database changes, and a block of several effects
//! wrapped in `MULTI` … `EXEC`. What the commands are (the effect of each
//! write) is the command layer's business (`commands::propagate`); this
//! type only encodes them and queues them for every attached client, in
//! one order for all of them, as Redis's one replication stream.
//!
//! Each client's queue is bounded by the replica class of
//! `client-output-buffer-limit` (as a MONITOR queue is); one that falls
//! behind is cut off, as Redis drops a replica over its limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use super::push::{Monitors, PushQueue, Receiver};

/// One effect for the stream: the database it applies to and its argv.
pub type Effect = (usize, Vec<Bytes>);

/// The attached replication-stream clients and the stream's state.
#[derive(Default)]
pub struct ReplicaFeeds {
    clients: Monitors,
    /// The database the stream last selected (`None`: the next effect
    /// starts with a SELECT, as after a full sync in Redis).
    selected: Mutex<Option<usize>>,
    /// Bytes of stream sent since start (PSYNC's offset).
    offset: AtomicU64,
}

impl ReplicaFeeds {
    /// No client attached: producers skip all work.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The stream offset a new client starts from.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Attaches `client` (its preamble is already in `queue`). The next
    /// effect starts with a SELECT, since the new client has selected
    /// nothing yet.
    pub fn attach(&self, client: Arc<dyn Receiver>, queue: Arc<PushQueue>) {
        *self.selected.lock() = None;
        self.clients.add(client, queue);
    }

    /// Closes every attached client (the stream cannot go on honestly).
    pub fn cut_off_all(&self) {
        self.clients.cut_off_all();
    }

    pub fn detach(&self, id: u64) {
        self.clients.remove(id);
    }

    /// Sends `effects` to every attached client; more than one leave
    /// inside MULTI … EXEC (selected in the first one's database).
    /// Returns how many clients were cut off for falling behind.
    pub fn send(&self, effects: &[Effect]) -> usize {
        if effects.is_empty() || self.is_empty() {
            return 0;
        }
        let mut out = BytesMut::new();
        let mut selected = self.selected.lock();
        let wrap = effects.len() > 1;
        if wrap {
            select(&mut out, &mut selected, effects[0].0);
            encode(&mut out, &[Bytes::from_static(b"MULTI")]);
        }
        for (db, argv) in effects {
            select(&mut out, &mut selected, *db);
            encode(&mut out, argv);
        }
        if wrap {
            encode(&mut out, &[Bytes::from_static(b"EXEC")]);
        }
        self.offset.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.clients.feed(out.freeze())
    }
}

impl ReplicaFeeds {
    /// A `PING` in the stream (no database), so the other end sees the
    /// link alive while nothing is written.
    pub fn ping(&self) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut out = BytesMut::new();
        let _selected = self.selected.lock();
        encode(&mut out, &[Bytes::from_static(b"PING")]);
        self.offset.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.clients.feed(out.freeze())
    }
}

fn select(out: &mut BytesMut, selected: &mut Option<usize>, db: usize) {
    if *selected != Some(db) {
        encode(
            out,
            &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
        );
        *selected = Some(db);
    }
}

/// A command as a RESP array of bulk strings.
pub fn encode(out: &mut BytesMut, argv: &[Bytes]) {
    out.put_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for arg in argv {
        out.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_encodes_as_an_array_of_bulk_strings() {
        let mut out = BytesMut::new();
        encode(
            &mut out,
            &[Bytes::from_static(b"SET"), Bytes::from_static(b"k")],
        );
        assert_eq!(&out[..], b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n");
    }
}
