//! SIP -> browser calls through a whole in-process siphon: an rsipstack UAC
//! plays the PBX, the `webrtc` crate plays the browser that answers.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{frame_index, stamped_frame, Browser, Codec, Signaling};
use serde_json::{json, Value};
use siphon::config::{Config, UserConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{OutboundInvite, SipEndpoint, Transport, UacEvent, UacHandle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

struct Rig {
    gateway: Gateway,
    metrics: Metrics,
    pbx: SipEndpoint,
    _stop: CancellationToken,
}

impl Rig {
    async fn start() -> Rig {
        let port_base = siphon_testkit::ports::block(20);
        let stop = CancellationToken::new();
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.sip.udp = Some("127.0.0.1:0".parse().unwrap());
        config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
        config.echo.enabled = false;
        config.webrtc.port = 0;
        config.rtp.port_min = port_base;
        config.rtp.port_max = port_base + 19;
        config.media.workers = 1;
        config.limits.ring_timeout_secs = 3;
        config.limits.per_user_calls = 1;
        // Users are PBX extensions: alice is extension 2001, the others by name.
        config.users = [("alice", "2001"), ("bob", "bob"), ("carol", "carol")]
            .map(|(name, extension)| UserConfig {
                name: name.into(),
                extension: extension.into(),
                ..Default::default()
            })
            .to_vec();
        let metrics = Metrics::new();
        let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
        let pbx = common::test_pbx("127.0.0.1:0".parse().unwrap(), &stop).await;
        Rig {
            gateway,
            metrics,
            pbx,
            _stop: stop,
        }
    }

    /// A browser session logged in as `user`.
    async fn session(&self, user: &str) -> Signaling {
        common::online(&self.gateway, user).await
    }

    /// The PBX calls `user` with a PCMU offer on `rtp`.
    async fn call(&self, user: &str, rtp: &UdpSocket) -> (UacHandle, mpsc::Receiver<UacEvent>) {
        let port = rtp.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
        );
        self.call_with(user, sdp).await
    }

    /// The PBX calls `user` with offer `sdp`.
    async fn call_with(&self, user: &str, sdp: String) -> (UacHandle, mpsc::Receiver<UacEvent>) {
        let gw = self.gateway.sip_addr(Transport::Udp).unwrap();
        let invite = OutboundInvite {
            target: format!("sip:{user}@{gw}"),
            from_user: "1000".into(),
            from_display: None,
            sdp,
            credentials: None,
            log_id: "pbx".into(),
            failover: Vec::new(),
            response_wait: None,
            headers: Vec::new(),
        };
        self.pbx.invite(invite).await.unwrap()
    }
}

use common::uac_final as final_event;

use common::pcmu_rtp as rtp;

async fn wait_released(rig: &Rig, free: usize) {
    let deadline = tokio::time::Instant::now() + T;
    while (rig.gateway.free_rtp_ports() != free || rig.gateway.active_calls() != 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.gateway.free_rtp_ports(), free, "RTP port returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_calls_browser_audio_both_ways_then_pbx_bye() {
    phone_calls_browser(false).await;
}

/// The browser answers `setup:passive`: siphon is the DTLS client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_calls_pion_style_peer_siphon_is_dtls_client() {
    phone_calls_browser(true).await;
}

async fn phone_calls_browser(pion_style: bool) {
    let rig = Rig::start().await;
    let free = rig.gateway.free_rtp_ports();
    let mut sig = rig.session("alice").await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    pbx_rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (uac, mut events) = rig.call("2001", &pbx_rtp).await;

    let incoming: Value = sig.recv_type("incoming", T).await.unwrap();
    assert_eq!(incoming["to"], "alice");
    assert!(incoming["from"].as_str().unwrap().contains("1000"));
    let call_id = incoming["call_id"].as_str().unwrap().to_owned();
    let browser = if pion_style {
        Browser::pion_style(&[Codec::Pcmu]).await.unwrap()
    } else {
        Browser::new(&[Codec::Pcmu]).await.unwrap()
    };
    let browser = std::sync::Arc::new(browser);
    let answer = browser
        .accept_offer(incoming["sdp"].as_str().unwrap())
        .await
        .unwrap();
    let setup = if pion_style {
        "a=setup:passive"
    } else {
        "a=setup:active"
    };
    assert!(answer.contains(setup), "{answer}");
    sig.send(json!({"type":"accept","call_id":call_id,"sdp":answer}))
        .await
        .unwrap();
    let ev = final_event(&mut events).await;
    let UacEvent::Answered { sdp } = ev else {
        let msg = sig.recv(Duration::from_secs(1)).await;
        panic!("PBX call not answered: {ev:?}; browser got {msg:?}; answer was\n{answer}");
    };
    assert!(sdp.contains("RTP/AVP") && sdp.contains("PCMU/8000"));
    assert_eq!(
        rig.gateway.active_calls(),
        1,
        "inbound calls count toward limits"
    );
    browser.wait_connected(T).await.unwrap();

    // The browser echoes what the PBX sends; the PBX counts what returns.
    let gw_media = common::media_addr(&sdp);
    let back = common::pbx_round_trip(browser.clone(), pbx_rtp, gw_media, 60).await;
    assert!(
        back >= 50,
        "only {back} of 60 frames came back through the browser"
    );

    uac.hangup().await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        (hangup["code"].as_u64(), hangup["reason"].as_str()),
        (Some(200), Some("Remote hangup"))
    );
    wait_released(&rig, free).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_rings_first_accept_wins() {
    let rig = Rig::start().await;
    let mut first = rig.session("bob").await;
    let mut second = rig.session("bob").await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_uac, mut events) = rig.call("bob", &pbx_rtp).await;

    let ring1 = first.recv_type("incoming", T).await.unwrap();
    let ring2 = second.recv_type("incoming", T).await.unwrap();
    assert_eq!(ring1["call_id"], ring2["call_id"]);
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let answer = browser
        .accept_offer(ring2["sdp"].as_str().unwrap())
        .await
        .unwrap();
    let call_id = ring2["call_id"].clone();
    second
        .send(json!({"type":"accept","call_id":call_id,"sdp":answer}))
        .await
        .unwrap();
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Answered { .. }
    ));
    let elsewhere = first.recv_type("hangup", T).await.unwrap();
    assert_eq!(elsewhere["reason"], "Answered elsewhere");

    // A graceful shutdown ends the answered call on both legs.
    let Rig {
        gateway,
        pbx: _pbx,
        metrics: _,
        _stop,
    } = rig;
    gateway.shutdown().await;
    let bye = second.recv_type("hangup", T).await.unwrap();
    assert_eq!(bye["reason"], "siphon is shutting down");
    assert_eq!(bye["code"], 503);
    let ended = tokio::time::timeout(T, events.recv()).await.unwrap();
    assert!(
        matches!(ended, Some(UacEvent::Ended { by_remote: true })),
        "{ended:?}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_offline_cancel_and_ring_timeout() {
    let rig = Rig::start().await;
    let free = rig.gateway.free_rtp_ports();
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();

    // Nobody logged in as carol: 480.
    let (_uac, mut events) = rig.call("carol", &pbx_rtp).await;
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Failed { code: 480, .. }
    ));

    // A user siphon does not know (a proxy's stale route): 404 at once.
    let asked = std::time::Instant::now();
    let (_uac, mut events) = rig.call("nobody", &pbx_rtp).await;
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Failed { code: 404, .. }
    ));
    assert!(asked.elapsed() < Duration::from_secs(2), "no hang");

    // Decline: 603 reaches the PBX.
    let mut sig = rig.session("carol").await;
    let (_uac, mut events) = rig.call("carol", &pbx_rtp).await;
    let ring = sig.recv_type("incoming", T).await.unwrap();
    sig.send(json!({"type":"reject","call_id":ring["call_id"],"code":603}))
        .await
        .unwrap();
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Failed { code: 603, .. }
    ));
    sig.recv_type("hangup", T).await.unwrap();

    // The PBX cancels while it rings: the browser hears 487. While it rings,
    // a second call for carol exceeds limits.per_user_calls (1 here): 486.
    let (uac, _events) = rig.call("carol", &pbx_rtp).await;
    sig.recv_type("incoming", T).await.unwrap();
    let (_flood, mut flood_events) = rig.call("carol", &pbx_rtp).await;
    let flood = final_event(&mut flood_events).await;
    assert!(
        matches!(flood, UacEvent::Failed { code: 486, .. }),
        "{flood:?}"
    );
    uac.hangup().await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 487);

    // Nobody answers within limits.ring_timeout_secs (3 s here): 480.
    let (_uac, mut events) = rig.call("carol", &pbx_rtp).await;
    sig.recv_type("incoming", T).await.unwrap();
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Failed { code: 480, .. }
    ));
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 480);
    wait_released(&rig, free).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_and_unusable_offers_get_their_errors_and_nothing_else_changes() {
    let rig = Rig::start().await;
    let mut carol = rig.session("carol").await;
    let mut bob = rig.session("bob").await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();

    // An offer with no codec a browser takes: 488, and carol never rings.
    let g729 = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let (_uac, mut events) = rig.call_with("carol", g729.into()).await;
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Failed { code: 488, .. }
    ));

    // One call rings carol; a flood of 20 more for her each gets 486.
    let (_ringing, _ringing_events) = rig.call("carol", &pbx_rtp).await;
    let first = carol.recv_type("incoming", T).await.unwrap();
    let mut flood = Vec::new();
    for _ in 0..20 {
        flood.push(rig.call("carol", &pbx_rtp).await);
    }
    for (_uac, events) in &mut flood {
        let ev = final_event(events).await;
        assert!(matches!(ev, UacEvent::Failed { code: 486, .. }), "{ev:?}");
    }

    // Bob is unaffected, and carol heard of one call only.
    let (_uac, _events) = rig.call("bob", &pbx_rtp).await;
    assert_eq!(bob.recv_type("incoming", T).await.unwrap()["to"], "bob");
    carol
        .send(json!({"type":"hangup","call_id":"probe"}))
        .await
        .unwrap();
    let next = carol.recv(T).await.unwrap();
    assert_eq!(
        next["code"], "unknown_call",
        "no second incoming for carol: {next}"
    );
    assert!(first["call_id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_incoming_call_survives_a_lost_socket_and_is_resumed() {
    let rig = Rig::start().await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let (sig, browser, uac, _events, call_id) =
        answered_from_pbx(&rig, "bob", pbx_offer(port, true)).await;

    // The socket drops; the call waits; the same user comes back for it.
    sig.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.gateway.active_calls(), 1, "the call waits");
    let mut sig = rig.session("bob").await;
    sig.send(json!({"type":"resume","call_id":call_id}))
        .await
        .unwrap();
    assert_eq!(
        sig.recv_type("resumed", T).await.unwrap()["call_id"],
        call_id
    );

    // The new socket is the call's now: the PBX's BYE reaches it.
    uac.hangup().await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        (hangup["call_id"].as_str(), hangup["code"].as_u64()),
        (Some(call_id.as_str()), Some(200))
    );
    browser.close().await;
}

/// An answered call from the PBX to `user` with `sdp`, the browser connected.
async fn answered_from_pbx(
    rig: &Rig,
    user: &str,
    sdp: String,
) -> (
    Signaling,
    Browser,
    UacHandle,
    mpsc::Receiver<UacEvent>,
    String,
) {
    let mut sig = rig.session(user).await;
    let (uac, mut events) = rig.call_with(user, sdp).await;
    let incoming = sig.recv_type("incoming", T).await.unwrap();
    let call_id = incoming["call_id"].as_str().unwrap().to_owned();
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let answer = browser
        .accept_offer(incoming["sdp"].as_str().unwrap())
        .await
        .unwrap();
    sig.send(json!({"type":"accept","call_id":call_id,"sdp":answer}))
        .await
        .unwrap();
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Answered { .. }
    ));
    browser.wait_connected(T).await.unwrap();
    (sig, browser, uac, events, call_id)
}

fn pbx_offer(port: u16, events: bool) -> String {
    let (fmts, event_lines) = if events {
        (
            " 101",
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
        )
    } else {
        ("", "")
    };
    format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0{fmts}\r\na=rtpmap:0 PCMU/8000\r\n{event_lines}a=sendrecv\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_presses_cross_both_ways_as_rfc4733_and_from_sip_info() {
    let rig = Rig::start().await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    pbx_rtp
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let (mut sig, browser, uac, _events, call_id) =
        answered_from_pbx(&rig, "bob", pbx_offer(port, true)).await;

    // PBX -> browser: an INFO becomes a `dtmf` message and RFC 4733 packets.
    assert_eq!(uac.info('5', 160).await, Some(200));
    let dtmf = sig.recv_type("dtmf", T).await.unwrap();
    assert_eq!(
        (dtmf["digit"].as_str(), dtmf["duration"].as_u64()),
        (Some("5"), Some(160))
    );
    let mut events_seen = 0;
    while let Ok(p) = browser.recv_rtp(Duration::from_millis(500)).await {
        if p.payload_type != 0 && p.payload.len() == 4 && p.payload[0] == 5 {
            events_seen += 1;
        }
    }
    assert!(
        events_seen >= 3,
        "telephone-event packets at the browser: {events_seen}"
    );

    // Browser -> PBX: `dtmf` becomes RFC 4733 on the PBX's telephone-event PT.
    sig.send(json!({"type":"dtmf","call_id":call_id,"digits":"9"}))
        .await
        .unwrap();
    let got = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 1500];
        let mut codes = Vec::new();
        while let Ok((n, _)) = pbx_rtp.recv_from(&mut buf) {
            if n == 16 && buf[1] & 0x7f == 101 {
                codes.push(buf[12]);
            }
        }
        codes
    })
    .await
    .unwrap();
    assert!(got.len() >= 4 && got.iter().all(|c| *c == 9), "{got:?}");
    uac.hangup().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_presses_go_as_sip_info_when_the_pbx_has_no_telephone_event() {
    let rig = Rig::start().await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let (mut sig, browser, uac, mut events, call_id) =
        answered_from_pbx(&rig, "carol", pbx_offer(port, false)).await;
    sig.send(json!({"type":"dtmf","call_id":call_id,"digits":"3*","duration":120}))
        .await
        .unwrap();
    let mut digits = String::new();
    while digits.len() < 2 {
        let ev = tokio::time::timeout(T, events.recv())
            .await
            .unwrap()
            .unwrap();
        if let UacEvent::Dtmf { digit, duration_ms } = ev {
            assert_eq!(duration_ms, 120);
            digits.push(digit);
        }
    }
    assert_eq!(digits, "3*");
    // Bad digits get an error; the call goes on.
    sig.send(json!({"type":"dtmf","call_id":call_id,"digits":"12X"}))
        .await
        .unwrap();
    assert_eq!(sig.recv(T).await.unwrap()["code"], "bad_message");
    uac.hangup().await;
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pbx_holds_and_resumes_and_the_browser_follows() {
    let rig = Rig::start().await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let (mut sig, browser, uac, _events, call_id) =
        answered_from_pbx(&rig, "carol", pbx_offer(port, true)).await;

    // Hold: sendonly is answered recvonly; the browser is re-offered sendonly.
    let held = pbx_offer(port, true).replace("a=sendrecv", "a=sendonly");
    let (code, answer) = uac.reinvite(held).await.expect("an answer");
    assert_eq!(code, 200);
    assert!(
        answer.contains("a=recvonly") && !answer.contains("sendrecv"),
        "{answer}"
    );
    let offer = sig.recv_type("offer", T).await.unwrap();
    let sdp = offer["sdp"].as_str().unwrap();
    assert!(
        sdp.contains("a=sendonly") && sdp.contains("a=setup:actpass"),
        "{sdp}"
    );
    // (The webrtc crate answers sendrecv where a browser says recvonly;
    // siphon takes either.)
    let reply = browser.accept_offer(sdp).await.unwrap();
    sig.send(json!({"type":"answer","call_id":call_id,"sdp":reply}))
        .await
        .unwrap();
    // On hold the PBX gets none of the browser's audio.
    pbx_rtp
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for i in 0..10u16 {
        browser.send_rtp(&stamped_frame(i)).await.unwrap();
    }
    let mut buf = [0u8; 1500];
    assert!(
        pbx_rtp.recv_from(&mut buf).is_err(),
        "audio reached the PBX on hold"
    );

    // Resume: sendrecv again on both legs.
    let (code, answer) = uac
        .reinvite(pbx_offer(port, true))
        .await
        .expect("an answer");
    assert_eq!(code, 200);
    assert!(answer.contains("a=sendrecv"), "{answer}");
    let offer = sig.recv_type("offer", T).await.unwrap();
    let reply = browser
        .accept_offer(offer["sdp"].as_str().unwrap())
        .await
        .unwrap();
    sig.send(json!({"type":"answer","call_id":call_id,"sdp":reply}))
        .await
        .unwrap();

    // Audio flows again both ways, with SRTP and sequence state carried across.
    for i in 10..20u16 {
        browser.send_rtp(&stamped_frame(i)).await.unwrap();
    }
    let (n, _) = pbx_rtp
        .recv_from(&mut buf)
        .expect("the PBX hears the browser again");
    assert!(frame_index(&buf[12..n]).is_some_and(|i| i >= 10));
    let gw_media = common::media_addr(&answer);
    for i in 0..30u16 {
        pbx_rtp
            .send_to(&rtp(i, &stamped_frame(i)), gw_media)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut heard = 0;
    while let Ok(p) = browser.recv_rtp(Duration::from_millis(500)).await {
        heard += usize::from(p.payload_type == 0 && frame_index(&p.payload).is_some());
    }
    assert!(heard >= 25, "only {heard} of 30 frames after the resume");

    // A re-offer without the call's codec is refused and changes nothing.
    let pcma = pbx_offer(port, true).replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    let (code, _) = uac.reinvite(pcma).await.expect("an answer");
    assert_eq!(code, 488);
    uac.hangup().await;
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_hold_re_invites_the_pbx_before_it_is_answered() {
    let rig = Rig::start().await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let (mut sig, browser, uac, mut events, call_id) =
        answered_from_pbx(&rig, "carol", pbx_offer(port, true)).await;

    // The browser re-offers its session on hold (sendonly).
    let answered = browser.local_sdp().await.unwrap();
    let held = answered
        .replace("a=sendrecv", "a=sendonly")
        .replace("a=setup:active", "a=setup:actpass");
    sig.send(json!({"type":"offer","call_id":call_id,"sdp":held}))
        .await
        .unwrap();

    // siphon re-INVITEs the PBX with sendonly first; the PBX answers recvonly.
    let reoffer = loop {
        let ev = tokio::time::timeout(T, events.recv())
            .await
            .unwrap()
            .unwrap();
        if let UacEvent::Reoffer(r) = ev {
            break r;
        }
    };
    let offer = reoffer.sdp.clone().unwrap();
    assert!(
        offer.contains("a=sendonly") && offer.contains("m=audio"),
        "{offer}"
    );
    // Glare: the PBX re-offers too before answering; siphon says 491.
    let (code, _) = uac
        .reinvite(pbx_offer(port, true))
        .await
        .expect("an answer");
    assert_eq!(code, 491);
    let pbx_answer = pbx_offer(port, true).replace("a=sendrecv", "a=recvonly");
    reoffer.accept(pbx_answer).await;

    // Then the browser gets its answer: recvonly.
    let answer = sig.recv_type("answer", T).await.unwrap();
    let sdp = answer["sdp"].as_str().unwrap();
    assert!(
        sdp.contains("a=recvonly") && !sdp.contains("a=sendrecv"),
        "{sdp}"
    );

    let text = rig.metrics.render();
    assert!(
        text.contains("siphon_browser_reoffers_total{outcome=\"hold\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("siphon_sip_reoffers_total{outcome=\"glare\"} 1"),
        "{text}"
    );

    // The held call is still up: the PBX's BYE ends it.
    uac.hangup().await;
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_before_the_answer_sdp_and_offers_for_unknown_calls() {
    let rig = Rig::start().await;
    let mut sig = rig.session("bob").await;
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (uac, mut events) = rig.call("bob", &pbx_rtp).await;
    let incoming = sig.recv_type("incoming", T).await.unwrap();
    let call_id = incoming["call_id"].as_str().unwrap().to_owned();
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let answer = browser
        .accept_offer(incoming["sdp"].as_str().unwrap())
        .await
        .unwrap();
    // Trickled candidates (and end-of-candidates) before the answer's SDP.
    let line = answer
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .expect("a candidate")
        .trim_start_matches("a=");
    let candidate = json!({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0});
    sig.send(json!({"type":"candidate","call_id":call_id,"candidate":candidate}))
        .await
        .unwrap();
    sig.send(json!({"type":"candidate","call_id":call_id,"candidate":null}))
        .await
        .unwrap();
    sig.send(json!({"type":"accept","call_id":call_id,"sdp":answer}))
        .await
        .unwrap();
    assert!(matches!(
        final_event(&mut events).await,
        UacEvent::Answered { .. }
    ));
    browser.wait_connected(T).await.unwrap();

    // An offer for a call this socket does not have: an error, nothing else.
    sig.send(json!({"type":"offer","call_id":"nope","sdp":answer}))
        .await
        .unwrap();
    let err = sig.recv(T).await.unwrap();
    assert_eq!(
        (err["code"].as_str(), err["call_id"].as_str()),
        (Some("unknown_call"), Some("nope"))
    );
    uac.hangup().await;
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}
