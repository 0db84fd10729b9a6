//! A relay loop that dies is not silent: its calls end with `hangup` 500
//! at once and `/readyz` turns 503 (docs/reliability.md, "A relay loop
//! that dies").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{config, offer_for, recv, recv_type, send};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::webrtc::tests::browser::Browser;

async fn http_status(addr: SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    reply.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_relay_loop_hangs_up_its_calls_and_turns_readyz_503() {
    let metrics = Metrics::new();
    let gw = Gateway::start(config(), metrics.clone()).await.unwrap();
    let free = gw.free_rtp_ports();
    assert_eq!(
        http_status(gw.http_addr(), "/readyz").await,
        "HTTP/1.1 200 OK"
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(
        siphon_testkit::ws::ws_request(&format!("ws://{}/ws", gw.http_addr())).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    let browser = Browser::new("127.0.0.1:9".parse().unwrap(), Instant::now(), false);
    send(
        &mut ws,
        json!({"type":"call","call_id":"r1","to":"echo","sdp":offer_for(&browser)}),
    )
    .await;
    recv_type(&mut ws, "answered").await;

    gw.inner.relays.get(0).inject_poll_failure();
    // The target is 1 s after siphon knows: well before any media or
    // consent timeout would have ended the call.
    let hangup = tokio::time::timeout(Duration::from_secs(1), recv(&mut ws))
        .await
        .expect("hangup within 1 s of the failure");
    assert_eq!(hangup["type"], "hangup", "{hangup}");
    assert_eq!(hangup["code"], 500, "{hangup}");
    assert!(
        hangup["reason"].as_str().unwrap_or("").contains("relay"),
        "{hangup}"
    );
    assert_eq!(
        http_status(gw.http_addr(), "/readyz").await,
        "HTTP/1.1 503 Service Unavailable"
    );
    assert!(metrics
        .render()
        .contains("siphon_relay_loop_failures_total 1"));
    // The call is gone on both legs, and its RTP port went back to the pool.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (gw.free_rtp_ports() != free || gw.active_calls() != 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((gw.free_rtp_ports(), gw.active_calls()), (free, 0));
    // With its only loop dead, a new call is refused, not left hanging.
    send(
        &mut ws,
        json!({"type":"call","call_id":"r2","to":"echo","sdp":offer_for(&browser)}),
    )
    .await;
    let refused = recv_type(&mut ws, "hangup").await;
    assert_eq!(
        (refused["call_id"].as_str(), refused["code"].as_u64()),
        (Some("r2"), Some(500)),
        "{refused}"
    );
    assert_eq!(gw.free_rtp_ports(), free);
    gw.shutdown().await;
}
