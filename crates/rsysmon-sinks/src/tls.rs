//! TLS for the syslog sink (RFC 5425: the same octet-counted messages
//! inside TLS), with rustls and its ring provider.
//!
//! The collector's certificate is checked against the CAs of one PEM file
//! (the system's bundle by default, or a private CA) and must name the host
//! of the address (DNS name or IP address). No client certificate is sent.

use std::io::{self, Read};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A TLS connection over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// The client settings trusting the CAs in `ca_file`.
pub fn client_config(ca_file: &Path) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| invalid(format!("cannot read CA file {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| invalid(format!("bad certificate in {}: {e}", ca_file.display())))?;
        roots.add(cert).map_err(|e| invalid(format!("unusable CA certificate in {}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(invalid(format!("no CA certificate in {}", ca_file.display())));
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Start TLS to `host` over `tcp` and finish the handshake now, so a bad
/// certificate is an error of the connection, not of a later write.
pub fn connect(config: &Arc<ClientConfig>, host: &str, tcp: TcpStream) -> io::Result<TlsStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string()).map_err(|e| invalid(format!("{host}: {e}")))?;
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Whether the collector closed the connection (close_notify, end of
/// stream or an error), reading what it sent without blocking.
pub fn peer_closed(stream: &mut TlsStream) -> bool {
    if stream.sock.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = loop {
        match stream.conn.read_tls(&mut stream.sock) {
            Ok(0) => break true,
            Ok(_) => match stream.conn.process_new_packets() {
                Ok(state) if state.peer_has_closed() => break true,
                Ok(_) => {
                    // Drop any application data: a collector sends none.
                    let mut sink = [0u8; 512];
                    while matches!(stream.conn.reader().read(&mut sink), Ok(n) if n > 0) {}
                }
                Err(_) => break true,
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    closed || stream.sock.set_nonblocking(false).is_err()
}
