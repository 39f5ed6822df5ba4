//! Client-side caching (CLIENT TRACKING): which client may hold which key
//! in a near cache, and the invalidations sent when a key changes — by any
//! client of this node, by a peer's delta, by expiry or eviction, or by a
//! flush.
//!
//! Two modes, as in Redis. In the default mode the keys a tracking client
//! reads are remembered (key → client ids); the first change to such a key
//! sends that client one invalidation and forgets the entry. In BCAST mode
//! a client names key prefixes instead, and every changed key under one of
//! them is sent, gathered per prefix for each command (or peer batch), so
//! an MSET of three keys is one message. A client receives invalidations as
//! RESP3 `invalidate` pushes, or through another client (REDIRECT): as
//! pushes if that one speaks RESP3, else as messages on
//! `__redis__:invalidate` if it subscribes there.
//!
//! Invalidations for the client whose command caused them are sent after
//! that command's reply (Redis does the same, so a reply is never split by
//! a push); NOLOOP clients get none for their own changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::channels::encode_push;
use super::push::Receiver;
use crate::protocol::{Reply, RespVersion};

/// Finds a connected client by id (a redirect target).
pub trait Directory: Send + Sync {
    fn find(&self, id: u64) -> Option<Arc<dyn Receiver>>;
}

/// A client's CLIENT TRACKING options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mode {
    /// Client id invalidations go to (0: the client itself).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// BCAST prefixes (the empty prefix: every key).
    pub prefixes: Vec<Bytes>,
}

struct Tracked {
    client: Arc<dyn Receiver>,
    mode: Mode,
    /// The redirect target was gone when an invalidation was due.
    broken: bool,
}

/// What an invalidation says.
#[derive(Clone)]
enum Payload {
    Keys(Vec<Bytes>),
    /// Every key (after a flush): a null.
    All,
}

#[derive(Default)]
struct Prefix {
    clients: HashSet<u64>,
    /// Keys changed since the last broadcast, with the client that changed
    /// each (0: none, e.g. a peer or expiry), for NOLOOP.
    pending: Vec<(Bytes, u64)>,
}

#[derive(Default)]
struct State {
    clients: HashMap<u64, Tracked>,
    /// Default-mode table: key → ids of the clients that read it.
    keys: HashMap<Bytes, HashSet<u64>>,
    /// Every (key, client) pair in `keys`.
    items: usize,
    prefixes: BTreeMap<Bytes, Prefix>,
    /// Invalidations owed to the client running the current command, sent
    /// after its reply.
    deferred: Vec<(u64, Payload)>,
}

/// The node's tracking tables.
pub struct Tracking {
    state: Mutex<State>,
    /// Tracking clients, so nodes with none skip everything at one load.
    active: AtomicUsize,
    /// The client whose command is running (0: none), set by the session
    /// under the store lock, as Redis's `current_client`.
    current: AtomicU64,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicUsize,
    directory: Arc<dyn Directory>,
}

impl Tracking {
    pub fn new(directory: Arc<dyn Directory>, max_keys: usize) -> Self {
        Tracking {
            state: Mutex::new(State::default()),
            active: AtomicUsize::new(0),
            current: AtomicU64::new(0),
            max_keys: AtomicUsize::new(max_keys),
            directory,
        }
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// `tracking-table-max-keys` changed: the table is trimmed to it now.
    pub fn set_max_keys(&self, max: usize) {
        self.max_keys.store(max, Ordering::Relaxed);
        if self.is_active() {
            self.trim(&mut self.state.lock());
        }
    }

    /// Over the limit, keys are dropped from the table and their clients
    /// told (as if the key changed, whoever asked), so no client keeps a
    /// key nobody would invalidate.
    fn trim(&self, state: &mut State) {
        let max = self.max_keys.load(Ordering::Relaxed);
        if max == 0 {
            return;
        }
        while state.keys.len() > max {
            let Some(victim) = state.keys.keys().next().cloned() else {
                break;
            };
            self.invalidate_in(state, &victim, None);
        }
    }

    /// The client whose command runs now (0: none).
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// Marks `id` as the client whose command runs now (0 when done).
    pub fn set_current(&self, id: u64) {
        self.current.store(id, Ordering::Relaxed);
    }

    /// Keys tracked in the default-mode table (INFO `tracking_total_keys`)
    /// and pairs of key and client (`tracking_total_items`).
    pub fn totals(&self) -> (usize, usize, usize) {
        let state = self.state.lock();
        (state.keys.len(), state.items, state.prefixes.len())
    }

    pub fn clients(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// The mode a client tracks with, and whether its redirect is broken.
    pub fn mode_of(&self, id: u64) -> Option<(Mode, bool)> {
        let state = self.state.lock();
        state.clients.get(&id).map(|t| (t.mode.clone(), t.broken))
    }

    /// CLIENT TRACKING ON. A client already tracking keeps its BCAST
    /// prefixes and adds the new ones (the caller checked the options).
    pub fn enable(&self, client: Arc<dyn Receiver>, mut mode: Mode) {
        let id = client.id();
        let mut state = self.state.lock();
        let previous = state.clients.remove(&id);
        if previous.is_none() {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        if mode.bcast {
            if mode.prefixes.is_empty() {
                mode.prefixes.push(Bytes::new());
            }
            let mut prefixes = previous.map(|p| p.mode.prefixes).unwrap_or_default();
            for prefix in &mode.prefixes {
                if !prefixes.contains(prefix) {
                    prefixes.push(prefix.clone());
                }
            }
            for prefix in &prefixes {
                state
                    .prefixes
                    .entry(prefix.clone())
                    .or_default()
                    .clients
                    .insert(id);
            }
            prefixes.sort();
            mode.prefixes = prefixes;
        }
        state.clients.insert(
            id,
            Tracked {
                client,
                mode,
                broken: false,
            },
        );
    }

    /// CLIENT TRACKING OFF, RESET, or the client left. Its entries in the
    /// key table are dropped lazily (on the key's next change), as Redis.
    pub fn disable(&self, id: u64) {
        let mut state = self.state.lock();
        let Some(tracked) = state.clients.remove(&id) else {
            return;
        };
        self.active.fetch_sub(1, Ordering::Relaxed);
        for prefix in &tracked.mode.prefixes {
            if let Some(p) = state.prefixes.get_mut(prefix) {
                p.clients.remove(&id);
                if p.clients.is_empty() {
                    state.prefixes.remove(prefix);
                }
            }
        }
        state.deferred.retain(|(target, _)| *target != id);
    }

    /// After a read-only command of a default-mode tracking client: its
    /// keys are remembered, and the table is trimmed to its limit.
    pub fn remember<'k>(&self, id: u64, keys: impl IntoIterator<Item = &'k Bytes>) {
        let mut state = self.state.lock();
        for key in keys {
            if state.keys.entry(key.clone()).or_default().insert(id) {
                state.items += 1;
            }
        }
        self.trim(&mut state);
    }

    /// A key changed on this node.
    pub fn key_changed(&self, key: &[u8]) {
        if !self.is_active() {
            return;
        }
        let mut state = self.state.lock();
        let current = self.current.load(Ordering::Relaxed);
        self.invalidate_in(&mut state, key, Some(current));
    }

    /// Sends the invalidations `key` is owed. `changed_by`: the client
    /// whose command changed it (0: none), or `None` when the key did not
    /// change but leaves the table (no broadcast, no NOLOOP).
    fn invalidate_in(&self, state: &mut State, key: &[u8], changed_by: Option<u64>) {
        let current = changed_by.unwrap_or(0);
        if changed_by.is_some() && !state.prefixes.is_empty() {
            for (prefix, p) in state.prefixes.iter_mut() {
                if key.starts_with(prefix) {
                    p.pending.push((Bytes::copy_from_slice(key), current));
                }
            }
        }
        let Some(ids) = state.keys.remove(key) else {
            return;
        };
        state.items -= ids.len();
        let key = Bytes::copy_from_slice(key);
        for id in ids {
            let Some(t) = state.clients.get(&id) else {
                continue;
            };
            if t.mode.bcast || (t.mode.noloop && id == current) {
                continue;
            }
            let payload = Payload::Keys(vec![key.clone()]);
            if id == current {
                state.deferred.push((id, payload));
            } else {
                self.send(state, id, payload);
            }
        }
    }

    /// FLUSHALL / FLUSHDB (here or from a peer): every tracking client is
    /// told that every key is invalid, and the table is emptied.
    pub fn flushed(&self) {
        if !self.is_active() {
            return;
        }
        let mut state = self.state.lock();
        state.keys.clear();
        state.items = 0;
        let current = self.current.load(Ordering::Relaxed);
        let ids: Vec<u64> = state.clients.keys().copied().collect();
        for id in ids {
            if id == current {
                state.deferred.push((id, Payload::All));
            } else {
                self.send(&mut state, id, Payload::All);
            }
        }
    }

    /// Sends what BCAST clients are owed for the keys changed since the
    /// last call: one message per prefix and client.
    pub fn broadcast(&self) {
        if !self.is_active() {
            return;
        }
        let mut state = self.state.lock();
        let mut due = Vec::new();
        for p in state.prefixes.values_mut() {
            if p.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut p.pending);
            for &id in &p.clients {
                due.push((id, pending.clone()));
            }
        }
        let current = self.current.load(Ordering::Relaxed);
        for (id, pending) in due {
            let noloop = state.clients.get(&id).is_some_and(|t| t.mode.noloop);
            let keys: Vec<Bytes> = pending
                .into_iter()
                .filter(|(_, by)| !(noloop && *by == id))
                .map(|(key, _)| key)
                .collect();
            if keys.is_empty() {
                continue;
            }
            if id == current {
                state.deferred.push((id, Payload::Keys(keys)));
            } else {
                self.send(&mut state, id, Payload::Keys(keys));
            }
        }
    }

    /// After client `id`'s reply: the invalidations its own command caused.
    pub fn release_deferred(&self, id: u64) {
        let mut state = self.state.lock();
        if state.deferred.is_empty() {
            return;
        }
        let owed: Vec<(u64, Payload)> = std::mem::take(&mut state.deferred);
        for (target, payload) in owed {
            if target == id {
                self.send(&mut state, target, payload);
            } else {
                state.deferred.push((target, payload));
            }
        }
    }

    /// Delivers one invalidation for tracking client `id`.
    fn send(&self, state: &mut State, id: u64, payload: Payload) {
        let Some(t) = state.clients.get_mut(&id) else {
            return;
        };
        let (receiver, redirected) = if t.mode.redirect == 0 {
            (t.client.clone(), false)
        } else {
            match self.directory.find(t.mode.redirect) {
                Some(target) => (target, true),
                None => {
                    t.broken = true;
                    if t.client.resp() == RespVersion::Resp3 {
                        let frame = encode_push(
                            RespVersion::Resp3,
                            vec![
                                Reply::Bulk(Bytes::from_static(b"tracking-redir-broken")),
                                Reply::Integer(t.mode.redirect as i64),
                            ],
                        );
                        push_to(&*t.client, frame);
                    }
                    return;
                }
            }
        };
        let value = match payload {
            Payload::Keys(keys) => Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
            Payload::All => Reply::Nil,
        };
        let frame = match receiver.resp() {
            RespVersion::Resp3 => encode_push(
                RespVersion::Resp3,
                vec![Reply::Bulk(Bytes::from_static(b"invalidate")), value],
            ),
            // RESP2 has no pushes: only a redirect target that listens on
            // the invalidation channel can be told.
            RespVersion::Resp2 if redirected && receiver.subscribed() => encode_push(
                RespVersion::Resp2,
                vec![
                    Reply::Bulk(Bytes::from_static(b"message")),
                    Reply::Bulk(Bytes::from_static(b"__redis__:invalidate")),
                    value,
                ],
            ),
            RespVersion::Resp2 => return,
        };
        push_to(&*receiver, frame);
    }
}

fn push_to(receiver: &dyn Receiver, frame: Bytes) {
    let queue = receiver.push_queue();
    if queue.push(frame, Instant::now()) == super::push::Pushed::Overflowed {
        receiver.cut_off();
    }
    receiver.set_queued_bytes(queue.queued_bytes());
}
