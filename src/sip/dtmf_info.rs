//! DTMF over SIP INFO: the `application/dtmf-relay` and `application/dtmf`
//! bodies, answering an INFO, and sending one for a key press when the peer
//! negotiated no telephone-event.

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use tracing::debug;

use crate::media::dtmf;

/// What an INFO is answered with when it is not DTMF.
const ACCEPTED: &str = "application/dtmf-relay, application/dtmf";

/// The digit and duration (ms) of a SIP INFO body, by its Content-Type:
/// `application/dtmf-relay` ("Signal=5\r\nDuration=160") or
/// `application/dtmf` ("5").
pub fn parse_info(content_type: &str, body: &str) -> Option<(char, u32)> {
    let kind = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match kind.as_str() {
        "application/dtmf-relay" => {
            let mut signal = None;
            let mut duration = dtmf::DEFAULT_DURATION_MS;
            for line in body.lines() {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                match key.trim().to_ascii_lowercase().as_str() {
                    "signal" => signal = value.trim().chars().next(),
                    "duration" => duration = value.trim().parse().ok()?,
                    _ => {}
                }
            }
            let digit = signal.filter(|d| dtmf::event_code(*d).is_some())?;
            Some((digit.to_ascii_uppercase(), duration))
        }
        "application/dtmf" => {
            let digit = body
                .trim()
                .chars()
                .next()
                .filter(|d| dtmf::event_code(*d).is_some())?;
            Some((digit.to_ascii_uppercase(), dtmf::DEFAULT_DURATION_MS))
        }
        _ => None,
    }
}

/// The `application/dtmf-relay` body for a digit.
pub fn info_body(digit: char, duration_ms: u32) -> String {
    format!("Signal={digit}\r\nDuration={duration_ms}\r\n")
}

/// Answer an in-dialog INFO: 200 with the key press it carries, or 415
/// (with the bodies siphon takes) for anything else.
pub(super) async fn answer(req: &Request, handle: TransactionHandle) -> Option<(char, u32)> {
    let content_type = req.headers.iter().find_map(|h| match h {
        Header::ContentType(v) => Some(v.value().to_string()),
        _ => None,
    });
    let body = String::from_utf8_lossy(&req.body);
    let press = content_type.and_then(|ct| parse_info(&ct, &body));
    let result = match press {
        Some(_) => handle.respond(StatusCode::OK, None, None).await,
        None => {
            let accept = Header::Accept(ACCEPTED.into());
            let code = StatusCode::UnsupportedMediaType;
            handle.respond(code, Some(vec![accept]), None).await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "answering INFO failed");
    }
    press
}

/// Send one key press as an INFO on `dialog`; the peer's status code, if any.
pub(super) async fn send(dialog: &InviteDialog, digit: char, duration_ms: u32) -> Option<u16> {
    let content_type = Header::ContentType("application/dtmf-relay".into());
    let body = info_body(digit, duration_ms).into_bytes();
    match dialog.info(Some(vec![content_type]), Some(body)).await {
        Ok(resp) => resp.map(|r| r.status_code.code()),
        Err(e) => {
            debug!(error = %e, "INFO failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_bodies_of_both_kinds_parse() {
        let relay = "Signal=5\r\nDuration=250\r\n";
        assert_eq!(
            parse_info("application/dtmf-relay", relay),
            Some(('5', 250))
        );
        assert_eq!(
            parse_info("Application/DTMF-Relay; x=y", "signal= #\nduration=100"),
            Some(('#', 100))
        );
        assert_eq!(
            parse_info("application/dtmf", "7\r\n"),
            Some(('7', dtmf::DEFAULT_DURATION_MS))
        );
        assert_eq!(parse_info("application/dtmf-relay", "Signal=Z\r\n"), None);
        assert_eq!(parse_info("application/dtmf-relay", "Duration=5\r\n"), None);
        assert_eq!(parse_info("text/plain", "5"), None);
        assert_eq!(info_body('9', 160), "Signal=9\r\nDuration=160\r\n");
    }
}
