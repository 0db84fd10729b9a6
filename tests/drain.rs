//! Graceful drain: on a stop signal siphon stops taking calls (`/readyz`
//! 503, `error` draining, SIP 503 with Retry-After) while calls that are up
//! go on; when they end, or `limits.drain_secs` passes, or a second signal
//! comes, every browser gets its `hangup` and a close frame, then it exits.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Signaling;
use serde_json::json;
use siphon::gateway::{Gateway, Signal};
use siphon::metrics::Metrics;
use siphon::sip::{EchoServer, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// A gateway running its stop sequence, fed signals by the test.
struct Rig {
    http: SocketAddr,
    sip: SocketAddr,
    metrics: Metrics,
    echo: EchoServer,
    signals: mpsc::Sender<Signal>,
    running: JoinHandle<()>,
    _stop: CancellationToken,
}

async fn rig(drain_secs: u64) -> Rig {
    rig_with(|config| config.limits.drain_secs = drain_secs).await
}

async fn rig_with(set: impl FnOnce(&mut siphon::config::Config)) -> Rig {
    let stop = CancellationToken::new();
    let echo = common::echo_uas(&stop).await;
    let mut config = common::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{}", echo.local_addr()));
    set(&mut config);
    let metrics = Metrics::new();
    let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
    let (http, sip) = (
        gateway.http_addr(),
        gateway.sip_addr(Transport::Udp).unwrap(),
    );
    let (signals, rx) = mpsc::channel(4);
    let running = tokio::spawn(gateway.run_until_stopped(rx));
    Rig {
        http,
        sip,
        metrics,
        echo,
        signals,
        running,
        _stop: stop,
    }
}

impl Rig {
    async fn signaling(&self) -> Signaling {
        Signaling::connect(&format!("ws://{}/ws", self.http))
            .await
            .unwrap()
    }

    async fn stop(&self) {
        self.signals.send(Signal::Stop).await.unwrap();
        // The drain starts at once: wait until it shows.
        let deadline = tokio::time::Instant::now() + T;
        while self.metrics.draining.get() != 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.metrics.draining.get(), 1, "siphon_draining");
    }

    /// Whether the stop sequence finished within `within`.
    async fn exited(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, &mut self.running)
            .await
            .is_ok()
    }
}

async fn http_status(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(T, tcp.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    reply.lines().next().unwrap_or_default().to_owned()
}

/// Sends a SIP request over UDP and returns the status line and headers of the answer.
async fn sip_request(to: SocketAddr, method: &str) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let body = if method == "INVITE" { body } else { "" };
    // A fresh transaction each time: a reused branch is a retransmission.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let msg = format!(
        "{method} sip:alice@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:pbx@{me}>;tag=a1\r\nTo: <sip:alice@{to}>\r\n\
         Call-ID: drain-{method}-{n}@test\r\nCSeq: 1 {method}\r\nContact: <sip:pbx@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.send_to(msg.as_bytes(), to).await.unwrap();
    let mut buf = vec![0; 4096];
    loop {
        let n = tokio::time::timeout(T, sock.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        // Skip 100 Trying.
        if !reply.starts_with("SIP/2.0 1") {
            return reply;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_up_at_sigterm_go_on_and_new_ones_are_refused() {
    let mut rig = rig(300).await;
    let mut sigs = Vec::new();
    let mut browsers = Vec::new();
    for i in 0..3 {
        let mut sig = rig.signaling().await;
        browsers.push(common::answered_call(&mut sig, &format!("c{i}")).await);
        sigs.push(sig);
    }
    assert_eq!(http_status(rig.http, "/readyz").await, "HTTP/1.1 200 OK");
    assert!(sip_request(rig.sip, "OPTIONS")
        .await
        .starts_with("SIP/2.0 200"));

    rig.stop().await;
    assert_eq!(
        http_status(rig.http, "/readyz").await,
        "HTTP/1.1 503 Service Unavailable"
    );
    let options = sip_request(rig.sip, "OPTIONS").await;
    assert!(options.starts_with("SIP/2.0 503"), "{options}");
    let invite = sip_request(rig.sip, "INVITE").await;
    assert!(
        invite.starts_with("SIP/2.0 503") && invite.contains("Retry-After: 60"),
        "{invite}"
    );
    // A new socket is refused (a balancer retries another instance)...
    let url = format!("ws://{}/ws", rig.http);
    let refused = Signaling::connect(&url).await.err().unwrap().to_string();
    assert!(refused.contains("503"), "{refused}");
    assert_eq!(
        common::counter(
            &rig.metrics,
            "siphon_http_refused_total{reason=\"draining\"}"
        ),
        1
    );
    // ...unless it comes to resume a call; a new call on it is refused with
    // `error` draining, and once it holds no call it is asked to move.
    let mut late = Signaling::connect(&format!("{url}?resume=1"))
        .await
        .unwrap();
    late.send(json!({"type":"call","call_id":"late","to":"1000","sdp":"v=0"}))
        .await
        .unwrap();
    let refused = late.recv(T).await.unwrap();
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("draining"))
    );
    let moved = late.recv(T).await.err().unwrap().to_string();
    assert!(
        moved.contains("1012 siphon is draining: reconnect"),
        "{moved}"
    );

    // The three calls keep their audio and end normally.
    for browser in &browsers {
        assert!(
            common::echo_round_trip(browser, 25).await >= 22,
            "audio while draining"
        );
    }
    assert!(
        !rig.exited(Duration::from_millis(300)).await,
        "waits for the calls"
    );
    for (i, sig) in sigs.iter_mut().enumerate() {
        sig.send(json!({"type":"hangup","call_id":format!("c{i}")}))
            .await
            .unwrap();
        assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    }
    assert!(rig.exited(T).await, "exits once the calls have ended");
    // Every socket got a close frame: the exit's, or the move's when the
    // exit came later than a second after the socket's last call.
    for sig in sigs.iter_mut() {
        let closed = sig.recv(T).await.unwrap_err().to_string();
        assert!(
            closed.contains("server closed: 1001 siphon is shutting down")
                || closed.contains("server closed: 1012 siphon is draining: reconnect"),
            "{closed}"
        );
    }
    assert_eq!(rig.echo.stats().active_calls, 0);
    for b in browsers {
        b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_secs_then_bye_and_hangup_503() {
    let mut rig = rig(1).await;
    let mut sig = rig.signaling().await;
    let browser = common::answered_call(&mut sig, "c1").await;
    rig.stop().await;
    let hangup = sig
        .recv_type("hangup", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(hangup["code"], 503);
    assert_eq!(hangup["reason"], "siphon is shutting down");
    let closed = sig.recv(T).await.unwrap_err().to_string();
    assert!(closed.contains("1001"), "{closed}");
    assert!(rig.exited(T).await);
    // The SIP side got its BYE.
    let deadline = tokio::time::Instant::now() + T;
    while rig.echo.stats().active_calls != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.echo.stats().active_calls, 0, "BYE reached the SIP side");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_skips_the_wait() {
    let mut rig = rig(300).await;
    let mut sig = rig.signaling().await;
    let browser = common::answered_call(&mut sig, "c1").await;
    rig.stop().await;
    assert!(!rig.exited(Duration::from_millis(500)).await, "drains");
    rig.signals.send(Signal::Stop).await.unwrap();
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 503);
    assert!(rig.exited(T).await);
    browser.close().await;
}

/// A dispatcher's OPTIONS probe hears 503 while every call permit
/// (`limits.max_calls`) is taken, and 200 again once a call ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_is_503_while_max_calls_are_up() {
    let rig = rig_with(|config| config.limits.max_calls = 1).await;
    let ok = sip_request(rig.sip, "OPTIONS").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");

    let mut sig = rig.signaling().await;
    let browser = common::answered_call(&mut sig, "full").await;
    let full = sip_request(rig.sip, "OPTIONS").await;
    assert!(
        full.starts_with("SIP/2.0 503") && full.contains("Retry-After: 5"),
        "{full}"
    );

    sig.send(json!({"type":"hangup","call_id":"full"}))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let reply = sip_request(rig.sip, "OPTIONS").await;
        if reply.starts_with("SIP/2.0 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reply}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.close().await;
}

/// At the drain, a socket without a call is asked to reconnect (1012) so
/// that a balancer moves its user to another instance; one with a call
/// keeps it, and is asked once the call has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_move_once_they_hold_no_call() {
    let rig = rig(300).await;
    let mut idle = rig.signaling().await;
    let mut busy = rig.signaling().await;
    let browser = common::answered_call(&mut busy, "b1").await;
    // A call elsewhere keeps siphon draining after b1 ends.
    let mut keeper = rig.signaling().await;
    let kept = common::answered_call(&mut keeper, "k1").await;
    rig.stop().await;
    let moved = idle.recv(T).await.unwrap_err().to_string();
    assert!(
        moved.contains("1012 siphon is draining: reconnect"),
        "{moved}"
    );
    assert!(
        common::echo_round_trip(&browser, 10).await >= 8,
        "the call goes on"
    );
    let quiet = busy.recv(Duration::from_millis(1500)).await.unwrap_err();
    assert!(quiet.to_string().contains("within"), "{quiet}");
    busy.send(json!({"type":"hangup","call_id":"b1"}))
        .await
        .unwrap();
    assert_eq!(busy.recv_type("hangup", T).await.unwrap()["code"], 200);
    let moved = busy.recv(T).await.unwrap_err().to_string();
    assert!(moved.contains("1012"), "{moved}");
    assert_eq!(
        common::counter(&rig.metrics, "siphon_ws_closed_total{reason=\"moved\"}"),
        2
    );
    browser.close().await;
    kept.close().await;
}
