//! What can go wrong between a finished call and its record's sinks.

use std::io;
use std::path::PathBuf;

/// Why records could not start, or one delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// `records.file` could not be opened for appending.
    #[error("records.file {path:?}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A webhook URL siphon cannot POST to (config validation catches these first).
    #[error("records.webhooks: {0}")]
    Url(String),
    /// No TLS client could be built for the https webhooks.
    #[error("records.webhooks: TLS client: {0}")]
    TlsConfig(#[source] rustls::Error),
    /// The webhook's host could not be reached.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    /// The TLS handshake with the webhook's host failed.
    #[error("TLS: {0}")]
    Tls(#[source] io::Error),
    /// The HTTP exchange broke off.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// No answer within `records.webhook_timeout_ms`.
    #[error("no answer within the timeout")]
    Timeout,
    /// A time outside what RFC 3339 can write (before year 0 or after 9999),
    /// or text that is not an RFC 3339 time.
    #[error("time: {0}")]
    Time(String),
    /// A record or event could not be written as JSON (only a bad time can do that).
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}
