//! Broken SDP from browsers, through a whole in-process siphon: offers of
//! calls the browser places, and answers to calls it accepts. Each is
//! refused with 488 and a reason naming the fault, before a WebRTC leg is
//! built; docs/reliability.md lists them in its bad-input catalogue.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::Signaling;
use serde_json::json;
use siphon::config::{Config, UserConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{OutboundInvite, Transport, UacEvent};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);
const CHROME_OFFER: &str = include_str!("../src/sdp/fixtures/chrome_offer.sdp");
const CHROME_PWD: &str = "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y";
const CHROME_FP: &str = "sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F";

async fn gateway(tweak: impl FnOnce(&mut Config)) -> (Gateway, Metrics) {
    common::gateway_with_echo(tweak).await
}

async fn signaling(gw: &Gateway) -> Signaling {
    let url = format!("ws://{}/ws", gw.http_addr());
    Signaling::connect(&url).await.unwrap()
}

fn sha(bytes: usize) -> String {
    vec!["AB"; bytes].join(":")
}

/// Chrome's captured offer with one edit.
fn offer(from: &str, to: &str) -> String {
    assert!(CHROME_OFFER.contains(from), "{from}");
    CHROME_OFFER.replace(from, to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_browser_offers_are_hung_up_with_488_naming_the_fault() {
    let (gw, metrics) = gateway(|_| {}).await;
    let mut sig = signaling(&gw).await;
    let no_fp: String = CHROME_OFFER
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cases = [
        ("garbage".to_owned(), "malformed SDP"),
        (offer("m=audio", "m=video"), "no audio m-line"),
        (offer(CHROME_PWD, "a=ice-pwd:"), "missing ICE credentials"),
        (
            offer(CHROME_PWD, "a=ice-pwd:tooShort123"),
            "ice-pwd has 11 characters, RFC 8839 needs 22 to 256",
        ),
        (
            offer("a=ice-ufrag:EsAw", "a=ice-ufrag:E"),
            "ice-ufrag has 1 characters",
        ),
        (
            offer("a=ice-ufrag:EsAw", "a=ice-ufrag:Es;Aw"),
            "ice-ufrag contains ';'",
        ),
        (no_fp, "missing DTLS fingerprint"),
        (
            offer(CHROME_FP, &format!("sha-1 {}", sha(20))),
            "unsupported DTLS fingerprint hash sha-1 (sha-256 required)",
        ),
        (
            offer(CHROME_FP, &format!("sha-256 {}", sha(20))),
            "a sha-256 digest has 32 bytes, this one has 20",
        ),
        (
            offer(CHROME_FP, "sha-256 not-hex"),
            "invalid DTLS fingerprint",
        ),
        (
            offer("a=setup:actpass\na=mid:0", "a=setup:passive\na=mid:0"),
            "unsupported DTLS setup role passive",
        ),
        (
            offer("m=audio 9 UDP/TLS/RTP/SAVPF", "m=audio 9 RTP/AVP"),
            "unsupported transport profile",
        ),
        (
            offer("111 63 9 0 8 13 110 126", "110 126"),
            "no common codec",
        ),
    ];
    for (i, (sdp, why)) in cases.iter().enumerate() {
        let call_id = format!("bad{i}");
        let call = json!({"type":"call","call_id":call_id,"to":"echo","sdp":sdp});
        sig.send(call).await.unwrap();
        let hangup = loop {
            let msg = sig.recv(T).await.unwrap();
            if msg["type"] == "hangup" {
                break msg;
            }
            assert_eq!(msg["type"], "trying", "{why}: {msg}");
        };
        let reason = hangup["reason"].as_str().unwrap_or("");
        assert_eq!(hangup["call_id"], call_id.as_str());
        assert_eq!(hangup["code"], 488, "{why}: {hangup}");
        assert!(reason.contains(why), "{why}: {reason}");
    }
    // Nothing was left allocated.
    assert_eq!(gw.active_calls(), 0);
    let errors = "siphon_calls_total{direction=\"webrtc_to_sip\",outcome=\"error\"}";
    assert_eq!(common::counter(&metrics, errors), 0);
    gw.shutdown().await;
}

/// A browser's answer to siphon's offer `offer`, with ICE password `pwd`
/// and fingerprint `fingerprint` (`hash digest`).
fn answer(offer: &str, pwd: &str, fingerprint: &str) -> String {
    let mid = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .unwrap_or("0")
        .trim();
    format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
         a=ice-ufrag:Brws\r\na=ice-pwd:{pwd}\r\na=fingerprint:{fingerprint}\r\n\
         a=setup:active\r\na=rtcp-mux\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

use common::uac_final as final_event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_answer_to_an_incoming_call_is_488_on_both_sides() {
    let (gw, _) = gateway(|c| {
        c.echo.enabled = false;
        c.users = vec![UserConfig {
            name: "alice".into(),
            extension: "2001".into(),
            ..Default::default()
        }];
    })
    .await;
    let stop = CancellationToken::new();
    let pbx = common::test_pbx("127.0.0.1:0".parse().unwrap(), &stop).await;
    let mut sig = common::online(&gw, "alice").await;
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let good_pwd = "browserpassword0123456789";
    let cases = [
        (good_pwd, format!("sha-256 {}", sha(32)), None),
        (
            "short",
            format!("sha-256 {}", sha(32)),
            Some("ice-pwd has 5 characters"),
        ),
        (
            good_pwd,
            format!("sha-1 {}", sha(20)),
            Some("unsupported DTLS fingerprint hash sha-1"),
        ),
        (
            good_pwd,
            format!("sha-256 {}", sha(48)),
            Some("this one has 48"),
        ),
    ];
    for (pwd, fingerprint, refused) in cases {
        let invite = OutboundInvite {
            target: format!("sip:2001@{}", gw.sip_addr(Transport::Udp).unwrap()),
            from_user: "1000".into(),
            from_display: None,
            sdp: format!(
                "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                 t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            ),
            credentials: None,
            log_id: "pbx".into(),
            failover: Vec::new(),
            response_wait: None,
            headers: Vec::new(),
        };
        // One call at a time for the user: the last one must be gone.
        let deadline = tokio::time::Instant::now() + T;
        while gw.active_calls() != 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (uac, mut events) = pbx.invite(invite).await.unwrap();
        let incoming = sig.recv_type("incoming", T).await;
        let incoming = incoming.unwrap_or_else(|e| panic!("{fingerprint} {pwd}: {e}"));
        let call_id = incoming["call_id"].as_str().unwrap().to_owned();
        let sdp = answer(incoming["sdp"].as_str().unwrap(), pwd, &fingerprint);
        let accept = json!({"type":"accept","call_id":call_id,"sdp":sdp});
        sig.send(accept).await.unwrap();
        let ev = final_event(&mut events).await;
        let Some(why) = refused else {
            // The control: the same answer with good credentials is taken.
            assert!(matches!(ev, UacEvent::Answered { .. }), "{ev:?}");
            sig.send(json!({"type":"hangup","call_id":call_id}))
                .await
                .unwrap();
            sig.recv_type("hangup", T).await.unwrap();
            drop(uac);
            continue;
        };
        assert!(
            matches!(ev, UacEvent::Failed { code: 488, .. }),
            "{why}: {ev:?}"
        );
        let hangup = sig.recv(T).await.unwrap();
        let reason = hangup["reason"].as_str().unwrap_or("");
        assert_eq!(
            (hangup["type"].as_str(), hangup["code"].as_u64()),
            (Some("hangup"), Some(488)),
            "{hangup}"
        );
        assert!(reason.contains(why), "{why}: {reason}");
    }
    stop.cancel();
    gw.shutdown().await;
}

/// `sdp` with the value of every `a=<name>:` line replaced by `value`.
fn with_attr(sdp: &str, name: &str, value: &str) -> String {
    let prefix = format!("a={name}:");
    let lines = sdp.lines().map(|l| {
        if l.starts_with(&prefix) {
            format!("{prefix}{value}\r\n")
        } else {
            format!("{l}\r\n")
        }
    });
    lines.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_offer_with_a_short_ice_pwd_is_refused_and_the_call_goes_on() {
    let (gw, _) = gateway(|_| {}).await;
    let mut sig = signaling(&gw).await;
    let browser = common::answered_call_to(&mut sig, "r1", "echo").await;
    let local = browser.local_sdp().await.unwrap();
    let restart = with_attr(&with_attr(&local, "ice-ufrag", "Rstr"), "ice-pwd", "short");
    let offer = json!({"type":"offer","call_id":"r1","sdp":restart});
    sig.send(offer).await.unwrap();
    let refused = sig.recv_type("error", T).await.unwrap();
    let message = refused["message"].as_str().unwrap_or("");
    assert_eq!(refused["code"], "bad_sdp", "{refused}");
    assert!(message.contains("ice-pwd has 5 characters"), "{message}");
    // The old path was never touched: audio still comes back.
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 40, "only {back} of 50 frames came back");
    sig.send(json!({"type":"hangup","call_id":"r1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
    gw.shutdown().await;
}
