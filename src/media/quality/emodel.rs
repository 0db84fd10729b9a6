//! The E-model (ITU-T G.107) in the simplified form VoIP monitoring uses
//! (Cole and Rosenbluth, "Voice over IP performance monitoring", ACM
//! SIGCOMM CCR 2001; the same form as RFC 3611's VoIP metrics block):
//! every impairment at its G.107 default except delay (Id) and the
//! equipment impairment under loss (Ie-eff), then R mapped to a MOS.

/// R with every G.107 parameter at its default (Ro - Is = 93.2): a
/// perfect narrowband call.
const R_DEFAULT: f64 = 93.2;

/// How a codec stands up to packet loss: its equipment impairment Ie and
/// its packet-loss robustness Bpl (ITU-T G.113 appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Ie: impairment with no loss.
    pub ie: f64,
    /// Bpl: the larger, the better the codec conceals loss.
    pub bpl: f64,
}

impl CodecImpairment {
    /// The figures for `codec` (an SDP encoding name, any case).
    ///
    /// G.711 with packet-loss concealment: Ie 0, Bpl 25.1 (G.113 I.2);
    /// G.729A with VAD: Ie 11, Bpl 19.0 (G.113 I.2). G.113 has no
    /// narrowband figures for Opus or G.722: both are at least as clear as
    /// G.711 on the narrowband scale (Ie 0), and are given G.711's Bpl,
    /// which undersells Opus's in-band FEC (a conservative estimate).
    /// Unknown codecs get G.711's figures too.
    pub fn of(codec: &str) -> CodecImpairment {
        match codec.to_ascii_uppercase().as_str() {
            "G729" => CodecImpairment {
                ie: 11.0,
                bpl: 19.0,
            },
            _ => CodecImpairment { ie: 0.0, bpl: 25.1 },
        }
    }
}

/// What the estimate is worked out from, for one direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conditions {
    /// Mouth-to-ear delay, in ms.
    pub one_way_delay_ms: f64,
    /// Packets lost, in percent (0 to 100).
    pub loss_percent: f64,
}

/// The R-factor (0 to 100).
pub fn r_factor(c: Conditions, codec: CodecImpairment) -> f64 {
    let d = c.one_way_delay_ms.max(0.0);
    // Id, Cole and Rosenbluth's fit of G.107's delay impairment (Idd with
    // echo well cancelled): a slope, and a steeper one past 177.3 ms.
    let id = 0.024 * d + 0.11 * (d - 177.3).max(0.0);
    // Ie-eff (G.107 eq. 7-29) with random loss (BurstR = 1).
    // A NaN reads as no loss instead of spreading into the score.
    let ppl = match c.loss_percent {
        p if p.is_nan() => 0.0,
        p => p.clamp(0.0, 100.0),
    };
    let ie_eff = codec.ie + (95.0 - codec.ie) * ppl / (ppl + codec.bpl);
    (R_DEFAULT - id - ie_eff).clamp(0.0, 100.0)
}

/// The MOS (conversational quality, CQE) for `r` (G.107 annex B, B-4).
pub fn mos(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        return 1.0;
    }
    if r >= 100.0 {
        return 4.5;
    }
    let m = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;
    m.clamp(1.0, 4.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(codec: &str, delay: f64, loss: f64) -> (f64, f64) {
        let c = Conditions {
            one_way_delay_ms: delay,
            loss_percent: loss,
        };
        let r = r_factor(c, CodecImpairment::of(codec));
        (r, mos(r))
    }

    #[test]
    fn a_clean_g711_call_is_near_the_top() {
        let (r, m) = estimate("PCMU", 0.0, 0.0);
        assert!((r - 93.2).abs() < 1e-9);
        assert!((4.40..=4.42).contains(&m), "{m}");
        // A little delay (a jitter buffer, a LAN) costs almost nothing.
        let (_, m) = estimate("pcma", 40.0, 0.0);
        assert!(m > 4.35, "{m}");
    }

    #[test]
    fn loss_brings_the_score_down() {
        let (_, clean) = estimate("opus", 40.0, 0.0);
        let (_, five) = estimate("opus", 40.0, 5.0);
        let (_, ten) = estimate("opus", 40.0, 10.0);
        assert!(five < clean - 0.4, "{clean} -> {five}");
        assert!(ten < five - 0.3, "{five} -> {ten}");
        // 5 % on G.711: Ie-eff = 95 * 5 / 30.1 = 15.8, R = 77.4.
        let (r, m) = estimate("PCMU", 0.0, 5.0);
        assert!((r - 77.42).abs() < 0.01, "{r}");
        assert!((3.85..=3.95).contains(&m), "{m}");
    }

    #[test]
    fn long_delay_hurts_more_past_177_ms() {
        let (r150, _) = estimate("PCMU", 150.0, 0.0);
        let (r300, _) = estimate("PCMU", 300.0, 0.0);
        assert!((r150 - (93.2 - 3.6)).abs() < 1e-9);
        assert!(r150 - r300 > 0.024 * 150.0 + 10.0, "{r150} {r300}");
    }

    #[test]
    fn the_ends_of_the_scale_are_held() {
        assert_eq!(mos(-5.0), 1.0);
        assert_eq!(mos(0.0), 1.0);
        assert_eq!(mos(120.0), 4.5);
        let (r, m) = estimate("G729", 2000.0, 100.0);
        assert_eq!((r, m), (0.0, 1.0));
        let (r, _) = estimate("PCMU", -10.0, -3.0);
        assert!((r - 93.2).abs() < 1e-9, "odd input reads as none");
        assert_eq!(mos(f64::NAN), 1.0);
    }
}
