//! RFC 4028 session timers on inbound calls. When the caller supports them
//! and asks for an interval, siphon accepts it with the caller as the
//! refresher (`refresher=uac`), answers its refreshes, and ends a call
//! whose refreshes stop. Intervals below 90 s are refused with 422.

use std::time::Duration;

use rsipstack::sip::{Header, Request};

/// The smallest interval siphon accepts (RFC 4028's recommended Min-SE).
pub(super) const MIN_SE: u32 = 90;

/// The caller's session-timer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// None, or not one siphon must honour (no `Supported: timer`).
    None,
    /// Run a timer of this many seconds, refreshed by the caller.
    Interval(u32),
    /// Below Min-SE: answer 422 with `Min-SE: 90`.
    TooSmall,
}

/// Read a request's Session-Expires (long or compact form) and Supported.
pub(super) fn ask(req: &Request) -> Ask {
    let mut interval = None;
    let mut supported = false;
    for h in req.headers.iter() {
        match h {
            Header::SessionExpires(v) => interval = first_number(v.value()),
            Header::Supported(v) => supported |= has_token(v.value(), "timer"),
            Header::Other(name, v) if name.eq_ignore_ascii_case("x") => {
                interval = first_number(v.as_str());
            }
            _ => {}
        }
    }
    match interval {
        Some(n) if n < MIN_SE => Ask::TooSmall,
        Some(n) if supported => Ask::Interval(n),
        _ => Ask::None,
    }
}

/// Headers of the 422 for an interval below Min-SE.
pub(super) fn too_small() -> Vec<Header> {
    vec![Header::MinSE(MIN_SE.to_string().into())]
}

/// Headers of a 2xx that accepts the timer (to the INVITE or a refresh).
pub(super) fn accepted(interval: u32) -> Vec<Header> {
    vec![
        Header::SessionExpires(format!("{interval};refresher=uac").into()),
        Header::Require("timer".into()),
    ]
}

/// How long after a refresh the session expires for the side that does not
/// refresh (RFC 4028 section 10: the interval less a third, at most 32 s).
pub(super) fn expiry(interval: u32) -> Duration {
    Duration::from_secs(u64::from(interval - (interval / 3).min(32)))
}

fn first_number(value: &str) -> Option<u32> {
    value.split(';').next()?.trim().parse().ok()
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\n\
             CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_bytes()).expect("request")
    }

    #[test]
    fn an_interval_is_taken_only_with_supported_timer() {
        assert_eq!(
            ask(&invite(
                "Supported: timer\r\nSession-Expires: 1800;refresher=uas\r\n"
            )),
            Ask::Interval(1800)
        );
        assert_eq!(
            ask(&invite("Supported: 100rel, timer\r\nx: 120\r\n")),
            Ask::Interval(120)
        );
        assert_eq!(ask(&invite("Session-Expires: 1800\r\n")), Ask::None);
        assert_eq!(ask(&invite("")), Ask::None);
        assert_eq!(
            ask(&invite("Supported: timer\r\nSession-Expires: 30\r\n")),
            Ask::TooSmall
        );
    }

    #[test]
    fn expiry_leaves_the_refresher_its_margin() {
        assert_eq!(expiry(1800), Duration::from_secs(1768));
        assert_eq!(expiry(90), Duration::from_secs(60));
        let h = accepted(1800);
        assert_eq!(h[0].to_string(), "Session-Expires: 1800;refresher=uac");
        assert_eq!(h[1].to_string(), "Require: timer");
        assert_eq!(too_small()[0].to_string(), "Min-SE: 90");
    }
}
