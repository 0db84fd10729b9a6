//! Browser-calls-phone flows on the fixtures: offer, answer, media map.

use super::super::fixtures::*;
use super::super::{media_map, Direction, SdpError};
use super::*;

const ALL_CODECS: &[&str] = &["PCMA", "PCMU", "G722", "opus"];

fn sip_offer(browser: &str, codecs: &[&str]) -> (String, SipOfferPlan) {
    let offer = parse_webrtc_offer(browser).expect("browser offer");
    build_sip_offer(
        &offer,
        &sip_codecs(codecs),
        &sip_params("203.0.113.10:30000"),
    )
    .expect("sip offer")
}

fn answer_for(browser: &str, codecs: &[&str], sip_answer: &str) -> (WebRtcOffer, SipAnswer) {
    let offer = parse_webrtc_offer(browser).expect("browser offer");
    let (_, plan) = sip_offer(browser, codecs);
    let answer = parse_sip_answer(sip_answer, &plan, &[]).expect("sip answer");
    (offer, answer)
}

#[test]
fn sip_offer_uses_configured_order_and_browser_numbers() {
    let (sdp, plan) = sip_offer(CHROME_OFFER, ALL_CODECS);
    reparses(&sdp);
    let l = lines(&sdp);
    assert!(
        l.contains(&"m=audio 30000 RTP/AVP 8 0 9 111 110 126"),
        "{sdp}"
    );
    assert!(l.contains(&"c=IN IP4 203.0.113.10"));
    assert!(l.contains(&"o=siphon 42 1 IN IP4 203.0.113.10"));
    for line in [
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "a=fmtp:126 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ] {
        assert!(l.contains(&line), "missing {line} in {sdp}");
    }
    for absent in [
        "a=ice",
        "a=fingerprint",
        "a=setup",
        "a=extmap",
        "a=ssrc",
        "a=msid",
        "a=rtcp-fb",
        "a=mid",
        "a=group",
        "a=candidate",
        "a=rtpmap:63",
        "a=rtpmap:13",
        "m=video",
    ] {
        assert!(!has_line(&sdp, absent), "unexpected {absent} in {sdp}");
    }
    let browser: Vec<_> = plan
        .codecs
        .iter()
        .map(|c| (c.sip.pt, c.browser_pt))
        .collect();
    assert_eq!(
        browser,
        [(8, Some(8)), (0, Some(0)), (9, Some(9)), (111, Some(111))]
    );
}

#[test]
fn sip_offer_on_ipv6_and_case_insensitive_names() {
    let offer = parse_webrtc_offer(FIREFOX_OFFER).expect("offer");
    let p = sip_params("[2001:db8::10]:40000");
    let (sdp, plan) = build_sip_offer(&offer, &sip_codecs(&["pcmu", "OPUS"]), &p).expect("offer");
    reparses(&sdp);
    let l = lines(&sdp);
    assert!(l.contains(&"c=IN IP6 2001:db8::10"), "{sdp}");
    assert!(l.contains(&"o=siphon 42 1 IN IP6 2001:db8::10"));
    // Firefox has no telephone-event/48000, so only the 8000 one is offered.
    assert!(l.contains(&"m=audio 40000 RTP/AVP 0 109 101"), "{sdp}");
    assert_eq!(plan.telephone_events.len(), 1);
}

#[test]
fn wideband_event_only_with_opus() {
    let (sdp, _) = sip_offer(CHROME_OFFER, &["PCMU", "PCMA"]);
    assert!(
        lines(&sdp).contains(&"m=audio 30000 RTP/AVP 0 8 126"),
        "{sdp}"
    );
    assert!(!sdp.contains("telephone-event/48000"));
}

#[test]
fn gateway_adds_telephone_event_when_browser_has_none() {
    let browser = SAFARI_OFFER
        .replace(" 110 126\n", "\n")
        .replace("a=rtpmap:110 telephone-event/48000\n", "")
        .replace("a=rtpmap:126 telephone-event/8000\n", "");
    let (sdp, plan) = sip_offer(&browser, &["PCMU"]);
    assert!(
        lines(&sdp).contains(&"m=audio 30000 RTP/AVP 0 101"),
        "{sdp}"
    );
    assert!(has_line(&sdp, "a=fmtp:101 0-16"));
    assert_eq!(plan.telephone_events[0].browser_pt, None);
}

#[test]
fn sip_offer_mirrors_browser_direction() {
    let browser = SAFARI_OFFER.replace("a=sendrecv", "a=sendonly");
    let (sdp, _) = sip_offer(&browser, &["PCMU"]);
    assert!(has_line(&sdp, "a=sendonly"));
}

#[test]
fn no_common_codec_names_both_sides() {
    let offer = parse_webrtc_offer(CHROME_OFFER).expect("offer");
    let err = build_sip_offer(&offer, &sip_codecs(&["G729"]), &sip_params("10.0.0.1:4000"))
        .expect_err("nothing in common");
    assert_eq!(
        err.to_string(),
        "no common codec (offered: opus, red, G722, PCMU, PCMA, CN; supported: G729)"
    );
}

#[test]
fn asterisk_renumbers_telephone_event() {
    let (offer, a) = answer_for(CHROME_OFFER, ALL_CODECS, ASTERISK_ANSWER);
    assert_eq!(a.rtp_addr, addr("10.0.0.5:17654"));
    assert_eq!(
        (a.codec.pt, a.codec.name.as_str(), a.browser_pt),
        (0, "PCMU", 0)
    );
    let te = a.telephone_event.as_ref().expect("te");
    assert_eq!((te.pt, te.clock), (101, 8000));
    assert_eq!(
        (a.direction, a.rtcp_mux, a.ptime),
        (Direction::SendRecv, false, Some(20))
    );
    let map = media_map(&offer, &a);
    assert_eq!((map.browser_pt, map.sip_pt, map.clock_rate), (0, 0, 8000));
    assert_eq!(
        (map.browser_event_pt, map.sip_event_pt),
        (Some(126), Some(101))
    );
    assert_eq!(map.ptime, 20);
}

#[test]
fn freeswitch_renumbers_opus() {
    let (offer, a) = answer_for(CHROME_OFFER, &["opus", "PCMU"], FREESWITCH_ANSWER);
    assert_eq!((a.codec.pt, a.browser_pt, a.codec.clock), (102, 111, 48000));
    let map = media_map(&offer, &a);
    assert_eq!(
        (map.browser_pt, map.sip_pt, map.clock_rate),
        (111, 102, 48000)
    );
    assert_eq!(
        (map.browser_event_pt, map.sip_event_pt),
        (Some(110), Some(100))
    );
}

#[test]
fn desk_phone_with_session_connection() {
    let (offer, a) = answer_for(FIREFOX_OFFER, ALL_CODECS, YEALINK_ANSWER);
    assert_eq!(a.rtp_addr, addr("192.168.1.50:11796"));
    assert_eq!(
        (a.codec.name.as_str(), a.codec.pt, a.browser_pt),
        ("G722", 9, 9)
    );
    let map = media_map(&offer, &a);
    assert_eq!(
        (map.browser_event_pt, map.sip_event_pt),
        (Some(101), Some(101))
    );
}

#[test]
fn answer_without_rtpmap_for_static_and_kept_dynamic_pts() {
    let (_, plan) = sip_offer(CHROME_OFFER, &["opus", "PCMA"]);
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 126\r\n";
    let a = parse_sip_answer(sdp, &plan, &[]).expect("answer");
    assert_eq!(a.codec.name, "PCMA");
    assert_eq!(a.telephone_event.map(|t| t.pt), Some(126));
    assert_eq!(a.ptime, None);
}

#[test]
fn rejected_or_foreign_answers_are_no_common_codec() {
    let (_, plan) = sip_offer(CHROME_OFFER, ALL_CODECS);
    let port0 = ASTERISK_ANSWER.replace("m=audio 17654", "m=audio 0");
    assert!(matches!(
        parse_sip_answer(&port0, &plan, &[]),
        Err(SdpError::NoCommonCodec { .. })
    ));
    let g729 = ASTERISK_ANSWER
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    let err = parse_sip_answer(&g729, &plan, &[]).expect_err("g729 only");
    assert_eq!(
        err.to_string(),
        "no common codec (offered: G729; supported: PCMA, PCMU, G722, opus)"
    );
    assert!(matches!(
        parse_sip_answer("garbage", &plan, &[]),
        Err(SdpError::Malformed(_))
    ));
    let no_c = ASTERISK_ANSWER.replace("c=IN IP4 10.0.0.5\n", "");
    assert_eq!(
        parse_sip_answer(&no_c, &plan, &[]),
        Err(SdpError::MissingConnection)
    );
}

#[test]
fn zero_address_answer_is_hold() {
    let (_, plan) = sip_offer(CHROME_OFFER, ALL_CODECS);
    let held = ASTERISK_ANSWER.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
    let a = parse_sip_answer(&held, &plan, &[]).expect("answer");
    assert_eq!(a.direction, Direction::SendOnly);
}

fn webrtc_answer(browser: &str, codecs: &[&str], sip_answer: &str) -> String {
    let (offer, a) = answer_for(browser, codecs, sip_answer);
    let sdp = build_webrtc_answer(&offer, &a, &webrtc_params()).expect("webrtc answer");
    reparses(&sdp);
    sdp
}

#[test]
fn chrome_answer_accepts_audio_and_rejects_video() {
    let sdp = webrtc_answer(CHROME_OFFER, &["opus", "PCMU"], FREESWITCH_ANSWER);
    let l = lines(&sdp);
    let mlines: Vec<_> = l.iter().filter(|x| x.starts_with("m=")).collect();
    assert_eq!(
        mlines,
        [
            &"m=audio 3478 UDP/TLS/RTP/SAVPF 111 110",
            &"m=video 0 UDP/TLS/RTP/SAVPF 96 97 102 103"
        ],
        "{sdp}"
    );
    for line in [
        "a=ice-lite",
        "a=group:BUNDLE 0",
        "c=IN IP4 203.0.113.1",
        "a=candidate:1 1 udp 2130706431 203.0.113.1 3478 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:gw01",
        "a=ice-pwd:gatewaypassword0123456789",
        "a=setup:passive",
        "a=mid:0",
        "a=mid:1",
        "c=IN IP4 0.0.0.0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:110 telephone-event/48000",
        "a=ssrc:123456789 cname:siphon",
        "a=msid:siphon-stream siphon-audio",
    ] {
        assert!(l.contains(&line), "missing {line} in {sdp}");
    }
    assert!(has_line(&sdp, "a=fingerprint:sha-256 AA:BB:CC"));
    // ice-lite belongs to the session, before the first m-line.
    let first_m = l.iter().position(|x| x.starts_with("m=")).unwrap_or(0);
    assert!(l[..first_m].contains(&"a=ice-lite"));
    for absent in [
        "a=rtpmap:0 ",
        "a=rtpmap:63",
        "a=rtpmap:126",
        "a=extmap",
        "a=rtcp-mux-only",
    ] {
        assert!(!has_line(&sdp, absent), "unexpected {absent} in {sdp}");
    }
}

#[test]
fn answer_uses_browser_numbers_after_renumbering() {
    let sdp = webrtc_answer(CHROME_OFFER, ALL_CODECS, ASTERISK_ANSWER);
    let l = lines(&sdp);
    assert!(l.contains(&"m=audio 3478 UDP/TLS/RTP/SAVPF 0 126"), "{sdp}");
    assert!(l.contains(&"a=rtpmap:126 telephone-event/8000"));
}

#[test]
fn answer_reparses_as_a_webrtc_description() {
    for (browser, sip) in [
        (CHROME_OFFER, ASTERISK_ANSWER),
        (FIREFOX_OFFER, YEALINK_ANSWER),
        (SAFARI_OFFER, FREESWITCH_ANSWER),
    ] {
        let sdp = webrtc_answer(browser, ALL_CODECS, sip);
        // As an offer, passive is refused; the rest must read back as sent.
        assert!(sdp.contains("\r\na=setup:passive\r\n"), "{sdp}");
        let as_offer = sdp.replace("a=setup:passive", "a=setup:actpass");
        let back = parse_webrtc_offer(&as_offer).expect("our answer parses as WebRTC SDP");
        assert_eq!(back.codecs.len(), 1);
        assert_eq!(back.candidates.len(), 1);
        assert_eq!(back.ssrc, Some(123456789));
    }
}

#[test]
fn answer_mirrors_direction() {
    use Direction::*;
    let cases = [
        ("sendrecv", "sendrecv", "a=sendrecv"),
        ("sendonly", "sendrecv", "a=recvonly"),
        ("recvonly", "sendrecv", "a=sendonly"),
        ("inactive", "sendrecv", "a=inactive"),
        ("sendrecv", "sendonly", "a=sendonly"),
        ("sendrecv", "recvonly", "a=recvonly"),
        ("sendonly", "sendonly", "a=inactive"),
    ];
    for (browser_dir, sip_dir, expected) in cases {
        let browser = SAFARI_OFFER.replace("a=sendrecv", &format!("a={browser_dir}"));
        let sip = ASTERISK_ANSWER.replace("a=sendrecv", &format!("a={sip_dir}"));
        let sdp = webrtc_answer(&browser, ALL_CODECS, &sip);
        assert!(has_line(&sdp, expected), "{browser_dir}/{sip_dir}: {sdp}");
        let dirs = [SendRecv, SendOnly, RecvOnly, Inactive];
        let count = dirs
            .iter()
            .filter(|d| has_line(&sdp, &format!("a={}", d.as_str())))
            .count();
        assert_eq!(count, 1, "one direction line");
    }
}

#[test]
fn passive_browser_is_refused() {
    let browser = SAFARI_OFFER.replace("a=setup:actpass", "a=setup:passive");
    assert_eq!(
        parse_webrtc_offer(&browser),
        Err(SdpError::UnsupportedSetup("passive".to_owned()))
    );
    let (mut offer, a) = answer_for(SAFARI_OFFER, ALL_CODECS, ASTERISK_ANSWER);
    offer.setup = super::super::Setup::Passive;
    assert_eq!(
        build_webrtc_answer(&offer, &a, &webrtc_params()),
        Err(SdpError::UnsupportedSetup("passive".to_owned()))
    );
}

#[test]
fn ipv6_candidate() {
    let (offer, a) = answer_for(FIREFOX_OFFER, ALL_CODECS, ASTERISK_ANSWER);
    let mut p = webrtc_params();
    p.candidate = addr("[2001:db8::1]:3478");
    let sdp = build_webrtc_answer(&offer, &a, &p).expect("answer");
    reparses(&sdp);
    assert!(has_line(&sdp, "c=IN IP6 2001:db8::1"));
    assert!(has_line(
        &sdp,
        "a=candidate:1 1 udp 2130706431 2001:db8::1 3478 typ host"
    ));
}

#[test]
fn opus_calls_whose_sip_side_has_only_8k_events_convert_the_browsers_48k_ones() {
    // FreeSWITCH with opus but telephone-event only at 8 kHz.
    let answer = FREESWITCH_ANSWER.replace("telephone-event/48000", "telephone-event/8000");
    let (offer, a) = answer_for(CHROME_OFFER, &["opus", "PCMU"], &answer);
    let map = media_map(&offer, &a);
    assert_eq!((map.clock_rate, map.sip_dtmf), (48000, Some((100, 8000))));
    assert_eq!(map.browser_dtmf_convert, Some((110, 48000)));
    // Same clocks on both sides: nothing to convert.
    let (offer, a) = answer_for(CHROME_OFFER, &["opus", "PCMU"], FREESWITCH_ANSWER);
    assert_eq!(media_map(&offer, &a).browser_dtmf_convert, None);
    // No telephone-event at the SIP side: the browser's keys go as INFO.
    let answer = FREESWITCH_ANSWER
        .replace("RTP/AVP 102 100", "RTP/AVP 102")
        .replace("a=rtpmap:100 telephone-event/48000\r\n", "");
    let (offer, a) = answer_for(CHROME_OFFER, &["opus", "PCMU"], &answer);
    let map = media_map(&offer, &a);
    assert_eq!(
        (map.sip_dtmf, map.browser_dtmf_convert),
        (None, Some((110, 48000)))
    );
}
