//! The load run: add calls step by step up to each N at a set rate, hold
//! each step while measuring, then hang everything up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{self, ClientError, End, SetupTimes, Shared};
use super::error::RunError;
use super::flood;
use super::procfs::{self, ProcStat};
use super::report::{pct, quantile, Churn, Report, Step};
use super::scrape::{self, Scrape, ScrapeError};
use super::stamp;
use super::stats::{Counters, CountersSnapshot, Window};
use siphon::sip::EchoServer;
use siphon_testkit::browser::ClientIdentity;

/// How long a closed window waits for its last packets to come back.
const DRAIN: Duration = Duration::from_millis(500);
/// Above this share of one core the generator, not siphon, sets the pace.
const SATURATED_PCT: f64 = 90.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// siphon's WebSocket URL.
    pub ws_url: String,
    /// siphon's HTTP address, for `/metrics`.
    pub metrics: SocketAddr,
    /// Further siphon instances (several behind Kamailio): calls are spread
    /// round robin over siphon and these, and their metrics, CPU and
    /// memory are summed with siphon's.
    pub others: Vec<Instance>,
    /// What the browsers dial, round robin (numbers routed to the UAS).
    pub destinations: Vec<String>,
    /// Call counts to hold, in order.
    pub steps: Vec<usize>,
    /// How long each step is measured.
    pub hold: Duration,
    /// Wait after a step's calls are up before measuring.
    pub settle: Duration,
    /// New calls per second while ramping.
    pub setup_rate: f64,
    /// siphon's process, for its CPU and memory.
    pub siphon_pid: Option<u32>,
    /// The CPU siphon is pinned to: softirq is read there.
    pub siphon_cpu: Option<usize>,
    /// Send RTP (false: the calls stay up silent, to measure idle cost).
    pub media: bool,
    /// Bad datagrams per second to siphon's WebRTC port during the holds.
    pub flood_pps: u32,
    /// Short calls placed after the last step, while its calls stay up.
    pub churn: usize,
    /// Their rate, per second.
    pub churn_rate: f64,
}

/// One more siphon instance of a cluster.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its WebSocket URL.
    pub ws_url: String,
    /// Its HTTP address, for `/metrics`.
    pub metrics: SocketAddr,
    /// Its process, for CPU and memory.
    pub pid: Option<u32>,
}

impl Plan {
    fn ws_urls(&self) -> Vec<String> {
        let others = self.others.iter().map(|i| i.ws_url.clone());
        std::iter::once(self.ws_url.clone()).chain(others).collect()
    }

    fn metrics_addrs(&self) -> Vec<SocketAddr> {
        let others = self.others.iter().map(|i| i.metrics);
        std::iter::once(self.metrics).chain(others).collect()
    }

    fn pids(&self) -> Vec<u32> {
        let others = self.others.iter().map(|i| i.pid);
        std::iter::once(self.siphon_pid)
            .chain(others)
            .flatten()
            .collect()
    }

    /// Every instance's resident memory, summed.
    fn rss_bytes(&self) -> u64 {
        self.pids()
            .into_iter()
            .map(|p| procfs::rss_bytes(Some(p)))
            .sum()
    }

    /// Every instance's CPU seconds, summed.
    fn cpu_seconds(&self) -> f64 {
        let cpu = |p| procfs::cpu_seconds(Some(p)).unwrap_or(0.0);
        self.pids().into_iter().map(cpu).sum()
    }

    /// Every instance's metrics, summed.
    async fn scrape(&self) -> Result<Scrape, ScrapeError> {
        let mut sum = Scrape::default();
        for addr in self.metrics_addrs() {
            sum.add(&scrape::fetch(addr).await?);
        }
        Ok(sum)
    }
}

/// Everything read at one instant.
struct Snap {
    at: Instant,
    counters: CountersSnapshot,
    echoed: u64,
    siphon: Scrape,
    siphon_cpu: f64,
    own_cpu: f64,
    stat: ProcStat,
    rcvbuf_errors: u64,
}

impl Snap {
    async fn take(
        plan: &Plan,
        counters: &Counters,
        echo: &EchoServer,
    ) -> Result<Snap, ScrapeError> {
        Ok(Snap {
            at: Instant::now(),
            counters: counters.snapshot(),
            echoed: echo.stats().packets_echoed,
            siphon: plan.scrape().await?,
            siphon_cpu: plan.cpu_seconds(),
            own_cpu: procfs::cpu_seconds(None).unwrap_or(0.0),
            stat: ProcStat::read(),
            rcvbuf_errors: procfs::udp_rcvbuf_errors(),
        })
    }
}

/// Calls started so far and how their setups went.
struct Calls {
    tasks: Vec<JoinHandle<Option<End>>>,
    ok: usize,
    stop: watch::Sender<bool>,
    ready_tx: mpsc::UnboundedSender<Result<SetupTimes, ClientError>>,
    ready_rx: mpsc::UnboundedReceiver<Result<SetupTimes, ClientError>>,
}

/// Run `plan` against siphon, with `echo` answering its calls.
pub async fn run(plan: &Plan, echo: &EchoServer) -> Result<Report, RunError> {
    if plan.destinations.is_empty() || plan.setup_rate <= 0.0 {
        return Err(RunError::NothingToDial);
    }
    let shared = Arc::new(Shared {
        ws_urls: plan.ws_urls(),
        destinations: plan.destinations.clone(),
        identity: ClientIdentity::generate()?,
        counters: Counters::default(),
        media: plan.media,
        legs: Mutex::new(Vec::new()),
    });
    let flood_sent = Arc::new(AtomicU64::new(0));
    let (stop, _) = watch::channel(false);
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let mut calls = Calls {
        tasks: Vec::new(),
        ok: 0,
        stop,
        ready_tx,
        ready_rx,
    };
    let rss0 = plan.rss_bytes();
    let mut report = Report {
        siphon_pid: plan.siphon_pid,
        siphon_cpu: plan.siphon_cpu,
        ..Report::default()
    };
    for &n in &plan.steps {
        let step = run_step(plan, echo, &shared, &mut calls, n, rss0, &flood_sent).await?;
        eprintln!("load: {n} calls: {} up", step.established);
        report.steps.push(step);
    }
    if plan.churn > 0 {
        let up = plan.steps.last().copied().unwrap_or(0);
        report.churn = Some(churn(plan, &shared, up).await);
    }
    let _ = calls.stop.send(true);
    for t in calls.tasks {
        if let Ok(Some(End::HungUp(code))) = t.await {
            report.bad_hangups += usize::from(code != Some(200));
        }
    }
    report.leaked_calls = wait_idle(plan).await;
    Ok(report)
}

async fn run_step(
    plan: &Plan,
    echo: &EchoServer,
    shared: &Arc<Shared>,
    calls: &mut Calls,
    n: usize,
    rss0: u64,
    flood_sent: &Arc<AtomicU64>,
) -> Result<Step, ScrapeError> {
    let ramp_start = Instant::now();
    let add = n.saturating_sub(calls.tasks.len());
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.setup_rate));
    for _ in 0..add {
        pace.tick().await;
        let index = calls.tasks.len();
        let run = client::run(
            shared.clone(),
            index,
            calls.stop.subscribe(),
            calls.ready_tx.clone(),
        );
        calls.tasks.push(tokio::spawn(run));
    }
    let mut step = Step {
        calls: n,
        ..Step::default()
    };
    let (mut answered, mut ready) = (Vec::new(), Vec::new());
    for _ in 0..add {
        match calls.ready_rx.recv().await {
            Some(Ok(t)) => {
                answered.push(t.answered.as_secs_f64() * 1000.0);
                ready.push(t.ready.as_secs_f64() * 1000.0);
            }
            Some(Err(e)) => {
                step.setup_failures += 1;
                let e = e.to_string();
                if step.setup_errors.len() < 5 && !step.setup_errors.contains(&e) {
                    step.setup_errors.push(e);
                }
            }
            None => break,
        }
    }
    calls.ok += ready.len();
    let ramp = ramp_start.elapsed().as_secs_f64();
    step.setup_rate_per_s = if ramp > 0.0 {
        ready.len() as f64 / ramp
    } else {
        0.0
    };
    step.setup_answered_ms_p50 = quantile(&mut answered, 0.5);
    step.setup_answered_ms_p99 = quantile(&mut answered, 0.99);
    step.setup_ready_ms_p50 = quantile(&mut ready, 0.5);
    step.setup_ready_ms_p99 = quantile(&mut ready, 0.99);
    step.setup_ready_ms_max = quantile(&mut ready, 1.0);
    let dropped_before = shared.counters.dropped_calls.load(Relaxed);
    let (stop_flood, flood) = start_flood(plan, shared, flood_sent);
    tokio::time::sleep(plan.settle).await;
    let flooded = flood_sent.load(Relaxed);
    let c = &shared.counters;
    c.open_window(stamp::now_us());
    let a = Snap::take(plan, c, echo).await?;
    tokio::time::sleep(plan.hold).await;
    c.close_window(stamp::now_us());
    let b = Snap::take(plan, c, echo).await?;
    step.flood_sent = flood_sent.load(Relaxed) - flooded;
    // The window's last packets are still on their way back.
    tokio::time::sleep(DRAIN).await;
    let (window_sent, window_back) = (c.window_sent.load(Relaxed), c.window_back.load(Relaxed));
    step.loss_round_trip_pct = pct(window_sent.saturating_sub(window_back), window_sent);
    let _ = stop_flood.send(true);
    if let Some(f) = flood {
        let _ = f.await;
    }
    let dropped_total = shared.counters.dropped_calls.load(Relaxed) as usize;
    step.dropped_calls = dropped_total - dropped_before as usize;
    step.established = calls.ok.saturating_sub(dropped_total);
    measure(plan, &a, &b, rss0, &mut step);
    Ok(step)
}

/// Place `plan.churn` short calls at `plan.churn_rate` while `up` calls
/// stay up, each hung up once keyed.
async fn churn(plan: &Plan, shared: &Arc<Shared>, up: usize) -> Churn {
    let rate = if plan.churn_rate > 0.0 {
        plan.churn_rate
    } else {
        plan.setup_rate
    };
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(plan.churn);
    for i in 0..plan.churn {
        pace.tick().await;
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let to = &shared.destinations[i % shared.destinations.len()];
            let index = 1_000_000 + i;
            let url = shared.ws_url(index);
            let (leg, times) = client::set_up(url, to, &shared.identity, index).await?;
            let keyed = Instant::now();
            leg.hang_up().await;
            Ok::<_, ClientError>((times, keyed))
        }));
    }
    let mut c = Churn {
        calls_up: up,
        attempted: plan.churn,
        asked_per_s: rate,
        ..Churn::default()
    };
    let (mut ready, mut last) = (Vec::new(), started);
    for t in tasks {
        match t.await {
            Ok(Ok((times, keyed))) => {
                ready.push(times.ready.as_secs_f64() * 1000.0);
                last = last.max(keyed);
            }
            Ok(Err(e)) => {
                let e = e.to_string();
                if c.errors.len() < 5 && !c.errors.contains(&e) {
                    c.errors.push(e);
                }
            }
            Err(_) => {}
        }
    }
    c.ok = ready.len();
    let span = last.duration_since(started).as_secs_f64();
    c.setups_per_s = if span > 0.0 { c.ok as f64 / span } else { 0.0 };
    c.ready_ms_p50 = quantile(&mut ready, 0.5);
    c.ready_ms_p99 = quantile(&mut ready, 0.99);
    c.ready_ms_max = quantile(&mut ready, 1.0);
    c
}

/// The flood for one step's hold, when the plan asks for one.
fn start_flood(
    plan: &Plan,
    shared: &Arc<Shared>,
    sent: &Arc<AtomicU64>,
) -> (watch::Sender<bool>, Option<JoinHandle<()>>) {
    let (stop, stopped) = watch::channel(false);
    let target = shared
        .legs
        .lock()
        .ok()
        .and_then(|l| l.first().map(|(_, t)| *t));
    let flood = match target {
        Some(target) if plan.flood_pps > 0 => {
            let run = flood::run(
                shared.clone(),
                target,
                plan.flood_pps,
                sent.clone(),
                stopped,
            );
            Some(tokio::spawn(run))
        }
        _ => None,
    };
    (stop, flood)
}

/// The window's figures from two snapshots.
fn measure(plan: &Plan, a: &Snap, b: &Snap, rss0: u64, step: &mut Step) {
    let window = b.at.duration_since(a.at).as_secs_f64();
    step.window_s = window;
    step.sent = b.counters.sent - a.counters.sent;
    step.echoed = b.echoed - a.echoed;
    step.received = b.counters.received - a.counters.received;
    step.bad = b.counters.bad - a.counters.bad;
    step.loss_to_sip_pct = pct(step.sent.saturating_sub(step.echoed), step.sent);
    step.loss_to_browser_pct = pct(step.echoed.saturating_sub(step.received), step.echoed);
    let tails = |before: &[u64], after: &[u64]| Window::between(before, after).tails_ms();
    (step.rtt_ms_p50, step.rtt_ms_p99, step.rtt_ms_p999) = tails(&a.counters.rtt, &b.counters.rtt);
    (step.to_sip_ms_p50, step.to_sip_ms_p99, step.to_sip_ms_p999) =
        tails(&a.counters.to_sip, &b.counters.to_sip);
    (
        step.to_browser_ms_p50,
        step.to_browser_ms_p99,
        step.to_browser_ms_p999,
    ) = tails(&a.counters.to_browser, &b.counters.to_browser);
    let hold = Window::between(&a.counters.echo_hold, &b.counters.echo_hold);
    step.echo_hold_ms_p99 = hold.quantile_ms(0.99);
    let jitter_us = (b.counters.jitter_sum_us - a.counters.jitter_sum_us) as f64;
    step.jitter_ms = if step.received > 0 {
        jitter_us / step.received as f64 / 1000.0
    } else {
        0.0
    };
    step.relayed = step.echoed + step.received;
    step.relayed_siphon_metrics =
        (b.siphon.relayed_total() - a.siphon.relayed_total()).max(0.0) as u64;
    step.dropped = (b.siphon.dropped - a.siphon.dropped).max(0.0) as u64;
    step.udp_rcvbuf_errors = b.rcvbuf_errors.saturating_sub(a.rcvbuf_errors);
    step.siphon_cpu_s = b.siphon_cpu - a.siphon_cpu;
    step.siphon_cpu_pct = if window > 0.0 {
        100.0 * step.siphon_cpu_s / window
    } else {
        0.0
    };
    step.softirq_s = b.stat.softirq.since(&a.stat.softirq, plan.siphon_cpu);
    step.steal_pct = if window > 0.0 {
        100.0 * b.stat.steal.since(&a.stat.steal, plan.siphon_cpu) / window
    } else {
        0.0
    };
    let per_pkt = |secs: f64| {
        if step.relayed == 0 {
            0.0
        } else {
            secs * 1e6 / step.relayed as f64
        }
    };
    step.siphon_us_per_pkt = per_pkt(step.siphon_cpu_s);
    step.softirq_us_per_pkt = per_pkt(step.softirq_s);
    step.all_in_us_per_pkt = step.siphon_us_per_pkt + step.softirq_us_per_pkt;
    let rss = plan.rss_bytes();
    step.siphon_rss_mb = rss as f64 / (1024.0 * 1024.0);
    step.siphon_rss_per_call_kb = if step.established > 0 {
        rss.saturating_sub(rss0) as f64 / 1024.0 / step.established as f64
    } else {
        0.0
    };
    step.generator_cpu_pct = if window > 0.0 {
        100.0 * (b.own_cpu - a.own_cpu) / window
    } else {
        0.0
    };
    step.generator_saturated = step.generator_cpu_pct > SATURATED_PCT;
}

/// Wait up to 10 s for siphon (every instance) to report no call; the calls left.
async fn wait_idle(plan: &Plan) -> f64 {
    let mut left = f64::NAN;
    for _ in 0..100 {
        match plan.scrape().await {
            Ok(s) if s.calls_active == 0.0 => return 0.0,
            Ok(s) => left = s.calls_active,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    left
}
