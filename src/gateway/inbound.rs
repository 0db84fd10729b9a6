//! Drives SIP -> browser calls: routes each INVITE to the called user's
//! sessions, feeds the `InboundCall` machine and carries out its commands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::detached::Grace;
use super::infos::InfoQueue;
use super::midcall::{
    answer_reoffer, count_dtmf, media_signal, refuse_glare, release, spawn_reinvite, Admission,
    Resources,
};
use super::reinvites::ReinviteAnswers;
use super::{sdes, Inner};
use crate::call::inbound::{
    Accepted, InboundCall, InboundCommand, InboundEvent, InboundParams, SessionId,
};
use crate::call::leg::LocalWebRtc;
use crate::call::Outcome;
use crate::media::{AddCall, MediaEvent, PortPair};
use crate::metrics::direction::INBOUND;
use crate::signaling::{new_call_id, ClientEvent, ResumeLink, ServerMessage, SessionLink};
use crate::sip::{self, UasEvent};
use crate::webrtc::{self, LegConfig};

/// Take inbound calls from the SIP endpoint until it stops.
pub(super) async fn serve(gw: Arc<Inner>, mut calls: mpsc::Receiver<sip::IncomingCall>) {
    while let Some(call) = calls.recv().await {
        tokio::spawn(run(gw.clone(), call));
    }
}

async fn run(gw: Arc<Inner>, call: sip::IncomingCall) {
    let Ok(permit) = gw.call_slots.clone().try_acquire_owned() else {
        gw.metrics
            .calls_total
            .with_label_values(&[INBOUND, "limit"])
            .inc();
        call.handle
            .reject(486, "Busy Here (gateway call limit)")
            .await;
        return;
    };
    let Some(user) = route_user(&gw, &call.user) else {
        gw.metrics
            .calls_total
            .with_label_values(&[INBOUND, "unknown_user"])
            .inc();
        call.handle.reject(404, "Not Found").await;
        return;
    };
    let per_user = gw.config.limits.per_user_calls;
    let Some(slot) = gw.slots.take(&user, per_user) else {
        gw.metrics
            .calls_total
            .with_label_values(&[INBOUND, "limit"])
            .inc();
        call.handle
            .reject(486, "Busy Here (per-user call limit)")
            .await;
        return;
    };
    let call = sip::IncomingCall { user, ..call };
    let call_id = new_call_id();
    let span =
        tracing::info_span!("call", call_id = %call_id, direction = INBOUND, user = %call.user);
    let active = gw.metrics.calls_active.with_label_values(&[INBOUND]);
    active.inc();
    let started = Instant::now();
    let admission = Admission::new(permit, Some(slot));
    let outcome = drive(&gw, call_id, call, started, admission)
        .instrument(span)
        .await;
    active.dec();
    gw.metrics
        .calls_total
        .with_label_values(&[INBOUND, outcome.label])
        .inc();
    if let Some(setup) = outcome.setup {
        let hist = gw.metrics.call_setup_seconds.with_label_values(&[INBOUND]);
        hist.observe(setup.as_secs_f64());
    }
}

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

/// Everything the driver juggles for one inbound call.
struct Driver<'a> {
    gw: &'a Arc<Inner>,
    handle: sip::UasHandle,
    sessions: HashMap<SessionId, SessionLink>,
    ports: Option<PortPair>,
    relay: usize,
    local: LocalWebRtc,
    res: Option<Resources>,
    media_tx: mpsc::UnboundedSender<MediaEvent>,
    call_id: String,
    started: Instant,
    setup: Option<std::time::Duration>,
    /// The reconnect grace of the answered call.
    grace: Grace,
    /// The session whose socket was lost, while the call waits for it.
    lost: Option<SessionId>,
    /// Sessions that resumed the call, and the session each stands for.
    aliases: HashMap<SessionId, SessionId>,
    /// The SIP re-offer waiting for the machine's answer.
    reoffer: Option<sip::Reoffer>,
    /// Where siphon's re-INVITEs report their final answers.
    reinvites: ReinviteAnswers,
    /// Key presses on their way as SIP INFO.
    infos: InfoQueue,
    /// The call's limits, until its machine finishes.
    admission: Option<Admission>,
}

async fn drive(
    gw: &Arc<Inner>,
    call_id: String,
    call: sip::IncomingCall,
    started: Instant,
    admission: Admission,
) -> Outcome {
    let sip::IncomingCall {
        user,
        from_uri,
        sdp,
        handle,
        mut events,
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
        return refuse(480, "offline");
    }
    let Ok(ports) = gw.ports.allocate() else {
        handle.reject(503, "Service Unavailable").await;
        return refuse(503, "error");
    };
    let relay = gw.relays.pick();
    let (ice_ufrag, ice_pwd) = webrtc::random_ice_credentials();
    let local = LocalWebRtc {
        ice_ufrag,
        ice_pwd,
        fingerprint: gw.identity.fingerprint.clone(),
        candidate: SocketAddr::new(
            gw.config.webrtc_public_ip(),
            gw.relays.get(relay).webrtc_addr().port(),
        ),
        ssrc: rand::random(),
        session_id: u64::from(rand::random::<u32>()),
    };
    let grace = Grace::new(Some(user.clone()), &call_id);
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
    let mut machine = match InboundCall::start(params) {
        Ok(m) => m,
        Err(e) => {
            handle.reject(e.code, &e.reason).await;
            return refuse(e.code, "no_codec");
        }
    };
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let (control_tx, mut control) = mpsc::unbounded_channel();
    let _registered = Registered::new(gw, control_tx.clone());
    let mut d = Driver {
        gw,
        handle,
        sessions: HashMap::new(),
        ports: Some(ports),
        relay,
        local,
        res: None,
        media_tx,
        call_id: call_id.clone(),
        started,
        setup: None,
        grace,
        lost: None,
        aliases: HashMap::new(),
        reoffer: None,
        reinvites: ReinviteAnswers::default(),
        infos: InfoQueue::default(),
        admission: Some(admission),
    };
    let delivered = d
        .deliver(&call_id, &machine.incoming(), links, &control_tx)
        .await;
    if let Some(o) = d
        .exec(machine.on_event(InboundEvent::Delivered(delivered)))
        .await
    {
        return o;
    }
    let ring_timeout = tokio::time::sleep(gw.config.limits.ring_timeout());
    tokio::pin!(ring_timeout);
    // A closed channel is ready forever: it is heard once, then left alone.
    let mut sip_open = true;
    loop {
        let event = tokio::select! {
            ev = events.recv(), if sip_open => match ev {
                Some(UasEvent::Acked) => continue,
                Some(UasEvent::Cancelled) => InboundEvent::SipCancelled,
                Some(UasEvent::Reoffer(reoffer)) => {
                    let sdp = reoffer.sdp.clone();
                    d.reoffer = Some(*reoffer);
                    InboundEvent::SipReoffer(sdp)
                }
                Some(UasEvent::Dtmf { digit, duration_ms }) => InboundEvent::SipDtmf(digit, duration_ms),
                Some(UasEvent::Ended { by_remote }) => InboundEvent::SipEnded { by_remote },
                Some(UasEvent::SessionExpired) => InboundEvent::SipSessionExpired,
                None => {
                    sip_open = false;
                    InboundEvent::SipEnded { by_remote: false }
                }
            },
            Some((session, ev)) = control.recv() => {
                let answered = machine.is_answered();
                match d.client_event(session, ev, answered, &control_tx).await {
                    Some(event) => event,
                    None => continue,
                }
            }
            Some(ev) = media_rx.recv() => match media_signal(ev) {
                Some(sig) => InboundEvent::Media(sig),
                None => continue,
            },
            () = &mut ring_timeout, if !machine.is_answered() => InboundEvent::RingTimeout,
            Some(result) = d.reinvites.recv() => InboundEvent::ReinviteAnswered(result),
            () = d.grace.expired(), if d.grace.waiting() => match (d.grace.give_up(gw), d.lost) {
                (true, Some(lost)) => InboundEvent::Hangup(lost),
                _ => continue,
            },
        };
        if let Some(outcome) = d.exec(machine.on_event(event)).await {
            d.grace.forget(gw);
            return outcome;
        }
    }
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

impl Driver<'_> {
    /// Turn a client event into a machine input, handling lost sockets and
    /// resumes here; `None` when the machine has nothing to hear.
    async fn client_event(
        &mut self,
        session: SessionId,
        ev: ClientEvent,
        answered: bool,
        control: &crate::signaling::ClientControl,
    ) -> Option<InboundEvent> {
        let session = self.aliases.get(&session).copied().unwrap_or(session);
        Some(match ev {
            ClientEvent::Shutdown => InboundEvent::Shutdown,
            ClientEvent::Detached if answered && self.grace.start(self.gw, control) => {
                self.lost = Some(session);
                return None;
            }
            ClientEvent::Hangup | ClientEvent::Gone | ClientEvent::Detached => {
                InboundEvent::Hangup(session)
            }
            ClientEvent::Resumed(link) => {
                self.resumed(link).await;
                return None;
            }
            ClientEvent::Accept(sdp) => InboundEvent::Accept(session, sdp),
            ClientEvent::Reject(code) => InboundEvent::Reject(session, code),
            ClientEvent::Candidate(_) => return None,
            ClientEvent::Answer(sdp) => InboundEvent::Answer(session, sdp),
            ClientEvent::Dtmf {
                digits,
                duration_ms,
            } => InboundEvent::Dtmf(session, digits, duration_ms),
            ClientEvent::Offer(sdp) => {
                InboundEvent::Offer(session, sdp, webrtc::random_ice_credentials())
            }
        })
    }

    /// A new socket took the call back: it stands for the lost session.
    async fn resumed(&mut self, link: ResumeLink) {
        self.grace.resumed();
        let Some(lost) = self.lost.take() else {
            return;
        };
        self.aliases.insert(link.session, lost);
        if let Some(old) = self.sessions.get_mut(&lost) {
            old.to_client = link.to_client;
            let msg = ServerMessage::Resumed {
                call_id: self.call_id.clone(),
            };
            let _ = old.to_client.send(msg).await;
        }
    }

    /// Attach the call to each session and send it `incoming`; returns the
    /// sessions reached.
    async fn deliver(
        &mut self,
        call_id: &str,
        incoming: &ServerMessage,
        links: Vec<SessionLink>,
        control: &crate::signaling::ClientControl,
    ) -> Vec<SessionId> {
        let mut reached = Vec::new();
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
                self.sessions.insert(link.id, link);
            }
        }
        reached
    }

    /// Carry out commands; `Some` once the call is over.
    async fn exec(&mut self, cmds: Vec<InboundCommand>) -> Option<Outcome> {
        if cmds.iter().any(|c| matches!(c, InboundCommand::Finish(_))) {
            self.admission = None;
        }
        let mut outcome = None;
        for cmd in cmds {
            match cmd {
                InboundCommand::Send(session, msg) => {
                    if let Some(link) = self.sessions.get(&session) {
                        let _ = link.to_client.send(msg).await;
                    }
                }
                InboundCommand::SipRinging => self.handle.ringing().await,
                InboundCommand::Answer(session, accepted) => {
                    if let Err(reason) = self.answer(*accepted).await {
                        tracing::error!(%reason, "answering failed");
                        let msg = ServerMessage::hangup(&self.call_id, 500, reason);
                        if let Some(link) = self.sessions.get(&session) {
                            let _ = link.to_client.send(msg).await;
                        }
                        self.hang_up_sip();
                        outcome = Some(Outcome {
                            label: "error",
                            code: 500,
                            setup: None,
                        });
                    }
                }
                InboundCommand::SipReject(code, reason) => self.handle.reject(code, &reason).await,
                InboundCommand::SipHangup => self.hang_up_sip(),
                InboundCommand::RelayDtmf(presses) => {
                    if let Some(res) = &self.res {
                        let relay = self.gw.relays.get(res.relay);
                        for press in presses {
                            count_dtmf(self.gw, &press);
                            let _ = relay.dtmf(res.leg, press);
                        }
                    }
                }
                InboundCommand::AnswerReoffer(answer) => {
                    if let Some(reoffer) = self.reoffer.take() {
                        answer_reoffer(self.gw, &reoffer, answer).await;
                    }
                }
                InboundCommand::ConfigureMedia(media) => {
                    if let Some(res) = &self.res {
                        let relay = self.gw.relays.get(res.relay);
                        if let Err(e) = relay.configure(res.leg, *media) {
                            tracing::error!(error = %e, "relay refused media configuration");
                        }
                    }
                }
                InboundCommand::SipReinvite { sdp, after_glare } => {
                    let handle = self.handle.clone();
                    let kind = sdp.clone();
                    let go = async move { handle.reinvite(sdp).await };
                    spawn_reinvite(self.gw, &kind, go, after_glare, self.reinvites.sender());
                }
                InboundCommand::GlareReoffer => {
                    if let Some(reoffer) = self.reoffer.take() {
                        refuse_glare(self.gw, &reoffer).await;
                    }
                }
                InboundCommand::SipInfo(digits) => {
                    let handle = self.handle.clone();
                    let info = move |digit: char, ms: u32| {
                        let handle = handle.clone();
                        async move { handle.info(digit, ms).await }
                    };
                    self.infos.send(self.gw, digits, info);
                }
                InboundCommand::RestartIce(creds) => {
                    if let Some(res) = &self.res {
                        let relay = self.gw.relays.get(res.relay);
                        if let Err(e) = relay.restart_ice(res.leg, creds).await {
                            tracing::warn!(error = %e, "ICE restart refused");
                        } else {
                            self.gw.metrics.ice_restarts_total.inc();
                        }
                    }
                }
                InboundCommand::Finish(mut o) => {
                    o.setup = self.setup;
                    outcome = Some(o);
                }
            }
        }
        if outcome.is_some() {
            if let Some(res) = &self.res {
                release(self.gw, res).await;
            }
        }
        outcome
    }

    /// BYE (or 480) toward the caller, in the background.
    fn hang_up_sip(&self) {
        let handle = self.handle.clone();
        super::hangups::spawn(self.gw, async move { handle.hangup().await });
    }

    /// Put the WebRTC leg on the relay with the browser's parameters, then 200 OK.
    async fn answer(&mut self, accepted: Accepted) -> Result<(), String> {
        let ports = self.ports.take().ok_or("answered twice")?;
        let leg = LegConfig {
            local_ufrag: self.local.ice_ufrag.clone(),
            local_pwd: self.local.ice_pwd.clone(),
            remote_ufrag: accepted.remote_ufrag,
            remote_pwd: accepted.remote_pwd,
            remote_fingerprint: accepted.remote_fingerprint,
            consent_timeout: self.gw.config.webrtc.consent_timeout(),
            disconnect_timeout: self.gw.config.webrtc.disconnect_timeout(),
            dtls_role: accepted.dtls_role,
        };
        let add = AddCall {
            leg,
            ports,
            ssrc_to_webrtc: self.local.ssrc,
            ssrc_to_sip: rand::random(),
            events: self.media_tx.clone(),
            media_timeout: Some(self.gw.config.limits.media_timeout()),
        };
        let relay = self.gw.relays.get(self.relay);
        let leg = relay.add(add).await.map_err(|e| e.to_string())?;
        self.res = Some(Resources {
            relay: self.relay,
            leg,
        });
        relay
            .configure(leg, accepted.media)
            .map_err(|e| e.to_string())?;
        self.handle
            .answer(accepted.sip_answer)
            .await
            .map_err(|e| e.to_string())?;
        self.setup = Some(self.started.elapsed());
        Ok(())
    }
}
