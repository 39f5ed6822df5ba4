//! The `cordis` binary as an operator starts it: settings from the
//! environment, refused values at start. Each test starts the real binary
//! on 127.0.0.1:0, reads its ready line, and kills it by its own handle.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `cordis` process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` and `env`, returning it and the client
/// address from its ready line.
fn start(args: &[&str], env: &[(&str, &str)]) -> (Process, String) {
    start_command(Command::new(env!("CARGO_BIN_EXE_cordis")), args, env)
}

fn start_command(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> (Process, String) {
    command
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .args(args)
        .env_remove("CORDIS_REQUIREPASS")
        .env_remove("CORDIS_PEER_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("cordis starts");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child);
    // Other lines (a generated replica id) may come first.
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.starts_with("cordis ready: "))
        .expect("a ready line");
    let addr = ready
        .strip_prefix("cordis ready: listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {ready}"))
        .to_string();
    (process, addr)
}

/// Sends one inline command and returns the first reply line.
fn call(addr: &str, command: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap();
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).expect("a reply");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_client_password_can_come_from_the_environment() {
    let (_node, addr) = start(&[], &[("CORDIS_REQUIREPASS", "s3cret")]);
    assert_eq!(call(&addr, "GET k"), "-NOAUTH Authentication required.");
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"AUTH s3cret\r\nPING\r\n").unwrap();
    let mut reply = Vec::new();
    while reply.len() < "+OK\r\n+PONG\r\n".len() {
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        reply.extend_from_slice(&buf[..n]);
    }
    assert_eq!(reply, b"+OK\r\n+PONG\r\n");
}

#[test]
fn the_requirepass_flag_beats_the_environment() {
    let (_node, addr) = start(
        &["--requirepass", "from-flag"],
        &[("CORDIS_REQUIREPASS", "from-env")],
    );
    assert!(call(&addr, "AUTH from-env").starts_with("-WRONGPASS"));
    assert_eq!(call(&addr, "AUTH from-flag"), "+OK");
}

#[test]
fn a_value_asking_for_a_missing_feature_stops_the_start_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_cordis"))
        .args(["--port", "0", "--no-appendfsync-on-rewrite", "yes"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-appendfsync-on-rewrite"), "{stderr}");
}

#[test]
fn maxclients_is_lowered_to_fit_a_small_file_limit_and_clients_get_an_error() {
    // `ulimit -n 64` sets both limits, so the node cannot raise its own.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        r#"ulimit -n 64 && exec "$0" "$@""#,
        env!("CARGO_BIN_EXE_cordis"),
        "--maxclients",
        "10000",
    ]);
    let (_node, addr) = start_command(command, &[], &[]);
    let mut first = TcpStream::connect(&addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first.write_all(b"CONFIG GET maxclients\r\n").unwrap();
    let mut buf = [0u8; 128];
    let n = first.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        reply.contains("\r\n32\r\n"),
        "64 open files - 32 reserved: {reply}"
    );
    // One more client than fits gets Redis's error instead of hanging.
    let mut held = vec![first];
    let mut refused = None;
    for _ in 0..40 {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"PING\r\n").unwrap();
        let n = c.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("-ERR max number of clients reached") {
            refused = Some(held.len());
            break;
        }
        assert_eq!(text, "+PONG\r\n");
        held.push(c);
    }
    assert_eq!(
        refused,
        Some(32),
        "the 33rd client is refused with an error"
    );
}
