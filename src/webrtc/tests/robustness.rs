//! Hostile input: truncated and random datagrams of every kind never panic.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::addr;
use super::browser::{connected, room, rtcp, rtp, Browser};

#[test]
fn random_and_truncated_input_never_panics() {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    // A second leg mid-handshake: ICE done, DTLS server waiting.
    let pending = Browser::new(addr(5001), t0, false);
    ep.add_leg(9, pending.leg_config(), t0).expect("add");
    pending.check(&mut ep, t0);
    let mut rng = StdRng::seed_from_u64(7);
    let valid = [
        b[0].request(true),
        b[0].srtp(&rtp(9, 1, 1)),
        b[0].srtcp(&rtcp(1)),
    ];
    for sample in &valid {
        for cut in 0..sample.len() {
            for from in [b[0].addr, addr(1)] {
                let (mut buf, len) = room(&sample[..cut]);
                let _ = ep.handle_receive(t0, from, &mut buf, len);
            }
        }
    }
    for i in 0..20_000u32 {
        let len = rng.random_range(0..300);
        let mut buf: Vec<u8> = (0..len + 32).map(|_| rng.random()).collect();
        if let Some(first) = buf.first_mut() {
            *first = [0u8, 1, 22, 23, 0x80, 0x81, 0x90, 200][i as usize % 8];
        }
        if len >= 8 && i % 3 == 0 {
            buf[4..8].copy_from_slice(&0x2112_a442u32.to_be_bytes()); // STUN cookie
        }
        if len >= 13 && buf[0] == 22 {
            // A plausible DTLS record header so the parser gets past it.
            buf[1..3].copy_from_slice(&[0xfe, 0xfd]);
            buf[11..13].copy_from_slice(&((len - 13) as u16).to_be_bytes());
        }
        let from = [b[0].addr, pending.addr, addr(1)][i as usize % 3];
        let _ = ep.handle_receive(t0, from, &mut buf, len);
        let _ = ep.handle_receive(t0, from, &mut buf, len + 1000);
    }
    ep.handle_timeout(t0 + Duration::from_secs(3600));
    while ep.poll_transmit().is_some() {}
}
