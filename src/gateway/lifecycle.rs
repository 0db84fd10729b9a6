//! The gateway's life at its edges: the HTTP(S) listeners it serves, the
//! drain on a stop signal, and the exit that leaves no browser uninformed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Calls, Gateway, Inner, StartError, SHUTDOWN_SESSION};
use crate::config::Config;
use crate::http::tls::{self, CertStore};
use crate::http::{self, Access, HttpState};
use crate::signaling::{ClientEvent, SessionLimits};

/// How long calls get to send their BYEs and hangups at exit.
const HANGUP_WAIT: Duration = Duration::from_secs(3);
/// How long sessions get to flush and send their close frames.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long the record sinks get to write what the last calls queued.
const RECORDS_WAIT: Duration = Duration::from_secs(2);

/// What the process was told by its operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain, then exit; a second one skips the wait.
    Stop,
    /// SIGHUP: re-read the TLS certificates and reopen `records.file`.
    Reload,
}

/// The bound HTTP listeners, before the gateway serves them.
pub(super) struct HttpListeners {
    pub local_addr: SocketAddr,
    listener: TcpListener,
    redirect: Option<TcpListener>,
    pub certs: Option<Arc<CertStore>>,
}

/// Loads the certificate and binds `http.listen` (and the redirect listener).
pub(super) async fn bind_http(config: &Config) -> Result<HttpListeners, StartError> {
    let http = &config.http;
    let certs = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => {
            let store = CertStore::load(PathBuf::from(cert), PathBuf::from(key)).map_err(|e| {
                let key = match e.which() {
                    crate::tls::Which::Cert => "http.tls_cert",
                    crate::tls::Which::Key => "http.tls_key",
                };
                StartError::Tls {
                    key,
                    reason: e.to_string(),
                }
            })?;
            Some(Arc::new(store))
        }
        _ => None,
    };
    let listener = bind("http.listen", http.listen).await?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::bind("http.listen", http.listen, source))?;
    let redirect = match http.redirect_listen.filter(|_| certs.is_some()) {
        Some(addr) => Some(bind("http.redirect_listen", addr).await?),
        None => None,
    };
    Ok(HttpListeners {
        local_addr,
        listener,
        redirect,
        certs,
    })
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::bind(key, addr, source))
}

/// Serves the router (and the redirect), and watches the certificate files.
pub(super) fn spawn_http(inner: &Arc<Inner>, l: HttpListeners) -> Vec<tokio::task::JoinHandle<()>> {
    let state = http_state(inner);
    let metrics = inner.metrics.clone();
    let stop = inner.shutdown.clone();
    let app = http::router(state);
    let label = if l.certs.is_some() { "https" } else { "http" };
    let gate = inner
        .connections
        .http(label, proxy_exemption(&inner.config));
    let mut tasks = vec![tokio::spawn(async move {
        let stopped = async move { stop.cancelled().await };
        let served = http::serve(l.listener, app, l.certs.clone(), gate, metrics, stopped);
        if let Err(e) = served.await {
            tracing::error!(error = %e, "http server stopped");
        }
    })];
    if let Some(store) = &inner.certs {
        let watch = tls::watch(store.clone(), inner.metrics.clone(), inner.shutdown.clone());
        tasks.push(tokio::spawn(watch));
    }
    if let Some(redirect) = l.redirect {
        let (port, stop) = (l.local_addr.port(), inner.shutdown.clone());
        let gate = inner.connections.http("http_redirect", None);
        let metrics = inner.metrics.clone();
        tasks.push(tokio::spawn(async move {
            let stopped = async move { stop.cancelled().await };
            let served = http::serve_redirect(redirect, port, gate, metrics, stopped);
            if let Err(e) = served.await {
                tracing::error!(error = %e, "http redirect listener stopped");
            }
        }));
    }
    tasks
}

/// Behind a proxy, the trusted proxies carry every client: the per-IP cap,
/// which counts socket peers, would cap the whole site, so they skip it.
fn proxy_exemption(config: &Config) -> Option<crate::connections::Exempt> {
    if !config.http.behind_proxy {
        return None;
    }
    let proxies: Vec<crate::sip::IpNet> = config
        .http
        .trusted_proxies
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    Some(Arc::new(move |ip| proxies.iter().any(|n| n.contains(ip))))
}

fn http_state(inner: &Arc<Inner>) -> HttpState {
    let config = &inner.config;
    let token_required = config.auth.required;
    HttpState {
        calls: Arc::new(Calls(inner.clone())),
        metrics: inner.metrics.clone(),
        limits: SessionLimits {
            max_message_bytes: config.limits.max_ws_message_bytes as usize,
            auth_secret: token_required.then(|| Arc::from(config.auth.secret.as_bytes())),
            auth_audience: Some(config.auth.audience.as_str())
                .filter(|a| !a.is_empty())
                .map(Arc::from),
            resumable: !config.limits.reconnect_grace().is_zero(),
            closing: inner.closing.clone(),
            moving: inner.moving.clone(),
        },
        metrics_enabled: config.metrics.enabled,
        ready: inner.ready.clone(),
        access: Arc::new(Access {
            allowed_origins: config.http.allowed_origins.clone(),
            token_required,
            behind_proxy: config.http.behind_proxy,
            trusted_proxies: config
                .http
                .trusted_proxies
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
        }),
        sessions: inner.sessions.clone(),
    }
}

impl Gateway {
    /// Starts draining: `/readyz` and SIP OPTIONS answer 503, new calls are
    /// refused; calls already up go on. Sockets without a call are asked to
    /// reconnect (close 1012), which a balancer sends to another instance,
    /// and new sockets are refused unless they come to `resume`. Idempotent.
    pub fn drain(&self) {
        let inner = &self.inner;
        if inner.draining.swap(true, Ordering::Relaxed) {
            return;
        }
        inner.ready.store(false, Ordering::Relaxed);
        inner.metrics.draining.set(1);
        inner.sip.drain();
        inner.moving.cancel();
        tracing::info!(
            calls = inner.calls.len(),
            drain_secs = inner.config.limits.drain_secs,
            "draining: new calls refused, waiting for calls to end"
        );
    }

    /// Re-reads the HTTPS certificate (SIGHUP); a failure keeps the old one.
    pub fn reload_tls(&self) {
        if let Some(store) = &self.inner.certs {
            tls::report_reload(&store.reload(), &self.inner.metrics, "SIGHUP");
        }
    }

    /// SIGHUP: the certificate is re-read and `records.file` reopened
    /// (logrotate has moved it).
    pub fn reload(&self) {
        self.reload_tls();
        self.inner.records.reopen();
    }

    /// Resolves once no call is up.
    pub async fn calls_ended(&self) {
        while !self.inner.calls.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The whole stop sequence: on the first `Stop`, drain until every call
    /// has ended, `limits.drain_secs` has passed, or a second `Stop` comes;
    /// then shut down. `Reload`s are served throughout.
    pub async fn run_until_stopped(self, mut signals: mpsc::Receiver<Signal>) {
        while let Some(Signal::Reload) = signals.recv().await {
            self.reload();
        }
        self.drain();
        let deadline = tokio::time::sleep(self.inner.config.limits.drain());
        tokio::pin!(deadline);
        let why = loop {
            tokio::select! {
                () = self.calls_ended() => break "every call has ended",
                () = &mut deadline => break "limits.drain_secs passed",
                signal = signals.recv() => match signal {
                    Some(Signal::Reload) => self.reload(),
                    Some(Signal::Stop) => break "a second signal",
                    // No more signals can come: keep waiting for the calls.
                    None => std::future::pending().await,
                },
            }
        };
        tracing::info!(calls = self.inner.calls.len(), "drain over: {why}");
        self.shutdown().await;
    }

    /// Hangs up every call (BYE, `hangup` 503), removes registrations,
    /// writes the calls' records, closes every WebSocket with a close
    /// frame, and stops serving.
    pub async fn shutdown(self) {
        self.drain();
        let inner = &self.inner;
        for entry in inner.calls.iter() {
            let _ = entry
                .value()
                .send((SHUTDOWN_SESSION, ClientEvent::Shutdown));
        }
        // The BYEs go out at once; their answers get what is left of the wait.
        let hangups = async {
            self.calls_ended().await;
            inner.hangups.close();
            inner.hangups.wait().await;
        };
        let _ = tokio::time::timeout(HANGUP_WAIT, hangups).await;
        if inner.config.cluster.enabled() {
            inner.registrations.release_all();
        }
        // The calls ended above have queued their records: the sinks get a
        // moment to write them.
        tokio::join!(
            inner.registrations.unregister_all(),
            inner.cluster.unregister_all(),
            inner.client_registrations.unregister_all(),
            inner.records.close(RECORDS_WAIT)
        );
        inner.closing.cancel();
        inner.sessions.close();
        let _ = tokio::time::timeout(CLOSE_WAIT, inner.sessions.wait()).await;
        inner.shutdown.cancel();
        for task in &self.http_tasks {
            task.abort();
        }
        tracing::info!("siphon stopped");
    }
}
