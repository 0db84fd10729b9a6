//! An answered SIP -> browser call's renegotiations that involve both legs:
//! the SIP side's hold and resume, and the browser's answer to siphon's
//! re-offer.

use super::{InboundCall, InboundCommand, SessionId};
use crate::call::hold::renegotiate;
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
