//! What a command handler can see: the store (locked by the caller), the
//! calling client's session state, and the node-wide [`ServerState`]
//! (configuration, client registry, counters). Handlers never do I/O; a
//! handler that needs the connection to act (close after replying, sleep)
//! leaves a [`ClientAction`] for the connection task.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};

use super::args::CmdResult;
use crate::config::Config;
use crate::crdt::ReplicaId;
use crate::protocol::{Reply, RespVersion};
use crate::replication::ReplStatus;
use crate::store::Store;

/// What a handler that cannot answer yet waits for; asked through
/// [`Context::park`], the one way to block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// Until a key the command waits on receives elements, then the
    /// command runs again; at `deadline` (`None`: never) it runs once more
    /// with blocking denied, which gives its timeout reply. Which keys:
    /// `wait_on`, read from the command's table row.
    Keys {
        wait_on: WaitOn,
        deadline: Option<Instant>,
    },
    /// WAIT: until `numpeers` peers acked local seq `seq`, or `timeout`
    /// (`None` = forever); the reply is then how many did.
    Peers {
        numpeers: usize,
        seq: u64,
        timeout: Option<Duration>,
    },
}

/// Which of a command's keys (by its row's key positions) a parked client
/// waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOn {
    /// Every key the row declares (BLPOP, BRPOP).
    DeclaredKeys,
    /// Only the first, the source (BLMOVE: the destination is written,
    /// not waited on).
    FirstKey,
}

/// Something the connection task must do after the command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Close the connection (QUIT).
    Close,
    /// Pause before reading further (DEBUG SLEEP), without holding the store.
    Sleep(Duration),
    /// A handler's request to wait, as [`Context::park`] left it; the
    /// dispatcher turns it into [`ClientAction::Block`] or
    /// [`ClientAction::WaitPeers`] before the connection sees it.
    Park(Park),
    /// Wait, without holding the store, until one of `keys` receives
    /// elements, then re-run the command; at `deadline` (`None`: never)
    /// re-run it with blocking denied (see `commands::blocking`). The
    /// handler's reply is not sent.
    Block {
        deadline: Option<Instant>,
        keys: Vec<Bytes>,
    },
    /// WAIT: reply with the number of peers that acked local seq `seq`
    /// once `numpeers` have or `timeout` passes (`None` = forever); the
    /// handler's own reply is not sent.
    WaitPeers {
        numpeers: usize,
        seq: u64,
        timeout: Option<Duration>,
    },
}

/// Node-wide counters for INFO stats.
#[derive(Default)]
pub struct ServerStats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
    pub total_error_replies: AtomicU64,
}

impl ServerStats {
    pub fn reset(&self) {
        for counter in [
            &self.total_connections_received,
            &self.total_commands_processed,
            &self.rejected_connections,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
            &self.total_error_replies,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// The part of a client's session that other clients can see (CLIENT LIST).
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub name: Mutex<Bytes>,
    pub db: AtomicUsize,
    pub last_command: Mutex<&'static str>,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub resp: AtomicUsize,
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(Bytes::new()),
            db: AtomicUsize::new(0),
            last_command: Mutex::new("NULL"),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicUsize::new(2),
        }
    }

    /// Records activity (called once per batch of pipelined commands).
    pub fn touch(&self, command: &'static str) {
        self.last_active_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        *self.last_command.lock() = command;
    }

    /// One line of CLIENT LIST / CLIENT INFO, in Redis's field order.
    pub fn describe(&self) -> String {
        let age = self.created.elapsed().as_secs();
        let idle_ms = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name= lib-ver=",
            self.id,
            self.addr,
            self.laddr,
            String::from_utf8_lossy(&self.name.lock()),
            age,
            idle_ms / 1000,
            self.db.load(Ordering::Relaxed),
            self.last_command.lock(),
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// A client's own session state, owned by its connection task.
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub resp: RespVersion,
    pub authenticated: bool,
    /// Last local seq this client's writes produced (what WAIT waits for).
    pub last_write_seq: u64,
    pub action: Option<ClientAction>,
    /// Commands must answer at once instead of parking (Redis's
    /// `CLIENT_DENY_BLOCKING`): set while EXEC runs its queue, while a
    /// timed-out blocking command runs its last time, and later inside
    /// scripts.
    pub deny_blocking: bool,
    /// Commands queued since MULTI (`None` outside a transaction).
    pub multi: Option<QueuedTransaction>,
    /// WATCHed keys: database, key, and the store's change token then.
    pub watching: Vec<(usize, Bytes, u64)>,
    /// When ([`super::stats::clock::ticks`]) the parked command at the
    /// front of this client's queue first ran (its recorded time covers the
    /// wait, as in Redis).
    pub parked_since: Option<u64>,
}

/// A transaction being queued between MULTI and EXEC.
#[derive(Default)]
pub struct QueuedTransaction {
    pub commands: Vec<Vec<Bytes>>,
    /// A command was refused while queueing: EXEC will abort.
    pub failed: bool,
}

impl ClientState {
    /// A session with no connection behind it (not in the client registry),
    /// for running commands in process.
    pub fn detached(authenticated: bool) -> Self {
        let info = Arc::new(ClientInfo::new(0, "local".into(), "local".into()));
        ClientState::new(info, authenticated)
    }

    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Self {
        ClientState {
            info,
            db: 0,
            resp: RespVersion::Resp2,
            authenticated,
            last_write_seq: 0,
            action: None,
            deny_blocking: false,
            multi: None,
            watching: Vec::new(),
            parked_since: None,
        }
    }
}

impl ClientState {
    /// Releases every WATCH this client holds (UNWATCH, EXEC, DISCARD, and
    /// when the connection ends).
    pub fn release_watches(&mut self, store: &mut Store) {
        for (db, key, _) in self.watching.drain(..) {
            store.unwatch_key(db, &key);
        }
    }
}

/// Everything node-wide that commands and connections share.
pub struct ServerState {
    /// Shared with the replication tasks (which lock it per step).
    pub store: Arc<Mutex<Store>>,
    /// Peer links' status, acks for WAIT, the local-write signal.
    pub repl: Arc<ReplStatus>,
    /// Change it through [`ServerState::replace_config`] so connections see
    /// the new settings.
    pub config: RwLock<Config>,
    /// Bumped on every config change; connections keep a copy of the
    /// settings they read per request and refresh it when this moves.
    pub config_epoch: AtomicU64,
    pub clients: DashMap<u64, Arc<ClientInfo>>,
    pub next_client_id: AtomicU64,
    pub stats: ServerStats,
    pub started: Instant,
    pub replica: ReplicaId,
    /// 40 hex characters, new at each start (INFO run_id).
    pub run_id: String,
    /// The port actually bound (differs from the config when it was 0).
    pub bound_port: AtomicU64,
    pub config_file: Option<String>,
    /// Clients waiting in BLPOP/BRPOP/BLMOVE (lock order: store, then this).
    pub blocked: Mutex<super::blocking::BlockedClients>,
}

impl ServerState {
    pub fn new(config: Config, replica: ReplicaId, config_file: Option<String>) -> Arc<Self> {
        let mut store = Store::new(replica);
        store
            .delta_log_mut()
            .set_cap_bytes(config.replication_log_bytes);
        super::stats::clock::init();
        let run_id: String = (0..40)
            .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0'))
            .collect();
        Arc::new(ServerState {
            store: Arc::new(Mutex::new(store)),
            repl: Arc::new(ReplStatus::new(replica, &config.peers)),
            bound_port: AtomicU64::new(config.port as u64),
            config: RwLock::new(config),
            config_epoch: AtomicU64::new(0),
            clients: DashMap::new(),
            next_client_id: AtomicU64::new(1),
            stats: ServerStats::default(),
            started: Instant::now(),
            replica,
            run_id,
            config_file,
            blocked: Mutex::new(Default::default()),
        })
    }

    /// Installs new settings (CONFIG SET).
    pub fn replace_config(&self, next: Config) {
        *self.config.write() = next;
        self.config_epoch.fetch_add(1, Ordering::Release);
    }

    /// Whether clients must AUTH first.
    pub fn requires_auth(&self) -> bool {
        !self.config.read().requirepass.is_empty()
    }
}

/// What a handler is given.
pub struct Context<'a> {
    pub store: &'a mut Store,
    pub client: &'a mut ClientState,
    pub server: &'a ServerState,
}

impl Context<'_> {
    /// The one way a handler waits (blocking pops, WAIT, later XREAD).
    /// Unless blocking is denied, the client is parked: `now` is not sent,
    /// and the connection waits without the store lock (see [`Park`]).
    /// When blocking is denied (inside EXEC, later scripts) `now` is the
    /// reply, given at once as Redis does: nil for a pop, the current ack
    /// count for WAIT.
    pub fn park(&mut self, park: Park, now: Reply) -> CmdResult {
        if !self.client.deny_blocking {
            self.client.action = Some(ClientAction::Park(park));
        }
        Ok(now)
    }
}
