//! The WebRTC leg: a sans-IO engine for one shared UDP port carrying many
//! peers (ICE-lite, DTLS-SRTP, SRTP/SRTCP, RFC 7983 demultiplexing).
//!
//! The relay loop owns the socket; it feeds datagrams and time into an
//! [`Endpoint`] and drains transmits, events and the next timeout from it.
//!
//! # Example
//!
//! The engine holds no socket and reads no clock: the caller passes every
//! datagram in with its source address and the time, and takes out what to
//! send, what happened, and when to call again. So a leg's whole life can
//! be run on a made-up clock, as here, without waiting for it.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use std::time::Instant;
//!
//! use rtc_srtp::crypto::providers::RingCrypto;
//! use rtc_stun::attributes::{
//!     RawAttribute, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
//! };
//! use rtc_stun::fingerprint::FINGERPRINT;
//! use rtc_stun::integrity::MessageIntegrity;
//! use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};
//! use rtc_stun::textattrs::TextAttribute;
//! use siphon::webrtc::{
//!     DtlsRole, Endpoint, Identity, LegConfig, LegEvent, Receive, DEFAULT_CONSENT_TIMEOUT,
//!     DEFAULT_DISCONNECT_TIMEOUT,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One endpoint per UDP port. Its certificate's fingerprint goes into
//! // every SDP siphon sends.
//! let mut endpoint = Endpoint::new(Arc::new(Identity::generate()?));
//!
//! // A leg per call, with what the SDP exchange settled. `t0` is whatever
//! // the caller says it is: the engine never asks the system.
//! let t0 = Instant::now();
//! let browser_cert = Identity::generate()?; // stands for the browser's a=fingerprint
//! let leg = LegConfig {
//!     local_ufrag: "siphonuf".into(),
//!     local_pwd: "siphonIcePassword0123456".into(),
//!     remote_ufrag: "brwsrufr".into(),
//!     remote_pwd: "browserIcePassword012345".into(),
//!     remote_fingerprint: browser_cert.fingerprint.clone(),
//!     consent_timeout: DEFAULT_CONSENT_TIMEOUT,
//!     disconnect_timeout: DEFAULT_DISCONNECT_TIMEOUT,
//!     dtls_role: DtlsRole::Server,
//! };
//! endpoint.add_leg(1, leg, t0)?;
//!
//! // The browser's ICE check, built as a browser builds it (rtc-stun):
//! // USERNAME is "ours:theirs", signed with our password, and
//! // USE-CANDIDATE nominates the path it came by.
//! let attr = |typ, value: &[u8]| RawAttribute {
//!     typ,
//!     length: value.len() as u16,
//!     value: value.to_vec(),
//! };
//! let setters: Vec<Box<dyn Setter>> = vec![
//!     Box::new(BINDING_REQUEST),
//!     Box::new(TransactionId::new()),
//!     Box::new(TextAttribute::new(ATTR_USERNAME, "siphonuf:brwsrufr".into())),
//!     Box::new(attr(ATTR_PRIORITY, &1_853_817_087u32.to_be_bytes())),
//!     Box::new(attr(ATTR_ICE_CONTROLLING, &7u64.to_be_bytes())),
//!     Box::new(attr(ATTR_USE_CANDIDATE, &[])),
//!     Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
//!         "siphonIcePassword0123456".into(),
//!         &RingCrypto,
//!     )),
//!     Box::new(FINGERPRINT),
//! ];
//! let mut check = Message::new();
//! check.build(&setters)?;
//!
//! // A datagram in: the bytes, where they came from, and when. The buffer
//! // has room to spare because SRTP is decrypted in place.
//! let from: SocketAddr = "192.0.2.10:50000".parse()?;
//! let mut buf = [0u8; 1500];
//! buf[..check.raw.len()].copy_from_slice(&check.raw);
//! let got = endpoint.handle_receive(t0, from, &mut buf, check.raw.len());
//! assert_eq!(got, Receive::Handled); // STUN is the engine's own business
//!
//! // What to send, and where: the caller owns the socket.
//! let reply = endpoint.poll_transmit().expect("a binding response");
//! assert_eq!(reply.dest, from);
//! let mut response = Message::new();
//! response.unmarshal_binary(&reply.data)?;
//! assert_eq!(response.typ, BINDING_SUCCESS);
//! assert!(endpoint.poll_transmit().is_none());
//!
//! // The engine says when it next needs the time; the caller sleeps until
//! // then (a relay loop passes it to its poll) or, here, simply jumps
//! // there. The browser sends no more checks, so the leg first reports a
//! // pause, then expires.
//! let mut events = Vec::new();
//! while let Some(at) = endpoint.poll_timeout() {
//!     endpoint.handle_timeout(at);
//!     while let Some((leg, event)) = endpoint.poll_event() {
//!         events.push((at - t0, leg, event));
//!     }
//!     if events.iter().any(|(_, _, e)| *e == LegEvent::ConsentExpired) {
//!         break;
//!     }
//! }
//! assert_eq!(
//!     events,
//!     [
//!         (DEFAULT_DISCONNECT_TIMEOUT, 1, LegEvent::Disconnected),
//!         (DEFAULT_CONSENT_TIMEOUT, 1, LegEvent::ConsentExpired),
//!     ]
//! );
//! // Thirty seconds of the leg's life went by without a sleep anywhere.
//! endpoint.remove_leg(1);
//! # Ok(())
//! # }
//! ```
//!
//! From there a browser's DTLS ClientHello goes in through the same
//! [`Endpoint::handle_receive`], siphon's flights come out of
//! [`Endpoint::poll_transmit`], [`LegEvent::Connected`] says when SRTP is
//! keyed, and then [`Receive::Rtp`] hands back decrypted packets in the
//! caller's buffer while [`Endpoint::protect_rtp`] encrypts outgoing ones
//! in place. A relay loop ([`crate::media::relay`]) is that caller: one
//! thread, one socket, the calls of that port.

mod demux;
mod dtls;
mod endpoint;
mod ice;
mod leg;
mod legs;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::srtp::{SrtpContext, SrtpProfile};
pub use dtls::{DtlsRole, Identity};
pub use endpoint::{Endpoint, IceRestart};
pub use ice::random_ice_credentials;

/// Identifier the caller gives each leg.
pub type LegId = u64;

/// Default time without a valid ICE check before consent expires (RFC 7675).
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`LegConfig::disconnect_timeout`].
pub const DEFAULT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(7);

/// Everything the engine needs to know about one leg, taken from the SDP exchange.
#[derive(Debug, Clone)]
pub struct LegConfig {
    /// Our ICE username fragment (a=ice-ufrag in our SDP).
    pub local_ufrag: String,
    /// Our ICE password (a=ice-pwd in our SDP).
    pub local_pwd: String,
    /// The browser's ICE username fragment.
    pub remote_ufrag: String,
    /// The browser's ICE password.
    pub remote_pwd: String,
    /// The browser's sha-256 certificate fingerprint value ("AB:CD:...").
    pub remote_fingerprint: String,
    /// Time without a valid check after which consent expires.
    pub consent_timeout: Duration,
    /// Time without a valid check after which the leg reports `Disconnected`.
    pub disconnect_timeout: Duration,
    /// Our DTLS role: `Server` unless the peer answered a=setup:passive.
    pub dtls_role: DtlsRole,
}

/// Outcome of [`Endpoint::handle_receive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// A decrypted RTP packet now sits in `buf[..len]`.
    Rtp {
        /// Leg the packet belongs to.
        leg: LegId,
        /// Length of the plain RTP packet.
        len: usize,
    },
    /// A decrypted RTCP compound packet now sits in `buf[..len]`.
    Rtcp {
        /// Leg the packet belongs to.
        leg: LegId,
        /// Length of the plain RTCP packet.
        len: usize,
    },
    /// Control traffic (STUN, DTLS) consumed by the engine.
    Handled,
    /// The datagram was discarded.
    Dropped(DropReason),
}

/// Why a datagram was discarded; [`DropReason::as_str`] gives a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// First byte matches no protocol of RFC 7983.
    NotWebRtc,
    /// STUN that does not decode, or lacks USERNAME/MESSAGE-INTEGRITY/FINGERPRINT.
    StunMalformed,
    /// STUN that is not a binding request (we are ICE-lite: we never send requests).
    StunUnexpected,
    /// USERNAME names no leg on this endpoint.
    StunUnknownUser,
    /// MESSAGE-INTEGRITY or FINGERPRINT does not verify.
    StunBadIntegrity,
    /// DTLS/SRTP from an address no leg has validated with ICE.
    UnknownSource,
    /// SRTP/SRTCP for a leg whose DTLS handshake is not done (or has failed).
    NotConnected,
    /// SRTP/SRTCP too short or with an unparseable header.
    SrtpMalformed,
    /// SRTP/SRTCP authentication tag mismatch.
    SrtpAuth,
    /// SRTP/SRTCP packet already seen or too old for the replay window.
    SrtpReplay,
    /// DTLS record that ended the leg's handshake with an error.
    Dtls,
}

impl DropReason {
    /// How many reasons there are (for per-reason counter arrays).
    pub const COUNT: usize = Self::ALL.len();

    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [DropReason; 11] = [
        DropReason::NotWebRtc,
        DropReason::StunMalformed,
        DropReason::StunUnexpected,
        DropReason::StunUnknownUser,
        DropReason::StunBadIntegrity,
        DropReason::UnknownSource,
        DropReason::NotConnected,
        DropReason::SrtpMalformed,
        DropReason::SrtpAuth,
        DropReason::SrtpReplay,
        DropReason::Dtls,
    ];

    /// Stable snake_case label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::NotWebRtc => "not_webrtc",
            DropReason::StunMalformed => "stun_malformed",
            DropReason::StunUnexpected => "stun_unexpected",
            DropReason::StunUnknownUser => "stun_unknown_user",
            DropReason::StunBadIntegrity => "stun_bad_integrity",
            DropReason::UnknownSource => "unknown_source",
            DropReason::NotConnected => "not_connected",
            DropReason::SrtpMalformed => "srtp_malformed",
            DropReason::SrtpAuth => "srtp_auth",
            DropReason::SrtpReplay => "srtp_replay",
            DropReason::Dtls => "dtls",
        }
    }
}

impl From<crate::srtp::Rejected> for DropReason {
    fn from(r: crate::srtp::Rejected) -> Self {
        match r {
            crate::srtp::Rejected::Malformed => DropReason::SrtpMalformed,
            crate::srtp::Rejected::Auth => DropReason::SrtpAuth,
            crate::srtp::Rejected::Replay => DropReason::SrtpReplay,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`Endpoint::protect_rtp`] / [`Endpoint::protect_rtcp`] refused a packet.
///
/// A plain `Copy` enum rather than a second error type with messages: it is
/// returned on the hot path and must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendError {
    /// No leg with that id.
    UnknownLeg,
    /// DTLS-SRTP is not established (yet, or any more).
    NotConnected,
    /// ICE has not validated any address to send to, or consent expired.
    NoPath,
    /// `buf` lacks room for the authentication tag / SRTCP index.
    BufferTooSmall,
    /// The packet is not a parseable RTP/RTCP packet.
    Malformed,
    /// The SRTP library refused to protect (e.g. key exhausted).
    Srtp,
}

impl From<crate::srtp::ProtectError> for SendError {
    fn from(e: crate::srtp::ProtectError) -> Self {
        match e {
            crate::srtp::ProtectError::BufferTooSmall => SendError::BufferTooSmall,
            crate::srtp::ProtectError::Malformed => SendError::Malformed,
            crate::srtp::ProtectError::Srtp => SendError::Srtp,
        }
    }
}

impl SendError {
    /// Stable snake_case label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            SendError::UnknownLeg => "unknown_leg",
            SendError::NotConnected => "not_connected",
            SendError::NoPath => "no_path",
            SendError::BufferTooSmall => "buffer_too_small",
            SendError::Malformed => "malformed",
            SendError::Srtp => "srtp",
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for SendError {}

/// A control datagram (STUN response, DTLS flight) for the relay loop to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub dest: SocketAddr,
    /// The datagram.
    pub data: Vec<u8>,
}

/// Something the call layer needs to know about a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// DTLS-SRTP is up; media can flow.
    Connected {
        /// The negotiated SRTP protection profile.
        profile: SrtpProfile,
    },
    /// No valid ICE check for `disconnect_timeout` on the nominated path:
    /// the browser's network may have changed (it should restart ICE). Once
    /// per quiet period; media still goes out until consent expires.
    Disconnected,
    /// No valid ICE check for `consent_timeout`: stop sending, end the leg.
    ConsentExpired,
    /// The peer closed DTLS (close_notify): the browser hung up the transport.
    Closed,
    /// The leg cannot continue (DTLS error, fingerprint mismatch, ...).
    Failed(WebRtcError),
}

/// Errors of the WebRTC engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebRtcError {
    /// Certificate generation for the DTLS identity failed (shared: rcgen's
    /// error is not `Clone`).
    #[error("certificate generation failed: {0}")]
    Certificate(#[source] Arc<rcgen::Error>),
    /// A leg with this id already exists.
    #[error("leg {0} already exists")]
    DuplicateLeg(LegId),
    /// No leg with this id.
    #[error("no leg {0}")]
    UnknownLeg(LegId),
    /// Leg ids are slot indexes, small and dense.
    #[error("leg id {0} is past the endpoint's table")]
    LegIdOutOfRange(LegId),
    /// Another leg already uses this local ICE ufrag.
    #[error("local ICE ufrag {0:?} is already in use")]
    DuplicateUfrag(String),
    /// ICE credentials are empty or use characters outside the ICE charset.
    #[error("invalid ICE credentials: {0}")]
    InvalidCredentials(&'static str),
    /// The remote fingerprint is not 32 colon-separated hex bytes.
    #[error("invalid sha-256 fingerprint {0:?}")]
    InvalidFingerprint(String),
    /// The DTLS peer's certificate does not match the SDP fingerprint.
    #[error("DTLS peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The DTLS handshake or session failed.
    #[error("DTLS: {0}")]
    Dtls(#[source] DtlsFailure),
    /// DTLS finished without negotiating an SRTP profile we support.
    #[error("no supported SRTP profile negotiated")]
    NoSrtpProfile,
    /// Building an SRTP context failed.
    #[error(transparent)]
    Srtp(#[from] crate::srtp::SrtpError),
}

/// Why the DTLS handshake or session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsFailure {
    /// The DTLS engine's error (shared: it is not `Clone`).
    #[error(transparent)]
    Engine(Arc<dimpl::Error>),
    /// The engine wants to send a datagram larger than siphon allows.
    #[error("datagram of {0} bytes")]
    Oversized(usize),
}
