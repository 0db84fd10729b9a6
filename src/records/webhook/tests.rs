//! The delivery rules, and the worker on a paused clock against a scripted
//! endpoint (no sockets).

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::time::Instant;

use super::*;

#[test]
fn the_signature_matches_an_independent_hmac() {
    // Python: hmac.new(key, b"1796472342." + body, hashlib.sha256).hexdigest()
    let sig = signature(
        b"whsec-0123456789abcdef0123456789ab",
        1_796_472_342,
        br#"{"event":"call.ended"}"#,
    );
    assert_eq!(
        sig,
        "t=1796472342,v1=66095986c0bdd71d5a629947960d5203b8bebc4a5db60537f9bbcd6b1711f9cb"
    );
}

#[test]
fn what_is_retried_and_what_is_final() {
    let refused = || {
        Err(RecordsError::Connect(
            std::io::ErrorKind::ConnectionRefused.into(),
        ))
    };
    assert_eq!(step(&Ok(200), 0, 5), Step::Delivered);
    assert_eq!(step(&Ok(204), 5, 5), Step::Delivered);
    assert_eq!(
        step(&Ok(500), 0, 5),
        Step::Retry(Duration::from_millis(500))
    );
    assert_eq!(step(&Ok(503), 2, 5), Step::Retry(Duration::from_secs(2)));
    assert_eq!(step(&Ok(429), 1, 5), Step::Retry(Duration::from_secs(1)));
    assert_eq!(
        step(&Err(RecordsError::Timeout), 4, 5),
        Step::Retry(Duration::from_secs(8))
    );
    assert_eq!(
        step(&refused(), 0, 5),
        Step::Retry(Duration::from_millis(500))
    );
    assert_eq!(step(&Ok(500), 5, 5), Step::GiveUp, "retries used up");
    assert_eq!(
        step(&refused(), 0, 0),
        Step::GiveUp,
        "no retries configured"
    );
    for final_answer in [301, 400, 401, 404, 410] {
        assert_eq!(
            step(&Ok(final_answer), 0, 5),
            Step::GiveUp,
            "{final_answer}"
        );
    }
}

#[test]
fn backoff_doubles_from_half_a_second_without_overflowing() {
    let waits: Vec<u128> = (0..5).map(|n| backoff(n).as_millis()).collect();
    assert_eq!(waits, [500, 1000, 2000, 4000, 8000]);
    assert!(backoff(u32::MAX) >= backoff(20));
}

/// What the scripted endpoint does with one attempt.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Refused,
    /// Never answers: the attempt's timeout ends it.
    Hang,
}

/// An endpoint that answers from a script and notes when each attempt came.
#[derive(Clone)]
struct Scripted(Arc<Mutex<Script>>);

struct Script {
    answers: VecDeque<Answer>,
    start: Instant,
    attempts: Vec<(Duration, String, Bytes)>,
}

impl Scripted {
    fn new(answers: &[Answer]) -> Self {
        Scripted(Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            start: Instant::now(),
            attempts: Vec::new(),
        })))
    }

    /// When each attempt came, in milliseconds from the start.
    fn times(&self) -> Vec<u128> {
        let script = self.0.lock().unwrap();
        script
            .attempts
            .iter()
            .map(|(t, _, _)| t.as_millis())
            .collect()
    }

    fn bodies(&self) -> Vec<Bytes> {
        let script = self.0.lock().unwrap();
        script.attempts.iter().map(|(_, _, b)| b.clone()).collect()
    }
}

impl Post for Scripted {
    async fn post(&self, body: Bytes, signature: String) -> Result<u16, RecordsError> {
        let answer = {
            let mut script = self.0.lock().unwrap();
            let at = script.start.elapsed();
            script.attempts.push((at, signature, body));
            script.answers.pop_front().unwrap_or(Answer::Status(200))
        };
        match answer {
            Answer::Status(status) => Ok(status),
            Answer::Refused => Err(RecordsError::Connect(
                std::io::ErrorKind::ConnectionRefused.into(),
            )),
            Answer::Hang => std::future::pending().await,
        }
    }

    fn shown(&self) -> &str {
        "http://hooks.example/calls"
    }
}

struct Run {
    queue: Queue<Delivery>,
    metrics: Metrics,
    tasks: TaskTracker,
    stops: Stops,
}

fn start(endpoint: &Scripted, retries: u32, queue: usize) -> Run {
    let (metrics, tasks, stops) = (Metrics::new(), TaskTracker::new(), Stops::default());
    let settings = Settings {
        secret: Arc::from(&b"0123456789abcdef0123456789abcdef"[..]),
        retries,
        timeout: Duration::from_secs(5),
    };
    let queue = spawn(endpoint.clone(), settings, queue, &metrics, &tasks, &stops);
    Run {
        queue,
        metrics,
        tasks,
        stops,
    }
}

fn record(n: u8) -> Delivery {
    Delivery {
        body: Bytes::from(vec![b'0' + n]),
        record: true,
    }
}

impl Run {
    fn outcome(&self, outcome: &str) -> u64 {
        let family = &self.metrics.webhook_deliveries_total;
        family.with_label_values(&[outcome]).get()
    }

    fn dropped(&self, reason: &str) -> u64 {
        let family = &self.metrics.records_dropped_total;
        family.with_label_values(&["webhook", reason]).get()
    }

    fn delivered_records(&self) -> u64 {
        self.metrics
            .records_total
            .with_label_values(&["webhook"])
            .get()
    }

    /// Lets the worker finish what is queued; the paused clock runs ahead.
    async fn finish(self) -> Self {
        self.stops.drain.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self
    }
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_after_half_a_second_doubling() {
    let endpoint = Scripted::new(&[Answer::Status(500), Answer::Refused, Answer::Status(204)]);
    let run = start(&endpoint, 5, 10);
    run.queue.offer(record(1));
    let run = run.finish().await;
    assert_eq!(endpoint.times(), [0, 500, 1500]);
    assert_eq!((run.outcome("ok"), run.outcome("retry")), (1, 2));
    assert_eq!((run.outcome("failed"), run.delivered_records()), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_silent_endpoint_times_out_and_is_given_up_after_the_retries() {
    let endpoint = Scripted::new(&[Answer::Hang, Answer::Hang, Answer::Hang]);
    let run = start(&endpoint, 2, 10);
    run.queue.offer(record(1));
    run.queue.offer(record(2));
    let run = run.finish().await;
    // 5 s timeout, 0.5 s wait, 5 s, 1 s wait, 5 s; then the next body.
    assert_eq!(endpoint.times(), [0, 5_500, 11_500, 16_500]);
    assert_eq!((run.outcome("retry"), run.outcome("failed")), (2, 1));
    assert_eq!((run.dropped("failed"), run.outcome("ok")), (1, 1));
    assert_eq!(endpoint.bodies().last().unwrap().as_ref(), b"2");
}

#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    let endpoint = Scripted::new(&[Answer::Status(404)]);
    let run = start(&endpoint, 5, 10).finish_after(record(1)).await;
    assert_eq!(endpoint.times(), [0]);
    assert_eq!((run.outcome("retry"), run.dropped("failed")), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let endpoint = Scripted::new(&[Answer::Hang; 3]);
    let run = start(&endpoint, 0, 2);
    // The worker has not run yet: two fit, three are dropped at once.
    for n in 0..5 {
        run.queue.offer(record(n));
    }
    assert_eq!(run.dropped("queue_full"), 3);
    let run = run.finish().await;
    assert_eq!(endpoint.times(), [0, 5_000]);
    assert_eq!(run.dropped("failed"), 2);
}

#[tokio::test(start_paused = true)]
async fn events_are_not_counted_as_records() {
    let endpoint = Scripted::new(&[]);
    let run = start(&endpoint, 0, 10);
    run.queue.offer(Delivery {
        body: Bytes::from_static(b"{}"),
        record: false,
    });
    let run = run.finish_after(record(1)).await;
    assert_eq!((run.outcome("ok"), run.delivered_records()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_a_delivery_under_way_and_counts_what_is_left() {
    let endpoint = Scripted::new(&[Answer::Hang]);
    let run = start(&endpoint, 5, 10);
    for n in 0..3 {
        run.queue.offer(record(n));
    }
    run.stops.drain.cancel();
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.stops.stop.cancel();
    run.tasks.close();
    run.tasks.wait().await;
    assert_eq!(endpoint.times(), [0]);
    assert_eq!(
        run.dropped("shutdown"),
        3,
        "the one under way and the two queued"
    );
    run.queue.offer(record(9));
    assert_eq!(
        run.dropped("shutdown"),
        4,
        "offers after the end are counted too"
    );
}

impl Run {
    async fn finish_after(self, delivery: Delivery) -> Self {
        self.queue.offer(delivery);
        self.finish().await
    }
}
