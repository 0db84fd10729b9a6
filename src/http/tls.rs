//! HTTPS: a certificate that can be swapped while serving, and a listener
//! that runs TLS handshakes beside the accept loop.
//!
//! axum serves any `Listener`; rustls (through tokio-rustls) does the TLS.
//! What no crate does for us is the glue: handshakes run in their own tasks
//! so a slow or silent client cannot hold up the accept loop, failures are
//! counted by reason, and the certificate is re-read when its files change.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::tls::{certified_key, TlsFileError};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;
/// How often the certificate files are checked for a change.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The served certificate and the files it comes from.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// (cert, key) modification stamps of the last load attempt.
    seen: Mutex<Option<(FileStamp, FileStamp)>>,
}

type FileStamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl CertStore {
    /// Loads the pair once; an error names the file at fault.
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<CertStore, TlsFileError> {
        let seen = (stamp(&cert), stamp(&key));
        let current = certified_key(&cert, &key)?;
        Ok(CertStore {
            cert,
            key,
            current: RwLock::new(current),
            seen: Mutex::new(Some(seen)),
        })
    }

    /// Reads the files again; on failure the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsFileError> {
        let seen = (stamp(&self.cert), stamp(&self.key));
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(seen);
        }
        let fresh = certified_key(&self.cert, &self.key)?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }

    /// Reloads when either file changed since the last attempt; `None` when
    /// neither did. A failed attempt is not retried until a file changes again.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsFileError>> {
        let now = (stamp(&self.cert), stamp(&self.key));
        let changed = self.seen.lock().map_or(true, |s| *s != Some(now));
        changed.then(|| self.reload())
    }

    /// The certificate chain served now (leaf first).
    pub fn current_chain(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.current
            .read()
            .map(|c| c.cert.clone())
            .unwrap_or_default()
    }

    /// A rustls server config that always serves the current certificate.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        // WebSockets upgrade over HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Logs and counts one reload attempt.
pub fn report_reload(result: &Result<(), TlsFileError>, metrics: &Metrics, why: &str) {
    match result {
        Ok(()) => {
            metrics
                .tls_reloads_total
                .with_label_values(&["https", "ok"])
                .inc();
            tracing::info!(trigger = why, "https: certificate reloaded");
        }
        Err(e) => {
            metrics
                .tls_reloads_total
                .with_label_values(&["https", "failed"])
                .inc();
            tracing::warn!(trigger = why, error = %e, "https: certificate reload failed; serving the old one");
        }
    }
}

/// Re-reads the certificate whenever its files change, until `shutdown`.
pub async fn watch(store: Arc<CertStore>, metrics: Metrics, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(result) = store.reload_if_changed() {
            report_reload(&result, &metrics, "file changed");
        }
    }
}

/// A listener that yields connections whose TLS handshake has completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and hands each connection to its own handshake task.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>, metrics: Metrics) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), metrics, tx));
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    metrics: Metrics,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "https: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without TCP_NODELAY a second small signaling frame waits for the
        // client's delayed ACK: ~40 ms added to every call setup.
        let _ = stream.set_nodelay(true);
        let (acceptor, metrics, ready) = (acceptor.clone(), metrics.clone(), ready.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => handshake_failed(&metrics, peer, failure_reason(&e), &e),
                Err(_) => handshake_failed(&metrics, peer, "timeout", &"no handshake in time"),
            }
        });
    }
}

fn handshake_failed(metrics: &Metrics, peer: SocketAddr, reason: &str, e: &dyn std::fmt::Display) {
    metrics
        .https_handshake_failures_total
        .with_label_values(&[reason])
        .inc();
    tracing::debug!(%peer, reason, error = %e, "https: TLS handshake failed");
}

/// The metric label of a failed handshake.
fn failure_reason(e: &io::Error) -> &'static str {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(_)) => "not_tls",
        Some(rustls::Error::AlertReceived(_)) => "alert",
        Some(_) => "tls_error",
        None if e.kind() == io::ErrorKind::UnexpectedEof => "closed",
        None => "io",
    }
}
