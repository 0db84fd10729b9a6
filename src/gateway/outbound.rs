//! Drives one browser -> SIP call: allocates its resources, feeds the
//! `OutboundCall` machine with events and carries out its commands.

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
use crate::call::leg::LocalWebRtc;
use crate::call::outbound::{Command, OutboundCall, OutboundParams, SipEvent};
use crate::call::Outcome;
use crate::call::Target;
use crate::media::{AddCall, MediaEvent};
use crate::metrics::direction::OUTBOUND;
use crate::signaling::{CallRequest, ClientControl, ClientEvent, ServerMessage, SessionId};
use crate::sip::{self, UacEvent, UacHandle};
use crate::webrtc::{self, LegConfig};

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
    let active = gw.metrics.calls_active.with_label_values(&[OUTBOUND]);
    active.inc();
    // The registry holds the sender of `control`; a waiting call leaves a
    // copy where `resume` finds it.
    let control_tx = gw.calls.get(&key).map(|c| c.clone());
    let outcome = drive(
        &gw,
        request,
        target,
        to_client,
        (control_tx, control),
        admission,
    )
    .instrument(span)
    .await;
    active.dec();
    gw.metrics
        .calls_total
        .with_label_values(&[OUTBOUND, outcome.label])
        .inc();
    if let Some(setup) = outcome.setup {
        let hist = gw.metrics.call_setup_seconds.with_label_values(&[OUTBOUND]);
        hist.observe(setup.as_secs_f64());
    }
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
) -> Outcome {
    let call_id = request.call_id.clone();
    let grace = Grace::new(request.user.clone(), &call_id);
    // Boxed: the setup's state would otherwise size the task for the call.
    match Box::pin(start(gw, request, target)).await {
        Ok(started) => run_events(gw, started, to_client, control, grace, admission).await,
        Err(r) => {
            drop(admission);
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

/// Allocate the RTP port and WebRTC leg, translate the offer, send the INVITE.
async fn start(gw: &Arc<Inner>, request: CallRequest, target: Target) -> Result<Started, Refused> {
    let unavailable =
        |e: &dyn std::fmt::Display| Refused::new(503, format!("Service Unavailable: {e}"), "error");
    let user = request.user.as_deref();
    let srtp = sdes::outbound_mode(&gw.config, user, target.via_trunk, &target.uri)
        .map_err(|reason| Refused::new(488, reason, "no_codec"))?;
    let ports = gw.ports.allocate().map_err(|e| unavailable(&e))?;
    let relay_index = gw.relays.pick();
    let relay = gw.relays.get(relay_index);
    let caller = request.user.clone();
    let (ice_ufrag, ice_pwd) = webrtc::random_ice_credentials();
    let params = OutboundParams {
        call_id: request.call_id.clone(),
        offer_sdp: request.sdp,
        sip_codecs: gw.config.sip.codecs.clone(),
        rtp_addr: SocketAddr::new(gw.config.rtp_public_ip(), ports.port()),
        local: LocalWebRtc {
            ice_ufrag: ice_ufrag.clone(),
            ice_pwd: ice_pwd.clone(),
            fingerprint: gw.identity.fingerprint.clone(),
            candidate: SocketAddr::new(gw.config.webrtc_public_ip(), relay.webrtc_addr().port()),
            ssrc: rand::random::<u32>(),
            session_id: u64::from(rand::random::<u32>()),
        },
        srtp,
        local_crypto: sdes::offer_keys(srtp),
    };
    let ssrc_to_webrtc = params.local.ssrc;
    let (call, sip_offer) = OutboundCall::start(params, Instant::now())
        .map_err(|e| Refused::new(e.code, e.reason, "no_codec"))?;
    let (remote_ufrag, remote_pwd, remote_fingerprint) = call.remote_ice();
    let (events, media_events) = mpsc::unbounded_channel();
    let leg = LegConfig {
        local_ufrag: ice_ufrag,
        local_pwd: ice_pwd,
        remote_ufrag,
        remote_pwd,
        remote_fingerprint,
        consent_timeout: gw.config.webrtc.consent_timeout(),
        disconnect_timeout: gw.config.webrtc.disconnect_timeout(),
        dtls_role: webrtc::DtlsRole::Server,
    };
    let ssrc_to_sip = rand::random::<u32>();
    let add = AddCall {
        leg,
        ports,
        ssrc_to_webrtc,
        ssrc_to_sip,
        events,
        media_timeout: Some(gw.config.limits.media_timeout()),
    };
    let leg = relay
        .add(add)
        .await
        .map_err(|e| Refused::new(500, format!("Internal error: {e}"), "error"))?;
    let res = Resources {
        relay: relay_index,
        leg,
    };
    let invite = sip::OutboundInvite {
        target: target.uri,
        from_user: caller.unwrap_or_else(|| gw.config.sip.trunk.from_user.clone()),
        from_display: None,
        sdp: sip_offer,
        credentials: target.via_trunk.then(|| trunk_credentials(gw)).flatten(),
        log_id: request.call_id,
    };
    match gw.sip.invite(invite).await {
        Ok((uac, sip_events)) => Ok(Started {
            call: Box::new(call),
            res,
            uac,
            sip_events,
            media_events,
        }),
        Err(e) => {
            release(gw, &res).await;
            Err(unavailable(&e))
        }
    }
}

/// Feed the machine until it finishes.
async fn run_events(
    gw: &Arc<Inner>,
    started: Started,
    to_client: mpsc::Sender<ServerMessage>,
    control: Control,
    mut grace: Grace,
    admission: Admission,
) -> Outcome {
    let (control_tx, mut control) = control;
    let Started {
        mut call,
        res,
        uac,
        mut sip_events,
        mut media_events,
    } = started;
    let mut driver = Driver {
        gw,
        res,
        uac,
        to_client,
        reoffer: None,
        reinvites: ReinviteAnswers::default(),
        infos: InfoQueue::default(),
        admission: Some(admission),
    };
    // Boxed here and below: carrying out commands awaits SIP transactions,
    // whose futures would otherwise widen this loop's for the call's life.
    if let Some(outcome) = Box::pin(driver.exec(call.on_invite_sent())).await {
        return outcome;
    }
    let ring_timeout = tokio::time::sleep(gw.config.limits.ring_timeout());
    tokio::pin!(ring_timeout);
    loop {
        let cmds = tokio::select! {
            ev = sip_events.recv() => match ev {
                Some(UacEvent::Reoffer(reoffer)) => {
                    let sdp = reoffer.sdp.clone();
                    driver.reoffer = Some(*reoffer);
                    call.on_sip(SipEvent::Reoffer(sdp), Instant::now())
                }
                Some(ev) => match sip_event(ev) {
                    Some(ev) => call.on_sip(ev, Instant::now()),
                    None => continue,
                },
                None => call.on_sip(SipEvent::Failed(500, "SIP leg lost".into()), Instant::now()),
            },
            ev = control.recv() => match ev.map(|(_, ev)| ev) {
                Some(ClientEvent::Hangup) => call.on_client_hangup(),
                Some(ClientEvent::Answer(sdp)) => call.on_client_answer(&sdp),
                Some(ClientEvent::Dtmf { digits, duration_ms }) => {
                    call.on_client_dtmf(&digits, duration_ms)
                }
                Some(ClientEvent::Detached) => match &control_tx {
                    Some(c) if call.is_answered() && grace.start(gw, c) => continue,
                    _ => call.on_client_gone(),
                },
                Some(ClientEvent::Resumed(link)) => {
                    grace.resumed();
                    driver.to_client = link.to_client;
                    let call_id = call.call_id().to_owned();
                    vec![Command::Send(ServerMessage::Resumed { call_id })]
                }
                Some(ClientEvent::Offer(sdp)) => {
                    call.on_client_offer(&sdp, webrtc::random_ice_credentials())
                }
                // ICE-lite: the browser's checks tell us its addresses, so
                // trickled candidates need no action here. Accept and reject
                // only apply to incoming calls.
                Some(ClientEvent::Candidate(_) | ClientEvent::Accept(_) | ClientEvent::Reject(_)) => {
                    continue
                }
                Some(ClientEvent::Gone) | None => call.on_client_gone(),
                Some(ClientEvent::Shutdown) => call.on_shutdown(),
            },
            Some(ev) = media_events.recv() => match media_signal(ev) {
                Some(sig) => call.on_media(sig),
                None => continue,
            },
            () = &mut ring_timeout, if !call.is_answered() => call.on_ring_timeout(),
            Some(result) = driver.reinvites.recv() => {
                call.on_sip(SipEvent::ReinviteAnswered(result), Instant::now())
            }
            () = grace.expired(), if grace.waiting() => {
                if !grace.give_up(gw) {
                    continue;
                }
                call.on_client_gone()
            }
        };
        if let Some(outcome) = Box::pin(driver.exec(cmds)).await {
            grace.forget(gw);
            return outcome;
        }
    }
}

struct Driver<'a> {
    gw: &'a Arc<Inner>,
    res: Resources,
    uac: UacHandle,
    to_client: mpsc::Sender<ServerMessage>,
    /// The SIP re-offer waiting for the machine's answer.
    reoffer: Option<sip::Reoffer>,
    /// Where siphon's re-INVITEs report their final answers.
    reinvites: ReinviteAnswers,
    /// Key presses on their way as SIP INFO.
    infos: InfoQueue,
    /// The call's limits, until its machine finishes.
    admission: Option<Admission>,
}

impl Driver<'_> {
    /// Carry out commands; `Some` once the call is over.
    async fn exec(&mut self, cmds: Vec<Command>) -> Option<Outcome> {
        if cmds.iter().any(|c| matches!(c, Command::Finish(_))) {
            self.admission = None;
        }
        let mut outcome = None;
        for cmd in cmds {
            match cmd {
                Command::Send(msg) => {
                    let _ = self.to_client.send(msg).await;
                }
                Command::ConfigureMedia(media) => {
                    let relay = self.gw.relays.get(self.res.relay);
                    if let Err(e) = relay.configure(self.res.leg, *media) {
                        tracing::error!(error = %e, "relay refused media configuration");
                    }
                }
                Command::SipHangup => {
                    let uac = self.uac.clone();
                    super::hangups::spawn(self.gw, async move { uac.hangup().await });
                }
                Command::RestartIce(creds) => {
                    let relay = self.gw.relays.get(self.res.relay);
                    if let Err(e) = relay.restart_ice(self.res.leg, creds).await {
                        tracing::warn!(error = %e, "ICE restart refused");
                    } else {
                        self.gw.metrics.ice_restarts_total.inc();
                    }
                }
                Command::RelayDtmf(presses) => {
                    let relay = self.gw.relays.get(self.res.relay);
                    for press in presses {
                        count_dtmf(self.gw, &press);
                        let _ = relay.dtmf(self.res.leg, press);
                    }
                }
                Command::AnswerReoffer(answer) => {
                    if let Some(reoffer) = self.reoffer.take() {
                        answer_reoffer(self.gw, &reoffer, answer).await;
                    }
                }
                Command::SipReinvite { sdp, after_glare } => {
                    let uac = self.uac.clone();
                    let kind = sdp.clone();
                    let go = async move { uac.reinvite(sdp).await };
                    spawn_reinvite(self.gw, &kind, go, after_glare, self.reinvites.sender());
                }
                Command::GlareReoffer => {
                    if let Some(reoffer) = self.reoffer.take() {
                        refuse_glare(self.gw, &reoffer).await;
                    }
                }
                Command::SipInfo(digits) => {
                    let uac = self.uac.clone();
                    let info = move |digit: char, ms: u32| {
                        let uac = uac.clone();
                        async move { uac.info(digit, ms).await }
                    };
                    self.infos.send(self.gw, digits, info);
                }
                Command::Finish(o) => outcome = Some(o),
            }
        }
        if outcome.is_some() {
            release(self.gw, &self.res).await;
        }
        outcome
    }
}

fn trunk_credentials(gw: &Inner) -> Option<sip::Credentials> {
    let trunk = &gw.config.sip.trunk;
    (!trunk.username.is_empty()).then(|| sip::Credentials {
        username: trunk.username.clone(),
        password: trunk.password.clone(),
    })
}

fn sip_event(ev: UacEvent) -> Option<SipEvent> {
    Some(match ev {
        UacEvent::Trying => return None,
        UacEvent::Ringing => SipEvent::Ringing,
        UacEvent::Progress { sdp: Some(sdp) } => SipEvent::Progress(sdp),
        UacEvent::Progress { sdp: None } => SipEvent::Ringing,
        UacEvent::Answered { sdp } => SipEvent::Answered(sdp),
        UacEvent::Failed { code, reason } => SipEvent::Failed(code, reason),
        UacEvent::Ended { by_remote } => SipEvent::Ended { by_remote },
        UacEvent::SessionExpired => SipEvent::SessionExpired,
        UacEvent::Dtmf { digit, duration_ms } => SipEvent::Dtmf(digit, duration_ms),
        UacEvent::Reoffer(r) => SipEvent::Reoffer(r.sdp),
    })
}
