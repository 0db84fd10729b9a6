//! RFC 4028 session timers, as pure functions over requests and responses.
//!
//! Who refreshes is kept as `Us` or `Them`, because the header's `uac` and
//! `uas` name the roles of the transaction that carries it: in a refresh
//! sent by the side that answered the call, `uac` is that side.

use std::time::Duration;

use rsipstack::sip::{Header, Request, Response};

/// The smallest interval siphon accepts (RFC 4028's recommended Min-SE).
pub(super) const MIN_SE: u32 = 90;

/// Which side sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    /// siphon refreshes, by UPDATE or re-INVITE, at half the interval.
    Us,
    /// The peer refreshes; siphon ends the session if it stops.
    Them,
}

/// A running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timer {
    /// Session interval, in seconds.
    pub interval: u32,
    /// Who refreshes.
    pub refresher: Refresher,
    /// The peer supports the extension (`Supported: timer`): our 2xx may
    /// carry `Require: timer`.
    pub peer_supports: bool,
}

/// What a request from the peer (an INVITE or a refresh) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// No Session-Expires: no timer for this session (RFC 4028 section 9
    /// lets the answerer add one; siphon does not impose it).
    None,
    /// Run this timer once siphon answers 2xx.
    Run(Timer),
    /// Below Min-SE from a peer that supports the extension: 422.
    TooSmall,
}

/// Read a request's Session-Expires (long or compact form) and Supported,
/// with the refresher chosen per RFC 4028 section 9, table 2.
pub(super) fn ask(req: &Request) -> Ask {
    let supported = supports_timer(req.headers.iter());
    let Some((interval, param)) = session_expires(req.headers.iter()) else {
        return Ask::None;
    };
    if interval < MIN_SE && supported {
        return Ask::TooSmall;
    }
    let refresher = match param {
        // A peer without the extension cannot refresh for us to see.
        _ if !supported => Refresher::Us,
        Some(Role::Uas) => Refresher::Us,
        // Its own choice, or ours to make: the side that asked refreshes.
        Some(Role::Uac) | None => Refresher::Them,
    };
    Ask::Run(Timer {
        interval: interval.max(MIN_SE),
        refresher,
        peer_supports: supported,
    })
}

/// The timer a 2xx to siphon's own request (INVITE, re-INVITE, UPDATE)
/// sets; `None` turns the timer off (the peer gave no Session-Expires).
pub(super) fn from_answer(resp: &Response) -> Option<Timer> {
    let (interval, param) = session_expires(resp.headers.iter())?;
    let refresher = match param {
        Some(Role::Uas) => Refresher::Them,
        // A 2xx must name the refresher; without one siphon refreshes,
        // which keeps the session alive whatever the peer meant.
        Some(Role::Uac) | None => Refresher::Us,
    };
    Some(Timer {
        interval: interval.max(MIN_SE),
        refresher,
        peer_supports: true,
    })
}

/// Headers of the 422 for an interval below Min-SE.
pub(super) fn too_small() -> Vec<Header> {
    vec![Header::MinSE(MIN_SE.to_string().into())]
}

/// Headers of siphon's 2xx that runs `timer` (to an INVITE or a refresh):
/// the peer sent the request, so it is the transaction's `uac`.
pub(super) fn accepted(timer: Timer) -> Vec<Header> {
    let role = match timer.refresher {
        Refresher::Them => "uac",
        Refresher::Us => "uas",
    };
    let mut headers = vec![Header::SessionExpires(
        format!("{};refresher={role}", timer.interval).into(),
    )];
    if timer.peer_supports {
        headers.push(Header::Require("timer".into()));
    }
    headers
}

/// Headers of a request siphon sends on a dialog whose timer runs (a
/// refresh, or a re-INVITE for hold): siphon is the transaction's `uac`.
pub(super) fn in_request(timer: Option<Timer>) -> Vec<Header> {
    let mut headers = vec![Header::Supported("timer".into())];
    if let Some(t) = timer {
        let role = match t.refresher {
            Refresher::Us => "uac",
            Refresher::Them => "uas",
        };
        headers.push(Header::SessionExpires(
            format!("{};refresher={role}", t.interval).into(),
        ));
    }
    headers
}

/// When, after a 2xx that set or refreshed `timer`, siphon acts: refresh
/// at half the interval (RFC 4028 section 10), or, when the peer
/// refreshes, end the session at the interval less a third, at most 32 s.
pub(super) fn deadline(timer: Timer) -> Duration {
    let secs = match timer.refresher {
        Refresher::Us => timer.interval / 2,
        Refresher::Them => timer.interval - (timer.interval / 3).min(32),
    };
    Duration::from_secs(u64::from(secs))
}

/// Whether the peer's Allow lists UPDATE (a refresh needs no offer then).
pub(super) fn allows_update<'a>(headers: impl Iterator<Item = &'a Header>) -> bool {
    headers.into_iter().any(|h| match h {
        Header::Allow(v) => has_token(v.value(), "UPDATE"),
        _ => false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Uac,
    Uas,
}

fn supports_timer<'a>(headers: impl Iterator<Item = &'a Header>) -> bool {
    headers.into_iter().any(|h| match h {
        Header::Supported(v) => has_token(v.value(), "timer"),
        Header::Require(v) => has_token(v.value(), "timer"),
        _ => false,
    })
}

/// The interval and refresher of a Session-Expires header (rsipstack
/// parses the compact `x` into the same variant).
fn session_expires<'a>(headers: impl Iterator<Item = &'a Header>) -> Option<(u32, Option<Role>)> {
    let value = headers.into_iter().find_map(|h| match h {
        Header::SessionExpires(v) => Some(v.value()),
        _ => None,
    })?;
    let mut parts = value.split(';');
    let interval = parts.next()?.trim().parse().ok()?;
    let role = parts.find_map(|p| {
        let (key, val) = p.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match val.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Role::Uac),
            "uas" => Some(Role::Uas),
            _ => None,
        }
    });
    Some((interval, role))
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests;
