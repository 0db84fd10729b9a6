//! SDP translation between the WebRTC and the plain SIP dialect.
//!
//! Pure functions, no IO and no state: the call module feeds in the text it
//! received and sends out the text returned here. Browser calls phone lives
//! in `outbound`, phone calls browser in `inbound`; both end in a
//! [`MediaMap`] that tells the relay how to rewrite payload types.

mod codec;
mod credentials;
mod crypto;
mod direction;
mod error;
mod inbound;
mod media_map;
mod outbound;
mod reanswer;
mod session;
mod transport;

pub use codec::{static_codec, Codec, TELEPHONE_EVENT};
pub use crypto::{key_len, suite_name, Crypto, CryptoRefusal, OFFERED_SUITES};
pub use direction::{is_hold, Direction};
pub use error::{Malformation, SdpError};
pub use inbound::{
    build_sip_answer, build_webrtc_offer, parse_sip_offer, parse_webrtc_answer, SipOffer,
    WebRtcAnswer, WebRtcOfferPlan, BROWSER_CODECS,
};
pub use media_map::{media_map, media_map_inbound, MediaMap};
pub use outbound::{
    build_sip_offer, build_webrtc_answer, parse_sip_answer, parse_webrtc_offer, PlannedCodec,
    SipAnswer, SipAnswerParams, SipOfferParams, SipOfferPlan, SipParams, WebRtcOffer,
};
pub use reanswer::{build_reanswer, parse_webrtc_session, ReAnswer, WebRtcSession};
pub use session::MLine;
pub use transport::{
    Fingerprint, IceCredentials, Setup, WebRtcAnswerParams, WebRtcOfferParams, WebRtcParams,
};

#[cfg(test)]
pub(crate) mod fixtures;
