//! SRTP/SRTCP protect and unprotect allocate nothing per packet once a
//! stream exists: counted with a global allocator wrapper.

mod counting;

use std::cell::Cell;

use siphon::srtp::{SrtpContext, SrtpProfile};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slot is gone while a thread tears down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations are counted by `count`.
#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting(count);

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const PROFILES: [SrtpProfile; 4] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::Aes128CmHmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];
const SSRC: u32 = 0x1234_5678;
/// Audio-sized payload (20 ms of Opus at a typical bitrate).
const PAYLOAD: usize = 160;

fn contexts(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let provider = rtc_crypto::default_provider().expect("provider");
    let m: Vec<u8> = (0..(profile.key_len() + profile.salt_len()) as u8).collect();
    let tx = SrtpContext::new(profile, &m, provider.crypto()).expect("tx");
    let rx = SrtpContext::new(profile, &m, provider.crypto()).expect("rx");
    (tx, rx)
}

/// Writes RTP with a one-byte header extension (as browsers send) into `buf`.
fn write_rtp(buf: &mut [u8], seq: u16) -> usize {
    buf[..4].copy_from_slice(&[0x90, 111, (seq >> 8) as u8, seq as u8]);
    buf[4..8].copy_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    buf[8..12].copy_from_slice(&SSRC.to_be_bytes());
    buf[12..20].copy_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
    buf[20..20 + PAYLOAD].fill(seq as u8);
    20 + PAYLOAD
}

/// Writes an RTCP compound (RR with one block, SDES CNAME) into `buf`.
fn write_rtcp(buf: &mut [u8], n: u8) -> usize {
    buf[..4].copy_from_slice(&[0x81, 201, 0, 7]);
    buf[4..8].copy_from_slice(&SSRC.to_be_bytes());
    buf[8..32].fill(n);
    buf[32..36].copy_from_slice(&[0x81, 202, 0, 2]);
    buf[36..40].copy_from_slice(&SSRC.to_be_bytes());
    buf[40..44].copy_from_slice(&[1, 1, b'x', 0]);
    44
}

fn rtp_round_trip(tx: &mut SrtpContext, rx: &mut SrtpContext, buf: &mut [u8], seq: u16) {
    let len = write_rtp(buf, seq);
    let n = tx.protect_rtp(buf, len).expect("protect");
    assert_eq!(rx.unprotect_rtp(buf, n), Ok(len));
}

fn rtcp_round_trip(tx: &mut SrtpContext, rx: &mut SrtpContext, buf: &mut [u8], n: u8) {
    let len = write_rtcp(buf, n);
    let wire = tx.protect_rtcp(buf, len).expect("protect");
    assert_eq!(rx.unprotect_rtcp(buf, wire), Ok(len));
}

#[test]
fn rtp_protect_and_unprotect_allocate_nothing_per_packet() {
    for profile in PROFILES {
        let (mut tx, mut rx) = contexts(profile);
        let mut buf = [0u8; 1500];
        // The first packet creates each side's stream: that may allocate.
        rtp_round_trip(&mut tx, &mut rx, &mut buf, 64_000);
        let allocations = allocations_in(|| {
            // 3000 packets from 64001 cross the rollover (ROC 0 -> 1).
            for i in 1..=3000u16 {
                rtp_round_trip(&mut tx, &mut rx, &mut buf, 64_000u16.wrapping_add(i));
            }
        });
        assert_eq!(allocations, 0, "{profile:?}");
    }
}

#[test]
fn rtcp_protect_and_unprotect_allocate_nothing_per_packet() {
    for profile in PROFILES {
        let (mut tx, mut rx) = contexts(profile);
        let mut buf = [0u8; 1500];
        rtcp_round_trip(&mut tx, &mut rx, &mut buf, 0);
        let allocations = allocations_in(|| {
            for n in 1..=1000u32 {
                rtcp_round_trip(&mut tx, &mut rx, &mut buf, n as u8);
            }
        });
        assert_eq!(allocations, 0, "{profile:?}");
    }
}

#[test]
fn dropped_packets_allocate_nothing_either() {
    for profile in PROFILES {
        let (mut tx, mut rx) = contexts(profile);
        let mut buf = [0u8; 1500];
        rtp_round_trip(&mut tx, &mut rx, &mut buf, 1);
        rtcp_round_trip(&mut tx, &mut rx, &mut buf, 1);
        let mut wire = [0u8; 1500];
        let len = write_rtp(&mut wire, 2);
        let n = tx.protect_rtp(&mut wire, len).expect("protect");
        let allocations = allocations_in(|| {
            for i in 0..200u32 {
                // Tampered, then replayed, then a forged SSRC.
                buf[..n].copy_from_slice(&wire[..n]);
                buf[30] ^= 1;
                assert!(rx.unprotect_rtp(&mut buf, n).is_err());
                buf[..n].copy_from_slice(&wire[..n]);
                let _ = rx.unprotect_rtp(&mut buf, n);
                buf[..n].copy_from_slice(&wire[..n]);
                buf[8..12].copy_from_slice(&i.to_be_bytes());
                assert!(rx.unprotect_rtp(&mut buf, n).is_err());
                assert!(rx.unprotect_rtcp(&mut buf, 40).is_err());
            }
        });
        assert_eq!(allocations, 0, "{profile:?}");
    }
}

/// The counter itself works: the library this replaces allocates per packet.
#[test]
fn the_counter_sees_the_library_allocate() {
    use rtc_srtp::context::Context;
    use rtc_srtp::protection_profile::ProtectionProfile;

    let provider = rtc_crypto::default_provider().expect("provider");
    let m: Vec<u8> = (0..30).collect();
    let mut lib = Context::new(
        &m[..16],
        &m[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        provider.crypto(),
    )
    .expect("context");
    let mut buf = [0u8; 1500];
    let len = write_rtp(&mut buf, 1);
    lib.encrypt_rtp(&buf[..len]).expect("warm up");
    let allocations = allocations_in(|| {
        for seq in 2..102 {
            let len = write_rtp(&mut buf, seq);
            lib.encrypt_rtp(&buf[..len]).expect("encrypt");
        }
    });
    assert!(allocations >= 100, "{allocations}");
}

/// The SIP leg's shape: SDES keys, RTP and SRTCP on one context pair (as
/// with rtcp-mux), then a re-key from a re-INVITE. Only the new context's
/// first packet may allocate (its stream); every other packet allocates
/// nothing.
#[test]
fn sip_leg_sdes_with_a_rekey_allocates_nothing_per_packet() {
    let provider = rtc_crypto::default_provider().expect("provider");
    for profile in PROFILES {
        let key = |b: u8| vec![b; profile.key_len() + profile.salt_len()];
        let context = |b: u8| SrtpContext::new(profile, &key(b), provider.crypto()).expect("ctx");
        let (mut tx, mut rx) = (context(1), context(1));
        let mut buf = [0u8; 1500];
        rtp_round_trip(&mut tx, &mut rx, &mut buf, 1);
        rtcp_round_trip(&mut tx, &mut rx, &mut buf, 1);
        let steady = allocations_in(|| {
            for i in 2..500u16 {
                rtp_round_trip(&mut tx, &mut rx, &mut buf, i);
                if i % 50 == 0 {
                    rtcp_round_trip(&mut tx, &mut rx, &mut buf, i as u8);
                }
            }
        });
        assert_eq!(steady, 0, "{profile:?}");
        // The peer re-keys: both ends start a new context at its sequence.
        let (mut tx, mut rx) = (context(2), context(2));
        rtp_round_trip(&mut tx, &mut rx, &mut buf, 500);
        rtcp_round_trip(&mut tx, &mut rx, &mut buf, 0);
        let rekeyed = allocations_in(|| {
            for i in 501..1000u16 {
                rtp_round_trip(&mut tx, &mut rx, &mut buf, i);
            }
        });
        assert_eq!(rekeyed, 0, "{profile:?} after the re-key");
    }
}
