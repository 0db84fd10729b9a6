//! Whole SIP calls between a `SipEndpoint` and an `EchoServer` on loopback.

mod calls;
mod catalogue;
mod inbound;
mod inbound_wire;
mod malformed;
pub(crate) mod registrar;
mod registration;
mod session_timers;
mod udp_guard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::metrics::Metrics;

/// Upper bound for anything that should happen promptly on loopback.
const PROMPT: Duration = Duration::from_secs(5);
/// How long to listen for a response that must not come.
const QUIET: Duration = Duration::from_millis(300);
const LOCAL: &str = "127.0.0.1:0";

fn local() -> SocketAddr {
    LOCAL.parse().expect("addr")
}

fn settings() -> SipSettings {
    SipSettings {
        udp: Some(local()),
        tcp: Some(local()),
        tls: None,
        public_ip: [127, 0, 0, 1].into(),
        domain: "siphon.test".into(),
        user_agent: "siphon-test".into(),
        max_message_bytes: 4096,
        inbound: InboundPolicy::default(),
    }
}

struct Peers {
    sip: SipEndpoint,
    echo: EchoServer,
    metrics: Metrics,
    shutdown: CancellationToken,
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn peers(behavior: EchoBehavior) -> Peers {
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let sip = SipEndpoint::start(settings(), metrics.clone(), shutdown.clone())
        .await
        .expect("endpoint");
    let echo = EchoServer::start(
        EchoSettings {
            listen: local(),
            rtp_ip: [127, 0, 0, 1].into(),
            behavior,
        },
        Metrics::new(),
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

/// The echo with `script` installed.
fn scripted(script: Arc<dyn EchoScript>) -> EchoBehavior {
    EchoBehavior {
        script: Some(script),
        ..EchoBehavior::default()
    }
}

/// A script that only records the INVITEs the echo receives.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Option<ReceivedInvite>>);

impl Recorder {
    fn last(&self) -> Option<ReceivedInvite> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

impl EchoScript for Recorder {
    fn received(&self, invite: &ReceivedInvite) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(invite.clone());
        }
    }
}

fn offer() -> String {
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
        .into()
}

fn invite(p: &Peers, transport: Transport) -> OutboundInvite {
    let addr = p.echo.local_addr();
    let suffix = match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    };
    OutboundInvite {
        target: format!("sip:echo@{addr}{suffix}"),
        from_user: "alice".into(),
        from_display: Some("Alice".into()),
        sdp: offer(),
        credentials: None,
        log_id: "test-call".into(),
        failover: Vec::new(),
        response_wait: None,
        headers: Vec::new(),
    }
}

async fn next(rx: &mut mpsc::Receiver<UacEvent>) -> UacEvent {
    timeout(PROMPT, rx.recv())
        .await
        .expect("event in time")
        .expect("event")
}

/// Events up to and including the first non-provisional one.
async fn until_settled(rx: &mut mpsc::Receiver<UacEvent>) -> Vec<UacEvent> {
    let mut seen = Vec::new();
    loop {
        let ev = next(rx).await;
        let done = !matches!(
            ev,
            UacEvent::Trying | UacEvent::Ringing | UacEvent::Progress { .. }
        );
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

/// Poll `cond` until it holds or PROMPT passes.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PROMPT;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Media address of an SDP answer.
fn media_addr(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line");
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("m= line");
    format!("{}:{}", ip.trim(), port)
        .parse()
        .expect("media addr")
}

/// Send one RTP-looking packet to `to` and expect it back.
async fn rtp_round_trip(to: SocketAddr) {
    let sock = UdpSocket::bind(local()).await.expect("rtp socket");
    let pkt = [0x80u8, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xff, 0xff];
    sock.send_to(&pkt, to).await.expect("send rtp");
    let mut buf = [0u8; 64];
    let (n, from) = timeout(PROMPT, sock.recv_from(&mut buf))
        .await
        .expect("echo in time")
        .expect("recv");
    assert_eq!(&buf[..n], &pkt);
    assert_eq!(from, to);
}

fn metric_line(metrics: &Metrics, needle: &str) -> bool {
    metrics.render().lines().any(|l| l.contains(needle))
}
