use super::*;

#[test]
fn rfc2617_example_with_qop_auth() {
    // RFC 2617 §3.5.
    let r = compute_response(
        DigestAlgorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        Some(("00000001", "0a4f113b")),
    );
    assert_eq!(r, "6629fae49393a05397450978507c4ef1");
}

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc7616(alg: DigestAlgorithm) -> String {
    // RFC 7616 §3.9.1.
    compute_response(
        alg,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "GET",
        "/dir/index.html",
        RFC7616_NONCE,
        Some(("00000001", RFC7616_CNONCE)),
    )
}

#[test]
fn rfc7616_md5_and_sha256() {
    assert_eq!(
        rfc7616(DigestAlgorithm::Md5),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    assert_eq!(
        rfc7616(DigestAlgorithm::Sha256),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn parses_pbx_style_challenges() {
    let ch = Challenge::parse(
        r#"Digest realm="asterisk", nonce="1a2b", qop="auth,auth-int", algorithm=SHA-256, opaque="o""#,
    )
    .expect("challenge");
    assert_eq!(ch.realm, "asterisk");
    assert_eq!(ch.nonce, "1a2b");
    assert_eq!(ch.algorithm, DigestAlgorithm::Sha256);
    assert!(ch.qop_auth);
    assert_eq!(ch.opaque.as_deref(), Some("o"));

    let ch = Challenge::parse(r#"Digest realm="a,b", nonce="n""#).expect("challenge");
    assert_eq!(ch.realm, "a,b");
    assert_eq!(ch.algorithm, DigestAlgorithm::Md5);
    assert!(!ch.qop_auth);
}

#[test]
fn rejects_unusable_challenges() {
    assert!(Challenge::parse("Basic realm=\"x\"").is_none());
    assert!(Challenge::parse("Digest nonce=\"n\"").is_none());
    assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512").is_none());
    assert!(Challenge::parse("").is_none());
    assert!(Challenge::parse("Digest \"unterminated").is_none());
}

#[test]
fn authorization_round_trips_through_server_check() {
    for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        for qop in [true, false] {
            let ch = Challenge {
                realm: "siphon".into(),
                nonce: "abc".into(),
                opaque: None,
                algorithm: alg,
                qop_auth: qop,
            };
            let parsed = Challenge::parse(&ch.to_header_value()).expect("own challenge");
            assert_eq!(parsed, ch);
            let value = authorization(
                &ch,
                &Answer {
                    username: "alice",
                    password: "pw",
                    method: "INVITE",
                    uri: "sip:1000@127.0.0.1:5060;transport=tcp",
                    cnonce: "c1",
                },
            );
            let creds = Credentials::parse(&value).expect("credentials");
            assert_eq!(creds.algorithm, alg);
            assert_eq!(creds.qop.is_some(), qop);
            assert!(creds.verify("pw", "INVITE"));
            assert!(!creds.verify("wrong", "INVITE"));
            assert!(!creds.verify("pw", "BYE"));
        }
    }
}
