//! Seed inputs for every target, built from the captured SDPs in
//! `src/sdp/fixtures` and from the same libraries a peer would use (STUN
//! from rtc-stun, DTLS hellos from dimpl, SRTP from siphon's own contexts),
//! so the corpus follows the code instead of being a pile of copied blobs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_srtp::crypto::providers::RingCrypto;
use rtc_stun::attributes::{
    AttrType, RawAttribute, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc_stun::textattrs::TextAttribute;

use super::media::{records, BROWSER_UFRAG, GW_PWD, GW_UFRAG};
use crate::signaling::auth;
use crate::srtp::{SrtpContext, SrtpProfile};
use crate::webrtc::Identity;

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

type Seeds = Vec<(String, Vec<u8>)>;

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

/// A binding request from a controlling browser, signed with `pwd`.
pub(crate) fn binding_request(username: &str, pwd: &str) -> Option<Vec<u8>> {
    let raw = |typ: AttrType, value: &[u8]| RawAttribute {
        typ,
        length: value.len() as u16,
        value: value.to_vec(),
    };
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(raw(ATTR_PRIORITY, &1_853_817_087u32.to_be_bytes())),
        Box::new(raw(ATTR_ICE_CONTROLLING, &42u64.to_be_bytes())),
        Box::new(raw(ATTR_USE_CANDIDATE, &[])),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_owned(),
            &RingCrypto,
        )),
        Box::new(FINGERPRINT),
    ];
    let mut m = Message::new();
    m.build(&setters).ok()?;
    Some(m.raw)
}

/// The first flight of a DTLS client (1.2 or 1.3), as a browser sends it.
fn client_hello(dtls13: bool) -> Vec<Vec<u8>> {
    let Ok(identity) = Identity::generate() else {
        return Vec::new();
    };
    let now = Instant::now();
    let config = Arc::new(dimpl::Config::default());
    let cert = identity.dtls_certificate();
    let mut dtls = match dtls13 {
        true => dimpl::Dtls::new_13(config, cert, now),
        false => dimpl::Dtls::new_12(config, cert, now),
    };
    dtls.set_active(true);
    let _ = dtls.handle_timeout(now);
    let mut out = vec![0u8; 4096];
    let mut flight = Vec::new();
    while let dimpl::Output::Packet(p) = dtls.poll_output(&mut out) {
        flight.push(p.to_vec());
    }
    flight
}

fn webrtc_seeds() -> Seeds {
    let check = binding_request(&format!("{GW_UFRAG}:{BROWSER_UFRAG}"), GW_PWD).unwrap_or_default();
    let mut out = Vec::new();
    for (name, dtls13) in [("hello12", false), ("hello13", true)] {
        let flight = client_hello(dtls13);
        let mut datagrams: Vec<&[u8]> = vec![&check];
        datagrams.extend(flight.iter().map(Vec::as_slice));
        for (role, flag) in [("server", 0u8), ("client", 1)] {
            let mut seed = vec![flag];
            seed.extend(records(&datagrams));
            out.push((format!("{name}_{role}"), seed));
        }
    }
    let media: [&[u8]; 2] = [&rtp_packet(), &sr_sdes()];
    out.push(("rtp_rtcp".into(), [&[0u8][..], &records(&media)].concat()));
    out
}

fn rtp_packet() -> Vec<u8> {
    let mut p = vec![0x80, 111, 0, 7, 0, 0, 3, 0xc0, 0, 0, 0xde, 0xad];
    p.extend_from_slice(&[0xfc; 40]);
    p
}

/// An SR with one report block, then an SDES with a CNAME (RFC 3550 §6.4.1, §6.5).
fn sr_sdes() -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12, 0, 0, 0x11, 0x11];
    p.extend_from_slice(&[0; 20]); // NTP, RTP timestamp, counts
    p.extend_from_slice(&[0, 0, 0x22, 0x22]); // report block: source
    p.extend_from_slice(&[0; 20]);
    p.extend_from_slice(&[
        0x81, 202, 0, 3, 0, 0, 0x11, 0x11, 1, 4, b'a', b'b', b'c', b'd', 0, 0,
    ]);
    p
}

/// An RR without blocks, a PLI and a BYE.
fn rr_bye() -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1, 0, 0, 0x11, 0x11];
    p.extend_from_slice(&[0x81, 206, 0, 2, 0, 0, 0x11, 0x11, 0, 0, 0x22, 0x22]);
    p.extend_from_slice(&[0x81, 203, 0, 1, 0, 0, 0x11, 0x11]);
    p
}

fn srtp_seeds() -> Seeds {
    let mut out = Vec::new();
    for (pick, profile) in [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm]
        .into_iter()
        .enumerate()
    {
        let pick = if pick == 0 { 0u8 } else { 2 };
        let key = vec![0x5a; profile.key_len() + profile.salt_len()];
        let Ok(mut tx) = SrtpContext::new(profile, &key, &RingCrypto) else {
            continue;
        };
        for (kind, plain) in [("rtp", rtp_packet()), ("rtcp", sr_sdes())] {
            let mut buf = plain.clone();
            buf.resize(plain.len() + 64, 0);
            let sent = match kind {
                "rtp" => tx.protect_rtp(&mut buf, plain.len()),
                _ => tx.protect_rtcp(&mut buf, plain.len()),
            };
            if let Ok(n) = sent {
                out.push((format!("{kind}_{pick}"), [&[pick][..], &buf[..n]].concat()));
            }
        }
        out.push((
            format!("plain_{pick}"),
            [&[pick][..], &rtp_packet()].concat(),
        ));
    }
    out
}
