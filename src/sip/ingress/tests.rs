use super::*;

const OPTIONS: &str = "OPTIONS sip:siphon@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1\r\n\
From: <sip:probe@127.0.0.1>;tag=a\r\n\
To: <sip:siphon@127.0.0.1>\r\n\
Call-ID: c1\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

fn reason(v: &Verdict) -> &'static str {
    match v {
        Verdict::Accept(..) => "accept",
        Verdict::Refuse { reason, .. } | Verdict::Drop { reason } => reason,
    }
}

fn refused(v: &Verdict) -> bool {
    matches!(v, Verdict::Refuse { .. })
}

#[test]
fn accepts_well_formed_request_and_response() {
    let v = check_message(OPTIONS.as_bytes(), 4096);
    assert!(matches!(&v, Verdict::Accept(m, _) if matches!(**m, SipMessage::Request(_))));
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1\r\n\
From: <sip:a@b>;tag=a\r\nTo: <sip:b@c>;tag=b\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";
    let v = check_message(resp.as_bytes(), 4096);
    assert!(matches!(&v, Verdict::Accept(m, _) if matches!(**m, SipMessage::Response(_))));
}

#[test]
fn refusal_copies_dialog_headers_and_adds_to_tag() {
    let bad = OPTIONS.replace("Content-Length: 0", "Content-Length: x");
    let Verdict::Refuse { reason, response } = check_message(bad.as_bytes(), 4096) else {
        panic!("expected a 400");
    };
    assert_eq!(reason, "bad_content_length");
    let text = String::from_utf8(response).expect("utf8");
    assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
    assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1\r\n"));
    assert!(text.contains("To: <sip:siphon@127.0.0.1>;tag=siphon400\r\n"));
    assert!(text.contains("Call-ID: c1\r\nCSeq: 1 OPTIONS\r\n"));
    // The refusal itself is a valid response.
    assert!(matches!(
        check_message(text.as_bytes(), 4096),
        Verdict::Accept(..)
    ));
}

#[test]
fn classifies_malformed_input() {
    let cases: Vec<(Vec<u8>, &str, bool)> = vec![
        (b"\x00\xff\x13garbage".to_vec(), "truncated", false),
        (OPTIONS.as_bytes()[..60].to_vec(), "truncated", false),
        (
            OPTIONS.replace("Call-ID: c1\r\n", "").into_bytes(),
            "missing_header",
            false,
        ),
        (
            OPTIONS
                .replace("Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1\r\n", "")
                .into_bytes(),
            "missing_header",
            false,
        ),
        (
            OPTIONS
                .replace("OPTIONS sip:siphon@127.0.0.1 SIP/2.0", "HELLO")
                .into_bytes(),
            "bad_request_line",
            true,
        ),
        (
            OPTIONS
                .replace("Content-Length: 0", "Content-Length: 50")
                .into_bytes(),
            "truncated",
            true,
        ),
        (
            OPTIONS
                .replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")
                .into_bytes(),
            "bad_header",
            true,
        ),
        (
            OPTIONS
                .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")
                .into_bytes(),
            "bad_header",
            true,
        ),
        (
            OPTIONS
                .replace("SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1", "nonsense")
                .into_bytes(),
            "bad_header",
            true,
        ),
        (
            OPTIONS
                .replace("OPTIONS sip", "ACK sip")
                .replace("1 OPTIONS", "1 ACK")
                .replace("siphon@127.0.0.1 SIP/2.0", "x SIP/3.0")
                .into_bytes(),
            "bad_version",
            false,
        ),
    ];
    for (bytes, want, is_refused) in cases {
        let v = check_message(&bytes, 4096);
        assert_eq!(reason(&v), want, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(
            refused(&v),
            is_refused,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn oversize_gets_513_when_headers_allow() {
    let big = OPTIONS.replace("Content-Length: 0\r\n\r\n", "Content-Length: 5000\r\n\r\n")
        + &"x".repeat(5000);
    let Verdict::Refuse { reason, response } = check_message(big.as_bytes(), 1024) else {
        panic!("expected a refusal");
    };
    assert_eq!(reason, "oversize");
    assert!(response.starts_with(b"SIP/2.0 513 "));
}

#[test]
fn frames_stream_messages() {
    let two = format!("{OPTIONS}{OPTIONS}");
    assert_eq!(frame(two.as_bytes(), 4096), Frame::Message(OPTIONS.len()));
    assert_eq!(frame(&OPTIONS.as_bytes()[..40], 4096), Frame::Incomplete);
    assert_eq!(
        frame(b"\r\n\r\nINVITE", 4096),
        Frame::Keepalive { len: 4, pong: true }
    );
    assert_eq!(
        frame(b"\r\nX", 4096),
        Frame::Keepalive {
            len: 2,
            pong: false
        }
    );
    let with_body = OPTIONS.replace("Content-Length: 0", "Content-Length: 4") + "ab";
    assert_eq!(frame(with_body.as_bytes(), 4096), Frame::Incomplete);
}

#[test]
fn broken_streams() {
    let no_cl = OPTIONS.replace("Content-Length: 0\r\n", "");
    assert_eq!(
        frame(no_cl.as_bytes(), 4096),
        Frame::Broken {
            reason: "missing_content_length",
            head: Some(no_cl.len())
        }
    );
    let big_cl = OPTIONS.replace("Content-Length: 0", "Content-Length: 99999999999999999999");
    assert!(matches!(
        frame(big_cl.as_bytes(), 4096),
        Frame::Broken {
            reason: "bad_content_length",
            ..
        }
    ));
    let huge = OPTIONS.replace("Content-Length: 0", "Content-Length: 5000");
    assert!(matches!(
        frame(huge.as_bytes(), 4096),
        Frame::Broken {
            reason: "oversize",
            ..
        }
    ));
    assert_eq!(
        frame(&[b'x'; 5000], 4096),
        Frame::Broken {
            reason: "oversize",
            head: None
        }
    );
}

#[test]
fn never_panics_on_noise() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let base = OPTIONS.as_bytes();
    for _ in 0..3000 {
        let mut bytes = base.to_vec();
        for _ in 0..rng.random_range(1..8) {
            let i = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[i] = rng.random(),
                1 => bytes.truncate(i),
                _ => bytes.insert(i, rng.random()),
            }
            if bytes.is_empty() {
                break;
            }
        }
        let _ = check_message(&bytes, 4096);
        let _ = frame(&bytes, 4096);
    }
}

#[test]
fn a_request_without_a_from_tag_is_refused_as_such() {
    // RFC 2543's syntax (RFC 4475 §3.4.1): rsipstack needs the tag.
    let untagged = OPTIONS.replace(
        "From: <sip:probe@127.0.0.1>;tag=a",
        "From: <sip:probe@127.0.0.1>",
    );
    let v = check_message(untagged.as_bytes(), 4096);
    assert!(refused(&v));
    assert_eq!(reason(&v), "no_from_tag");
}
