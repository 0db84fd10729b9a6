//! `rtc-srtp` as the reference: what either side protects, the other unprotects.

use rtc_crypto::{AeadAlgorithm, HmacAlgorithm};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::super::kdf;
use super::*;

fn protection(profile: SrtpProfile) -> ProtectionProfile {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

/// A library context with the same master key and salt as `context()`.
fn library(profile: SrtpProfile) -> Context {
    let m = material(profile);
    let (key, salt) = m.split_at(profile.key_len());
    let provider = rtc_crypto::default_provider().expect("provider");
    Context::new(
        key,
        salt,
        protection(profile),
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
        provider.crypto(),
    )
    .expect("library context")
}

/// Sequence numbers that cross a rollover, some reordered around it.
const SEQS: [u16; 12] = [
    65530, 65531, 65533, 65532, 65534, 65535, 0, 2, 1, 3, 65529, 4,
];

fn packet(i: usize, seq: u16) -> Vec<u8> {
    if i.is_multiple_of(2) {
        rtp_with_csrcs_and_extensions(seq)
    } else {
        rtp(seq, 0x4444)
    }
}

#[test]
fn the_library_decrypts_ours_across_a_rollover() {
    for profile in PROFILES {
        let mut ours = context(profile);
        let mut lib_tx = library(profile);
        let mut lib_rx = library(profile);
        for (i, seq) in SEQS.into_iter().enumerate() {
            let plain = packet(i, seq);
            let wire = protect(&mut ours, &plain);
            let theirs = lib_tx.encrypt_rtp(&plain).expect("library encrypt");
            assert_eq!(&wire[..], &theirs[..], "{profile:?} seq {seq}: same bytes");
            let back = lib_rx.decrypt_rtp(&wire).expect("library decrypt");
            assert_eq!(&back[..], &plain[..], "{profile:?} seq {seq}");
        }
    }
}

#[test]
fn we_decrypt_the_library_across_a_rollover() {
    for profile in PROFILES {
        let mut lib = library(profile);
        let mut ours = context(profile);
        for (i, seq) in SEQS.into_iter().enumerate() {
            let plain = packet(i, seq);
            let wire = lib.encrypt_rtp(&plain).expect("library encrypt");
            assert_eq!(unprotect(&mut ours, &wire), Ok(plain), "{profile:?} {seq}");
        }
        // The stream is now past the rollover: ROC 1.
        let stream = ours.rtp.get(0x4444).expect("stream");
        assert_eq!(stream.index_of(5), Some(0x1_0005), "{profile:?}");
    }
}

#[test]
fn library_packets_replayed_or_tampered_are_refused() {
    for profile in PROFILES {
        let mut lib = library(profile);
        let mut ours = context(profile);
        let wire = lib
            .encrypt_rtp(&rtp_with_csrcs_and_extensions(9))
            .expect("library encrypt");
        for at in 0..wire.len() {
            let mut bad = wire.to_vec();
            bad[at] ^= 0x20;
            // A flipped X or CC bit may make the header unparseable instead.
            let got = unprotect(&mut ours, &bad);
            assert!(
                matches!(got, Err(Rejected::Auth) | Err(Rejected::Malformed)),
                "{profile:?} byte {at}: {got:?}"
            );
        }
        assert!(unprotect(&mut ours, &wire).is_ok());
        assert_eq!(unprotect(&mut ours, &wire), Err(Rejected::Replay));
    }
}

/// A compound packet: SR with one report block, then SDES with a CNAME.
fn compound(ssrc: u32, n: u8) -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[n; 20]); // NTP, RTP timestamp, counts
    p.extend_from_slice(&0x5555u32.to_be_bytes());
    p.extend_from_slice(&[n; 20]); // report block
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 4, b'c', b'a', b'l', b'l', 0, 0]);
    p
}

#[test]
fn rtcp_compound_both_ways() {
    for profile in PROFILES {
        let (mut ours_tx, mut ours_rx) = (context(profile), context(profile));
        let (mut lib_tx, mut lib_rx) = (library(profile), library(profile));
        for n in 0..5 {
            let plain = compound(0x7777, n);
            let wire = protect_rtcp(&mut ours_tx, &plain);
            let back = lib_rx.decrypt_rtcp(&wire).expect("library decrypt");
            assert_eq!(&back[..], &plain[..], "{profile:?} #{n}");
            let wire = lib_tx.encrypt_rtcp(&plain).expect("library encrypt");
            assert_eq!(
                unprotect_rtcp(&mut ours_rx, &wire),
                Ok(plain),
                "{profile:?}"
            );
            assert_eq!(unprotect_rtcp(&mut ours_rx, &wire), Err(Rejected::Replay));
        }
    }
}

/// SRTCP with the E flag clear, built from the RFC layouts with the raw
/// primitives: the library never sends it, and skips its tag on receipt.
fn unencrypted_srtcp(profile: SrtpProfile, plain: &[u8], index: u32) -> Vec<u8> {
    let provider = rtc_crypto::default_provider().expect("provider");
    let crypto = provider.crypto();
    let m = material(profile);
    let (key, salt) = m.split_at(profile.key_len());
    let word = index.to_be_bytes();
    let mut wire = plain.to_vec();
    if profile.rtp_overhead() != 16 {
        let mut auth = [0u8; 20];
        kdf::derive(crypto, key, salt, kdf::SRTCP.auth, &mut auth).expect("kdf");
        let mut mac = crypto.new_hmac(HmacAlgorithm::Sha1, &auth).expect("hmac");
        wire.extend_from_slice(&word);
        let mut tag = [0u8; 20];
        mac.sign(&[&wire], &mut tag).expect("sign");
        wire.extend_from_slice(&tag[..10]);
    } else {
        let mut k = vec![0u8; profile.key_len()];
        let mut s = [0u8; 12];
        kdf::derive(crypto, key, salt, kdf::SRTCP.cipher, &mut k).expect("kdf");
        kdf::derive(crypto, key, salt, kdf::SRTCP.salt, &mut s).expect("kdf");
        let algorithm = match profile.key_len() {
            16 => AeadAlgorithm::Aes128Gcm,
            _ => AeadAlgorithm::Aes256Gcm,
        };
        let mut aead = crypto.new_aead(algorithm, &k).expect("aead");
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&plain[4..8]);
        iv[8..12].copy_from_slice(&word);
        iv.iter_mut().zip(s).for_each(|(b, s)| *b ^= s);
        let aad = [plain, &word].concat();
        let mut tag = [0u8; 16];
        aead.seal_in_place(&iv, &aad, &mut [], &mut tag)
            .expect("seal");
        wire.extend_from_slice(&tag);
        wire.extend_from_slice(&word);
    }
    wire
}

#[test]
fn unencrypted_srtcp_is_authenticated_not_trusted() {
    for profile in PROFILES {
        let mut rx = context(profile);
        let plain = compound(0x8888, 3);
        let wire = unencrypted_srtcp(profile, &plain, 7);
        for at in 0..wire.len() {
            let mut bad = wire.clone();
            bad[at] ^= 0x10;
            assert!(unprotect_rtcp(&mut rx, &bad).is_err(), "{profile:?} {at}");
        }
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain), "{profile:?}");
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Err(Rejected::Replay));
    }
}
