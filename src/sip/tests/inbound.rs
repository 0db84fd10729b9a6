//! Inbound calls: siphon's own UAC calls a second `SipEndpoint` whose
//! inbound stream the test consumes.

use super::*;

pub(super) struct Pair {
    pub caller: SipEndpoint,
    pub callee: SipEndpoint,
    pub calls: mpsc::Receiver<IncomingCall>,
    pub caller_metrics: Metrics,
    pub callee_metrics: Metrics,
    shutdown: CancellationToken,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(super) async fn pair(inbound: InboundPolicy) -> Pair {
    let shutdown = CancellationToken::new();
    let callee_metrics = Metrics::new();
    let callee_settings = SipSettings {
        inbound,
        ..settings()
    };
    let callee = SipEndpoint::start(callee_settings, callee_metrics.clone(), shutdown.clone())
        .await
        .expect("callee");
    Pair::around(callee, callee_metrics, shutdown).await
}

impl Pair {
    /// A caller for `callee`, whose inbound stream is taken here.
    pub(super) async fn around(
        callee: SipEndpoint,
        callee_metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Pair {
        let caller_metrics = Metrics::new();
        let caller = SipEndpoint::start(settings(), caller_metrics.clone(), shutdown.clone())
            .await
            .expect("caller");
        let calls = callee.take_inbound().expect("inbound stream");
        assert!(callee.take_inbound().is_none(), "taken once");
        Pair {
            caller,
            callee,
            calls,
            caller_metrics,
            callee_metrics,
            shutdown,
        }
    }
}

fn call_bob(p: &Pair, transport: Transport) -> OutboundInvite {
    let addr = p.callee.local_addr(transport).expect("listener");
    let suffix = match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    };
    OutboundInvite {
        target: format!("sip:bob@{addr}{suffix}"),
        from_user: "alice".into(),
        from_display: Some("Alice".into()),
        sdp: offer(),
        credentials: None,
        log_id: "inbound-test".into(),
        failover: Vec::new(),
        response_wait: None,
        headers: Vec::new(),
    }
}

pub(super) async fn next_call(rx: &mut mpsc::Receiver<IncomingCall>) -> IncomingCall {
    timeout(PROMPT, rx.recv())
        .await
        .expect("call in time")
        .expect("call")
}

pub(super) async fn next_uas(rx: &mut mpsc::Receiver<UasEvent>) -> UasEvent {
    timeout(PROMPT, rx.recv())
        .await
        .expect("uas event in time")
        .expect("uas event")
}

pub(super) fn answer_sdp() -> String {
    "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        .into()
}

pub(super) fn error_count(metrics: &Metrics, reason: &str, n: u64) -> bool {
    metric_line(
        metrics,
        &format!("siphon_sip_errors_total{{reason=\"{reason}\"}} {n}"),
    )
}

/// Call bob, ring, answer; returns the callee's call and the caller's side.
async fn answered(
    p: &mut Pair,
    transport: Transport,
) -> (IncomingCall, UacHandle, mpsc::Receiver<UacEvent>) {
    let (uac, mut rx) = p
        .caller
        .invite(call_bob(p, transport))
        .await
        .expect("invite");
    let mut call = next_call(&mut p.calls).await;
    call.handle.ringing().await;
    call.handle.ringing().await;
    call.handle.answer(answer_sdp()).await.expect("answer");
    let events = until_settled(&mut rx).await;
    assert_eq!(
        events.iter().filter(|e| **e == UacEvent::Ringing).count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&UacEvent::Answered { sdp: answer_sdp() })
    );
    assert_eq!(next_uas(&mut call.events).await, UasEvent::Acked);
    (call, uac, rx)
}

async fn answered_call_and_caller_bye(transport: Transport) {
    let mut p = pair(InboundPolicy::default()).await;
    let (mut call, uac, mut rx) = answered(&mut p, transport).await;
    assert_eq!(call.user, "bob");
    assert_eq!(call.from_uri, "sip:alice@siphon.test");
    assert_eq!(call.from_display.as_deref(), Some("Alice"));
    assert!(
        call.to_uri.starts_with("sip:bob@127.0.0.1"),
        "{}",
        call.to_uri
    );
    assert!(call.call_id.ends_with("@siphon.test"), "{}", call.call_id);
    assert_eq!(call.sdp, offer());
    assert_eq!(call.transport, transport);
    assert_eq!(call.source.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
    if transport == Transport::Udp {
        assert_eq!(Some(call.source), p.caller.local_addr(Transport::Udp));
    }
    assert!(
        call.handle.answer(answer_sdp()).await.is_err(),
        "answered twice"
    );

    uac.hangup().await;
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: false });
    assert_eq!(
        next_uas(&mut call.events).await,
        UasEvent::Ended { by_remote: true }
    );
    assert!(timeout(PROMPT, call.events.recv())
        .await
        .expect("closed")
        .is_none());
    assert!(metric_line(
        &p.callee_metrics,
        "direction=\"out\",kind=\"2xx\""
    ));
}

#[tokio::test]
async fn udp_call_is_answered_and_caller_hangs_up() {
    answered_call_and_caller_bye(Transport::Udp).await;
}

#[tokio::test]
async fn tcp_call_is_answered_and_caller_hangs_up() {
    answered_call_and_caller_bye(Transport::Tcp).await;
}

#[tokio::test]
async fn local_hangup_ends_the_call_for_the_caller() {
    let mut p = pair(InboundPolicy::default()).await;
    let (mut call, _uac, mut rx) = answered(&mut p, Transport::Udp).await;
    call.handle.hangup().await;
    call.handle.hangup().await;
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: true });
    assert_eq!(
        next_uas(&mut call.events).await,
        UasEvent::Ended { by_remote: false }
    );
}

#[tokio::test]
async fn rejections_reach_the_caller() {
    let mut p = pair(InboundPolicy::default()).await;
    for (code, reason) in [(486, "Busy Here"), (603, "Decline")] {
        let (_uac, mut rx) = p
            .caller
            .invite(call_bob(&p, Transport::Udp))
            .await
            .expect("invite");
        let call = next_call(&mut p.calls).await;
        call.handle.reject(code, "user \"busy\"\r\n").await;
        call.handle.reject(500, "ignored: already rejected").await;
        let events = until_settled(&mut rx).await;
        assert_eq!(
            events.last(),
            Some(&UacEvent::Failed {
                code,
                reason: reason.into()
            })
        );
        assert!(call.handle.answer(answer_sdp()).await.is_err());
    }
}

#[tokio::test]
async fn cancel_before_answer_is_reported_and_answer_refused() {
    let mut p = pair(InboundPolicy::default()).await;
    let (uac, mut rx) = p
        .caller
        .invite(call_bob(&p, Transport::Udp))
        .await
        .expect("invite");
    let mut call = next_call(&mut p.calls).await;
    call.handle.ringing().await;
    while next(&mut rx).await != UacEvent::Ringing {}
    uac.hangup().await;
    assert_eq!(next_uas(&mut call.events).await, UasEvent::Cancelled);
    // siphon's UAC reports its own CANCEL as a local end; the 487 it got is
    // visible on the wire.
    assert_eq!(next(&mut rx).await, UacEvent::Ended { by_remote: false });
    assert!(metric_line(
        &p.caller_metrics,
        "direction=\"in\",kind=\"4xx\""
    ));
    assert!(metric_line(
        &p.callee_metrics,
        "direction=\"out\",kind=\"4xx\""
    ));
    assert!(call.handle.answer(answer_sdp()).await.is_err());
}

#[tokio::test]
async fn dropped_call_is_480() {
    let mut p = pair(InboundPolicy::default()).await;
    let (_uac, mut rx) = p
        .caller
        .invite(call_bob(&p, Transport::Tcp))
        .await
        .expect("invite");
    let call = next_call(&mut p.calls).await;
    let kept = call.handle.clone();
    drop(call);
    // A clone still held keeps the call offered.
    assert!(timeout(QUIET, until_settled(&mut rx)).await.is_err());
    drop(kept);
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 480, .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn untaken_or_dropped_stream_is_480() {
    let mut p = pair(InboundPolicy::default()).await;
    let shutdown = p.shutdown.child_token();
    let untaken = SipEndpoint::start(settings(), Metrics::new(), shutdown)
        .await
        .expect("endpoint");
    let mut req = call_bob(&p, Transport::Udp);
    let addr = untaken.local_addr(Transport::Udp).expect("udp");
    req.target = format!("sip:bob@{addr}");
    let (_uac, mut rx) = p.caller.invite(req).await.expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 480, .. })),
        "{events:?}"
    );

    let (_, closed) = mpsc::channel(1);
    drop(std::mem::replace(&mut p.calls, closed));
    let (_uac, mut rx) = p
        .caller
        .invite(call_bob(&p, Transport::Udp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 480, .. })),
        "{events:?}"
    );
    assert!(error_count(&p.callee_metrics, "inbound_unrouted", 1));
}

fn untrusted(others: OthersPolicy) -> InboundPolicy {
    InboundPolicy {
        trunk_sources: vec!["10.0.0.0/8".parse().expect("net")],
        others,
    }
}

pub(super) fn challenge_policy() -> OthersPolicy {
    OthersPolicy::Challenge {
        realm: "siphon".into(),
        username: "pbx".into(),
        password: "s3cret".into(),
    }
}

#[tokio::test]
async fn untrusted_source_is_forbidden() {
    let p = pair(untrusted(OthersPolicy::Refuse)).await;
    let (_uac, mut rx) = p
        .caller
        .invite(call_bob(&p, Transport::Udp))
        .await
        .expect("invite");
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 403, .. })),
        "{events:?}"
    );
    assert!(error_count(&p.callee_metrics, "inbound_forbidden", 1));
}

async fn challenged_call(password: Option<&str>) -> (Pair, Vec<UacEvent>) {
    let mut p = pair(untrusted(challenge_policy())).await;
    let mut req = call_bob(&p, Transport::Udp);
    req.credentials = password.map(|pw| Credentials {
        username: "pbx".into(),
        password: pw.into(),
    });
    let (_uac, mut rx) = p.caller.invite(req).await.expect("invite");
    if password == Some("s3cret") {
        let call = next_call(&mut p.calls).await;
        call.handle.answer(answer_sdp()).await.expect("answer");
        let events = until_settled(&mut rx).await;
        return (p, events);
    }
    let events = until_settled(&mut rx).await;
    (p, events)
}

#[tokio::test]
async fn challenged_caller_with_credentials_gets_through() {
    let (_p, events) = challenged_call(Some("s3cret")).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Answered { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn challenged_caller_with_wrong_password_is_forbidden() {
    let (p, events) = challenged_call(Some("guess")).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 403, .. })),
        "{events:?}"
    );
    assert!(error_count(&p.callee_metrics, "inbound_forbidden", 1));
    let (_p, events) = challenged_call(None).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 401, .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn hangup_before_answer_is_480_and_handle_futures_are_send() {
    fn send<T: Send>(t: T) -> T {
        t
    }
    let mut p = pair(InboundPolicy::default()).await;
    let (_uac, mut rx) = p
        .caller
        .invite(call_bob(&p, Transport::Udp))
        .await
        .expect("invite");
    let call = send(next_call(&mut p.calls).await);
    let h = call.handle.clone();
    send(h.ringing()).await;
    send(h.hangup()).await;
    send(h.reject(486, "too late")).await;
    assert!(send(h.answer(answer_sdp())).await.is_err());
    let events = until_settled(&mut rx).await;
    assert!(
        matches!(events.last(), Some(UacEvent::Failed { code: 480, .. })),
        "{events:?}"
    );
}
