//! The stranger budget: a token bucket of failed packets from SSRCs that
//! never authenticated. Time is passed in.

use std::time::{Duration, Instant};

/// Tokens left, refilled at a fixed rate up to the full budget.
#[derive(Debug, Clone)]
pub(super) struct Strangers {
    left: u32,
    full: u32,
    /// Time one token takes to come back.
    per_token: Duration,
    /// Refill credited up to here; `None` until the first refill.
    since: Option<Instant>,
}

impl Strangers {
    pub(super) fn new(full: u32, per_sec: u32) -> Self {
        Strangers {
            left: full,
            full,
            per_token: Duration::from_secs(1) / per_sec.max(1),
            since: None,
        }
    }

    /// Whether no stranger may be tried now.
    pub(super) fn spent(&self) -> bool {
        self.left == 0
    }

    /// One failed packet from a stranger.
    pub(super) fn charge(&mut self) {
        self.left = self.left.saturating_sub(1);
    }

    /// Credit the tokens earned since the last refill. A full bucket only
    /// moves its clock, so the common case costs a compare.
    pub(super) fn refill(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        if self.left >= self.full {
            self.since = Some(now);
            return;
        }
        let elapsed = now.saturating_duration_since(since);
        let earned = elapsed.as_nanos() / self.per_token.as_nanos().max(1);
        if earned == 0 {
            return;
        }
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        self.left = self.left.saturating_add(earned).min(self.full);
        // Keep the remainder: tokens accrue at the rate, not per call.
        self.since = Some(since + self.per_token * earned.min(self.full));
        if self.left >= self.full {
            self.since = Some(now);
        }
    }

    #[cfg(test)]
    pub(super) fn left(&self) -> u32 {
        self.left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_bucket_refills_at_its_rate_up_to_full() {
        let t0 = Instant::now();
        let mut b = Strangers::new(4, 2);
        b.refill(t0);
        for _ in 0..10 {
            b.charge();
        }
        assert!(b.spent());
        b.refill(t0 + Duration::from_millis(400));
        assert!(b.spent(), "less than one token's time");
        b.refill(t0 + Duration::from_millis(600));
        assert_eq!(b.left(), 1);
        // The 100 ms past the first token still count toward the second.
        b.refill(t0 + Duration::from_millis(1000));
        assert_eq!(b.left(), 2);
        b.refill(t0 + Duration::from_secs(60));
        assert_eq!(b.left(), 4, "never past full");
        // A full bucket does not bank time: spending after a long quiet
        // spell starts the refill clock afresh.
        b.charge();
        b.refill(t0 + Duration::from_secs(60) + Duration::from_millis(100));
        assert_eq!(b.left(), 3);
    }

    #[test]
    fn time_going_backwards_changes_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Strangers::new(4, 2);
        b.refill(t0);
        b.charge();
        b.refill(t0 - Duration::from_secs(5));
        assert_eq!(b.left(), 3);
    }
}
