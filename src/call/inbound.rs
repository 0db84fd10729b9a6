//! The SIP -> browser call: every session of the called user rings, the
//! first `accept` wins, the others hear "answered elsewhere". Events in,
//! commands out; no IO, no clock.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use super::hold::SipSide;
use super::leg::{sip_media, LocalWebRtc};
use super::machine::{CallMachine, ClientInput, Command, Ending, Event, SessionId, SipInput};
use super::midcall::{unanswered, MidCall, Step};
use super::reoffer::{Negotiated, Remote};
use super::sdes::{self, SdesSession};
use super::signals::SessionFacts;
use super::StartError;
use crate::config::SrtpMode;
use crate::media::SipMedia;
use crate::sdp::{self, Crypto, SdpError, Setup, SipOffer, WebRtcOfferPlan};
use crate::signaling::{Incoming, ServerMessage};
use crate::webrtc::DtlsRole;

/// What the driver allocated and configured before ringing.
#[derive(Debug, Clone)]
pub struct InboundParams {
    /// The call id shown to clients.
    pub call_id: String,
    /// The caller as shown in `incoming` (SIP From).
    pub from: String,
    /// The called user.
    pub to: String,
    /// The SIP offer.
    pub offer_sdp: String,
    /// Codecs browsers may be offered, in preference order.
    pub browser_codecs: Vec<String>,
    /// The public address of the call's RTP port.
    pub rtp_addr: SocketAddr,
    /// Our side of the WebRTC leg.
    pub local: LocalWebRtc,
    /// SRTP toward the caller.
    pub srtp: SrtpMode,
    /// siphon's fresh `a=crypto` lines, one per suite it takes.
    pub local_crypto: Vec<Crypto>,
    /// The INVITE came over plain UDP/TCP and SRTP keys may not go back
    /// that way (`sip.srtp_allow_insecure_signaling` is false).
    pub plain_signaling: bool,
}

/// What the browser's answer set up.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The browser's ICE username fragment.
    pub remote_ufrag: String,
    /// The browser's ICE password.
    pub remote_pwd: String,
    /// The browser's certificate fingerprint.
    pub remote_fingerprint: String,
    /// The SIP side's media.
    pub media: SipMedia,
    /// The plain SDP answer for the 200 OK.
    pub sip_answer: String,
    /// Our DTLS role: client when the browser answered `setup:passive`
    /// (pion-lineage stacks do when the offerer is ICE-lite).
    pub dtls_role: DtlsRole,
}

#[derive(Debug)]
enum State {
    Ringing,
    /// Boxed: the answered session outweighs the other states.
    Answered(Box<MidCall>),
    Ended,
}

/// One SIP -> browser call.
#[derive(Debug)]
pub struct InboundCall {
    params: InboundParams,
    offer: SipOffer,
    plan: WebRtcOfferPlan,
    webrtc_offer: String,
    ringing: BTreeSet<SessionId>,
    state: State,
    /// When the INVITE arrived.
    started: Instant,
    /// The SDES session siphon answers with; `None`: plain RTP.
    srtp: Option<SdesSession>,
}

impl InboundCall {
    /// Translate the SIP offer that arrived at `now`; a 488 when no codec
    /// browsers take is offered.
    pub fn start(params: InboundParams, now: Instant) -> Result<Self, StartError> {
        let not_acceptable = |e: SdpError| StartError {
            code: 488,
            reason: e.to_string(),
        };
        let offer = sdp::parse_sip_offer(&params.offer_sdp).map_err(not_acceptable)?;
        let (mode, plain) = (params.srtp, params.plain_signaling);
        let srtp = sdes::accept_offer(mode, &params.local_crypto, &offer, plain).map_err(|e| {
            StartError {
                code: 488,
                reason: e.to_string(),
            }
        })?;
        let (webrtc_offer, plan) =
            sdp::build_webrtc_offer(&offer, &params.browser_codecs, &params.local.sdp_params())
                .map_err(not_acceptable)?;
        Ok(InboundCall {
            params,
            offer,
            plan,
            webrtc_offer,
            ringing: BTreeSet::new(),
            state: State::Ringing,
            started: now,
            srtp,
        })
    }

    /// The `incoming` message every session of the user gets.
    pub fn incoming(&self) -> ServerMessage {
        ServerMessage::Incoming(Box::new(Incoming {
            call_id: self.params.call_id.clone(),
            from: self.params.from.clone(),
            to: self.params.to.clone(),
            sdp: self.webrtc_offer.clone(),
        }))
    }

    fn ringing_event(&mut self, event: Event, now: Instant) -> Vec<Command> {
        use ClientInput as C;
        match event {
            Event::Delivered(sessions) => self.delivered(sessions),
            Event::Client(id, C::Accept(sdp)) => self.accept(id, &sdp, now),
            Event::Client(id, C::Reject(code)) => self.reject(id, code),
            Event::Client(id, C::Hangup | C::Gone) => {
                self.drop_branch(id, 480, "Temporarily Unavailable")
            }
            // The SIP layer's own ring limit, or the caller's dialog gone
            // another way: the caller is no longer there to answer.
            Event::Sip(SipInput::Cancelled | SipInput::Ended { .. }) => {
                self.end(Ending::new(487, "Request Terminated", "cancelled", false))
            }
            Event::RingTimeout => {
                let mut cmds = vec![Command::SipReject(480, "No Answer".into())];
                cmds.extend(self.end(Ending::new(480, "No answer", "timeout", false)));
                cmds
            }
            Event::Shutdown => {
                let mut cmds = vec![Command::SipReject(503, "Service Unavailable".into())];
                cmds.extend(self.end(Ending::new(503, super::SHUTTING_DOWN, "error", false)));
                cmds
            }
            _ => Vec::new(),
        }
    }

    fn delivered(&mut self, sessions: Vec<SessionId>) -> Vec<Command> {
        if sessions.is_empty() {
            let mut cmds = vec![Command::SipReject(480, "Temporarily Unavailable".into())];
            cmds.extend(self.end(Ending::new(480, "User offline", "offline", false)));
            return cmds;
        }
        let first = self.ringing.is_empty();
        self.ringing.extend(sessions);
        if first {
            vec![Command::SipRinging]
        } else {
            Vec::new()
        }
    }

    fn accept(&mut self, id: SessionId, sdp: &str, now: Instant) -> Vec<Command> {
        if !self.ringing.contains(&id) {
            return Vec::new();
        }
        let (accepted, session) = match self.translate_answer(sdp) {
            Ok((a, negotiated, side)) => (a, (negotiated, side)),
            Err(e) => {
                let msg = ServerMessage::hangup(&self.params.call_id, 488, e.to_string());
                let mut cmds = vec![Command::Send(id, msg)];
                cmds.extend(self.drop_branch(id, 488, "Not Acceptable Here"));
                return cmds;
            }
        };
        let sip_events = accepted.media.sip_dtmf.is_some();
        let setup = now.saturating_duration_since(self.started);
        let mid = MidCall::new(&self.params.call_id, id, session, sip_events, setup);
        self.state = State::Answered(Box::new(mid));
        let others = std::mem::take(&mut self.ringing);
        let mut cmds = vec![Command::Answer(id, Box::new(accepted))];
        for other in others.into_iter().filter(|s| *s != id) {
            let msg = ServerMessage::hangup(&self.params.call_id, 200, "Answered elsewhere");
            cmds.push(Command::Send(other, msg));
        }
        cmds
    }

    fn translate_answer(&self, sdp: &str) -> Result<(Accepted, Negotiated, SipSide), SdpError> {
        let answer = sdp::parse_webrtc_answer(sdp, &self.plan)?;
        let dtls_role = match answer.setup {
            Setup::Passive => DtlsRole::Client,
            _ => DtlsRole::Server,
        };
        let sip_params = sdp::SipAnswerParams {
            rtp_addr: self.params.rtp_addr,
            session_id: self.params.local.session_id,
            session_version: 1,
            savp: self.srtp.is_some() && self.offer.savp,
            crypto: self.srtp.iter().map(|s| s.local.clone()).collect(),
        };
        let sip_answer = sdp::build_sip_answer(&self.offer, &answer, &sip_params);
        let map = sdp::media_map_inbound(&self.offer, &answer);
        let role = match dtls_role {
            DtlsRole::Client => Setup::Active,
            DtlsRole::Server => Setup::Passive,
        };
        let pts = std::iter::once(answer.codec.pt)
            .chain(answer.telephone_event.as_ref().map(|e| e.pt))
            .collect();
        let remote = Remote {
            ufrag: answer.ice.ufrag.clone(),
            pwd: answer.ice.pwd.clone(),
            fingerprint: answer.fingerprint.value.clone(),
            direction: answer.direction,
            mlines: self
                .webrtc_offer
                .lines()
                .filter(|l| l.starts_with("m="))
                .count(),
        };
        let negotiated = Negotiated::offered(self.webrtc_offer.clone(), role, pts, remote);
        let mut media = sip_media(&map, self.offer.rtp_addr, self.offer.rtcp_mux);
        media.srtp = self.srtp.as_ref().map(SdesSession::media);
        let side = SipSide::new(
            sip_answer.clone(),
            media.clone(),
            answer.sip_pt,
            self.offer.direction,
            self.srtp.clone(),
        );
        let accepted = Accepted {
            remote_ufrag: answer.ice.ufrag.clone(),
            remote_pwd: answer.ice.pwd.clone(),
            remote_fingerprint: answer.fingerprint.value.clone(),
            media,
            sip_answer,
            dtls_role,
        };
        Ok((accepted, negotiated, side))
    }

    /// 603 (or any 6xx) declines everywhere; a busy branch only drops out.
    fn reject(&mut self, id: SessionId, code: u16) -> Vec<Command> {
        if !self.ringing.contains(&id) {
            return Vec::new();
        }
        if code >= 600 {
            let mut cmds = vec![Command::SipReject(code, reason_phrase(code).into())];
            let ending = Ending::new(code, reason_phrase(code), "rejected", false);
            cmds.extend(self.end(ending));
            return cmds;
        }
        self.drop_branch(id, code, reason_phrase(code))
    }

    /// A ringing session dropped out; when it was the last, the caller
    /// hears `code`.
    fn drop_branch(&mut self, id: SessionId, code: u16, reason: &str) -> Vec<Command> {
        if !self.ringing.remove(&id) || !self.ringing.is_empty() {
            return Vec::new();
        }
        let mut cmds = vec![Command::SipReject(code, reason.into())];
        cmds.extend(self.end(Ending::new(code, reason, "rejected", false)));
        cmds
    }

    /// End the call, telling every session still involved.
    fn end(&mut self, ending: Ending) -> Vec<Command> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Answered(mid) => mid.end(ending),
            _ => {
                let ringing = std::mem::take(&mut self.ringing);
                ending.commands(&self.params.call_id, ringing, None)
            }
        }
    }
}

impl CallMachine for InboundCall {
    fn on_event(&mut self, event: Event, now: Instant) -> Vec<Command> {
        let step = match &mut self.state {
            State::Ended => return Vec::new(),
            State::Answered(mid) => mid.on_event(event),
            State::Ringing => unanswered(&self.params.call_id, event),
        };
        match step {
            Step::Commands(cmds) => cmds,
            Step::End(ending) => self.end(ending),
            Step::Pass(event) if matches!(self.state, State::Ringing) => {
                self.ringing_event(event, now)
            }
            Step::Pass(_) => Vec::new(),
        }
    }

    fn is_answered(&self) -> bool {
        matches!(self.state, State::Answered(_))
    }

    fn call_id(&self) -> &str {
        &self.params.call_id
    }

    fn session(&self) -> Option<SessionFacts> {
        match &self.state {
            State::Answered(mid) => Some(mid.session()),
            _ => None,
        }
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        486 => "Busy Here",
        480 => "Temporarily Unavailable",
        603 => "Decline",
        600 => "Busy Everywhere",
        _ => "Rejected",
    }
}

#[cfg(test)]
mod tests;
