//! The load tool's figures: one `Step` per N, the whole run as JSON, and a
//! table for the terminal.

use serde::{Deserialize, Serialize};

/// Everything measured at one step of the ramp (N calls up). Figures a
/// report from an older build lacks read as 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Calls this step asked for.
    pub calls: usize,
    /// Calls up (media flowing) at the end of the hold.
    pub established: usize,
    /// Setups that failed in this step, and a few of their errors.
    pub setup_failures: usize,
    /// A few of those setups' errors.
    pub setup_errors: Vec<String>,
    /// Calls set up in this step per second of its ramp.
    pub setup_rate_per_s: f64,
    /// `call` sent -> `answered`, and -> SRTP keyed, in this step.
    pub setup_answered_ms_p50: f64,
    /// `call` sent -> `answered`, p99.
    pub setup_answered_ms_p99: f64,
    /// `call` sent -> SRTP keyed, p50.
    pub setup_ready_ms_p50: f64,
    /// `call` sent -> SRTP keyed, p99.
    pub setup_ready_ms_p99: f64,
    /// `call` sent -> SRTP keyed, the slowest.
    pub setup_ready_ms_max: f64,
    /// Calls siphon ended on its own during this step.
    pub dropped_calls: usize,
    /// The measured hold, in seconds.
    pub window_s: f64,
    /// Browser RTP sent, echoed by the UAS, and back at the browsers.
    pub sent: u64,
    /// Browser RTP the UAS echoed.
    pub echoed: u64,
    /// Echoed RTP back at the browsers.
    pub received: u64,
    /// Packets back that failed SRTP or were not ours.
    pub bad: u64,
    /// Loss browser -> siphon -> UAS and back, exact: of the packets
    /// stamped in the window, those that never came back (counted after a
    /// 500 ms drain).
    pub loss_round_trip_pct: f64,
    /// The same split by direction, from the counters at the window's
    /// edges (packets in flight there make these approximate).
    pub loss_to_sip_pct: f64,
    /// Loss siphon -> browser, approximate.
    pub loss_to_browser_pct: f64,
    /// Round trips through siphon twice (browser -> siphon -> UAS echo ->
    /// siphon -> browser), generator included.
    pub rtt_ms_p50: f64,
    /// Round trip, p99.
    pub rtt_ms_p99: f64,
    /// Round trip, p99.9.
    pub rtt_ms_p999: f64,
    /// siphon's added latency per pass, kernel to kernel: from the
    /// browser's send stamp to the UAS's kernel receive, and from the UAS's
    /// send stamp to the browser's kernel receive. The generator's own
    /// queues are outside these (see `stamp`); 0 when the echo does not
    /// stamp.
    pub to_sip_ms_p50: f64,
    /// Browser -> UAS pass, p99.
    pub to_sip_ms_p99: f64,
    /// Browser -> UAS pass, p99.9.
    pub to_sip_ms_p999: f64,
    /// UAS -> browser pass, p50.
    pub to_browser_ms_p50: f64,
    /// UAS -> browser pass, p99.
    pub to_browser_ms_p99: f64,
    /// UAS -> browser pass, p99.9.
    pub to_browser_ms_p999: f64,
    /// How long the echo held packets, p99 (the generator's share of the
    /// round trip).
    pub echo_hold_ms_p99: f64,
    /// Mean RFC 3550 jitter of the echoed streams.
    pub jitter_ms: f64,
    /// RTP packets siphon relayed in the window, by the generator's own
    /// count (echoed + received): exact at the window's edges, the
    /// denominator of every per-packet figure.
    pub relayed: u64,
    /// The same from siphon's /metrics (RTP and RTCP, flushed every
    /// 500 ms, so off by up to half a second of packets), and its drops.
    pub relayed_siphon_metrics: u64,
    /// Packets siphon dropped, from its /metrics.
    pub dropped: u64,
    /// UDP datagrams the kernel dropped for full receive buffers, on any
    /// socket of the machine (siphon's or the generator's).
    pub udp_rcvbuf_errors: u64,
    /// Bad datagrams the flood sent to siphon's WebRTC port in the window.
    pub flood_sent: u64,
    /// siphon's user + system CPU over the window, in % of one core, and
    /// per relayed packet.
    pub siphon_cpu_s: f64,
    /// siphon's CPU in % of one core.
    pub siphon_cpu_pct: f64,
    /// siphon's CPU per relayed packet, in µs.
    pub siphon_us_per_pkt: f64,
    /// Softirq time over the window (on siphon's CPU when it is pinned,
    /// else all CPUs), and per relayed packet.
    pub softirq_s: f64,
    /// Softirq per relayed packet, in µs.
    pub softirq_us_per_pkt: f64,
    /// Steal time over the window (on siphon's CPU when it is pinned, else
    /// all CPUs), in % of one core: the hypervisor ran someone else there,
    /// which stalls siphon in a way its own figures cannot show.
    pub steal_pct: f64,
    /// siphon's CPU plus softirq, per relayed packet.
    pub all_in_us_per_pkt: f64,
    /// siphon's resident memory, and its growth per established call since
    /// before the first call.
    pub siphon_rss_mb: f64,
    /// siphon's resident memory growth per established call.
    pub siphon_rss_per_call_kb: f64,
    /// The generator's own CPU, in % of one core: near 100 it, not siphon,
    /// limits the figures.
    pub generator_cpu_pct: f64,
    /// The generator's CPU was near a full core.
    pub generator_saturated: bool,
}

/// Setups measured while the last step's calls stay up: short calls,
/// each hung up as soon as its media is keyed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Churn {
    /// Calls up meanwhile (the last step's).
    pub calls_up: usize,
    /// Short calls placed, and how many got keyed media.
    pub attempted: usize,
    /// Short calls that got keyed media.
    pub ok: usize,
    /// A few of the failures' errors.
    pub errors: Vec<String>,
    /// The rate asked for, and the rate achieved (keyed calls per second
    /// from the first `call` to the last keyed).
    pub asked_per_s: f64,
    /// Keyed calls per second achieved.
    pub setups_per_s: f64,
    /// `call` sent -> SRTP keyed.
    pub ready_ms_p50: f64,
    /// `call` sent -> SRTP keyed, p99.
    pub ready_ms_p99: f64,
    /// `call` sent -> SRTP keyed, the slowest.
    pub ready_ms_max: f64,
}

/// A whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// siphon's pid, when its CPU and memory were read.
    pub siphon_pid: Option<u32>,
    /// The CPU siphon was pinned to (softirq is read there).
    pub siphon_cpu: Option<usize>,
    /// Each step of the ramp.
    pub steps: Vec<Step>,
    /// Setups while the last step was up, when asked for.
    pub churn: Option<Churn>,
    /// Calls still up at siphon after every call hung up.
    pub leaked_calls: f64,
    /// Our `hangup`s that siphon did not answer with `hangup` 200.
    pub bad_hangups: usize,
}

/// The width of each column of [`table`], units included.
const WIDTHS: [usize; 18] = [5, 5, 8, 10, 9, 9, 9, 9, 8, 8, 10, 7, 7, 7, 7, 8, 6, 7];

/// One header line of [`table`]: `cells` right-aligned to [`WIDTHS`].
fn header_line(cells: &[&str]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .zip(WIDTHS)
        .map(|(c, w)| format!("{c:>w$}"))
        .collect();
    format!("{}\n", cells.join(" ").trim_end())
}

/// The table printed at the end of a run.
pub fn table(r: &Report) -> String {
    let mut out = header_line(&[
        "N",
        "up",
        "setup/s",
        "ready p99",
        "loss r/t",
        "loss>sip",
        "loss>web",
        "rtt p50",
        "p99",
        "p99.9",
        "pass>sip",
        ">web",
        "jitter",
        "µs/pkt",
        "µs/pkt",
        "KB/call",
        "steal",
        "gen CPU",
    ]);
    out.push_str(&header_line(&[
        "", "", "", "", "", "", "", "", "", "", "p99", "p99", "", "siphon", "all-in",
    ]));
    for s in &r.steps {
        out.push_str(&format!(
            "{:>5} {:>5} {:>8.1} {:>8.1}ms {:>8.3}% {:>8.3}% {:>8.3}% {:>7.2}ms {:>6.2}ms {:>6.2}ms {:>8.2}ms {:>5.2}ms {:>5.2}ms {:>7.2} {:>7.2} {:>8.1} {:>5.1}% {:>6.0}%{}\n",
            s.calls,
            s.established,
            s.setup_rate_per_s,
            s.setup_ready_ms_p99,
            s.loss_round_trip_pct,
            s.loss_to_sip_pct,
            s.loss_to_browser_pct,
            s.rtt_ms_p50,
            s.rtt_ms_p99,
            s.rtt_ms_p999,
            s.to_sip_ms_p99,
            s.to_browser_ms_p99,
            s.jitter_ms,
            s.siphon_us_per_pkt,
            s.all_in_us_per_pkt,
            s.siphon_rss_per_call_kb,
            s.steal_pct,
            s.generator_cpu_pct,
            if s.generator_saturated { " (generator saturated)" } else { "" },
        ));
    }
    if let Some(c) = &r.churn {
        out.push_str(&format!(
            "churn: {} of {} short calls keyed while {} were up: {:.1} setups/s (asked {:.1}), ready p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
            c.ok, c.attempted, c.calls_up, c.setups_per_s, c.asked_per_s, c.ready_ms_p50, c.ready_ms_p99, c.ready_ms_max
        ));
    }
    out
}

/// `part` of `whole` in percent (0 when `whole` is 0).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The `q` quantile (0..=1) of `v`, sorted in place; 0 for none.
pub fn quantile<T: Copy + Into<f64> + PartialOrd>(v: &mut [T], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * q).round() as usize].into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_header_lines_up_with_its_rows() {
        let step = Step {
            calls: 1000,
            established: 1000,
            generator_saturated: true,
            ..Step::default()
        };
        let report = Report {
            steps: vec![step],
            ..Report::default()
        };
        let text = table(&report);
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let (names, row) = (&lines[0], &lines[2]);
        let mut edge = 0;
        for w in WIDTHS {
            edge += w;
            // Each column ends where its name ends, and a space follows.
            assert_ne!(
                names[edge - 1],
                ' ',
                "header column ending at {edge}: {text}"
            );
            assert_ne!(row[edge - 1], ' ', "row column ending at {edge}: {text}");
            assert_eq!(row.get(edge).copied().unwrap_or(' '), ' ', "{text}");
            edge += 1;
        }
    }
}
