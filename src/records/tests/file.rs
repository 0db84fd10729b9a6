use std::path::{Path, PathBuf};

use super::*;

fn file_config(path: &Path) -> RecordsConfig {
    RecordsConfig {
        file: path.display().to_string(),
        ..config()
    }
}

fn lines(path: &Path) -> Vec<CallRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn ids(path: &Path) -> Vec<String> {
    lines(path).into_iter().map(|r| r.id).collect()
}

fn calls_file() -> PathBuf {
    crate::tls::temp_dir("records").join("calls.jsonl")
}

#[tokio::test]
async fn each_record_is_a_line_and_reopen_follows_the_path() {
    let path = calls_file();
    let metrics = Metrics::new();
    let records = Records::start(&file_config(&path), "siphon-a", &metrics).unwrap();
    let m = &metrics;
    let written = |n| move || count(m, "file") == n;
    records.ended(&answered(&records, "c1"));
    records.ended(&answered(&records, "c2"));
    assert!(eventually(written(2)).await);
    assert_eq!(
        lines(&path),
        [answered(&records, "c1"), answered(&records, "c2")]
    );
    assert_eq!(lines(&path)[0].instance, "siphon-a");

    // logrotate: the file is moved; siphon writes on into it until SIGHUP.
    let rotated = path.with_extension("jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    records.ended(&answered(&records, "c3"));
    assert!(eventually(written(3)).await);
    records.reopen();
    records.ended(&answered(&records, "c4"));
    assert!(eventually(written(4)).await);
    assert_eq!(ids(&rotated), ["c1", "c2", "c3"]);
    assert_eq!(ids(&path), ["c4"]);
    assert_eq!(count(&metrics, "log"), 4);
}

#[tokio::test]
async fn close_writes_what_is_queued() {
    let path = calls_file();
    let metrics = Metrics::new();
    let records = Records::start(&file_config(&path), "a", &metrics).unwrap();
    // The writer has not run yet (one thread): all three wait in the queue.
    for id in ["c1", "c2", "c3"] {
        records.ended(&answered(&records, id));
    }
    records.close(Duration::from_secs(2)).await;
    assert_eq!(ids(&path), ["c1", "c2", "c3"]);
    records.ended(&answered(&records, "late"));
    assert_eq!(dropped(&metrics, "file", "shutdown"), 1);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let path = calls_file();
    let metrics = Metrics::new();
    let config = RecordsConfig {
        queue: 2,
        ..file_config(&path)
    };
    let records = Records::start(&config, "a", &metrics).unwrap();
    for id in ["c1", "c2", "c3", "c4"] {
        records.ended(&answered(&records, id));
    }
    assert_eq!(dropped(&metrics, "file", "queue_full"), 2);
    records.close(Duration::from_secs(2)).await;
    assert_eq!(ids(&path), ["c1", "c2"]);
}

#[tokio::test]
async fn a_failing_path_is_counted_and_written_again_once_it_works() {
    let path = calls_file();
    let dir = path.parent().unwrap().to_owned();
    let metrics = Metrics::new();
    let records = Records::start(&file_config(&path), "a", &metrics).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    records.reopen();
    records.ended(&answered(&records, "lost"));
    assert!(eventually(|| dropped(&metrics, "file", "failed") == 1).await);
    std::fs::create_dir_all(&dir).unwrap();
    records.ended(&answered(&records, "back"));
    assert!(eventually(|| count(&metrics, "file") == 1).await);
    assert_eq!(ids(&path), ["back"]);
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_stops_the_start() {
    let path = Path::new("/nonexistent-siphon-dir/calls.jsonl");
    let started = Records::start(&file_config(path), "a", &Metrics::new());
    let Err(e) = started else {
        panic!("a file in a missing directory should not open")
    };
    assert!(matches!(e, RecordsError::Open { .. }), "{e}");
    assert!(e.to_string().starts_with("records.file"), "{e}");
}
