//! rsipstack TLS connections over streams siphon holds itself.
//!
//! rsipstack builds a TLS connection only from its own dial, its own
//! listener, or a stream handed to it through its platform seam
//! (`rsipstack::platform::tls`): a process-wide connector that
//! `TlsConnection::connect` asks before dialing. siphon registers one, which
//!
//! - hands over the write half of a connection its guard accepted, so that
//!   the guard reads and checks every message (as it does on TCP) while
//!   rsipstack writes the replies: rsipstack keeps the halves of a server
//!   stream private, so its reader could not be replaced otherwise;
//! - dials every other TLS connection itself, with rustls and the trust
//!   anchors and client certificate rsipstack passes along (the same checks
//!   rsipstack's own dial makes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};

use rsipstack::platform::tls::{TlsClientConfig, TlsConnector, TlsStream};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;

use super::tls;

type ServerTls = tokio_rustls::server::TlsStream<TcpStream>;
type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

/// Accepted connections waiting to be taken by `connect`, by remote address.
static HANDOVER: Mutex<Option<HashMap<SocketAddr, Box<dyn TlsStream>>>> = Mutex::new(None);

/// Register siphon's connector with rsipstack (once per process).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| rsipstack::platform::tls::set_client_connector(Arc::new(Connector)));
}

/// Make `write` (an accepted connection's write half) the next stream
/// `connect` returns for `remote`.
pub(crate) fn hand_over(remote: SocketAddr, stream: AcceptedWriter) {
    if let Ok(mut map) = HANDOVER.lock() {
        map.get_or_insert_with(HashMap::new)
            .insert(remote, Box::new(stream));
    }
}

fn take_handed_over(remote: SocketAddr) -> Option<Box<dyn TlsStream>> {
    HANDOVER.lock().ok()?.as_mut()?.remove(&remote)
}

/// Drop a handed-over stream nobody took (rsipstack refused the connection).
pub(crate) fn take_back(remote: SocketAddr) {
    drop(take_handed_over(remote));
}

struct Connector;

#[async_trait::async_trait]
impl TlsConnector for Connector {
    async fn connect(
        &self,
        config: &TlsClientConfig,
        addr: SocketAddr,
    ) -> rsipstack::Result<Box<dyn TlsStream>> {
        if let Some(stream) = take_handed_over(addr) {
            return Ok(stream);
        }
        Ok(Box::new(dial(config, addr).await?))
    }
}

fn stack_error(e: impl std::fmt::Display) -> rsipstack::Error {
    rsipstack::Error::Error(e.to_string())
}

/// A TLS client connection checked like rsipstack's own: the peer's chain
/// against `root_certs`, its name against `server_name`.
async fn dial(config: &TlsClientConfig, addr: SocketAddr) -> rsipstack::Result<Dialed> {
    let client = client_config(config).map_err(stack_error)?;
    let name = ServerName::try_from(config.server_name.clone())
        .map_err(|_| stack_error(format!("invalid TLS name {:?}", config.server_name)))?;
    let tcp = TcpStream::connect(addr).await?;
    let local = tcp.local_addr()?;
    // An io::Error that keeps rustls's error inside: `tls::certificate_problem` reads it.
    let stream = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await?;
    let (read, write) = tokio::io::split(stream);
    Ok(Dialed {
        read: AsyncMutex::new(read),
        write: AsyncMutex::new(write),
        local,
    })
}

/// Why the client side of a TLS connection could not be configured; it
/// reaches rsipstack as text.
#[derive(Debug, thiserror::Error)]
enum ClientConfigError {
    /// A CA certificate webpki refuses as a trust anchor.
    #[error("trust anchor: {0}")]
    TrustAnchor(#[source] rustls::Error),
    /// The provider has no protocol version rustls accepts.
    #[error(transparent)]
    Protocols(rustls::Error),
    /// The client certificate is not usable PEM.
    #[error("client certificate: {0}")]
    Certificate(#[source] tls::PemError),
    /// The client key is not usable PEM.
    #[error("client key: {0}")]
    Key(#[source] tls::PemError),
    /// rustls refused the certificate and key together.
    #[error("client certificate: {0}")]
    Auth(#[source] rustls::Error),
}

fn client_config(config: &TlsClientConfig) -> Result<ClientConfig, ClientConfigError> {
    let roots = config.root_certs.as_deref().unwrap_or_default();
    let mut store = rustls::RootCertStore::empty();
    for cert in tls::parse_certs(roots).unwrap_or_default() {
        store.add(cert).map_err(ClientConfigError::TrustAnchor)?;
    }
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(ClientConfigError::Protocols)?
        .with_root_certificates(store);
    match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let certs = tls::parse_certs(cert).map_err(ClientConfigError::Certificate)?;
            let key = tls::parse_key(key).map_err(ClientConfigError::Key)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(ClientConfigError::Auth)
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A connection siphon dialed.
struct Dialed {
    read: AsyncMutex<ReadHalf<ClientTls>>,
    write: AsyncMutex<WriteHalf<ClientTls>>,
    local: SocketAddr,
}

#[async_trait::async_trait]
impl TlsStream for Dialed {
    async fn recv(&self) -> rsipstack::Result<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        let n = self.read.lock().await.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    async fn send_all(&self, data: Vec<u8>) -> rsipstack::Result<()> {
        let mut w = self.write.lock().await;
        w.write_all(&data).await?;
        Ok(w.flush().await?)
    }

    async fn shutdown(&self) -> rsipstack::Result<()> {
        Ok(self.write.lock().await.shutdown().await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The write half of an accepted connection; the guard owns the read half.
pub(crate) struct AcceptedWriter {
    /// Dropped at shutdown: rsipstack's transactions may hold the
    /// connection for their timers (Timer H, 32 s) after the peer is gone,
    /// and the socket's fd should not stay with them.
    write: AsyncMutex<Option<WriteHalf<ServerTls>>>,
    /// Our address as written in Via.
    local: SocketAddr,
    /// Cancelled when the guard stops reading (the connection is over).
    closed: CancellationToken,
}

impl AcceptedWriter {
    /// Wrap `write`; `closed` ends rsipstack's (idle) reader when the guard's ends.
    pub(crate) fn new(
        write: WriteHalf<ServerTls>,
        local: SocketAddr,
        closed: CancellationToken,
    ) -> Self {
        AcceptedWriter {
            write: AsyncMutex::new(Some(write)),
            local,
            closed,
        }
    }
}

#[async_trait::async_trait]
impl TlsStream for AcceptedWriter {
    async fn recv(&self) -> rsipstack::Result<Vec<u8>> {
        // The guard reads this connection; rsipstack's reader only learns
        // when it is over (an empty chunk is the end of the stream).
        self.closed.cancelled().await;
        Ok(Vec::new())
    }

    async fn send_all(&self, data: Vec<u8>) -> rsipstack::Result<()> {
        let mut guard = self.write.lock().await;
        let Some(w) = guard.as_mut() else {
            return Err(std::io::Error::from(std::io::ErrorKind::NotConnected).into());
        };
        w.write_all(&data).await?;
        Ok(w.flush().await?)
    }

    async fn shutdown(&self) -> rsipstack::Result<()> {
        self.closed.cancel();
        match self.write.lock().await.take() {
            Some(mut w) => Ok(w.shutdown().await?),
            None => Ok(()),
        }
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (Vec<u8>, Vec<u8>) {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
        (
            c.cert.pem().into_bytes(),
            c.signing_key.serialize_pem().into_bytes(),
        )
    }

    #[test]
    fn client_certificate_is_offered_only_when_configured() {
        let (cert, key) = pem_pair();
        let with = TlsClientConfig {
            server_name: "127.0.0.1".into(),
            root_certs: Some(cert.clone()),
            client_cert: Some(cert.clone()),
            client_key: Some(key),
        };
        let config = client_config(&with).expect("config");
        assert!(config.client_auth_cert_resolver.has_certs());
        let without = TlsClientConfig {
            client_cert: None,
            client_key: None,
            ..with
        };
        let config = client_config(&without).expect("config");
        assert!(!config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn a_bad_client_key_is_named() {
        let (cert, _) = pem_pair();
        let bad = TlsClientConfig {
            server_name: "127.0.0.1".into(),
            root_certs: None,
            client_cert: Some(cert.clone()),
            client_key: Some(cert),
        };
        let err = client_config(&bad).expect_err("a certificate is not a key");
        let err = err.to_string();
        assert!(err.starts_with("client key:"), "{err}");
        assert_eq!(err, "client key: no PRIVATE KEY block found");
    }
}
