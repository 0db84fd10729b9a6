use super::*;
use crate::sip::digest;
use rsipstack::sip::SipMessage;

fn response(status: &str, extra: &str) -> Response {
    let text = format!(
        "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
From: <sip:1001@pbx>;tag=a\r\nTo: <sip:1001@pbx>;tag=b\r\nCall-ID: c1\r\n\
CSeq: 2 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text.as_bytes()) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn ours() -> Uri {
    Uri::try_from("sip:1001@127.0.0.1:5070;transport=udp").expect("uri")
}

#[test]
fn granted_is_our_bindings_expires_among_others() {
    let resp = response(
        "200 OK",
        "Contact: <sip:1001@192.0.2.9:5060>;expires=3600, \
<sip:1001@127.0.0.1:5070;transport=UDP;ob>;expires=120\r\nExpires: 900\r\n",
    );
    assert_eq!(granted(&resp, &ours(), 300), 120);
}

#[test]
fn granted_falls_back_to_expires_header_then_request() {
    let other = "Contact: <sip:1001@192.0.2.9:5060>;expires=3600\r\n";
    let resp = response("200 OK", &format!("{other}Expires: 900\r\n"));
    assert_eq!(granted(&resp, &ours(), 300), 900);
    assert_eq!(granted(&response("200 OK", other), &ours(), 300), 300);
}

#[test]
fn binding_match_tells_transports_and_ports_apart() {
    let tcp = Uri::try_from("sip:1001@127.0.0.1:5070;transport=tcp").expect("uri");
    let port = Uri::try_from("sip:1001@127.0.0.1:5071;transport=udp").expect("uri");
    let plain = Uri::try_from("sip:1001@127.0.0.1:5070").expect("uri");
    assert!(!same_binding(&tcp, &ours()));
    assert!(!same_binding(&port, &ours()));
    assert!(same_binding(&plain, &ours()));
}

#[test]
fn too_brief_carries_min_expires() {
    let resp = response("423 Interval Too Brief", "Min-Expires: 600\r\n");
    assert_eq!(
        reply(&resp, &ours(), 300),
        Reply::TooBrief {
            min_expires: Some(600)
        }
    );
}

#[test]
fn failures_carry_code_reason_and_retry_after() {
    let resp = response(
        "503 Maintenance",
        "Retry-After: 120 (back soon);duration=60\r\n",
    );
    assert_eq!(
        reply(&resp, &ours(), 300),
        Reply::Failed {
            code: 503,
            reason: "Maintenance".into(),
            retry_after: Some(120)
        }
    );
}

fn target() -> Target {
    Target {
        registrar: Uri::try_from("sip:pbx.test:5070").expect("uri"),
        aor: Uri::try_from("sip:1001@pbx.test").expect("uri"),
        contact: ours(),
        contact_text: ours().to_string(),
        via: SipAddr {
            r#type: Some(rsipstack::sip::Transport::Udp),
            addr: "127.0.0.1:5070"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
                .into(),
        },
        destination: None,
        call_id: "c1".into(),
        from_tag: "a".into(),
        username: "auth-1001".into(),
        password: "pw".into(),
    }
}

fn sent() -> Request {
    let text =
        "REGISTER sip:pbx.test:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
From: <sip:1001@pbx.test>;tag=a\r\nTo: <sip:1001@pbx.test>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n\
Content-Length: 0\r\n\r\n";
    match SipMessage::try_from(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn challenges_are_answered_for_the_auth_user_and_register() {
    for (status, header, proxy) in [
        ("401 Unauthorized", "WWW-Authenticate", false),
        (
            "407 Proxy Authentication Required",
            "Proxy-Authenticate",
            true,
        ),
    ] {
        let resp = response(
            status,
            &format!(
                "{header}: Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth,auth-int\", algorithm=SHA-256\r\n"
            ),
        );
        let auth = target().authorization(&sent(), &resp).expect("answer");
        let value = match (&auth, proxy) {
            (Header::Authorization(h), false) => h.value().to_string(),
            (Header::ProxyAuthorization(h), true) => h.value().to_string(),
            other => panic!("{other:?}"),
        };
        let creds = digest::Credentials::parse(&value).expect("digest");
        assert_eq!(creds.username, "auth-1001");
        assert_eq!(creds.uri, sent().uri.to_string());
        assert_eq!(creds.algorithm, digest::DigestAlgorithm::Sha256);
        assert!(creds.verify("pw", "REGISTER"));
    }
}

#[test]
fn unusable_challenge_is_not_answered() {
    let resp = response(
        "401 Unauthorized",
        "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n1\", algorithm=SHA-512-256\r\n",
    );
    assert!(target().authorization(&sent(), &resp).is_none());
}

#[test]
fn registrar_must_be_a_sip_or_sips_uri() {
    let (_, t) = parse_registrar("sip:pbx.test:5070;transport=tcp").expect("tcp");
    assert_eq!(t, Transport::Tcp);
    let (_, t) = parse_registrar("SIP:pbx.test").expect("udp");
    assert_eq!(t, Transport::Udp);
    let (_, t) = parse_registrar("sip:pbx.test;transport=tls").expect("tls");
    assert_eq!(t, Transport::Tls);
    let (_, t) = parse_registrar("sips:pbx.test").expect("sips");
    assert_eq!(t, Transport::Tls);
    for bad in [
        "sips:pbx.test;transport=tcp",
        "sipx:pbx.test",
        "pbx.test",
        "sip:a b",
    ] {
        assert!(parse_registrar(bad).is_err(), "{bad}");
    }
}
