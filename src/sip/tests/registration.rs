//! Upstream registration against the test registrar, over real sockets.
//! rsipstack's transaction timers read the real clock, so refreshes and
//! retries are tested with second-long grants and bounded real waits.

use tokio::sync::watch;

use super::registrar::{Mode, Registrar, RegistrarConfig, Seen};
use super::*;

struct Setup {
    sip: SipEndpoint,
    registrar: Registrar,
    shutdown: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn setup_with_t1(cfg: RegistrarConfig, t1: Duration) -> Setup {
    let shutdown = CancellationToken::new();
    let sip = SipEndpoint::start_with_t1(settings(), Metrics::new(), shutdown.clone(), t1)
        .await
        .expect("endpoint");
    let registrar = Registrar::start(cfg, &shutdown).await;
    Setup {
        sip,
        registrar,
        shutdown,
    }
}

async fn setup(cfg: RegistrarConfig) -> Setup {
    setup_with_t1(cfg, Duration::from_millis(500)).await
}

fn spec(s: &Setup, transport: Transport) -> RegistrationSpec {
    RegistrationSpec {
        registrar: s.registrar.uri(transport),
        user: "1001".into(),
        domain: "pbx.test".into(),
        username: "auth-1001".into(),
        password: "s3cret".into(),
        expires: 300,
        contact: None,
    }
}

/// Wait (bounded by `within`) for a state matching `want` and return it.
async fn wait_for(
    rx: &mut watch::Receiver<RegistrationState>,
    within: Duration,
    want: impl Fn(&RegistrationState) -> bool,
) -> RegistrationState {
    let found = timeout(within, async {
        loop {
            let st = rx.borrow_and_update().clone();
            if want(&st) {
                return st;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    })
    .await;
    match found {
        Ok(st) if want(&st) => st,
        other => panic!("state not reached: {other:?}, now {:?}", *rx.borrow()),
    }
}

fn registered(st: &RegistrationState) -> bool {
    matches!(st, RegistrationState::Registered { .. })
}

/// Same Call-ID throughout, CSeq strictly increasing.
fn assert_one_dialogue(seen: &[Seen]) {
    assert!(
        seen.iter().all(|s| s.call_id == seen[0].call_id),
        "{seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[1].cseq > w[0].cseq), "{seen:?}");
}

async fn registers_with(algorithm: DigestAlgorithm, token: &str) {
    let s = setup(RegistrarConfig {
        algorithm,
        ..Default::default()
    })
    .await;
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    // The registrar's Expires header says 3600; our Contact's parameter wins.
    let st = wait_for(&mut rx, PROMPT, registered).await;
    assert_eq!(st, RegistrationState::Registered { expires: 300 });

    let seen = s.registrar.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_one_dialogue(&seen);
    assert!(seen[0].auth.is_none());
    let auth = seen[1].auth.as_deref().expect("authorization");
    assert!(auth.contains(token) && auth.contains("qop=auth"), "{auth}");
    assert!(auth.contains("username=\"auth-1001\""), "{auth}");
    let port = s.sip.local_addr(Transport::Udp).expect("udp").port();
    for r in &seen {
        assert!(r.from.contains("sip:1001@pbx.test"), "{r:?}");
        assert!(r.to.contains("sip:1001@pbx.test"), "{r:?}");
        let contact = format!("sip:1001@127.0.0.1:{port};transport=udp");
        assert!(r.contact.contains(&contact), "{r:?}");
        assert_eq!(r.expires, Some(300));
    }
}

#[tokio::test]
async fn registers_with_md5_digest() {
    registers_with(DigestAlgorithm::Md5, "algorithm=MD5").await;
}

#[tokio::test]
async fn registers_with_sha256_digest() {
    registers_with(DigestAlgorithm::Sha256, "algorithm=SHA-256").await;
}

#[tokio::test]
async fn refreshes_before_expiry_under_the_same_call_id() {
    let s = setup(RegistrarConfig {
        grant: 2,
        ..Default::default()
    })
    .await;
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    let st = wait_for(&mut rx, PROMPT, registered).await;
    assert_eq!(st, RegistrationState::Registered { expires: 2 });
    let seen = s.registrar.wait_seen(4, Duration::from_secs(3)).await;
    assert!(seen.len() >= 4, "no refresh: {seen:?}");
    assert_one_dialogue(&seen);
    // Refreshed well within the 2 s the first authorised REGISTER bought.
    let gap = seen[3].at - seen[1].at;
    assert!(gap < Duration::from_millis(1900), "{gap:?}");
    // At half the grant, less up to 25% jitter.
    assert!(gap >= Duration::from_millis(700), "{gap:?}");
    assert!(seen[3].auth.is_some());
    assert_eq!(*rx.borrow(), RegistrationState::Registered { expires: 2 });
}

#[tokio::test]
async fn wrong_password_fails_with_403_and_retries_after_backoff() {
    let s = setup(RegistrarConfig::default()).await;
    let mut bad = spec(&s, Transport::Udp);
    bad.password = "wrong".into();
    let reg = s.sip.register(bad).expect("register");
    let mut rx = reg.state();
    let st = wait_for(&mut rx, PROMPT, |st| {
        matches!(st, RegistrationState::Failed { .. })
    })
    .await;
    let RegistrationState::Failed { code, retry_in, .. } = st else {
        unreachable!()
    };
    assert_eq!(code, 403);
    // 2 s of backoff less up to 25% jitter.
    let jittered = Duration::from_millis(1500)..=Duration::from_secs(2);
    assert!(jittered.contains(&retry_in), "{retry_in:?}");
    let seen = s.registrar.wait_seen(3, Duration::from_secs(4)).await;
    assert!(seen.len() >= 3, "no retry: {seen:?}");
    let gap = seen[2].at - seen[1].at;
    assert!(
        gap + Duration::from_millis(100) >= retry_in,
        "retried early: {gap:?}"
    );
    assert_one_dialogue(&seen);
}

#[tokio::test]
async fn silent_registrar_fails_with_408() {
    let s = setup_with_t1(RegistrarConfig::default(), Duration::from_millis(10)).await;
    s.registrar.set_mode(Mode::Silent);
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    let st = wait_for(&mut rx, PROMPT, |st| {
        matches!(st, RegistrationState::Failed { .. })
    })
    .await;
    assert!(
        matches!(st, RegistrationState::Failed { code: 408, .. }),
        "{st:?}"
    );
}

#[tokio::test]
async fn interval_too_brief_is_retried_at_once_with_min_expires() {
    let s = setup(RegistrarConfig {
        min_expires: Some(600),
        ..Default::default()
    })
    .await;
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    let st = wait_for(&mut rx, PROMPT, registered).await;
    assert_eq!(st, RegistrationState::Registered { expires: 600 });
    let seen = s.registrar.seen();
    let asked: Vec<_> = seen.iter().map(|r| r.expires).collect();
    assert_eq!(asked, [Some(300), Some(300), Some(600), Some(600)]);
    assert_one_dialogue(&seen);
}

#[tokio::test]
async fn refresh_failure_is_reported_and_recovers() {
    let s = setup(RegistrarConfig {
        grant: 2,
        ..Default::default()
    })
    .await;
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    wait_for(&mut rx, PROMPT, registered).await;
    s.registrar.set_mode(Mode::Reject(503));
    let st = wait_for(&mut rx, PROMPT, |st| !registered(st)).await;
    assert!(
        matches!(st, RegistrationState::Failed { code: 503, .. }),
        "{st:?}"
    );
    s.registrar.set_mode(Mode::Normal);
    wait_for(&mut rx, PROMPT, registered).await;
}

async fn unregister_over(transport: Transport, cfg: RegistrarConfig) -> Vec<Seen> {
    let s = setup(cfg).await;
    let reg = s.sip.register(spec(&s, transport)).expect("register");
    let mut rx = reg.state();
    wait_for(&mut rx, PROMPT, registered).await;
    timeout(PROMPT, reg.unregister()).await.expect("bounded");
    assert_eq!(*rx.borrow_and_update(), RegistrationState::Unregistered);
    let seen = s.registrar.seen();
    let last = seen.last().expect("seen");
    assert_eq!(last.expires, Some(0));
    assert!(last.auth.is_some(), "{last:?}");
    assert_one_dialogue(&seen);
    seen
}

#[tokio::test]
async fn unregister_over_udp_sends_expires_zero() {
    unregister_over(Transport::Udp, RegistrarConfig::default()).await;
}

#[tokio::test]
async fn tcp_registers_with_proxy_challenge_and_unregisters() {
    let cfg = RegistrarConfig {
        algorithm: DigestAlgorithm::Sha256,
        proxy_auth: true,
        ..Default::default()
    };
    let seen = unregister_over(Transport::Tcp, cfg).await;
    let first = &seen[0];
    assert!(first.via.contains("SIP/2.0/TCP"), "{first:?}");
    assert!(first.contact.contains(";transport=tcp"), "{first:?}");
}

#[tokio::test]
async fn unregister_during_a_challenged_refresh_answers_the_challenge_first() {
    let s = setup(RegistrarConfig {
        grant: 2,
        strict: true,
        challenge_delay: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    wait_for(&mut rx, PROMPT, registered).await;
    // The refresh is out and its challenge on the way: stop now.
    let seen = s.registrar.wait_seen(3, Duration::from_secs(3)).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    timeout(PROMPT, reg.unregister()).await.expect("bounded");
    let seen = s.registrar.seen();
    let last = seen.last().expect("seen");
    assert_eq!(last.expires, Some(0));
    assert!(last.auth.is_some(), "{last:?}");
    let replies = s.registrar.replies();
    assert!(!replies.contains(&403), "{replies:?}");
    assert_eq!(replies.last(), Some(&200), "{replies:?}");
    assert_one_dialogue(&seen);
}

#[tokio::test]
async fn dropping_stops_refreshing() {
    let s = setup(RegistrarConfig {
        grant: 2,
        ..Default::default()
    })
    .await;
    let reg = s.sip.register(spec(&s, Transport::Udp)).expect("register");
    let mut rx = reg.state();
    wait_for(&mut rx, PROMPT, registered).await;
    drop(reg);
    let ended = wait_for(&mut rx, PROMPT, |st| st == &RegistrationState::Unregistered).await;
    assert_eq!(ended, RegistrationState::Unregistered);
    let before = s.registrar.seen().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.registrar.seen().len(), before);
}

#[tokio::test]
async fn invalid_specs_are_refused() {
    let s = setup(RegistrarConfig::default()).await;
    let mut bad = spec(&s, Transport::Udp);
    bad.registrar = "not a uri".into();
    assert!(matches!(s.sip.register(bad), Err(SipError::Invalid { .. })));
    let udp_only = SipEndpoint::start(
        SipSettings {
            tcp: None,
            ..settings()
        },
        Metrics::new(),
        s.shutdown.child_token(),
    )
    .await
    .expect("endpoint");
    assert!(matches!(
        udp_only.register(spec(&s, Transport::Tcp)),
        Err(SipError::NoTransport(Transport::Tcp))
    ));
}
