//! TLS for peer links (`tls-replication yes`): both ends present a
//! certificate that must chain to the node's CA (`tls-ca-cert-file` /
//! `tls-ca-cert-dir`), on top of the shared-secret handshake, which still
//! runs inside the encrypted stream. The acceptor side uses the node's
//! `tls-cert-file`/`tls-key-file`; the dialing side presents
//! `tls-client-cert-file`/`tls-client-key-file`, or the node's own pair
//! when those are empty (as Redis does for its outgoing connections).

//! The configurations are built from the node's settings by
//! `crate::server::tls::peer_tls`; this module only carries them.

use rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Both halves of peer-link TLS.
#[derive(Clone)]
pub struct PeerTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

/// The name a dialed peer's certificate must carry: the host of its
/// `HOST:PORT` address (an IP address or a DNS name).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = match addr.rsplit_once(':') {
        Some((host, _)) => host,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("peer address {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert!(matches!(
            server_name("127.0.0.1:7000").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:7000").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("peer.example:7000").unwrap(),
            ServerName::DnsName(_)
        ));
    }
}
