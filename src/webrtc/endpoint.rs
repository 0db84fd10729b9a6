//! One UDP port's worth of legs: routing by STUN username and by source
//! address, the event and transmit queues, and the timer.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rtc_srtp::crypto::providers::RingCrypto;
use rustc_hash::FxHashMap;

use super::demux::{classify, PacketKind};
use super::ice::{parse_binding_request, validate_credentials};
use super::leg::{Leg, LegIo};
use super::legs::Legs;
use super::{
    DropReason, Identity, LegConfig, LegEvent, LegId, Receive, SendError, Transmit, WebRtcError,
};

/// New ICE credentials for [`Endpoint::restart_ice`].
#[derive(Debug, Clone)]
pub struct IceRestart {
    /// Our new ufrag.
    pub local_ufrag: String,
    /// Our new pwd.
    pub local_pwd: String,
    /// The browser's new ufrag.
    pub remote_ufrag: String,
    /// The browser's new pwd.
    pub remote_pwd: String,
}

/// dimpl's defaults: DTLS 1.2/1.3, client certificate required, 1150-byte
/// MTU. Building a `Config` validates its crypto provider by running every
/// key exchange group and signature check once (a dozen elliptic-curve
/// operations), so one immutable config is built per process and shared.
fn dtls_config() -> Arc<dimpl::Config> {
    static CONFIG: OnceLock<Arc<dimpl::Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(dimpl::Config::default()))
        .clone()
}

/// The WebRTC engine for one shared UDP port.
pub struct Endpoint {
    identity: Arc<Identity>,
    dtls_config: Arc<dimpl::Config>,
    crypto: RingCrypto,
    legs: Legs,
    // Looked up for every packet from a browser: a fast hash, not SipHash.
    // Only legs' nominated addresses are keys, so a sender of forged
    // sources cannot grow a bucket; the ufrag map (keys from STUN) keeps
    // the default hash.
    by_ufrag: HashMap<String, LegId>,
    by_addr: FxHashMap<SocketAddr, LegId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<(LegId, LegEvent)>,
    /// Reused output buffer for DTLS flights.
    scratch: Vec<u8>,
    /// No leg needs a timer before this (may be early, never late).
    next_wake: Option<Instant>,
}

impl Endpoint {
    /// An endpoint presenting `identity` in every DTLS handshake.
    pub fn new(identity: Arc<Identity>) -> Self {
        Endpoint {
            identity,
            dtls_config: dtls_config(),
            crypto: RingCrypto,
            legs: Legs::default(),
            by_ufrag: HashMap::new(),
            by_addr: FxHashMap::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            scratch: vec![0; 2048],
            next_wake: None,
        }
    }

    /// Adds a leg; its local ufrag must be unique on this endpoint.
    pub fn add_leg(&mut self, id: LegId, cfg: LegConfig, now: Instant) -> Result<(), WebRtcError> {
        validate_credentials(&cfg.local_ufrag, &cfg.local_pwd)?;
        validate_credentials(&cfg.remote_ufrag, &cfg.remote_pwd)?;
        if self.legs.contains(id) {
            return Err(WebRtcError::DuplicateLeg(id));
        }
        if id >= Legs::LIMIT {
            return Err(WebRtcError::LegIdOutOfRange(id));
        }
        if self.by_ufrag.contains_key(&cfg.local_ufrag) {
            return Err(WebRtcError::DuplicateUfrag(cfg.local_ufrag));
        }
        let ufrag = cfg.local_ufrag.clone();
        let leg = Leg::new(cfg, &self.identity, self.dtls_config.clone(), now)?;
        self.wake_by(leg.next_timeout());
        self.by_ufrag.insert(ufrag, id);
        self.legs.insert(id, Box::new(leg));
        Ok(())
    }

    /// SRTP keys for leg `id` as if its handshake had just finished: each
    /// `key || salt`, `remote` unprotecting what the peer sends. Only the
    /// fuzz target uses it.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn install_srtp_keys(
        &mut self,
        id: LegId,
        profile: super::SrtpProfile,
        local: Vec<u8>,
        remote: Vec<u8>,
    ) -> Result<(), WebRtcError> {
        let leg = self.legs.get_mut(id).ok_or(WebRtcError::UnknownLeg(id))?;
        let keys = super::dtls::SrtpKeys {
            profile,
            local,
            remote,
        };
        leg.install_srtp_keys(&keys, &self.crypto)
    }

    /// Removes a leg and every route to it.
    pub fn remove_leg(&mut self, id: LegId) {
        let Some(leg) = self.legs.remove(id) else {
            return;
        };
        for ufrag in leg.ice.ufrags() {
            self.by_ufrag.remove(ufrag);
        }
        for addr in leg.ice.validated() {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
    }

    /// Starts an ICE restart: checks with the new credentials are answered
    /// from now on, the old ones until the new ones nominate a path.
    pub fn restart_ice(&mut self, id: LegId, creds: IceRestart) -> Result<(), WebRtcError> {
        validate_credentials(&creds.local_ufrag, &creds.local_pwd)?;
        validate_credentials(&creds.remote_ufrag, &creds.remote_pwd)?;
        if self.by_ufrag.contains_key(&creds.local_ufrag) {
            return Err(WebRtcError::DuplicateUfrag(creds.local_ufrag));
        }
        let leg = self.legs.get_mut(id).ok_or(WebRtcError::UnknownLeg(id))?;
        let ufrag = creds.local_ufrag.clone();
        if let Some(retired) =
            leg.ice
                .restart(creds.local_ufrag, creds.local_pwd, creds.remote_ufrag)
        {
            self.by_ufrag.remove(&retired);
        }
        self.by_ufrag.insert(ufrag, id);
        Ok(())
    }

    /// One datagram from `src`; `buf[..len]` holds it, `buf` has spare room. SRTP/SRTCP are decrypted in place.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Receive {
        let len = len.min(buf.len());
        match classify(&buf[..len]) {
            PacketKind::Stun => self.receive_stun(now, src, &buf[..len]),
            PacketKind::Dtls => self.receive_dtls(now, src, &buf[..len]),
            PacketKind::Rtp => match self.leg_at(src) {
                Ok((leg, l)) => match l.unprotect_rtp(now, buf, len) {
                    Ok(len) => Receive::Rtp { leg, len },
                    Err(reason) => Receive::Dropped(reason),
                },
                Err(reason) => Receive::Dropped(reason),
            },
            PacketKind::Rtcp => match self.leg_at(src) {
                Ok((leg, l)) => match l.unprotect_rtcp(now, buf, len) {
                    Ok(len) => Receive::Rtcp { leg, len },
                    Err(reason) => Receive::Dropped(reason),
                },
                Err(reason) => Receive::Dropped(reason),
            },
            PacketKind::Other => Receive::Dropped(DropReason::NotWebRtc),
        }
    }

    /// Encrypt an RTP packet in place for leg `id`; returns the new length and the destination (the leg's nominated address).
    pub fn protect_rtp(
        &mut self,
        id: LegId,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(usize, SocketAddr), SendError> {
        let leg = self.legs.get_mut(id).ok_or(SendError::UnknownLeg)?;
        leg.protect_rtp(buf, len)
    }

    /// Encrypt an RTCP packet in place for leg `id`; returns the new length and the destination.
    pub fn protect_rtcp(
        &mut self,
        id: LegId,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(usize, SocketAddr), SendError> {
        let leg = self.legs.get_mut(id).ok_or(SendError::UnknownLeg)?;
        leg.protect_rtcp(buf, len)
    }

    /// Next control datagram to send (STUN response, DTLS flight).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next leg event.
    pub fn poll_event(&mut self) -> Option<(LegId, LegEvent)> {
        self.events.pop_front()
    }

    /// Runs due timers: DTLS retransmissions and consent expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_wake.is_none_or(|t| now < t) {
            return;
        }
        let mut io = LegIo {
            scratch: &mut self.scratch,
            transmits: &mut self.transmits,
            crypto: &self.crypto,
        };
        let mut next_wake = None;
        for (id, leg) in self.legs.iter_mut() {
            for event in leg.on_timeout(now, &mut io) {
                emit(&mut self.events, id, event);
            }
            next_wake = earliest(next_wake, leg.next_timeout());
        }
        self.next_wake = next_wake;
    }

    /// When `handle_timeout` is next needed; `None` with no legs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_wake
    }

    /// Number of legs (for gauges).
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    fn leg_at(&mut self, src: SocketAddr) -> Result<(LegId, &mut Leg), DropReason> {
        let id = *self.by_addr.get(&src).ok_or(DropReason::UnknownSource)?;
        let leg = self.legs.get_mut(id).ok_or(DropReason::UnknownSource)?;
        Ok((id, leg))
    }

    fn receive_stun(&mut self, now: Instant, src: SocketAddr, packet: &[u8]) -> Receive {
        let req = match parse_binding_request(packet) {
            Ok(req) => req,
            Err(reason) => return Receive::Dropped(reason),
        };
        let Some(&id) = self.by_ufrag.get(&req.local_ufrag) else {
            return Receive::Dropped(DropReason::StunUnknownUser);
        };
        let Some(leg) = self.legs.get_mut(id) else {
            return Receive::Dropped(DropReason::StunUnknownUser);
        };
        let outcome = match leg.ice.handle_request(req, src, now, &self.crypto) {
            Ok(outcome) => outcome,
            Err(reason) => return Receive::Dropped(reason),
        };
        if let Some(evicted) = outcome.evicted {
            if self.by_addr.get(&evicted) == Some(&id) {
                self.by_addr.remove(&evicted);
            }
        }
        if let Some(addr) = outcome.new_address {
            if let Some(previous) = self.by_addr.insert(addr, id).filter(|p| *p != id) {
                // The browser reused a 5-tuple for a newer leg: the newest check wins.
                if let Some(old) = self.legs.get_mut(previous) {
                    old.ice.forget(addr);
                }
            }
        }
        if let Some(ufrag) = outcome.retired_ufrag {
            self.by_ufrag.remove(&ufrag);
        }
        self.transmits.push_back(Transmit {
            dest: src,
            data: outcome.response,
        });
        // After the response, so a DTLS client's ClientHello follows it.
        self.start_dtls(id, now);
        Receive::Handled
    }

    /// Lets a DTLS-client leg start its handshake once ICE has a path.
    fn start_dtls(&mut self, id: LegId, now: Instant) {
        let Some(leg) = self.legs.get_mut(id) else {
            return;
        };
        let mut io = LegIo {
            scratch: &mut self.scratch,
            transmits: &mut self.transmits,
            crypto: &self.crypto,
        };
        let result = leg.on_valid_check(now, &mut io);
        let wake = leg.next_timeout();
        self.wake_by(wake);
        match result {
            Ok(Some(event)) => emit(&mut self.events, id, event),
            Ok(None) => {}
            Err(e) => emit(&mut self.events, id, LegEvent::Failed(e)),
        }
    }

    fn receive_dtls(&mut self, now: Instant, src: SocketAddr, packet: &[u8]) -> Receive {
        let Some(&id) = self.by_addr.get(&src) else {
            return Receive::Dropped(DropReason::UnknownSource);
        };
        let Some(leg) = self.legs.get_mut(id) else {
            return Receive::Dropped(DropReason::UnknownSource);
        };
        if !leg.dtls_alive() {
            return Receive::Dropped(DropReason::NotConnected);
        }
        let mut io = LegIo {
            scratch: &mut self.scratch,
            transmits: &mut self.transmits,
            crypto: &self.crypto,
        };
        let result = leg.handle_dtls(packet, now, &mut io);
        let wake = leg.next_timeout();
        self.wake_by(wake);
        match result {
            Ok(event) => {
                if let Some(event) = event {
                    emit(&mut self.events, id, event);
                }
                Receive::Handled
            }
            Err(e) => {
                emit(&mut self.events, id, LegEvent::Failed(e));
                Receive::Dropped(DropReason::Dtls)
            }
        }
    }

    fn wake_by(&mut self, t: Option<Instant>) {
        self.next_wake = earliest(self.next_wake, t);
    }
}

/// Queues a leg event; events are rare (a few per leg lifetime), so each is logged.
fn emit(events: &mut VecDeque<(LegId, LegEvent)>, id: LegId, event: LegEvent) {
    match &event {
        LegEvent::Failed(e) => tracing::info!(leg = id, error = %e, "webrtc leg failed"),
        other => tracing::debug!(leg = id, event = ?other, "webrtc leg event"),
    }
    events.push_back((id, event));
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
