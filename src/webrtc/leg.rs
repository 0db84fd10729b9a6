//! One WebRTC leg: its ICE agent, DTLS session and SRTP contexts together.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc_srtp::crypto::RTCCrypto;

use super::dtls::{parse_fingerprint, DtlsSession, Progress, SrtpKeys};
use super::ice::IceAgent;
use super::{
    DropReason, Identity, LegConfig, LegEvent, SendError, SrtpContext, Transmit, WebRtcError,
};

/// SRTP state once DTLS is done: one context per direction.
struct Srtp {
    /// Protects what we send (our DTLS write key).
    tx: SrtpContext,
    /// Unprotects what the peer sends (its DTLS write key).
    rx: SrtpContext,
}

/// Per-leg state owned by the endpoint.
pub(crate) struct Leg {
    pub ice: IceAgent,
    /// `None` once the leg failed or closed: it handles no more DTLS.
    dtls: Option<DtlsSession>,
    srtp: Option<Srtp>,
}

impl Leg {
    /// Builds a leg; fails on a malformed remote fingerprint.
    pub fn new(
        cfg: LegConfig,
        identity: &Identity,
        dtls_config: Arc<dimpl::Config>,
        now: Instant,
    ) -> Result<Leg, WebRtcError> {
        let fingerprint = parse_fingerprint(&cfg.remote_fingerprint)?;
        let ice = IceAgent::new(
            cfg.local_ufrag,
            cfg.local_pwd,
            cfg.remote_ufrag,
            (cfg.consent_timeout, cfg.disconnect_timeout),
            now,
        );
        let dtls = DtlsSession::new(identity, dtls_config, fingerprint, cfg.dtls_role, now);
        Ok(Leg {
            ice,
            dtls: Some(dtls),
            srtp: None,
        })
    }

    /// Puts the keys in place as a finished handshake would, so the fuzz
    /// target reaches SRTP and SRTCP behind `handle_receive` (a fuzzer
    /// cannot forge the peer's Finished).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn install_srtp_keys(
        &mut self,
        keys: &SrtpKeys,
        crypto: &dyn RTCCrypto,
    ) -> Result<(), WebRtcError> {
        self.srtp = Some(build_srtp(keys, crypto)?);
        Ok(())
    }

    /// False once the leg failed or closed: DTLS records have no consumer.
    pub fn dtls_alive(&self) -> bool {
        self.dtls.is_some()
    }

    /// The earliest instant this leg needs `on_timeout`.
    pub fn next_timeout(&self) -> Option<Instant> {
        let dtls = self.dtls.as_ref().and_then(DtlsSession::timeout);
        // A failed or closed leg has nothing left to report a pause to.
        let quiet = self.dtls.as_ref().and(self.ice.quiet_deadline());
        [dtls, self.ice.consent_deadline(), quiet]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds a DTLS datagram and drains the handshake.
    ///
    /// On `Err` the leg has failed: it drops its DTLS and SRTP state.
    pub fn handle_dtls(
        &mut self,
        packet: &[u8],
        now: Instant,
        io: &mut LegIo<'_>,
    ) -> Result<Option<LegEvent>, WebRtcError> {
        let Some(dtls) = self.dtls.as_mut() else {
            return Ok(None);
        };
        let result = dtls.handle_packet(packet, now);
        self.settle(result, io)
    }

    /// Called after each valid ICE check: a DTLS client that has not spoken
    /// yet sends its ClientHello now, to the path ICE just validated.
    ///
    /// Waiting for ICE keeps us from sending DTLS to an address the peer has
    /// not proven it owns (we are ICE-lite and never send checks ourselves).
    pub fn on_valid_check(
        &mut self,
        now: Instant,
        io: &mut LegIo<'_>,
    ) -> Result<Option<LegEvent>, WebRtcError> {
        let Some(dtls) = self.dtls.as_mut().filter(|d| d.awaiting_start()) else {
            return Ok(None);
        };
        let result = dtls.start(now);
        self.settle(result, io)
    }

    /// Runs consent and DTLS timers; returns the events they caused.
    pub fn on_timeout(&mut self, now: Instant, io: &mut LegIo<'_>) -> Vec<LegEvent> {
        let mut events = Vec::new();
        if self.dtls.is_some() && self.ice.go_quiet(now) {
            events.push(LegEvent::Disconnected);
        }
        if self.ice.expire_consent(now) {
            events.push(LegEvent::ConsentExpired);
        }
        if let Some(dtls) = self.dtls.as_mut() {
            let result = dtls.handle_timeout(now);
            match self.settle(result, io) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                Err(e) => events.push(LegEvent::Failed(e)),
            }
        }
        events
    }

    /// Drains DTLS after `result`, building SRTP on connect; tears down on error.
    fn settle(
        &mut self,
        result: Result<(), WebRtcError>,
        io: &mut LegIo<'_>,
    ) -> Result<Option<LegEvent>, WebRtcError> {
        let outcome = result.and_then(|()| self.drain(io));
        match outcome {
            Ok(Progress::Pending) => Ok(None),
            Ok(Progress::Connected(keys)) => {
                let profile = keys.profile;
                match build_srtp(&keys, io.crypto) {
                    Ok(srtp) => {
                        self.srtp = Some(srtp);
                        Ok(Some(LegEvent::Connected { profile }))
                    }
                    Err(e) => self.fail(e),
                }
            }
            Ok(Progress::Closed) => {
                self.dtls = None;
                self.srtp = None;
                Ok(Some(LegEvent::Closed))
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: WebRtcError) -> Result<Option<LegEvent>, WebRtcError> {
        self.dtls = None;
        self.srtp = None;
        Err(e)
    }

    fn drain(&mut self, io: &mut LegIo<'_>) -> Result<Progress, WebRtcError> {
        let dest = self.ice.send_addr();
        let Some(dtls) = self.dtls.as_mut() else {
            return Ok(Progress::Pending);
        };
        let transmits = &mut *io.transmits;
        dtls.poll(io.scratch, |p| {
            // Without a path (consent expired) the flight is dropped; it is
            // retransmitted (by the peer or our timer) if the path comes back.
            if let Some(dest) = dest {
                transmits.push_back(Transmit {
                    dest,
                    data: p.to_vec(),
                });
            }
        })
    }

    /// Unprotects SRTP received at `now` in place.
    pub fn unprotect_rtp(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, DropReason> {
        let srtp = self.srtp.as_mut().ok_or(DropReason::NotConnected)?;
        srtp.rx.refill_strangers(now);
        srtp.rx.unprotect_rtp(buf, len).map_err(DropReason::from)
    }

    /// Unprotects SRTCP received at `now` in place.
    pub fn unprotect_rtcp(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, DropReason> {
        let srtp = self.srtp.as_mut().ok_or(DropReason::NotConnected)?;
        srtp.rx.refill_strangers(now);
        srtp.rx.unprotect_rtcp(buf, len).map_err(DropReason::from)
    }

    /// Protects RTP in place; returns the length and where to send it.
    pub fn protect_rtp(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(usize, SocketAddr), SendError> {
        let srtp = self.srtp.as_mut().ok_or(SendError::NotConnected)?;
        let dest = self.ice.send_addr().ok_or(SendError::NoPath)?;
        Ok((srtp.tx.protect_rtp(buf, len)?, dest))
    }

    /// Protects RTCP in place; returns the length and where to send it.
    pub fn protect_rtcp(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(usize, SocketAddr), SendError> {
        let srtp = self.srtp.as_mut().ok_or(SendError::NotConnected)?;
        let dest = self.ice.send_addr().ok_or(SendError::NoPath)?;
        Ok((srtp.tx.protect_rtcp(buf, len)?, dest))
    }
}

/// The endpoint-owned things a leg writes into while handling DTLS.
pub(crate) struct LegIo<'a> {
    pub scratch: &'a mut Vec<u8>,
    pub transmits: &'a mut VecDeque<Transmit>,
    pub crypto: &'a dyn RTCCrypto,
}

fn build_srtp(keys: &SrtpKeys, crypto: &dyn RTCCrypto) -> Result<Srtp, WebRtcError> {
    let context =
        |key: &[u8]| SrtpContext::new(keys.profile, key, crypto).map_err(WebRtcError::from);
    Ok(Srtp {
        tx: context(&keys.local)?,
        rx: context(&keys.remote)?,
    })
}
