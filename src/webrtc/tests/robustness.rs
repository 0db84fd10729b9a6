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

#[test]
fn a_spent_stranger_budget_refills_so_a_new_ssrc_gets_through_later() {
    use crate::webrtc::{DropReason, Receive};
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    // Forged SRTP from the browser's own, validated address: new SSRCs
    // whose tags cannot verify, more than the budget allows.
    for ssrc in 0..400u32 {
        let mut forged = rtp(1, 0x7000_0000 + ssrc, 1);
        forged.extend_from_slice(&[0u8; 10]);
        let (mut buf, len) = room(&forged);
        let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
        assert_eq!(got, Receive::Dropped(DropReason::SrtpAuth));
    }
    // A genuine new SSRC right after the flood is refused before any
    // crypto: the budget bounds the work a flood costs.
    let (mut buf, len) = room(&b[0].srtp(&rtp(1, 0x1234, 1)));
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::SrtpAuth));
    // Once the flood has stopped for a while, a new SSRC is taken again.
    let later = t0 + Duration::from_secs(30);
    let (mut buf, len) = room(&b[0].srtp(&rtp(2, 0x1234, 1)));
    let got = ep.handle_receive(later, b[0].addr, &mut buf, len);
    assert!(matches!(got, Receive::Rtp { .. }), "{got:?}");
}

#[test]
fn a_pre_connect_spray_from_strangers_changes_nothing() {
    use crate::webrtc::tests::browser::binding_request;
    use crate::webrtc::{Endpoint, Identity, LegEvent, Receive};
    use std::sync::Arc;
    let t0 = Instant::now();
    let mut b = Browser::new(addr(5000), t0, false);
    let mut ep = Endpoint::new(Arc::new(Identity::generate().expect("identity")));
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    // Before the browser's first check: SRTP, SRTCP, a DTLS ClientHello
    // header, and STUN with a guessed password, from 200 other addresses.
    let user = format!("{}:{}", b.gw_ufrag, b.ufrag);
    let spray = [
        rtp(1, 7, 1),
        rtcp(7),
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
        binding_request(&user, "guessed-guessed-guessed", true),
    ];
    for i in 0..200u16 {
        for p in &spray {
            let (mut buf, len) = room(p);
            let got = ep.handle_receive(t0, addr(6000 + i), &mut buf, len);
            assert!(matches!(got, Receive::Dropped(_)), "{got:?}");
        }
    }
    assert!(ep.poll_transmit().is_none(), "nothing answered");
    assert!(ep.poll_event().is_none());
    // The real browser connects as if nothing happened.
    b.check(&mut ep, t0);
    b.handshake(&mut ep, t0 + Duration::from_millis(1));
    let mut connected = false;
    while let Some((leg, ev)) = ep.poll_event() {
        connected |= leg == 1 && matches!(ev, LegEvent::Connected { .. });
    }
    assert!(connected);
    let (mut buf, len) = room(&b.srtp(&rtp(1, 9, 1)));
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert!(matches!(got, Receive::Rtp { leg: 1, .. }), "{got:?}");
}
