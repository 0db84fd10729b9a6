//! The relay loop's timed work besides the WebRTC engine's: generated key
//! presses and the media-timeout check (a child module, for the loop's fields).

use std::time::Instant;

use super::super::tones::Press;
use super::super::MediaEvent;
use super::Worker;
use crate::webrtc::LegId;

impl Worker {
    /// Send the key-press packets that are due; forget idle slots.
    pub(super) fn send_tones(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.toning.len() {
            let Some(slot) = self.slots.get_mut(self.toning[i]).and_then(Option::as_mut) else {
                self.toning.swap_remove(i);
                continue;
            };
            let Some(sip) = &slot.sip else {
                i += 1;
                continue;
            };
            let buf = &mut self.buf[..];
            let streams = (&mut slot.to_sip, &mut slot.to_webrtc);
            while let Some((len, to_sip)) =
                slot.tones
                    .poll(now, sip, (&mut *streams.0, &mut *streams.1), buf)
            {
                if to_sip {
                    let (dest, _) = slot.rtp_latch.dest(sip.remote_rtp);
                    let out = match slot.srtp.as_mut() {
                        None => Some(len),
                        Some(srtp) => srtp.tx.protect_rtp(buf, len).ok(),
                    };
                    if let Some(out) = out {
                        let _ = slot.rtp.send_to(&buf[..out], dest);
                    }
                } else if let Ok((out, dest)) = self.endpoint.protect_rtp(slot.leg, buf, len) {
                    let _ = self.socket.send_to(&buf[..out], dest);
                }
            }
            if slot.tones.next_due().is_none() {
                self.toning.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
    /// Report calls whose media stopped (once each).
    pub(super) fn check_liveness(&mut self, now: Instant) {
        for slot in self.slots.iter_mut().flatten() {
            if let Some(side) = slot.liveness.check(&slot.stats, now) {
                self.counters.media_timeout(side);
                let _ = slot.events.send(MediaEvent::MediaTimeout(side));
            }
        }
    }
    pub(super) fn queue_tone(&mut self, leg: LegId, press: Press) {
        let index = leg as usize;
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if !slot.tones.push(press) {
            tracing::warn!(leg, "too many key presses queued; one dropped");
        }
        if !self.toning.contains(&index) {
            self.toning.push(index);
        }
    }
}
