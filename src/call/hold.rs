//! The SIP side's re-INVITEs and UPDATEs on an answered call, the same in
//! both call directions: hold (sendonly, inactive, c=0.0.0.0), resume, a
//! moved media address, or an offerless session refresh. The answer mirrors
//! the offered direction (sendonly is answered recvonly, never sendrecv);
//! the codec in use must stay; anything else is refused with 488 and the
//! session goes on as it was. On an SRTP call the suite must stay too, and
//! a new key from the peer re-keys the relay (RFC 4568 section 7.1.4);
//! siphon keeps its own key.

use super::refusal::ChangeRefused;
use super::reoffer::{Negotiated, Refused, Renegotiated};
use super::sdes::SdesSession;
use super::signals::SessionFacts;
use super::{SdesError, SessionError};
use crate::media::SipMedia;
use crate::sdp::{self, Direction, ReAnswer, SdpError};

/// What siphon agreed with the SIP side, as far as re-offers care.
#[derive(Debug, Clone)]
pub struct SipSide {
    /// siphon's last SDP to the SIP side.
    local_sdp: String,
    version: u64,
    media: SipMedia,
    /// Payload types of the session: the codec, and telephone-event if any.
    pts: Vec<u8>,
    /// The SIP side's own direction.
    direction: Direction,
    /// The browser's direction that siphon's pending re-INVITE carries.
    browser: Option<Direction>,
    /// The SDES session of an SRTP call.
    srtp: Option<SdesSession>,
}

/// re-INVITEs sent for one browser offer before a 491 is final.
pub const GLARE_ATTEMPTS: u8 = 3;

/// siphon's re-INVITE toward the SIP side for a browser's offer, while it
/// waits for its answer: the SDP and how many times it went out.
#[derive(Debug, Clone)]
pub struct PendingReinvite {
    sdp: String,
    sent: u8,
}

impl PendingReinvite {
    /// The re-INVITE as first sent.
    pub fn new(sdp: String) -> PendingReinvite {
        PendingReinvite { sdp, sent: 1 }
    }

    /// After glare (a 491: both sides re-offered), the SDP to send again
    /// later (RFC 3261 section 14.1), up to [`GLARE_ATTEMPTS`] sends in all;
    /// `None` for any other answer or once the attempts are spent.
    pub fn retry(&mut self, result: &Option<(u16, String)>) -> Option<String> {
        if !matches!(result, Some((491, _))) || self.sent >= GLARE_ATTEMPTS {
            return None;
        }
        self.sent += 1;
        Some(self.sdp.clone())
    }
}

/// siphon's answer to an acceptable re-offer.
#[derive(Debug, Clone)]
pub struct SipReanswer {
    /// The SDP for the 200.
    pub answer: String,
    /// The relay's new view of the SIP side.
    pub media: SipMedia,
    /// The direction siphon now offers the browser, when it changed.
    pub browser_direction: Option<Direction>,
}

/// Answer the SIP side's re-offer and, when the direction changed, make
/// siphon's re-offer to the browser: (the relay's new media, the SDP for
/// the 200, the browser's offer). `Err` is the reason for a 488.
pub fn renegotiate(
    side: &mut SipSide,
    browser: &mut Negotiated,
    sdp: Option<&str>,
) -> Result<(SipMedia, String, Option<String>), SessionError> {
    let r = side.on_reoffer(sdp)?;
    let offer = r.browser_direction.and_then(|d| {
        browser
            .offer(d)
            .map_err(|e| tracing::warn!(error = %e, "cannot re-offer the browser"))
            .ok()
    });
    Ok((r.media, r.answer, offer))
}

/// What a browser's mid-call offer leads to.
#[derive(Debug, Clone)]
pub enum BrowserOffer {
    /// Answer it now (an ICE restart, or nothing new).
    Answer(Renegotiated),
    /// The browser holds or resumes: re-INVITE the SIP side with this SDP
    /// first; the offer waits for its answer.
    Reinvite(String),
    /// Refuse it: the reason for `error` `bad_sdp`.
    Refuse(SessionError),
}

/// Take a browser's offer (fresh ICE credentials in case it restarts).
pub fn browser_offer(
    n: &mut Negotiated,
    side: &mut SipSide,
    sdp: &str,
    fresh: (String, String),
) -> BrowserOffer {
    match n.on_offer(sdp, || fresh, false) {
        Ok(r) => BrowserOffer::Answer(r),
        Err(Refused::Bad(reason)) => BrowserOffer::Refuse(reason),
        Err(Refused::Direction(d)) => match side.offer(d) {
            Ok(offer) => BrowserOffer::Reinvite(offer),
            Err(e) => BrowserOffer::Refuse(e.into()),
        },
    }
}

/// The SIP side's final answer to siphon's re-INVITE for the waiting browser
/// offer: the relay's new media and the browser's answer, or why not.
pub fn reinvite_answered(
    n: &mut Negotiated,
    side: &mut SipSide,
    pending: &str,
    result: Option<(u16, String)>,
    fresh: (String, String),
) -> Result<(SipMedia, Renegotiated), ChangeRefused> {
    let (code, body) = result.ok_or(ChangeRefused::NoAnswer)?;
    if !(200..300).contains(&code) {
        return Err(ChangeRefused::Sip(code));
    }
    let media = side.on_answer(&body).map_err(ChangeRefused::Sdp)?;
    let answer = n.on_offer(pending, || fresh, true);
    answer.map(|r| (media, r)).map_err(|e| match e {
        Refused::Bad(reason) => ChangeRefused::Sdp(reason),
        Refused::Direction(d) => ChangeRefused::Sdp(SessionError::Direction(d)),
    })
}

/// Send the SIP side's media to `rtp` (RTCP beside it, or on it with
/// rtcp-mux); c=0.0.0.0 (RFC 2543 hold) keeps the address media last
/// came from.
fn move_to(media: &mut SipMedia, rtp: std::net::SocketAddr) {
    if rtp.ip().is_unspecified() {
        return;
    }
    media.remote_rtp = rtp;
    let rtcp_port = match media.rtcp_mux {
        true => rtp.port(),
        false => rtp.port().wrapping_add(1),
    };
    media.remote_rtcp = std::net::SocketAddr::new(rtp.ip(), rtcp_port);
}

/// A new party's answer may number telephone-event as siphon's offer did,
/// not as the party before it: key presses go by its number from now on.
fn repoint_events(media: &mut SipMedia, answer: &sdp::SipOffer) {
    let Some((old, clock)) = media.sip_dtmf else {
        return;
    };
    let Some(new) = answer.event_at(clock).map(|e| e.pt).filter(|pt| *pt != old) else {
        return;
    };
    for browser in 0..128 {
        if media.to_sip.get(browser) == Some(old) {
            media.to_sip.insert(browser, new);
        }
    }
    if let Some(browser) = media.to_webrtc.get(old) {
        media.to_webrtc.insert(new, browser);
    }
    media.sip_dtmf = Some((new, clock));
}

/// The telephone-event payload type at `clock` in an SDP of siphon's.
fn local_event_pt(sdp: &str, clock: u32) -> Option<u8> {
    let wanted = format!("telephone-event/{clock}");
    sdp.lines().find_map(|l| {
        let (pt, codec) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        codec
            .eq_ignore_ascii_case(&wanted)
            .then(|| pt.parse().ok())
            .flatten()
    })
}

/// The encoding name of `pt` in `sdp` (its rtpmap, else the static
/// payload type's name).
fn codec_name(sdp: &str, pt: u8) -> Option<String> {
    let mapped = sdp.lines().find_map(|l| {
        let (num, codec) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        let name = codec.split('/').next()?;
        (num.trim().parse() == Ok(pt)).then(|| name.to_owned())
    });
    mapped.or_else(|| sdp::static_codec(pt).map(|c| c.name))
}

impl SipSide {
    /// What the SIP side of the session uses: the codec, and the SDES
    /// suite when it is SRTP.
    pub fn facts(&self) -> SessionFacts {
        let pt = self.pts.first().copied().unwrap_or_default();
        SessionFacts {
            codec: codec_name(&self.local_sdp, pt),
            sip_srtp: (self.srtp.as_ref()).map(|s| sdp::suite_name(s.local.suite)),
        }
    }

    /// After the call was answered: siphon's SIP SDP, the relay's media,
    /// the codec's SIP payload type, the SIP side's direction and SDES session.
    pub fn new(
        local_sdp: String,
        media: SipMedia,
        sip_pt: u8,
        direction: Direction,
        srtp: Option<SdesSession>,
    ) -> Self {
        // siphon's own numbers in its SDP: the far end's telephone-event PT
        // may differ from the one siphon offered.
        let event = media
            .sip_dtmf
            .and_then(|(_, clock)| local_event_pt(&local_sdp, clock));
        let pts = std::iter::once(sip_pt).chain(event).collect();
        SipSide {
            local_sdp,
            version: 1,
            media,
            pts,
            direction,
            browser: None,
            srtp,
        }
    }

    /// A re-offer's or re-answer's keys against the session: the SDES
    /// session it leads to; `Err` is the 488 reason.
    fn rekey(&self, offer: &sdp::SipOffer) -> Result<Option<SdesSession>, SdesError> {
        match &self.srtp {
            Some(s) => s.rekey(&offer.crypto).map(Some),
            None if offer.savp => Err(SdesError::SavpOnPlain),
            None => Ok(None),
        }
    }

    /// siphon's `a=crypto` in its next SDP: its own line, or none.
    fn crypto_lines(srtp: Option<&SdesSession>) -> Option<Vec<sdp::Crypto>> {
        Some(srtp.map(|s| s.local.clone()).into_iter().collect())
    }

    /// Answer a re-offer; `None` is an offerless re-INVITE, answered with
    /// the session as it is. `Err` is the reason for a 488.
    pub fn on_reoffer(&mut self, sdp: Option<&str>) -> Result<SipReanswer, SessionError> {
        let Some(sdp) = sdp else {
            return self.answer(self.direction.reverse(), self.media.clone(), None);
        };
        let offer = sdp::parse_sip_offer(sdp).map_err(SessionError::UnusableReoffer)?;
        let codec = self.pts[0];
        if !offer.codecs.iter().any(|c| c.pt == codec) {
            return Err(SessionError::DropsCodec(codec));
        }
        let srtp = self.rekey(&offer)?;
        let d = offer.direction;
        let mut media = self.media.clone();
        media.srtp = srtp.as_ref().map(SdesSession::media);
        move_to(&mut media, offer.rtp_addr);
        media.send_to_sip = d.has_recv();
        media.held = d != Direction::SendRecv;
        let changed = (d != self.direction).then_some(d);
        let previous = std::mem::replace(&mut self.srtp, srtp);
        match self.answer(d.reverse(), media, changed) {
            Ok(answer) => {
                self.direction = d;
                Ok(answer)
            }
            Err(e) => {
                self.srtp = previous;
                Err(e)
            }
        }
    }

    /// siphon's re-INVITE offer for a browser-side hold or resume: the
    /// session as it is, with siphon sending and receiving what the browser
    /// does (`browser`: the browser's direction).
    pub fn offer(&mut self, browser: Direction) -> Result<String, SdpError> {
        let edit = ReAnswer {
            version: self.version + 1,
            keep_pts: Some(self.pts.clone()),
            direction: Some(browser),
            crypto: Self::crypto_lines(self.srtp.as_ref()),
            ..Default::default()
        };
        let offer = sdp::build_reanswer(&self.local_sdp, &edit)?;
        self.version += 1;
        self.local_sdp = offer.clone();
        self.browser = Some(browser);
        Ok(offer)
    }

    /// siphon's offer to the party a transfer by the far end calls: the
    /// session as it is, both ways (that party holds nothing yet).
    pub fn transfer_offer(&mut self) -> Result<String, SdpError> {
        self.offer(Direction::SendRecv)
    }

    /// That party's answer: the relay's media, and the SIP side's new
    /// direction when it changed (the browser is re-offered it: a call the
    /// PBX held before its REFER is resumed).
    pub fn on_transfer_answer(
        &mut self,
        sdp: &str,
    ) -> Result<(SipMedia, Option<Direction>), SessionError> {
        let before = self.direction;
        let mut media = self.on_answer(sdp)?;
        if let Ok(answer) = sdp::parse_sip_offer(sdp) {
            repoint_events(&mut media, &answer);
            self.media = media.clone();
        }
        Ok((media, (self.direction != before).then_some(self.direction)))
    }

    /// The SIP side's 200 to that re-INVITE: the relay's new media.
    pub fn on_answer(&mut self, sdp: &str) -> Result<SipMedia, SessionError> {
        let answer = sdp::parse_sip_offer(sdp).map_err(SessionError::UnusableAnswer)?;
        let srtp = self.rekey(&answer)?;
        let d = answer.direction;
        let mut media = self.media.clone();
        media.srtp = srtp.as_ref().map(SdesSession::media);
        self.srtp = srtp;
        move_to(&mut media, answer.rtp_addr);
        media.send_to_sip = d.has_recv();
        media.held = d != Direction::SendRecv;
        // A browser that holds (sendonly, inactive) is sent no RTP.
        if let Some(browser) = self.browser.take() {
            media.send_to_webrtc = browser.has_recv();
        }
        self.direction = d;
        self.media = media.clone();
        Ok(media)
    }

    fn answer(
        &mut self,
        ours: Direction,
        media: SipMedia,
        browser_direction: Option<Direction>,
    ) -> Result<SipReanswer, SessionError> {
        let edit = ReAnswer {
            version: self.version + 1,
            keep_pts: Some(self.pts.clone()),
            direction: Some(ours),
            crypto: Self::crypto_lines(self.srtp.as_ref()),
            ..Default::default()
        };
        let answer = sdp::build_reanswer(&self.local_sdp, &edit)?;
        self.version += 1;
        self.local_sdp = answer.clone();
        self.media = media.clone();
        Ok(SipReanswer {
            answer,
            media,
            browser_direction,
        })
    }
}

#[cfg(test)]
mod tests;
