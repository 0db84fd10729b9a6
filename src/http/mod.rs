//! The HTTP surface: `/` (the web phone), `/ws` (signaling), `/metrics`,
//! `/healthz`, `/readyz`.

mod web;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::signaling::{session, CallService, SessionLimits};

/// What the HTTP handlers need.
#[derive(Clone)]
pub struct HttpState {
    /// Where calls go.
    pub calls: Arc<dyn CallService>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Per-socket limits.
    pub limits: SessionLimits,
    /// Whether `/metrics` is served.
    pub metrics_enabled: bool,
    /// False while starting or draining: `/readyz` answers 503.
    pub ready: Arc<AtomicBool>,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/ws", get(ws))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/{name}", get(web::asset))
        .with_state(state)
}

/// Query parameters of `/ws`.
#[derive(serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn ws(
    State(s): State<HttpState>,
    Query(query): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The transport cap sits well above the protocol limit so that an
    // oversize message earns an `error` reply instead of a dropped socket.
    let hard_cap = (s.limits.max_message_bytes * 4).max(1 << 20);
    // Signaling frames are small and rare: a 1 KiB read buffer instead of
    // the default 128 KiB saves most of a call's memory. The buffer grows
    // on demand for a large SDP and keeps that size, so starting small
    // costs a few more reads for one frame, not memory.
    upgrade
        .read_buffer_size(1024)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| session::run(socket, s.calls, s.limits, s.metrics, query.token))
}

async fn metrics(State(s): State<HttpState>) -> Response {
    if !s.metrics_enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    (content_type, s.metrics.render()).into_response()
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Probe `/healthz` on `listen` (an unspecified address means loopback).
pub fn healthcheck(listen: std::net::SocketAddr) -> std::process::ExitCode {
    use std::io::{Read, Write};
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let timeout = std::time::Duration::from_secs(2);
    let probe = || -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"))
    };
    match probe() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    }
}
