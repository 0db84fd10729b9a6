//! `Records` with its real sinks: files in a temporary directory, webhooks
//! received by HTTP servers on 127.0.0.1 (ports from the test allocator).

use std::time::{Duration, SystemTime};

use super::*;

mod file;
mod hook;
mod log;
mod webhook;

/// 2026-12-05T12:05:42Z.
fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_472_342 + secs)
}

/// An answered call `id`, as `records` stamps it.
fn answered(records: &Records, id: &str) -> CallRecord {
    let mut record = records.record(id, Direction::Outbound, at(0));
    record.from = "alice".into();
    record.to = "1001".into();
    record.answered_at = Some(at(2));
    record.ended_at = at(10);
    record
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn config() -> RecordsConfig {
    RecordsConfig::default()
}

fn count(metrics: &Metrics, sink: &str) -> u64 {
    metrics.records_total.with_label_values(&[sink]).get()
}

fn dropped(metrics: &Metrics, sink: &str, reason: &str) -> u64 {
    let family = &metrics.records_dropped_total;
    family.with_label_values(&[sink, reason]).get()
}

/// Polls `done` every 10 ms for up to 5 s.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}
