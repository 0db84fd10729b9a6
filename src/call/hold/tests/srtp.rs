//! Re-offers on an SRTP call: the peer's new key re-keys the relay,
//! siphon keeps its own, and SRTP cannot be dropped or change suite.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;
use crate::sdp::Crypto;
use crate::srtp::{MasterKey, SrtpProfile};

const SUITE: SrtpProfile = SrtpProfile::Aes128CmHmacSha1_80;

fn key(byte: u8) -> MasterKey {
    MasterKey::new(vec![byte; 30])
}

fn line(tag: u32, byte: u8) -> String {
    let k = STANDARD.encode([byte; 30]);
    format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n")
}

/// siphon's outbound offer: RTP/SAVP with two lines of its own (0x51, 0x52).
fn local() -> String {
    format!(
        "v=0\r\no=siphon 7 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 20000 RTP/SAVP 0 101\r\n{}{}a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        line(1, 0x51),
        line(2, 0x52)
    )
}

fn peer(direction: &str, crypto: &str) -> String {
    format!(
        "v=0\r\no=pbx 1 2 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
         m=audio 18000 RTP/SAVP 0 101\r\n{crypto}a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

fn srtp_side() -> SipSide {
    let session = SdesSession {
        local: Crypto {
            tag: 1,
            suite: SUITE,
            key: key(0x51),
        },
        remote: Crypto {
            tag: 1,
            suite: SUITE,
            key: key(0x10),
        },
    };
    let mut media = crate::media::test_media();
    media.srtp = Some(session.media());
    SipSide::new(local(), media, 0, Direction::SendRecv, Some(session))
}

fn crypto_lines(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("a=crypto:")).collect()
}

#[test]
fn a_new_peer_key_rekeys_and_siphon_keeps_its_own() {
    let mut s = srtp_side();
    let r = s
        .on_reoffer(Some(&peer("sendrecv", &line(3, 0x20))))
        .unwrap();
    assert_eq!(crypto_lines(&r.answer), [line(3, 0x51).trim_end()]);
    assert!(r.answer.contains("RTP/SAVP 0 101"), "{}", r.answer);
    let keys = r.media.srtp.expect("srtp");
    assert_eq!((keys.tx, keys.rx), (key(0x51), key(0x20)));

    // siphon's own re-INVITE (a browser hold) carries the same single line.
    let hold = s.offer(Direction::SendOnly).unwrap();
    assert_eq!(crypto_lines(&hold), [line(3, 0x51).trim_end()]);
    let held = s.on_answer(&peer("recvonly", &line(3, 0x30))).unwrap();
    assert_eq!(held.srtp.expect("srtp").rx, key(0x30));
}

#[test]
fn srtp_cannot_be_dropped_or_change_suite_mid_call() {
    let mut s = srtp_side();
    let plain = peer("sendrecv", "").replace("RTP/SAVP", "RTP/AVP");
    let err = s.on_reoffer(Some(&plain)).unwrap_err();
    assert_eq!(err, SessionError::Sdes(crate::call::SdesError::Dropped));
    let gcm = format!(
        "a=crypto:1 AEAD_AES_128_GCM inline:{}\r\n",
        STANDARD.encode([7u8; 28])
    );
    let err = s.on_reoffer(Some(&peer("sendrecv", &gcm))).unwrap_err();
    assert!(err.to_string().contains("suite"), "{err}");
    // Still the first session: an offerless refresh answers with its line.
    let r = s.on_reoffer(None).unwrap();
    assert_eq!(crypto_lines(&r.answer), [line(1, 0x51).trim_end()]);
    assert_eq!(r.media.srtp.expect("srtp").rx, key(0x10));
}

#[test]
fn a_plain_call_refuses_savp_and_strips_opportunistic_lines() {
    let osrtp = local().replace("RTP/SAVP", "RTP/AVP");
    let mut s = SipSide::new(
        osrtp,
        crate::media::test_media(),
        0,
        Direction::SendRecv,
        None,
    );
    assert!(s
        .on_reoffer(Some(&peer("sendrecv", &line(1, 0x20))))
        .is_err());
    let plain = peer("sendonly", "").replace("RTP/SAVP", "RTP/AVP");
    let r = s.on_reoffer(Some(&plain)).unwrap();
    assert!(crypto_lines(&r.answer).is_empty(), "{}", r.answer);
    assert!(r.media.srtp.is_none());
}
