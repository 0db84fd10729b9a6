//! A test's hold on the echo: the steps of a call where a scripted peer
//! departs from the plain echo (a PBX that rejects, challenges, rings,
//! hangs up or refuses re-offers), and what it sees of each INVITE.

use std::time::Duration;

use rsipstack::sip::Request;

use super::digest::DigestAlgorithm;

/// What a scripted peer does differently from the plain echo, asked at
/// each step of a call; every default is the plain echo's. The gateway
/// installs none. Tests install one to play a PBX or phone that rejects,
/// challenges, rings, hangs up or refuses re-offers: the test support has
/// a scripted echo configured by fields.
pub trait EchoScript: Send + Sync + std::fmt::Debug {
    /// Sees every INVITE as it arrived, before anything else.
    fn received(&self, _invite: &ReceivedInvite) {}
    /// Demand digest authentication first.
    fn challenge(&self) -> Option<&EchoChallenge> {
        None
    }
    /// Refuse every INVITE that got past the challenge with this final code.
    fn reject(&self) -> Option<u16> {
        None
    }
    /// Answer only with these codecs (encoding names).
    fn codecs(&self) -> Option<&[String]> {
        None
    }
    /// Ring with 183 and the answer SDP, echoing already (early media).
    fn early_media(&self) -> bool {
        false
    }
    /// Ring this long before answering.
    fn ring_for(&self) -> Option<Duration> {
        None
    }
    /// Send BYE this long after answering.
    fn hangup_after(&self) -> Option<Duration> {
        None
    }
    /// Answer every re-INVITE and UPDATE with this code (501: a UA that
    /// takes none).
    fn refuse_reoffers(&self) -> Option<u16> {
        None
    }
    /// Headers (name, value) the 180 or 183 carries (History-Info, Diversion).
    fn ringing_headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// A REFER to `refer_to` on the answered call: `Ok` accepts it (202)
    /// and sends a NOTIFY with each of these statuses; `Err` refuses it
    /// with that code.
    fn refer(&self, _refer_to: &str) -> Result<Vec<u16>, u16> {
        Err(501)
    }
    /// Answer every INVITE with 302 and these Contacts (`<sip:…>;q=0.5`).
    fn redirect(&self) -> Option<Vec<String>> {
        None
    }
    /// Answer OPTIONS with this code instead of 200 (503: a trunk that is
    /// down); read at each OPTIONS, so a test can change it.
    fn options(&self) -> Option<u16> {
        None
    }
}

/// The plain echo, as a script that departs from nothing.
#[derive(Debug)]
pub(super) struct Plain;

impl EchoScript for Plain {}

/// A digest challenge the echo issues and verifies.
#[derive(Clone, Debug)]
pub struct EchoChallenge {
    /// Realm.
    pub realm: String,
    /// Accepted username.
    pub username: String,
    /// Accepted password.
    pub password: String,
    /// Hash algorithm.
    pub algorithm: DigestAlgorithm,
}

/// An INVITE as the echo received it (for [`EchoScript::received`]).
#[derive(Clone, Debug, Default)]
pub struct ReceivedInvite {
    /// Its body.
    pub sdp: String,
    /// Its headers as (name, value), in order.
    pub headers: Vec<(String, String)>,
}

impl ReceivedInvite {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An INVITE as a script sees it.
pub(super) fn received(req: &Request) -> ReceivedInvite {
    ReceivedInvite {
        sdp: String::from_utf8_lossy(&req.body).to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect(),
    }
}
