//! The payload-type map the media relay applies in both directions.

use super::inbound::{event_pair, SipOffer, WebRtcAnswer};
use super::outbound::{browser_event, SipAnswer, WebRtcOffer};

/// Default packetization when the SIP side says nothing.
const DEFAULT_PTIME: u32 = 20;

/// Payload types of the one audio codec and of DTMF on each leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaMap {
    /// The codec's payload type on the WebRTC leg.
    pub browser_pt: u8,
    /// The codec's payload type on the SIP leg.
    pub sip_pt: u8,
    /// The codec's RTP clock rate.
    pub clock_rate: u32,
    /// telephone-event payload type on the WebRTC leg (None: not mapped).
    pub browser_event_pt: Option<u8>,
    /// telephone-event payload type on the SIP leg (None: not mapped).
    pub sip_event_pt: Option<u8>,
    /// Packetization time in milliseconds.
    pub ptime: u32,
    /// The WebRTC leg's own telephone-event (PT, clock), mapped or not:
    /// where siphon sends the key presses it generates.
    pub browser_dtmf: Option<(u8, u32)>,
    /// The SIP leg's own telephone-event (PT, clock); `None`: SIP INFO.
    pub sip_dtmf: Option<(u8, u32)>,
    /// A browser telephone-event the SIP leg cannot take as it is (PT,
    /// clock): at a clock it lacks (browsers send key presses at their
    /// codec's clock, te/48000 with opus), or any when it has none. These
    /// are re-sent as siphon's own presses, or as SIP INFO.
    pub browser_dtmf_convert: Option<(u8, u32)>,
}

/// The map for a browser-to-phone call.
pub fn media_map(offer: &WebRtcOffer, answer: &SipAnswer) -> MediaMap {
    let sip_event = answer.telephone_event.as_ref();
    // Both or neither: an event PT on one leg alone cannot be rewritten.
    let (browser_event_pt, sip_event_pt) = match (browser_event(offer, answer), sip_event) {
        (Some(b), Some(s)) if b.clock == s.clock => (Some(b.pt), Some(s.pt)),
        _ => (None, None),
    };
    MediaMap {
        browser_pt: answer.browser_pt,
        sip_pt: answer.codec.pt,
        clock_rate: answer.codec.clock,
        browser_event_pt,
        sip_event_pt,
        ptime: answer.ptime.unwrap_or(DEFAULT_PTIME),
        browser_dtmf: browser_event(offer, answer).map(|c| (c.pt, c.clock)),
        sip_dtmf: sip_event.map(|c| (c.pt, c.clock)),
        // Without telephone-event at the SIP side, the browser's own key
        // presses go on as SIP INFO.
        browser_dtmf_convert: match sip_event {
            Some(s) if s.clock == answer.codec.clock => None,
            _ => offer
                .telephone_events
                .iter()
                .find(|e| e.clock == answer.codec.clock),
        }
        .map(|c| (c.pt, c.clock)),
    }
}

/// The map for a phone-to-browser call.
pub fn media_map_inbound(offer: &SipOffer, answer: &WebRtcAnswer) -> MediaMap {
    let events = event_pair(offer, answer);
    MediaMap {
        browser_pt: answer.codec.pt,
        sip_pt: answer.sip_pt,
        clock_rate: answer.codec.clock,
        browser_event_pt: events.map(|(_, browser)| browser.pt),
        sip_event_pt: events.map(|(sip, _)| sip.pt),
        ptime: offer.ptime.unwrap_or(DEFAULT_PTIME),
        browser_dtmf: answer.telephone_event.as_ref().map(|c| (c.pt, c.clock)),
        sip_dtmf: events.map(|(sip, _)| (sip.pt, sip.clock)),
        // siphon's offer carries only the SIP side's event clocks.
        browser_dtmf_convert: None,
    }
}
