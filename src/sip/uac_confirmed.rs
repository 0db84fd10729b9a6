//! An answered outbound call: BYE from either side, the session timer,
//! and the peer's re-offers and INFOs, until the dialog ends.

use std::collections::VecDeque;
use std::sync::Arc;

use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use tokio::sync::mpsc;

use super::dialog_states::CallStates;
use super::endpoint::Shared;
use super::referral::Answering;
use super::reoffer::{self, InDialog};
use super::session_refresh::{SessionTimers, Watch};
use super::uac::{ended, UacEvent, UacHandle};

/// What an answered call still needs; the INVITE's request, options and
/// transaction are done with.
pub(super) struct Answered {
    pub(super) shared: Arc<Shared>,
    pub(super) handle: UacHandle,
    pub(super) events: mpsc::Sender<UacEvent>,
    pub(super) dialog: InviteDialog,
    pub(super) states: CallStates,
    /// States seen with the final response, handled first.
    pub(super) later: VecDeque<Box<DialogState>>,
    pub(super) timers: Arc<SessionTimers>,
}

pub(super) async fn emit(events: &mpsc::Sender<UacEvent>, ev: UacEvent) {
    // The receiver may be gone; the call still runs to its end.
    let _ = events.send(ev).await;
}

impl Answered {
    /// After the answer: wait for either side to end the call, running
    /// the session timer meanwhile.
    ///
    /// Requests and hangups are boxed: they are brief, and this future lives
    /// as long as the call.
    pub(super) async fn confirmed(mut self) {
        let mut watch = Watch::new(self.timers.clone());
        let mut expired = false;
        let mut answering = Answering::default();
        let by_remote = loop {
            let st = match self.later.pop_front() {
                Some(st) => Some(st),
                // Nothing is queued there again: free its buffer for the call.
                None if self.later.capacity() > 0 => {
                    self.later = VecDeque::new();
                    continue;
                }
                None => tokio::select! {
                    st = self.states.recv() => st,
                    _ = watch.expired(&self.dialog), if !expired => {
                        expired = true;
                        Box::pin(self.handle.hangup()).await;
                        continue;
                    }
                    _ = self.shared.shutdown.cancelled() => {
                        Box::pin(self.handle.hangup()).await;
                        break false;
                    }
                },
            };
            let Some(st) = st else {
                break !self.handle.hung_up();
            };
            match &*st {
                DialogState::Terminated(_, reason) => {
                    break !matches!(
                        reason,
                        TerminatedReason::UacBye | TerminatedReason::UacCancel
                    )
                }
                DialogState::Updated(..)
                | DialogState::Info(..)
                | DialogState::Notify(..)
                | DialogState::Refer(..) => {
                    Box::pin(self.answer_request(*st, &mut answering)).await;
                }
                DialogState::Confirmed(..) => answering.confirmed(),
                _ => continue,
            }
        };
        self.shared.stack.dialogs.remove_dialog(&self.dialog.id());
        let last = if expired {
            UacEvent::SessionExpired
        } else {
            ended(by_remote)
        };
        emit(&self.events, last).await;
    }

    /// A re-offer, an INFO, a NOTIFY or a REFER from the peer: answered (or
    /// handed on to answer), then reported.
    async fn answer_request(&self, st: DialogState, answering: &mut Answering) {
        let ev = match reoffer::in_dialog(st, &self.timers).await {
            Some(InDialog::Reoffer(r)) => UacEvent::Reoffer(r),
            Some(InDialog::Dtmf(digit, duration_ms)) => UacEvent::Dtmf { digit, duration_ms },
            Some(InDialog::Transfer(p)) => UacEvent::TransferProgress(p),
            Some(InDialog::Referred(r)) => {
                answering.watch(&r);
                UacEvent::Referred(r)
            }
            None => return,
        };
        emit(&self.events, ev).await;
    }
}
