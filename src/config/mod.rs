//! Node settings: command-line flags merged over a TOML file (`--config
//! FILE`, see `configs/cordis.toml`), and the runtime view CONFIG
//! GET/SET/REWRITE read and change. Owns [`Config`] (typed fields for what
//! the rest of the crate reads, a value store for every other parameter),
//! start-time loading and CONFIG SET's checks; the table of parameters
//! lives in [`params`].
//!
//! Precedence: built-in default < TOML file < command-line flag. Every
//! table parameter can be set in the file (kebab-case key) or as
//! `--<name> <value>`, as redis-server allows.

pub mod params;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use params::{Mutability, Param, Status};

/// Command-line flags. Every flag is optional so that the TOML file and the
/// defaults can fill in what is not given.
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "cordis",
    version,
    about = "An active-active, geo-replicated cache that speaks the Redis protocol"
)]
pub struct Cli {
    /// TOML configuration file (keys as in configs/cordis.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on for clients [default: 127.0.0.1].
    #[arg(long)]
    pub bind: Option<String>,
    /// Client port; 0 picks a free port and prints it [default: 6379].
    #[arg(long)]
    pub port: Option<u16>,
    /// Maximum simultaneous clients [default: 10000].
    #[arg(long)]
    pub maxclients: Option<usize>,
    /// Close clients idle for this many seconds; 0 = never [default: 0].
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Password clients must AUTH with; empty = none.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// This node's stable name (the region; any text without spaces).
    /// Dots carry an id derived from it and the incarnation (see
    /// docs/persistence.md); generated if absent. `--node-name` is an alias.
    #[arg(long, alias = "node-name")]
    pub replica_id: Option<String>,
    /// Threads serving clients; 1 = a single event loop, 0 = one per core
    /// [default: 1].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Log filter, e.g. info, debug, cordis=trace [default: info].
    #[arg(long)]
    pub loglevel: Option<String>,
    /// A peer's peer-listener address HOST:PORT; repeat for each peer
    /// (adds to `peers` from the file).
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Port for peer traffic [default: client port + 10000; 0 = ephemeral].
    #[arg(long)]
    pub peer_port: Option<u16>,
    /// Shared secret peers prove at connect. Prefer the CORDIS_PEER_SECRET
    /// environment variable, which stays out of `ps`.
    #[arg(long)]
    pub peer_secret: Option<String>,
    /// A Redis 7.0 RDB file to load at start, on top of what the node
    /// holds (see docs/persistence.md, "Importing from Redis").
    #[arg(long, value_name = "FILE")]
    pub import_rdb: Option<PathBuf>,
    /// `--<parameter> <value>` pairs for table parameters clap has no flag
    /// for, in command-line order (filled by [`Cli::parse_args`]).
    #[arg(skip)]
    pub params: Vec<(String, String)>,
}

impl Cli {
    /// Parses a command line: clap's flags, plus `--<parameter> <value>`
    /// for every table parameter clap has no flag for. As with
    /// redis-server, a parameter's value is every following argument up to
    /// the next `--flag` (so `--save ""` and `--save 900 1` both work);
    /// `--name=value` works too. Anything else is left to clap, which
    /// rejects unknown flags.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let command = Cli::command();
        let owned_by_clap = |long: &str| {
            long == "help"
                || long == "version"
                || command.get_arguments().any(|a| a.get_long() == Some(long))
        };
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut to_clap = Vec::with_capacity(args.len());
        let mut params = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let text = arg.to_str().unwrap_or("");
            i += 1;
            if text == "--" {
                to_clap.extend(args[i - 1..].iter().cloned());
                break;
            }
            let Some(flag) = text.strip_prefix("--").filter(|_| i > 1) else {
                to_clap.push(arg.clone());
                continue;
            };
            let (long, inline) = match flag.split_once('=') {
                Some((long, value)) => (long, Some(value.to_string())),
                None => (flag, None),
            };
            if owned_by_clap(long) || params::lookup(long).is_none() {
                to_clap.push(arg.clone());
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => {
                    let mut words = Vec::new();
                    while i < args.len() {
                        match args[i].to_str() {
                            Some(word) if !word.starts_with("--") => words.push(word.to_string()),
                            _ => break,
                        }
                        i += 1;
                    }
                    words.join(" ")
                }
            };
            params.push((long.to_string(), value));
        }
        let mut cli = Cli::try_parse_from(to_clap)?;
        cli.params = params;
        Ok(cli)
    }

    /// [`Cli::parse_args`] over the process's arguments; prints clap's
    /// message and exits on a bad command line.
    pub fn parse_or_exit() -> Cli {
        Cli::parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }
}

/// Environment variable holding the peer secret.
pub const PEER_SECRET_ENV: &str = "CORDIS_PEER_SECRET";

/// Environment variable holding the client password (`requirepass`).
pub const REQUIREPASS_ENV: &str = "CORDIS_REQUIREPASS";

/// Redis's CONFIG REWRITE error when the node started without a file.
pub const NO_CONFIG_FILE: &str = "The server is running without a config file";

/// The TOML file's settings: (key, value as parameter text) in file order.
/// Keys are table parameters (kebab-case names or aliases); values may be
/// strings, integers, booleans (`yes`/`no`) or arrays (joined by spaces).
#[derive(Debug, Default)]
pub struct FileConfig {
    pub pairs: Vec<(String, String)>,
}

impl FileConfig {
    /// Parses TOML text; unknown keys are an error naming the key.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut pairs = Vec::with_capacity(table.len());
        for (key, value) in table {
            if params::lookup(&key).is_none() {
                return Err(format!(
                    "unknown key '{key}': not a cordis or Redis 7.0 parameter (see docs/compat.md)"
                ));
            }
            let text = toml_value_text(&value).ok_or_else(|| {
                format!("key '{key}': value must be a string, number, boolean or array")
            })?;
            pairs.push((key, text));
        }
        Ok(FileConfig { pairs })
    }

    /// The value given for a parameter (by its exact key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn toml_value_text(value: &toml::Value) -> Option<String> {
    Some(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => params::yes_no(*b).to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_value_text)
            .collect::<Option<Vec<_>>>()?
            .join(" "),
        toml::Value::Table(_) | toml::Value::Datetime(_) => return None,
    })
}

/// Values of the table parameters that have no typed field on [`Config`],
/// as CONFIG GET prints them, indexed like [`params::all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamValues(Vec<String>);

impl Default for ParamValues {
    fn default() -> Self {
        ParamValues(params::all().iter().map(Param::start_default).collect())
    }
}

/// Effective settings of a node. Parameters other code reads are typed
/// fields; every other table parameter lives in `params`.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub maxclients: usize,
    /// Idle timeout in seconds (0 = none).
    pub timeout: u64,
    /// Empty = no password.
    pub requirepass: String,
    /// The node's name (`replica-id` / `node-name`); `None` = generated.
    pub replica_id: Option<String>,
    /// `--import-rdb`: a Redis RDB file loaded at start.
    pub import_rdb: Option<PathBuf>,
    pub threads: usize,
    /// A tracing filter; Redis's level words are mapped by
    /// [`Config::log_filter`].
    pub loglevel: String,
    /// Largest bulk string a client may send (Redis: 512mb).
    pub proto_max_bulk_len: usize,
    /// Largest unparsed input a client may have buffered (Redis: 1gb).
    pub client_query_buffer_limit: usize,
    /// Seconds a client may take to finish sending one request before it is
    /// disconnected (slow-loris guard); 0 = no limit.
    pub request_deadline: u64,
    /// Background task frequency (active expiry), per second.
    pub hz: u32,
    /// Byte cap of the outgoing replication delta log (the backlog kept
    /// for peers that have not acked).
    pub replication_log_bytes: usize,
    /// Peer-listener addresses of the other nodes (full mesh).
    pub peers: Vec<String>,
    /// Peer listener port; `None` = client port + 10000 (0 when the client
    /// port is 0).
    pub peer_port: Option<u16>,
    /// Shared secret of the peer handshake; empty = none (warned at start).
    pub peer_secret: String,
    /// A peer link silent this long (ms) is closed and redialed.
    pub peer_timeout_ms: u64,
    /// An inbound peer connection that has not proved the secret within
    /// this many milliseconds is closed.
    pub peer_handshake_timeout_ms: u64,
    /// Heartbeat period (ms) of an otherwise idle peer link.
    pub peer_heartbeat_ms: u64,
    /// Remote timestamps more than this far ahead (ms) are flagged.
    pub max_clock_skew_ms: u64,
    /// Anti-entropy digest exchange period (ms); 0 = off.
    pub anti_entropy_interval_ms: u64,
    /// Ceiling (ms) of the reconnect backoff.
    pub reconnect_max_ms: u64,
    /// Every other table parameter.
    pub params: ParamValues,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            maxclients: 10_000,
            timeout: 0,
            requirepass: String::new(),
            replica_id: None,
            import_rdb: None,
            threads: 1,
            loglevel: "info".into(),
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            request_deadline: 60,
            hz: 10,
            replication_log_bytes: crate::store::DEFAULT_DELTA_LOG_BYTES,
            peers: Vec::new(),
            peer_port: None,
            peer_secret: String::new(),
            peer_timeout_ms: 10_000,
            peer_handshake_timeout_ms: 2000,
            peer_heartbeat_ms: 1000,
            max_clock_skew_ms: 5000,
            anti_entropy_interval_ms: 30_000,
            reconnect_max_ms: 5000,
            params: ParamValues::default(),
        }
    }
}

/// Checks a node name (`replica-id` / `node-name`).
pub fn parse_replica_id(text: &str) -> Result<String, String> {
    crate::persist::identity::check_name(text).map(|_| text.to_string())
}

fn set_failed(name: &str, reason: &str) -> String {
    format!("CONFIG SET failed (possibly related to argument '{name}') - {reason}")
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("parameter '{name}': value {text} does not fit"))
}

impl Config {
    /// Defaults, then the file named by `--config`, then the flags (clap's
    /// and `--<parameter>` ones). A refused or invalid value is an error
    /// naming the parameter and the reason.
    pub fn load(cli: &Cli) -> Result<Config, String> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let file = FileConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for (key, value) in &file.pairs {
                config
                    .apply_start(key, value)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let mut flags: Vec<(&str, String)> = Vec::new();
        let mut flag = |name, value: Option<String>| {
            if let Some(v) = value {
                flags.push((name, v));
            }
        };
        flag("bind", cli.bind.clone());
        flag("port", cli.port.map(|v| v.to_string()));
        flag("maxclients", cli.maxclients.map(|v| v.to_string()));
        flag("timeout", cli.timeout.map(|v| v.to_string()));
        // The environment beats the file; the flag beats the environment
        // (the environment keeps the password out of `ps`).
        flag("requirepass", std::env::var(REQUIREPASS_ENV).ok());
        flag("requirepass", cli.requirepass.clone());
        flag("replica-id", cli.replica_id.clone());
        flag("threads", cli.threads.map(|v| v.to_string()));
        flag("loglevel", cli.loglevel.clone());
        flag("peer-port", cli.peer_port.map(|v| v.to_string()));
        // The environment beats the file; the flag beats the environment.
        flag("peer-secret", std::env::var(PEER_SECRET_ENV).ok());
        flag("peer-secret", cli.peer_secret.clone());
        if !cli.peers.is_empty() {
            // `--peer` adds to the file's peers rather than replacing them.
            let mut peers = config.peers.clone();
            peers.extend(cli.peers.iter().cloned());
            flag("peers", Some(peers.join(" ")));
        }
        config.import_rdb = cli.import_rdb.clone();
        let given = flags
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .chain(cli.params.iter().cloned());
        for (name, value) in given {
            config
                .apply_start(&name, &value)
                .map_err(|e| format!("--{name}: {e}"))?;
        }
        Ok(config)
    }

    /// The port the peer listener binds.
    pub fn effective_peer_port(&self) -> Result<u16, String> {
        match self.peer_port {
            Some(p) => Ok(p),
            None if self.port == 0 => Ok(0),
            None => self.port.checked_add(10_000).ok_or_else(|| {
                format!(
                    "client port {} + 10000 is not a port; set peer-port",
                    self.port
                )
            }),
        }
    }

    /// Whether this node listens for peers: it has peers, or a peer port
    /// was set explicitly.
    pub fn replication_enabled(&self) -> bool {
        !self.peers.is_empty() || self.peer_port.is_some()
    }

    /// The tracing filter to install: Redis's level words mapped to
    /// tracing's, anything else as written.
    pub fn log_filter(&self) -> String {
        match self.loglevel.to_ascii_lowercase().as_str() {
            "debug" | "verbose" => "debug".into(),
            "notice" => "info".into(),
            "warning" => "warn".into(),
            _ => self.loglevel.clone(),
        }
    }

    /// Canonical names of the parameters a CONFIG GET glob may list, in
    /// table order (Redis's hidden parameters are left out; they answer
    /// only to their exact name). Prefer [`params::all`], which also gives
    /// aliases.
    pub const NAMES: &'static [&'static str] = &params::VISIBLE_NAMES;

    /// Every parameter's canonical name, in table order (hidden ones
    /// included; see [`Param::hidden`] and [`Param::names`] for aliases).
    pub fn param_names() -> impl Iterator<Item = &'static str> {
        params::all().iter().map(|p| p.name)
    }

    /// The current value of a parameter (name or alias, any case) as
    /// CONFIG GET prints it.
    pub fn get(&self, name: &str) -> Option<String> {
        params::lookup(name).map(|row| self.value_of(row))
    }

    /// The current value of a row.
    pub fn value_of(&self, row: &Param) -> String {
        self.typed_value(row.name)
            .unwrap_or_else(|| self.params.0[row.index()].clone())
    }

    /// Changes one parameter at runtime (CONFIG SET with one pair). The
    /// error is the text after "ERR " in Redis's reply.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.set_many(&[(name.to_string(), value.to_string())])
    }

    /// Redis 7.0's CONFIG SET with any number of pairs: all or nothing.
    /// Protected parameters (`dir`, `dbfilename`) are refused unless
    /// `enable-protected-configs` is `yes`; use [`Config::set_many_from`]
    /// to let `local` clients through too.
    pub fn set_many(&mut self, pairs: &[(String, String)]) -> Result<(), String> {
        self.set_many_from(pairs, false)
    }

    /// [`Config::set_many`] for a client that is (or is not) connected
    /// over loopback, which `enable-protected-configs local` allows.
    ///
    /// Checks run in Redis's order: first every name (unknown, immutable,
    /// protected, duplicate — the first problem wins), then every value
    /// in order; nothing changes unless all pass. As in Redis, a name and
    /// its alias are different entries, so giving both is not a duplicate
    /// (the later one wins).
    pub fn set_many_from(
        &mut self,
        pairs: &[(String, String)],
        client_is_local: bool,
    ) -> Result<(), String> {
        let protected_allowed = match self.get("enable-protected-configs").as_deref() {
            Some("yes") => true,
            Some("local") => client_is_local,
            _ => false,
        };
        let mut rows: Vec<(&'static Param, &'static str)> = Vec::with_capacity(pairs.len());
        let mut first_problem: Option<String> = None;
        for (name, _) in pairs {
            let Some((row, spelled)) = params::lookup_spelled(name) else {
                first_problem.get_or_insert_with(|| {
                    format!("Unknown option or number of arguments for CONFIG SET - '{name}'")
                });
                continue;
            };
            if first_problem.is_some() {
                continue;
            }
            let refusal = match row.mutability {
                Mutability::Immutable => Some("can't set immutable config"),
                Mutability::Protected if !protected_allowed => Some("can't set protected config"),
                _ if rows.iter().any(|(_, s)| *s == spelled) => Some("duplicate parameter"),
                _ => None,
            };
            if let Some(reason) = refusal {
                first_problem = Some(set_failed(name, reason));
                continue;
            }
            rows.push((row, spelled));
        }
        if let Some(problem) = first_problem {
            return Err(problem);
        }
        let mut next = self.clone();
        for ((row, spelled), (_, value)) in rows.into_iter().zip(pairs) {
            let current = next.value_of(row);
            let canonical = row
                .parse(value, &current)
                .and_then(|canonical| {
                    row.check_status(&canonical)?;
                    match row.status {
                        Status::StartOnly { missing } if canonical != current => {
                            Err(missing.to_string())
                        }
                        _ => Ok(canonical),
                    }
                })
                .map_err(|reason| set_failed(spelled, &reason))?;
            next.store(row, &canonical)
                .map_err(|reason| set_failed(spelled, &reason))?;
        }
        *self = next;
        Ok(())
    }

    /// Sets a parameter at start (file or command line): any parameter,
    /// mutable or not, as long as its value is valid and honoured.
    pub fn apply_start(&mut self, name: &str, value: &str) -> Result<(), String> {
        let row = params::lookup(name).ok_or_else(|| {
            format!("unknown parameter '{name}': not a cordis or Redis 7.0 parameter")
        })?;
        let current = self.value_of(row);
        let canonical = row
            .parse(value, &current)
            .and_then(|canonical| row.check_status(&canonical).map(|()| canonical))
            .map_err(|reason| format!("parameter '{name}': {reason}"))?;
        self.store(row, &canonical)
    }

    /// CONFIG REWRITE for the file the node started with (`None` when it
    /// started without one, which Redis reports as [`NO_CONFIG_FILE`]).
    pub fn rewrite_file(&self, config_file: Option<&str>) -> Result<(), String> {
        match config_file {
            Some(path) => self.rewrite(Path::new(path)),
            None => Err(NO_CONFIG_FILE.to_string()),
        }
    }

    /// CONFIG REWRITE: updates the TOML file at `path` so it holds the
    /// current value of every parameter that differs from its default.
    /// Keys already in the file are updated in place (their comments,
    /// order and value style kept); others are appended under a marker
    /// comment. As in Redis, keys in the file are rewritten even when they
    /// hold the default. The peer secret is never added (it belongs in the
    /// environment). The file is replaced atomically.
    pub fn rewrite(&self, path: &Path) -> Result<(), String> {
        let failed = |e: &dyn std::fmt::Display| format!("Rewriting config file: {e}");
        let text = std::fs::read_to_string(path).map_err(|e| failed(&e))?;
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| failed(&e))?;
        let mut appended = 0;
        for row in params::all() {
            let current = self.value_of(row);
            let key = row
                .names()
                .find(|n| doc.contains_key(n))
                .map(str::to_string);
            match key {
                Some(key) => {
                    let item = doc.get_mut(&key).expect("key was found");
                    let unchanged = item
                        .as_value()
                        .and_then(toml_edit_value_text)
                        .is_some_and(|old| old == current);
                    if !unchanged {
                        let old = item.as_value().cloned();
                        let mut value = rewritten_value(row, &current, old.as_ref());
                        if let Some(old) = old {
                            *value.decor_mut() = old.decor().clone();
                        }
                        *item = toml_edit::Item::Value(value);
                    }
                }
                None if current != row.start_default() && row.name != "peer-secret" => {
                    doc.insert(
                        row.name,
                        toml_edit::Item::Value(rewritten_value(row, &current, None)),
                    );
                    if appended == 0 {
                        if let Some(mut key) = doc.key_mut(row.name) {
                            key.leaf_decor_mut()
                                .set_prefix("\n# Generated by CONFIG REWRITE\n");
                        }
                    }
                    appended += 1;
                }
                None => {}
            }
        }
        let temp = path.with_file_name(format!(
            ".{}.rewrite-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("cordis.toml"),
            std::process::id()
        ));
        std::fs::write(&temp, doc.to_string()).map_err(|e| failed(&e))?;
        std::fs::rename(&temp, path).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            failed(&e)
        })
    }

    /// Typed fields, as CONFIG GET prints them; `None` for parameters kept
    /// in the value store.
    fn typed_value(&self, name: &str) -> Option<String> {
        Some(match name {
            "bind" => self.bind.clone(),
            "port" => self.port.to_string(),
            "maxclients" => self.maxclients.to_string(),
            "timeout" => self.timeout.to_string(),
            "requirepass" => self.requirepass.clone(),
            "replica-id" => self.replica_id.clone().unwrap_or_default(),
            "threads" => self.threads.to_string(),
            "loglevel" => self.loglevel.clone(),
            "proto-max-bulk-len" => self.proto_max_bulk_len.to_string(),
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "request-deadline" => self.request_deadline.to_string(),
            "hz" => self.hz.to_string(),
            "replication-log-bytes" => self.replication_log_bytes.to_string(),
            "peers" => self.peers.join(" "),
            "peer-port" => self.peer_port.map(|p| p.to_string()).unwrap_or_default(),
            "peer-secret" => self.peer_secret.clone(),
            "peer-timeout-ms" => self.peer_timeout_ms.to_string(),
            "peer-handshake-timeout-ms" => self.peer_handshake_timeout_ms.to_string(),
            "peer-heartbeat-ms" => self.peer_heartbeat_ms.to_string(),
            "max-clock-skew-ms" => self.max_clock_skew_ms.to_string(),
            "anti-entropy-interval-ms" => self.anti_entropy_interval_ms.to_string(),
            "reconnect-max-ms" => self.reconnect_max_ms.to_string(),
            _ => return None,
        })
    }

    /// Stores a validated canonical value in its typed field or the store.
    fn store(&mut self, row: &Param, text: &str) -> Result<(), String> {
        let name = row.name;
        match name {
            "bind" => self.bind = text.to_string(),
            "port" => self.port = parse_number(name, text)?,
            "maxclients" => self.maxclients = parse_number(name, text)?,
            "timeout" => self.timeout = parse_number(name, text)?,
            "requirepass" => self.requirepass = text.to_string(),
            "replica-id" => {
                self.replica_id = match text {
                    "" => None,
                    id => Some(parse_replica_id(id)?),
                }
            }
            "threads" => self.threads = parse_number(name, text)?,
            "loglevel" => self.loglevel = text.to_string(),
            "proto-max-bulk-len" => self.proto_max_bulk_len = parse_number(name, text)?,
            "client-query-buffer-limit" => {
                self.client_query_buffer_limit = parse_number(name, text)?
            }
            "request-deadline" => self.request_deadline = parse_number(name, text)?,
            "hz" => self.hz = parse_number(name, text)?,
            "replication-log-bytes" => self.replication_log_bytes = parse_number(name, text)?,
            "peers" => self.peers = params::words(text).into_iter().map(String::from).collect(),
            "peer-port" => {
                self.peer_port = match text {
                    "" => None,
                    port => Some(parse_number(name, port)?),
                }
            }
            "peer-secret" => self.peer_secret = text.to_string(),
            "peer-timeout-ms" => self.peer_timeout_ms = parse_number(name, text)?,
            "peer-handshake-timeout-ms" => {
                self.peer_handshake_timeout_ms = parse_number(name, text)?
            }
            "peer-heartbeat-ms" => self.peer_heartbeat_ms = parse_number(name, text)?,
            "max-clock-skew-ms" => self.max_clock_skew_ms = parse_number(name, text)?,
            "anti-entropy-interval-ms" => self.anti_entropy_interval_ms = parse_number(name, text)?,
            "reconnect-max-ms" => self.reconnect_max_ms = parse_number(name, text)?,
            _ => self.params.0[row.index()] = text.to_string(),
        }
        Ok(())
    }
}

/// A TOML value read back as parameter text (to skip unchanged keys).
fn toml_edit_value_text(value: &toml_edit::Value) -> Option<String> {
    Some(match value {
        toml_edit::Value::String(s) => s.value().clone(),
        toml_edit::Value::Integer(n) => n.value().to_string(),
        toml_edit::Value::Float(f) => f.value().to_string(),
        toml_edit::Value::Boolean(b) => params::yes_no(*b.value()).to_string(),
        toml_edit::Value::Array(items) => items
            .iter()
            .map(toml_edit_value_text)
            .collect::<Option<Vec<_>>>()?
            .join(" "),
        _ => return None,
    })
}

/// The TOML value CONFIG REWRITE writes: the old value's style when there
/// is one (integer, boolean, array), else one suited to the kind.
fn rewritten_value(row: &Param, text: &str, old: Option<&toml_edit::Value>) -> toml_edit::Value {
    let as_integer = || text.parse::<i64>().ok().map(toml_edit::Value::from);
    let as_bool = || match text {
        "yes" => Some(toml_edit::Value::from(true)),
        "no" => Some(toml_edit::Value::from(false)),
        _ => None,
    };
    let as_array = || {
        toml_edit::Value::Array(
            params::words(text)
                .into_iter()
                .collect::<toml_edit::Array>(),
        )
    };
    let styled = match old {
        Some(toml_edit::Value::Integer(_)) => as_integer(),
        Some(toml_edit::Value::Boolean(_)) => as_bool(),
        Some(toml_edit::Value::Array(_)) => Some(as_array()),
        Some(_) => None,
        None => match row.kind {
            params::Kind::Bool => as_bool(),
            params::Kind::Int { .. } | params::Kind::Memory { .. } => as_integer(),
            _ if row.name == "peers" => Some(as_array()),
            _ if row.name == "peer-port" || row.name == "hz" => as_integer(),
            _ => None,
        },
    };
    styled.unwrap_or_else(|| toml_edit::Value::from(text))
}

#[cfg(test)]
mod tests;
