//! Which trunk a call tries first, and when it moves on to the next: each
//! trunk's health from its OPTIONS pings, the order by priority and weight,
//! and the failures that fail over. Pure: ping results and random draws in,
//! states and orders out.

/// A trunk's health as its pings tell it. A trunk starts up: until its pings
/// say otherwise it is as good as any, and a gateway that has just started
/// must not refuse calls while the first pings are out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    up: bool,
    /// Results in a row that disagree with `up`.
    streak: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            up: true,
            streak: 0,
        }
    }
}

impl Health {
    /// Whether calls should go to the trunk.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// One ping's result; the new state when this one changed it: down after
    /// `down_after` failures in a row, up after `up_after` answers in a row.
    pub fn record(&mut self, answered: bool, down_after: u32, up_after: u32) -> Option<bool> {
        if answered == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { down_after } else { up_after };
        if self.streak < needed.max(1) {
            return None;
        }
        self.up = answered;
        self.streak = 0;
        Some(self.up)
    }
}

/// Whether a ping's outcome shows the trunk alive: any answer but 408 (no
/// answer: rsipstack's own timeout) or 503 (overloaded or draining). A PBX
/// that answers OPTIONS with 401, 404 or 405 is up; it just does not like
/// OPTIONS.
pub fn ping_answered(code: Option<u16>) -> bool {
    matches!(code, Some(c) if c != 408 && c != 503)
}

/// Whether a call that failed with `code` on one trunk goes on to the next:
/// no answer (408), unavailable (503, which siphon also reports for a
/// transport error). A code the callee chose (486, 404, 603 …) is final.
pub fn fails_over(code: u16) -> bool {
    matches!(code, 408 | 503)
}

/// What the choice needs to know of one trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Lower goes first.
    pub priority: u32,
    /// Share of the calls among its priority.
    pub weight: u32,
    /// Whether its pings say it is up.
    pub up: bool,
}

/// The order in which a call tries the trunks, as indexes into `trunks`:
/// those up first, then those down (a last resort: pings can be lost where
/// calls get through). Within each, by priority; within a priority, drawn
/// by weight. `draw(n)` returns a number in `0..n`.
pub fn order(trunks: &[Candidate], draw: &mut impl FnMut(u64) -> u64) -> Vec<usize> {
    let mut groups: Vec<(bool, u32)> = trunks.iter().map(|t| (!t.up, t.priority)).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut out = Vec::with_capacity(trunks.len());
    for (down, priority) in groups {
        let mut left: Vec<usize> = (0..trunks.len())
            .filter(|&i| trunks[i].up != down && trunks[i].priority == priority)
            .collect();
        while !left.is_empty() {
            let pick = weighted(&left, trunks, draw);
            out.push(left.remove(pick));
        }
    }
    out
}

/// The position in `left` drawn with odds by weight.
fn weighted(left: &[usize], trunks: &[Candidate], draw: &mut impl FnMut(u64) -> u64) -> usize {
    let weight = |i: usize| u64::from(trunks[i].weight.max(1));
    let total: u64 = left.iter().map(|&i| weight(i)).sum();
    let mut point = draw(total).min(total - 1);
    for (pos, &i) in left.iter().enumerate() {
        if point < weight(i) {
            return pos;
        }
        point -= weight(i);
    }
    left.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(priority: u32, weight: u32, up: bool) -> Candidate {
        Candidate {
            priority,
            weight,
            up,
        }
    }

    #[test]
    fn down_after_n_failures_in_a_row_and_up_after_m_answers() {
        let mut h = Health::default();
        assert!(h.is_up());
        assert_eq!(h.record(false, 3, 2), None);
        assert_eq!(h.record(false, 3, 2), None);
        // An answer in between starts the count again.
        assert_eq!(h.record(true, 3, 2), None);
        assert_eq!(h.record(false, 3, 2), None);
        assert_eq!(h.record(false, 3, 2), None);
        assert_eq!(h.record(false, 3, 2), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.record(false, 3, 2), None);
        assert_eq!(h.record(true, 3, 2), None);
        assert_eq!(h.record(false, 3, 2), None);
        assert_eq!(h.record(true, 3, 2), None);
        assert_eq!(h.record(true, 3, 2), Some(true));
        assert!(h.is_up());
    }

    #[test]
    fn pings_answered_with_an_error_still_show_the_trunk_alive() {
        assert!(ping_answered(Some(200)));
        assert!(ping_answered(Some(404)));
        assert!(ping_answered(Some(407)));
        assert!(!ping_answered(Some(408)));
        assert!(!ping_answered(Some(503)));
        assert!(!ping_answered(None));
    }

    #[test]
    fn only_no_answer_and_unavailable_fail_over() {
        assert!(fails_over(408));
        assert!(fails_over(503));
        for code in [404, 480, 486, 487, 500, 603] {
            assert!(!fails_over(code), "{code}");
        }
    }

    #[test]
    fn priority_first_then_the_down_ones_last() {
        let trunks = [
            trunk(2, 1, true),
            trunk(1, 1, false),
            trunk(1, 1, true),
            trunk(3, 1, true),
        ];
        assert_eq!(order(&trunks, &mut |_| 0), [2, 0, 3, 1]);
    }

    #[test]
    fn weights_share_the_first_place_among_one_priority() {
        let trunks = [trunk(1, 1, true), trunk(1, 3, true), trunk(2, 5, true)];
        let mut first = [0u32; 3];
        for point in 0..4 {
            let mut draws = [point, 0, 0].into_iter();
            let got = order(&trunks, &mut |n| draws.next().unwrap() % n);
            assert_eq!(got.len(), 3);
            assert_eq!(got[2], 2, "the lower priority stays last");
            first[got[0]] += 1;
        }
        // Points 0..4 over weights 1 and 3: one draw in four picks trunk 0.
        assert_eq!(first, [1, 3, 0]);
    }

    #[test]
    fn a_draw_out_of_range_still_yields_every_trunk_once() {
        let trunks = [trunk(1, 2, true), trunk(1, 2, true), trunk(1, 2, false)];
        let mut got = order(&trunks, &mut |_| u64::MAX);
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
        assert!(order(&[], &mut |_| 0).is_empty());
    }
}
