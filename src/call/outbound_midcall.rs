//! An answered browser -> SIP call's renegotiations that involve both legs:
//! the SIP side's hold and resume, and the browser's answer to siphon's
//! re-offer.

use super::{Command, OutboundCall, State};
use crate::call::hold::{reinvite_answered, renegotiate};
use crate::call::reoffer::Renegotiated;

/// The `answer` to a browser's offer, after the ICE restart it asks for.
pub(super) fn answer_commands(call_id: &str, r: Renegotiated) -> Vec<Command> {
    let call_id = call_id.to_owned();
    let answer = ServerMessage::Answer {
        call_id,
        sdp: r.answer,
    };
    let restart = r.restart.map(Command::RestartIce);
    restart.into_iter().chain([Command::Send(answer)]).collect()
}
use crate::signaling::{ErrorCode, ServerMessage};

impl OutboundCall {
    /// The SIP side re-offered (re-INVITE or UPDATE; `None`: no SDP).
    pub(super) fn on_sip_reoffer(&mut self, sdp: Option<&str>) -> Vec<Command> {
        let side = self
            .sip_side
            .as_mut()
            .filter(|_| self.state == State::Answered);
        match renegotiate(side, self.negotiated.as_mut(), sdp) {
            Ok((media, answer, offer)) => {
                let call_id = self.params.call_id.clone();
                let offer = offer.map(|sdp| Command::Send(ServerMessage::Offer { call_id, sdp }));
                [
                    Command::ConfigureMedia(Box::new(media)),
                    Command::AnswerReoffer(Ok(answer)),
                ]
                .into_iter()
                .chain(offer)
                .collect()
            }
            Err(reason) => vec![Command::AnswerReoffer(Err(reason))],
        }
    }

    /// The SIP side answered siphon's re-INVITE for the waiting browser offer.
    pub(super) fn on_reinvite_answered(&mut self, result: Option<(u16, String)>) -> Vec<Command> {
        // Glare: both sides re-offered. Try again later, a few times.
        if let Some(sdp) = self.pending_sip.as_mut().and_then(|p| p.retry(&result)) {
            return vec![Command::SipReinvite {
                sdp,
                after_glare: true,
            }];
        }
        self.pending_sip = None;
        let call_id = self.params.call_id.clone();
        let (Some(pending), Some(n)) = (self.pending_offer.take(), self.negotiated.as_mut()) else {
            return Vec::new();
        };
        let fresh = crate::webrtc::random_ice_credentials();
        match reinvite_answered(n, self.sip_side.as_mut(), &pending, result, fresh) {
            Ok((media, r)) => {
                let mut cmds = vec![Command::ConfigureMedia(Box::new(media))];
                cmds.extend(answer_commands(&call_id, r));
                cmds
            }
            Err(refused) => {
                let err = ServerMessage::error(Some(&call_id), refused.code(), refused.message());
                vec![Command::Send(err)]
            }
        }
    }

    /// The browser answered siphon's re-offer.
    pub fn on_client_answer(&mut self, sdp: &str) -> Vec<Command> {
        let result = match self.negotiated.as_mut() {
            Some(n) => n.on_answer(sdp),
            None => Err("answer: no offer of siphon's is waiting".into()),
        };
        match result {
            Ok(()) => Vec::new(),
            Err(reason) => {
                let err = ServerMessage::error(Some(self.call_id()), ErrorCode::BadSdp, reason);
                vec![Command::Send(err)]
            }
        }
    }
}
