//! Peer links over TLS (`tls-replication yes`): two nodes whose
//! certificates chain to one CA replicate through the encrypted link with
//! the shared secret inside it; a node with a certificate from another CA,
//! or one that speaks plain TCP, is refused, counted and changes nothing.
//! Certificates are made per test with rcgen; every port is 127.0.0.1:0.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use cordis::config::Config;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use support::Node;

const SECRET: &str = "test-peer-secret";

/// A CA, and a directory of PEM files it issued (removed on drop).
struct Pki {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, tag);
        let cert = params.self_signed(&key).unwrap();
        let dir =
            std::env::temp_dir().join(format!("cordis-peer-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
        Pki { cert, key, dir }
    }

    /// Writes a certificate for 127.0.0.1 and its key; returns their paths.
    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let (c, k) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    fn ca_file(&self) -> String {
        self.dir.join("ca.crt").display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn config(peers: Vec<String>) -> Config {
    Config {
        peers,
        peer_secret: SECRET.into(),
        peer_heartbeat_ms: 100,
        peer_timeout_ms: 1500,
        reconnect_max_ms: 200,
        ..Config::default()
    }
}

/// `config` with peer TLS on, trusting `trust`'s CA and presenting a
/// certificate `issuer` signed.
fn tls_config(peers: Vec<String>, issuer: &Pki, trust: &Pki, name: &str) -> Config {
    let mut c = config(peers);
    let (cert, key) = issuer.issue(name);
    for (param, value) in [
        ("tls-replication", "yes"),
        ("tls-cert-file", cert.as_str()),
        ("tls-key-file", key.as_str()),
        ("tls-ca-cert-file", trust.ca_file().as_str()),
    ] {
        c.apply_start(param, value).unwrap();
    }
    c
}

fn info_field(node: &Node, field: &str) -> u64 {
    let info = node.connect().call_text(&["INFO", "replication"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn peers_with_certificates_from_the_ca_replicate_over_tls() {
    let pki = Pki::new("good");
    let (la, lb) = (bind(), bind());
    let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let a = Node::member(
        tls_config(vec![b_addr.to_string()], &pki, &pki, "a"),
        Some(la),
    );
    let b = Node::member(
        tls_config(vec![a_addr.to_string()], &pki, &pki, "b"),
        Some(lb),
    );
    let mut ca = a.connect();
    for i in 0..50 {
        ca.call_str(&["SADD", "s", &i.to_string()]);
    }
    b.connect().call_str(&["INCRBY", "n", "7"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut cb = b.connect();
    loop {
        let card = cb.call_text(&["SCARD", "s"]);
        let n = ca.call_text(&["GET", "n"]);
        if card.contains("50") && n.contains('7') {
            break;
        }
        assert!(Instant::now() < deadline, "not replicated: {card:?} {n:?}");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(&a, "peer_handshakes_refused"), 0);
}

#[test]
fn a_peer_with_a_certificate_from_another_ca_is_refused() {
    let good = Pki::new("trusted");
    let rogue = Pki::new("rogue");
    let (la, lx) = (bind(), bind());
    let (a_addr, x_addr) = (la.local_addr().unwrap(), lx.local_addr().unwrap());
    let a = Node::member(
        tls_config(vec![x_addr.to_string()], &good, &good, "a"),
        Some(la),
    );
    // x knows the secret and trusts a's CA, but its own certificate is
    // the rogue CA's.
    let x = Node::member(
        tls_config(vec![a_addr.to_string()], &rogue, &good, "x"),
        Some(lx),
    );
    let mut cx = x.connect();
    for i in 0..20 {
        cx.call_str(&["SET", &format!("k{i}"), "v"]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&a, "peer_handshakes_refused") == 0 {
        assert!(
            Instant::now() < deadline,
            "the rogue peer was never refused"
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(500));
    assert!(a.connect().call_text(&["DBSIZE"]).contains(":0"));
    assert_eq!(info_field(&a, "connected_peers"), 0);
}

#[test]
fn a_plain_tcp_peer_is_refused_by_a_tls_node() {
    let pki = Pki::new("plain");
    let (la, lx) = (bind(), bind());
    let (a_addr, x_addr) = (la.local_addr().unwrap(), lx.local_addr().unwrap());
    let a = Node::member(
        tls_config(vec![x_addr.to_string()], &pki, &pki, "a"),
        Some(la),
    );
    let x = Node::member(config(vec![a_addr.to_string()]), Some(lx));
    x.connect().call_str(&["SET", "k", "v"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&a, "peer_handshakes_refused") == 0 {
        assert!(
            Instant::now() < deadline,
            "the plain peer was never refused"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(a.connect().call_text(&["DBSIZE"]).contains(":0"));
    assert_eq!(info_field(&x, "connected_peers"), 0);
}
