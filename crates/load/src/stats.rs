//! Counters every load call updates without locks: packet counts and a
//! latency histogram with log-spaced buckets (about 4 % wide), read by the
//! orchestrator as differences between two snapshots.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::stamp::Stamps;

/// Buckets per factor of two: bucket width is 2^(1/16), about 4.4 %.
const PER_OCTAVE: usize = 16;
/// 1 µs .. 2^28 µs (about 4.5 minutes).
const OCTAVES: usize = 28;
const BUCKETS: usize = PER_OCTAVE * OCTAVES + 1;

/// Round-trip times in microseconds.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            dropped_calls: AtomicU64::new(0),
            jitter_sum_us: AtomicU64::new(0),
            rtt: Histogram::default(),
            to_sip: Histogram::default(),
            to_browser: Histogram::default(),
            echo_hold: Histogram::default(),
            // Closed until the first window opens.
            window_start_us: AtomicU64::new(u64::MAX),
            window_end_us: AtomicU64::new(u64::MAX),
            window_sent: AtomicU64::new(0),
            window_back: AtomicU64::new(0),
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    let log2 = (us as f64).log2();
    ((log2 * PER_OCTAVE as f64) as usize + 1).min(BUCKETS - 1)
}

/// The upper edge of bucket `i`, in microseconds.
fn upper_us(i: usize) -> f64 {
    if i == 0 {
        1.0
    } else {
        2f64.powf(i as f64 / PER_OCTAVE as f64)
    }
}

impl Histogram {
    /// Count one sample.
    pub fn record(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
    }

    /// The counts now, to subtract from a later snapshot.
    pub fn snapshot(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }
}

/// Quantiles of the samples recorded between two snapshots.
#[derive(Debug, Clone)]
pub struct Window {
    counts: Vec<u64>,
    total: u64,
}

impl Window {
    /// What was recorded from `before` to `after`.
    pub fn between(before: &[u64], after: &[u64]) -> Window {
        let counts: Vec<u64> = after
            .iter()
            .zip(before)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let total = counts.iter().sum();
        Window { counts, total }
    }

    /// Samples in the window.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) in milliseconds: the upper edge of the
    /// bucket that holds it (0 with no samples).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_us(i) / 1000.0;
            }
        }
        upper_us(BUCKETS - 1) / 1000.0
    }

    /// p50, p99 and p99.9 in milliseconds.
    pub fn tails_ms(&self) -> (f64, f64, f64) {
        (
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
        )
    }
}

/// Packet counts of every browser in a run.
pub struct Counters {
    /// RTP packets the browsers sent.
    pub sent: AtomicU64,
    /// Echoed packets that came back and carried our stamp.
    pub received: AtomicU64,
    /// Packets that failed SRTP or were not ours.
    pub bad: AtomicU64,
    /// Calls siphon ended while they streamed.
    pub dropped_calls: AtomicU64,
    /// Sum over received packets of the RFC 3550 jitter estimate, in µs,
    /// for a mean jitter over a window.
    pub jitter_sum_us: AtomicU64,
    /// Round trips, browser -> siphon -> UAS -> siphon -> browser, from
    /// the browser's send stamp to its task reading the echo.
    pub rtt: Histogram,
    /// Each pass through siphon, kernel to kernel (see `stamp`), and the
    /// time the echo held each packet.
    pub to_sip: Histogram,
    /// UAS -> browser passes.
    pub to_browser: Histogram,
    /// How long the echo held each packet.
    pub echo_hold: Histogram,
    /// The measured window, in µs since the epoch (end `u64::MAX` while
    /// open): packets stamped inside it are counted below, wherever the
    /// window's edges fall among packets in flight.
    pub window_start_us: AtomicU64,
    /// The window's end (`u64::MAX` while open).
    pub window_end_us: AtomicU64,
    /// Packets sent stamped in the window, and those of them that came back.
    pub window_sent: AtomicU64,
    /// Of those, the packets that came back.
    pub window_back: AtomicU64,
}

impl Counters {
    /// Whether a packet stamped `us` belongs to the window.
    pub fn in_window(&self, us: u64) -> bool {
        us >= self.window_start_us.load(Relaxed) && us < self.window_end_us.load(Relaxed)
    }

    /// Open a fresh window at `us`.
    pub fn open_window(&self, us: u64) {
        self.window_sent.store(0, Relaxed);
        self.window_back.store(0, Relaxed);
        self.window_end_us.store(u64::MAX, Relaxed);
        self.window_start_us.store(us, Relaxed);
    }

    /// Close the window at `us`: later stamps no longer count.
    pub fn close_window(&self, us: u64) {
        self.window_end_us.store(us, Relaxed);
    }

    /// Count the passes of an echo the kernel received at `kernel_rx`
    /// (nothing for an echo that does not stamp).
    pub fn record_passes(&self, stamps: &Stamps, kernel_rx: u64) {
        if let (Some(to_sip), Some(hold), Some(to_browser)) = (
            stamps.to_sip_us(),
            stamps.echo_hold_us(),
            stamps.to_browser_us(kernel_rx),
        ) {
            self.to_sip.record(to_sip);
            self.echo_hold.record(hold);
            self.to_browser.record(to_browser);
        }
    }
}

/// A copy of `Counters` at one instant.
#[derive(Debug, Clone, Default)]
pub struct CountersSnapshot {
    /// RTP sent.
    pub sent: u64,
    /// RTP back.
    pub received: u64,
    /// Packets back that failed SRTP or were not ours.
    pub bad: u64,
    /// Sum of the streams' jitter, in µs.
    pub jitter_sum_us: u64,
    /// Round trips, in µs.
    pub rtt: Vec<u64>,
    /// Browser -> UAS passes, in µs.
    pub to_sip: Vec<u64>,
    /// UAS -> browser passes, in µs.
    pub to_browser: Vec<u64>,
    /// Echo hold times, in µs.
    pub echo_hold: Vec<u64>,
}

impl Counters {
    /// Read every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            sent: self.sent.load(Relaxed),
            received: self.received.load(Relaxed),
            bad: self.bad.load(Relaxed),
            jitter_sum_us: self.jitter_sum_us.load(Relaxed),
            rtt: self.rtt.snapshot(),
            to_sip: self.to_sip.snapshot(),
            to_browser: self.to_browser.snapshot(),
            echo_hold: self.echo_hold.snapshot(),
        }
    }
}

/// RFC 3550 A.8 interarrival jitter of one stream, in microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Jitter {
    last_transit: Option<i64>,
    estimate: f64,
}

impl Jitter {
    /// A packet stamped `sent_us` arrived at `now_us`; the new estimate.
    pub fn update(&mut self, sent_us: u64, now_us: u64) -> f64 {
        let transit = now_us as i64 - sent_us as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            self.estimate += (d - self.estimate) / 16.0;
        }
        self.last_transit = Some(transit);
        self.estimate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_within_a_bucket() {
        let h = Histogram::default();
        let before = h.snapshot();
        for us in 1..=1000u64 {
            h.record(us * 10);
        }
        let w = Window::between(&before, &h.snapshot());
        assert_eq!(w.count(), 1000);
        for (q, want_ms) in [(0.5, 5.0), (0.99, 9.9), (0.999, 9.99)] {
            let got = w.quantile_ms(q);
            assert!(
                got >= want_ms && got <= want_ms * 1.05,
                "q{q}: {got} vs {want_ms}"
            );
        }
        assert_eq!(Window::between(&before, &before).quantile_ms(0.5), 0.0);
    }

    #[test]
    fn a_window_holds_only_its_own_samples() {
        let h = Histogram::default();
        h.record(100_000);
        let before = h.snapshot();
        h.record(500);
        let w = Window::between(&before, &h.snapshot());
        assert_eq!(w.count(), 1);
        assert!(w.quantile_ms(1.0) < 0.53);
    }

    #[test]
    fn jitter_follows_rfc_3550() {
        let mut j = Jitter::default();
        assert_eq!(j.update(0, 1000), 0.0);
        // Every packet 160 µs later than the one before relative to its stamp.
        let mut est = 0.0;
        for i in 1..200u64 {
            est = j.update(i * 20_000, i * 20_000 + 1000 + 160 * (i % 2));
        }
        assert!(est > 100.0 && est < 170.0, "{est}");
    }
}
