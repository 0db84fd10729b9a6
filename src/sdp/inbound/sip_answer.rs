//! Building the plain SIP answer once the browser has answered.

use sdp_types::Media;

use super::super::codec::Codec;
use super::super::crypto;
use super::super::direction::{self, Direction};
use super::super::outbound::{profile, SipAnswerParams};
use super::super::session::{self, audio_media, flag, push};
use super::sip_offer::SipOffer;
use super::webrtc_answer::WebRtcAnswer;

/// Default packetization when the SIP offer says nothing.
const DEFAULT_PTIME: u32 = 20;

/// Builds the SIP answer: the browser's codec under the SIP side's numbers.
pub fn build_sip_answer(offer: &SipOffer, answer: &WebRtcAnswer, p: &SipAnswerParams) -> String {
    let mut session = session::new_session(p.session_id, p.session_version, p.rtp_addr.ip());
    for (i, line) in offer.mlines.iter().enumerate() {
        if i == offer.audio_index {
            session.medias.push(audio(offer, answer, p));
        } else {
            session.medias.push(line.rejected());
        }
    }
    session::to_text(&session)
}

fn audio(offer: &SipOffer, answer: &WebRtcAnswer, p: &SipAnswerParams) -> Media {
    let codec = sip_codec(offer, answer);
    let event = event_pair(offer, answer).map(|(sip, _)| sip);
    let pts: Vec<u8> = std::iter::once(codec.pt)
        .chain(event.map(|e| e.pt))
        .collect();
    let mut media = audio_media(p.rtp_addr, profile(p.savp), &pts);
    crypto::write(&mut media, &p.crypto);
    for c in std::iter::once(&codec).chain(event) {
        push(&mut media, "rtpmap", c.rtpmap());
        if let Some(fmtp) = c.fmtp_value() {
            push(&mut media, "fmtp", fmtp);
        }
    }
    push(&mut media, "ptime", offer.ptime.unwrap_or(DEFAULT_PTIME));
    direction::write(&mut media, answer_direction(offer, answer));
    if offer.rtcp_mux {
        flag(&mut media, "rtcp-mux");
    }
    media
}

/// The SIP offer's own entry for the chosen codec (its PT, rtpmap and fmtp).
fn sip_codec(offer: &SipOffer, answer: &WebRtcAnswer) -> Codec {
    offer
        .codecs
        .iter()
        .find(|c| c.pt == answer.sip_pt)
        .or_else(|| offer.same_format(&answer.codec))
        .cloned()
        // The plan came from this offer, so the PT is there; stay total anyway.
        .unwrap_or_else(|| answer.codec.with_pt(answer.sip_pt))
}

/// The (SIP, browser) telephone-event entries at the same clock, when both
/// sides have one.
pub(crate) fn event_pair<'a>(
    offer: &'a SipOffer,
    answer: &'a WebRtcAnswer,
) -> Option<(&'a Codec, &'a Codec)> {
    let browser = answer.telephone_event.as_ref()?;
    Some((offer.event_at(browser.clock)?, browser))
}

/// What the gateway does toward the SIP side: the reverse of its offer,
/// limited to the flows the browser agreed to.
fn answer_direction(offer: &SipOffer, answer: &WebRtcAnswer) -> Direction {
    direction::both(offer.direction.reverse(), answer.direction)
}
