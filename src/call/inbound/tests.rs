//! The SIP -> browser call machine, driven with values.

use super::*;
use crate::call::machine::Feed;
use crate::sdp::fixtures::{ASTERISK_OFFER, FIREFOX_ANSWER};

fn params(offer: &str) -> InboundParams {
    InboundParams {
        call_id: "in1".into(),
        from: "sip:1000@pbx".into(),
        to: "alice".into(),
        offer_sdp: offer.into(),
        browser_codecs: vec!["opus".into(), "PCMU".into(), "PCMA".into(), "G722".into()],
        rtp_addr: "192.0.2.10:20000".parse().unwrap(),
        local: LocalWebRtc {
            ice_ufrag: "gw01".into(),
            ice_pwd: "gatewaypassword0123456789".into(),
            fingerprint: "AA:BB".into(),
            candidate: "192.0.2.10:10000".parse().unwrap(),
            ssrc: 9,
            session_id: 7,
        },
        srtp: crate::config::SrtpMode::Off,
        local_crypto: Vec::new(),
        plain_signaling: true,
    }
}

fn call() -> InboundCall {
    InboundCall::start(params(ASTERISK_OFFER), Instant::now()).unwrap()
}

fn sent_to(cmds: &[Command]) -> Vec<(SessionId, u16, String)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send(s, ServerMessage::Hangup { code, reason, .. }) => {
                Some((*s, *code, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn sip_reject(cmds: &[Command]) -> Option<u16> {
    cmds.iter().find_map(|c| match c {
        Command::SipReject(code, _) => Some(*code),
        _ => None,
    })
}

#[test]
fn incoming_offer_is_webrtc() {
    let c = call();
    let ServerMessage::Incoming(incoming) = c.incoming() else {
        panic!("expected incoming");
    };
    let Incoming { sdp, from, to, .. } = *incoming;
    assert!(sdp.contains("UDP/TLS/RTP/SAVPF") && sdp.contains("a=setup:actpass"));
    assert_eq!((from.as_str(), to.as_str()), ("sip:1000@pbx", "alice"));
}

#[test]
fn first_accept_wins_and_others_hear_answered_elsewhere() {
    let mut c = call();
    let cmds = c.feed(Event::Delivered(vec![1, 2, 3]));
    assert!(matches!(cmds[..], [Command::SipRinging]));
    let cmds = c.feed(Event::Client(2, ClientInput::Accept(FIREFOX_ANSWER.into())));
    let Some(Command::Answer(2, accepted)) = cmds.first() else {
        panic!("expected answer: {cmds:?}");
    };
    assert!(accepted.sip_answer.contains("RTP/AVP"));
    let expected: SocketAddr = "10.0.0.5:18140".parse().unwrap();
    assert_eq!(accepted.media.remote_rtp, expected);
    let mut others = sent_to(&cmds);
    others.sort();
    assert_eq!(
        others,
        vec![
            (1, 200, "Answered elsewhere".into()),
            (3, 200, "Answered elsewhere".into())
        ]
    );
    assert!(c.is_answered());
    assert!(c
        .feed(Event::Client(1, ClientInput::Accept(FIREFOX_ANSWER.into())))
        .is_empty());
    let end = c.feed(Event::Sip(SipInput::Ended { by_remote: true }));
    assert_eq!(sent_to(&end), vec![(2, 200, "Remote hangup".into())]);
}

#[test]
fn an_expired_session_timer_hangs_up_the_browser_with_408() {
    let mut c = call();
    c.feed(Event::Delivered(vec![1]));
    c.feed(Event::Client(1, ClientInput::Accept(FIREFOX_ANSWER.into())));
    let end = c.feed(Event::Sip(SipInput::SessionExpired));
    assert_eq!(
        sent_to(&end),
        vec![(1, 408, crate::call::SESSION_EXPIRED.into())]
    );
}

#[test]
fn busy_drops_one_branch_decline_ends_all() {
    let mut c = call();
    c.feed(Event::Delivered(vec![1, 2]));
    assert!(
        c.feed(Event::Client(1, ClientInput::Reject(486)))
            .is_empty(),
        "2 still rings"
    );
    let cmds = c.feed(Event::Client(2, ClientInput::Reject(486)));
    assert_eq!(sip_reject(&cmds), Some(486));

    let mut c = call();
    c.feed(Event::Delivered(vec![1, 2]));
    let cmds = c.feed(Event::Client(1, ClientInput::Reject(603)));
    assert_eq!(sip_reject(&cmds), Some(603));
    assert_eq!(
        sent_to(&cmds),
        vec![(1, 603, "Decline".into()), (2, 603, "Decline".into())]
    );
}

#[test]
fn shutdown_ends_ringing_and_answered_calls() {
    let mut c = call();
    c.feed(Event::Delivered(vec![1]));
    let cmds = c.feed(Event::Shutdown);
    assert_eq!(sip_reject(&cmds), Some(503));
    let mut c = call();
    c.feed(Event::Delivered(vec![1]));
    c.feed(Event::Client(1, ClientInput::Accept(FIREFOX_ANSWER.into())));
    let cmds = c.feed(Event::Shutdown);
    assert!(matches!(cmds[0], Command::SipHangup));
    assert_eq!(
        sent_to(&cmds),
        vec![(1, 503, crate::call::SHUTTING_DOWN.into())]
    );
}

#[test]
fn cancel_timeout_and_offline() {
    let mut c = call();
    c.feed(Event::Delivered(vec![5]));
    let cmds = c.feed(Event::Sip(SipInput::Cancelled));
    assert_eq!(sent_to(&cmds), vec![(5, 487, "Request Terminated".into())]);
    assert_eq!(
        sip_reject(&cmds),
        None,
        "the SIP layer already answered 487"
    );

    let mut c = call();
    c.feed(Event::Delivered(vec![5]));
    let cmds = c.feed(Event::RingTimeout);
    assert_eq!(sip_reject(&cmds), Some(480));
    assert_eq!(sent_to(&cmds), vec![(5, 480, "No answer".into())]);

    let mut c = call();
    let cmds = c.feed(Event::Delivered(vec![]));
    assert_eq!(sip_reject(&cmds), Some(480));
}

#[test]
fn the_sip_side_ending_while_ringing_ends_the_call_for_every_session() {
    let mut c = call();
    c.feed(Event::Delivered(vec![5, 6]));
    let cmds = c.feed(Event::Sip(SipInput::Ended { by_remote: false }));
    assert_eq!(
        sent_to(&cmds),
        vec![
            (5, 487, "Request Terminated".into()),
            (6, 487, "Request Terminated".into())
        ]
    );
    assert!(matches!(cmds.last(), Some(Command::Finish(_))));
    assert!(c
        .feed(Event::Sip(SipInput::Ended { by_remote: false }))
        .is_empty());
}

#[test]
fn bad_answer_drops_that_branch_only() {
    let mut c = call();
    c.feed(Event::Delivered(vec![1, 2]));
    let cmds = c.feed(Event::Client(1, ClientInput::Accept("garbage".into())));
    assert_eq!(sent_to(&cmds).first().map(|s| (s.0, s.1)), Some((1, 488)));
    assert_eq!(sip_reject(&cmds), None, "2 still rings");
    let actpass = FIREFOX_ANSWER.replace("a=setup:active", "a=setup:actpass");
    let cmds = c.feed(Event::Client(2, ClientInput::Accept(actpass)));
    assert_eq!(
        sip_reject(&cmds),
        Some(488),
        "an answer may not say actpass"
    );
}

#[test]
fn passive_answer_makes_siphon_the_dtls_client() {
    let mut c = call();
    c.feed(Event::Delivered(vec![1]));
    let passive = FIREFOX_ANSWER.replace("a=setup:active", "a=setup:passive");
    let cmds = c.feed(Event::Client(1, ClientInput::Accept(passive)));
    let Some(Command::Answer(1, accepted)) = cmds.first() else {
        panic!("expected answer: {cmds:?}");
    };
    assert_eq!(accepted.dtls_role, DtlsRole::Client);
}

#[test]
fn offer_without_browser_codec_is_488() {
    let g729 = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let err = InboundCall::start(params(g729), Instant::now()).unwrap_err();
    assert_eq!(err.code, 488);
    assert!(InboundCall::start(params(""), Instant::now()).is_err());
}

/// The answering Firefox re-offers with new ICE credentials.
fn firefox_restart() -> String {
    crate::sdp::fixtures::FIREFOX_OFFER.replace(
        "5B:1F:8E:4A:9C:22:0D:6E:71:3A:B8:C4:05:F9:E2:17:6D:88:A1:3C:4F:90:B2:E5:17:6A:CD:03:58:7E:29:B4",
        "0C:4B:71:E8:93:2D:A6:5F:C0:18:7E:D4:39:B2:65:AF:12:C8:5D:E7:40:9B:36:F1:8A:2C:D5:67:B0:4E:93:1A",
    )
}

#[test]
fn the_answering_session_may_restart_ice() {
    let mut c = call();
    c.feed(Event::Delivered(vec![1, 2]));
    let fresh = || ("gwNEW".to_owned(), "gwnewpasswordgwnewpasswd".to_owned());
    let early = c.feed(Event::Client(
        1,
        ClientInput::Offer(firefox_restart(), fresh()),
    ));
    assert!(matches!(
        &early[..],
        [Command::Send(1, ServerMessage::Error { .. })]
    ));
    c.feed(Event::Client(1, ClientInput::Accept(FIREFOX_ANSWER.into())));

    let cmds = c.feed(Event::Client(
        1,
        ClientInput::Offer(firefox_restart(), fresh()),
    ));
    let [Command::RestartIce(restart), Command::Send(1, ServerMessage::Answer { sdp, .. })] =
        &cmds[..]
    else {
        panic!("{cmds:?}");
    };
    assert_eq!(
        (restart.local_ufrag.as_str(), restart.remote_ufrag.as_str()),
        ("gwNEW", "9f2a6b1c")
    );
    // An answer now: siphon's role (Firefox was active).
    assert!(
        sdp.contains("a=setup:passive") && !sdp.contains("actpass"),
        "{sdp}"
    );
    assert!(
        sdp.contains("a=ice-ufrag:gwNEW") && sdp.contains(" 7 2 IN IP4"),
        "{sdp}"
    );
    // The codec the call relays (PCMU, the browser's first) and telephone-event.
    let m = sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m.ends_with("SAVPF 0 101"), "{m}");

    // Another session cannot re-offer this call.
    let other = c.feed(Event::Client(
        2,
        ClientInput::Offer(firefox_restart(), fresh()),
    ));
    assert!(matches!(
        &other[..],
        [Command::Send(2, ServerMessage::Error { .. })]
    ));
    assert!(c.is_answered());
}
