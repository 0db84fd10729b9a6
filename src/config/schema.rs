//! The schema: which keys each section has, listed once per section and
//! walked by visitors that read a TOML table, write one, or list its keys.
//!
//! Arrays of tables (`[[users]]`) are lists of sections; an element's keys
//! are named `users[1].extension` in errors.

use toml::{Table, Value};

use super::error::ConfigError;
use super::field::Field;
use super::reader::Reader;
use super::trunks::TrunkConfig;
use super::types::{
    AuthConfig, ClientRegisterConfig, ClusterConfig, Config, EchoConfig, HttpConfig, InboundConfig,
    LimitsConfig, LogConfig, MediaConfig, MetricsConfig, RtpConfig, SipConfig, WebRtcConfig,
};
use super::users::UserConfig;

/// Something done to every key of the schema, in order.
pub(super) trait Visitor {
    /// A leaf key and its typed value.
    fn field<T: Field>(&mut self, key: &'static str, value: &mut T);
    /// A nested table.
    fn section<S: Section>(&mut self, key: &'static str, section: &mut S);
    /// An array of tables, each element a section.
    fn list<S: Section + Default>(&mut self, key: &'static str, items: &mut Vec<S>);
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
        v.list("users", &mut self.users);
        v.section("cluster", &mut self.cluster);
        v.section("limits", &mut self.limits);
        v.section("records", &mut self.records);
        v.section("metrics", &mut self.metrics);
        v.section("log", &mut self.log);
    }
}

impl Section for SipConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("udp", &mut self.udp);
        v.field("tcp", &mut self.tcp);
        self.tls.visit(v);
        v.field("public_ip", &mut self.public_ip);
        v.field("domain", &mut self.domain);
        v.field("user_agent", &mut self.user_agent);
        v.field("codecs", &mut self.codecs);
        v.field("allow_uri_dial", &mut self.allow_uri_dial);
        v.field("max_message_bytes", &mut self.max_message_bytes);
        v.field(
            "srtp_allow_insecure_signaling",
            &mut self.srtp_allow_insecure_signaling,
        );
        v.section("trunk", &mut self.trunk);
        v.list("trunks", &mut self.trunks);
        v.section("inbound", &mut self.inbound);
        v.section("client_register", &mut self.client_register);
    }
}

impl Section for ClientRegisterConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("enabled", &mut self.enabled);
        v.field("registrar", &mut self.registrar);
        v.field("domain", &mut self.domain);
        v.field("expires", &mut self.expires);
    }
}

impl Section for InboundConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("trunk_sources", &mut self.trunk_sources);
        v.field("others", &mut self.others);
        v.field("realm", &mut self.realm);
        v.field("username", &mut self.username);
        v.field("password", &mut self.password);
        v.field("srtp", &mut self.srtp);
    }
}

impl Section for TrunkConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("name", &mut self.name);
        v.field("uri", &mut self.uri);
        v.field("username", &mut self.username);
        v.field("password", &mut self.password);
        v.field("from_user", &mut self.from_user);
        v.field("srtp", &mut self.srtp);
        v.field("priority", &mut self.priority);
        v.field("weight", &mut self.weight);
        v.field("ping_interval_secs", &mut self.ping_interval_secs);
        v.field("down_after", &mut self.down_after);
        v.field("up_after", &mut self.up_after);
        v.field("response_timeout_secs", &mut self.response_timeout_secs);
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
        v.field("disconnect_timeout_secs", &mut self.disconnect_timeout_secs);
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
        v.field("socket_buffer_bytes", &mut self.socket_buffer_bytes);
        v.field("io", &mut self.io);
        v.field("quality_interval_secs", &mut self.quality_interval_secs);
    }
}

impl Section for HttpConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("listen", &mut self.listen);
        v.field("tls_cert", &mut self.tls_cert);
        v.field("tls_key", &mut self.tls_key);
        v.field("redirect_listen", &mut self.redirect_listen);
        v.field("behind_proxy", &mut self.behind_proxy);
        v.field("trusted_proxies", &mut self.trusted_proxies);
        v.field("allowed_origins", &mut self.allowed_origins);
    }
}

impl Section for AuthConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("required", &mut self.required);
        v.field("secret", &mut self.secret);
        v.field("allow_dynamic_users", &mut self.allow_dynamic_users);
        v.field("audience", &mut self.audience);
    }
}

impl Section for UserConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("name", &mut self.name);
        v.field("extension", &mut self.extension);
        v.field("register", &mut self.register);
        v.field("registrar", &mut self.registrar);
        v.field("domain", &mut self.domain);
        v.field("username", &mut self.username);
        v.field("password", &mut self.password);
        v.field("expires", &mut self.expires);
        v.field("keep_registered", &mut self.keep_registered);
        v.field("unregister_after_secs", &mut self.unregister_after_secs);
        v.field("srtp", &mut self.srtp);
    }
}

impl Section for ClusterConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("instance", &mut self.instance);
        v.field("registrar", &mut self.registrar);
        v.field("domain", &mut self.domain);
        v.field("username", &mut self.username);
        v.field("password", &mut self.password);
        v.field("expires", &mut self.expires);
        v.field("unregister_after_secs", &mut self.unregister_after_secs);
        v.field("contact", &mut self.contact);
    }
}

impl Section for LimitsConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("max_calls", &mut self.max_calls);
        v.field("max_ws_message_bytes", &mut self.max_ws_message_bytes);
        v.field("ring_timeout_secs", &mut self.ring_timeout_secs);
        v.field("media_timeout_secs", &mut self.media_timeout_secs);
        v.field("reconnect_grace_secs", &mut self.reconnect_grace_secs);
        v.field("per_user_calls", &mut self.per_user_calls);
        v.field("max_ring_sessions", &mut self.max_ring_sessions);
        v.field("drain_secs", &mut self.drain_secs);
        v.section("connections", &mut self.connections);
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
    Reader::read(config, table, String::new(), errors);
}

/// The TOML form of `config`, every key present; an empty list is left out,
/// as an array of tables with no elements has no TOML form of its own.
pub(super) fn write(config: &Config) -> Table {
    let mut writer = Writer(Table::new());
    config.clone().visit(&mut writer);
    writer.0
}

/// The defaults with one default element for each element of each list in
/// `table`: the keys that exist for this file, each with a value of its type.
pub(super) fn template(table: &Table) -> Table {
    let mut config = Config::default();
    config.visit(&mut Shaper(Some(table)));
    write(&config)
}

/// Dotted paths of the schema's lists, e.g. `["users"]`.
pub(super) fn list_keys() -> Vec<String> {
    let mut keys = ListKeys {
        path: String::new(),
        found: Vec::new(),
    };
    Config::default().visit(&mut keys);
    keys.found
}

/// Every leaf of `table` with its path, e.g. (`["sip", "trunk", "uri"]`, value);
/// an element of an array of tables is a path segment of its index
/// (`["users", "0", "password"]`).
pub(super) fn leaves(table: &Table) -> Vec<(Vec<String>, &Value)> {
    let mut out = Vec::new();
    collect_leaves(table, &mut Vec::new(), &mut out);
    out
}

fn collect_leaves<'a>(
    table: &'a Table,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Value)>,
) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            Value::Table(inner) => collect_leaves(inner, prefix, out),
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table) => {
                for (i, item) in items.iter().enumerate() {
                    prefix.push(i.to_string());
                    if let Value::Table(inner) = item {
                        collect_leaves(inner, prefix, out);
                    }
                    prefix.pop();
                }
            }
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

/// The path of element `index` of the list at `path`: `users[1]`.
pub(super) fn element(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The key that errors use for a leaf path: `["users", "1", "name"]` -> `users[1].name`.
pub(super) fn key_name(path: &[String]) -> String {
    path.iter().fold(String::new(), |key, segment| {
        // No schema key is a number, so a numeric segment is an index.
        match segment.parse::<usize>() {
            Ok(index) => element(&key, index),
            Err(_) => dotted(&key, segment),
        }
    })
}

struct Writer(Table);

impl Visitor for Writer {
    fn field<T: Field>(&mut self, key: &'static str, value: &mut T) {
        self.0.insert(key.to_owned(), value.to_toml());
    }

    fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
        self.0
            .insert(key.to_owned(), Value::Table(written(section)));
    }

    fn list<S: Section + Default>(&mut self, key: &'static str, items: &mut Vec<S>) {
        if !items.is_empty() {
            let tables = items.iter_mut().map(|item| Value::Table(written(item)));
            self.0
                .insert(key.to_owned(), Value::Array(tables.collect()));
        }
    }
}

fn written<S: Section>(section: &mut S) -> Table {
    let mut inner = Writer(Table::new());
    section.visit(&mut inner);
    inner.0
}

/// Gives every list as many default elements as the matching array of `.0`
/// has, whatever their contents: reading reports bad elements.
struct Shaper<'a>(Option<&'a Table>);

impl Visitor for Shaper<'_> {
    fn field<T: Field>(&mut self, _: &'static str, _: &mut T) {}

    fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
        let inner = self.0.and_then(|t| t.get(key)).and_then(Value::as_table);
        section.visit(&mut Shaper(inner));
    }

    fn list<S: Section + Default>(&mut self, key: &'static str, items: &mut Vec<S>) {
        let array = self.0.and_then(|t| t.get(key)).and_then(Value::as_array);
        let elements = array.map_or(&[][..], Vec::as_slice);
        *items = elements
            .iter()
            .map(|element| {
                let mut item = S::default();
                item.visit(&mut Shaper(element.as_table()));
                item
            })
            .collect();
    }
}

/// Collects the dotted path of every list.
struct ListKeys {
    path: String,
    found: Vec<String>,
}

impl Visitor for ListKeys {
    fn field<T: Field>(&mut self, _: &'static str, _: &mut T) {}

    fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
        let inner = dotted(&self.path, key);
        let outer = std::mem::replace(&mut self.path, inner);
        section.visit(self);
        self.path = outer;
    }

    fn list<S: Section + Default>(&mut self, key: &'static str, _: &mut Vec<S>) {
        self.found.push(dotted(&self.path, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key's dotted path, in visiting order.
    #[derive(Default)]
    struct AllKeys {
        path: String,
        found: Vec<String>,
    }

    impl Visitor for AllKeys {
        fn field<T: Field>(&mut self, key: &'static str, _: &mut T) {
            self.found.push(dotted(&self.path, key));
        }

        fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
            let inner = dotted(&self.path, key);
            let outer = std::mem::replace(&mut self.path, inner);
            section.visit(self);
            self.path = outer;
        }

        fn list<S: Section + Default>(&mut self, key: &'static str, _: &mut Vec<S>) {
            let inner = dotted(&self.path, key);
            let outer = std::mem::replace(&mut self.path, inner);
            S::default().visit(self);
            self.path = outer;
        }
    }

    #[test]
    fn every_key_is_visited_once() {
        let mut keys = AllKeys::default();
        Config::default().visit(&mut keys);
        let mut seen = std::collections::BTreeSet::new();
        let twice: Vec<&String> = keys.found.iter().filter(|k| !seen.insert(*k)).collect();
        assert!(twice.is_empty(), "visited twice: {twice:?}");
        assert!(keys.found.iter().any(|k| k == "http.allowed_origins"));
    }
}
