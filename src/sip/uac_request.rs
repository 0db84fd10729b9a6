//! Building the INVITEs of an outbound call: the first one from an
//! `OutboundInvite`, and the retry answering a digest challenge.

use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::uri::ParamsExt;
use rsipstack::sip::{Request, Response, Uri};

use super::challenge;
use super::endpoint::Shared;
use super::stack;
use super::{Credentials, OutboundInvite, SipError, Transport};

fn invalid(what: &'static str, value: &str) -> SipError {
    SipError::Invalid {
        what,
        value: value.to_string(),
    }
}

pub(super) fn build_option(
    shared: &Shared,
    req: &OutboundInvite,
) -> Result<InviteOption, SipError> {
    // rsipstack's URI parser is lenient; only plain `sip:` targets make sense
    // here (no TLS transport, so no `sips:`).
    let is_sip = req
        .target
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("sip:"));
    let callee = Uri::try_from(req.target.as_str())
        .ok()
        .filter(|_| is_sip && !req.target.contains(char::is_whitespace))
        .ok_or_else(|| invalid("target", &req.target))?;
    let transport = match callee.transport() {
        None | Some(rsipstack::sip::Transport::Udp) => Transport::Udp,
        Some(rsipstack::sip::Transport::Tcp) => Transport::Tcp,
        Some(_) => return Err(invalid("target transport", &req.target)),
    };
    let contact_addr = shared
        .stack
        .public_addr(transport)
        .ok_or(SipError::NoTransport(transport))?;
    let domain = &shared.settings.domain;
    let caller = format!("sip:{}@{domain}", req.from_user);
    let caller = Uri::try_from(caller.as_str()).map_err(|_| invalid("from", &caller))?;
    // A Contact naming its transport is sent as built (rsipstack rewrites
    // others to the socket address, which is not the public one).
    let t = if transport == Transport::Tcp {
        "tcp"
    } else {
        "udp"
    };
    let contact = format!("sip:{}@{contact_addr};transport={t}", req.from_user);
    let contact = Uri::try_from(contact.as_str()).map_err(|_| invalid("contact", &contact))?;
    Ok(InviteOption {
        caller_display_name: req.from_display.clone(),
        caller,
        callee,
        contact,
        content_type: Some("application/sdp".into()),
        offer: Some(req.sdp.clone().into_bytes()),
        // rsipstack's default Call-ID names its authors' domain; ours names ours.
        call_id: Some(format!("{:032x}@{domain}", rand::random::<u128>())),
        // Supported: 100rel; rsipstack PRACKs reliable provisionals itself.
        support_prack: true,
        // Allow (UPDATE for refreshes) and Supported: timer, so a peer that
        // wants RFC 4028 session timers can ask for them in its 200.
        headers: Some(stack::capabilities()),
        ..Default::default()
    })
}

/// The first INVITE's options plus credentials answering `challenge`:
/// same Call-ID (RFC 3261 §22.2); rsipstack gives it a new CSeq.
pub(super) fn with_credentials(
    base: &InviteOption,
    first: &Request,
    challenge: &Response,
    creds: &Credentials,
) -> Option<InviteOption> {
    let call_id = first.call_id_header().ok()?.value().to_string();
    let header = challenge::answer(first, challenge, "INVITE", &creds.username, &creds.password)?;
    let mut option = base.clone();
    option.call_id = Some(call_id);
    option.headers.get_or_insert_with(Vec::new).push(header);
    Some(option)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest;
    use rsipstack::sip::{Header, SipMessage};

    fn parse(text: &str) -> SipMessage {
        SipMessage::try_from(text.as_bytes()).expect("valid message")
    }

    #[test]
    fn proxy_challenge_is_answered_with_proxy_authorization() {
        let SipMessage::Request(first) = parse(
            "INVITE sip:1000@10.0.0.5;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:1000@10.0.0.5>\r\nCall-ID: cid-1\r\nCSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n",
        ) else {
            panic!("request");
        };
        let SipMessage::Response(resp) = parse(
            "SIP/2.0 407 Proxy Authentication Required\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:1000@10.0.0.5>;tag=2\r\nCall-ID: cid-1\r\nCSeq: 1 INVITE\r\n\
Proxy-Authenticate: Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth,auth-int\", algorithm=SHA-256\r\n\
Content-Length: 0\r\n\r\n",
        ) else {
            panic!("response");
        };
        let creds = Credentials {
            username: "alice".into(),
            password: "pw".into(),
        };
        let opt = with_credentials(&InviteOption::default(), &first, &resp, &creds).expect("retry");
        assert_eq!(opt.call_id.as_deref(), Some("cid-1"));
        let headers = opt.headers.expect("headers");
        let Some(Header::ProxyAuthorization(h)) = headers.first() else {
            panic!("{headers:?}");
        };
        let parsed = digest::Credentials::parse(h.value()).expect("digest");
        assert_eq!(parsed.algorithm, digest::DigestAlgorithm::Sha256);
        assert_eq!(parsed.uri, first.uri.to_string());
        assert!(parsed.qop.is_some());
        assert!(parsed.verify("pw", "INVITE"));
    }
}
