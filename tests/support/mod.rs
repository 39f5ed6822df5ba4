//! The shared in-process node harness for the integration tests that talk
//! to a node over a real socket (`protocol_raw.rs`, `commands_over_socket.rs`).
//!
//! - [`Node`] starts a node on its own tokio runtime; every node binds
//!   `127.0.0.1:0`, so tests never fight over a port, and is shut down when
//!   its `Node` is dropped.
//! - [`Raw`] is a plain `std::net::TcpStream` client that reads exactly one
//!   RESP2/RESP3 reply at a time, for checking replies byte for byte; every
//!   read and write has a timeout, so a silent node fails a test instead of
//!   hanging it.
//!
//! - [`inproc`] runs nodes without sockets for the convergence suites, and
//!   [`sim`] is the seeded cluster simulation over real peer links
//!   (`tests/simulation.rs`).
//! - [`proxy`] is a fault-injecting TCP proxy for links between nodes
//!   (cut, delay, sever), and [`Node::member`] starts a node of a cluster.
//!
//! Each test binary uses only part of this module, hence the
//! module-wide `allow(dead_code)`.

#![allow(dead_code)]

pub mod client;
pub mod inproc;
pub mod key_model;
pub mod sim;

#[allow(dead_code)]
pub mod proxy;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cordis::config::Config;
use cordis::server::ServerHandle;

/// The timeout on every connect, read and write unless a test asks for less.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A node on its own runtime, listening on `127.0.0.1:<ephemeral>`; shut
/// down on drop.
pub struct Node {
    rt: tokio::runtime::Runtime,
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

impl Node {
    #[allow(dead_code)]
    pub fn start() -> Node {
        Node::with(Config::default())
    }

    /// Starts a node with `config`, overriding its bind address and port.
    #[allow(dead_code)]
    pub fn with(config: Config) -> Node {
        Node::member(config, None)
    }

    /// Starts a node from a TOML file, as `cordis --config FILE` does (the
    /// file's bind address and port are overridden), so CONFIG REWRITE has
    /// a file to write.
    #[allow(dead_code)]
    pub fn from_file(path: &std::path::Path) -> Node {
        let cli = cordis::config::Cli {
            config: Some(path.to_path_buf()),
            ..Default::default()
        };
        let config = Config::load(&cli).expect("config file loads");
        Node::start_with(config, Some(path.display().to_string()), None)
    }

    /// Starts a node of a cluster: `peer_listener` (bound by the test on
    /// 127.0.0.1:0, so every node's peer address is known before any
    /// starts) receives peer links; `config.peers` lists where to dial.
    pub fn member(config: Config, peer_listener: Option<std::net::TcpListener>) -> Node {
        Node::start_with(config, None, peer_listener)
    }

    fn start_with(
        mut config: Config,
        config_file: Option<String>,
        peer_listener: Option<std::net::TcpListener>,
    ) -> Node {
        config.bind = "127.0.0.1".into();
        config.port = 0;
        // Snapshots (a test may configure save points) go to a directory of
        // the node's own, never the working directory other nodes load from.
        static NODES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cordis-test-node-{}-{}",
            std::process::id(),
            NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("node dir");
        config
            .apply_start("dir", dir.to_str().expect("utf-8 temp dir"))
            .expect("dir is accepted");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let handle = rt
            .block_on(cordis::server::start_with_peer_listener(
                config,
                config_file,
                peer_listener,
            ))
            .expect("node starts");
        // Tests ship batches between nodes by hand (`replicate`) even when
        // no peers are configured, so every test node keeps its delta log.
        handle.state.store.lock().keep_delta_log = true;
        let addr = handle.local_addr;
        Node {
            rt,
            handle: Some(handle),
            addr,
        }
    }

    /// A fresh raw connection to the node.
    pub fn connect(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// The node's shared state (its store, replication status).
    #[allow(dead_code)]
    pub fn state(&self) -> &std::sync::Arc<cordis::commands::ServerState> {
        &self.handle.as_ref().expect("running").state
    }

    pub fn connected_clients(&self) -> usize {
        self.handle.as_ref().unwrap().state.clients.len()
    }

    /// A fresh connection answers PING: the node is alive and well.
    #[allow(dead_code)]
    pub fn assert_serving(&self) {
        let mut c = self.connect();
        c.send(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(c.reply(), b"+PONG\r\n");
    }
}

impl Node {
    /// Shuts the node down now (dropping it does the same); the listener
    /// closes and so does every client connection.
    pub fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.rt.block_on(handle.shutdown());
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A raw socket that reads exactly one RESP reply at a time (RESP2 or 3).
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connects");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a command as a RESP multibulk and returns the reply's bytes.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&multibulk(args));
        self.reply()
    }

    /// [`Raw::call`] with text arguments.
    pub fn call_str(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&args)
    }

    /// [`Raw::call_str`], with the reply as text.
    #[allow(dead_code)]
    pub fn call_text(&mut self, args: &[&str]) -> String {
        String::from_utf8(self.call_str(args)).unwrap()
    }

    /// Reads exactly one complete RESP reply.
    pub fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = reply_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("reply within timeout");
            assert!(
                n > 0,
                "connection closed mid-reply: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Asserts the server closes the connection within `within`, having
    /// sent nothing more than what is already buffered.
    #[allow(dead_code)]
    pub fn expect_closed(&mut self, within: Duration) {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let start = Instant::now();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "not closed after {:?}: {e} (buffered {:?})",
                    start.elapsed(),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Asserts nothing arrives (and the connection stays open) for `quiet`.
    #[allow(dead_code)]
    pub fn expect_silence(&mut self, quiet: Duration) {
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("connection closed"),
            Ok(n) => panic!(
                "unexpected reply {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("read failed: {e}"),
        }
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
}

/// `args` encoded as a RESP multibulk request.
pub fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Length of the first complete RESP2/RESP3 value in `buf`, if complete.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = line.parse().ok()?;
            let items = if matches!(buf[0], b'%' | b'|') {
                n * 2
            } else {
                n
            };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        other => panic!("not RESP: {:?}", *other as char),
    }
}
