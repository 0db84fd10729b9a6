//! The load generator end to end against an in-process siphon: a small
//! ramp, every figure filled in. Its numbers mean nothing here (generator
//! and siphon share the process); `siphon-load` against a pinned siphon
//! gives the real ones.

use std::sync::Arc;
use std::time::Duration;

use siphon::sip::EchoBehavior;
use siphon_load::{self as load, Plan};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_ramp_reports_every_figure() {
    let stop = CancellationToken::new();
    let stamping = EchoBehavior {
        tap: Some(Arc::new(load::stamp::PassStamper)),
        ..Default::default()
    };
    let (gw, uas) = siphon_doubles::gateway_to_echo(stamping, &stop, |_| {})
        .await
        .unwrap();

    let plan = Plan {
        ws_url: format!("ws://{}/ws", gw.http_addr()),
        metrics: gw.http_addr(),
        others: Vec::new(),
        destinations: vec!["1000".into()],
        steps: vec![2, 4],
        hold: Duration::from_secs(2),
        settle: Duration::from_millis(300),
        setup_rate: 20.0,
        siphon_pid: Some(std::process::id()),
        siphon_cpu: None,
        media: true,
        flood_pps: 500,
        churn: 6,
        churn_rate: 30.0,
    };
    let report = load::run(&plan, &uas).await.unwrap();
    assert_eq!(report.steps.len(), 2);
    for (step, n) in report.steps.iter().zip([2, 4]) {
        assert_eq!(
            (step.calls, step.established, step.setup_failures),
            (n, n, 0),
            "{step:?}"
        );
        // 50 packets/s per call for about 2 s.
        assert!(step.sent >= 90 * n as u64, "{step:?}");
        assert!(step.echoed > 0 && step.received > 0, "{step:?}");
        assert!(
            step.loss_to_sip_pct < 2.0 && step.loss_to_browser_pct < 2.0,
            "{step:?}"
        );
        assert_eq!(
            step.loss_round_trip_pct, 0.0,
            "loopback loses nothing: {step:?}"
        );
        assert!(
            step.rtt_ms_p50 > 0.0 && step.rtt_ms_p999 >= step.rtt_ms_p50,
            "{step:?}"
        );
        // Each pass through siphon, kernel to kernel, is part of its
        // packet's round trip, so no quantile of a pass exceeds the round
        // trip's.
        assert!(
            step.to_sip_ms_p50 > 0.0 && step.to_browser_ms_p50 > 0.0,
            "the echo stamped the passes: {step:?}"
        );
        for (pass, rtt) in [
            (step.to_sip_ms_p50, step.rtt_ms_p50),
            (step.to_sip_ms_p99, step.rtt_ms_p99),
            (step.to_browser_ms_p50, step.rtt_ms_p50),
            (step.to_browser_ms_p99, step.rtt_ms_p99),
        ] {
            assert!(pass <= rtt, "{step:?}");
        }
        assert!(
            step.to_sip_ms_p999 >= step.to_sip_ms_p99 && step.to_sip_ms_p99 >= step.to_sip_ms_p50,
            "{step:?}"
        );
        assert_eq!(step.relayed, step.echoed + step.received, "{step:?}");
        assert!(step.relayed_siphon_metrics > 0, "siphon counted {step:?}");
        assert!(
            step.siphon_cpu_s > 0.0 && step.siphon_us_per_pkt > 0.0,
            "{step:?}"
        );
        assert!(
            step.setup_rate_per_s > 0.0 && step.setup_ready_ms_p50 > 0.0,
            "{step:?}"
        );
        assert!(step.siphon_rss_mb > 0.0, "{step:?}");
        assert_eq!(step.bad, 0, "{step:?}");
        // The flood is dropped and counted; the calls' figures hold.
        assert!(step.flood_sent >= 500, "{step:?}");
        assert!(
            step.dropped >= step.flood_sent / 2,
            "siphon counted the flood: {step:?}"
        );
    }
    let churn = report.churn.as_ref().expect("churn measured");
    assert_eq!(
        (churn.calls_up, churn.attempted, churn.ok),
        (4, 6, 6),
        "{churn:?}"
    );
    assert!(
        churn.setups_per_s > 0.0 && churn.ready_ms_p99 > 0.0,
        "{churn:?}"
    );
    assert_eq!(report.leaked_calls, 0.0);
    assert_eq!(report.bad_hangups, 0, "every hangup answered 200");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["steps"][1]["loss_to_browser_pct"].is_number());
    stop.cancel();
    gw.shutdown().await;
}

/// Several instances (a cluster): the calls are spread over them and their
/// figures summed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_the_instances_of_a_cluster() {
    let stop = CancellationToken::new();
    let stamping = EchoBehavior {
        tap: Some(Arc::new(load::stamp::PassStamper)),
        ..Default::default()
    };
    let (a, uas) = siphon_doubles::gateway_to_echo(stamping, &stop, |_| {})
        .await
        .unwrap();
    let mut config = siphon_doubles::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{}", uas.local_addr()));
    let b = siphon::gateway::Gateway::start(config, siphon::metrics::Metrics::new())
        .await
        .unwrap();
    let plan = Plan {
        ws_url: format!("ws://{}/ws", a.http_addr()),
        metrics: a.http_addr(),
        others: vec![load::ramp::Instance {
            ws_url: format!("ws://{}/ws", b.http_addr()),
            metrics: b.http_addr(),
            pid: None,
        }],
        destinations: vec!["1000".into()],
        steps: vec![4],
        hold: Duration::from_secs(1),
        settle: Duration::from_millis(300),
        setup_rate: 20.0,
        siphon_pid: Some(std::process::id()),
        siphon_cpu: None,
        media: true,
        flood_pps: 0,
        churn: 0,
        churn_rate: 0.0,
    };
    let report = load::run(&plan, &uas).await.unwrap();
    let step = &report.steps[0];
    assert_eq!((step.established, step.setup_failures), (4, 0), "{step:?}");
    assert_eq!(step.loss_round_trip_pct, 0.0, "{step:?}");
    // Both instances relayed, and the report counts both: one alone would
    // count about half. (siphon's counters are read at the window's edges,
    // the generator's as packets land, so a few in flight differ.)
    assert!(
        step.relayed_siphon_metrics * 100 >= step.relayed * 95,
        "{step:?}"
    );
    assert_eq!(report.leaked_calls, 0.0);
    stop.cancel();
    a.shutdown().await;
    b.shutdown().await;
}
