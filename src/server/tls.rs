//! TLS for the client port: Redis's `tls-*` parameters turned into a
//! rustls server configuration (certificate and key, the CA that client
//! certificates must chain to, `tls-auth-clients`, protocol versions,
//! cipher suites, session caching), and the acceptor the TLS listener uses.
//! Values rustls cannot honour are refused at start with a reason rather
//! than silently ignored. Peer links' TLS configuration ([`peer_tls`]) is
//! built here from the same parameters.
//!
//! Certificates and keys are read from PEM files once, at start; the
//! parameters are start-only (CONFIG SET may restate, not change, them).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::Config;
use crate::replication::tls::PeerTls;

/// Whether clients must present a certificate (`tls-auth-clients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    No,
    Yes,
    Optional,
}

/// The port's TLS settings as read from the config, before any file is
/// opened.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub auth_clients: ClientAuth,
    pub protocols: String,
    pub ciphers: String,
    pub ciphersuites: String,
    pub prefer_server_ciphers: bool,
    pub session_caching: bool,
    pub session_cache_size: usize,
}

impl TlsSettings {
    /// Reads the `tls-*` parameters.
    pub fn from_config(config: &Config) -> TlsSettings {
        let text = |name: &str| config.get(name).unwrap_or_default();
        TlsSettings {
            cert_file: text("tls-cert-file"),
            key_file: text("tls-key-file"),
            ca_cert_file: text("tls-ca-cert-file"),
            ca_cert_dir: text("tls-ca-cert-dir"),
            auth_clients: match text("tls-auth-clients").as_str() {
                "no" => ClientAuth::No,
                "optional" => ClientAuth::Optional,
                _ => ClientAuth::Yes,
            },
            protocols: text("tls-protocols"),
            ciphers: text("tls-ciphers"),
            ciphersuites: text("tls-ciphersuites"),
            prefer_server_ciphers: text("tls-prefer-server-ciphers") == "yes",
            session_caching: text("tls-session-caching") != "no",
            session_cache_size: text("tls-session-cache-size").parse().unwrap_or(20480),
        }
    }
}

/// The TLS port configured (`tls-port`), or `None` when TLS is off.
pub fn tls_port(config: &Config) -> Option<u16> {
    config
        .get("tls-port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p != 0)
}

/// The acceptor for the client TLS port.
pub fn client_acceptor(config: &Config) -> Result<TlsAcceptor, String> {
    let settings = TlsSettings::from_config(config);
    Ok(TlsAcceptor::from(Arc::new(server_config(&settings)?)))
}

/// Peer-link TLS (`tls-replication yes`): both ends must present a
/// certificate chaining to the CA, whatever `tls-auth-clients` says for
/// clients; the dialer presents `tls-client-cert-file`/`-key-file`, or the
/// node's own pair when those are empty. `None` with `tls-replication no`.
pub fn peer_tls(config: &Config) -> Result<Option<PeerTls>, String> {
    if config.get("tls-replication").as_deref() != Some("yes") {
        return Ok(None);
    }
    let settings = TlsSettings::from_config(config);
    let provider = Arc::new(provider(&settings)?);
    let versions = protocol_versions(&settings.protocols)?;
    let roots = Arc::new(load_roots(&settings.ca_cert_file, &settings.ca_cert_dir)?);
    if settings.cert_file.is_empty() || settings.key_file.is_empty() {
        return Err("tls-replication needs tls-cert-file and tls-key-file".into());
    }
    // Peers must always prove a certificate, whatever tls-auth-clients says
    // for clients.
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| format!("tls-ca-cert-file: {e}"))?;
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols/tls-ciphersuites: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            load_certs(&settings.cert_file)?,
            load_key(&settings.key_file)?,
        )
        .map_err(|e| format!("tls-cert-file/tls-key-file: {e}"))?;
    let text = |name: &str| config.get(name).unwrap_or_default();
    let (cert, key) = match (text("tls-client-cert-file"), text("tls-client-key-file")) {
        (c, k) if !c.is_empty() && !k.is_empty() => (c, k),
        _ => (settings.cert_file.clone(), settings.key_file.clone()),
    };
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols/tls-ciphersuites: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(load_certs(&cert)?, load_key(&key)?)
        .map_err(|e| format!("tls-client-cert-file/tls-client-key-file: {e}"))?;
    Ok(Some(PeerTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
    }))
}

/// A rustls server configuration from the settings.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, String> {
    if settings.cert_file.is_empty() || settings.key_file.is_empty() {
        return Err("TLS needs both tls-cert-file and tls-key-file".into());
    }
    let provider = Arc::new(provider(settings)?);
    let versions = protocol_versions(&settings.protocols)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols/tls-ciphersuites: {e}"))?;
    let builder = match settings.auth_clients {
        ClientAuth::No => builder.with_no_client_auth(),
        auth => {
            let roots = load_roots(&settings.ca_cert_file, &settings.ca_cert_dir)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("tls-ca-cert-file: {e}"))?,
            )
        }
    };
    let certs = load_certs(&settings.cert_file)?;
    let key = load_key(&settings.key_file)?;
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls-cert-file/tls-key-file: {e}"))?;
    config.ignore_client_order = settings.prefer_server_ciphers;
    if settings.session_caching {
        config.session_storage = ServerSessionMemoryCache::new(settings.session_cache_size.max(1));
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// ring's provider with the cipher suites `tls-ciphers` (TLS 1.2) and
/// `tls-ciphersuites` (TLS 1.3) name; an empty parameter keeps rustls's
/// suites for its version.
pub fn provider(settings: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let all = provider.cipher_suites.clone();
    let tls12: Vec<_> = all.iter().copied().filter(|s| !is_tls13(s)).collect();
    let tls13: Vec<_> = all.iter().copied().filter(is_tls13).collect();
    let chosen12 = pick_suites("tls-ciphers", &settings.ciphers, &tls12)?;
    let chosen13 = pick_suites("tls-ciphersuites", &settings.ciphersuites, &tls13)?;
    provider.cipher_suites = chosen13.into_iter().chain(chosen12).collect();
    Ok(provider)
}

fn is_tls13(suite: &SupportedCipherSuite) -> bool {
    matches!(suite, SupportedCipherSuite::Tls13(_))
}

/// The suites a colon-separated list names, in its order. Names are
/// OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`) or
/// IANA's as rustls prints them. OpenSSL's keywords and `!` exclusions are
/// not a language rustls has, so they are refused.
fn pick_suites(
    param: &str,
    list: &str,
    offered: &[SupportedCipherSuite],
) -> Result<Vec<SupportedCipherSuite>, String> {
    if list.trim().is_empty() {
        return Ok(offered.to_vec());
    }
    let mut chosen = Vec::new();
    for name in list.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
        let found = offered
            .iter()
            .find(|s| suite_names(s).iter().any(|n| n.eq_ignore_ascii_case(name)));
        match found {
            Some(suite) if !chosen.contains(suite) => chosen.push(*suite),
            Some(_) => {}
            None => {
                let known: Vec<String> =
                    offered.iter().map(|s| suite_names(s)[0].clone()).collect();
                return Err(format!(
                    "{param}: '{name}' is not a cipher suite rustls offers for this TLS version \
                     (OpenSSL keywords and exclusions are not supported); choose from {}",
                    known.join(":")
                ));
            }
        }
    }
    Ok(chosen)
}

/// A suite's OpenSSL name first, then its IANA name.
fn suite_names(suite: &SupportedCipherSuite) -> Vec<String> {
    let iana = suite.suite().as_str().unwrap_or_default().to_string();
    let openssl = match iana.as_str() {
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-RSA-CHACHA20-POLY1305",
        other => other,
    }
    .to_string();
    vec![openssl, iana]
}

/// The versions `tls-protocols` names (Redis's words: `TLSv1.2 TLSv1.3`;
/// empty means both, as in Redis). rustls has no TLS 1.0 or 1.1.
pub fn protocol_versions(words: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if words.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for word in words.split_whitespace() {
        let version: &'static SupportedProtocolVersion = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!(
                    "tls-protocols: {word} is not offered (rustls speaks TLSv1.2 and TLSv1.3 only)"
                ))
            }
            _ => return Err(format!("tls-protocols: unknown protocol '{word}'")),
        };
        if !versions.iter().any(|v| v.version == version.version) {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read certificates from {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no PEM certificate"));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
/// Encrypted keys (`tls-key-file-pass`) are refused by the parameter row.
pub fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| format!("cannot read a private key from {path}: {e}"))?
        .ok_or_else(|| format!("{path} holds no unencrypted PEM private key"))
}

/// The trust anchors in `tls-ca-cert-file` and every PEM file of
/// `tls-ca-cert-dir`; at least one must be given, as Redis requires when
/// certificates are checked.
pub fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    if file.is_empty() && dir.is_empty() {
        return Err(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when \
             tls-replication or tls-auth-clients are enabled"
                .into(),
        );
    }
    let mut roots = RootCertStore::empty();
    let mut add = |path: &str| -> Result<(), String> {
        for cert in load_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{path}: not a usable CA certificate: {e}"))?;
        }
        Ok(())
    };
    if !file.is_empty() {
        add(file)?;
    }
    if !dir.is_empty() {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read directory {dir}: {e}"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && looks_like_pem(&path) {
                add(&path.to_string_lossy())?;
            }
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate found in tls-ca-cert-file/tls-ca-cert-dir".into());
    }
    Ok(roots)
}

/// A CA directory holds hashed links and PEM files; read those whose
/// names say they hold certificates.
fn looks_like_pem(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".pem")
        || name.ends_with(".crt")
        || name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_read_and_old_ones_refused() {
        assert_eq!(protocol_versions("").unwrap().len(), 2);
        assert_eq!(protocol_versions("TLSv1.3").unwrap().len(), 1);
        assert_eq!(
            protocol_versions("TLSv1.2 TLSv1.3 TLSv1.2").unwrap().len(),
            2
        );
        assert!(protocol_versions("TLSv1.1")
            .unwrap_err()
            .contains("TLSv1.2 and TLSv1.3"));
        assert!(protocol_versions("SSLv3").is_err());
    }

    #[test]
    fn suites_are_picked_by_openssl_or_iana_name() {
        let settings = |ciphers: &str, suites: &str| TlsSettings {
            cert_file: String::new(),
            key_file: String::new(),
            ca_cert_file: String::new(),
            ca_cert_dir: String::new(),
            auth_clients: ClientAuth::No,
            protocols: String::new(),
            ciphers: ciphers.into(),
            ciphersuites: suites.into(),
            prefer_server_ciphers: false,
            session_caching: true,
            session_cache_size: 1,
        };
        let all = provider(&settings("", "")).unwrap().cipher_suites.len();
        let one = provider(&settings("", "TLS_AES_256_GCM_SHA384"))
            .unwrap()
            .cipher_suites;
        assert_eq!(one.len(), all - 2, "two TLS 1.3 suites dropped");
        let picked = provider(&settings(
            "ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256",
        ))
        .unwrap()
        .cipher_suites;
        assert_eq!(picked.len(), 3);
        let err = provider(&settings("HIGH:!aNULL", "")).unwrap_err();
        assert!(
            err.contains("tls-ciphers") && err.contains("'HIGH'"),
            "{err}"
        );
        assert!(provider(&settings("", "TLS_AES_128_CCM_SHA256")).is_err());
    }

    #[test]
    fn checking_certificates_needs_a_ca() {
        let err = load_roots("", "").unwrap_err();
        assert!(err.starts_with("Either tls-ca-cert-file or tls-ca-cert-dir"));
        assert!(load_roots("/nonexistent/ca.pem", "").is_err());
    }
}
