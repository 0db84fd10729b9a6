//! Round-trip time of one leg, measured the way a relay can (RFC 3550
//! section 6.4.1, seen from the middle): the sender reports siphon passes
//! toward the leg are remembered with the time they went out; a report
//! block coming back from that leg names one by its LSR, and the time since
//! less the far end's DLSR is the leg's round trip.

use std::time::{Duration, Instant};

/// Sender reports remembered per leg: RTCP goes about once a second per
/// stream, and a report block answers the latest SR its sender had.
const RING: usize = 8;

/// One leg's round-trip measurement.
#[derive(Debug, Clone, Default)]
pub struct RttProbe {
    /// (middle 32 bits of the SR's NTP time, when it went out).
    sent: [Option<(u32, Instant)>; RING],
    next: usize,
    /// The latest round trip found, in µs.
    rtt_us: Option<u32>,
}

impl RttProbe {
    /// An SR whose NTP timestamp's middle 32 bits are `ntp_mid` went out
    /// toward the leg at `now`.
    pub fn sr_sent(&mut self, ntp_mid: u32, now: Instant) {
        if ntp_mid == 0 {
            // LSR 0 means "no SR received": such an SR could never match.
            return;
        }
        self.sent[self.next] = Some((ntp_mid, now));
        self.next = (self.next + 1) % RING;
    }

    /// A report block came back from the leg at `now` with `lsr` and
    /// `dlsr` (1/65536 s). A block that names no SR siphon passed, or
    /// whose delay exceeds the time since, measures nothing.
    pub fn block_received(&mut self, lsr: u32, dlsr: u32, now: Instant) {
        if lsr == 0 {
            return;
        }
        let Some((_, sent_at)) = self.sent.iter().flatten().find(|(mid, _)| *mid == lsr) else {
            return;
        };
        let held = Duration::from_micros(u64::from(dlsr) * 1_000_000 / 65_536);
        let Some(rtt) = now.saturating_duration_since(*sent_at).checked_sub(held) else {
            return;
        };
        self.rtt_us = Some(rtt.as_micros().min(u128::from(u32::MAX)) as u32);
    }

    /// The latest round trip, in µs.
    pub fn rtt_us(&self) -> Option<u32> {
        self.rtt_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_round_trip_is_the_time_since_less_the_far_end_delay() {
        let mut probe = RttProbe::default();
        let t0 = Instant::now();
        probe.sr_sent(0x1234_5678, t0);
        probe.sr_sent(0x2222_0000, t0 + ms(1000));
        // Back 1260 ms after the first SR, held 1000 ms (65536 * 1.0) there.
        probe.block_received(0x1234_5678, 65_536, t0 + ms(1260));
        assert_eq!(probe.rtt_us(), Some(260_000));
        probe.block_received(0x2222_0000, 32_768, t0 + ms(1540));
        assert_eq!(probe.rtt_us(), Some(40_000));
    }

    #[test]
    fn unknown_or_impossible_blocks_measure_nothing() {
        let mut probe = RttProbe::default();
        let t0 = Instant::now();
        probe.sr_sent(0, t0);
        probe.block_received(0, 0, t0 + ms(10));
        assert_eq!(probe.rtt_us(), None);
        probe.sr_sent(7, t0);
        probe.block_received(8, 0, t0 + ms(10));
        // Held longer than it has been away: a clock or a forged block.
        probe.block_received(7, 65_536, t0 + ms(10));
        assert_eq!(probe.rtt_us(), None);
    }

    #[test]
    fn the_ring_forgets_old_reports() {
        let mut probe = RttProbe::default();
        let t0 = Instant::now();
        for i in 1..=(RING as u32 + 1) {
            probe.sr_sent(i, t0);
        }
        probe.block_received(1, 0, t0 + ms(5));
        assert_eq!(probe.rtt_us(), None, "overwritten");
        probe.block_received(2, 0, t0 + ms(5));
        assert_eq!(probe.rtt_us(), Some(5_000));
    }
}
