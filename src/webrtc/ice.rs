//! ICE-lite for one leg (RFC 8445 section 2.5): answer the browser's binding
//! requests, learn and nominate its addresses, track consent (RFC 7675).
//!
//! STUN encoding and the integrity/fingerprint checks come from `rtc-stun`;
//! this file holds only the ICE-lite rules around them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rtc_stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::crypto::RTCCrypto;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use super::{DropReason, WebRtcError};

/// Addresses remembered per leg (one per browser candidate that checked in).
const MAX_VALIDATED: usize = 8;
/// Characters allowed in ICE ufrag and pwd (RFC 8839 ice-char).
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Returns a fresh (ufrag, pwd): 8 and 24 random ICE characters.
pub fn random_ice_credentials() -> (String, String) {
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| ICE_CHARS[rng.random_range(0..ICE_CHARS.len())] as char)
            .collect()
    };
    (pick(8), pick(24))
}

/// Checks an ufrag/pwd pair against RFC 8839 lengths and charset.
pub(crate) fn validate_credentials(ufrag: &str, pwd: &str) -> Result<(), WebRtcError> {
    let ice_chars = |s: &str| s.bytes().all(|b| ICE_CHARS.contains(&b));
    if !(4..=256).contains(&ufrag.len()) || !ice_chars(ufrag) {
        return Err(WebRtcError::InvalidCredentials("ufrag"));
    }
    if !(22..=256).contains(&pwd.len()) || !ice_chars(pwd) {
        return Err(WebRtcError::InvalidCredentials("pwd"));
    }
    Ok(())
}

/// A decoded binding request, before we know which leg it is for.
pub(crate) struct BindingRequest {
    msg: Message,
    /// Our ufrag (left of the colon in USERNAME): selects the leg.
    pub local_ufrag: String,
    remote_ufrag: String,
}

/// Decodes a STUN datagram into a binding request with a USERNAME.
pub(crate) fn parse_binding_request(packet: &[u8]) -> Result<BindingRequest, DropReason> {
    let mut msg = Message::new();
    msg.unmarshal_binary(packet)
        .map_err(|_| DropReason::StunMalformed)?;
    if msg.typ != BINDING_REQUEST {
        return Err(DropReason::StunUnexpected);
    }
    let username = TextAttribute::get_from_as(&msg, ATTR_USERNAME)
        .map_err(|_| DropReason::StunMalformed)?
        .text;
    let (local, remote) = username
        .split_once(':')
        .ok_or(DropReason::StunUnknownUser)?;
    Ok(BindingRequest {
        local_ufrag: local.to_owned(),
        remote_ufrag: remote.to_owned(),
        msg,
    })
}

/// What a valid check changed, for the endpoint's address routing.
#[derive(Debug, Default)]
pub(crate) struct CheckOutcome {
    /// The encoded binding success response to send back to the source.
    pub response: Vec<u8>,
    /// The source address was not validated before.
    pub new_address: Option<SocketAddr>,
    /// An address pushed out of the validated set to make room.
    pub evicted: Option<SocketAddr>,
    /// The check was made with credentials of an ICE restart, retiring these older ones.
    pub retired_ufrag: Option<String>,
}

/// One generation of ICE credentials (a restart creates a new one).
#[derive(Debug, Clone)]
struct Credentials {
    local_ufrag: String,
    local_pwd: String,
    remote_ufrag: String,
}

/// ICE-lite state of one leg.
#[derive(Debug)]
pub(crate) struct IceAgent {
    current: Credentials,
    /// Credentials before an ICE restart, honoured until the new ones nominate.
    previous: Option<Credentials>,
    consent_timeout: Duration,
    disconnect_timeout: Duration,
    last_valid: Instant,
    expired: bool,
    /// No valid check for `disconnect_timeout`: told once, until checks resume.
    quiet: bool,
    nominated: Option<SocketAddr>,
    /// Validated addresses, oldest first.
    validated: Vec<SocketAddr>,
}

impl IceAgent {
    /// A new agent; consent runs from `now` so a leg nobody checks also expires.
    pub fn new(
        local_ufrag: String,
        local_pwd: String,
        remote_ufrag: String,
        timeouts: (Duration, Duration),
        now: Instant,
    ) -> IceAgent {
        let (consent_timeout, disconnect_timeout) = timeouts;
        IceAgent {
            current: Credentials {
                local_ufrag,
                local_pwd,
                remote_ufrag,
            },
            previous: None,
            consent_timeout,
            disconnect_timeout,
            last_valid: now,
            expired: false,
            quiet: false,
            nominated: None,
            validated: Vec::with_capacity(2),
        }
    }

    /// Starts an ICE restart: new credentials, old ones kept until the new ones nominate.
    ///
    /// Returns the ufrag of an older generation that is dropped right away.
    pub fn restart(
        &mut self,
        local_ufrag: String,
        local_pwd: String,
        remote_ufrag: String,
    ) -> Option<String> {
        let new = Credentials {
            local_ufrag,
            local_pwd,
            remote_ufrag,
        };
        let old = std::mem::replace(&mut self.current, new);
        self.previous
            .replace(old)
            .map(|retired| retired.local_ufrag)
    }

    /// Every ufrag this agent answers to (one, or two during a restart).
    pub fn ufrags(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.local_ufrag.as_str())
            .chain(self.previous.as_ref().map(|c| c.local_ufrag.as_str()))
    }

    /// Where media and DTLS go: the nominated address, else the first validated one.
    pub fn send_addr(&self) -> Option<SocketAddr> {
        if self.expired {
            return None;
        }
        self.nominated.or_else(|| self.validated.first().copied())
    }

    /// The addresses ICE has validated.
    pub fn validated(&self) -> &[SocketAddr] {
        &self.validated
    }

    /// Drops `addr` (another leg validated it since); clears it as nominated too.
    pub fn forget(&mut self, addr: SocketAddr) {
        self.validated.retain(|a| *a != addr);
        if self.nominated == Some(addr) {
            self.nominated = None;
        }
    }

    /// When consent runs out unless a valid check arrives.
    pub fn consent_deadline(&self) -> Option<Instant> {
        (!self.expired).then(|| self.last_valid + self.consent_timeout)
    }

    /// Marks consent expired if its deadline passed; true only the first time.
    /// When the path goes quiet, if it is nominated and still talking.
    pub fn quiet_deadline(&self) -> Option<Instant> {
        let watching = !self.expired && !self.quiet && self.nominated.is_some();
        watching.then(|| self.last_valid + self.disconnect_timeout)
    }

    /// True once when checks have stopped for the disconnect timeout (the
    /// browser should restart ICE); valid checks re-arm it.
    pub fn go_quiet(&mut self, now: Instant) -> bool {
        match self.quiet_deadline() {
            Some(deadline) if now >= deadline => {
                self.quiet = true;
                true
            }
            _ => false,
        }
    }

    pub fn expire_consent(&mut self, now: Instant) -> bool {
        match self.consent_deadline() {
            Some(deadline) if now >= deadline => {
                self.expired = true;
                true
            }
            _ => false,
        }
    }

    /// Authenticates a binding request from `src` and answers it.
    ///
    /// Bad credentials are dropped without a response: answering 401 would
    /// turn this port into a reflector for unauthenticated traffic, and a
    /// browser simply retransmits a check that got no answer.
    pub fn handle_request(
        &mut self,
        mut req: BindingRequest,
        src: SocketAddr,
        now: Instant,
        crypto: &dyn RTCCrypto,
    ) -> Result<CheckOutcome, DropReason> {
        let restarted = self.previous.is_some() && req.local_ufrag == self.current.local_ufrag;
        let creds = self.credentials_for(&req)?;
        authenticate(&mut req.msg, &creds.local_pwd, crypto)?;
        let response = build_response(&req.msg, src, &creds.local_pwd, crypto)?;
        let mut outcome = CheckOutcome {
            response,
            ..CheckOutcome::default()
        };
        if !self.expired {
            self.last_valid = now;
            self.quiet = false;
        }
        if !self.validated.contains(&src) {
            outcome.new_address = Some(src);
            outcome.evicted = self.remember(src);
        }
        if req.msg.contains(ATTR_USE_CANDIDATE) {
            self.nominated = Some(src);
            if restarted {
                outcome.retired_ufrag = self.previous.take().map(|c| c.local_ufrag);
            }
        }
        Ok(outcome)
    }

    fn credentials_for(&self, req: &BindingRequest) -> Result<Credentials, DropReason> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|c| c.local_ufrag == req.local_ufrag && c.remote_ufrag == req.remote_ufrag)
            .cloned()
            .ok_or(DropReason::StunUnknownUser)
    }

    /// Adds `src` to the validated set, evicting the oldest non-nominated one if full.
    fn remember(&mut self, src: SocketAddr) -> Option<SocketAddr> {
        let mut evicted = None;
        if self.validated.len() >= MAX_VALIDATED {
            let victim = self
                .validated
                .iter()
                .position(|a| Some(*a) != self.nominated);
            evicted = victim.map(|i| self.validated.remove(i));
        }
        self.validated.push(src);
        evicted
    }
}

/// Checks FINGERPRINT (cheap CRC) first, then MESSAGE-INTEGRITY with our pwd.
fn authenticate(msg: &mut Message, pwd: &str, crypto: &dyn RTCCrypto) -> Result<(), DropReason> {
    FINGERPRINT
        .check(msg)
        .map_err(|_| DropReason::StunBadIntegrity)?;
    match msg.get(ATTR_MESSAGE_INTEGRITY) {
        Ok(v) if v.len() == 20 => {}
        _ => return Err(DropReason::StunMalformed),
    }
    MessageIntegrity::check(msg, pwd.as_bytes(), crypto).map_err(|_| DropReason::StunBadIntegrity)
}

fn build_response(
    req: &Message,
    src: SocketAddr,
    pwd: &str,
    crypto: &dyn RTCCrypto,
) -> Result<Vec<u8>, DropReason> {
    let mut out = Message::new();
    let setters: [Box<dyn Setter + '_>; 5] = [
        Box::new(req.clone()),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: src.ip(),
            port: src.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_owned(),
            crypto,
        )),
        Box::new(FINGERPRINT),
    ];
    out.build(&setters).map_err(|_| DropReason::StunMalformed)?;
    Ok(out.raw)
}

#[cfg(test)]
mod tests;
