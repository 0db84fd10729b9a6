//! Reading the browser's answer to our WebRTC offer.

use super::super::codec::{media_codecs, names, pick_event, split_events, Codec};
use super::super::direction::{self, Direction};
use super::super::session;
use super::super::transport::{self, Fingerprint, IceCredentials, Setup};
use super::super::SdpError;
use super::webrtc_offer::WebRtcOfferPlan;

/// What the gateway needs from a browser's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcAnswer {
    /// a=mid of the audio line.
    pub mid: Option<String>,
    /// The browser's ICE credentials.
    pub ice: IceCredentials,
    /// The browser's DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The browser's DTLS role: active (usual) or passive.
    pub setup: Setup,
    /// The chosen codec with the browser's payload type.
    pub codec: Codec,
    /// The SIP side's payload type for the chosen codec.
    pub sip_pt: u8,
    /// The browser's telephone-event entry, if it kept one we offered.
    pub telephone_event: Option<Codec>,
    /// The browser's direction.
    pub direction: Direction,
    /// Whether the browser accepted a=rtcp-mux.
    pub rtcp_mux: bool,
    /// Raw "candidate:..." values; empty with trickle ICE.
    pub candidates: Vec<String>,
    /// The browser's audio SSRC, if announced.
    pub ssrc: Option<u32>,
}

/// Parses the browser's answer against what we offered.
pub fn parse_webrtc_answer(sdp: &str, plan: &WebRtcOfferPlan) -> Result<WebRtcAnswer, SdpError> {
    let p = session::parse(sdp)?;
    let t = transport::read(&p)?;
    // An answer must pick a role (RFC 5763 §5).
    if t.setup == Setup::ActPass {
        return Err(SdpError::UnsupportedSetup("actpass".to_owned()));
    }
    let media = p.audio();
    let (answered, events) = split_events(media_codecs(media));
    let chosen = (media.port != 0).then(|| choose(&answered, plan)).flatten();
    let Some((codec, sip_pt)) = chosen else {
        return Err(SdpError::NoCommonCodec {
            offered: names(&answered),
            supported: names(&plan.codecs),
        });
    };
    let offered_events: Vec<&Codec> = plan.telephone_events.iter().collect();
    let telephone_event = pick_event(&events, &offered_events, codec.clock);
    Ok(WebRtcAnswer {
        mid: p.mlines[p.audio_index].mid.clone(),
        ice: t.ice,
        fingerprint: t.fingerprint,
        setup: t.setup,
        codec,
        sip_pt,
        telephone_event,
        direction: direction::read(&p),
        rtcp_mux: media.has_attribute("rtcp-mux"),
        candidates: t.candidates,
        ssrc: t.ssrc,
    })
}

/// The first answered codec that we offered, with our (the SIP) payload type.
fn choose(answered: &[Codec], plan: &WebRtcOfferPlan) -> Option<(Codec, u8)> {
    answered.iter().find_map(|a| {
        let offered = plan.codecs.iter().find(|o| o.same_format(a))?;
        Some((a.clone(), offered.pt))
    })
}
