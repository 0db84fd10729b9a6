//! One WebSocket connection: parse client messages, hand calls to the call
//! service, forward the calls' messages back. Knows nothing of SIP or SDP.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::{self, AuthError};
use super::early::{EarlyCandidates, Full};
use super::ending::Ending;
use super::messages::{
    parse_client_message, ClientMessage, ErrorCode, IceCandidate, Refusal, ServerMessage,
    PROTOCOL_VERSION,
};
use crate::metrics::Metrics;

/// A signaling session's id, unique in the process.
pub type SessionId = u64;

/// Where a call hears from its clients: each event names its session.
pub type ClientControl = mpsc::UnboundedSender<(SessionId, ClientEvent)>;

/// What a live call hears from its client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The client sent `hangup`.
    Hangup,
    /// The client accepted an incoming call with its SDP answer.
    Accept(String),
    /// The client refused an incoming call (486 or 603).
    Reject(u16),
    /// Key presses to send (validated digits, tone length in ms).
    Dtmf {
        /// 0-9 * # A-D, in order.
        digits: String,
        /// Tone length of each, in ms.
        duration_ms: u32,
    },
    /// A mid-call re-offer (ICE restart) with the browser's SDP.
    Offer(String),
    /// The browser's answer to siphon's mid-call offer.
    Answer(String),
    /// A trickled candidate (`None`: end of candidates). Boxed: the
    /// largest variant sizes every slot of a call's control channel.
    Candidate(Option<Box<IceCandidate>>),
    /// The socket closed.
    Gone,
    /// The socket of a user closed: an answered call may wait
    /// `limits.reconnect_grace_secs` for a `resume`.
    Detached,
    /// A new socket of the same user took the call back.
    Resumed(ResumeLink),
    /// Transfer the answered call: blind to `to`, or attended to the far
    /// end of the call `replaces` is the control of.
    Transfer {
        /// Where to (blind).
        to: Option<String>,
        /// The other call of the same socket (attended).
        replaces: Option<OtherCall>,
    },
    /// Another call asks for this call's SIP dialog, to replace it in an
    /// attended transfer; the reply is `None` before the answer.
    DialogRef(DialogReply),
    /// The gateway's own notice, never a client's: an INVITE with Replaces
    /// names this call's SIP dialog.
    Replaced(Replacement),
    /// The gateway's own notice, never a client's: siphon is exiting, end
    /// the call with 503 on both sides.
    Shutdown,
}

/// Another call of the same socket, as a transfer names it.
#[derive(Debug, Clone)]
pub struct OtherCall(pub ClientControl);

impl PartialEq for OtherCall {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

/// An INVITE that replaces a call's SIP dialog, for that call to take
/// (once: the first to take it has it).
#[derive(Debug, Clone)]
pub struct Replacement(pub std::sync::Arc<std::sync::Mutex<Option<Box<crate::sip::IncomingCall>>>>);

impl Replacement {
    /// `call`, to be taken.
    pub fn new(call: Box<crate::sip::IncomingCall>) -> Self {
        Replacement(std::sync::Arc::new(std::sync::Mutex::new(Some(call))))
    }

    /// The INVITE, the first time.
    pub fn take(&self) -> Option<Box<crate::sip::IncomingCall>> {
        self.0.lock().ok()?.take()
    }
}

impl PartialEq for Replacement {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Where a call answers [`ClientEvent::DialogRef`].
#[derive(Debug, Clone)]
pub struct DialogReply(pub mpsc::UnboundedSender<Option<crate::sip::DialogRef>>);

impl PartialEq for DialogReply {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

/// Where a resumed call's messages go from now on.
#[derive(Debug, Clone)]
pub struct ResumeLink {
    /// The new session.
    pub session: SessionId,
    /// Its outgoing messages.
    pub to_client: mpsc::Sender<ServerMessage>,
}

impl PartialEq for ResumeLink {
    fn eq(&self, other: &Self) -> bool {
        self.session == other.session
    }
}

/// A request to place a call, as the session received it.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The calling session.
    pub session: SessionId,
    /// The authenticated user of the socket, when tokens are required.
    pub user: Option<String>,
    /// The call id (client's or assigned).
    pub call_id: String,
    /// The destination as dialed.
    pub to: String,
    /// The browser's SDP offer.
    pub sdp: String,
}

/// A `register` message as the session received it.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The asking session; the registration ends when it closes.
    pub session: SessionId,
    /// The session's user: INVITEs for the extension ring this user.
    pub user: String,
    /// The extension; `None` = the user.
    pub extension: Option<String>,
    /// Digest username; `None` = the extension.
    pub username: Option<String>,
    /// Digest password.
    pub password: String,
    /// Expiry to ask for; `None` = the configured default.
    pub expires: Option<u32>,
}

/// How the gateway reaches a session whose user is known (to ring it).
#[derive(Debug, Clone)]
pub struct SessionLink {
    /// The session.
    pub id: SessionId,
    /// Its user.
    pub user: String,
    /// Its outgoing messages.
    pub to_client: mpsc::Sender<ServerMessage>,
    /// Hands the session a call (by call id) before its `incoming` is sent.
    pub attach: mpsc::UnboundedSender<(String, ClientControl)>,
}

/// The calls side of the gateway, as a session sees it.
pub trait CallService: Send + Sync + 'static {
    /// Start a call whose messages go to `to_client`; refuse with an `error`
    /// when it cannot even start (no route, limits).
    fn place_call(
        &self,
        request: CallRequest,
        to_client: mpsc::Sender<ServerMessage>,
    ) -> Result<ClientControl, Refusal>;

    /// A session's user is known: calls for that user may ring it.
    fn session_opened(&self, link: SessionLink);

    /// The session is gone.
    fn session_closed(&self, id: SessionId, user: &str);

    /// Start the registration a `register` message asks for; its progress
    /// reaches the user's sessions as `registered` / `registration_failed`.
    fn register(&self, request: RegisterRequest) -> Result<(), Refusal>;

    /// Remove the registration `session` made (`unregistered` follows).
    fn unregister(&self, session: SessionId, user: &str) -> Result<(), Refusal>;

    /// Hand `user`'s detached call `call_id` to the session of `link`.
    fn resume(&self, user: &str, call_id: &str, link: ResumeLink)
        -> Result<ClientControl, Refusal>;
}

/// How long a client has to authenticate with `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings applied to each session.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Largest accepted text message.
    pub max_message_bytes: usize,
    /// The HS256 secret when tokens are required (`auth.required`).
    pub auth_secret: Option<Arc<[u8]>>,
    /// The `aud` tokens must name (`auth.audience`); `None`: no `aud` at all.
    pub auth_audience: Option<Arc<str>>,
    /// Whether answered calls of a lost socket wait for a `resume`
    /// (`limits.reconnect_grace_secs` > 0).
    pub resumable: bool,
    /// Cancelled as siphon exits: the session sends what is queued (the
    /// calls' last `hangup`s), then a close frame.
    pub closing: CancellationToken,
    /// Cancelled when siphon starts draining: a session closes with 1012
    /// (service restart) once it has had no call for `MOVE_AFTER`, so that
    /// its client reconnects, through the balancer, to another instance.
    pub moving: CancellationToken,
}

/// How long a session stays without a call, after the drain began, before
/// it is asked to move: time for a client that came to `resume` to do so.
const MOVE_AFTER: Duration = Duration::from_secs(1);

/// Serve one socket until it closes. `url_token` is the `token` query parameter.
pub async fn run(
    mut socket: WebSocket,
    service: Arc<dyn CallService>,
    limits: SessionLimits,
    metrics: Metrics,
    url_token: Option<String>,
) {
    metrics.ws_connections.inc();
    let Ok(user) = authenticate(&mut socket, &limits, &metrics, url_token).await else {
        let _ = socket.send(Message::Close(None)).await;
        metrics.ws_connections.dec();
        count_ending(&metrics, &Ending::Unauthorized);
        return;
    };
    let (to_client, mut outbox) = mpsc::channel::<ServerMessage>(256);
    let welcome = ServerMessage::Welcome {
        version: PROTOCOL_VERSION,
        user: user.clone(),
    };
    let mut session = Session {
        // Never 0: the gateway's own shutdown notice uses that id.
        id: rand::random::<u64>() | 1,
        calls: HashMap::new(),
        service,
        to_client,
        attach: None,
        limits,
        metrics,
        user: None,
        early: EarlyCandidates::default(),
    };
    if let Some(user) = user {
        session.bind_user(user);
    }
    let mut open = send(&mut socket, &welcome).await;
    drop(welcome);
    let closing = session.limits.closing.clone();
    let moving = session.limits.moving.clone();
    let mut move_at = None;
    let mut ending = Ending::Client;
    while open {
        let early = session.early.deadline().map(tokio::time::Instant::from_std);
        move_at = session.move_at(move_at);
        tokio::select! {
            () = moving.cancelled(), if move_at.is_none() && !moving.is_cancelled() => {}
            () = tokio::time::sleep_until(move_at.unwrap_or_else(tokio::time::Instant::now)), if move_at.is_some() => {
                ending = Ending::Moved;
                open = false;
            }
            _ = tokio::time::sleep_until(early.unwrap_or_else(tokio::time::Instant::now)), if early.is_some() => {
                for reply in session.expire_early() {
                    open = open && send(&mut socket, &reply).await;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(msg)) => {
                    if let Some(reply) = session.on_frame(msg) {
                        open = send(&mut socket, &reply).await;
                    }
                }
                Some(Err(e)) => {
                    ending = Ending::of_read_error(&e);
                    open = false;
                }
                None => open = false,
            },
            Some(msg) = outbox.recv() => {
                // A call is attached before its `incoming` is queued: take
                // every attachment first so the client's answer finds it.
                session.take_attached();
                session.on_outgoing(&msg);
                open = send(&mut socket, &msg).await;
            }
            () = closing.cancelled() => {
                while let Ok(msg) = outbox.try_recv() {
                    session.on_outgoing(&msg);
                    if !send(&mut socket, &msg).await {
                        break;
                    }
                }
                let frame = CloseFrame {
                    code: axum::extract::ws::close_code::AWAY,
                    reason: crate::call::SHUTTING_DOWN.into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                ending = Ending::Shutdown;
                open = false;
            }
        }
    }
    if let Some(frame) = ending.close_frame() {
        tracing::info!(reason = %frame.reason, "ws: closing with {}", frame.code);
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    count_ending(&session.metrics, &ending);
    session.close();
}

fn count_ending(metrics: &Metrics, ending: &Ending) {
    let closed = &metrics.ws_closed_total;
    closed.with_label_values(&[ending.label()]).inc();
}

/// The socket's user when tokens are required; `Err` after telling the
/// client why it is refused.
async fn authenticate(
    socket: &mut WebSocket,
    limits: &SessionLimits,
    metrics: &Metrics,
    url_token: Option<String>,
) -> Result<Option<String>, ()> {
    let Some(secret) = &limits.auth_secret else {
        return Ok(None);
    };
    let token = match url_token {
        Some(token) => Some(token),
        None => first_hello(socket, limits.max_message_bytes).await,
    };
    let result = match token {
        Some(token) => {
            let audience = limits.auth_audience.as_deref();
            auth::verify_for(&token, secret, audience, unix_now())
        }
        None => Err(AuthError::Missing),
    };
    match result {
        Ok(claims) => Ok(Some(claims.sub)),
        Err(e) => {
            metrics
                .ws_auth_failures_total
                .with_label_values(&[e.code()])
                .inc();
            let code = ErrorCode::Unauthorized;
            metrics
                .ws_errors_total
                .with_label_values(&[code.as_str()])
                .inc();
            let _ = send(socket, &ServerMessage::error(None, code, e.to_string())).await;
            Err(())
        }
    }
}

/// The token of the first message when it is a `hello`.
async fn first_hello(socket: &mut WebSocket, max_bytes: usize) -> Option<String> {
    let frame = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(text) = frame else {
        return None;
    };
    match parse_client_message(&text, max_bytes) {
        Ok(ClientMessage::Hello { token, .. }) => token,
        _ => None,
    }
}

fn unix_now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_secs())
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
    socket
        .send(Message::Text(msg.to_json().into()))
        .await
        .is_ok()
}

/// A call handed to this session before its `incoming`: its id and control.
type Attachment = (String, ClientControl);

struct Session {
    id: SessionId,
    calls: HashMap<String, ClientControl>,
    service: Arc<dyn CallService>,
    to_client: mpsc::Sender<ServerMessage>,
    /// Calls that ring this session's user; made once a user is known, as
    /// only then can a call ring it (and an idle channel holds a block).
    attach: Option<(
        mpsc::UnboundedSender<Attachment>,
        mpsc::UnboundedReceiver<Attachment>,
    )>,
    limits: SessionLimits,
    metrics: Metrics,
    user: Option<String>,
    /// Candidates that came before their call's `call`.
    early: EarlyCandidates,
}

impl Session {
    /// Handle one frame; returns a direct reply (an `error`) if any.
    fn on_frame(&mut self, frame: Message) -> Option<ServerMessage> {
        let text = match frame {
            Message::Text(t) => t,
            Message::Binary(_) => {
                let r = refusal(ErrorCode::BadJson, "binary frames are not supported");
                return Some(self.refuse(r));
            }
            _ => return None,
        };
        match parse_client_message(&text, self.limits.max_message_bytes) {
            Ok(msg) => {
                self.metrics
                    .ws_messages_total
                    .with_label_values(&[msg.kind()])
                    .inc();
                self.on_message(msg).err().map(|r| self.refuse(r))
            }
            Err(r) => {
                self.metrics
                    .ws_messages_total
                    .with_label_values(&["invalid"])
                    .inc();
                Some(self.refuse(r))
            }
        }
    }

    fn refuse(&self, r: Refusal) -> ServerMessage {
        self.metrics
            .ws_errors_total
            .with_label_values(&[r.code.as_str()])
            .inc();
        r.to_message()
    }

    fn on_message(&mut self, msg: ClientMessage) -> Result<(), Refusal> {
        match msg {
            ClientMessage::Hello { user, .. } => self.on_hello(user),
            ClientMessage::Call { call_id, to, sdp } => {
                let call_id = call_id.unwrap_or_else(new_call_id);
                if self.calls.contains_key(&call_id) {
                    let mut r = refusal(ErrorCode::DuplicateCall, "call_id already in use");
                    r.call_id = Some(call_id);
                    return Err(r);
                }
                let request = CallRequest {
                    session: self.id,
                    user: self.user.clone(),
                    call_id: call_id.clone(),
                    to,
                    sdp,
                };
                let early = self.early.take(&call_id);
                let control = self.service.place_call(request, self.to_client.clone())?;
                for candidate in early {
                    let _ =
                        control.send((self.id, ClientEvent::Candidate(candidate.map(Box::new))));
                }
                self.calls.insert(call_id, control);
                Ok(())
            }
            ClientMessage::Candidate { call_id, candidate } => {
                if self.calls.contains_key(&call_id) {
                    let event = ClientEvent::Candidate(candidate.map(Box::new));
                    return self.to_call(&call_id, event);
                }
                self.hold_early(call_id, candidate)
            }
            ClientMessage::Hangup { call_id } => self.to_call(&call_id, ClientEvent::Hangup),
            ClientMessage::Offer { call_id, sdp } => {
                self.to_call(&call_id, ClientEvent::Offer(sdp))
            }
            ClientMessage::Answer { call_id, sdp } => {
                self.to_call(&call_id, ClientEvent::Answer(sdp))
            }
            ClientMessage::Accept { call_id, sdp } => {
                self.to_call(&call_id, ClientEvent::Accept(sdp))
            }
            ClientMessage::Reject { call_id, code } => {
                self.to_call(&call_id, ClientEvent::Reject(code.unwrap_or(486)))
            }
            ClientMessage::Register {
                extension,
                username,
                password,
                expires,
            } => {
                let user = self.named_user("register")?;
                self.service.register(RegisterRequest {
                    session: self.id,
                    user,
                    extension,
                    username,
                    password,
                    expires,
                })
            }
            ClientMessage::Unregister {} => {
                let user = self.named_user("unregister")?;
                self.service.unregister(self.id, &user)
            }
            ClientMessage::Resume { call_id } => self.resume(call_id),
            ClientMessage::Transfer {
                call_id,
                to,
                replaces,
            } => {
                let replaces = match replaces {
                    Some(other) if other == call_id => {
                        let mut r = refusal(
                            ErrorCode::BadMessage,
                            "transfer: a call cannot replace itself",
                        );
                        r.call_id = Some(call_id);
                        return Err(r);
                    }
                    Some(other) => match self.calls.get(&other) {
                        Some(control) => Some(OtherCall(control.clone())),
                        None => {
                            let mut r = refusal(
                                ErrorCode::UnknownCall,
                                "transfer: replaces names no call on this connection",
                            );
                            r.call_id = Some(other);
                            return Err(r);
                        }
                    },
                    None => None,
                };
                self.to_call(&call_id, ClientEvent::Transfer { to, replaces })
            }
            ClientMessage::Dtmf {
                call_id,
                digits,
                duration,
            } => {
                let duration_ms = duration.unwrap_or(crate::media::dtmf::DEFAULT_DURATION_MS);
                let event = ClientEvent::Dtmf {
                    digits: digits.to_ascii_uppercase(),
                    duration_ms,
                };
                self.to_call(&call_id, event)
            }
        }
    }

    /// A candidate for a call id this socket has not used yet: held for
    /// the `call` that may follow.
    fn hold_early(&mut self, call_id: String, c: Option<IceCandidate>) -> Result<(), Refusal> {
        let (code, message) = match self.early.hold(&call_id, c, Instant::now()) {
            Ok(()) => return Ok(()),
            Err(Full::Calls) => (ErrorCode::UnknownCall, "no such call on this connection"),
            Err(Full::Candidates) => (ErrorCode::BadMessage, "too many candidates before the call"),
        };
        let mut r = refusal(code, message);
        r.call_id = Some(call_id);
        Err(r)
    }

    /// `unknown_call` for each call id whose candidates waited in vain.
    fn expire_early(&mut self) -> Vec<ServerMessage> {
        let expired = self.early.expire(Instant::now());
        expired
            .into_iter()
            .map(|call_id| {
                let msg = "candidates for a call that was never placed";
                let mut r = refusal(ErrorCode::UnknownCall, msg);
                r.call_id = Some(call_id);
                self.refuse(r)
            })
            .collect()
    }

    /// Take back a call a lost socket of the same user left waiting.
    fn resume(&mut self, call_id: String) -> Result<(), Refusal> {
        let user = self.named_user("resume")?;
        if self.calls.contains_key(&call_id) {
            let mut r = refusal(ErrorCode::DuplicateCall, "call_id already in use");
            r.call_id = Some(call_id);
            return Err(r);
        }
        let link = ResumeLink {
            session: self.id,
            to_client: self.to_client.clone(),
        };
        let control = self.service.resume(&user, &call_id, link)?;
        self.calls.insert(call_id, control);
        Ok(())
    }

    /// The session's user; registration and resuming need one.
    fn named_user(&self, kind: &str) -> Result<String, Refusal> {
        self.user.clone().ok_or_else(|| {
            let msg = format!("{kind} needs a user: authenticate or send hello with a user first");
            refusal(ErrorCode::Forbidden, &msg)
        })
    }

    /// With tokens, the user came from the token and `hello` changes
    /// nothing. Without them (loopback only) `hello` may name the user, once.
    fn on_hello(&mut self, user: Option<String>) -> Result<(), Refusal> {
        let Some(user) = user else { return Ok(()) };
        if self.limits.auth_secret.is_some() || self.user.is_some() {
            return Err(refusal(ErrorCode::BadMessage, "the user is already set"));
        }
        if !valid_user(&user) {
            return Err(refusal(ErrorCode::BadMessage, "invalid user name"));
        }
        self.bind_user(user);
        Ok(())
    }

    fn bind_user(&mut self, user: String) {
        let (attach, _) = self.attach.get_or_insert_with(mpsc::unbounded_channel);
        let link = SessionLink {
            id: self.id,
            user: user.clone(),
            to_client: self.to_client.clone(),
            attach: attach.clone(),
        };
        self.user = Some(user);
        self.service.session_opened(link);
    }

    fn take_attached(&mut self) {
        let Some((_, attached)) = &mut self.attach else {
            return;
        };
        while let Ok((call_id, control)) = attached.try_recv() {
            self.calls.insert(call_id, control);
        }
    }

    fn to_call(&self, call_id: &str, event: ClientEvent) -> Result<(), Refusal> {
        match self.calls.get(call_id) {
            Some(control) if control.send((self.id, event)).is_ok() => Ok(()),
            _ => {
                let mut r = refusal(ErrorCode::UnknownCall, "no such call on this connection");
                r.call_id = Some(call_id.to_owned());
                Err(r)
            }
        }
    }

    /// When a draining siphon asks this session to move: `MOVE_AFTER`
    /// from the moment it had no call, kept from the last turn (`was`).
    fn move_at(&self, was: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
        let idle = self.limits.moving.is_cancelled() && self.calls.is_empty();
        idle.then(|| was.unwrap_or_else(|| tokio::time::Instant::now() + MOVE_AFTER))
    }

    /// A call's `hangup` is its last message: forget the call.
    fn on_outgoing(&mut self, msg: &ServerMessage) {
        if let ServerMessage::Hangup { call_id, .. } = msg {
            self.calls.remove(call_id);
        }
    }

    fn close(&mut self) {
        // Only a known user can come back for its calls.
        let event = if self.limits.resumable && self.user.is_some() {
            ClientEvent::Detached
        } else {
            ClientEvent::Gone
        };
        for (_, control) in self.calls.drain() {
            let _ = control.send((self.id, event.clone()));
        }
        if let Some(user) = &self.user {
            self.service.session_closed(self.id, user);
        }
        self.metrics.ws_connections.dec();
    }
}

fn refusal(code: ErrorCode, message: &str) -> Refusal {
    Refusal {
        call_id: None,
        code,
        message: message.to_owned(),
    }
}

/// A user name usable as a SIP user part.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+*#._-".contains(&b))
}

/// A fresh random call id.
pub fn new_call_id() -> String {
    format!("c-{:016x}", rand::random::<u64>())
}
