//! Starts one browser -> SIP call: allocates its port and WebRTC leg,
//! sends the INVITE, and hands the `OutboundCall` machine to the call
//! driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::call_record::Facts;
use super::driver::{Active, Channels, Clients, Dialog, Driver, Setup, SipEvents};
use super::leg::{self, BrowserSide};
use super::midcall::{release, Admission, Resources};
use super::{sdes, Inner};
use crate::call::outbound::{OutboundCall, OutboundParams};
use crate::call::{Event, Outcome, SipInput, Target};
use crate::media::MediaEvent;
use crate::metrics::direction::OUTBOUND;
use crate::signaling::{CallRequest, ClientControl, ClientEvent, ServerMessage, SessionId};
use crate::sip::{self, UacEvent, UacHandle};
use crate::webrtc;

/// Run the call to its end; always removes it from the registry.
pub(super) async fn run(
    gw: Arc<Inner>,
    key: u64,
    request: CallRequest,
    target: Target,
    to_client: mpsc::Sender<ServerMessage>,
    control: mpsc::UnboundedReceiver<(SessionId, ClientEvent)>,
    admission: Admission,
) {
    let span = tracing::info_span!("call", call_id = %request.call_id, direction = OUTBOUND);
    // The registry holds the sender of `control`; a waiting call leaves a
    // copy where `resume` finds it.
    let control_tx = gw.calls.get(&key).map(|c| c.clone());
    let from = request.user.as_deref().unwrap_or("anonymous");
    let ids = (OUTBOUND, request.call_id.as_str());
    let parties = (from, request.to.as_str());
    let mut active = Active::new(&gw, ids, &span, parties, request.user.as_deref());
    let control = (control_tx, control);
    let outcome = drive(
        &gw,
        request,
        target,
        to_client,
        control,
        admission,
        &mut active.facts,
    )
    .instrument(span)
    .await;
    active.ended(&gw, OUTBOUND, &outcome);
    gw.calls.remove(&key);
}

/// Why a call ended before its INVITE went out.
struct Refused {
    code: u16,
    reason: String,
    label: &'static str,
}

impl Refused {
    fn new(code: u16, reason: String, label: &'static str) -> Self {
        Refused {
            code,
            reason,
            label,
        }
    }
}

/// A call whose INVITE is out: the machine and the channels that feed it.
struct Started {
    /// Boxed: the machine is large, and each future that holds it on the
    /// way to the event loop would keep its own copy for the call's life.
    call: Box<OutboundCall>,
    res: Resources,
    uac: UacHandle,
    sip_events: mpsc::Receiver<UacEvent>,
    media_events: mpsc::UnboundedReceiver<MediaEvent>,
    media_tx: mpsc::UnboundedSender<MediaEvent>,
}

/// The call's control channel: its sender (for a waiting call) and receiver.
type Control = (
    Option<ClientControl>,
    mpsc::UnboundedReceiver<(SessionId, ClientEvent)>,
);

async fn drive(
    gw: &Arc<Inner>,
    request: CallRequest,
    target: Target,
    to_client: mpsc::Sender<ServerMessage>,
    control: Control,
    admission: Admission,
    facts: &mut Facts,
) -> Outcome {
    let call_id = request.call_id.clone();
    let (session, user) = (request.session, request.user.clone());
    // Boxed: the setup's state would otherwise size the task for the call.
    match Box::pin(start(gw, request, target)).await {
        Ok(mut started) => {
            let (control_tx, control) = control;
            let mut driver = Driver::new(Setup {
                gw,
                call_id,
                dialog: Dialog::Uac(started.uac),
                clients: {
                    let mut clients = Clients::default();
                    clients.set(session, to_client);
                    clients
                },
                relay: started.res.relay,
                res: Some(started.res),
                pending_leg: None,
                admission,
                user,
                facts,
            });
            let mut channels = Channels {
                sip: SipEvents::Uac(started.sip_events),
                control,
                control_tx,
                media_rx: started.media_events,
                media_tx: started.media_tx,
            };
            let first = Event::Sip(SipInput::InviteSent);
            driver.run(&mut *started.call, first, &mut channels).await
        }
        Err(r) => {
            drop(admission);
            facts.refused(&r.reason);
            let _ = to_client
                .send(ServerMessage::hangup(&call_id, r.code, r.reason))
                .await;
            Outcome {
                label: r.label,
                code: r.code,
                setup: None,
            }
        }
    }
}

/// Where the INVITE goes first, and where it fails over to: the trunks in
/// their order for a number or user, else the one routed target.
fn destinations(gw: &Inner, request: &CallRequest, target: Target) -> (sip::Hop, Vec<sip::Hop>) {
    let caller = request.user.as_deref();
    let mut hops = match target.via_trunk {
        true => gw.trunks.hops(request.to.trim(), caller),
        false => Vec::new(),
    };
    if hops.is_empty() {
        let from_user = caller.unwrap_or(&gw.config.sip.trunk.from_user);
        let only = sip::Hop {
            target: target.uri,
            from_user: from_user.to_owned(),
            credentials: None,
            response_wait: None,
        };
        return (only, hops);
    }
    let first = hops.remove(0);
    (first, hops)
}

/// Allocate the RTP port and WebRTC leg, translate the offer, send the INVITE.
async fn start(gw: &Arc<Inner>, request: CallRequest, target: Target) -> Result<Started, Refused> {
    let unavailable =
        |e: &dyn std::fmt::Display| Refused::new(503, format!("Service Unavailable: {e}"), "error");
    let user = request.user.as_deref();
    let via_trunk = target.via_trunk;
    let (first, hops) = destinations(gw, &request, target);
    let srtp = sdes::outbound_mode(&gw.config, user, via_trunk, &first.target)
        .map_err(|e| Refused::new(488, e.to_string(), "no_codec"))?;
    let ports = gw.ports.allocate().map_err(|e| unavailable(&e))?;
    let relay = gw.relays.pick();
    let local = leg::local_side(gw, relay);
    let params = OutboundParams {
        call_id: request.call_id.clone(),
        session: request.session,
        offer_sdp: request.sdp,
        sip_codecs: gw.config.sip.codecs.clone(),
        rtp_addr: SocketAddr::new(gw.config.rtp_public_ip(), ports.port()),
        local: local.clone(),
        srtp,
        local_crypto: sdes::offer_keys(srtp),
    };
    let (call, sip_offer) = OutboundCall::start(params, Instant::now())
        .map_err(|e| Refused::new(e.code, e.reason, "no_codec"))?;
    let (ufrag, pwd, fingerprint) = call.remote_ice();
    // siphon answers the browser's offer: it is the DTLS server.
    let dtls_role = webrtc::DtlsRole::Server;
    let browser = BrowserSide {
        ufrag,
        pwd,
        fingerprint,
        dtls_role,
    };
    let (events, media_events) = mpsc::unbounded_channel();
    let res = leg::add(gw, relay, &local, browser, ports, events.clone())
        .await
        .map_err(|e| Refused::new(500, format!("Internal error: {e}"), "error"))?;
    let invite = sip::OutboundInvite {
        target: first.target,
        from_user: first.from_user,
        from_display: None,
        sdp: sip_offer,
        credentials: first.credentials,
        log_id: request.call_id,
        failover: hops,
        response_wait: first.response_wait,
        headers: Vec::new(),
    };
    match gw.sip.invite(invite).await {
        Ok((uac, sip_events)) => Ok(Started {
            call: Box::new(call),
            res,
            uac,
            sip_events,
            media_events,
            media_tx: events,
        }),
        Err(e) => {
            release(gw, &res).await;
            Err(unavailable(&e))
        }
    }
}
