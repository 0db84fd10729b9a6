//! Building the INVITEs of an outbound call: the first one from an
//! `OutboundInvite`, and the retry answering a digest challenge.

use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::uri::ParamsExt;
use rsipstack::sip::{Request, Response, Uri};

use rsipstack::transport::SipAddr;

use super::challenge;
use super::endpoint::Shared;
use super::stack;
use super::uas_call;
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
    let (callee, transport) =
        target_uri(&req.target).ok_or_else(|| invalid("target", &req.target))?;
    let contact_addr = shared
        .stack
        .public_addr(transport)
        .ok_or(SipError::NoTransport(transport))?;
    let domain = &shared.settings.domain;
    let caller = format!("sip:{}@{domain}", req.from_user);
    let caller = Uri::try_from(caller.as_str()).map_err(|_| invalid("from", &caller))?;
    // A Contact naming its transport is sent as built (rsipstack rewrites
    // others to the socket address, which is not the public one).
    let contact = uas_call::contact_uri(&req.from_user, contact_addr, transport, &callee);
    let contact = Uri::try_from(contact.as_str()).map_err(|_| invalid("contact", &contact))?;
    let destination = tls_destination(&callee, transport);
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
        headers: Some(headers(req)),
        destination,
        ..Default::default()
    })
}

/// Allow and Supported, and the request's own extra headers.
fn headers(req: &OutboundInvite) -> Vec<rsipstack::sip::Header> {
    let mut headers = stack::capabilities();
    let extra = req.headers.iter();
    headers.extend(extra.map(|(n, v)| rsipstack::sip::Header::Other(n.clone(), v.clone())));
    headers
}

/// A `sip:` or `sips:` URI and the transport it asks for: `sips:` and
/// `transport=tls` mean TLS (RFC 3261 §26.2.2), a `sips:` URI with another
/// transport is refused. rsipstack's URI parser is lenient, so the scheme
/// and whitespace are checked here.
pub(super) fn target_uri(text: &str) -> Option<(Uri, Transport)> {
    let scheme = text.split_once(':')?.0.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips") || text.contains(char::is_whitespace) {
        return None;
    }
    let uri = Uri::try_from(text).ok()?;
    let transport = match (scheme.as_str(), uri.transport()) {
        ("sips", None | Some(rsipstack::sip::Transport::Tls)) => Transport::Tls,
        ("sips", Some(_)) => return None,
        (_, None | Some(rsipstack::sip::Transport::Udp)) => Transport::Udp,
        (_, Some(rsipstack::sip::Transport::Tcp)) => Transport::Tcp,
        (_, Some(rsipstack::sip::Transport::Tls)) => Transport::Tls,
        _ => return None,
    };
    Some((uri, transport))
}

/// How long opening a TCP connection to a peer may take: rsipstack sets no
/// limit (the kernel's is about two minutes), and the call waits on it.
const TCP_CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Open the TCP connection to `uri` before its INVITE: rsipstack treats a
/// refused connection like a lost datagram and reports it only when Timer B
/// fires (32 s), while the caller should hear 503 at once.
pub(super) async fn connect_tcp_first(
    layer: &rsipstack::transport::TransportLayer,
    uri: &Uri,
) -> Result<(), SipError> {
    let mut target = SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tcp),
        addr: uri.host_with_port.clone(),
    };
    if target.addr.port.is_none() {
        target.addr.port = Some(5060.into());
    }
    let why = match tokio::time::timeout(TCP_CONNECT_WAIT, layer.lookup(&target, None)).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => TcpFailure::Stack(Box::new(e)),
        Err(_) => TcpFailure::NoAnswer(TCP_CONNECT_WAIT),
    };
    tracing::warn!(%target, %why, "TCP peer not reached");
    Err(SipError::Unreachable(TcpPeerError {
        host: target.addr.to_string(),
        why,
    }))
}

/// A TCP peer not reached before an INVITE went out.
#[derive(Debug, thiserror::Error)]
#[error("TCP connection to {host} failed: {why}")]
pub struct TcpPeerError {
    /// The peer's host and port.
    pub host: String,
    /// Why the connection failed.
    #[source]
    pub why: TcpFailure,
}

/// Why a TCP connection to a SIP peer failed.
#[derive(Debug, thiserror::Error)]
pub enum TcpFailure {
    /// The transport's error (boxed: it is large, and rare).
    #[error(transparent)]
    Stack(Box<rsipstack::Error>),
    /// Nothing answered within the wait.
    #[error("no answer within {} s", .0.as_secs())]
    NoAnswer(std::time::Duration),
}

/// Where to send a TLS request: rsipstack derives the transport from the
/// `transport=` parameter only, so a `sips:` URI without one would go out
/// over UDP unless the destination says TLS.
pub(super) fn tls_destination(uri: &Uri, transport: Transport) -> Option<SipAddr> {
    (transport == Transport::Tls).then(|| SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tls),
        addr: uri.host_with_port.clone(),
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

    #[test]
    fn an_unreachable_peer_reads_as_before() {
        let late = SipError::Unreachable(TcpPeerError {
            host: "pbx.test:5060".into(),
            why: TcpFailure::NoAnswer(TCP_CONNECT_WAIT),
        });
        assert_eq!(
            late.to_string(),
            "TCP connection to pbx.test:5060 failed: no answer within 5 s"
        );
    }
}
