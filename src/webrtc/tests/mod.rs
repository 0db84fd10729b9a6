//! Whole-leg tests: an in-process browser against an [`Endpoint`] through byte buffers.

pub(crate) mod browser;
mod client_role;
mod robustness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
pub(crate) use browser::binding_request;
use browser::{connected, room, rtcp, rtp, Browser};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

fn events(ep: &mut Endpoint) -> Vec<(LegId, LegEvent)> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn round_trip(dtls13: bool) {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, dtls13)];
    let mut ep = connected(&mut b, t0);
    let profile = b[0].profile.expect("browser negotiated a profile");
    // dimpl prefers AES-256-GCM whenever the client offers it (not configurable).
    assert_eq!(profile, SrtpProfile::AeadAes256Gcm);
    assert_eq!(events(&mut ep), vec![(0, LegEvent::Connected { profile })]);

    let plain = rtp(1, 0xdead, 7);
    let (mut buf, len) = room(&b[0].srtp(&plain));
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(
        got,
        Receive::Rtp {
            leg: 0,
            len: plain.len()
        }
    );
    assert_eq!(&buf[..plain.len()], &plain[..]);

    let report = rtcp(0xdead);
    let (mut buf, len) = room(&b[0].srtcp(&report));
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(
        got,
        Receive::Rtcp {
            leg: 0,
            len: report.len()
        }
    );
    assert_eq!(&buf[..report.len()], &report[..]);

    let out = rtp(9, 0xbeef, 3);
    let (mut buf, len) = room(&out);
    let (n, dest) = ep.protect_rtp(0, &mut buf, len).expect("protect");
    assert_eq!(dest, b[0].addr);
    let rx = b[0].rx.as_mut().expect("keys");
    assert_eq!(&rx.decrypt_rtp(&buf[..n]).expect("decrypt")[..], &out[..]);

    let out = rtcp(0xbeef);
    let (mut buf, len) = room(&out);
    let (n, _) = ep.protect_rtcp(0, &mut buf, len).expect("protect rtcp");
    assert_eq!(&rx.decrypt_rtcp(&buf[..n]).expect("decrypt")[..], &out[..]);
}

#[test]
fn srtp_flows_both_ways_dtls12() {
    round_trip(false);
}

#[test]
fn srtp_flows_both_ways_dtls13() {
    round_trip(true);
}

#[test]
fn bad_stun_is_dropped_without_response() {
    let t0 = Instant::now();
    let b = Browser::new(addr(5000), t0, false);
    let mut ep = Endpoint::new(Arc::new(Identity::generate().expect("identity")));
    ep.add_leg(1, b.leg_config(), t0).expect("add");

    let user = format!("{}:{}", b.gw_ufrag, b.ufrag);
    let (mut buf, len) = room(&binding_request(&user, "wrong-password-wrong-pwd", true));
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunBadIntegrity));
    assert!(ep.poll_transmit().is_none());

    let user = format!("nobody:{}", b.ufrag);
    let (mut buf, len) = room(&binding_request(&user, &b.gw_pwd, true));
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunUnknownUser));

    let user = format!("{}:someoneelse", b.gw_ufrag);
    let (mut buf, len) = room(&binding_request(&user, &b.gw_pwd, true));
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunUnknownUser));

    let mut good = b.request(true);
    let last = good.len() - 1;
    good[last] ^= 0xff; // breaks FINGERPRINT
    let (mut buf, len) = room(&good);
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunBadIntegrity));
    assert!(ep.poll_transmit().is_none());

    let mut garbage = [0xffu8, 1, 2, 3];
    assert_eq!(
        ep.handle_receive(t0, b.addr, &mut garbage, 4),
        Receive::Dropped(DropReason::NotWebRtc)
    );
}

#[test]
fn tampered_and_replayed_srtp_are_dropped() {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    let wire = b[0].srtp(&rtp(1, 1, 1));

    let (mut buf, len) = room(&wire);
    buf[len - 1] ^= 1;
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::SrtpAuth));

    let (mut buf, len) = room(&wire);
    assert!(matches!(
        ep.handle_receive(t0, b[0].addr, &mut buf, len),
        Receive::Rtp { .. }
    ));
    let (mut buf, len) = room(&wire);
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::SrtpReplay));
}

#[test]
fn only_ice_validated_sources_reach_dtls_and_srtp() {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    let (mut buf, len) = room(&b[0].srtp(&rtp(1, 1, 1)));
    let got = ep.handle_receive(t0, addr(6666), &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::UnknownSource));
    let mut hello = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let got = ep.handle_receive(t0, addr(6666), &mut hello, 13);
    assert_eq!(got, Receive::Dropped(DropReason::UnknownSource));
}

#[test]
fn srtp_before_dtls_is_not_connected() {
    let t0 = Instant::now();
    let b = Browser::new(addr(5000), t0, false);
    let mut ep = Endpoint::new(Arc::new(Identity::generate().expect("identity")));
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    b.check(&mut ep, t0);
    let (mut buf, len) = room(&rtp(1, 1, 1));
    let got = ep.handle_receive(t0, b.addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::NotConnected));
    assert_eq!(
        ep.protect_rtp(1, &mut buf, len),
        Err(SendError::NotConnected)
    );
    assert_eq!(ep.protect_rtp(2, &mut buf, len), Err(SendError::UnknownLeg));
}

#[test]
fn fingerprint_mismatch_fails_the_leg() {
    let t0 = Instant::now();
    let mut b = Browser::new(addr(5000), t0, false);
    let mut ep = Endpoint::new(Arc::new(Identity::generate().expect("identity")));
    let mut cfg = b.leg_config();
    cfg.remote_fingerprint = Identity::generate().expect("other").fingerprint;
    ep.add_leg(1, cfg, t0).expect("add");
    b.check(&mut ep, t0);
    b.handshake(&mut ep, t0);
    let evs = events(&mut ep);
    assert_eq!(
        evs,
        vec![(1, LegEvent::Failed(WebRtcError::FingerprintMismatch))]
    );
    let (mut buf, len) = room(&rtp(1, 1, 1));
    assert_eq!(
        ep.protect_rtp(1, &mut buf, len),
        Err(SendError::NotConnected)
    );
}

#[test]
fn consent_expires_on_a_virtual_clock() {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    events(&mut ep);
    let timeout = DEFAULT_CONSENT_TIMEOUT;
    // Idle but healthy: after at most a few handshake-tail timers, the next
    // wake-ups are the pause notice and the consent deadline, not a
    // periodic DTLS tick.
    let mut wakes = 0;
    let mut wake = ep.poll_timeout().expect("timer");
    while wake < t0 + DEFAULT_DISCONNECT_TIMEOUT - Duration::from_secs(1) {
        wakes += 1;
        assert!(wakes < 5, "woke at {:?}", wake - t0);
        ep.handle_timeout(wake);
        wake = ep.poll_timeout().expect("timer");
    }
    assert!(events(&mut ep).is_empty());
    ep.handle_timeout(wake);
    assert_eq!(events(&mut ep), vec![(0, LegEvent::Disconnected)]);
    let wake = ep.poll_timeout().expect("timer");
    assert!(
        wake >= t0 + timeout - Duration::from_secs(1),
        "woke early: {:?}",
        wake - t0
    );
    while ep.poll_transmit().is_some() {}

    let t1 = t0 + Duration::from_secs(20);
    b[0].check(&mut ep, t1);
    ep.handle_timeout(t0 + timeout);
    assert_eq!(
        events(&mut ep),
        vec![(0, LegEvent::Disconnected)],
        "the check at t1 renewed consent and re-armed the pause notice"
    );
    let deadline = ep.poll_timeout().expect("timer");
    assert_eq!(deadline, t1 + timeout);

    ep.handle_timeout(deadline - Duration::from_millis(1));
    assert!(events(&mut ep).is_empty());
    ep.handle_timeout(deadline);
    assert_eq!(events(&mut ep), vec![(0, LegEvent::ConsentExpired)]);
    ep.handle_timeout(deadline + timeout);
    assert!(events(&mut ep).is_empty(), "expiry is reported once");
    let (mut buf, len) = room(&rtp(1, 1, 1));
    assert_eq!(ep.protect_rtp(0, &mut buf, len), Err(SendError::NoPath));
}

#[test]
fn two_legs_stay_apart() {
    let t0 = Instant::now();
    let mut b = [
        Browser::new(addr(5000), t0, false),
        Browser::new(addr(5001), t0, false),
    ];
    let mut ep = connected(&mut b, t0);
    assert_eq!(events(&mut ep).len(), 2);
    for (i, browser) in b.iter_mut().enumerate() {
        let plain = rtp(1, 100 + i as u32, i as u8);
        let (mut buf, len) = room(&browser.srtp(&plain));
        let got = ep.handle_receive(t0, browser.addr, &mut buf, len);
        assert_eq!(
            got,
            Receive::Rtp {
                leg: i as LegId,
                len: plain.len()
            }
        );
        assert_eq!(&buf[..plain.len()], &plain[..]);
    }
    // Leg 1's packet arriving from leg 0's address is judged with leg 0's keys.
    let (mut buf, len) = room(&b[1].srtp(&rtp(2, 101, 1)));
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::SrtpAuth));
    let (mut buf, len) = room(&rtp(5, 5, 5));
    assert_eq!(ep.protect_rtp(1, &mut buf, len).map(|r| r.1), Ok(b[1].addr));

    ep.remove_leg(0);
    let (mut buf, len) = room(&b[0].srtp(&rtp(3, 100, 0)));
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::UnknownSource));
    let (mut buf, len) = room(&b[0].request(true));
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunUnknownUser));
}

#[test]
fn nomination_moves_the_media_path() {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    let relay = addr(7000);
    b[0].check_from(&mut ep, t0, relay, false);
    let (mut buf, len) = room(&rtp(1, 1, 1));
    assert_eq!(ep.protect_rtp(0, &mut buf, len).map(|r| r.1), Ok(b[0].addr));
    b[0].check_from(&mut ep, t0, relay, true);
    let (mut buf, len) = room(&rtp(2, 1, 1));
    assert_eq!(ep.protect_rtp(0, &mut buf, len).map(|r| r.1), Ok(relay));
    let (mut buf, len) = room(&b[0].srtp(&rtp(1, 9, 9)));
    assert!(matches!(
        ep.handle_receive(t0, relay, &mut buf, len),
        Receive::Rtp { leg: 0, .. }
    ));
}

#[test]
fn ice_restart_keeps_old_credentials_until_new_nomination() {
    let t0 = Instant::now();
    let mut b = [Browser::new(addr(5000), t0, false)];
    let mut ep = connected(&mut b, t0);
    let old = b[0].request(true);
    let (gw_ufrag, gw_pwd) = random_ice_credentials();
    let (ufrag, pwd) = random_ice_credentials();
    let restart = IceRestart {
        local_ufrag: gw_ufrag.clone(),
        local_pwd: gw_pwd.clone(),
        remote_ufrag: ufrag.clone(),
        remote_pwd: pwd.clone(),
    };
    ep.restart_ice(0, restart.clone()).expect("restart");
    assert!(ep.restart_ice(7, restart).is_err());
    let (mut buf, len) = room(&old);
    assert_eq!(
        ep.handle_receive(t0, b[0].addr, &mut buf, len),
        Receive::Handled
    );
    assert!(
        ep.poll_transmit().is_some(),
        "old credentials still answered"
    );
    (b[0].gw_ufrag, b[0].gw_pwd, b[0].ufrag, b[0].pwd) = (gw_ufrag, gw_pwd, ufrag, pwd);
    b[0].check_from(&mut ep, t0, addr(5002), true);
    let (mut buf, len) = room(&old);
    let got = ep.handle_receive(t0, b[0].addr, &mut buf, len);
    assert_eq!(got, Receive::Dropped(DropReason::StunUnknownUser));
    // DTLS and SRTP survive the restart.
    let (mut buf, len) = room(&b[0].srtp(&rtp(1, 1, 1)));
    assert!(matches!(
        ep.handle_receive(t0, addr(5002), &mut buf, len),
        Receive::Rtp { .. }
    ));
}

#[test]
fn add_leg_rejects_duplicates_and_bad_input() {
    let t0 = Instant::now();
    let b = Browser::new(addr(5000), t0, false);
    let mut ep = Endpoint::new(Arc::new(Identity::generate().expect("identity")));
    ep.add_leg(1, b.leg_config(), t0).expect("add");
    assert_eq!(
        ep.add_leg(1, Browser::new(addr(1), t0, false).leg_config(), t0),
        Err(WebRtcError::DuplicateLeg(1))
    );
    assert!(matches!(
        ep.add_leg(2, b.leg_config(), t0),
        Err(WebRtcError::DuplicateUfrag(_))
    ));
    let mut cfg = Browser::new(addr(1), t0, false).leg_config();
    cfg.remote_fingerprint = "nope".into();
    assert!(matches!(
        ep.add_leg(3, cfg, t0),
        Err(WebRtcError::InvalidFingerprint(_))
    ));
    let mut cfg = Browser::new(addr(1), t0, false).leg_config();
    cfg.local_ufrag = "a:b!".into();
    assert!(matches!(
        ep.add_leg(4, cfg, t0),
        Err(WebRtcError::InvalidCredentials(_))
    ));
    assert_eq!(ep.leg_count(), 1);
}
