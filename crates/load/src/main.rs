//! `siphon-load`: drive N concurrent calls through a running siphon and
//! report what it costs. Browsers on one side (over siphon's WebSocket),
//! an answering, echoing SIP UAS on the other; see docs/performance.md.
//!
//! siphon must route the dialled number to the UAS: set `sip.trunk.uri`
//! to `sip:<uas>` (scripts/load writes such a config).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use siphon::metrics::Metrics;
use siphon::sip::{EchoBehavior, EchoServer, EchoSettings};
use siphon_load::{self as load, Plan};
use tokio_util::sync::CancellationToken;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "siphon-load",
    about = "Load a running siphon with WebRTC calls to an echoing SIP UAS"
)]
struct Args {
    /// siphon's HTTP address (WebSocket at /ws, metrics at /metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Further siphon instances' HTTP addresses (several behind Kamailio):
    /// calls are spread round robin over --http and these, and their
    /// metrics are summed.
    #[arg(long, value_delimiter = ',')]
    also: Vec<SocketAddr>,
    /// Their pids, in the same order, for CPU and memory (summed).
    #[arg(long, value_delimiter = ',')]
    also_pids: Vec<u32>,
    /// A token for the WebSocket (`?token=`), where siphon requires one.
    #[arg(long)]
    token: Option<String>,
    /// Where the UAS listens for siphon's INVITEs (siphon's trunk).
    #[arg(long, default_value = "127.0.0.1:5070")]
    uas: SocketAddr,
    /// The number the browsers dial (routed to the trunk).
    #[arg(long, default_value = "1000")]
    to: String,
    /// Call counts to hold, in order (the ramp).
    #[arg(long, value_delimiter = ',', default_value = "50,100,200")]
    steps: Vec<usize>,
    /// Seconds each step is measured.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// New calls per second while ramping.
    #[arg(long, default_value_t = 50.0)]
    setup_rate: f64,
    /// siphon's pid, for its CPU and memory (default: found by name).
    #[arg(long)]
    siphon_pid: Option<u32>,
    /// The CPU siphon is pinned to (softirq is read there).
    #[arg(long)]
    siphon_cpu: Option<usize>,
    /// Set the calls up but send no RTP (consent checks only): idle cost.
    #[arg(long)]
    silent: bool,
    /// Bad datagrams per second (garbage, and SRTP with forged tags) sent to
    /// siphon's WebRTC port during each hold.
    #[arg(long, default_value_t = 0)]
    flood_pps: u32,
    /// Short calls placed after the last step while its calls stay up
    /// (each hung up once keyed): setups per second under load.
    #[arg(long, default_value_t = 0)]
    churn: usize,
    /// Their rate per second (default: --setup-rate).
    #[arg(long, default_value_t = 0.0)]
    churn_rate: f64,
    /// Threads of the generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where the JSON report goes.
    #[arg(long, default_value = "load-report.json")]
    out: String,
    /// Where the PNG plot goes (CPU per packet, loss, latency against N).
    #[arg(long, default_value = "load-report.png")]
    plot: String,
    /// A TrueType font for the plot's labels (default: DejaVu Sans).
    #[arg(long)]
    font: Option<String>,
    /// Soak instead of ramping: hold --soak-calls calls for this many
    /// minutes, replacing --soak-churn-pct of them every minute, and sample
    /// siphon's RSS and fds each minute (see docs/reliability.md "Soak").
    #[arg(long)]
    soak_minutes: Option<u32>,
    /// Calls the soak holds.
    #[arg(long, default_value_t = 500)]
    soak_calls: usize,
    /// Share of the calls the soak replaces each minute, in %.
    #[arg(long, default_value_t = 10.0)]
    soak_churn_pct: f64,
    /// Minutes before the soak's baseline sample.
    #[arg(long, default_value_t = 5)]
    soak_warmup: u32,
    /// How far RSS and fds may drift from the baseline, in %.
    #[arg(long, default_value_t = 5.0)]
    soak_tolerance_pct: f64,
    /// Seconds in a soak "minute" (shorter for a quick trial of the tool).
    #[arg(long, default_value_t = 60)]
    soak_interval_secs: u64,
    /// Run nothing: draw the plot of this JSON report (from an earlier run).
    #[arg(long)]
    replot: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(json) = &args.replot {
        return match replot(json, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("siphon-load: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        eprintln!("siphon-load: cannot start a runtime");
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("siphon-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What stops the tool: printed once, after "siphon-load: ". Typed errors
/// of the library pass through; the tool's own are text.
type Failure = Box<dyn std::error::Error>;

async fn run(args: &Args) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    let settings = EchoSettings {
        listen: args.uas,
        rtp_ip: args.uas.ip(),
        behavior: EchoBehavior {
            tap: Some(Arc::new(load::stamp::PassStamper)),
            ..Default::default()
        },
    };
    let echo = EchoServer::start(settings, Metrics::new(), shutdown.clone())
        .await
        .map_err(|e| format!("UAS on {}: {e}", args.uas))?;
    let token = args
        .token
        .as_ref()
        .map(|t| format!("?token={t}"))
        .unwrap_or_default();
    if let Some(minutes) = args.soak_minutes {
        let result = soak(args, minutes, &token).await;
        shutdown.cancel();
        return result;
    }
    let plan = Plan {
        ws_url: format!("ws://{}/ws{token}", args.http),
        metrics: args.http,
        others: args
            .also
            .iter()
            .enumerate()
            .map(|(i, addr)| load::ramp::Instance {
                ws_url: format!("ws://{addr}/ws{token}"),
                metrics: *addr,
                pid: args.also_pids.get(i).copied(),
            })
            .collect(),
        destinations: vec![args.to.clone()],
        steps: args.steps.clone(),
        hold: Duration::from_secs(args.hold),
        settle: Duration::from_secs(1),
        setup_rate: args.setup_rate,
        siphon_pid: args.siphon_pid.or_else(find_siphon),
        siphon_cpu: args.siphon_cpu,
        media: !args.silent,
        flood_pps: args.flood_pps,
        churn: args.churn,
        churn_rate: args.churn_rate,
    };
    if plan.siphon_pid.is_none() {
        eprintln!("siphon-load: siphon's pid not found; CPU and memory figures will be 0");
    }
    let mut report = load::run(&plan, &echo).await?;
    // The program by name, not by where it was built: reports get committed.
    let rest: Vec<String> = std::env::args().skip(1).collect();
    report.command = format!("siphon-load {}", rest.join(" "));
    shutdown.cancel();
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&args.out, json).map_err(|e| format!("{}: {e}", args.out))?;
    print!("{}", load::report::table(&report));
    eprintln!("siphon-load: report in {}", args.out);
    let font = args.font.as_deref().map(std::path::Path::new);
    load::plot::write_png(&report, std::path::Path::new(&args.plot), font)?;
    eprintln!("siphon-load: plot in {}", args.plot);
    Ok(())
}

async fn soak(args: &Args, minutes: u32, token: &str) -> Result<(), Failure> {
    let plan = load::soak::SoakPlan {
        ws_url: format!("ws://{}/ws{token}", args.http),
        metrics: args.http,
        destinations: vec![args.to.clone()],
        calls: args.soak_calls,
        intervals: minutes,
        interval: Duration::from_secs(args.soak_interval_secs.max(1)),
        churn_pct: args.soak_churn_pct,
        warmup: args.soak_warmup,
        tolerance_pct: args.soak_tolerance_pct,
        setup_rate: args.setup_rate,
        siphon_pid: args.siphon_pid.or_else(find_siphon),
        media: !args.silent,
    };
    if plan.siphon_pid.is_none() {
        return Err("siphon's pid not found: the soak needs it (--siphon-pid)".into());
    }
    let mut report = load::soak::run(&plan).await?;
    let rest: Vec<String> = std::env::args().skip(1).collect();
    report.command = format!("siphon-load {}", rest.join(" "));
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&args.out, json).map_err(|e| format!("{}: {e}", args.out))?;
    print!("{}", report.summary());
    eprintln!("siphon-load: report in {}", args.out);
    if report.passed {
        Ok(())
    } else {
        Err("the soak failed (see the summary)".into())
    }
}

fn replot(json: &str, args: &Args) -> Result<(), Failure> {
    let text = std::fs::read_to_string(json).map_err(|e| format!("{json}: {e}"))?;
    let report: load::Report = serde_json::from_str(&text).map_err(|e| format!("{json}: {e}"))?;
    let font = args.font.as_deref().map(std::path::Path::new);
    load::plot::write_png(&report, std::path::Path::new(&args.plot), font)?;
    print!("{}", load::report::table(&report));
    eprintln!("siphon-load: plot in {}", args.plot);
    Ok(())
}

/// The pid of the one process named `siphon`, if there is exactly one.
fn find_siphon() -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() == "siphon" {
            if found.is_some() {
                return None;
            }
            found = Some(pid);
        }
    }
    found
}
