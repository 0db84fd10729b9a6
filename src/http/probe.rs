//! `siphon healthcheck`: one GET of `/healthz` on the configured listener,
//! over TLS when the listener serves HTTPS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Whether `/healthz` on `listen` answers 200 (an unspecified address means
/// loopback); over TLS when the listener serves HTTPS.
pub fn healthcheck(listen: SocketAddr, tls: bool) -> bool {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    probe(addr, tls).unwrap_or(false)
}

fn probe(addr: SocketAddr, tls: bool) -> std::io::Result<bool> {
    let timeout = Duration::from_secs(2);
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let reply = if tls {
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(own_server_config(), name)
            .map_err(std::io::Error::other)?;
        exchange(rustls::StreamOwned::new(conn, tcp))?
    } else {
        exchange(tcp)?
    };
    Ok(reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"))
}

fn exchange(mut s: impl Read + Write) -> std::io::Result<String> {
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut reply = Vec::new();
    // A TLS peer may close without close_notify; what was read still counts.
    let _ = s.read_to_end(&mut reply);
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// The probe talks to its own process over loopback: the certificate is
/// the one this same config serves, issued for a public name, so the name
/// cannot match; signatures are still checked.
fn own_server_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(OwnServer(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct OwnServer(Arc<CryptoProvider>);

impl ServerCertVerifier for OwnServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
