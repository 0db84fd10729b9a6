//! One run: a whole siphon, its echo UAS(es) and N lightweight browsers in
//! this process, each on its own named runtime so /proc can tell their CPU
//! apart; set up N calls, send media, measure, hang up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use siphon::config::{Config, SrtpMode};
use siphon::gateway::Gateway;
use siphon::metrics::{flow, Metrics};
use siphon::sip::{EchoBehavior, EchoServer, EchoSettings};
use siphon_load::report::quantile;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::call::{self, CallReport, Phase, SetupTimes, Shared};
use crate::heap::{self, Domain};
use crate::procfs::{self, CpuSnapshot, Group};
use crate::report::{CpuSeconds, RunResult};
use crate::Args;
use siphon_testkit::browser::ClientIdentity;

/// Longer than one relay-loop counter flush (500 ms), so metrics are current.
const FLUSH_WAIT: Duration = Duration::from_millis(1200);
/// Loopback round trips take well under this; the CPU window ends here.
const IN_FLIGHT: Duration = Duration::from_millis(100);
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

fn runtime(name: &'static str, threads: usize, domain: Domain) -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .on_thread_start(move || heap::enter(domain))
        .enable_all()
        .build()
        .map_err(|e| format!("{name}: {e}"))
}

/// The parts under test and the runtimes they live on.
struct Rig {
    gateway_rt: Runtime,
    echo_rt: Runtime,
    client_rt: Runtime,
    gateway: Gateway,
    metrics: Metrics,
    echoes: Vec<EchoServer>,
    stop: CancellationToken,
}

impl Rig {
    fn start(args: &Args, calls: usize) -> Result<Rig, String> {
        let gateway_rt = runtime(Group::GATEWAY_THREAD, args.gateway_threads, Domain::Siphon)?;
        let echo_rt = runtime(Group::ECHO_THREAD, 1, Domain::Echo)?;
        let client_rt = runtime(Group::CLIENT_THREAD, args.client_threads, Domain::Client)?;
        let stop = CancellationToken::new();
        let mut echoes = Vec::new();
        for _ in 0..args.echoes.max(1) {
            let settings = EchoSettings {
                listen: "127.0.0.1:0".parse().expect("literal address"),
                rtp_ip: "127.0.0.1".parse().expect("literal address"),
                behavior: EchoBehavior::default(),
            };
            // Started from inside its runtime so that its tasks live there.
            let start = echo_rt.spawn(EchoServer::start(settings, Metrics::new(), stop.clone()));
            let echo = echo_rt.block_on(start).map_err(|e| e.to_string())?;
            echoes.push(echo.map_err(|e| format!("echo: {e}"))?);
        }
        let addrs: Vec<SocketAddr> = echoes.iter().map(EchoServer::local_addr).collect();
        let config = gateway_config(args, calls, &addrs);
        let metrics = Metrics::new();
        let start = gateway_rt.spawn(Gateway::start(config, metrics.clone()));
        let gateway = gateway_rt.block_on(start).map_err(|e| e.to_string())?;
        let gateway = gateway.map_err(|e| format!("gateway: {e}"))?;
        Ok(Rig {
            gateway_rt,
            echo_rt,
            client_rt,
            gateway,
            metrics,
            echoes,
            stop,
        })
    }

    /// Numbers go to the trunk (the first echo); more echoes are dialled by URI.
    fn destinations(&self) -> Vec<String> {
        if self.echoes.len() == 1 {
            return vec!["1000".into()];
        }
        let addr = |e: &EchoServer| format!("sip:1000@{};transport=udp", e.local_addr());
        self.echoes.iter().map(addr).collect()
    }

    /// Packets relayed so far: (browser -> SIP, SIP -> browser), RTP + RTCP.
    fn relayed(&self) -> (u64, u64) {
        let count = |f: &str| {
            let c = |kind| {
                self.metrics
                    .media_packets_total
                    .with_label_values(&[f, kind])
            };
            c("rtp").get() + c("rtcp").get()
        };
        (count(flow::WEBRTC_TO_SIP), count(flow::SIP_TO_WEBRTC))
    }

    /// Every media drop siphon counted, all sides and reasons.
    fn dropped(&self) -> u64 {
        let text = self.metrics.render();
        let values = text
            .lines()
            .filter(|l| l.starts_with("siphon_media_dropped_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        values.sum::<f64>() as u64
    }

    fn echoed(&self) -> u64 {
        self.echoes.iter().map(|e| e.stats().packets_echoed).sum()
    }

    fn echo_calls(&self) -> u64 {
        self.echoes.iter().map(|e| e.stats().active_calls).sum()
    }

    fn shut_down(self) {
        let Rig {
            gateway_rt,
            echo_rt,
            client_rt,
            gateway,
            stop,
            echoes,
            ..
        } = self;
        gateway_rt.block_on(gateway.shutdown());
        stop.cancel();
        drop(echoes);
        client_rt.shutdown_timeout(Duration::from_secs(2));
        echo_rt.shutdown_timeout(Duration::from_secs(2));
        gateway_rt.shutdown_timeout(Duration::from_secs(2));
    }
}

fn gateway_config(args: &Args, calls: usize, echoes: &[SocketAddr]) -> Config {
    let any = |s: &str| Some(s.parse().expect("literal address"));
    let mut c = Config::default();
    c.http.listen = "127.0.0.1:0".parse().expect("literal address");
    c.sip.udp = any("127.0.0.1:0");
    c.sip.tcp = any("127.0.0.1:0");
    c.webrtc.port = 0;
    // Two ports per call (RTP, RTCP) plus room for ports other processes hold.
    let span = 2 * calls + 200;
    let base = args.rtp_port_base.unwrap_or_else(|| {
        siphon_testkit::ports::block(u16::try_from(span + 1).expect("calls fit in the port space"))
    });
    let span = span.min(usize::from(u16::MAX - base));
    c.rtp.port_min = base;
    c.rtp.port_max = base + span as u16;
    c.media.workers = args.workers;
    c.echo.enabled = false;
    c.limits.max_calls = (calls + 16) as u32;
    c.sip.trunk.uri = echoes.first().map(|a| format!("sip:{a};transport=udp"));
    c.sip.allow_uri_dial = echoes.len() > 1;
    if args.sip_srtp {
        c.sip.trunk.srtp = SrtpMode::Require;
        // The echo is on loopback UDP: no one to read the key.
        c.sip.srtp_allow_insecure_signaling = true;
    }
    c
}

/// Runs N calls through a fresh rig and measures them.
pub fn run(args: &Args, calls: usize) -> Result<RunResult, String> {
    let rig = Rig::start(args, calls)?;
    std::thread::sleep(Duration::from_millis(300));
    let mut r = RunResult {
        calls,
        relay_loops: worker_count(args),
        setup_concurrency: args.setup_concurrency,
        ..Default::default()
    };
    let rss_before = procfs::rss_bytes();
    let heap_before = heap::live();
    let shared = Arc::new(Shared {
        ws_url: format!("ws://{}/ws", rig.gateway.http_addr()),
        destinations: rig.destinations(),
        identity: ClientIdentity::generate().map_err(|e| e.to_string())?,
        setup_gate: Semaphore::new(args.setup_concurrency.max(1)),
        calls,
    });
    let (phase, phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    // Spawned from a client thread so the tasks' memory counts as the clients'.
    let spawn = rig.client_rt.spawn(async move {
        (0..calls)
            .map(|i| {
                tokio::spawn(call::run(
                    shared.clone(),
                    i,
                    phase_rx.clone(),
                    ready_tx.clone(),
                ))
            })
            .collect::<Vec<_>>()
    });
    let cpu0 = CpuSnapshot::take();
    let handles = rig.client_rt.block_on(spawn).map_err(|e| e.to_string())?;
    let setups = rig.client_rt.block_on(collect_setups(ready_rx, calls));
    let cpu1 = CpuSnapshot::take();
    record_setups(&mut r, setups);
    r.setup_cpu_ms_per_call = cpu_by_group(&cpu1, &cpu0).scaled(1e3 / calls.max(1) as f64);
    eprintln!(
        "  N={calls}: {} calls up, {} failed, in {:.1} s",
        r.established, r.setup_failures, r.setup_all_s
    );
    std::thread::sleep(FLUSH_WAIT);
    let heap_up = heap::live();
    let rss_up = procfs::rss_bytes();
    record_memory(&mut r, rss_before, rss_up, heap_before, heap_up);
    measure_media(&rig, args, &phase, &mut r);
    phase.send_replace(Phase::Hangup);
    let reports = rig.client_rt.block_on(join_all(handles));
    record_reports(&mut r, reports);
    r.leaked_calls = wait_released(&rig);
    rig.shut_down();
    Ok(r)
}

fn worker_count(args: &Args) -> usize {
    match args.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    }
}

/// Setup results in completion order, with the wall time they took.
async fn collect_setups(
    mut ready: mpsc::UnboundedReceiver<Result<SetupTimes, String>>,
    calls: usize,
) -> (Vec<Result<SetupTimes, String>>, Duration) {
    let started = Instant::now();
    let mut out = Vec::with_capacity(calls);
    while out.len() < calls {
        match ready.recv().await {
            Some(r) => out.push(r),
            None => break,
        }
    }
    (out, started.elapsed())
}

fn record_setups(r: &mut RunResult, (setups, took): (Vec<Result<SetupTimes, String>>, Duration)) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut answered = Vec::new();
    let mut ready = Vec::new();
    for s in setups {
        match s {
            Ok(t) => {
                answered.push(ms(t.answered));
                ready.push(ms(t.ready));
                r.srtp_profile = t.profile.to_owned();
            }
            Err(e) => {
                r.setup_failures += 1;
                if r.setup_errors.len() < 5 && !r.setup_errors.contains(&e) {
                    r.setup_errors.push(e);
                }
            }
        }
    }
    r.established = ready.len();
    r.setup_all_s = took.as_secs_f64();
    r.setup_answered_ms_p50 = quantile(&mut answered, 0.5);
    r.setup_answered_ms_p99 = quantile(&mut answered, 0.99);
    r.setup_ready_ms_p50 = quantile(&mut ready, 0.5);
    r.setup_ready_ms_p99 = quantile(&mut ready, 0.99);
}

fn record_memory(r: &mut RunResult, rss0: u64, rss1: u64, heap0: [i64; 3], heap1: [i64; 3]) {
    const MB: f64 = 1024.0 * 1024.0;
    let per_call = |delta: f64| delta / 1024.0 / r.established.max(1) as f64;
    r.rss_before_mb = rss0 as f64 / MB;
    r.rss_established_mb = rss1 as f64 / MB;
    r.rss_per_call_kb = per_call(rss1 as f64 - rss0 as f64);
    r.heap_per_call_kb_siphon = per_call((heap1[0] - heap0[0]) as f64);
    r.heap_per_call_kb_echo = per_call((heap1[1] - heap0[1]) as f64);
    r.heap_per_call_kb_client = per_call((heap1[2] - heap0[2]) as f64);
}

/// Media for `args.seconds`; CPU over the sending window plus in-flight time,
/// packets from siphon's counters once they have been flushed.
fn measure_media(rig: &Rig, args: &Args, phase: &watch::Sender<Phase>, r: &mut RunResult) {
    let (to_sip0, to_webrtc0) = rig.relayed();
    let dropped0 = rig.dropped();
    let echoed0 = rig.echoed();
    let start = Instant::now() + Duration::from_millis(20);
    phase.send_replace(Phase::Media(start));
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let cpu0 = CpuSnapshot::take();
    std::thread::sleep(Duration::from_secs(args.seconds));
    phase.send_replace(Phase::Drain);
    std::thread::sleep(IN_FLIGHT);
    let cpu1 = CpuSnapshot::take();
    r.window_s = start.elapsed().as_secs_f64();
    std::thread::sleep(FLUSH_WAIT);
    let (to_sip1, to_webrtc1) = rig.relayed();
    r.relayed_to_sip = to_sip1 - to_sip0;
    r.relayed_to_webrtc = to_webrtc1 - to_webrtc0;
    r.relayed = r.relayed_to_sip + r.relayed_to_webrtc;
    r.relay_dropped = rig.dropped() - dropped0;
    r.echoed = rig.echoed() - echoed0;
    record_cpu(r, &cpu1, &cpu0);
}

fn cpu_by_group(cpu1: &CpuSnapshot, cpu0: &CpuSnapshot) -> CpuSeconds {
    let g = |group| cpu1.group_since(cpu0, group);
    CpuSeconds {
        relay: g(Group::Relay),
        gateway: g(Group::Gateway),
        echo: g(Group::Echo),
        client: g(Group::Client),
        other: g(Group::Other),
        process: cpu1.process_since(cpu0),
    }
}

fn record_cpu(r: &mut RunResult, cpu1: &CpuSnapshot, cpu0: &CpuSnapshot) {
    let cpu = cpu_by_group(cpu1, cpu0);
    let us = |secs: f64, packets: u64| secs * 1e6 / packets.max(1) as f64;
    r.us_per_pkt_relay = us(cpu.relay, r.relayed);
    r.us_per_pkt_process_minus_clients = us(cpu.process - cpu.client, r.relayed);
    r.us_per_pkt_siphon = us(cpu.process - cpu.client - cpu.echo, r.relayed);
    r.us_per_pkt_echo = us(cpu.echo, r.echoed);
    r.cpu_s = cpu;
}

async fn join_all(handles: Vec<tokio::task::JoinHandle<CallReport>>) -> Vec<CallReport> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match tokio::time::timeout(JOIN_TIMEOUT, h).await {
            Ok(Ok(report)) => out.push(report),
            Ok(Err(e)) => out.push(CallReport {
                setup_error: Some(format!("call task: {e}")),
                ..Default::default()
            }),
            Err(_) => out.push(CallReport {
                dropped: Some("call task did not finish".into()),
                ..Default::default()
            }),
        }
    }
    out
}

fn record_reports(r: &mut RunResult, reports: Vec<CallReport>) {
    let mut rtt: Vec<u32> = Vec::new();
    for c in reports.into_iter().filter(|c| c.setup.is_some()) {
        r.client_sent += c.sent;
        r.client_received += c.received;
        r.client_bad += c.bad;
        rtt.extend(c.rtt_us);
        if let Some(why) = c.dropped {
            r.dropped_calls += 1;
            eprintln!("  call dropped during media: {why}");
        }
        if c.hangup_code != Some(200) {
            r.bad_hangups += 1;
        }
    }
    let lost = r.client_sent.saturating_sub(r.client_received);
    r.loss_pct = 100.0 * lost as f64 / r.client_sent.max(1) as f64;
    r.rtt_ms_p50 = quantile(&mut rtt, 0.5) / 1000.0;
    r.rtt_ms_p99 = quantile(&mut rtt, 0.99) / 1000.0;
}

/// Waits for siphon and the echo to let go of every call; returns how many
/// calls are still held (siphon's plus the echo's) when the wait ends.
fn wait_released(rig: &Rig) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = rig.gateway.active_calls() + rig.echo_calls() as usize;
        if held == 0 || Instant::now() >= deadline {
            return held;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
