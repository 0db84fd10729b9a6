//! Reading one client frame: JSON, then the message's shape, then the
//! rules serde cannot express; a refusal is the `error` the client gets.

use super::messages::{ClientMessage, ErrorCode, ServerMessage};
use crate::config::{MAX_EXPIRES, MIN_EXPIRES};
use crate::media::dtmf::{event_code, MAX_DURATION_MS, MIN_DURATION_MS};

/// Longest call id a client may choose.
const MAX_CALL_ID: usize = 64;

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
        "transfer",
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
    validate(&msg).map_err(|e| Refusal::new(call_id, ErrorCode::BadMessage, e.to_string()))?;
    Ok(msg)
}

/// Why a message that parsed is still refused (`bad_message`); the text is
/// the `error` message the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Invalid {
    /// `call` with a blank `to`.
    #[error("call: `to` is empty")]
    EmptyTo,
    /// `reject` with a code other than 486 or 603.
    #[error("reject: code must be 486 or 603")]
    RejectCode,
    /// A `call_id` outside [`valid_call_id`].
    #[error("call_id must be 1-{MAX_CALL_ID} characters of A-Z a-z 0-9 . _ -")]
    CallId,
    /// `register` with an extension that is not a user name.
    #[error("register: extension must be 1-64 characters of A-Z a-z 0-9 + * # . _ -")]
    Extension,
    /// `register` with an empty, long or quoting username.
    #[error("register: username must be 1-128 characters without quotes or backslashes")]
    Username,
    /// `register` with an empty or long password.
    #[error("register: password must be 1-256 characters")]
    Password,
    /// `register` with `expires` out of range.
    #[error("register: expires must be {MIN_EXPIRES} to {MAX_EXPIRES}")]
    Expires,
    /// `dtmf` with no digits, too many, or one that is not a DTMF event.
    #[error("dtmf: digits must be 1-32 of 0-9 * # A-D")]
    DtmfDigits,
    /// `transfer` with neither or both of `to` and `replaces`.
    #[error("transfer: give either to (blind) or replaces (attended), not both")]
    TransferTarget,
    /// `transfer` whose `replaces` is no call id.
    #[error("transfer: replaces must be a call_id of this connection")]
    TransferReplaces,
    /// `dtmf` with `duration` out of range.
    #[error("dtmf: duration must be {MIN_DURATION_MS} to {MAX_DURATION_MS} ms")]
    DtmfDuration,
}

fn validate_transfer(to: Option<&str>, replaces: Option<&str>) -> Result<(), Invalid> {
    match (to.map(str::trim).filter(|t| !t.is_empty()), replaces) {
        (Some(_), None) => Ok(()),
        (None, Some(other)) if valid_call_id(other) => Ok(()),
        (None, Some(_)) => Err(Invalid::TransferReplaces),
        _ => Err(Invalid::TransferTarget),
    }
}

fn validate(msg: &ClientMessage) -> Result<(), Invalid> {
    let id = match msg {
        ClientMessage::Call { call_id, to, .. } => {
            if to.trim().is_empty() {
                return Err(Invalid::EmptyTo);
            }
            call_id.as_deref()
        }
        ClientMessage::Reject {
            code: Some(code), ..
        } if !matches!(code, 486 | 603) => {
            return Err(Invalid::RejectCode);
        }
        ClientMessage::Candidate { call_id, .. }
        | ClientMessage::Hangup { call_id }
        | ClientMessage::Accept { call_id, .. }
        | ClientMessage::Offer { call_id, .. }
        | ClientMessage::Answer { call_id, .. }
        | ClientMessage::Resume { call_id }
        | ClientMessage::Dtmf { call_id, .. }
        | ClientMessage::Reject { call_id, .. } => Some(call_id.as_str()),
        ClientMessage::Transfer {
            call_id,
            to,
            replaces,
        } => {
            validate_transfer(to.as_deref(), replaces.as_deref())?;
            Some(call_id.as_str())
        }
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
        Some(id) if !valid_call_id(id) => Err(Invalid::CallId),
        _ => Ok(()),
    }
}

fn validate_register(
    extension: &Option<String>,
    username: &Option<String>,
    password: &str,
    expires: Option<u32>,
) -> Result<(), Invalid> {
    if extension
        .as_deref()
        .is_some_and(|e| !super::session::valid_user(e))
    {
        return Err(Invalid::Extension);
    }
    if username
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.len() > 128 || u.contains(['"', '\\']))
    {
        return Err(Invalid::Username);
    }
    if password.is_empty() || password.len() > 256 {
        return Err(Invalid::Password);
    }
    if expires.is_some_and(|e| !(MIN_EXPIRES..=MAX_EXPIRES).contains(&e)) {
        return Err(Invalid::Expires);
    }
    Ok(())
}

fn validate_dtmf(digits: &str, duration: Option<u32>) -> Result<(), Invalid> {
    let count = digits.chars().count();
    if !(1..=32).contains(&count) || !digits.chars().all(|d| event_code(d).is_some()) {
        return Err(Invalid::DtmfDigits);
    }
    if duration.is_some_and(|d| !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&d)) {
        return Err(Invalid::DtmfDuration);
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
mod tests {
    use super::*;

    #[test]
    fn invalid_messages_read_as_before() {
        assert_eq!(
            Invalid::CallId.to_string(),
            "call_id must be 1-64 characters of A-Z a-z 0-9 . _ -"
        );
        assert_eq!(
            Invalid::Expires.to_string(),
            format!("register: expires must be {MIN_EXPIRES} to {MAX_EXPIRES}")
        );
        assert_eq!(
            Invalid::DtmfDuration.to_string(),
            format!("dtmf: duration must be {MIN_DURATION_MS} to {MAX_DURATION_MS} ms")
        );
        assert_eq!(validate_dtmf("12x", None), Err(Invalid::DtmfDigits));
        assert_eq!(
            validate_register(&None, &Some(String::new()), "pw", None),
            Err(Invalid::Username)
        );
    }
}
