//! One driver for calls in both directions: it turns the SIP dialog, the
//! browser sessions, the media plane and the timers into a call machine's
//! [`Event`]s, and carries out the machine's [`Command`]s. What differs by
//! direction is only how a call gets here (`inbound`, `outbound`) and the
//! SIP handle underneath ([`Dialog`]).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::call_record::Facts;
use super::detached::Grace;
use super::dialog::FromSip;
pub(super) use super::dialog::{Dialog, SipEvents};
use super::infos::InfoQueue;
use super::leg::{self, AnswerError, BrowserSide, PendingLeg};
use super::midcall::{answer_reoffer, count_dtmf, media_signal, refuse_glare, release};
use super::midcall::{spawn_reinvite, Admission, Resources};
use super::quality::QualityReports;
use super::referrals::Referrals;
use super::reinvites::ReinviteAnswers;
use super::replaces::{self, DialogEntry};
use super::transfers::{refer_to, Refers};
use super::Inner;
use crate::call::inbound::Accepted;
use crate::call::{CallMachine, ClientInput, Command, Event, Outcome, SipInput};
use crate::media::MediaEvent;
use crate::records::Direction;
use crate::signaling::{ClientControl, ClientEvent, ResumeLink, ServerMessage, SessionId};
use crate::sip;
use crate::webrtc;

/// The channels a call listens on.
pub(super) struct Channels {
    /// The SIP dialog.
    pub(super) sip: SipEvents,
    /// Browser sessions (and the gateway's shutdown).
    pub(super) control: mpsc::UnboundedReceiver<(SessionId, ClientEvent)>,
    /// The sender of `control`, handed to a `resume` while the call waits
    /// for one; `None`: the call cannot wait.
    pub(super) control_tx: Option<ClientControl>,
    /// The media plane.
    pub(super) media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    /// The media plane's sender, for a leg added later.
    pub(super) media_tx: mpsc::UnboundedSender<MediaEvent>,
}

/// Everything the driver juggles for one call.
pub(super) struct Driver<'a> {
    gw: &'a Arc<Inner>,
    call_id: String,
    dialog: Dialog,
    /// Where each browser session's messages go.
    clients: Clients,
    /// The relay loop that holds (or will hold) the call's leg.
    relay: usize,
    /// The leg on the relay, once there.
    res: Option<Resources>,
    /// The leg to add on answer.
    pending_leg: Option<Box<PendingLeg>>,
    /// The SIP re-offer waiting for the machine's answer.
    reoffer: Option<Box<sip::Reoffer>>,
    /// Where siphon's re-INVITEs report their final answers.
    reinvites: ReinviteAnswers,
    /// Key presses on their way as SIP INFO.
    infos: InfoQueue,
    /// siphon's REFERs (the browser's transfers).
    refers: Refers,
    /// The far end's REFERs (transfers of the call by the PBX).
    referrals: Referrals,
    /// The browser user, the caller of siphon's INVITEs for this call.
    user: String,
    /// An INVITE with Replaces whose offer the machine is answering.
    replacing: Option<Box<sip::IncomingCall>>,
    /// The replacing dialog's events, for the loop to listen to next.
    new_sip: Option<SipEvents>,
    /// The call in the registry of SIP dialogs, once answered.
    entry: Option<DialogEntry>,
    /// The call's limits, until its machine finishes.
    admission: Option<Admission>,
    /// The reconnect grace of the answered call.
    grace: Grace,
    /// The session whose socket was lost, while the call waits for it.
    lost: Option<SessionId>,
    /// Sessions that resumed the call, and the session each stands for.
    aliases: Vec<(SessionId, SessionId)>,
    /// The call's record in the making.
    facts: &'a mut Facts,
    /// The `quality` messages of the answered call.
    quality: QualityReports,
}

/// Where each browser session's messages go. A few entries (the sessions
/// an incoming call rings, one for a browser's own call) in a `Vec`: a
/// map would cost each call more than it saves.
#[derive(Default)]
pub(super) struct Clients(Vec<(SessionId, mpsc::Sender<ServerMessage>)>);

impl Clients {
    /// Messages for `session` go to `to_client` from now on.
    pub(super) fn set(&mut self, session: SessionId, to_client: mpsc::Sender<ServerMessage>) {
        match self.0.iter_mut().find(|(s, _)| *s == session) {
            Some(entry) => entry.1 = to_client,
            None => self.0.push((session, to_client)),
        }
    }

    fn get(&self, session: SessionId) -> Option<&mpsc::Sender<ServerMessage>> {
        self.0.iter().find(|(s, _)| *s == session).map(|(_, c)| c)
    }
}

/// A call in progress in either direction, counted as active until it is
/// dropped. (A guard, not a wrapper around the call's future: an async fn
/// that takes a future by value stores it twice, once as its argument and
/// once while awaiting it, which doubled each call's task.)
pub(super) struct Active {
    gauge: prometheus::IntGauge,
    /// The call's span: its start and end lines are logged in it.
    span: tracing::Span,
    started: std::time::Instant,
    /// The call's record in the making.
    pub(super) facts: Facts,
}

impl Active {
    /// Call `call_id` from `from` to `to` starts in `direction`: counted,
    /// told at info level in the call's `span`, and its record begun;
    /// `user` is the browser user.
    pub(super) fn new(
        gw: &Inner,
        (direction, call_id): (&'static str, &str),
        span: &tracing::Span,
        (from, to): (&str, &str),
        user: Option<&str>,
    ) -> Active {
        span.in_scope(|| tracing::info!(%from, %to, "call started"));
        let gauge = gw.metrics.calls_active.with_label_values(&[direction]);
        gauge.inc();
        let kind = match direction {
            crate::metrics::direction::INBOUND => Direction::Inbound,
            _ => Direction::Outbound,
        };
        Active {
            gauge,
            span: span.clone(),
            started: std::time::Instant::now(),
            facts: Facts::start(gw, call_id, kind, (from, to), user),
        }
    }

    /// The call ended: told at info level, counted by its outcome, with its
    /// setup time when answered.
    pub(super) fn ended(mut self, gw: &Inner, direction: &'static str, outcome: &Outcome) {
        self.span.in_scope(|| {
            let setup_ms = outcome.setup.map(|s| s.as_millis() as u64);
            let lasted_s = self.started.elapsed().as_secs_f64();
            let (label, code, by) = (outcome.label, outcome.code, self.facts.ended_by());
            tracing::info!(outcome = label, code, by, setup_ms, lasted_s, "call ended");
        });
        let facts = std::mem::replace(&mut self.facts, Facts::none());
        drop(self);
        facts.ended(gw, outcome);
        gw.metrics
            .calls_total
            .with_label_values(&[direction, outcome.label])
            .inc();
        if let Some(setup) = outcome.setup {
            let hist = gw
                .metrics
                .call_setup_seconds
                .with_label_values(&[direction]);
            hist.observe(setup.as_secs_f64());
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// What a driver starts from.
pub(super) struct Setup<'a> {
    /// The gateway.
    pub(super) gw: &'a Arc<Inner>,
    /// The call id the browser knows.
    pub(super) call_id: String,
    /// The dialog.
    pub(super) dialog: Dialog,
    /// The browser sessions reached.
    pub(super) clients: Clients,
    /// The relay loop.
    pub(super) relay: usize,
    /// The leg already on the relay (browser -> SIP).
    pub(super) res: Option<Resources>,
    /// The leg to add on answer (SIP -> browser).
    pub(super) pending_leg: Option<Box<PendingLeg>>,
    /// The call's limits.
    pub(super) admission: Admission,
    /// The caller's user, whose new socket may resume the call.
    pub(super) user: Option<String>,
    /// The call's record in the making.
    pub(super) facts: &'a mut Facts,
}

impl<'a> Driver<'a> {
    /// A driver for one call.
    pub(super) fn new(s: Setup<'a>) -> Driver<'a> {
        Driver {
            gw: s.gw,
            user: (s.user.clone()).unwrap_or_else(|| s.gw.config.sip.trunk.from_user.clone()),
            grace: Grace::new(s.user, &s.call_id),
            call_id: s.call_id,
            dialog: s.dialog,
            clients: s.clients,
            relay: s.relay,
            res: s.res,
            pending_leg: s.pending_leg,
            reoffer: None,
            reinvites: ReinviteAnswers::default(),
            infos: InfoQueue::default(),
            refers: Refers::default(),
            referrals: Referrals::default(),
            replacing: None,
            new_sip: None,
            entry: None,
            admission: Some(s.admission),
            lost: None,
            aliases: Vec::new(),
            facts: s.facts,
            quality: QualityReports::new(s.gw),
        }
    }

    /// Feed `machine` from `first` on until it finishes.
    ///
    /// Everything is borrowed: an async fn stores a by-value argument twice
    /// (as the argument, and as the local it becomes), for the call's life.
    pub(super) async fn run<M: CallMachine>(
        &mut self,
        machine: &mut M,
        first: Event,
        ch: &mut Channels,
    ) -> Outcome {
        let now = std::time::Instant::now;
        // Boxed here and below: carrying out commands awaits SIP
        // transactions, and a resume awaits the new socket, whose futures
        // would otherwise widen this loop's
        // for the call's life.
        self.facts.heard(&first);
        let cmds = machine.on_event(first, now());
        self.facts.session(machine, &cmds);
        if let Some(outcome) = Box::pin(self.exec(cmds, ch)).await {
            return outcome;
        }
        let ring_timeout = tokio::time::sleep(self.gw.config.limits.ring_timeout());
        tokio::pin!(ring_timeout);
        // A closed channel is ready forever: it is heard once, then left alone.
        let mut sip_open = true;
        loop {
            let event = tokio::select! {
                ev = ch.sip.recv(), if sip_open => match ev {
                    Some(FromSip::Input(input)) => Event::Sip(input),
                    Some(FromSip::Reoffer(reoffer)) => {
                        let sdp = reoffer.sdp.clone();
                        self.reoffer = Some(reoffer);
                        Event::Sip(SipInput::Reoffer(sdp))
                    }
                    Some(FromSip::Referred(referral)) => self.referrals.received(referral),
                    Some(FromSip::Nothing) => continue,
                    None => {
                        sip_open = false;
                        Event::Sip(ch.sip.closed())
                    }
                },
                Some((session, ev)) = ch.control.recv() => {
                    let answered = machine.is_answered();
                    match Box::pin(self.client_event(session, ev, answered, ch)).await {
                        Some(event) => event,
                        None => continue,
                    }
                }
                Some(ev) = ch.media_rx.recv() => match media_signal(ev) {
                    Some(sig) => Event::Media(sig),
                    None => continue,
                },
                () = &mut ring_timeout, if !machine.is_answered() => Event::RingTimeout,
                Some(result) = self.reinvites.recv() => Event::Sip(SipInput::ReinviteAnswered(result)),
                event = self.refers.next() => event,
                event = self.referrals.next() => event,
                () = self.quality.due(), if self.quality.wanted(machine.is_answered()) => {
                    self.report_quality(machine).await;
                    continue;
                }
                () = self.grace.expired(), if self.grace.waiting() => {
                    match (self.grace.give_up(self.gw), self.lost) {
                        (true, Some(lost)) => Event::Client(lost, ClientInput::Gone),
                        _ => continue,
                    }
                }
            };
            self.facts.heard(&event);
            let cmds = machine.on_event(event, now());
            self.facts.session(machine, &cmds);
            if let Some(outcome) = Box::pin(self.exec(cmds, ch)).await {
                self.grace.forget(self.gw);
                return outcome;
            }
            self.follow_dialog(machine.is_answered(), ch, &mut sip_open);
        }
    }

    /// After a replacing INVITE took the call, listen to its dialog; once
    /// answered, be in the registry of SIP dialogs under the current one.
    fn follow_dialog(&mut self, answered: bool, ch: &mut Channels, sip_open: &mut bool) {
        if let Some(sip) = self.new_sip.take() {
            ch.sip = sip;
            *sip_open = true;
            self.entry = None;
        }
        if answered && self.entry.is_none() {
            if let Some(control) = &ch.control_tx {
                self.entry = DialogEntry::new(self.gw, &self.dialog, control);
            }
        }
    }

    /// An INVITE with Replaces for this call: its offer goes to the
    /// machine as a re-offer, unless the call cannot be replaced now.
    async fn replaced(&mut self, call: Box<sip::IncomingCall>, answered: bool) -> Option<Event> {
        let busy = self.replacing.is_some() || self.reoffer.is_some();
        if let Err((code, reason)) = replaces::admit(&self.dialog, &call, answered, busy) {
            call.handle.reject(code, reason).await;
            return None;
        }
        let sdp = call.sdp.clone();
        self.replacing = Some(call);
        Some(Event::Sip(SipInput::Reoffer(Some(sdp))))
    }

    /// Turn a client event into a machine input, handling lost sockets and
    /// resumes here; `None` when the machine has nothing to hear.
    async fn client_event(
        &mut self,
        session: SessionId,
        ev: ClientEvent,
        answered: bool,
        ch: &Channels,
    ) -> Option<Event> {
        let alias = self.aliases.iter().find(|(new, _)| *new == session);
        let session = alias.map_or(session, |(_, lost)| *lost);
        let input = match ev {
            ClientEvent::Shutdown => return Some(Event::Shutdown),
            ClientEvent::Detached if answered && self.wait_for_resume(ch) => {
                self.lost = Some(session);
                return None;
            }
            ClientEvent::Gone | ClientEvent::Detached => ClientInput::Gone,
            ClientEvent::Hangup => ClientInput::Hangup,
            ClientEvent::Resumed(link) => {
                self.resumed(link).await;
                return None;
            }
            ClientEvent::Accept(sdp) => ClientInput::Accept(sdp),
            ClientEvent::Reject(code) => ClientInput::Reject(code),
            // ICE-lite: the browser's checks tell siphon its addresses, so
            // trickled candidates need no action.
            ClientEvent::Candidate(_) => return None,
            ClientEvent::Answer(sdp) => ClientInput::Answer(sdp),
            ClientEvent::Dtmf {
                digits,
                duration_ms,
            } => ClientInput::Dtmf(digits, duration_ms),
            ClientEvent::Offer(sdp) => ClientInput::Offer(sdp, webrtc::random_ice_credentials()),
            ClientEvent::Transfer { to, replaces } => {
                let target = (to, replaces);
                ClientInput::Transfer(refer_to(self.gw, &self.dialog, session, target).await)
            }
            ClientEvent::DialogRef(reply) => {
                let _ = reply.0.send(self.dialog.dialog_ref());
                return None;
            }
            ClientEvent::Replaced(replacement) => {
                let call = replacement.take()?;
                return self.replaced(call, answered).await;
            }
        };
        Some(Event::Client(session, input))
    }

    /// The socket of the answered call was lost: wait for a `resume` if
    /// the call can.
    fn wait_for_resume(&mut self, ch: &Channels) -> bool {
        match &ch.control_tx {
            Some(control) => self.grace.start(self.gw, control),
            None => false,
        }
    }

    /// A new socket took the call back: it stands for the lost session.
    async fn resumed(&mut self, link: ResumeLink) {
        self.grace.resumed();
        let Some(lost) = self.lost.take() else {
            return;
        };
        self.aliases.push((link.session, lost));
        self.clients.set(lost, link.to_client);
        let call_id = self.call_id.clone();
        self.send(lost, ServerMessage::Resumed { call_id }).await;
    }

    async fn send(&self, session: SessionId, msg: ServerMessage) {
        if let Some(client) = self.clients.get(session) {
            let _ = client.send(msg).await;
        }
    }

    /// Carry out commands; `Some` once the call is over.
    async fn exec(&mut self, cmds: Vec<Command>, ch: &Channels) -> Option<Outcome> {
        if cmds.iter().any(|c| matches!(c, Command::Finish(_))) {
            self.admission = None;
        }
        let mut outcome = None;
        for cmd in cmds {
            self.facts.saw(self.gw, &cmd);
            self.quality.saw(&cmd);
            match cmd {
                Command::Send(session, msg) => self.send(session, msg).await,
                Command::SipRinging => {
                    if let Dialog::Uas(h) = &self.dialog {
                        h.ringing().await;
                    }
                }
                Command::Answer(session, accepted) => {
                    if let Err(reason) = self.answer(*accepted, ch).await {
                        tracing::error!(%reason, "answering failed");
                        let msg = ServerMessage::hangup(&self.call_id, 500, reason.to_string());
                        self.send(session, msg).await;
                        self.hang_up_sip();
                        outcome = Some(Outcome {
                            label: "error",
                            code: 500,
                            setup: None,
                        });
                    }
                }
                Command::SipReject(code, reason) => {
                    if let Dialog::Uas(h) = &self.dialog {
                        h.reject(code, &reason).await;
                    }
                }
                Command::SipHangup => self.hang_up_sip(),
                Command::RelayDtmf(presses) => {
                    if let Some(res) = &self.res {
                        let relay = self.gw.relays.get(res.relay);
                        for press in presses {
                            count_dtmf(self.gw, &press);
                            let _ = relay.dtmf(res.leg, press);
                        }
                    }
                }
                Command::AnswerReoffer(answer) => {
                    if let Some(call) = self.replacing.take() {
                        let dialog = &mut self.dialog;
                        self.new_sip = replaces::take_over(self.gw, dialog, call, answer).await;
                    } else if let Some(reoffer) = self.reoffer.take() {
                        answer_reoffer(self.gw, &reoffer, answer).await;
                    }
                }
                Command::ConfigureMedia(media) => {
                    if let Some(res) = &self.res {
                        let relay = self.gw.relays.get(res.relay);
                        if let Err(e) = relay.configure(res.leg, *media) {
                            tracing::error!(error = %e, "relay refused media configuration");
                        }
                    }
                }
                Command::SipReinvite { sdp, after_glare } => {
                    let dialog = self.dialog.clone();
                    let kind = sdp.clone();
                    let go = dialog.reinvite(sdp);
                    spawn_reinvite(self.gw, &kind, go, after_glare, self.reinvites.sender());
                }
                Command::GlareReoffer => {
                    if let Some(call) = self.replacing.take() {
                        call.handle.reject(491, "Request Pending").await;
                    } else if let Some(reoffer) = self.reoffer.take() {
                        refuse_glare(self.gw, &reoffer).await;
                    }
                }
                Command::SipRefer(refer_to) => self.refers.send(self.dialog.clone(), refer_to),
                Command::FollowReferral(sdp) => {
                    let (gw, dialog, user) = (self.gw, &self.dialog, &self.user);
                    self.referrals.follow(gw, dialog, sdp, user).await;
                }
                Command::RefuseReferral(code, why) => self.referrals.refuse(code, &why).await,
                Command::EndReferral(result) => {
                    let dialog = &mut self.dialog;
                    if let Some(sip) = self.referrals.end(self.gw, dialog, result) {
                        self.new_sip = Some(sip);
                    }
                }
                Command::SipInfo(digits) => {
                    let dialog = self.dialog.clone();
                    let info = move |digit: char, ms: u32| dialog.clone().info(digit, ms);
                    self.infos.send(self.gw, digits, info);
                }
                Command::RestartIce(creds) => {
                    if let Some(res) = &self.res {
                        let relay = self.gw.relays.get(res.relay);
                        if let Err(e) = relay.restart_ice(res.leg, creds).await {
                            tracing::warn!(error = %e, "ICE restart refused");
                        } else {
                            self.gw.metrics.ice_restarts_total.inc();
                        }
                    }
                }
                Command::Finish(o) => outcome = Some(o),
            }
        }
        if outcome.is_some() {
            if let Some(res) = &self.res {
                if let Some(stats) = release(self.gw, res).await {
                    self.facts.released(self.gw, &stats);
                }
            }
        }
        outcome
    }

    /// Tell the browser the call's media quality so far.
    async fn report_quality(&self, machine: &impl CallMachine) {
        let Some(res) = &self.res else {
            return;
        };
        let codec = machine.session().and_then(|s| s.codec).unwrap_or_default();
        let report = self.quality.report(self.gw, res, &self.call_id, &codec);
        if let Some((session, msg)) = report.await {
            self.send(session, msg).await;
        }
    }

    /// BYE (or CANCEL, or 480) toward the SIP side, in the background.
    fn hang_up_sip(&self) {
        let dialog = self.dialog.clone();
        super::hangups::spawn(self.gw, dialog.hangup());
    }

    /// Put the WebRTC leg on the relay with the browser's parameters, then 200 OK.
    async fn answer(&mut self, accepted: Accepted, ch: &Channels) -> Result<(), AnswerError> {
        let Dialog::Uas(handle) = &self.dialog else {
            return Err(AnswerError::NotIncoming);
        };
        let pending = self.pending_leg.take().ok_or(AnswerError::Twice)?;
        let PendingLeg { ports, local } = *pending;
        let browser = BrowserSide {
            ufrag: accepted.remote_ufrag,
            pwd: accepted.remote_pwd,
            fingerprint: accepted.remote_fingerprint,
            dtls_role: accepted.dtls_role,
        };
        let events = ch.media_tx.clone();
        let res = leg::add(self.gw, self.relay, &local, browser, ports, events).await?;
        self.res = Some(res);
        let relay = self.gw.relays.get(res.relay);
        relay.configure(res.leg, accepted.media)?;
        Ok(handle.answer(accepted.sip_answer).await?)
    }
}
