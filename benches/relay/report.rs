//! The figures of one run (one N), as a JSON line and as a table row.

use serde::{Deserialize, Serialize};

/// CPU seconds over the media window, by thread group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuSeconds {
    pub relay: f64,
    pub gateway: f64,
    pub echo: f64,
    pub client: f64,
    pub other: f64,
    pub process: f64,
}

impl CpuSeconds {
    /// Every figure times `k` (e.g. to milliseconds per call).
    pub fn scaled(&self, k: f64) -> CpuSeconds {
        CpuSeconds {
            relay: self.relay * k,
            gateway: self.gateway * k,
            echo: self.echo * k,
            client: self.client * k,
            other: self.other * k,
            process: self.process * k,
        }
    }
}

/// Everything measured for one N.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub calls: usize,
    pub relay_loops: usize,
    pub established: usize,
    pub setup_failures: usize,
    /// A few distinct setup errors, verbatim.
    pub setup_errors: Vec<String>,
    pub setup_concurrency: usize,
    /// `call` sent -> `answered` received.
    pub setup_answered_ms_p50: f64,
    pub setup_answered_ms_p99: f64,
    /// `call` sent -> SRTP keyed (ICE and DTLS done).
    pub setup_ready_ms_p50: f64,
    pub setup_ready_ms_p99: f64,
    /// Wall time to get every call up.
    pub setup_all_s: f64,
    /// CPU per call set up, over the setup phase: siphon's relay threads
    /// (ICE, DTLS server), its control plane (WebSocket, SIP, SDP), the
    /// echo and the browsers.
    pub setup_cpu_ms_per_call: CpuSeconds,
    pub srtp_profile: String,
    /// Length of the CPU window: sending plus 100 ms for the last packets.
    pub window_s: f64,
    pub client_sent: u64,
    pub client_received: u64,
    pub client_bad: u64,
    pub loss_pct: f64,
    pub rtt_ms_p50: f64,
    pub rtt_ms_p99: f64,
    /// From siphon's metrics, RTP + RTCP.
    pub relayed_to_sip: u64,
    pub relayed_to_webrtc: u64,
    pub relayed: u64,
    pub relay_dropped: u64,
    /// Packets the echo sent back, from its own counter.
    pub echoed: u64,
    pub cpu_s: CpuSeconds,
    /// Relay threads' CPU per relayed packet.
    pub us_per_pkt_relay: f64,
    /// Whole process minus the clients' threads, per relayed packet.
    pub us_per_pkt_process_minus_clients: f64,
    /// Whole process minus clients and echo: siphon alone, per relayed packet.
    pub us_per_pkt_siphon: f64,
    /// The echo's CPU per packet it echoed.
    pub us_per_pkt_echo: f64,
    pub rss_before_mb: f64,
    pub rss_established_mb: f64,
    pub rss_per_call_kb: f64,
    /// Live heap per call by who allocated it.
    pub heap_per_call_kb_siphon: f64,
    pub heap_per_call_kb_echo: f64,
    pub heap_per_call_kb_client: f64,
    /// Calls siphon hung up during the media phase.
    pub dropped_calls: usize,
    /// Our `hangup` not answered with 200.
    pub bad_hangups: usize,
    /// Calls or ports left behind after every call was hung up.
    pub leaked_calls: usize,
}

/// Prints the table of all runs.
pub fn print_table(runs: &[RunResult]) {
    println!();
    println!(
        "{:>5} {:>5} {:>4} {:>13} {:>13} {:>6} {:>11} {:>7} {:>6} {:>6} {:>8} {:>6} {:>11} {:>8} {:>6} {:>6} {:>6}",
        "N", "up", "fail", "ready p50/99", "answ p50/99", "loss", "rtt p50/99", "relayed",
        "relay", "siphon", "proc-cli", "echo", "RSS MB", "RSS/call", "heap/c", "relay", "setup"
    );
    println!(
        "{:>5} {:>5} {:>4} {:>13} {:>13} {:>6} {:>11} {:>7} {:>6} {:>6} {:>8} {:>6} {:>11} {:>8} {:>6} {:>6} {:>6}",
        "", "", "", "ms", "ms", "%", "ms", "pps", "us/pkt", "us/pkt", "us/pkt", "us/pkt",
        "before->up", "KB", "KB", "%core", "cpu ms"
    );
    for r in runs {
        let window = r.window_s.max(1e-9);
        println!(
            "{:>5} {:>5} {:>4} {:>13} {:>13} {:>6.2} {:>11} {:>7.0} {:>6.2} {:>6.2} {:>8.2} {:>6.2} {:>11} {:>8.0} {:>6.0} {:>6.1} {:>6.2}",
            r.calls,
            r.established,
            r.setup_failures,
            format!("{:.0}/{:.0}", r.setup_ready_ms_p50, r.setup_ready_ms_p99),
            format!("{:.0}/{:.0}", r.setup_answered_ms_p50, r.setup_answered_ms_p99),
            r.loss_pct,
            format!("{:.2}/{:.2}", r.rtt_ms_p50, r.rtt_ms_p99),
            r.relayed as f64 / window,
            r.us_per_pkt_relay,
            r.us_per_pkt_siphon,
            r.us_per_pkt_process_minus_clients,
            r.us_per_pkt_echo,
            format!("{:.1}->{:.1}", r.rss_before_mb, r.rss_established_mb),
            r.rss_per_call_kb,
            r.heap_per_call_kb_siphon,
            100.0 * r.cpu_s.relay / window,
            r.setup_cpu_ms_per_call.relay + r.setup_cpu_ms_per_call.gateway,
        );
    }
    println!();
    println!(
        "relay us/pkt: relay-* threads' CPU / packets relayed (both directions, siphon's metrics)"
    );
    println!("siphon: whole process minus client and echo threads; proc-cli: minus clients only");
    println!(
        "echo: echo runtime CPU / packets it echoed; RSS: whole process (siphon, echo, browsers)"
    );
    println!("heap/c: siphon's live heap per call; relay %core: relay threads' CPU / wall time");
    println!("setup cpu: siphon's CPU (relay + control plane threads) per call set up");
    for r in runs {
        warn_anomalies(r);
    }
}

/// Anything that makes a run's figures suspect, spelled out under the table.
fn warn_anomalies(r: &RunResult) {
    if !r.setup_errors.is_empty() {
        println!("N={}: setup errors: {:?}", r.calls, r.setup_errors);
    }
    let counts = [
        (
            r.dropped_calls as u64,
            "calls hung up by siphon during media",
        ),
        (r.bad_hangups as u64, "hangups not answered with 200"),
        (r.leaked_calls as u64, "calls still held after hangup"),
        (r.relay_dropped, "media packets dropped by siphon"),
        (
            r.client_bad,
            "packets the browsers could not decrypt or recognise",
        ),
    ];
    for (n, what) in counts.into_iter().filter(|(n, _)| *n > 0) {
        println!("N={}: {n} {what}", r.calls);
    }
}
