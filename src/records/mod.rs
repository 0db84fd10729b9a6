//! Call records: one JSON object per call, written as the call ends, to
//! the log and to the sinks `[records]` names (a JSON-lines file,
//! webhooks); docs/records.md has the schema and the delivery rules.
//!
//! [`Records::ended`] is called from a call's task, so it never waits: it
//! logs the record and offers it to each sink's bounded queue, and a sink
//! that falls behind loses records (counted) instead of slowing calls. Each
//! sink is one task that owns its file or its URL.

mod error;
mod file;
mod post;
mod queue;
mod record;
mod webhook;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prometheus::IntCounter;
use tokio_util::task::TaskTracker;

pub use error::RecordsError;
pub use record::{
    CallEvent, CallRecord, Direction, End, EndedBy, Legs, Quality, QualityPair, SipLeg, WebRtcLeg,
};
pub use webhook::{signature, SIGNATURE_HEADER};
pub use wire::{parse_timestamp, timestamp, SCHEMA};

use crate::config::RecordsConfig;
use crate::metrics::Metrics;
use queue::{Queue, Stops};
use webhook::Delivery;

/// The tracing target of the record log lines.
pub const LOG_TARGET: &str = "siphon::records";

/// Where records go; cheap to clone, one per gateway.
#[derive(Clone)]
pub struct Records(Arc<Shared>);

struct Shared {
    instance: String,
    /// Whether webhooks get `call.started` and `call.answered`.
    events: bool,
    logged: IntCounter,
    file: Option<file::FileSink>,
    webhooks: Vec<Queue<Delivery>>,
    tasks: TaskTracker,
    stops: Stops,
}

impl Records {
    /// Opens `records.file` and starts a task per sink; must run inside a
    /// tokio runtime. `instance` is stamped on the records [`Records::record`] makes.
    pub fn start(
        config: &RecordsConfig,
        instance: &str,
        metrics: &Metrics,
    ) -> Result<Records, RecordsError> {
        let (tasks, stops) = (TaskTracker::new(), Stops::default());
        let queue = config.queue.max(1) as usize;
        let file = match config.file.as_str() {
            "" => None,
            path => Some(file::FileSink::start(
                path.into(),
                queue,
                metrics,
                &tasks,
                &stops,
            )?),
        };
        let webhooks = webhook::start_all(config, metrics, &tasks, &stops)?;
        tracing::info!(
            file = config.file,
            webhooks = webhooks.len(),
            events = config.events && !webhooks.is_empty(),
            "call records: logged at info (target {LOG_TARGET})"
        );
        Ok(Records::assemble(
            instance,
            config.events,
            metrics,
            file,
            webhooks,
            tasks,
            stops,
        ))
    }

    /// Records that only go to the log.
    pub fn log_only(instance: &str, metrics: &Metrics) -> Records {
        let (tasks, stops) = (TaskTracker::new(), Stops::default());
        Records::assemble(instance, false, metrics, None, Vec::new(), tasks, stops)
    }

    fn assemble(
        instance: &str,
        events: bool,
        metrics: &Metrics,
        file: Option<file::FileSink>,
        webhooks: Vec<Queue<Delivery>>,
        tasks: TaskTracker,
        stops: Stops,
    ) -> Records {
        Records(Arc::new(Shared {
            instance: instance.to_owned(),
            events,
            logged: metrics.records_total.with_label_values(&["log"]),
            file,
            webhooks,
            tasks,
            stops,
        }))
    }

    /// A record of call `id` that began at `started_at`, stamped with this
    /// instance; the caller fills in the rest as the call goes.
    pub fn record(
        &self,
        id: impl Into<String>,
        direction: Direction,
        started_at: SystemTime,
    ) -> CallRecord {
        CallRecord {
            instance: self.0.instance.clone(),
            ..CallRecord::new(id, direction, started_at)
        }
    }

    /// The call is over: logs `record` and hands it to every sink. Never
    /// waits; a sink whose queue is full loses it (counted).
    pub fn ended(&self, record: &CallRecord) {
        let line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(id = record.id, error = %e, "call record not written");
                return;
            }
        };
        // Out of the call's span: the line is the record alone, whole, in
        // both log formats (text: after the target; JSON: `fields.message`).
        tracing::info!(target: LOG_TARGET, parent: None, "{line}");
        self.0.logged.inc();
        if let Some(file) = &self.0.file {
            file.offer(line);
        }
        if self.0.webhooks.is_empty() {
            return;
        }
        match wire::ended_body(record) {
            Ok(body) => self.to_webhooks(body, true),
            Err(e) => tracing::warn!(id = record.id, error = %e, "call record not sent"),
        }
    }

    /// `event` on the call `record` describes so far, at `at`: POSTed to the
    /// webhooks when `records.events` is on, else nothing. Never waits.
    pub fn event(&self, event: CallEvent, record: &CallRecord, at: SystemTime) {
        if !self.0.events || self.0.webhooks.is_empty() {
            return;
        }
        match wire::event_body(event, record, at) {
            Ok(body) => self.to_webhooks(body, false),
            Err(e) => tracing::warn!(id = record.id, error = %e, "{} not sent", event.name()),
        }
    }

    fn to_webhooks(&self, body: String, record: bool) {
        let body = Bytes::from(body);
        for webhook in &self.0.webhooks {
            webhook.offer(Delivery {
                body: body.clone(),
                record,
            });
        }
    }

    /// Reopens `records.file` at its path (SIGHUP, after logrotate moved it).
    pub fn reopen(&self) {
        if let Some(file) = &self.0.file {
            file.reopen();
        }
    }

    /// Stops taking records and gives the sinks up to `within` to write
    /// what is queued; what is left then is dropped (counted as `shutdown`).
    pub async fn close(&self, within: Duration) {
        let shared = &self.0;
        shared.stops.drain.cancel();
        shared.tasks.close();
        if tokio::time::timeout(within, shared.tasks.wait())
            .await
            .is_err()
        {
            shared.stops.stop.cancel();
            // The tasks stop at their next await; a file write stuck in
            // the kernel is not waited for.
            let _ = tokio::time::timeout(STOP_WAIT, shared.tasks.wait()).await;
        }
    }
}

/// How long the sinks get to count what they drop once told to stop.
const STOP_WAIT: Duration = Duration::from_millis(100);
