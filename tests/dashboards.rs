//! The Grafana dashboard (docs/grafana/siphon.json) and the Prometheus
//! alert rules (deploy/prometheus/) name only families that a running
//! siphon serves at `/metrics`, with label names those families have: a
//! family renamed or removed fails here, not as an empty panel or an alert
//! that can never fire. (`promtool` checks the rules' PromQL and runs their
//! unit tests in scripts/e2e.d/15-alert-rules.)

mod monitoring;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use serde_json::Value;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;

use monitoring::{named_in, yaml_values, DashboardText, Named, Served};

const DASHBOARD: &str = include_str!("../docs/grafana/siphon.json");
const RULES: &str = include_str!("../deploy/prometheus/siphon-alerts.yml");
const RULE_TESTS: &str = include_str!("../deploy/prometheus/siphon-alerts.test.yml");

/// The limit the served gateway runs with.
const MAX_CALLS: u32 = 7;

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("docs/grafana/siphon.json is JSON")
}

/// A label set on a family with labels, so that it is served (a family
/// with labels shows nothing until one is used).
fn touch<B: MetricVecBuilder>(family: &MetricVec<B>) {
    let arity = family.desc()[0].variable_labels.len();
    family.with_label_values(&vec!["x"; arity]);
}

fn touch_every_family(m: &Metrics) {
    touch(&m.calls_active);
    touch(&m.calls_total);
    touch(&m.call_setup_seconds);
    touch(&m.media_packets_total);
    touch(&m.media_bytes_total);
    touch(&m.media_dropped_total);
    touch(&m.dtls_handshakes_total);
    touch(&m.sip_messages_total);
    touch(&m.sip_errors_total);
    touch(&m.sip_tls_handshakes_total);
    touch(&m.sip_listener_up);
    touch(&m.ws_messages_total);
    touch(&m.ws_errors_total);
    touch(&m.ws_auth_failures_total);
    touch(&m.ws_closed_total);
    touch(&m.relay_receive_errors_total);
    touch(&m.relay_io);
    touch(&m.media_timeouts_total);
    touch(&m.reconnects_total);
    touch(&m.dtmf_total);
    touch(&m.reoffers_total);
    touch(&m.browser_reoffers_total);
    touch(&m.session_timer_events_total);
    touch(&m.sip_hangups_total);
    touch(&m.https_handshake_failures_total);
    touch(&m.tls_reloads_total);
    touch(&m.http_refused_total);
    touch(&m.build_info);
    touch(&m.registrations);
    touch(&m.trunk_up);
    touch(&m.connections_open);
    touch(&m.connections_refused_total);
    touch(&m.connections_closed_total);
    touch(&m.accept_errors_total);
    touch(&m.records_total);
    touch(&m.records_dropped_total);
    touch(&m.webhook_deliveries_total);
}

/// `/metrics` of a gateway on 127.0.0.1 with every family showing.
async fn scrape() -> String {
    let mut config = siphon_doubles::loopback_config();
    config.limits.max_calls = MAX_CALLS;
    let metrics = Metrics::new();
    let gw = Gateway::start(config, metrics.clone())
        .await
        .expect("start");
    touch_every_family(&metrics);
    let addr = gw.http_addr();
    let body = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("a response");
        raw
    })
    .await
    .unwrap();
    gw.shutdown().await;
    let (head, body) = body.split_once("\r\n\r\n").expect("a whole response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let served = Served::parse(body);
    for name in metrics.family_names() {
        let hint = "a new family? touch it in touch_every_family";
        assert!(served.serves(&name), "{name} not served ({hint})");
    }
    body.to_owned()
}

fn names(named: &[Named]) -> BTreeSet<&str> {
    named.iter().map(|n| n.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_names_only_served_metrics_and_labels() {
    let served = Served::parse(&scrape().await);
    let text = DashboardText::of(&dashboard());
    let queries: Vec<Named> = text
        .panel_queries
        .iter()
        .flat_map(|q| named_in(q))
        .collect();
    let variables: Vec<Named> = text
        .variable_queries
        .iter()
        .flat_map(|q| named_in(q))
        .collect();
    let prose: Vec<Named> = text.prose.iter().flat_map(|p| named_in(p)).collect();
    assert!(names(&queries).len() > 40, "{:?}", names(&queries));
    assert!(
        !variables.is_empty(),
        "the instance variable queries a family"
    );
    let mut faults = served.faults(&queries, true);
    faults.extend(served.faults(&variables, true));
    faults.extend(served.faults(&prose, false));
    assert!(faults.is_empty(), "docs/grafana/siphon.json: {faults:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alert_rules_name_only_served_metrics_and_labels() {
    let served = Served::parse(&scrape().await);
    let mut expressions = yaml_values(RULES, "expr");
    expressions.extend(yaml_values(RULE_TESTS, "series"));
    let queries: Vec<Named> = expressions.iter().flat_map(|e| named_in(e)).collect();
    assert!(names(&queries).len() >= 12, "{:?}", names(&queries));
    let mut faults = served.faults(&queries, true);
    faults.extend(served.faults(&named_in(RULES), false));
    faults.extend(served.faults(&named_in(RULE_TESTS), false));
    assert!(faults.is_empty(), "deploy/prometheus: {faults:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_near_max_calls_alert_divides_by_the_configured_limit() {
    let text = scrape().await;
    let line = format!("siphon_calls_max {MAX_CALLS}");
    assert!(text.lines().any(|l| l == line), "{line} in {text}");
    let rules = yaml_values(RULES, "expr");
    let near = rules.iter().find(|e| e.contains("siphon_calls_max"));
    assert!(
        near.is_some_and(|e| e.contains("siphon_calls_active")),
        "{rules:#?}"
    );
}

#[test]
fn a_name_or_label_siphon_does_not_serve_is_caught() {
    let metrics = Metrics::new();
    touch_every_family(&metrics);
    let served = Served::parse(&metrics.render());
    let fault = |expr: &str| served.faults(&named_in(expr), true);
    let rate = "sum by (le) (rate(siphon_call_setup_seconds_bucket{instance=~\"$i\"}[5m]))";
    assert_eq!(fault(rate), Vec::<String>::new());
    assert_eq!(
        fault("siphon_trunk_up{trunk=\"a,b\", job=\"siphon\"} == 0"),
        Vec::<String>::new()
    );
    assert_eq!(
        fault("rate(process_cpu_seconds_total[1m])"),
        Vec::<String>::new()
    );
    for (expr, why) in [
        (
            "rate(siphon_calls_ended_total[5m])",
            "siphon_calls_ended_total is not served",
        ),
        (
            "siphon_trunk_up{name=\"carrier\"}",
            "siphon_trunk_up has no label name",
        ),
        (
            "siphon_call_setup_seconds > 1",
            "siphon_call_setup_seconds is a histogram",
        ),
        (
            "siphon_calls_active_bucket",
            "siphon_calls_active_bucket is not served",
        ),
        ("process_open_files", "process_open_files is not served"),
    ] {
        let faults = fault(expr);
        assert!(
            faults.len() == 1 && faults[0].starts_with(why),
            "{expr}: {faults:?}"
        );
    }
    let rules = "    rules:\n      - expr: |\n          siphon_nope > 0\n        for: 1m\n";
    assert_eq!(yaml_values(rules, "expr"), ["          siphon_nope > 0"]);
    assert_eq!(
        served
            .faults(&named_in(&yaml_values(rules, "expr")[0]), true)
            .len(),
        1
    );
}

#[test]
fn the_dashboard_is_importable() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    assert_eq!(d["uid"], "siphon");
    let variables = d["templating"]["list"].as_array().expect("variables");
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name);
    assert_eq!(
        variable("datasource").expect("a datasource variable")["type"],
        "datasource"
    );
    assert_eq!(
        variable("instance").expect("an instance variable")["type"],
        "query"
    );
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "{title}: id twice"
        );
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{title}: gridPos");
        if panel["type"] == "row" || panel["type"] == "text" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().expect("expr");
            // Every selector follows the instance picker.
            for named in named_in(expr) {
                let filtered = named.labels.iter().any(|l| l == "instance");
                assert!(filtered, "{title}: {} ignores $instance", named.name);
            }
        }
    }
}
