//! The JSON messages of the WebSocket protocol (version 1, docs/signaling.md).

use serde::{Deserialize, Serialize};

/// Protocol version spoken by this server.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest call id a client may choose.
const MAX_CALL_ID: usize = 64;

/// A trickled ICE candidate as browsers produce it (`RTCIceCandidateInit`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:...` attribute value.
    pub candidate: String,
    /// The media section's mid.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(default)]
    pub sdp_m_line_index: Option<u32>,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Authenticate the socket (when the token was not in the URL), or,
    /// when tokens are not required (loopback only), name its user.
    Hello {
        /// The HS256 JWT.
        #[serde(default)]
        token: Option<String>,
        /// The user, only when tokens are not required.
        #[serde(default)]
        user: Option<String>,
    },
    /// Place a call to `to` with a WebRTC offer.
    Call {
        /// Chosen by the client, or assigned by the server when absent.
        #[serde(default)]
        call_id: Option<String>,
        /// A number, a user, or a `sip:` URI where allowed.
        to: String,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Answer an `incoming` call with the browser's SDP answer.
    Accept {
        /// The incoming call.
        call_id: String,
        /// The browser's answer to the `incoming` offer.
        sdp: String,
    },
    /// Refuse an `incoming` call: 486 (busy, the default) or 603 (decline).
    Reject {
        /// The incoming call.
        call_id: String,
        /// 486 or 603.
        #[serde(default)]
        code: Option<u16>,
    },
    /// The browser's answer to siphon's `offer` (hold or resume from SIP).
    Answer {
        /// The call.
        call_id: String,
        /// The browser's answer.
        sdp: String,
    },
    /// A mid-call re-offer (ICE restart), answered with `answer`.
    Offer {
        /// The call.
        call_id: String,
        /// The browser's new offer.
        sdp: String,
    },
    /// A trickled candidate; `null` means end of candidates.
    Candidate {
        /// The call it belongs to.
        call_id: String,
        /// The candidate, or none for end-of-candidates.
        #[serde(default)]
        candidate: Option<IceCandidate>,
    },
    /// End a call in any state.
    Hangup {
        /// The call to end.
        call_id: String,
    },
    /// REGISTER an extension upstream with the client's own credentials,
    /// where `sip.client_register.enabled` allows it.
    Register {
        /// The extension (AOR user part); default: the session's user.
        #[serde(default)]
        extension: Option<String>,
        /// Digest username; default: the extension.
        #[serde(default)]
        username: Option<String>,
        /// Digest password.
        password: String,
        /// Expiry to ask for, in seconds; default: `sip.client_register.expires`.
        #[serde(default)]
        expires: Option<u32>,
    },
    /// Remove the registration made by `register`.
    Unregister {},
    /// Send key presses on an answered call.
    Dtmf {
        /// The call.
        call_id: String,
        /// 1-32 of 0-9 * # A-D, sent in order.
        digits: String,
        /// Tone length of each, in ms (40-5000; default 160).
        #[serde(default)]
        duration: Option<u32>,
    },
    /// Take back an answered call whose previous socket was lost.
    Resume {
        /// The call, as the previous socket knew it.
        call_id: String,
    },
}

impl ClientMessage {
    /// The `type` tag, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Call { .. } => "call",
            ClientMessage::Accept { .. } => "accept",
            ClientMessage::Reject { .. } => "reject",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Hangup { .. } => "hangup",
            ClientMessage::Register { .. } => "register",
            ClientMessage::Unregister {} => "unregister",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Dtmf { .. } => "dtmf",
        }
    }
}

/// Machine-readable `error` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a JSON object.
    BadJson,
    /// A `type` this server does not know.
    UnknownType,
    /// A known type with missing or wrong fields.
    BadMessage,
    /// Larger than `limits.max_ws_message_bytes`.
    TooLarge,
    /// No call with that id on this connection.
    UnknownCall,
    /// A call id already in use.
    DuplicateCall,
    /// The destination cannot be routed.
    NoRoute,
    /// The offer SDP was refused.
    BadSdp,
    /// The SIP side refused a mid-call change (hold, resume) with a failure
    /// other than 488, or did not answer; the call goes on as it was.
    SipRefused,
    /// A call limit was reached.
    LimitReached,
    /// Missing, malformed, badly signed or expired token; the socket closes.
    Unauthorized,
    /// Not allowed here (e.g. `register` while config does not allow it).
    Forbidden,
    /// The extension or the user already has a registration.
    InUse,
    /// `unregister` without a registration made by this session.
    NotRegistered,
    /// The gateway failed internally; the call was ended.
    Internal,
    /// The gateway is draining before a restart: place the call again
    /// (a load balancer sends the new socket to another instance).
    Draining,
}

impl ErrorCode {
    /// The wire name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnknownCall => "unknown_call",
            ErrorCode::DuplicateCall => "duplicate_call",
            ErrorCode::NoRoute => "no_route",
            ErrorCode::BadSdp => "bad_sdp",
            ErrorCode::SipRefused => "sip_refused",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InUse => "in_use",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::Internal => "internal",
            ErrorCode::Draining => "draining",
        }
    }
}

/// The fields of [`ServerMessage::Incoming`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incoming {
    /// The call.
    pub call_id: String,
    /// The caller (SIP From).
    pub from: String,
    /// The called user.
    pub to: String,
    /// WebRTC offer SDP.
    pub sdp: String,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once the socket is ready for calls (after authentication).
    Welcome {
        /// `PROTOCOL_VERSION`.
        version: u32,
        /// The authenticated user, when tokens are required.
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// The call was accepted and the SIP request sent.
    Trying {
        /// The call.
        call_id: String,
    },
    /// A SIP call for this socket's user: answer with `accept` or `reject`.
    /// Boxed: the largest variant sizes every slot of a session's outbox.
    Incoming(Box<Incoming>),
    /// The user's upstream registration succeeded (or was refreshed).
    Registered {
        /// The registered user.
        user: String,
        /// Seconds the registrar granted.
        expires: u32,
    },
    /// The user's upstream registration failed; siphon retries by itself.
    RegistrationFailed {
        /// The user.
        user: String,
        /// SIP status (408 when the registrar did not answer).
        code: u16,
        /// Reason phrase.
        reason: String,
        /// Seconds until the next attempt.
        retry_in: u64,
    },
    /// siphon's mid-call offer (the SIP side held or resumed the call):
    /// apply it and reply with `answer`.
    Offer {
        /// The call.
        call_id: String,
        /// WebRTC offer SDP.
        sdp: String,
    },
    /// The answer to a client's mid-call `offer` (ICE restart).
    Answer {
        /// The call.
        call_id: String,
        /// WebRTC answer SDP.
        sdp: String,
    },
    /// The browser's consent checks paused: restart ICE (`pc.restartIce()`).
    IceDisconnected {
        /// The call.
        call_id: String,
    },
    /// A key press from the SIP side (SIP INFO).
    Dtmf {
        /// The call.
        call_id: String,
        /// 0-9 * # A-D.
        digit: String,
        /// Tone length in ms.
        duration: u32,
    },
    /// The call is this socket's now (after `resume`).
    Resumed {
        /// The call.
        call_id: String,
    },
    /// A registration made by `register` was removed (`unregister`).
    Unregistered {
        /// The user.
        user: String,
    },
    /// The far end is ringing.
    Ringing {
        /// The call.
        call_id: String,
    },
    /// Early media: the answer SDP to apply before the call is answered.
    Progress {
        /// The call.
        call_id: String,
        /// WebRTC answer SDP.
        sdp: String,
    },
    /// The call was answered.
    Answered {
        /// The call.
        call_id: String,
        /// WebRTC answer SDP.
        sdp: String,
    },
    /// The call ended; `code` is the SIP status (200 for a normal BYE).
    Hangup {
        /// The call.
        call_id: String,
        /// SIP status code.
        code: u16,
        /// SIP reason phrase or siphon's reason.
        reason: String,
    },
    /// A request was refused; nothing else changed unless `call_id` says so.
    Error {
        /// The call concerned, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(call_id: Option<&str>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            call_id: call_id.map(str::to_owned),
            code,
            message: message.into(),
        }
    }

    /// A `hangup` message.
    pub fn hangup(call_id: &str, code: u16, reason: impl Into<String>) -> Self {
        ServerMessage::Hangup {
            call_id: call_id.to_owned(),
            code,
            reason: reason.into(),
        }
    }

    /// Serialize for the wire.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A client message that was refused, as the `error` it earns.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The call id, when the message carried one.
    pub call_id: Option<String>,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Explanation for the client.
    pub message: String,
}

impl Refusal {
    fn new(call_id: Option<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            call_id,
            code,
            message: message.into(),
        }
    }

    /// The `error` message to send.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::error(self.call_id.as_deref(), self.code, self.message.clone())
    }
}

/// Parse and validate one text frame of at most `max_bytes`.
pub fn parse_client_message(text: &str, max_bytes: usize) -> Result<ClientMessage, Refusal> {
    if text.len() > max_bytes {
        let msg = format!("message of {} bytes exceeds {max_bytes}", text.len());
        return Err(Refusal::new(None, ErrorCode::TooLarge, msg));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Refusal::new(None, ErrorCode::BadJson, format!("invalid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(Refusal::new(
            None,
            ErrorCode::BadJson,
            "expected a JSON object",
        ));
    };
    let call_id = obj
        .get("call_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let kind = match obj.get("type") {
        Some(serde_json::Value::String(kind)) => kind.as_str(),
        _ => {
            let msg = "missing string field `type`";
            return Err(Refusal::new(call_id, ErrorCode::BadMessage, msg));
        }
    };
    const KINDS: &[&str] = &[
        "hello",
        "call",
        "accept",
        "reject",
        "candidate",
        "offer",
        "answer",
        "hangup",
        "register",
        "unregister",
        "resume",
        "dtmf",
    ];
    if !KINDS.contains(&kind) {
        let msg = format!("unknown message type `{}`", truncate(kind, 32));
        return Err(Refusal::new(call_id, ErrorCode::UnknownType, msg));
    }
    let msg: ClientMessage = serde_json::from_value(value.clone()).map_err(|e| {
        Refusal::new(
            call_id.clone(),
            ErrorCode::BadMessage,
            format!("{kind}: {e}"),
        )
    })?;
    validate(&msg).map_err(|m| Refusal::new(call_id, ErrorCode::BadMessage, m))?;
    Ok(msg)
}

fn validate(msg: &ClientMessage) -> Result<(), String> {
    let id = match msg {
        ClientMessage::Call { call_id, to, .. } => {
            if to.trim().is_empty() {
                return Err("call: `to` is empty".into());
            }
            call_id.as_deref()
        }
        ClientMessage::Reject {
            code: Some(code), ..
        } if !matches!(code, 486 | 603) => {
            return Err("reject: code must be 486 or 603".into());
        }
        ClientMessage::Candidate { call_id, .. }
        | ClientMessage::Hangup { call_id }
        | ClientMessage::Accept { call_id, .. }
        | ClientMessage::Offer { call_id, .. }
        | ClientMessage::Answer { call_id, .. }
        | ClientMessage::Resume { call_id }
        | ClientMessage::Dtmf { call_id, .. }
        | ClientMessage::Reject { call_id, .. } => Some(call_id.as_str()),
        ClientMessage::Register {
            extension,
            username,
            password,
            expires,
        } => return validate_register(extension, username, password, *expires),
        ClientMessage::Hello { .. } | ClientMessage::Unregister {} => None,
    };
    if let ClientMessage::Dtmf {
        digits, duration, ..
    } = msg
    {
        validate_dtmf(digits, *duration)?;
    }
    match id {
        Some(id) if !valid_call_id(id) => Err(format!(
            "call_id must be 1-{MAX_CALL_ID} characters of A-Z a-z 0-9 . _ -"
        )),
        _ => Ok(()),
    }
}

fn validate_register(
    extension: &Option<String>,
    username: &Option<String>,
    password: &str,
    expires: Option<u32>,
) -> Result<(), String> {
    if extension
        .as_deref()
        .is_some_and(|e| !super::session::valid_user(e))
    {
        return Err(
            "register: extension must be 1-64 characters of A-Z a-z 0-9 + * # . _ -".into(),
        );
    }
    if username
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.len() > 128 || u.contains(['"', '\\']))
    {
        return Err(
            "register: username must be 1-128 characters without quotes or backslashes".into(),
        );
    }
    if password.is_empty() || password.len() > 256 {
        return Err("register: password must be 1-256 characters".into());
    }
    let (min, max) = (crate::config::MIN_EXPIRES, crate::config::MAX_EXPIRES);
    if expires.is_some_and(|e| !(min..=max).contains(&e)) {
        return Err(format!("register: expires must be {min} to {max}"));
    }
    Ok(())
}

fn validate_dtmf(digits: &str, duration: Option<u32>) -> Result<(), String> {
    use crate::media::dtmf::{event_code, MAX_DURATION_MS, MIN_DURATION_MS};
    let count = digits.chars().count();
    if !(1..=32).contains(&count) || !digits.chars().all(|d| event_code(d).is_some()) {
        return Err("dtmf: digits must be 1-32 of 0-9 * # A-D".into());
    }
    let (min, max) = (MIN_DURATION_MS, MAX_DURATION_MS);
    if duration.is_some_and(|d| !(min..=max).contains(&d)) {
        return Err(format!("dtmf: duration must be {min} to {max} ms"));
    }
    Ok(())
}

/// Whether `id` is an acceptable call id.
pub fn valid_call_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CALL_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests;
