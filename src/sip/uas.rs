//! Inbound calls (UAS): the checks every INVITE passes before it becomes an
//! `IncomingCall` (policy, an SDP offer, someone to take it, room in the
//! queue), and the types the gateway consumes. The call itself runs in
//! `uas_call`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rsipstack::dialog::dialog::Dialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Request, StatusCode};
use rsipstack::transaction::key::TransactionRole;
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, Instrument};

use super::endpoint::Shared;
use super::policy::InboundPolicy;
use super::session_timer;
use super::uas_auth::{Admission, Gate};
use super::uas_call;
use super::Transport;
use crate::metrics::Metrics;

pub use super::uas_call::UasHandle;

/// Calls waiting for the consumer; past this, INVITEs get 503.
const QUEUE: usize = 256;
/// Seconds a caller is told to wait after a 503.
const RETRY_AFTER_SECS: u32 = 5;
/// Retry-After while draining: long enough that a peer tries elsewhere
/// rather than here again; the instance is going away.
const DRAIN_RETRY_AFTER_SECS: u32 = 60;

/// Retry-After at `limits.max_calls`: calls end all the time, so soon.
const FULL_RETRY_AFTER_SECS: u32 = 5;

/// A call from a SIP peer, offered to the gateway.
#[derive(Debug)]
pub struct IncomingCall {
    /// User part of the Request-URI: the browser user being called.
    pub user: String,
    /// URI in From.
    pub from_uri: String,
    /// Display name in From.
    pub from_display: Option<String>,
    /// URI in To.
    pub to_uri: String,
    /// Call-ID of the dialog.
    pub call_id: String,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// Transport it came on.
    pub transport: Transport,
    /// The SDP offer.
    pub sdp: String,
    /// The dialog this INVITE replaces (RFC 3891), when it has a Replaces
    /// header; one that names no dialog (malformed) has an empty Call-ID.
    pub replaces: Option<super::Replaces>,
    /// Answers, rejects and ends the call.
    pub handle: UasHandle,
    /// What the caller does, in order; closed when the call is over.
    pub events: mpsc::Receiver<UasEvent>,
}

/// What happens on an inbound call after it was offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UasEvent {
    /// The caller ACKed our 200: media may flow both ways.
    Acked,
    /// The caller cancelled before a final response (we replied 200 to the
    /// CANCEL and 487 to the INVITE).
    Cancelled,
    /// The answered call ended.
    Ended {
        /// Whether the caller sent the BYE (else we did, or the ACK never came).
        by_remote: bool,
    },
    /// The caller stopped refreshing the RFC 4028 session timer, or
    /// siphon's refresh found the dialog gone: siphon sent BYE. Last event.
    SessionExpired,
    /// A re-INVITE or UPDATE: answer it (hold, resume, a new address).
    /// Boxed: the largest variant sizes every slot of the event channel.
    Reoffer(Box<super::Reoffer>),
    /// A NOTIFY reported on siphon's REFER (answered 200).
    TransferProgress(super::Progress),
    /// The caller's REFER: take it (202) or refuse it.
    Referred(Box<super::Referral>),
    /// A key press arrived as SIP INFO (answered 200).
    Dtmf {
        /// 0-9 * # A-D.
        digit: char,
        /// Tone length in ms.
        duration_ms: u32,
    },
}

/// Where an INVITE came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin {
    pub source: SocketAddr,
    pub transport: Transport,
}

/// The endpoint's side of inbound calls: the policy and the queue.
pub(crate) struct Inbound {
    gate: Gate,
    sender: mpsc::Sender<IncomingCall>,
    receiver: Mutex<Option<mpsc::Receiver<IncomingCall>>>,
    pub(super) metrics: Metrics,
}

impl Inbound {
    pub(crate) fn new(policy: InboundPolicy, metrics: Metrics) -> Inbound {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Inbound {
            gate: Gate::new(policy),
            sender,
            receiver: Mutex::new(Some(receiver)),
            metrics,
        }
    }

    /// The stream of inbound calls, once.
    pub(crate) fn take(&self) -> Option<mpsc::Receiver<IncomingCall>> {
        self.receiver.lock().ok()?.take()
    }

    fn taken(&self) -> bool {
        self.receiver.lock().map(|r| r.is_none()).unwrap_or(false)
    }
}

/// A final answer given before any call exists.
struct Refusal {
    code: u16,
    headers: Vec<Header>,
    /// `sip_errors_total` reason, if this counts as one.
    metric: Option<&'static str>,
}

fn refusal(code: u16, metric: &'static str) -> Refusal {
    Refusal {
        code,
        headers: vec![],
        metric: Some(metric),
    }
}

/// Handle an out-of-dialog INVITE: refuse it, or offer it to the consumer
/// and run the call.
pub(super) async fn on_invite(shared: Arc<Shared>, tx: Transaction) {
    let call_id = tx
        .original
        .call_id_header()
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let span = info_span!("sip_uas", %call_id);
    admit_and_run(shared, tx).instrument(span).await
}

async fn admit_and_run(shared: Arc<Shared>, tx: Transaction) {
    let Some(origin) = origin(&tx) else {
        return finish(tx, 400, vec![]).await;
    };
    let sdp = match check(&shared, &tx.original, origin) {
        Ok(sdp) => sdp,
        Err(r) => {
            if let Some(m) = r.metric {
                shared.inbound.metrics.sip_error(m);
            }
            return finish(tx, r.code, r.headers).await;
        }
    };
    let inbound = &shared.inbound;
    let permit = match inbound.sender.clone().try_reserve_owned() {
        Ok(p) => p,
        Err(TrySendError::Full(_)) => {
            inbound.metrics.sip_error("inbound_overload");
            let retry = Header::RetryAfter(RETRY_AFTER_SECS.to_string().into());
            return finish(tx, 503, vec![retry]).await;
        }
        Err(TrySendError::Closed(_)) => {
            inbound.metrics.sip_error("inbound_unrouted");
            return finish(tx, 480, vec![]).await;
        }
    };
    uas_call::run(shared, tx, origin, sdp, permit).await
}

/// A new offer (INVITE, UPDATE) on one of our inbound dialogs before its
/// ACK: rsipstack would hand it to the first INVITE's handler, which never
/// answers it. RFC 3261 §14.2 wants 500 with Retry-After. `Some(tx)` back
/// for every other request.
pub(super) async fn refuse_early_offer(shared: &Shared, tx: Transaction) -> Option<Transaction> {
    if !matches!(tx.original.method, Method::Invite | Method::Update) {
        return Some(tx);
    }
    let early = match shared.stack.dialogs.match_dialog(&tx) {
        Some(Dialog::Invite(d)) => {
            let st = d.state();
            d.role() == TransactionRole::Server && !st.is_confirmed() && !st.is_terminated()
        }
        _ => false,
    };
    if !early {
        return Some(tx);
    }
    let retry = Header::RetryAfter(RETRY_AFTER_SECS.to_string().into());
    finish(tx, 500, vec![retry]).await;
    None
}

/// Everything that refuses an INVITE before a call exists, in order; the
/// SDP offer if none does.
fn check(shared: &Shared, req: &Request, origin: Origin) -> Result<String, Refusal> {
    // A To tag names a dialog; had it existed, the request would have been
    // routed to it (RFC 3261 §12.2.2).
    let to_tag = req.to_header().ok().and_then(|t| t.tag().ok().flatten());
    if to_tag.is_some() {
        return Err(refusal(481, "inbound_no_dialog"));
    }
    match shared.inbound.gate.admit(req, origin.source.ip()) {
        Admission::Accept => {}
        Admission::Forbidden => return Err(refusal(403, "inbound_forbidden")),
        // A challenge is the normal first step, not an error.
        Admission::Challenge(headers) => {
            return Err(Refusal {
                code: 401,
                headers,
                metric: None,
            })
        }
    }
    if session_timer::ask(req) == session_timer::Ask::TooSmall {
        return Err(Refusal {
            code: 422,
            headers: session_timer::too_small(),
            metric: Some("inbound_session_interval_too_small"),
        });
    }
    let Some(sdp) = sdp_offer(req) else {
        let warning = format!("399 {} \"SDP offer required\"", shared.stack.public_ip);
        return Err(Refusal {
            code: 488,
            headers: vec![Header::Warning(warning.into())],
            metric: Some("inbound_no_sdp"),
        });
    };
    if !shared.inbound.taken() {
        return Err(refusal(480, "inbound_unrouted"));
    }
    Ok(sdp)
}

/// The SDP body, if the INVITE carries one (siphon never offers in the 200).
fn sdp_offer(req: &Request) -> Option<String> {
    let ctype = req.headers.iter().find_map(|h| match h {
        Header::ContentType(c) => Some(c.value().to_string()),
        _ => None,
    })?;
    let mime = ctype.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return None;
    }
    String::from_utf8(req.body.clone())
        .ok()
        .filter(|s| !s.trim().is_empty())
}

fn origin(tx: &Transaction) -> Option<Origin> {
    let conn = tx.connection.as_ref()?;
    let transport = match conn.transport() {
        rsipstack::sip::Transport::Udp => Transport::Udp,
        rsipstack::sip::Transport::Tcp => Transport::Tcp,
        rsipstack::sip::Transport::Tls => Transport::Tls,
        _ => return None,
    };
    let source = conn.get_remote_addr()?.get_socketaddr().ok()?;
    Some(Origin { source, transport })
}

/// Why a request is answered 503: the Retry-After it carries.
#[derive(Clone, Copy)]
pub(super) enum Unavailable {
    /// A new INVITE or OPTIONS while siphon drains.
    Draining,
    /// An OPTIONS probe while every call permit is taken: a dispatcher
    /// stops sending calls here until one ends.
    Full,
}

/// 503 with Retry-After, so that a peer or a dispatcher goes elsewhere.
pub(super) async fn refuse_unavailable(tx: Transaction, why: Unavailable) {
    let secs = match why {
        Unavailable::Draining => DRAIN_RETRY_AFTER_SECS,
        Unavailable::Full => FULL_RETRY_AFTER_SECS,
    };
    let retry = Header::RetryAfter(secs.to_string().into());
    finish(tx, 503, vec![retry]).await
}

/// Send a final response and absorb the ACK and retransmissions (also used
/// for non-INVITE requests, whose transaction simply ends).
pub(super) async fn finish(mut tx: Transaction, code: u16, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(StatusCode::from(code), headers, None).await {
        debug!(error = %e, code, "reply to a request failed");
    }
    absorb(&mut tx).await
}

/// Cancelled once the TCP or TLS connection that brought `tx` is closed
/// (the guard cancels it when its reader stops); `None` over UDP.
pub(super) fn connection_closed(tx: &Transaction) -> Option<CancellationToken> {
    tx.connection
        .as_ref()
        .filter(|c| c.is_reliable())
        .and_then(|c| c.cancel_token())
}

/// Wait for the transaction's end (the ACK, or Timer H after a non-2xx
/// final response: 32 s), or for its TCP or TLS connection to close,
/// whichever comes first. Nothing more can arrive on a closed connection,
/// and the transaction would hold its socket until Timer H.
async fn absorb(tx: &mut Transaction) {
    let closed = connection_closed(tx);
    let ended = async { while tx.receive().await.is_some() {} };
    match closed {
        Some(closed) => tokio::select! {
            _ = closed.cancelled() => {}
            _ = ended => {}
        },
        None => ended.await,
    }
}

impl IncomingCall {
    /// Describe `req` for the consumer.
    pub(super) fn new(
        req: &Request,
        origin: Origin,
        sdp: String,
        handle: UasHandle,
        events: mpsc::Receiver<UasEvent>,
    ) -> IncomingCall {
        let from = req.from_header().ok();
        let typed = from.and_then(|f| f.typed().ok());
        let from_uri = match &typed {
            Some(t) => t.uri.to_string(),
            None => from.map(|f| f.value().to_string()).unwrap_or_default(),
        };
        let to_uri = req
            .to_header()
            .ok()
            .map(|t| {
                t.typed()
                    .map(|t| t.uri.to_string())
                    .unwrap_or_else(|_| t.value().into())
            })
            .unwrap_or_default();
        IncomingCall {
            user: req.uri.user().unwrap_or_default().to_string(),
            from_uri,
            from_display: typed.and_then(|t| t.display_name).filter(|d| !d.is_empty()),
            to_uri,
            call_id: req
                .call_id_header()
                .map(|c| c.value().to_string())
                .unwrap_or_default(),
            source: origin.source,
            transport: origin.transport,
            sdp,
            replaces: req
                .headers
                .iter()
                .find_map(|h| super::stack::header_value(h, "replaces"))
                .map(|v| super::Replaces::parse(&v).unwrap_or_default()),
            handle,
            events,
        }
    }
}
