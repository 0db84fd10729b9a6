//! Webhook delivery: one worker per URL with its own queue, each body
//! signed, retried with backoff on failures that may pass, and given up on
//! (counted) after `records.webhook_retries`.
//!
//! The rules (what to retry, how long to wait, the signature) are pure
//! functions; the worker is written against [`Post`] so that tests can run
//! it on a paused clock without sockets.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use prometheus::IntCounter;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::error::RecordsError;
use super::post::{tls_connector, HttpPost, Target};
use super::queue::{drop_leftovers, Queue, SinkCounters, Stops};
use crate::config::RecordsConfig;
use crate::metrics::Metrics;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Siphon-Signature";

/// The wait after the first failed attempt; each later one doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>`: the timestamp
/// is signed with the body so that a receiver can refuse an old one replayed.
pub fn signature(secret: &[u8], unix: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length: the error case cannot happen, and an
    // empty `v1` would only be refused by the receiver.
    let hex = Hmac::<Sha256>::new_from_slice(secret)
        .map(|mut mac| {
            mac.update(unix.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            let digest = mac.finalize().into_bytes();
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    format!("t={unix},v1={hex}")
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The endpoint took it (2xx).
    Delivered,
    /// Try again after this long.
    Retry(Duration),
    /// No more tries: retries used up, or an answer no retry would change.
    GiveUp,
}

/// The step after an attempt that got `answer` (a status, or no answer),
/// with `retried` retries made of `max_retries`.
pub(super) fn step(answer: &Result<u16, RecordsError>, retried: u32, max_retries: u32) -> Step {
    let passing = match answer {
        Ok(status) if (200..300).contains(status) => return Step::Delivered,
        // Overloaded or down for a moment; any other answer is final.
        Ok(status) => *status == 429 || (500..600).contains(status),
        Err(_) => true,
    };
    if passing && retried < max_retries {
        Step::Retry(backoff(retried))
    } else {
        Step::GiveUp
    }
}

/// The wait before retry `retried + 1`: 0.5 s, 1 s, 2 s, ...
pub(super) fn backoff(retried: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(1u32 << retried.min(20))
}

/// One body for one URL.
pub(super) struct Delivery {
    /// The JSON body.
    pub body: Bytes,
    /// Whether it is a record (`call.ended`), which `siphon_records_total` counts.
    pub record: bool,
}

/// One HTTP POST of a signed body; the answer's status, or why there was none.
pub(super) trait Post: Send + Sync + 'static {
    /// POSTs `body` with `signature` in [`SIGNATURE_HEADER`].
    fn post(
        &self,
        body: Bytes,
        signature: String,
    ) -> impl Future<Output = Result<u16, RecordsError>> + Send;
    /// The URL as logs show it (no query string: it may hold a token).
    fn shown(&self) -> &str;
}

/// Starts a worker per URL of `records.webhooks`.
pub(super) fn start_all(
    config: &RecordsConfig,
    metrics: &Metrics,
    tasks: &TaskTracker,
    stops: &Stops,
) -> Result<Vec<Queue<Delivery>>, RecordsError> {
    let targets = config
        .webhooks
        .iter()
        .map(|url| Target::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = if targets.iter().any(Target::https) {
        Some(tls_connector(None)?)
    } else {
        None
    };
    let settings = Settings {
        secret: Arc::from(config.secret.as_bytes()),
        retries: config.webhook_retries,
        timeout: Duration::from_millis(config.webhook_timeout_ms),
    };
    let queues = targets.into_iter().map(|target| {
        let post = HttpPost::new(target, tls.clone());
        spawn(
            post,
            settings.clone(),
            config.queue as usize,
            metrics,
            tasks,
            stops,
        )
    });
    Ok(queues.collect())
}

/// How every worker delivers.
#[derive(Clone)]
pub(super) struct Settings {
    /// The HMAC key.
    pub secret: Arc<[u8]>,
    /// Retries after the first attempt.
    pub retries: u32,
    /// One attempt's limit.
    pub timeout: Duration,
}

/// Spawns the worker for `post` and returns its queue.
pub(super) fn spawn<P: Post>(
    post: P,
    settings: Settings,
    queue: usize,
    metrics: &Metrics,
    tasks: &TaskTracker,
    stops: &Stops,
) -> Queue<Delivery> {
    let sink = SinkCounters::new(metrics, "webhook");
    let (queue, rx) = Queue::new(queue, post.shown().to_owned(), sink.clone());
    let outcome = |o| metrics.webhook_deliveries_total.with_label_values(&[o]);
    let worker = Worker {
        post,
        settings,
        sink,
        ok: outcome("ok"),
        retry: outcome("retry"),
        failed: outcome("failed"),
        failing: false,
    };
    tasks.spawn(worker.run(rx, stops.clone()));
    queue
}

/// The task that delivers to one URL, one body at a time, in order.
struct Worker<P> {
    post: P,
    settings: Settings,
    sink: SinkCounters,
    ok: IntCounter,
    retry: IntCounter,
    failed: IntCounter,
    /// Whether the last body was given up on (a streak is logged once).
    failing: bool,
}

impl<P: Post> Worker<P> {
    async fn run(mut self, mut rx: mpsc::Receiver<Delivery>, stops: Stops) {
        let mut taking = true;
        loop {
            let delivery = tokio::select! {
                biased;
                () = stops.stop.cancelled() => break,
                () = stops.drain.cancelled(), if taking => {
                    rx.close();
                    taking = false;
                    continue;
                }
                delivery = rx.recv() => match delivery {
                    Some(delivery) => delivery,
                    None => break,
                },
            };
            let finished = tokio::select! {
                biased;
                () = stops.stop.cancelled() => false,
                () = self.deliver(&delivery) => true,
            };
            if !finished {
                self.sink.shutdown.inc();
                break;
            }
        }
        drop_leftovers(&mut rx, self.post.shown(), &self.sink);
    }

    async fn deliver(&mut self, delivery: &Delivery) {
        let mut retried = 0;
        loop {
            let answer = self.attempt(&delivery.body).await;
            match step(&answer, retried, self.settings.retries) {
                Step::Delivered => return self.delivered(delivery.record),
                Step::Retry(wait) => {
                    self.retry.inc();
                    let (url, answer) = (self.post.shown(), Shown(&answer));
                    tracing::debug!(url, retried, %answer, "webhook: retrying");
                    tokio::time::sleep(wait).await;
                    retried += 1;
                }
                Step::GiveUp => return self.gave_up(&answer),
            }
        }
    }

    async fn attempt(&self, body: &Bytes) -> Result<u16, RecordsError> {
        // Signed per attempt: a retry carries a fresh timestamp.
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signed = signature(&self.settings.secret, unix, body);
        let post = self.post.post(body.clone(), signed);
        tokio::time::timeout(self.settings.timeout, post)
            .await
            .unwrap_or(Err(RecordsError::Timeout))
    }

    fn delivered(&mut self, record: bool) {
        self.ok.inc();
        if record {
            self.sink.written.inc();
        }
        if self.failing {
            tracing::info!(url = self.post.shown(), "webhook: delivering again");
            self.failing = false;
        }
    }

    fn gave_up(&mut self, answer: &Result<u16, RecordsError>) {
        self.failed.inc();
        self.sink.failed.inc();
        if !self.failing {
            tracing::warn!(
                url = self.post.shown(),
                answer = %Shown(answer),
                retries = self.settings.retries,
                "webhook: gave up on a delivery; later ones are tried as they come \
                 (siphon_records_dropped_total)"
            );
            self.failing = true;
        }
    }
}

/// An attempt's answer in words: `HTTP 503`, or the error.
struct Shown<'a>(&'a Result<u16, RecordsError>);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Ok(status) => write!(f, "HTTP {status}"),
            Err(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests;
