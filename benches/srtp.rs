//! ns per SRTP/SRTCP protect and unprotect, rtc-srtp (before) against the
//! in-place `SrtpContext` (after), for every profile.
//!
//! Both start each call by copying the packet from a prepared list into a
//! working buffer, as the relay receives it into one. "Before" then does what
//! `SrtpContext` used to: rtc-srtp returns a fresh buffer, copied back into
//! the working one. Run with `cargo bench --bench srtp`.

use std::hint::black_box;
use std::time::Instant;

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use siphon::srtp::{SrtpContext, SrtpProfile};

/// Packets per timed run; unprotect needs this many distinct packets.
const N: usize = 20_000;
/// Timed runs per figure; the fastest is reported (least disturbed).
const RUNS: usize = 5;
const SSRC: u32 = 0x1234_5678;

const PROFILES: [(SrtpProfile, ProtectionProfile, &str); 3] = [
    (
        SrtpProfile::Aes128CmHmacSha1_80,
        ProtectionProfile::Aes128CmHmacSha1_80,
        "AES_CM_128_HMAC_SHA1_80",
    ),
    (
        SrtpProfile::AeadAes128Gcm,
        ProtectionProfile::AeadAes128Gcm,
        "AEAD_AES_128_GCM",
    ),
    (
        SrtpProfile::AeadAes256Gcm,
        ProtectionProfile::AeadAes256Gcm,
        "AEAD_AES_256_GCM",
    ),
];

fn material(profile: SrtpProfile) -> Vec<u8> {
    (0..(profile.key_len() + profile.salt_len()) as u8).collect()
}

fn ours(profile: SrtpProfile) -> SrtpContext {
    let provider = rtc_crypto::default_provider().expect("provider");
    SrtpContext::new(profile, &material(profile), provider.crypto()).expect("context")
}

fn library(profile: SrtpProfile, protection: ProtectionProfile) -> Context {
    let m = material(profile);
    let (key, salt) = m.split_at(profile.key_len());
    let provider = rtc_crypto::default_provider().expect("provider");
    Context::new(
        key,
        salt,
        protection,
        Some(srtp_replay_protection(512)),
        Some(srtcp_replay_protection(128)),
        provider.crypto(),
    )
    .expect("library context")
}

fn rtp(seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![0x90, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
    p.resize(p.len() + payload, 0x5a);
    p
}

/// RR with one report block, then SDES with a CNAME.
fn rtcp() -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[7; 24]);
    p.extend_from_slice(&[0x81, 202, 0, 2]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[1, 1, b'x', 0]);
    p
}

/// ns per call of `before(i)` and `after(i)`: each the fastest of `RUNS`
/// runs of `N` calls, the two alternating so that drift (other load on the
/// machine, clock changes) hits both alike.
fn compare(mut before: impl FnMut(usize), mut after: impl FnMut(usize)) -> [f64; 2] {
    let mut best = [f64::INFINITY; 2];
    for run in 0..RUNS {
        for (slot, f) in [&mut before as &mut dyn FnMut(usize), &mut after]
            .into_iter()
            .enumerate()
        {
            let start = Instant::now();
            for i in 0..N {
                f(run * N + i);
            }
            let ns = start.elapsed().as_nanos() as f64 / N as f64;
            best[slot] = best[slot].min(ns);
        }
    }
    best
}

/// The header rtc-srtp needs, built the cheap way the old wrapper did
/// (`Header::unmarshal` would add allocations for the extension).
fn header(packet: &[u8]) -> rtc_rtp::Header {
    rtc_rtp::Header {
        version: 2,
        sequence_number: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: SSRC,
        extension: true,
        // marshal_size() = 12 + 4 + padding: our packets have a 20-byte header.
        extensions_padding: 4,
        ..rtc_rtp::Header::default()
    }
}

/// Plain packets for every timed call, with increasing sequence numbers.
fn plain_rtp(payload: usize) -> Vec<Vec<u8>> {
    (0..RUNS * N).map(|i| rtp(i as u16, payload)).collect()
}

fn bench_rtp(profile: SrtpProfile, protection: ProtectionProfile, payload: usize) -> [f64; 4] {
    let plain = plain_rtp(payload);
    let (mut lib_buf, mut our_buf) = ([0u8; 1500], [0u8; 1500]);

    let mut lib = library(profile, protection);
    let mut ctx = ours(profile);
    let [lib_protect, our_protect] = compare(
        |i| {
            let p = &plain[i];
            lib_buf[..p.len()].copy_from_slice(p);
            let packet = &lib_buf[..p.len()];
            let out = lib
                .encrypt_rtp_with_header(black_box(packet), &header(packet))
                .expect("encrypt");
            lib_buf[..out.len()].copy_from_slice(&out);
            black_box(&lib_buf);
        },
        |i| {
            let p = &plain[i];
            our_buf[..p.len()].copy_from_slice(p);
            black_box(ctx.protect_rtp(&mut our_buf, p.len()).expect("protect"));
        },
    );

    let mut tx = ours(profile);
    let wire: Vec<Vec<u8>> = plain
        .iter()
        .map(|p| {
            let mut b = p.clone();
            b.resize(p.len() + 16, 0);
            let n = tx.protect_rtp(&mut b, p.len()).expect("protect");
            b.truncate(n);
            b
        })
        .collect();
    let mut lib = library(profile, protection);
    let mut rx = ours(profile);
    let [lib_unprotect, our_unprotect] = compare(
        |i| {
            let w = &wire[i];
            lib_buf[..w.len()].copy_from_slice(w);
            let packet = &lib_buf[..w.len()];
            let out = lib
                .decrypt_rtp_with_header(black_box(packet), &header(packet))
                .expect("decrypt");
            lib_buf[..out.len()].copy_from_slice(&out);
            black_box(&lib_buf);
        },
        |i| {
            let w = &wire[i];
            our_buf[..w.len()].copy_from_slice(w);
            black_box(rx.unprotect_rtp(&mut our_buf, w.len()).expect("unprotect"));
        },
    );
    [lib_protect, our_protect, lib_unprotect, our_unprotect]
}

fn bench_rtcp(profile: SrtpProfile, protection: ProtectionProfile) -> [f64; 4] {
    let plain = rtcp();
    let (mut lib_buf, mut our_buf) = ([0u8; 1500], [0u8; 1500]);

    let mut lib = library(profile, protection);
    let mut ctx = ours(profile);
    let [lib_protect, our_protect] = compare(
        |_| {
            lib_buf[..plain.len()].copy_from_slice(&plain);
            let packet = &lib_buf[..plain.len()];
            let out = lib.encrypt_rtcp(black_box(packet)).expect("encrypt");
            lib_buf[..out.len()].copy_from_slice(&out);
            black_box(&lib_buf);
        },
        |_| {
            our_buf[..plain.len()].copy_from_slice(&plain);
            black_box(
                ctx.protect_rtcp(&mut our_buf, plain.len())
                    .expect("protect"),
            );
        },
    );

    let mut tx = ours(profile);
    let wire: Vec<Vec<u8>> = (0..RUNS * N)
        .map(|_| {
            let mut b = plain.clone();
            b.resize(plain.len() + 20, 0);
            let n = tx.protect_rtcp(&mut b, plain.len()).expect("protect");
            b.truncate(n);
            b
        })
        .collect();
    let mut lib = library(profile, protection);
    let mut rx = ours(profile);
    let [lib_unprotect, our_unprotect] = compare(
        |i| {
            let w = &wire[i];
            lib_buf[..w.len()].copy_from_slice(w);
            let packet = &lib_buf[..w.len()];
            let out = lib.decrypt_rtcp(black_box(packet)).expect("decrypt");
            lib_buf[..out.len()].copy_from_slice(&out);
            black_box(&lib_buf);
        },
        |i| {
            let w = &wire[i];
            our_buf[..w.len()].copy_from_slice(w);
            black_box(rx.unprotect_rtcp(&mut our_buf, w.len()).expect("unprotect"));
        },
    );
    [lib_protect, our_protect, lib_unprotect, our_unprotect]
}

fn row(name: &str, what: &str, t: [f64; 4]) {
    for (op, before, after) in [("protect", t[0], t[1]), ("unprotect", t[2], t[3])] {
        println!(
            "{name:<24} {what:<10} {op:<10} {before:>9.0} {after:>9.0} {:>7.2}x",
            before / after
        );
    }
}

fn main() {
    println!(
        "{:<24} {:<10} {:<10} {:>9} {:>9} {:>8}",
        "profile", "packet", "op", "before ns", "after ns", "speedup"
    );
    for (profile, protection, name) in PROFILES {
        row(name, "RTP 160B", bench_rtp(profile, protection, 160));
        row(name, "RTP 1200B", bench_rtp(profile, protection, 1200));
        row(name, "RTCP 44B", bench_rtcp(profile, protection));
    }
}
