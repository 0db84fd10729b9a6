//! A whole gateway in-process: WebSocket signaling, the SIP leg to the
//! built-in echo extension, ICE-lite/DTLS/SRTP to a browser stand-in.

mod client_register;
mod cluster;
mod echo_hold;
mod ice_restart;
mod records;
mod relay_failure;
mod start;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::Gateway;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::sdp::fixtures::CHROME_OFFER;
use crate::webrtc::tests::browser::{connect_over, rtp, Browser};

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A gateway config on 127.0.0.1: ephemeral listeners, 20 RTP ports from
/// the test-port allocator, one relay loop.
pub(super) fn config() -> Config {
    let port_base = siphon_testkit::ports::block(20);
    let mut c = Config::default();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.sip.udp = Some("127.0.0.1:0".parse().unwrap());
    c.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    c.echo.listen = "127.0.0.1:0".parse().unwrap();
    c.webrtc.port = 0;
    c.rtp.port_min = port_base;
    c.rtp.port_max = port_base + 19;
    c.media.workers = 1;
    c
}

pub(super) async fn recv(ws: &mut Ws) -> Value {
    let next = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    match next.expect("message in time") {
        Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
        other => panic!("unexpected frame: {other:?}"),
    }
}

pub(super) async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == ty {
            return v;
        }
        assert!(v["type"] != "hangup" && v["type"] != "error", "got {v}");
    }
}

pub(super) async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Chrome's offer with the stand-in's ICE credentials and fingerprint.
pub(super) fn offer_for(b: &Browser) -> String {
    CHROME_OFFER
        .replace("a=ice-ufrag:EsAw", &format!("a=ice-ufrag:{}", b.ufrag))
        .replace("a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y", &format!("a=ice-pwd:{}", b.pwd))
        .replace(
            "D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F",
            &b.identity.fingerprint,
        )
}

pub(super) fn attr<'a>(sdp: &'a str, name: &str) -> &'a str {
    let prefix = format!("a={name}:");
    let line = sdp
        .lines()
        .find(|l| l.starts_with(&prefix))
        .expect("attribute");
    &line[prefix.len()..]
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_call_carries_audio_and_releases_everything() {
    let metrics = Metrics::new();
    let gw = Gateway::start(config(), metrics.clone()).await.unwrap();
    let free = gw.free_rtp_ports();
    let (mut ws, _) = tokio_tungstenite::connect_async(
        siphon_testkit::ws::ws_request(&format!("ws://{}/ws", gw.http_addr())).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut browser = Browser::new(sock.local_addr().unwrap(), Instant::now(), false);
    send(
        &mut ws,
        json!({"type":"call","call_id":"e1","to":"echo","sdp":offer_for(&browser)}),
    )
    .await;
    recv_type(&mut ws, "trying").await;
    let answer = recv_type(&mut ws, "answered").await;
    let sdp = answer["sdp"].as_str().unwrap();
    browser.gw_ufrag = attr(sdp, "ice-ufrag").to_owned();
    browser.gw_pwd = attr(sdp, "ice-pwd").to_owned();
    let cand: Vec<&str> = attr(sdp, "candidate").split(' ').collect();
    let server: SocketAddr = format!("{}:{}", cand[4], cand[5]).parse().unwrap();

    let received = tokio::task::spawn_blocking(move || {
        connect_over(&mut browser, &sock, server);
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut back = 0;
        let mut buf = [0u8; 2048];
        for seq in 0..50u16 {
            let packet = browser.srtp(&rtp(seq, 0xABCD, seq as u8));
            sock.send_to(&packet, server).unwrap();
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                let plain = browser.rx.as_mut().unwrap().decrypt_rtp(&buf[..n]);
                if plain.is_ok_and(|p| p[12..] == [seq as u8; 60]) {
                    back += 1;
                }
            }
        }
        back
    })
    .await
    .unwrap();
    assert!(received >= 45, "only {received} of 50 packets echoed");

    send(&mut ws, json!({"type":"hangup","call_id":"e1"})).await;
    let hangup = recv_type(&mut ws, "hangup").await;
    assert_eq!(hangup["code"], 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while (gw.free_rtp_ports() != free || gw.active_calls() != 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((gw.free_rtp_ports(), gw.active_calls()), (free, 0));
    let text = metrics.render();
    assert!(text.contains("siphon_calls_total{direction=\"webrtc_to_sip\",outcome=\"answered\"} 1"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_get_errors_and_the_socket_survives() {
    let gw = Gateway::start(config(), Metrics::new()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(
        siphon_testkit::ws::ws_request(&format!("ws://{}/ws", gw.http_addr())).unwrap(),
    )
    .await
    .unwrap();
    recv(&mut ws).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "bad_json");
    send(&mut ws, json!({"type":"dance"})).await;
    assert_eq!(recv(&mut ws).await["code"], "unknown_type");
    let big = "x".repeat(70_000);
    send(&mut ws, json!({"type":"call","to":"echo","sdp":big})).await;
    assert_eq!(recv(&mut ws).await["code"], "too_large");
    send(&mut ws, json!({"type":"hangup","call_id":"nope"})).await;
    assert_eq!(recv(&mut ws).await["code"], "unknown_call");
    send(&mut ws, json!({"type":"call","to":"1000","sdp":"v=0"})).await;
    let no_route = recv(&mut ws).await;
    assert_eq!(no_route["code"], "no_route", "{no_route}");
    send(
        &mut ws,
        json!({"type":"call","call_id":"x","to":"echo","sdp":"garbage"}),
    )
    .await;
    let hangup = recv_type(&mut ws, "hangup").await;
    assert_eq!(hangup["code"], 488);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_required_when_configured() {
    use crate::signaling::auth::mint;
    let mut c = config();
    c.auth.required = true;
    c.auth.secret = "sekrit".into();
    let metrics = Metrics::new();
    let gw = Gateway::start(c, metrics.clone()).await.unwrap();
    let url = format!("ws://{}/ws", gw.http_addr());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = mint("alice", Duration::from_secs(60), b"sekrit", now).unwrap();

    // A valid token in the URL: welcome names the user.
    let (mut ws, _) = tokio_tungstenite::connect_async(
        siphon_testkit::ws::ws_request(&format!("{url}?token={good}")).unwrap(),
    )
    .await
    .unwrap();
    let welcome = recv(&mut ws).await;
    assert_eq!(
        (welcome["type"].as_str(), welcome["user"].as_str()),
        (Some("welcome"), Some("alice"))
    );

    // A valid token in a first hello message.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(siphon_testkit::ws::ws_request(&url).unwrap())
            .await
            .unwrap();
    send(&mut ws, json!({"type":"hello","token":good})).await;
    assert_eq!(recv(&mut ws).await["user"], "alice");

    // Forged, expired, missing: error, then the socket closes.
    let forged = mint("alice", Duration::from_secs(60), b"guess", now).unwrap();
    let expired = mint("alice", Duration::from_secs(60), b"sekrit", now - 3600).unwrap();
    for (query, first) in [
        (format!("?token={forged}"), None),
        (format!("?token={expired}"), None),
        (
            String::new(),
            Some(json!({"type":"call","to":"echo","sdp":"v=0"})),
        ),
    ] {
        let (mut ws, _) = tokio_tungstenite::connect_async(
            siphon_testkit::ws::ws_request(&format!("{url}{query}")).unwrap(),
        )
        .await
        .unwrap();
        if let Some(msg) = first {
            send(&mut ws, msg).await;
        }
        let refused = recv(&mut ws).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
        let closed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap();
        assert!(
            matches!(closed, Some(Ok(Message::Close(_))) | None),
            "{closed:?}"
        );
    }
    let text = metrics.render();
    for reason in ["bad_signature", "expired", "missing"] {
        let needle = format!("siphon_ws_auth_failures_total{{reason=\"{reason}\"}} 1");
        assert!(text.contains(&needle), "{needle}");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_registration_lives_from_start_to_shutdown() {
    use crate::sip::tests::registrar::{Registrar, RegistrarConfig};
    use crate::sip::Transport;
    use tokio_util::sync::CancellationToken;
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    let mut c = config();
    c.users = vec![crate::config::UserConfig {
        name: "dora".into(),
        extension: "1001".into(),
        register: true,
        keep_registered: true,
        registrar: Some(registrar.uri(Transport::Udp)),
        username: "auth-1001".into(),
        password: "s3cret".into(),
        ..Default::default()
    }];
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();
    // Registered with no session online.
    let deadline = Instant::now() + Duration::from_secs(5);
    while registrar.seen().iter().all(|s| s.auth.is_none()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = registrar.seen();
    let last = seen.last().expect("a REGISTER");
    assert!(last.to.contains("1001") && last.auth.is_some(), "{last:?}");

    // A session of dora learns the registration state as it opens.
    let (mut ws, _) = tokio_tungstenite::connect_async(
        siphon_testkit::ws::ws_request(&format!("ws://{}/ws", gw.http_addr())).unwrap(),
    )
    .await
    .unwrap();
    recv(&mut ws).await;
    send(&mut ws, json!({"type":"hello","user":"dora"})).await;
    let registered = recv_type(&mut ws, "registered").await;
    assert_eq!(
        (registered["user"].as_str(), registered["expires"].as_u64()),
        (Some("dora"), Some(300))
    );
    // Leaving does not unregister a kept registration; shutdown does.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(registrar.seen().iter().all(|s| s.expires != Some(0)));
    gw.shutdown().await;
    let seen = registrar.seen();
    assert_eq!(
        seen.last().and_then(|s| s.expires),
        Some(0),
        "unregistered on shutdown"
    );
}
