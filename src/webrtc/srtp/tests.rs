use rtc_shared::marshal::MarshalSize;
use rtc_srtp::context::Context;

use super::*;

const PROFILES: [SrtpProfile; 3] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];

fn pair(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let provider = rtc_srtp::crypto::default_provider().expect("provider");
    let material: Vec<u8> = (0..(profile.key_len() + profile.salt_len()) as u8).collect();
    let tx = SrtpContext::new(profile, &material, provider.crypto()).expect("tx");
    let rx = SrtpContext::new(profile, &material, provider.crypto()).expect("rx");
    (tx, rx)
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[7u8; 40]);
    p
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    // Empty receiver report: V=2, RC=0, PT=201, length=1 word.
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 64, 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
    buf.truncate(n);
    buf
}

#[test]
fn rtp_round_trip_in_place_every_profile() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let plain = rtp(1, 0x1111);
        let mut buf = protect(&mut tx, &plain);
        assert_eq!(buf.len(), plain.len() + profile.rtp_overhead());
        assert_ne!(&buf[12..plain.len()], &plain[12..]);
        let len = buf.len();
        let n = rx.unprotect_rtp(&mut buf, len).expect("unprotect");
        assert_eq!(&buf[..n], &plain[..], "{profile:?}");
    }
}

#[test]
fn rtcp_round_trip_in_place_every_profile() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let plain = rtcp_rr(0x2222);
        let mut buf = plain.clone();
        buf.resize(100, 0);
        let n = tx.protect_rtcp(&mut buf, plain.len()).expect("protect");
        assert_eq!(n, plain.len() + profile.rtcp_overhead());
        let n = rx.unprotect_rtcp(&mut buf, n).expect("unprotect");
        assert_eq!(&buf[..n], &plain[..], "{profile:?}");
    }
}

#[test]
fn tampered_is_auth_and_replayed_is_replay() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let wire = protect(&mut tx, &rtp(5, 0x3333));
        let mut bad = wire.clone();
        bad[20] ^= 1;
        let n = bad.len();
        assert_eq!(rx.unprotect_rtp(&mut bad, n), Err(DropReason::SrtpAuth));
        let mut ok = wire.clone();
        assert!(rx.unprotect_rtp(&mut ok, n).is_ok());
        let mut again = wire.clone();
        assert_eq!(rx.unprotect_rtp(&mut again, n), Err(DropReason::SrtpReplay));
    }
}

#[test]
fn protect_needs_room_and_a_header() {
    let (mut tx, _) = pair(SrtpProfile::Aes128CmHmacSha1_80);
    let plain = rtp(1, 1);
    let mut exact = plain.clone();
    let n = plain.len();
    assert_eq!(
        tx.protect_rtp(&mut exact, n),
        Err(SendError::BufferTooSmall)
    );
    let mut short = vec![0x80u8; 64];
    assert_eq!(tx.protect_rtp(&mut short, 5), Err(SendError::Malformed));
    assert_eq!(tx.protect_rtp(&mut short, 65), Err(SendError::Malformed));
    assert_eq!(tx.protect_rtcp(&mut short, 4), Err(SendError::Malformed));
}

#[test]
fn short_and_garbage_input_is_dropped() {
    for profile in PROFILES {
        let (_, mut rx) = pair(profile);
        for len in 0..64 {
            let mut buf = vec![0x80u8; 64];
            assert!(rx.unprotect_rtp(&mut buf, len).is_err());
            assert!(rx.unprotect_rtcp(&mut buf, len).is_err());
        }
        let mut buf = vec![0u8; 8];
        assert_eq!(
            rx.unprotect_rtp(&mut buf, 100),
            Err(DropReason::SrtpMalformed)
        );
    }
}

#[test]
fn forged_ssrcs_exhaust_a_budget_but_known_ones_still_work() {
    let (mut tx, mut rx) = pair(SrtpProfile::AeadAes128Gcm);
    let mut good = protect(&mut tx, &rtp(1, 0xabc));
    let n = good.len();
    assert!(rx.unprotect_rtp(&mut good, n).is_ok());
    for ssrc in 0..STRANGER_BUDGET + 10 {
        let mut forged = rtp(1, 0x10_0000 + ssrc);
        forged.extend_from_slice(&[0u8; 16]);
        let n = forged.len();
        assert_eq!(rx.unprotect_rtp(&mut forged, n), Err(DropReason::SrtpAuth));
    }
    assert_eq!(rx.strangers_left, 0);
    let mut next = protect(&mut tx, &rtp(2, 0xabc));
    let n = next.len();
    assert!(rx.unprotect_rtp(&mut next, n).is_ok());
}

#[test]
fn keying_material_split_follows_rfc5764() {
    let p = SrtpProfile::Aes128CmHmacSha1_80;
    let m: Vec<u8> = (0..60).collect();
    let (client, server) = p.split_keying_material(&m).expect("split");
    assert_eq!(&client[..16], &m[0..16]);
    assert_eq!(&server[..16], &m[16..32]);
    assert_eq!(&client[16..], &m[32..46]);
    assert_eq!(&server[16..], &m[46..60]);
    assert!(p.split_keying_material(&m[..59]).is_none());
}

/// RTP with 2 CSRCs and a one-byte extension block holding 3 elements.
fn rtp_with_csrcs_and_extensions(seq: u16) -> Vec<u8> {
    let mut p = vec![0x92, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0x44, 0x44, 0, 0, 0, 7, 0, 0, 0, 8]);
    p.extend_from_slice(&[
        0xbe, 0xde, 0, 3, 0x10, 0xff, 0x22, 1, 2, 3, 0x30, 1, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(&[9u8; 33]);
    p
}

fn library_context(profile: SrtpProfile) -> Context {
    let material: Vec<u8> = (0..(profile.key_len() + profile.salt_len()) as u8).collect();
    let (key, salt) = material.split_at(profile.key_len());
    let provider = rtc_srtp::crypto::default_provider().expect("provider");
    Context::new(
        key,
        salt,
        profile.protection(),
        None,
        None,
        provider.crypto(),
    )
    .expect("ctx")
}

#[test]
fn header_shortcut_matches_the_library_parser() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let mut lib = library_context(profile);
        let plain = rtp_with_csrcs_and_extensions(1);
        let ours = protect(&mut tx, &plain);
        let theirs = lib.encrypt_rtp(&plain).expect("lib encrypt");
        assert_eq!(&ours[..], &theirs[..], "{profile:?}: same ciphertext");
        let mut buf = ours.clone();
        let n = rx.unprotect_rtp(&mut buf, ours.len()).expect("unprotect");
        assert_eq!(&buf[..n], &plain[..]);
    }
}

#[test]
fn header_shortcut_rejects_truncated_headers() {
    let plain = rtp_with_csrcs_and_extensions(1);
    for cut in 0..36 {
        assert!(srtp_header(&plain[..cut]).is_none(), "cut at {cut}");
    }
    let header = srtp_header(&plain).expect("header");
    assert_eq!(header.marshal_size(), 36);
    assert_eq!((header.sequence_number, header.ssrc), (1, 0x4444));
    assert!(srtp_header(&[0x40; 20]).is_none(), "RTP version 1");
}
