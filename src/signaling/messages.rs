//! The JSON messages of the WebSocket protocol (version 1, docs/signaling.md).

use serde::{Deserialize, Serialize};

pub use super::parse::{parse_client_message, valid_call_id, Refusal};

/// Protocol version spoken by this server.
pub const PROTOCOL_VERSION: u32 = 1;

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
    /// Transfer an answered call: blind to `to` (routed like a `call`'s
    /// `to`), or attended to the far end of this socket's call `replaces`.
    Transfer {
        /// The call to transfer.
        call_id: String,
        /// Where to (blind).
        #[serde(default)]
        to: Option<String>,
        /// The other call, whose far end takes this one (attended).
        #[serde(default)]
        replaces: Option<String>,
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
            ClientMessage::Transfer { .. } => "transfer",
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
    /// The call was forwarded (181, History-Info or Diversion): who
    /// forwarded it and where to, when the PBX said.
    Forwarded {
        /// The call.
        call_id: String,
        /// The party that forwarded the call (a SIP URI).
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Where the call went (a SIP URI).
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// The transfer target's progress, from the far end's NOTIFYs (100,
    /// 180, 200 ...); after a 2xx the call ends with `hangup` 200.
    TransferProgress {
        /// The call.
        call_id: String,
        /// The transfer target's SIP status.
        code: u16,
    },
    /// The far end transferred the call (its REFER): the call goes on with
    /// the party siphon called for it.
    Transferred {
        /// The call.
        call_id: String,
        /// Who the call is with now (the Refer-To URI).
        to: String,
    },
    /// The transfer did not happen; the call goes on.
    TransferFailed {
        /// The call.
        call_id: String,
        /// A SIP status: the far end's, or siphon's (404 no route, 408 no
        /// answer, 491 another transfer under way).
        code: u16,
        /// Why.
        reason: String,
    },
    /// The call's media quality each way so far, every
    /// `media.quality_interval_secs` while it is answered. Boxed: the
    /// largest variant sizes every slot of a session's outbox.
    Quality(Box<super::quality::QualityReport>),
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

#[cfg(test)]
mod tests;
