//! Typed configuration from a TOML file plus `SIPHON_*` environment overrides.
//!
//! Loading never stops at the first problem: the file is read as a TOML
//! table, each known key is converted on its own, and cross-key rules run
//! afterwards, so [`ConfigErrors`] lists everything that needs fixing.
//! Precedence: environment over file over embedded defaults.

mod connections;
mod env;
mod error;
mod field;
mod public_ip;
mod reader;
mod records;
mod schema;
mod sip_tls;
mod srtp;
mod trunks;
mod types;
mod users;
mod validate;
mod validate_http;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

pub use connections::ConnectionsConfig;
pub use env::{Env, ProcessEnv, ENV_PREFIX, RESERVED_VARS};
pub use error::{ConfigError, ConfigErrors};
pub use records::{webhook_uri, RecordsConfig};
pub use sip_tls::{wants_tls, SipTlsConfig};
pub use srtp::{secure_uri, SrtpMode, ALLOW_INSECURE_KEY};
pub use trunks::TrunkConfig;
pub use types::{
    default_user_agent, AuthConfig, ClientRegisterConfig, Config, EchoConfig, HttpConfig,
    InboundConfig, InboundOthers, LimitsConfig, LogConfig, LogFormat, MediaConfig, MetricsConfig,
    RelayIo, RtpConfig, SipConfig, WebRtcConfig,
};
pub use users::{UserConfig, MAX_EXPIRES, MIN_EXPIRES};
pub use validate::CODECS;

impl Config {
    /// Loads `path` (or only the defaults when `None`), applies `env`, and validates.
    pub fn load(path: Option<&Path>, env: &impl Env) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let table = match path {
            None => toml::Table::new(),
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => error::parse_table(&text, &path.display().to_string(), &mut errors),
                Err(e) => {
                    let reason = format!("cannot read the config file: {e}");
                    errors.push(ConfigError::new(path.display().to_string(), reason));
                    toml::Table::new()
                }
            },
        };
        build(table, env, errors)
    }

    /// Like [`Config::load`] with the file's text given directly.
    pub fn from_toml_str(text: &str, env: &impl Env) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let table = error::parse_table(text, "config", &mut errors);
        build(table, env, errors)
    }

    /// Address for Via/Contact/SDP o=: `sip.public_ip`, else the UDP (then TCP) listen IP.
    ///
    /// Never unspecified in a validated config: a wildcard listener needs `sip.public_ip`.
    pub fn sip_public_ip(&self) -> IpAddr {
        let listen = self.sip.udp.or(self.sip.tcp).or(self.sip.tls.listen);
        let listen = listen.map(|a| a.ip());
        self.sip
            .public_ip
            .or(listen)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Host part of From URIs: `sip.domain`, else the public IP (bracketed if IPv6).
    pub fn sip_domain(&self) -> String {
        if !self.sip.domain.is_empty() {
            return self.sip.domain.clone();
        }
        match self.sip_public_ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        }
    }

    /// Host candidate address: `webrtc.public_ip`, else `webrtc.bind`.
    pub fn webrtc_public_ip(&self) -> IpAddr {
        self.webrtc.public_ip.unwrap_or(self.webrtc.bind)
    }

    /// `c=` address in SIP SDP: `rtp.public_ip`, else `rtp.bind`.
    pub fn rtp_public_ip(&self) -> IpAddr {
        self.rtp.public_ip.unwrap_or(self.rtp.bind)
    }

    /// Number of relay loops: `media.workers`, or the core count when 0.
    pub fn worker_count(&self) -> usize {
        match self.media.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }

    /// The WebRTC UDP ports, one per relay loop (`webrtc.port + i`).
    pub fn webrtc_ports(&self) -> RangeInclusive<u16> {
        let extra = u16::try_from(self.worker_count() - 1).unwrap_or(u16::MAX);
        self.webrtc.port..=self.webrtc.port.saturating_add(extra)
    }

    /// Whether every network listener is on a loopback address (then `/ws` may skip auth).
    pub fn all_listeners_loopback(&self) -> bool {
        self.listeners().iter().all(|(_, ip)| ip.is_loopback())
    }

    /// Where a local client (the health check) reaches the HTTP server: `http.listen`
    /// with an unspecified IP replaced by the loopback address of the same family.
    pub fn http_local_addr(&self) -> SocketAddr {
        let listen = self.http.listen;
        let ip = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, listen.port())
    }

    /// The listeners that decide whether auth may be off, by key.
    fn listeners(&self) -> Vec<(&'static str, IpAddr)> {
        let mut out = Vec::new();
        if let Some(addr) = self.sip.udp {
            out.push(("sip.udp", addr.ip()));
        }
        if let Some(addr) = self.sip.tcp {
            out.push(("sip.tcp", addr.ip()));
        }
        if let Some(addr) = self.sip.tls.listen {
            out.push(("sip.tls", addr.ip()));
        }
        out.push(("http.listen", self.http.listen.ip()));
        out.push(("webrtc.bind", self.webrtc.bind));
        out.push(("rtp.bind", self.rtp.bind));
        out
    }
}

impl WebRtcConfig {
    /// `consent_timeout_secs` as a duration.
    pub fn consent_timeout(&self) -> Duration {
        Duration::from_secs(self.consent_timeout_secs)
    }

    /// `disconnect_timeout_secs` as a duration.
    pub fn disconnect_timeout(&self) -> Duration {
        Duration::from_secs(self.disconnect_timeout_secs)
    }
}

impl LimitsConfig {
    /// `ring_timeout_secs` as a duration.
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout_secs)
    }

    /// `media_timeout_secs` as a duration.
    pub fn media_timeout(&self) -> Duration {
        Duration::from_secs(self.media_timeout_secs)
    }

    /// `reconnect_grace_secs` as a duration.
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(self.reconnect_grace_secs)
    }

    /// `drain_secs` as a duration.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
}

/// File table + environment -> typed, validated config, with every error.
fn build(
    mut table: toml::Table,
    env: &impl Env,
    mut errors: Vec<ConfigError>,
) -> Result<Config, ConfigErrors> {
    let template = schema::template(&table);
    let origins = env::apply(env, &template, &mut table, &mut errors);
    let mut config = Config::default();
    schema::read(&mut config, &table, &mut errors);
    validate::finish(&mut config, &mut errors);
    public_ip::check_public_ips(&config, &mut errors);
    // A value that came from the environment is easier to fix when the error says so.
    for error in &mut errors {
        if let Some((_, var)) = origins.iter().find(|(key, _)| *key == error.key) {
            error.reason.push_str(&format!(" (set by {var})"));
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}
