//! `register` / `unregister` from browser sessions against an in-process
//! registrar that challenges with digest.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{config, recv, recv_type, send, Ws};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::sip::tests::registrar::{Registrar, RegistrarConfig, Seen};
use crate::sip::Transport;

pub(super) async fn session(gw: &Gateway, user: Option<&str>) -> Ws {
    let url = format!("ws://{}/ws", gw.http_addr());
    let (mut ws, _) =
        tokio_tungstenite::connect_async(siphon_testkit::ws::ws_request(&url).unwrap())
            .await
            .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    if let Some(user) = user {
        send(&mut ws, json!({"type":"hello","user":user})).await;
    }
    ws
}

pub(super) async fn wait_for(registrar: &Registrar, what: impl Fn(&Seen) -> bool) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = registrar.seen().into_iter().rev().find(|s| what(s)) {
            return s;
        }
        assert!(Instant::now() < deadline, "{:?}", registrar.seen());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_registers_its_extension_until_it_closes() {
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    let mut c = config();
    c.sip.client_register.enabled = true;
    c.sip.client_register.registrar = Some(registrar.uri(Transport::Udp));
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();

    let mut first = session(&gw, Some("erin")).await;
    let creds = json!({"type":"register","extension":"1002","username":"auth-1001",
        "password":"s3cret","expires":120});
    send(&mut first, creds.clone()).await;
    let registered = recv_type(&mut first, "registered").await;
    assert_eq!(
        (registered["user"].as_str(), registered["expires"].as_u64()),
        (Some("erin"), Some(120))
    );
    let seen = wait_for(&registrar, |s| s.auth.is_some()).await;
    assert!(seen.to.contains("sip:1002@"), "{seen:?}");
    // INVITEs for the extension now ring erin.
    let user = gw.inner.client_registrations.user_of("1002");
    assert_eq!(user.as_deref(), Some("erin"));

    // One registration per user; another session hears the state but does
    // not own the registration.
    send(&mut first, creds).await;
    assert_eq!(recv(&mut first).await["code"], "in_use");
    let mut second = session(&gw, Some("erin")).await;
    assert_eq!(recv_type(&mut second, "registered").await["user"], "erin");
    send(&mut second, json!({"type":"unregister"})).await;
    assert_eq!(recv(&mut second).await["code"], "not_registered");

    // Closing the owning session unregisters (Expires: 0) and tells the rest.
    drop(first);
    let last = wait_for(&registrar, |s| s.expires == Some(0)).await;
    assert!(last.to.contains("sip:1002@"), "{last:?}");
    assert_eq!(recv_type(&mut second, "unregistered").await["user"], "erin");
    assert_eq!(gw.inner.client_registrations.user_of("1002"), None);

    // Now the second session may register, and unregister explicitly.
    send(
        &mut second,
        json!({"type":"register","extension":"1002","username":"auth-1001","password":"s3cret"}),
    )
    .await;
    let again = recv_type(&mut second, "registered").await;
    assert_eq!(again["expires"], 300, "the configured default expiry");
    send(&mut second, json!({"type":"unregister"})).await;
    recv_type(&mut second, "unregistered").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_register_requests_get_errors_and_nothing_else() {
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    let mut c = config();
    c.sip.client_register.enabled = true;
    c.sip.client_register.registrar = Some(registrar.uri(Transport::Tcp));
    c.users = vec![crate::config::UserConfig {
        name: "frank".into(),
        extension: "2000".into(),
        ..Default::default()
    }];
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();

    let mut anonymous = session(&gw, None).await;
    send(&mut anonymous, json!({"type":"register","password":"x"})).await;
    assert_eq!(recv(&mut anonymous).await["code"], "forbidden");

    let mut ws = session(&gw, Some("gina")).await;
    for (bad, code) in [
        (
            json!({"type":"register","password":"x","expires":10}),
            "bad_message",
        ),
        (json!({"type":"register","password":""}), "bad_message"),
        (
            json!({"type":"register","extension":"a b","password":"x"}),
            "bad_message",
        ),
        (
            json!({"type":"register","extension":"2000","password":"x"}),
            "in_use",
        ),
        (json!({"type":"unregister"}), "not_registered"),
    ] {
        send(&mut ws, bad.clone()).await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["code"], code, "{bad} -> {reply}");
    }
    assert!(registrar.seen().is_empty(), "nothing reached the registrar");

    // Wrong credentials: the registrar's 403 reaches the session.
    send(
        &mut ws,
        json!({"type":"register","username":"auth-1001","password":"wrong"}),
    )
    .await;
    let failed = recv_type(&mut ws, "registration_failed").await;
    assert_eq!(
        (failed["user"].as_str(), failed["code"].as_u64()),
        (Some("gina"), Some(403))
    );
    send(&mut ws, json!({"type":"unregister"})).await;
    recv_type(&mut ws, "unregistered").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn register_is_refused_unless_config_allows_it() {
    let gw = Gateway::start(config(), Metrics::new()).await.unwrap();
    let mut ws = session(&gw, Some("hana")).await;
    send(&mut ws, json!({"type":"register","password":"x"})).await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["code"], "forbidden");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("sip.client_register.enabled"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_user_is_registered_while_online() {
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    let mut c = config();
    c.users = vec![crate::config::UserConfig {
        name: "ivy".into(),
        extension: "1003".into(),
        register: true,
        registrar: Some(registrar.uri(Transport::Tcp)),
        username: "auth-1001".into(),
        password: "s3cret".into(),
        unregister_after_secs: 0,
        ..Default::default()
    }];
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(registrar.seen().is_empty(), "nobody online: no REGISTER");

    // Logging in registers; a second tab shares the registration.
    let mut first = session(&gw, Some("ivy")).await;
    assert_eq!(recv_type(&mut first, "registered").await["user"], "ivy");
    let mut second = session(&gw, Some("ivy")).await;
    assert_eq!(recv_type(&mut second, "registered").await["user"], "ivy");
    // Client registration is off in this config: `register` is refused.
    send(&mut second, json!({"type":"register","password":"x"})).await;
    assert_eq!(recv(&mut second).await["code"], "forbidden");

    // Closing one tab keeps it; logging out (the last tab) unregisters.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(registrar.seen().iter().all(|s| s.expires != Some(0)));
    drop(second);
    let gone = wait_for(&registrar, |s| s.expires == Some(0)).await;
    assert!(gone.to.contains("sip:1003@"), "{gone:?}");

    // Logging in again registers again.
    let before = registrar.seen().len();
    let mut third = session(&gw, Some("ivy")).await;
    recv_type(&mut third, "registered").await;
    assert!(registrar.seen().len() > before);
    gw.shutdown().await;
}
