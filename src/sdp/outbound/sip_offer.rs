//! Building the plain SIP offer from the browser's offer.

use std::net::SocketAddr;

use super::super::codec::{free_dynamic_pt, names, static_pt, Codec};
use super::super::crypto::{self, Crypto};
use super::super::direction;
use super::super::session::{self, audio_media, push};
use super::super::SdpError;
use super::webrtc_offer::WebRtcOffer;

/// The plain RTP profile of a SIP leg.
pub const SIP_PROFILE: &str = "RTP/AVP";
/// The SRTP profile of a SIP leg keyed with SDES (RFC 4568).
pub const SAVP_PROFILE: &str = "RTP/SAVP";

/// The m-line profile: RTP/SAVP, or RTP/AVP (plain, or with `a=crypto` as
/// opportunistic SRTP, RFC 8643).
pub fn profile(savp: bool) -> &'static str {
    if savp {
        SAVP_PROFILE
    } else {
        SIP_PROFILE
    }
}

/// What the gateway writes about its own SIP media leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipParams {
    /// Our RTP address for this call (port from the pool).
    pub rtp_addr: SocketAddr,
    /// Session id of the o= line.
    pub session_id: u64,
    /// Session version of the o= line.
    pub session_version: u64,
    /// Write RTP/SAVP on the m-line (else RTP/AVP).
    pub savp: bool,
    /// siphon's `a=crypto` lines: every offered suite in an offer, the
    /// chosen one in an answer; empty for plain RTP.
    pub crypto: Vec<Crypto>,
}

/// Parameters of a SIP offer (browser calls phone).
pub type SipOfferParams = SipParams;
/// Parameters of a SIP answer (phone calls browser).
pub type SipAnswerParams = SipParams;

/// One codec of the SIP offer and the browser payload type it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCodec {
    /// The codec as offered to the SIP side.
    pub sip: Codec,
    /// The browser's payload type for the same format (None: gateway-added).
    pub browser_pt: Option<u8>,
}

/// What the SIP offer contained, for reading the SIP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipOfferPlan {
    /// Audio codecs in offer order.
    pub codecs: Vec<PlannedCodec>,
    /// telephone-event entries in offer order.
    pub telephone_events: Vec<PlannedCodec>,
}

impl SipOfferPlan {
    /// The offered codec names, for error messages.
    pub fn names(&self) -> Vec<String> {
        let codecs: Vec<Codec> = self.codecs.iter().map(|c| c.sip.clone()).collect();
        names(&codecs)
    }
}

/// Builds the plain SIP offer: browser codecs ∩ configured, configured order.
pub fn build_sip_offer(
    offer: &WebRtcOffer,
    sip_codecs: &[String],
    p: &SipOfferParams,
) -> Result<(String, SipOfferPlan), SdpError> {
    let codecs = pick_codecs(offer, sip_codecs);
    if codecs.is_empty() {
        return Err(SdpError::NoCommonCodec {
            offered: names(&offer.codecs),
            supported: sip_codecs.to_vec(),
        });
    }
    let plan = SipOfferPlan {
        telephone_events: pick_events(offer, &codecs),
        codecs,
    };
    Ok((write(offer, &plan, p), plan))
}

fn pick_codecs(offer: &WebRtcOffer, sip_codecs: &[String]) -> Vec<PlannedCodec> {
    sip_codecs
        .iter()
        .filter_map(|wanted| {
            let browser = offer
                .codecs
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(wanted))?;
            let pt = static_pt(&browser.name).unwrap_or(browser.pt);
            Some(PlannedCodec {
                sip: browser.with_pt(pt),
                browser_pt: Some(browser.pt),
            })
        })
        .fold(Vec::new(), |mut acc, c| {
            // A codec listed twice in the configuration is offered once.
            if !acc.iter().any(|a: &PlannedCodec| a.sip.same_format(&c.sip)) {
                acc.push(c);
            }
            acc
        })
}

fn pick_events(offer: &WebRtcOffer, codecs: &[PlannedCodec]) -> Vec<PlannedCodec> {
    let mut events = Vec::new();
    let has_opus = codecs.iter().any(|c| c.sip.clock == 48000);
    if let Some(wide) = offer.event_at(48000).filter(|_| has_opus) {
        events.push(PlannedCodec {
            sip: wide.clone(),
            browser_pt: Some(wide.pt),
        });
    }
    // SIP peers expect telephone-event/8000 even when the browser lacks it.
    let narrow = match offer.event_at(8000) {
        Some(e) => PlannedCodec {
            sip: e.clone(),
            browser_pt: Some(e.pt),
        },
        None => {
            let taken: Vec<u8> = codecs
                .iter()
                .map(|c| c.sip.pt)
                .chain(all_pts(offer))
                .collect();
            let pt = free_dynamic_pt(&taken).unwrap_or(101);
            PlannedCodec {
                sip: Codec::new(pt, "telephone-event", 8000, 1),
                browser_pt: None,
            }
        }
    };
    events.push(narrow);
    for e in &mut events {
        e.sip.fmtp = Some("0-16".to_owned());
    }
    events
}

fn all_pts(offer: &WebRtcOffer) -> impl Iterator<Item = u8> + '_ {
    offer
        .codecs
        .iter()
        .chain(&offer.telephone_events)
        .map(|c| c.pt)
}

fn write(offer: &WebRtcOffer, plan: &SipOfferPlan, p: &SipOfferParams) -> String {
    let all: Vec<&Codec> = plan
        .codecs
        .iter()
        .chain(&plan.telephone_events)
        .map(|c| &c.sip)
        .collect();
    let pts: Vec<u8> = all.iter().map(|c| c.pt).collect();
    let mut media = audio_media(p.rtp_addr, profile(p.savp), &pts);
    crypto::write(&mut media, &p.crypto);
    for codec in &all {
        push(&mut media, "rtpmap", codec.rtpmap());
        if let Some(fmtp) = codec.fmtp_value() {
            push(&mut media, "fmtp", fmtp);
        }
    }
    push(&mut media, "ptime", 20);
    direction::write(&mut media, offer.direction);
    let mut session = session::new_session(p.session_id, p.session_version, p.rtp_addr.ip());
    session.medias.push(media);
    session::to_text(&session)
}
