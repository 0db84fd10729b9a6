//! The one shape both call machines share: events in, commands out, through
//! [`CallMachine`]. A driver (in `gateway`) turns the world into [`Event`]s
//! and carries out the [`Command`]s; the machines do no IO and read no clock.

use std::time::Instant;

use super::inbound::Accepted;
use super::signals::{MediaSignal, Outcome, SessionFacts};
use super::SessionError;
use crate::media::{Press, SipMedia};
use crate::signaling::ServerMessage;
use crate::webrtc::IceRestart;

pub use crate::signaling::SessionId;

/// A call machine: SIP -> browser ([`super::inbound::InboundCall`]) or
/// browser -> SIP ([`super::outbound::OutboundCall`]).
pub trait CallMachine {
    /// Feed one event; `now` is the driver's clock.
    fn on_event(&mut self, event: Event, now: Instant) -> Vec<Command>;
    /// Whether the call was answered (the ring timeout no longer applies).
    fn is_answered(&self) -> bool;
    /// The call id the browser knows.
    fn call_id(&self) -> &str;
    /// What the answered session uses; `None` before the answer.
    fn session(&self) -> Option<SessionFacts>;
}

/// Everything a call machine hears.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `incoming` reached these browser sessions (SIP -> browser).
    Delivered(Vec<SessionId>),
    /// A browser session's message (or its socket going away).
    Client(SessionId, ClientInput),
    /// The SIP dialog.
    Sip(SipInput),
    /// The media plane.
    Media(MediaSignal),
    /// Nobody answered within the ring timeout.
    RingTimeout,
    /// No NOTIFY came within `transfer::NOTIFY_WAIT` of siphon's REFER.
    TransferTimeout,
    /// The gateway is shutting down.
    Shutdown,
}

/// What a browser session did.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientInput {
    /// Accepted an incoming call with its SDP answer.
    Accept(String),
    /// Refused an incoming call (486 busy, 603 decline).
    Reject(u16),
    /// Sent `hangup`.
    Hangup,
    /// Its socket closed for good: the call ends without telling it.
    Gone,
    /// Re-offered mid-call (hold, resume, ICE restart), with fresh local
    /// ICE credentials to use if it restarts.
    Offer(String, (String, String)),
    /// Answered siphon's mid-call offer.
    Answer(String),
    /// Asked to transfer the call: the Refer-To, or why there is none.
    Transfer(Result<String, String>),
    /// Pressed keys: validated digits and ms.
    Dtmf(String, u32),
}

/// What the SIP dialog did.
#[derive(Debug, Clone, PartialEq)]
pub enum SipInput {
    /// siphon's INVITE went out.
    InviteSent,
    /// 180 (or 183 without SDP).
    Ringing,
    /// The call was forwarded: by whom and where to, when known.
    Forwarded(Option<String>, Option<String>),
    /// 183 with SDP.
    Progress(String),
    /// 200 with SDP.
    Answered(String),
    /// A final failure to siphon's INVITE.
    Failed(u16, String),
    /// The caller cancelled siphon's ringing.
    Cancelled,
    /// The dialog ended (BYE, or no ACK).
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
    /// siphon's REFER got this final status (`None`: no answer).
    ReferAnswered(Option<u16>),
    /// A NOTIFY on siphon's REFER: the transfer target's status, and
    /// whether it was the last.
    TransferProgress(u16, bool),
    /// The far end's REFER: transfer the call to this URI.
    Referred(String),
    /// The final status and body of siphon's INVITE to the far end's
    /// transfer target (`None`: no answer).
    ReferralAnswered(Option<(u16, String)>),
}

/// What the driver must do, in order.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send to one browser session.
    Send(SessionId, ServerMessage),
    /// 180 Ringing toward the caller (SIP -> browser).
    SipRinging,
    /// Put the WebRTC leg on the relay and answer 200 with its `sip_answer`
    /// (SIP -> browser; the other direction's leg exists before its INVITE).
    Answer(SessionId, Box<Accepted>),
    /// A final failure toward the caller (SIP -> browser).
    SipReject(u16, String),
    /// CANCEL or BYE toward the SIP side.
    SipHangup,
    /// Restart ICE on the leg, before the `answer` that follows is sent.
    RestartIce(IceRestart),
    /// Generated key presses for the relay to play.
    RelayDtmf(Vec<Press>),
    /// Key presses to send as SIP INFO, one per digit: (digit, ms).
    SipInfo(Vec<(char, u32)>),
    /// Send REFER with this Refer-To on the dialog (a transfer); its final
    /// status comes back as `SipInput::ReferAnswered`.
    SipRefer(String),
    /// Answer the pending SIP re-offer: 200 with this SDP, or 488 with the reason.
    AnswerReoffer(Result<String, SessionError>),
    /// Program the relay with the SIP side's media (answer, hold, resume,
    /// a new address).
    ConfigureMedia(Box<SipMedia>),
    /// Send a re-INVITE with this SDP (the browser holds or resumes), after
    /// a random 2.1-4 s when `after_glare` (RFC 3261 section 14.1); its
    /// result comes back as [`SipInput::ReinviteAnswered`].
    SipReinvite {
        /// The offer.
        sdp: String,
        /// Retrying after a 491.
        after_glare: bool,
    },
    /// Refuse the pending SIP re-offer with 491: siphon's own is under way.
    GlareReoffer,
    /// Take the far end's REFER (202) and INVITE its target with this
    /// offer; the final answer comes back as [`SipInput::ReferralAnswered`].
    FollowReferral(String),
    /// Refuse the far end's REFER with this status and reason.
    RefuseReferral(u16, String),
    /// The far end's transfer is over: `Ok`, the target's dialog is the
    /// call's now (NOTIFY 200 and BYE on the old one); `Err`, NOTIFY this
    /// failure and drop the target's dialog.
    EndReferral(Result<(), u16>),
    /// Release everything; the call is over.
    Finish(Outcome),
}

/// How a call ends: what the browser hears, the metric label, and whether
/// the SIP side still needs a BYE (or CANCEL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The `hangup` code.
    pub code: u16,
    /// The `hangup` reason.
    pub reason: String,
    /// The metric label (answered, cancelled, rejected, timeout, error, ...).
    pub label: &'static str,
    /// siphon must end the SIP side.
    pub bye: bool,
    /// A session whose socket is gone: it is not told.
    pub gone: Option<SessionId>,
}

impl Ending {
    /// An ending with no session gone.
    pub fn new(code: u16, reason: impl Into<String>, label: &'static str, bye: bool) -> Ending {
        Ending {
            code,
            reason: reason.into(),
            label,
            bye,
            gone: None,
        }
    }

    /// The commands that end the call: BYE if needed, `hangup` to each of
    /// `sessions` still there, then `Finish`.
    pub fn commands(
        self,
        call_id: &str,
        sessions: impl IntoIterator<Item = SessionId>,
        setup: Option<std::time::Duration>,
    ) -> Vec<Command> {
        let bye = self.bye.then_some(Command::SipHangup);
        let told = sessions.into_iter().filter(|s| Some(*s) != self.gone);
        let hangups =
            told.map(|s| Command::Send(s, ServerMessage::hangup(call_id, self.code, &self.reason)));
        let finish = Command::Finish(Outcome {
            label: self.label,
            code: self.code,
            setup,
        });
        bye.into_iter().chain(hangups).chain([finish]).collect()
    }
}

/// The media plane's signal, in any state: an ending, or what to tell the
/// session in the call (`answered`: the SIP side answered).
pub(super) fn media_signal(signal: MediaSignal, answered: bool) -> MediaStep {
    let label = if answered { "answered" } else { "cancelled" };
    match signal {
        MediaSignal::Connected => MediaStep::Nothing,
        MediaSignal::Disconnected => MediaStep::IceDisconnected,
        MediaSignal::ConsentExpired => {
            let reason = "Media timeout: ICE consent expired";
            MediaStep::End(Ending::new(408, reason, label, true))
        }
        MediaSignal::Closed => {
            MediaStep::End(Ending::new(200, "WebRTC transport closed", label, true))
        }
        MediaSignal::Failed(reason) => {
            let reason = format!("WebRTC media failed: {reason}");
            MediaStep::End(Ending::new(500, reason, "error", true))
        }
        MediaSignal::Timeout(reason) => MediaStep::End(Ending::new(408, reason, label, true)),
        MediaSignal::Key(digit, ms) if answered => MediaStep::Info(digit, ms),
        MediaSignal::Key(..) => MediaStep::Nothing,
    }
}

/// What a media signal leads to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum MediaStep {
    /// Nothing to do.
    Nothing,
    /// Tell the browser its ICE connection dropped (it should restart).
    IceDisconnected,
    /// A key the browser sent in its media goes to SIP as INFO.
    Info(char, u32),
    /// The call ends.
    End(Ending),
}

/// Feeding a machine in tests, at the current instant.
#[cfg(test)]
pub(super) trait Feed {
    /// `on_event` now.
    fn feed(&mut self, event: Event) -> Vec<Command>;
}

#[cfg(test)]
impl<M: CallMachine> Feed for M {
    fn feed(&mut self, event: Event) -> Vec<Command> {
        self.on_event(event, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ending_tells_every_session_but_the_gone_one() {
        let mut ending = Ending::new(200, "Local hangup", "answered", true);
        ending.gone = Some(2);
        let cmds = ending.commands("c1", [1, 2, 3], None);
        assert!(matches!(cmds[0], Command::SipHangup));
        let told: Vec<SessionId> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Send(s, ServerMessage::Hangup { code: 200, .. }) => Some(*s),
                _ => None,
            })
            .collect();
        assert_eq!(told, [1, 3]);
        assert!(matches!(
            cmds.last(),
            Some(Command::Finish(Outcome {
                label: "answered",
                code: 200,
                ..
            }))
        ));
    }

    #[test]
    fn media_failure_is_an_error_in_any_state() {
        for answered in [false, true] {
            let dtls =
                crate::call::MediaFailure::WebRtc(crate::webrtc::WebRtcError::FingerprintMismatch);
            let step = media_signal(MediaSignal::Failed(dtls), answered);
            let MediaStep::End(e) = step else {
                panic!("{step:?}")
            };
            assert_eq!((e.code, e.label, e.bye), (500, "error", true));
        }
        let before = media_signal(MediaSignal::Closed, false);
        assert!(matches!(
            before,
            MediaStep::End(Ending {
                label: "cancelled",
                ..
            })
        ));
        let key = media_signal(MediaSignal::Key('5', 100), false);
        assert_eq!(key, MediaStep::Nothing);
    }
}
