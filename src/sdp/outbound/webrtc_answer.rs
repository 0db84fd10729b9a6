//! Building the browser's answer once the SIP side has answered.

use super::super::codec::Codec;
use super::super::direction::{self, Direction};
use super::super::session::{self, audio_media, flag, push};
use super::super::transport::{self, Setup, WebRtcAnswerParams, WEBRTC_PROFILE};
use super::super::SdpError;
use super::sip_answer::SipAnswer;
use super::webrtc_offer::WebRtcOffer;

/// Builds the WebRTC answer: the chosen codec under the browser's numbers.
///
/// Fails only when the browser insists on being the DTLS server
/// (a=setup:passive): the gateway is always the DTLS server.
pub fn build_webrtc_answer(
    offer: &WebRtcOffer,
    answer: &SipAnswer,
    p: &WebRtcAnswerParams,
) -> Result<String, SdpError> {
    if offer.setup == Setup::Passive {
        return Err(SdpError::UnsupportedSetup("passive".to_owned()));
    }
    let mut session = session::new_session(p.session_id, p.session_version, p.candidate.ip());
    flag_session(&mut session, "ice-lite");
    if let Some(mid) = &offer.mid {
        session.attributes.push(sdp_types::Attribute::with_value(
            "group",
            format!("BUNDLE {mid}"),
        ));
    }
    for (i, line) in offer.mlines.iter().enumerate() {
        if i == offer.audio_index {
            session.medias.push(audio(offer, answer, p));
        } else {
            session.medias.push(line.rejected());
        }
    }
    Ok(session::to_text(&session))
}

fn flag_session(session: &mut sdp_types::Session, name: &str) {
    session.attributes.push(sdp_types::Attribute::new(name));
}

fn audio(offer: &WebRtcOffer, answer: &SipAnswer, p: &WebRtcAnswerParams) -> sdp_types::Media {
    let codec = browser_codec(offer, answer);
    let event = browser_event(offer, answer);
    let pts: Vec<u8> = std::iter::once(codec.pt)
        .chain(event.map(|e| e.pt))
        .collect();
    let mut media = audio_media(p.candidate, WEBRTC_PROFILE, &pts);
    transport::write(&mut media, p, Setup::Passive, offer.mid.as_deref());
    direction::write(&mut media, answer_direction(offer, answer));
    if offer.rtcp_mux {
        flag(&mut media, "rtcp-mux");
    }
    for c in std::iter::once(&codec).chain(event) {
        push(&mut media, "rtpmap", c.rtpmap());
        if let Some(fmtp) = c.fmtp_value() {
            push(&mut media, "fmtp", fmtp);
        }
    }
    transport::write_stream(&mut media, p);
    media
}

/// The browser's own entry for the chosen codec (its PT, rtpmap and fmtp).
fn browser_codec(offer: &WebRtcOffer, answer: &SipAnswer) -> Codec {
    offer
        .codec(answer.browser_pt)
        .cloned()
        // The plan came from this offer, so the PT is there; stay total anyway.
        .unwrap_or_else(|| answer.codec.with_pt(answer.browser_pt))
}

/// The browser's telephone-event to accept: at the SIP event's clock when the
/// SIP side has one, else at the codec's clock.
pub(crate) fn browser_event<'a>(offer: &'a WebRtcOffer, answer: &SipAnswer) -> Option<&'a Codec> {
    let clock = answer
        .telephone_event
        .as_ref()
        .map_or(answer.codec.clock, |e| e.clock);
    offer.event_at(clock)
}

/// What the gateway does toward the browser: the reverse of the browser's
/// direction, limited to the flows the SIP side agreed to.
fn answer_direction(offer: &WebRtcOffer, answer: &SipAnswer) -> Direction {
    direction::both(offer.direction.reverse(), answer.direction)
}
