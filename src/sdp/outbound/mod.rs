//! Browser calls phone: WebRTC offer → SIP offer, SIP answer → WebRTC answer.

mod sip_answer;
mod sip_offer;
mod webrtc_answer;
mod webrtc_offer;

#[cfg(test)]
mod tests;

pub use sip_answer::{parse_sip_answer, SipAnswer};
pub(crate) use sip_offer::profile;
pub use sip_offer::{
    build_sip_offer, PlannedCodec, SipAnswerParams, SipOfferParams, SipOfferPlan, SipParams,
    SAVP_PROFILE, SIP_PROFILE,
};
pub(crate) use webrtc_answer::browser_event;
pub use webrtc_answer::build_webrtc_answer;
pub use webrtc_offer::{parse_webrtc_offer, WebRtcOffer};
