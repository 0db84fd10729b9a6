//! Phone calls browser: SIP offer → WebRTC offer, WebRTC answer → SIP answer.

mod sip_answer;
mod sip_offer;
mod webrtc_answer;
mod webrtc_offer;

#[cfg(test)]
mod tests;

pub use sip_answer::build_sip_answer;
pub(crate) use sip_answer::event_pair;
pub use sip_offer::{parse_sip_offer, SipOffer};
pub use webrtc_answer::{parse_webrtc_answer, WebRtcAnswer};
pub use webrtc_offer::{build_webrtc_offer, WebRtcOfferPlan, BROWSER_CODECS};
