//! Relay loops: one OS thread per worker, each owning a WebRTC UDP port and
//! the RTP sockets of its calls. The control plane talks to a loop through
//! commands (a channel plus a poll waker); packets never cross threads.

pub(crate) mod batch;
mod counters;
mod latch;
mod liveness;
mod sip_srtp;
mod tones;
mod uring;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::pool::PortPair;
use super::quality::QualitySnapshot;
pub use super::SipMedia;
use crate::config::RelayIo;
use crate::metrics::Metrics;
use crate::webrtc::{IceRestart, Identity, LegConfig, LegId};

pub use counters::CallStats;
pub use liveness::SilentSide;
pub use tones::Press;

/// Errors from a relay loop's control interface.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The WebRTC socket or poller could not be set up.
    #[error("relay setup: {0}")]
    Io(#[from] std::io::Error),
    /// A loop's WebRTC socket could not bind its address.
    #[error("webrtc {addr}: {source}")]
    Bind {
        /// The address it was given.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The leg was refused by the WebRTC engine.
    #[error("webrtc leg: {0}")]
    Leg(#[from] crate::webrtc::WebRtcError),
    /// The loop has stopped.
    #[error("relay loop stopped")]
    Stopped,
}

/// How a relay loop is tuned (`[media]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Time 1 of N relayed packets for the relay-time histogram; 0 = off.
    pub timing_sample: u32,
    /// SO_RCVBUF / SO_SNDBUF asked for the WebRTC socket; 0 = kernel default.
    pub socket_buffer: usize,
    /// The IO path (`media.io`).
    pub io: RelayIo,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            timing_sample: 64,
            socket_buffer: 4 * 1024 * 1024,
            io: RelayIo::Auto,
        }
    }
}

/// Everything a loop needs to carry a new call.
#[derive(Debug)]
pub struct AddCall {
    /// ICE and DTLS parameters of the WebRTC leg.
    pub leg: LegConfig,
    /// The call's SIP-side RTP/RTCP sockets.
    pub ports: PortPair,
    /// SSRC of the stream sent to the browser (announced in its SDP).
    pub ssrc_to_webrtc: u32,
    /// SSRC of the stream sent to the SIP peer.
    pub ssrc_to_sip: u32,
    /// Where the loop reports this call's media events.
    pub events: tokio_mpsc::UnboundedSender<MediaEvent>,
    /// Report `MediaTimeout` when a side sends nothing this long once the
    /// SIP side is configured; `None`: never.
    pub media_timeout: Option<std::time::Duration>,
}

/// Media events a call's control task hears about.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// ICE nominated a path and DTLS-SRTP is keyed: media can flow.
    WebRtcConnected,
    /// The browser's consent checks paused (`webrtc.disconnect_timeout_secs`).
    IceDisconnected,
    /// The browser stopped answering consent checks.
    ConsentExpired,
    /// The browser closed DTLS (close_notify).
    WebRtcClosed,
    /// The WebRTC leg failed (DTLS error, fingerprint mismatch).
    WebRtcFailed(crate::webrtc::WebRtcError),
    /// The SIP peer's media source address was latched.
    SipLatched(SocketAddr),
    /// One side sent nothing for the media timeout.
    MediaTimeout(SilentSide),
    /// The browser sent a key (RFC 4733) the SIP side has no telephone-event
    /// for: code and ms, for SIP INFO.
    BrowserKey(u8, u32),
    /// The relay loop carrying the call died (why): its media is gone.
    RelayFailed(String),
}

/// A call's quality asked for, and where the figures go.
pub(crate) type QualityAsk = (LegId, oneshot::Sender<QualitySnapshot>);

pub(crate) enum Command {
    Add(Box<AddCall>, oneshot::Sender<Result<LegId, RelayError>>),
    Configure(LegId, Box<SipMedia>),
    RestartIce(
        LegId,
        Box<IceRestart>,
        oneshot::Sender<Result<(), RelayError>>,
    ),
    Dtmf(LegId, Press),
    Remove(LegId, oneshot::Sender<CallStats>),
    Shutdown,
    /// Fault injection: the loop's next poll fails.
    #[cfg(test)]
    FailPoll,
    /// Fault injection: the loop panics.
    #[cfg(test)]
    Panic,
}

/// The control plane's handle on one relay loop.
pub struct RelayHandle {
    commands: mpsc::Sender<Command>,
    /// Asks for a call's quality figures: answered at the loop's next
    /// counter flush, without waking it (see [`RelayHandle::quality`]).
    quality_asks: mpsc::Sender<QualityAsk>,
    /// Written to wake the loop for its commands.
    waker: Arc<EventFd>,
    webrtc_addr: SocketAddr,
    /// The loop's IO path (`io_uring` or `epoll`).
    mode: &'static str,
    load: Arc<AtomicUsize>,
    /// Cleared when the loop dies.
    alive: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// Bind `webrtc_bind` and start the loop thread `index`. Should the loop
    /// die, it clears `ready` (`/readyz`) and ends its calls.
    pub fn start(
        index: usize,
        webrtc_bind: SocketAddr,
        identity: Arc<Identity>,
        metrics: &Metrics,
        tuning: Tuning,
        ready: Arc<AtomicBool>,
    ) -> Result<Self, RelayError> {
        let (tx, rx) = mpsc::channel();
        let (quality_asks, asks) = mpsc::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let health = worker::Health {
            alive: alive.clone(),
            ready,
            failures: metrics.relay_loop_failures_total.clone(),
        };
        let (worker, webrtc_addr) =
            worker::Worker::new(webrtc_bind, identity, (rx, asks), metrics, tuning, health)?;
        let flags = EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC;
        let waker = Arc::new(EventFd::from_value_and_flags(0, flags).map_err(io_error)?);
        // The path is built on the loop's own thread (an io_uring ring
        // belongs to the thread that submits to it); start waits for it.
        let (chosen_tx, chosen) = mpsc::sync_channel(1);
        let loop_waker = waker.clone();
        let thread = std::thread::Builder::new()
            .name(format!("relay-{index}"))
            .spawn(move || {
                let path = worker::Path::choose(&worker, loop_waker, tuning.io);
                let path = match path {
                    Ok(path) => {
                        let _ = chosen_tx.send(Ok(path.mode()));
                        path
                    }
                    Err(e) => return drop(chosen_tx.send(Err(e))),
                };
                worker::run_guarded(worker, path)
            })?;
        let mode = chosen.recv().map_err(|_| RelayError::Stopped)??;
        tracing::info!(relay = index, io = mode, "relay loop started");
        metrics.relay_io.with_label_values(&[mode]).inc();
        Ok(RelayHandle {
            commands: tx,
            quality_asks,
            waker,
            webrtc_addr,
            mode,
            load: Arc::new(AtomicUsize::new(0)),
            alive,
            thread: Some(thread),
        })
    }

    /// The loop's IO path: `io_uring` or `epoll`.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// False once the loop has died.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// The bound WebRTC UDP address of this loop.
    pub fn webrtc_addr(&self) -> SocketAddr {
        self.webrtc_addr
    }

    /// Calls currently on this loop.
    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    fn send(&self, cmd: Command) -> Result<(), RelayError> {
        self.commands.send(cmd).map_err(|_| RelayError::Stopped)?;
        self.waker.write(1).map_err(io_error)?;
        Ok(())
    }

    /// Put a call on this loop; returns its leg id.
    pub async fn add(&self, call: AddCall) -> Result<LegId, RelayError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Add(Box::new(call), tx))?;
        let leg = rx.await.map_err(|_| RelayError::Stopped)??;
        self.load.fetch_add(1, Ordering::Relaxed);
        Ok(leg)
    }

    /// Set or replace the SIP side's media parameters.
    pub fn configure(&self, leg: LegId, media: SipMedia) -> Result<(), RelayError> {
        self.send(Command::Configure(leg, Box::new(media)))
    }

    /// Restart ICE on a leg; once this returns, checks with the new
    /// credentials are answered (the old ones until the new path is nominated).
    pub async fn restart_ice(&self, leg: LegId, creds: IceRestart) -> Result<(), RelayError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::RestartIce(leg, Box::new(creds), tx))?;
        rx.await.map_err(|_| RelayError::Stopped)?
    }

    /// Queue a generated key press on a call (RFC 4733 toward one side).
    pub fn dtmf(&self, leg: LegId, press: Press) -> Result<(), RelayError> {
        self.send(Command::Dtmf(leg, press))
    }

    /// Fault injection: make the loop's next poll fail, as a broken epoll would.
    #[cfg(test)]
    pub(crate) fn inject_poll_failure(&self) {
        let _ = self.send(Command::FailPoll);
    }

    /// Fault injection: make the loop thread panic.
    #[cfg(test)]
    pub(crate) fn inject_panic(&self) {
        let _ = self.send(Command::Panic);
    }

    /// A call's quality figures as its loop has them (all zero for a call
    /// the loop does not carry), within half a second: the ask waits for
    /// the loop's next counter flush instead of waking it. Woken for each
    /// call's periodic report, a loop at 500 calls spent about a fifth more
    /// CPU per packet (`scripts/ratio`: 0.48-0.52 against 0.40-0.41).
    pub async fn quality(&self, leg: LegId) -> Result<QualitySnapshot, RelayError> {
        if !self.alive() {
            return Err(RelayError::Stopped);
        }
        let (tx, rx) = oneshot::channel();
        (self.quality_asks.send((leg, tx))).map_err(|_| RelayError::Stopped)?;
        rx.await.map_err(|_| RelayError::Stopped)
    }

    /// Take a call off the loop; its RTP port returns to the pool.
    pub async fn remove(&self, leg: LegId) -> Result<CallStats, RelayError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Remove(leg, tx))?;
        let stats = rx.await.map_err(|_| RelayError::Stopped)?;
        self.load.fetch_sub(1, Ordering::Relaxed);
        Ok(stats)
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// All relay loops; calls go to the least loaded one.
pub struct Relays {
    loops: Vec<RelayHandle>,
}

impl Relays {
    /// Start `workers` loops on consecutive WebRTC ports from `first` (port
    /// 0: any); a loop that dies clears `ready`.
    pub fn start(
        workers: usize,
        first: SocketAddr,
        identity: Arc<Identity>,
        metrics: &Metrics,
        tuning: Tuning,
        ready: Arc<AtomicBool>,
    ) -> Result<Self, RelayError> {
        let mut loops = Vec::with_capacity(workers);
        for i in 0..workers.max(1) {
            let port = match first.port() {
                0 => 0,
                p => p + i as u16,
            };
            let addr = SocketAddr::new(first.ip(), port);
            loops.push(RelayHandle::start(
                i,
                addr,
                identity.clone(),
                metrics,
                tuning,
                ready.clone(),
            )?);
        }
        Ok(Relays { loops })
    }

    /// The index of the living loop with the fewest calls (0 if none lives:
    /// the call then fails on it).
    pub fn pick(&self) -> usize {
        let living = self.loops.iter().enumerate().filter(|(_, l)| l.alive());
        living.min_by_key(|(_, l)| l.load()).map_or(0, |(i, _)| i)
    }

    /// The bound WebRTC UDP address of every loop, in loop order.
    pub fn webrtc_addrs(&self) -> Vec<SocketAddr> {
        self.loops.iter().map(RelayHandle::webrtc_addr).collect()
    }

    /// Loop `index` (as returned by `pick`).
    pub fn get(&self, index: usize) -> &RelayHandle {
        &self.loops[index.min(self.loops.len() - 1)]
    }
}

fn io_error(e: nix::Error) -> RelayError {
    RelayError::Io(e.into())
}

#[cfg(test)]
mod tests;
