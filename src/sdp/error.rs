//! The one error type of the `sdp` module.

use std::sync::Arc;

use thiserror::Error;

use super::crypto::CryptoRefusal;

/// Everything that can go wrong while reading or translating an SDP.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The text is not a session description at all.
    #[error("malformed SDP: {0}")]
    Malformed(#[source] Malformation),
    /// No usable audio m-line (absent, or rejected with port 0 in an offer).
    #[error("no audio m-line in the SDP")]
    NoAudio,
    /// A WebRTC description without a=ice-ufrag / a=ice-pwd.
    #[error("missing ICE credentials (a=ice-ufrag and a=ice-pwd)")]
    MissingIceCredentials,
    /// ICE credentials outside RFC 8839's lengths or characters; says which.
    #[error("invalid ICE credentials: {0}")]
    InvalidIceCredentials(String),
    /// An a=fingerprint that does not parse, or whose digest length does
    /// not match its hash name; says which.
    #[error("invalid DTLS fingerprint: {0}")]
    InvalidFingerprint(String),
    /// Fingerprints whose hash the DTLS leg cannot pin (it needs sha-256).
    #[error("unsupported DTLS fingerprint hash {0} (sha-256 required)")]
    UnsupportedFingerprint(String),
    /// A WebRTC description without a=fingerprint.
    #[error("missing DTLS fingerprint (a=fingerprint)")]
    MissingFingerprint,
    /// The audio m-line uses a transport profile this side cannot handle.
    #[error("unsupported transport profile {found} (expected {expected})")]
    UnsupportedProfile {
        /// The profile found on the m-line.
        found: String,
        /// The profile this side requires.
        expected: &'static str,
    },
    /// A DTLS role the gateway cannot take (it is always the DTLS server).
    #[error("unsupported DTLS setup role {0}")]
    UnsupportedSetup(String),
    /// No connection address for the media (no c= line at either level).
    #[error("missing connection address (c=)")]
    MissingConnection,
    /// A c= address that is not an IP address.
    #[error("invalid connection address {0}")]
    InvalidAddress(String),
    /// `a=crypto` lines, none of which siphon supports: why the first is
    /// not; or an SDES answer siphon cannot pair with its offer.
    #[error("no supported a=crypto line: {0}")]
    CryptoRefused(#[from] CryptoRefusal),
    /// An attribute whose value does not parse.
    #[error("invalid attribute a={name}:{value}")]
    InvalidAttribute {
        /// Attribute name.
        name: String,
        /// The raw value.
        value: String,
    },
    /// The two sides share no audio codec; the text is the reason of a 488.
    #[error(
        "no common codec (offered: {}; supported: {})",
        list(.offered),
        list(.supported)
    )]
    NoCommonCodec {
        /// Codec names the remote side offered or answered.
        offered: Vec<String>,
        /// Codec names this side accepts.
        supported: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Why a text is not a session description.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformation {
    /// Nothing but white space.
    #[error("empty body")]
    EmptyBody,
    /// The parser's error (shared: it is not `Clone`).
    #[error(transparent)]
    Parser(Arc<sdp_types::ParserError>),
}

impl From<sdp_types::ParserError> for SdpError {
    fn from(e: sdp_types::ParserError) -> Self {
        SdpError::Malformed(Malformation::Parser(Arc::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_reads_as_before() {
        let empty = SdpError::Malformed(Malformation::EmptyBody);
        assert_eq!(empty.to_string(), "malformed SDP: empty body");
        let parsed = sdp_types::Session::parse(b"garbage").expect_err("not SDP");
        let shown = parsed.to_string();
        let err = SdpError::from(parsed);
        assert_eq!(err.to_string(), format!("malformed SDP: {shown}"));
        assert!(std::error::Error::source(&err).is_some());
    }
}
