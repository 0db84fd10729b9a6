//! An INVITE with Replaces (RFC 3891): the PBX moves a browser's answered
//! call onto a new SIP dialog (an attended transfer or a pickup by the
//! PBX). The new INVITE's offer is taken like a re-INVITE of the call, so
//! the browser's WebRTC leg stays as it is unless the codec changes, the
//! 200 goes on the new dialog, and the old one gets BYE.

use std::sync::Arc;

use super::dialog::{Dialog, SipEvents};
use super::Inner;
use crate::signaling::{ClientControl, ClientEvent, Replacement};
use crate::sip::{self, IncomingCall};

/// Hand an INVITE with Replaces to the call whose dialog it names; 481
/// when none has it.
pub(super) async fn route(gw: &Arc<Inner>, call: IncomingCall) {
    let Some(replaces) = &call.replaces else {
        return;
    };
    let control = gw.sip_calls.get(&replaces.call_id).map(|c| c.clone());
    let replacement = Replacement::new(Box::new(call));
    let sent = control.is_some_and(|c| {
        c.send((0, ClientEvent::Replaced(replacement.clone())))
            .is_ok()
    });
    if !sent {
        if let Some(call) = replacement.take() {
            refuse(&call, 481, "Call/Transaction Does Not Exist").await;
        }
    }
}

async fn refuse(call: &IncomingCall, code: u16, reason: &str) {
    tracing::info!(code, reason, from = %call.from_uri, "INVITE with Replaces refused");
    call.handle.reject(code, reason).await;
}

/// Whether the call on `dialog` can be replaced by `call` now: `Err` is
/// the final answer for the new INVITE. An unanswered call is not taken
/// (486): the browser has not agreed to talk to anyone yet.
pub(super) fn admit(
    dialog: &Dialog,
    call: &IncomingCall,
    answered: bool,
    busy: bool,
) -> Result<(), (u16, &'static str)> {
    verdict(
        dialog.dialog_ref().as_ref(),
        call.replaces.as_ref(),
        answered,
        busy,
    )
}

/// [`admit`] on values: the call's dialog (`None` before the answer), the
/// Replaces, whether the call is answered and whether a re-offer is under way.
fn verdict(
    dialog: Option<&sip::DialogRef>,
    replaces: Option<&sip::Replaces>,
    answered: bool,
    busy: bool,
) -> Result<(), (u16, &'static str)> {
    let names = |d: &sip::DialogRef| replaces.is_some_and(|r| r.names(d));
    match dialog {
        Some(d) if !names(d) => Err((481, "Call/Transaction Does Not Exist")),
        _ if !answered => Err((486, "Busy Here")),
        None => Err((481, "Call/Transaction Does Not Exist")),
        Some(_) if busy => Err((491, "Request Pending")),
        Some(_) => Ok(()),
    }
}

/// The machine's answer to the new INVITE's offer: 200 on the new dialog,
/// which becomes the call's, and BYE on the old one; or the refusal. The
/// new dialog's events, for the driver to listen to from now on.
pub(super) async fn take_over(
    gw: &Inner,
    dialog: &mut Dialog,
    call: Box<IncomingCall>,
    answer: Result<String, crate::call::SessionError>,
) -> Option<SipEvents> {
    let IncomingCall { handle, events, .. } = *call;
    let sdp = match answer {
        Ok(sdp) => sdp,
        Err(reason) => {
            handle.reject(488, &reason.to_string()).await;
            return None;
        }
    };
    if let Err(e) = handle.answer(sdp).await {
        tracing::warn!(error = %e, "the replacing INVITE could not be answered");
        return None;
    }
    let old = std::mem::replace(dialog, Dialog::Uas(handle));
    super::hangups::spawn(gw, old.hangup());
    tracing::info!("call moved to the replacing dialog; BYE on the old one");
    Some(SipEvents::Uas(events))
}

/// A call's entry in the registry of SIP dialogs, removed on drop.
pub(super) struct DialogEntry {
    gw: Arc<Inner>,
    sip_call_id: String,
}

impl DialogEntry {
    /// `control` reaches the call on `dialog` from now on.
    pub(super) fn new(gw: &Arc<Inner>, dialog: &Dialog, control: &ClientControl) -> Option<Self> {
        let sip_call_id = dialog.dialog_ref()?.call_id;
        gw.sip_calls.insert(sip_call_id.clone(), control.clone());
        Some(DialogEntry {
            gw: gw.clone(),
            sip_call_id,
        })
    }
}

impl Drop for DialogEntry {
    fn drop(&mut self) {
        self.gw.sip_calls.remove(&self.sip_call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answered_call_whose_dialog_is_named_is_replaced() {
        let dialog = sip::DialogRef {
            call_id: "c@h".into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            remote_target: "sip:pbx".into(),
        };
        let right = sip::Replaces::parse("c@h;to-tag=ours;from-tag=theirs");
        let wrong = sip::Replaces::parse("c@h;to-tag=theirs;from-tag=ours");
        let (d, r, w) = (Some(&dialog), right.as_ref(), wrong.as_ref());
        assert_eq!(verdict(d, r, true, false), Ok(()));
        assert_eq!(verdict(d, w, true, false).map_err(|e| e.0), Err(481));
        assert_eq!(verdict(d, r, true, true).map_err(|e| e.0), Err(491));
        // Ringing: the browser has not taken the call (RFC 3891 lets a UA refuse).
        assert_eq!(verdict(None, r, false, false).map_err(|e| e.0), Err(486));
        assert_eq!(verdict(None, r, true, false).map_err(|e| e.0), Err(481));
    }
}
