//! Hold and resume against the echo extension, as a newcomer tries it: the
//! echo answers the re-INVITEs, and a SIP side that refuses them (501) is
//! reported as `sip_refused`, not as an SDP problem; the call goes on.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{attr, config, offer_for, recv, recv_type, send, Ws};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::sip::{EchoBehavior, EchoScript, EchoServer, EchoSettings};
use crate::webrtc::tests::browser::{connect_over, rtp, Browser};

/// A browser stand-in on its own socket, connected to an answered echo call.
struct Leg {
    browser: Browser,
    sock: UdpSocket,
    server: SocketAddr,
    offer: String,
}

async fn answered(ws: &mut Ws, call_id: &str, to: &str) -> Leg {
    assert_eq!(recv(ws).await["type"], "welcome");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut browser = Browser::new(sock.local_addr().unwrap(), Instant::now(), false);
    let offer = offer_for(&browser);
    send(
        ws,
        json!({"type":"call","call_id":call_id,"to":to,"sdp":offer}),
    )
    .await;
    let answer = recv_type(ws, "answered").await;
    let sdp = answer["sdp"].as_str().unwrap();
    browser.gw_ufrag = attr(sdp, "ice-ufrag").to_owned();
    browser.gw_pwd = attr(sdp, "ice-pwd").to_owned();
    let cand: Vec<&str> = attr(sdp, "candidate").split(' ').collect();
    let server: SocketAddr = format!("{}:{}", cand[4], cand[5]).parse().unwrap();
    tokio::task::spawn_blocking(move || {
        connect_over(&mut browser, &sock, server);
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Leg {
            browser,
            sock,
            server,
            offer,
        }
    })
    .await
    .unwrap()
}

/// Send `n` packets of audio; returns the leg and how many came back.
async fn talk(mut leg: Leg, first: u16, n: u16) -> (Leg, u16) {
    tokio::task::spawn_blocking(move || {
        let mut back = 0;
        let mut buf = [0u8; 2048];
        for seq in first..first + n {
            let packet = leg.browser.srtp(&rtp(seq, 0xABCD, seq as u8));
            leg.sock.send_to(&packet, leg.server).unwrap();
            if let Ok((len, _)) = leg.sock.recv_from(&mut buf) {
                let plain = leg.browser.rx.as_mut().unwrap().decrypt_rtp(&buf[..len]);
                if plain.is_ok_and(|p| p[12..] == [seq as u8; 60]) {
                    back += 1;
                }
            }
        }
        (leg, back)
    })
    .await
    .unwrap()
}

/// The call's offer with the audio direction changed.
fn reoffer(leg: &Leg, direction: &str) -> String {
    leg.offer
        .replacen("a=sendrecv", &format!("a={direction}"), 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_and_resume_on_the_echo_are_answered_and_audio_comes_back() {
    let metrics = Metrics::new();
    let gw = Gateway::start(config(), metrics.clone()).await.unwrap();
    let url = format!("ws://{}/ws", gw.http_addr());
    let (mut ws, _) =
        tokio_tungstenite::connect_async(siphon_testkit::ws::ws_request(&url).unwrap())
            .await
            .unwrap();
    let leg = answered(&mut ws, "h1", "echo").await;
    let (leg, back) = talk(leg, 0, 20).await;
    assert!(back >= 15, "only {back} of 20 echoed before the hold");

    let hold = reoffer(&leg, "sendonly");
    send(&mut ws, json!({"type":"offer","call_id":"h1","sdp":hold})).await;
    let answer = recv_type(&mut ws, "answer").await;
    let sdp = answer["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=recvonly"), "hold answered with {sdp}");
    // On hold the browser is sent nothing.
    let (leg, back) = talk(leg, 100, 10).await;
    assert_eq!(back, 0, "audio reached a browser that holds");

    let resume = reoffer(&leg, "sendrecv");
    send(&mut ws, json!({"type":"offer","call_id":"h1","sdp":resume})).await;
    let answer = recv_type(&mut ws, "answer").await;
    assert!(answer["sdp"].as_str().unwrap().contains("a=sendrecv"));
    let (_leg, back) = talk(leg, 200, 30).await;
    assert!(back >= 25, "only {back} of 30 echoed after the resume");
    let text = metrics.render();
    assert!(
        text.contains("siphon_browser_reoffers_total{outcome=\"hold\"} 1"),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_501_to_the_hold_is_sip_refused_and_the_call_goes_on() {
    let stop = tokio_util::sync::CancellationToken::new();
    /// A UA that takes no re-INVITE.
    #[derive(Debug)]
    struct NoReinvites;
    impl EchoScript for NoReinvites {
        fn refuse_reoffers(&self) -> Option<u16> {
            Some(501)
        }
    }
    let behavior = EchoBehavior {
        script: Some(std::sync::Arc::new(NoReinvites)),
        ..EchoBehavior::default()
    };
    let settings = EchoSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ip: "127.0.0.1".parse().unwrap(),
        behavior,
    };
    let uas = EchoServer::start(settings, Metrics::new(), stop.clone())
        .await
        .unwrap();
    // The echo that refuses is the trunk: a UA without re-INVITE support.
    let mut c: Config = config();
    c.echo.enabled = false;
    c.sip.trunk.uri = Some(format!("sip:{};transport=udp", uas.local_addr()));
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();
    let url = format!("ws://{}/ws", gw.http_addr());
    let (mut ws, _) =
        tokio_tungstenite::connect_async(siphon_testkit::ws::ws_request(&url).unwrap())
            .await
            .unwrap();
    let leg = answered(&mut ws, "r1", "1000").await;

    let hold = reoffer(&leg, "sendonly");
    send(&mut ws, json!({"type":"offer","call_id":"r1","sdp":hold})).await;
    let error = recv_type_or_error(&mut ws).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "sip_refused", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("501 Not Implemented"), "{message}");
    let (_leg, back) = talk(leg, 0, 30).await;
    assert!(back >= 25, "only {back} of 30 echoed after the refusal");
    gw.shutdown().await;
    stop.cancel();
}

async fn recv_type_or_error(ws: &mut Ws) -> serde_json::Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == "error" || v["type"] == "answer" || v["type"] == "hangup" {
            return v;
        }
    }
}
