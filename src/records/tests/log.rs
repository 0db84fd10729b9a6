//! The record's log line in both log formats, as `main` sets them up.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Ends call `c1` inside a call's span, as the driver will.
fn end_a_call(records: &Records) -> CallRecord {
    let record = answered(records, "c1");
    let span = tracing::info_span!("call", id = "c1", user = "alice");
    span.in_scope(|| records.ended(&record));
    record
}

#[test]
fn the_text_line_ends_with_the_record_alone() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    let metrics = Metrics::new();
    let records = Records::log_only("siphon-a", &metrics);
    let record = tracing::subscriber::with_default(subscriber, || end_a_call(&records));
    let text = out.text();
    let line = text.lines().next().unwrap();
    let (head, json) = line.split_once(" siphon::records: ").unwrap();
    assert!(head.ends_with("INFO"), "{line}");
    assert!(
        !line.contains("call{"),
        "the call's span is not repeated: {line}"
    );
    let logged: CallRecord = serde_json::from_str(json).unwrap();
    assert_eq!(logged, record);
    assert_eq!(count(&metrics, "log"), 1);
}

#[test]
fn the_json_line_carries_the_record_as_its_message() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(out.clone())
        .finish();
    let records = Records::log_only("siphon-a", &Metrics::new());
    let record = tracing::subscriber::with_default(subscriber, || end_a_call(&records));
    let line: serde_json::Value = serde_json::from_str(out.text().trim()).unwrap();
    assert_eq!(line["target"], LOG_TARGET);
    assert_eq!(line["level"], "INFO");
    let fields = line["fields"].as_object().unwrap();
    assert_eq!(fields.len(), 1, "{fields:?}");
    let message = fields["message"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<CallRecord>(message).unwrap(), record);
}

#[test]
fn events_without_webhooks_cost_nothing() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt().with_writer(out.clone()).finish();
    let records = Records::log_only("a", &Metrics::new());
    let record = answered(&records, "c1");
    tracing::subscriber::with_default(subscriber, || {
        records.event(CallEvent::Started, &record, at(0));
    });
    assert_eq!(out.text(), "");
}
