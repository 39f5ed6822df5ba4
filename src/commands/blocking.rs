//! Clients blocked in a blocking pop (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH,
//! BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP), and how they are served: in the
//! order they blocked, one command run each, inside the write that made a
//! key ready — as Redis does.
//!
//! Protocol (every step that looks at key contents holds the store lock,
//! so no push can slip between "nothing to pop" and "registered"):
//!
//! 1. The handler finds nothing and parks ([`super::Context::park`]); the
//!    dispatcher reads the keys to wait on from the command's table row
//!    (or its `numkeys`), and the connection's session, still under the
//!    store lock, calls [`ServerState::block_client`] with the request,
//!    which is recorded here (per key, in blocking order) and as watched
//!    keys in the store ([`crate::store::ready::ReadyKeys`]).
//! 2. Any write — a local command, a whole EXEC, or a remote batch applied
//!    by `Store::apply_remote` — that adds list or sorted-set elements to a
//!    watched key marks it ready in the store.
//! 3. Whoever holds the store lock then calls
//!    [`ServerState::signal_ready_keys`]: `dispatch` after every command,
//!    the replication layer after every remote batch. For each ready key,
//!    the clients blocked on it are taken in blocking order and their
//!    parked command is run again right there, on their behalf. One that
//!    is answered is unregistered, its reply kept here and its connection
//!    woken; one that finds nothing again keeps its place. Writes those
//!    runs make (BLMOVE's push) mark keys ready too, and are served in the
//!    same pass, so chains and cycles of BLMOVEs behave as in Redis.
//! 4. The woken connection collects the reply ([`ServerState::finish_wait`])
//!    and sends it. Timeouts, CLIENT UNBLOCK, disconnects and shutdown
//!    unregister too; a reply served in the same instant as a timeout wins
//!    over it (the element is already gone from the key).
//!
//! A client is only served from a key of the type its command pops (a
//! BLPOP client is not woken by a ZADD on its key), as in Redis.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

use super::{ClientAction, ClientInfo, ClientState, Context, ServerState};
use crate::crdt::Kind;
use crate::protocol::{Reply, RespVersion};
use crate::store::Store;

/// The parked request of a blocked client, enough to run it again on its
/// behalf.
#[derive(Clone)]
pub struct ParkedRequest {
    pub argv: Vec<Bytes>,
    pub info: Arc<ClientInfo>,
    pub resp: RespVersion,
}

/// A blocked command answered while its connection waited.
pub struct Served {
    pub reply: Reply,
    /// The local seq its write produced (for a later WAIT).
    pub last_write_seq: u64,
}

/// One blocked client's registration.
struct Waiter {
    wake: Arc<Notify>,
    db: usize,
    keys: Vec<Bytes>,
    request: ParkedRequest,
}

/// The node's blocked clients, by client id and by key (each key's list in
/// blocking order), and replies served but not yet collected.
#[derive(Default)]
pub struct BlockedClients {
    by_client: HashMap<u64, Waiter>,
    by_key: HashMap<(usize, Bytes), Vec<u64>>,
    served: HashMap<u64, Served>,
    /// Set while [`ServerState::signal_ready_keys`] runs blocked commands,
    /// so the dispatches it makes do not recurse into it.
    serving: bool,
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

    /// Whether anything is kept for `client`: a registration or a reply
    /// not yet collected.
    pub fn holds(&self, client: u64) -> bool {
        self.by_client.contains_key(&client) || self.served.contains_key(&client)
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

    /// Removes `client`'s registration from both indexes.
    fn remove(&mut self, store: &mut Store, client: u64) -> Option<Waiter> {
        let waiter = self.by_client.remove(&client)?;
        for key in &waiter.keys {
            store.ready_keys.unwatch(waiter.db, key);
            let entry = (waiter.db, key.clone());
            if let Some(ids) = self.by_key.get_mut(&entry) {
                ids.retain(|&id| id != client);
                if ids.is_empty() {
                    self.by_key.remove(&entry);
                }
            }
        }
        Some(waiter)
    }
}

/// What a blocked XREADGROUP gets when its stream is deleted or replaced.
const STREAM_GONE: &str = "UNBLOCKED the stream key no longer exists";

/// The type of key a blocked command pops from, by its family.
fn pops_from(argv: &[Bytes]) -> Option<Kind> {
    match super::lookup(argv.first()?)?.group {
        "list" => Some(Kind::List),
        "sorted-set" => Some(Kind::ZSet),
        "stream" => Some(Kind::Stream),
        _ => None,
    }
}

impl ServerState {
    /// Registers `client` as blocked on `keys` of `db` with its parked
    /// `request`; returns what wakes it. Call with the store lock held,
    /// right after the command that found nothing (a second registration
    /// replaces the first and goes to the back of the queue).
    pub fn block_client(
        &self,
        store: &mut Store,
        client: u64,
        db: usize,
        keys: Vec<Bytes>,
        request: ParkedRequest,
    ) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let mut blocked = self.blocked.lock();
        blocked.remove(store, client);
        blocked.served.remove(&client);
        for key in &keys {
            let waiters = blocked.by_key.entry((db, key.clone())).or_default();
            if !waiters.contains(&client) {
                store.ready_keys.watch(db, key);
                waiters.push(client);
            }
        }
        let mut unique = keys;
        let mut seen = std::collections::HashSet::new();
        unique.retain(|k| seen.insert(k.clone()));
        blocked.by_client.insert(
            client,
            Waiter {
                wake: wake.clone(),
                db,
                keys: unique,
                request,
            },
        );
        wake
    }

    /// Forgets everything kept for `client` (timed out, unblocked,
    /// disconnected), including a reply it never collected.
    pub fn unblock_client(&self, store: &mut Store, client: u64) {
        let mut blocked = self.blocked.lock();
        blocked.remove(store, client);
        blocked.served.remove(&client);
    }

    /// Ends `client`'s wait: unregisters it and hands over the reply its
    /// command was served with, if it was.
    pub fn finish_wait(&self, store: &mut Store, client: u64) -> Option<Served> {
        let mut blocked = self.blocked.lock();
        blocked.remove(store, client);
        blocked.served.remove(&client)
    }

    /// Serves the clients blocked on keys that received elements since the
    /// last call, in blocking order, until no key is ready. Call with the
    /// store lock held after every command (done by `dispatch`) and after
    /// applying remote batches (the replication layer's job). Cheap when
    /// nothing is ready.
    pub fn signal_ready_keys(&self, store: &mut Store) {
        if !store.ready_keys.has_ready() {
            return;
        }
        {
            let mut blocked = self.blocked.lock();
            if blocked.serving {
                return; // a served command's own dispatch: the outer pass continues
            }
            blocked.serving = true;
        }
        while store.ready_keys.has_ready() {
            for (db, key) in store.ready_keys.take() {
                self.serve_key(store, db, &key);
            }
        }
        self.blocked.lock().serving = false;
    }

    /// Ends `id`'s wait with `reply` without running its command.
    fn serve_now(&self, store: &mut Store, id: u64, reply: Reply) {
        let mut blocked = self.blocked.lock();
        if let Some(waiter) = blocked.remove(store, id) {
            blocked.served.insert(
                id,
                Served {
                    reply,
                    last_write_seq: 0,
                },
            );
            waiter.wake.notify_one();
        }
    }

    /// Runs, in blocking order, the commands of the clients blocked on
    /// `key`, while it holds elements of the type they pop.
    fn serve_key(&self, store: &mut Store, db: usize, key: &Bytes) {
        let queue: Vec<u64> = match self.blocked.lock().by_key.get(&(db, key.clone())) {
            Some(ids) => ids.clone(),
            None => return,
        };
        for id in queue {
            let kind = store.lookup(db, key).and_then(|state| state.kind());
            let request = match self.blocked.lock().by_client.get(&id) {
                Some(w) if w.db == db => w.request.clone(),
                _ => continue, // served from another key in this pass
            };
            let group_read = request.argv[0].eq_ignore_ascii_case(b"xreadgroup");
            if group_read && kind != Some(Kind::Stream) {
                // A consumer-group read whose stream was deleted or
                // replaced ends with Redis's error instead of waiting on.
                self.serve_now(
                    store,
                    id,
                    Reply::Error(Bytes::from_static(STREAM_GONE.as_bytes())),
                );
                continue;
            }
            let Some(kind) = kind else {
                return; // emptied: the rest keep waiting
            };
            if pops_from(&request.argv) != Some(kind) {
                continue;
            }
            let mut client = ClientState::new(request.info.clone(), true);
            client.db = db;
            client.resp = request.resp;
            let reply = super::dispatch(
                &mut Context {
                    store: &mut *store,
                    client: &mut client,
                    server: self,
                },
                &request.argv,
            );
            if matches!(client.action, Some(ClientAction::Block { .. })) {
                continue; // nothing for it after all: it keeps its place
            }
            let mut blocked = self.blocked.lock();
            if let Some(waiter) = blocked.remove(store, id) {
                blocked.served.insert(
                    id,
                    Served {
                        reply,
                        last_write_seq: client.last_write_seq,
                    },
                );
                waiter.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::crdt::ReplicaId;

    fn words(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    /// Registers client `id` as blocked in `argv` on `key`, as the
    /// session does after the command parked.
    fn block(state: &ServerState, id: u64, argv: &[&str], key: &str) {
        let info = Arc::new(ClientInfo::new(id, "test".into(), "test".into()));
        let request = ParkedRequest {
            argv: words(argv),
            info,
            resp: RespVersion::Resp2,
        };
        let mut store = state.store.lock();
        state.block_client(&mut store, id, 0, words(&[key]), request);
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn a_push_serves_waiters_in_blocking_order_before_it_returns() {
        let state = ServerState::new(Config::default(), ReplicaId(1), None);
        for id in [7, 3, 5] {
            block(&state, id, &["BLPOP", "q", "0"], "q");
        }
        let mut pusher = ClientState::detached(true);
        state.execute(&mut pusher, &words(&["RPUSH", "q", "a", "b"]));
        let mut store = state.store.lock();
        let served = |store: &mut Store, id| state.finish_wait(store, id).map(|s| s.reply);
        assert_eq!(
            served(&mut store, 7),
            Some(Reply::Array(vec![bulk("q"), bulk("a")]))
        );
        assert_eq!(
            served(&mut store, 3),
            Some(Reply::Array(vec![bulk("q"), bulk("b")]))
        );
        assert!(state.blocked.lock().contains(5), "nothing was left for it");
        assert_eq!(served(&mut store, 5), None);
    }

    #[test]
    fn a_waiter_that_finds_nothing_keeps_its_place() {
        let state = ServerState::new(Config::default(), ReplicaId(1), None);
        // The first waiter pops from a sorted set, so a list push skips it.
        block(&state, 1, &["BZPOPMIN", "k", "0"], "k");
        block(&state, 2, &["BLPOP", "k", "0"], "k");
        let mut pusher = ClientState::detached(true);
        state.execute(&mut pusher, &words(&["RPUSH", "k", "v"]));
        {
            let blocked = state.blocked.lock();
            assert!(blocked.contains(1), "still blocked");
            assert!(!blocked.contains(2), "served");
        }
        state.execute(&mut pusher, &words(&["DEL", "k"]));
        state.execute(&mut pusher, &words(&["ZADD", "k", "1", "m"]));
        let mut store = state.store.lock();
        let reply = state.finish_wait(&mut store, 1).map(|s| s.reply);
        assert_eq!(
            reply,
            Some(Reply::Array(vec![bulk("k"), bulk("m"), Reply::Double(1.0)]))
        );
        assert!(state.blocked.lock().is_empty());
        assert!(!store.ready_keys.has_ready());
    }

    #[test]
    fn unblocking_forgets_a_reply_never_collected() {
        let state = ServerState::new(Config::default(), ReplicaId(1), None);
        block(&state, 9, &["BLPOP", "k", "0"], "k");
        let mut pusher = ClientState::detached(true);
        state.execute(&mut pusher, &words(&["RPUSH", "k", "v"]));
        assert!(state.blocked.lock().holds(9));
        state.unblock_client(&mut state.store.lock(), 9);
        assert!(!state.blocked.lock().holds(9));
    }
}
