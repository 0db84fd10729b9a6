//! An answered SIP -> browser call's renegotiations that involve both legs:
//! the SIP side's hold and resume, and the browser's answer to siphon's
//! re-offer.

use super::{InboundCall, InboundCommand, SessionId};
use crate::call::hold::{reinvite_answered, renegotiate};
use crate::call::reoffer::Renegotiated;

/// The `answer` to the owner's offer, after the ICE restart it asks for.
pub(super) fn answer_commands(
    owner: SessionId,
    call_id: &str,
    r: Renegotiated,
) -> Vec<InboundCommand> {
    let call_id = call_id.to_owned();
    let answer = ServerMessage::Answer {
        call_id,
        sdp: r.answer,
    };
    let restart = r.restart.map(InboundCommand::RestartIce);
    restart
        .into_iter()
        .chain([InboundCommand::Send(owner, answer)])
        .collect()
}
use crate::signaling::{ErrorCode, ServerMessage};

impl InboundCall {
    /// The SIP side re-offered (re-INVITE or UPDATE; `None`: no SDP).
    pub(super) fn sip_reoffer(
        &mut self,
        owner: SessionId,
        sdp: Option<&str>,
    ) -> Vec<InboundCommand> {
        match renegotiate(self.sip_side.as_mut(), self.negotiated.as_mut(), sdp) {
            Ok((media, answer, offer)) => {
                let call_id = self.params.call_id.clone();
                let offer = offer
                    .map(|sdp| InboundCommand::Send(owner, ServerMessage::Offer { call_id, sdp }));
                [
                    InboundCommand::ConfigureMedia(Box::new(media)),
                    InboundCommand::AnswerReoffer(Ok(answer)),
                ]
                .into_iter()
                .chain(offer)
                .collect()
            }
            Err(reason) => vec![InboundCommand::AnswerReoffer(Err(reason))],
        }
    }

    /// The SIP side answered siphon's re-INVITE for the waiting browser offer.
    pub(super) fn reinvite_answered(
        &mut self,
        owner: SessionId,
        result: Option<(u16, String)>,
    ) -> Vec<InboundCommand> {
        // Glare: both sides re-offered. Try again later, a few times.
        if let Some(sdp) = self.pending_sip.as_mut().and_then(|p| p.retry(&result)) {
            return vec![InboundCommand::SipReinvite {
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
                let mut cmds = vec![InboundCommand::ConfigureMedia(Box::new(media))];
                cmds.extend(answer_commands(owner, &call_id, r));
                cmds
            }
            Err(refused) => {
                let err = ServerMessage::error(Some(&call_id), refused.code(), refused.message());
                vec![InboundCommand::Send(owner, err)]
            }
        }
    }

    /// The answering session answered siphon's re-offer.
    pub(super) fn client_answer(&mut self, owner: SessionId, sdp: &str) -> Vec<InboundCommand> {
        let result = match self.negotiated.as_mut() {
            Some(n) => n.on_answer(sdp),
            None => Err("answer: no offer of siphon's is waiting".into()),
        };
        match result {
            Ok(()) => Vec::new(),
            Err(reason) => {
                let call_id = Some(self.params.call_id.as_str());
                let err = ServerMessage::error(call_id, ErrorCode::BadSdp, reason);
                vec![InboundCommand::Send(owner, err)]
            }
        }
    }
}
