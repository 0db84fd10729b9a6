//! Running the router: plain HTTP or HTTPS on `http.listen`, and the
//! optional plain listener that only redirects to HTTPS.
//!
//! The accept loop is siphon's own rather than `axum::serve`, for what the
//! latter cannot do: every connection passes the listener's gate (global
//! and per-IP caps, the fd reserve) and holds its permit inside the stream,
//! so an upgraded WebSocket keeps it until it closes; hyper's header timer
//! closes a request head that does not finish, and a keep-alive connection
//! that waits too long for its next request; TLS handshakes run in the
//! connection's own task, so a slow client cannot hold up the loop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::access::https_location;
use super::tls::{self, CertStore};
use crate::connections::{Acceptor, Gate, Permit};
use crate::metrics::Metrics;

/// Serves `app` on `listener` through `gate` until `shutdown` resolves:
/// over TLS with the store's current certificate when `tls` is set.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<CertStore>>,
    gate: Gate,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let ctx = Arc::new(Ctx {
        app,
        tls: tls.map(|store| TlsAcceptor::from(store.server_config())),
        metrics,
        header_timeout: gate.header_timeout(),
        gate: gate.clone(),
    });
    let mut acceptor = Acceptor::new(listener, gate);
    let (stop, stopped) = watch::channel(());
    let tracker = TaskTracker::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer, permit) = tokio::select! {
            () = &mut shutdown => break,
            c = acceptor.next() => c,
        };
        // Without TCP_NODELAY a second small signaling frame waits for the
        // client's delayed ACK: ~40 ms added to every call setup.
        let _ = tcp.set_nodelay(true);
        tracker.spawn(connection(ctx.clone(), tcp, peer, permit, stopped.clone()));
    }
    drop(acceptor);
    // Connections finish their request in flight, then close.
    let _ = stop.send(());
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// What every connection of one listener shares.
struct Ctx {
    app: Router,
    tls: Option<TlsAcceptor>,
    metrics: Metrics,
    header_timeout: Duration,
    gate: Gate,
}

async fn connection(
    ctx: Arc<Ctx>,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    stopped: watch::Receiver<()>,
) {
    let Some(acceptor) = &ctx.tls else {
        return http1(&ctx, Tracked::new(tcp, permit), peer, stopped).await;
    };
    let handshake = tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
    match handshake {
        Ok(Ok(stream)) => http1(&ctx, Tracked::new(stream, permit), peer, stopped).await,
        Ok(Err(e)) => tls::handshake_failed(&ctx.metrics, peer, tls::failure_reason(&e), &e),
        Err(_) => tls::handshake_failed(&ctx.metrics, peer, "timeout", &"no handshake in time"),
    }
}

/// Serves HTTP/1.1 (with upgrades) on one connection until it closes.
async fn http1<I>(ctx: &Ctx, io: Tracked<I>, peer: SocketAddr, mut stopped: watch::Receiver<()>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let heard = io.heard.clone();
    let app = ctx.app.clone().layer(Extension(ConnectInfo(Peer(peer))));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timer runs whenever hyper waits for a request head: on a
    // fresh connection and between keep-alive requests alike.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades();
    let mut conn = pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            // Bytes since the last response: a head begun and not finished.
            let why = if heard.load(Ordering::Relaxed) {
                "header_timeout"
            } else {
                "idle"
            };
            tracing::debug!(%peer, reason = why, "http connection closed");
            ctx.gate.closed(why);
        }
    }
}

/// A connection's stream holding its permit: the slot is given back when
/// the stream is dropped, also after an upgrade to a WebSocket.
struct Tracked<I> {
    io: I,
    _permit: Permit,
    /// Set by a read of any byte, cleared by a write: whether a request
    /// head has begun since the last response.
    heard: Arc<AtomicBool>,
}

impl<I> Tracked<I> {
    fn new(io: I, permit: Permit) -> Self {
        Tracked {
            io,
            _permit: permit,
            heard: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.heard.store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The peer address of a connection, plain or TLS.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Answers every request on `listener` with a permanent redirect to the
/// same host and path on HTTPS port `https_port`.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    gate: Gate,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = Router::new().fallback(move |req: Request| async move { redirect(&req, https_port) });
    serve(listener, app, None, gate, metrics, shutdown).await
}

fn redirect(req: &Request, https_port: u16) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match https_location(host, https_port, path) {
        Some(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        None => (StatusCode::BAD_REQUEST, "a Host header is required\n").into_response(),
    }
}
