//! Media timeout: a call whose SIP peer or browser has sent nothing for
//! `limits.media_timeout_secs` is reported once. Checked from the loop's
//! periodic flush against the per-call packet counts the hot path keeps
//! anyway, so it costs no timer, clock read or branch per packet.

use std::time::{Duration, Instant};

use super::counters::CallStats;

/// Which side went silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilentSide {
    /// Nothing from the browser.
    WebRtc,
    /// Nothing from the SIP peer.
    Sip,
}

impl SilentSide {
    /// For reasons and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SilentSide::WebRtc => "webrtc",
            SilentSide::Sip => "sip",
        }
    }
}

/// One call's media liveness.
#[derive(Debug)]
pub(super) struct Liveness {
    timeout: Option<Duration>,
    armed: bool,
    fired: bool,
    /// Last change of each side's count: (from browser, from SIP).
    last: (Instant, Instant),
    seen: (u64, u64),
}

impl Liveness {
    /// `timeout` of `None` never fires.
    pub fn new(timeout: Option<Duration>, now: Instant) -> Self {
        Liveness {
            timeout,
            armed: false,
            fired: false,
            last: (now, now),
            seen: (0, 0),
        }
    }

    /// Start counting (the SIP side has answered): both sides get a full
    /// timeout from `now` to start sending.
    pub fn arm(&mut self, now: Instant) {
        if !self.armed {
            self.armed = true;
            self.last = (now, now);
        }
    }

    /// On hold silence is expected: stop counting; off hold, both sides get
    /// a full timeout from `now` again.
    pub fn hold(&mut self, held: bool, now: Instant) {
        if self.armed == held {
            self.armed = !held;
            self.last = (now, now);
        }
    }

    /// Fold in the call's counts at `now`; the side that has been silent for
    /// the timeout, reported once.
    pub fn check(&mut self, stats: &CallStats, now: Instant) -> Option<SilentSide> {
        let timeout = self.timeout.filter(|_| self.armed && !self.fired)?;
        if stats.to_sip_packets != self.seen.0 {
            self.seen.0 = stats.to_sip_packets;
            self.last.0 = now;
        }
        if stats.to_webrtc_packets != self.seen.1 {
            self.seen.1 = stats.to_webrtc_packets;
            self.last.1 = now;
        }
        let silent = if now.duration_since(self.last.1) >= timeout {
            SilentSide::Sip
        } else if now.duration_since(self.last.0) >= timeout {
            SilentSide::WebRtc
        } else {
            return None;
        };
        self.fired = true;
        Some(silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(from_browser: u64, from_sip: u64) -> CallStats {
        CallStats {
            to_sip_packets: from_browser,
            to_webrtc_packets: from_sip,
            ..CallStats::default()
        }
    }

    #[test]
    fn fires_once_for_the_side_that_went_silent() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut l = Liveness::new(Some(Duration::from_secs(10)), t0);
        // Not armed: a ringing call is the ring timer's business.
        assert_eq!(l.check(&stats(0, 0), s(60)), None);
        l.arm(s(60));
        assert_eq!(l.check(&stats(5, 5), s(65)), None);
        assert_eq!(l.check(&stats(9, 5), s(74)), None);
        assert_eq!(l.check(&stats(12, 5), s(75)), Some(SilentSide::Sip));
        assert_eq!(l.check(&stats(12, 5), s(99)), None, "reported once");
    }

    #[test]
    fn a_silent_browser_is_named_and_traffic_keeps_calls_alive() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut l = Liveness::new(Some(Duration::from_secs(10)), t0);
        l.arm(t0);
        for i in 1..30 {
            assert_eq!(l.check(&stats(i, i), s(i)), None);
        }
        assert_eq!(l.check(&stats(29, 40), s(39)), Some(SilentSide::WebRtc));
    }

    #[test]
    fn no_timeout_never_fires() {
        let t0 = Instant::now();
        let mut l = Liveness::new(None, t0);
        l.arm(t0);
        assert_eq!(l.check(&stats(0, 0), t0 + Duration::from_secs(86400)), None);
    }
}
