//! A transfer the far end asked for (its REFER, RFC 3515), the same in
//! both directions: siphon calls the Refer-To target on the browser's
//! behalf with the session as it is, and once the target answers the call
//! goes on with it. The browser keeps its WebRTC leg (it is re-offered
//! only when the direction changes, as when the PBX held it before the
//! REFER) and is told `transferred`. The old dialog may end meanwhile (a
//! transferor that hangs up at once): the call waits for the target.

use super::{Command, Ending, MidCall, Step};
use crate::signaling::ServerMessage;

/// The far end's transfer of the call.
#[derive(Debug, Default)]
pub(in crate::call) enum Referred {
    /// None under way.
    #[default]
    Idle,
    /// siphon is calling the target.
    Calling {
        /// The target, as the browser is told.
        to: String,
        /// The old dialog ended meanwhile: a failure ends the call.
        old_gone: bool,
    },
}

impl Referred {
    /// A transfer is under way.
    pub(in crate::call) fn calling(&self) -> bool {
        matches!(self, Referred::Calling { .. })
    }

    /// The old dialog ended while siphon calls the target.
    pub(super) fn old_gone(&mut self) {
        if let Referred::Calling { old_gone, .. } = self {
            *old_gone = true;
        }
    }
}

impl MidCall {
    /// The far end's REFER to `to`: call it with the session as it is, or
    /// refuse (491) while another change or transfer is under way.
    pub(super) fn referred(&mut self, to: String) -> Vec<Command> {
        let busy = self.referred.calling()
            || self.transfer != super::Transfer::Idle
            || self.pending_sip.is_some()
            || self.pending_offer.is_some();
        if busy {
            let why = "another transfer or renegotiation is under way";
            return vec![Command::RefuseReferral(491, why.into())];
        }
        match self.side.transfer_offer() {
            Ok(offer) => {
                self.referred = Referred::Calling {
                    to,
                    old_gone: false,
                };
                vec![Command::FollowReferral(offer)]
            }
            Err(e) => vec![Command::RefuseReferral(500, e.to_string())],
        }
    }

    /// The target's final answer to siphon's INVITE.
    pub(super) fn referral_answered(&mut self, result: Option<(u16, String)>) -> Step {
        let Referred::Calling { to, old_gone } = std::mem::take(&mut self.referred) else {
            return Step::Commands(Vec::new());
        };
        let taken = match result {
            Some((200..=299, sdp)) => self.side.on_transfer_answer(&sdp).map_err(|e| {
                tracing::warn!(error = %e, "the transfer target's answer is unusable");
                488
            }),
            Some((code, _)) => Err(code),
            None => Err(408),
        };
        let call_id = self.call_id.clone();
        match taken {
            Ok((media, changed)) => {
                let mut cmds = vec![
                    Command::EndReferral(Ok(())),
                    Command::ConfigureMedia(Box::new(media)),
                ];
                let offer = changed.and_then(|d| {
                    (self.negotiated.offer(d))
                        .map_err(|e| tracing::warn!(error = %e, "cannot re-offer the browser"))
                        .ok()
                });
                if let Some(sdp) = offer {
                    let call_id = call_id.clone();
                    cmds.push(Command::Send(
                        self.owner,
                        ServerMessage::Offer { call_id, sdp },
                    ));
                }
                let told = ServerMessage::Transferred { call_id, to };
                cmds.push(Command::Send(self.owner, told));
                Step::Commands(cmds)
            }
            Err(code) if old_gone => {
                let mut cmds = vec![Command::EndReferral(Err(code))];
                let ending = Ending::new(code, "Transfer failed", "answered", false);
                cmds.extend(self.end(ending));
                Step::Commands(cmds)
            }
            Err(code) => Step::Commands(vec![Command::EndReferral(Err(code))]),
        }
    }
}
