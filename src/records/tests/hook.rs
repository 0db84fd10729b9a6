//! A webhook receiver for tests: an axum app on 127.0.0.1 (plain or TLS)
//! that keeps what it receives and answers from a script of statuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;
use tokio::net::TcpListener;

/// One POST as received.
#[derive(Clone, Debug)]
pub(super) struct Received {
    pub signature: String,
    pub content_type: String,
    pub body: String,
}

#[derive(Clone, Default)]
struct HookState {
    received: Arc<Mutex<Vec<Received>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

/// A running receiver.
pub(super) struct Hook {
    /// Where to POST.
    pub url: String,
    state: HookState,
}

impl Hook {
    /// Answers the statuses in order, then 200 to everything.
    pub async fn start(statuses: &[u16]) -> Hook {
        let (listener, state) = (bind().await, HookState::default());
        *state.statuses.lock().unwrap() = statuses.iter().copied().collect();
        let port = listener.local_addr().unwrap().port();
        let app = app(&state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hook {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        }
    }

    /// The same over TLS with a self-signed certificate for 127.0.0.1,
    /// and the roots that trust it.
    pub async fn start_tls() -> (Hook, RootCertStore) {
        let (listener, state) = (bind().await, HookState::default());
        let port = listener.local_addr().unwrap().port();
        let (acceptor, roots) = tls_acceptor();
        let service = TowerToHyperService::new(app(&state));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, service) = (acceptor.clone(), service.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = http.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        let url = format!("https://127.0.0.1:{port}/hook");
        (Hook { url, state }, roots)
    }

    /// Every POST so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The bodies so far, parsed.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        let received = self.received();
        received
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }
}

fn app(state: &HookState) -> Router {
    Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state.clone())
}

async fn receive(State(state): State<HookState>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        let value = headers.get(name).and_then(|v| v.to_str().ok());
        value.unwrap_or_default().to_owned()
    };
    state.received.lock().unwrap().push(Received {
        signature: header("siphon-signature"),
        content_type: header("content-type"),
        body,
    });
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A listener on 127.0.0.1 at a port from the test allocator. The port was
/// probed free, but another process may have taken it since: a few are tried.
pub(super) async fn bind() -> TcpListener {
    for _ in 0..5 {
        let port = siphon_testkit::ports::port();
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
    }
    panic!("no free test port on 127.0.0.1")
}

fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, RootCertStore) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut roots = RootCertStore::empty();
    roots.add(der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), roots)
}
