//! The browser transfers its call: blind to a number, or attended to the
//! far end of its other call; the far end's NOTIFYs come back as
//! `transfer_progress`, a failure as `transfer_failed` with the call going
//! on, and success ends the call with `hangup` 200 "Transferred".

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Signaling;
use serde_json::{json, Value};
use siphon::gateway::Gateway;
use siphon::sip::EchoServer;
use siphon_doubles::ScriptedEcho;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// siphon whose trunk is a scripted echo playing the transferee.
struct Rig {
    gateway: Gateway,
    echo: EchoServer,
    script: Arc<ScriptedEcho>,
    _stop: CancellationToken,
}

impl Rig {
    async fn start(script: ScriptedEcho) -> Rig {
        let stop = CancellationToken::new();
        let script = Arc::new(script);
        let (gateway, echo) = siphon_doubles::gateway_to_echo(script.install(), &stop, |_| {})
            .await
            .unwrap();
        Rig {
            gateway,
            echo,
            script,
            _stop: stop,
        }
    }

    async fn signaling(&self) -> Signaling {
        common::connect(&self.gateway).await
    }

    fn referred(&self) -> Vec<String> {
        self.script.referred.lock().unwrap().clone()
    }
}

fn accepting(notifies: &[u16]) -> ScriptedEcho {
    ScriptedEcho {
        transfer: Some(notifies.to_vec()),
        ..ScriptedEcho::default()
    }
}

/// The messages up to and including the first of type `last`.
async fn until(sig: &mut Signaling, last: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let msg = sig.recv(T).await.unwrap();
        let done = msg["type"] == last;
        seen.push(msg);
        if done {
            return seen;
        }
    }
}

fn progress_codes(msgs: &[Value]) -> Vec<u64> {
    let progress = msgs.iter().filter(|m| m["type"] == "transfer_progress");
    progress.map(|m| m["code"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_blind_transfer_reports_progress_and_ends_the_call_transferred() {
    let rig = Rig::start(accepting(&[100, 180, 200])).await;
    let mut sig = rig.signaling().await;
    let browser = common::answered_call(&mut sig, "c1").await;
    sig.send(json!({"type":"transfer","call_id":"c1","to":"2000"}))
        .await
        .unwrap();
    let msgs = until(&mut sig, "hangup").await;
    assert_eq!(progress_codes(&msgs), [100, 180, 200], "{msgs:?}");
    let hangup = msgs.last().unwrap();
    assert_eq!(
        (hangup["code"].as_u64(), hangup["reason"].as_str()),
        (Some(200), Some("Transferred"))
    );
    let echo = rig.echo.local_addr();
    assert_eq!(rig.referred(), [format!("<sip:2000@{echo}>")]);
    browser.close().await;
}

#[tokio::test]
async fn a_failed_transfer_is_told_and_the_call_goes_on() {
    let rig = Rig::start(accepting(&[100, 486])).await;
    let mut sig = rig.signaling().await;
    let browser = common::answered_call(&mut sig, "c1").await;
    sig.send(json!({"type":"transfer","call_id":"c1","to":"2000"}))
        .await
        .unwrap();
    let msgs = until(&mut sig, "transfer_failed").await;
    assert_eq!(progress_codes(&msgs), [100, 486]);
    assert_eq!(msgs.last().unwrap()["code"], 486);
    let back = common::echo_round_trip(&browser, 25).await;
    assert!(back >= 20, "the call goes on: {back} of 25 came back");
    // A second transfer may follow the failed one.
    sig.send(json!({"type":"transfer","call_id":"c1","to":"2001"}))
        .await
        .unwrap();
    let again = until(&mut sig, "transfer_failed").await;
    assert_eq!(progress_codes(&again), [100, 486]);
    assert_eq!(rig.referred().len(), 2);
    browser.close().await;
}

#[tokio::test]
async fn a_refused_refer_or_an_unroutable_target_fails_the_transfer_only() {
    let rig = Rig::start(ScriptedEcho::default()).await;
    let mut sig = rig.signaling().await;
    let browser = common::answered_call(&mut sig, "c1").await;
    sig.send(json!({"type":"transfer","call_id":"c1","to":"2000"}))
        .await
        .unwrap();
    let failed = sig.recv_type("transfer_failed", T).await.unwrap();
    assert_eq!(failed["code"], 501, "{failed}");
    sig.send(json!({"type":"transfer","call_id":"c1","to":"no spaces here"}))
        .await
        .unwrap();
    let failed = sig.recv_type("transfer_failed", T).await.unwrap();
    assert_eq!(failed["code"], 404, "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("not a valid number"),
        "{failed}"
    );
    let back = common::echo_round_trip(&browser, 25).await;
    assert!(back >= 20, "the call goes on: {back} of 25 came back");
    browser.close().await;
}

#[tokio::test]
async fn an_attended_transfer_refers_to_the_other_call_with_its_dialog() {
    let rig = Rig::start(accepting(&[100, 200])).await;
    let mut sig = rig.signaling().await;
    let first = common::answered_call(&mut sig, "c1").await;
    let second = common::answered_call(&mut sig, "c2").await;
    let second_call_id = rig.script.last_invite().unwrap();
    let second_call_id = second_call_id.header("Call-ID").unwrap().to_owned();
    sig.send(json!({"type":"transfer","call_id":"c1","replaces":"c2"}))
        .await
        .unwrap();
    let msgs = until(&mut sig, "hangup").await;
    assert_eq!(msgs.last().unwrap()["call_id"], "c1");
    let refer_to = rig.referred().remove(0);
    let escaped = second_call_id.replace('@', "%40");
    assert!(
        refer_to.contains(&format!("?Replaces={escaped}%3Bto-tag%3D")),
        "{refer_to}"
    );
    assert!(refer_to.contains("%3Bfrom-tag%3D"), "{refer_to}");
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn transfers_that_cannot_be_asked_get_an_error() {
    let rig = Rig::start(accepting(&[200])).await;
    let mut sig = rig.signaling().await;
    let bad = [
        (json!({"type":"transfer","call_id":"c1"}), "bad_message"),
        (
            json!({"type":"transfer","call_id":"c1","to":"1","replaces":"c2"}),
            "bad_message",
        ),
        (
            json!({"type":"transfer","call_id":"nope","to":"2000"}),
            "unknown_call",
        ),
    ];
    for (msg, code) in bad {
        sig.send(msg.clone()).await.unwrap();
        let err = sig.recv_type("error", T).await.unwrap();
        assert_eq!(err["code"], code, "{msg} -> {err}");
    }
    let browser = common::place_call(&mut sig, "c1", "1000").await;
    sig.recv_type("answered", T).await.unwrap();
    for (msg, code) in [
        (
            json!({"type":"transfer","call_id":"c1","replaces":"c1"}),
            "bad_message",
        ),
        (
            json!({"type":"transfer","call_id":"c1","replaces":"zz"}),
            "unknown_call",
        ),
    ] {
        sig.send(msg.clone()).await.unwrap();
        let err = sig.recv_type("error", T).await.unwrap();
        assert_eq!(err["code"], code, "{msg} -> {err}");
    }
    assert!(rig.referred().is_empty());
    browser.close().await;
}
