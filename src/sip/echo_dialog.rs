//! The echo's answered call: it answers the peer's re-INVITEs and UPDATEs
//! (hold and resume, on the same port, the direction mirrored), OPTIONS and
//! INFO, until the dialog ends. Without this rsipstack answers each of them
//! 501, and a newcomer's first hold on `echo` fails.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use tracing::debug;

use super::echo_script::EchoScript;
use super::echo_sdp::{self, Choice};

/// What the echo last answered, so a re-offer is answered on the same port.
pub(super) struct Session {
    /// The codec (and telephone-event) in use.
    pub choice: Choice,
    /// Media address of the answer.
    pub ip: IpAddr,
    /// RTP port of the answer.
    pub port: u16,
    /// o= session id and version; the version goes up with each new answer.
    pub origin: (u64, u64),
    /// Direction of the last answer.
    pub direction: &'static str,
    /// Codecs the echo may answer with (`EchoBehavior::codecs`).
    pub allowed: Option<Vec<String>>,
    /// Refuse every re-offer with this code (`EchoBehavior::refuse_reoffers`).
    pub refuse: Option<u16>,
    /// Whether RTP is echoed: off while the peer does not receive.
    pub sending: Arc<AtomicBool>,
}

impl Session {
    /// The current answer.
    pub fn sdp(&self) -> String {
        echo_sdp::answer(
            &self.choice,
            self.ip,
            self.port,
            self.origin,
            self.direction,
        )
    }

    /// The answer to a re-offer, or `None` when no offered codec fits (488).
    fn reoffer(&mut self, offer: &str) -> Option<String> {
        let formats = echo_sdp::offered_formats(offer);
        self.choice = echo_sdp::choose(&formats, self.allowed.as_deref())?;
        // The echo reflects packets unchanged: it mirrors a re-offer's keys too.
        self.choice.srtp = echo_sdp::mirrored_srtp(offer);
        self.direction = echo_sdp::mirror(echo_sdp::offered_direction(offer));
        self.origin.1 += 1;
        let sends = matches!(self.direction, "sendrecv" | "sendonly");
        self.sending.store(sends, Ordering::Relaxed);
        Some(self.sdp())
    }
}

/// Answer in-dialog requests until the dialog ends. Without a session (the
/// call still rings) a re-offer is left to rsipstack's 501, and without a
/// script that takes transfers so is a REFER.
pub(super) async fn serve(
    states: &mut DialogStateReceiver,
    mut session: Option<&mut Session>,
    transfers: Option<(&InviteDialog, &dyn EchoScript)>,
) {
    while let Some(state) = states.recv().await {
        match state {
            DialogState::Terminated(..) => return,
            DialogState::Refer(_, req, handle) => {
                if let Some((dialog, script)) = transfers {
                    referred(&req, handle, dialog, script).await;
                }
            }
            DialogState::Updated(_, req, handle) => {
                if let Some(session) = session.as_deref_mut() {
                    answer_reoffer(&req, handle, session).await;
                }
            }
            DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                respond(handle, StatusCode::OK, None, None).await;
            }
            _ => {}
        }
    }
}

/// A REFER (a test's script plays the transferee): 202 and a NOTIFY per
/// status the script gives, the last one ending the subscription; or the
/// script's refusal.
async fn referred(
    req: &Request,
    handle: TransactionHandle,
    dialog: &InviteDialog,
    script: &dyn EchoScript,
) {
    let refer_to = req
        .headers
        .iter()
        .find_map(|h| super::stack::header_value(h, "refer-to"))
        .unwrap_or_default();
    let codes = match script.refer(&refer_to) {
        Ok(codes) => codes,
        Err(code) => return respond(handle, StatusCode::from(code), None, None).await,
    };
    respond(handle, StatusCode::from(202), None, None).await;
    let dialog = dialog.clone();
    tokio::spawn(async move {
        for (i, code) in codes.iter().enumerate() {
            super::referral::notify(&dialog, *code, i + 1 == codes.len()).await;
        }
    });
}

async fn answer_reoffer(req: &Request, handle: TransactionHandle, session: &mut Session) {
    if let Some(code) = session.refuse {
        return respond(handle, StatusCode::from(code), None, None).await;
    }
    let offer = String::from_utf8_lossy(&req.body);
    if offer.trim().is_empty() {
        // A refresh: an UPDATE gets a bare 200, a re-INVITE the current session.
        let body = (req.method == Method::Invite).then(|| session.sdp());
        return respond(handle, StatusCode::OK, None, body).await;
    }
    match session.reoffer(&offer) {
        Some(sdp) => respond(handle, StatusCode::OK, None, Some(sdp)).await,
        None => {
            let warning =
                Header::Warning("399 siphon-echo \"no codec the echo can answer\"".into());
            respond(handle, StatusCode::from(488), Some(warning), None).await;
        }
    }
}

async fn respond(
    handle: TransactionHandle,
    status: StatusCode,
    header: Option<Header>,
    sdp: Option<String>,
) {
    let mut headers: Vec<Header> = header.into_iter().collect();
    if sdp.is_some() {
        headers.push(Header::ContentType("application/sdp".into()));
    }
    let body = sdp.map(String::into_bytes);
    if let Err(e) = handle.respond(status, Some(headers), body).await {
        debug!(error = %e, "echo: in-dialog reply failed");
    }
}
