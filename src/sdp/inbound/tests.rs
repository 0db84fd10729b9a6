//! Phone-calls-browser flows on the fixtures: offer, answer, media map.

use super::super::fixtures::*;
use super::super::{media_map_inbound, Direction, SdpError, Setup};
use super::*;

fn browser_codecs() -> Vec<String> {
    sip_codecs(&["opus", "G722", "PCMU", "PCMA"])
}

fn webrtc_offer(sip: &str) -> (SipOffer, String, WebRtcOfferPlan) {
    let offer = parse_sip_offer(sip).expect("sip offer");
    let (sdp, plan) =
        build_webrtc_offer(&offer, &browser_codecs(), &webrtc_params()).expect("webrtc offer");
    reparses(&sdp);
    (offer, sdp, plan)
}

fn answered(sip: &str, browser: &str) -> (SipOffer, WebRtcAnswer) {
    let (offer, _, plan) = webrtc_offer(sip);
    let answer = parse_webrtc_answer(browser, &plan).expect("browser answer");
    (offer, answer)
}

#[test]
fn parses_pbx_and_phone_offers() {
    let a = parse_sip_offer(&crlf(ASTERISK_OFFER)).expect("asterisk");
    assert_eq!(a.rtp_addr, addr("10.0.0.5:18140"));
    let names: Vec<_> = a.codecs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["PCMU", "PCMA", "G722", "G729"]);
    assert_eq!(a.telephone_events[0].pt, 101);
    assert_eq!((a.ptime, a.direction), (Some(20), Direction::SendRecv));
    // Polycom style: static PTs without rtpmap, direction at session level.
    let p = parse_sip_offer(POLYCOM_OFFER).expect("polycom");
    let pts: Vec<_> = p.codecs.iter().map(|c| (c.pt, c.name.as_str())).collect();
    assert_eq!(pts, [(9, "G722"), (0, "PCMU"), (8, "PCMA")]);
    assert_eq!(p.telephone_events[0].pt, 127);
    let f = parse_sip_offer(FREESWITCH_OFFER).expect("freeswitch");
    assert_eq!(f.mlines.len(), 2);
}

#[test]
fn dtls_srtp_and_bad_offers_are_refused() {
    let dtls = ASTERISK_OFFER.replace("RTP/AVP", "UDP/TLS/RTP/SAVP");
    let err = parse_sip_offer(&dtls).expect_err("dtls-srtp");
    assert_eq!(
        err.to_string(),
        "unsupported transport profile UDP/TLS/RTP/SAVP (expected RTP/AVP or RTP/SAVP)"
    );
    let port0 = ASTERISK_OFFER.replace("m=audio 18140", "m=audio 0");
    assert_eq!(parse_sip_offer(&port0), Err(SdpError::NoAudio));
    let bad_c = ASTERISK_OFFER.replace("c=IN IP4 10.0.0.5", "c=IN IP4 pbx.example.com");
    assert!(matches!(
        parse_sip_offer(&bad_c),
        Err(SdpError::InvalidAddress(_))
    ));
    assert!(matches!(
        parse_sip_offer("v=0\r\nm="),
        Err(SdpError::Malformed(_))
    ));
    for cut in 0..FREESWITCH_OFFER.len() {
        let _ = parse_sip_offer(&FREESWITCH_OFFER[..cut]);
    }
}

#[test]
fn webrtc_offer_keeps_sip_numbers_and_order() {
    let (_, sdp, plan) = webrtc_offer(FREESWITCH_OFFER);
    let l = lines(&sdp);
    // CN is not for browsers; video is not offered to them at all.
    assert!(
        l.contains(&"m=audio 3478 UDP/TLS/RTP/SAVPF 102 9 0 8 101"),
        "{sdp}"
    );
    assert!(!has_line(&sdp, "m=video"));
    for line in [
        "a=ice-lite",
        "a=group:BUNDLE 0",
        "a=setup:actpass",
        "a=mid:0",
        "a=rtcp-mux",
        "a=sendrecv",
        "a=end-of-candidates",
        "a=candidate:1 1 udp 2130706431 203.0.113.1 3478 typ host",
        "a=rtpmap:102 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=ssrc:123456789 cname:siphon",
    ] {
        assert!(l.contains(&line), "missing {line} in {sdp}");
    }
    assert!(has_line(&sdp, "a=fingerprint:sha-256 AA:BB"));
    assert_eq!(plan.codecs.len(), 4);
    // Our offer is itself a valid WebRTC description.
    let back = super::super::parse_webrtc_offer(&sdp).expect("re-parse");
    assert_eq!(back.setup, Setup::ActPass);
}

#[test]
fn webrtc_offer_drops_codecs_browsers_cannot_decode() {
    let (_, sdp, _) = webrtc_offer(ASTERISK_OFFER);
    assert!(
        lines(&sdp).contains(&"m=audio 3478 UDP/TLS/RTP/SAVPF 0 8 9 101"),
        "{sdp}"
    );
    let g729 = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let offer = parse_sip_offer(g729).expect("g729 offer");
    let err = build_webrtc_offer(
        &offer,
        &sip_codecs(&["opus", "G729", "PCMU"]),
        &webrtc_params(),
    )
    .expect_err("no browser codec");
    assert_eq!(
        err.to_string(),
        "no common codec (offered: G729; supported: opus, PCMU)"
    );
}

#[test]
fn webrtc_offer_mirrors_hold() {
    let held = ASTERISK_OFFER.replace("a=sendrecv", "a=sendonly");
    let (_, sdp, _) = webrtc_offer(&held);
    assert!(has_line(&sdp, "a=sendonly"));
    let zero = ASTERISK_OFFER.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
    let (_, sdp, _) = webrtc_offer(&zero);
    assert!(has_line(&sdp, "a=sendonly"), "c=0.0.0.0 is hold: {sdp}");
}

#[test]
fn chrome_answer_to_freeswitch() {
    let (offer, answer) = answered(FREESWITCH_OFFER, CHROME_ANSWER);
    assert_eq!(
        (answer.codec.pt, answer.sip_pt, answer.codec.clock),
        (102, 102, 48000)
    );
    assert_eq!(answer.setup, Setup::Active);
    assert_eq!(answer.ice.ufrag, "Xq1b");
    assert!(answer.candidates.is_empty());
    let map = media_map_inbound(&offer, &answer);
    assert_eq!(
        (map.browser_pt, map.sip_pt, map.clock_rate, map.ptime),
        (102, 102, 48000, 20)
    );
    assert_eq!(
        (map.browser_event_pt, map.sip_event_pt),
        (Some(101), Some(101))
    );

    let sdp = build_sip_answer(&offer, &answer, &sip_params("203.0.113.10:30002"));
    reparses(&sdp);
    let l = lines(&sdp);
    let mlines: Vec<_> = l.iter().filter(|x| x.starts_with("m=")).collect();
    assert_eq!(
        mlines,
        [&"m=audio 30002 RTP/AVP 102 101", &"m=video 0 RTP/AVP 96"],
        "{sdp}"
    );
    for line in [
        "c=IN IP4 203.0.113.10",
        "a=rtpmap:102 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ] {
        assert!(l.contains(&line), "missing {line} in {sdp}");
    }
    // The SIP side keeps its own opus parameters.
    assert!(has_line(
        &sdp,
        "a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000"
    ));
    for absent in [
        "a=ice",
        "a=fingerprint",
        "a=setup",
        "a=candidate",
        "a=ssrc",
        "a=mid",
    ] {
        assert!(!has_line(&sdp, absent), "unexpected {absent} in {sdp}");
    }
}

#[test]
fn firefox_answer_to_asterisk() {
    let (offer, answer) = answered(ASTERISK_OFFER, FIREFOX_ANSWER);
    assert_eq!((answer.codec.name.as_str(), answer.sip_pt), ("PCMU", 0));
    assert!(answer.fingerprint.value.starts_with("0C:4B"));
    assert_eq!(answer.candidates.len(), 1);
    let sdp = build_sip_answer(&offer, &answer, &sip_params("[2001:db8::10]:30004"));
    reparses(&sdp);
    assert!(
        lines(&sdp).contains(&"m=audio 30004 RTP/AVP 0 101"),
        "{sdp}"
    );
    assert!(has_line(&sdp, "c=IN IP6 2001:db8::10"));
}

#[test]
fn sip_answer_mirrors_direction() {
    let cases = [
        ("sendrecv", "sendrecv", "a=sendrecv"),
        ("sendonly", "recvonly", "a=recvonly"),
        ("recvonly", "sendonly", "a=sendonly"),
        ("sendrecv", "recvonly", "a=recvonly"),
        ("inactive", "inactive", "a=inactive"),
    ];
    for (sip_dir, browser_dir, expected) in cases {
        let sip = ASTERISK_OFFER.replace("a=sendrecv", &format!("a={sip_dir}"));
        let browser = FIREFOX_ANSWER.replace("a=sendrecv", &format!("a={browser_dir}"));
        let (offer, answer) = answered(&sip, &browser);
        let sdp = build_sip_answer(&offer, &answer, &sip_params("10.0.0.1:4000"));
        assert!(has_line(&sdp, expected), "{sip_dir}/{browser_dir}: {sdp}");
    }
}

#[test]
fn bad_browser_answers() {
    let (_, _, plan) = webrtc_offer(ASTERISK_OFFER);
    let rejected = FIREFOX_ANSWER.replace("m=audio 51972", "m=audio 0");
    assert!(matches!(
        parse_webrtc_answer(&rejected, &plan),
        Err(SdpError::NoCommonCodec { .. })
    ));
    let actpass = FIREFOX_ANSWER.replace("a=setup:active", "a=setup:actpass");
    assert_eq!(
        parse_webrtc_answer(&actpass, &plan),
        Err(SdpError::UnsupportedSetup("actpass".to_owned()))
    );
    let no_ice = FIREFOX_ANSWER.replace("a=ice-ufrag:4d5e6f70\n", "");
    assert_eq!(
        parse_webrtc_answer(&no_ice, &plan),
        Err(SdpError::MissingIceCredentials)
    );
    assert!(matches!(
        parse_webrtc_answer("x", &plan),
        Err(SdpError::Malformed(_))
    ));
}

#[test]
fn answer_without_events_maps_none() {
    let (offer, answer) = answered(ASTERISK_OFFER, &FIREFOX_ANSWER.replace(" 9 101\n", " 9\n"));
    assert_eq!(answer.telephone_event, None);
    let map = media_map_inbound(&offer, &answer);
    assert_eq!((map.browser_event_pt, map.sip_event_pt), (None, None));
    let sdp = build_sip_answer(&offer, &answer, &sip_params("10.0.0.1:4000"));
    assert!(lines(&sdp).contains(&"m=audio 4000 RTP/AVP 0"), "{sdp}");
}
