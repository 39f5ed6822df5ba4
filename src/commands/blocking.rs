//! Clients blocked in BLPOP, BRPOP or BLMOVE, and how they are woken.
//!
//! Protocol (all steps that look at list contents hold the store lock, so
//! no push can slip between "nothing to pop" and "registered"):
//!
//! 1. The handler finds nothing and parks ([`super::Context::park`]); the
//!    dispatcher reads the keys to wait on from the command's table row,
//!    and the connection's session, still under the store lock, calls
//!    [`ServerState::block_client`], which records the client's keys here
//!    and as watched keys in the store ([`crate::store::ready::ReadyKeys`]).
//! 2. Any write — a local command or a remote delta applied by
//!    `Store::apply_remote` — that adds list elements to a watched key marks
//!    it ready in the store.
//! 3. Whoever holds the store lock then calls
//!    [`ServerState::signal_ready_keys`]: `dispatch` after every command,
//!    the replication layer after every remote batch. It wakes every client
//!    waiting on a ready key (a `Notify` permit, so a wake-up that comes
//!    before the connection starts waiting is not lost).
//! 4. The woken connection unregisters ([`ServerState::unblock_client`])
//!    and re-runs the command; if another client took the element first it
//!    simply blocks again. Timeouts, disconnects and shutdown unregister too.
//!
//! Several clients blocked on one key are all woken and race for the
//! element under the store lock (Redis serves them in blocking order).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use super::ServerState;
use crate::store::Store;

/// One blocked client's registration.
struct Waiter {
    wake: Arc<Notify>,
    db: usize,
    keys: Vec<Bytes>,
}

/// The node's blocked clients, by client id and by key.
#[derive(Default)]
pub struct BlockedClients {
    by_client: HashMap<u64, Waiter>,
    by_key: HashMap<(usize, Bytes), Vec<u64>>,
}

impl BlockedClients {
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    pub fn contains(&self, client: u64) -> bool {
        self.by_client.contains_key(&client)
    }

    /// The keys `client` waits on (empty when it is not blocked).
    pub fn keys_of(&self, client: u64) -> Vec<Bytes> {
        self.by_client
            .get(&client)
            .map_or_else(Vec::new, |w| w.keys.clone())
    }

    /// What wakes `client`, if it is blocked.
    pub fn waker(&self, client: u64) -> Option<Arc<Notify>> {
        self.by_client.get(&client).map(|w| w.wake.clone())
    }
}

impl ServerState {
    /// Registers `client` as blocked on `keys` of `db`; returns what wakes
    /// it. Call with the store lock held, right after the command that
    /// found nothing (a second registration replaces the first).
    pub fn block_client(
        &self,
        store: &mut Store,
        client: u64,
        db: usize,
        keys: Vec<Bytes>,
    ) -> Arc<Notify> {
        self.unblock_client(store, client);
        let wake = Arc::new(Notify::new());
        let mut blocked = self.blocked.lock();
        for key in &keys {
            store.ready_keys.watch(db, key);
            let waiters = blocked.by_key.entry((db, key.clone())).or_default();
            if !waiters.contains(&client) {
                waiters.push(client);
            }
        }
        blocked.by_client.insert(
            client,
            Waiter {
                wake: wake.clone(),
                db,
                keys,
            },
        );
        wake
    }

    /// Forgets `client`'s registration (woken, timed out, disconnected).
    pub fn unblock_client(&self, store: &mut Store, client: u64) {
        let mut blocked = self.blocked.lock();
        let Some(waiter) = blocked.by_client.remove(&client) else {
            return;
        };
        for key in &waiter.keys {
            store.ready_keys.unwatch(waiter.db, key);
            let entry = (waiter.db, key.clone());
            if let Some(ids) = blocked.by_key.get_mut(&entry) {
                ids.retain(|&id| id != client);
                if ids.is_empty() {
                    blocked.by_key.remove(&entry);
                }
            }
        }
    }

    /// Wakes the clients blocked on keys that received list elements since
    /// the last call. Call with the store lock held after every command
    /// (done by `dispatch`) and after applying remote batches (the
    /// replication layer's job). Cheap when nothing is ready.
    pub fn signal_ready_keys(&self, store: &mut Store) {
        if !store.ready_keys.has_ready() {
            return;
        }
        let ready = store.ready_keys.take();
        let blocked = self.blocked.lock();
        for key in &ready {
            for id in blocked.by_key.get(key).into_iter().flatten() {
                if let Some(waiter) = blocked.by_client.get(id) {
                    waiter.wake.notify_one();
                }
            }
        }
    }
}
