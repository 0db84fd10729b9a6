//! Every way a call ends reaches the browser at once, whatever the SIP peer
//! does afterwards: a peer that vanished mid-call (it answers the INVITE,
//! then never again) costs siphon a 32 s BYE transaction, never the
//! browser's `hangup`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Signaling;
use serde_json::json;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::Transport;
use tokio::net::UdpSocket;

const T: Duration = Duration::from_secs(10);
/// "At once": well under the 32 s a BYE to a vanished peer takes.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A SIP peer on raw UDP that answers one call and then goes silent.
struct SilentPeer {
    sock: UdpSocket,
    rtp: UdpSocket,
}

impl SilentPeer {
    async fn bind() -> SilentPeer {
        SilentPeer {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn sdp(&self) -> String {
        let port = self.rtp.local_addr().unwrap().port();
        format!(
            "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )
    }

    async fn recv(&self) -> (String, SocketAddr) {
        let mut buf = vec![0; 65536];
        let (n, from) = tokio::time::timeout(T, self.sock.recv_from(&mut buf))
            .await
            .expect("a SIP message")
            .unwrap();
        (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
    }

    /// Answers the INVITE siphon sends with 200 OK, and ignores the rest.
    async fn answer_invite(&self) {
        loop {
            let (msg, from) = self.recv().await;
            if !msg.starts_with("INVITE ") {
                continue;
            }
            let sdp = self.sdp();
            let mut reply = String::from("SIP/2.0 200 OK\r\n");
            for name in ["Via", "From", "Call-ID", "CSeq"] {
                for value in headers(&msg, name) {
                    reply.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            let to = headers(&msg, "To").next().unwrap();
            reply.push_str(&format!(
                "To: {to};tag=silent\r\nContact: <sip:peer@{}>\r\n\
                 Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                self.addr(),
                sdp.len()
            ));
            self.sock.send_to(reply.as_bytes(), from).await.unwrap();
            return;
        }
    }
}

/// The values of every `name` header of `msg` (full names only).
fn headers<'a>(msg: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    msg.split("\r\n")
        .take_while(|l| !l.is_empty())
        .filter_map(move |l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

async fn gateway(trunk: SocketAddr, media_timeout_secs: u64) -> Gateway {
    let mut config = common::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{trunk}"));
    config.limits.media_timeout_secs = media_timeout_secs;
    Gateway::start(config, Metrics::new()).await.unwrap()
}

/// Waits (bounded) until no call is up.
async fn calls_end(gw: &Gateway) {
    let deadline = tokio::time::Instant::now() + AT_ONCE;
    while gw.active_calls() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.active_calls(), 0, "the call is over");
}

/// A browser call answered by `peer`; the peer is silent from then on.
async fn call_to_silent_peer(gw: &Gateway, peer: &SilentPeer) -> (Signaling, common::Browser) {
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    let (browser, ()) = tokio::join!(common::answered_call(&mut sig, "c1"), peer.answer_invite());
    (sig, browser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_hangup_is_answered_at_once_when_the_sip_peer_vanished() {
    let peer = SilentPeer::bind().await;
    let gw = gateway(peer.addr(), 60).await;
    let (mut sig, browser) = call_to_silent_peer(&gw, &peer).await;
    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", AT_ONCE).await.unwrap();
    assert_eq!(hangup["code"], 200);
    // The BYE went out all the same; its transaction is SIP's business.
    loop {
        let (msg, _) = peer.recv().await;
        if msg.starts_with("BYE ") {
            break;
        }
    }
    calls_end(&gw).await;
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_after_keys_sent_as_info_to_a_vanished_peer_is_answered_at_once() {
    let peer = SilentPeer::bind().await;
    let gw = gateway(peer.addr(), 60).await;
    let (mut sig, browser) = call_to_silent_peer(&gw, &peer).await;
    // The peer took no telephone-event: the keys go as SIP INFO, unanswered.
    sig.send(json!({"type":"dtmf","call_id":"c1","digits":"12"}))
        .await
        .unwrap();
    loop {
        let (msg, _) = peer.recv().await;
        if msg.starts_with("INFO ") {
            break;
        }
    }
    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", AT_ONCE).await.unwrap();
    assert_eq!(hangup["code"], 200);
    calls_end(&gw).await;
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_stopping_reaches_the_browser_at_once_when_the_sip_peer_vanished() {
    let peer = SilentPeer::bind().await;
    let gw = gateway(peer.addr(), 1).await;
    let (mut sig, browser) = call_to_silent_peer(&gw, &peer).await;
    // No RTP ever comes from the peer: the media timeout ends the call.
    let hangup = sig
        .recv_type("hangup", Duration::from_secs(1) + AT_ONCE)
        .await;
    let hangup = hangup.unwrap();
    assert_eq!(hangup["code"], 408);
    assert_eq!(
        hangup["reason"],
        "Media timeout: no media from the SIP peer"
    );
    browser.close().await;
    gw.shutdown().await;
}

/// Sends an INVITE from `peer` to siphon for `user`; returns the Call-ID.
async fn invite_from(peer: &SilentPeer, to: SocketAddr, user: &str) -> String {
    let me = peer.addr();
    let sdp = peer.sdp();
    let call_id = format!("silent-{}@test", me.port());
    let msg = format!(
        "INVITE sip:{user}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsilent1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:pbx@{me}>;tag=p1\r\nTo: <sip:{user}@{to}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    peer.sock.send_to(msg.as_bytes(), to).await.unwrap();
    call_id
}

/// ACKs the 200 siphon sends for the INVITE.
async fn ack_the_answer(peer: &SilentPeer, to: SocketAddr) {
    loop {
        let (msg, _) = peer.recv().await;
        if !msg.starts_with("SIP/2.0 200") {
            continue;
        }
        let me = peer.addr();
        let mut ack = format!(
            "ACK sip:alice@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsilent2\r\n\
             Max-Forwards: 70\r\n"
        );
        for name in ["From", "To", "Call-ID"] {
            let value = headers(&msg, name).next().unwrap();
            ack.push_str(&format!("{name}: {value}\r\n"));
        }
        ack.push_str("CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
        peer.sock.send_to(ack.as_bytes(), to).await.unwrap();
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_hangup_of_an_incoming_call_is_answered_at_once_when_the_caller_vanished() {
    let peer = SilentPeer::bind().await;
    let mut config = common::loopback_config();
    config.auth.allow_dynamic_users = true;
    let gw = Gateway::start(config, Metrics::new()).await.unwrap();
    let sip = gw.sip_addr(Transport::Udp).unwrap();
    let mut sig = common::online(&gw, "alice").await;
    invite_from(&peer, sip, "alice").await;
    let (browser, call_id) = common::accept_incoming(&mut sig).await;
    ack_the_answer(&peer, sip).await;
    browser.wait_connected(T).await.unwrap();
    sig.send(json!({"type":"hangup","call_id":call_id}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", AT_ONCE).await.unwrap();
    assert_eq!(hangup["code"], 200);
    calls_end(&gw).await;
    browser.close().await;
    gw.shutdown().await;
}

/// The status code of the first final response `peer` gets.
async fn final_status(peer: &SilentPeer) -> u16 {
    loop {
        let (msg, _) = peer.recv().await;
        let code = msg
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        match code {
            Some(c) if c >= 200 => return c,
            _ => continue,
        }
    }
}

/// Whether `peer` hears 180 before any final response.
async fn rings(peer: &SilentPeer) -> bool {
    loop {
        let (msg, _) = peer.recv().await;
        if msg.starts_with("SIP/2.0 180") {
            return true;
        }
        if msg.starts_with("SIP/2.0 1") || !msg.starts_with("SIP/2.0 ") {
            continue;
        }
        return false;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_calls_never_exceed_max_calls() {
    const MAX: usize = 3;
    const CALLS: usize = 24;
    let mut config = common::loopback_config();
    config.auth.allow_dynamic_users = true;
    config.limits.max_calls = MAX as u32;
    config.limits.per_user_calls = 100;
    let gw = Gateway::start(config, Metrics::new()).await.unwrap();
    let sip = gw.sip_addr(Transport::Udp).unwrap();
    let sig = common::online(&gw, "alice").await;
    let mut peers = Vec::new();
    for _ in 0..CALLS {
        peers.push(SilentPeer::bind().await);
    }
    // Every INVITE is on the wire before siphon answers any of them.
    let sends = peers.iter().map(|p| invite_from(p, sip, "alice"));
    futures_util::future::join_all(sends).await;
    let ringing = futures_util::future::join_all(peers.iter().map(rings)).await;
    let up = ringing.iter().filter(|r| **r).count();
    assert_eq!(up, MAX, "calls ringing at once");
    assert!(gw.active_calls() <= MAX);
    drop(sig);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_extension_takes_at_most_max_calls() {
    let mut config = common::loopback_config();
    config.echo.enabled = true;
    config.echo.listen = "127.0.0.1:0".parse().unwrap();
    config.limits.max_calls = 1;
    let gw = Gateway::start(config, Metrics::new()).await.unwrap();
    let (_, echo) = gw.listening().echo.unwrap();
    let (first, second) = (SilentPeer::bind().await, SilentPeer::bind().await);
    invite_from(&first, echo, "echo").await;
    assert_eq!(final_status(&first).await, 200);
    invite_from(&second, echo, "echo").await;
    assert_eq!(final_status(&second).await, 486, "over limits.max_calls");
    gw.shutdown().await;
}

/// A gateway whose trunk is `trunk` over TCP, and a browser call to it.
async fn call_over_tcp_trunk(trunk: SocketAddr) -> (Gateway, Signaling, common::Browser) {
    let mut config = common::loopback_config();
    config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.sip.trunk.uri = Some(format!("sip:{trunk};transport=tcp"));
    let gw = Gateway::start(config, Metrics::new()).await.unwrap();
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    let browser = common::Browser::new(&[common::Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"c1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    (gw, sig, browser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sip_transport_error_reaches_the_browser_as_503_at_once() {
    // A TCP trunk whose port refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let trunk = closed.local_addr().unwrap();
    drop(closed);
    let (gw, mut sig, browser) = call_over_tcp_trunk(trunk).await;
    let hangup = sig.recv_type("hangup", AT_ONCE).await.unwrap();
    assert_eq!(hangup["code"], 503, "{hangup}");
    let reason = hangup["reason"].as_str().unwrap();
    assert!(reason.contains("TCP connection to"), "{reason}");
    calls_end(&gw).await;
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_trunk_that_never_completes_the_handshake_is_503_within_5_s() {
    // A listener that never accepts, its queue full: the kernel drops
    // further SYNs, so a connection to it neither opens nor fails.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let trunk = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(trunk);
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(300), connect).await {
            queued.push(s);
        }
    }
    let (gw, mut sig, browser) = call_over_tcp_trunk(trunk).await;
    let hangup = sig
        .recv_type("hangup", Duration::from_secs(5) + AT_ONCE)
        .await
        .unwrap();
    assert_eq!(hangup["code"], 503, "{hangup}");
    calls_end(&gw).await;
    drop((listener, queued));
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_over_max_calls_gets_limit_reached() {
    let peer = SilentPeer::bind().await;
    let mut config = common::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{}", peer.addr()));
    config.limits.max_calls = 1;
    let gw = Gateway::start(config, Metrics::new()).await.unwrap();
    let (mut sig, browser) = call_to_silent_peer(&gw, &peer).await;
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"c2","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let refused = sig.recv_type("error", AT_ONCE).await.unwrap();
    assert_eq!(
        (refused["code"].as_str(), refused["call_id"].as_str()),
        (Some("limit_reached"), Some("c2"))
    );
    browser.close().await;
    gw.shutdown().await;
}
