//! Node settings: command-line flags (clap) merged over a TOML file
//! (`--config FILE`, see `configs/cordis.toml` for every key and default),
//! and the runtime view CONFIG GET/SET reads and changes.
//!
//! Precedence: built-in default < TOML file < command-line flag.

use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

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
    /// Stable replica id (hex, up to 16 digits); generated if absent.
    #[arg(long)]
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
}

/// Environment variable holding the peer secret.
pub const PEER_SECRET_ENV: &str = "CORDIS_PEER_SECRET";

/// The TOML file's shape (kebab-case keys, all optional).
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    port: Option<u16>,
    maxclients: Option<usize>,
    timeout: Option<u64>,
    requirepass: Option<String>,
    replica_id: Option<String>,
    threads: Option<usize>,
    loglevel: Option<String>,
    proto_max_bulk_len: Option<usize>,
    client_query_buffer_limit: Option<usize>,
    request_deadline: Option<u64>,
    hz: Option<u32>,
    replication_log_bytes: Option<usize>,
    peers: Option<Vec<String>>,
    peer_port: Option<u16>,
    peer_secret: Option<String>,
    peer_timeout_ms: Option<u64>,
    peer_heartbeat_ms: Option<u64>,
    max_clock_skew_ms: Option<u64>,
    anti_entropy_interval_ms: Option<u64>,
    reconnect_max_ms: Option<u64>,
}

/// Effective settings of a node.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub maxclients: usize,
    /// Idle timeout in seconds (0 = none).
    pub timeout: u64,
    /// Empty = no password.
    pub requirepass: String,
    pub replica_id: Option<u64>,
    pub threads: usize,
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
    /// Heartbeat period (ms) of an otherwise idle peer link.
    pub peer_heartbeat_ms: u64,
    /// Remote timestamps more than this far ahead (ms) are flagged.
    pub max_clock_skew_ms: u64,
    /// Anti-entropy digest exchange period (ms); 0 = off.
    pub anti_entropy_interval_ms: u64,
    /// Ceiling (ms) of the reconnect backoff.
    pub reconnect_max_ms: u64,
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
            peer_heartbeat_ms: 1000,
            max_clock_skew_ms: 5000,
            anti_entropy_interval_ms: 30_000,
            reconnect_max_ms: 5000,
        }
    }
}

/// Parses a replica id given in hex.
pub fn parse_replica_id(text: &str) -> Result<u64, String> {
    let t = text.trim_start_matches("0x");
    if t.is_empty() || t.len() > 16 {
        return Err(format!("replica id '{text}' must be 1 to 16 hex digits"));
    }
    u64::from_str_radix(t, 16).map_err(|_| format!("replica id '{text}' is not hex"))
}

impl Config {
    /// Defaults, then the file named by `--config`, then the flags.
    pub fn load(cli: &Cli) -> Result<Config, String> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let file: FileConfig =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            config.apply_file(file)?;
        }
        if let Some(v) = &cli.bind {
            config.bind = v.clone();
        }
        if let Some(v) = cli.port {
            config.port = v;
        }
        if let Some(v) = cli.maxclients {
            config.maxclients = v;
        }
        if let Some(v) = cli.timeout {
            config.timeout = v;
        }
        if let Some(v) = &cli.requirepass {
            config.requirepass = v.clone();
        }
        if let Some(v) = &cli.replica_id {
            config.replica_id = Some(parse_replica_id(v)?);
        }
        if let Some(v) = cli.threads {
            config.threads = v;
        }
        if let Some(v) = &cli.loglevel {
            config.loglevel = v.clone();
        }
        config.peers.extend(cli.peers.iter().cloned());
        if let Some(v) = cli.peer_port {
            config.peer_port = Some(v);
        }
        if let Ok(v) = std::env::var(PEER_SECRET_ENV) {
            config.peer_secret = v;
        }
        if let Some(v) = &cli.peer_secret {
            config.peer_secret = v.clone();
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

    fn apply_file(&mut self, file: FileConfig) -> Result<(), String> {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = file.$field { self.$field = v; } )* };
        }
        take!(
            bind,
            port,
            maxclients,
            timeout,
            requirepass,
            threads,
            loglevel,
            proto_max_bulk_len,
            client_query_buffer_limit,
            request_deadline,
            hz,
            replication_log_bytes,
            peer_secret,
            peer_timeout_ms,
            peer_heartbeat_ms,
            max_clock_skew_ms,
            anti_entropy_interval_ms,
            reconnect_max_ms
        );
        if let Some(peers) = file.peers {
            self.peers = peers;
        }
        if let Some(p) = file.peer_port {
            self.peer_port = Some(p);
        }
        if let Some(id) = file.replica_id {
            self.replica_id = Some(parse_replica_id(&id)?);
        }
        Ok(())
    }

    /// Parameter names CONFIG GET knows, in a stable order.
    pub const NAMES: &'static [&'static str] = &[
        "bind",
        "port",
        "maxclients",
        "timeout",
        "requirepass",
        "databases",
        "proto-max-bulk-len",
        "client-query-buffer-limit",
        "request-deadline",
        "hz",
        "replication-log-bytes",
        "save",
        "appendonly",
        "maxmemory",
        "maxmemory-policy",
    ];

    /// The current value of a parameter as CONFIG GET prints it.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "bind" => self.bind.clone(),
            "port" => self.port.to_string(),
            "maxclients" => self.maxclients.to_string(),
            "timeout" => self.timeout.to_string(),
            "requirepass" => self.requirepass.clone(),
            "databases" => crate::store::DB_COUNT.to_string(),
            "proto-max-bulk-len" => self.proto_max_bulk_len.to_string(),
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "request-deadline" => self.request_deadline.to_string(),
            "hz" => self.hz.to_string(),
            "replication-log-bytes" => self.replication_log_bytes.to_string(),
            // Fixed: cordis keeps no snapshot or AOF (peers are the
            // durability) and has no eviction yet.
            "save" => String::new(),
            "appendonly" => "no".into(),
            "maxmemory" => "0".into(),
            "maxmemory-policy" => "noeviction".into(),
            _ => return None,
        })
    }

    /// Changes a parameter at runtime (CONFIG SET). The error is the text
    /// after "ERR " in Redis's reply.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let invalid = |reason: &str| {
            format!("CONFIG SET failed (possibly related to argument '{name}') - {reason}")
        };
        let number = |v: &str| -> Result<u64, String> {
            parse_memory_or_number(v)
                .ok_or_else(|| invalid("argument couldn't be parsed into an integer"))
        };
        match name {
            "maxclients" => self.maxclients = number(value)?.max(1) as usize,
            "timeout" => self.timeout = number(value)?,
            "requirepass" => self.requirepass = value.to_string(),
            "proto-max-bulk-len" => {
                let v = number(value)?;
                if v < 1024 * 1024 {
                    return Err(invalid(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.proto_max_bulk_len = v as usize
            }
            "client-query-buffer-limit" => {
                let v = number(value)?;
                if v < 1024 * 1024 {
                    return Err(invalid(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.client_query_buffer_limit = v as usize
            }
            "request-deadline" => self.request_deadline = number(value)?,
            "hz" => {
                let v = number(value)?;
                self.hz = v.clamp(1, 500) as u32
            }
            "replication-log-bytes" => self.replication_log_bytes = number(value)? as usize,
            "bind" | "port" | "databases" | "save" | "appendonly" | "maxmemory"
            | "maxmemory-policy" => return Err(invalid("can't set immutable config")),
            _ => {
                return Err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{name}'"
                ))
            }
        }
        Ok(())
    }
}

/// Parses "123", "10kb", "64mb", "1gb" (Redis's memory units).
pub fn parse_memory_or_number(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = lower.strip_suffix(suffix) {
            return n.parse::<u64>().ok()?.checked_mul(factor);
        }
    }
    lower.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("cordis-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "port = 7000\nmaxclients = 5\nhz = 20\n").unwrap();
        let cli = Cli {
            config: Some(path),
            port: Some(7001),
            ..Cli::default()
        };
        let config = Config::load(&cli).unwrap();
        assert_eq!(config.port, 7001);
        assert_eq!(config.maxclients, 5);
        assert_eq!(config.hz, 20);
        assert_eq!(config.bind, "127.0.0.1");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let parsed: Result<FileConfig, _> = toml::from_str("no-such-key = 1");
        assert!(parsed.is_err());
    }

    #[test]
    fn shipped_example_config_parses() {
        let text = include_str!("../configs/cordis.toml");
        let parsed: FileConfig = toml::from_str(text).expect("configs/cordis.toml parses");
        assert_eq!(parsed.port, Some(6379));
    }

    #[test]
    fn region_examples_parse_and_list_the_other_regions() {
        for text in [
            include_str!("../configs/region-1.toml"),
            include_str!("../configs/region-2.toml"),
            include_str!("../configs/region-3.toml"),
        ] {
            let parsed: FileConfig = toml::from_str(text).expect("region config parses");
            assert_eq!(parsed.peers.map(|p| p.len()), Some(2));
            assert!(parsed.peer_port.is_some());
        }
    }

    #[test]
    fn peer_flags_add_to_the_file_and_the_peer_port_follows_the_client_port() {
        let cli = Cli::try_parse_from([
            "cordis",
            "--peer",
            "10.0.0.1:16379",
            "--peer",
            "10.0.0.2:16379",
            "--peer-secret",
            "s",
        ])
        .unwrap();
        let config = Config::load(&cli).unwrap();
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.peer_secret, "s");
        assert!(config.replication_enabled());
        assert_eq!(config.effective_peer_port(), Ok(16379));
        let ephemeral = Config {
            port: 0,
            ..Config::default()
        };
        assert_eq!(ephemeral.effective_peer_port(), Ok(0));
        assert!(!Config::default().replication_enabled());
    }

    #[test]
    fn config_set_validates_and_names_unknown_options() {
        let mut c = Config::default();
        c.set("maxclients", "50").unwrap();
        assert_eq!(c.get("maxclients").as_deref(), Some("50"));
        assert!(c.set("maxclients", "abc").is_err());
        assert_eq!(
            c.set("nope", "1").unwrap_err(),
            "Unknown option or number of arguments for CONFIG SET - 'nope'"
        );
        assert_eq!(parse_memory_or_number("64mb"), Some(64 * 1024 * 1024));
    }
}
