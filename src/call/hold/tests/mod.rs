//! The SIP side's re-offers, driven with values.

use super::*;

#[test]
fn glare_sends_the_reinvite_again_up_to_the_attempts() {
    let mut pending = PendingReinvite::new("v=0 offer".into());
    let glare = Some((491, String::new()));
    assert_eq!(pending.retry(&Some((200, "v=0 answer".into()))), None);
    assert_eq!(pending.retry(&None), None, "no answer at all");
    for _ in 1..GLARE_ATTEMPTS {
        assert_eq!(pending.retry(&glare).as_deref(), Some("v=0 offer"));
    }
    assert_eq!(pending.retry(&glare), None, "{GLARE_ATTEMPTS} sends in all");
}

const LOCAL: &str =
    "v=0\r\no=siphon 7 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
    m=audio 20000 RTP/AVP 111 0 8 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn offer(direction: &str, ip: &str) -> String {
    format!(
        "v=0\r\no=pbx 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 18000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

fn side() -> SipSide {
    SipSide::new(
        LOCAL.into(),
        crate::media::test_media(),
        0,
        Direction::SendRecv,
        None,
    )
}

fn line<'a>(sdp: &'a str, prefix: &str) -> &'a str {
    sdp.lines().find(|l| l.starts_with(prefix)).unwrap()
}

#[test]
fn hold_is_mirrored_and_resume_restores() {
    let mut s = side();
    let held = s.on_reoffer(Some(&offer("sendonly", "10.0.0.5"))).unwrap();
    assert!(held.answer.contains("a=recvonly") && !held.answer.contains("sendrecv"));
    assert_eq!(line(&held.answer, "m=audio"), "m=audio 20000 RTP/AVP 0 101");
    assert!(held.answer.contains(" 7 2 IN IP4"));
    assert_eq!(held.browser_direction, Some(Direction::SendOnly));
    assert!(!held.media.send_to_sip && held.media.held);
    assert_eq!(
        held.media.remote_rtp,
        "10.0.0.5:18000".parse::<std::net::SocketAddr>().unwrap()
    );

    let resumed = s.on_reoffer(Some(&offer("sendrecv", "10.0.0.5"))).unwrap();
    assert!(resumed.answer.contains("a=sendrecv") && resumed.answer.contains(" 7 3 IN IP4"));
    assert_eq!(resumed.browser_direction, Some(Direction::SendRecv));
    assert!(resumed.media.send_to_sip && !resumed.media.held);
}

#[test]
fn inactive_and_zero_address_holds_keep_the_media_address() {
    let mut s = side();
    // c=0.0.0.0 means the offerer receives nothing: sendonly, answered recvonly.
    let r = s.on_reoffer(Some(&offer("sendrecv", "0.0.0.0"))).unwrap();
    assert!(r.answer.contains("a=recvonly"), "{}", r.answer);
    assert_eq!(
        r.media.remote_rtp,
        "10.0.0.5:17000".parse::<std::net::SocketAddr>().unwrap()
    );
    let r = s.on_reoffer(Some(&offer("inactive", "10.0.0.5"))).unwrap();
    assert!(r.answer.contains("a=inactive"));
    assert_eq!(r.browser_direction, Some(Direction::Inactive));
}

#[test]
fn a_browser_that_holds_is_sent_nothing_until_it_resumes() {
    let mut s = side();
    let hold = s.offer(Direction::SendOnly).unwrap();
    assert!(hold.contains("a=sendonly"), "{hold}");
    let held = s.on_answer(&offer("recvonly", "10.0.0.5")).unwrap();
    assert!(held.send_to_sip && !held.send_to_webrtc && held.held);
    // The SIP side's own re-offer meanwhile keeps the browser's hold.
    let r = s.on_reoffer(Some(&offer("sendrecv", "10.0.0.5"))).unwrap();
    assert!(!r.media.send_to_webrtc);
    s.offer(Direction::SendRecv).unwrap();
    let resumed = s.on_answer(&offer("sendrecv", "10.0.0.5")).unwrap();
    assert!(resumed.send_to_sip && resumed.send_to_webrtc && !resumed.held);
}

#[test]
fn a_refresh_without_sdp_changes_nothing_but_the_version() {
    let mut s = side();
    let r = s.on_reoffer(None).unwrap();
    assert!(r.answer.contains("a=sendrecv") && r.answer.contains(" 7 2 IN IP4"));
    assert_eq!(r.browser_direction, None);
}

#[test]
fn garbage_or_a_dropped_codec_is_refused() {
    let mut s = side();
    assert!(s.on_reoffer(Some("this is not SDP")).is_err());
    let pcma = offer("sendrecv", "10.0.0.5").replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    let err = s.on_reoffer(Some(&pcma)).unwrap_err();
    assert_eq!(err, SessionError::DropsCodec(0));
    assert!(err.to_string().contains("payload type 0"), "{err}");
    assert!(
        s.on_reoffer(None).unwrap().answer.contains(" 7 2 IN IP4"),
        "nothing changed"
    );
}

mod srtp;
