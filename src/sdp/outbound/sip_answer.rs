//! Reading the SIP side's answer to our plain offer.

use std::net::SocketAddr;

use super::super::codec::{media_pts, names, pick_event, rtpmap_or_static, Codec};
use super::super::crypto::{self, Crypto, CryptoRefusal};
use super::super::direction::{self, Direction};
use super::super::session;
use super::super::SdpError;
use super::sip_offer::{PlannedCodec, SipOfferPlan};

/// What the gateway needs from a SIP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAnswer {
    /// Where to send RTP (c= of the m-line or session, m= port).
    pub rtp_addr: SocketAddr,
    /// The chosen codec with the answer's payload type.
    pub codec: Codec,
    /// The browser's payload type for the chosen codec.
    pub browser_pt: u8,
    /// The answer's telephone-event entry, if it kept one we offered.
    pub telephone_event: Option<Codec>,
    /// The answerer's direction.
    pub direction: Direction,
    /// Whether the answerer multiplexes RTCP on the RTP port.
    pub rtcp_mux: bool,
    /// a=ptime in milliseconds, if given.
    pub ptime: Option<u32>,
    /// The answerer's `a=crypto` line for one of siphon's offered ones,
    /// checked against `offered`: the SIP side's key. `None`: plain RTP.
    pub crypto: Option<Crypto>,
}

/// Parses a SIP answer against what we offered.
pub fn parse_sip_answer(
    sdp: &str,
    plan: &SipOfferPlan,
    offered: &[Crypto],
) -> Result<SipAnswer, SdpError> {
    let p = session::parse(sdp)?;
    let media = p.audio();
    let crypto = answered_crypto(media, offered)?;
    // Match by format, not number: an answerer may renumber dynamic PTs.
    let answered: Vec<Codec> = media_pts(media)
        .into_iter()
        .filter_map(|pt| rtpmap_or_static(media, pt).or_else(|| offered_pt(plan, pt)))
        .collect();
    let chosen = (media.port != 0)
        .then(|| first_offered(&answered, &plan.codecs))
        .flatten();
    let Some((codec, browser_pt)) = chosen else {
        return Err(SdpError::NoCommonCodec {
            offered: names(&answered),
            supported: plan.names(),
        });
    };
    let offered_events: Vec<&Codec> = plan.telephone_events.iter().map(|e| &e.sip).collect();
    let telephone_event = pick_event(&answered, &offered_events, codec.clock);
    let rtp_addr = p.audio_addr()?;
    let direction = direction::of_sip_audio(&p)?;
    Ok(SipAnswer {
        rtp_addr,
        codec,
        browser_pt,
        telephone_event,
        direction,
        rtcp_mux: media.has_attribute("rtcp-mux"),
        ptime: p.attr("ptime").and_then(|v| v.trim().parse().ok()),
        crypto,
    })
}

/// The answer's `a=crypto`: it must echo the tag and suite of an offered
/// line (RFC 4568 section 7.1.3); any other answer line is an error.
fn answered_crypto(
    media: &sdp_types::Media,
    offered: &[Crypto],
) -> Result<Option<Crypto>, SdpError> {
    if offered.is_empty() {
        return Ok(None);
    }
    let lines = crypto::read_media(media)?;
    let Some(line) = lines.into_iter().next() else {
        return Ok(None);
    };
    let ours = offered.iter().find(|o| o.tag == line.tag);
    match ours {
        Some(o) if o.suite == line.suite => Ok(Some(line)),
        _ => Err(SdpError::CryptoRefused(CryptoRefusal::UnofferedTag {
            tag: line.tag,
            suite: line.suite,
        })),
    }
}

// Some answerers omit the rtpmap of a dynamic PT they kept from the offer.
fn offered_pt(plan: &SipOfferPlan, pt: u8) -> Option<Codec> {
    plan.codecs
        .iter()
        .chain(&plan.telephone_events)
        .find(|c| c.sip.pt == pt)
        .map(|c| c.sip.clone())
}

fn first_offered(answered: &[Codec], offered: &[PlannedCodec]) -> Option<(Codec, u8)> {
    answered.iter().find_map(|a| {
        let planned = offered.iter().find(|o| o.sip.same_format(a))?;
        Some((a.clone(), planned.browser_pt?))
    })
}
