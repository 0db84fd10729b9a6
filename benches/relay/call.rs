//! One lightweight browser (the load generator's, `siphon_load::client`):
//! places a call over `/ws`, connects ICE and DTLS-SRTP, then sends G.711
//! packets at 50 pps and counts what the echo sends back, until the
//! orchestrator moves the phase on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};

use siphon_load::client::{self, next_json, Datagram, Leg};
use siphon_load::stamp;
use siphon_testkit::browser::ClientIdentity;

pub use siphon_load::client::SetupTimes;

const PTIME: Duration = Duration::from_millis(20);
/// Browsers refresh consent every 5 s or so (RFC 7675).
const CONSENT_EVERY: Duration = Duration::from_secs(5);

/// What the orchestrator tells every call to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Set up, then wait.
    Setup,
    /// Send media from this instant on.
    Media(Instant),
    /// Stop sending; keep counting what is still in flight.
    Drain,
    /// Hang up and report.
    Hangup,
}

/// What every call shares.
pub struct Shared {
    pub ws_url: String,
    /// Where calls go, round robin (one entry per echo UAS).
    pub destinations: Vec<String>,
    pub identity: ClientIdentity,
    /// Caps how many calls are being set up at once.
    pub setup_gate: Semaphore,
    /// Spreads the calls' send instants over one packet time.
    pub calls: usize,
}

/// Everything one call measured.
#[derive(Debug, Default)]
pub struct CallReport {
    pub setup: Option<SetupTimes>,
    pub setup_error: Option<String>,
    pub sent: u64,
    pub received: u64,
    /// Packets that failed SRTP or did not carry our payload.
    pub bad: u64,
    /// Echo round trips in microseconds.
    pub rtt_us: Vec<u32>,
    /// A `hangup` from siphon before we hung up: (code, reason).
    pub dropped: Option<String>,
    /// The code of the `hangup` answering ours.
    pub hangup_code: Option<u64>,
}

/// Runs call `index` to its end; reports setup on `ready` as soon as known.
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    mut phase: watch::Receiver<Phase>,
    ready: mpsc::UnboundedSender<Result<SetupTimes, String>>,
) -> CallReport {
    let mut report = CallReport::default();
    let setup = {
        let _permit = shared.setup_gate.acquire().await;
        let to = &shared.destinations[index % shared.destinations.len()];
        client::set_up(&shared.ws_url, to, &shared.identity, index).await
    };
    let mut leg = match setup {
        Ok((leg, times)) => {
            let _ = ready.send(Ok(times.clone()));
            report.setup = Some(times);
            leg
        }
        Err(e) => {
            let e = e.to_string();
            let _ = ready.send(Err(e.clone()));
            report.setup_error = Some(e);
            return report;
        }
    };
    let stagger = PTIME * index as u32 / shared.calls.max(1) as u32;
    media(&mut leg, stagger, &mut phase, &mut report).await;
    report.hangup_code = leg.hang_up().await;
    report
}

/// Sends and receives until the phase reaches `Hangup` (or siphon hangs up).
async fn media(
    leg: &mut Leg,
    stagger: Duration,
    phase: &mut watch::Receiver<Phase>,
    report: &mut CallReport,
) {
    let start = loop {
        match *phase.borrow_and_update() {
            Phase::Setup => {}
            Phase::Media(at) => break at,
            Phase::Drain | Phase::Hangup => return,
        }
        if phase.changed().await.is_err() {
            return;
        }
    };
    let mut ticker = tokio::time::interval_at((start + stagger).into(), PTIME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut consent = tokio::time::interval(CONSENT_EVERY);
    let mut sending = true;
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = ticker.tick(), if sending => {
                if let Some((pkt, _)) = leg.next_packet() {
                    if leg.send(&pkt).await {
                        report.sent += 1;
                    }
                }
            }
            r = leg.sock.recv_from(&mut buf) => {
                let Ok((n, _)) = r else { continue };
                match leg.open(&buf[..n]) {
                    Datagram::Other => {}
                    Datagram::Bad => report.bad += 1,
                    Datagram::Echo(stamps) => {
                        report.received += 1;
                        let now = stamp::now_us();
                        let rtt = now.saturating_sub(stamps.sent).min(u32::MAX as u64);
                        report.rtt_us.push(rtt as u32);
                    }
                }
            }
            _ = consent.tick() => {
                let check = leg.consent_check();
                leg.send(&check).await;
            }
            msg = next_json(&mut leg.ws) => {
                report.dropped = Some(match msg {
                    Ok(v) if v["type"] == "hangup" => v.to_string(),
                    Ok(_) => continue,
                    Err(e) => e.to_string(),
                });
                return;
            }
            changed = phase.changed() => {
                let now = *phase.borrow_and_update();
                sending = matches!(now, Phase::Media(_));
                if changed.is_err() || now == Phase::Hangup {
                    return;
                }
            }
        }
    }
}
