//! Datagrams at and over rsipstack's 8,192-byte read buffer, to the
//! gateway's SIP port and to the echo port. Listening ports come from the
//! test-port allocator.

use super::*;

/// A loopback address on a port from the test-port allocator.
fn port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], siphon_testkit::ports::port()))
}

async fn peers_on_fixed_ports() -> Peers {
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let mut s = settings();
    s.udp = Some(port());
    s.tcp = Some(port());
    s.max_message_bytes = 65535;
    let sip = SipEndpoint::start(s, metrics.clone(), shutdown.clone())
        .await
        .expect("endpoint");
    let echo = EchoServer::start(
        EchoSettings {
            listen: port(),
            rtp_ip: [127, 0, 0, 1].into(),
            behavior: EchoBehavior::default(),
        },
        metrics.clone(),
        shutdown.clone(),
    )
    .await
    .expect("echo");
    Peers {
        sip,
        echo,
        metrics,
        shutdown,
    }
}

fn options(me: SocketAddr, body: &str) -> String {
    format!(
        "OPTIONS sip:siphon@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {me};rport;branch=z9hG4bK-{}\r\n\
From: <sip:probe@127.0.0.1>;tag=p1\r\n\
To: <sip:siphon@127.0.0.1>\r\n\
Call-ID: big-{}\r\n\
CSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Type: text/plain\r\n\
Content-Length: {}\r\n\r\n{body}",
        rand::random::<u32>(),
        rand::random::<u32>(),
        body.len()
    )
}

/// The first response to `bytes` within `wait`, if any.
async fn probe(sock: &UdpSocket, to: SocketAddr, bytes: &[u8], wait: Duration) -> Option<String> {
    sock.send_to(bytes, to).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).to_string())
}

async fn answers_options(sock: &UdpSocket, to: SocketAddr) -> bool {
    let me = sock.local_addr().expect("addr");
    let got = probe(sock, to, options(me, "").as_bytes(), PROMPT).await;
    got.is_some_and(|g| g.starts_with("SIP/2.0 200"))
}

#[tokio::test]
async fn whitespace_datagram_over_the_stack_buffer_leaves_udp_serving() {
    let p = peers_on_fixed_ports().await;
    let sock = UdpSocket::bind(port()).await.expect("probe");
    let targets = [
        p.sip.local_addr(Transport::Udp).expect("udp"),
        p.echo.local_addr(),
    ];
    for to in targets {
        assert!(answers_options(&sock, to).await, "{to} before");
        for len in [8192, 8193, 20_000] {
            let got = probe(&sock, to, &vec![b' '; len], QUIET).await;
            assert!(got.is_none(), "{len} spaces answered: {got:?}");
        }
        assert!(answers_options(&sock, to).await, "{to} after");
    }
    assert!(
        metric_line(&p.metrics, "siphon_sip_errors_total{reason=\"oversize\"} 4"),
        "{}",
        p.metrics.render()
    );
    assert!(p.metrics.sip_listeners_down().is_empty());
}

#[tokio::test]
async fn request_over_8192_bytes_gets_513_and_is_counted() {
    let p = peers_on_fixed_ports().await;
    let sock = UdpSocket::bind(port()).await.expect("probe");
    let me = sock.local_addr().expect("addr");
    let to = p.sip.local_addr(Transport::Udp).expect("udp");
    let fits = options(me, &"x".repeat(7000));
    assert!(fits.len() < 8192);
    let got = probe(&sock, to, fits.as_bytes(), PROMPT).await;
    assert!(
        got.as_deref().is_some_and(|g| g.starts_with("SIP/2.0 200")),
        "{got:?}"
    );
    let over = options(me, &"x".repeat(9000));
    let got = probe(&sock, to, over.as_bytes(), PROMPT)
        .await
        .expect("a response");
    assert!(got.starts_with("SIP/2.0 513 Message Too Large"), "{got}");
    assert!(metric_line(
        &p.metrics,
        "siphon_sip_errors_total{reason=\"oversize\"} 1"
    ));
    assert!(answers_options(&sock, to).await);
}
