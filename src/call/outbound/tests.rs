//! The browser -> SIP call machine, driven with values.

use std::time::Duration;

use super::*;
use crate::call::machine::Feed;
use crate::call::{MediaSignal, Outcome};
use crate::sdp::fixtures::{ASTERISK_ANSWER, CHROME_OFFER, FREESWITCH_ANSWER};
use crate::signaling::ErrorCode;

/// The calling session.
const S: SessionId = 1;

fn params(offer: &str) -> OutboundParams {
    OutboundParams {
        call_id: "c1".into(),
        session: S,
        offer_sdp: offer.into(),
        sip_codecs: vec!["opus".into(), "PCMU".into(), "PCMA".into()],
        rtp_addr: "192.0.2.10:20000".parse().unwrap(),
        local: LocalWebRtc {
            ice_ufrag: "ufrag123".into(),
            ice_pwd: "pwd4567890123456789012345".into(),
            fingerprint: ["AB"; 32].join(":"),
            candidate: "192.0.2.10:10000".parse().unwrap(),
            ssrc: 42,
            session_id: 7,
        },
        srtp: crate::config::SrtpMode::Off,
        local_crypto: Vec::new(),
    }
}

fn start(offer: &str) -> (OutboundCall, String, Instant) {
    let now = Instant::now();
    let (call, sip) = OutboundCall::start(params(offer), now).unwrap();
    (call, sip, now)
}

fn sent(cmds: &[Command]) -> Vec<ServerMessage> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send(_, m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn outcome(cmds: &[Command]) -> Option<Outcome> {
    cmds.iter().find_map(|c| match c {
        Command::Finish(o) => Some(o.clone()),
        _ => None,
    })
}

#[test]
fn answered_call_configures_media_and_answers_the_browser() {
    let (mut call, sip_offer, t0) = start(CHROME_OFFER);
    assert!(sip_offer.contains("RTP/AVP"));
    assert!(matches!(
        &sent(&call.feed(Event::Sip(SipInput::InviteSent)))[..],
        [ServerMessage::Trying { .. }]
    ));
    assert!(matches!(
        &sent(&call.on_event(Event::Sip(SipInput::Ringing), t0))[..],
        [ServerMessage::Ringing { .. }]
    ));
    assert!(
        call.on_event(Event::Sip(SipInput::Ringing), t0).is_empty(),
        "ringing is sent once"
    );
    let t1 = t0 + Duration::from_millis(1500);
    let cmds = call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t1);
    let media = cmds.iter().find_map(|c| match c {
        Command::ConfigureMedia(m) => Some((**m).clone()),
        _ => None,
    });
    let media = media.expect("media configured");
    // Asterisk answers PCMU (0) and telephone-event 101; Chrome uses 0 and 126.
    assert_eq!(media.to_sip.get(0), Some(0));
    assert_eq!(media.to_webrtc.get(101), Some(126));
    assert_eq!(media.ts_step, 160);
    let ServerMessage::Answered { sdp, .. } = &sent(&cmds)[0] else {
        panic!("expected answered");
    };
    assert!(sdp.contains("a=ice-ufrag:ufrag123") && sdp.contains("a=setup:passive"));
    assert!(call.is_answered());
    let end = call.on_event(Event::Sip(SipInput::Ended { by_remote: true }), t1);
    let o = outcome(&end).unwrap();
    assert_eq!((o.label, o.code), ("answered", 200));
    assert_eq!(o.setup, Some(Duration::from_millis(1500)));
    assert!(!end.iter().any(|c| matches!(c, Command::SipHangup)));
    assert!(
        call.feed(Event::Client(S, ClientInput::Hangup)).is_empty(),
        "nothing after the end"
    );
}

#[test]
fn an_expired_session_timer_ends_the_call_with_408() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let end = call.on_event(Event::Sip(SipInput::SessionExpired), t0);
    let o = outcome(&end).unwrap();
    assert_eq!((o.label, o.code), ("answered", 408));
    assert!(end.iter().any(|c| matches!(c,
        Command::Send(_, ServerMessage::Hangup { code: 408, reason, .. }) if reason == crate::call::SESSION_EXPIRED)));
    assert!(
        !end.iter().any(|c| matches!(c, Command::SipHangup)),
        "the SIP leg already sent BYE"
    );
}

#[test]
fn shutdown_ends_ringing_and_answered_calls_with_503_on_both_legs() {
    let shutting_down = ServerMessage::hangup("c1", 503, crate::call::SHUTTING_DOWN);
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let end = call.feed(Event::Shutdown);
    assert!(matches!(end[0], Command::SipHangup), "BYE");
    assert_eq!(sent(&end), vec![shutting_down.clone()]);
    assert_eq!(outcome(&end).unwrap().label, "answered");
    assert!(call.feed(Event::Shutdown).is_empty(), "once");

    let (mut call, _, _) = start(CHROME_OFFER);
    let end = call.feed(Event::Shutdown);
    assert!(matches!(end[0], Command::SipHangup), "CANCEL");
    assert_eq!(sent(&end), vec![shutting_down]);
    assert_eq!(outcome(&end).unwrap().label, "cancelled");
}

#[test]
fn opus_answer_maps_renumbered_payload_types() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let cmds = call.on_event(Event::Sip(SipInput::Answered(FREESWITCH_ANSWER.into())), t0);
    let Some(Command::ConfigureMedia(m)) = cmds.first() else {
        panic!("expected media first: {cmds:?}");
    };
    assert_eq!(m.to_sip.get(111), Some(102));
    assert_eq!(m.to_webrtc.get(102), Some(111));
    assert_eq!(m.ts_step, 960);
}

#[test]
fn failure_and_client_hangup_map_to_hangup_codes() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let cmds = call.on_event(Event::Sip(SipInput::Failed(486, "Busy Here".into())), t0);
    assert_eq!(
        sent(&cmds),
        vec![ServerMessage::hangup("c1", 486, "Busy Here")]
    );
    assert_eq!(outcome(&cmds).unwrap().label, "rejected");

    let (mut call, _, _) = start(CHROME_OFFER);
    let cmds = call.feed(Event::Client(S, ClientInput::Hangup));
    assert!(matches!(cmds[0], Command::SipHangup));
    assert_eq!(
        sent(&cmds),
        vec![ServerMessage::hangup("c1", 487, "Request Terminated")]
    );

    let (mut call, _, _) = start(CHROME_OFFER);
    let cmds = call.feed(Event::RingTimeout);
    assert_eq!(outcome(&cmds).unwrap().code, 408);
    assert!(call.feed(Event::RingTimeout).is_empty());
}

#[test]
fn no_common_codec_refuses_with_488_naming_both_sides() {
    let mut p = params(CHROME_OFFER);
    p.sip_codecs = vec!["G722".into()];
    p.offer_sdp = CHROME_OFFER
        .replace(" 63 9 0", " 63 0")
        .replace("a=rtpmap:9 G722/8000\r\n", "");
    let err = OutboundCall::start(p, Instant::now()).unwrap_err();
    assert_eq!(err.code, 488);
    assert!(
        err.reason.contains("opus") && err.reason.contains("G722"),
        "{}",
        err.reason
    );
}

#[test]
fn unusable_answer_ends_the_call_with_488_and_bye() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let cmds = call.on_event(Event::Sip(SipInput::Answered("v=0\r\ngarbage".into())), t0);
    assert!(matches!(cmds[0], Command::SipHangup));
    assert_eq!(outcome(&cmds).unwrap().code, 488);
}

#[test]
fn consent_loss_and_media_failure_end_the_call() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let cmds = call.feed(Event::Media(MediaSignal::ConsentExpired));
    assert!(matches!(cmds[0], Command::SipHangup));
    assert_eq!(outcome(&cmds).unwrap().code, 408);

    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let reason = "Media timeout: no media from the SIP peer";
    let cmds = call.feed(Event::Media(MediaSignal::Timeout(reason.into())));
    assert!(matches!(cmds[0], Command::SipHangup));
    assert_eq!(outcome(&cmds).unwrap().code, 408);
    let told = cmds.iter().any(|c| {
        matches!(c, Command::Send(_, ServerMessage::Hangup { code: 408, reason: r, .. }) if r == reason)
    });
    assert!(told, "{cmds:?}");
}

#[test]
fn early_media_then_answer() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let cmds = call.on_event(Event::Sip(SipInput::Progress(ASTERISK_ANSWER.into())), t0);
    assert!(matches!(&sent(&cmds)[..], [ServerMessage::Progress { .. }]));
    let cmds = call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    assert!(matches!(&sent(&cmds)[..], [ServerMessage::Answered { .. }]));
}

/// A Chrome re-offer with other ICE credentials (an ICE restart).
fn restart_offer() -> String {
    CHROME_OFFER
        .replace("a=ice-ufrag:EsAw", "a=ice-ufrag:NeWu")
        .replace(
            "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y",
            "a=ice-pwd:newpasswordnewpassword12",
        )
}

fn fresh() -> (String, String) {
    ("gwNEW".into(), "gwnewpasswordgwnewpasswd".into())
}

#[test]
fn an_ice_restart_is_answered_on_the_webrtc_leg_alone() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let cmds = call.feed(Event::Client(
        S,
        ClientInput::Offer(restart_offer(), fresh()),
    ));
    assert!(matches!(
        &sent(&cmds)[..],
        [ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }]
    ));

    let answered = call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let Some(ServerMessage::Answered { sdp: first, .. }) = sent(&answered).pop() else {
        panic!("no answer");
    };
    let cmds = call.feed(Event::Client(
        S,
        ClientInput::Offer(restart_offer(), fresh()),
    ));
    let Command::RestartIce(restart) = &cmds[0] else {
        panic!("no restart: {cmds:?}");
    };
    assert_eq!(
        (restart.local_ufrag.as_str(), restart.remote_ufrag.as_str()),
        ("gwNEW", "NeWu")
    );
    assert!(!cmds
        .iter()
        .any(|c| matches!(c, Command::SipHangup | Command::ConfigureMedia(_))));
    let Some(ServerMessage::Answer { sdp, .. }) = sent(&cmds).pop() else {
        panic!("no answer: {cmds:?}");
    };
    assert!(
        sdp.contains("a=ice-ufrag:gwNEW") && sdp.contains(" 7 2 IN IP4"),
        "{sdp}"
    );
    let m = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("m=audio"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(m(&sdp), m(&first), "same codecs as before");

    // The same offer again restarts nothing; the version still grows.
    let cmds = call.feed(Event::Client(
        S,
        ClientInput::Offer(restart_offer(), fresh()),
    ));
    assert!(!cmds.iter().any(|c| matches!(c, Command::RestartIce(_))));
    let Some(ServerMessage::Answer { sdp, .. }) = sent(&cmds).pop() else {
        panic!("no answer");
    };
    assert!(
        sdp.contains("a=ice-ufrag:gwNEW") && sdp.contains(" 7 3 IN IP4"),
        "{sdp}"
    );
}

#[test]
fn unacceptable_re_offers_get_an_error_and_the_call_goes_on() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let new_cert = restart_offer().replace("sha-256 D2:FA", "sha-256 00:FA");
    for (offer, needle) in [
        (new_cert.as_str(), "fingerprint"),
        ("v=0\r\ngarbage", "SDP"),
    ] {
        let cmds = call.feed(Event::Client(
            S,
            ClientInput::Offer(offer.to_string(), fresh()),
        ));
        match &sent(&cmds)[..] {
            [ServerMessage::Error {
                code: ErrorCode::BadSdp,
                message,
                call_id,
            }] => {
                assert!(message.contains(needle), "{message}");
                assert_eq!(call_id.as_deref(), Some("c1"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cmds.len(), 1);
    }
    assert!(call.is_answered());
}

#[test]
fn key_presses_go_by_rtp_or_info_as_the_sip_side_negotiated() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let early = call.feed(Event::Client(S, ClientInput::Dtmf("1".into(), 160)));
    assert!(matches!(
        &sent(&early)[..],
        [ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }]
    ));
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let cmds = call.feed(Event::Client(S, ClientInput::Dtmf("1#".into(), 160)));
    let [Command::RelayDtmf(presses)] = &cmds[..] else {
        panic!("{cmds:?}");
    };
    assert_eq!(presses.iter().map(|p| p.code).collect::<Vec<_>>(), [1, 11]);

    // A SIP side without telephone-event gets INFO.
    let (mut call, _, t0) = start(CHROME_OFFER);
    let no_events: String = ASTERISK_ANSWER
        .lines()
        .filter(|l| !l.contains("telephone-event") && !l.starts_with("a=fmtp:101"))
        .map(|l| format!("{}\r\n", l.replace(" 101", "")))
        .collect();
    call.on_event(Event::Sip(SipInput::Answered(no_events)), t0);
    assert!(
        matches!(&call.feed(Event::Client(S, ClientInput::Dtmf("7".into(), 200)))[..], [Command::SipInfo(d)] if d == &[('7', 200)])
    );

    // An INFO from SIP is told to the client and played to the browser.
    let cmds = call.on_event(Event::Sip(SipInput::Dtmf('5', 160)), t0);
    assert!(
        matches!(&sent(&cmds)[..], [ServerMessage::Dtmf { digit, duration: 160, .. }] if digit == "5")
    );
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::RelayDtmf(p) if p[0].code == 5 && !p[0].to_sip)));
}

#[test]
fn the_sip_side_holds_and_the_browser_is_re_offered() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    let early = call.on_event(Event::Sip(SipInput::Reoffer(None)), t0);
    assert!(
        matches!(&early[..], [Command::AnswerReoffer(Err(_))]),
        "not answered yet"
    );
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let held = ASTERISK_ANSWER.replace("a=sendrecv", "a=sendonly");
    let cmds = call.on_event(Event::Sip(SipInput::Reoffer(Some(held))), t0);
    let Some(Command::AnswerReoffer(Ok(answer))) =
        cmds.iter().find(|c| matches!(c, Command::AnswerReoffer(_)))
    else {
        panic!("{cmds:?}");
    };
    assert!(
        answer.contains("a=recvonly") && !answer.contains("a=sendrecv"),
        "{answer}"
    );
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::ConfigureMedia(m) if m.held && !m.send_to_sip)));
    let Some(ServerMessage::Offer { sdp, .. }) = sent(&cmds).pop() else {
        panic!("no offer to the browser: {cmds:?}");
    };
    assert!(
        sdp.contains("a=sendonly") && sdp.contains("a=setup:actpass"),
        "{sdp}"
    );
    assert!(sdp.contains("a=ice-ufrag:ufrag123"), "same ICE credentials");

    // The browser's answer must keep its certificate.
    let bad = CHROME_OFFER.replace("sha-256 D2:FA", "sha-256 00:FA");
    assert!(matches!(
        &sent(&call.feed(Event::Client(S, ClientInput::Answer(bad.clone()))))[..],
        [ServerMessage::Error {
            code: ErrorCode::BadSdp,
            ..
        }]
    ));
    assert!(call
        .feed(Event::Client(S, ClientInput::Answer(CHROME_OFFER.into())))
        .is_empty());
}

#[test]
fn a_200_unlike_its_183_renegotiates_with_the_browser() {
    // Same SDP in 183 and 200: nothing more to say.
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Progress(ASTERISK_ANSWER.into())), t0);
    let cmds = call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    assert!(!sent(&cmds)
        .iter()
        .any(|m| matches!(m, ServerMessage::Offer { .. })));

    // Another codec in the 200: the browser is re-offered the session.
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Progress(ASTERISK_ANSWER.into())), t0);
    let pcma = ASTERISK_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000");
    let cmds = call.on_event(Event::Sip(SipInput::Answered(pcma)), t0);
    let Some(ServerMessage::Offer { sdp, .. }) = sent(&cmds).pop() else {
        panic!("no re-offer: {cmds:?}");
    };
    assert!(
        sdp.contains("PCMA/8000") && !sdp.contains("PCMU/8000"),
        "{sdp}"
    );
    assert!(
        sdp.contains("a=setup:actpass") && sdp.contains(" 7 2 IN IP4"),
        "{sdp}"
    );
}

#[test]
fn a_browser_hold_goes_to_sip_first_then_is_answered() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let held = CHROME_OFFER.replace("a=sendrecv", "a=sendonly");
    let cmds = call.feed(Event::Client(S, ClientInput::Offer(held.clone(), fresh())));
    let [Command::SipReinvite {
        sdp: offer,
        after_glare: false,
    }] = &cmds[..]
    else {
        panic!("{cmds:?}");
    };
    assert!(
        offer.contains("a=sendonly") && offer.contains("RTP/AVP 0 126"),
        "{offer}"
    );

    // The PBX agrees (recvonly): the relay stops sending to it; the browser
    // gets its answer, recvonly.
    let sip_answer = ASTERISK_ANSWER.replace("a=sendrecv", "a=recvonly");
    let cmds = call.on_event(
        Event::Sip(SipInput::ReinviteAnswered(Some((200, sip_answer)))),
        t0,
    );
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::ConfigureMedia(m) if m.held && m.send_to_sip)));
    let Some(ServerMessage::Answer { sdp, .. }) = sent(&cmds).pop() else {
        panic!("{cmds:?}");
    };
    assert!(
        sdp.contains("a=recvonly") && !sdp.contains("a=sendrecv"),
        "{sdp}"
    );

    // Resume, refused by the PBX: the browser hears why; nothing else changes.
    let cmds = call.feed(Event::Client(
        S,
        ClientInput::Offer(CHROME_OFFER.into(), fresh()),
    ));
    assert!(matches!(&cmds[..], [Command::SipReinvite { sdp, .. }] if sdp.contains("a=sendrecv")));
    // Meanwhile the PBX re-offers too: glare, 491.
    let cmds = call.on_event(Event::Sip(SipInput::Reoffer(None)), t0);
    assert!(matches!(&cmds[..], [Command::GlareReoffer]));
    // A 491 to siphon's re-INVITE is retried later, twice...
    for _ in 0..2 {
        let cmds = call.on_event(
            Event::Sip(SipInput::ReinviteAnswered(Some((491, String::new())))),
            t0,
        );
        assert!(
            matches!(
                &cmds[..],
                [Command::SipReinvite {
                    after_glare: true,
                    ..
                }]
            ),
            "{cmds:?}"
        );
    }
    // ...then the third 491 reaches the browser: a SIP refusal, not an SDP problem.
    let cmds = call.on_event(
        Event::Sip(SipInput::ReinviteAnswered(Some((491, String::new())))),
        t0,
    );
    let [Command::Send(
        _,
        ServerMessage::Error {
            code: ErrorCode::SipRefused,
            message,
            ..
        },
    )] = &cmds[..]
    else {
        panic!("{cmds:?}");
    };
    assert!(
        message.contains("491") && message.contains("glare"),
        "{message}"
    );
    assert!(call.is_answered());
}

#[test]
fn keys_the_browser_sends_in_its_media_go_as_info_when_sip_has_no_events() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    assert!(
        call.feed(Event::Media(MediaSignal::Key('4', 120)))
            .is_empty(),
        "not answered yet"
    );
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let cmds = call.feed(Event::Media(MediaSignal::Key('4', 120)));
    assert!(matches!(&cmds[..], [Command::SipInfo(d)] if d == &[('4', 120)]));
}

#[test]
fn each_new_forwarding_is_told_once_and_none_after_the_answer() {
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.feed(Event::Sip(SipInput::InviteSent));
    let forwarded =
        |from: &str, to: &str| Event::Sip(SipInput::Forwarded(Some(from.into()), Some(to.into())));
    let cmds = call.on_event(forwarded("sip:bob@pbx", "sip:carol@pbx"), t0);
    assert!(matches!(
        &sent(&cmds)[..],
        [ServerMessage::Forwarded { from: Some(f), to: Some(t), .. }]
            if f == "sip:bob@pbx" && t == "sip:carol@pbx"
    ));
    let again = call.on_event(forwarded("sip:bob@pbx", "sip:carol@pbx"), t0);
    assert!(again.is_empty(), "the same forwarding is told once");
    let next = call.on_event(forwarded("sip:carol@pbx", "sip:dave@pbx"), t0);
    assert_eq!(sent(&next).len(), 1, "a second forwarding is news");
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    let late = call.on_event(forwarded("sip:dave@pbx", "sip:erin@pbx"), t0);
    assert!(sent(&late).is_empty(), "nothing after the answer");
}

mod referral;
