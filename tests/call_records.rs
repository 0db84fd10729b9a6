//! Each call's record, read back from `records.file`: who called whom, the
//! times, how and by whom the call ended, the codecs and the packets, for
//! calls that end in each of the main ways.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::sip::Transport;
use siphon_doubles::ScriptedEcho;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// A file of records in a directory of its own.
fn records_file(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("siphon-records-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("calls.jsonl")
}

/// The records in `file` once there are `n`.
async fn records(file: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n || tokio::time::Instant::now() > deadline {
            assert_eq!(lines.len(), n, "{text}");
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn gateway_to(script: ScriptedEcho, file: &Path, tweak: impl FnOnce(&mut Config)) -> Gateway {
    let stop = CancellationToken::new();
    let file = file.display().to_string();
    let (gw, echo) = siphon_doubles::gateway_to_echo(script.behavior(), &stop, |c| {
        c.records.file = file;
        tweak(c);
    })
    .await
    .unwrap();
    // The echo and its stop token live as long as the test.
    std::mem::forget((echo, stop));
    gw
}

fn end(record: &Value) -> (u64, &str, &str) {
    let end = &record["end"];
    (
        end["code"].as_u64().unwrap(),
        end["by"].as_str().unwrap(),
        end["outcome"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn an_answered_call_the_browser_hangs_up() {
    let file = records_file("answered");
    let ringing = ScriptedEcho {
        ring_for: Some(Duration::from_millis(100)),
        ..ScriptedEcho::default()
    };
    let gw = gateway_to(ringing, &file, |_| {}).await;
    let mut sig = common::connect(&gw).await;
    let browser = common::answered_call(&mut sig, "c1").await;
    let back = common::echo_round_trip(&browser, 25).await;
    assert!(back >= 20, "{back}");
    sig.send(json!({"type":"dtmf","call_id":"c1","digits":"12"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    sig.recv_type("hangup", T).await.unwrap();
    let record = records(&file, 1).await.remove(0);
    assert_eq!(record["schema"], 1);
    assert_eq!(record["id"], "c1");
    assert_eq!(record["direction"], "outbound");
    assert_eq!(
        (record["from"].as_str(), record["to"].as_str()),
        (Some("anonymous"), Some("1000"))
    );
    for at in ["started_at", "ringing_at", "answered_at", "ended_at"] {
        assert!(record[at].is_string(), "{at}: {record}");
    }
    assert!(record["setup_ms"].as_u64().unwrap() >= 100, "{record}");
    assert!(record["duration_s"].as_f64().unwrap() > 0.5, "{record}");
    assert_eq!(end(&record), (200, "browser", "answered"));
    let legs = &record["legs"];
    assert_eq!(legs["sip"]["codec"], "PCMU", "{record}");
    assert_eq!(legs["webrtc"]["codec"], "PCMU");
    assert_eq!(legs["webrtc"]["srtp"], "DTLS-SRTP");
    assert!(legs["sip"]["srtp"].is_null());
    assert!(legs["sip"]["peer"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let quality = &record["quality"];
    assert!(
        quality["to_sip"]["packets"].as_u64().unwrap() >= 25,
        "{record}"
    );
    assert!(
        quality["to_browser"]["packets"].as_u64().unwrap() >= 20,
        "{record}"
    );
    assert_eq!(record["dtmf"], 2, "{record}");
    browser.close().await;
}

#[tokio::test]
async fn a_call_the_callee_refuses() {
    let file = records_file("busy");
    let busy = ScriptedEcho {
        reject: Some(486),
        ..ScriptedEcho::default()
    };
    let gw = gateway_to(busy, &file, |_| {}).await;
    let mut sig = common::connect(&gw).await;
    let browser = common::place_call(&mut sig, "c1", "1000").await;
    sig.recv_type("hangup", T).await.unwrap();
    let record = records(&file, 1).await.remove(0);
    assert_eq!(end(&record), (486, "sip", "rejected"));
    assert!(record["answered_at"].is_null());
    assert_eq!(record["duration_s"], 0.0);
    assert!(record["legs"]["sip"]["codec"].is_null());
    browser.close().await;
}

#[tokio::test]
async fn a_call_nobody_answers_before_the_ring_timeout() {
    let file = records_file("timeout");
    let long_ring = ScriptedEcho {
        ring_for: Some(Duration::from_secs(30)),
        ..ScriptedEcho::default()
    };
    let gw = gateway_to(long_ring, &file, |c| c.limits.ring_timeout_secs = 1).await;
    let mut sig = common::connect(&gw).await;
    let browser = common::place_call(&mut sig, "c1", "1000").await;
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    let record = records(&file, 1).await.remove(0);
    assert_eq!(end(&record), (408, "gateway", "timeout"));
    assert_eq!(record["end"]["reason"], hangup["reason"]);
    assert!(record["ringing_at"].is_string());
    browser.close().await;
}

#[tokio::test]
async fn an_incoming_call_the_pbx_ends() {
    let file = records_file("inbound");
    let stop = CancellationToken::new();
    let mut config = common::loopback_config();
    config.records.file = file.display().to_string();
    config.users = vec![siphon::config::UserConfig {
        name: "bob".into(),
        extension: "2001".into(),
        ..Default::default()
    }];
    let gw = Gateway::start(config, siphon::metrics::Metrics::new())
        .await
        .unwrap();
    let mut sig = common::online(&gw, "bob").await;
    let pbx = common::test_pbx("127.0.0.1:0".parse().unwrap(), &stop).await;
    let sip_addr = gw.sip_addr(Transport::Udp).unwrap();
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let invite = common::pbx_invite(sip_addr, "2001", port, Vec::new());
    let (uac, mut events) = pbx.invite(invite).await.unwrap();
    let (_browser, call_id) = common::accept_incoming(&mut sig).await;
    common::uac_answer(&mut events).await;
    uac.hangup().await;
    sig.recv_type("hangup", T).await.unwrap();
    let record = records(&file, 1).await.remove(0);
    assert_eq!(record["id"], call_id.as_str());
    assert_eq!(record["direction"], "inbound");
    assert_eq!(record["to"], "bob");
    assert_eq!(record["user"], "bob");
    assert!(
        record["from"].as_str().unwrap().contains("sip:1000@"),
        "{record}"
    );
    assert_eq!(end(&record), (200, "sip", "answered"));
    assert!(record["answered_at"].is_string());
    assert_eq!(record["legs"]["sip"]["codec"], "PCMU", "{record}");
    assert_eq!(record["legs"]["sip"]["peer"], format!("127.0.0.1:{port}"));
    assert!(record["ringing_at"].is_string(), "{record}");
}

#[tokio::test]
async fn an_invite_for_nobody_is_refused_and_recorded() {
    let file = records_file("refused");
    let stop = CancellationToken::new();
    let mut config = common::loopback_config();
    config.records.file = file.display().to_string();
    let gw = Gateway::start(config, siphon::metrics::Metrics::new())
        .await
        .unwrap();
    let pbx = common::test_pbx("127.0.0.1:0".parse().unwrap(), &stop).await;
    let sip_addr = gw.sip_addr(Transport::Udp).unwrap();
    let invite = common::pbx_invite(sip_addr, "4040", 40000, Vec::new());
    let (_uac, mut events) = pbx.invite(invite).await.unwrap();
    let ev = common::uac_final(&mut events).await;
    assert!(
        matches!(ev, siphon::sip::UacEvent::Failed { code: 404, .. }),
        "{ev:?}"
    );
    let record = records(&file, 1).await.remove(0);
    assert_eq!(record["direction"], "inbound");
    assert_eq!(record["to"], "4040");
    assert_eq!(end(&record), (404, "gateway", "unknown_user"));
    assert_eq!(record["end"]["reason"], "Not Found");
    assert!(record["answered_at"].is_null(), "{record}");
}
