//! Candidates a client trickles for a call it has not placed yet. A
//! browser gathers as soon as `setLocalDescription` runs, so its first
//! `candidate` messages can overtake the `call` that carries the offer
//! when the page sends them from separate handlers. They are held briefly
//! and handed to the call when its `call` arrives; a call id that never
//! gets one earns `unknown_call` after `WAIT`.

use std::time::{Duration, Instant};

use super::messages::IceCandidate;

/// How long candidates wait for their `call`.
pub const WAIT: Duration = Duration::from_secs(10);
/// Call ids held at once per socket; more get `unknown_call` at once.
pub const MAX_CALLS: usize = 4;
/// Candidates held per call id (a browser has a handful per interface).
pub const MAX_CANDIDATES: usize = 32;

/// Why a candidate could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `MAX_CALLS` call ids are already waiting.
    Calls,
    /// This call id already holds `MAX_CANDIDATES`.
    Candidates,
}

struct Waiting {
    call_id: String,
    candidates: Vec<Option<IceCandidate>>,
    since: Instant,
}

/// The candidates waiting for their calls, on one socket.
#[derive(Default)]
pub struct EarlyCandidates {
    waiting: Vec<Waiting>,
}

impl EarlyCandidates {
    /// Hold `candidate` (`None`: end of candidates) for `call_id`.
    pub fn hold(
        &mut self,
        call_id: &str,
        candidate: Option<IceCandidate>,
        now: Instant,
    ) -> Result<(), Full> {
        if let Some(w) = self.waiting.iter_mut().find(|w| w.call_id == call_id) {
            if w.candidates.len() >= MAX_CANDIDATES {
                return Err(Full::Candidates);
            }
            w.candidates.push(candidate);
            return Ok(());
        }
        if self.waiting.len() >= MAX_CALLS {
            return Err(Full::Calls);
        }
        self.waiting.push(Waiting {
            call_id: call_id.to_owned(),
            candidates: vec![candidate],
            since: now,
        });
        Ok(())
    }

    /// The candidates held for `call_id`, in arrival order (its `call` came).
    pub fn take(&mut self, call_id: &str) -> Vec<Option<IceCandidate>> {
        match self.waiting.iter().position(|w| w.call_id == call_id) {
            Some(i) => self.waiting.remove(i).candidates,
            None => Vec::new(),
        }
    }

    /// Forget call ids that waited `WAIT` without a `call`; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let (gone, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| now.duration_since(w.since) >= WAIT);
        self.waiting = kept;
        gone.into_iter().map(|w: Waiting| w.call_id).collect()
    }

    /// When the oldest waiting call id expires.
    pub fn deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.since + WAIT).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: u32) -> Option<IceCandidate> {
        Some(IceCandidate {
            candidate: format!("candidate:{n} 1 udp 2122260223 127.0.0.1 5{n:04} typ host"),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        })
    }

    #[test]
    fn candidates_wait_for_their_call_in_order() {
        let t0 = Instant::now();
        let mut e = EarlyCandidates::default();
        e.hold("c1", cand(1), t0).unwrap();
        e.hold("c2", cand(9), t0).unwrap();
        e.hold("c1", None, t0).unwrap();
        assert_eq!(e.take("c1"), vec![cand(1), None]);
        assert!(e.take("c1").is_empty(), "taken once");
        assert_eq!(e.take("c2"), vec![cand(9)]);
        assert_eq!(e.deadline(), None);
    }

    #[test]
    fn the_holding_is_bounded() {
        let t0 = Instant::now();
        let mut e = EarlyCandidates::default();
        for i in 0..MAX_CALLS {
            e.hold(&format!("c{i}"), cand(1), t0).unwrap();
        }
        assert_eq!(e.hold("one-more", cand(1), t0), Err(Full::Calls));
        for _ in 1..MAX_CANDIDATES {
            e.hold("c0", cand(2), t0).unwrap();
        }
        assert_eq!(e.hold("c0", cand(3), t0), Err(Full::Candidates));
    }

    #[test]
    fn call_ids_without_a_call_expire_after_the_wait() {
        let t0 = Instant::now();
        let mut e = EarlyCandidates::default();
        e.hold("old", cand(1), t0).unwrap();
        e.hold("new", cand(1), t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(e.deadline(), Some(t0 + WAIT));
        assert!(e.expire(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(e.expire(t0 + WAIT), vec!["old".to_string()]);
        assert_eq!(e.deadline(), Some(t0 + Duration::from_secs(15)));
        assert_eq!(e.take("new"), vec![cand(1)]);
    }
}
