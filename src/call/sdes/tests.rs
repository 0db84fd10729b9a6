//! The SDES policy: what each mode offers, takes and refuses.

use super::*;
use crate::sdp::{parse_sip_offer, SdpError};
use crate::srtp::{MasterKey, SrtpProfile};

fn line(tag: u32, suite: SrtpProfile, byte: u8) -> Crypto {
    let len = crate::sdp::key_len(suite);
    Crypto {
        tag,
        suite,
        key: MasterKey::new(vec![byte; len]),
    }
}

/// siphon's own keys: one per suite, filled with 0x51.
fn ours() -> Vec<Crypto> {
    let suites = [
        SrtpProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
    ];
    (1..).zip(suites).map(|(t, s)| line(t, s, 0x51)).collect()
}

fn offer(proto: &str, crypto: &[&str]) -> SipOffer {
    let mut sdp = format!(
        "v=0\r\no=pbx 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
         m=audio 18000 {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    for c in crypto {
        sdp.push_str(&format!("a=crypto:{c}\r\n"));
    }
    parse_sip_offer(&sdp).expect("offer")
}

const SHA1_32: &str = "7 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const SHA1_80: &str = "3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

#[test]
fn offers_follow_the_mode() {
    assert_eq!(offer_of(SrtpMode::Off), (false, 0));
    assert_eq!(offer_of(SrtpMode::Offer), (false, 3));
    assert_eq!(offer_of(SrtpMode::Require), (true, 3));
}

fn offer_of(mode: SrtpMode) -> (bool, usize) {
    let (savp, lines) = super::offer(mode, &ours());
    (savp, lines.len())
}

#[test]
fn an_savp_offer_is_answered_with_our_key_under_its_tag() {
    for mode in [SrtpMode::Offer, SrtpMode::Require] {
        let o = offer("RTP/SAVP", &[SHA1_32, SHA1_80]);
        let s = accept_offer(mode, &ours(), &o, false)
            .expect("accepted")
            .expect("srtp");
        assert_eq!(s.local.tag, 7, "the offerer's first choice");
        assert_eq!(s.local.suite, SrtpProfile::Aes128CmHmacSha1_32);
        assert_eq!(s.local.key, ours()[1].key);
        let keys = s.media();
        assert_eq!(
            (keys.tx, keys.rx),
            (ours()[1].key.clone(), o.crypto[0].key.clone())
        );
    }
}

#[test]
fn refusals_are_488_reasons() {
    let plain = offer("RTP/AVP", &[]);
    let err = accept_offer(SrtpMode::Require, &ours(), &plain, false).unwrap_err();
    assert_eq!(err, SdesError::RequiredButOfferedPlain);
    assert!(err.to_string().contains("SRTP is required"), "{err}");
    let savp = offer("RTP/SAVP", &[SHA1_80]);
    let err = accept_offer(SrtpMode::Off, &[], &savp, false).unwrap_err();
    assert_eq!(err, SdesError::Off);
    let err = accept_offer(SrtpMode::Offer, &ours(), &savp, true).unwrap_err();
    assert_eq!(err, SdesError::PlainSignaling);
    let key = crate::config::ALLOW_INSECURE_KEY;
    assert!(err.to_string().contains(key), "{err}");
    let err = accept_offer(
        SrtpMode::Require,
        &ours(),
        &offer("RTP/AVP", &[SHA1_80]),
        true,
    );
    assert!(err.is_err(), "require over plain signaling");
}

#[test]
fn opportunistic_offers_fall_back_to_plain() {
    let osrtp = offer("RTP/AVP", &[SHA1_80]);
    assert_eq!(accept_offer(SrtpMode::Off, &[], &osrtp, false), Ok(None));
    assert_eq!(
        accept_offer(SrtpMode::Offer, &ours(), &osrtp, true),
        Ok(None)
    );
    let s = accept_offer(SrtpMode::Offer, &ours(), &osrtp, false).expect("ok");
    assert_eq!(s.map(|s| s.local.tag), Some(3));
    let plain = offer("RTP/AVP", &[]);
    assert_eq!(
        accept_offer(SrtpMode::Offer, &ours(), &plain, false),
        Ok(None)
    );
}

#[test]
fn answers_pick_our_line_or_fail_when_required() {
    let mut answer = crate::sdp::SipAnswer {
        rtp_addr: "10.0.0.5:18000".parse().unwrap(),
        codec: crate::sdp::Codec::new(0, "PCMU", 8000, 1),
        browser_pt: 0,
        telephone_event: None,
        direction: crate::sdp::Direction::SendRecv,
        rtcp_mux: false,
        ptime: None,
        crypto: None,
    };
    assert_eq!(answered(SrtpMode::Offer, &ours(), &answer), Ok(None));
    let err = answered(SrtpMode::Require, &ours(), &answer).unwrap_err();
    assert_eq!(err, SdesError::RequiredButAnsweredPlain);
    answer.crypto = Some(line(2, SrtpProfile::Aes128CmHmacSha1_32, 0x77));
    let s = answered(SrtpMode::Require, &ours(), &answer)
        .unwrap()
        .unwrap();
    assert_eq!(s.local, ours()[1]);
    assert_eq!(s.remote.key, MasterKey::new(vec![0x77; 30]));
}

#[test]
fn a_rekey_keeps_the_suite_and_takes_the_new_key() {
    let s = SdesSession {
        local: line(1, SrtpProfile::Aes128CmHmacSha1_80, 0x51),
        remote: line(1, SrtpProfile::Aes128CmHmacSha1_80, 0x10),
    };
    let next = s
        .rekey(&[line(4, SrtpProfile::Aes128CmHmacSha1_80, 0x20)])
        .expect("rekey");
    assert_eq!((next.local.tag, next.remote.tag), (4, 4));
    assert_eq!(next.local.key, s.local.key, "siphon keeps its key");
    assert_eq!(next.remote.key, MasterKey::new(vec![0x20; 30]));
    assert_eq!(s.rekey(&[]), Err(SdesError::Dropped));
    let other = [line(1, SrtpProfile::AeadAes128Gcm, 1)];
    let changed = SdesError::SuiteChanged("AES_CM_128_HMAC_SHA1_80");
    assert_eq!(s.rekey(&other), Err(changed));
}

#[test]
fn malformed_crypto_is_an_sdp_error() {
    let sdp = "v=0\r\no=pbx 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
               m=audio 18000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@@\r\n";
    assert!(matches!(
        parse_sip_offer(sdp),
        Err(SdpError::InvalidAttribute { .. })
    ));
}
