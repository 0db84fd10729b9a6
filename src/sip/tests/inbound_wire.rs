//! Inbound calls driven by hand-written datagrams: what siphon's own UAC
//! never sends (no SDP, stray BYE/ACK, re-INVITE, a missing ACK, a flood).

use super::inbound::{answer_sdp, challenge_policy, error_count, next_call, next_uas, pair, Pair};
use super::*;
use crate::sip::digest::{self, Answer, Challenge};

/// A hand-driven UDP peer with one dialog's identifiers.
pub(super) struct Wire {
    sock: UdpSocket,
    pub(super) me: SocketAddr,
    uri: String,
    pub(super) call_id: String,
    from_tag: String,
    to_tag: Option<String>,
}

impl Wire {
    pub(super) async fn new(p: &Pair) -> Wire {
        let to = p.callee.local_addr(Transport::Udp).expect("udp");
        let sock = UdpSocket::bind(local()).await.expect("wire socket");
        sock.connect(to).await.expect("connect");
        Wire {
            me: sock.local_addr().expect("addr"),
            sock,
            uri: format!("sip:bob@{to}"),
            call_id: format!("wire-{}", rand::random::<u64>()),
            from_tag: format!("{}", rand::random::<u32>()),
            to_tag: None,
        }
    }

    pub(super) fn request(
        &self,
        method: &str,
        cseq: u32,
        branch: &str,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport;branch=z9hG4bK-{branch}\r\n\
From: <sip:probe@127.0.0.1>;tag={from}\r\nTo: <sip:bob@127.0.0.1>{to_tag}\r\n\
Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContact: <sip:probe@{me}>\r\n\
{extra}Content-Length: {len}\r\n\r\n{body}",
            uri = self.uri,
            me = self.me,
            from = self.from_tag,
            cid = self.call_id,
            len = body.len(),
        )
    }

    pub(super) async fn send(&self, text: &str) {
        self.sock.send(text.as_bytes()).await.expect("send");
    }

    pub(super) async fn recv(&self, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 8192];
        let n = timeout(wait, self.sock.recv(&mut buf)).await.ok()?.ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }

    /// The next message starting with `start`, skipping others.
    pub(super) async fn expect(&self, start: &str) -> String {
        self.expect_within(start, PROMPT).await
    }

    /// `expect`, waiting up to `wait`.
    pub(super) async fn expect_within(&self, start: &str, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.recv(left).await;
            let msg = msg.unwrap_or_else(|| panic!("no {start:?} in time"));
            if msg.starts_with(start) {
                return msg;
            }
        }
    }

    /// The branch of the INVITE with CSeq `cseq`.
    pub(super) fn branch(&self, cseq: u32) -> String {
        format!("{}-{cseq}", self.call_id)
    }

    /// INVITE with an SDP offer.
    pub(super) async fn invite(&self, cseq: u32, extra: &str) {
        let extra = format!("{extra}Content-Type: application/sdp\r\n");
        let text = self.request("INVITE", cseq, &self.branch(cseq), &extra, &offer());
        self.send(&text).await;
    }

    /// ACK: a non-2xx one reuses the INVITE's branch, a 2xx one is new.
    pub(super) async fn ack(&self, cseq: u32, of_2xx: bool) {
        let branch = if of_2xx {
            format!("ack-{}", self.branch(cseq))
        } else {
            self.branch(cseq)
        };
        self.send(&self.request("ACK", cseq, &branch, "", "")).await;
    }

    pub(super) fn learn_to_tag(&mut self, resp: &str) {
        let to = header(resp, "To").expect("To");
        let tag = to.split(";tag=").nth(1).expect("to tag");
        self.to_tag = Some(tag.split(';').next().unwrap_or(tag).trim().to_string());
    }
}

pub(super) fn header(msg: &str, name: &str) -> Option<String> {
    headers(msg, name).into_iter().next()
}

pub(super) fn headers(msg: &str, name: &str) -> Vec<String> {
    msg.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[tokio::test]
async fn invite_without_sdp_offer_is_488() {
    let p = pair(InboundPolicy::default()).await;
    let w = Wire::new(&p).await;
    w.send(&w.request("INVITE", 1, &w.branch(1), "", "")).await;
    let resp = w.expect("SIP/2.0 488").await;
    let warning = header(&resp, "Warning").expect("warning");
    assert!(warning.contains("SDP offer required"), "{warning}");
    w.ack(1, false).await;

    let w = Wire::new(&p).await;
    let text = w.request(
        "INVITE",
        1,
        &w.branch(1),
        "Content-Type: text/plain\r\n",
        "hello",
    );
    w.send(&text).await;
    // A body that is not SDP is refused by its type (RFC 3261 §8.2.3).
    let resp = w.expect("SIP/2.0 415").await;
    assert_eq!(header(&resp, "Accept").as_deref(), Some("application/sdp"));
    assert!(error_count(&p.callee_metrics, "inbound_no_sdp", 1));
    assert!(error_count(&p.callee_metrics, "unsupported_media_type", 1));
}

#[tokio::test]
async fn stray_requests_get_481_or_nothing() {
    let p = pair(InboundPolicy::default()).await;
    let mut w = Wire::new(&p).await;
    w.to_tag = Some("nosuchdialog".into());
    w.send(&w.request("BYE", 2, "bye", "", "")).await;
    w.expect("SIP/2.0 481").await;
    w.ack(1, true).await;
    assert_eq!(w.recv(QUIET).await, None);
    w.invite(3, "").await;
    w.expect("SIP/2.0 481").await;
}

#[tokio::test]
async fn md5_digest_answer_gets_through() {
    let mut p = pair(InboundPolicy {
        trunk_sources: vec![],
        others: challenge_policy(),
    })
    .await;
    let w = Wire::new(&p).await;
    w.invite(1, "").await;
    let resp = w.expect("SIP/2.0 401").await;
    w.ack(1, false).await;
    let offered: Vec<Challenge> = headers(&resp, "WWW-Authenticate")
        .iter()
        .filter_map(|v| Challenge::parse(v))
        .collect();
    let md5 = offered
        .iter()
        .find(|c| c.algorithm == DigestAlgorithm::Md5)
        .expect("MD5 offered");
    let auth = digest::authorization(
        md5,
        &Answer {
            username: "pbx",
            password: "s3cret",
            method: "INVITE",
            uri: &w.uri,
            cnonce: "0a4f113b",
        },
    );
    w.invite(2, &format!("Authorization: {auth}\r\n")).await;
    w.expect("SIP/2.0 100").await;
    let call = next_call(&mut p.calls).await;
    assert_eq!(call.call_id, w.call_id);
    call.handle.reject(486, "busy").await;
    let resp = w.expect("SIP/2.0 486").await;
    let reason = header(&resp, "Reason").expect("reason");
    assert_eq!(reason, "SIP;cause=486;text=\"busy\"");
    w.ack(2, false).await;
}

/// INVITE, 200, ACK: an established dialog on the wire.
async fn established(p: &mut Pair) -> (Wire, IncomingCall) {
    let mut w = Wire::new(p).await;
    w.invite(1, "").await;
    w.expect("SIP/2.0 100").await;
    let mut call = next_call(&mut p.calls).await;
    call.handle.answer(answer_sdp()).await.expect("answer");
    let ok = w.expect("SIP/2.0 200").await;
    assert!(ok.ends_with(&answer_sdp()), "{ok}");
    let contact = header(&ok, "Contact").expect("contact");
    assert!(contact.contains("sip:bob@127.0.0.1:"), "{contact}");
    w.learn_to_tag(&ok);
    w.ack(1, true).await;
    assert_eq!(next_uas(&mut call.events).await, UasEvent::Acked);
    (w, call)
}

#[tokio::test]
async fn reinvites_reach_the_consumer_refused_488_or_answered_200() {
    let mut p = pair(InboundPolicy::default()).await;
    let (w, mut call) = established(&mut p).await;
    w.invite(2, "").await;
    let UasEvent::Reoffer(reoffer) = next_uas(&mut call.events).await else {
        panic!("expected the re-offer");
    };
    assert_eq!(reoffer.method, "INVITE");
    assert!(reoffer
        .sdp
        .as_deref()
        .is_some_and(|s| s.contains("m=audio")));
    reoffer.refuse(488, "not now").await;
    let resp = w.expect("SIP/2.0 488").await;
    assert!(header(&resp, "Warning").is_some_and(|v| v.contains("not now")));
    w.ack(2, false).await;

    w.invite(3, "").await;
    let UasEvent::Reoffer(reoffer) = next_uas(&mut call.events).await else {
        panic!("expected the re-offer");
    };
    reoffer.accept(answer_sdp()).await;
    let ok = w.expect("SIP/2.0 200").await;
    assert!(ok.contains("m=audio"), "{ok}");
    w.ack(3, true).await;
    w.send(&w.request("BYE", 4, "bye4", "", "")).await;
    w.expect("SIP/2.0 200").await;
    assert_eq!(
        next_uas(&mut call.events).await,
        UasEvent::Ended { by_remote: true }
    );
}

#[tokio::test]
async fn missing_ack_retransmits_200_then_byes() {
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let t1 = Duration::from_millis(10);
    let callee = SipEndpoint::start_with_t1(settings(), metrics.clone(), shutdown.clone(), t1)
        .await
        .expect("endpoint");
    let mut p = Pair::around(callee, metrics, shutdown).await;
    let w = Wire::new(&p).await;
    w.invite(1, "").await;
    let mut call = next_call(&mut p.calls).await;
    call.handle.answer(answer_sdp()).await.expect("answer");
    w.expect("SIP/2.0 200").await;
    w.expect("SIP/2.0 200").await;
    let bye = w.expect("BYE ").await;
    assert!(bye.contains(&w.call_id), "{bye}");
    assert_eq!(
        next_uas(&mut call.events).await,
        UasEvent::Ended { by_remote: false }
    );
}

#[tokio::test]
async fn full_queue_is_503_with_retry_after() {
    let p = pair(InboundPolicy::default()).await;
    let mut w = Wire::new(&p).await;
    // Nobody reads the stream: every INVITE waits in the queue.
    for n in 1..=256u32 {
        w.call_id = format!("flood-{n}");
        w.invite(1, "").await;
        w.expect("SIP/2.0 100").await;
    }
    w.call_id = "flood-over".into();
    w.invite(1, "").await;
    let resp = w.expect("SIP/2.0 503").await;
    assert_eq!(header(&resp, "Retry-After").as_deref(), Some("5"));
    assert!(error_count(&p.callee_metrics, "inbound_overload", 1));
}

#[tokio::test]
async fn offer_before_the_ack_is_500_with_retry_after() {
    let mut p = pair(InboundPolicy::default()).await;
    let mut w = Wire::new(&p).await;
    w.invite(1, "").await;
    let mut call = next_call(&mut p.calls).await;
    call.handle.answer(answer_sdp()).await.expect("answer");
    let ok = w.expect("SIP/2.0 200").await;
    w.learn_to_tag(&ok);
    w.invite(2, "").await;
    let resp = w.expect("SIP/2.0 500").await;
    assert!(header(&resp, "Retry-After").is_some(), "{resp}");
    w.ack(2, false).await;
    w.ack(1, true).await;
    assert_eq!(next_uas(&mut call.events).await, UasEvent::Acked);
}

#[tokio::test]
async fn a_session_interval_below_90_s_is_422_with_min_se() {
    let p = pair(InboundPolicy::default()).await;
    let w = Wire::new(&p).await;
    w.invite(1, "Supported: timer\r\nSession-Expires: 30\r\n")
        .await;
    let resp = w.expect("SIP/2.0 422").await;
    assert_eq!(header(&resp, "Min-SE").as_deref(), Some("90"));
}
