//! One inbound call after it was admitted: the rsipstack server dialog, the
//! handle the consumer drives it with, and the task that turns dialog states
//! into `UasEvent`s.
//!
//! rsipstack's dialog does the protocol work: 2xx retransmission until the
//! ACK, 200 to CANCEL and 487 to the INVITE, 200 to BYE, and a BYE when no
//! ACK comes within 64*T1. This file decides what siphon answers and when.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode, Uri};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc::{self, OwnedPermit};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::debug;

use super::dtmf_info;
use super::endpoint::Shared;
use super::referral;
use super::reoffer::{self, InDialog};
use super::session_refresh::{SessionTimers, Watch};
use super::session_timer::{self, Timer};
use super::stack::{self, ALLOW};
use super::transfer::{self, DialogRef};
use super::uas::{self, IncomingCall, Origin, UasEvent};
use super::HangupOutcome;
use super::{SipError, Transport};

/// An offered call nobody answers or rejects within this is refused (480),
/// so a stalled consumer cannot pin dialogs forever (RFC 3261 Timer C is
/// at least 3 minutes for the same reason).
const RING_LIMIT: Duration = Duration::from_secs(180);
/// Events per call are few (Acked, then one end); this never fills.
const EVENTS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Offered,
    Ringing,
    Answered,
    Over,
}

/// The dialog and how far the consumer took it.
struct CallState {
    dialog: InviteDialog,
    phase: Mutex<Phase>,
    /// The RFC 4028 timer the caller asked for; it runs from the 200.
    asked: Option<Timer>,
    timers: Arc<SessionTimers>,
}

impl CallState {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        // The guarded value is a plain enum, valid even after a panic.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unanswered(&self) -> bool {
        matches!(*self.phase(), Phase::Offered | Phase::Ringing)
    }

    fn reject(&self, code: StatusCode, reason: Option<String>) {
        let mut phase = self.phase();
        if matches!(*phase, Phase::Offered | Phase::Ringing) {
            *phase = Phase::Over;
            if let Err(e) = self.dialog.reject(Some(code), reason) {
                debug!(error = %e, "reject failed");
            }
        }
    }

    /// BYE if answered, 480 if not yet; nothing once over.
    async fn hangup(&self) -> HangupOutcome {
        let was = std::mem::replace(&mut *self.phase(), Phase::Over);
        match was {
            Phase::Offered | Phase::Ringing => {
                match self
                    .dialog
                    .reject(Some(StatusCode::TemporarilyUnavailable), None)
                {
                    Ok(()) => HangupOutcome::Done,
                    Err(_) => HangupOutcome::Failed,
                }
            }
            Phase::Answered => match self.dialog.bye().await {
                Ok(()) => HangupOutcome::Done,
                Err(e) => {
                    debug!(error = %e, "bye failed");
                    HangupOutcome::Failed
                }
            },
            Phase::Over => HangupOutcome::Nothing,
        }
    }
}

/// Drives one inbound call; clones share it. When the last clone is gone
/// an unanswered call is refused with 480 and an answered one is ended.
#[derive(Clone)]
pub struct UasHandle {
    call: Arc<CallState>,
    _owner: Arc<DropGuard>,
}

impl std::fmt::Debug for UasHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UasHandle")
            .field("dialog", &self.call.dialog.id().to_string())
            .field("phase", &*self.call.phase())
            .finish()
    }
}

impl UasHandle {
    /// Send a key press as SIP INFO (`application/dtmf-relay`); the
    /// peer's status code, or `None` without an answer.
    pub async fn info(&self, digit: char, duration_ms: u32) -> Option<u16> {
        dtmf_info::send(&self.call.dialog, digit, duration_ms).await
    }

    /// Send REFER to `target` (a transfer); the final status, `None`
    /// without one.
    pub async fn refer(&self, target: &str) -> Option<u16> {
        let dialog = &self.call.dialog;
        transfer::refer_status(dialog.refer(transfer::refer_to(target), None, None).await)
    }

    /// NOTIFY the peer whose REFER siphon took of the new call's status.
    pub async fn notify_referrer(&self, code: u16) {
        referral::notify(&self.call.dialog, code, code >= 200).await;
    }

    /// The answered dialog as a transfer names it.
    pub fn dialog_ref(&self) -> Option<DialogRef> {
        (*self.call.phase() == Phase::Answered).then(|| DialogRef::of(&self.call.dialog.snapshot()))
    }

    /// Send a re-INVITE with `sdp` (hold, resume); the final status and SDP.
    pub async fn reinvite(&self, sdp: String) -> Option<(u16, String)> {
        reoffer::send(&self.call.dialog, sdp, &self.call.timers).await
    }

    /// Send 180 Ringing (once; later calls do nothing).
    pub async fn ringing(&self) {
        let mut phase = self.call.phase();
        if *phase == Phase::Offered {
            *phase = Phase::Ringing;
            if let Err(e) = self.call.dialog.ringing(None, None) {
                debug!(error = %e, "ringing failed");
            }
        }
    }

    /// Send 200 OK with the SDP answer; it is retransmitted until the ACK.
    /// Fails if the call was already answered, rejected or cancelled.
    pub async fn answer(&self, sdp: String) -> Result<(), SipError> {
        let mut phase = self.call.phase();
        let open = matches!(*phase, Phase::Offered | Phase::Ringing);
        if !open || self.call.dialog.state().is_terminated() {
            return Err(SipError::Invalid {
                what: "call state for answer",
                value: format!("{:?}", *phase),
            });
        }
        let mut headers = vec![Header::ContentType("application/sdp".into())];
        headers.extend(stack::capabilities());
        headers.extend(
            self.call
                .asked
                .map(session_timer::accepted)
                .unwrap_or_default(),
        );
        self.call.timers.sent_sdp(&sdp);
        self.call
            .dialog
            .accept(Some(headers), Some(sdp.into_bytes()))?;
        self.call.timers.refreshed(self.call.asked);
        *phase = Phase::Answered;
        Ok(())
    }

    /// Refuse the call with a final 4xx-6xx `code` (other codes send 500).
    /// The status line carries the standard phrase; `reason` goes in a
    /// `Reason` header (RFC 3326). Does nothing once answered or over.
    pub async fn reject(&self, code: u16, reason: &str) {
        let code = if (400..=699).contains(&code) {
            code
        } else {
            500
        };
        let text: String = reason
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        let header = (!text.is_empty()).then(|| format!("SIP;cause={code};text=\"{text}\""));
        self.call.reject(StatusCode::from(code), header);
    }

    /// End the call: BYE once answered, 480 before. Calling it again does
    /// nothing. Resolves when the BYE's transaction is over (up to 32 s
    /// for a peer that stopped answering).
    pub async fn hangup(&self) -> HangupOutcome {
        self.call.hangup().await
    }
}

/// Create the dialog, offer the call through `permit` and run it to its end.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut tx: Transaction,
    origin: Origin,
    sdp: String,
    permit: OwnedPermit<IncomingCall>,
) {
    let (dialog, states) = match create_dialog(&shared, &tx, origin) {
        Ok(d) => d,
        Err(e) => {
            debug!(error = %e, "no dialog for inbound INVITE");
            return uas::finish(tx, 500, vec![]).await;
        }
    };
    // 100 before the dialog task starts, so it cannot follow a 180.
    tx.send_trying().await.ok();
    let request = tx.original.clone();
    let closed = uas::connection_closed(&tx);
    let mut driver = dialog.clone();
    let driving = tokio::spawn(async move {
        if let Err(e) = driver.handle(&mut tx).await {
            debug!(error = %e, "inbound INVITE transaction failed");
        }
    });
    let asked = match session_timer::ask(&request) {
        session_timer::Ask::Run(t) => Some(t),
        _ => None,
    };
    let peer_update = session_timer::allows_update(request.headers.iter());
    let call = Arc::new(CallState {
        dialog,
        phase: Mutex::new(Phase::Offered),
        asked,
        timers: SessionTimers::new(None, peer_update, &shared.metrics),
    });
    let released = CancellationToken::new();
    let handle = UasHandle {
        call: call.clone(),
        _owner: Arc::new(released.clone().drop_guard()),
    };
    let (events, rx) = mpsc::channel(EVENTS);
    permit.send(IncomingCall::new(&request, origin, sdp, handle, rx));
    let task = CallTask {
        shared,
        call,
        states,
        events,
        released,
    };
    task.run().await;
    if let Some(closed) = closed {
        tokio::spawn(let_go(driving, closed));
    }
}

/// The dialog is over, but its INVITE transaction may still wait for an ACK
/// until Timer H (32 s after a refusal). Over TCP or TLS, a closed
/// connection brings no ACK, and the transaction would hold its socket that
/// long: once the connection is closed, the transaction goes.
async fn let_go(mut driving: JoinHandle<()>, closed: CancellationToken) {
    tokio::select! {
        _ = closed.cancelled() => driving.abort(),
        _ = &mut driving => {}
    }
}

fn create_dialog(
    shared: &Shared,
    tx: &Transaction,
    origin: Origin,
) -> Result<(InviteDialog, DialogStateReceiver), SipError> {
    let (state_tx, states) = shared.stack.dialogs.new_dialog_state_channel();
    let contact = contact(shared, &tx.original, origin.transport);
    let dialog = shared
        .stack
        .dialogs
        .get_or_create_server_invite(tx, state_tx, None, contact)?;
    Ok((dialog, states))
}

/// Contact of our responses: the called user at our public address on the
/// transport the INVITE came on, so in-dialog requests come back to us.
fn contact(shared: &Shared, req: &Request, t: Transport) -> Option<Uri> {
    let addr = shared.stack.public_addr(t)?;
    let user = req.uri.user().unwrap_or_default();
    Uri::try_from(contact_uri(user, addr, t, &req.uri).as_str()).ok()
}

/// `sip:user@addr;transport=t`, or `sips:user@addr` when a `sips:` request
/// came over TLS (RFC 3261 §8.1.1.8: a sips request gets a sips Contact).
pub(crate) fn contact_uri(user: &str, addr: SocketAddr, t: Transport, request: &Uri) -> String {
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let sips = request.scheme == Some(rsipstack::sip::Scheme::Sips);
    match t {
        Transport::Tls if sips => format!("sips:{at}{addr}"),
        _ => format!("sip:{at}{addr};transport={}", t.param()),
    }
}

struct CallTask {
    shared: Arc<Shared>,
    call: Arc<CallState>,
    states: DialogStateReceiver,
    events: mpsc::Sender<UasEvent>,
    /// Cancelled when the consumer dropped every handle.
    released: CancellationToken,
}

impl CallTask {
    async fn run(mut self) {
        let ring_limit = tokio::time::sleep(RING_LIMIT);
        tokio::pin!(ring_limit);
        let mut acked = false;
        let mut answering = referral::Answering::default();
        let mut released = false;
        let mut expired = false;
        let mut watch = Watch::new(self.call.timers.clone());
        let dialog = self.call.dialog.clone();
        loop {
            tokio::select! {
                st = self.states.recv() => {
                    let Some(st) = st else { break };
                    if self.on_state(st, (&mut acked, &mut answering), expired).await {
                        break;
                    }
                }
                _ = watch.expired(&dialog), if !expired => {
                    expired = true;
                    self.call.hangup().await;
                }
                _ = self.released.cancelled(), if !released => {
                    released = true;
                    self.call.hangup().await;
                }
                _ = &mut ring_limit, if self.call.unanswered() => {
                    self.call.reject(StatusCode::TemporarilyUnavailable, None);
                }
                _ = self.shared.shutdown.cancelled() => {
                    self.call.hangup().await;
                    break;
                }
            }
        }
        let id = self.call.dialog.id();
        self.shared.stack.dialogs.remove_dialog(&id);
    }

    async fn emit(&self, ev: UasEvent) {
        // The consumer may have stopped listening; the call still ends cleanly.
        let _ = self.events.send(ev).await;
    }

    /// Handle one dialog state; `true` once the dialog is over.
    async fn on_state(
        &self,
        st: DialogState,
        (acked, answering): (&mut bool, &mut referral::Answering),
        expired: bool,
    ) -> bool {
        match st {
            DialogState::Confirmed(..) if !*acked => {
                *acked = true;
                self.emit(UasEvent::Acked).await;
            }
            DialogState::Confirmed(..) => answering.confirmed(),
            st @ (DialogState::Updated(..)
            | DialogState::Info(..)
            | DialogState::Notify(..)
            | DialogState::Refer(..)) => match reoffer::in_dialog(st, &self.call.timers).await {
                Some(InDialog::Reoffer(r)) => self.emit(UasEvent::Reoffer(r)).await,
                Some(InDialog::Dtmf(digit, duration_ms)) => {
                    self.emit(UasEvent::Dtmf { digit, duration_ms }).await
                }
                Some(InDialog::Transfer(p)) => self.emit(UasEvent::TransferProgress(p)).await,
                Some(InDialog::Referred(r)) => {
                    answering.watch(&r);
                    self.emit(UasEvent::Referred(r)).await
                }
                None => {}
            },
            DialogState::Options(_, _, handle) => {
                let allow = Header::Allow(ALLOW.into());
                handle
                    .respond(StatusCode::OK, Some(vec![allow]), None)
                    .await
                    .ok();
            }
            DialogState::Terminated(_, reason) => {
                *self.call.phase() = Phase::Over;
                let ev = match ended_event(&reason) {
                    Some(UasEvent::Ended { by_remote: false }) if expired => {
                        Some(UasEvent::SessionExpired)
                    }
                    ev => ev,
                };
                if let Some(ev) = ev {
                    self.emit(ev).await;
                }
                return true;
            }
            // MESSAGE: dropping the handle makes rsipstack answer 501.
            _ => {}
        }
        false
    }
}

/// The event a terminated dialog means to the consumer, if any: our own
/// reject (and a 480 for an abandoned call) needs none.
fn ended_event(reason: &TerminatedReason) -> Option<UasEvent> {
    match reason {
        TerminatedReason::UacCancel => Some(UasEvent::Cancelled),
        TerminatedReason::UacBye => Some(UasEvent::Ended { by_remote: true }),
        // Our BYE, or rsipstack's after the ACK never came: both follow a 200.
        TerminatedReason::UasBye | TerminatedReason::Timeout => {
            Some(UasEvent::Ended { by_remote: false })
        }
        _ => None,
    }
}
