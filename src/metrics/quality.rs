//! The per-call quality families: one observation per direction of each
//! answered call that carried media, when it ends.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec};

/// `direction` label values of the quality families.
pub mod way {
    /// Media from the SIP side toward the browser.
    pub const TO_BROWSER: &str = "to_browser";
    /// Media from the browser toward the SIP side.
    pub const TO_SIP: &str = "to_sip";
}

/// The quality histograms, by direction.
#[derive(Clone)]
pub struct QualityMetrics {
    /// Estimated MOS (E-model) of each ended call.
    pub mos: HistogramVec,
    /// Fraction of packets lost in each ended call.
    pub loss_ratio: HistogramVec,
    /// Interarrival jitter of each ended call, in seconds.
    pub jitter_seconds: HistogramVec,
}

impl QualityMetrics {
    /// The families, with both directions' series present from the start
    /// (dashboards and alert rules name them before any call).
    pub(super) fn new() -> Self {
        let m = QualityMetrics {
            mos: histogram(
                "call_mos",
                "Estimated MOS (E-model) of ended calls, by direction",
                vec![1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5],
            ),
            loss_ratio: histogram(
                "call_loss_ratio",
                "Fraction of media packets lost in ended calls, by direction",
                vec![0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            ),
            jitter_seconds: histogram(
                "call_jitter_seconds",
                "Interarrival jitter (RFC 3550) of ended calls, by direction",
                vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32],
            ),
        };
        for way in [way::TO_BROWSER, way::TO_SIP] {
            for h in [&m.mos, &m.loss_ratio, &m.jitter_seconds] {
                h.with_label_values(&[way]);
            }
        }
        m
    }

    pub(super) fn collectors(&self) -> [Box<dyn Collector>; 3] {
        [
            Box::new(self.mos.clone()),
            Box::new(self.loss_ratio.clone()),
            Box::new(self.jitter_seconds.clone()),
        ]
    }

    /// One ended call's figures for `way` (a [`way`] value).
    pub fn observe(&self, way: &str, mos: f64, loss_ratio: f64, jitter_seconds: f64) {
        self.mos.with_label_values(&[way]).observe(mos);
        let loss = self.loss_ratio.with_label_values(&[way]);
        loss.observe(loss_ratio);
        let jitter = self.jitter_seconds.with_label_values(&[way]);
        jitter.observe(jitter_seconds);
    }
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    HistogramVec::new(opts, &["direction"]).expect("valid histogram")
}
