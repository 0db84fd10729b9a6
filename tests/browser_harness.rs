//! Self-test of the browser stand-in: two stand-ins talk to each other directly,
//! without siphon, so a failing gateway test can be blamed on the gateway.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{echo_round_trip, frame_index, stamped_frame, Browser, Codec, Signaling};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

fn candidate_lines(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect()
}

/// The m-line's format list, e.g. `["0", "126"]`.
fn audio_formats(sdp: &str) -> Vec<&str> {
    let mline = sdp.lines().find(|l| l.starts_with("m=audio ")).unwrap();
    mline.split_whitespace().skip(3).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stand_ins_exchange_audio_over_loopback() {
    let a = Browser::new(&[Codec::Opus, Codec::Pcmu]).await.unwrap();
    let b = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    a.apply_answer(&answer).await.unwrap();

    assert_eq!(audio_formats(&offer), ["111", "0", "126"], "{offer}");
    assert_eq!(audio_formats(&answer), ["0", "126"], "{answer}");
    for sdp in [&offer, &answer] {
        let candidates = candidate_lines(sdp);
        assert!(!candidates.is_empty(), "no candidates in\n{sdp}");
        for line in candidates {
            assert!(line.contains(" 127.0.0.1 "), "not loopback: {line}");
        }
    }

    a.wait_connected(CONNECT_TIMEOUT).await.unwrap();
    b.wait_connected(CONNECT_TIMEOUT).await.unwrap();
    assert_eq!(a.negotiated_codec().await.unwrap(), (0, 8000));

    for index in 0..20 {
        a.send_rtp(&stamped_frame(index)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for index in 0..20 {
        let packet = b.recv_rtp(RECV_TIMEOUT).await.unwrap();
        assert_eq!(packet.payload_type, 0);
        assert_eq!(frame_index(&packet.payload), Some(index));
    }

    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trip_counts_frames_a_peer_reflects() {
    let a = Browser::new(&[Codec::Pcmu, Codec::Opus]).await.unwrap();
    let b = Arc::new(Browser::new(&[Codec::Pcmu]).await.unwrap());
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    // A gateway's answer need not declare its SSRC; without the lines the stand-in
    // has to pick up the stream unsignalled, as it will against siphon.
    let answer: String = answer
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=ssrc:") && !l.starts_with("a=msid:"))
        .collect();
    a.apply_answer(&answer).await.unwrap();
    a.wait_connected(CONNECT_TIMEOUT).await.unwrap();
    b.wait_connected(CONNECT_TIMEOUT).await.unwrap();

    let echo = tokio::spawn({
        let b = b.clone();
        async move {
            while let Ok(packet) = b.recv_rtp(RECV_TIMEOUT).await {
                let _ = b.send_rtp(&packet.payload).await;
            }
        }
    });
    assert_eq!(echo_round_trip(&a, 25).await, 25);

    echo.abort();
    a.close().await;
    b.close().await;
}

/// With no voice codec in common the crate does not reject the m-line: it answers
/// with telephone-event alone, so audio is "negotiated" without any voice codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_codecs_negotiate_no_voice_codec() {
    let a = Browser::new(&[Codec::Opus]).await.unwrap();
    let b = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    a.apply_answer(&answer).await.unwrap();

    assert_eq!(audio_formats(&answer), ["126"], "{answer}");
    assert!(a.negotiated_codec().await.is_err());
    assert!(b.negotiated_codec().await.is_err());
    assert!(a.send_rtp(&stamped_frame(0)).await.is_err());

    a.close().await;
    b.close().await;
}

/// A scripted server: greets, then answers the client's `call` with `trying`,
/// `answered` and a `hangup`, each after a WebSocket ping the client must skip.
async fn scripted_server(listener: tokio::net::TcpListener) {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let send = |v: serde_json::Value| Message::text(v.to_string());
    ws.send(send(json!({"type": "welcome", "version": 1})))
        .await
        .unwrap();
    let call = ws.next().await.unwrap().unwrap();
    let call: serde_json::Value = serde_json::from_str(call.to_text().unwrap()).unwrap();
    assert_eq!(call["type"], "call");
    let id = &call["call_id"];
    for reply in [
        json!({"type": "trying", "call_id": id}),
        json!({"type": "answered", "call_id": id, "sdp": "v=0"}),
        json!({"type": "hangup", "call_id": id, "code": 200, "reason": "Remote hangup"}),
    ] {
        ws.send(Message::Ping(Default::default())).await.unwrap();
        ws.send(send(reply)).await.unwrap();
    }
    // Keep the socket open until the client is done reading.
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test]
async fn signaling_client_follows_the_protocol() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let server = tokio::spawn(scripted_server(listener));

    let mut ws = Signaling::connect(&url).await.unwrap();
    ws.send(json!({"type": "call", "call_id": "c1", "to": "echo", "sdp": "v=0"}))
        .await
        .unwrap();
    let answered = ws.recv_type("answered", RECV_TIMEOUT).await.unwrap();
    assert_eq!(answered["call_id"], "c1");
    let err = ws.recv_type("ringing", RECV_TIMEOUT).await.unwrap_err();
    assert!(err.to_string().contains("Remote hangup"), "{err}");
    ws.close().await;
    server.await.unwrap();
}
