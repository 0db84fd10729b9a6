//! The typed configuration and its embedded defaults.
//!
//! Defaults live here, in code; `config/siphon.toml` documents them and a test
//! keeps the two identical.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::connections::ConnectionsConfig;
use super::records::RecordsConfig;
use super::sip_tls::SipTlsConfig;
use super::srtp::SrtpMode;
use super::trunks::TrunkConfig;
use super::users::UserConfig;

/// The whole gateway configuration; `Config::default()` runs everything on 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// The SIP leg.
    pub sip: SipConfig,
    /// The built-in echo extension.
    pub echo: EchoConfig,
    /// The WebRTC leg.
    pub webrtc: WebRtcConfig,
    /// SIP-side RTP.
    pub rtp: RtpConfig,
    /// Relay loops.
    pub media: MediaConfig,
    /// The HTTP server.
    pub http: HttpConfig,
    /// Token authentication on `/ws`.
    pub auth: AuthConfig,
    /// `[[users]]`: browser users that are PBX extensions; empty by default.
    pub users: Vec<UserConfig>,
    /// Several siphons behind one SIP registrar (docs/scale-out.md).
    pub cluster: ClusterConfig,
    /// Capacity limits and timeouts.
    pub limits: LimitsConfig,
    /// Call records: the file and the webhooks they go to.
    pub records: RecordsConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `[sip]`: the SIP leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// SIP over UDP listen address; `None` disables UDP.
    pub udp: Option<SocketAddr>,
    /// SIP over TCP listen address; `None` disables TCP.
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS: listener, certificates, trust.
    pub tls: SipTlsConfig,
    /// Address put in Via/Contact/SDP o=; `None` = the listen IP.
    pub public_ip: Option<IpAddr>,
    /// Domain of From URIs; empty = the public IP (see `Config::sip_domain`).
    pub domain: String,
    /// User-Agent header value.
    pub user_agent: String,
    /// SIP-side codecs in preference order, canonical spelling (`opus`, `PCMU`, `PCMA`, `G722`).
    pub codecs: Vec<String>,
    /// Whether a browser may dial a full `sip:` URI.
    pub allow_uri_dial: bool,
    /// Largest SIP message accepted, in bytes (over UDP at most 8192: larger requests get 513).
    pub max_message_bytes: u32,
    /// Allow `a=crypto` (the SRTP key) over plain UDP/TCP signaling.
    pub srtp_allow_insecure_signaling: bool,
    /// The trunk for numbers and users, when there is one.
    pub trunk: TrunkConfig,
    /// Several trunks with failover; `trunk` is the one-entry form.
    pub trunks: Vec<TrunkConfig>,
    /// Who may call browser users.
    pub inbound: InboundConfig,
    /// Registrations browser sessions ask for with a `register` message.
    pub client_register: ClientRegisterConfig,
}

/// `[sip.client_register]`: may a browser session REGISTER an extension of
/// its own (Janus's model), with credentials it sends itself?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRegisterConfig {
    /// Whether `register` messages are accepted.
    pub enabled: bool,
    /// Registrar URI; `None` = `sip.trunk.uri` (see [`Config::client_registrar`]).
    pub registrar: Option<String>,
    /// Host of the address of record; empty = the registrar's host.
    pub domain: String,
    /// Expiry asked for when the message names none, in seconds.
    pub expires: u32,
}

impl Default for ClientRegisterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            registrar: None,
            domain: String::new(),
            expires: 300,
        }
    }
}

/// `[sip.inbound]`: which sources may send INVITEs to browser users.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundConfig {
    /// Trusted sources (trunk mode): IP addresses or CIDR ranges.
    pub trunk_sources: Vec<String>,
    /// INVITEs from other sources: `refuse` (403) or `challenge` (digest).
    pub others: InboundOthers,
    /// Digest realm of the challenge.
    pub realm: String,
    /// Digest username other sources must present.
    pub username: String,
    /// Digest password other sources must present.
    pub password: String,
    /// SRTP (SDES) toward callers.
    pub srtp: SrtpMode,
}

/// `[echo]`: a SIP UAS that answers and echoes RTP back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoConfig {
    /// Whether the echo extension runs.
    pub enabled: bool,
    /// The name a browser dials to reach it.
    pub extension: String,
    /// Its SIP UDP and TCP address.
    pub listen: SocketAddr,
}

/// `[webrtc]`: the shared WebRTC UDP ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// IP the WebRTC UDP ports bind.
    pub bind: IpAddr,
    /// UDP port of relay loop 0; loop `i` uses `port + i`.
    pub port: u16,
    /// Host candidate address; `None` = `bind`.
    pub public_ip: Option<IpAddr>,
    /// Seconds without a valid consent check before a leg is dropped.
    pub consent_timeout_secs: u64,
    /// Seconds without a valid consent check before `ice_disconnected`.
    pub disconnect_timeout_secs: u64,
}

/// `[rtp]`: SIP-side RTP ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpConfig {
    /// IP the RTP sockets bind.
    pub bind: IpAddr,
    /// `c=` address in SIP SDP; `None` = `bind`.
    pub public_ip: Option<IpAddr>,
    /// First RTP port (even; RTCP on port + 1).
    pub port_min: u16,
    /// Last port of the range.
    pub port_max: u16,
}

/// `[media]`: relay loops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Number of relay loops; 0 = number of cores (see `Config::worker_count`).
    pub workers: u32,
    /// Time 1 of N relayed packets for the relay-time histogram; 0 = off.
    pub timing_sample: u32,
    /// Receive and send buffer asked for each loop's WebRTC socket, which
    /// every browser of the loop shares; 0 = the kernel's default.
    pub socket_buffer_bytes: u32,
    /// The relay loops' IO path.
    pub io: RelayIo,
    /// Seconds between `quality` messages to the browser during an
    /// answered call; 0 = none.
    pub quality_interval_secs: u64,
}

/// How the relay loops do their socket IO (`media.io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayIo {
    /// io_uring where the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    /// io_uring or no start.
    IoUring,
    /// epoll, even where io_uring would work.
    Epoll,
}

/// `[http]`: web phone, `/ws`, `/metrics`, `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// HTTP listen address (HTTPS when `tls_cert` is set).
    pub listen: SocketAddr,
    /// PEM certificate (chain) served on `listen`; `None` = plain HTTP.
    pub tls_cert: Option<String>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<String>,
    /// A plain-HTTP listener that only redirects to HTTPS; `None` = none.
    pub redirect_listen: Option<SocketAddr>,
    /// TLS is terminated by a reverse proxy in front of siphon.
    pub behind_proxy: bool,
    /// Proxies whose `X-Forwarded-For` is believed (IPs or CIDR ranges).
    pub trusted_proxies: Vec<String>,
    /// Origins allowed to open `/ws`; empty = the page's own (the request's Host).
    pub allowed_origins: Vec<String>,
}

/// `[auth]`: token authentication on `/ws`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// Whether `/ws` requires a token; may be false only while every listener is loopback.
    pub required: bool,
    /// HS256 secret; required when `required`.
    pub secret: String,
    /// Whether users not in `[[users]]` may connect and receive calls to their own name.
    pub allow_dynamic_users: bool,
    /// The `aud` tokens must name; "" = tokens must carry no `aud`.
    pub audience: String,
}

/// `[cluster]`: several siphons behind a SIP registrar such as Kamailio.
/// Each instance registers the address of record of every user with a
/// session on it, with its own Contact, so that a call for the user reaches
/// the instance (or instances) the user is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This instance's name (`siphon_build_info{instance}`); empty = the host name.
    pub instance: String,
    /// Registrar URI; `None` = no cluster registrations.
    pub registrar: Option<String>,
    /// Host of the addresses of record; empty = the registrar's host.
    pub domain: String,
    /// Digest username, for a registrar that challenges; empty = the user part.
    pub username: String,
    /// Digest password; empty = the registrar does not challenge.
    pub password: String,
    /// Expiry asked for, in seconds: short, so that the registrar forgets
    /// the Contacts of a killed instance soon.
    pub expires: u32,
    /// Seconds between a user's last session here closing and the binding's
    /// removal: long enough for the user's new session elsewhere to register.
    pub unregister_after_secs: u32,
    /// Where a PBX reaches the cluster (`host[:port][;params]`), the Contact
    /// of `[[users]]` registered at the PBX; empty = the registrar's.
    pub contact: String,
}

impl ClusterConfig {
    /// Whether this instance is one of a cluster (`registrar` is set).
    pub fn enabled(&self) -> bool {
        self.registrar.is_some()
    }

    /// The Contact host part of `[[users]]` registered at the PBX while
    /// clustered: `contact`, else the registrar URI without its scheme;
    /// `None` when not clustered.
    pub fn front_door(&self) -> Option<String> {
        let registrar = self.registrar.as_deref()?;
        if !self.contact.is_empty() {
            return Some(self.contact.clone());
        }
        let rest = registrar
            .split_once(':')
            .map_or(registrar, |(_, rest)| rest);
        Some(rest.to_owned())
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            instance: String::new(),
            registrar: None,
            domain: String::new(),
            username: String::new(),
            password: String::new(),
            expires: 60,
            unregister_after_secs: 5,
            contact: String::new(),
        }
    }
}

/// `[limits]`: capacity and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Concurrent calls accepted.
    pub max_calls: u32,
    /// Largest WebSocket message accepted, in bytes.
    pub max_ws_message_bytes: u32,
    /// Seconds an outbound INVITE may go without a final answer before CANCEL.
    pub ring_timeout_secs: u64,
    /// Seconds without media before a call is hung up.
    pub media_timeout_secs: u64,
    /// Seconds an answered call waits for its lost WebSocket to come back.
    pub reconnect_grace_secs: u64,
    /// Calls at once for one user, inbound and outbound together.
    pub per_user_calls: u32,
    /// Browser sessions of one user rung at once by an inbound call.
    pub max_ring_sessions: u32,
    /// Seconds answered calls may go on after SIGTERM before siphon hangs them up.
    pub drain_secs: u64,
    /// `[limits.connections]`: connection caps and timeouts.
    pub connections: ConnectionsConfig,
}

/// `[metrics]`: Prometheus exposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether `/metrics` is served.
    pub enabled: bool,
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

/// What becomes of an INVITE from a source outside `sip.inbound.trunk_sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboundOthers {
    /// 403.
    #[default]
    Refuse,
    /// A digest challenge for `sip.inbound.username` and `password`.
    Challenge,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The default User-Agent: `siphon/<crate version>`.
pub fn default_user_agent() -> String {
    concat!("siphon/", env!("CARGO_PKG_VERSION")).to_owned()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(LOCALHOST, port)
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp: Some(loopback(5060)),
            tcp: Some(loopback(5060)),
            tls: SipTlsConfig::default(),
            public_ip: None,
            domain: String::new(),
            user_agent: default_user_agent(),
            codecs: ["opus", "PCMU", "PCMA", "G722"].map(String::from).to_vec(),
            allow_uri_dial: false,
            max_message_bytes: 65535,
            srtp_allow_insecure_signaling: false,
            trunk: TrunkConfig::single(),
            trunks: Vec::new(),
            inbound: InboundConfig::default(),
            client_register: ClientRegisterConfig::default(),
        }
    }
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            trunk_sources: ["127.0.0.0/8", "::1/128"].map(String::from).to_vec(),
            others: InboundOthers::Refuse,
            realm: "siphon".into(),
            username: String::new(),
            password: String::new(),
            srtp: SrtpMode::Off,
        }
    }
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            extension: "echo".to_owned(),
            listen: loopback(5062),
        }
    }
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            bind: LOCALHOST,
            port: 10000,
            public_ip: None,
            consent_timeout_secs: 30,
            disconnect_timeout_secs: 7,
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            bind: LOCALHOST,
            public_ip: None,
            port_min: 20000,
            port_max: 29999,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            timing_sample: 64,
            io: RelayIo::Auto,
            socket_buffer_bytes: 4 * 1024 * 1024,
            quality_interval_secs: 5,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: loopback(8080),
            tls_cert: None,
            tls_key: None,
            redirect_listen: None,
            behind_proxy: false,
            trusted_proxies: ["127.0.0.0/8", "::1/128"].map(String::from).to_vec(),
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_calls: 1000,
            max_ws_message_bytes: 65536,
            ring_timeout_secs: 60,
            media_timeout_secs: 60,
            reconnect_grace_secs: 30,
            per_user_calls: 4,
            max_ring_sessions: 10,
            drain_secs: 300,
            connections: ConnectionsConfig::default(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info,rsipstack=warn".to_owned(),
        }
    }
}

/// Shown instead of secrets so that logging a config never leaks them.
const REDACTED: &str = "<redacted>";

pub(super) fn redact(secret: &str) -> &str {
    if secret.is_empty() {
        ""
    } else {
        REDACTED
    }
}

impl fmt::Debug for InboundConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundConfig")
            .field("trunk_sources", &self.trunk_sources)
            .field("others", &self.others)
            .field("realm", &self.realm)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("srtp", &self.srtp)
            .finish()
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("required", &self.required)
            .field("secret", &redact(&self.secret))
            .field("allow_dynamic_users", &self.allow_dynamic_users)
            .field("audience", &self.audience)
            .finish()
    }
}
