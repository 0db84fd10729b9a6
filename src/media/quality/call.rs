//! One call's quality state in its relay slot: receive statistics of the
//! media each way, the round trip of each leg, and what each far end
//! reports of the stream siphon sends it. Fed by the relay as packets
//! pass; read as a plain snapshot.

use std::time::Instant;

use super::receive::{ReceiveStats, Received, RtpFields};
use super::rtcp_scan::{self, Found};
use super::rtt::RttProbe;

/// The leg a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The browser's (WebRTC).
    Browser,
    /// The SIP peer's.
    Sip,
}

/// A far end's own view of the stream siphon sends it, from its latest
/// report block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FarReport {
    /// Packets it lost, all told (upstream of siphon too: siphon keeps the
    /// sequence gaps it receives).
    pub lost: u64,
    /// Its interarrival jitter, in µs.
    pub jitter_us: u32,
}

/// One direction's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// What siphon received of it.
    pub received: Received,
    /// The round trip of the leg it goes out on, in µs.
    pub rtt_us: Option<u32>,
    /// What the receiving end reports.
    pub far: Option<FarReport>,
}

/// Both directions' figures, as the relay had them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QualitySnapshot {
    /// Media from the SIP side toward the browser.
    pub to_browser: StreamSnapshot,
    /// Media from the browser toward the SIP side.
    pub to_sip: StreamSnapshot,
}

/// One direction's state.
#[derive(Debug, Clone, Default)]
struct Stream {
    rx: ReceiveStats,
    rtt: RttProbe,
    far: Option<FarReport>,
}

impl Stream {
    fn snapshot(&self) -> StreamSnapshot {
        StreamSnapshot {
            received: self.rx.figures(),
            rtt_us: self.rtt.rtt_us(),
            far: self.far,
        }
    }
}

/// A call's quality state: fixed size, nothing allocated as it is fed.
#[derive(Debug, Clone, Default)]
pub struct CallQuality {
    to_browser: Stream,
    to_sip: Stream,
}

impl CallQuality {
    /// The direction whose media goes out toward `leg`.
    fn toward(&mut self, leg: Leg) -> &mut Stream {
        match leg {
            Leg::Browser => &mut self.to_browser,
            Leg::Sip => &mut self.to_sip,
        }
    }

    /// An RTP packet (`pkt`, decrypted) came from `leg` at `now`; its
    /// media runs at `clock_rate`. `timed`: it is not a telephone-event.
    pub fn rtp_from(&mut self, leg: Leg, pkt: &[u8], now: Instant, clock_rate: u32, timed: bool) {
        let Some(fields) = RtpFields::read(pkt) else {
            return;
        };
        let stream = match leg {
            Leg::Browser => &mut self.to_sip,
            Leg::Sip => &mut self.to_browser,
        };
        stream.rx.on_rtp(fields, now, clock_rate, timed);
    }

    /// An RTCP compound packet (`pkt`, decrypted, not yet translated) came
    /// from `leg` at `now`. Its report blocks about `ssrc_toward`, the SSRC
    /// siphon sends that leg, give the leg's view and round trip; its
    /// sender reports go on to the other leg, whose answers they await.
    pub fn rtcp_from(
        &mut self,
        leg: Leg,
        pkt: &[u8],
        ssrc_toward: u32,
        now: Instant,
        clock_rate: u32,
    ) {
        let other = match leg {
            Leg::Browser => Leg::Sip,
            Leg::Sip => Leg::Browser,
        };
        rtcp_scan::scan(pkt, |found| match found {
            Found::SenderReport(ntp_mid) => self.toward(other).rtt.sr_sent(ntp_mid, now),
            Found::Block(b) if b.ssrc == ssrc_toward => {
                let stream = self.toward(leg);
                stream.rtt.block_received(b.lsr, b.dlsr, now);
                let jitter_us = match clock_rate {
                    0 => 0,
                    clock => u64::from(b.jitter) * 1_000_000 / u64::from(clock),
                };
                stream.far = Some(FarReport {
                    lost: b.cumulative_lost.max(0) as u64,
                    jitter_us: jitter_us.min(u64::from(u32::MAX)) as u32,
                });
            }
            Found::Block(_) => {}
        });
    }

    /// The figures so far.
    pub fn snapshot(&self) -> QualitySnapshot {
        QualitySnapshot {
            to_browser: self.to_browser.snapshot(),
            to_sip: self.to_sip.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{block, rr, sr};
    use super::*;

    fn rtp(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p
    }

    #[test]
    fn each_leg_feeds_its_own_direction() {
        let mut q = CallQuality::default();
        let now = Instant::now();
        for seq in (0..20u16).filter(|s| *s != 7) {
            q.rtp_from(
                Leg::Browser,
                &rtp(seq, 160 * u32::from(seq)),
                now,
                8000,
                true,
            );
        }
        q.rtp_from(Leg::Sip, &rtp(1, 0), now, 8000, true);
        q.rtp_from(Leg::Sip, &[0x80, 0, 1], now, 8000, true);
        let s = q.snapshot();
        assert_eq!(
            (s.to_sip.received.received, s.to_sip.received.lost),
            (19, 1)
        );
        assert_eq!(s.to_browser.received.received, 1);
    }

    #[test]
    fn a_leg_round_trip_from_an_sr_passed_toward_it() {
        let mut q = CallQuality::default();
        let t0 = Instant::now();
        // The SIP side's SR goes on toward the browser ...
        q.rtcp_from(Leg::Sip, &sr(0x51, 0xABCD, &[]), 0xB0B0, t0, 8000);
        // ... whose RR about siphon's stream to it answers 50 ms later,
        // having held it 10 ms; a block about another source is ignored.
        let answer = [block(0xB0B0, 4, 0xABCD, 655), block(0x9999, 99, 0xABCD, 0)];
        let at = t0 + Duration::from_millis(50);
        q.rtcp_from(Leg::Browser, &rr(0x77, &answer), 0xB0B0, at, 8000);
        let s = q.snapshot();
        let rtt = s.to_browser.rtt_us.unwrap();
        assert!((39_900..=40_100).contains(&rtt), "{rtt}");
        let far = FarReport {
            lost: 4,
            jitter_us: 10_000,
        };
        assert_eq!(s.to_browser.far, Some(far));
        assert_eq!((s.to_sip.rtt_us, s.to_sip.far), (None, None));
    }

    #[test]
    fn bad_rtcp_changes_nothing() {
        let mut q = CallQuality::default();
        let now = Instant::now();
        q.rtcp_from(Leg::Sip, &[0x80, 201, 0, 9, 1, 2], 1, now, 8000);
        let mut neg = rr(1, &[block(5, -20, 0, 0)]);
        q.rtcp_from(Leg::Sip, &neg, 5, now, 0);
        assert_eq!(q.snapshot().to_sip.far, Some(FarReport::default()));
        neg[0] = 0x00;
        q.rtcp_from(Leg::Browser, &neg, 5, now, 8000);
        assert_eq!(q.snapshot().to_browser, StreamSnapshot::default());
    }
}
