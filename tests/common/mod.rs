//! Shared pieces of the end-to-end tests: an independent WebRTC peer standing in
//! for a browser, and a client for the JSON signaling protocol.

// Every test binary compiles this module but uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod pki;
pub mod sdes;
pub mod signaling;

use std::time::Duration;

pub use browser::{Browser, Codec, RtpIn};
pub use signaling::Signaling;

/// The error type of the test helpers: any error, with its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Size of one 20 ms G.711 frame; also used for Opus, whose bytes nobody decodes here.
pub const FRAME_BYTES: usize = 160;
/// Packet spacing of real audio.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(20);
/// How long stragglers may take to come back after the last packet is sent.
const ECHO_GRACE: Duration = Duration::from_secs(1);

/// A frame that carries `index` and can be recognised byte for byte.
pub fn stamped_frame(index: u16) -> Vec<u8> {
    let [hi, lo] = index.to_be_bytes();
    let mut frame = vec![hi, lo, !hi, !lo];
    frame.extend((4..FRAME_BYTES).map(|i| (i as u16).wrapping_mul(31).wrapping_add(index) as u8));
    frame
}

/// The index `payload` was stamped with, if it is an intact stamped frame.
pub fn frame_index(payload: &[u8]) -> Option<u16> {
    let index = u16::from_be_bytes([*payload.first()?, *payload.get(1)?]);
    (payload == stamped_frame(index).as_slice()).then_some(index)
}

/// Sends `n` stamped frames at 20 ms spacing through an echo and counts how many
/// distinct ones come back intact. Packets that do not match count for nothing.
pub async fn echo_round_trip(browser: &Browser, n: usize) -> usize {
    let n = n.min(usize::from(u16::MAX));
    let deadline = tokio::time::Instant::now() + FRAME_INTERVAL * n as u32 + ECHO_GRACE;
    let send = async {
        let mut ticker = tokio::time::interval(FRAME_INTERVAL);
        for index in 0..n as u16 {
            ticker.tick().await;
            if browser.send_rtp(&stamped_frame(index)).await.is_err() {
                break;
            }
        }
    };
    let receive = async {
        let mut seen = vec![false; n];
        let mut count = 0;
        while count < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Ok(payload) = browser.recv_payload(left).await else {
                break;
            };
            if let Some(index) = frame_index(&payload).map(usize::from) {
                if index < n && !seen[index] {
                    seen[index] = true;
                    count += 1;
                }
            }
        }
        count
    };
    let ((), count) = tokio::join!(send, receive);
    count
}

pub use siphon_doubles::loopback_config;

/// A gateway on [`loopback_config`] with its echo extension on an
/// ephemeral port, changed by `tweak`; returned with its metrics.
pub async fn gateway_with_echo(
    tweak: impl FnOnce(&mut siphon::config::Config),
) -> (siphon::gateway::Gateway, siphon::metrics::Metrics) {
    let mut config = loopback_config();
    config.echo.enabled = true;
    config.echo.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    let metrics = siphon::metrics::Metrics::new();
    let gw = siphon::gateway::Gateway::start(config, metrics.clone())
        .await
        .unwrap();
    (gw, metrics)
}

/// The value of the first metrics line starting with `line` (0 if absent).
pub fn counter(metrics: &siphon::metrics::Metrics, line: &str) -> u64 {
    let text = metrics.render();
    let found = text.lines().find(|l| l.starts_with(line));
    found
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An echoing SIP UAS on 127.0.0.1, running until `stop`.
pub async fn echo_uas(stop: &tokio_util::sync::CancellationToken) -> siphon::sip::EchoServer {
    recording_echo_uas(stop).await.0
}

/// [`echo_uas`], with the script that records the INVITEs it receives.
pub async fn recording_echo_uas(
    stop: &tokio_util::sync::CancellationToken,
) -> (
    siphon::sip::EchoServer,
    std::sync::Arc<siphon_doubles::ScriptedEcho>,
) {
    let script = std::sync::Arc::new(siphon_doubles::ScriptedEcho::default());
    let echo = siphon_doubles::echo(script.install(), stop).await.unwrap();
    (echo, script)
}

/// A plain RTP packet (PT 0) with sequence `seq` carrying `payload`.
pub fn pcmu_rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(0x5EED_u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The PBX's side of a call to a browser that echoes what it hears: `n`
/// stamped frames sent from `pbx_rtp` to siphon's `gw_media`, 20 ms apart;
/// how many distinct ones came back.
pub async fn pbx_round_trip(
    browser: std::sync::Arc<Browser>,
    pbx_rtp: std::net::UdpSocket,
    gw_media: std::net::SocketAddr,
    n: u16,
) -> usize {
    let echo = tokio::spawn(async move {
        while let Ok(p) = browser.recv_payload(Duration::from_secs(2)).await {
            let _ = browser.send_rtp(&p).await;
        }
    });
    pbx_rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let back = tokio::task::spawn_blocking(move || {
        let mut seen = std::collections::HashSet::new();
        let mut buf = [0u8; 2048];
        for i in 0..n {
            pbx_rtp
                .send_to(&pcmu_rtp(i, &stamped_frame(i)), gw_media)
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            while let Ok((len, _)) = pbx_rtp.recv_from(&mut buf) {
                if len > 12 && buf[1] & 0x7f == 0 {
                    seen.extend(frame_index(&buf[12..len]));
                }
            }
        }
        seen.len()
    })
    .await
    .unwrap();
    echo.abort();
    back
}

/// An anonymous WebSocket to `gateway`.
pub async fn connect(gateway: &siphon::gateway::Gateway) -> Signaling {
    let url = format!("ws://{}/ws", gateway.http_addr());
    Signaling::connect(&url).await.unwrap()
}

/// A WebSocket to `gateway` logged in as `user`, once siphon has taken the
/// hello (a round trip proves it: messages are handled in order).
pub async fn online(gateway: &siphon::gateway::Gateway, user: &str) -> Signaling {
    let url = format!("ws://{}/ws", gateway.http_addr());
    let mut sig = Signaling::connect(&url).await.unwrap();
    sig.send(serde_json::json!({"type":"hello","user":user}))
        .await
        .unwrap();
    sig.send(serde_json::json!({"type":"hangup","call_id":"sync"}))
        .await
        .unwrap();
    let sync = sig.recv(Duration::from_secs(10)).await.unwrap();
    assert_eq!(sync["code"], "unknown_call", "{sync}");
    sig
}

/// A SIP endpoint standing in for a PBX on UDP `udp` (port 0 for any),
/// with no users of its own: it places calls to the gateway.
pub async fn test_pbx(
    udp: std::net::SocketAddr,
    stop: &tokio_util::sync::CancellationToken,
) -> siphon::sip::SipEndpoint {
    let settings = siphon::sip::SipSettings {
        udp: Some(udp),
        tcp: None,
        tls: None,
        public_ip: "127.0.0.1".parse().unwrap(),
        domain: "pbx.test".into(),
        user_agent: "test-pbx".into(),
        max_message_bytes: 65535,
        inbound: siphon::sip::InboundPolicy::default(),
    };
    siphon::sip::SipEndpoint::start(settings, siphon::metrics::Metrics::new(), stop.clone())
        .await
        .unwrap()
}

/// Places a G.711 call to `1000` on `sig` and returns the browser once the
/// answer is applied and ICE/DTLS are up.
pub async fn answered_call(sig: &mut Signaling, call_id: &str) -> Browser {
    answered_call_to(sig, call_id, "1000").await
}

/// Places a G.711 call `call_id` to `to` on `sig`; the browser that
/// offered, for whatever the test expects next.
pub async fn place_call(sig: &mut Signaling, call_id: &str, to: &str) -> Browser {
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    let call = serde_json::json!({"type":"call","call_id":call_id,"to":to,"sdp":offer});
    sig.send(call).await.unwrap();
    browser
}

/// `answered_call` to `to`.
pub async fn answered_call_to(sig: &mut Signaling, call_id: &str, to: &str) -> Browser {
    let timeout = Duration::from_secs(10);
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    let call = serde_json::json!({"type":"call","call_id":call_id,"to":to,"sdp":offer});
    sig.send(call).await.unwrap();
    let answered = sig.recv_type("answered", timeout).await.unwrap();
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(timeout).await.unwrap();
    browser
}

/// The final event of a PBX's INVITE, past 100, 180 and 183.
pub async fn uac_final(
    events: &mut tokio::sync::mpsc::Receiver<siphon::sip::UacEvent>,
) -> siphon::sip::UacEvent {
    use siphon::sip::UacEvent;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        if !matches!(
            ev,
            UacEvent::Trying | UacEvent::Ringing | UacEvent::Progress { .. }
        ) {
            return ev;
        }
    }
}

/// A PBX's INVITE to `user` at siphon's SIP address `gw` from 1000, with
/// a PCMU offer on RTP port `port` and `headers` (e.g. a Replaces).
pub fn pbx_invite(
    gw: std::net::SocketAddr,
    user: &str,
    port: u16,
    headers: Vec<(String, String)>,
) -> siphon::sip::OutboundInvite {
    siphon::sip::OutboundInvite {
        target: format!("sip:{user}@{gw}"),
        from_user: "1000".into(),
        from_display: None,
        sdp: format!(
            "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        ),
        credentials: None,
        log_id: "pbx".into(),
        failover: Vec::new(),
        response_wait: None,
        headers,
    }
}

/// `c=` address and `m=audio` port of a plain SIP SDP.
pub fn media_addr(sdp: &str) -> std::net::SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .unwrap();
    let port = port.split(' ').next().unwrap();
    format!("{}:{port}", ip.trim()).parse().unwrap()
}

/// The browser on `sig` accepts the next `incoming` call (G.711); returns
/// the browser and the call id.
pub async fn accept_incoming(sig: &mut Signaling) -> (std::sync::Arc<Browser>, String) {
    let timeout = Duration::from_secs(10);
    let incoming = sig.recv_type("incoming", timeout).await.unwrap();
    let call_id = incoming["call_id"].as_str().unwrap().to_owned();
    let browser = std::sync::Arc::new(Browser::new(&[Codec::Pcmu]).await.unwrap());
    let answer = browser
        .accept_offer(incoming["sdp"].as_str().unwrap())
        .await
        .unwrap();
    let accept = serde_json::json!({"type":"accept","call_id":call_id,"sdp":answer});
    sig.send(accept).await.unwrap();
    (browser, call_id)
}

/// The SDP of the 200 a calling SIP UAC got; panics on a failure.
pub async fn uac_answer(events: &mut tokio::sync::mpsc::Receiver<siphon::sip::UacEvent>) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        match event {
            siphon::sip::UacEvent::Answered { sdp } => return sdp,
            siphon::sip::UacEvent::Failed { code, reason } => {
                panic!("not answered: {code} {reason}")
            }
            _ => continue,
        }
    }
}
