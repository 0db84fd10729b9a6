//! HTTPS: a certificate that can be swapped while serving, and a listener
//! that runs TLS handshakes beside the accept loop.
//!
//! rustls (through tokio-rustls) does the TLS; handshakes run in each
//! connection's task (`serve`). What no crate does for us is the glue:
//! failures are counted by reason, and the certificate is re-read when its
//! files change.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::tls::{certified_key, TlsFileError};

/// How long a client may take to finish its handshake.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
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

/// Counts and logs a handshake that did not complete.
pub(super) fn handshake_failed(
    metrics: &Metrics,
    peer: SocketAddr,
    reason: &str,
    e: &dyn std::fmt::Display,
) {
    metrics
        .https_handshake_failures_total
        .with_label_values(&[reason])
        .inc();
    tracing::debug!(%peer, reason, error = %e, "https: TLS handshake failed");
}

/// The metric label of a failed handshake.
pub(super) fn failure_reason(e: &io::Error) -> &'static str {
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
