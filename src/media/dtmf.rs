//! DTMF: RFC 4733 telephone-event payloads, and the packets of one generated
//! key press (start, updates, three end packets) on a schedule that is a pure
//! function of time.

use std::time::{Duration, Instant};

/// The events a `dtmf` may name, in RFC 4733 event-code order (0-15).
const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
/// RFC 4733 section 2.5.1.2: update packets every 50 ms of a long event.
const UPDATE_EVERY: Duration = Duration::from_millis(50);
/// The end packet is sent three times (section 2.5.1.4), 20 ms apart.
const END_REPEATS: u8 = 3;
const END_GAP: Duration = Duration::from_millis(20);
/// Shortest and longest tone accepted, in ms (shorter is missed by PBXs).
pub const MIN_DURATION_MS: u32 = 40;
/// Longest tone accepted, in ms.
pub const MAX_DURATION_MS: u32 = 5000;
/// Tone length when a request names none, in ms.
pub const DEFAULT_DURATION_MS: u32 = 160;

/// The RFC 4733 event code of a digit (0-9 * # A-D, case-insensitive).
pub fn event_code(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase() as u8;
    DIGITS.iter().position(|c| *c == d).map(|i| i as u8)
}

/// The digit of an RFC 4733 event code.
pub fn digit(code: u8) -> Option<char> {
    DIGITS.get(code as usize).map(|c| *c as char)
}

/// A 4-byte telephone-event payload: event, E bit, volume 10, duration.
pub fn payload(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let [hi, lo] = duration.to_be_bytes();
    [code, if end { 0x80 | 10 } else { 10 }, hi, lo]
}

/// One decoded telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Event code (0-15 are DTMF).
    pub code: u8,
    /// The E bit: the last packet(s) of the event.
    pub end: bool,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// Decode a telephone-event payload (at least 4 bytes).
pub fn parse(payload: &[u8]) -> Option<Event> {
    let [code, flags, hi, lo] = *payload.first_chunk::<4>()?;
    Some(Event {
        code,
        end: flags & 0x80 != 0,
        duration: u16::from_be_bytes([hi, lo]),
    })
}

/// One key press to send as RTP, packet by packet.
#[derive(Debug, Clone)]
pub struct Tone {
    code: u8,
    /// Timestamp units per millisecond (8 for 8 kHz, 48 for 48 kHz).
    units_per_ms: u32,
    total_ms: u32,
    started: Instant,
    next: Instant,
    ends_sent: u8,
}

/// A packet due now: payload and whether it starts the event (marker bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TonePacket {
    /// The telephone-event payload.
    pub payload: [u8; 4],
    /// Set on the first packet of the event.
    pub marker: bool,
}

impl Tone {
    /// A press of `code` for `duration_ms` at `clock_rate`, starting `now`.
    pub fn new(code: u8, duration_ms: u32, clock_rate: u32, now: Instant) -> Self {
        Tone {
            code,
            units_per_ms: (clock_rate / 1000).max(1),
            total_ms: duration_ms.clamp(MIN_DURATION_MS, MAX_DURATION_MS),
            started: now,
            next: now,
            ends_sent: 0,
        }
    }

    /// When the next packet is due; `None` once the tone is over.
    pub fn next_due(&self) -> Option<Instant> {
        (self.ends_sent < END_REPEATS).then_some(self.next)
    }

    /// The packet due at `now`, if one is.
    pub fn poll(&mut self, now: Instant) -> Option<TonePacket> {
        if self.next_due()? > now {
            return None;
        }
        let elapsed = now.duration_since(self.started).as_millis() as u32;
        let first = self.next == self.started;
        let end = elapsed >= self.total_ms;
        let ms = if end { self.total_ms } else { elapsed };
        // Long events cap at the 16-bit field (RFC 4733 2.5.2.3 would split
        // them; 5 s at 8 kHz fits, at 48 kHz it saturates).
        let duration = (ms * self.units_per_ms).min(u32::from(u16::MAX)) as u16;
        if end {
            self.ends_sent += 1;
            self.next = now + END_GAP;
        } else {
            let remaining = Duration::from_millis(u64::from(self.total_ms - elapsed));
            self.next = now + UPDATE_EVERY.min(remaining);
        }
        Some(TonePacket {
            payload: payload(self.code, end, duration),
            marker: first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_to_rfc4733_codes_and_back() {
        assert_eq!(event_code('0'), Some(0));
        assert_eq!(event_code('*'), Some(10));
        assert_eq!(event_code('#'), Some(11));
        assert_eq!(event_code('d'), Some(15));
        assert_eq!(event_code('E'), None);
        assert_eq!(event_code('x'), None);
        assert_eq!(digit(11), Some('#'));
        assert_eq!(digit(16), None);
    }

    #[test]
    fn payloads_round_trip() {
        let p = payload(5, true, 1280);
        assert_eq!(p, [5, 0x8a, 0x05, 0x00]);
        assert_eq!(
            parse(&p),
            Some(Event {
                code: 5,
                end: true,
                duration: 1280
            })
        );
        assert_eq!(parse(&[1, 2, 3]), None);
    }

    #[test]
    fn a_tone_is_start_updates_and_three_ends() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut tone = Tone::new(5, 120, 8000, t0);
        let mut sent = Vec::new();
        let mut now = t0;
        while let Some(due) = tone.next_due() {
            now = now.max(due);
            if let Some(p) = tone.poll(now) {
                sent.push((now.duration_since(t0).as_millis(), p));
            }
        }
        let at: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [0, 50, 100, 120, 140, 160]);
        assert!(sent[0].1.marker && sent[1..].iter().all(|(_, p)| !p.marker));
        let durations: Vec<u16> = sent
            .iter()
            .map(|(_, p)| parse(&p.payload).unwrap().duration)
            .collect();
        assert_eq!(durations, [0, 400, 800, 960, 960, 960]);
        let ends = sent
            .iter()
            .filter(|(_, p)| parse(&p.payload).unwrap().end)
            .count();
        assert_eq!(ends, 3);
        assert_eq!(tone.poll(ms(500)), None);
    }

    #[test]
    fn durations_are_clamped_and_scaled_by_clock() {
        let t0 = Instant::now();
        let mut tone = Tone::new(1, 10, 48000, t0);
        tone.poll(t0);
        let end = tone.poll(t0 + Duration::from_millis(40)).unwrap();
        assert_eq!(
            parse(&end.payload).unwrap(),
            Event {
                code: 1,
                end: true,
                duration: 1920
            }
        );
    }
}
