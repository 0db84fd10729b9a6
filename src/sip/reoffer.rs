//! A re-INVITE or UPDATE inside an established call, handed to the consumer
//! to answer: 200 with its SDP (hold, resume, a moved media address), or a
//! refusal that leaves the session as it was.

use std::sync::{Arc, Mutex};

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use tracing::debug;

use super::session_refresh::{PeerRefresh, SessionTimers};
use super::session_timer::{self, Timer};

/// An in-dialog offer waiting for siphon's answer. Clones share it; the
/// first answer wins. Dropped unanswered, rsipstack answers 501.
#[derive(Clone)]
pub struct Reoffer {
    /// The offer SDP; `None` for an offerless re-INVITE (answer with the
    /// current session).
    pub sdp: Option<String>,
    /// `INVITE` or `UPDATE`.
    pub method: &'static str,
    handle: Arc<Mutex<Option<TransactionHandle>>>,
    /// Headers every 2xx carries (the session timer's).
    extra: Vec<Header>,
    /// The dialog's session timers and the timer a 2xx runs.
    timers: Option<(Arc<SessionTimers>, Option<Timer>)>,
}

impl std::fmt::Debug for Reoffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reoffer")
            .field("method", &self.method)
            .field("sdp", &self.sdp)
            .finish()
    }
}

impl PartialEq for Reoffer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }
}

impl Eq for Reoffer {}

impl Reoffer {
    pub(super) fn new(req: &Request, handle: TransactionHandle) -> Self {
        let sdp = String::from_utf8_lossy(&req.body).into_owned();
        Reoffer {
            sdp: (!sdp.trim().is_empty()).then_some(sdp),
            method: if req.method == Method::Update {
                "UPDATE"
            } else {
                "INVITE"
            },
            handle: Arc::new(Mutex::new(Some(handle))),
            extra: Vec::new(),
            timers: None,
        }
    }

    /// 200 OK with siphon's SDP answer.
    pub async fn accept(&self, sdp: String) {
        let Some(handle) = self.take() else { return };
        let mut headers = vec![Header::ContentType("application/sdp".into())];
        headers.extend(self.extra.iter().cloned());
        if let Some((timers, timer)) = &self.timers {
            timers.sent_sdp(&sdp);
            timers.refreshed(*timer);
        }
        if let Err(e) = handle
            .respond(StatusCode::OK, Some(headers), Some(sdp.into_bytes()))
            .await
        {
            debug!(error = %e, "answering the re-offer failed");
        }
    }

    /// Refuse with `code` (488 for an offer siphon cannot take); the session
    /// stays as it was.
    pub async fn refuse(&self, code: u16, reason: &str) {
        let Some(handle) = self.take() else { return };
        let warning = Header::Warning(format!("399 siphon \"{reason}\"").into());
        let status = StatusCode::from(code);
        if let Err(e) = handle.respond(status, Some(vec![warning]), None).await {
            debug!(error = %e, "refusing the re-offer failed");
        }
    }

    fn take(&self) -> Option<TransactionHandle> {
        self.handle.lock().ok()?.take()
    }
}

/// How long to wait before sending again a re-INVITE or UPDATE that got
/// 491 (RFC 3261 section 14.1: 2.1-4 s for the side that owns the Call-ID,
/// which siphon takes for itself in both directions).
pub fn glare_backoff() -> std::time::Duration {
    std::time::Duration::from_millis(rand::random_range(2100..=4000))
}

/// A mid-dialog request the consumer hears about, the same on both sides
/// of a call.
pub(super) enum InDialog {
    /// A re-INVITE or UPDATE with an offer, to answer.
    Reoffer(Box<Reoffer>),
    /// A key press sent as INFO (already answered 200).
    Dtmf(char, u32),
    /// A NOTIFY on siphon's REFER (already answered 200).
    Transfer(super::Progress),
    /// The peer's REFER with a usable Refer-To, for the call to take or refuse.
    Referred(Box<super::Referral>),
}

/// Answer a re-offer, INFO, NOTIFY or REFER in either kind of dialog (`None`: nothing
/// for the consumer, or another request).
pub(super) async fn in_dialog(
    state: rsipstack::dialog::dialog::DialogState,
    timers: &Arc<SessionTimers>,
) -> Option<InDialog> {
    use rsipstack::dialog::dialog::DialogState;
    match state {
        DialogState::Updated(_, req, handle) => {
            let r = from_peer(&req, handle, timers).await?;
            Some(InDialog::Reoffer(Box::new(r)))
        }
        DialogState::Info(_, req, handle) => {
            let (digit, ms) = super::dtmf_info::answer(&req, handle).await?;
            Some(InDialog::Dtmf(digit, ms))
        }
        DialogState::Notify(_, req, handle) => {
            let progress = super::transfer::notified(&req, handle).await?;
            Some(InDialog::Transfer(progress))
        }
        DialogState::Refer(_, req, handle) => {
            let referral = super::referral::received(&req, handle).await?;
            Some(InDialog::Referred(Box::new(referral)))
        }
        _ => None,
    }
}

/// A re-INVITE or UPDATE from the peer: a refresh without an offer is
/// answered here (200, or 422 below Min-SE); an offer is returned for the
/// consumer to answer, carrying the session timer its 2xx runs.
pub(super) async fn from_peer(
    req: &Request,
    handle: TransactionHandle,
    timers: &Arc<SessionTimers>,
) -> Option<Reoffer> {
    let (timer, headers) = match timers.on_peer_request(req) {
        PeerRefresh::TooSmall => {
            let headers = Some(session_timer::too_small());
            let status = StatusCode::from(422);
            handle.respond(status, headers, None).await.ok();
            return None;
        }
        PeerRefresh::Accept { timer, headers } => (timer, headers),
    };
    if req.method == Method::Update && req.body.iter().all(u8::is_ascii_whitespace) {
        // RFC 3311: an UPDATE without an offer gets a 2xx without an answer.
        timers.refreshed(timer);
        handle
            .respond(StatusCode::OK, Some(headers), None)
            .await
            .ok();
        return None;
    }
    let mut reoffer = Reoffer::new(req, handle);
    reoffer.extra = headers;
    reoffer.timers = Some((timers.clone(), timer));
    Some(reoffer)
}

/// Send a re-INVITE with `sdp` on `dialog` (the ACK of a 2xx is automatic);
/// the final status and body, or `None` without an answer. A 2xx refreshes
/// the session timer.
pub(super) async fn send(
    dialog: &InviteDialog,
    sdp: String,
    timers: &SessionTimers,
) -> Option<(u16, String)> {
    let mut headers = timers.request_headers();
    headers.push(Header::ContentType("application/sdp".into()));
    match dialog
        .reinvite(Some(headers), Some(sdp.clone().into_bytes()))
        .await
    {
        Ok(resp) => resp.map(|r| {
            timers.answered(&r, Some(&sdp));
            let body = String::from_utf8_lossy(&r.body).into_owned();
            (r.status_code.code(), body)
        }),
        Err(e) => {
            debug!(error = %e, "re-INVITE failed");
            None
        }
    }
}
