//! Every Prometheus metric family siphon exports, registered in one place.
//!
//! The media hot path never touches these directly: relay loops keep plain
//! local counters and flush them here periodically (see `media`), so a packet
//! costs no atomic and no label lookup.
//!
//! The process's own CPU, memory, fds and threads are served beside them
//! under the names every Prometheus client uses (`process_…`, unprefixed).

mod quality;

pub use quality::{way, QualityMetrics};

use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Call direction label values.
pub mod direction {
    /// Browser calls a SIP destination.
    pub const OUTBOUND: &str = "webrtc_to_sip";
    /// A SIP peer calls a browser user.
    pub const INBOUND: &str = "sip_to_webrtc";
}

/// Media flow label values (which way a packet travels).
pub mod flow {
    /// Packets received from the browser, sent to the SIP peer.
    pub const WEBRTC_TO_SIP: &str = "webrtc_to_sip";
    /// Packets received from the SIP peer, sent to the browser.
    pub const SIP_TO_WEBRTC: &str = "sip_to_webrtc";
}

/// All metric families, cheap to clone (prometheus handles are `Arc`s).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `process_…`: outside `registry`, whose prefix would rename them.
    process: Registry,
    /// Calls in progress, by direction.
    pub calls_active: IntGaugeVec,
    /// `limits.max_calls`: the most calls in progress at once.
    pub calls_max: IntGauge,
    /// Calls ended, by direction and outcome (answered, `failed_<code>`, cancelled, ...).
    pub calls_total: IntCounterVec,
    /// Seconds from the first request to the answer, by direction.
    pub call_setup_seconds: HistogramVec,
    /// Media packets relayed, by flow and kind (rtp, rtcp).
    pub media_packets_total: IntCounterVec,
    /// Media bytes relayed (payload as received), by flow.
    pub media_bytes_total: IntCounterVec,
    /// Media packets dropped, by side (webrtc, sip) and reason.
    pub media_dropped_total: IntCounterVec,
    /// Time spent relaying one packet (receive to send), sampled.
    pub relay_seconds: Histogram,
    /// RTP ports in use on the SIP side.
    pub rtp_ports_in_use: IntGauge,
    /// DTLS handshakes, by outcome.
    pub dtls_handshakes_total: IntCounterVec,
    /// SIP messages, by direction (in, out) and kind (method or status class).
    pub sip_messages_total: IntCounterVec,
    /// SIP input that was refused or dropped, by reason.
    pub sip_errors_total: IntCounterVec,
    /// SIP over TLS handshakes, by direction (in: our listener, out: peers
    /// we connect to) and outcome (ok, plaintext, certificate, ...).
    pub sip_tls_handshakes_total: IntCounterVec,
    /// 1 while a SIP UDP listener's reader runs, 0 once it stopped early, by listener.
    pub sip_listener_up: IntGaugeVec,
    /// Open WebSocket connections.
    pub ws_connections: IntGauge,
    /// WebSocket messages received, by type.
    pub ws_messages_total: IntCounterVec,
    /// `error` messages sent to clients, by code.
    pub ws_errors_total: IntCounterVec,
    /// WebSocket authentication failures, by reason.
    pub ws_auth_failures_total: IntCounterVec,
    /// WebSocket sessions ended, by reason (client, too_large, protocol, ...).
    pub ws_closed_total: IntCounterVec,
    /// Relay loop wake-ups (a gauge of loop activity, not per packet).
    pub relay_wakeups_total: IntCounter,
    /// Receive errors on relay sockets, by kind (icmp, other).
    pub relay_receive_errors_total: IntCounterVec,
    /// Relay loops that died (poll failure or panic); `/readyz` is 503 after one.
    pub relay_loop_failures_total: IntCounter,
    /// Relay loops by IO path (`io_uring` or `epoll`).
    pub relay_io: IntGaugeVec,
    /// Calls ended because a side sent no media, by the silent side.
    pub media_timeouts_total: IntCounterVec,
    /// ICE restarts applied (browser re-offers with new credentials).
    pub ice_restarts_total: IntCounter,
    /// Answered legs whose consent checks paused (`ice_disconnected` sent).
    pub ice_disconnects_total: IntCounter,
    /// Answered legs ended for `webrtc.consent_timeout_secs` without checks.
    pub ice_consent_expiries_total: IntCounter,
    /// Calls whose WebSocket was lost, by outcome (resumed, expired).
    pub reconnects_total: IntCounterVec,
    /// Key presses siphon sent, by how (sip_rtp, sip_info, webrtc_rtp).
    pub dtmf_total: IntCounterVec,
    /// SIP re-INVITEs/UPDATEs on answered calls, by outcome (hold, resume, refused).
    pub reoffers_total: IntCounterVec,
    /// Browser holds and resumes taken to SIP as re-INVITEs, by outcome
    /// (hold, resume, glare, refused).
    pub browser_reoffers_total: IntCounterVec,
    /// RFC 4028 session-timer events (refresh_sent, refresh_received,
    /// refresh_failed, expired).
    pub session_timer_events_total: IntCounterVec,
    /// siphon's own BYEs, CANCELs and 480s ending calls, by outcome
    /// (done, failed, nothing); sent without holding up the browser's `hangup`.
    pub sip_hangups_total: IntCounterVec,
    /// HTTPS handshakes that failed, by reason (SIP over TLS has its own family).
    pub https_handshake_failures_total: IntCounterVec,
    /// Certificate reloads, by listener and result (ok, failed).
    pub tls_reloads_total: IntCounterVec,
    /// HTTP requests refused before they reached a handler, by reason.
    pub http_refused_total: IntCounterVec,
    /// 1 while siphon drains before exit (SIGTERM), else 0.
    pub draining: IntGauge,
    /// Always 1; its labels name the version and the instance.
    pub build_info: IntGaugeVec,
    /// Upstream registrations by kind (pbx, client, cluster) and state
    /// (registering, registered, failed).
    pub registrations: IntGaugeVec,
    /// 0 when the cluster's registrar could not be reached at the last try, else 1.
    pub cluster_registrar_up: IntGauge,
    /// 1 while a pinged trunk answers its OPTIONS, 0 once it is marked down, by trunk.
    pub trunk_up: IntGaugeVec,
    /// Open connections, by listener (sip_tcp, sip_tls, http, ...).
    pub connections_open: IntGaugeVec,
    /// Connections closed at accept, by listener and reason (global_cap, ...).
    pub connections_refused_total: IntCounterVec,
    /// Admitted connections siphon closed, by listener and reason (idle, header_timeout).
    pub connections_closed_total: IntCounterVec,
    /// Failed `accept` calls (EMFILE, ENFILE, ENOBUFS, ...), by listener.
    pub accept_errors_total: IntCounterVec,
    /// Call records written, by sink (log, file, webhook).
    pub records_total: IntCounterVec,
    /// Call records (and webhook events) lost, by sink and reason
    /// (queue_full, failed, shutdown).
    pub records_dropped_total: IntCounterVec,
    /// Webhook POSTs of records and events, by outcome (ok, retry, failed).
    pub webhook_deliveries_total: IntCounterVec,
    /// Each ended call's MOS, loss and jitter, by direction.
    pub call_quality: QualityMetrics,
}

impl Metrics {
    /// Build and register every family.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("siphon".into()), None)
            .expect("static registry prefix is valid");
        let m = Metrics {
            calls_active: gauge_vec("calls_active", "Calls in progress", &["direction"]),
            calls_max: IntGauge::new("calls_max", "limits.max_calls: most calls in progress")
                .expect("valid gauge"),
            calls_total: counter_vec(
                "calls_total",
                "Calls ended by direction and outcome",
                &["direction", "outcome"],
            ),
            call_setup_seconds: HistogramVec::new(
                HistogramOpts::new("call_setup_seconds", "Time from request to answer")
                    .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                &["direction"],
            )
            .expect("valid histogram"),
            media_packets_total: counter_vec(
                "media_packets_total",
                "Media packets relayed",
                &["flow", "kind"],
            ),
            media_bytes_total: counter_vec("media_bytes_total", "Media bytes relayed", &["flow"]),
            media_dropped_total: counter_vec(
                "media_dropped_total",
                "Media packets dropped",
                &["side", "reason"],
            ),
            relay_seconds: Histogram::with_opts(
                HistogramOpts::new("relay_seconds", "Per-packet relay time (sampled)").buckets(
                    vec![1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2],
                ),
            )
            .expect("valid histogram"),
            rtp_ports_in_use: IntGauge::new("rtp_ports_in_use", "SIP-side RTP ports in use")
                .expect("valid gauge"),
            dtls_handshakes_total: counter_vec(
                "dtls_handshakes_total",
                "DTLS handshakes by outcome",
                &["outcome"],
            ),
            sip_messages_total: counter_vec(
                "sip_messages_total",
                "SIP messages by direction and kind",
                &["direction", "kind"],
            ),
            sip_errors_total: counter_vec(
                "sip_errors_total",
                "SIP input refused or dropped",
                &["reason"],
            ),
            sip_tls_handshakes_total: counter_vec(
                "sip_tls_handshakes_total",
                "SIP over TLS handshakes by direction and outcome",
                &["direction", "outcome"],
            ),
            sip_listener_up: gauge_vec(
                "sip_listener_up",
                "1 while a SIP UDP listener reads, 0 once its reader stopped",
                &["listener"],
            ),
            ws_connections: IntGauge::new("ws_connections", "Open WebSocket connections")
                .expect("valid gauge"),
            ws_messages_total: counter_vec(
                "ws_messages_total",
                "WebSocket messages received by type",
                &["type"],
            ),
            ws_errors_total: counter_vec(
                "ws_errors_total",
                "Error messages sent to WebSocket clients",
                &["code"],
            ),
            ws_auth_failures_total: counter_vec(
                "ws_auth_failures_total",
                "WebSocket authentication failures by reason",
                &["reason"],
            ),
            ws_closed_total: counter_vec(
                "ws_closed_total",
                "WebSocket sessions ended, by reason",
                &["reason"],
            ),
            relay_wakeups_total: IntCounter::new("relay_wakeups_total", "Relay loop wake-ups")
                .expect("valid counter"),
            relay_receive_errors_total: counter_vec(
                "relay_receive_errors_total",
                "Receive errors on relay sockets, by kind",
                &["kind"],
            ),
            relay_loop_failures_total: IntCounter::new(
                "relay_loop_failures_total",
                "Relay loops that died",
            )
            .expect("valid counter"),
            relay_io: gauge_vec(
                "relay_io",
                "Relay loops by IO path (io_uring or epoll)",
                &["mode"],
            ),
            media_timeouts_total: counter_vec(
                "media_timeouts_total",
                "Calls whose media stopped for limits.media_timeout_secs, by silent side",
                &["side"],
            ),
            ice_restarts_total: IntCounter::new("ice_restarts_total", "ICE restarts applied")
                .expect("valid counter"),
            ice_disconnects_total: IntCounter::new(
                "ice_disconnects_total",
                "WebRTC legs whose consent checks paused",
            )
            .expect("valid counter"),
            ice_consent_expiries_total: IntCounter::new(
                "ice_consent_expiries_total",
                "WebRTC legs ended because ICE consent expired",
            )
            .expect("valid counter"),
            reconnects_total: counter_vec(
                "reconnects_total",
                "Answered calls whose WebSocket was lost, by outcome",
                &["outcome"],
            ),
            dtmf_total: counter_vec(
                "dtmf_total",
                "Key presses siphon sent, by how they went",
                &["to"],
            ),
            reoffers_total: counter_vec(
                "sip_reoffers_total",
                "SIP re-INVITEs and UPDATEs on answered calls, by outcome",
                &["outcome"],
            ),
            browser_reoffers_total: counter_vec(
                "browser_reoffers_total",
                "Browser holds and resumes re-INVITEd toward SIP, by outcome",
                &["outcome"],
            ),
            session_timer_events_total: counter_vec(
                "sip_session_timer_events_total",
                "RFC 4028 session-timer refreshes and expiries, by event",
                &["event"],
            ),
            sip_hangups_total: counter_vec(
                "sip_hangups_total",
                "BYEs and CANCELs siphon sent to end calls, by outcome",
                &["outcome"],
            ),
            https_handshake_failures_total: counter_vec(
                "https_handshake_failures_total",
                "TLS handshakes on the HTTPS listener that failed, by reason",
                &["reason"],
            ),
            tls_reloads_total: counter_vec(
                "tls_reloads_total",
                "Certificate reloads, by listener and result",
                &["listener", "result"],
            ),
            http_refused_total: counter_vec(
                "http_refused_total",
                "HTTP requests refused before a handler (origin, no_origin, draining)",
                &["reason"],
            ),
            draining: IntGauge::new("draining", "1 while siphon drains before exit")
                .expect("valid gauge"),
            build_info: gauge_vec(
                "build_info",
                "Always 1: the version and the instance",
                &["version", "instance"],
            ),
            registrations: gauge_vec(
                "registrations",
                "Upstream registrations by kind and state",
                &["kind", "state"],
            ),
            cluster_registrar_up: IntGauge::new(
                "cluster_registrar_up",
                "0 when the cluster's registrar could not be reached at the last try",
            )
            .expect("valid gauge"),
            trunk_up: gauge_vec(
                "trunk_up",
                "1 while a pinged trunk answers its OPTIONS, 0 once marked down",
                &["trunk"],
            ),
            connections_open: gauge_vec(
                "connections_open",
                "Open connections by listener",
                &["listener"],
            ),
            connections_refused_total: counter_vec(
                "connections_refused_total",
                "Connections closed at accept, by listener and reason",
                &["listener", "reason"],
            ),
            connections_closed_total: counter_vec(
                "connections_closed_total",
                "Admitted connections closed by siphon, by listener and reason",
                &["listener", "reason"],
            ),
            accept_errors_total: counter_vec(
                "accept_errors_total",
                "Failed accept calls, by listener",
                &["listener"],
            ),
            records_total: counter_vec("records_total", "Call records written, by sink", &["sink"]),
            records_dropped_total: counter_vec(
                "records_dropped_total",
                "Call records and webhook events lost, by sink and reason",
                &["sink", "reason"],
            ),
            webhook_deliveries_total: counter_vec(
                "webhook_deliveries_total",
                "Webhook POSTs of records and events, by outcome",
                &["outcome"],
            ),
            call_quality: QualityMetrics::new(),
            registry,
            process: Registry::new(),
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        for c in self.collectors() {
            self.registry
                .register(c)
                .expect("each family is registered once");
        }
        self.process
            .register(Box::new(ProcessCollector::for_self()))
            .expect("the process families are registered once");
    }

    /// Every family's full name (`siphon_…`, then `process_…`), for
    /// documentation checks.
    pub fn family_names(&self) -> Vec<String> {
        let collectors = self.collectors();
        let own = collectors.iter().flat_map(|c| c.desc());
        let own = own.map(|d| format!("siphon_{}", d.fq_name));
        let process = self.process.gather().into_iter();
        own.chain(process.map(|f| f.name().to_owned())).collect()
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        let quality = self.call_quality.collectors();
        let mut all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.calls_active.clone()),
            Box::new(self.calls_max.clone()),
            Box::new(self.calls_total.clone()),
            Box::new(self.call_setup_seconds.clone()),
            Box::new(self.media_packets_total.clone()),
            Box::new(self.media_bytes_total.clone()),
            Box::new(self.media_dropped_total.clone()),
            Box::new(self.relay_seconds.clone()),
            Box::new(self.rtp_ports_in_use.clone()),
            Box::new(self.dtls_handshakes_total.clone()),
            Box::new(self.sip_messages_total.clone()),
            Box::new(self.sip_errors_total.clone()),
            Box::new(self.sip_tls_handshakes_total.clone()),
            Box::new(self.sip_listener_up.clone()),
            Box::new(self.ws_connections.clone()),
            Box::new(self.ws_messages_total.clone()),
            Box::new(self.ws_errors_total.clone()),
            Box::new(self.ws_auth_failures_total.clone()),
            Box::new(self.ws_closed_total.clone()),
            Box::new(self.relay_wakeups_total.clone()),
            Box::new(self.relay_receive_errors_total.clone()),
            Box::new(self.relay_loop_failures_total.clone()),
            Box::new(self.relay_io.clone()),
            Box::new(self.media_timeouts_total.clone()),
            Box::new(self.ice_restarts_total.clone()),
            Box::new(self.ice_disconnects_total.clone()),
            Box::new(self.ice_consent_expiries_total.clone()),
            Box::new(self.reconnects_total.clone()),
            Box::new(self.dtmf_total.clone()),
            Box::new(self.reoffers_total.clone()),
            Box::new(self.browser_reoffers_total.clone()),
            Box::new(self.session_timer_events_total.clone()),
            Box::new(self.sip_hangups_total.clone()),
            Box::new(self.https_handshake_failures_total.clone()),
            Box::new(self.tls_reloads_total.clone()),
            Box::new(self.http_refused_total.clone()),
            Box::new(self.draining.clone()),
            Box::new(self.build_info.clone()),
            Box::new(self.registrations.clone()),
            Box::new(self.cluster_registrar_up.clone()),
            Box::new(self.trunk_up.clone()),
            Box::new(self.connections_open.clone()),
            Box::new(self.connections_refused_total.clone()),
            Box::new(self.connections_closed_total.clone()),
            Box::new(self.accept_errors_total.clone()),
            Box::new(self.records_total.clone()),
            Box::new(self.records_dropped_total.clone()),
            Box::new(self.webhook_deliveries_total.clone()),
        ];
        all.extend(quality);
        all
    }

    /// The text exposition format served at `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        if encoder.encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Count one SIP input error (malformed, oversize, ...).
    pub fn sip_error(&self, reason: &str) {
        self.sip_errors_total.with_label_values(&[reason]).inc();
    }

    /// The SIP listeners whose reader stopped before shutdown.
    pub fn sip_listeners_down(&self) -> Vec<String> {
        use prometheus::core::Collector;
        let families = self.sip_listener_up.collect();
        let series = families.iter().flat_map(|f| f.get_metric());
        let down = series.filter(|m| m.get_gauge().get_value() < 1.0);
        let names = down.flat_map(|m| m.get_label().iter().map(|l| l.value().to_string()));
        names.collect()
    }

    /// Count one SIP over TLS handshake by direction (`in`, `out`) and outcome.
    pub fn sip_tls_handshake(&self, direction: &str, outcome: &str) {
        self.sip_tls_handshakes_total
            .with_label_values(&[direction, outcome])
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter family")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge family")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_families() {
        let m = Metrics::new();
        m.calls_total
            .with_label_values(&[direction::OUTBOUND, "answered"])
            .inc();
        m.sip_error("truncated");
        let text = m.render();
        assert!(
            text.contains("siphon_calls_total{direction=\"webrtc_to_sip\",outcome=\"answered\"} 1")
        );
        assert!(text.contains("siphon_sip_errors_total{reason=\"truncated\"} 1"));
    }

    #[test]
    fn serves_the_process_families_unprefixed() {
        let m = Metrics::new();
        let text = m.render();
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
            assert!(text.contains(&format!("\n{name} ")), "{name} in {text}");
        }
        assert!(!text.contains("siphon_process_"), "{text}");
        let names = m.family_names();
        assert!(names.contains(&"process_open_fds".to_owned()), "{names:?}");
    }

    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../../docs/metrics.md");
        let names = Metrics::new().family_names();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/metrics.md lacks {name}"
            );
        }
    }
}
