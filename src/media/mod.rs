//! The media plane: RTP port pool, per-direction header rewriting, RTCP
//! translation and the relay loops that move packets between the legs.

pub mod dtmf;
pub mod pool;
pub mod relay;
pub mod rewrite;
pub mod rtcp;

use std::net::SocketAddr;

pub use pool::{PoolError, PortPair, PortPool};
pub use relay::{
    AddCall, CallStats, MediaEvent, Press, RelayError, RelayHandle, Relays, SilentSide,
};
pub use rewrite::{PtMap, RewriteDrop, StreamRewriter};

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
    /// telephone-event toward the browser (PT, clock), for generated key presses.
    pub webrtc_dtmf: Option<(u8, u32)>,
    /// telephone-event toward the SIP peer (PT, clock); `None`: it takes SIP INFO.
    pub sip_dtmf: Option<(u8, u32)>,
}
