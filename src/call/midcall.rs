//! An answered call, the same in both directions: re-offers from either
//! side (hold, resume, ICE restart), the glare retry, DTMF both ways, the
//! media plane's signals, and every way an answered call ends. Each
//! machine holds one [`MidCall`] from its answer on and hands it every
//! event; what is not mid-call business comes back as [`Step::Pass`].
//!
//! [`unanswered`] is the other half written once: what either machine
//! answers to mid-call requests that come before the answer.

mod referral;

use std::time::Duration;

use super::hold::{browser_offer, reinvite_answered, renegotiate};
use super::hold::{BrowserOffer, PendingReinvite, SipSide};
use super::keys::{self, TowardSip};
use super::machine::{media_signal, ClientInput, Command, Ending, Event, MediaStep, SipInput};
use super::reoffer::{Negotiated, Renegotiated};
use super::signals::SessionFacts;
use super::transfer::{Transfer, TransferStep};
use super::{SessionError, SESSION_EXPIRED, SHUTTING_DOWN};
use crate::signaling::{ErrorCode, ServerMessage, SessionId};
use referral::Referred;

/// What an event came to.
#[derive(Debug)]
pub(super) enum Step {
    /// Carry these out.
    Commands(Vec<Command>),
    /// The call ends.
    End(Ending),
    /// Not this part's business: the machine decides.
    Pass(Event),
}

/// The answered session, as both call machines keep it.
#[derive(Debug)]
pub(super) struct MidCall {
    call_id: String,
    /// The browser session in the call.
    owner: SessionId,
    /// The browser's side of the session.
    negotiated: Negotiated,
    /// The SIP side's side of the session.
    side: SipSide,
    /// The SIP side negotiated telephone-event (else DTMF goes as INFO).
    sip_events: bool,
    /// A browser offer (hold, resume) waiting for the SIP side's answer,
    /// with the fresh ICE credentials it came with, and siphon's re-INVITE
    /// for it with the attempts made.
    pending_offer: Option<(String, (String, String))>,
    pending_sip: Option<PendingReinvite>,
    /// Time from the call's start to its answer.
    setup: Duration,
    /// The browser's transfer, if one is under way.
    transfer: Transfer,
    /// The far end's transfer, if one is under way.
    referred: Referred,
}

impl MidCall {
    /// The session as answered (`sip_events`: the SIP side takes
    /// telephone-event).
    pub(super) fn new(
        call_id: &str,
        owner: SessionId,
        (negotiated, side): (Negotiated, SipSide),
        sip_events: bool,
        setup: Duration,
    ) -> MidCall {
        MidCall {
            call_id: call_id.to_owned(),
            owner,
            negotiated,
            sip_events,
            side,
            pending_offer: None,
            pending_sip: None,
            setup,
            transfer: Transfer::default(),
            referred: Referred::default(),
        }
    }

    /// What the session uses.
    pub(super) fn session(&self) -> SessionFacts {
        self.side.facts()
    }

    /// The commands that end the answered call.
    pub(super) fn end(&self, ending: Ending) -> Vec<Command> {
        ending.commands(&self.call_id, [self.owner], Some(self.setup))
    }

    /// One event of the answered call.
    pub(super) fn on_event(&mut self, event: Event) -> Step {
        let owner = self.owner;
        match event {
            Event::Shutdown => Step::End(Ending::new(503, SHUTTING_DOWN, "answered", true)),
            Event::Sip(SipInput::Referred(to)) => Step::Commands(self.referred(to)),
            Event::Sip(SipInput::ReferralAnswered(result)) => self.referral_answered(result),
            // The transferor hung up: the call waits for the transfer target.
            Event::Sip(
                SipInput::Ended { .. } | SipInput::SessionExpired | SipInput::Failed(..),
            ) if self.referred.calling() => {
                self.referred.old_gone();
                Step::Commands(Vec::new())
            }
            Event::Sip(SipInput::Ended { by_remote }) => {
                let reason = if by_remote { "Remote hangup" } else { "Hangup" };
                Step::End(Ending::new(200, reason, "answered", false))
            }
            Event::Sip(SipInput::SessionExpired) => {
                Step::End(Ending::new(408, SESSION_EXPIRED, "answered", false))
            }
            Event::Sip(SipInput::Reoffer(_)) if self.pending_sip.is_some() => {
                Step::Commands(vec![Command::GlareReoffer])
            }
            Event::Sip(SipInput::Reoffer(sdp)) => Step::Commands(self.sip_reoffer(sdp.as_deref())),
            Event::Sip(SipInput::ReinviteAnswered(result)) => {
                Step::Commands(self.reinvite_answered(result))
            }
            Event::Sip(SipInput::ReferAnswered(code)) => {
                Step::Commands(self.transfer.refer_answered((&self.call_id, owner), code))
            }
            Event::Sip(SipInput::TransferProgress(code, last)) => {
                match self.transfer.notified((&self.call_id, owner), code, last) {
                    TransferStep::Commands(cmds) => Step::Commands(cmds),
                    TransferStep::Done(told, ending) => {
                        let mut cmds = told;
                        cmds.extend(self.end(ending));
                        Step::Commands(cmds)
                    }
                }
            }
            Event::TransferTimeout => {
                Step::Commands(self.transfer.timed_out((&self.call_id, owner)))
            }
            Event::Sip(SipInput::Dtmf(digit, ms)) => {
                let (msg, press) = keys::from_sip(&self.call_id, digit, ms);
                let press = press.map(|p| Command::RelayDtmf(vec![p]));
                Step::Commands(
                    [Command::Send(owner, msg)]
                        .into_iter()
                        .chain(press)
                        .collect(),
                )
            }
            Event::Client(id, input) if id == owner => self.client(input),
            Event::Client(
                id,
                input @ (ClientInput::Offer(..)
                | ClientInput::Answer(_)
                | ClientInput::Dtmf(..)
                | ClientInput::Transfer(_)),
            ) => Step::Commands(not_yours(&self.call_id, id, &input)),
            Event::Media(signal) => match media_signal(signal, true) {
                MediaStep::Nothing => Step::Commands(Vec::new()),
                MediaStep::IceDisconnected => {
                    let call_id = self.call_id.clone();
                    let msg = ServerMessage::IceDisconnected { call_id };
                    Step::Commands(vec![Command::Send(owner, msg)])
                }
                MediaStep::Info(digit, ms) => {
                    Step::Commands(vec![Command::SipInfo(vec![(digit, ms)])])
                }
                MediaStep::End(ending) => Step::End(ending),
            },
            other => Step::Pass(other),
        }
    }

    /// The answering session's own input.
    fn client(&mut self, input: ClientInput) -> Step {
        match input {
            ClientInput::Hangup => Step::End(Ending::new(200, "Local hangup", "answered", true)),
            ClientInput::Gone => {
                let mut ending = Ending::new(200, "Local hangup", "answered", true);
                ending.gone = Some(self.owner);
                Step::End(ending)
            }
            ClientInput::Offer(sdp, fresh) => Step::Commands(self.client_offer(&sdp, fresh)),
            ClientInput::Answer(sdp) => Step::Commands(self.client_answer(&sdp)),
            ClientInput::Transfer(_) if self.referred.calling() => {
                let why = "the far end is transferring the call";
                Step::Commands(vec![super::transfer::failed(
                    (&self.call_id, self.owner),
                    491,
                    why,
                )])
            }
            ClientInput::Transfer(target) => {
                Step::Commands(self.transfer.start((&self.call_id, self.owner), target))
            }
            ClientInput::Dtmf(digits, ms) => {
                Step::Commands(match keys::toward_sip(&digits, ms, self.sip_events) {
                    TowardSip::Rtp(presses) => vec![Command::RelayDtmf(presses)],
                    TowardSip::Info(digits) => vec![Command::SipInfo(digits)],
                })
            }
            other @ (ClientInput::Accept(_) | ClientInput::Reject(_)) => {
                Step::Pass(Event::Client(self.owner, other))
            }
        }
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>) -> Vec<Command> {
        let err = ServerMessage::error(Some(&self.call_id), code, message);
        vec![Command::Send(self.owner, err)]
    }

    /// The browser re-offered: answer it now, or re-INVITE the SIP side
    /// first when it holds or resumes.
    fn client_offer(&mut self, sdp: &str, fresh: (String, String)) -> Vec<Command> {
        if self.pending_offer.is_some() || self.referred.calling() {
            let msg = "offer: a renegotiation is under way; offer again once it is answered";
            return self.error(ErrorCode::BadMessage, msg);
        }
        match browser_offer(&mut self.negotiated, &mut self.side, sdp, fresh.clone()) {
            BrowserOffer::Answer(r) => self.answer_commands(r),
            BrowserOffer::Reinvite(offer) => {
                self.pending_offer = Some((sdp.to_owned(), fresh));
                self.pending_sip = Some(PendingReinvite::new(offer.clone()));
                vec![Command::SipReinvite {
                    sdp: offer,
                    after_glare: false,
                }]
            }
            BrowserOffer::Refuse(reason) => self.error(ErrorCode::BadSdp, reason.to_string()),
        }
    }

    /// The browser answered siphon's re-offer.
    fn client_answer(&mut self, sdp: &str) -> Vec<Command> {
        match self.negotiated.on_answer(sdp) {
            Ok(()) => Vec::new(),
            Err(reason) => self.error(ErrorCode::BadSdp, reason.to_string()),
        }
    }

    /// The SIP side re-offered (re-INVITE or UPDATE; `None`: no SDP).
    fn sip_reoffer(&mut self, sdp: Option<&str>) -> Vec<Command> {
        match renegotiate(&mut self.side, &mut self.negotiated, sdp) {
            Ok((media, answer, offer)) => {
                let call_id = self.call_id.clone();
                let offer = offer
                    .map(|sdp| Command::Send(self.owner, ServerMessage::Offer { call_id, sdp }));
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
    fn reinvite_answered(&mut self, result: Option<(u16, String)>) -> Vec<Command> {
        // Glare: both sides re-offered. Try again later, a few times.
        if let Some(sdp) = self.pending_sip.as_mut().and_then(|p| p.retry(&result)) {
            return vec![Command::SipReinvite {
                sdp,
                after_glare: true,
            }];
        }
        self.pending_sip = None;
        let Some((pending, fresh)) = self.pending_offer.take() else {
            return Vec::new();
        };
        let n = &mut self.negotiated;
        match reinvite_answered(n, &mut self.side, &pending, result, fresh) {
            Ok((media, r)) => {
                let mut cmds = vec![Command::ConfigureMedia(Box::new(media))];
                cmds.extend(self.answer_commands(r));
                cmds
            }
            Err(refused) => self.error(refused.code(), refused.message()),
        }
    }

    /// The `answer` to the browser's offer, after the ICE restart it asks for.
    fn answer_commands(&self, r: Renegotiated) -> Vec<Command> {
        let call_id = self.call_id.clone();
        let answer = ServerMessage::Answer {
            call_id,
            sdp: r.answer,
        };
        let restart = r.restart.map(Command::RestartIce);
        restart
            .into_iter()
            .chain([Command::Send(self.owner, answer)])
            .collect()
    }
}

/// A mid-call request of a session that is not the answering one.
fn not_yours(call_id: &str, session: SessionId, input: &ClientInput) -> Vec<Command> {
    let msg = format!(
        "{}: only the answering session of an answered call may {}",
        input_name(input),
        match input {
            ClientInput::Dtmf(..) => "send keys",
            ClientInput::Answer(_) => "answer",
            _ => "re-offer",
        }
    );
    let err = ServerMessage::error(Some(call_id), ErrorCode::BadMessage, msg);
    vec![Command::Send(session, err)]
}

fn input_name(input: &ClientInput) -> &'static str {
    match input {
        ClientInput::Accept(_) => "accept",
        ClientInput::Reject(_) => "reject",
        ClientInput::Hangup => "hangup",
        ClientInput::Gone => "gone",
        ClientInput::Offer(..) => "offer",
        ClientInput::Answer(_) => "answer",
        ClientInput::Dtmf(..) => "dtmf",
        ClientInput::Transfer(_) => "transfer",
    }
}

/// What either machine answers, before the answer, to the requests that
/// need an answered session: a browser's re-offer, answer or keys get an
/// `error`, a SIP re-offer gets 488, and SIP keys or a re-INVITE's answer
/// are dropped. Anything else passes to the machine.
pub(super) fn unanswered(call_id: &str, event: Event) -> Step {
    match event {
        Event::Client(
            id,
            input @ (ClientInput::Offer(..) | ClientInput::Dtmf(..) | ClientInput::Transfer(_)),
        ) => {
            let msg = format!("{}: the call is not answered yet", input_name(&input));
            let err = ServerMessage::error(Some(call_id), ErrorCode::BadMessage, msg);
            Step::Commands(vec![Command::Send(id, err)])
        }
        Event::Client(id, ClientInput::Answer(_)) => {
            let msg = "answer: no offer of siphon's is waiting";
            let err = ServerMessage::error(Some(call_id), ErrorCode::BadSdp, msg);
            Step::Commands(vec![Command::Send(id, err)])
        }
        Event::Sip(SipInput::Reoffer(_)) => {
            Step::Commands(vec![Command::AnswerReoffer(Err(SessionError::NoSession))])
        }
        Event::Sip(SipInput::Referred(_)) => {
            let why = "the call is not answered".into();
            Step::Commands(vec![Command::RefuseReferral(403, why)])
        }
        Event::Sip(
            SipInput::Dtmf(..)
            | SipInput::ReferralAnswered(_)
            | SipInput::ReinviteAnswered(_)
            | SipInput::ReferAnswered(_)
            | SipInput::TransferProgress(..),
        )
        | Event::TransferTimeout => Step::Commands(Vec::new()),
        other => Step::Pass(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(step: Step) -> Vec<Command> {
        match step {
            Step::Commands(cmds) => cmds,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn before_the_answer_mid_call_requests_get_their_answers() {
        let offer = Event::Client(
            4,
            ClientInput::Offer("v=0".into(), ("u".into(), "p".into())),
        );
        let dtmf = Event::Client(4, ClientInput::Dtmf("1".into(), 100));
        let transfer = Event::Client(4, ClientInput::Transfer(Ok("sip:2000@pbx".into())));
        for (event, code, text) in [
            (
                transfer,
                ErrorCode::BadMessage,
                "transfer: the call is not answered yet",
            ),
            (
                offer,
                ErrorCode::BadMessage,
                "offer: the call is not answered yet",
            ),
            (
                dtmf,
                ErrorCode::BadMessage,
                "dtmf: the call is not answered yet",
            ),
            (
                Event::Client(4, ClientInput::Answer("v=0".into())),
                ErrorCode::BadSdp,
                "answer: no offer of siphon's is waiting",
            ),
        ] {
            let cmds = commands(unanswered("c1", event));
            let [Command::Send(
                4,
                ServerMessage::Error {
                    code: c, message, ..
                },
            )] = &cmds[..]
            else {
                panic!("{cmds:?}")
            };
            assert_eq!((c, message.as_str()), (&code, text));
        }
        let reoffer = commands(unanswered("c1", Event::Sip(SipInput::Reoffer(None))));
        assert!(matches!(
            &reoffer[..],
            [Command::AnswerReoffer(Err(SessionError::NoSession))]
        ));
        let keys = commands(unanswered("c1", Event::Sip(SipInput::Dtmf('1', 100))));
        assert!(keys.is_empty(), "SIP keys before the answer are dropped");
        assert!(matches!(
            unanswered("c1", Event::RingTimeout),
            Step::Pass(Event::RingTimeout)
        ));
    }
}
