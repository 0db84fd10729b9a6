//! Seed inputs for every target, built from the captured SDPs in
//! `src/sdp/fixtures` and from the same libraries a peer would use (STUN
//! from rtc-stun, DTLS hellos from dimpl, SRTP from siphon's own contexts),
//! so the corpus follows the code instead of being a pile of copied blobs.

use std::path::Path;
use std::time::Duration;

use super::media_seeds::{rr_bye, sr_sdes, srtp_seeds, webrtc_seeds};
use crate::signaling::auth;

/// Every target, named as its file under `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 13] = [
    "sip_datagram",
    "sip_stream",
    "sip_challenge",
    "digest",
    "sdp_webrtc_offer",
    "sdp_sip_answer",
    "sdp_sip_offer",
    "sdp_webrtc_answer",
    "signaling_json",
    "jwt",
    "webrtc_receive",
    "srtp_unprotect",
    "rtcp_translate",
];

const SDPS: [(&str, &str); 12] = [
    (
        "chrome_offer",
        include_str!("../sdp/fixtures/chrome_offer.sdp"),
    ),
    (
        "firefox_offer",
        include_str!("../sdp/fixtures/firefox_offer.sdp"),
    ),
    (
        "safari_offer",
        include_str!("../sdp/fixtures/safari_offer.sdp"),
    ),
    (
        "chrome_answer",
        include_str!("../sdp/fixtures/chrome_answer.sdp"),
    ),
    (
        "firefox_answer",
        include_str!("../sdp/fixtures/firefox_answer.sdp"),
    ),
    (
        "asterisk_offer",
        include_str!("../sdp/fixtures/asterisk_offer.sdp"),
    ),
    (
        "asterisk_answer",
        include_str!("../sdp/fixtures/asterisk_answer.sdp"),
    ),
    (
        "freeswitch_offer",
        include_str!("../sdp/fixtures/freeswitch_offer.sdp"),
    ),
    (
        "freeswitch_answer",
        include_str!("../sdp/fixtures/freeswitch_answer.sdp"),
    ),
    (
        "polycom_offer",
        include_str!("../sdp/fixtures/polycom_offer.sdp"),
    ),
    (
        "yealink_answer",
        include_str!("../sdp/fixtures/yealink_answer.sdp"),
    ),
    ("srtp_offer", include_str!("../sdp/fixtures/srtp_offer.sdp")),
];

pub(super) type Seeds = Vec<(String, Vec<u8>)>;

/// The seeds of one target (empty for an unknown name).
pub fn seeds(target: &str) -> Seeds {
    match target {
        "sip_datagram" | "sip_stream" => sip_seeds(target == "sip_stream"),
        "sip_challenge" => named(&[
            ("401", &challenge_response(401)),
            ("407", &challenge_response(407)),
        ]),
        "digest" => named(&DIGEST.map(|(n, v)| (n, v.as_bytes()))),
        t if t.starts_with("sdp_") => sdp_seeds(),
        "signaling_json" => named(&SIGNALING.map(|(n, v)| (n, v.as_bytes()))),
        "jwt" => jwt_seeds(),
        "webrtc_receive" => webrtc_seeds(),
        "srtp_unprotect" => srtp_seeds(),
        "rtcp_translate" => named(&[("sr_sdes", &sr_sdes()), ("rr_bye", &rr_bye())]),
        _ => Vec::new(),
    }
}

/// Writes every target's seeds to `dir/<target>/<name>`.
pub fn write_seeds(dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for target in TARGETS {
        let sub = dir.join(target);
        std::fs::create_dir_all(&sub)?;
        for (name, data) in seeds(target) {
            std::fs::write(sub.join(name), data)?;
            written += 1;
        }
    }
    Ok(written)
}

fn named(items: &[(&str, &[u8])]) -> Seeds {
    items
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect()
}

fn sdp_seeds() -> Seeds {
    let lf = SDPS
        .iter()
        .map(|(n, s)| (format!("{n}_lf"), s.as_bytes().to_vec()));
    let crlf = SDPS
        .iter()
        .map(|(n, s)| (n.to_string(), s.replace('\n', "\r\n").into_bytes()));
    lf.chain(crlf).collect()
}

fn request(start: &str, method: &str, extra: &str, body: &str) -> String {
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-seed;rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Pbx\" <sip:pbx@192.0.2.7>;tag=p1\r\n\
         To: <sip:1001@192.0.2.5>\r\nCall-ID: seed-1@192.0.2.7\r\nCSeq: 1 {method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn sip_messages() -> Vec<(&'static str, String)> {
    let sdp = SDPS[5].1.replace('\n', "\r\n");
    let invite = request(
        "INVITE sip:1001@192.0.2.5:5060 SIP/2.0",
        "INVITE",
        "Contact: <sip:pbx@192.0.2.7:5060>\r\nContent-Type: application/sdp\r\n",
        &sdp,
    );
    let compact = "OPTIONS sip:siphon@192.0.2.5 SIP/2.0\r\nv: SIP/2.0/TCP 192.0.2.7;branch=z9hG4bK-c\r\n\
        f: <sip:a@192.0.2.7>;tag=1\r\nt: <sip:siphon@192.0.2.5>\r\ni: compact\r\nCSeq: 2 OPTIONS\r\nl: 0\r\n\r\n";
    let info_body = "Signal=5\r\nDuration=160\r\n";
    vec![
        ("invite", invite),
        (
            "options",
            request("OPTIONS sip:siphon@192.0.2.5 SIP/2.0", "OPTIONS", "", ""),
        ),
        (
            "bye",
            request("BYE sip:1001@192.0.2.5 SIP/2.0", "BYE", "", ""),
        ),
        (
            "cancel",
            request("CANCEL sip:1001@192.0.2.5 SIP/2.0", "CANCEL", "", ""),
        ),
        (
            "info",
            request(
                "INFO sip:1001@192.0.2.5 SIP/2.0",
                "INFO",
                "Content-Type: application/dtmf-relay\r\n",
                info_body,
            ),
        ),
        ("compact", compact.to_owned()),
        (
            "ok",
            String::from_utf8_lossy(&challenge_response(200)).into_owned(),
        ),
        (
            "unauthorized",
            String::from_utf8_lossy(&challenge_response(401)).into_owned(),
        ),
    ]
}

fn sip_seeds(stream: bool) -> Seeds {
    let msgs = sip_messages();
    let mut out: Seeds = msgs
        .iter()
        .map(|(n, m)| (n.to_string(), m.clone().into_bytes()))
        .collect();
    if stream {
        let all: String = msgs
            .iter()
            .map(|(_, m)| format!("\r\n\r\n{m}\r\n"))
            .collect();
        out.push(("pipelined".into(), all.into_bytes()));
    }
    out
}

fn challenge_response(code: u16) -> Vec<u8> {
    let (reason, header) = match code {
        401 => ("Unauthorized", "WWW-Authenticate: "),
        407 => ("Proxy Authentication Required", "Proxy-Authenticate: "),
        _ => ("OK", "Expires: 300\r\nX-Seed: "),
    };
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK-fuzz\r\n\
         From: <sip:alice@pbx.example.com>;tag=f1\r\nTo: <sip:alice@pbx.example.com>;tag=t9\r\n\
         Call-ID: fuzz-register\r\nCSeq: 1 REGISTER\r\n{header}{}\r\nContent-Length: 0\r\n\r\n",
        DIGEST[1].1
    )
    .into_bytes()
}

const DIGEST: [(&str, &str); 4] = [
    (
        "md5",
        r#"Digest realm="asterisk", nonce="1a2b3c", algorithm=MD5"#,
    ),
    (
        "sha256_qop",
        r#"Digest realm="pbx.example.com", nonce="5e7f", opaque="o1", algorithm=SHA-256, qop="auth,auth-int""#,
    ),
    (
        "authorization",
        r#"Digest username="1001", realm="siphon", nonce="abc", uri="sip:echo@siphon", response="6629fae49393a05397450978507c4ef1", algorithm=MD5"#,
    ),
    (
        "authorization_qop",
        r#"Digest username="1001", realm="siphon", nonce="abc", uri="sip:echo@siphon", response="00", qop=auth, nc=00000001, cnonce="0a4f113b""#,
    ),
];

const SIGNALING: [(&str, &str); 10] = [
    ("hello", r#"{"type":"hello","token":"abc.def.ghi"}"#),
    (
        "call",
        r#"{"type":"call","call_id":"c1","to":"1000","sdp":"v=0\r\n"}"#,
    ),
    (
        "accept",
        r#"{"type":"accept","call_id":"c1","sdp":"v=0\r\n"}"#,
    ),
    ("reject", r#"{"type":"reject","call_id":"c1","code":486}"#),
    (
        "candidate",
        r#"{"type":"candidate","call_id":"c1","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
    ),
    (
        "offer",
        r#"{"type":"offer","call_id":"c1","sdp":"v=0\r\n"}"#,
    ),
    (
        "register",
        r#"{"type":"register","extension":"1001","password":"pw","expires":120}"#,
    ),
    (
        "dtmf",
        r#"{"type":"dtmf","call_id":"c1","digits":"12#","duration":100}"#,
    ),
    ("resume", r#"{"type":"resume","call_id":"c1"}"#),
    ("hangup", r#"{"type":"hangup","call_id":"c1"}"#),
];

fn jwt_seeds() -> Seeds {
    let now = 1_700_000_000;
    let valid = auth::mint("alice", Duration::from_secs(3600), super::JWT_SECRET, now);
    let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjo5fQ.";
    let mut out = vec![("alg_none".to_owned(), none.as_bytes().to_vec())];
    if let Ok(token) = valid {
        out.push(("valid".to_owned(), token.into_bytes()));
    }
    out
}
