//! The HTTP surface: `/` (the web phone), `/ws` (signaling), `/metrics`,
//! `/healthz`, `/readyz`.

pub mod access;
mod probe;
mod serve;
pub mod tls;
mod web;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::signaling::{session, CallService, SessionLimits};
pub use access::Access;
pub use probe::healthcheck;
pub use serve::{serve, serve_redirect, Peer};

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
    /// Origin rules and the proxy in front.
    pub access: Arc<Access>,
    /// Every WebSocket session, so that exit can wait for their close frames.
    pub sessions: tokio_util::task::TaskTracker,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/ws", get(ws))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/{name}", get(web::asset))
        .with_state(state)
}

/// Query parameters of `/ws`.
#[derive(serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
    /// Present when the client comes to `resume` a call: a draining siphon
    /// still takes such a socket (docs/scale-out.md).
    resume: Option<String>,
}

async fn ws(
    State(s): State<HttpState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let client = s.access.client_ip(peer, header("x-forwarded-for"));
    if let Err(refusal) = s.access.check_origin(header("origin"), header("host")) {
        s.metrics
            .http_refused_total
            .with_label_values(&[refusal.label()])
            .inc();
        tracing::info!(%client, origin = header("origin"), "ws: refused, {}", refusal.label());
        return (StatusCode::FORBIDDEN, refusal.message()).into_response();
    }
    if s.limits.moving.is_cancelled() && query.resume.is_none() {
        s.metrics
            .http_refused_total
            .with_label_values(&["draining"])
            .inc();
        tracing::info!(%client, "ws: refused, draining");
        let retry = [(header::RETRY_AFTER, "5")];
        let body = "siphon is draining: connect again to reach another instance\n";
        return (StatusCode::SERVICE_UNAVAILABLE, retry, body).into_response();
    }
    let span = tracing::info_span!("ws", %client);
    // A message up to twice the protocol limit earns an `error` reply and
    // the socket lives on; a larger one is refused at its frame header
    // (close 1009) before its payload is read. The cap also bounds what a
    // socket keeps: the read buffer grows to the largest frame it has
    // read and never shrinks.
    let transport_cap = transport_cap(s.limits.max_message_bytes);
    // Signaling frames are small and rare: a 1 KiB read buffer instead of
    // the default 128 KiB saves most of a call's memory.
    upgrade
        .read_buffer_size(1024)
        .max_message_size(transport_cap)
        .max_frame_size(transport_cap)
        .on_upgrade(move |socket| {
            let session = session::run(socket, s.calls, s.limits, s.metrics, query.token);
            s.sessions
                .track_future(tracing::Instrument::instrument(session, span))
        })
}

/// The largest WebSocket message read at all, for a protocol limit.
fn transport_cap(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(2)
}

async fn metrics(State(s): State<HttpState>) -> Response {
    if !s.metrics_enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    (content_type, s.metrics.render()).into_response()
}

/// 503 once a SIP listener's reader stopped: the process is broken in a way
/// only a restart mends.
async fn healthz(State(s): State<HttpState>) -> Response {
    let down = s.metrics.sip_listeners_down();
    if down.is_empty() {
        return "ok\n".into_response();
    }
    let body = format!("sip listener down: {}\n", down.join(", "));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
