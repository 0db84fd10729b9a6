//! Relay benchmark: CPU per relayed packet and memory per call with N
//! concurrent calls through a whole in-process siphon (WebSocket signaling,
//! SIP to an echo UAS, ICE-lite/DTLS-SRTP, relay loops) driven by
//! lightweight browsers.
//!
//! `cargo bench --bench relay -- --calls 50,100,200 --seconds 10`
//! (`--sip-srtp` for SDES-SRTP on the SIP leg instead of plain RTP)
//!
//! Each N runs in a fresh child process so that memory figures of one run do
//! not inherit the heap of the previous one. Prints a JSON line per N, then a
//! table.

mod call;
mod heap;
mod procfs;
mod report;
mod run;

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;
// The browsers' WebRTC side is the load generator's.

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// Command line (after `cargo bench --bench relay --`).
#[derive(Parser, Debug, Clone)]
#[command(about = "siphon relay benchmark: CPU per packet, memory per call")]
pub struct Args {
    /// Concurrent call counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,100,200")]
    calls: Vec<usize>,
    /// Seconds of media per N.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Echo UASes to spread calls over (the first is the trunk; others are dialled by URI).
    #[arg(long, default_value_t = 1)]
    echoes: usize,
    /// siphon relay loops (media.workers; 0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: u32,
    /// Worker threads of siphon's control-plane runtime.
    #[arg(long, default_value_t = 2)]
    gateway_threads: usize,
    /// Worker threads of the browsers' runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Calls being set up at once.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// SDES-SRTP on the SIP leg (`sip.trunk.srtp = "require"`; the echo
    /// mirrors siphon's key), to compare with plain RTP.
    #[arg(long)]
    sip_srtp: bool,
    /// First port of siphon's SIP-side RTP range (default: a block from the
    /// test-port allocator, outside the ephemeral range).
    #[arg(long)]
    rtp_port_base: Option<u16>,
    /// Run the first N in this process and print its JSON line (set by the parent).
    #[arg(long, hide = true)]
    child: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if args.child {
        return child(&args);
    }
    let mut runs = Vec::new();
    for &n in &args.calls {
        eprintln!("relay bench: {n} calls, {} s of media", args.seconds);
        match spawn_child(&args, n) {
            Ok(r) => {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
                runs.push(r);
            }
            Err(e) => eprintln!("relay bench: N={n} failed: {e}"),
        }
    }
    report::print_table(&runs);
    if runs.len() == args.calls.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One N in this process; the result goes to stdout as one JSON line.
fn child(args: &Args) -> ExitCode {
    let Some(&n) = args.calls.first() else {
        return ExitCode::FAILURE;
    };
    // A hung run must not hold the machine: setup, media and teardown are
    // each bounded, so this only fires on a bug.
    let limit = Duration::from_secs(args.seconds + 120 + n as u64 / 2);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("relay bench: run exceeded {limit:?}; giving up");
        std::process::exit(3);
    });
    match run::run(args, n) {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relay bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spawn_child(args: &Args, n: usize) -> Result<report::RunResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--child")
        .args(["--calls", &n.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--echoes", &args.echoes.to_string()])
        .args(["--workers", &args.workers.to_string()])
        .args(["--gateway-threads", &args.gateway_threads.to_string()])
        .args(["--client-threads", &args.client_threads.to_string()])
        .args(["--setup-concurrency", &args.setup_concurrency.to_string()])
        .args(
            args.rtp_port_base
                .iter()
                .flat_map(|p| ["--rtp-port-base".into(), p.to_string()]),
        )
        .args(args.sip_srtp.then_some("--sip-srtp"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("child exited with {}", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .ok_or("no result line")?;
    serde_json::from_str(line).map_err(|e| format!("bad result line: {e}"))
}
