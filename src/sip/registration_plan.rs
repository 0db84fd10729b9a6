//! When to send the next REGISTER: refresh timing, failure backoff and the
//! 423 Interval Too Brief rule, as pure functions of replies and instants so
//! they are tested without a network or a clock.

use std::time::Duration;

use tokio::time::Instant;

use super::registration::RegistrationState;

/// Refresh no later than this before the binding expires, so a refresh that
/// needs a digest round trip and a retransmission or two still lands in time.
const REFRESH_MARGIN: Duration = Duration::from_secs(10);
/// First retry delay after a failure; doubles with each further failure.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay from backoff alone.
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Longest Retry-After honoured, so a registrar cannot park a user for days.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);
/// Largest jitter, in thousandths of a delay taken off it. When a PBX
/// restarts, every user's registration fails at once: without jitter they
/// would all retry (and later refresh) in the same instant, forever.
pub(super) const MAX_JITTER_PERMILLE: u32 = 250;

/// How one REGISTER exchange ended (digest already answered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// 2xx: the binding lives for `granted` seconds.
    Ok {
        /// Granted expiry in seconds.
        granted: u32,
    },
    /// 423 Interval Too Brief, with the registrar's Min-Expires if it sent one.
    TooBrief {
        /// Min-Expires value.
        min_expires: Option<u32>,
    },
    /// Any other final outcome; timeouts arrive as 408.
    Failed {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
        /// Retry-After in seconds, if the registrar sent one.
        retry_after: Option<u32>,
    },
}

/// What to do after a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Step {
    /// New state to publish; `None` keeps the current one.
    pub state: Option<RegistrationState>,
    /// When to send the next REGISTER.
    pub next: Instant,
}

/// The registration's schedule: requested expiry and consecutive failures.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    /// Expiry to request in the next REGISTER, in seconds.
    pub expires: u32,
    failures: u32,
    jitter_permille: u32,
}

impl Plan {
    /// A plan requesting `expires` seconds, without jitter.
    #[cfg(test)]
    pub fn new(expires: u32) -> Plan {
        Plan::with_jitter(expires, 0)
    }

    /// A plan whose refresh and retry delays are shortened by
    /// `jitter_permille` thousandths (at most `MAX_JITTER_PERMILLE`); each
    /// registration draws its own so a crowd spreads out.
    pub fn with_jitter(expires: u32, jitter_permille: u32) -> Plan {
        Plan {
            expires,
            failures: 0,
            jitter_permille: jitter_permille.min(MAX_JITTER_PERMILLE),
        }
    }

    fn jittered(&self, delay: Duration) -> Duration {
        delay * (1000 - self.jitter_permille) / 1000
    }

    /// Fold in the reply, received at `now`, to a REGISTER sent at `sent`.
    /// Refreshes count from the send (the registrar starts the binding's
    /// clock when the request arrives); retries count from the reply, as a
    /// timeout has already taken its time.
    pub fn on_reply(&mut self, reply: Reply, sent: Instant, now: Instant) -> Step {
        match reply {
            Reply::Ok { granted } if granted > 0 => {
                self.failures = 0;
                Step {
                    state: Some(RegistrationState::Registered { expires: granted }),
                    next: sent + self.jittered(refresh_delay(granted)),
                }
            }
            // A 2xx granting nothing leaves no binding: retrying at once
            // would loop, so it is a failure like any other.
            Reply::Ok { .. } => self.fail(200, "no binding granted".into(), None, now),
            Reply::TooBrief {
                min_expires: Some(min),
            } if min > self.expires => {
                self.expires = min;
                Step {
                    state: None,
                    next: sent,
                }
            }
            // 423 without a Min-Expires above what we asked for cannot be
            // satisfied by asking again.
            Reply::TooBrief { .. } => self.fail(423, "Interval Too Brief".into(), None, now),
            Reply::Failed {
                code,
                reason,
                retry_after,
            } => self.fail(code, reason, retry_after, now),
        }
    }

    fn fail(&mut self, code: u16, reason: String, retry_after: Option<u32>, now: Instant) -> Step {
        self.failures = self.failures.saturating_add(1);
        let asked = Duration::from_secs(u64::from(retry_after.unwrap_or(0))).min(RETRY_AFTER_CAP);
        // A registrar's Retry-After is a floor: jitter only shortens backoff.
        let wait = self.jittered(backoff(self.failures)).max(asked);
        Step {
            state: Some(RegistrationState::Failed {
                code,
                reason,
                retry_in: wait,
            }),
            next: now + wait,
        }
    }
}

/// Delay from sending a REGISTER to refreshing it, for a granted expiry:
/// at 80% of the grant, but no later than the grant less a margin; grants
/// too short for that margin refresh at half their time instead.
pub(super) fn refresh_delay(granted: u32) -> Duration {
    let granted = Duration::from_secs(u64::from(granted));
    let at_80 = granted * 4 / 5;
    let before_margin = granted.saturating_sub(REFRESH_MARGIN);
    at_80.min(before_margin).max(granted / 2)
}

/// Exponential backoff after `failures` consecutive failures (1: 2 s, 2: 4 s,
/// ... capped at 300 s).
pub(super) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE * 2u32.pow(doublings)).min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn failed(code: u16) -> Reply {
        Reply::Failed {
            code,
            reason: "x".into(),
            retry_after: None,
        }
    }

    #[test]
    fn refresh_at_80_percent_for_long_grants() {
        assert_eq!(refresh_delay(300), secs(240));
        assert_eq!(refresh_delay(3600), secs(2880));
    }

    #[test]
    fn refresh_keeps_the_margin_for_medium_grants() {
        assert_eq!(refresh_delay(30), secs(20));
        assert_eq!(refresh_delay(40), secs(30));
    }

    #[test]
    fn refresh_at_half_for_grants_shorter_than_twice_the_margin() {
        assert_eq!(refresh_delay(12), secs(6));
        assert_eq!(refresh_delay(2), secs(1));
        assert_eq!(refresh_delay(1), Duration::from_millis(500));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let got: Vec<_> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), secs(300));
    }

    fn retry_after(after: u32) -> Reply {
        Reply::Failed {
            code: 503,
            reason: "x".into(),
            retry_after: Some(after),
        }
    }

    #[test]
    fn retry_after_stretches_but_is_capped() {
        let t0 = Instant::now();
        let mut plan = Plan::new(300);
        assert_eq!(plan.on_reply(retry_after(30), t0, t0).next, t0 + secs(30));
        plan.on_reply(failed(500), t0, t0);
        assert_eq!(plan.on_reply(retry_after(1), t0, t0).next, t0 + secs(8));
        let capped = plan.on_reply(retry_after(u32::MAX), t0, t0).next;
        assert_eq!(capped, t0 + secs(3600));
    }

    #[test]
    fn jitter_shortens_refreshes_and_backoff_but_not_retry_after() {
        let t0 = Instant::now();
        let mut plan = Plan::with_jitter(300, 100);
        let ok = plan.on_reply(Reply::Ok { granted: 300 }, t0, t0);
        assert_eq!(ok.next, t0 + secs(216), "240 s less 10%");
        let retry = plan.on_reply(failed(503), t0, t0);
        assert_eq!(retry.next, t0 + Duration::from_millis(1800), "2 s less 10%");
        assert_eq!(plan.on_reply(retry_after(30), t0, t0).next, t0 + secs(30));
        let wild = Plan::with_jitter(300, 900).jittered(secs(100));
        assert_eq!(wild, secs(75), "jitter is capped at 25%");
    }

    #[test]
    fn success_schedules_refresh_from_the_send() {
        let t0 = Instant::now();
        let mut plan = Plan::new(300);
        let step = plan.on_reply(Reply::Ok { granted: 120 }, t0, t0 + secs(1));
        assert_eq!(
            step.state,
            Some(RegistrationState::Registered { expires: 120 })
        );
        assert_eq!(step.next, t0 + secs(96));
    }

    #[test]
    fn retry_counts_from_the_reply() {
        let t0 = Instant::now();
        let step = Plan::new(300).on_reply(failed(408), t0, t0 + secs(32));
        assert_eq!(step.next, t0 + secs(34));
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let t0 = Instant::now();
        let mut plan = Plan::new(300);
        for want in [2, 4, 8] {
            let step = plan.on_reply(failed(403), t0, t0);
            let Some(RegistrationState::Failed { code, retry_in, .. }) = step.state else {
                panic!("{step:?}");
            };
            assert_eq!((code, retry_in), (403, secs(want)));
            assert_eq!(step.next, t0 + secs(want));
        }
        plan.on_reply(Reply::Ok { granted: 60 }, t0, t0);
        let step = plan.on_reply(failed(408), t0, t0);
        assert!(matches!(
            step.state,
            Some(RegistrationState::Failed { retry_in, .. }) if retry_in == secs(2)
        ));
    }

    #[test]
    fn too_brief_retries_at_once_with_min_expires() {
        let t0 = Instant::now();
        let mut plan = Plan::new(300);
        let step = plan.on_reply(
            Reply::TooBrief {
                min_expires: Some(600),
            },
            t0,
            t0,
        );
        assert_eq!(
            step,
            Step {
                state: None,
                next: t0
            }
        );
        assert_eq!(plan.expires, 600);
    }

    #[test]
    fn too_brief_that_cannot_be_met_is_a_failure() {
        let t0 = Instant::now();
        let mut plan = Plan::new(600);
        for min_expires in [None, Some(600), Some(60)] {
            let step = plan.on_reply(Reply::TooBrief { min_expires }, t0, t0);
            assert!(
                matches!(
                    step.state,
                    Some(RegistrationState::Failed { code: 423, .. })
                ),
                "{step:?}"
            );
        }
        assert_eq!(plan.expires, 600);
    }

    #[test]
    fn zero_grant_is_a_failure_not_a_tight_loop() {
        let t0 = Instant::now();
        let step = Plan::new(300).on_reply(Reply::Ok { granted: 0 }, t0, t0);
        assert_eq!(step.next, t0 + secs(2));
        assert!(matches!(
            step.state,
            Some(RegistrationState::Failed { code: 200, .. })
        ));
    }
}
