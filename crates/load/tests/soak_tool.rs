//! The soak mode of the load tool end to end against an in-process siphon,
//! on short intervals: calls replaced each interval, RSS and fds sampled,
//! none lost. The figures mean nothing here (generator and siphon share
//! the process); `scripts/load --soak-minutes 30` gives the real ones.

use std::time::Duration;

use siphon_load::soak::{self, SoakPlan};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_replaces_calls_samples_and_loses_none() {
    let stop = CancellationToken::new();
    let (gw, _uas) = siphon_doubles::gateway_to_echo(Default::default(), &stop, |_| {})
        .await
        .unwrap();

    let plan = SoakPlan {
        ws_url: format!("ws://{}/ws", gw.http_addr()),
        metrics: gw.http_addr(),
        destinations: vec!["1000".into()],
        calls: 4,
        intervals: 3,
        interval: Duration::from_secs(2),
        churn_pct: 50.0,
        warmup: 1,
        // The generator shares the process: its own churn moves RSS.
        tolerance_pct: 1000.0,
        setup_rate: 20.0,
        siphon_pid: Some(std::process::id()),
        media: true,
    };
    let report = soak::run(&plan).await.unwrap();
    assert_eq!(report.lost_calls, 0, "{report:?}");
    assert_eq!((report.placed, report.replaced), (4 + 3 * 2, 3 * 2));
    assert_eq!(
        report.samples.len(),
        4,
        "one at the start, one per interval"
    );
    for s in &report.samples {
        assert!(s.rss_mb > 0.0 && s.fds > 0, "{s:?}");
        assert_eq!(s.calls_active, 4.0, "{s:?}");
    }
    assert!(report.flat && report.passed, "{report:?}");
    assert!(report.summary().contains("PASS"));
    // Every call was hung up: siphon is idle again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw.active_calls() != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.active_calls(), 0);
    gw.shutdown().await;
    stop.cancel();
}
