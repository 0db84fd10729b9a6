//! Key presses siphon generates on a call (a browser's `dtmf` message, a
//! SIP INFO), sent as RFC 4733 packets inside the media stream toward the
//! side that should hear them, with the sequence numbers of that stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::dtmf::{self, Tone};
use crate::media::rewrite::StreamRewriter;
use crate::media::SipMedia;

/// Silence between two queued digits.
const GAP: Duration = Duration::from_millis(50);
/// Digits queued at most per call; more are dropped.
const MAX_QUEUED: usize = 64;

/// One key press to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    /// Toward the SIP peer (else toward the browser).
    pub to_sip: bool,
    /// RFC 4733 event code.
    pub code: u8,
    /// Tone length in ms.
    pub duration_ms: u32,
}

struct Active {
    to_sip: bool,
    tone: Tone,
    pt: u8,
    ts: u32,
}

/// A call's queue of key presses and the one being sent.
#[derive(Default)]
pub(super) struct Tones {
    queue: VecDeque<Press>,
    active: Option<Active>,
    gap_until: Option<Instant>,
    /// Timestamp of the last browser event re-sent (its end is repeated).
    converted: Option<u32>,
}

impl Tones {
    /// Queue a press; false when the queue is full.
    pub fn push(&mut self, press: Press) -> bool {
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        self.queue.push_back(press);
        true
    }

    /// A browser telephone-event packet at `clock` that the SIP side cannot
    /// take as it is: at its end (E bit, first of the repeats) the key and
    /// its length in ms, once per event.
    pub fn key_ended(&mut self, pkt: &[u8], clock: u32) -> Option<(u8, u32)> {
        let ts = u32::from_be_bytes(*pkt.get(4..8)?.first_chunk::<4>()?);
        let event = dtmf::parse(pkt.get(12..)?)?;
        if !event.end || self.converted == Some(ts) || event.code > 15 {
            return None;
        }
        self.converted = Some(ts);
        Some((event.code, u32::from(event.duration) * 1000 / clock.max(1)))
    }

    /// When `poll` next has work; `None` when idle.
    pub fn next_due(&self) -> Option<Instant> {
        match &self.active {
            Some(a) => a.tone.next_due(),
            None if self.queue.is_empty() => None,
            None => Some(self.gap_until.unwrap_or_else(Instant::now)),
        }
    }

    /// Write the packet due at `now` into `buf` (at least 16 bytes); returns
    /// its length and whether it goes to the SIP side.
    pub fn poll(
        &mut self,
        now: Instant,
        media: &SipMedia,
        streams: (&mut StreamRewriter, &mut StreamRewriter),
        buf: &mut [u8],
    ) -> Option<(usize, bool)> {
        let (to_sip_rw, to_webrtc_rw) = streams;
        if self.active.is_none() {
            self.start_next(now, media)?;
        }
        let active = self.active.as_mut()?;
        let Some(packet) = active.tone.poll(now) else {
            if active.tone.next_due().is_none() {
                self.active = None;
                self.gap_until = Some(now + GAP);
            }
            return None;
        };
        let rw = if active.to_sip {
            to_sip_rw
        } else {
            to_webrtc_rw
        };
        let (seq, next_ts) = rw.inject();
        if packet.marker {
            active.ts = next_ts;
        }
        buf[0] = 0x80;
        buf[1] = if packet.marker { 0x80 } else { 0 } | active.pt;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&active.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&rw.out_ssrc().to_be_bytes());
        buf[12..16].copy_from_slice(&packet.payload);
        let to_sip = active.to_sip;
        if active.tone.next_due().is_none() {
            self.active = None;
            self.gap_until = Some(now + GAP);
        }
        Some((16, to_sip))
    }

    /// Begin the next queued press whose side takes telephone-events.
    fn start_next(&mut self, now: Instant, media: &SipMedia) -> Option<()> {
        if self.gap_until.is_some_and(|t| now < t) {
            return None;
        }
        while let Some(press) = self.queue.pop_front() {
            let event = if press.to_sip {
                media.sip_dtmf
            } else {
                media.webrtc_dtmf
            };
            let Some((pt, clock)) = event else { continue };
            self.active = Some(Active {
                to_sip: press.to_sip,
                tone: Tone::new(press.code, press.duration_ms, clock, now),
                pt,
                ts: 0,
            });
            return Some(());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PtMap;

    fn media() -> SipMedia {
        crate::media::test_media()
    }

    #[test]
    fn two_digits_go_out_in_order_on_their_stream() {
        let t0 = Instant::now();
        let mut tones = Tones::default();
        let press = |code| Press {
            to_sip: true,
            code,
            duration_ms: 100,
        };
        assert!(tones.push(press(1)) && tones.push(press(2)));
        let (mut to_sip, mut to_webrtc) = (
            StreamRewriter::new(0x5151, PtMap::empty(), 160),
            StreamRewriter::new(0x7777, PtMap::empty(), 160),
        );
        let mut buf = [0u8; 64];
        let mut now = t0;
        let mut sent = Vec::new();
        while let Some(due) = tones.next_due() {
            now = now.max(due);
            if let Some((len, to_sip_side)) =
                tones.poll(now, &media(), (&mut to_sip, &mut to_webrtc), &mut buf)
            {
                assert!(to_sip_side && len == 16);
                sent.push(buf[..16].to_vec());
            }
            assert!(now < t0 + Duration::from_secs(2), "runs away");
        }
        let codes: Vec<u8> = sent.iter().map(|p| p[12]).collect();
        let seqs: Vec<u16> = sent
            .iter()
            .map(|p| u16::from_be_bytes([p[2], p[3]]))
            .collect();
        assert_eq!(
            codes.iter().filter(|c| **c == 1).count(),
            5,
            "start, an update at 50 ms, 3 ends"
        );
        assert_eq!(codes.last(), Some(&2));
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{seqs:?}"
        );
        assert!(sent
            .iter()
            .all(|p| p[1] & 0x7f == 101 && p[8..12] == [0, 0, 0x51, 0x51]));
        let markers = sent.iter().filter(|p| p[1] & 0x80 != 0).count();
        assert_eq!(markers, 2, "one start per digit");
    }

    #[test]
    fn a_side_without_telephone_event_is_skipped() {
        let mut m = media();
        m.webrtc_dtmf = None;
        let mut tones = Tones::default();
        tones.push(Press {
            to_sip: false,
            code: 3,
            duration_ms: 100,
        });
        let mut rws = (
            StreamRewriter::new(1, PtMap::empty(), 160),
            StreamRewriter::new(2, PtMap::empty(), 160),
        );
        let mut buf = [0u8; 64];
        let got = tones.poll(Instant::now(), &m, (&mut rws.0, &mut rws.1), &mut buf);
        assert_eq!(got, None);
        assert_eq!(tones.next_due(), None);
    }
}
