use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

fn request(method: &str, via: SocketAddr, transport: &str, extra: &str) -> String {
    format!(
        "{method} sip:siphon@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/{transport} {via};rport;branch=z9hG4bK-{}\r\n\
From: <sip:probe@127.0.0.1>;tag=p1\r\n\
To: <sip:siphon@127.0.0.1>\r\n\
Call-ID: probe-{}\r\n\
CSeq: 1 {method}\r\n\
Max-Forwards: 70\r\n{extra}",
        rand::random::<u32>(),
        rand::random::<u32>(),
    )
}

/// Send one datagram; the first response, if one comes within `wait`.
async fn udp_probe(
    sock: &UdpSocket,
    to: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<String> {
    sock.send_to(bytes, to).await.expect("send");
    let mut buf = vec![0u8; 8192];
    let (n, _) = timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).to_string())
}

async fn udp_expect(sock: &UdpSocket, to: SocketAddr, bytes: &[u8], status: Option<&str>) {
    let wait = if status.is_some() { PROMPT } else { QUIET };
    let got = udp_probe(sock, to, bytes, wait).await;
    match status {
        Some(s) => {
            let got = got.expect("a response");
            assert!(got.starts_with(&format!("SIP/2.0 {s}")), "{got}");
        }
        None => assert!(got.is_none(), "unexpected response: {got:?}"),
    }
}

fn error_count(metrics: &Metrics, reason: &str, n: u64) -> bool {
    metric_line(
        metrics,
        &format!("siphon_sip_errors_total{{reason=\"{reason}\"}} {n}"),
    )
}

#[tokio::test]
async fn udp_malformed_input_is_refused_or_dropped_and_counted() {
    let p = peers(EchoBehavior::default()).await;
    let to = p.sip.local_addr(Transport::Udp).expect("udp");
    let sock = UdpSocket::bind(local()).await.expect("probe");
    let me = sock.local_addr().expect("addr");
    let ok = request("OPTIONS", me, "UDP", "Content-Length: 0\r\n\r\n");

    udp_expect(&sock, to, ok.as_bytes(), Some("200")).await;
    udp_expect(&sock, to, b"\x00\x01\xfe garbage \xff", None).await;
    udp_expect(&sock, to, &ok.as_bytes()[..70], None).await;
    let short_body = request("OPTIONS", me, "UDP", "Content-Length: 20\r\n\r\nabc");
    udp_expect(&sock, to, short_body.as_bytes(), Some("400")).await;
    let no_call_id = ok.replace("Call-ID: probe-", "X-Call: ");
    udp_expect(&sock, to, no_call_id.as_bytes(), None).await;
    let bad_cseq = ok.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS");
    udp_expect(&sock, to, bad_cseq.as_bytes(), Some("400")).await;
    let huge = request("OPTIONS", me, "UDP", "Content-Length: 5000\r\n\r\n") + &"x".repeat(5000);
    udp_expect(&sock, to, huge.as_bytes(), Some("513")).await;

    assert!(
        error_count(&p.metrics, "truncated", 3),
        "{}",
        p.metrics.render()
    );
    assert!(error_count(&p.metrics, "missing_header", 1));
    assert!(error_count(&p.metrics, "bad_header", 1));
    assert!(error_count(&p.metrics, "oversize", 1));
    assert!(metric_line(&p.metrics, "direction=\"in\",kind=\"OPTIONS\""));

    // The endpoint still serves calls.
    let (handle, mut rx) = p
        .sip
        .invite(invite(&p, Transport::Udp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Answered { .. })),
        "{events:?}"
    );
    handle.hangup().await;
}

#[tokio::test]
async fn inbound_invite_is_480_until_routing_exists() {
    let p = peers(EchoBehavior::default()).await;
    let to = p.sip.local_addr(Transport::Udp).expect("udp");
    let sock = UdpSocket::bind(local()).await.expect("probe");
    let me = sock.local_addr().expect("addr");
    let body = offer();
    let extra = format!(
        "Contact: <sip:probe@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.send_to(request("INVITE", me, "UDP", &extra).as_bytes(), to)
        .await
        .expect("send");
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, _) = timeout(PROMPT, sock.recv_from(&mut buf))
            .await
            .expect("response in time")
            .expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]);
        if !text.starts_with("SIP/2.0 1") {
            assert!(text.starts_with("SIP/2.0 480"), "{text}");
            return;
        }
    }
}

async fn tcp_read(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 8192];
    match timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn tcp_malformed_streams_are_refused_or_closed_and_counted() {
    let p = peers(EchoBehavior::default()).await;
    let to = p.sip.local_addr(Transport::Tcp).expect("tcp");

    // No Content-Length: 400, then the connection is closed (framing lost).
    let mut s = TcpStream::connect(to).await.expect("connect");
    let me = s.local_addr().expect("addr");
    s.write_all(request("OPTIONS", me, "TCP", "\r\n").as_bytes())
        .await
        .expect("write");
    let got = tcp_read(&mut s, PROMPT).await.expect("response");
    assert!(got.starts_with("SIP/2.0 400"), "{got}");
    assert_eq!(tcp_read(&mut s, PROMPT).await.as_deref(), Some(""));

    // A request missing Call-ID is dropped, the connection keeps serving.
    let mut s = TcpStream::connect(to).await.expect("connect");
    let me = s.local_addr().expect("addr");
    let ok = request("OPTIONS", me, "TCP", "Content-Length: 0\r\n\r\n");
    let no_call_id = ok.replace("Call-ID: probe-", "X-Call: ");
    s.write_all(no_call_id.as_bytes()).await.expect("write");
    assert_eq!(tcp_read(&mut s, QUIET).await, None);
    s.write_all(ok.as_bytes()).await.expect("write");
    let got = tcp_read(&mut s, PROMPT).await.expect("response");
    assert!(got.starts_with("SIP/2.0 200"), "{got}");

    // Garbage with no end of headers past the limit: closed, no answer.
    let mut s = TcpStream::connect(to).await.expect("connect");
    s.write_all(&[b'z'; 5000]).await.expect("write");
    assert_eq!(tcp_read(&mut s, PROMPT).await.as_deref(), Some(""));

    assert!(error_count(&p.metrics, "missing_content_length", 1));
    assert!(error_count(&p.metrics, "missing_header", 1));
    assert!(error_count(&p.metrics, "oversize", 1));

    let (handle, mut rx) = p
        .sip
        .invite(invite(&p, Transport::Tcp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Answered { .. })),
        "{events:?}"
    );
    handle.hangup().await;
}
