//! What both call machines take and give alike: the media plane's signals,
//! how a call ended, and why one could not start.

use std::time::Duration;

/// Inputs from the media plane.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaSignal {
    /// The WebRTC leg is connected and keyed.
    Connected,
    /// Consent checks paused: the browser should restart ICE.
    Disconnected,
    /// Consent checks stopped arriving.
    ConsentExpired,
    /// The browser closed its DTLS transport.
    Closed,
    /// The media plane failed the call.
    Failed(MediaFailure),
    /// A side sent no media for `limits.media_timeout_secs`; the reason
    /// names it.
    Timeout(String),
    /// The browser sent a key in its media that the SIP side takes only as
    /// SIP INFO: the digit and ms.
    Key(char, u32),
}

/// Why the media plane failed a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaFailure {
    /// The WebRTC leg failed (DTLS, the fingerprint, SRTP keys).
    #[error(transparent)]
    WebRtc(#[from] crate::webrtc::WebRtcError),
    /// The relay loop that carried the call died: why, in its words (a
    /// panic's message or a poll error).
    #[error("relay loop failed: {0}")]
    RelayLoop(String),
}

/// How a call ended, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A metric label: answered, cancelled, rejected, timeout, no_codec, error.
    pub label: &'static str,
    /// The SIP code reported to the client.
    pub code: u16,
    /// Time to answer, when answered.
    pub setup: Option<Duration>,
}

/// What an answered call's session uses, for its record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionFacts {
    /// The codec (the same on both legs: siphon relays, it does not transcode).
    pub codec: Option<String>,
    /// The SDES suite of the SIP leg, when it is SRTP.
    pub sip_srtp: Option<&'static str>,
}

/// The call could not start: the `hangup` code and reason to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// SIP-style code (488 for SDP problems).
    pub code: u16,
    /// Explanation.
    pub reason: String,
}
