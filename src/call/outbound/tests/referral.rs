//! The far end's REFER on an answered call: siphon calls the target with
//! the session as it is and moves the call to it, or stays (or ends) when
//! the target does not answer.

use super::*;

/// The transfer target's answer, on its own address.
fn target_answer() -> String {
    ASTERISK_ANSWER
        .replace("c=IN IP4 10.0.0.5", "c=IN IP4 10.0.0.9")
        .replace("m=audio 17654", "m=audio 30000")
}

fn answered() -> OutboundCall {
    let (mut call, _, t0) = start(CHROME_OFFER);
    call.on_event(Event::Sip(SipInput::Answered(ASTERISK_ANSWER.into())), t0);
    call
}

fn referred(call: &mut OutboundCall) -> String {
    let cmds = call.feed(Event::Sip(SipInput::Referred("sip:2000@pbx".into())));
    let [Command::FollowReferral(offer)] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    offer.clone()
}

#[test]
fn a_refer_calls_the_target_with_the_session_and_moves_the_call_to_it() {
    let mut call = answered();
    let offer = referred(&mut call);
    assert!(offer.contains("a=sendrecv"), "{offer}");
    // siphon's own numbers: 126 for telephone-event, where the PBX had 101.
    assert!(offer.contains("m=audio 20000 RTP/AVP 0 126"), "{offer}");
    let answer = target_answer().replace("101", "126");
    let cmds = call.feed(Event::Sip(SipInput::ReferralAnswered(Some((200, answer)))));
    assert!(matches!(cmds[0], Command::EndReferral(Ok(()))), "{cmds:?}");
    assert!(cmds.iter().any(|c| matches!(c,
        Command::ConfigureMedia(m) if m.remote_rtp.to_string() == "10.0.0.9:30000"
            && m.remote_rtcp.to_string() == "10.0.0.9:30001"
            // The target numbers key presses 126: both ways follow it.
            && m.sip_dtmf == Some((126, 8000))
            && m.to_webrtc.get(126) == Some(126)
            && m.to_sip.get(126) == Some(126))));
    assert!(
        matches!(&sent(&cmds)[..], [ServerMessage::Transferred { to, .. }] if to == "sip:2000@pbx"),
        "the browser is told, and not re-offered: {cmds:?}"
    );
    // The call goes on: the new dialog's BYE ends it.
    let end = call.feed(Event::Sip(SipInput::Ended { by_remote: true }));
    assert_eq!(outcome(&end).map(|o| o.code), Some(200));
}

#[test]
fn a_call_the_pbx_held_before_its_refer_is_resumed_with_the_browser() {
    let mut call = answered();
    let held = ASTERISK_ANSWER.replace("a=sendrecv", "a=sendonly");
    call.feed(Event::Sip(SipInput::Reoffer(Some(held))));
    referred(&mut call);
    let answer = Event::Sip(SipInput::ReferralAnswered(Some((200, target_answer()))));
    let cmds = call.feed(answer);
    assert!(cmds.iter().any(|c| matches!(c,
        Command::ConfigureMedia(m) if !m.held && m.send_to_sip && m.send_to_webrtc)));
    let msgs = sent(&cmds);
    assert!(
        matches!(&msgs[..], [ServerMessage::Offer { sdp, .. }, ServerMessage::Transferred { .. }]
            if sdp.contains("a=sendrecv")),
        "{msgs:?}"
    );
}

#[test]
fn a_target_that_does_not_answer_leaves_the_call_as_it_was() {
    let mut call = answered();
    referred(&mut call);
    let cmds = call.feed(Event::Sip(SipInput::ReferralAnswered(Some((
        486,
        String::new(),
    )))));
    assert!(
        matches!(&cmds[..], [Command::EndReferral(Err(486))]),
        "{cmds:?}"
    );
    // Nothing was moved: the old dialog's BYE still ends the call.
    let end = call.feed(Event::Sip(SipInput::Ended { by_remote: true }));
    assert_eq!(outcome(&end).map(|o| o.code), Some(200));
}

#[test]
fn a_transferor_that_hangs_up_at_once_leaves_the_call_to_the_target() {
    let mut call = answered();
    referred(&mut call);
    let bye = call.feed(Event::Sip(SipInput::Ended { by_remote: true }));
    assert!(bye.is_empty(), "the call waits for the target: {bye:?}");
    // The old dialog's channel closing is heard too, and waits as well.
    assert!(call
        .feed(Event::Sip(SipInput::Failed(500, "SIP leg lost".into())))
        .is_empty());
    let cmds = call.feed(Event::Sip(SipInput::ReferralAnswered(None)));
    assert!(
        matches!(cmds[0], Command::EndReferral(Err(408))),
        "{cmds:?}"
    );
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::SipHangup)),
        "the old dialog is gone already"
    );
    assert!(sent(&cmds).iter().any(|m| matches!(m,
        ServerMessage::Hangup { code: 408, reason, .. } if reason == "Transfer failed")));
    assert_eq!(outcome(&cmds).map(|o| o.code), Some(408));
}

#[test]
fn one_transfer_at_a_time_and_none_before_the_answer() {
    let (mut ringing, _, _) = start(CHROME_OFFER);
    let early = ringing.feed(Event::Sip(SipInput::Referred("sip:2000@pbx".into())));
    assert!(
        matches!(&early[..], [Command::RefuseReferral(403, _)]),
        "{early:?}"
    );
    let mut call = answered();
    referred(&mut call);
    let again = call.feed(Event::Sip(SipInput::Referred("sip:3000@pbx".into())));
    assert!(
        matches!(&again[..], [Command::RefuseReferral(491, _)]),
        "{again:?}"
    );
    let browser = call.feed(Event::Client(
        S,
        ClientInput::Transfer(Ok("sip:4000@pbx".into())),
    ));
    assert!(
        matches!(
            &sent(&browser)[..],
            [ServerMessage::TransferFailed { code: 491, .. }]
        ),
        "{browser:?}"
    );
}
