//! The SIP rows of the bad-input catalogue (docs/reliability.md, "SIP and
//! SDP from peers"): each test sends exactly one bad input to a running
//! endpoint, checks the answer and the counter, and that the endpoint still
//! answers afterwards.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// A loopback address on a port from the test-port allocator.
fn port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], siphon_testkit::ports::port()))
}

/// An endpoint on fixed ports, and a probe socket.
struct Rig {
    sip: SipEndpoint,
    metrics: Metrics,
    sock: UdpSocket,
    _shutdown: DropCancel,
}

struct DropCancel(CancellationToken);

impl Drop for DropCancel {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Rig {
    async fn start() -> Rig {
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        let mut s = settings();
        s.udp = Some(port());
        s.tcp = Some(port());
        s.max_message_bytes = 65535;
        let sip = SipEndpoint::start(s, metrics.clone(), shutdown.clone())
            .await
            .expect("endpoint");
        let sock = UdpSocket::bind(port()).await.expect("probe");
        Rig {
            sip,
            metrics,
            sock,
            _shutdown: DropCancel(shutdown),
        }
    }

    fn udp(&self) -> SocketAddr {
        self.sip.local_addr(Transport::Udp).expect("udp")
    }

    /// A well-formed request of `method` from the probe socket.
    fn request(&self, method: &str) -> String {
        let me = self.sock.local_addr().expect("addr");
        format!(
            "{method} sip:siphon@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {me};rport;branch=z9hG4bK-{n}\r\n\
From: <sip:probe@127.0.0.1>;tag=p1\r\n\
To: <sip:siphon@127.0.0.1>\r\n\
Call-ID: cat-{n}\r\n\
CSeq: 1 {method}\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n",
            n = rand::random::<u32>(),
        )
    }

    /// The first response to `bytes`, waiting PROMPT if `expect` else QUIET.
    async fn send(&self, bytes: &[u8], expect: bool) -> Option<String> {
        self.sock.send_to(bytes, self.udp()).await.expect("send");
        let wait = if expect { PROMPT } else { QUIET };
        let mut buf = vec![0u8; 8192];
        let (n, _) = timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }

    /// `bytes` gets `status` (a prefix like "400"), or nothing for `None`;
    /// `reason` is counted once; OPTIONS still gets 200 afterwards.
    async fn expect(&self, bytes: &[u8], status: Option<&str>, reason: Option<&str>) {
        let got = self.send(bytes, status.is_some()).await;
        match status {
            Some(s) => {
                let got = got.expect("a response");
                assert!(got.starts_with(&format!("SIP/2.0 {s}")), "{got}");
            }
            None => assert!(got.is_none(), "unexpected response: {got:?}"),
        }
        if let Some(reason) = reason {
            let line = format!("siphon_sip_errors_total{{reason=\"{reason}\"}} 1");
            assert!(
                metric_line(&self.metrics, &line),
                "{}",
                self.metrics.render()
            );
        }
        let ok = self.request("OPTIONS");
        let after = self
            .send(ok.as_bytes(), true)
            .await
            .expect("OPTIONS answered");
        assert!(after.starts_with("SIP/2.0 200"), "{after}");
    }
}

#[tokio::test]
async fn request_without_call_id_is_dropped_and_counted() {
    let rig = Rig::start().await;
    let bad = rig
        .request("OPTIONS")
        .replace("Call-ID: cat-", "X-Not-Call-ID: ");
    rig.expect(bad.as_bytes(), None, Some("missing_header"))
        .await;
}

#[tokio::test]
async fn content_length_larger_than_body_gets_400() {
    let rig = Rig::start().await;
    let bad = rig.request("OPTIONS").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Length: 300\r\n\r\nshort body",
    );
    rig.expect(bad.as_bytes(), Some("400"), Some("truncated"))
        .await;
}

#[tokio::test]
async fn huge_content_length_gets_400() {
    let rig = Rig::start().await;
    let bad = rig.request("OPTIONS").replace(
        "Content-Length: 0",
        "Content-Length: 999999999999999999999999",
    );
    rig.expect(bad.as_bytes(), Some("400"), Some("bad_content_length"))
        .await;
}

#[tokio::test]
async fn negative_content_length_gets_400() {
    let rig = Rig::start().await;
    let bad = rig
        .request("OPTIONS")
        .replace("Content-Length: 0", "Content-Length: -5");
    rig.expect(bad.as_bytes(), Some("400"), Some("bad_content_length"))
        .await;
}

#[tokio::test]
async fn negative_cseq_gets_400() {
    let rig = Rig::start().await;
    let bad = rig
        .request("OPTIONS")
        .replace("CSeq: 1 OPTIONS", "CSeq: -1 OPTIONS");
    rig.expect(bad.as_bytes(), Some("400"), Some("bad_header"))
        .await;
}

#[tokio::test]
async fn cseq_method_unlike_the_request_gets_400() {
    let rig = Rig::start().await;
    let bad = rig
        .request("OPTIONS")
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    rig.expect(bad.as_bytes(), Some("400"), Some("bad_header"))
        .await;
}

#[tokio::test]
async fn unknown_method_gets_501() {
    let rig = Rig::start().await;
    let bad = rig.request("FROBNICATE");
    rig.expect(bad.as_bytes(), Some("501"), None).await;
}

#[tokio::test]
async fn non_sip_garbage_is_dropped_and_counted() {
    let rig = Rig::start().await;
    rig.expect(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage",
        None,
        Some("truncated"),
    )
    .await;
}

#[tokio::test]
async fn nul_bytes_in_a_header_get_400() {
    let rig = Rig::start().await;
    let bad = rig
        .request("OPTIONS")
        .replace("From: <sip:probe@", "From: <sip:pr\0\0be@");
    rig.expect(bad.as_bytes(), Some("400"), Some("garbage"))
        .await;
}

#[tokio::test]
async fn bytes_that_are_not_utf8_in_headers_get_400() {
    let rig = Rig::start().await;
    let mut bad = rig.request("OPTIONS").into_bytes();
    let at = bad.windows(6).position(|w| w == b"probe@").expect("From");
    bad[at] = 0xff;
    rig.expect(&bad, Some("400"), Some("garbage")).await;
}

#[tokio::test]
async fn unsupported_sip_version_gets_505() {
    let rig = Rig::start().await;
    let bad = rig
        .request("OPTIONS")
        .replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    rig.expect(bad.as_bytes(), Some("505"), Some("bad_version"))
        .await;
}

#[tokio::test]
async fn stray_response_is_ignored() {
    let rig = Rig::start().await;
    let req = rig.request("OPTIONS");
    let stray = req.replacen("OPTIONS sip:siphon@127.0.0.1 SIP/2.0", "SIP/2.0 200 OK", 1);
    rig.expect(stray.as_bytes(), None, None).await;
}

#[tokio::test]
async fn bye_outside_any_dialog_gets_481() {
    let rig = Rig::start().await;
    let bye = rig.request("BYE");
    rig.expect(bye.as_bytes(), Some("481"), None).await;
}

#[tokio::test]
async fn request_with_six_hundred_unknown_headers_is_answered() {
    let rig = Rig::start().await;
    let extra: String = (0..600).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = rig.request("OPTIONS").replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{extra}"),
    );
    assert!(req.len() < 8192);
    rig.expect(req.as_bytes(), Some("200"), None).await;
}

#[tokio::test]
async fn tcp_header_block_that_never_ends_is_closed_and_counted() {
    let rig = Rig::start().await;
    let to = rig.sip.local_addr(Transport::Tcp).expect("tcp");
    let mut s = TcpStream::connect(to).await.expect("connect");
    let mut head = rig.request("OPTIONS").replace("\r\n\r\n", "\r\n");
    while head.len() <= 70_000 {
        head.push_str(
            "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    // The peer may close while this is still being written.
    let _ = s.write_all(head.as_bytes()).await;
    let mut buf = vec![0u8; 4096];
    let read = timeout(PROMPT, s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let line = "siphon_sip_errors_total{reason=\"oversize\"} 1";
    assert!(metric_line(&rig.metrics, line), "{}", rig.metrics.render());
}
