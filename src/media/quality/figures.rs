//! From a relay snapshot to what is reported per direction: loss, jitter,
//! round trip, and the E-model's R and MOS. Pure.

use super::call::{QualitySnapshot, StreamSnapshot};
use super::emodel::{self, CodecImpairment, Conditions};

/// Delay the endpoints add that siphon cannot see, in ms: one 20 ms frame
/// of packetisation and a jitter buffer of at least 20 ms. The jitter
/// buffer grows to twice the measured jitter, as adaptive buffers do.
const FRAME_MS: f64 = 20.0;
const MIN_BUFFER_MS: f64 = 20.0;

/// One direction's reported figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// RTP packets siphon received of it.
    pub received: u64,
    /// Packets lost: siphon's own count, or the receiver's if it saw more.
    pub lost: u64,
    /// `lost` over the packets sent (0 to 1).
    pub loss_ratio: f64,
    /// Interarrival jitter in ms: the larger of siphon's and the receiver's.
    pub jitter_ms: f64,
    /// The round trip of the leg this media goes out on, in ms.
    pub rtt_ms: Option<f64>,
    /// The E-model R-factor (0 to 100).
    pub r: f64,
    /// The estimated MOS (1 to 4.5).
    pub mos: f64,
}

impl Figures {
    /// Whether there is anything to judge: some media came.
    pub fn measured(&self) -> bool {
        self.received > 0
    }
}

/// Both directions' figures for a call whose codec is `codec`.
pub fn figures(s: &QualitySnapshot, codec: &str) -> (Figures, Figures) {
    // Delay is conversational: the whole round trip, both legs as far as
    // known, counts against both directions.
    let legs = [s.to_browser.rtt_us, s.to_sip.rtt_us];
    let rtt_ms: f64 = legs
        .iter()
        .flatten()
        .map(|us| f64::from(*us) / 1000.0)
        .sum();
    let impairment = CodecImpairment::of(codec);
    let one = |stream: &StreamSnapshot| direction(stream, rtt_ms, impairment);
    (one(&s.to_browser), one(&s.to_sip))
}

fn direction(s: &StreamSnapshot, call_rtt_ms: f64, codec: CodecImpairment) -> Figures {
    let own = s.received;
    let far_lost = s.far.map_or(0, |f| f.lost);
    let lost = own.lost.max(far_lost);
    // siphon forwards every packet it gets with its sequence gaps, so the
    // receiver expects what siphon expected.
    let expected = own.expected.max(lost);
    let loss_ratio = match expected {
        0 => 0.0,
        n => (lost as f64 / n as f64).min(1.0),
    };
    let jitter_us = own
        .jitter_us
        .unwrap_or(0)
        .max(s.far.map_or(0, |f| f.jitter_us));
    let jitter_ms = f64::from(jitter_us) / 1000.0;
    let buffer_ms = (2.0 * jitter_ms).max(MIN_BUFFER_MS);
    let conditions = Conditions {
        one_way_delay_ms: call_rtt_ms / 2.0 + buffer_ms + FRAME_MS,
        loss_percent: loss_ratio * 100.0,
    };
    let r = emodel::r_factor(conditions, codec);
    Figures {
        received: own.received,
        lost,
        loss_ratio,
        jitter_ms,
        rtt_ms: s.rtt_us.map(|us| f64::from(us) / 1000.0),
        r,
        mos: emodel::mos(r),
    }
}

#[cfg(test)]
mod tests {
    use super::super::call::FarReport;
    use super::super::receive::Received;
    use super::*;

    fn stream(received: u64, expected: u64, jitter_us: u32) -> StreamSnapshot {
        StreamSnapshot {
            received: Received {
                received,
                expected,
                lost: expected.saturating_sub(received),
                jitter_us: Some(jitter_us),
            },
            rtt_us: None,
            far: None,
        }
    }

    #[test]
    fn a_clean_call_scores_near_the_top() {
        let s = QualitySnapshot {
            to_browser: stream(500, 500, 800),
            to_sip: stream(500, 500, 1200),
        };
        let (to_browser, to_sip) = figures(&s, "PCMU");
        assert_eq!((to_browser.lost, to_browser.loss_ratio), (0, 0.0));
        assert!(to_browser.mos > 4.3 && to_sip.mos > 4.3, "{to_browser:?}");
        assert_eq!(to_sip.jitter_ms, 1.2);
        assert!(to_browser.measured());
    }

    #[test]
    fn loss_lowers_the_score_and_the_receiver_may_see_more() {
        let mut s = QualitySnapshot {
            to_browser: stream(500, 500, 0),
            to_sip: stream(450, 500, 0),
        };
        s.to_browser.far = Some(FarReport {
            lost: 25,
            jitter_us: 30_000,
        });
        s.to_browser.rtt_us = Some(80_000);
        let (to_browser, to_sip) = figures(&s, "PCMU");
        assert_eq!((to_sip.lost, to_sip.loss_ratio), (50, 0.1));
        assert!(to_sip.mos < 3.6, "{to_sip:?}");
        assert_eq!(to_browser.lost, 25);
        assert_eq!(to_browser.loss_ratio, 0.05);
        assert_eq!(
            (to_browser.jitter_ms, to_browser.rtt_ms),
            (30.0, Some(80.0))
        );
        assert_eq!(to_sip.rtt_ms, None);
        assert!(to_browser.mos > to_sip.mos);
    }

    #[test]
    fn no_media_is_no_measure() {
        let (a, b) = figures(&QualitySnapshot::default(), "opus");
        assert!(!a.measured() && !b.measured());
        assert_eq!(a.loss_ratio, 0.0);
    }
}
