//! A sink's bounded queue as the calls see it, the sink's counters, and the
//! two stops every sink task obeys.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::IntCounter;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How a sink task is told to end.
#[derive(Clone, Default)]
pub(super) struct Stops {
    /// Take nothing new, write what is queued, then end.
    pub drain: CancellationToken,
    /// End now; what is queued is dropped and counted.
    pub stop: CancellationToken,
}

/// One sink's counters, resolved once rather than per record.
#[derive(Clone)]
pub(super) struct SinkCounters {
    /// `siphon_records_total{sink}`.
    pub written: IntCounter,
    /// `siphon_records_dropped_total{sink,reason="queue_full"}`.
    pub queue_full: IntCounter,
    /// `siphon_records_dropped_total{sink,reason="failed"}`.
    pub failed: IntCounter,
    /// `siphon_records_dropped_total{sink,reason="shutdown"}`.
    pub shutdown: IntCounter,
}

impl SinkCounters {
    /// The counters of `sink` (`file`, `webhook`).
    pub fn new(metrics: &Metrics, sink: &str) -> Self {
        let dropped = |reason| {
            metrics
                .records_dropped_total
                .with_label_values(&[sink, reason])
        };
        SinkCounters {
            written: metrics.records_total.with_label_values(&[sink]),
            queue_full: dropped("queue_full"),
            failed: dropped("failed"),
            shutdown: dropped("shutdown"),
        }
    }
}

/// The sending end of a sink's queue: offers never wait.
pub(super) struct Queue<T> {
    tx: mpsc::Sender<T>,
    /// The sink in log lines: `records.file` or a webhook's URL.
    name: String,
    counters: SinkCounters,
    /// Set while offers find the queue full, so that a streak of drops is
    /// logged once, not once per record.
    dropping: AtomicBool,
}

impl<T> Queue<T> {
    /// A queue of `len` items for the sink called `name`, and its receiving end.
    pub fn new(len: usize, name: String, counters: SinkCounters) -> (Self, mpsc::Receiver<T>) {
        let (tx, rx) = mpsc::channel(len.max(1));
        let queue = Queue {
            tx,
            name,
            counters,
            dropping: AtomicBool::new(false),
        };
        (queue, rx)
    }

    /// Queues `item`, or drops and counts it when the queue is full or closed.
    pub fn offer(&self, item: T) {
        match self.tx.try_send(item) {
            Ok(()) => {
                if self.dropping.swap(false, Ordering::Relaxed) {
                    tracing::info!(sink = self.name, "call records: queue has room again");
                }
            }
            Err(TrySendError::Full(_)) => {
                self.counters.queue_full.inc();
                if !self.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        sink = self.name,
                        queue = self.tx.max_capacity(),
                        "call records: queue full, dropping until it drains \
                         (siphon_records_dropped_total)"
                    );
                }
            }
            Err(TrySendError::Closed(_)) => self.counters.shutdown.inc(),
        }
    }
}

/// Counts what is left in `rx` as lost at exit and says so once.
pub(super) fn drop_leftovers<T>(rx: &mut mpsc::Receiver<T>, name: &str, counters: &SinkCounters) {
    rx.close();
    let mut left = 0u64;
    while rx.try_recv().is_ok() {
        counters.shutdown.inc();
        left += 1;
    }
    if left > 0 {
        tracing::warn!(sink = name, left, "call records: not written before exit");
    }
}
