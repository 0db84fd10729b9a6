//! Bad SDP from a SIP peer, sent as raw INVITEs to a running siphon whose
//! user `carol` is online: each gets its SIP answer, carol's browser never
//! rings, and siphon keeps taking calls. One test per row of the "SIP and
//! SDP from peers" table in docs/reliability.md.
//!
//! Ports: each test owns a block of 30 from the test-port allocator.

mod common;

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::sync::Arc;
use std::time::Duration;

use common::Signaling;
use serde_json::json;
use siphon::config::{Config, UserConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{OutboundInvite, UacEvent};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A gateway on `base`.. (30 ports from the test-port allocator) with
/// carol online.
struct Rig {
    base: u16,
    gateway: Gateway,
    carol: Signaling,
}

impl Rig {
    async fn start() -> Rig {
        let base = siphon_testkit::ports::block(30);
        let mut config = Config::default();
        config.http.listen = addr(base);
        config.sip.udp = Some(addr(base + 1));
        config.sip.tcp = None;
        config.echo.enabled = false;
        config.webrtc.port = base + 2;
        config.rtp.port_min = base + 10;
        config.rtp.port_max = base + 29;
        config.media.workers = 1;
        config.users = vec![UserConfig {
            name: "carol".into(),
            extension: "carol".into(),
            ..Default::default()
        }];
        let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
        let url = format!("ws://{}/ws", gateway.http_addr());
        let mut carol = Signaling::connect(&url).await.unwrap();
        carol
            .send(json!({"type":"hello","user":"carol"}))
            .await
            .unwrap();
        sync(&mut carol).await;
        Rig {
            base,
            gateway,
            carol,
        }
    }

    /// Send a raw INVITE for carol with `content_type` and `body` (no
    /// Content-Type header when empty); the final status code.
    async fn invite(&self, content_type: &str, body: &str) -> u16 {
        invite(self.base, content_type, body).await
    }

    /// Carol's browser heard nothing, and a good offer still rings her.
    async fn assert_unharmed(mut self) {
        sync(&mut self.carol).await;
        let media = format!("m=audio {} RTP/AVP 0", self.base + 5);
        let good = offer(&media, "a=rtpmap:0 PCMU/8000\r\n");
        let ring = timeout(
            Duration::from_secs(2),
            invite(self.base, "application/sdp", &good),
        );
        let (_, incoming) = tokio::join!(ring, self.carol.recv_type("incoming", T));
        assert_eq!(incoming.unwrap()["to"], "carol");
    }
}

/// Send a raw INVITE for carol to the gateway on `base` with `content_type`
/// and `body` (no Content-Type header when empty); the final status code.
async fn invite(base: u16, content_type: &str, body: &str) -> u16 {
    let sock = UdpSocket::bind(addr(base + 3)).await.unwrap();
    let me = sock.local_addr().unwrap();
    let ctype = if content_type.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {content_type}\r\n")
    };
    let msg = format!(
        "INVITE sip:carol@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};rport;branch=z9hG4bK-{n}\r\n\
         From: <sip:1000@127.0.0.1>;tag=pbx{n}\r\n\
         To: <sip:carol@{gw}>\r\n\
         Call-ID: bad-sdp-{n}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:1000@{me}>\r\n\
         Max-Forwards: 70\r\n\
         {ctype}Content-Length: {len}\r\n\r\n{body}",
        gw = addr(base + 1),
        n = rand::random::<u32>(),
        len = body.len(),
    );
    sock.send_to(msg.as_bytes(), addr(base + 1)).await.unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = timeout(T, sock.recv_from(&mut buf))
            .await
            .expect("a final answer in time")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        let code: u16 = text
            .strip_prefix("SIP/2.0 ")
            .and_then(|t| t.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not a response: {text}"));
        if code >= 200 {
            return code;
        }
    }
}

/// A round trip on the socket: anything sent before it arrives first.
async fn sync(sig: &mut Signaling) {
    sig.send(json!({"type":"hangup","call_id":"sync"}))
        .await
        .unwrap();
    let next = sig.recv(T).await.unwrap();
    assert_eq!(next["code"], "unknown_call", "{next}");
}

/// An SDP with the usual session lines, `media` as its m= line and
/// `attrs` after it.
fn offer(media: &str, attrs: &str) -> String {
    format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         {media}\r\n{attrs}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_without_media_line_gets_488() {
    let rig = Rig::start().await;
    let sdp = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
    assert_eq!(rig.invite("application/sdp", sdp).await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_with_only_unsupported_codecs_gets_488() {
    let rig = Rig::start().await;
    let sdp = offer("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000\r\n");
    assert_eq!(rig.invite("application/sdp", &sdp).await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_with_bad_connection_address_gets_488() {
    let rig = Rig::start().await;
    let sdp = offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000\r\n")
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 999.1.2.3");
    assert_eq!(rig.invite("application/sdp", &sdp).await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_with_bad_crypto_key_gets_488() {
    let rig = Rig::start().await;
    let attrs = "a=rtpmap:0 PCMU/8000\r\n\
                 a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:not*base64*at*all\r\n";
    let sdp = offer("m=audio 4000 RTP/SAVP 0", attrs);
    assert_eq!(rig.invite("application/sdp", &sdp).await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_that_is_not_sdp_gets_488() {
    let rig = Rig::start().await;
    let garbage = "\u{1}\u{2} this is not SDP at all \r\n=\r\n";
    assert_eq!(rig.invite("application/sdp", garbage).await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_with_bad_media_port_gets_488() {
    let rig = Rig::start().await;
    let sdp = offer("m=audio 99999 RTP/AVP 0", "a=rtpmap:0 PCMU/8000\r\n");
    assert_eq!(rig.invite("application/sdp", &sdp).await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_with_a_body_that_is_not_sdp_by_type_gets_415() {
    let rig = Rig::start().await;
    let sdp = offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000\r\n");
    assert_eq!(rig.invite("text/plain", &sdp).await, 415);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_without_an_offer_gets_488() {
    let rig = Rig::start().await;
    assert_eq!(rig.invite("", "").await, 488);
    rig.assert_unharmed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_with_broken_sdp_mid_call_gets_488_and_the_call_goes_on() {
    let mut rig = Rig::start().await;
    let base = rig.base;
    let stop = CancellationToken::new();
    let pbx = common::test_pbx(addr(base + 4), &stop).await;
    let pbx_rtp = StdUdp::bind(addr(base + 5)).unwrap();
    let good = offer(
        &format!("m=audio {} RTP/AVP 0", base + 5),
        "a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
    );
    let invite = OutboundInvite {
        target: format!("sip:carol@{}", addr(base + 1)),
        from_user: "1000".into(),
        from_display: None,
        sdp: good.clone(),
        credentials: None,
        log_id: "pbx".into(),
        failover: Vec::new(),
        response_wait: None,
        headers: Vec::new(),
    };
    let (uac, mut events) = pbx.invite(invite).await.unwrap();
    let (browser, call_id): (Arc<common::Browser>, String) =
        common::accept_incoming(&mut rig.carol).await;
    let answer = common::uac_answer(&mut events).await;
    browser.wait_connected(T).await.unwrap();

    let broken = good.replace("m=audio", "m=audio-but-not-really");
    let (code, _) = uac.reinvite(broken).await.expect("an answer");
    assert_eq!(code, 488);
    let (code, _) = uac
        .reinvite("v=0\r\nnonsense\r\n".into())
        .await
        .expect("an answer");
    assert_eq!(code, 488);

    // Audio from the PBX still reaches the browser, which heard of nothing.
    let gw_media = common::media_addr(&answer);
    for seq in 0..30u16 {
        let mut p = vec![0x80, 0];
        p.extend(seq.to_be_bytes());
        p.extend((u32::from(seq) * 160).to_be_bytes());
        p.extend(0x5EED_u32.to_be_bytes());
        p.extend(common::stamped_frame(seq));
        pbx_rtp.send_to(&p, gw_media).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut heard = 0;
    while let Ok(p) = browser.recv_rtp(Duration::from_millis(500)).await {
        heard += usize::from(common::frame_index(&p.payload).is_some());
    }
    assert!(
        heard >= 25,
        "only {heard} of 30 frames after the bad re-INVITEs"
    );
    sync(&mut rig.carol).await;
    assert_eq!(rig.gateway.active_calls(), 1);
    uac.hangup().await;
    let hangup = rig.carol.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        (hangup["call_id"].as_str(), hangup["code"].as_u64()),
        (Some(call_id.as_str()), Some(200))
    );
    assert!(!matches!(events.try_recv(), Ok(UacEvent::Failed { .. })));
}
