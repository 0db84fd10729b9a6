//! The relay of one datagram, whatever IO path brought it: decrypt,
//! rewrite, encrypt, and where it goes (a child module, for the loop's
//! fields). No allocation, no lock, no log line.

use std::net::SocketAddr;
use std::time::Instant;

use super::super::batch::Sent;
use super::super::counters::{Counters, RelayDrop};
use super::super::sip_srtp::SipDrop;
use super::super::tones::Press;
use super::super::MediaEvent;
use super::{Out, Slot, Via, Worker};
use crate::media::quality::Leg;
use crate::media::rewrite::RewriteDrop;
use crate::media::rtcp;
use crate::webrtc::{LegId, Receive};

impl Worker {
    /// One datagram, in `buf[..len]` (the rest of `buf` is room to grow),
    /// from the shared WebRTC socket (`None`: STUN and DTLS go to the
    /// engine, SRTP toward the SIP side) or from slot `index`'s RTP socket
    /// (`Some((index, false))`) or RTCP socket (`true`), toward the browser.
    /// What comes back is to be sent from `buf`.
    pub(super) fn on_datagram(
        &mut self,
        now: Instant,
        from: Option<(usize, bool)>,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<Out> {
        let started = self.sample_start();
        let out = match from {
            None => self.browser_datagram(now, src, buf, len),
            Some((index, rtcp)) => self.sip_to_webrtc(now, index, rtcp, src, buf, len),
        };
        self.sample_end(started);
        out
    }

    fn browser_datagram(
        &mut self,
        now: Instant,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<Out> {
        match self.endpoint.handle_receive(now, src, buf, len) {
            Receive::Rtp { leg, len } => self.webrtc_to_sip(now, leg, buf, len, false),
            Receive::Rtcp { leg, len } => self.webrtc_to_sip(now, leg, buf, len, true),
            Receive::Handled => {
                self.flush_endpoint();
                None
            }
            Receive::Dropped(reason) => {
                self.counters.webrtc_drop(reason);
                None
            }
        }
    }

    fn webrtc_to_sip(
        &mut self,
        now: Instant,
        leg: LegId,
        buf: &mut [u8],
        len: usize,
        is_rtcp: bool,
    ) -> Option<Out> {
        let index = leg as usize;
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            self.counters.relay_drop(RelayDrop::NotConfigured);
            return None;
        };
        // Counted as received before any drop, else it would read as loss.
        observe(slot, Leg::Browser, &buf[..len], is_rtcp, now);
        let Some(sip) = slot.sip.as_ref() else {
            return drop_packet(&mut self.counters, slot, RelayDrop::NotConfigured);
        };
        // A SIP side on hold gets no RTP; RTCP goes on (RFC 3264 section 5.1).
        if !sip.send_to_sip && !is_rtcp {
            return drop_packet(&mut self.counters, slot, RelayDrop::Held);
        }
        let pkt = &mut buf[..len];
        let (via, (dest, connected)) = if is_rtcp {
            if rtcp::translate(pkt, &slot.to_sip, &slot.to_webrtc).is_err() {
                return drop_packet(&mut self.counters, slot, RelayDrop::Malformed);
            }
            // Muxed, RTCP goes where RTP goes.
            match sip.rtcp_mux {
                true => (Via::Rtp, slot.rtp_latch.dest(sip.remote_rtcp)),
                false => (Via::Rtcp, slot.rtcp_latch.dest(sip.remote_rtcp)),
            }
        } else {
            if let Some((_, clock)) = sip
                .webrtc_dtmf_convert
                .filter(|(pt, _)| pkt[1] & 0x7f == *pt)
            {
                // A key press the SIP side cannot take as it is: re-sent as
                // siphon's own, or as SIP INFO (rare; never on the audio path).
                let (code, duration_ms) = slot.tones.key_ended(pkt, clock)?;
                if sip.sip_dtmf.is_none() {
                    let _ = slot.events.send(MediaEvent::BrowserKey(code, duration_ms));
                    return None;
                }
                let press = Press {
                    to_sip: true,
                    code,
                    duration_ms,
                };
                if slot.tones.push(press) && !self.toning.contains(&index) {
                    self.toning.push(index);
                }
                return None;
            }
            if let Err(e) = slot.to_sip.rewrite(pkt) {
                return drop_packet(&mut self.counters, slot, rewrite_reason(e));
            }
            (Via::Rtp, slot.rtp_latch.dest(sip.remote_rtp))
        };
        let out_len = match slot.srtp.as_mut() {
            None => len,
            Some(srtp) if is_rtcp => srtp.tx.protect_rtcp(buf, len).unwrap_or(0),
            Some(srtp) => srtp.tx.protect_rtp(buf, len).unwrap_or(0),
        };
        if out_len == 0 {
            slot.stats.dropped += 1;
            self.counters.sip_drop(SipDrop::Protect);
            return None;
        }
        let sent = Sent {
            slot: index,
            is_rtcp,
            to_sip: true,
            len,
        };
        Some(Out {
            via,
            dest,
            connected,
            len: out_len,
            sent,
        })
    }

    fn sip_to_webrtc(
        &mut self,
        now: Instant,
        index: usize,
        from_rtcp_port: bool,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<Out> {
        let slot = self.slots.get_mut(index).and_then(Option::as_mut)?;
        let Some(sip) = &slot.sip else {
            return drop_packet(&mut self.counters, slot, RelayDrop::NotConfigured);
        };
        // With rtcp-mux, RTCP arrives on the RTP port: PT 192..=223 (RFC 5761).
        let is_rtcp = from_rtcp_port || (sip.rtcp_mux && len >= 2 && (192..=223).contains(&buf[1]));
        let to_browser = is_rtcp || sip.send_to_webrtc;
        let (latch, socket) = if from_rtcp_port {
            (&mut slot.rtcp_latch, &slot.rtcp)
        } else {
            (&mut slot.rtp_latch, &slot.rtp)
        };
        if !latch.admits(src, now) {
            return drop_packet(&mut self.counters, slot, RelayDrop::UnlatchedSource);
        }
        // Authenticated before it may latch: a forged packet cannot steer media.
        let unprotected = match slot.srtp.as_mut() {
            None => Ok(len),
            Some(srtp) => {
                srtp.rx.refill_strangers(now);
                if is_rtcp {
                    srtp.rx.unprotect_rtcp(buf, len)
                } else {
                    srtp.rx.unprotect_rtp(buf, len)
                }
            }
        };
        let len = match unprotected {
            Ok(len) => len,
            Err(reason) => {
                slot.stats.dropped += 1;
                self.counters.sip_drop(reason.into());
                return None;
            }
        };
        if latch.latch(socket, src) && !from_rtcp_port {
            let _ = slot.events.send(MediaEvent::SipLatched(src));
        }
        observe(slot, Leg::Sip, &buf[..len], is_rtcp, now);
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
            self.endpoint.protect_rtcp(slot.leg, buf, len)
        } else {
            self.endpoint.protect_rtp(slot.leg, buf, len)
        };
        let Ok((out_len, dest)) = protected else {
            return drop_packet(&mut self.counters, slot, RelayDrop::WebRtcNotReady);
        };
        let sent = Sent {
            slot: index,
            is_rtcp,
            to_sip: false,
            len,
        };
        Some(Out {
            via: Via::WebRtc,
            dest,
            connected: false,
            len: out_len,
            sent,
        })
    }

    /// A datagram larger than a receive buffer arrived (on slot `index`'s
    /// socket, or the WebRTC socket for `None`): it is dropped whole.
    pub(super) fn oversize(&mut self, index: Option<usize>) {
        match index.and_then(|i| self.slots.get_mut(i)?.as_mut()) {
            Some(slot) => {
                let _ = drop_packet(&mut self.counters, slot, RelayDrop::Oversize);
            }
            None => self.counters.relay_drop(RelayDrop::Oversize),
        }
    }

    /// Count a relayed packet as sent (`ok`) or dropped by its socket.
    pub(super) fn sent(&mut self, sent: Sent, ok: bool) {
        let slot = self.slots.get_mut(sent.slot).and_then(Option::as_mut);
        match (ok, slot) {
            (true, slot) => {
                if let Some(slot) = slot {
                    match sent.to_sip {
                        true => slot.stats.to_sip_packets += 1,
                        false => slot.stats.to_webrtc_packets += 1,
                    }
                }
                match sent.to_sip {
                    true => self.counters.relayed_to_sip(sent.is_rtcp, sent.len),
                    false => self.counters.relayed_to_webrtc(sent.is_rtcp, sent.len),
                }
            }
            (false, Some(slot)) => {
                let _ = drop_packet(&mut self.counters, slot, RelayDrop::SendFailed);
            }
            (false, None) => self.counters.relay_drop(RelayDrop::SendFailed),
        }
    }
}

/// Feed `slot`'s quality figures with a packet (decrypted, not yet
/// rewritten) from `leg`. Key presses count for loss, not for jitter.
fn observe(slot: &mut Slot, leg: Leg, pkt: &[u8], is_rtcp: bool, now: Instant) {
    let Some(sip) = slot.sip.as_ref() else {
        return;
    };
    let clock = sip.clock_rate;
    if is_rtcp {
        let toward = match leg {
            Leg::Browser => slot.to_webrtc.out_ssrc(),
            Leg::Sip => slot.to_sip.out_ssrc(),
        };
        slot.quality.rtcp_from(leg, pkt, toward, now, clock);
        return;
    }
    let events = match leg {
        Leg::Browser => [sip.webrtc_dtmf, sip.webrtc_dtmf_convert],
        Leg::Sip => [sip.sip_dtmf, None],
    };
    let pt = pkt.get(1).map_or(0, |b| b & 0x7f);
    let timed = !events.iter().flatten().any(|(event, _)| *event == pt);
    slot.quality.rtp_from(leg, pkt, now, clock, timed);
}

/// Count a packet of `slot` as dropped; nothing goes out.
fn drop_packet(counters: &mut Counters, slot: &mut Slot, reason: RelayDrop) -> Option<Out> {
    slot.stats.dropped += 1;
    counters.relay_drop(reason);
    None
}

fn rewrite_reason(e: RewriteDrop) -> RelayDrop {
    match e {
        RewriteDrop::Malformed => RelayDrop::Malformed,
        RewriteDrop::UnknownPayloadType => RelayDrop::UnknownPayloadType,
    }
}
