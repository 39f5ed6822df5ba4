//! TLS on the client port, through real clients: the Rust `redis` crate
//! (rustls) and `redis-cli --tls`. Each test makes its own CA and
//! certificates with rcgen, binds the TLS listener on 127.0.0.1:0 and
//! checks what `tls-auth-clients`, `tls-protocols` and the cipher
//! parameters let through, that the plain port keeps working beside the
//! TLS one, and that values rustls cannot honour stop the start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cordis::config::{Cli, Config};
use cordis::server::ServerHandle;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and a certificate it signed, as PEM text.
struct Issued {
    cert: String,
    key: String,
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    /// A leaf for 127.0.0.1/localhost, usable by a server or a client.
    fn issue(&self, name: &str) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A temporary directory with the PEM files a node and its clients read;
/// removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Files {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cordis-tls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything one test needs: a CA, the server's files, a client pair.
struct Pki {
    // Kept for its Drop, which removes the PEM files.
    _files: Files,
    ca: Ca,
    ca_file: String,
    server_cert: String,
    server_key: String,
    client: Issued,
    client_cert: String,
    client_key: String,
}

impl Pki {
    fn new() -> Pki {
        let files = Files::new();
        let ca = Ca::new("cordis test CA");
        let server = ca.issue("cordis test server");
        let client = ca.issue("cordis test client");
        Pki {
            ca_file: files.write("ca.crt", &ca.pem()),
            server_cert: files.write("server.crt", &server.cert),
            server_key: files.write("server.key", &server.key),
            client_cert: files.write("client.crt", &client.cert),
            client_key: files.write("client.key", &client.key),
            client,
            ca,
            _files: files,
        }
    }

    /// The node's flags for these files plus `extra`.
    fn config(&self, extra: &[&str]) -> Result<Config, String> {
        let mut args = vec![
            "cordis",
            "--tls-cert-file",
            &self.server_cert,
            "--tls-key-file",
            &self.server_key,
            "--tls-ca-cert-file",
            &self.ca_file,
        ];
        args.extend_from_slice(extra);
        let cli = Cli::parse_args(args).map_err(|e| e.to_string())?;
        let mut config = Config::load(&cli)?;
        config.bind = "127.0.0.1".into();
        config.port = 0;
        Ok(config)
    }
}

/// A node with a TLS listener on 127.0.0.1:0, on its own runtime.
struct TlsNode {
    rt: tokio::runtime::Runtime,
    handle: Option<ServerHandle>,
    plain: SocketAddr,
    tls: SocketAddr,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl TlsNode {
    fn try_start(config: Config) -> std::io::Result<TlsNode> {
        let rt = runtime();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let handle = rt.block_on(cordis::server::start_with_listeners(
            config,
            None,
            None,
            Some(listener),
        ))?;
        Ok(TlsNode {
            plain: handle.local_addr,
            tls: handle.tls_addr.expect("TLS listener bound"),
            handle: Some(handle),
            rt,
        })
    }

    fn start(config: Config) -> TlsNode {
        TlsNode::try_start(config).expect("node starts")
    }

    fn info_field(&self, field: &str) -> String {
        let client = redis::Client::open(format!("redis://{}", self.plain)).unwrap();
        let mut conn = client.get_connection().unwrap();
        let info: String = redis::cmd("INFO").query(&mut conn).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("INFO has no {field}"))
            .to_string()
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.rt.block_on(handle.shutdown());
        }
    }
}

/// A `redis` crate client for the TLS port, trusting `ca_pem`, presenting
/// `client` when given.
fn redis_tls_client(addr: SocketAddr, ca_pem: &str, client: Option<&Issued>) -> redis::Client {
    redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{}", addr.port()),
        redis::TlsCertificates {
            client_tls: client.map(|c| redis::ClientTlsConfig {
                client_cert: c.cert.clone().into_bytes(),
                client_key: c.key.clone().into_bytes(),
            }),
            root_cert: Some(ca_pem.as_bytes().to_vec()),
        },
    )
    .unwrap()
}

/// SET then GET through the `redis` crate over TLS; the error if the
/// connection or a command fails.
async fn set_get(client: &redis::Client, key: &str) -> redis::RedisResult<String> {
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "connect timed out")))??;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("over tls")
        .query_async(&mut conn)
        .await?;
    redis::cmd("GET").arg(key).query_async(&mut conn).await
}

#[test]
fn redis_crate_over_tls_without_client_certificates() {
    let pki = Pki::new();
    let node = TlsNode::start(pki.config(&["--tls-auth-clients", "no"]).unwrap());
    let client = redis_tls_client(node.tls, &pki.ca.pem(), None);
    let got = node
        .rt
        .block_on(set_get(&client, "k"))
        .expect("TLS client served");
    assert_eq!(got, "over tls");
    // The plain port serves the same data beside it.
    let plain = redis::Client::open(format!("redis://{}", node.plain)).unwrap();
    let mut conn = plain.get_connection().unwrap();
    let value: String = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(value, "over tls");
    // A client that does not trust the node's CA refuses it.
    let stranger = Ca::new("another CA");
    let wrong = redis_tls_client(node.tls, &stranger.pem(), None);
    assert!(node.rt.block_on(set_get(&wrong, "k2")).is_err());
    // The tls-* values read back as set.
    let tls_port: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-auth-clients")
        .query(&mut conn)
        .unwrap();
    assert_eq!(tls_port, ["tls-auth-clients", "no"]);
}

#[test]
fn client_certificates_are_required_by_default() {
    let pki = Pki::new();
    let node = TlsNode::start(pki.config(&[]).unwrap());
    let with_cert = redis_tls_client(node.tls, &pki.ca.pem(), Some(&pki.client));
    assert_eq!(
        node.rt.block_on(set_get(&with_cert, "a")).unwrap(),
        "over tls"
    );
    let without = redis_tls_client(node.tls, &pki.ca.pem(), None);
    assert!(
        node.rt.block_on(set_get(&without, "b")).is_err(),
        "no client certificate"
    );
    // A certificate from a CA the node does not trust is refused too.
    let stranger = Ca::new("another CA").issue("intruder");
    let forged = redis_tls_client(node.tls, &pki.ca.pem(), Some(&stranger));
    assert!(node.rt.block_on(set_get(&forged, "c")).is_err());
    let failures: u64 = node.info_field("tls_handshake_failures").parse().unwrap();
    assert!(failures >= 2, "refused handshakes are counted: {failures}");
}

#[test]
fn optional_client_certificates_admit_both_kinds() {
    let pki = Pki::new();
    let node = TlsNode::start(pki.config(&["--tls-auth-clients", "optional"]).unwrap());
    let with_cert = redis_tls_client(node.tls, &pki.ca.pem(), Some(&pki.client));
    let without = redis_tls_client(node.tls, &pki.ca.pem(), None);
    assert!(node.rt.block_on(set_get(&with_cert, "a")).is_ok());
    assert!(node.rt.block_on(set_get(&without, "b")).is_ok());
    // Optional is not "anything": an untrusted certificate is still refused.
    let stranger = Ca::new("another CA").issue("intruder");
    let forged = redis_tls_client(node.tls, &pki.ca.pem(), Some(&stranger));
    assert!(node.rt.block_on(set_get(&forged, "c")).is_err());
}

/// A raw rustls client limited to `versions`; `Ok` when the handshake
/// completes and PING answers PONG.
async fn raw_tls_ping(
    addr: SocketAddr,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let run = async {
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"PING\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 7];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        if &buf == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(format!("unexpected reply {buf:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[test]
fn tls_protocols_limit_the_versions_offered() {
    let pki = Pki::new();
    let node = TlsNode::start(
        pki.config(&["--tls-auth-clients", "no", "--tls-protocols", "TLSv1.3"])
            .unwrap(),
    );
    let ca = pki.ca.pem();
    node.rt
        .block_on(raw_tls_ping(node.tls, &ca, &[&rustls::version::TLS13]))
        .expect("TLS 1.3 served");
    assert!(node
        .rt
        .block_on(raw_tls_ping(node.tls, &ca, &[&rustls::version::TLS12]))
        .is_err());
    drop(node);
    // With both (the default), a TLS 1.2-only client is served.
    let node = TlsNode::start(pki.config(&["--tls-auth-clients", "no"]).unwrap());
    node.rt
        .block_on(raw_tls_ping(node.tls, &ca, &[&rustls::version::TLS12]))
        .expect("TLS 1.2 served");
}

#[test]
fn garbage_on_the_tls_port_is_closed_and_counted() {
    let pki = Pki::new();
    let node = TlsNode::start(pki.config(&["--tls-auth-clients", "no"]).unwrap());
    let mut plain = std::net::TcpStream::connect(node.tls).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    use std::io::{Read, Write};
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"+PONG"),
        "plain RESP must not be served on the TLS port"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while node.info_field("tls_handshake_failures") == "0" {
        assert!(std::time::Instant::now() < deadline, "failure not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The node still serves TLS clients.
    let client = redis_tls_client(node.tls, &pki.ca.pem(), None);
    assert!(node.rt.block_on(set_get(&client, "after")).is_ok());
}

#[test]
fn values_rustls_cannot_honour_stop_the_start() {
    let pki = Pki::new();
    let refused = |extra: &[&str]| -> String {
        let config = match pki.config(extra) {
            Ok(config) => config,
            Err(e) => return e,
        };
        match TlsNode::try_start(config) {
            Ok(_) => panic!("{extra:?} was accepted"),
            Err(e) => e.to_string(),
        }
    };
    assert!(refused(&["--tls-protocols", "TLSv1.1"]).contains("TLSv1.2 and TLSv1.3"));
    assert!(refused(&["--tls-ciphers", "HIGH:!aNULL"]).contains("tls-ciphers"));
    assert!(refused(&["--tls-ciphersuites", "TLS_AES_128_CCM_SHA256"]).contains("tls-ciphersuites"));
    assert!(refused(&["--tls-key-file-pass", "secret"]).contains("unencrypted"));
    // Checking client certificates needs a CA.
    let cli = Cli::parse_args([
        "cordis",
        "--tls-cert-file",
        &pki.server_cert,
        "--tls-key-file",
        &pki.server_key,
    ])
    .unwrap();
    let mut config = Config::load(&cli).unwrap();
    config.port = 0;
    let err = TlsNode::try_start(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("tls-ca-cert-file"), "{err}");
    // A key file that holds no key.
    let err = refused(&["--tls-key-file", &pki.ca_file]);
    assert!(err.contains("private key"), "{err}");
}

#[test]
fn runtime_changes_to_tls_settings_are_refused() {
    let pki = Pki::new();
    let node = TlsNode::start(pki.config(&["--tls-auth-clients", "no"]).unwrap());
    let plain = redis::Client::open(format!("redis://{}", node.plain)).unwrap();
    let mut conn = plain.get_connection().unwrap();
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-auth-clients")
        .arg("yes")
        .query::<()>(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");
    // Restating the current value is accepted (Redis's CONFIG sanity test).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-auth-clients")
        .arg("no")
        .query(&mut conn)
        .unwrap();
}

#[test]
fn redis_cli_with_tls_and_a_client_certificate() {
    let pki = Pki::new();
    let node = TlsNode::start(pki.config(&[]).unwrap());
    let port = node.tls.port().to_string();
    let run = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--tls",
                "--cacert",
                &pki.ca_file,
            ])
            .args(args)
            .output()
            .expect("redis-cli is installed (.ci/run installs redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + &String::from_utf8_lossy(&out.stderr)
    };
    let with_cert = ["--cert", &pki.client_cert, "--key", &pki.client_key];
    let mut set = with_cert.to_vec();
    set.extend(["SET", "cli", "value"]);
    assert_eq!(run(&set), "OK");
    let mut get = with_cert.to_vec();
    get.extend(["GET", "cli"]);
    assert_eq!(run(&get), "value");
    // Without a certificate the node refuses the handshake.
    let refused = run(&["PING"]);
    assert!(!refused.contains("PONG"), "{refused}");
}
