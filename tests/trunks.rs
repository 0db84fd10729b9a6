//! Where a browser's call goes when the first destination will not take
//! it. Several trunks: a call fails over to the next trunk on 503 or an
//! unreachable trunk but not on the callee's own answer, and OPTIONS pings
//! take a trunk out of the order while it is down and back once it answers.
//! Redirects: a 3xx is followed to its Contacts in q order, without loops,
//! at most three times.

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

/// siphon with one echo per script, the first `trunks` of them its trunks
/// in that order of priority.
struct Rig {
    gateway: Gateway,
    metrics: Metrics,
    scripts: Vec<Arc<ScriptedEcho>>,
    echoes: Vec<EchoServer>,
    _stop: CancellationToken,
}

impl Rig {
    async fn start(scripts: Vec<ScriptedEcho>, tweak: impl FnOnce(&mut Config)) -> Rig {
        let trunks = scripts.len();
        Self::with_trunks(trunks, scripts, tweak).await
    }

    async fn with_trunks(
        trunks: usize,
        scripts: Vec<ScriptedEcho>,
        tweak: impl FnOnce(&mut Config),
    ) -> Rig {
        let stop = CancellationToken::new();
        let scripts: Vec<Arc<ScriptedEcho>> = scripts.into_iter().map(Arc::new).collect();
        let mut echoes = Vec::new();
        let mut config = common::loopback_config();
        for (i, script) in scripts.iter().enumerate() {
            let echo = siphon_doubles::echo(script.install(), &stop).await.unwrap();
            if i >= trunks {
                echoes.push(echo);
                continue;
            }
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
            echoes,
            _stop: stop,
        }
    }

    async fn signaling(&self) -> Signaling {
        common::connect(&self.gateway).await
    }

    /// INVITEs each trunk has received.
    fn invites(&self) -> Vec<usize> {
        self.scripts.iter().map(|s| s.invites()).collect()
    }

    /// A Contact for echo `i`, with `params` after it (`;q=0.5`).
    fn contact(&self, i: usize, params: &str) -> String {
        format!("<sip:1000@{}>{params}", self.echoes[i].local_addr())
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

fn plain(n: usize) -> Vec<ScriptedEcho> {
    (0..n).map(|_| ScriptedEcho::default()).collect()
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
    assert_eq!(unanswered(&mut sig).await, 486);
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
async fn a_trunk_that_never_answers_is_given_up_after_its_response_timeout() {
    // Trunk 1 is a UDP socket that reads nothing: without the response
    // timeout the call would wait for Timer B (32 s), past `T`.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let rig = Rig::start(vec![ScriptedEcho::default()], |c| {
        c.sip.trunks.insert(
            0,
            TrunkConfig {
                name: "silent".into(),
                uri: Some(format!("sip:{addr}")),
                ping_interval_secs: 0,
                priority: 0,
                response_timeout_secs: 1,
                ..TrunkConfig::default()
            },
        );
    })
    .await;
    let mut sig = rig.signaling().await;
    call_with_audio(&mut sig, "c1").await;
    assert_eq!(rig.invites(), [1]);
    let mut buf = [0u8; 2048];
    silent.set_nonblocking(true).unwrap();
    let (n, _) = silent
        .recv_from(&mut buf)
        .expect("trunk 1 got the INVITE first");
    assert!(buf[..n].starts_with(b"INVITE "));
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

/// A call to 1000 that ends before an answer, with the `hangup` code.
async fn unanswered(sig: &mut Signaling) -> u64 {
    let browser = common::place_call(sig, "c1", "1000").await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    browser.close().await;
    hangup["code"].as_u64().unwrap()
}

#[tokio::test]
async fn a_redirect_is_followed_in_q_order() {
    // The trunk sends the call to 1 (q=0.5) and 2 (q=0.9); 2 is
    // unavailable, so the call ends up at 1.
    let scripts = vec![
        ScriptedEcho::default(),
        ScriptedEcho::default(),
        rejecting(503),
    ];
    let rig = Rig::with_trunks(1, scripts, |_| {}).await;
    *rig.scripts[0].redirect.lock().unwrap() =
        vec![rig.contact(1, ";q=0.5"), rig.contact(2, ";q=0.9")];
    let mut sig = rig.signaling().await;
    call_with_audio(&mut sig, "c1").await;
    assert_eq!(rig.invites(), [1, 1, 1]);
}

#[tokio::test]
async fn a_redirect_loop_ends_the_call_with_the_redirect() {
    let rig = Rig::with_trunks(1, plain(2), |_| {}).await;
    // The trunk sends the call to 1, which sends it back to the trunk.
    *rig.scripts[0].redirect.lock().unwrap() = vec![rig.contact(1, "")];
    *rig.scripts[1].redirect.lock().unwrap() = vec![rig.contact(0, "")];
    let mut sig = rig.signaling().await;
    assert_eq!(unanswered(&mut sig).await, 302);
    assert_eq!(rig.invites(), [1, 1]);
}

#[tokio::test]
async fn at_most_three_redirects_are_followed() {
    let rig = Rig::with_trunks(1, plain(5), |_| {}).await;
    for i in 0..4 {
        *rig.scripts[i].redirect.lock().unwrap() = vec![rig.contact(i + 1, "")];
    }
    let mut sig = rig.signaling().await;
    assert_eq!(unanswered(&mut sig).await, 302);
    assert_eq!(rig.invites(), [1, 1, 1, 1, 0]);
}

#[tokio::test]
async fn a_forwarded_call_tells_the_browser_who_forwarded_it_and_where() {
    let history = "<sip:1000@pbx>;index=1, <sip:2000@pbx?Reason=SIP%3Bcause%3D302>;index=1.1";
    let forwarding = ScriptedEcho {
        ringing_headers: vec![("History-Info".into(), history.into())],
        ring_for: Some(Duration::from_millis(200)),
        ..ScriptedEcho::default()
    };
    let rig = Rig::start(vec![forwarding], |_| {}).await;
    let mut sig = rig.signaling().await;
    let browser = common::place_call(&mut sig, "c1", "1000").await;
    let forwarded = sig.recv_type("forwarded", T).await.unwrap();
    assert_eq!(forwarded["from"], "sip:1000@pbx", "{forwarded}");
    assert_eq!(forwarded["to"], "sip:2000@pbx", "{forwarded}");
    sig.recv_type("ringing", T).await.unwrap();
    sig.recv_type("answered", T).await.unwrap();
    browser.close().await;
}
