//! A WebRTC session beyond the first offer and answer, through a whole
//! in-process siphon with the `webrtc` crate as the browser and the built-in
//! echo extension as the far end: trickled candidates, and an ICE restart
//! that moves the browser to a new socket mid-call.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{echo_round_trip, frame_index, stamped_frame, Browser, Codec, Signaling};
use serde_json::json;
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;

const T: Duration = Duration::from_secs(10);

async fn gateway() -> Gateway {
    gateway_with(|_| {}).await
}

async fn gateway_with(tweak: impl FnOnce(&mut Config)) -> Gateway {
    let mut config = common::loopback_config();
    config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.echo.enabled = true;
    config.echo.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    Gateway::start(config, Metrics::new()).await.unwrap()
}

fn candidate_ports(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(|l| l.split(' ').nth(5).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connects_when_its_only_candidate_is_trickled_late() {
    let gw = gateway().await;
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer_trickle().await.unwrap();
    assert!(
        candidate_ports(&offer).is_empty(),
        "offer without candidates:\n{offer}"
    );
    sig.send(json!({"type":"call","call_id":"t1","to":"echo","sdp":offer}))
        .await
        .unwrap();
    // The browser's only candidate, and end-of-candidates, after the SDP.
    let candidate = browser.next_candidate(T).await.unwrap();
    sig.send(json!({"type":"candidate","call_id":"t1","candidate":candidate}))
        .await
        .unwrap();
    sig.send(json!({"type":"candidate","call_id":"t1","candidate":null}))
        .await
        .unwrap();
    connect_on_answer(&mut sig, &browser).await;
    let back = echo_round_trip(&browser, 100).await;
    assert!(back >= 90, "only {back} of 100 frames came back");
    sig.send(json!({"type":"hangup","call_id":"t1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_before_the_call_are_held_for_it_or_refused_later() {
    let gw = gateway().await;
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer_trickle().await.unwrap();
    assert!(candidate_ports(&offer).is_empty(), "{offer}");
    // The page sends each candidate as it is gathered, before the `call`.
    let candidate = browser.next_candidate(T).await.unwrap();
    sig.send(json!({"type":"candidate","call_id":"early","candidate":candidate}))
        .await
        .unwrap();
    sig.send(json!({"type":"candidate","call_id":"early","candidate":null}))
        .await
        .unwrap();
    // A call id that never gets its `call`.
    sig.send(json!({"type":"candidate","call_id":"never","candidate":candidate}))
        .await
        .unwrap();
    sig.send(json!({"type":"call","call_id":"early","to":"echo","sdp":offer}))
        .await
        .unwrap();
    connect_on_answer(&mut sig, &browser).await;
    let back = echo_round_trip(&browser, 100).await;
    assert!(back >= 90, "only {back} of 100 frames came back");
    let refused = sig
        .recv_type("error", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(refused["code"], "unknown_call");
    assert_eq!(refused["call_id"], "never");
    sig.send(json!({"type":"hangup","call_id":"early"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
    gw.shutdown().await;
}

/// Waits for `answered`, applies it and waits until media can flow.
async fn connect_on_answer(sig: &mut Signaling, browser: &Browser) {
    let answered = sig.recv_type("answered", T).await.unwrap();
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();
}

/// Streams stamped frames every 20 ms for `frames` frames and returns when
/// each one that came back arrived.
async fn stream(browser: Arc<Browser>, frames: u16) -> Vec<(u16, Instant)> {
    let sender = browser.clone();
    let send = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        for index in 0..frames {
            ticker.tick().await;
            let _ = sender.send_rtp(&stamped_frame(index)).await;
        }
    });
    let mut back = Vec::new();
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(20 * u64::from(frames) + 1000);
    while tokio::time::Instant::now() < deadline {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(payload) = browser.recv_payload(left).await else {
            break;
        };
        if let Some(index) = frame_index(&payload) {
            back.push((index, Instant::now()));
        }
    }
    send.await.unwrap();
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_on_a_new_socket_keeps_the_audio_going() {
    let gw = gateway().await;
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    let browser = Arc::new(Browser::moving(&[Codec::Pcmu]).await.unwrap());
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"m1","to":"echo","sdp":offer.clone()}))
        .await
        .unwrap();
    connect_on_answer(&mut sig, &browser).await;

    let streaming = tokio::spawn(stream(browser.clone(), 200));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restart = browser.restart_ice_offer().await.unwrap();
    let restarted_at = Instant::now();
    let (before, after) = (candidate_ports(&offer), candidate_ports(&restart));
    assert!(
        !after.is_empty() && before != after,
        "new socket: {before:?} -> {after:?}"
    );
    sig.send(json!({"type":"offer","call_id":"m1","sdp":restart}))
        .await
        .unwrap();
    let answer = sig.recv_type("answer", T).await.unwrap();
    browser
        .apply_answer(answer["sdp"].as_str().unwrap())
        .await
        .unwrap();
    let applied_at = Instant::now();
    let back = streaming.await.unwrap();
    let resumed = back
        .iter()
        .find(|(_, at)| *at > applied_at)
        .map(|(_, at)| *at - applied_at);

    let after_restart = back.iter().filter(|(_, at)| *at > restarted_at).count();
    let gap = back
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .max()
        .unwrap_or_default();
    println!(
        "ice restart (webrtc crate, new socket): {} of 200 frames back, {after_restart} after \
         the restart, largest gap {:.1} ms, first echo {:.1} ms after the answer was applied",
        back.len(),
        gap.as_secs_f64() * 1000.0,
        resumed.unwrap_or_default().as_secs_f64() * 1000.0
    );
    assert!(
        after_restart >= 80,
        "audio after the restart: {after_restart} frames"
    );
    sig.send(json!({"type":"hangup","call_id":"m1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
    gw.shutdown().await;
}

/// A user's answered echo call on a fresh socket.
async fn answered_echo_call(gw: &Gateway, user: &str, call_id: &str) -> (Signaling, Browser) {
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    sig.send(json!({"type":"hello","user":user})).await.unwrap();
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":call_id,"to":"echo","sdp":offer}))
        .await
        .unwrap();
    connect_on_answer(&mut sig, &browser).await;
    (sig, browser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_socket_of_the_same_user_resumes_the_call() {
    let gw = gateway().await;
    let (sig, browser) = answered_echo_call(&gw, "alice", "k1").await;
    sig.close().await;
    // Media does not depend on the socket: audio goes on while it is away.
    let back = echo_round_trip(&browser, 50).await;
    assert!(
        back >= 45,
        "only {back} of 50 frames while the socket was away"
    );
    assert_eq!(gw.active_calls(), 1);

    let url = format!("ws://{}/ws", gw.http_addr());
    let mut other = Signaling::connect(&url).await.unwrap();
    other
        .send(json!({"type":"hello","user":"mallory"}))
        .await
        .unwrap();
    other
        .send(json!({"type":"resume","call_id":"k1"}))
        .await
        .unwrap();
    let refused = other.recv(T).await.unwrap();
    assert_eq!(
        refused["code"], "unknown_call",
        "another user cannot take it: {refused}"
    );

    let mut sig = Signaling::connect(&url).await.unwrap();
    sig.send(json!({"type":"hello","user":"alice"}))
        .await
        .unwrap();
    sig.send(json!({"type":"resume","call_id":"k1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("resumed", T).await.unwrap()["call_id"], "k1");
    let back = echo_round_trip(&browser, 50).await;
    assert!(back >= 45, "only {back} of 50 frames after the resume");
    sig.send(json!({"type":"hangup","call_id":"k1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_resumes_ends_after_the_grace() {
    let gw = gateway_with(|c| c.limits.reconnect_grace_secs = 1).await;
    let (sig, browser) = answered_echo_call(&gw, "bob", "g1").await;
    sig.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.active_calls(), 1, "still waiting");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gw.active_calls() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.active_calls(), 0, "BYE after the grace");
    // Too late now.
    let url = format!("ws://{}/ws", gw.http_addr());
    let mut sig = Signaling::connect(&url).await.unwrap();
    sig.send(json!({"type":"hello","user":"bob"}))
        .await
        .unwrap();
    sig.send(json!({"type":"resume","call_id":"g1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv(T).await.unwrap()["code"], "unknown_call");
    browser.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_socket_takes_its_calls_with_it() {
    let gw = gateway().await;
    let mut sig = Signaling::connect(&format!("ws://{}/ws", gw.http_addr()))
        .await
        .unwrap();
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"a1","to":"echo","sdp":offer}))
        .await
        .unwrap();
    sig.recv_type("answered", T).await.unwrap();
    sig.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gw.active_calls() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.active_calls(), 0, "no user to come back: ended at once");
    browser.close().await;
    gw.shutdown().await;
}
