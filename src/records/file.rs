//! The JSON-lines file sink: one task owns the file, appends a line per
//! record and flushes it, and reopens the path when told (logrotate renames
//! the file, then SIGHUP).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};
use tokio_util::task::TaskTracker;

use super::error::RecordsError;
use super::queue::{drop_leftovers, Queue, SinkCounters, Stops};
use crate::metrics::Metrics;

/// The file sink as the calls see it.
pub(super) struct FileSink {
    queue: Queue<String>,
    reopen: Arc<Notify>,
}

impl FileSink {
    /// Opens `path` for appending (a failure stops the start: better than a
    /// first call that finds the file unwritable) and spawns its writer.
    pub fn start(
        path: PathBuf,
        queue: usize,
        metrics: &Metrics,
        tasks: &TaskTracker,
        stops: &Stops,
    ) -> Result<FileSink, RecordsError> {
        let file = open_now(&path).map_err(|source| RecordsError::Open {
            path: path.clone(),
            source,
        })?;
        let counters = SinkCounters::new(metrics, "file");
        let name = path.display().to_string();
        let (queue, rx) = Queue::new(queue, name, counters.clone());
        let reopen = Arc::new(Notify::new());
        let writer = Writer {
            path,
            file: Some(File::from_std(file)),
            counters,
            failing: false,
            lost: 0,
        };
        tasks.spawn(writer.run(rx, reopen.clone(), stops.clone()));
        Ok(FileSink { queue, reopen })
    }

    /// Queues the record `line` (without its newline).
    pub fn offer(&self, mut line: String) {
        line.push('\n');
        self.queue.offer(line);
    }

    /// Has the writer reopen the path before its next line.
    pub fn reopen(&self) {
        // A reopen asked for while the writer is busy is kept for it.
        self.reopen.notify_one();
    }
}

fn open_now(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// The task that owns the file.
struct Writer {
    path: PathBuf,
    /// `None` after a failure: the next line opens the path again.
    file: Option<File>,
    counters: SinkCounters,
    /// Whether the last open or write failed (a streak is logged once).
    failing: bool,
    /// Lines lost in the current failure streak.
    lost: u64,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<String>, reopen: Arc<Notify>, stops: Stops) {
        let mut taking = true;
        loop {
            tokio::select! {
                biased;
                () = stops.stop.cancelled() => break,
                () = reopen.notified() => self.reopen().await,
                () = stops.drain.cancelled(), if taking => {
                    // What is queued is still written; nothing more comes.
                    rx.close();
                    taking = false;
                }
                line = rx.recv() => match line {
                    Some(line) => self.write(&line).await,
                    None => break,
                },
            }
        }
        drop_leftovers(&mut rx, &self.path.display().to_string(), &self.counters);
    }

    async fn reopen(&mut self) {
        // Every line was flushed: the old file can simply be let go.
        self.file = None;
        match open(&self.path).await {
            Ok(file) => {
                self.file = Some(file);
                tracing::info!(path = %self.path.display(), "records file reopened");
            }
            Err(e) => self.failed(&e),
        }
    }

    async fn write(&mut self, line: &str) {
        match self.append(line).await {
            Ok(()) => {
                self.counters.written.inc();
                if self.failing {
                    tracing::info!(
                        path = %self.path.display(),
                        lost = self.lost,
                        "records file: writing again"
                    );
                    (self.failing, self.lost) = (false, 0);
                }
            }
            Err(e) => {
                // Opened again for the next line: the disk may have room by then.
                self.file = None;
                self.counters.failed.inc();
                self.failed(&e);
                self.lost += 1;
            }
        }
    }

    async fn append(&mut self, line: &str) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open(&self.path).await?),
        };
        // One write of the whole line: O_APPEND keeps it in one piece.
        file.write_all(line.as_bytes()).await?;
        file.flush().await
    }

    /// Logs the first failure of a streak only: a full disk must not also
    /// fill the log with a line per call.
    fn failed(&mut self, e: &io::Error) {
        if !self.failing {
            tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "records file: cannot write; records are lost until it works again \
                 (siphon_records_dropped_total)"
            );
            self.failing = true;
        }
    }
}

async fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}
