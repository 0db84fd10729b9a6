//! The media plane: RTP port pool, per-direction header rewriting, RTCP
//! translation and the relay loops that move packets between the legs.

pub mod dtmf;
pub mod pool;
pub mod quality;
pub mod relay;
pub mod rewrite;
pub mod rtcp;
pub mod rx_time;

use std::net::SocketAddr;

use crate::srtp::{MasterKey, SrtpProfile};

pub use pool::{PoolError, PortPair, PortPool};
pub use relay::{
    AddCall, CallStats, MediaEvent, Press, RelayError, RelayHandle, Relays, SilentSide,
};
pub use rewrite::{PtMap, RewriteDrop, StreamRewriter};

/// A SIP side for unit tests: PCMU with telephone-event 101 at
/// 10.0.0.5:17000 (RTCP on 17001), the browser's events on 126.
#[cfg(test)]
pub(crate) fn test_media() -> SipMedia {
    SipMedia {
        remote_rtp: "10.0.0.5:17000".parse().expect("address"),
        remote_rtcp: "10.0.0.5:17001".parse().expect("address"),
        rtcp_mux: false,
        to_sip: PtMap::empty(),
        to_webrtc: PtMap::empty(),
        ts_step: 160,
        clock_rate: 8000,
        webrtc_dtmf: Some((126, 8000)),
        sip_dtmf: Some((101, 8000)),
        webrtc_dtmf_convert: None,
        send_to_sip: true,
        send_to_webrtc: true,
        held: false,
        srtp: None,
    }
}

/// What the SIP side of a call looks like once its SDP answer is known.
#[derive(Debug, Clone)]
pub struct SipMedia {
    /// Where the SDP says to send RTP (until the peer's source is latched).
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP (same as `remote_rtp` with rtcp-mux).
    pub remote_rtcp: SocketAddr,
    /// The peer multiplexes RTCP on the RTP port.
    pub rtcp_mux: bool,
    /// Payload types from the browser to the SIP side.
    pub to_sip: PtMap,
    /// Payload types from the SIP side to the browser.
    pub to_webrtc: PtMap,
    /// Timestamp units per packet (clock rate x ptime).
    pub ts_step: u32,
    /// The voice codec's RTP clock (the same on both legs), for jitter.
    pub clock_rate: u32,
    /// telephone-event toward the browser (PT, clock), for generated key presses.
    pub webrtc_dtmf: Option<(u8, u32)>,
    /// telephone-event toward the SIP peer (PT, clock); `None`: it takes SIP INFO.
    pub sip_dtmf: Option<(u8, u32)>,
    /// Browser telephone-event (PT, clock) the SIP side has no clock for:
    /// its key presses are re-sent as siphon's own at the SIP side's clock.
    pub webrtc_dtmf_convert: Option<(u8, u32)>,
    /// The SIP peer receives media (not sendonly/inactive): else nothing is sent to it.
    pub send_to_sip: bool,
    /// The browser receives media (it did not hold with sendonly/inactive):
    /// else no RTP is sent to it (RTCP still is).
    pub send_to_webrtc: bool,
    /// The call is on hold (either side): silence is expected, so the media
    /// timeout does not run.
    pub held: bool,
    /// SRTP on the SIP side (SDES keys); `None`: plain RTP.
    pub srtp: Option<SipSrtp>,
}

/// The SIP side's SRTP keys, as SDES (RFC 4568) exchanged them.
///
/// A new value with a key that did not change keeps that direction's
/// context (its rollover counter and replay window); a changed key starts
/// a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSrtp {
    /// The negotiated suite.
    pub profile: SrtpProfile,
    /// siphon's key: protects what goes to the SIP peer.
    pub tx: MasterKey,
    /// The peer's key: unprotects what it sends.
    pub rx: MasterKey,
}
