//! RFC 4028 session timers on the wire, both call directions, on tokio's
//! paused clock: the refreshes and expiries are minutes apart in real time.

use tokio::time::Instant;

use super::inbound::{answer_sdp, next_call, next_uas, pair};
use super::inbound_wire::{header, headers, Wire};
use super::*;

/// Longest wait for a refresh or an expiry (the shortest interval is 90 s).
const MINUTES: Duration = Duration::from_secs(200);

/// A response to `req` (a request siphon sent), echoing its dialog headers.
fn reply(req: &str, status: &str, extra: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for v in headers(req, name) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let to = header(req, "To").expect("To");
    let to = if to.contains("tag=") {
        to
    } else {
        format!("{to};tag=wire")
    };
    out.push_str(&format!("To: {to}\r\n{extra}"));
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

fn secs_since(t: Instant) -> u64 {
    t.elapsed().as_secs()
}

/// An inbound call with the caller's session-timer headers, answered and
/// ACKed.
async fn inbound(p: &mut super::inbound::Pair, extra: &str) -> (Wire, IncomingCall, String) {
    let mut w = Wire::new(p).await;
    w.invite(1, extra).await;
    let mut call = next_call(&mut p.calls).await;
    call.handle.answer(answer_sdp()).await.expect("answer");
    let ok = w.expect("SIP/2.0 200").await;
    w.learn_to_tag(&ok);
    w.ack(1, true).await;
    assert_eq!(next_uas(&mut call.events).await, UasEvent::Acked);
    (w, call, ok)
}

#[tokio::test(start_paused = true)]
async fn the_caller_refreshes_and_a_missed_refresh_ends_the_call() {
    let mut p = pair(InboundPolicy::default()).await;
    let extra = "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    let (w, mut call, ok) = inbound(&mut p, extra).await;
    assert_eq!(
        header(&ok, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(header(&ok, "Require").as_deref(), Some("timer"));
    assert!(
        header(&ok, "Allow").is_some_and(|a| a.contains("UPDATE")),
        "{ok}"
    );
    assert!(
        headers(&ok, "Supported")
            .iter()
            .any(|s| s.contains("timer")),
        "{ok}"
    );

    // A body-less UPDATE refreshes: 200 without SDP, the timer again.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let update = "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n";
    w.send(&w.request("UPDATE", 2, "upd2", update, "")).await;
    let ok = w.expect("SIP/2.0 200").await;
    assert!(ok.contains("CSeq: 2 UPDATE"), "{ok}");
    assert_eq!(header(&ok, "Content-Length").as_deref(), Some("0"));
    assert_eq!(
        header(&ok, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    let refreshed = Instant::now();

    // No refresh: BYE at the interval less a third (60 s).
    let bye = w.expect_within("BYE ", MINUTES).await;
    assert_eq!(secs_since(refreshed), 60, "BYE after the refresh");
    w.send(&reply(&bye, "200 OK", "", "")).await;
    assert_eq!(next_uas(&mut call.events).await, UasEvent::SessionExpired);
}

#[tokio::test(start_paused = true)]
async fn siphon_refreshes_by_update_when_the_caller_asks_it_to() {
    let mut p = pair(InboundPolicy::default()).await;
    let extra = "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    let (w, mut call, ok) = inbound(&mut p, extra).await;
    assert_eq!(
        header(&ok, "Session-Expires").as_deref(),
        Some("90;refresher=uas")
    );
    let answered = Instant::now();
    let update = w.expect_within("UPDATE ", MINUTES).await;
    assert_eq!(secs_since(answered), 45, "refresh at half the interval");
    // siphon sends it, so siphon is this transaction's uac.
    assert_eq!(
        header(&update, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(header(&update, "Content-Length").as_deref(), Some("0"));
    let granted = "Require: timer\r\nSession-Expires: 120;refresher=uac\r\n";
    w.send(&reply(&update, "200 OK", granted, "")).await;
    let refreshed = Instant::now();

    // The next one follows the interval the 200 granted; a 481 ends the call.
    let update = w.expect_within("UPDATE ", MINUTES).await;
    assert_eq!(secs_since(refreshed), 60);
    assert!(
        update.contains("Session-Expires: 120;refresher=uac"),
        "{update}"
    );
    w.send(&reply(
        &update,
        "481 Call/Transaction Does Not Exist",
        "",
        "",
    ))
    .await;
    let bye = w.expect("BYE ").await;
    w.send(&reply(&bye, "200 OK", "", "")).await;
    assert_eq!(next_uas(&mut call.events).await, UasEvent::SessionExpired);
}

#[tokio::test(start_paused = true)]
async fn without_update_siphon_refreshes_with_a_reinvite_of_its_answer() {
    let mut p = pair(InboundPolicy::default()).await;
    let extra = "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n";
    let (w, _call, _) = inbound(&mut p, extra).await;
    let reinvite = w.expect_within("INVITE ", MINUTES).await;
    assert!(reinvite.ends_with(&answer_sdp()), "{reinvite}");
    assert!(
        reinvite.contains("Session-Expires: 90;refresher=uac"),
        "{reinvite}"
    );
    let granted = format!(
        "Session-Expires: 90;refresher=uac\r\nContact: <sip:probe@{}>\r\n",
        w.me
    );
    w.send(&reply(&reinvite, "200 OK", &granted, &offer()))
        .await;
    w.expect("ACK ").await;
}

#[tokio::test(start_paused = true)]
async fn a_refresh_below_min_se_is_422_and_the_call_goes_on() {
    let mut p = pair(InboundPolicy::default()).await;
    let extra = "Supported: timer\r\nSession-Expires: 90\r\nAllow: UPDATE\r\n";
    let (w, _call, _) = inbound(&mut p, extra).await;
    let small = "Supported: timer\r\nSession-Expires: 30\r\n";
    w.send(&w.request("UPDATE", 2, "upd2", small, "")).await;
    let resp = w.expect("SIP/2.0 422").await;
    assert_eq!(header(&resp, "Min-SE").as_deref(), Some("90"));
    // The timer from the INVITE still runs: the caller refreshes, else BYE.
    w.send(&w.request("UPDATE", 3, "upd3", "Supported: timer\r\n", ""))
        .await;
    let ok = w.expect("SIP/2.0 200").await;
    assert_eq!(
        header(&ok, "Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
}

/// A hand-driven UAS that siphon's UAC calls.
struct Callee {
    sock: UdpSocket,
    me: SocketAddr,
}

impl Callee {
    async fn new() -> Callee {
        let sock = UdpSocket::bind(local()).await.expect("callee socket");
        let me = sock.local_addr().expect("addr");
        Callee { sock, me }
    }

    async fn expect_within(&self, start: &str, wait: Duration) -> (String, SocketAddr) {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = timeout(left, self.sock.recv_from(&mut buf)).await;
            let (n, from) = got
                .unwrap_or_else(|_| panic!("no {start:?} in time"))
                .expect("recv");
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg.starts_with(start) {
                return (msg, from);
            }
        }
    }

    async fn send(&self, text: &str, to: SocketAddr) {
        self.sock.send_to(text.as_bytes(), to).await.expect("send");
    }

    /// Answer siphon's INVITE 200 with `extra` headers; the ACK comes back.
    async fn answer(&self, p: &Peers, extra: &str) -> mpsc::Receiver<UacEvent> {
        let req = OutboundInvite {
            target: format!("sip:bob@{}", self.me),
            ..invite(p, Transport::Udp)
        };
        let (_, mut rx) = p.sip.invite(req).await.expect("invite");
        let (inv, from) = self.expect_within("INVITE ", PROMPT).await;
        assert!(
            headers(&inv, "Supported")
                .iter()
                .any(|s| s.contains("timer")),
            "{inv}"
        );
        assert!(
            header(&inv, "Allow").is_some_and(|a| a.contains("UPDATE")),
            "{inv}"
        );
        let contact = format!("Contact: <sip:bob@{}>\r\n{extra}", self.me);
        self.send(&reply(&inv, "200 OK", &contact, &offer()), from)
            .await;
        self.expect_within("ACK ", PROMPT).await;
        let events = until_settled(&mut rx).await;
        assert!(
            matches!(events.last(), Some(UacEvent::Answered { .. })),
            "{events:?}"
        );
        rx
    }
}

#[tokio::test(start_paused = true)]
async fn a_callee_that_asks_siphon_to_refresh_gets_updates() {
    let p = peers(EchoBehavior::default()).await;
    let callee = Callee::new().await;
    let extra = "Require: timer\r\nSession-Expires: 90;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    let _rx = callee.answer(&p, extra).await;
    let answered = Instant::now();
    let (update, from) = callee.expect_within("UPDATE ", MINUTES).await;
    assert_eq!(secs_since(answered), 45);
    assert!(
        update.contains("Session-Expires: 90;refresher=uac"),
        "{update}"
    );
    let granted = "Require: timer\r\nSession-Expires: 90;refresher=uac\r\n";
    callee
        .send(&reply(&update, "200 OK", granted, ""), from)
        .await;
    let refreshed = Instant::now();
    callee.expect_within("UPDATE ", MINUTES).await;
    assert_eq!(secs_since(refreshed), 45);
}

#[tokio::test(start_paused = true)]
async fn a_callee_that_refreshes_and_stops_gets_a_bye() {
    let p = peers(EchoBehavior::default()).await;
    let callee = Callee::new().await;
    let extra = "Require: timer\r\nSession-Expires: 90;refresher=uas\r\n";
    let mut rx = callee.answer(&p, extra).await;
    let answered = Instant::now();
    let (bye, from) = callee.expect_within("BYE ", MINUTES).await;
    assert_eq!(
        secs_since(answered),
        60,
        "no UPDATE from siphon, BYE at expiry"
    );
    callee.send(&reply(&bye, "200 OK", "", ""), from).await;
    assert_eq!(next(&mut rx).await, UacEvent::SessionExpired);
}

#[tokio::test(start_paused = true)]
async fn a_callee_without_timers_gets_neither_refresh_nor_bye() {
    let p = peers(EchoBehavior::default()).await;
    let callee = Callee::new().await;
    let _rx = callee.answer(&p, "").await;
    let mut buf = [0u8; 2048];
    let quiet = timeout(MINUTES, callee.sock.recv_from(&mut buf)).await;
    assert!(
        quiet.is_err(),
        "siphon sent something on a call without timers"
    );
}
