//! A re-INVITE or UPDATE inside an established call, handed to the consumer
//! to answer: 200 with its SDP (hold, resume, a moved media address), or a
//! refusal that leaves the session as it was.

use std::sync::{Arc, Mutex};

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use tracing::debug;

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
        }
    }

    /// Add `headers` to the 2xx (a refresh's Session-Expires).
    pub(super) fn with_headers(mut self, headers: Vec<Header>) -> Self {
        self.extra = headers;
        self
    }

    /// 200 OK with siphon's SDP answer.
    pub async fn accept(&self, sdp: String) {
        let Some(handle) = self.take() else { return };
        let mut headers = vec![Header::ContentType("application/sdp".into())];
        headers.extend(self.extra.iter().cloned());
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

/// Send a re-INVITE with `sdp` on `dialog` (the ACK of a 2xx is automatic);
/// the final status and body, or `None` without an answer.
pub(super) async fn send(
    dialog: &rsipstack::dialog::invite_dialog::InviteDialog,
    sdp: String,
) -> Option<(u16, String)> {
    let content_type = Header::ContentType("application/sdp".into());
    match dialog
        .reinvite(Some(vec![content_type]), Some(sdp.into_bytes()))
        .await
    {
        Ok(resp) => resp.map(|r| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            (r.status_code.code(), body)
        }),
        Err(e) => {
            debug!(error = %e, "re-INVITE failed");
            None
        }
    }
}
