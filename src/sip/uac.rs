//! Outbound calls (UAC): INVITE, provisional events, one digest retry,
//! answer, and the end of the call from either side.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::Response;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};

use super::dialog_states::CallStates;
use super::dtmf_info;
use super::endpoint::Shared;
use super::reoffer;
use super::session_refresh::SessionTimers;
use super::session_timer;
use super::stack;
use super::transfer::{self, DialogRef};
use super::uac_confirmed::{emit, Answered};
use super::uac_request as request;
use super::{redirect, HangupOutcome, Hop, OutboundInvite, SipError};

/// What happens on an outbound call, in order; `Failed` or `Ended` is last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UacEvent {
    /// 100 Trying.
    Trying,
    /// 180, 181 or 182.
    Ringing,
    /// The call was forwarded: a 181, or a provisional response with
    /// History-Info or Diversion. Comes before that response's own event.
    Forwarded(super::Forwarding),
    /// 183 Session Progress, with early-media SDP if present.
    Progress {
        /// SDP of the 183, if any.
        sdp: Option<String>,
    },
    /// 200 OK (already ACKed).
    Answered {
        /// SDP answer.
        sdp: String,
    },
    /// A final failure (3xx-6xx), a second challenge or a timeout (408).
    Failed {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// The answered call ended.
    Ended {
        /// Whether the remote side sent the BYE.
        by_remote: bool,
    },
    /// The peer stopped refreshing the RFC 4028 session timer, or siphon's
    /// refresh found the dialog gone: siphon sent BYE. Last event.
    SessionExpired,
    /// A re-INVITE or UPDATE from the far end: answer it. Boxed: the
    /// largest variant sizes every slot of the call's event channel.
    Reoffer(Box<super::Reoffer>),
    /// A NOTIFY reported on siphon's REFER (answered 200).
    TransferProgress(super::Progress),
    /// The far end's REFER: take it (202) or refuse it.
    Referred(Box<super::Referral>),
    /// A key press arrived as SIP INFO (answered 200).
    Dtmf {
        /// 0-9 * # A-D.
        digit: char,
        /// Tone length in ms.
        duration_ms: u32,
    },
}

/// Controls one outbound call; clones share it.
#[derive(Clone, Default)]
pub struct UacHandle {
    slot: Arc<Mutex<Slot>>,
}

#[derive(Default)]
struct Slot {
    hung_up: bool,
    dialog: Option<InviteDialog>,
    /// Set at the answer.
    timers: Option<Arc<SessionTimers>>,
}

impl UacHandle {
    /// End the call: CANCEL before a final response, BYE after the 200.
    /// Calling it again does nothing. Resolves when the request's
    /// transaction is over (up to 32 s for a peer that stopped answering).
    pub async fn hangup(&self) -> HangupOutcome {
        let dialog = {
            let Ok(mut slot) = self.slot.lock() else {
                return HangupOutcome::Nothing;
            };
            if slot.hung_up {
                return HangupOutcome::Nothing;
            }
            slot.hung_up = true;
            slot.dialog.clone()
        };
        let Some(d) = dialog else {
            return HangupOutcome::Nothing;
        };
        match d.hangup().await {
            Ok(()) => HangupOutcome::Done,
            Err(e) => {
                debug!(error = %e, "hangup");
                HangupOutcome::Failed
            }
        }
    }

    /// Send a key press as SIP INFO (`application/dtmf-relay`); the
    /// peer's status code, or `None` before the answer or without one.
    pub async fn info(&self, digit: char, duration_ms: u32) -> Option<u16> {
        let dialog = self.slot.lock().ok()?.dialog.clone()?;
        dtmf_info::send(&dialog, digit, duration_ms).await
    }

    /// Send REFER to `target` (a transfer); the final status, `None`
    /// before the answer or without one.
    pub async fn refer(&self, target: &str) -> Option<u16> {
        let dialog = self.slot.lock().ok()?.dialog.clone()?;
        transfer::refer_status(dialog.refer(transfer::refer_to(target), None, None).await)
    }

    /// NOTIFY the peer whose REFER siphon took of the new call's status.
    pub async fn notify_referrer(&self, code: u16) {
        let dialog = self.slot.lock().ok().and_then(|s| s.dialog.clone());
        if let Some(dialog) = dialog {
            super::referral::notify(&dialog, code, code >= 200).await;
        }
    }

    /// The answered dialog as a transfer names it.
    pub fn dialog_ref(&self) -> Option<DialogRef> {
        let slot = self.slot.lock().ok()?;
        // The session timers are set at the answer: before it there is no
        // dialog to name (an early one may still fork or fail).
        slot.timers.as_ref()?;
        Some(DialogRef::of(&slot.dialog.as_ref()?.snapshot()))
    }

    /// Send a re-INVITE with `sdp` (hold, resume); the final status and SDP.
    pub async fn reinvite(&self, sdp: String) -> Option<(u16, String)> {
        let (dialog, timers) = {
            let slot = self.slot.lock().ok()?;
            (slot.dialog.clone()?, slot.timers.clone()?)
        };
        reoffer::send(&dialog, sdp, &timers).await
    }

    fn set_timers(&self, timers: Arc<SessionTimers>) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.timers = Some(timers);
        }
    }

    /// Track the current INVITE's dialog; `true` if hangup came first.
    fn attach(&self, dialog: InviteDialog) -> bool {
        match self.slot.lock() {
            Ok(mut slot) => {
                slot.dialog = Some(dialog);
                slot.hung_up
            }
            Err(_) => true,
        }
    }

    pub(super) fn hung_up(&self) -> bool {
        self.slot.lock().map(|s| s.hung_up).unwrap_or(true)
    }
}

/// One INVITE transaction in flight.
struct Attempt {
    dialog: InviteDialog,
    states: CallStates,
    join: JoinHandle<InviteAsyncResult>,
    /// States seen after the final response, kept for the confirmed phase.
    later: VecDeque<Box<DialogState>>,
}

/// Validate the request, send the INVITE and spawn the call's task.
pub(super) fn start(
    shared: Arc<Shared>,
    req: OutboundInvite,
) -> Result<(UacHandle, mpsc::Receiver<UacEvent>), SipError> {
    let option = request::build_option(&shared, &req)?;
    let handle = UacHandle::default();
    let span = info_span!("sip_leg", call_id = %req.log_id);
    let attempt = span.in_scope(|| launch(&shared, option.clone(), &handle))?;
    let (events, rx) = mpsc::channel(32);
    // Boxed: the request and its options are large, and every future on
    // the way down would hold a copy.
    let call = Box::new(Call {
        shared,
        req,
        option,
        handle: handle.clone(),
        events,
        tried: Vec::new(),
        redirects: 0,
    });
    tokio::spawn(call.run(attempt).instrument(span));
    Ok((handle, rx))
}

fn launch(shared: &Shared, option: InviteOption, handle: &UacHandle) -> Result<Attempt, SipError> {
    let call_id = option.call_id.clone().unwrap_or_default();
    let (tx, mut states) = shared.dialog_states.open(&call_id);
    let (dialog, join) = shared.stack.dialogs.do_invite_async(option, tx)?;
    states.bind(&dialog.id());
    if handle.attach(dialog.clone()) {
        // Hangup raced the (re)INVITE: cancel as soon as it is provisional.
        let d = dialog.clone();
        tokio::spawn(async move {
            let _ = d.cancel().await;
        });
    }
    Ok(Attempt {
        dialog,
        states,
        join,
        later: VecDeque::new(),
    })
}

/// How an INVITE transaction ended.
enum Outcome {
    Answered(Response),
    Challenged(Response),
    Redirected(Response),
    Over(UacEvent),
}

struct Call {
    shared: Arc<Shared>,
    req: OutboundInvite,
    option: InviteOption,
    handle: UacHandle,
    events: mpsc::Sender<UacEvent>,
    /// Targets this call has sent an INVITE to, for telling a redirect loop.
    tried: Vec<String>,
    /// Redirects followed so far.
    redirects: u8,
}

impl Call {
    async fn emit(&self, ev: UacEvent) {
        emit(&self.events, ev).await;
    }

    async fn run(self: Box<Self>, attempt: Attempt) {
        // The INVITE phase is boxed so that its state is freed at the
        // answer instead of sizing the task for the whole call.
        if let Some(answered) = Box::pin(self.invite(attempt)).await {
            answered.confirmed().await;
        }
    }

    /// Up to the final response; `Some` once answered.
    async fn invite(mut self: Box<Self>, mut attempt: Attempt) -> Option<Answered> {
        let mut retried = false;
        loop {
            let result = self.wait_final(&mut attempt).await;
            match self.classify(result) {
                Outcome::Answered(resp) => {
                    // RFC 4028: the 200 says whether a session timer runs
                    // and who refreshes; our offer is the SDP a re-INVITE
                    // refresh repeats.
                    let update = session_timer::allows_update(resp.headers.iter());
                    let timers = SessionTimers::new(
                        Some(self.req.sdp.clone()),
                        update,
                        &self.shared.metrics,
                    );
                    timers.refreshed(session_timer::from_answer(&resp));
                    self.handle.set_timers(timers.clone());
                    let sdp = body(&resp).unwrap_or_default();
                    drop(resp);
                    self.emit(UacEvent::Answered { sdp }).await;
                    let Call {
                        shared,
                        handle,
                        events,
                        ..
                    } = *self;
                    let Attempt {
                        dialog,
                        states,
                        later,
                        ..
                    } = attempt;
                    return Some(Answered {
                        shared,
                        handle,
                        events,
                        dialog,
                        states,
                        later,
                        timers,
                    });
                }
                Outcome::Challenged(resp) if !retried && !self.handle.hung_up() => {
                    retried = true;
                    match self.retry(&attempt.dialog, &resp) {
                        Some(next) => attempt = next,
                        None => {
                            self.emit(failed(&resp)).await;
                            return None;
                        }
                    }
                }
                Outcome::Challenged(resp) => {
                    self.emit(failed(&resp)).await;
                    return None;
                }
                Outcome::Redirected(resp) => match self.redirect(&resp) {
                    Some(next) => {
                        attempt = next;
                        retried = false;
                    }
                    None => {
                        self.emit(failed(&resp)).await;
                        return None;
                    }
                },
                Outcome::Over(ev) => match self.fail_over(&ev) {
                    Some(next) => {
                        attempt = next;
                        retried = false;
                    }
                    None => {
                        self.emit(ev).await;
                        return None;
                    }
                },
            }
        }
    }

    /// The INVITE to the next hop when `ev` is a failure that moves on
    /// (no answer, unavailable, unreachable) and there is one left that
    /// takes it. The offer is the same: the call's media is already set up.
    fn fail_over(&mut self, ev: &UacEvent) -> Option<Attempt> {
        let UacEvent::Failed { code, reason } = ev else {
            return None;
        };
        if !super::trunk_choice::fails_over(*code) || self.handle.hung_up() {
            return None;
        }
        while !self.req.failover.is_empty() {
            let failed = self.req.next_hop();
            info!(%failed, code, %reason, next = %self.req.target, "failing over");
            if let Some(attempt) = self.relaunch() {
                return Some(attempt);
            }
        }
        None
    }

    /// The INVITE to the best target of a 3xx not tried yet, ahead of any
    /// failover left; `None` once the call has followed `MAX_REDIRECTS`,
    /// or no target is left.
    fn redirect(&mut self, resp: &Response) -> Option<Attempt> {
        if self.redirects >= redirect::MAX_REDIRECTS || self.handle.hung_up() {
            return None;
        }
        self.redirects += 1;
        self.tried.push(self.req.target.clone());
        let targets = redirect::targets(redirect::contacts(resp), &self.tried);
        let from = redirect::host(&self.req.target).to_ascii_lowercase();
        // The credentials are the host's that redirected: only a target on
        // that host may see them.
        let hops = targets.into_iter().map(|target| Hop {
            credentials: (redirect::host(&target).eq_ignore_ascii_case(&from))
                .then(|| self.req.credentials.clone())
                .flatten(),
            from_user: self.req.from_user.clone(),
            response_wait: self.req.response_wait,
            target,
        });
        let mut hops: Vec<Hop> = hops.collect();
        if hops.is_empty() {
            return None;
        }
        let code = resp.status_code.code();
        hops.append(&mut self.req.failover);
        self.req.failover = hops;
        while !self.req.failover.is_empty() {
            let from = self.req.next_hop();
            info!(%from, code, to = %self.req.target, "following a redirect");
            if self
                .tried
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&self.req.target))
            {
                continue;
            }
            if let Some(attempt) = self.relaunch() {
                return Some(attempt);
            }
        }
        None
    }

    /// Send the INVITE again to `req.target`: a new transaction and dialog
    /// with the same offer.
    fn relaunch(&mut self) -> Option<Attempt> {
        let attempt = request::build_option(&self.shared, &self.req).and_then(|option| {
            let attempt = launch(&self.shared, option.clone(), &self.handle)?;
            self.option = option;
            Ok(attempt)
        });
        match attempt {
            Ok(attempt) => Some(attempt),
            Err(e) => {
                warn!(target = %self.req.target, error = %e, "cannot send the INVITE");
                None
            }
        }
    }

    /// Forward provisional states until the INVITE has a final response.
    async fn wait_final(
        &self,
        a: &mut Attempt,
    ) -> Result<InviteAsyncResult, tokio::task::JoinError> {
        // A target that says nothing at all within its response wait is
        // given up for the next hop, long before Timer B (Kamailio's
        // fr_timer does the same for a dispatcher's destinations).
        let wait = self
            .req
            .response_wait
            .filter(|_| !self.req.failover.is_empty());
        let silence = tokio::time::sleep(wait.unwrap_or_default());
        tokio::pin!(silence);
        let mut heard = wait.is_none();
        loop {
            tokio::select! {
                Some(st) = a.states.recv() => {
                    heard |= !matches!(*st, DialogState::Calling(_));
                    self.provisional(*st).await;
                }
                () = &mut silence, if !heard => {
                    info!(target = %self.req.target, "no answer to the INVITE in time");
                    a.join.abort();
                    self.shared.stack.dialogs.remove_dialog(&a.dialog.id());
                    return Ok(Ok((a.dialog.id(), None)));
                }
                r = &mut a.join => {
                    // States queued before the final response still go out
                    // first; anything after it belongs to the next phase.
                    a.states.flush().await;
                    while let Some(st) = a.states.try_recv() {
                        if matches!(*st, DialogState::Confirmed(..) | DialogState::Terminated(..)) {
                            a.later.push_back(st);
                        } else if a.later.is_empty() {
                            self.provisional(*st).await;
                        }
                    }
                    return r;
                }
            }
        }
    }

    async fn provisional(&self, st: DialogState) {
        let ev = match st {
            DialogState::Trying(_) => UacEvent::Trying,
            DialogState::Early(_, resp) => {
                if let Some(forwarded) = forwarding(&resp) {
                    self.emit(UacEvent::Forwarded(forwarded)).await;
                }
                match resp.status_code.code() {
                    183 => UacEvent::Progress {
                        sdp: body(&resp).filter(|s| !s.is_empty()),
                    },
                    // A 181 is told as the forwarding alone.
                    180 | 182 => UacEvent::Ringing,
                    _ => return,
                }
            }
            _ => return,
        };
        self.emit(ev).await;
    }

    fn classify(&self, result: Result<InviteAsyncResult, tokio::task::JoinError>) -> Outcome {
        let hung_up = self.handle.hung_up();
        let resp = match result {
            Ok(Ok((_, Some(resp)))) => resp,
            Ok(Ok((_, None))) => {
                return Outcome::Over(if hung_up { ended(false) } else { timeout() })
            }
            Ok(Err(e)) => {
                debug!(error = %e, "invite failed");
                return Outcome::Over(if hung_up { ended(false) } else { unreachable() });
            }
            Err(_) => return Outcome::Over(unreachable()),
        };
        let code = resp.status_code.code();
        match code {
            // After a hangup every final response ends the call as ours
            // (a 2xx that raced the CANCEL is BYE'd by rsipstack).
            _ if hung_up => Outcome::Over(ended(false)),
            200..=299 => Outcome::Answered(resp),
            300..=399 => Outcome::Redirected(resp),
            401 | 407 if self.req.credentials.is_some() => Outcome::Challenged(resp),
            _ => Outcome::Over(failed(&resp)),
        }
    }

    /// Resend the INVITE with credentials (same Call-ID, new CSeq).
    fn retry(&self, dialog: &InviteDialog, challenge: &Response) -> Option<Attempt> {
        let creds = self.req.credentials.as_ref()?;
        let first = dialog.initial_request();
        let option = request::with_credentials(&self.option, &first, challenge, creds)?;
        launch(&self.shared, option, &self.handle).ok()
    }
}

/// The forwarding a provisional response tells, if any.
fn forwarding(resp: &Response) -> Option<super::Forwarding> {
    let values = |name: &str| -> Vec<String> {
        let found = resp
            .headers
            .iter()
            .filter_map(|h| stack::header_value(h, name));
        found.collect()
    };
    let (history, diversion) = (values("history-info"), values("diversion"));
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    let diversion: Vec<&str> = diversion.iter().map(String::as_str).collect();
    redirect::forwarding(resp.status_code.code(), &history, &diversion)
}

fn body(resp: &Response) -> Option<String> {
    String::from_utf8(resp.body.clone()).ok()
}

fn failed(resp: &Response) -> UacEvent {
    UacEvent::Failed {
        code: resp.status_code.code(),
        reason: resp
            .wire_reason
            .clone()
            .unwrap_or_else(|| resp.status_code.text().to_string()),
    }
}

pub(super) fn ended(by_remote: bool) -> UacEvent {
    UacEvent::Ended { by_remote }
}

fn timeout() -> UacEvent {
    UacEvent::Failed {
        code: 408,
        reason: "Request Timeout".into(),
    }
}

/// The target could not be reached at the transport level (RFC 3263 treats
/// that like a 503 from the next hop).
fn unreachable() -> UacEvent {
    UacEvent::Failed {
        code: 503,
        reason: "Service Unavailable".into(),
    }
}
