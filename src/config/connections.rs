//! `[limits.connections]`: caps and timeouts for every TCP listener (SIP
//! TCP and TLS, HTTP/WebSocket and HTTPS), and the file descriptors kept
//! back for what must keep working while a flood is refused.

use super::error::ConfigError;
use super::schema::{Section, Visitor};
use super::types::Config;

/// `[limits.connections]`: connection caps and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionsConfig {
    /// Open connections at once on each SIP stream listener (TCP, TLS).
    pub sip_max: u32,
    /// Open connections from one IP address on each SIP stream listener.
    pub sip_per_ip: u32,
    /// Open connections at once on the HTTP(S) listener, WebSockets included.
    pub http_max: u32,
    /// Open HTTP(S) connections from one IP address (trusted proxies exempt).
    pub http_per_ip: u32,
    /// Seconds a SIP TCP/TLS connection may go without a complete message.
    pub idle_secs: u64,
    /// Seconds to finish a SIP message or an HTTP request head once begun
    /// (for HTTP also the keep-alive wait for the next request).
    pub header_timeout_secs: u64,
    /// File descriptors kept back from SIP connections; HTTP ones may use
    /// half (probes, browsers), the other half is for calls' RTP sockets.
    pub fd_reserve: u32,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            sip_max: 10_000,
            sip_per_ip: 256,
            http_max: 10_000,
            http_per_ip: 256,
            idle_secs: 300,
            header_timeout_secs: 10,
            fd_reserve: 8192,
        }
    }
}

impl Section for ConnectionsConfig {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("sip_max", &mut self.sip_max);
        v.field("sip_per_ip", &mut self.sip_per_ip);
        v.field("http_max", &mut self.http_max);
        v.field("http_per_ip", &mut self.http_per_ip);
        v.field("idle_secs", &mut self.idle_secs);
        v.field("header_timeout_secs", &mut self.header_timeout_secs);
        v.field("fd_reserve", &mut self.fd_reserve);
    }
}

/// Every cap and timeout is at least 1 and a timeout at most a day; a
/// per-IP cap above its listener's cap could never be reached, which is
/// most likely a typo.
pub(super) fn check(config: &Config, errors: &mut Vec<ConfigError>) {
    let c = &config.limits.connections;
    let positive = [
        ("sip_max", u64::from(c.sip_max)),
        ("sip_per_ip", u64::from(c.sip_per_ip)),
        ("http_max", u64::from(c.http_max)),
        ("http_per_ip", u64::from(c.http_per_ip)),
        ("idle_secs", c.idle_secs),
        ("header_timeout_secs", c.header_timeout_secs),
    ];
    for (key, value) in positive {
        if value == 0 {
            errors.push(ConfigError::new(key_of(key), "must be at least 1"));
        }
    }
    check_timeouts(c, errors);
    for (key, per_ip, max, max_key) in [
        ("sip_per_ip", c.sip_per_ip, c.sip_max, "sip_max"),
        ("http_per_ip", c.http_per_ip, c.http_max, "http_max"),
    ] {
        if per_ip > max {
            let reason = format!("must not exceed {} ({max})", key_of(max_key));
            errors.push(ConfigError::new(key_of(key), reason));
        }
    }
}

/// The longest timeout accepted: a day; larger values would only overflow
/// the clock arithmetic (an `Instant` plus the timeout).
const MAX_TIMEOUT_SECS: u64 = 86_400;

fn check_timeouts(c: &ConnectionsConfig, errors: &mut Vec<ConfigError>) {
    for (key, value) in [
        ("idle_secs", c.idle_secs),
        ("header_timeout_secs", c.header_timeout_secs),
    ] {
        if value > MAX_TIMEOUT_SECS {
            let reason = format!("must be at most {MAX_TIMEOUT_SECS} (a day)");
            errors.push(ConfigError::new(key_of(key), reason));
        }
    }
}

fn key_of(key: &str) -> String {
    format!("limits.connections.{key}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::Config;

    fn errors(toml: &str) -> String {
        match Config::from_toml_str(toml, &HashMap::new()) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn zero_caps_and_timeouts_name_their_key() {
        let text = errors("[limits.connections]\nsip_max = 0\nidle_secs = 0\n");
        assert!(text.contains("limits.connections.sip_max"), "{text}");
        assert!(text.contains("limits.connections.idle_secs"), "{text}");
    }

    #[test]
    fn per_ip_above_the_cap_is_an_error() {
        let text = errors("[limits.connections]\nhttp_max = 10\nhttp_per_ip = 11\n");
        assert!(text.contains("limits.connections.http_per_ip"), "{text}");
        assert!(text.contains("http_max"), "{text}");
    }

    #[test]
    fn a_timeout_over_a_day_is_an_error() {
        let text = errors("[limits.connections]\nheader_timeout_secs = 1000000000\n");
        assert!(
            text.contains("limits.connections.header_timeout_secs"),
            "{text}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(errors(""), "");
    }
}
