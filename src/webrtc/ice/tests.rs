use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_srtp::crypto::providers::RingCrypto;

use super::*;
use crate::webrtc::tests::binding_request;

const PWD: &str = "abcdefghijklmnopqrstuvwx";

fn agent(now: Instant) -> IceAgent {
    IceAgent::new(
        "gwuf".into(),
        PWD.into(),
        "brws".into(),
        (Duration::from_secs(30), Duration::from_secs(7)),
        now,
    )
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 7], port))
}

fn check(a: &mut IceAgent, from: SocketAddr, nominate: bool, now: Instant) -> CheckOutcome {
    let req = parse_binding_request(&binding_request("gwuf:brws", PWD, nominate)).expect("parse");
    a.handle_request(req, from, now, &RingCrypto)
        .expect("valid check")
}

#[test]
fn random_credentials_have_ice_lengths_and_charset() {
    let (ufrag, pwd) = random_ice_credentials();
    assert_eq!((ufrag.len(), pwd.len()), (8, 24));
    validate_credentials(&ufrag, &pwd).expect("valid");
    assert_ne!(random_ice_credentials().0, ufrag);
    assert!(validate_credentials("abc", PWD).is_err());
    assert!(validate_credentials("abcd", "short").is_err());
    assert!(validate_credentials("ab:d", PWD).is_err());
}

#[test]
fn first_check_is_provisional_nomination_wins() {
    let t0 = Instant::now();
    let mut a = agent(t0);
    assert_eq!(a.send_addr(), None);
    assert_eq!(check(&mut a, addr(1), false, t0).new_address, Some(addr(1)));
    assert_eq!(a.send_addr(), Some(addr(1)));
    assert_eq!(check(&mut a, addr(2), true, t0).new_address, Some(addr(2)));
    assert_eq!(a.send_addr(), Some(addr(2)));
    assert_eq!(check(&mut a, addr(1), false, t0).new_address, None);
    assert_eq!(
        a.send_addr(),
        Some(addr(2)),
        "a plain check does not steal the path"
    );
    a.forget(addr(2));
    assert_eq!(a.send_addr(), Some(addr(1)));
}

#[test]
fn validated_set_is_bounded_and_keeps_the_nominated() {
    let t0 = Instant::now();
    let mut a = agent(t0);
    check(&mut a, addr(1), true, t0);
    let mut evicted = Vec::new();
    for port in 2..20 {
        evicted.extend(check(&mut a, addr(port), false, t0).evicted);
    }
    assert_eq!(a.validated().len(), MAX_VALIDATED);
    assert!(a.validated().contains(&addr(1)));
    assert!(!evicted.contains(&addr(1)));
    assert_eq!(evicted.len(), 19 - MAX_VALIDATED);
}

#[test]
fn consent_deadline_follows_valid_checks() {
    let t0 = Instant::now();
    let mut a = agent(t0);
    assert_eq!(a.consent_deadline(), Some(t0 + Duration::from_secs(30)));
    let t1 = t0 + Duration::from_secs(10);
    check(&mut a, addr(1), true, t1);
    assert_eq!(a.consent_deadline(), Some(t1 + Duration::from_secs(30)));
    assert!(!a.expire_consent(t1 + Duration::from_secs(29)));
    assert!(a.expire_consent(t1 + Duration::from_secs(30)));
    assert!(!a.expire_consent(t1 + Duration::from_secs(90)));
    assert_eq!(a.send_addr(), None);
    assert_eq!(a.consent_deadline(), None);
}

#[test]
fn a_quiet_nominated_path_is_reported_once_until_checks_resume() {
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    let mut a = agent(t0);
    assert_eq!(a.quiet_deadline(), None, "nothing nominated yet");
    check(&mut a, addr(1), true, s(1));
    assert_eq!(a.quiet_deadline(), Some(s(8)));
    assert!(!a.go_quiet(s(7)));
    assert!(a.go_quiet(s(8)));
    assert!(!a.go_quiet(s(9)), "once");
    assert_eq!(a.quiet_deadline(), None);
    assert_eq!(a.send_addr(), Some(addr(1)), "media keeps its path");
    check(&mut a, addr(1), false, s(12));
    assert_eq!(a.quiet_deadline(), Some(s(19)), "re-armed by a valid check");
}

#[test]
fn non_requests_and_missing_username_are_rejected() {
    let mut resp = Message::new();
    resp.build(&[
        Box::new(BINDING_SUCCESS),
        Box::new(rtc_stun::message::TransactionId::new()),
    ])
    .expect("build");
    assert_eq!(
        parse_binding_request(&resp.raw).err(),
        Some(DropReason::StunUnexpected)
    );
    let mut bare = Message::new();
    bare.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(rtc_stun::message::TransactionId::new()),
    ])
    .expect("build");
    assert_eq!(
        parse_binding_request(&bare.raw).err(),
        Some(DropReason::StunMalformed)
    );
    assert_eq!(
        parse_binding_request(&[0, 1, 0]).err(),
        Some(DropReason::StunMalformed)
    );
}
