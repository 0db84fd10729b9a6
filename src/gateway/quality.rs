//! A call's quality on the control plane: a `quality` message to the
//! browser every `media.quality_interval_secs` while the call is answered,
//! read from its relay loop; and the figures at the end, for the call's
//! record and the quality histograms. The figures themselves are worked
//! out by `media::quality`.

use std::time::Duration;

use tokio::time::Instant;

use super::midcall::Resources;
use super::Inner;
use crate::call::Command;
use crate::media::quality::{figures, Figures, QualitySnapshot};
use crate::metrics::way;
use crate::records::{Quality, QualityPair};
use crate::signaling::{DirectionQuality, QualityReport, ServerMessage, SessionId};

/// When the next `quality` message is due, and to which session.
pub(super) struct QualityReports {
    /// `None`: reports are off.
    every: Option<Duration>,
    next: Option<Instant>,
    /// The session that has the answered call.
    session: Option<SessionId>,
}

impl QualityReports {
    pub(super) fn new(gw: &Inner) -> QualityReports {
        let secs = gw.config.media.quality_interval_secs;
        QualityReports {
            every: (secs > 0).then(|| Duration::from_secs(secs)),
            next: None,
            session: None,
        }
    }

    /// The driver carries out `cmd`: the session that answers (inbound)
    /// or is told of the answer (outbound) gets the reports.
    pub(super) fn saw(&mut self, cmd: &Command) {
        match cmd {
            Command::Answer(session, _)
            | Command::Send(session, ServerMessage::Answered { .. }) => {
                self.session.get_or_insert(*session);
            }
            _ => {}
        }
    }

    /// Whether reports go out now: on, and the call answered by a session.
    pub(super) fn wanted(&self, answered: bool) -> bool {
        answered && self.every.is_some() && self.session.is_some()
    }

    /// Ready when the next report is due: one interval after the first
    /// wait, then every interval. Cancel-safe: the deadline is kept.
    pub(super) async fn due(&mut self) {
        let Some(every) = self.every else {
            return std::future::pending().await;
        };
        let next = *self.next.get_or_insert_with(|| Instant::now() + every);
        tokio::time::sleep_until(next).await;
        self.next = Some(next + every);
    }

    /// The message for the call on `res` from its relay's figures now,
    /// and the session it goes to.
    pub(super) async fn report(
        &self,
        gw: &Inner,
        res: &Resources,
        call_id: &str,
        codec: &str,
    ) -> Option<(SessionId, ServerMessage)> {
        let session = self.session?;
        // The loop answers at its next counter flush (half a second); a
        // loop that cannot is skipped this time rather than waited for.
        let ask = gw.relays.get(res.relay).quality(res.leg);
        let snapshot = tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .ok()?
            .ok()?;
        let (to_browser, to_sip) = figures(&snapshot, codec);
        let report = QualityReport {
            call_id: call_id.to_owned(),
            to_browser: message_figures(&to_browser),
            to_sip: message_figures(&to_sip),
        };
        Some((session, ServerMessage::Quality(Box::new(report))))
    }
}

fn message_figures(f: &Figures) -> DirectionQuality {
    DirectionQuality {
        packets: f.received,
        lost: f.lost,
        loss: round(f.loss_ratio, 4),
        jitter_ms: round(f.jitter_ms, 1),
        rtt_ms: f.rtt_ms.map(|ms| round(ms, 1)),
        r: round(f.r, 1),
        mos: round(f.mos, 2),
    }
}

/// The call's figures at its end into its record (`quality`, whose
/// `packets` the relay's counts already set), and, for each direction
/// that carried media, into the quality histograms.
pub(crate) fn ended(gw: &Inner, q: &QualitySnapshot, codec: &str, record: &mut QualityPair) {
    let (to_browser, to_sip) = figures(q, codec);
    for (f, name, quality) in [
        (to_browser, way::TO_BROWSER, &mut record.to_browser),
        (to_sip, way::TO_SIP, &mut record.to_sip),
    ] {
        if !f.measured() {
            continue;
        }
        fill(quality, &f);
        let jitter_s = f.jitter_ms / 1000.0;
        gw.metrics
            .call_quality
            .observe(name, f.mos, f.loss_ratio, jitter_s);
    }
}

fn fill(q: &mut Quality, f: &Figures) {
    q.lost = Some(f.lost);
    q.jitter_ms = Some(round(f.jitter_ms, 1));
    q.rtt_ms = f.rtt_ms.map(|ms| round(ms, 1));
    q.mos = Some(round(f.mos, 2));
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_rounded_for_the_wire() {
        let f = Figures {
            received: 10,
            lost: 1,
            loss_ratio: 0.090_909,
            jitter_ms: 1.26,
            rtt_ms: Some(20.04),
            r: 80.123,
            mos: 4.0149,
        };
        let d = message_figures(&f);
        assert_eq!(
            (d.loss, d.jitter_ms, d.rtt_ms, d.r, d.mos),
            (0.0909, 1.3, Some(20.0), 80.1, 4.01)
        );
        let mut q = Quality::default();
        fill(&mut q, &f);
        assert_eq!((q.lost, q.mos), (Some(1), Some(4.01)));
    }
}
