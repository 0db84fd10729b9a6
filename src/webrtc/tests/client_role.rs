//! Legs in the DTLS client role: the peer answered a=setup:passive, so the
//! gateway sends the ClientHello, but only once ICE has validated a path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::browser::{binding_request, room, rtcp, rtp, Browser};
use super::{addr, events};
use crate::webrtc::*;

/// First byte of a DTLS handshake record (RFC 7983 range 20..=63).
const DTLS_HANDSHAKE: u8 = 22;

fn endpoint() -> Endpoint {
    Endpoint::new(Arc::new(Identity::generate().expect("identity")))
}

fn is_dtls(t: &Transmit) -> bool {
    t.data.first().is_some_and(|b| (20..=63).contains(b))
}

/// Every transmit still queued on `ep`.
fn drain(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

#[test]
fn client_leg_is_silent_until_a_valid_check() {
    let t0 = Instant::now();
    let b = Browser::passive(addr(5000), t0);
    let mut ep = endpoint();
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    assert_eq!(b.leg_config().dtls_role, DtlsRole::Client);

    // Timers run, but nothing leaves: no path yet, so no ClientHello.
    let first_wake = ep.poll_timeout().expect("consent timer");
    assert!(first_wake >= t0 + DEFAULT_CONSENT_TIMEOUT, "only consent");
    ep.handle_timeout(t0 + Duration::from_secs(5));
    assert!(drain(&mut ep).is_empty());

    // A check that fails integrity does not start DTLS either.
    let user = format!("{}:{}", b.gw_ufrag, b.ufrag);
    let (mut buf, len) = room(&binding_request(&user, "wrong-password-wrong-pwd", true));
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunBadIntegrity));
    assert!(drain(&mut ep).is_empty());

    // DTLS from an address ICE never validated is refused.
    let mut hello = [DTLS_HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let got = ep.handle_receive(t0, b.addr, &mut hello, 13);
    assert_eq!(got, Receive::Dropped(DropReason::UnknownSource));
    assert!(drain(&mut ep).is_empty());
    assert!(events(&mut ep).is_empty());
}

#[test]
fn client_hello_follows_the_first_valid_check() {
    let t0 = Instant::now();
    let b = Browser::passive(addr(5000), t0);
    let mut ep = endpoint();
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    // A non-nominating check from a relay address: the ClientHello goes to
    // the only validated address; later checks do not restart the handshake.
    let relay = addr(7000);
    let t1 = t0 + Duration::from_millis(300);
    b.check_from(&mut ep, t1, relay, false);
    let out = drain(&mut ep);
    assert!(!out.is_empty(), "ClientHello sent right after the response");
    assert!(out.iter().all(|t| is_dtls(t) && t.dest == relay));
    assert_eq!(out[0].data[0], DTLS_HANDSHAKE);
    b.check_from(&mut ep, t1, relay, true);
    assert!(drain(&mut ep).is_empty(), "one ClientHello per handshake");
    // dimpl's retransmission timer is now armed (~1 s), ahead of consent.
    let wake = ep.poll_timeout().expect("timer");
    assert!(wake < t1 + Duration::from_secs(5), "{:?}", wake - t1);
}

/// Asserts SRTP and SRTCP both ways between `ep`'s leg `id` and `b`.
fn assert_media_flows(ep: &mut Endpoint, b: &mut Browser, id: LegId, now: Instant) {
    let plain = rtp(1, 0xdead, 7);
    let (mut buf, len) = room(&b.srtp(&plain));
    let got = ep.handle_receive(now, b.addr, &mut buf, len);
    let want = Receive::Rtp {
        leg: id,
        len: plain.len(),
    };
    assert_eq!(got, want);
    assert_eq!(&buf[..plain.len()], &plain[..]);

    let report = rtcp(0xdead);
    let (mut buf, len) = room(&b.srtcp(&report));
    let got = ep.handle_receive(now, b.addr, &mut buf, len);
    let want = Receive::Rtcp {
        leg: id,
        len: report.len(),
    };
    assert_eq!(got, want);

    let out = rtp(9, 0xbeef, 3);
    let (mut buf, len) = room(&out);
    let (n, dest) = ep.protect_rtp(id, &mut buf, len).expect("protect");
    assert_eq!(dest, b.addr);
    let rx = b.rx.as_mut().expect("keys");
    assert_eq!(&rx.decrypt_rtp(&buf[..n]).expect("decrypt")[..], &out[..]);

    let out = rtcp(0xbeef);
    let (mut buf, len) = room(&out);
    let (n, _) = ep.protect_rtcp(id, &mut buf, len).expect("protect rtcp");
    assert_eq!(&rx.decrypt_rtcp(&buf[..n]).expect("decrypt")[..], &out[..]);
}

#[test]
fn client_leg_connects_to_a_passive_peer_and_media_flows() {
    let t0 = Instant::now();
    let mut b = Browser::passive(addr(5000), t0);
    let mut ep = endpoint();
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    b.check(&mut ep, t0);
    b.handshake(&mut ep, t0 + Duration::from_millis(1));
    let profile = b.profile.expect("peer negotiated a profile");
    // The peer picks from our ClientHello's use_srtp list; dimpl prefers 256-bit GCM.
    assert_eq!(profile, SrtpProfile::AeadAes256Gcm);
    assert_eq!(events(&mut ep), vec![(1, LegEvent::Connected { profile })]);
    assert_media_flows(&mut ep, &mut b, 1, t0);
}

#[test]
fn server_and_client_legs_share_one_endpoint() {
    let t0 = Instant::now();
    let mut active = Browser::new(addr(5000), t0, false);
    let mut passive = Browser::passive(addr(5001), t0);
    let mut ep = endpoint();
    ep.add_leg(0, active.leg_config(), t0).expect("add");
    ep.add_leg(1, passive.leg_config(), t0).expect("add");
    active.check(&mut ep, t0);
    active.handshake(&mut ep, t0);
    passive.check(&mut ep, t0);
    passive.handshake(&mut ep, t0);
    assert_eq!(events(&mut ep).len(), 2);
    assert_media_flows(&mut ep, &mut active, 0, t0);
    assert_media_flows(&mut ep, &mut passive, 1, t0);
}

#[test]
fn client_leg_fails_on_fingerprint_mismatch() {
    let t0 = Instant::now();
    let mut b = Browser::passive(addr(5000), t0);
    let mut ep = endpoint();
    let mut cfg = b.leg_config();
    cfg.remote_fingerprint = Identity::generate().expect("other").fingerprint;
    ep.add_leg(1, cfg, t0).expect("add");
    b.check(&mut ep, t0);
    b.handshake(&mut ep, t0);
    assert_eq!(
        events(&mut ep),
        vec![(1, LegEvent::Failed(WebRtcError::FingerprintMismatch))]
    );
    let (mut buf, len) = room(&rtp(1, 1, 1));
    let got = ep.protect_rtp(1, &mut buf, len);
    assert_eq!(got, Err(SendError::NotConnected));
    // The failed leg neither retransmits nor keeps a DTLS timer.
    ep.handle_timeout(t0 + Duration::from_secs(10));
    assert!(drain(&mut ep).iter().all(|t| !is_dtls(t)));
    assert!(events(&mut ep).is_empty());
}

#[test]
fn client_leg_gives_up_when_the_peer_never_answers() {
    let t0 = Instant::now();
    let b = Browser::passive(addr(5000), t0);
    let mut ep = endpoint();
    let mut cfg = b.leg_config();
    // Consent stays valid throughout: only DTLS can end this leg.
    cfg.consent_timeout = Duration::from_secs(3600);
    ep.add_leg(1, cfg, t0).expect("add");
    b.check(&mut ep, t0);
    let mut flights = drain(&mut ep).len();
    assert!(flights > 0);
    let mut failed = None;
    let mut now = t0;
    for _ in 0..100 {
        now = ep.poll_timeout().expect("timer");
        if now > t0 + Duration::from_secs(120) {
            break;
        }
        ep.handle_timeout(now);
        flights += drain(&mut ep).iter().filter(|t| is_dtls(t)).count();
        if let Some((_, LegEvent::Failed(e))) = events(&mut ep).pop() {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the handshake timed out");
    assert!(matches!(e, WebRtcError::Dtls(_)), "{e:?}");
    // dimpl's defaults: 4 retransmissions, gives up within its 40 s deadline.
    assert!(flights >= 5, "{flights} ClientHellos");
    assert!(now <= t0 + Duration::from_secs(41), "{:?}", now - t0);
    // Afterwards only the consent timer is left.
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(3600)));
    ep.handle_timeout(now + Duration::from_secs(60));
    assert!(drain(&mut ep).is_empty());
}

#[test]
fn client_leg_mid_handshake_survives_random_input() {
    let t0 = Instant::now();
    let b = Browser::passive(addr(5000), t0);
    let mut ep = endpoint();
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    b.check(&mut ep, t0);
    let mut rng = StdRng::seed_from_u64(11);
    for i in 0..5_000u32 {
        let len = rng.random_range(0..300);
        let mut buf: Vec<u8> = (0..len + 32).map(|_| rng.random()).collect();
        if let Some(first) = buf.first_mut() {
            *first = [20u8, 21, 22, 23, 0x80, 0x81][i as usize % 6];
        }
        if len >= 13 && (20..=23).contains(&buf[0]) {
            // A plausible DTLS 1.2 record header so the parser gets past it.
            buf[1..3].copy_from_slice(&[0xfe, 0xfd]);
            buf[11..13].copy_from_slice(&((len - 13) as u16).to_be_bytes());
        }
        let _ = ep.handle_receive(t0, b.addr, &mut buf, len);
    }
    ep.handle_timeout(t0 + Duration::from_secs(3600));
    while ep.poll_transmit().is_some() {}
}
