use super::*;

mod oracle;

pub(super) const PROFILES: [SrtpProfile; 4] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::Aes128CmHmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];

pub(super) fn material(profile: SrtpProfile) -> Vec<u8> {
    (0..(profile.key_len() + profile.salt_len()) as u8).collect()
}

pub(super) fn context(profile: SrtpProfile) -> SrtpContext {
    let provider = rtc_crypto::default_provider().expect("provider");
    SrtpContext::new(profile, &material(profile), provider.crypto()).expect("context")
}

fn pair(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    (context(profile), context(profile))
}

pub(super) fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
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

pub(super) fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 64, 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).expect("protect");
    buf.truncate(n);
    buf
}

pub(super) fn protect_rtcp(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 64, 0);
    let n = tx.protect_rtcp(&mut buf, plain.len()).expect("protect");
    buf.truncate(n);
    buf
}

pub(super) fn unprotect(rx: &mut SrtpContext, wire: &[u8]) -> Result<Vec<u8>, Rejected> {
    let mut buf = wire.to_vec();
    let n = rx.unprotect_rtp(&mut buf, wire.len())?;
    buf.truncate(n);
    Ok(buf)
}

pub(super) fn unprotect_rtcp(rx: &mut SrtpContext, wire: &[u8]) -> Result<Vec<u8>, Rejected> {
    let mut buf = wire.to_vec();
    let n = rx.unprotect_rtcp(&mut buf, wire.len())?;
    buf.truncate(n);
    Ok(buf)
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
        assert_eq!(rx.unprotect_rtp(&mut bad, n), Err(Rejected::Auth));
        let mut ok = wire.clone();
        assert!(rx.unprotect_rtp(&mut ok, n).is_ok());
        let mut again = wire.clone();
        assert_eq!(rx.unprotect_rtp(&mut again, n), Err(Rejected::Replay));
    }
}

#[test]
fn rtcp_tampered_is_auth_and_replayed_is_replay() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let wire = protect_rtcp(&mut tx, &rtcp_rr(0x4444));
        for at in 0..wire.len() {
            let mut bad = wire.clone();
            bad[at] ^= 0x04;
            assert!(
                unprotect_rtcp(&mut rx, &bad).is_err(),
                "{profile:?} byte {at}"
            );
        }
        assert!(unprotect_rtcp(&mut rx, &wire).is_ok());
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire),
            Err(Rejected::Replay),
            "{profile:?}"
        );
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
        Err(ProtectError::BufferTooSmall)
    );
    let mut short = vec![0x80u8; 64];
    assert_eq!(tx.protect_rtp(&mut short, 5), Err(ProtectError::Malformed));
    assert_eq!(tx.protect_rtp(&mut short, 65), Err(ProtectError::Malformed));
    assert_eq!(tx.protect_rtcp(&mut short, 4), Err(ProtectError::Malformed));
    let mut v1 = vec![0x40u8; 64];
    assert_eq!(tx.protect_rtp(&mut v1, 20), Err(ProtectError::Malformed));
    assert_eq!(tx.protect_rtcp(&mut v1, 20), Err(ProtectError::Malformed));
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
        assert_eq!(rx.unprotect_rtp(&mut buf, 100), Err(Rejected::Malformed));
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
        assert_eq!(rx.unprotect_rtp(&mut forged, n), Err(Rejected::Auth));
    }
    assert!(rx.strangers.spent());
    assert!(!rx.rtp.contains(0x10_0000), "forged SSRCs leave no state");
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

#[test]
fn wrong_master_lengths_are_errors() {
    let provider = rtc_crypto::default_provider().expect("provider");
    for profile in PROFILES {
        let m = material(profile);
        for len in [0, m.len() - 1, m.len() + 1] {
            let r = SrtpContext::new(profile, &vec![1; len], provider.crypto());
            let want = m.len();
            assert!(
                matches!(r, Err(SrtpError::KeyLength { profile: p, want: w, got }) if p == profile && w == want && got == len),
                "{profile:?} {len}"
            );
        }
    }
    let r = SrtpContext::new(SrtpProfile::AeadAes128Gcm, &[1; 3], provider.crypto());
    let text = r.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        text,
        "SRTP: AeadAes128Gcm needs 28 bytes of master key and salt, got 3"
    );
}

/// RTP with 2 CSRCs and a one-byte extension block holding 3 elements.
pub(super) fn rtp_with_csrcs_and_extensions(seq: u16) -> Vec<u8> {
    let mut p = vec![0x92, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0x44, 0x44, 0, 0, 0, 7, 0, 0, 0, 8]);
    p.extend_from_slice(&[
        0xbe, 0xde, 0, 3, 0x10, 0xff, 0x22, 1, 2, 3, 0x30, 1, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(&[9u8; 33]);
    p
}

#[test]
fn header_parser_rejects_truncated_headers() {
    let plain = rtp_with_csrcs_and_extensions(1);
    for cut in 0..36 {
        assert!(RtpHeader::parse(&plain[..cut]).is_none(), "cut at {cut}");
    }
    let h = RtpHeader::parse(&plain).expect("header");
    assert_eq!((h.len, h.seq, h.ssrc), (36, 1, 0x4444));
    assert!(RtpHeader::parse(&[0x40; 20]).is_none(), "RTP version 1");
}

#[test]
fn random_input_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        for _ in 0..3000 {
            let mut buf = [0u8; 256];
            rng.fill(&mut buf[..]);
            // Mostly version 2, so parsing gets past the first byte.
            buf[0] = (buf[0] & 0x3f) | if rng.random_bool(0.9) { 0x80 } else { 0 };
            let len = rng.random_range(0..=buf.len() + 4);
            let _ = rx.unprotect_rtp(&mut buf, len);
            let _ = rx.unprotect_rtcp(&mut buf, len);
            let _ = tx.protect_rtp(&mut buf, len.min(200));
            let _ = tx.protect_rtcp(&mut buf, len.min(200));
        }
    }
}
