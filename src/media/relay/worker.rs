//! The relay loop: its calls, their commands and timers, and the relay of
//! each datagram (`packet`), apart from the IO path that moves the
//! datagrams: io_uring (`uring_loop`) or epoll (`epoll`), chosen at start
//! (`path`).
//!
//! Per packet there is no allocation, no lock, no channel hop and no log
//! line: receive buffers owned by the IO path, in-place header rewriting
//! and SRTP, plain local counters.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rtc_srtp::crypto::providers::RingCrypto;

use super::batch::{self, Sent, BUF};
use super::counters::{CallStats, Counters};
use super::latch::Latch;
use super::liveness::Liveness;
use super::sip_srtp::SipCrypto;
use super::tones::Tones;
use super::{AddCall, Command, MediaEvent, RelayError, SipMedia, Tuning};
use crate::media::pool::PortLease;
use crate::media::quality::{CallQuality, QualitySnapshot};
use crate::media::rewrite::{PtMap, StreamRewriter};
use crate::metrics::Metrics;
use crate::webrtc::{Endpoint, Identity, LegEvent, LegId};

const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Which socket a relayed packet leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// The loop's shared WebRTC socket.
    WebRtc,
    /// The call's RTP socket.
    Rtp,
    /// The call's RTCP socket.
    Rtcp,
}

/// A relayed packet, ready in its buffer: where it goes, how long it is
/// now, and what to count once it is sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Out {
    pub via: Via,
    pub dest: SocketAddr,
    /// The socket is connected to `dest`: send without an address.
    pub connected: bool,
    pub len: usize,
    pub sent: Sent,
}

/// How an IO path watches the sockets of the calls it carries.
pub(super) trait Attach {
    /// Start receiving on slot `index`'s sockets.
    fn attach(&mut self, index: usize, rtp: RawFd, rtcp: RawFd) -> io::Result<()>;
    /// Stop receiving on slot `index`'s sockets (they close after this).
    fn detach(&mut self, index: usize, rtp: RawFd, rtcp: RawFd);
}

/// One call on this loop. Sockets are declared before the lease so they
/// close before the port returns to the pool.
struct Slot {
    leg: LegId,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    _lease: PortLease,
    to_sip: StreamRewriter,
    to_webrtc: StreamRewriter,
    sip: Option<SipMedia>,
    /// The SIP peer's source on the RTP and the RTCP socket.
    rtp_latch: Latch,
    rtcp_latch: Latch,
    events: tokio::sync::mpsc::UnboundedSender<MediaEvent>,
    stats: CallStats,
    liveness: Liveness,
    tones: Tones,
    /// SRTP toward the SIP peer (SDES); `None`: plain RTP.
    srtp: Option<SipCrypto>,
    /// Loss, jitter and round trips, fed as packets pass.
    quality: CallQuality,
}

pub(super) struct Worker {
    /// The loop's shared WebRTC socket (nonblocking). The IO path receives
    /// on it; the engine's own packets and generated tones go out through
    /// it directly.
    socket: UdpSocket,
    endpoint: Endpoint,
    commands: mpsc::Receiver<Command>,
    /// Asks for a call's quality, answered at each counter flush.
    quality_asks: mpsc::Receiver<super::QualityAsk>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Generated key presses are built here.
    buf: Box<[u8; BUF]>,
    pub(super) counters: Counters,
    sample_every: u32,
    sample_countdown: u32,
    next_flush: Instant,
    /// Slots with key presses queued or under way.
    toning: Vec<usize>,
    /// Keys the SIP sides' SRTP contexts (HMAC, AEAD).
    crypto: RingCrypto,
    health: Health,
    /// Fault injection: the next poll fails.
    #[cfg(test)]
    fail_poll: bool,
}

impl Worker {
    pub(super) fn new(
        bind: SocketAddr,
        identity: Arc<Identity>,
        (commands, quality_asks): (mpsc::Receiver<Command>, mpsc::Receiver<super::QualityAsk>),
        metrics: &Metrics,
        tuning: Tuning,
        health: Health,
    ) -> Result<(Self, SocketAddr), RelayError> {
        let socket =
            UdpSocket::bind(bind).map_err(|source| RelayError::Bind { addr: bind, source })?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        if tuning.socket_buffer > 0 {
            size_buffers(&socket, tuning.socket_buffer);
        }
        // Best effort: without it packets go out as before, only dearer.
        let _ = batch::probe_pmtu(&socket, addr.is_ipv6());
        let worker = Worker {
            socket,
            endpoint: Endpoint::new(identity),
            commands,
            quality_asks,
            slots: Vec::new(),
            free: Vec::new(),
            buf: Box::new([0; BUF]),
            counters: Counters::new(metrics),
            sample_every: tuning.timing_sample,
            sample_countdown: tuning.timing_sample,
            next_flush: Instant::now() + FLUSH_EVERY,
            toning: Vec::new(),
            crypto: RingCrypto,
            health,
            #[cfg(test)]
            fail_poll: false,
        };
        Ok((worker, addr))
    }

    /// The shared WebRTC socket's descriptor.
    pub(super) fn webrtc_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Socket `via` of slot `index` (`None`: no such call).
    pub(super) fn socket(&self, index: usize, via: Via) -> Option<&UdpSocket> {
        let slot = self.slots.get(index)?.as_ref()?;
        Some(match via {
            Via::WebRtc => &self.socket,
            Via::Rtp => &slot.rtp,
            Via::Rtcp => &slot.rtcp,
        })
    }

    /// Fault injection: whether the next poll must fail.
    pub(super) fn poll_fails(&self) -> bool {
        #[cfg(test)]
        if self.fail_poll {
            return true;
        }
        false
    }

    /// When the loop must wake at the latest.
    pub(super) fn deadline_in(&self) -> Duration {
        self.next_deadline()
            .saturating_duration_since(Instant::now())
    }

    fn next_deadline(&self) -> Instant {
        let tones = self.toning.iter().filter_map(|i| {
            let slot = self.slots.get(*i)?.as_ref()?;
            slot.tones.next_due()
        });
        let engine = self.endpoint.poll_timeout();
        tones.chain(engine).fold(self.next_flush, Instant::min)
    }

    /// The loop's timed work: the WebRTC engine's timers, key presses,
    /// counters and media timeouts.
    pub(super) fn on_timers(&mut self, now: Instant) {
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.flush_endpoint();
        if !self.toning.is_empty() {
            self.send_tones(now);
        }
        if now >= self.next_flush {
            self.counters.flush();
            while let Ok((leg, reply)) = self.quality_asks.try_recv() {
                let _ = reply.send(self.quality(leg));
            }
            self.check_liveness(now);
            self.next_flush = now + FLUSH_EVERY;
        }
    }

    /// Send what the WebRTC engine queued (STUN responses, DTLS flights) and
    /// hand its events to the calls.
    fn flush_endpoint(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            let _ = self.socket.send_to(&t.data, t.dest);
        }
        while let Some((leg, event)) = self.endpoint.poll_event() {
            let Some(slot) = self.slots.get(leg as usize).and_then(Option::as_ref) else {
                continue;
            };
            let event = match event {
                LegEvent::Connected { .. } => {
                    self.counters.handshakes_h[0].inc();
                    MediaEvent::WebRtcConnected
                }
                LegEvent::Disconnected => {
                    self.counters.disconnects_h.inc();
                    MediaEvent::IceDisconnected
                }
                LegEvent::ConsentExpired => {
                    self.counters.consent_expiries_h.inc();
                    MediaEvent::ConsentExpired
                }
                LegEvent::Closed => MediaEvent::WebRtcClosed,
                LegEvent::Failed(reason) => {
                    self.counters.handshakes_h[1].inc();
                    MediaEvent::WebRtcFailed(reason)
                }
            };
            let _ = slot.events.send(event);
        }
    }

    fn sample_start(&mut self) -> Option<Instant> {
        if self.sample_every == 0 {
            return None;
        }
        self.sample_countdown -= 1;
        if self.sample_countdown > 0 {
            return None;
        }
        self.sample_countdown = self.sample_every;
        Some(Instant::now())
    }

    fn sample_end(&self, started: Option<Instant>) {
        if let Some(t) = started {
            self.counters
                .relay_seconds
                .observe(t.elapsed().as_secs_f64());
        }
    }

    /// Apply queued control commands; false when the loop must stop.
    /// Apply queued control commands; false when the loop must stop. The
    /// IO path sends what it queued first, since a command can free a slot
    /// the queue names.
    pub(super) fn run_commands(&mut self, now: Instant, io: &mut impl Attach) -> bool {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Add(call, reply) => {
                    let _ = reply.send(self.add(*call, now, io));
                }
                Command::Configure(leg, media) => self.configure(leg, *media, now),
                Command::Dtmf(leg, press) => self.queue_tone(leg, press),
                Command::RestartIce(leg, creds, reply) => {
                    let result = self.endpoint.restart_ice(leg, *creds);
                    let _ = reply.send(result.map_err(RelayError::Leg));
                }
                Command::Remove(leg, reply) => {
                    let _ = reply.send(self.remove(leg, io));
                }
                Command::Shutdown => return false,
                #[cfg(test)]
                Command::FailPoll => self.fail_poll = true,
                #[cfg(test)]
                Command::Panic => panic!("injected relay loop panic"),
            }
        }
        self.flush_endpoint();
        true
    }

    fn add(
        &mut self,
        call: AddCall,
        now: Instant,
        io: &mut impl Attach,
    ) -> Result<LegId, RelayError> {
        let index = self.free.pop().unwrap_or(self.slots.len());
        let leg = index as LegId;
        let AddCall {
            leg: cfg,
            ports,
            ssrc_to_webrtc,
            ssrc_to_sip,
            events,
            media_timeout,
        } = call;
        let (rtp, rtcp) = (ports.rtp, ports.rtcp);
        for socket in [&rtp, &rtcp] {
            let ipv6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
            let _ = batch::probe_pmtu(socket, ipv6);
        }
        let attached = rtp
            .set_nonblocking(true)
            .and_then(|()| rtcp.set_nonblocking(true))
            .and_then(|()| io.attach(index, rtp.as_raw_fd(), rtcp.as_raw_fd()));
        let refused = match attached {
            Err(e) => Some(RelayError::Io(e)),
            Ok(()) => self.endpoint.add_leg(leg, cfg, now).err().map(|e| {
                io.detach(index, rtp.as_raw_fd(), rtcp.as_raw_fd());
                RelayError::Leg(e)
            }),
        };
        if let Some(e) = refused {
            if index < self.slots.len() {
                self.free.push(index);
            }
            return Err(e);
        }
        let slot = Slot {
            leg,
            rtp,
            rtcp,
            _lease: ports.lease,
            to_sip: StreamRewriter::new(ssrc_to_sip, PtMap::empty(), 160),
            to_webrtc: StreamRewriter::new(ssrc_to_webrtc, PtMap::empty(), 160),
            sip: None,
            rtp_latch: Latch::default(),
            rtcp_latch: Latch::default(),
            events,
            stats: CallStats::default(),
            liveness: Liveness::new(media_timeout, now),
            tones: Tones::default(),
            srtp: None,
            quality: CallQuality::default(),
        };
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[index] = Some(slot);
        }
        Ok(leg)
    }

    fn configure(&mut self, leg: LegId, media: SipMedia, now: Instant) {
        if let Some(slot) = self.slots.get_mut(leg as usize).and_then(Option::as_mut) {
            let moved = slot.sip.as_ref().is_some_and(|old| {
                (old.remote_rtp, old.remote_rtcp) != (media.remote_rtp, media.remote_rtcp)
            });
            if moved {
                // The peer's media went elsewhere: latch its new source.
                slot.rtp_latch.moved(&slot.rtp, media.remote_rtp, now);
                slot.rtcp_latch.moved(&slot.rtcp, media.remote_rtcp, now);
            }
            slot.liveness.arm(now);
            slot.liveness.hold(media.held, now);
            slot.to_sip.set_pt_map(media.to_sip.clone(), media.ts_step);
            slot.to_webrtc
                .set_pt_map(media.to_webrtc.clone(), media.ts_step);
            match SipCrypto::update(slot.srtp.take(), media.srtp.as_ref(), &self.crypto) {
                Ok(srtp) => {
                    slot.srtp = srtp;
                    slot.sip = Some(media);
                }
                Err(e) => {
                    // Never fall back to plain RTP: the SIP side gets nothing.
                    tracing::error!(error = %e, "SIP-side SRTP keys refused");
                    slot.sip = None;
                }
            }
        }
    }

    /// Call `leg`'s quality figures now (all zero for no such call).
    pub(super) fn quality(&self, leg: LegId) -> QualitySnapshot {
        let slot = self.slots.get(leg as usize).and_then(Option::as_ref);
        slot.map(|s| s.quality.snapshot()).unwrap_or_default()
    }

    pub(super) fn remove(&mut self, leg: LegId, io: &mut impl Attach) -> CallStats {
        let index = leg as usize;
        let Some(slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return CallStats::default();
        };
        self.endpoint.remove_leg(leg);
        io.detach(index, slot.rtp.as_raw_fd(), slot.rtcp.as_raw_fd());
        self.free.push(index);
        CallStats {
            quality: slot.quality.snapshot(),
            ..slot.stats
        }
    }
}

/// Ask for `bytes` of receive and send buffer on the shared WebRTC socket:
/// every browser of the loop lands in its receive queue, and the default
/// (about 200 KB, a few hundred packets) overflows when the loop stalls
/// for a few milliseconds under load. Linux caps the request at
/// net.core.rmem_max / wmem_max; getting less is logged, not fatal.
fn size_buffers(socket: &UdpSocket, bytes: usize) {
    let sock = socket2::SockRef::from(socket);
    let _ = sock.set_recv_buffer_size(bytes);
    let _ = sock.set_send_buffer_size(bytes);
    // Linux reports twice what it grants (the kernel's bookkeeping share).
    let got = sock.recv_buffer_size().unwrap_or(0) / 2;
    if got < bytes {
        tracing::warn!(
            asked = bytes,
            got,
            "WebRTC socket receive buffer capped by the kernel; raise net.core.rmem_max"
        );
    }
}

mod death;
mod epoll;
mod packet;
mod path;
mod timers;
mod uring_loop;
pub(super) use death::{run_guarded, Health};
pub(super) use path::Path;
