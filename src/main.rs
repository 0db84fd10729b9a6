//! The siphon binary: parse the command line, load config, start, wait for a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use siphon::config::{Config, LogFormat, ProcessEnv};
use siphon::gateway::{Gateway, Signal};
use siphon::metrics::Metrics;

/// SIP <-> WebRTC media gateway.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (TOML). Without one, siphon runs on embedded defaults.
    #[arg(long, short, global = true, env = "SIPHON_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (the default).
    Run,
    /// Validate a config file and print every error.
    CheckConfig {
        /// The file to check (defaults to --config).
        file: Option<PathBuf>,
    },
    /// Exit 0 when the gateway's /healthz answers (for container health checks).
    Healthcheck,
    /// Print a signed token for a user (HS256 with auth.secret).
    Token {
        /// The user the token authenticates (`sub`).
        #[arg(long)]
        user: String,
        /// Lifetime: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = siphon::signaling::auth::parse_ttl)]
        ttl: std::time::Duration,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Cmd::Run) {
        Cmd::CheckConfig { file } => check_config(file.or(cli.config)),
        Cmd::Healthcheck => match load(cli.config) {
            Some(c) if siphon::http::healthcheck(c.http.listen, c.http.tls_cert.is_some()) => {
                ExitCode::SUCCESS
            }
            _ => ExitCode::FAILURE,
        },
        Cmd::Token { user, ttl } => match load(cli.config) {
            Some(config) => token(&config, &user, ttl),
            None => ExitCode::FAILURE,
        },
        Cmd::Run => match load(cli.config) {
            Some(config) => run(config),
            None => ExitCode::FAILURE,
        },
    }
}

fn load(path: Option<PathBuf>) -> Option<Config> {
    match Config::load(path.as_deref(), &ProcessEnv) {
        Ok(config) => Some(config),
        Err(errors) => {
            eprintln!("siphon: invalid configuration:\n{errors}");
            None
        }
    }
}

fn token(config: &Config, user: &str, ttl: std::time::Duration) -> ExitCode {
    if config.auth.secret.is_empty() {
        eprintln!("siphon: auth.secret is empty (set it in the config or SIPHON_AUTH_SECRET)");
        return ExitCode::FAILURE;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secret = config.auth.secret.as_bytes();
    let audience = Some(config.auth.audience.as_str()).filter(|a| !a.is_empty());
    match siphon::signaling::auth::mint_for(user, ttl, secret, audience, now) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("siphon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: Option<PathBuf>) -> ExitCode {
    match Config::load(path.as_deref(), &ProcessEnv) {
        Ok(_) => {
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> ExitCode {
    init_tracing(&config);
    raise_fd_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("siphon: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let gateway = match Gateway::start(config, Metrics::new()).await {
            Ok(gw) => gw,
            Err(e) => {
                tracing::error!(error = %e, "siphon failed to start");
                return ExitCode::FAILURE;
            }
        };
        let listening = gateway.listening();
        listening.log();
        tracing::info!("siphon is running: open {}", listening.url());
        gateway.run_until_stopped(signals()).await;
        ExitCode::SUCCESS
    })
}

/// Every connection is an fd: the soft limit (often 1024) goes up to the
/// hard one before the connection budget is taken from it.
fn raise_fd_limit() {
    match siphon::connections::fd::raise_nofile() {
        Ok((old, new)) => tracing::info!(old, new, "file descriptor limit (RLIMIT_NOFILE soft)"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::prelude::*;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // rsipstack logs whole SIP messages; with SDES their SDP holds media keys.
    let keys = config.srtp_in_use();
    let hide =
        tracing_subscriber::filter::filter_fn(move |meta| !(keys && whole_sip_message(meta)));
    let registry = tracing_subscriber::registry().with(filter);
    let text = tracing_subscriber::fmt::layer().with_ansi(ansi);
    match config.log.format {
        LogFormat::Json => registry.with(text.json().with_filter(hide)).init(),
        LogFormat::Text => registry.with(text.with_filter(hide)).init(),
    }
}

/// An rsipstack event that prints a whole SIP message, body included.
fn whole_sip_message(meta: &tracing::Metadata<'_>) -> bool {
    let fields = meta.fields();
    meta.target().starts_with("rsipstack")
        && ["raw_message", "response", "request", "message"]
            .iter()
            .any(|f| fields.field(f).is_some())
}

/// SIGTERM and SIGINT stop (a second one skips the drain), SIGHUP reloads
/// the certificates and reopens the records file.
fn signals() -> tokio::sync::mpsc::Receiver<Signal> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot listen for signals; stop siphon with SIGKILL");
            return std::future::pending().await;
        };
        loop {
            let signal = tokio::select! {
                _ = term.recv() => Signal::Stop,
                _ = int.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
            };
            if signal == Signal::Stop {
                tracing::info!("stop signal: draining (a second signal skips the wait)");
            }
            if tx.send(signal).await.is_err() {
                return;
            }
        }
    });
    rx
}
