//! The browser -> SIP call: a state machine that takes events (SIP responses,
//! client messages, media events, timers) and returns commands for the
//! driver to carry out. No IO, no clock: `now` is passed in.

use std::net::SocketAddr;
use std::time::Instant;

use super::hold::SipSide;
use super::leg::{sip_media, LocalWebRtc};
use super::machine::{media_signal, CallMachine, ClientInput, Command, Ending, Event};
use super::machine::{MediaStep, SessionId, SipInput};
use super::midcall::{unanswered, MidCall, Step};
use super::reoffer::{Negotiated, Remote};
use super::signals::SessionFacts;
use super::{sdes, SessionError, StartError, SESSION_EXPIRED, SHUTTING_DOWN};
use crate::config::SrtpMode;
use crate::media::SipMedia;
use crate::sdp::{self, Crypto, SdpError, SipOfferPlan, WebRtcOffer};
use crate::signaling::ServerMessage;

/// What the driver allocated and configured before the call starts.
#[derive(Debug, Clone)]
pub struct OutboundParams {
    /// The call id known to the client.
    pub call_id: String,
    /// The calling browser session.
    pub session: SessionId,
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

#[derive(Debug)]
enum State {
    Inviting,
    Early,
    /// Boxed: the answered session outweighs the other states.
    Answered(Box<MidCall>),
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
    /// The last forwarding told to the browser.
    forwarded: Option<(Option<String>, Option<String>)>,
    started: Instant,
    /// siphon's SIP offer.
    sip_offer: String,
    /// The answer the browser applied with `progress` (early media).
    early_answer: Option<String>,
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
            forwarded: None,
            started: now,
            sip_offer: sip_offer.clone(),
            early_answer: None,
        };
        Ok((call, sip_offer))
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

    fn send(&self, msg: ServerMessage) -> Command {
        Command::Send(self.params.session, msg)
    }

    /// An event before the answer, or one the answered session passed on.
    fn own_event(&mut self, event: Event, now: Instant) -> Vec<Command> {
        let answered = self.is_answered();
        match event {
            Event::Sip(SipInput::InviteSent) => vec![self.send(ServerMessage::Trying {
                call_id: self.params.call_id.clone(),
            })],
            Event::Sip(SipInput::Ringing) => self.ringing(),
            Event::Sip(SipInput::Forwarded(from, to)) => self.forwarded(from, to),
            Event::Sip(SipInput::Progress(sdp)) => self.early_media(&sdp),
            Event::Sip(SipInput::Answered(sdp)) if !answered => self.answered(&sdp, now),
            Event::Sip(SipInput::Failed(code, reason)) => {
                let label = if code == 408 { "timeout" } else { "rejected" };
                self.finish(Ending::new(code, reason, label, false))
            }
            Event::Sip(SipInput::Ended { by_remote }) => {
                let reason = if by_remote { "Remote hangup" } else { "Hangup" };
                self.finish(Ending::new(200, reason, "cancelled", false))
            }
            Event::Sip(SipInput::SessionExpired) => {
                self.finish(Ending::new(408, SESSION_EXPIRED, "cancelled", false))
            }
            Event::Client(id, ClientInput::Hangup | ClientInput::Gone) if !answered => {
                let mut ending = Ending::new(487, "Request Terminated", "cancelled", true);
                let gone = matches!(event, Event::Client(_, ClientInput::Gone));
                ending.gone = gone.then_some(id);
                self.finish(ending)
            }
            Event::Shutdown => self.finish(Ending::new(503, SHUTTING_DOWN, "cancelled", true)),
            Event::RingTimeout if !answered => {
                self.finish(Ending::new(408, "Request Timeout", "timeout", true))
            }
            Event::Media(signal) if !answered => match media_signal(signal, false) {
                MediaStep::IceDisconnected => vec![self.send(ServerMessage::IceDisconnected {
                    call_id: self.params.call_id.clone(),
                })],
                MediaStep::End(ending) => self.finish(ending),
                MediaStep::Nothing | MediaStep::Info(..) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn ringing(&mut self) -> Vec<Command> {
        if self.rang || !matches!(self.state, State::Inviting) {
            return Vec::new();
        }
        self.rang = true;
        vec![self.send(ServerMessage::Ringing {
            call_id: self.params.call_id.clone(),
        })]
    }

    /// Told once per new forwarding, before the answer.
    fn forwarded(&mut self, from: Option<String>, to: Option<String>) -> Vec<Command> {
        let now = (from, to);
        if !matches!(self.state, State::Inviting | State::Early)
            || self.forwarded == Some(now.clone())
        {
            return Vec::new();
        }
        self.forwarded = Some(now.clone());
        let (from, to) = now;
        let call_id = self.params.call_id.clone();
        vec![self.send(ServerMessage::Forwarded { call_id, from, to })]
    }

    fn early_media(&mut self, sdp: &str) -> Vec<Command> {
        if !matches!(self.state, State::Inviting) {
            return Vec::new();
        }
        match self.translate_answer(sdp) {
            Ok((media, answer, _)) => {
                self.state = State::Early;
                self.early_answer = Some(answer.clone());
                let call_id = self.params.call_id.clone();
                vec![
                    Command::ConfigureMedia(Box::new(media)),
                    self.send(ServerMessage::Progress {
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
            Ok((media, answer, side)) => {
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
                let sip_events = media.sip_dtmf.is_some();
                let setup = now.saturating_duration_since(self.started);
                let (call_id, owner) = (&self.params.call_id, self.params.session);
                let session = (negotiated, side);
                let mid = MidCall::new(call_id, owner, session, sip_events, setup);
                self.state = State::Answered(Box::new(mid));
                let call_id = self.params.call_id.clone();
                let reoffer = reoffer.map(|sdp| {
                    let call_id = call_id.clone();
                    self.send(ServerMessage::Offer { call_id, sdp })
                });
                [
                    Command::ConfigureMedia(Box::new(media)),
                    self.send(ServerMessage::Answered {
                        call_id,
                        sdp: answer,
                    }),
                ]
                .into_iter()
                .chain(reoffer)
                .collect()
            }
            Err(e) => self.finish(Ending::new(488, e.to_string(), "no_codec", true)),
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

    /// The SIP answer (183 or 200) as the relay's media, the browser's
    /// answer and the SIP side of the session; `Err` is why the browser
    /// cannot be given it (the `hangup` reason after a 200).
    fn translate_answer(&self, sdp: &str) -> Result<(SipMedia, String, SipSide), SessionError> {
        let p = &self.params;
        let offered = sdes::offer(p.srtp, &p.local_crypto).1;
        let answer = sdp::parse_sip_answer(sdp, &self.plan, &offered)?;
        let srtp = sdes::answered(p.srtp, &p.local_crypto, &answer)?;
        let webrtc_params = self.params.local.sdp_params();
        let webrtc_answer = sdp::build_webrtc_answer(&self.offer, &answer, &webrtc_params)?;
        let map = sdp::media_map(&self.offer, &answer);
        let mut media = sip_media(&map, answer.rtp_addr, answer.rtcp_mux);
        media.srtp = srtp.as_ref().map(sdes::SdesSession::media);
        let local = self.sip_offer.clone();
        let (pt, direction) = (answer.codec.pt, answer.direction);
        let side = SipSide::new(local, media.clone(), pt, direction, srtp);
        Ok((media, webrtc_answer, side))
    }

    /// End the call before its answer (an answered one ends in its
    /// [`MidCall`]).
    fn finish(&mut self, ending: Ending) -> Vec<Command> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Answered(mid) => mid.end(ending),
            _ => ending.commands(&self.params.call_id, [self.params.session], None),
        }
    }
}

impl CallMachine for OutboundCall {
    fn on_event(&mut self, event: Event, now: Instant) -> Vec<Command> {
        let step = match &mut self.state {
            State::Ended => return Vec::new(),
            State::Answered(mid) => mid.on_event(event),
            _ => unanswered(&self.params.call_id, event),
        };
        match step {
            Step::Commands(cmds) => cmds,
            Step::End(ending) => self.finish(ending),
            Step::Pass(event) => self.own_event(event, now),
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

#[cfg(test)]
mod tests;

fn is_direction(line: &str) -> bool {
    matches!(
        line,
        "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
    )
}
