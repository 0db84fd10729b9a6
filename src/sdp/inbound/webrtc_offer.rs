//! Building the browser's offer from a SIP offer (phone calls browser).

use sdp_types::{Attribute, Media};

use super::super::codec::{names, Codec};
use super::super::direction;
use super::super::session::{self, audio_media, flag, push};
use super::super::transport::{self, Setup, WebRtcOfferParams, WEBRTC_PROFILE};
use super::super::SdpError;
use super::sip_offer::SipOffer;

/// The codecs every browser decodes; anything else would need transcoding.
pub const BROWSER_CODECS: &[&str] = &["opus", "PCMU", "PCMA", "G722"];

/// The one m-line id of the offers the gateway makes.
const MID: &str = "0";

/// What the WebRTC offer contained, for reading the browser's answer.
///
/// Payload types are the SIP offer's own, so both legs use the same numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcOfferPlan {
    /// Audio codecs in offer order.
    pub codecs: Vec<Codec>,
    /// telephone-event entries in offer order.
    pub telephone_events: Vec<Codec>,
}

/// Builds a WebRTC offer: SIP codecs ∩ `browser_codecs` ∩ what browsers decode.
pub fn build_webrtc_offer(
    sip: &SipOffer,
    browser_codecs: &[String],
    p: &WebRtcOfferParams,
) -> Result<(String, WebRtcOfferPlan), SdpError> {
    let usable = |name: &str| {
        browser_codecs.iter().any(|n| n.eq_ignore_ascii_case(name))
            && BROWSER_CODECS.iter().any(|n| n.eq_ignore_ascii_case(name))
    };
    let codecs: Vec<Codec> = sip
        .codecs
        .iter()
        .filter(|c| usable(&c.name))
        .cloned()
        .collect();
    if codecs.is_empty() {
        let supported = browser_codecs
            .iter()
            .filter(|n| usable(n))
            .cloned()
            .collect();
        return Err(SdpError::NoCommonCodec {
            offered: names(&sip.codecs),
            supported,
        });
    }
    let telephone_events = usable_events(sip, &codecs);
    let plan = WebRtcOfferPlan {
        codecs,
        telephone_events,
    };
    let mut session = session::new_session(p.session_id, p.session_version, p.candidate.ip());
    session.attributes.push(Attribute::new("ice-lite"));
    session
        .attributes
        .push(Attribute::with_value("group", format!("BUNDLE {MID}")));
    session.medias.push(audio(sip, &plan, p));
    Ok((session::to_text(&session), plan))
}

/// An event stream is only usable at the clock of an audio codec.
fn usable_events(sip: &SipOffer, codecs: &[Codec]) -> Vec<Codec> {
    sip.telephone_events
        .iter()
        .filter(|e| codecs.iter().any(|c| c.clock == e.clock))
        .cloned()
        .collect()
}

fn audio(sip: &SipOffer, plan: &WebRtcOfferPlan, p: &WebRtcOfferParams) -> Media {
    let all: Vec<&Codec> = plan.codecs.iter().chain(&plan.telephone_events).collect();
    let pts: Vec<u8> = all.iter().map(|c| c.pt).collect();
    let mut media = audio_media(p.candidate, WEBRTC_PROFILE, &pts);
    transport::write(&mut media, p, Setup::ActPass, Some(MID));
    // We stand in for the SIP offerer, so its direction is ours.
    direction::write(&mut media, sip.direction);
    flag(&mut media, "rtcp-mux");
    for c in all {
        push(&mut media, "rtpmap", c.rtpmap());
        if let Some(fmtp) = c.fmtp_value() {
            push(&mut media, "fmtp", fmtp);
        }
    }
    transport::write_stream(&mut media, p);
    media
}
