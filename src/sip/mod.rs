//! The SIP leg, on rsipstack: endpoint and transports, outbound calls (UAC),
//! upstream registration, inbound calls (UAS) and who may place them,
//! OPTIONS, the input guard, digest authentication and the built-in echo
//! extension.
//!
//! Layout: `ingress` (pure checks and stream framing) and `guard` (the UDP
//! socket wrapper and TCP/TLS reader that apply them) sit under rsipstack,
//! with `tls_guard` (the TLS port's handshakes) and `tls_seam` (rsipstack's
//! TLS connections over siphon's streams) in front of TLS;
//! `stack` builds one rsipstack endpoint on them; `endpoint`, `uac` and `uas`
//! are the gateway's side, `echo` the test and demo peer.

pub(crate) mod challenge;
mod dialog_states;
pub(crate) mod digest;
mod dtmf_info;
mod echo;
mod echo_dialog;
mod echo_media;
mod echo_script;
mod echo_sdp;
mod endpoint;
mod guard;
pub(crate) mod ingress;
mod ingress_canon;
mod ingress_rules;
mod options_ping;
mod policy;
mod redirect;
mod referral;
mod registration;
mod registration_plan;
mod registration_request;
mod reoffer;
mod session_refresh;
mod session_timer;
mod stack;
mod tls;
mod tls_guard;
mod tls_seam;
mod transfer;
pub mod trunk_choice;
mod uac;
mod uac_confirmed;
mod uac_request;
mod uas;
mod uas_auth;
mod uas_call;
mod udp_reader;

#[cfg(test)]
pub(crate) mod tests;

use std::net::{IpAddr, SocketAddr};

pub use digest::DigestAlgorithm;
pub use echo::{EchoBehavior, EchoRtp, EchoServer, EchoSettings, EchoStats, EchoTap};
pub use echo_script::{EchoChallenge, EchoScript, ReceivedInvite};
pub use endpoint::SipEndpoint;
pub use policy::{InboundPolicy, IpNet, IpNetError, OthersPolicy};
pub(crate) use redirect::host as uri_host;
pub use redirect::Forwarding;
pub use referral::{parse_refer_to, ReferTarget, Referral};
pub use registration::{Registration, RegistrationSpec, RegistrationState};
pub use reoffer::{glare_backoff, Reoffer};
pub use tls::{is_client_key, parse_certs, parse_key, PemError, SipTls, TlsError, TlsPeerError};
pub use transfer::{DialogRef, Progress, Replaces};
pub use uac::{UacEvent, UacHandle};
pub use uac_request::{TcpFailure, TcpPeerError};
pub use uas::{IncomingCall, UasEvent, UasHandle};

/// Settings for the SIP endpoint (the binary maps `config` onto this).
#[derive(Clone, Debug)]
pub struct SipSettings {
    /// UDP listen address, if UDP is enabled (port 0: any free port).
    pub udp: Option<SocketAddr>,
    /// TCP listen address, if TCP is enabled (port 0: any free port).
    pub tcp: Option<SocketAddr>,
    /// TLS: the listener, if any, and what TLS peers are trusted with.
    pub tls: Option<SipTls>,
    /// Address written in Via and Contact.
    pub public_ip: IpAddr,
    /// SIP domain of this gateway (From host of outbound calls).
    pub domain: String,
    /// User-Agent header value.
    pub user_agent: String,
    /// Largest SIP message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Who may call in.
    pub inbound: InboundPolicy,
}

/// A SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (RFC 3261 default).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP (`transport=tls`, `sips:`).
    Tls,
}

impl Transport {
    /// The `transport=` URI parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// rsipstack's name for it.
    pub(crate) fn stack(self) -> rsipstack::sip::Transport {
        match self {
            Transport::Udp => rsipstack::sip::Transport::Udp,
            Transport::Tcp => rsipstack::sip::Transport::Tcp,
            Transport::Tls => rsipstack::sip::Transport::Tls,
        }
    }
}

/// Digest credentials for answering a 401/407.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Digest username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// An outbound call request.
#[derive(Clone, Debug)]
pub struct OutboundInvite {
    /// Request-URI, e.g. `sip:1000@10.0.0.5:5060;transport=tcp`.
    pub target: String,
    /// User part of From.
    pub from_user: String,
    /// Display name of From.
    pub from_display: Option<String>,
    /// SDP offer.
    pub sdp: String,
    /// Credentials for one digest retry.
    pub credentials: Option<Credentials>,
    /// siphon's call id, carried in the tracing span.
    pub log_id: String,
    /// Where the call goes next if `target` does not answer or is
    /// unavailable (408, 503, a transport error), in order.
    pub failover: Vec<Hop>,
    /// More headers (name, value), e.g. a Replaces.
    pub headers: Vec<(String, String)>,
    /// How long `target` may take to answer at all (a 100 Trying counts)
    /// before the call moves to the next hop; `None`: the transaction's
    /// own timeout (Timer B, 32 s).
    pub response_wait: Option<std::time::Duration>,
}

impl OutboundInvite {
    /// Move on to the first failover hop (there must be one); the target
    /// that failed.
    pub(crate) fn next_hop(&mut self) -> String {
        let hop = self.failover.remove(0);
        self.from_user = hop.from_user;
        self.credentials = hop.credentials;
        self.response_wait = hop.response_wait;
        std::mem::replace(&mut self.target, hop.target)
    }
}

/// Another destination for an outbound call: the next trunk.
#[derive(Clone, Debug)]
pub struct Hop {
    /// Request-URI.
    pub target: String,
    /// User part of From.
    pub from_user: String,
    /// Credentials for one digest retry.
    pub credentials: Option<Credentials>,
    /// How long it may take to answer at all before the next hop is tried.
    pub response_wait: Option<std::time::Duration>,
}

/// How siphon's own BYE (or CANCEL, or 480 before an answer) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangupOutcome {
    /// Nothing to end: already over, or hung up before.
    Nothing,
    /// The request went out and its transaction is over (answered, or
    /// timed out: rsipstack reports both alike).
    Done,
    /// The request could not be sent.
    Failed,
}

impl HangupOutcome {
    /// The `outcome` label of `siphon_sip_hangups_total`.
    pub fn label(self) -> &'static str {
        match self {
            HangupOutcome::Nothing => "nothing",
            HangupOutcome::Done => "done",
            HangupOutcome::Failed => "failed",
        }
    }
}

/// Errors of the SIP module.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A socket could not be bound or read.
    #[error("sip io: {0}")]
    Io(#[from] std::io::Error),
    /// A listener could not bind its address.
    #[error("{transport:?} {addr}: {source}")]
    Bind {
        /// The listener's transport.
        transport: Transport,
        /// The address it was given.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SIP stack refused an operation (boxed: the stack's error is large).
    #[error("sip stack: {0}")]
    Stack(Box<rsipstack::Error>),
    /// A URI or header given by the caller is invalid.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// Which input.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// No listener for the transport a target needs.
    #[error("no {0:?} listener")]
    NoTransport(Transport),
    /// A TLS peer could not be reached: its certificate was refused, or the
    /// connection or handshake failed.
    #[error(transparent)]
    TlsPeer(TlsPeerError),
    /// A TCP peer could not be connected to.
    #[error(transparent)]
    Unreachable(TcpPeerError),
    /// The TLS certificate, key or CA bundle cannot be used.
    #[error("sip tls: {0}")]
    Tls(#[from] TlsError),
    /// The endpoint is shutting down.
    #[error("shutting down")]
    Shutdown,
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(Box::new(e))
    }
}
