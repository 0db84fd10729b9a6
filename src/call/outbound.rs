//! The browser -> SIP call: a state machine that takes events (SIP responses,
//! client messages, media events, timers) and returns commands for the
//! driver to carry out. No IO, no clock: `now` is passed in.

use std::net::SocketAddr;
use std::time::Instant;

use super::hold::{browser_offer, BrowserOffer, PendingReinvite, SipSide};
use super::keys::{self, TowardSip};
use super::leg::{sip_media, LocalWebRtc};
use super::reoffer::{Negotiated, Remote};
use super::{sdes, SESSION_EXPIRED};
use super::{MediaSignal, Outcome, StartError};
use crate::config::SrtpMode;
use crate::media::{Press, SipMedia};
use crate::sdp::{self, Crypto, SdpError, SipOfferPlan, WebRtcOffer};
use crate::signaling::{ErrorCode, ServerMessage};
use crate::webrtc::IceRestart;

/// What the driver allocated and configured before the call starts.
#[derive(Debug, Clone)]
pub struct OutboundParams {
    /// The call id known to the client.
    pub call_id: String,
    /// The browser's SDP offer.
    pub offer_sdp: String,
    /// SIP-side codecs in preference order.
    pub sip_codecs: Vec<String>,
    /// The public address of the call's RTP port.
    pub rtp_addr: SocketAddr,
    /// Our side of the WebRTC leg.
    pub local: LocalWebRtc,
    /// SRTP toward the SIP side.
    pub srtp: SrtpMode,
    /// siphon's fresh `a=crypto` lines, one per offered suite (unused when off).
    pub local_crypto: Vec<Crypto>,
}

/// Inputs from the SIP leg.
#[derive(Debug, Clone, PartialEq)]
pub enum SipEvent {
    /// 180 (or 183 without SDP).
    Ringing,
    /// 183 with SDP.
    Progress(String),
    /// 200 with SDP.
    Answered(String),
    /// A final failure.
    Failed(u16, String),
    /// The dialog ended (BYE); `by_remote` when the far end hung up.
    Ended {
        /// The far end sent the BYE.
        by_remote: bool,
    },
    /// The RFC 4028 session timer ran out; the SIP leg sent BYE.
    SessionExpired,
    /// A key press arrived as SIP INFO: digit and ms.
    Dtmf(char, u32),
    /// A re-INVITE or UPDATE (its SDP, if any) waits for an answer.
    Reoffer(Option<String>),
    /// siphon's re-INVITE got this final status and body (`None`: no answer).
    ReinviteAnswered(Option<(u16, String)>),
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a message to the client.
    Send(ServerMessage),
    /// Program the relay with the SIP side's media.
    ConfigureMedia(Box<SipMedia>),
    /// CANCEL or BYE the SIP leg.
    SipHangup,
    /// Restart ICE on the leg (before the `answer` that follows is sent).
    RestartIce(IceRestart),
    /// Generated key presses for the relay to play.
    RelayDtmf(Vec<Press>),
    /// Key presses to send as SIP INFO, one per digit: (digit, ms).
    SipInfo(Vec<(char, u32)>),
    /// Answer the pending SIP re-offer: 200 with this SDP, or 488 with the reason.
    AnswerReoffer(Result<String, String>),
    /// Send a re-INVITE with this SDP (the browser holds or resumes), after
    /// a random 2.1-4 s when `after_glare` (RFC 3261 section 14.1); its
    /// result comes back as `SipEvent::ReinviteAnswered`.
    SipReinvite {
        /// The offer.
        sdp: String,
        /// Retrying after a 491.
        after_glare: bool,
    },
    /// Refuse the pending SIP re-offer with 491: siphon's own is under way.
    GlareReoffer,
    /// Release everything; the call is over.
    Finish(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Inviting,
    Early,
    Answered,
    Ended,
}

/// One browser -> SIP call.
#[derive(Debug)]
pub struct OutboundCall {
    params: OutboundParams,
    offer: WebRtcOffer,
    plan: SipOfferPlan,
    state: State,
    rang: bool,
    started: Instant,
    answered_at: Option<Instant>,
    negotiated: Option<Negotiated>,
    /// The SIP side negotiated telephone-event (else DTMF goes as INFO).
    sip_events: bool,
    /// siphon's SIP offer, then the SIP side of the answered session.
    sip_offer: String,
    sip_side: Option<SipSide>,
    /// The answer the browser applied with `progress` (early media).
    early_answer: Option<String>,
    /// A browser offer (hold, resume) waiting for the SIP side's answer,
    /// and siphon's re-INVITE for it with the attempts made.
    pending_offer: Option<String>,
    pending_sip: Option<PendingReinvite>,
}

impl OutboundCall {
    /// Translate the browser offer; returns the call and the SIP offer SDP.
    pub fn start(params: OutboundParams, now: Instant) -> Result<(Self, String), StartError> {
        let not_acceptable = |e: SdpError| StartError {
            code: 488,
            reason: e.to_string(),
        };
        let offer = sdp::parse_webrtc_offer(&params.offer_sdp).map_err(not_acceptable)?;
        let (savp, crypto) = sdes::offer(params.srtp, &params.local_crypto);
        let sip_params = sdp::SipOfferParams {
            rtp_addr: params.rtp_addr,
            session_id: params.local.session_id,
            session_version: 1,
            savp,
            crypto,
        };
        let (sip_offer, plan) = sdp::build_sip_offer(&offer, &params.sip_codecs, &sip_params)
            .map_err(not_acceptable)?;
        let call = OutboundCall {
            params,
            offer,
            plan,
            state: State::Inviting,
            rang: false,
            started: now,
            answered_at: None,
            negotiated: None,
            sip_events: false,
            sip_offer: sip_offer.clone(),
            sip_side: None,
            early_answer: None,
            pending_offer: None,
            pending_sip: None,
        };
        Ok((call, sip_offer))
    }

    /// The client's call id.
    pub fn call_id(&self) -> &str {
        &self.params.call_id
    }

    /// The browser's ICE credentials and DTLS fingerprint: (ufrag, pwd, fingerprint).
    pub fn remote_ice(&self) -> (String, String, String) {
        let o = &self.offer;
        (
            o.ice.ufrag.clone(),
            o.ice.pwd.clone(),
            o.fingerprint.value.clone(),
        )
    }

    /// Whether the call was answered.
    pub fn is_answered(&self) -> bool {
        self.state == State::Answered
    }

    /// The INVITE went out.
    pub fn on_invite_sent(&self) -> Vec<Command> {
        vec![Command::Send(ServerMessage::Trying {
            call_id: self.call_id().to_owned(),
        })]
    }

    /// A SIP event.
    pub fn on_sip(&mut self, event: SipEvent, now: Instant) -> Vec<Command> {
        if self.state == State::Ended {
            return Vec::new();
        }
        match event {
            SipEvent::Ringing => self.ringing(),
            SipEvent::Progress(sdp) => self.early_media(&sdp),
            SipEvent::Answered(sdp) => self.answered(&sdp, now),
            SipEvent::Failed(code, reason) => {
                let label = if code == 408 { "timeout" } else { "rejected" };
                self.finish(label, code, reason, false)
            }
            SipEvent::Dtmf(digit, duration_ms) if self.state == State::Answered => {
                let (msg, press) = keys::from_sip(self.call_id(), digit, duration_ms);
                let mut cmds = vec![Command::Send(msg)];
                cmds.extend(press.map(|p| Command::RelayDtmf(vec![p])));
                cmds
            }
            SipEvent::Dtmf(..) => Vec::new(),
            SipEvent::Reoffer(_) if self.pending_sip.is_some() => vec![Command::GlareReoffer],
            SipEvent::Reoffer(sdp) => self.on_sip_reoffer(sdp.as_deref()),
            SipEvent::ReinviteAnswered(result) => self.on_reinvite_answered(result),
            SipEvent::Ended { by_remote } => {
                let reason = if by_remote { "Remote hangup" } else { "Hangup" };
                self.finish(self.ended_label(), 200, reason.into(), false)
            }
            SipEvent::SessionExpired => {
                self.finish(self.ended_label(), 408, SESSION_EXPIRED.into(), false)
            }
        }
    }

    /// The client sent `hangup`.
    pub fn on_client_hangup(&mut self) -> Vec<Command> {
        if self.state == State::Ended {
            return Vec::new();
        }
        if self.state == State::Answered {
            self.finish("answered", 200, "Local hangup".into(), true)
        } else {
            self.finish("cancelled", 487, "Request Terminated".into(), true)
        }
    }

    /// The client re-offered mid-call (ICE restart); `fresh_ice` gives new
    /// local credentials if it restarts.
    pub fn on_client_offer(&mut self, sdp: &str, fresh_ice: (String, String)) -> Vec<Command> {
        let call_id = self.call_id().to_owned();
        let negotiated = self.negotiated.as_mut();
        let Some(negotiated) = negotiated.filter(|_| self.state == State::Answered) else {
            let msg = "offer: the call is not answered yet";
            let err = ServerMessage::error(Some(&call_id), ErrorCode::BadMessage, msg);
            return vec![Command::Send(err)];
        };
        if self.pending_offer.is_some() {
            let msg = "offer: a renegotiation is under way; offer again once it is answered";
            let err = ServerMessage::error(Some(&call_id), ErrorCode::BadMessage, msg);
            return vec![Command::Send(err)];
        }
        match browser_offer(negotiated, self.sip_side.as_mut(), sdp, fresh_ice) {
            BrowserOffer::Answer(r) => answer_commands(&call_id, r),
            BrowserOffer::Reinvite(offer) => {
                self.pending_offer = Some(sdp.to_owned());
                self.pending_sip = Some(PendingReinvite::new(offer.clone()));
                vec![Command::SipReinvite {
                    sdp: offer,
                    after_glare: false,
                }]
            }
            BrowserOffer::Refuse(reason) => {
                let err = ServerMessage::error(Some(&call_id), ErrorCode::BadSdp, reason);
                vec![Command::Send(err)]
            }
        }
    }

    /// The client pressed keys (validated digits).
    pub fn on_client_dtmf(&self, digits: &str, duration_ms: u32) -> Vec<Command> {
        if self.state != State::Answered {
            let msg = "dtmf: the call is not answered yet";
            let err = ServerMessage::error(Some(self.call_id()), ErrorCode::BadMessage, msg);
            return vec![Command::Send(err)];
        }
        match keys::toward_sip(digits, duration_ms, self.sip_events) {
            TowardSip::Rtp(presses) => vec![Command::RelayDtmf(presses)],
            TowardSip::Info(digits) => vec![Command::SipInfo(digits)],
        }
    }

    /// The client's socket went away: end the call on the SIP side too.
    pub fn on_client_gone(&mut self) -> Vec<Command> {
        let mut cmds = self.on_client_hangup();
        cmds.retain(|c| !matches!(c, Command::Send(_)));
        cmds
    }

    /// siphon is exiting: BYE (or CANCEL) toward SIP, `hangup` 503 to the browser.
    pub fn on_shutdown(&mut self) -> Vec<Command> {
        match self.state {
            State::Ended => Vec::new(),
            State::Answered => self.finish("answered", 503, super::SHUTTING_DOWN.into(), true),
            _ => self.finish("cancelled", 503, super::SHUTTING_DOWN.into(), true),
        }
    }

    /// No final answer within the ring timeout.
    pub fn on_ring_timeout(&mut self) -> Vec<Command> {
        match self.state {
            State::Inviting | State::Early => {
                self.finish("timeout", 408, "Request Timeout".into(), true)
            }
            _ => Vec::new(),
        }
    }

    /// A media event.
    pub fn on_media(&mut self, signal: MediaSignal) -> Vec<Command> {
        match signal {
            MediaSignal::Connected => Vec::new(),
            MediaSignal::Disconnected if self.state != State::Ended => {
                vec![Command::Send(ServerMessage::IceDisconnected {
                    call_id: self.call_id().to_owned(),
                })]
            }
            MediaSignal::Disconnected => Vec::new(),
            MediaSignal::ConsentExpired => {
                let label = self.ended_label();
                self.finish(
                    label,
                    408,
                    "Media timeout: ICE consent expired".into(),
                    true,
                )
            }
            MediaSignal::Closed => {
                let label = self.ended_label();
                self.finish(label, 200, "WebRTC transport closed".into(), true)
            }
            MediaSignal::Failed(reason) => {
                self.finish("error", 500, format!("WebRTC media failed: {reason}"), true)
            }
            MediaSignal::Timeout(reason) => {
                let label = self.ended_label();
                self.finish(label, 408, reason, true)
            }
            MediaSignal::Key(digit, ms) if self.state == State::Answered => {
                vec![Command::SipInfo(vec![(digit, ms)])]
            }
            MediaSignal::Key(..) => Vec::new(),
        }
    }

    fn ringing(&mut self) -> Vec<Command> {
        if self.rang || self.state != State::Inviting {
            return Vec::new();
        }
        self.rang = true;
        vec![Command::Send(ServerMessage::Ringing {
            call_id: self.call_id().to_owned(),
        })]
    }

    fn early_media(&mut self, sdp: &str) -> Vec<Command> {
        if self.state != State::Inviting {
            return Vec::new();
        }
        match self.translate_answer(sdp) {
            Ok((media, answer)) => {
                self.state = State::Early;
                self.early_answer = Some(answer.clone());
                let call_id = self.call_id().to_owned();
                vec![
                    Command::ConfigureMedia(Box::new(media)),
                    Command::Send(ServerMessage::Progress {
                        call_id,
                        sdp: answer,
                    }),
                ]
            }
            // Early media is optional: a bad 183 SDP is not worth the call.
            Err(_) => self.ringing(),
        }
    }

    fn answered(&mut self, sdp: &str, now: Instant) -> Vec<Command> {
        match self.translate_answer(sdp) {
            Ok((media, answer)) => {
                let o = &self.offer;
                let remote = Remote {
                    ufrag: o.ice.ufrag.clone(),
                    pwd: o.ice.pwd.clone(),
                    fingerprint: o.fingerprint.value.clone(),
                    direction: o.direction,
                    mlines: o.mlines.len(),
                };
                let mut negotiated = Negotiated::answered(answer.clone(), remote);
                let reoffer = self.early_differs(&answer, &mut negotiated);
                self.negotiated = Some(negotiated);
                self.sip_events = media.sip_dtmf.is_some();
                self.state = State::Answered;
                self.answered_at = Some(now);
                let call_id = self.call_id().to_owned();
                let reoffer = reoffer.map(|sdp| {
                    let call_id = call_id.clone();
                    Command::Send(ServerMessage::Offer { call_id, sdp })
                });
                [
                    Command::ConfigureMedia(Box::new(media)),
                    Command::Send(ServerMessage::Answered {
                        call_id,
                        sdp: answer,
                    }),
                ]
                .into_iter()
                .chain(reoffer)
                .collect()
            }
            Err(e) => self.finish("no_codec", 488, e.to_string(), true),
        }
    }

    /// After early media the browser holds the 183's answer: when the 200's
    /// differs in what the browser sees (codec, telephone-event, direction),
    /// siphon re-offers the session as the 200 made it.
    fn early_differs(&mut self, answer: &str, n: &mut Negotiated) -> Option<String> {
        let early = self.early_answer.take()?;
        let audio = |sdp: &str| -> Vec<String> {
            let lines = sdp.lines().skip_while(|l| !l.starts_with("m=audio"));
            lines
                .filter(|l| l.starts_with("m=") || l.starts_with("a=rtpmap") || is_direction(l))
                .map(str::to_owned)
                .collect()
        };
        if audio(&early) == audio(answer) {
            return None;
        }
        let direction = sdp::parse_webrtc_session(answer).ok()?.direction;
        n.offer(direction).ok()
    }

    fn translate_answer(&mut self, sdp: &str) -> Result<(SipMedia, String), SdpError> {
        let p = &self.params;
        let offered = sdes::offer(p.srtp, &p.local_crypto).1;
        let answer = sdp::parse_sip_answer(sdp, &self.plan, &offered)?;
        let srtp = sdes::answered(p.srtp, &p.local_crypto, &answer)
            .map_err(SdpError::UnsupportedCrypto)?;
        let webrtc_params = self.params.local.sdp_params();
        let webrtc_answer = sdp::build_webrtc_answer(&self.offer, &answer, &webrtc_params)?;
        let map = sdp::media_map(&self.offer, &answer);
        let mut media = sip_media(&map, answer.rtp_addr, answer.rtcp_mux);
        media.srtp = srtp.as_ref().map(sdes::SdesSession::media);
        let local = self.sip_offer.clone();
        let (pt, direction) = (answer.codec.pt, answer.direction);
        let side = SipSide::new(local, media.clone(), pt, direction, srtp);
        self.sip_side = Some(side);
        Ok((media, webrtc_answer))
    }

    fn ended_label(&self) -> &'static str {
        if self.state == State::Answered {
            "answered"
        } else {
            "cancelled"
        }
    }

    fn finish(
        &mut self,
        label: &'static str,
        code: u16,
        reason: String,
        hangup_sip: bool,
    ) -> Vec<Command> {
        self.state = State::Ended;
        let setup = self
            .answered_at
            .map(|t| t.saturating_duration_since(self.started));
        let mut cmds = Vec::with_capacity(3);
        if hangup_sip {
            cmds.push(Command::SipHangup);
        }
        cmds.push(Command::Send(ServerMessage::hangup(
            self.call_id(),
            code,
            reason,
        )));
        cmds.push(Command::Finish(Outcome { label, code, setup }));
        cmds
    }
}

#[path = "outbound_midcall.rs"]
mod midcall;
use midcall::answer_commands;

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;

fn is_direction(line: &str) -> bool {
    matches!(
        line,
        "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
    )
}
