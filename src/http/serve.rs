//! Running the router: plain HTTP or HTTPS on `http.listen`, and the
//! optional plain listener that only redirects to HTTPS.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use axum::serve::Listener;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};

use super::access::https_location;
use super::tls::{CertStore, TlsListener};
use crate::metrics::Metrics;

/// Serves `app` on `listener` until `shutdown` resolves: over TLS with the
/// store's current certificate when `tls` is set.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<CertStore>>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<Peer>();
    match tls {
        Some(store) => {
            let listener = TlsListener::new(listener, store.server_config(), metrics)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(NoDelay(listener), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// The peer address of a connection, plain or TLS (axum's own `SocketAddr`
/// connect info covers only its plain TCP listener).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, NoDelay>> for Peer {
    fn connect_info(stream: IncomingStream<'_, NoDelay>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Plain TCP with TCP_NODELAY on every connection: without it a second
/// small signaling frame waits for the client's delayed ACK, ~40 ms added
/// to every call setup.
struct NoDelay(TcpListener);

impl Listener for NoDelay {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, peer) = Listener::accept(&mut self.0).await;
        let _ = tcp.set_nodelay(true);
        (tcp, peer)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Answers every request on `listener` with a permanent redirect to the
/// same host and path on HTTPS port `https_port`.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().fallback(move |req: Request| async move { redirect(&req, https_port) });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
