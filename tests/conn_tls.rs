//! Connection limits on the SIP TLS listener: the per-IP cap, the idle
//! timeout after the handshake, and a connection's fd freed as soon as the
//! client goes, though a transaction still holds the connection.
//! (One test alone in its binary: it counts every fd of the process.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::pki::Pki;
use siphon::config::{Config, UserConfig};
use siphon::connections::fd::open_fds;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::Transport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const T: Duration = Duration::from_secs(10);

async fn gateway(pki: &Pki) -> (Gateway, Metrics) {
    let own = pki.issue(&["127.0.0.1"]);
    // HTTP on `base`, SIP TLS on `base + 1`, WebRTC on `base + 2`.
    let (base, rtp) = (
        siphon_testkit::ports::block(3),
        siphon_testkit::ports::block(10),
    );
    let mut config = Config::default();
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], base));
    config.sip.udp = None;
    config.sip.tcp = None;
    config.sip.tls.listen = Some(SocketAddr::from(([127, 0, 0, 1], base + 1)));
    config.sip.tls.cert = pki.write("siphon.crt", &own.cert);
    config.sip.tls.key = pki.write("siphon.key", &own.key);
    config.sip.tls.ca = pki.write("ca.crt", &pki.ca_pem());
    config.webrtc.port = base + 2;
    config.rtp.port_min = rtp;
    config.rtp.port_max = rtp + 9;
    config.media.workers = 1;
    config.echo.enabled = false;
    config.limits.connections.sip_per_ip = 2;
    config.limits.connections.idle_secs = 2;
    config.users = vec![UserConfig {
        name: "alice".into(),
        ..UserConfig::default()
    }];
    let metrics = Metrics::new();
    let gw = Gateway::start(config, metrics.clone()).await.unwrap();
    (gw, metrics)
}

async fn tls_connect(pki: &Pki, to: SocketAddr) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(pki.ca_pem().as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(to).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Whether the server ends `stream` (EOF or error) within `T`.
async fn ended(stream: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 2048];
    let until_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(T, until_end).await.is_ok()
}

fn invite(from: SocketAddr) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 21499 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {from};branch=z9hG4bK-tls-1\r\n\
Max-Forwards: 70\r\nFrom: <sip:pbx@127.0.0.1>;tag=t1\r\nTo: <sip:alice@127.0.0.1>\r\n\
Call-ID: tls-1@test\r\nCSeq: 1 INVITE\r\nContact: <sips:pbx@{from}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_tls_caps_and_idle_and_the_fd_of_a_gone_client() {
    let pki = Pki::new("conn-tls");
    let (gw, m) = gateway(&pki).await;
    let tls = gw.sip_addr(Transport::Tls).unwrap();
    let refused = || {
        m.connections_refused_total
            .with_label_values(&["sip_tls", "per_ip_cap"])
            .get()
    };

    // Per-IP cap: two held, the third closed before any handshake.
    let a = TcpStream::connect(tls).await.unwrap();
    let b = TcpStream::connect(tls).await.unwrap();
    let mut third = TcpStream::connect(tls).await.unwrap();
    assert!(ended(&mut third).await);
    assert_eq!(refused(), 1);
    drop((a, b, third));
    let open = m.connections_open.with_label_values(&["sip_tls"]);
    while open.get() != 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Idle after the handshake: closed and counted.
    let mut idle = tls_connect(&pki, tls).await;
    assert!(ended(&mut idle).await);
    let closed = m
        .connections_closed_total
        .with_label_values(&["sip_tls", "idle"]);
    assert_eq!(closed.get(), 1);
    drop(idle);

    // An INVITE answered 480, then the client goes: neither the INVITE
    // transaction (Timer H, 32 s) nor the connection keeps the socket.
    let baseline = open_fds().unwrap();
    let mut call = tls_connect(&pki, tls).await;
    let from = call.get_ref().0.local_addr().unwrap();
    call.write_all(invite(from).as_bytes()).await.unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("SIP/2.0 480") {
        let n = tokio::time::timeout(T, call.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the answer: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    drop(call);
    let back = async {
        while open_fds().unwrap() > baseline || open.get() != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // Well under Timer H: the fd does not wait for the transaction.
    let released = tokio::time::timeout(Duration::from_secs(10), back).await;
    assert!(
        released.is_ok(),
        "fds {} against {baseline}, {} slots",
        open_fds().unwrap(),
        open.get()
    );
}
