//! The call's SIP dialog as the driver sees it, whichever side of it
//! siphon is: one handle to hang up, re-INVITE and send INFO, and one
//! stream of events for the machine.

use tokio::sync::mpsc;

use crate::call::SipInput;
use crate::sip::{self, HangupOutcome, UacEvent, UacHandle, UasEvent, UasHandle};

/// The call's SIP dialog, as whichever side of it siphon is.
#[derive(Clone)]
pub(super) enum Dialog {
    /// siphon answered the INVITE (SIP -> browser).
    Uas(UasHandle),
    /// siphon sent the INVITE (browser -> SIP).
    Uac(UacHandle),
}

impl Dialog {
    /// BYE (or CANCEL, or 480 before the answer).
    pub(super) async fn hangup(self) -> HangupOutcome {
        match self {
            Dialog::Uas(h) => h.hangup().await,
            Dialog::Uac(h) => h.hangup().await,
        }
    }

    /// A re-INVITE with this SDP: its final status and body.
    pub(super) async fn reinvite(self, sdp: String) -> Option<(u16, String)> {
        match self {
            Dialog::Uas(h) => h.reinvite(sdp).await,
            Dialog::Uac(h) => h.reinvite(sdp).await,
        }
    }

    /// REFER with this Refer-To: the final status.
    pub(super) async fn refer(self, refer_to: &str) -> Option<u16> {
        match self {
            Dialog::Uas(h) => h.refer(refer_to).await,
            Dialog::Uac(h) => h.refer(refer_to).await,
        }
    }

    /// NOTIFY the peer whose REFER siphon took of the new call's status.
    pub(super) async fn notify_referrer(self, code: u16) {
        match self {
            Dialog::Uas(h) => h.notify_referrer(code).await,
            Dialog::Uac(h) => h.notify_referrer(code).await,
        }
    }

    /// The answered dialog as a transfer names it.
    pub(super) fn dialog_ref(&self) -> Option<sip::DialogRef> {
        match self {
            Dialog::Uas(h) => h.dialog_ref(),
            Dialog::Uac(h) => h.dialog_ref(),
        }
    }

    /// One key press as SIP INFO: the final status.
    pub(super) async fn info(self, digit: char, ms: u32) -> Option<u16> {
        match self {
            Dialog::Uas(h) => h.info(digit, ms).await,
            Dialog::Uac(h) => h.info(digit, ms).await,
        }
    }
}

/// The dialog's events, from whichever side.
pub(super) enum SipEvents {
    /// SIP -> browser.
    Uas(mpsc::Receiver<UasEvent>),
    /// browser -> SIP.
    Uac(mpsc::Receiver<UacEvent>),
}

/// One SIP event as the driver takes it.
pub(super) enum FromSip {
    /// For the machine.
    Input(SipInput),
    /// A re-offer: the driver keeps it to answer, the machine decides.
    Reoffer(Box<sip::Reoffer>),
    /// A REFER: the driver keeps it to answer, the machine decides.
    Referred(Box<sip::Referral>),
    /// Nothing for the machine (100 Trying, ACK).
    Nothing,
}

impl SipEvents {
    /// The next event; `None` once the dialog's channel closed.
    pub(super) async fn recv(&mut self) -> Option<FromSip> {
        Some(match self {
            SipEvents::Uas(rx) => match rx.recv().await? {
                UasEvent::Acked => FromSip::Nothing,
                UasEvent::Cancelled => FromSip::Input(SipInput::Cancelled),
                UasEvent::Reoffer(r) => FromSip::Reoffer(r),
                UasEvent::Dtmf { digit, duration_ms } => {
                    FromSip::Input(SipInput::Dtmf(digit, duration_ms))
                }
                UasEvent::Ended { by_remote } => FromSip::Input(SipInput::Ended { by_remote }),
                UasEvent::SessionExpired => FromSip::Input(SipInput::SessionExpired),
                UasEvent::TransferProgress(p) => {
                    FromSip::Input(SipInput::TransferProgress(p.code, p.last))
                }
                UasEvent::Referred(r) => FromSip::Referred(r),
            },
            SipEvents::Uac(rx) => match rx.recv().await? {
                UacEvent::Trying => FromSip::Nothing,
                UacEvent::Ringing | UacEvent::Progress { sdp: None } => {
                    FromSip::Input(SipInput::Ringing)
                }
                UacEvent::Progress { sdp: Some(sdp) } => FromSip::Input(SipInput::Progress(sdp)),
                UacEvent::Forwarded(f) => FromSip::Input(SipInput::Forwarded(f.from, f.to)),
                UacEvent::Answered { sdp } => FromSip::Input(SipInput::Answered(sdp)),
                UacEvent::Failed { code, reason } => FromSip::Input(SipInput::Failed(code, reason)),
                UacEvent::Ended { by_remote } => FromSip::Input(SipInput::Ended { by_remote }),
                UacEvent::SessionExpired => FromSip::Input(SipInput::SessionExpired),
                UacEvent::Dtmf { digit, duration_ms } => {
                    FromSip::Input(SipInput::Dtmf(digit, duration_ms))
                }
                UacEvent::Reoffer(r) => FromSip::Reoffer(r),
                UacEvent::TransferProgress(p) => {
                    FromSip::Input(SipInput::TransferProgress(p.code, p.last))
                }
                UacEvent::Referred(r) => FromSip::Referred(r),
            },
        })
    }

    /// What the machine hears when the dialog's channel closes: for an
    /// answered INVITE the dialog is over; for siphon's own, the SIP leg
    /// was lost.
    pub(super) fn closed(&self) -> SipInput {
        match self {
            SipEvents::Uas(_) => SipInput::Ended { by_remote: false },
            SipEvents::Uac(_) => SipInput::Failed(500, "SIP leg lost".into()),
        }
    }
}
