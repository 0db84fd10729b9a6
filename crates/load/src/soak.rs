//! The soak: hold N calls for T minutes, replace a share of them every
//! minute, and sample siphon's resident memory and open file descriptors
//! once a minute. It passes when both stay within a tolerance of their
//! value at the end of the warm-up, and no call is lost.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{self, ClientError, End, SetupTimes, Shared};
use super::error::RunError;
use super::procfs;
use super::scrape;
use super::stats::Counters;
use siphon_testkit::browser::ClientIdentity;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    /// siphon's WebSocket URL.
    pub ws_url: String,
    /// siphon's HTTP address, for `/metrics`.
    pub metrics: SocketAddr,
    /// What the browsers dial, round robin.
    pub destinations: Vec<String>,
    /// Calls held up at every moment.
    pub calls: usize,
    /// Intervals to run (minutes, with the default interval).
    pub intervals: u32,
    /// One interval: a churn and a sample each (a minute by default).
    pub interval: Duration,
    /// Share of the calls hung up and replaced each interval, in %.
    pub churn_pct: f64,
    /// Intervals before the baseline sample; figures drift freely before it.
    pub warmup: u32,
    /// How far RSS and fds may drift from the baseline, in %.
    pub tolerance_pct: f64,
    /// New calls per second while setting up.
    pub setup_rate: f64,
    /// siphon's process, for RSS and fds.
    pub siphon_pid: Option<u32>,
    /// Send RTP (false: the calls stay up silent).
    pub media: bool,
}

/// One sample, taken at the end of an interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Intervals since the calls were first up (0: right then).
    pub interval: u32,
    /// siphon's resident memory, MB.
    pub rss_mb: f64,
    /// siphon's open file descriptors.
    pub fds: usize,
    /// `siphon_calls_active` from its `/metrics`.
    pub calls_active: f64,
}

/// The soak's outcome (also written as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SoakReport {
    /// The command line that produced it.
    pub command: String,
    /// Calls held.
    pub calls: usize,
    /// Intervals run, and the length of one.
    pub intervals: u32,
    /// The length of one interval, in seconds.
    pub interval_s: f64,
    /// Share replaced each interval, in %.
    pub churn_pct: f64,
    /// Intervals before the baseline sample.
    pub warmup: u32,
    /// Allowed drift from the baseline, in %.
    pub tolerance_pct: f64,
    /// Calls placed in all (the first N and every replacement).
    pub placed: usize,
    /// Calls hung up and replaced by the churn.
    pub replaced: usize,
    /// Calls that never came up.
    pub setup_failures: usize,
    /// Calls siphon ended on its own.
    pub dropped: usize,
    /// Our hangups not answered with `hangup` 200.
    pub bad_hangups: usize,
    /// A few of the errors behind the failures.
    pub errors: Vec<String>,
    /// One per interval, and one when the calls were first up.
    pub samples: Vec<Sample>,
    /// Largest drift from the baseline sample after the warm-up, in %.
    pub rss_drift_pct: f64,
    /// Largest drift of open fds from the baseline, in %.
    pub fd_drift_pct: f64,
    /// Both drifts within the tolerance.
    pub flat: bool,
    /// setup failures + dropped + bad hangups.
    pub lost_calls: usize,
    /// Flat and nothing lost.
    pub passed: bool,
}

impl SoakReport {
    /// Fill in the drifts and the verdict from the samples and counts.
    pub fn conclude(&mut self) {
        self.rss_drift_pct = drift_pct(&self.samples, self.warmup, |s| s.rss_mb);
        self.fd_drift_pct = drift_pct(&self.samples, self.warmup, |s| s.fds as f64);
        self.flat =
            self.rss_drift_pct <= self.tolerance_pct && self.fd_drift_pct <= self.tolerance_pct;
        self.lost_calls = self.setup_failures + self.dropped + self.bad_hangups;
        self.passed = self.flat && self.lost_calls == 0;
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::from("interval  rss MB   fds  calls\n");
        for s in &self.samples {
            out.push_str(&format!(
                "{:>8} {:>7.1} {:>5} {:>6}\n",
                s.interval, s.rss_mb, s.fds, s.calls_active
            ));
        }
        out.push_str(&format!(
            "after interval {}: RSS drift {:.2} %, fd drift {:.2} % (limit {} %): {}\n",
            self.warmup,
            self.rss_drift_pct,
            self.fd_drift_pct,
            self.tolerance_pct,
            if self.flat { "flat" } else { "NOT flat" }
        ));
        out.push_str(&format!(
            "calls placed {}, replaced {}, lost {} (setup failures {}, dropped by siphon {}, bad hangups {}): {}\n",
            self.placed,
            self.replaced,
            self.lost_calls,
            self.setup_failures,
            self.dropped,
            self.bad_hangups,
            if self.passed { "PASS" } else { "FAIL" }
        ));
        out
    }
}

/// The largest |x - baseline| / baseline over the samples after the
/// warm-up, in %; the baseline is the sample at the end of the warm-up.
/// 0 with no sample after it.
pub fn drift_pct(samples: &[Sample], warmup: u32, value: impl Fn(&Sample) -> f64) -> f64 {
    let Some(base) = samples.iter().find(|s| s.interval == warmup).map(&value) else {
        return 0.0;
    };
    if base <= 0.0 {
        return 0.0;
    }
    samples
        .iter()
        .filter(|s| s.interval > warmup)
        .map(|s| 100.0 * (value(s) - base).abs() / base)
        .fold(0.0, f64::max)
}

/// How many calls to replace per interval: `pct` of `calls`, at least one
/// when `pct` is above 0.
pub fn per_interval(calls: usize, pct: f64) -> usize {
    if pct <= 0.0 || calls == 0 {
        return 0;
    }
    ((calls as f64 * pct / 100.0).round() as usize).clamp(1, calls)
}

/// One call of the soak and the switch that hangs it up.
struct Held {
    stop: watch::Sender<bool>,
    task: JoinHandle<Option<End>>,
}

/// The calls up, oldest first, and where their setups report.
struct Pool {
    shared: Arc<Shared>,
    held: VecDeque<Held>,
    next_index: usize,
    ready_tx: mpsc::UnboundedSender<Result<SetupTimes, ClientError>>,
    ready_rx: mpsc::UnboundedReceiver<Result<SetupTimes, ClientError>>,
}

impl Pool {
    /// Place `n` calls at `rate` per second and wait for their setups.
    async fn place(&mut self, n: usize, rate: f64, report: &mut SoakReport) {
        let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        for _ in 0..n {
            pace.tick().await;
            let (stop, stopped) = watch::channel(false);
            let run = client::run(
                self.shared.clone(),
                self.next_index,
                stopped,
                self.ready_tx.clone(),
            );
            self.next_index += 1;
            let task = tokio::spawn(run);
            self.held.push_back(Held { stop, task });
        }
        report.placed += n;
        for _ in 0..n {
            match self.ready_rx.recv().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    report.setup_failures += 1;
                    note(report, e.to_string());
                }
                None => break,
            }
        }
    }

    /// Hang up the `n` oldest calls and account for how each ended.
    async fn hang_up_oldest(&mut self, n: usize, report: &mut SoakReport) {
        let mut ending = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(call) = self.held.pop_front() else {
                break;
            };
            let _ = call.stop.send(true);
            ending.push(call.task);
        }
        for task in ending {
            account(task.await.ok().flatten(), report, true);
        }
    }

    /// Collect calls that siphon ended on its own (the task finished
    /// before we hung it up), so they are counted once, when they happen.
    async fn reap_dropped(&mut self, report: &mut SoakReport) {
        let mut kept = VecDeque::with_capacity(self.held.len());
        while let Some(call) = self.held.pop_front() {
            if call.task.is_finished() {
                account(call.task.await.ok().flatten(), report, false);
            } else {
                kept.push_back(call);
            }
        }
        self.held = kept;
    }
}

fn account(end: Option<End>, report: &mut SoakReport, replaced: bool) {
    match end {
        // A setup failure, already counted when it was reported.
        None => {}
        Some(End::HungUp(code)) => {
            report.replaced += usize::from(replaced);
            if code != Some(200) {
                report.bad_hangups += 1;
                note(report, format!("hangup answered with {code:?}"));
            }
        }
        Some(End::Dropped(why)) => {
            report.dropped += 1;
            note(report, why);
        }
    }
}

fn note(report: &mut SoakReport, e: String) {
    if report.errors.len() < 5 && !report.errors.contains(&e) {
        report.errors.push(e);
    }
}

async fn sample(plan: &SoakPlan, interval: u32) -> Sample {
    let calls_active = scrape::fetch(plan.metrics)
        .await
        .map_or(f64::NAN, |s| s.calls_active);
    Sample {
        interval,
        rss_mb: procfs::rss_bytes(plan.siphon_pid) as f64 / (1024.0 * 1024.0),
        fds: procfs::fd_count(plan.siphon_pid).unwrap_or(0),
        calls_active,
    }
}

/// Run the soak against siphon (its UAS answering elsewhere).
pub async fn run(plan: &SoakPlan) -> Result<SoakReport, RunError> {
    if plan.destinations.is_empty() || plan.setup_rate <= 0.0 || plan.calls == 0 {
        return Err(RunError::NothingToSoak);
    }
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let mut pool = Pool {
        shared: Arc::new(Shared {
            ws_urls: vec![plan.ws_url.clone()],
            destinations: plan.destinations.clone(),
            identity: ClientIdentity::generate()?,
            counters: Counters::default(),
            media: plan.media,
            legs: Mutex::new(Vec::new()),
        }),
        held: VecDeque::new(),
        next_index: 0,
        ready_tx,
        ready_rx,
    };
    let mut report = SoakReport {
        calls: plan.calls,
        intervals: plan.intervals,
        interval_s: plan.interval.as_secs_f64(),
        churn_pct: plan.churn_pct,
        warmup: plan.warmup,
        tolerance_pct: plan.tolerance_pct,
        ..SoakReport::default()
    };
    pool.place(plan.calls, plan.setup_rate, &mut report).await;
    report.samples.push(sample(plan, 0).await);
    let churn = per_interval(plan.calls, plan.churn_pct);
    let started = Instant::now();
    for i in 1..=plan.intervals {
        // Churn at the start of each interval, sample at its end: the
        // sample sees the replacements settled.
        pool.reap_dropped(&mut report).await;
        pool.hang_up_oldest(churn, &mut report).await;
        let missing = plan.calls.saturating_sub(pool.held.len());
        pool.place(missing, plan.setup_rate, &mut report).await;
        tokio::time::sleep_until((started + plan.interval * i).into()).await;
        let s = sample(plan, i).await;
        eprintln!(
            "soak: interval {i}/{}: RSS {:.1} MB, {} fds, {} calls",
            plan.intervals, s.rss_mb, s.fds, s.calls_active
        );
        report.samples.push(s);
    }
    pool.reap_dropped(&mut report).await;
    let left = pool.held.len();
    pool.hang_up_oldest(left, &mut report).await;
    // The last hangups are not replacements.
    report.replaced = report.replaced.saturating_sub(left);
    report.conclude();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(interval: u32, rss_mb: f64, fds: usize) -> Sample {
        Sample {
            interval,
            rss_mb,
            fds,
            calls_active: 0.0,
        }
    }

    #[test]
    fn drift_counts_only_after_the_warmup_against_its_last_sample() {
        let samples = [
            at(0, 10.0, 50),
            at(1, 100.0, 500),
            at(2, 104.0, 510),
            at(3, 97.0, 500),
        ];
        assert_eq!(drift_pct(&samples, 1, |s| s.rss_mb), 4.0);
        assert_eq!(drift_pct(&samples, 1, |s| s.fds as f64), 2.0);
        assert_eq!(drift_pct(&samples, 3, |s| s.rss_mb), 0.0, "nothing after");
        assert_eq!(drift_pct(&samples, 9, |s| s.rss_mb), 0.0, "no baseline");
    }

    #[test]
    fn a_leak_or_a_lost_call_fails_the_soak() {
        let mut r = SoakReport {
            warmup: 1,
            tolerance_pct: 5.0,
            samples: vec![at(1, 100.0, 500), at(2, 103.0, 500), at(3, 106.0, 500)],
            ..SoakReport::default()
        };
        r.conclude();
        assert!(!r.flat && !r.passed);
        assert_eq!(r.rss_drift_pct, 6.0);
        r.samples.pop();
        r.conclude();
        assert!(r.flat && r.passed);
        r.dropped = 1;
        r.conclude();
        assert_eq!((r.lost_calls, r.passed), (1, false));
        assert!(r.summary().contains("FAIL"));
    }

    #[test]
    fn ten_percent_of_500_is_50_and_never_less_than_one() {
        assert_eq!(per_interval(500, 10.0), 50);
        assert_eq!(per_interval(4, 10.0), 1);
        assert_eq!(per_interval(4, 0.0), 0);
        assert_eq!(per_interval(4, 500.0), 4);
    }
}
