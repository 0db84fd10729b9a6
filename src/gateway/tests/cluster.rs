//! `[cluster]`: every online user's address of record registered at the
//! cluster's registrar with this instance's Contact, from the first session
//! to a grace period after the last; the registrar's state in the metrics.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::client_register::{session, wait_for};
use super::{config, offer_for, recv_type, send};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::sip::tests::registrar::{Mode, Registrar, RegistrarConfig};
use crate::sip::Transport;
use crate::webrtc::tests::browser::Browser;

fn cluster_config(registrar: &Registrar) -> Config {
    let mut c = config();
    c.cluster.instance = "a".into();
    c.cluster.registrar = Some(registrar.uri(Transport::Udp));
    c.cluster.username = "auth-1001".into();
    c.cluster.password = "s3cret".into();
    c.cluster.unregister_after_secs = 0;
    c.auth.allow_dynamic_users = true;
    c.users = vec![crate::config::UserConfig {
        name: "dora".into(),
        extension: "1001".into(),
        ..Default::default()
    }];
    c
}

/// The value of one series in `metrics`' exposition, 0 when absent.
fn series(metrics: &Metrics, line: &str) -> i64 {
    let text = metrics.render();
    let found = text.lines().find_map(|l| l.strip_prefix(line));
    found.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

async fn until(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const REGISTERED: &str = "siphon_registrations{kind=\"cluster\",state=\"registered\"}";
const FAILED: &str = "siphon_registrations{kind=\"cluster\",state=\"failed\"}";

#[tokio::test(flavor = "multi_thread")]
async fn online_users_are_registered_with_this_instances_contact_until_they_leave() {
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    let metrics = Metrics::new();
    let gw = Gateway::start(cluster_config(&registrar), metrics.clone())
        .await
        .unwrap();
    let sip_port = gw.sip_addr(Transport::Udp).unwrap().port();
    let build = format!(
        "siphon_build_info{{instance=\"a\",version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(series(&metrics, &build), 1);
    assert!(registrar.seen().is_empty(), "nobody is online yet");

    // erin (not configured) is registered under her name, dora under her
    // extension: the user part a PBX dials.
    let first = session(&gw, Some("erin")).await;
    let erin = wait_for(&registrar, |s| {
        s.to.contains("sip:erin@") && s.auth.is_some()
    })
    .await;
    assert!(erin.contact.contains(&format!(":{sip_port}")), "{erin:?}");
    let dora = session(&gw, Some("dora")).await;
    wait_for(&registrar, |s| {
        s.to.contains("sip:1001@") && s.auth.is_some()
    })
    .await;
    until("two registered", || series(&metrics, REGISTERED) == 2).await;

    // A second session of erin adds nothing; erin leaves with her last one.
    let second = session(&gw, Some("erin")).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gone = |s: &crate::sip::tests::registrar::Seen| s.expires == Some(0);
    assert!(!registrar.seen().iter().any(gone), "erin is still online");
    drop(second);
    let left = wait_for(&registrar, |s| gone(s)).await;
    assert!(left.to.contains("sip:erin@"), "{left:?}");
    assert_eq!(left.call_id, erin.call_id, "the same binding");
    until("one registered", || series(&metrics, REGISTERED) == 1).await;

    // Shutdown removes the rest.
    gw.shutdown().await;
    let seen = registrar.seen();
    let last = seen.last().unwrap();
    assert!(last.to.contains("sip:1001@") && gone(last), "{last:?}");
    assert_eq!(series(&metrics, REGISTERED), 0);
    drop(dora);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_registrar_shows_and_is_retried_while_calls_go_on() {
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    registrar.set_mode(Mode::Reject(503));
    let metrics = Metrics::new();
    let gw = Gateway::start(cluster_config(&registrar), metrics.clone())
        .await
        .unwrap();
    let up = "siphon_cluster_registrar_up";
    assert_eq!(series(&metrics, up), 1, "no failure seen yet");

    let mut ws = session(&gw, Some("erin")).await;
    until("the failure", || series(&metrics, FAILED) == 1).await;
    assert_eq!(series(&metrics, up), 0);
    // The user is served all the same: a call to the echo extension is answered.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let browser = Browser::new(sock.local_addr().unwrap(), Instant::now(), false);
    let offer = offer_for(&browser);
    send(
        &mut ws,
        json!({"type":"call","call_id":"c1","to":"echo","sdp":offer}),
    )
    .await;
    recv_type(&mut ws, "answered").await;

    // The registrar comes back: the next try (backoff from 2 s) registers.
    registrar.set_mode(Mode::Normal);
    until("the retry", || series(&metrics, REGISTERED) == 1).await;
    assert_eq!((series(&metrics, up), series(&metrics, FAILED)), (1, 0));
    gw.shutdown().await;
}

/// While clustered, a user registered at the PBX has one binding there for
/// the whole cluster: the cluster's Contact, from start, never removed by
/// an instance (it lapses if none refreshes it).
#[tokio::test(flavor = "multi_thread")]
async fn a_pbx_registration_names_the_cluster_and_outlives_the_instance() {
    let stop = CancellationToken::new();
    let cluster = Registrar::start(RegistrarConfig::default(), &stop).await;
    let pbx = Registrar::start(RegistrarConfig::default(), &stop).await;
    let mut c = cluster_config(&cluster);
    c.cluster.contact = "kamailio.test:5060".into();
    c.users[0].register = true;
    c.users[0].registrar = Some(pbx.uri(Transport::Udp));
    c.users[0].username = "auth-1001".into();
    c.users[0].password = "s3cret".into();
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();

    // Registered with nobody online, with the cluster's Contact.
    let seen = wait_for(&pbx, |s| s.auth.is_some()).await;
    assert!(seen.to.contains("sip:1001@"), "{seen:?}");
    assert!(
        seen.contact.contains("sip:1001@kamailio.test:5060"),
        "{seen:?}"
    );
    // A session neither adds to it nor, leaving, removes it.
    let dora = session(&gw, Some("dora")).await;
    wait_for(&cluster, |s| s.to.contains("sip:1001@") && s.auth.is_some()).await;
    drop(dora);
    wait_for(&cluster, |s| s.expires == Some(0)).await;
    gw.shutdown().await;
    assert!(
        pbx.seen().iter().all(|s| s.expires != Some(0)),
        "no instance removes the cluster's binding: {:?}",
        pbx.seen()
    );
}

/// A user no INVITE could ring here (not configured, dynamic users not
/// allowed) is not registered: the registrar would route calls to a 404.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_calls_cannot_reach_is_not_registered() {
    let stop = CancellationToken::new();
    let registrar = Registrar::start(RegistrarConfig::default(), &stop).await;
    let mut c = cluster_config(&registrar);
    c.auth.allow_dynamic_users = false;
    let gw = Gateway::start(c, Metrics::new()).await.unwrap();
    let _erin = session(&gw, Some("erin")).await;
    let _dora = session(&gw, Some("dora")).await;
    let dora = wait_for(&registrar, |s| s.auth.is_some()).await;
    assert!(dora.to.contains("sip:1001@"), "{dora:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        registrar.seen().iter().all(|s| !s.to.contains("erin")),
        "{:?}",
        registrar.seen()
    );
    gw.shutdown().await;
}
