//! Why the lightweight browser could not set up its media.

use std::io;

/// Why a browser's certificate, answer parsing, ICE or DTLS-SRTP failed;
/// the load tool's report and the tests show the text.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// The client certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] rcgen::Error),
    /// siphon's answer lacks an attribute the browser needs.
    #[error("answer has no {0}")]
    MissingAttribute(&'static str),
    /// The answer's candidate has no usable address and port.
    #[error("bad candidate {0}")]
    BadCandidate(String),
    /// The answer's fingerprint is not sha-256.
    #[error("not a sha-256 fingerprint: {0}")]
    NotSha256(String),
    /// A connectivity check could not be sent.
    #[error("stun send: {0}")]
    StunSend(#[source] io::Error),
    /// Reading the media socket failed during ICE.
    #[error("stun recv: {0}")]
    StunRecv(#[source] io::Error),
    /// No check was answered in time.
    #[error("ICE: no binding success before the deadline")]
    IceTimeout,
    /// The DTLS engine refused a packet or a timeout.
    #[error("dtls: {0}")]
    Dtls(#[source] dimpl::Error),
    /// A DTLS datagram could not be sent.
    #[error("dtls send: {0}")]
    DtlsSend(#[source] io::Error),
    /// Reading the media socket failed during DTLS.
    #[error("dtls recv: {0}")]
    DtlsRecv(#[source] io::Error),
    /// The handshake did not finish in time.
    #[error("DTLS: handshake not done before the deadline")]
    DtlsTimeout,
    /// siphon's certificate is not the one its answer pinned.
    #[error("DTLS: siphon's certificate does not match its fingerprint")]
    FingerprintMismatch,
    /// DTLS chose an SRTP profile the browser does not key.
    #[error("unexpected SRTP profile {0:?}")]
    UnexpectedProfile(dimpl::SrtpProfile),
    /// DTLS exported fewer bytes than the profile's keys and salts.
    #[error("short keying material")]
    ShortKeyingMaterial,
    /// The SRTP context refused the keys.
    #[error("srtp: {0}")]
    Srtp(#[source] rtc_shared::error::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_step() {
        assert_eq!(
            BrowserError::MissingAttribute("a=ice-pwd:").to_string(),
            "answer has no a=ice-pwd:"
        );
        assert_eq!(
            BrowserError::StunSend(io::Error::other("down")).to_string(),
            "stun send: down"
        );
        assert_eq!(
            BrowserError::IceTimeout.to_string(),
            "ICE: no binding success before the deadline"
        );
    }
}
