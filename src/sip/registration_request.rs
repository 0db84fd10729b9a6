//! Building REGISTER requests from a `RegistrationSpec`, answering their
//! digest challenges and reading the registrar's replies.

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::typed::Contact;
use rsipstack::sip::uri::ParamsExt;
use rsipstack::sip::{Header, Method, Request, Response, Uri};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::make_tag;
use rsipstack::transport::SipAddr;

use super::challenge;
use super::endpoint::Shared;
use super::registration::RegistrationSpec;
use super::registration_plan::Reply;
use super::{stack, uac_request, uas_call, SipError, Transport};

fn invalid(what: &'static str, value: &str) -> SipError {
    SipError::Invalid {
        what,
        value: value.to_string(),
    }
}

fn uri(what: &'static str, text: &str) -> Result<Uri, SipError> {
    Uri::try_from(text).map_err(|_| invalid(what, text))
}

/// Everything constant across one registration's REGISTERs (RFC 3261
/// §10.2.4: same Call-ID, and From tag, for every refresh).
pub(super) struct Target {
    /// Request-URI: the registrar.
    pub registrar: Uri,
    /// Address of record, in To and From.
    pub aor: Uri,
    /// Our binding, parsed for matching it in replies.
    pub contact: Uri,
    /// Our binding as written: rsipstack would print `transport=UDP`, and
    /// lower case is what registrars' own examples and tests use.
    pub contact_text: String,
    /// Listener written in Via.
    pub via: SipAddr,
    /// Where to send, when the URI alone would not say TLS (`sips:`).
    pub destination: Option<SipAddr>,
    pub call_id: String,
    pub from_tag: String,
    /// Digest credentials.
    pub username: String,
    pub password: String,
}

impl Target {
    /// Validate `spec` against the endpoint's transports.
    pub fn new(shared: &Shared, spec: &RegistrationSpec) -> Result<Target, SipError> {
        let (registrar, transport) = parse_registrar(&spec.registrar)?;
        let public = shared
            .stack
            .public_addr(transport)
            .ok_or(SipError::NoTransport(transport))?;
        let domain = match spec.domain.as_str() {
            "" => registrar.host_with_port.host.to_string(),
            d => d.to_string(),
        };
        let aor = uri("user", &format!("sip:{}@{domain}", spec.user))?;
        let contact_text = match &spec.contact {
            Some(at) => format!("sip:{}@{at}", spec.user),
            None => uas_call::contact_uri(&spec.user, public, transport, &registrar),
        };
        let destination = uac_request::tls_destination(&registrar, transport);
        let contact = uri("user", &contact_text)?;
        let username = match spec.username.as_str() {
            "" => spec.user.clone(),
            u => u.to_string(),
        };
        Ok(Target {
            registrar,
            aor,
            contact,
            contact_text,
            via: SipAddr {
                r#type: Some(transport.stack()),
                addr: public.into(),
            },
            destination,
            // Named in siphon's domain, like the Call-IDs of its calls.
            call_id: format!("{:032x}@{}", rand::random::<u128>(), shared.settings.domain),
            from_tag: make_tag().to_string(),
            username,
            password: spec.password.clone(),
        })
    }

    /// The REGISTER with sequence number `cseq` asking for `expires`
    /// seconds, with an Authorization header if one answers a challenge.
    pub fn request(
        &self,
        endpoint: &EndpointInner,
        cseq: u32,
        expires: u32,
        auth: Option<Header>,
    ) -> Result<Request, SipError> {
        let via = endpoint.get_via(Some(self.via.clone()), None)?;
        let from = rsipstack::sip::typed::From {
            display_name: None,
            uri: self.aor.clone(),
            params: vec![rsipstack::sip::Param::Tag(self.from_tag.clone().into())],
        };
        let to = rsipstack::sip::typed::To {
            display_name: None,
            uri: self.aor.clone(),
            params: vec![],
        };
        let mut req = endpoint.make_request(
            Method::Register,
            self.registrar.clone(),
            via,
            from,
            to,
            cseq,
            Some(self.call_id.clone().into()),
        );
        req.headers
            .push(Header::Contact(format!("<{}>", self.contact_text).into()));
        req.headers
            .push(Header::Expires(expires.to_string().into()));
        req.headers.push(Header::ContentLength(0u32.into()));
        if let Some(h) = auth {
            req.headers.push(h);
        }
        Ok(req)
    }

    /// The Authorization (or Proxy-Authorization) answering `challenge` to
    /// `sent`; `None` if the challenge is unusable.
    pub fn authorization(&self, sent: &Request, challenge: &Response) -> Option<Header> {
        let (user, pass) = (&self.username, &self.password);
        challenge::answer(sent, challenge, "REGISTER", user, pass)
    }
}

/// The registrar URI and the transport it asks for.
fn parse_registrar(text: &str) -> Result<(Uri, Transport), SipError> {
    uac_request::target_uri(text).ok_or_else(|| invalid("registrar", text))
}

/// Classify a final response to a REGISTER that asked for `requested`.
pub(super) fn reply(resp: &Response, contact: &Uri, requested: u32) -> Reply {
    match resp.status_code.code() {
        200..=299 => Reply::Ok {
            granted: granted(resp, contact, requested),
        },
        423 => Reply::TooBrief {
            min_expires: resp
                .min_expires_header()
                .and_then(|h| h.value().trim().parse().ok()),
        },
        code => Reply::Failed {
            code,
            reason: resp
                .wire_reason
                .clone()
                .unwrap_or_else(|| resp.status_code.text().to_string()),
            retry_after: retry_after(resp),
        },
    }
}

fn retry_after(resp: &Response) -> Option<u32> {
    resp.headers
        .iter()
        .filter_map(|h| stack::header_value(h, "retry-after"))
        // `Retry-After: 120 (maintenance);duration=60`: the leading number.
        .find_map(|v| {
            let digits: String = v.trim().chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
}

/// The expiry granted to our binding: its Contact `expires` parameter (the
/// 200 lists every binding of the AOR, other devices' included), else the
/// Expires header, else what we asked for.
pub(super) fn granted(resp: &Response, contact: &Uri, requested: u32) -> u32 {
    let ours = resp
        .typed_contact_headers()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| same_binding(&c.uri, contact))
        .find_map(|c: Contact| c.expires());
    ours.or_else(|| {
        resp.expires_header()
            .and_then(|h| h.value().trim().parse().ok())
    })
    .unwrap_or(requested)
}

/// Whether two Contact URIs name the same binding (user, host, port and
/// transport; a registrar may add parameters or change the case of the host).
fn same_binding(a: &Uri, b: &Uri) -> bool {
    let user = |u: &Uri| u.auth.as_ref().map(|a| a.user.clone());
    let host = |u: &Uri| u.host_with_port.host.to_string().to_ascii_lowercase();
    let port = |u: &Uri| u.host_with_port.port.as_ref().map_or(5060, |p| p.value());
    let transport = |u: &Uri| {
        u.transport()
            .copied()
            .unwrap_or(rsipstack::sip::Transport::Udp)
    };
    user(a) == user(b) && host(a) == host(b) && port(a) == port(b) && transport(a) == transport(b)
}

#[cfg(test)]
mod tests;
