//! Per-call quality end to end: a browser calls the echo extension, and
//! the `quality` messages and the call's record carry loss, jitter and a
//! MOS each way. A clean call scores near the top; a call whose browser
//! loses every 10th packet it sends shows that loss and a lower score.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Browser, Signaling, FRAME_BYTES, FRAME_INTERVAL};
use serde_json::{json, Value};
use siphon::gateway::Gateway;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);
/// Frames the browser sends in each call.
const FRAMES: u16 = 200;

/// A gateway whose trunk is an echo, reporting quality every second and
/// writing records to a file of its own.
async fn gateway(test: &str) -> (Gateway, siphon::metrics::Metrics, PathBuf) {
    let dir = std::env::temp_dir().join(format!("siphon-quality-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("calls.jsonl");
    let stop = CancellationToken::new();
    let echo = common::echo_uas(&stop).await;
    let mut config = common::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{}", echo.local_addr()));
    config.media.quality_interval_secs = 1;
    config.records.file = file.display().to_string();
    let metrics = siphon::metrics::Metrics::new();
    let gw = Gateway::start(config, metrics.clone()).await.unwrap();
    // The echo and its stop token live as long as the test.
    std::mem::forget((echo, stop));
    (gw, metrics, file)
}

/// Send `FRAMES` frames at 20 ms, losing those `lose` picks, while the
/// echo sends them back (drained, so the browser's queue never fills).
async fn talk(browser: &Browser, lose: impl Fn(u16) -> bool) {
    let send = async {
        let mut ticker = tokio::time::interval(FRAME_INTERVAL);
        for index in 0..FRAMES {
            ticker.tick().await;
            if lose(index) {
                browser.skip_rtp(FRAME_BYTES as u32).await;
            } else {
                browser
                    .send_rtp(&common::stamped_frame(index))
                    .await
                    .unwrap();
            }
        }
    };
    let drain = async { while browser.recv_rtp(Duration::from_millis(500)).await.is_ok() {} };
    tokio::join!(send, drain);
}

/// The first `quality` message that counts at least `packets` each way.
async fn quality_after(sig: &mut Signaling, packets: u64) -> Value {
    loop {
        let q = sig.recv_type("quality", T).await.unwrap();
        let counted = |way: &str| q[way]["packets"].as_u64().unwrap();
        if counted("to_sip") >= packets && counted("to_browser") >= packets {
            return q;
        }
    }
}

/// The one record in `file`, once written.
async fn record(file: &Path) -> Value {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            return serde_json::from_str(line).unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One call: answered, `talk`ed over with `lose`, its last `quality`
/// message and, after the hangup, its record.
async fn call(test: &str, lose: impl Fn(u16) -> bool) -> (Value, Value, String) {
    let (gw, metrics, file) = gateway(test).await;
    let mut sig = common::connect(&gw).await;
    let browser = common::answered_call(&mut sig, "q1").await;
    talk(&browser, &lose).await;
    let sent = (0..FRAMES).filter(|i| !lose(*i)).count() as u64;
    let report = quality_after(&mut sig, sent * 9 / 10).await;
    assert_eq!(report["call_id"], "q1");
    sig.send(json!({"type":"hangup","call_id":"q1"}))
        .await
        .unwrap();
    sig.recv_type("hangup", T).await.unwrap();
    let record = record(&file).await;
    browser.close().await;
    println!(
        "{test}: last report {report}\n{test}: record {}",
        record["quality"]
    );
    (report, record["quality"].clone(), metrics.render())
}

fn figure(v: &Value, way: &str, name: &str) -> f64 {
    v[way][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{way}.{name} in {v}"))
}

#[tokio::test]
async fn a_clean_call_scores_near_the_top() {
    let (report, record, metrics) = call("clean", |_| false).await;
    for way in ["to_sip", "to_browser"] {
        assert_eq!(figure(&report, way, "lost"), 0.0, "{report}");
        assert_eq!(figure(&report, way, "loss"), 0.0, "{report}");
        assert!(figure(&report, way, "mos") >= 4.2, "{report}");
        assert!(figure(&report, way, "r") >= 85.0, "{report}");
        assert!(figure(&report, way, "jitter_ms") < 20.0, "{report}");
        assert_eq!(figure(&record, way, "lost"), 0.0, "{record}");
        assert!(figure(&record, way, "mos") >= 4.2, "{record}");
        assert!(record[way]["jitter_ms"].is_number(), "{record}");
    }
    for way in ["to_sip", "to_browser"] {
        let count = format!("siphon_call_mos_count{{direction=\"{way}\"}} 1");
        assert!(metrics.contains(&count), "{count} in\n{metrics}");
        let clean = format!("siphon_call_loss_ratio_bucket{{direction=\"{way}\",le=\"0\"}} 1");
        assert!(metrics.contains(&clean), "{clean} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_browser_that_loses_every_tenth_packet_scores_lower() {
    let (report, record, _) = call("lossy", |i| i % 10 == 5).await;
    // 20 of 200 lost on the way to SIP; the echo sends back what it got,
    // so the same gaps come toward the browser.
    for way in ["to_sip", "to_browser"] {
        let lost = figure(&record, way, "lost");
        assert!((20.0..=22.0).contains(&lost), "{way}: {record}");
        let loss = figure(&report, way, "loss");
        assert!((0.09..=0.12).contains(&loss), "{way}: {report}");
        let mos = figure(&record, way, "mos");
        assert!((2.8..4.0).contains(&mos), "{way}: {record}");
        assert!(figure(&report, way, "mos") < 4.0, "{report}");
    }
}
