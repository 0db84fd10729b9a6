//! ICE restart through the whole gateway: mid-call, the browser stand-in
//! re-offers with new credentials and moves to a new socket; audio follows
//! without a re-INVITE. Prints the audio gap it measured.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{attr, config, offer_for, recv, recv_type, send, Ws};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::webrtc::tests::browser::{connect_over, rtp, Browser};

const PACKETS: u16 = 150;

/// What the talking thread saw: (seq, arrival, on the new socket).
type Echoes = Vec<(u16, Instant, bool)>;

/// Talk every 20 ms from the current socket; on a switch, nominate the new
/// socket with the new credentials and talk from there.
fn talk(
    mut browser: Browser,
    old: UdpSocket,
    new: UdpSocket,
    server: SocketAddr,
    switch: mpsc::Receiver<(String, String, String)>,
) -> Echoes {
    for s in [&old, &new] {
        s.set_nonblocking(true).unwrap();
    }
    let mut echoes = Vec::new();
    let mut moved = false;
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    for seq in 0..PACKETS {
        if let Ok((ufrag, gw_ufrag, gw_pwd)) = switch.try_recv() {
            (browser.ufrag, browser.gw_ufrag, browser.gw_pwd) = (ufrag, gw_ufrag, gw_pwd);
            new.send_to(&browser.request(true), server).unwrap();
            moved = true;
        }
        let packet = browser.srtp(&rtp(seq, 0xABCD, seq as u8));
        let from = if moved { &new } else { &old };
        from.send_to(&packet, server).unwrap();
        let due = start + Duration::from_millis(20 * (u64::from(seq) + 1));
        while Instant::now() < due {
            for (sock, is_new) in [(&old, false), (&new, true)] {
                while let Ok((n, _)) = sock.recv_from(&mut buf) {
                    if buf[0] >> 6 != 2 || n < 13 {
                        continue; // STUN response
                    }
                    if let Ok(p) = browser.rx.as_mut().unwrap().decrypt_rtp(&buf[..n]) {
                        echoes.push((p[12] as u16, Instant::now(), is_new));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    echoes
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ice_restart_moves_audio_to_a_new_socket_without_sip() {
    let metrics = Metrics::new();
    let gw = Gateway::start(config(), metrics.clone()).await.unwrap();
    let url = format!("ws://{}/ws", gw.http_addr());
    let (mut ws, _) =
        tokio_tungstenite::connect_async(siphon_testkit::ws::ws_request(&url).unwrap())
            .await
            .unwrap();
    recv(&mut ws).await;
    let old = UdpSocket::bind("127.0.0.1:0").unwrap();
    let new = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut browser = Browser::new(old.local_addr().unwrap(), Instant::now(), false);
    let offer = offer_for(&browser);
    send(
        &mut ws,
        json!({"type":"call","call_id":"r1","to":"echo","sdp":offer}),
    )
    .await;
    let answer = recv_type(&mut ws, "answered").await;
    let sdp = answer["sdp"].as_str().unwrap().to_owned();
    browser.gw_ufrag = attr(&sdp, "ice-ufrag").to_owned();
    browser.gw_pwd = attr(&sdp, "ice-pwd").to_owned();
    let cand: Vec<&str> = attr(&sdp, "candidate").split(' ').collect();
    let server: SocketAddr = format!("{}:{}", cand[4], cand[5]).parse().unwrap();
    let old_ufrag = browser.gw_ufrag.clone();
    let (browser, old) = tokio::task::spawn_blocking(move || {
        connect_over(&mut browser, &old, server);
        (browser, old)
    })
    .await
    .unwrap();

    // The restart offer: same certificate, new ICE credentials.
    let (ufrag, pwd) = ("rEsT".to_owned(), "restartpasswordrestart12".to_owned());
    let restart = offer
        .replace(
            &format!("a=ice-ufrag:{}", browser.ufrag),
            &format!("a=ice-ufrag:{ufrag}"),
        )
        .replace(
            &format!("a=ice-pwd:{}", browser.pwd),
            &format!("a=ice-pwd:{pwd}"),
        );
    let (switch, switched) = mpsc::channel();
    let talker = std::thread::spawn(move || talk(browser, old, new, server, switched));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    send(
        &mut ws,
        json!({"type":"offer","call_id":"r1","sdp":restart}),
    )
    .await;
    let reply = recv_type(&mut ws, "answer").await;
    let sdp = reply["sdp"].as_str().unwrap();
    let gw_ufrag = attr(sdp, "ice-ufrag").to_owned();
    assert_ne!(gw_ufrag, old_ufrag, "new gateway credentials");
    // Half a second on the old path after the answer: it must keep working.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answered_at = Instant::now();
    switch
        .send((ufrag, gw_ufrag, attr(sdp, "ice-pwd").to_owned()))
        .unwrap();
    let echoes = tokio::task::spawn_blocking(move || talker.join().unwrap())
        .await
        .unwrap();

    let on_old_after_answer = echoes.iter().filter(|e| !e.2 && e.1 < answered_at).count();
    let on_new = echoes.iter().filter(|e| e.2).count();
    let gap = echoes
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .max()
        .unwrap_or_default();
    let lost = usize::from(PACKETS) - echoes.len();
    println!(
        "ice restart: {} of {PACKETS} echoed, {on_new} on the new socket, {lost} lost, \
         largest gap between echoes {:.1} ms",
        echoes.len(),
        gap.as_secs_f64() * 1000.0
    );
    assert!(
        on_old_after_answer > 50,
        "the old path carried audio until the move"
    );
    assert!(on_new > 40, "audio moved to the new socket: {on_new}");
    assert!(lost <= 2, "{lost} packets lost across the restart");
    let text = metrics.render();
    // One INVITE out of siphon and into the echo extension: no re-INVITE.
    let invites: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("kind=\"INVITE\""))
        .collect();
    assert_eq!(invites.len(), 2, "{invites:?}");
    assert!(invites.iter().all(|l| l.ends_with(" 1")), "{invites:?}");
    assert!(text.contains("siphon_ice_restarts_total 1"));
    send(&mut ws, json!({"type":"hangup","call_id":"r1"})).await;
    assert_eq!(recv_type(&mut ws, "hangup").await["code"], 200);
    gw.shutdown().await;
}

/// A call whose stand-in connects and then sends no consent checks, up to
/// the `ice_disconnected` it earns; the stand-in is kept alive.
struct QuietCall {
    gw: Gateway,
    metrics: Metrics,
    ws: Ws,
    _browser: (Browser, UdpSocket),
}

async fn quiet_call(c: crate::config::Config) -> QuietCall {
    let metrics = Metrics::new();
    let gw = Gateway::start(c, metrics.clone()).await.unwrap();
    let url = format!("ws://{}/ws", gw.http_addr());
    let (mut ws, _) =
        tokio_tungstenite::connect_async(siphon_testkit::ws::ws_request(&url).unwrap())
            .await
            .unwrap();
    recv(&mut ws).await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut browser = Browser::new(sock.local_addr().unwrap(), Instant::now(), false);
    let offer = offer_for(&browser);
    send(
        &mut ws,
        json!({"type":"call","call_id":"q1","to":"echo","sdp":offer}),
    )
    .await;
    let sdp = recv_type(&mut ws, "answered").await["sdp"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.gw_ufrag = attr(&sdp, "ice-ufrag").to_owned();
    browser.gw_pwd = attr(&sdp, "ice-pwd").to_owned();
    let cand: Vec<&str> = attr(&sdp, "candidate").split(' ').collect();
    let server: SocketAddr = format!("{}:{}", cand[4], cand[5]).parse().unwrap();
    let browser = tokio::task::spawn_blocking(move || {
        connect_over(&mut browser, &sock, server);
        (browser, sock)
    })
    .await
    .unwrap();
    let told = recv_type(&mut ws, "ice_disconnected").await;
    assert_eq!(told["call_id"], "q1");
    assert!(metrics.render().contains("siphon_ice_disconnects_total 1"));
    QuietCall {
        gw,
        metrics,
        ws,
        _browser: browser,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_stops_checking_is_told_ice_disconnected() {
    let mut c = config();
    c.webrtc.disconnect_timeout_secs = 1;
    let mut q = quiet_call(c).await;
    // The call is still up: hanging up is answered 200.
    send(&mut q.ws, json!({"type":"hangup","call_id":"q1"})).await;
    assert_eq!(recv_type(&mut q.ws, "hangup").await["code"], 200);
    q.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_silent_past_the_consent_timeout_is_hung_up_408() {
    let mut c = config();
    c.webrtc.disconnect_timeout_secs = 1;
    c.webrtc.consent_timeout_secs = 2;
    let mut q = quiet_call(c).await;
    // Still no checks: consent expires and the call ends, BYE to SIP.
    let hangup = recv_type(&mut q.ws, "hangup").await;
    assert_eq!(hangup["code"], 408);
    assert!(
        hangup["reason"].as_str().unwrap().contains("consent"),
        "{hangup}"
    );
    assert!(q
        .metrics
        .render()
        .contains("siphon_ice_consent_expiries_total 1"));
    q.gw.shutdown().await;
}
