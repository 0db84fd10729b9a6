use super::*;

fn self_signed(names: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).expect("cert");
    (
        c.cert.pem().into_bytes(),
        c.signing_key.serialize_pem().into_bytes(),
    )
}

#[test]
fn plain_sip_is_not_a_tls_handshake() {
    assert!(looks_like_tls(0x16));
    for text in ["OPTIONS sip:a@b SIP/2.0", "INVITE", "\r\n\r\n"] {
        assert!(!looks_like_tls(text.as_bytes()[0]), "{text:?}");
    }
}

#[test]
fn server_config_takes_a_chain_and_its_key() {
    let (cert, key) = self_signed(&["127.0.0.1"]);
    let (other_cert, _) = self_signed(&["127.0.0.1"]);
    let mut bundle = cert.clone();
    bundle.extend_from_slice(&other_cert);
    let t = SipTls {
        cert: bundle,
        key,
        ..Default::default()
    };
    assert!(server_config(&t).is_ok());
}

#[test]
fn server_config_names_what_is_missing() {
    let (cert, key) = self_signed(&["a.test"]);
    let no_key = SipTls {
        cert: cert.clone(),
        key: cert.clone(),
        ..Default::default()
    };
    let err = server_config(&no_key).expect_err("a cert is not a key");
    assert!(err.to_string().starts_with("private key:"), "{err}");
    let no_cert = SipTls {
        cert: key.clone(),
        key,
        ..Default::default()
    };
    let err = server_config(&no_cert).expect_err("a key is not a cert");
    assert!(err.to_string().starts_with("certificate:"), "{err}");
}

#[test]
fn client_config_trusts_the_configured_ca_and_presents_the_client_cert() {
    let (ca, _) = self_signed(&["ca.test"]);
    let (cert, key) = self_signed(&["siphon.test"]);
    let t = SipTls {
        ca: Some(ca.clone()),
        client: Some((cert.clone(), key.clone())),
        ..Default::default()
    };
    let c = client_config(&t);
    assert_eq!(c.ca_certs, Some(ca));
    assert_eq!(c.client_cert, Some(cert));
    assert_eq!(c.client_key, Some(key));
}

#[test]
fn system_roots_round_trip_through_pem() {
    let (cert, _) = self_signed(&["a.test"]);
    let der = parse_certs(&cert).expect("pem");
    let pem = to_pem(&der);
    assert_eq!(parse_certs(&pem).expect("round trip"), der);
}

#[test]
fn handshake_failures_have_reasons() {
    let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    assert_eq!(
        handshake_reason(&io(rustls::Error::NoCertificatesPresented)),
        "no_client_certificate"
    );
    assert_eq!(
        handshake_reason(&io(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))),
        "bad_client_certificate"
    );
    assert_eq!(
        handshake_reason(&std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        "io"
    );
}

#[test]
fn a_refused_certificate_is_named_in_the_reason() {
    let e = rsipstack::Error::IoError(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
    ));
    let why = certificate_problem(&e).expect("a certificate problem");
    assert!(why.to_ascii_lowercase().contains("expired"), "{why}");
    let text = rsipstack::Error::Error("invalid peer certificate: UnknownIssuer".into());
    assert!(certificate_problem(&text).is_some_and(|w| w.contains("UnknownIssuer")));
    let refused = rsipstack::Error::Error("connection refused".into());
    assert_eq!(certificate_problem(&refused), None);
}

#[test]
fn client_keys_rsipstack_cannot_read_are_told_apart() {
    let (_, pkcs8) = self_signed(&["a.test"]);
    assert!(is_client_key(&pkcs8));
    let sec1 = b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    assert!(!is_client_key(sec1));
    assert!(!is_client_key(b"not a key"));
}

#[test]
fn tls_errors_read_as_before_and_keep_their_source() {
    let (cert, key) = self_signed(&["a.test"]);
    let no_key = SipTls {
        cert: cert.clone(),
        key: cert.clone(),
        ..Default::default()
    };
    let err = server_config(&no_key).expect_err("a cert is not a key");
    assert_eq!(err.to_string(), "private key: no PRIVATE KEY block found");
    let bad_ca = SipTls {
        cert,
        key,
        client_ca: Some(b"no pem here".to_vec()),
        ..Default::default()
    };
    let err = server_config(&bad_ca).expect_err("no CA");
    assert_eq!(err.to_string(), "client CA: no CERTIFICATE block found");
    assert!(std::error::Error::source(&err).is_some());
    let peer = TlsPeerError::Failed {
        host: "pbx.test:5061".into(),
        source: Box::new(rsipstack::Error::Error("connection refused".into())),
    };
    assert_eq!(
        peer.to_string(),
        "TLS connection to pbx.test:5061 failed: Error: connection refused"
    );
    assert_eq!(peer.outcome(), "failed");
}
