//! WebSocket handshakes per second on `/ws`, over TLS (`wss://`) and plain
//! (`ws://`), against one in-process siphon: each handshake is a new TCP
//! connection, the TLS handshake (ECDSA P-256 certificate, TLS 1.3), the
//! HTTP upgrade and siphon's `welcome`, then a close. The clients run in the
//! same process, so on a small host they share its cores with the server:
//! the figure is the pair's rate, a floor for the server's.
//!
//! `cargo bench --bench handshake -- --seconds 5 --clients 8`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rustls::pki_types::ServerName;
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon_testkit::ws::ws_request;
use tokio::net::TcpStream;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 5);
    let clients = arg("--clients", 8);
    let dir = std::env::temp_dir().join(format!("siphon-handshake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls));

    println!(
        "handshakes on /ws, {clients} clients, {seconds} s each, client and server in one process"
    );
    for secure in [true, false] {
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.sip.udp = Some("127.0.0.1:0".parse().unwrap());
        config.sip.tcp = None;
        config.echo.enabled = false;
        config.webrtc.port = 0;
        config.media.workers = 1;
        let rtp = siphon_testkit::ports::block(20);
        config.rtp.port_min = rtp;
        config.rtp.port_max = rtp + 19;
        if secure {
            config.http.tls_cert = Some(dir.join("cert.pem").display().to_string());
            config.http.tls_key = Some(dir.join("key.pem").display().to_string());
        }
        let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
        let addr = gateway.http_addr();
        let done = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(seconds);
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let (done, tls) = (done.clone(), tls.clone());
                tokio::spawn(async move {
                    while Instant::now() < until {
                        handshake(addr, secure.then_some(&tls)).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let n = done.load(Ordering::Relaxed);
        let name = if secure { "wss" } else { "ws" };
        println!(
            "{name:>4}: {n} handshakes, {:.0} per second, {:.2} ms each per client",
            n as f64 / seconds as f64,
            seconds as f64 * 1000.0 * clients as f64 / n.max(1) as f64
        );
        gateway.shutdown().await;
    }
}

/// One connection: TCP, TLS when `tls` is given, the upgrade, `welcome`.
async fn handshake(addr: SocketAddr, tls: Option<&tokio_rustls::TlsConnector>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    match tls {
        Some(tls) => {
            let name = ServerName::IpAddress(addr.ip().into());
            let stream = tls.connect(name, tcp).await.unwrap();
            let url = format!("wss://{addr}/ws");
            let (mut ws, _) = tokio_tungstenite::client_async(ws_request(&url).unwrap(), stream)
                .await
                .unwrap();
            let _welcome = ws.next().await;
        }
        None => {
            let url = format!("ws://{addr}/ws");
            let (mut ws, _) = tokio_tungstenite::client_async(ws_request(&url).unwrap(), tcp)
                .await
                .unwrap();
            let _welcome = ws.next().await;
        }
    }
}
