//! Why the call machines refuse what a peer sent: an SDES negotiation
//! ([`SdesError`]) or a change to an answered session ([`SessionError`]).
//! Their texts are what peers and browsers read (a 488's reason, an
//! `error`'s message, a `hangup`'s reason): they are formatted only there.

use crate::config::ALLOW_INSECURE_KEY;
use crate::sdp::{Direction, SdpError};

/// SDES-SRTP toward the SIP side could not be agreed (RFC 4568).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    /// siphon requires SRTP and the SIP answer carries no key.
    #[error("SRTP is required and the SIP side answered without a=crypto")]
    RequiredButAnsweredPlain,
    /// The answer's key line answers none of siphon's.
    #[error("the answer's a=crypto matches no offered line")]
    NoOfferedLine,
    /// siphon requires SRTP and the SIP offer carries no key.
    #[error("SRTP is required and the offer has no a=crypto")]
    RequiredButOfferedPlain,
    /// RTP/SAVP offered to a user whose SRTP is off.
    #[error("RTP/SAVP offered and SRTP is off for this call")]
    Off,
    /// Keys would go back over plain signaling.
    #[error(
        "siphon does not send SRTP keys over plain UDP/TCP signaling ({key})",
        key = ALLOW_INSECURE_KEY
    )]
    PlainSignaling,
    /// No offered suite is one siphon has a key for.
    #[error("no offered crypto suite is one siphon has a key for")]
    NoSuite,
    /// A re-offer or re-answer drops the key of an SRTP call.
    #[error("the SDP drops SRTP (no a=crypto) on an SRTP call")]
    Dropped,
    /// A re-offer or re-answer changes the call's suite (named).
    #[error("the SDP changes the SRTP suite; this call keeps {0}")]
    SuiteChanged(&'static str),
    /// SRTP is required toward a SIP URI that is not reached over TLS.
    #[error(
        "SRTP is required and {0} is not a TLS URI: siphon does not send SRTP keys \
         over plain UDP/TCP signaling ({key})",
        key = ALLOW_INSECURE_KEY
    )]
    RequiredOverPlain(String),
    /// RTP/SAVP in a re-offer or re-answer of a plain call.
    #[error("RTP/SAVP on a plain RTP call")]
    SavpOnPlain,
}

/// A change to an answered session that siphon does not take; the
/// session goes on as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The SIP side's re-offer does not read as SDP siphon takes.
    #[error("unusable re-offer: {0}")]
    UnusableReoffer(SdpError),
    /// The SIP side's answer to siphon's re-INVITE does not read.
    #[error("unusable answer: {0}")]
    UnusableAnswer(SdpError),
    /// The re-offer leaves out the codec in use.
    #[error("the re-offer drops payload type {0}, the call's codec")]
    DropsCodec(u8),
    /// The keys do not fit the call's SRTP.
    #[error(transparent)]
    Sdes(#[from] SdesError),
    /// The browser's SDP does not read, or siphon's own cannot be written.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// The browser's re-offer brings another certificate.
    #[error("the re-offer changes the DTLS fingerprint; place a new call")]
    OfferFingerprint,
    /// The browser's re-offer adds or removes m-lines.
    #[error("the re-offer adds or removes m-lines")]
    Mlines,
    /// The browser's answer brings another certificate.
    #[error("the answer changes the DTLS fingerprint")]
    AnswerFingerprint,
    /// The browser's answer brings other ICE credentials.
    #[error("the answer changes the ICE credentials; restart ICE with an offer")]
    AnswerIce,
    /// The browser's answer to siphon's re-offer turns the direction
    /// again (the SIP side agreed to the one it offered).
    #[error("direction {}", .0.as_str())]
    Direction(Direction),
    /// No session has been agreed yet.
    #[error("no session to change yet")]
    NoSession,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_peers_read() {
        let plain = SessionError::from(SdesError::PlainSignaling);
        assert_eq!(
            plain.to_string(),
            "siphon does not send SRTP keys over plain UDP/TCP signaling \
             (sip.srtp_allow_insecure_signaling)"
        );
        let unusable = SessionError::UnusableAnswer(SdpError::NoAudio);
        assert!(unusable.to_string().starts_with("unusable answer: "));
        let d = SessionError::Direction(Direction::SendOnly);
        assert_eq!(d.to_string(), "direction sendonly");
    }
}
