//! Starts SIP -> browser calls: routes each INVITE to the called user, under
//! the limits, sends `incoming` to the user's sessions, and hands the
//! `InboundCall` machine to the call driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::call_record::Facts;
use super::driver::{Active, Channels, Clients, Dialog, Driver, Setup, SipEvents};
use super::leg::PendingLeg;
use super::midcall::Admission;
use super::{sdes, Inner};
use crate::call::inbound::{InboundCall, InboundParams};

use crate::call::{Event, Outcome};
use crate::metrics::direction::INBOUND;
use crate::records::Direction;
use crate::signaling::{new_call_id, ServerMessage, SessionId, SessionLink};
use crate::sip;

/// Take inbound calls from the SIP endpoint until it stops.
pub(super) async fn serve(gw: Arc<Inner>, mut calls: mpsc::Receiver<sip::IncomingCall>) {
    while let Some(call) = calls.recv().await {
        tokio::spawn(run(gw.clone(), call));
    }
}

async fn run(gw: Arc<Inner>, call: sip::IncomingCall) {
    if call.replaces.is_some() {
        return super::replaces::route(&gw, call).await;
    }
    let Ok(permit) = gw.call_slots.clone().try_acquire_owned() else {
        let refusal = (486, "Busy Here (gateway call limit)", "limit");
        return refuse(&gw, &call, refusal).await;
    };
    let Some(user) = route_user(&gw, &call.user) else {
        return refuse(&gw, &call, (404, "Not Found", "unknown_user")).await;
    };
    let per_user = gw.config.limits.per_user_calls;
    let Some(slot) = gw.slots.take(&user, per_user) else {
        let refusal = (486, "Busy Here (per-user call limit)", "limit");
        return refuse(&gw, &call, refusal).await;
    };
    let call = sip::IncomingCall { user, ..call };
    let call_id = new_call_id();
    let span =
        tracing::info_span!("call", call_id = %call_id, direction = INBOUND, user = %call.user);
    let parties = (call.from_uri.as_str(), call.user.as_str());
    let ids = (INBOUND, call_id.as_str());
    let mut active = Active::new(&gw, ids, &span, parties, Some(&call.user));
    let started = Instant::now();
    let admission = Admission::new(permit, Some(slot));
    let outcome = drive(&gw, (call_id, call), started, admission, &mut active.facts)
        .instrument(span)
        .await;
    active.ended(&gw, INBOUND, &outcome);
}

/// Refuse an INVITE before it becomes a call: answered with `code`,
/// counted by `label`, and recorded.
async fn refuse(gw: &Inner, call: &sip::IncomingCall, (code, reason, label): Refusal) {
    gw.metrics
        .calls_total
        .with_label_values(&[INBOUND, label])
        .inc();
    call.handle.reject(code, reason).await;
    let outcome = Outcome {
        label,
        code,
        setup: None,
    };
    let parties = (
        Direction::Inbound,
        call.from_uri.as_str(),
        call.user.as_str(),
    );
    Facts::refused_call(gw, parties, &outcome, reason);
}

/// A refusal: the SIP status, its reason and the outcome's label.
type Refusal = (u16, &'static str, &'static str);

/// The siphon user an INVITE's Request-URI user part is for: a configured
/// user by extension (or name), the user whose session registered that
/// extension, or the name itself when dynamic users are allowed; `None`
/// means 404.
fn route_user(gw: &Inner, user_part: &str) -> Option<String> {
    let config = &gw.config;
    let configured = config
        .user_by_extension(user_part)
        .or_else(|| config.user(user_part));
    if let Some(u) = configured {
        return Some(u.name.clone());
    }
    match gw.client_registrations.user_of(user_part) {
        Some(user) => Some(user),
        None if config.auth.allow_dynamic_users => Some(user_part.to_owned()),
        None => None,
    }
}

async fn drive(
    gw: &Arc<Inner>,
    (call_id, call): (String, sip::IncomingCall),
    started: Instant,
    admission: Admission,
    facts: &mut Facts,
) -> Outcome {
    let sip::IncomingCall {
        user,
        from_uri,
        sdp,
        handle,
        events,
        transport,
        ..
    } = call;
    let refuse = |code: u16, label: &'static str| Outcome {
        label,
        code,
        setup: None,
    };
    let mut links: Vec<SessionLink> = gw.users.get(&user).map(|l| l.clone()).unwrap_or_default();
    links.truncate(gw.config.limits.max_ring_sessions as usize);
    if links.is_empty() {
        handle.reject(480, "Temporarily Unavailable").await;
        facts.refused("Temporarily Unavailable");
        return refuse(480, "offline");
    }
    let Ok(ports) = gw.ports.allocate() else {
        handle.reject(503, "Service Unavailable").await;
        facts.refused("Service Unavailable");
        return refuse(503, "error");
    };
    let relay = gw.relays.pick();
    let local = super::leg::local_side(gw, relay);
    let called = user.clone();
    let srtp = gw.config.inbound_srtp(&user);
    let params = InboundParams {
        call_id: call_id.clone(),
        from: from_uri,
        to: user,
        offer_sdp: sdp,
        browser_codecs: crate::sdp::BROWSER_CODECS
            .iter()
            .map(|c| c.to_string())
            .collect(),
        rtp_addr: SocketAddr::new(gw.config.rtp_public_ip(), ports.port()),
        local: local.clone(),
        srtp,
        local_crypto: sdes::answer_keys(srtp),
        plain_signaling: sdes::plain_signaling(&gw.config, transport),
    };
    let mut machine = match InboundCall::start(params, started) {
        Ok(m) => m,
        Err(e) => {
            handle.reject(e.code, &e.reason).await;
            facts.refused(&e.reason);
            return refuse(e.code, "no_codec");
        }
    };
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    let (control_tx, control) = mpsc::unbounded_channel();
    let _registered = Registered::new(gw, control_tx.clone());
    let (delivered, clients) = deliver(&call_id, &machine.incoming(), links, &control_tx).await;
    let mut driver = Driver::new(Setup {
        gw,
        call_id,
        dialog: Dialog::Uas(handle),
        clients,
        relay,
        res: None,
        pending_leg: Some(Box::new(PendingLeg { ports, local })),
        admission,
        user: Some(called),
        facts,
    });
    let mut channels = Channels {
        sip: SipEvents::Uas(events),
        control,
        control_tx: Some(control_tx),
        media_rx,
        media_tx,
    };
    let first = Event::Delivered(delivered);
    driver.run(&mut machine, first, &mut channels).await
}

/// The call's entry in the registry (limits, shutdown); removed on drop.
struct Registered<'a> {
    gw: &'a Inner,
    key: u64,
}

impl<'a> Registered<'a> {
    fn new(gw: &'a Inner, control: crate::signaling::ClientControl) -> Self {
        let key = rand::random();
        gw.calls.insert(key, control);
        Registered { gw, key }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.gw.calls.remove(&self.key);
    }
}

/// Attach the call to each session and send it `incoming`; returns the
/// sessions reached and where their messages go.
async fn deliver(
    call_id: &str,
    incoming: &ServerMessage,
    links: Vec<SessionLink>,
    control: &crate::signaling::ClientControl,
) -> (Vec<SessionId>, Clients) {
    let mut reached = Vec::new();
    let mut clients = Clients::default();
    for link in links {
        if link
            .attach
            .send((call_id.to_owned(), control.clone()))
            .is_err()
        {
            continue;
        }
        if link.to_client.send(incoming.clone()).await.is_ok() {
            reached.push(link.id);
            clients.set(link.id, link.to_client);
        }
    }
    (reached, clients)
}
