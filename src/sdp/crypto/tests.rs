//! `a=crypto` lines as phones and PBXs write them, and the broken ones.

use sdp_types::Media;

use super::super::fixtures::SRTP_OFFER;
use super::super::{parse_sip_offer, SdpError};
use super::*;

/// 30 bytes: AES_CM_128 key and salt.
const KEY30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
/// 28 bytes: AEAD_AES_128_GCM key and salt, padded.
const KEY28: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==";

fn media(lines: &[&str]) -> Media {
    let mut sdp = String::from(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
         m=audio 18142 RTP/SAVP 0\r\n",
    );
    for l in lines {
        sdp.push_str(&format!("a=crypto:{l}\r\n"));
    }
    let session = sdp_types::Session::parse(sdp.as_bytes()).expect("sdp");
    session.medias.into_iter().next().expect("media")
}

fn read(lines: &[&str]) -> Result<Vec<Crypto>, SdpError> {
    read_media(&media(lines))
}

#[test]
fn supported_suites_are_read_in_order() {
    let got = read(&[
        &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"),
        &format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}|2^31"),
        &format!("3 AEAD_AES_128_GCM inline:{KEY28}"),
        &format!("4 AEAD_AES_128_GCM inline:{}", KEY28.trim_end_matches('=')),
    ])
    .expect("lines");
    let seen: Vec<_> = got.iter().map(|c| (c.tag, c.suite)).collect();
    assert_eq!(
        seen,
        [
            (1, SrtpProfile::Aes128CmHmacSha1_80),
            (2, SrtpProfile::Aes128CmHmacSha1_32),
            (3, SrtpProfile::AeadAes128Gcm),
            (4, SrtpProfile::AeadAes128Gcm),
        ]
    );
    assert_eq!(got[0].key.expose().len(), 30);
    assert_eq!(got[2].key, got[3].key, "padding is optional on input");
    assert!(read(&[]).expect("none").is_empty());
}

#[test]
fn malformed_keys_are_errors() {
    for bad in [
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!",
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
        "1 AES_CM_128_HMAC_SHA1_80",
        "x AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "1 AES_CM_128_HMAC_SHA1_80 key:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    ] {
        let err = read(&[bad]).expect_err(bad);
        assert!(
            matches!(err, SdpError::InvalidAttribute { ref name, .. } if name == "crypto"),
            "{bad}: {err}"
        );
        let shown = err.to_string();
        assert!(
            !shown.contains("WVNf") && !shown.contains("AAEC"),
            "key in {shown}"
        );
    }
    let err = read(&[&format!("1 AEAD_AES_128_GCM inline:{KEY30}")]).unwrap_err();
    assert!(
        err.to_string().contains("a 30-byte key, expected 28"),
        "{err}"
    );
}

#[test]
fn unsupported_lines_are_skipped_and_alone_refused() {
    for (line, why) in [
        (
            format!("1 F8_128_HMAC_SHA1_80 inline:{KEY30}"),
            "unknown crypto suite",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20"),
            "lifetime",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1:4"),
            "MKI",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^31|1:4"),
            "MKI",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNENCRYPTED_SRTP"),
            "UNENCRYPTED_SRTP",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} KDR=24"),
            "KDR",
        ),
    ] {
        let err = read(&[&line]).expect_err(&line);
        assert!(
            matches!(err, SdpError::CryptoRefused(ref r) if r.to_string().contains(why)),
            "{line}: {err}"
        );
        let good = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY30} WSH=64");
        let got = read(&[&line, &good]).expect("one good line");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].tag, 2);
    }
}

#[test]
fn written_lines_read_back() {
    let lines: Vec<Crypto> = (1..)
        .zip(OFFERED_SUITES)
        .map(|(tag, suite)| Crypto {
            tag,
            suite,
            key: MasterKey::new((0..key_len(suite) as u8).collect()),
        })
        .collect();
    let mut m = media(&[&format!("9 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}")]);
    replace(&mut m, &lines);
    assert_eq!(read_media(&m).expect("read back"), lines);
    assert!(value(&lines[2]).ends_with("=="), "{}", value(&lines[2]));
}

#[test]
fn asterisk_savp_offer_is_parsed_and_its_key_never_printed() {
    let offer = parse_sip_offer(SRTP_OFFER).expect("srtp offer");
    assert!(offer.savp);
    assert_eq!(offer.crypto.len(), 1);
    assert_eq!(offer.crypto[0].suite, SrtpProfile::Aes128CmHmacSha1_80);
    let shown = format!("{offer:?}");
    assert!(!shown.contains(&KEY30[..12]), "{shown}");
    assert!(!shown.contains("89, 83"), "{shown}");
    let bare = SRTP_OFFER.replace(
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}\n"),
        "",
    );
    assert_eq!(bare.lines().count() + 1, SRTP_OFFER.lines().count());
    assert!(matches!(
        parse_sip_offer(&bare),
        Err(SdpError::CryptoRefused(_))
    ));
}

#[test]
fn refusals_read_as_before() {
    let shown = |why: CryptoRefusal| SdpError::from(why).to_string();
    assert_eq!(
        shown(CryptoRefusal::UnknownSuite("F8_128_HMAC_SHA1_80".into())),
        "no supported a=crypto line: unknown crypto suite F8_128_HMAC_SHA1_80"
    );
    assert_eq!(
        shown(CryptoRefusal::SavpWithoutCrypto),
        "no supported a=crypto line: RTP/SAVP without a=crypto"
    );
    assert_eq!(
        shown(CryptoRefusal::UnofferedTag {
            tag: 3,
            suite: SrtpProfile::AeadAes128Gcm
        }),
        "no supported a=crypto line: the answer's a=crypto tag 3 (AEAD_AES_128_GCM) \
         matches no offered line"
    );
    assert_eq!(
        CryptoRefusal::Lifetime("2^20".into()).to_string(),
        "key lifetime 2^20 is not supported"
    );
    assert_eq!(
        CryptoRefusal::SessionParameter("KDR=24".into()).to_string(),
        "session parameter KDR=24 is not supported"
    );
}
