//! What a command handler can see: the store (locked by the caller), the
//! calling client's session state, and the node-wide [`ServerState`]
//! (configuration, client registry, counters). Handlers never do I/O; a
//! handler that needs the connection to act (close after replying, sleep)
//! leaves a [`ClientAction`] for the connection task.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::args::CmdResult;
use crate::config::Config;
use crate::crdt::ReplicaId;
use crate::protocol::{Reply, RespVersion};
use crate::pubsub::channels::{PubSub, Subscriptions};
use crate::pubsub::notify::Notifications;
use crate::pubsub::push::{Monitors, OutputLimit, Receiver};
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
    /// Every key the row declares (BLPOP, BRPOP), or that `numkeys` names
    /// (BLMPOP, BZMPOP).
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
    /// Clients cut off because their output queue (MONITOR's, later
    /// Pub/Sub's) passed its limit.
    pub client_output_limit_disconnections: AtomicU64,
    /// TLS clients whose handshake failed or timed out.
    pub tls_handshake_failures: AtomicU64,
    /// AUTH / HELLO AUTH refused (Redis 7.2's `acl_access_denied_auth`).
    pub auth_failures: AtomicU64,
    /// The unix second of the last AUTH-failure log line, and the failures
    /// not logged since (the log line is at most once a second).
    pub auth_failure_logged_at: AtomicU64,
    pub auth_failures_unlogged: AtomicU64,
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
            &self.client_output_limit_disconnections,
            &self.tls_handshake_failures,
            &self.auth_failures,
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
    /// The command being run or last run, and its subcommand (CLIENT
    /// LIST's `cmd=`): one lock, taken once per command.
    pub last_command: Mutex<(&'static str, Option<&'static str>)>,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub resp: AtomicUsize,
    /// The socket's file descriptor (`-1` for a session without one).
    pub fd: AtomicI64,
    /// [`client_flags`] bits CLIENT LIST shows.
    pub flags: AtomicU32,
    /// Commands queued since MULTI, `-1` outside a transaction.
    pub multi: AtomicI64,
    /// Bytes in the query buffer (with the request being run) and the
    /// room left in it, as of the last command.
    pub qbuf: AtomicUsize,
    pub qbuf_free: AtomicUsize,
    /// Bytes of replies or pushes waiting to be written.
    pub omem: AtomicUsize,
    /// The client's push queue (MONITOR lines, Pub/Sub messages and
    /// confirmations, tracking invalidations), made on first use by the
    /// client itself or by another client redirecting invalidations to it;
    /// its connection drains it. Once made it stays (an empty queue costs
    /// little), so the connection checks it with one atomic load.
    pub push: std::sync::OnceLock<Arc<crate::pubsub::push::PushQueue>>,
    /// Channel, pattern and shard-channel subscriptions (`sub=`, `psub=`,
    /// `ssub=`).
    pub sub: AtomicUsize,
    pub psub: AtomicUsize,
    pub ssub: AtomicUsize,
    /// What every wait of the connection task also waits on: a kill, a
    /// CLIENT UNBLOCK, pushed data (MONITOR). A permit is kept, so a
    /// signal sent before the task waits is not lost.
    pub attention: Arc<Notify>,
    killed: AtomicBool,
    unblock: Mutex<Option<UnblockHow>>,
}

/// Bits of [`ClientInfo::flags`].
pub mod client_flags {
    pub const MONITOR: u32 = 1 << 0;
    pub const NO_EVICT: u32 = 1 << 1;
    pub const BLOCKED: u32 = 1 << 2;
    pub const CLOSE_AFTER_REPLY: u32 = 1 << 3;
    /// Attached with SYNC/PSYNC: receives the replication stream.
    pub const REPLICA: u32 = 1 << 4;
}

/// How CLIENT UNBLOCK ends a blocked command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnblockHow {
    /// As if its timeout passed (nil for a pop).
    Timeout,
    /// With `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// The error a blocked command gets from `CLIENT UNBLOCK id ERROR`.
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(Bytes::new()),
            db: AtomicUsize::new(0),
            last_command: Mutex::new(("NULL", None)),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicUsize::new(2),
            fd: AtomicI64::new(-1),
            flags: AtomicU32::new(0),
            multi: AtomicI64::new(-1),
            qbuf: AtomicUsize::new(0),
            qbuf_free: AtomicUsize::new(0),
            omem: AtomicUsize::new(0),
            push: std::sync::OnceLock::new(),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            attention: Arc::new(Notify::new()),
            killed: AtomicBool::new(false),
            unblock: Mutex::new(None),
        }
    }

    /// Records the command being run (CLIENT LIST's `cmd=`). The session
    /// calls it before each command, so it stays cheap: the activity time
    /// is recorded once per batch instead.
    pub fn touch_with(&self, command: &'static str, subcommand: Option<&'static str>) {
        *self.last_command.lock() = (command, subcommand);
    }

    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }

    pub fn set_flag(&self, flag: u32, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    /// The push queue, made with `limit` if the client has none yet.
    pub fn push_queue_or_new(&self, limit: OutputLimit) -> Arc<crate::pubsub::push::PushQueue> {
        self.push
            .get_or_init(|| crate::pubsub::push::PushQueue::new(limit, self.attention.clone()))
            .clone()
    }

    /// Asks the client's connection to close (CLIENT KILL, an output
    /// limit, SHUTDOWN): it stops at its next wait.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.attention.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// CLIENT UNBLOCK: ends the client's blocking wait as `how` says.
    pub fn request_unblock(&self, how: UnblockHow) {
        *self.unblock.lock() = Some(how);
        self.attention.notify_one();
    }

    /// The pending CLIENT UNBLOCK, if any (taken).
    pub fn take_unblock(&self) -> Option<UnblockHow> {
        self.unblock.lock().take()
    }

    /// Redis's `flags=` letters for this client.
    fn flag_letters(&self, blocked: bool) -> String {
        let bits = self.flags.load(Ordering::Relaxed);
        let mut out = String::new();
        if bits & client_flags::MONITOR != 0 {
            out.push('O');
        }
        let subscribed = self.sub.load(Ordering::Relaxed)
            + self.psub.load(Ordering::Relaxed)
            + self.ssub.load(Ordering::Relaxed)
            > 0;
        if subscribed {
            out.push('P');
        }
        if self.multi.load(Ordering::Relaxed) >= 0 {
            out.push('x');
        }
        if blocked || bits & client_flags::BLOCKED != 0 {
            out.push('b');
        }
        if bits & client_flags::CLOSE_AFTER_REPLY != 0 {
            out.push('c');
        }
        if bits & client_flags::NO_EVICT != 0 {
            out.push('e');
        }
        if out.is_empty() {
            out.push('N');
        }
        out
    }

    /// One line of CLIENT LIST / CLIENT INFO, in Redis 7.0's field order.
    pub fn describe(&self) -> String {
        self.describe_with(false)
    }

    /// [`ClientInfo::describe`], `blocked` saying whether the client waits
    /// in a blocking command (the `b` flag).
    pub fn describe_with(&self, blocked: bool) -> String {
        let age = self.created.elapsed().as_secs();
        let idle_ms = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
        let cmd = match *self.last_command.lock() {
            (command, Some(sub)) => format!("{command}|{sub}"),
            (command, None) => command.to_string(),
        };
        let qbuf = self.qbuf.load(Ordering::Relaxed);
        let qbuf_free = self.qbuf_free.load(Ordering::Relaxed);
        let omem = self.omem.load(Ordering::Relaxed);
        // Redis's client struct and its static reply buffer.
        let fixed = 1024 + 16 * 1024;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd.load(Ordering::Relaxed),
            String::from_utf8_lossy(&self.name.lock()),
            age,
            idle_ms / 1000,
            self.flag_letters(blocked),
            self.db.load(Ordering::Relaxed),
            self.sub.load(Ordering::Relaxed),
            self.psub.load(Ordering::Relaxed),
            self.ssub.load(Ordering::Relaxed),
            self.multi.load(Ordering::Relaxed),
            qbuf,
            qbuf_free,
            omem,
            fixed + qbuf + qbuf_free + omem,
            cmd,
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// A client as the push queues see it (MONITOR now, Pub/Sub later).
impl Receiver for ClientInfo {
    fn id(&self) -> u64 {
        self.id
    }

    fn addr(&self) -> &str {
        &self.addr
    }

    fn attention(&self) -> Arc<Notify> {
        self.attention.clone()
    }

    fn set_queued_bytes(&self, bytes: usize) {
        self.omem.store(bytes, Ordering::Relaxed);
    }

    fn cut_off(&self) {
        self.kill();
    }

    fn push_queue(&self) -> Arc<crate::pubsub::push::PushQueue> {
        self.push_queue_or_new(crate::pubsub::push::PUBSUB_LIMIT)
    }

    fn resp(&self) -> RespVersion {
        if self.resp.load(Ordering::Relaxed) == 3 {
            RespVersion::Resp3
        } else {
            RespVersion::Resp2
        }
    }

    fn subscribed(&self) -> bool {
        self.sub.load(Ordering::Relaxed)
            + self.psub.load(Ordering::Relaxed)
            + self.ssub.load(Ordering::Relaxed)
            > 0
    }
}

/// The client registry as the tracking tables see it: who a redirect
/// names.
struct ClientDirectory(Arc<DashMap<u64, Arc<ClientInfo>>>);

impl crate::pubsub::tracking::Directory for ClientDirectory {
    fn find(&self, id: u64) -> Option<Arc<dyn Receiver>> {
        self.0
            .get(&id)
            .map(|info| info.value().clone() as Arc<dyn Receiver>)
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
    /// A script is running the commands (Redis's `CLIENT_SCRIPT`): XREAD
    /// and XREADGROUP refuse BLOCK with Redis's error then.
    pub in_script: bool,
    /// Commands queued since MULTI (`None` outside a transaction).
    pub multi: Option<QueuedTransaction>,
    /// WATCHed keys: database, key, and the store's change token then.
    pub watching: Vec<(usize, Bytes, u64)>,
    /// CLIENT REPLY's mode.
    pub reply_mode: ReplyMode,
    /// Set by a handler whose command sends no reply at all (MONITOR when
    /// already monitoring); the session clears it.
    pub silent: bool,
    /// Channels, patterns and shard channels this client subscribes to
    /// (`None` until its first SUBSCRIBE).
    pub subscriptions: Option<Box<Subscriptions>>,
    /// CLIENT TRACKING, when on: what decides whether a read is remembered
    /// (the full mode lives in the server's tracking tables).
    pub tracking: Option<TrackingFlags>,
    /// When ([`super::stats::clock::ticks`]) the parked command at the
    /// front of this client's queue first ran (its recorded time covers the
    /// wait, as in Redis).
    pub parked_since: Option<u64>,
    /// The request to wait with instead of the one that parked, when the
    /// handler resolved a moving argument (XREAD BLOCK's `$`).
    pub parked_argv: Option<Vec<Bytes>>,
    /// The effects the running top-level command (with what EXEC or a
    /// script ran inside it) has made so far, for the replication stream
    /// (`commands::propagate`); empty unless a client is attached.
    pub effects: Vec<crate::pubsub::replica_feed::Effect>,
}

/// The part of a client's CLIENT TRACKING mode its own commands consult.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackingFlags {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) for the next command.
    pub caching: bool,
}

/// Which replies a client gets (CLIENT REPLY). The session applies it
/// after each command: the command that sets OFF or SKIP gets no reply
/// itself, and SKIP drops the next command's reply too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Just set by CLIENT REPLY SKIP (whose own reply is not sent).
    SkipNext,
    /// The current command's reply is dropped, then replies are back on.
    Skip,
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
            in_script: false,
            multi: None,
            watching: Vec::new(),
            reply_mode: ReplyMode::On,
            silent: false,
            subscriptions: None,
            tracking: None,
            parked_since: None,
            parked_argv: None,
            effects: Vec::new(),
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
    /// `min-replicas-to-write` and `min-replicas-max-lag`, packed (see
    /// `write_quorum`), read by the dispatcher before every command.
    pub write_quorum: AtomicU64,
    /// `stream-node-max-entries`, read by every trimming XADD.
    pub stream_node_max_entries: AtomicU64,
    pub clients: Arc<DashMap<u64, Arc<ClientInfo>>>,
    pub next_client_id: AtomicU64,
    pub stats: ServerStats,
    pub started: Instant,
    pub replica: ReplicaId,
    /// 40 hex characters, new at each start (INFO run_id).
    pub run_id: String,
    /// The port actually bound (differs from the config when it was 0).
    pub bound_port: AtomicU64,
    pub config_file: Option<String>,
    /// Clients waiting in a blocking pop (lock order: store, then this).
    pub blocked: Mutex<super::blocking::BlockedClients>,
    /// CLIENT PAUSE: what is paused and until when.
    pub pause: Mutex<PauseState>,
    /// Whether a pause may be in force: false lets every command skip the
    /// `pause` lock (set and cleared under it).
    pub pause_set: AtomicBool,
    /// Bumped by every pause change, so a paused connection wakes.
    pub pause_changes: tokio::sync::watch::Sender<u64>,
    /// Clients waiting out a pause, and clients waiting in WAIT (both count
    /// as blocked clients in INFO).
    pub paused_clients: AtomicUsize,
    pub waiting_peers_clients: AtomicUsize,
    /// Clients in MONITOR mode and the queues their lines go to.
    pub monitors: Monitors,
    /// Clients attached with SYNC/PSYNC (`commands::propagate`).
    pub replica_feeds: crate::pubsub::replica_feed::ReplicaFeeds,
    /// The limit a MONITOR queue is cut off at (see `server::push`).
    pub monitor_output_limit: Mutex<OutputLimit>,
    /// The limit a subscriber's queue is cut off at (the pubsub class).
    pub pubsub_output_limit: Mutex<OutputLimit>,
    /// Channel, pattern and shard-channel subscriptions of every client.
    pub pubsub: Arc<PubSub>,
    /// CLIENT TRACKING's tables.
    pub tracking: Arc<crate::pubsub::tracking::Tracking>,
    /// Keyspace notifications (`notify-keyspace-events`); also the store's
    /// notifier, which hears peers' messages.
    pub notifications: Arc<Notifications>,
    /// Cancelled to stop the node (SHUTDOWN, or the handle's shutdown).
    pub shutdown: CancellationToken,
    /// Identity across restarts and save bookkeeping (SAVE, BGSAVE, INFO).
    pub persist: Arc<crate::persist::Persistence>,
    /// The Lua engine (lock order: store, then this) and what other
    /// clients see of a running script.
    pub scripting: Mutex<crate::scripting::Engine>,
    pub script_status: crate::scripting::RunStatus,
}

/// CLIENT PAUSE's state: nothing is paused once `until` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PauseState {
    pub until: Option<Instant>,
    /// Only commands that may write (the row's WRITE flag, EXEC of a
    /// queue holding one, PUBLISH/EVAL-like later) wait; reads go on.
    pub write_only: bool,
}

impl PauseState {
    /// Whether the pause is in force at `now`.
    pub fn active(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| until > now)
    }
}

impl ServerState {
    pub fn new(config: Config, replica: ReplicaId, config_file: Option<String>) -> Arc<Self> {
        let mut store = Store::new(replica);
        // The server installs the real identity; in-process tests keep this.
        let persist_name = config
            .replica_id
            .clone()
            .unwrap_or_else(|| format!("{:08x}", replica.0 >> 32));
        let pubsub = Arc::new(PubSub::default());
        let clients = Arc::new(DashMap::new());
        let (monitor_limit, pubsub_limit) = (output_limit(&config, 1), output_limit(&config, 2));
        let tracking = Arc::new(crate::pubsub::tracking::Tracking::new(
            Arc::new(ClientDirectory(clients.clone())),
            tracking_max_keys(&config),
        ));
        let notifications = Arc::new(Notifications::new(
            pubsub.clone(),
            tracking.clone(),
            notify_classes(&config),
        ));
        store.set_notifier(notifications.clone());
        store
            .delta_log_mut()
            .set_cap_bytes(config.replication_log_bytes);
        store.set_eviction_config(super::maxmemory::eviction_config(&config));
        store.single_region = !config.replication_enabled();
        store.keep_delta_log = config.replication_enabled();
        super::stats::clock::init();
        let write_quorum = super::write_quorum::packed_settings(&config);
        let busy_threshold_ms = super::scripting::busy_threshold_ms(&config);
        let stream_node_max_entries = super::streams::configured_node_max_entries(&config);
        let run_id: String = (0..40)
            .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0'))
            .collect();
        Arc::new(ServerState {
            store: Arc::new(Mutex::new(store)),
            repl: Arc::new(ReplStatus::new(replica, &config.peers)),
            bound_port: AtomicU64::new(config.port as u64),
            config: RwLock::new(config),
            config_epoch: AtomicU64::new(0),
            write_quorum: AtomicU64::new(write_quorum),
            stream_node_max_entries: AtomicU64::new(stream_node_max_entries),
            clients,
            next_client_id: AtomicU64::new(1),
            stats: ServerStats::default(),
            started: Instant::now(),
            replica,
            run_id,
            config_file,
            blocked: Mutex::new(Default::default()),
            pause: Mutex::new(PauseState::default()),
            pause_set: AtomicBool::new(false),
            pause_changes: tokio::sync::watch::channel(0).0,
            paused_clients: AtomicUsize::new(0),
            waiting_peers_clients: AtomicUsize::new(0),
            monitors: Monitors::default(),
            replica_feeds: Default::default(),
            monitor_output_limit: Mutex::new(monitor_limit),
            pubsub_output_limit: Mutex::new(pubsub_limit),
            pubsub,
            tracking,
            notifications,
            shutdown: CancellationToken::new(),
            persist: Arc::new(crate::persist::Persistence::new(
                crate::persist::NodeIdentity {
                    name: persist_name,
                    incarnation: crate::persist::identity::incarnation_of(replica),
                },
            )),
            scripting: Mutex::new(crate::scripting::Engine::new()),
            script_status: crate::scripting::RunStatus {
                threshold_ms: AtomicU64::new(busy_threshold_ms),
                ..Default::default()
            },
        })
    }

    /// INFO's `blocked_clients`: clients in a blocking command, in WAIT,
    /// or held by CLIENT PAUSE (Redis counts all three).
    pub fn blocked_clients(&self) -> usize {
        self.blocked.lock().len()
            + self.paused_clients.load(Ordering::Relaxed)
            + self.waiting_peers_clients.load(Ordering::Relaxed)
    }

    /// CLIENT PAUSE: pauses until `until` (a longer pause already in force
    /// is kept, and ALL wins over WRITE, as in Redis).
    pub fn pause_clients(&self, until: Instant, write_only: bool) {
        let mut pause = self.pause.lock();
        let now = Instant::now();
        if pause.active(now) {
            pause.write_only &= write_only;
            pause.until = pause.until.max(Some(until));
        } else {
            *pause = PauseState {
                until: Some(until),
                write_only,
            };
        }
        self.pause_set.store(true, Ordering::Release);
        drop(pause);
        self.pause_changes.send_modify(|n| *n += 1);
    }

    /// CLIENT UNPAUSE: paused clients go on now.
    pub fn unpause_clients(&self) {
        let mut pause = self.pause.lock();
        *pause = PauseState::default();
        self.pause_set.store(false, Ordering::Release);
        drop(pause);
        self.pause_changes.send_modify(|n| *n += 1);
    }

    /// New output limits for MONITOR queues (replica class) and every
    /// other push queue (pubsub class), existing ones included.
    fn apply_output_limits(&self, config: &Config) {
        let monitor = output_limit(config, 1);
        let pubsub = output_limit(config, 2);
        let changed = {
            let mut m = self.monitor_output_limit.lock();
            let mut p = self.pubsub_output_limit.lock();
            let changed = *m != monitor || *p != pubsub;
            *m = monitor;
            *p = pubsub;
            changed
        };
        if !changed {
            return;
        }
        for client in self.clients.iter() {
            if let Some(queue) = client.push.get() {
                let monitoring = client.has_flag(client_flags::MONITOR);
                queue.set_limit(if monitoring { monitor } else { pubsub });
            }
        }
    }

    /// Installs new settings (CONFIG SET).
    pub fn replace_config(&self, next: Config) {
        self.notifications.set_classes(notify_classes(&next));
        self.tracking.set_max_keys(tracking_max_keys(&next));
        self.apply_output_limits(&next);
        self.write_quorum.store(
            super::write_quorum::packed_settings(&next),
            Ordering::Relaxed,
        );
        self.stream_node_max_entries.store(
            super::streams::configured_node_max_entries(&next),
            Ordering::Relaxed,
        );
        self.script_status.threshold_ms.store(
            super::scripting::busy_threshold_ms(&next),
            Ordering::Relaxed,
        );
        *self.config.write() = next;
        self.config_epoch.fetch_add(1, Ordering::Release);
    }

    /// Whether clients must AUTH first.
    pub fn requires_auth(&self) -> bool {
        !self.config.read().requirepass.is_empty()
    }
}

/// The keyspace event classes a configuration asks for (its value was
/// validated when it was set).
fn notify_classes(config: &Config) -> u32 {
    let text = config.get("notify-keyspace-events").unwrap_or_default();
    crate::pubsub::notify::parse_classes(text.as_bytes()).unwrap_or(0)
}

/// Class `class` (0 normal, 1 replica, 2 pubsub) of
/// `client-output-buffer-limit`, whose canonical value lists all three as
/// `<class> <hard> <soft> <seconds>`.
fn output_limit(config: &Config, class: usize) -> OutputLimit {
    let text = config.get("client-output-buffer-limit").unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().collect();
    let number = |k: usize| words.get(class * 4 + k).and_then(|w| w.parse().ok());
    match (number(1), number(2), number(3)) {
        (Some(hard), Some(soft), Some(seconds)) => OutputLimit {
            hard,
            soft,
            soft_seconds: seconds as u64,
        },
        _ if class == 1 => crate::pubsub::push::MONITOR_LIMIT,
        _ => crate::pubsub::push::PUBSUB_LIMIT,
    }
}

/// `tracking-table-max-keys` (0: no limit).
fn tracking_max_keys(config: &Config) -> usize {
    config
        .get("tracking-table-max-keys")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
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
