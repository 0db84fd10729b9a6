//! HTTPS and WSS: calls over `wss://` with audio, a certificate rotated on
//! disk or by SIGHUP while an older socket keeps its call, plain text on the
//! TLS port, the redirect listener, and the Origin check on `/ws`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::Signaling;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::EchoServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// A certificate for 127.0.0.1 written to `dir` as cert.pem / key.pem.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    // Written beside and renamed over, as certificate tools do, so the
    // watcher never reads half a file.
    for (name, body) in [
        ("cert.pem", cert.cert.pem()),
        ("key.pem", cert.signing_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(format!("{name}.new")), body).unwrap();
        std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).unwrap();
    }
    cert.cert.der().clone()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("siphon-https-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gateway on HTTPS whose trunk is an echo UAS.
struct Rig {
    gateway: Gateway,
    metrics: Metrics,
    _echo: EchoServer,
    _stop: CancellationToken,
}

async fn rig(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Rig {
    let stop = CancellationToken::new();
    let echo = common::echo_uas(&stop).await;
    let mut config = common::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{}", echo.local_addr()));
    config.http.tls_cert = Some(dir.join("cert.pem").display().to_string());
    config.http.tls_key = Some(dir.join("key.pem").display().to_string());
    tweak(&mut config);
    let metrics = Metrics::new();
    let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
    Rig {
        gateway,
        metrics,
        _echo: echo,
        _stop: stop,
    }
}

/// A TLS connection that trusts any certificate but reports the one it got.
async fn tls_connect(
    addr: SocketAddr,
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    CertificateDer<'static>,
) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    // Learn the served certificate first, then connect trusting exactly it:
    // the second handshake is a real verification against that root.
    let served = served_cert(addr).await;
    roots.add(served.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = connector.connect(name, tcp).await.unwrap();
    (tls, served)
}

/// The leaf certificate a new connection to `addr` is served.
async fn served_cert(addr: SocketAddr) -> CertificateDer<'static> {
    let mut client =
        rustls::ClientConnection::new(accept_any(), ServerName::IpAddress(addr.ip().into()))
            .unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(T)).unwrap();
    tokio::task::spawn_blocking(move || {
        while client.is_handshaking() {
            client.complete_io(&mut tcp).unwrap();
        }
        client.peer_certificates().unwrap()[0].clone().into_owned()
    })
    .await
    .unwrap()
}

fn accept_any() -> Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct Any;
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any))
        .with_no_client_auth();
    Arc::new(config)
}

async fn wss(addr: SocketAddr) -> (Signaling, CertificateDer<'static>) {
    let (tls, cert) = tls_connect(addr).await;
    let sig = Signaling::over(&format!("wss://{addr}/ws"), Box::new(tls))
        .await
        .unwrap();
    (sig, cert)
}

/// Polls until a new connection is served a certificate other than `old`.
async fn wait_for_new_cert(
    addr: SocketAddr,
    old: &CertificateDer<'static>,
) -> CertificateDer<'static> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let now = served_cert(addr).await;
        if &now != old || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_call_keeps_audio_while_the_certificate_rotates() {
    let dir = temp_dir("rotate");
    let first = write_cert(&dir);
    let rig = rig(&dir, |_| {}).await;
    let addr = rig.gateway.http_addr();

    let (mut sig, served) = wss(addr).await;
    assert_eq!(served, first);
    let browser = common::answered_call(&mut sig, "c1").await;
    assert!(
        common::echo_round_trip(&browser, 50).await >= 45,
        "audio over a wss call"
    );

    // Rotated on disk: the next connection gets the new certificate ...
    let second = write_cert(&dir);
    assert_eq!(wait_for_new_cert(addr, &first).await, second);
    // ... while the call on the older socket keeps its audio.
    assert!(
        common::echo_round_trip(&browser, 50).await >= 45,
        "audio after rotation"
    );

    // A broken file is refused and the served certificate stays.
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    rig.gateway.reload_tls();
    assert_eq!(served_cert(addr).await, second);
    let text = rig.metrics.render();
    assert!(
        text.contains(r#"siphon_tls_reloads_total{listener="https",result="failed"} 1"#),
        "{text}"
    );

    // SIGHUP (what reload_tls runs) picks up a good pair at once.
    let third = write_cert(&dir);
    rig.gateway.reload_tls();
    assert_eq!(served_cert(addr).await, third);

    // And the health check speaks TLS to it.
    let probe = tokio::task::spawn_blocking(move || siphon::http::healthcheck(addr, true));
    assert!(probe.await.unwrap(), "healthcheck over TLS");
    let plain = tokio::task::spawn_blocking(move || siphon::http::healthcheck(addr, false));
    assert!(
        !plain.await.unwrap(),
        "plain HTTP gets no answer on the TLS port"
    );

    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_on_the_tls_port_is_closed_and_counted() {
    let dir = temp_dir("plain");
    write_cert(&dir);
    let rig = rig(&dir, |_| {}).await;
    let addr = rig.gateway.http_addr();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(T, tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(
        !String::from_utf8_lossy(&buf).contains("ok"),
        "no HTTP answer"
    );
    let counted = r#"siphon_https_handshake_failures_total{reason="not_tls"} 1"#;
    let deadline = tokio::time::Instant::now() + T;
    while !rig.metrics.render().contains(counted) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rig.metrics.render().contains(counted));
    // The listener still serves real clients.
    let (_sig, _) = wss(addr).await;
}

async fn http_get(addr: SocketAddr, path: &str, host: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(T, tcp.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_listener_redirects_to_https() {
    let dir = temp_dir("redirect");
    write_cert(&dir);
    // A port for the redirect listener.
    let port = siphon_testkit::ports::port();
    let redirect: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rig = rig(&dir, |c| c.http.redirect_listen = Some(redirect)).await;
    let https_port = rig.gateway.http_addr().port();
    let reply = http_get(redirect, "/ws?token=x", "gw.example:80").await;
    assert!(reply.starts_with("HTTP/1.1 308"), "{reply}");
    let location = format!("location: https://gw.example:{https_port}/ws?token=x");
    assert!(reply.to_ascii_lowercase().contains(&location), "{reply}");
}

/// Opens `/ws` on a plain-HTTP gateway with `origin`; the HTTP status.
async fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> u16 {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/ws"
        ))
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_refuses_other_origins_and_missing_ones_without_tokens() {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.sip.udp = Some("127.0.0.1:0".parse().unwrap());
    config.sip.tcp = None;
    config.webrtc.port = 0;
    let rtp_base = siphon_testkit::ports::block(20);
    config.rtp.port_min = rtp_base;
    config.rtp.port_max = rtp_base + 19;
    config.media.workers = 1;
    config.echo.enabled = false;
    let metrics = Metrics::new();
    let gateway = Gateway::start(config.clone(), metrics.clone())
        .await
        .unwrap();
    let addr = gateway.http_addr();
    let own = format!("http://{addr}");
    assert_eq!(
        upgrade_status(addr, Some(&own)).await,
        101,
        "the page siphon serves"
    );
    assert_eq!(
        upgrade_status(addr, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(addr, Some("null")).await, 403);
    assert_eq!(
        upgrade_status(addr, None).await,
        403,
        "no Origin and no token"
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"siphon_http_refused_total{reason="origin"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"siphon_http_refused_total{reason="no_origin"} 1"#),
        "{text}"
    );
    gateway.shutdown().await;

    // Listed origins replace the Host rule; with tokens on, a client
    // without Origin (not a browser) gets to the token check.
    config.http.allowed_origins = vec!["https://app.example.com".into()];
    config.auth.required = true;
    config.auth.secret = "0123456789abcdef0123456789abcdef".into();
    let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
    let addr = gateway.http_addr();
    assert_eq!(
        upgrade_status(addr, Some("https://app.example.com")).await,
        101
    );
    assert_eq!(
        upgrade_status(addr, Some(&format!("http://{addr}"))).await,
        403
    );
    assert_eq!(upgrade_status(addr, None).await, 101);
    gateway.shutdown().await;
}
