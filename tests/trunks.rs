//! Several trunks: a call fails over to the next trunk on 503 or an
//! unreachable trunk but not on the callee's own answer, and OPTIONS pings
//! take a trunk out of the order while it is down and back once it answers.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::Signaling;
use serde_json::json;
use siphon::config::{Config, TrunkConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::EchoServer;
use siphon_doubles::ScriptedEcho;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// siphon with one trunk per script, in that order of priority.
struct Rig {
    gateway: Gateway,
    metrics: Metrics,
    scripts: Vec<Arc<ScriptedEcho>>,
    _echoes: Vec<EchoServer>,
    _stop: CancellationToken,
}

impl Rig {
    async fn start(scripts: Vec<ScriptedEcho>, tweak: impl FnOnce(&mut Config)) -> Rig {
        let stop = CancellationToken::new();
        let scripts: Vec<Arc<ScriptedEcho>> = scripts.into_iter().map(Arc::new).collect();
        let mut echoes = Vec::new();
        let mut config = common::loopback_config();
        for (i, script) in scripts.iter().enumerate() {
            let echo = siphon_doubles::echo(script.install(), &stop).await.unwrap();
            config.sip.trunks.push(TrunkConfig {
                name: format!("t{}", i + 1),
                uri: Some(format!("sip:{}", echo.local_addr())),
                priority: i as u32 + 1,
                ping_interval_secs: 0,
                ..TrunkConfig::default()
            });
            echoes.push(echo);
        }
        tweak(&mut config);
        let metrics = Metrics::new();
        let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
        Rig {
            gateway,
            metrics,
            scripts,
            _echoes: echoes,
            _stop: stop,
        }
    }

    async fn signaling(&self) -> Signaling {
        let url = format!("ws://{}/ws", self.gateway.http_addr());
        Signaling::connect(&url).await.unwrap()
    }

    /// INVITEs each trunk has received.
    fn invites(&self) -> Vec<usize> {
        self.scripts.iter().map(|s| s.invites()).collect()
    }

    /// Wait for `siphon_trunk_up{trunk}` to read `up`.
    async fn until_up(&self, trunk: &str, up: u64) {
        let line = format!("siphon_trunk_up{{trunk=\"{trunk}\"}} ");
        let deadline = tokio::time::Instant::now() + T;
        while common::counter(&self.metrics, &line) != up {
            assert!(tokio::time::Instant::now() < deadline, "{trunk} never {up}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A call to 1000, answered with audio both ways, then hung up.
async fn call_with_audio(sig: &mut Signaling, call_id: &str) {
    let browser = common::answered_call(sig, call_id).await;
    let back = common::echo_round_trip(&browser, 30).await;
    assert!(back >= 25, "only {back} of 30 packets came back");
    sig.send(json!({"type":"hangup","call_id":call_id}))
        .await
        .unwrap();
    sig.recv_type("hangup", T).await.unwrap();
    browser.close().await;
}

fn rejecting(code: u16) -> ScriptedEcho {
    ScriptedEcho {
        reject: Some(code),
        ..ScriptedEcho::default()
    }
}

#[tokio::test]
async fn a_503_moves_the_call_to_the_next_trunk() {
    let rig = Rig::start(vec![rejecting(503), ScriptedEcho::default()], |_| {}).await;
    let mut sig = rig.signaling().await;
    call_with_audio(&mut sig, "c1").await;
    assert_eq!(rig.invites(), [1, 1]);
}

#[tokio::test]
async fn the_callees_own_answer_does_not_fail_over() {
    let rig = Rig::start(vec![rejecting(486), ScriptedEcho::default()], |_| {}).await;
    let mut sig = rig.signaling().await;
    let browser = common::Browser::new(&[common::Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"c1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 486, "{hangup}");
    assert_eq!(rig.invites(), [1, 0]);
}

#[tokio::test]
async fn an_unreachable_trunk_is_skipped() {
    // Trunk 1 is a TCP port nobody listens on: the connection is refused.
    let closed = siphon_testkit::ports::block(1);
    let rig = Rig::start(vec![ScriptedEcho::default()], |c| {
        c.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
        c.sip.trunks.insert(
            0,
            TrunkConfig {
                name: "dead".into(),
                uri: Some(format!("sip:127.0.0.1:{closed};transport=tcp")),
                ping_interval_secs: 0,
                ..TrunkConfig::default()
            },
        );
    })
    .await;
    let mut sig = rig.signaling().await;
    call_with_audio(&mut sig, "c1").await;
    assert_eq!(rig.invites(), [1]);
}

#[tokio::test]
async fn a_trunk_down_by_its_pings_is_passed_over_until_it_answers_again() {
    let primary = ScriptedEcho::default();
    primary.options.store(503, Ordering::Relaxed);
    let rig = Rig::start(vec![primary, ScriptedEcho::default()], |c| {
        for trunk in &mut c.sip.trunks {
            trunk.ping_interval_secs = 1;
            trunk.down_after = 2;
            trunk.up_after = 1;
        }
    })
    .await;
    rig.until_up("t2", 1).await;
    rig.until_up("t1", 0).await;
    let mut sig = rig.signaling().await;
    call_with_audio(&mut sig, "c1").await;
    assert_eq!(rig.invites(), [0, 1], "the down trunk is not tried first");
    rig.scripts[0].options.store(0, Ordering::Relaxed);
    rig.until_up("t1", 1).await;
    call_with_audio(&mut sig, "c2").await;
    assert_eq!(rig.invites(), [1, 1], "calls return to the trunk once up");
}
