//! The `quality` message: a call's media figures each way, sent now and
//! then during an answered call (docs/signaling.md).

use serde::Serialize;

/// The fields of [`ServerMessage::Quality`](super::ServerMessage::Quality).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// The call.
    pub call_id: String,
    /// Media from the SIP side toward the browser.
    pub to_browser: DirectionQuality,
    /// Media from the browser toward the SIP side.
    pub to_sip: DirectionQuality,
}

/// One direction's figures so far in the call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DirectionQuality {
    /// RTP packets siphon received.
    pub packets: u64,
    /// Packets lost.
    pub lost: u64,
    /// Fraction of packets lost (0 to 1).
    pub loss: f64,
    /// Interarrival jitter, in ms.
    pub jitter_ms: f64,
    /// Round trip of the leg this media goes out on, in ms; null until
    /// RTCP measured one.
    pub rtt_ms: Option<f64>,
    /// E-model R-factor (0 to 100).
    pub r: f64,
    /// Estimated MOS (1 to 4.5).
    pub mos: f64,
}
