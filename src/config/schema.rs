//! The schema: which keys each section has, listed once per section and
//! walked by visitors that read a TOML table, write one, or list its keys.

use toml::{Table, Value};

use super::error::ConfigError;
use super::field::Field;
use super::types::{
    AuthConfig, Config, EchoConfig, HttpConfig, InboundConfig, LimitsConfig, LogConfig,
    MediaConfig, MetricsConfig, RtpConfig, SipConfig, TrunkConfig, WebRtcConfig,
};

/// Something done to every key of the schema, in order.
pub(super) trait Visitor {
    /// A leaf key and its typed value.
    fn field<T: Field>(&mut self, key: &'static str, value: &mut T);
    /// A nested table.
    fn section<S: Section>(&mut self, key: &'static str, section: &mut S);
}

/// A config table: hands each of its keys to a visitor.
pub(super) trait Section {
    /// Visits every key of `self`.
    fn visit<V: Visitor>(&mut self, v: &mut V);
}

impl Section for Config {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.section("sip", &mut self.sip);
        v.section("echo", &mut self.echo);
        v.section("webrtc", &mut self.webrtc);
        v.section("rtp", &mut self.rtp);
        v.section("media", &mut self.media);
        v.section("http", &mut self.http);
        v.section("auth", &mut self.auth);
        v.section("limits", &mut self.limits);
        v.section("metrics", &mut self.metrics);
        v.section("log", &mut self.log);
    }
}

impl Section for SipConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("udp", &mut self.udp);
        v.field("tcp", &mut self.tcp);
        v.field("public_ip", &mut self.public_ip);
        v.field("domain", &mut self.domain);
        v.field("user_agent", &mut self.user_agent);
        v.field("codecs", &mut self.codecs);
        v.field("allow_uri_dial", &mut self.allow_uri_dial);
        v.field("max_message_bytes", &mut self.max_message_bytes);
        v.section("trunk", &mut self.trunk);
        v.section("inbound", &mut self.inbound);
    }
}

impl Section for InboundConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("trunk_sources", &mut self.trunk_sources);
        v.field("others", &mut self.others);
        v.field("realm", &mut self.realm);
        v.field("username", &mut self.username);
        v.field("password", &mut self.password);
    }
}

impl Section for TrunkConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("uri", &mut self.uri);
        v.field("username", &mut self.username);
        v.field("password", &mut self.password);
        v.field("from_user", &mut self.from_user);
    }
}

impl Section for EchoConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("enabled", &mut self.enabled);
        v.field("extension", &mut self.extension);
        v.field("listen", &mut self.listen);
    }
}

impl Section for WebRtcConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("bind", &mut self.bind);
        v.field("port", &mut self.port);
        v.field("public_ip", &mut self.public_ip);
        v.field("consent_timeout_secs", &mut self.consent_timeout_secs);
    }
}

impl Section for RtpConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("bind", &mut self.bind);
        v.field("public_ip", &mut self.public_ip);
        v.field("port_min", &mut self.port_min);
        v.field("port_max", &mut self.port_max);
    }
}

impl Section for MediaConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("workers", &mut self.workers);
        v.field("timing_sample", &mut self.timing_sample);
    }
}

impl Section for HttpConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("listen", &mut self.listen);
    }
}

impl Section for AuthConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("required", &mut self.required);
        v.field("secret", &mut self.secret);
    }
}

impl Section for LimitsConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("max_calls", &mut self.max_calls);
        v.field("max_ws_message_bytes", &mut self.max_ws_message_bytes);
        v.field("ring_timeout_secs", &mut self.ring_timeout_secs);
        v.field("media_timeout_secs", &mut self.media_timeout_secs);
    }
}

impl Section for MetricsConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("enabled", &mut self.enabled);
    }
}

impl Section for LogConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("format", &mut self.format);
        v.field("level", &mut self.level);
    }
}

/// Overwrites the fields of `config` that `table` sets, collecting one error
/// per bad value and per unknown key.
pub(super) fn read(config: &mut Config, table: &Table, errors: &mut Vec<ConfigError>) {
    let mut reader = Reader {
        table,
        path: String::new(),
        known: Vec::new(),
        errors,
    };
    config.visit(&mut reader);
    reader.report_unknown();
}

/// The TOML form of `config`, every key present.
pub(super) fn write(config: &Config) -> Table {
    let mut writer = Writer(Table::new());
    config.clone().visit(&mut writer);
    writer.0
}

/// Every leaf of `table` with its path, e.g. (`["sip", "trunk", "uri"]`, value).
pub(super) fn leaves(table: &Table) -> Vec<(Vec<&str>, &Value)> {
    let mut out = Vec::new();
    collect_leaves(table, &mut Vec::new(), &mut out);
    out
}

fn collect_leaves<'a>(
    table: &'a Table,
    prefix: &mut Vec<&'a str>,
    out: &mut Vec<(Vec<&'a str>, &'a Value)>,
) {
    for (key, value) in table {
        prefix.push(key);
        match value {
            Value::Table(inner) => collect_leaves(inner, prefix, out),
            leaf => out.push((prefix.clone(), leaf)),
        }
        prefix.pop();
    }
}

/// Joins a section path and a key with dots: `sip.trunk` + `uri`.
pub(super) fn dotted(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

struct Reader<'a> {
    table: &'a Table,
    /// Dotted path of `table`; empty at the root.
    path: String,
    /// Keys the schema visited, so the rest can be reported as unknown.
    known: Vec<&'static str>,
    errors: &'a mut Vec<ConfigError>,
}

impl Reader<'_> {
    fn error(&mut self, key: &str, reason: String) {
        let key = dotted(&self.path, key);
        self.errors.push(ConfigError { key, reason });
    }

    fn report_unknown(self) {
        for key in self.table.keys() {
            if !self.known.contains(&key.as_str()) {
                let key = dotted(&self.path, key);
                let reason = "unknown key".to_owned();
                self.errors.push(ConfigError { key, reason });
            }
        }
    }
}

impl Visitor for Reader<'_> {
    fn field<T: Field>(&mut self, key: &'static str, value: &mut T) {
        self.known.push(key);
        let Some(raw) = self.table.get(key) else {
            return;
        };
        match T::from_toml(raw) {
            Ok(parsed) => *value = parsed,
            Err(reason) => self.error(key, reason),
        }
    }

    fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
        self.known.push(key);
        let Some(raw) = self.table.get(key) else {
            return;
        };
        let Some(table) = raw.as_table() else {
            let reason = format!("expected a table, got a {}", raw.type_str());
            return self.error(key, reason);
        };
        let mut child = Reader {
            table,
            path: dotted(&self.path, key),
            known: Vec::new(),
            errors: &mut *self.errors,
        };
        section.visit(&mut child);
        child.report_unknown();
    }
}

struct Writer(Table);

impl Visitor for Writer {
    fn field<T: Field>(&mut self, key: &'static str, value: &mut T) {
        self.0.insert(key.to_owned(), value.to_toml());
    }

    fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
        let mut inner = Writer(Table::new());
        section.visit(&mut inner);
        self.0.insert(key.to_owned(), Value::Table(inner.0));
    }
}
