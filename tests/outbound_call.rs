//! Browser -> SIP calls through a whole in-process siphon: the `webrtc` crate
//! plays the browser over the WebSocket, an rsipstack UAS answers and echoes.

mod common;

use std::time::Duration;

use common::{Browser, Codec, Signaling};
use serde_json::json;
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{DigestAlgorithm, EchoChallenge, EchoServer, EchoSettings};
use siphon_doubles::ScriptedEcho;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);
/// How long the UAS rings before answering in the CANCEL tests.
const RING_TIME: Duration = Duration::from_millis(1500);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SipTransport {
    Udp,
    Tcp,
}

/// A gateway whose trunk is an echo UAS with `behavior`.
struct Rig {
    gateway: Gateway,
    echo: EchoServer,
    /// What the echo plays, and the INVITEs it saw.
    script: Arc<ScriptedEcho>,
    _stop: CancellationToken,
}

impl Rig {
    async fn start(transport: SipTransport, behavior: ScriptedEcho) -> Rig {
        Self::start_with(transport, behavior, |_| {}).await
    }

    async fn start_with(
        transport: SipTransport,
        script: ScriptedEcho,
        tweak: impl FnOnce(&mut Config),
    ) -> Rig {
        let stop = CancellationToken::new();
        let script = Arc::new(script);
        let settings = EchoSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            rtp_ip: "127.0.0.1".parse().unwrap(),
            behavior: script.install(),
        };
        let echo = EchoServer::start(settings, Metrics::new(), stop.clone())
            .await
            .unwrap();
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.sip.udp = Some("127.0.0.1:0".parse().unwrap());
        config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
        config.webrtc.port = 0;
        let port_base = siphon_testkit::ports::block(20);
        config.rtp.port_min = port_base;
        config.rtp.port_max = port_base + 19;
        config.media.workers = 1;
        config.echo.enabled = false;
        let proto = match transport {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
        };
        config.sip.trunk.uri = Some(format!("sip:{};transport={proto}", echo.local_addr()));
        config.sip.trunk.username = "siphon".into();
        config.sip.trunk.password = "s3cret".into();
        tweak(&mut config);
        let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
        Rig {
            gateway,
            echo,
            script,
            _stop: stop,
        }
    }

    async fn signaling(&self) -> Signaling {
        let url = format!("ws://{}/ws", self.gateway.http_addr());
        Signaling::connect(&url).await.unwrap()
    }

    /// Wait until every RTP port is back and no call is left.
    async fn assert_released(&self, free_before: usize) {
        let deadline = tokio::time::Instant::now() + T;
        while (self.gateway.free_rtp_ports() != free_before || self.gateway.active_calls() != 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            self.gateway.free_rtp_ports(),
            free_before,
            "RTP port returned"
        );
        assert_eq!(self.gateway.active_calls(), 0, "call removed");
    }
}

/// Place a call and return the browser once `answered` has been applied.
async fn answered_call(rig: &Rig, sig: &mut Signaling, codecs: &[Codec]) -> Browser {
    let browser = Browser::new(codecs).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"c1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    sig.recv_type("trying", T).await.unwrap();
    let answered = sig.recv_type("answered", T).await.unwrap();
    assert_eq!(answered["call_id"], "c1");
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();
    let _ = rig;
    browser
}

async fn audio_both_ways_then_client_bye(transport: SipTransport) {
    let rig = Rig::start(transport, ScriptedEcho::default()).await;
    let free_before = rig.gateway.free_rtp_ports();
    let mut sig = rig.signaling().await;
    let browser = answered_call(&rig, &mut sig, &[Codec::Pcmu]).await;
    let back = common::echo_round_trip(&browser, 100).await;
    assert!(back >= 90, "only {back} of 100 packets came back intact");
    assert_eq!(rig.echo.stats().active_calls, 1);
    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 200);
    rig.assert_released(free_before).await;
    wait_until(|| rig.echo.stats().active_calls == 0).await;
    browser.close().await;
}

async fn remote_bye_ends_both_legs(transport: SipTransport) {
    let behavior = ScriptedEcho {
        hangup_after: Some(Duration::from_millis(1500)),
        ..Default::default()
    };
    let rig = Rig::start(transport, behavior).await;
    let free_before = rig.gateway.free_rtp_ports();
    let mut sig = rig.signaling().await;
    let browser = answered_call(&rig, &mut sig, &[Codec::Pcmu]).await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        (hangup["code"].as_u64(), hangup["reason"].as_str()),
        (Some(200), Some("Remote hangup"))
    );
    rig.assert_released(free_before).await;
    browser.close().await;
}

async fn busy_reaches_client_as_486(transport: SipTransport) {
    let behavior = ScriptedEcho {
        reject: Some(486),
        ..Default::default()
    };
    let rig = Rig::start(transport, behavior).await;
    let free_before = rig.gateway.free_rtp_ports();
    let mut sig = rig.signaling().await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"b1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 486);
    assert_eq!(hangup["call_id"], "b1");
    rig.assert_released(free_before).await;
}

async fn digest_challenge_is_answered(transport: SipTransport, algorithm: DigestAlgorithm) {
    let challenge = EchoChallenge {
        realm: "pbx.test".into(),
        username: "siphon".into(),
        password: "s3cret".into(),
        algorithm,
    };
    let behavior = ScriptedEcho {
        challenge: Some(challenge),
        ..Default::default()
    };
    let rig = Rig::start(transport, behavior).await;
    let mut sig = rig.signaling().await;
    let browser = answered_call(&rig, &mut sig, &[Codec::Pcmu]).await;
    let back = common::echo_round_trip(&browser, 20).await;
    assert!(back >= 18, "only {back} of 20 packets came back");
    let invite = rig.script.last_invite().unwrap();
    assert!(
        invite.header("Authorization").is_some(),
        "INVITE retried with credentials"
    );
    browser.close().await;
}

async fn no_common_codec_gives_488(transport: SipTransport) {
    let rig = Rig::start_with(transport, ScriptedEcho::default(), |c| {
        c.sip.codecs = vec!["PCMA".into()];
    })
    .await;
    let free_before = rig.gateway.free_rtp_ports();
    let mut sig = rig.signaling().await;
    let browser = Browser::new(&[Codec::Opus]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"n1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 488);
    let reason = hangup["reason"].as_str().unwrap();
    assert!(
        reason.contains("opus") && reason.contains("PCMA"),
        "{reason}"
    );
    assert_eq!(rig.echo.stats().calls_answered, 0, "no INVITE was answered");
    rig.assert_released(free_before).await;
}

async fn client_hangup_while_ringing_cancels(transport: SipTransport) {
    let behavior = ScriptedEcho {
        ring_for: Some(RING_TIME),
        ..Default::default()
    };
    let rig = Rig::start(transport, behavior).await;
    let free_before = rig.gateway.free_rtp_ports();
    let mut sig = rig.signaling().await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"r1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    sig.recv_type("ringing", T).await.unwrap();
    sig.send(json!({"type":"hangup","call_id":"r1"}))
        .await
        .unwrap();
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(hangup["code"], 487);
    rig.assert_released(free_before).await;
    // Past the ring time the UAS would have answered, had the CANCEL not
    // reached it.
    tokio::time::sleep(RING_TIME + Duration::from_millis(500)).await;
    assert_eq!(rig.echo.stats().calls_answered, 0);
    assert_eq!(rig.echo.stats().active_calls, 0);
    let invite = rig.script.last_invite().unwrap();
    let call_id = invite.header("Call-ID").unwrap();
    assert!(
        call_id.ends_with("@127.0.0.1"),
        "Call-ID names siphon's domain: {call_id}"
    );
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !f() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(f(), "condition not reached in time");
}

/// A test of each of `scenarios` over SIP UDP and over SIP TCP
/// (`scenario::udp`, `scenario::tcp`).
macro_rules! over_udp_and_tcp {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn udp() {
                super::$scenario(SipTransport::Udp).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn tcp() {
                super::$scenario(SipTransport::Tcp).await;
            }
        }
    )*};
}

over_udp_and_tcp!(
    client_hangup_while_ringing_cancels,
    audio_both_ways_then_client_bye,
    remote_bye_ends_both_legs,
    busy_reaches_client_as_486,
    no_common_codec_gives_488,
);

#[tokio::test(flavor = "multi_thread")]
async fn udp_md5_challenge_is_answered() {
    digest_challenge_is_answered(SipTransport::Udp, DigestAlgorithm::Md5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_sha256_challenge_is_answered() {
    digest_challenge_is_answered(SipTransport::Tcp, DigestAlgorithm::Sha256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_flows_before_the_answer() {
    let behavior = ScriptedEcho {
        ring_for: Some(Duration::from_secs(4)),
        early_media: true,
        ..Default::default()
    };
    let rig = Rig::start(SipTransport::Udp, behavior).await;
    let mut sig = rig.signaling().await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"e1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let progress = sig.recv_type("progress", T).await.unwrap();
    browser
        .apply_answer(progress["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();
    // The far end has not answered, yet its (echoed) audio is heard.
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 45, "only {back} of 50 frames in early media");
    assert_eq!(rig.echo.stats().calls_answered, 0, "still ringing");
    let answered = sig.recv_type("answered", T).await.unwrap();
    assert_eq!(answered["call_id"], "e1");
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 45, "only {back} of 50 frames after the answer");
    sig.send(json!({"type":"hangup","call_id":"e1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}
