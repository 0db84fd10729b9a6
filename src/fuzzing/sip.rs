//! SIP entry points: the input guard on datagrams and on a TCP byte stream,
//! and the digest challenge and credentials parsers.

use rsipstack::sip::SipMessage;

use crate::sip::digest::{Answer, Challenge, Credentials};
use crate::sip::ingress::{self, Frame};

/// `sip.max_message_bytes` default.
const MAX: usize = 65_535;

/// One UDP datagram through the input guard, as `guard.rs` hands it over.
pub fn sip_datagram(data: &[u8]) {
    let _ = ingress::check_message(data, MAX);
}

/// A TCP byte stream split into messages and checked, as `guard.rs` does,
/// including its `split_to` on the framed lengths (which must fit).
pub fn sip_stream(data: &[u8]) {
    let mut buf = data;
    loop {
        match ingress::frame(buf, MAX) {
            Frame::Incomplete => return,
            Frame::Keepalive { len, .. } => buf = &buf[len..],
            Frame::Message(len) => {
                let _ = ingress::check_message(&buf[..len], MAX);
                buf = &buf[len..];
            }
            Frame::Broken { reason, head } => {
                if let Some(h) = head {
                    let _ = ingress::refuse(&buf[..h], reason, 400);
                }
                return;
            }
        }
    }
}

/// A `WWW-Authenticate` or `Authorization` header value: parsed as both,
/// and answered or verified as siphon does with what parses.
pub fn digest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(ch) = Challenge::parse(&text) {
        let _ = crate::sip::digest::authorization(&ch, &ANSWER);
        let _ = ch.to_header_value();
    }
    if let Some(c) = Credentials::parse(&text) {
        let _ = c.verify("secret", "INVITE");
    }
}

const ANSWER: Answer<'static> = Answer {
    username: "alice",
    password: "secret",
    method: "REGISTER",
    uri: "sip:pbx.example.com",
    cnonce: "0a4f113b",
};

/// A whole 401/407 response to a REGISTER siphon sent, through the guard
/// and then the challenge answerer.
pub fn sip_challenge(data: &[u8]) {
    let Ok(SipMessage::Request(sent)) = SipMessage::try_from(REGISTER) else {
        return;
    };
    if let ingress::Verdict::Accept(msg, _) = ingress::check_message(data, MAX) {
        if let SipMessage::Response(resp) = *msg {
            let _ = crate::sip::challenge::answer(&sent, &resp, "REGISTER", "alice", "secret");
        }
    }
}

/// The request the challenge answers (as the registration sends it).
const REGISTER: &str = "REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK-fuzz\r\n\
From: <sip:alice@pbx.example.com>;tag=f1\r\n\
To: <sip:alice@pbx.example.com>\r\n\
Call-ID: fuzz-register\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:alice@192.0.2.5:5060>\r\n\
Expires: 300\r\n\
Content-Length: 0\r\n\r\n";
