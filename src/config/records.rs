//! `[records]`: where call records go (a JSON-lines file, webhooks) and
//! how webhooks are delivered; docs/records.md has the whole story.

use std::fmt;
use std::path::Path;

use hyper::Uri;

use super::error::ConfigError;
use super::schema::{element, Section, Visitor};
use super::types::{redact, Config};

/// `[records]`: call records and webhook events.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordsConfig {
    /// JSON-lines file a record is appended to per call; "" = none.
    pub file: String,
    /// `http://` or `https://` URLs each record (and event) is POSTed to.
    pub webhooks: Vec<String>,
    /// HMAC-SHA256 key of the `Siphon-Signature` header; required with webhooks.
    pub secret: String,
    /// Whether webhooks also get `call.started` and `call.answered`.
    pub events: bool,
    /// Retries of a webhook delivery after its first attempt.
    pub webhook_retries: u32,
    /// Milliseconds one webhook attempt may take, connection included.
    pub webhook_timeout_ms: u64,
    /// Records (and events) waiting per sink before new ones are dropped.
    pub queue: u32,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            file: String::new(),
            webhooks: Vec::new(),
            secret: String::new(),
            events: false,
            webhook_retries: 5,
            webhook_timeout_ms: 5000,
            queue: 1000,
        }
    }
}

impl Section for RecordsConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("file", &mut self.file);
        v.field("webhooks", &mut self.webhooks);
        v.field("secret", &mut self.secret);
        v.field("events", &mut self.events);
        v.field("webhook_retries", &mut self.webhook_retries);
        v.field("webhook_timeout_ms", &mut self.webhook_timeout_ms);
        v.field("queue", &mut self.queue);
    }
}

impl fmt::Debug for RecordsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordsConfig")
            .field("file", &self.file)
            .field("webhooks", &self.webhooks)
            .field("secret", &redact(&self.secret))
            .field("events", &self.events)
            .field("webhook_retries", &self.webhook_retries)
            .field("webhook_timeout_ms", &self.webhook_timeout_ms)
            .field("queue", &self.queue)
            .finish()
    }
}

/// A webhook URL as siphon POSTs to it: `http` or `https`, a host, no
/// credentials (siphon signs its bodies instead); the reason in words otherwise.
pub fn webhook_uri(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(format!(
            "expected an http:// or https:// URL such as \"https://example.com/calls\", got {url:?}"
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{url:?} names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{url:?} carries credentials; the Siphon-Signature header authenticates siphon"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    Ok(uri)
}

/// Shortest webhook secret: a short HMAC key can be brute-forced offline
/// from one signed body, as `auth.secret` can from one token.
const MIN_SECRET: usize = 32;
/// Most retries: at 0.5 s doubling, the tenth waits over four minutes.
const MAX_RETRIES: u32 = 10;
/// Longest attempt: five minutes.
const MAX_TIMEOUT_MS: u64 = 300_000;
/// Largest queue: a million records is about a gigabyte.
const MAX_QUEUE: u32 = 1_000_000;

/// Adds every `[records]` problem to `errors`.
pub(super) fn check(config: &Config, errors: &mut Vec<ConfigError>) {
    let r = &config.records;
    let mut report = |key: String, reason: String| errors.push(ConfigError::new(key, reason));
    if let Some(reason) = file_problem(&r.file) {
        report("records.file".into(), reason);
    }
    for (i, url) in r.webhooks.iter().enumerate() {
        if let Err(reason) = webhook_uri(url) {
            report(element("records.webhooks", i), reason);
        }
    }
    if !r.webhooks.is_empty() && r.secret.is_empty() {
        let reason = "required when records.webhooks is set (set it here or in \
                      SIPHON_RECORDS_SECRET; e.g. `openssl rand -hex 32`)";
        report("records.secret".into(), reason.into());
    } else if !r.secret.is_empty() && r.secret.len() < MIN_SECRET {
        let reason = format!(
            "must be at least {MIN_SECRET} bytes, got {} (e.g. `openssl rand -hex 32`)",
            r.secret.len()
        );
        report("records.secret".into(), reason);
    }
    let ranges = [
        ("records.queue", u64::from(r.queue), 1, u64::from(MAX_QUEUE)),
        (
            "records.webhook_timeout_ms",
            r.webhook_timeout_ms,
            1,
            MAX_TIMEOUT_MS,
        ),
        (
            "records.webhook_retries",
            u64::from(r.webhook_retries),
            0,
            u64::from(MAX_RETRIES),
        ),
    ];
    for (key, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            report(
                key.into(),
                format!("must be from {min} to {max}, got {value}"),
            );
        }
    }
}

/// Why records cannot be appended at `file`, as far as the config can tell:
/// a directory that is not there is a typo best caught before the first call.
fn file_problem(file: &str) -> Option<String> {
    if file.is_empty() {
        return None;
    }
    let path = Path::new(file);
    if path.is_dir() {
        return Some(format!("{file:?} is a directory; name a file in it"));
    }
    // A bare file name lives in the working directory, which exists.
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    (!parent.is_dir()).then(|| format!("the directory {:?} does not exist", parent.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn errors(toml: &str) -> Vec<(String, String)> {
        match Config::from_toml_str(toml, &HashMap::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .errors()
                .iter()
                .map(|e| (e.key.clone(), e.reason.clone()))
                .collect(),
        }
    }

    fn keys(toml: &str) -> Vec<String> {
        errors(toml).into_iter().map(|(key, _)| key).collect()
    }

    const SECRET: &str = "secret = \"0123456789abcdef0123456789abcdef\"\n";

    #[test]
    fn defaults_are_valid_and_off() {
        assert!(errors("").is_empty());
        let config = RecordsConfig::default();
        assert!(config.file.is_empty() && config.webhooks.is_empty());
    }

    #[test]
    fn each_bad_webhook_names_its_index() {
        let text = format!(
            "[records]\n{SECRET}webhooks = [\"https://a.example/x\", \"ftp://b.example\", \
             \"example.com/calls\", \"http://user:pw@c.example/\"]\n"
        );
        assert_eq!(
            keys(&text),
            [
                "records.webhooks[1]",
                "records.webhooks[2]",
                "records.webhooks[3]"
            ]
        );
        let reason = &errors(&text)[0].1;
        assert!(reason.contains("http:// or https://"), "{reason}");
    }

    #[test]
    fn webhooks_need_a_long_enough_secret() {
        let text = "[records]\nwebhooks = [\"http://127.0.0.1:9/\"]\n";
        let found = errors(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "records.secret");
        assert!(found[0].1.contains("SIPHON_RECORDS_SECRET"), "{found:?}");
        let short = "[records]\nwebhooks = [\"http://127.0.0.1:9/\"]\nsecret = \"k\"\n";
        assert_eq!(keys(short), ["records.secret"]);
        assert!(errors(&format!("{text}{SECRET}")).is_empty());
    }

    #[test]
    fn zero_queue_and_out_of_range_values_are_errors() {
        let text = "[records]\nqueue = 0\nwebhook_timeout_ms = 0\nwebhook_retries = 11\n";
        assert_eq!(
            keys(text),
            [
                "records.queue",
                "records.webhook_timeout_ms",
                "records.webhook_retries"
            ]
        );
    }

    #[test]
    fn the_file_needs_an_existing_directory() {
        let text = "[records]\nfile = \"/nonexistent-siphon-dir/calls.jsonl\"\n";
        let found = errors(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "records.file");
        assert!(found[0].1.contains("/nonexistent-siphon-dir"), "{found:?}");
        let dir = std::env::temp_dir();
        let here = format!("[records]\nfile = {:?}\n", dir.join("calls.jsonl"));
        assert!(errors(&here).is_empty());
        assert!(errors("[records]\nfile = \"calls.jsonl\"\n").is_empty());
        assert_eq!(
            keys(&format!("[records]\nfile = {dir:?}\n")),
            ["records.file"]
        );
    }

    #[test]
    fn the_secret_comes_from_the_environment_and_is_not_shown() {
        let secret = "0123456789abcdef0123456789abcdef";
        let vars = HashMap::from([("SIPHON_RECORDS_SECRET".to_owned(), secret.to_owned())]);
        let text = "[records]\nwebhooks = [\"https://hooks.example/calls\"]\n";
        let config = Config::from_toml_str(text, &vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.records.secret, secret);
        assert!(!format!("{config:?}").contains(secret));
    }
}
