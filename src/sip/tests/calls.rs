use super::*;

async fn answered_call_echoes_and_hangs_up(transport: Transport) {
    let seen = Arc::new(Recorder::default());
    let p = peers(scripted(seen.clone())).await;
    let (handle, mut rx) = p.sip.invite(invite(&p, transport)).await.expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(events.contains(&UacEvent::Ringing), "{events:?}");
    let Some(UacEvent::Answered { sdp }) = events.last() else {
        panic!("not answered: {events:?}");
    };
    assert!(sdp.contains("RTP/AVP 0 101"), "{sdp}");
    rtp_round_trip(media_addr(sdp)).await;
    assert_eq!(p.echo.stats().active_calls, 1);

    let sent = seen.last().expect("invite seen");
    assert_eq!(sent.header("Content-Type"), Some("application/sdp"));
    assert_eq!(sent.header("User-Agent"), Some("siphon-test"));
    let port = p.sip.local_addr(transport).expect("listener").port();
    let contact = sent.header("Contact").expect("contact");
    assert!(contact.contains(&format!("127.0.0.1:{port}")), "{contact}");
    let via = sent.header("Via").expect("via");
    assert!(via.contains(&format!("127.0.0.1:{port}")), "{via}");
    assert!(sent.sdp.contains("m=audio 40000"));

    handle.hangup().await;
    handle.hangup().await;
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: false });
    assert!(eventually(|| p.echo.stats().active_calls == 0).await);
    assert!(p.echo.stats().packets_echoed >= 1);
    assert!(metric_line(&p.metrics, "direction=\"out\",kind=\"BYE\""));
}

#[tokio::test]
async fn udp_call_is_answered_echoes_and_hangs_up() {
    answered_call_echoes_and_hangs_up(Transport::Udp).await;
}

#[tokio::test]
async fn tcp_call_is_answered_echoes_and_hangs_up() {
    answered_call_echoes_and_hangs_up(Transport::Tcp).await;
}

#[tokio::test]
async fn remote_bye_ends_the_call() {
    /// Hangs up 100 ms after answering.
    #[derive(Debug)]
    struct Bye;
    impl EchoScript for Bye {
        fn hangup_after(&self) -> Option<Duration> {
            Some(Duration::from_millis(100))
        }
    }
    let p = peers(scripted(Arc::new(Bye))).await;
    let (_handle, mut rx) = p
        .sip
        .invite(invite(&p, Transport::Udp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(matches!(events.last(), Some(UacEvent::Answered { .. })));
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: true });
    assert!(eventually(|| p.echo.stats().active_calls == 0).await);
}

#[tokio::test]
async fn rejection_is_reported_with_its_reason() {
    /// A busy phone.
    #[derive(Debug)]
    struct Busy;
    impl EchoScript for Busy {
        fn reject(&self) -> Option<u16> {
            Some(486)
        }
    }
    let p = peers(scripted(Arc::new(Busy))).await;
    let (_handle, mut rx) = p
        .sip
        .invite(invite(&p, Transport::Udp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert_eq!(
        events.last(),
        Some(&UacEvent::Failed {
            code: 486,
            reason: "Busy Here".into()
        })
    );
}

#[tokio::test]
async fn no_common_codec_is_488() {
    /// A phone that speaks only G.722.
    #[derive(Debug)]
    struct G722(Vec<String>);
    impl EchoScript for G722 {
        fn codecs(&self) -> Option<&[String]> {
            Some(&self.0)
        }
    }
    let p = peers(scripted(Arc::new(G722(vec!["G722".into()])))).await;
    let (_handle, mut rx) = p
        .sip
        .invite(invite(&p, Transport::Tcp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 488, .. })),
        "{events:?}"
    );
}

/// A PBX that wants alice's digest credentials, and records the INVITEs.
#[derive(Debug)]
struct Challenger(EchoChallenge, Recorder);

impl EchoScript for Challenger {
    fn received(&self, invite: &ReceivedInvite) {
        self.1.received(invite);
    }

    fn challenge(&self) -> Option<&EchoChallenge> {
        Some(&self.0)
    }
}

async fn call_with_password(
    algorithm: DigestAlgorithm,
    password: Option<&str>,
) -> (Peers, Arc<Challenger>, Vec<UacEvent>) {
    let want = EchoChallenge {
        realm: "echo".into(),
        username: "alice".into(),
        password: "s3cret".into(),
        algorithm,
    };
    let script = Arc::new(Challenger(want, Recorder::default()));
    let p = peers(scripted(script.clone())).await;
    let mut req = invite(&p, Transport::Udp);
    req.credentials = password.map(|pw| Credentials {
        username: "alice".into(),
        password: pw.into(),
    });
    let (handle, mut rx) = p.sip.invite(req).await.expect("invite");
    let events = until_settled(&mut rx).await;
    handle.hangup().await;
    (p, script, events)
}

#[tokio::test]
async fn digest_md5_and_sha256_challenges_are_answered() {
    for (alg, token) in [
        (DigestAlgorithm::Md5, "algorithm=MD5"),
        (DigestAlgorithm::Sha256, "algorithm=SHA-256"),
    ] {
        let (_p, script, events) = call_with_password(alg, Some("s3cret")).await;
        assert!(
            matches!(events.last(), Some(UacEvent::Answered { .. })),
            "{alg:?}: {events:?}"
        );
        let auth = script.1.last().expect("invite");
        let auth = auth.header("Authorization").expect("authorization");
        assert!(auth.contains(token) && auth.contains("qop=auth"), "{auth}");
    }
}

#[tokio::test]
async fn wrong_password_fails_with_403() {
    let (_p, _, events) = call_with_password(DigestAlgorithm::Sha256, Some("nope")).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 403, .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn challenge_without_credentials_fails_with_401() {
    let (_p, _, events) = call_with_password(DigestAlgorithm::Md5, None).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 401, .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn hangup_while_ringing_cancels() {
    /// A phone nobody picks up.
    #[derive(Debug)]
    struct Rings;
    impl EchoScript for Rings {
        fn ring_for(&self) -> Option<Duration> {
            Some(Duration::from_secs(30))
        }
    }
    let p = peers(scripted(Arc::new(Rings))).await;
    let (handle, mut rx) = p
        .sip
        .invite(invite(&p, Transport::Udp))
        .await
        .expect("invite");
    while next(&mut rx).await != UacEvent::Ringing {}
    handle.hangup().await;
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: false });
    assert!(metric_line(&p.metrics, "direction=\"out\",kind=\"CANCEL\""));
    assert!(metric_line(&p.metrics, "direction=\"in\",kind=\"4xx\""));
    assert_eq!(p.echo.stats().calls_answered, 0);
}

#[tokio::test]
async fn unanswered_invite_times_out_with_408() {
    let shutdown = CancellationToken::new();
    let sip = SipEndpoint::start_with_t1(
        settings(),
        Metrics::new(),
        shutdown.clone(),
        Duration::from_millis(10),
    )
    .await
    .expect("endpoint");
    let silent = UdpSocket::bind(local()).await.expect("silent peer");
    let addr = silent.local_addr().expect("addr");
    let req = OutboundInvite {
        target: format!("sip:nobody@{addr}"),
        from_user: "alice".into(),
        from_display: None,
        sdp: offer(),
        credentials: None,
        log_id: "timeout".into(),
        failover: Vec::new(),
        response_wait: None,
        headers: Vec::new(),
    };
    let (_handle, mut rx) = sip.invite(req).await.expect("invite");
    assert_eq!(
        next(&mut rx).await,
        UacEvent::Failed {
            code: 408,
            reason: "Request Timeout".into()
        }
    );
    shutdown.cancel();
}

#[tokio::test]
async fn invalid_targets_are_refused() {
    let p = peers(EchoBehavior::default()).await;
    let mut req = invite(&p, Transport::Udp);
    req.target = "not a uri".into();
    assert!(p.sip.invite(req).await.is_err());
}

#[tokio::test]
async fn tcp_only_endpoint_calls_over_tcp_and_refuses_udp_targets() {
    let seen = Arc::new(Recorder::default());
    let p = peers(scripted(seen.clone())).await;
    let shutdown = p.shutdown.child_token();
    let tcp_only = SipSettings {
        udp: None,
        ..settings()
    };
    let sip = SipEndpoint::start(tcp_only, Metrics::new(), shutdown)
        .await
        .expect("endpoint");
    assert!(sip.local_addr(Transport::Udp).is_none());
    assert!(matches!(
        sip.invite(invite(&p, Transport::Udp)).await,
        Err(SipError::NoTransport(Transport::Udp))
    ));
    let (handle, mut rx) = sip
        .invite(invite(&p, Transport::Tcp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Answered { .. })),
        "{events:?}"
    );
    let port = sip.local_addr(Transport::Tcp).expect("tcp").port();
    let via = seen.last().expect("invite");
    let via = via.header("Via").expect("via");
    assert!(via.contains(&format!("TCP 127.0.0.1:{port}")), "{via}");
    handle.hangup().await;
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: false });
}
