//! The PBX transfers a browser's call (its REFER on the call's dialog):
//! siphon takes it (202), calls the Refer-To target on the browser's
//! behalf with the session as it is, reports by NOTIFY, moves the call to
//! the target and tells the browser `transferred`; a target that fails
//! leaves the call as it was. Both call directions, and the bad REFERs.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use common::{Browser, Signaling};
use serde_json::Value;
use siphon::config::UserConfig;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{EchoServer, Progress, SipEndpoint, Transport, UacEvent, UacHandle, UasEvent};
use siphon_doubles::ScriptedEcho;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// siphon, a PBX that calls alice (2001) or takes the browser's calls (its
/// trunk), and an echo the PBX transfers calls to.
struct Rig {
    gateway: Gateway,
    pbx: SipEndpoint,
    target: EchoServer,
    script: Arc<ScriptedEcho>,
    stop: CancellationToken,
}

impl Rig {
    async fn start(script: ScriptedEcho) -> Rig {
        let stop = CancellationToken::new();
        let pbx = common::test_pbx("127.0.0.1:0".parse().unwrap(), &stop).await;
        let mut config = common::loopback_config();
        config.users = vec![UserConfig {
            name: "alice".into(),
            extension: "2001".into(),
            ..Default::default()
        }];
        let pbx_addr = pbx.local_addr(Transport::Udp).unwrap();
        config.sip.trunk.uri = Some(format!("sip:{pbx_addr}"));
        let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
        let script = Arc::new(script);
        let target = siphon_doubles::echo(script.install(), &stop).await.unwrap();
        Rig {
            gateway,
            pbx,
            target,
            script,
            stop,
        }
    }

    fn target_uri(&self) -> String {
        format!("sip:3000@{}", self.target.local_addr())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The PBX calls alice and her browser answers.
async fn inbound(
    rig: &Rig,
    rtp: &UdpSocket,
) -> (Signaling, Arc<Browser>, UacHandle, mpsc::Receiver<UacEvent>) {
    let mut sig = common::online(&rig.gateway, "alice").await;
    let gw = rig.gateway.sip_addr(Transport::Udp).unwrap();
    let port = rtp.local_addr().unwrap().port();
    let invite = common::pbx_invite(gw, "2001", port, Vec::new());
    let (uac, mut events) = rig.pbx.invite(invite).await.unwrap();
    let (browser, _) = common::accept_incoming(&mut sig).await;
    let answer = common::uac_final(&mut events).await;
    assert!(matches!(answer, UacEvent::Answered { .. }), "{answer:?}");
    browser.wait_connected(T).await.unwrap();
    (sig, browser, uac, events)
}

/// The NOTIFYs the PBX hears, up to the last one.
async fn notified(mut next: impl AsyncFnMut() -> Option<Progress>) -> Vec<u16> {
    let mut codes = Vec::new();
    while let Some(p) = tokio::time::timeout(T, next()).await.unwrap() {
        codes.push(p.code);
        if p.last {
            break;
        }
    }
    codes
}

async fn uac_notified(events: &mut mpsc::Receiver<UacEvent>) -> Vec<u16> {
    notified(async || loop {
        match events.recv().await? {
            UacEvent::TransferProgress(p) => return Some(p),
            _ => continue,
        }
    })
    .await
}

async fn uas_notified(events: &mut mpsc::Receiver<UasEvent>) -> Vec<u16> {
    notified(async || loop {
        match events.recv().await? {
            UasEvent::TransferProgress(p) => return Some(p),
            _ => continue,
        }
    })
    .await
}

/// The browser's next message of `kind`, skipping others.
async fn told(sig: &mut Signaling, kind: &str) -> Value {
    sig.recv_type(kind, T).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pbx_transfers_an_incoming_call_and_the_browser_talks_to_the_target() {
    let rig = Rig::start(ScriptedEcho::default()).await;
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sig, browser, pbx, mut events) = inbound(&rig, &rtp).await;

    assert_eq!(pbx.refer(&rig.target_uri()).await, Some(202));
    let codes = uac_notified(&mut events).await;
    assert_eq!(codes.first(), Some(&100), "{codes:?}");
    assert_eq!(codes.last(), Some(&200), "{codes:?}");
    assert_eq!(
        common::uac_final(&mut events).await,
        UacEvent::Ended { by_remote: true },
        "siphon ends the transferor's dialog"
    );
    let transferred = told(&mut sig, "transferred").await;
    assert_eq!(transferred["to"], rig.target_uri().as_str());
    // The target got siphon's INVITE from alice, and talks to her browser.
    let invite = rig.script.last_invite().expect("the target was called");
    let from = invite.header("From").unwrap_or_default();
    assert!(from.contains("sip:alice@"), "{from}");
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 40, "only {back} of 50 frames came back");
    // The call is the target's now: the browser's hangup ends it.
    sig.send(serde_json::json!({"type":"hangup","call_id":transferred["call_id"]}))
        .await
        .unwrap();
    let hangup = told(&mut sig, "hangup").await;
    assert_eq!(hangup["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_leaves_the_browsers_own_call_going() {
    let rig = Rig::start(ScriptedEcho {
        reject: Some(486),
        ..ScriptedEcho::default()
    })
    .await;
    let mut sig = common::connect(&rig.gateway).await;
    let mut inbound = rig.pbx.take_inbound().unwrap();
    // The browser calls out; the PBX (siphon's trunk) answers.
    let browser = common::place_call(&mut sig, "c1", "5000").await;
    let call = tokio::time::timeout(T, inbound.recv())
        .await
        .unwrap()
        .unwrap();
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let sdp = format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    call.handle.answer(sdp).await.unwrap();
    let answered = told(&mut sig, "answered").await;
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();

    let mut events = call.events;
    assert_eq!(call.handle.refer(&rig.target_uri()).await, Some(202));
    let codes = uas_notified(&mut events).await;
    assert_eq!(codes, [100, 486], "the target's refusal is NOTIFYed");
    // The call is the PBX's still: its BYE ends it for the browser.
    call.handle.hangup().await;
    let hangup = told(&mut sig, "hangup").await;
    assert_eq!(hangup["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferor_that_hangs_up_at_once_leaves_the_call_with_the_target() {
    let rig = Rig::start(ScriptedEcho {
        ring_for: Some(Duration::from_millis(500)),
        ..ScriptedEcho::default()
    })
    .await;
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sig, browser, pbx, _events) = inbound(&rig, &rtp).await;
    assert_eq!(pbx.refer(&rig.target_uri()).await, Some(202));
    pbx.hangup().await;
    let msg = sig.recv(T).await.unwrap();
    assert_eq!(msg["type"], "transferred", "not a hangup: {msg}");
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 40, "only {back} of 50 frames came back");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_without_a_callable_target_is_refused_and_the_call_goes_on() {
    let rig = Rig::start(ScriptedEcho::default()).await;
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sig, browser, pbx, _events) = inbound(&rig, &rtp).await;
    assert_eq!(pbx.refer("http://example.com/").await, Some(403));
    assert_eq!(pbx.refer("no-scheme").await, Some(400));
    assert_eq!(rig.script.invites(), 0, "nobody was called");
    pbx.hangup().await;
    let hangup = told(&mut sig, "hangup").await;
    assert_eq!(hangup["code"], 200, "the call was still up");
    browser.close().await;
}
