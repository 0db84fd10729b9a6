//! The SIP -> browser call: every session of the called user rings, the
//! first `accept` wins, the others hear "answered elsewhere". Events in,
//! commands out; no IO, no clock.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::hold::{browser_offer, BrowserOffer, PendingReinvite, SipSide};
use super::keys::{self, TowardSip};
use super::leg::{sip_media, LocalWebRtc};
use super::reoffer::{Negotiated, Remote};
use super::sdes::{self, SdesSession};
use super::{MediaSignal, Outcome, StartError};
use crate::config::SrtpMode;
use crate::media::{Press, SipMedia};
use crate::sdp::{self, Crypto, SdpError, Setup, SipOffer, WebRtcOfferPlan};
use crate::signaling::{ErrorCode, Incoming, ServerMessage};
use crate::webrtc::{DtlsRole, IceRestart};

/// A signaling session's id.
pub type SessionId = u64;

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

/// Inputs of an inbound call.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    /// `incoming` reached these sessions.
    Delivered(Vec<SessionId>),
    /// A session accepted with its answer.
    Accept(SessionId, String),
    /// A session rejected (486 busy, 603 decline).
    Reject(SessionId, u16),
    /// A session hung up (after answer) or closed its socket.
    Hangup(SessionId),
    /// The caller cancelled before the answer.
    SipCancelled,
    /// The dialog ended (BYE, or no ACK).
    SipEnded {
        /// The caller sent the BYE.
        by_remote: bool,
    },
    /// The RFC 4028 session timer ran out; the SIP leg sent BYE.
    SipSessionExpired,
    /// Nobody answered within the ring timeout.
    RingTimeout,
    /// The gateway is shutting down.
    Shutdown,
    /// A media event.
    Media(MediaSignal),
    /// A session re-offered (ICE restart), with fresh local ICE credentials
    /// to use if it restarts.
    Offer(SessionId, String, (String, String)),
    /// A session pressed keys: validated digits and ms.
    Dtmf(SessionId, String, u32),
    /// A key press arrived as SIP INFO: digit and ms.
    SipDtmf(char, u32),
    /// A re-INVITE or UPDATE (its SDP, if any) waits for an answer.
    SipReoffer(Option<String>),
    /// A session answered siphon's re-offer.
    Answer(SessionId, String),
    /// siphon's re-INVITE got this final status and body (`None`: no answer).
    ReinviteAnswered(Option<(u16, String)>),
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

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum InboundCommand {
    /// Send to one session.
    Send(SessionId, ServerMessage),
    /// 180 Ringing toward the caller.
    SipRinging,
    /// Put the WebRTC leg on the relay and answer 200 with `sip_answer`.
    Answer(SessionId, Box<Accepted>),
    /// Final failure toward the caller.
    SipReject(u16, String),
    /// BYE toward the caller.
    SipHangup,
    /// Restart ICE on the leg, then send the session its `answer`.
    RestartIce(IceRestart),
    /// Generated key presses for the relay to play.
    RelayDtmf(Vec<Press>),
    /// Key presses to send as SIP INFO, one per digit: (digit, ms).
    SipInfo(Vec<(char, u32)>),
    /// Answer the pending SIP re-offer: 200 with this SDP, or 488 with the reason.
    AnswerReoffer(Result<String, String>),
    /// Program the relay with the SIP side's new media (hold, resume, a new address).
    ConfigureMedia(Box<SipMedia>),
    /// Send a re-INVITE with this SDP (the browser holds or resumes), after
    /// a random 2.1-4 s when `after_glare` (RFC 3261 section 14.1); its
    /// result comes back as `InboundEvent::ReinviteAnswered`.
    SipReinvite {
        /// The offer.
        sdp: String,
        /// Retrying after a 491.
        after_glare: bool,
    },
    /// Refuse the pending SIP re-offer with 491: siphon's own is under way.
    GlareReoffer,
    /// The call is over.
    Finish(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    Answered(SessionId),
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
    negotiated: Option<Negotiated>,
    /// The SIP side negotiated telephone-event (else DTMF goes as INFO).
    sip_events: bool,
    sip_side: Option<SipSide>,
    /// A browser offer (hold, resume) waiting for the SIP side's answer,
    /// and siphon's re-INVITE for it with the attempts made.
    pending_offer: Option<String>,
    pending_sip: Option<PendingReinvite>,
    /// The SDES session siphon answers with; `None`: plain RTP.
    srtp: Option<SdesSession>,
}

impl InboundCall {
    /// Translate the SIP offer; a 488 when no codec browsers take is offered.
    pub fn start(params: InboundParams) -> Result<Self, StartError> {
        let not_acceptable = |e: SdpError| StartError {
            code: 488,
            reason: e.to_string(),
        };
        let offer = sdp::parse_sip_offer(&params.offer_sdp).map_err(not_acceptable)?;
        let (mode, plain) = (params.srtp, params.plain_signaling);
        let srtp = sdes::accept_offer(mode, &params.local_crypto, &offer, plain)
            .map_err(|reason| StartError { code: 488, reason })?;
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
            negotiated: None,
            sip_events: false,
            sip_side: None,
            pending_offer: None,
            pending_sip: None,
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

    /// Whether the call was answered.
    pub fn is_answered(&self) -> bool {
        matches!(self.state, State::Answered(_))
    }

    /// Feed one event.
    pub fn on_event(&mut self, event: InboundEvent) -> Vec<InboundCommand> {
        use InboundEvent as E;
        match (self.state, event) {
            (State::Ended, _) => Vec::new(),
            (State::Ringing, E::Delivered(sessions)) => self.delivered(sessions),
            (State::Ringing, E::Accept(id, sdp)) => self.accept(id, &sdp),
            (State::Ringing, E::Reject(id, code)) => self.reject(id, code),
            (State::Ringing, E::Hangup(id)) => self.drop_branch(id, 480, "Temporarily Unavailable"),
            // The SIP layer's own ring limit, or the caller's dialog gone
            // another way: the caller is no longer there to answer.
            (State::Ringing, E::SipCancelled | E::SipEnded { .. }) => {
                self.end(487, "Request Terminated", "cancelled", false)
            }
            (State::Ringing, E::RingTimeout) => {
                let mut cmds = vec![InboundCommand::SipReject(480, "No Answer".into())];
                cmds.extend(self.end(480, "No answer", "timeout", false));
                cmds
            }
            (State::Ringing, E::Shutdown) => {
                let mut cmds = vec![InboundCommand::SipReject(503, "Service Unavailable".into())];
                cmds.extend(self.end(503, super::SHUTTING_DOWN, "error", false));
                cmds
            }
            (State::Answered(_), E::Shutdown) => {
                self.end(503, super::SHUTTING_DOWN, "answered", true)
            }
            (State::Answered(_), E::SipEnded { by_remote }) => {
                let reason = if by_remote { "Remote hangup" } else { "Hangup" };
                self.end(200, reason, "answered", false)
            }
            (State::Answered(_), E::SipSessionExpired) => {
                self.end(408, super::SESSION_EXPIRED, "answered", false)
            }
            (State::Answered(owner), E::Hangup(id)) if id == owner => {
                self.end(200, "Local hangup", "answered", true)
            }
            (State::Answered(_), E::Media(MediaSignal::ConsentExpired)) => {
                self.end(408, "Media timeout: ICE consent expired", "answered", true)
            }
            (State::Answered(owner), E::Offer(id, sdp, fresh)) if id == owner => {
                self.reoffer(owner, &sdp, fresh)
            }
            (State::Answered(owner), E::Dtmf(id, digits, ms)) if id == owner => {
                match keys::toward_sip(&digits, ms, self.sip_events) {
                    TowardSip::Rtp(presses) => vec![InboundCommand::RelayDtmf(presses)],
                    TowardSip::Info(digits) => vec![InboundCommand::SipInfo(digits)],
                }
            }
            (State::Answered(_), E::SipReoffer(_)) if self.pending_sip.is_some() => {
                vec![InboundCommand::GlareReoffer]
            }
            (State::Answered(owner), E::SipReoffer(sdp)) => self.sip_reoffer(owner, sdp.as_deref()),
            (State::Answered(owner), E::ReinviteAnswered(result)) => {
                self.reinvite_answered(owner, result)
            }
            (_, E::SipReoffer(_)) => {
                vec![InboundCommand::AnswerReoffer(Err(
                    "no session to change yet".into(),
                ))]
            }
            (State::Answered(owner), E::Answer(id, sdp)) if id == owner => {
                self.client_answer(owner, &sdp)
            }
            (State::Answered(owner), E::SipDtmf(digit, ms)) => {
                let (msg, press) = keys::from_sip(&self.params.call_id, digit, ms);
                let mut cmds = vec![InboundCommand::Send(owner, msg)];
                cmds.extend(press.map(|p| InboundCommand::RelayDtmf(vec![p])));
                cmds
            }
            (_, E::Dtmf(id, ..)) => {
                let msg = "dtmf: only the answering session of an answered call may send keys";
                let err =
                    ServerMessage::error(Some(&self.params.call_id), ErrorCode::BadMessage, msg);
                vec![InboundCommand::Send(id, err)]
            }
            (_, E::Offer(id, ..)) => {
                let msg = "offer: only the answering session of an answered call may re-offer";
                let err =
                    ServerMessage::error(Some(&self.params.call_id), ErrorCode::BadMessage, msg);
                vec![InboundCommand::Send(id, err)]
            }
            (State::Answered(owner), E::Media(MediaSignal::Disconnected)) => {
                let msg = ServerMessage::IceDisconnected {
                    call_id: self.params.call_id.clone(),
                };
                vec![InboundCommand::Send(owner, msg)]
            }
            (State::Answered(_), E::Media(MediaSignal::Key(digit, ms))) => {
                vec![InboundCommand::SipInfo(vec![(digit, ms)])]
            }
            (State::Answered(_), E::Media(MediaSignal::Timeout(reason))) => {
                self.end(408, &reason, "answered", true)
            }
            (State::Answered(_), E::Media(MediaSignal::Closed)) => {
                self.end(200, "WebRTC transport closed", "answered", true)
            }
            (State::Answered(_), E::Media(MediaSignal::Failed(reason))) => self.end(
                500,
                &format!("WebRTC media failed: {reason}"),
                "error",
                true,
            ),
            _ => Vec::new(),
        }
    }

    fn delivered(&mut self, sessions: Vec<SessionId>) -> Vec<InboundCommand> {
        if sessions.is_empty() {
            let mut cmds = vec![InboundCommand::SipReject(
                480,
                "Temporarily Unavailable".into(),
            )];
            cmds.extend(self.end(480, "User offline", "offline", false));
            return cmds;
        }
        let first = self.ringing.is_empty();
        self.ringing.extend(sessions);
        if first {
            vec![InboundCommand::SipRinging]
        } else {
            Vec::new()
        }
    }

    fn accept(&mut self, id: SessionId, sdp: &str) -> Vec<InboundCommand> {
        if !self.ringing.contains(&id) {
            return Vec::new();
        }
        let accepted = match self.translate_answer(sdp) {
            Ok((a, negotiated, side)) => {
                self.negotiated = Some(negotiated);
                self.sip_side = Some(side);
                self.sip_events = a.media.sip_dtmf.is_some();
                a
            }
            Err(e) => {
                let msg = ServerMessage::hangup(&self.params.call_id, 488, e.to_string());
                let mut cmds = vec![InboundCommand::Send(id, msg)];
                cmds.extend(self.drop_branch(id, 488, "Not Acceptable Here"));
                return cmds;
            }
        };
        self.state = State::Answered(id);
        let others = std::mem::take(&mut self.ringing);
        let mut cmds = vec![InboundCommand::Answer(id, Box::new(accepted))];
        for other in others.into_iter().filter(|s| *s != id) {
            let msg = ServerMessage::hangup(&self.params.call_id, 200, "Answered elsewhere");
            cmds.push(InboundCommand::Send(other, msg));
        }
        cmds
    }

    fn reoffer(
        &mut self,
        owner: SessionId,
        sdp: &str,
        fresh: (String, String),
    ) -> Vec<InboundCommand> {
        let call_id = self.params.call_id.clone();
        let Some(negotiated) = self.negotiated.as_mut() else {
            let msg = "offer: the call has no negotiated session to change";
            let err = ServerMessage::error(Some(&call_id), ErrorCode::BadSdp, msg);
            return vec![InboundCommand::Send(owner, err)];
        };
        if self.pending_offer.is_some() {
            let msg = "offer: a renegotiation is under way; offer again once it is answered";
            let err = ServerMessage::error(Some(&call_id), ErrorCode::BadMessage, msg);
            return vec![InboundCommand::Send(owner, err)];
        }
        match browser_offer(negotiated, self.sip_side.as_mut(), sdp, fresh) {
            BrowserOffer::Answer(r) => answer_commands(owner, &call_id, r),
            BrowserOffer::Reinvite(offer) => {
                self.pending_offer = Some(sdp.to_owned());
                self.pending_sip = Some(PendingReinvite::new(offer.clone()));
                vec![InboundCommand::SipReinvite {
                    sdp: offer,
                    after_glare: false,
                }]
            }
            BrowserOffer::Refuse(reason) => {
                let err = ServerMessage::error(Some(&call_id), ErrorCode::BadSdp, reason);
                vec![InboundCommand::Send(owner, err)]
            }
        }
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
    fn reject(&mut self, id: SessionId, code: u16) -> Vec<InboundCommand> {
        if !self.ringing.contains(&id) {
            return Vec::new();
        }
        if code >= 600 {
            let mut cmds = vec![InboundCommand::SipReject(code, reason_phrase(code).into())];
            cmds.extend(self.end(code, reason_phrase(code), "rejected", false));
            return cmds;
        }
        self.drop_branch(id, code, reason_phrase(code))
    }

    fn drop_branch(&mut self, id: SessionId, code: u16, reason: &str) -> Vec<InboundCommand> {
        if !self.ringing.remove(&id) || !self.ringing.is_empty() {
            return Vec::new();
        }
        let mut cmds = vec![InboundCommand::SipReject(code, reason.into())];
        self.state = State::Ended;
        cmds.push(InboundCommand::Finish(Outcome {
            label: "rejected",
            code,
            setup: None,
        }));
        cmds
    }

    /// End the call, telling every session still involved.
    fn end(
        &mut self,
        code: u16,
        reason: &str,
        label: &'static str,
        bye: bool,
    ) -> Vec<InboundCommand> {
        let mut cmds = Vec::new();
        if bye {
            cmds.push(InboundCommand::SipHangup);
        }
        let sessions: Vec<SessionId> = match self.state {
            State::Answered(owner) => vec![owner],
            _ => std::mem::take(&mut self.ringing).into_iter().collect(),
        };
        for s in sessions {
            cmds.push(InboundCommand::Send(
                s,
                ServerMessage::hangup(&self.params.call_id, code, reason),
            ));
        }
        self.state = State::Ended;
        cmds.push(InboundCommand::Finish(Outcome {
            label,
            code,
            setup: None,
        }));
        cmds
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

#[path = "inbound_midcall.rs"]
mod midcall;
use midcall::answer_commands;

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
