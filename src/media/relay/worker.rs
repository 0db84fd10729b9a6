//! The relay loop thread: poll, receive, rewrite, (de)crypt, send.
//!
//! Per packet there is no allocation, no lock, no channel hop and no log
//! line: receive buffers owned by the loop, in-place header rewriting and
//! SRTP, plain local counters. Receives are batched (recvmmsg) on every
//! socket, and packets to browsers leave in batches (sendmmsg) on the shared
//! WebRTC socket, flushed before the loop sleeps; packets to SIP go out one
//! by one, since each call has its own socket.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use rtc_srtp::crypto::providers::RingCrypto;

use super::batch::{self, RecvBatch, SendBatch, Sent, BATCH, BUF};
use super::counters::{CallStats, Counters, RelayDrop};
use super::liveness::Liveness;
use super::sip_srtp::{SipCrypto, SipDrop};
use super::tones::{Press, Tones};
use super::{AddCall, Command, MediaEvent, RelayError, SipMedia, Tuning};
use crate::media::pool::PortLease;
use crate::media::rewrite::{PtMap, RewriteDrop, StreamRewriter};
use crate::media::rtcp;
use crate::metrics::Metrics;
use crate::webrtc::{Endpoint, Identity, LegEvent, LegId, Receive};

const WEBRTC: Token = Token(0);
const WAKER: Token = Token(1);
/// Datagrams taken per receive from a call's own socket: at 50 packets a
/// second it rarely holds more than one, and a smaller batch is less to set
/// up per call.
const SIP_BATCH: usize = 4;
const FLUSH_EVERY: Duration = Duration::from_millis(500);

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
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    events: tokio::sync::mpsc::UnboundedSender<MediaEvent>,
    stats: CallStats,
    liveness: Liveness,
    tones: Tones,
    /// SRTP toward the SIP peer (SDES); `None`: plain RTP.
    srtp: Option<SipCrypto>,
}

pub(super) struct Worker {
    poll: Poll,
    socket: UdpSocket,
    endpoint: Endpoint,
    commands: mpsc::Receiver<Command>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Generated key presses are built here.
    buf: Box<[u8; BUF]>,
    /// Taken while a batch is processed, so the packets can be borrowed
    /// beside the loop's other fields.
    rx: Option<Box<RecvBatch>>,
    tx: Box<SendBatch>,
    counters: Counters,
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

/// Tokens: 0 WebRTC socket, 1 waker, then two per slot (RTP, RTCP).
fn slot_tokens(slot: usize) -> (Token, Token) {
    (Token(2 + 2 * slot), Token(3 + 2 * slot))
}

impl Worker {
    pub(super) fn new(
        bind: SocketAddr,
        identity: Arc<Identity>,
        commands: mpsc::Receiver<Command>,
        metrics: &Metrics,
        tuning: Tuning,
        health: Health,
    ) -> Result<(Self, Waker, SocketAddr), RelayError> {
        let poll = Poll::new()?;
        let mut socket =
            UdpSocket::bind(bind).map_err(|source| RelayError::Bind { addr: bind, source })?;
        let addr = socket.local_addr()?;
        if tuning.socket_buffer > 0 {
            size_buffers(&socket, tuning.socket_buffer);
        }
        poll.registry()
            .register(&mut socket, WEBRTC, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let worker = Worker {
            poll,
            socket,
            endpoint: Endpoint::new(identity),
            commands,
            slots: Vec::new(),
            free: Vec::new(),
            buf: Box::new([0; BUF]),
            rx: Some(Box::new(RecvBatch::new())),
            tx: Box::new(SendBatch::new()),
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
        Ok((worker, waker, addr))
    }

    /// The loop; `Ok` when told to shut down, `Err` when its poll fails.
    fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .next_deadline()
                .saturating_duration_since(Instant::now());
            if let Err(e) = self.poll_once(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.counters.wakeup();
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WEBRTC => {
                        // Packets already queued for browsers go first: a
                        // full drain of this socket can take a while.
                        self.flush_tx();
                        self.drain_webrtc(now)
                    }
                    WAKER => {
                        // Sent before a command can free a slot the queue names.
                        self.flush_tx();
                        if !self.run_commands(now) {
                            return Ok(());
                        }
                    }
                    Token(t) => self.drain_sip((t - 2) / 2, t % 2 == 1, now),
                }
            }
            self.flush_tx();
            self.on_timers(Instant::now());
        }
    }

    fn poll_once(&mut self, events: &mut Events, timeout: Duration) -> std::io::Result<()> {
        #[cfg(test)]
        if self.fail_poll {
            return Err(std::io::Error::other("injected poll failure"));
        }
        self.poll.poll(events, Some(timeout))
    }

    fn next_deadline(&self) -> Instant {
        let tones = self.toning.iter().filter_map(|i| {
            let slot = self.slots.get(*i)?.as_ref()?;
            slot.tones.next_due()
        });
        let engine = self.endpoint.poll_timeout();
        tones.chain(engine).fold(self.next_flush, Instant::min)
    }

    fn on_timers(&mut self, now: Instant) {
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.flush_endpoint();
        if !self.toning.is_empty() {
            self.send_tones(now);
        }
        if now >= self.next_flush {
            self.counters.flush();
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

    fn drain_webrtc(&mut self, now: Instant) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let fd = self.socket.as_raw_fd();
        let faults = batch::drain(&mut rx, fd, BATCH, |rx, n| {
            for i in 0..n {
                if rx.truncated(i) {
                    self.counters.relay_drop(RelayDrop::Oversize);
                    continue;
                }
                let (buf, len, src) = rx.get(i);
                let Some(src) = src else { continue };
                let started = self.sample_start();
                match self.endpoint.handle_receive(now, src, &mut buf[..], len) {
                    Receive::Rtp { leg, len } => self.webrtc_to_sip(leg, buf, len, false),
                    Receive::Rtcp { leg, len } => self.webrtc_to_sip(leg, buf, len, true),
                    Receive::Handled => self.flush_endpoint(),
                    Receive::Dropped(reason) => self.counters.webrtc_drop(reason),
                }
                self.sample_end(started);
            }
        });
        self.counters.recv_faults(faults);
        self.rx = Some(rx);
    }

    fn webrtc_to_sip(&mut self, leg: LegId, buf: &mut [u8; BUF], len: usize, is_rtcp: bool) {
        let Some(slot) = self.slots.get_mut(leg as usize).and_then(Option::as_mut) else {
            return self.counters.relay_drop(RelayDrop::NotConfigured);
        };
        let Some(sip) = slot.sip.as_ref() else {
            return self.counters.relay_drop(RelayDrop::NotConfigured);
        };
        // A SIP side on hold gets no RTP; RTCP goes on (RFC 3264 section 5.1).
        if !sip.send_to_sip && !is_rtcp {
            return drop_packet(&mut self.counters, slot, RelayDrop::Held);
        }
        let pkt = &mut buf[..len];
        let (socket, dest) = if is_rtcp {
            if rtcp::translate(pkt, &slot.to_sip, &slot.to_webrtc).is_err() {
                return drop_packet(&mut self.counters, slot, RelayDrop::Malformed);
            }
            let dest = slot.latched_rtcp.unwrap_or(sip.remote_rtcp);
            (if sip.rtcp_mux { &slot.rtp } else { &slot.rtcp }, dest)
        } else {
            if let Some((_, clock)) = sip
                .webrtc_dtmf_convert
                .filter(|(pt, _)| pkt[1] & 0x7f == *pt)
            {
                // A key press the SIP side cannot take as it is: re-sent as
                // siphon's own, or as SIP INFO (rare; never on the audio path).
                let Some((code, duration_ms)) = slot.tones.key_ended(pkt, clock) else {
                    return;
                };
                if sip.sip_dtmf.is_none() {
                    let _ = slot.events.send(MediaEvent::BrowserKey(code, duration_ms));
                    return;
                }
                let press = Press {
                    to_sip: true,
                    code,
                    duration_ms,
                };
                if slot.tones.push(press) && !self.toning.contains(&(leg as usize)) {
                    self.toning.push(leg as usize);
                }
                return;
            }
            if let Err(e) = slot.to_sip.rewrite(pkt) {
                return drop_packet(&mut self.counters, slot, rewrite_reason(e));
            }
            (&slot.rtp, slot.latched_rtp.unwrap_or(sip.remote_rtp))
        };
        let out_len = match slot.srtp.as_mut() {
            None => len,
            Some(srtp) if is_rtcp => srtp.tx.protect_rtcp(&mut buf[..], len).unwrap_or(0),
            Some(srtp) => srtp.tx.protect_rtp(&mut buf[..], len).unwrap_or(0),
        };
        if out_len == 0 {
            slot.stats.dropped += 1;
            return self.counters.sip_drop(SipDrop::Protect);
        }
        match socket.send_to(&buf[..out_len], dest) {
            Ok(_) => {
                slot.stats.to_sip_packets += 1;
                self.counters.relayed_to_sip(is_rtcp, len);
            }
            Err(_) => drop_packet(&mut self.counters, slot, RelayDrop::SendFailed),
        }
    }

    fn drain_sip(&mut self, index: usize, is_rtcp: bool, now: Instant) {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let fd = if is_rtcp {
            slot.rtcp.as_raw_fd()
        } else {
            slot.rtp.as_raw_fd()
        };
        if let Some(srtp) = slot.srtp.as_mut() {
            srtp.rx.refill_strangers(now);
        }
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        // The slot stays while its socket drains: only commands free slots.
        let faults = batch::drain(&mut rx, fd, SIP_BATCH, |rx, n| {
            for i in 0..n {
                let truncated = rx.truncated(i);
                let (buf, len, src) = rx.get(i);
                let Some(src) = src else { continue };
                if truncated {
                    if let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) {
                        drop_packet(&mut self.counters, slot, RelayDrop::Oversize);
                    }
                    continue;
                }
                let started = self.sample_start();
                self.sip_to_webrtc(index, src, buf, len, is_rtcp);
                self.sample_end(started);
            }
        });
        self.counters.recv_faults(faults);
        self.rx = Some(rx);
    }

    fn sip_to_webrtc(
        &mut self,
        index: usize,
        src: SocketAddr,
        buf: &mut [u8; BUF],
        len: usize,
        from_rtcp_port: bool,
    ) {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(sip) = &slot.sip else {
            return drop_packet(&mut self.counters, slot, RelayDrop::NotConfigured);
        };
        // With rtcp-mux, RTCP arrives on the RTP port: PT 192..=223 (RFC 5761).
        let is_rtcp = from_rtcp_port || (sip.rtcp_mux && len >= 2 && (192..=223).contains(&buf[1]));
        let to_browser = is_rtcp || sip.send_to_webrtc;
        let latch = if from_rtcp_port {
            &mut slot.latched_rtcp
        } else {
            &mut slot.latched_rtp
        };
        if latch.is_some_and(|addr| addr != src) {
            return drop_packet(&mut self.counters, slot, RelayDrop::UnlatchedSource);
        }
        // Authenticated before it may latch: a forged packet cannot steer media.
        let unprotected = match slot.srtp.as_mut() {
            None => Ok(len),
            Some(srtp) if is_rtcp => srtp.rx.unprotect_rtcp(&mut buf[..], len),
            Some(srtp) => srtp.rx.unprotect_rtp(&mut buf[..], len),
        };
        let len = match unprotected {
            Ok(len) => len,
            Err(reason) => {
                slot.stats.dropped += 1;
                return self.counters.sip_drop(reason.into());
            }
        };
        if latch.is_none() {
            *latch = Some(src);
            if !from_rtcp_port {
                let _ = slot.events.send(MediaEvent::SipLatched(src));
            }
        }
        if !to_browser {
            // The browser holds (sendonly or inactive): no RTP goes to it.
            return drop_packet(&mut self.counters, slot, RelayDrop::Held);
        }
        let pkt = &mut buf[..len];
        let rewritten = if is_rtcp {
            rtcp::translate(pkt, &slot.to_webrtc, &slot.to_sip).map_err(|_| RelayDrop::Malformed)
        } else {
            slot.to_webrtc.rewrite(pkt).map_err(rewrite_reason)
        };
        if let Err(reason) = rewritten {
            return drop_packet(&mut self.counters, slot, reason);
        }
        let protected = if is_rtcp {
            self.endpoint.protect_rtcp(slot.leg, &mut buf[..], len)
        } else {
            self.endpoint.protect_rtp(slot.leg, &mut buf[..], len)
        };
        let Ok((out_len, dest)) = protected else {
            return drop_packet(&mut self.counters, slot, RelayDrop::WebRtcNotReady);
        };
        let sent = Sent {
            slot: index,
            is_rtcp,
            len,
        };
        self.tx.push(&buf[..out_len], dest, sent);
        if self.tx.is_full() {
            self.flush_tx();
        }
    }

    /// Send the packets queued for browsers and count each as sent or not.
    fn flush_tx(&mut self) {
        let Worker {
            tx,
            socket,
            slots,
            counters,
            ..
        } = self;
        tx.flush(socket, |sent, ok| {
            let slot = slots.get_mut(sent.slot).and_then(Option::as_mut);
            match (ok, slot) {
                (true, Some(slot)) => {
                    slot.stats.to_webrtc_packets += 1;
                    counters.relayed_to_webrtc(sent.is_rtcp, sent.len);
                }
                (true, None) => counters.relayed_to_webrtc(sent.is_rtcp, sent.len),
                (false, Some(slot)) => drop_packet(counters, slot, RelayDrop::SendFailed),
                (false, None) => counters.relay_drop(RelayDrop::SendFailed),
            }
        });
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
    fn run_commands(&mut self, now: Instant) -> bool {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Add(call, reply) => {
                    let _ = reply.send(self.add(*call, now));
                }
                Command::Configure(leg, media) => self.configure(leg, *media, now),
                Command::Dtmf(leg, press) => self.queue_tone(leg, press),
                Command::RestartIce(leg, creds, reply) => {
                    let result = self.endpoint.restart_ice(leg, *creds);
                    let _ = reply.send(result.map_err(RelayError::Leg));
                }
                Command::Remove(leg, reply) => {
                    let _ = reply.send(self.remove(leg));
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

    fn add(&mut self, call: AddCall, now: Instant) -> Result<LegId, RelayError> {
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
        self.endpoint
            .add_leg(leg, cfg, now)
            .map_err(RelayError::Leg)?;
        let mut rtp = UdpSocket::from_std(ports.rtp);
        let mut rtcp = UdpSocket::from_std(ports.rtcp);
        let (rtp_token, rtcp_token) = slot_tokens(index);
        let registered = self
            .poll
            .registry()
            .register(&mut rtp, rtp_token, Interest::READABLE)
            .and_then(|()| {
                self.poll
                    .registry()
                    .register(&mut rtcp, rtcp_token, Interest::READABLE)
            });
        if let Err(e) = registered {
            self.endpoint.remove_leg(leg);
            return Err(RelayError::Io(e));
        }
        let slot = Slot {
            leg,
            rtp,
            rtcp,
            _lease: ports.lease,
            to_sip: StreamRewriter::new(ssrc_to_sip, PtMap::empty(), 160),
            to_webrtc: StreamRewriter::new(ssrc_to_webrtc, PtMap::empty(), 160),
            sip: None,
            latched_rtp: None,
            latched_rtcp: None,
            events,
            stats: CallStats::default(),
            liveness: Liveness::new(media_timeout, now),
            tones: Tones::default(),
            srtp: None,
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

    fn remove(&mut self, leg: LegId) -> CallStats {
        let index = leg as usize;
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return CallStats::default();
        };
        self.endpoint.remove_leg(leg);
        let _ = self.poll.registry().deregister(&mut slot.rtp);
        let _ = self.poll.registry().deregister(&mut slot.rtcp);
        self.free.push(index);
        slot.stats
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

fn drop_packet(counters: &mut Counters, slot: &mut Slot, reason: RelayDrop) {
    slot.stats.dropped += 1;
    counters.relay_drop(reason);
}

fn rewrite_reason(e: RewriteDrop) -> RelayDrop {
    match e {
        RewriteDrop::Malformed => RelayDrop::Malformed,
        RewriteDrop::UnknownPayloadType => RelayDrop::UnknownPayloadType,
    }
}

mod death;
mod timers;
pub(super) use death::{run_guarded, Health};
