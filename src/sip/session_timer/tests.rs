use super::*;

fn invite(extra: &str) -> Request {
    let text = format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\n\
         CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    Request::try_from(text.as_bytes()).expect("request")
}

fn ok(extra: &str) -> Response {
    let text = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>;tag=2\r\nCall-ID: c1\r\n\
         CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    Response::try_from(text.as_bytes()).expect("response")
}

fn timer(interval: u32, refresher: Refresher, peer_supports: bool) -> Timer {
    Timer {
        interval,
        refresher,
        peer_supports,
    }
}

#[test]
fn the_refresher_follows_rfc_4028_table_2() {
    use Refresher::{Them, Us};
    let cases = [
        (
            "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n",
            timer(1800, Them, true),
        ),
        (
            "Supported: timer\r\nSession-Expires: 1800;refresher=uas\r\n",
            timer(1800, Us, true),
        ),
        (
            "Supported: timer\r\nSession-Expires: 1800\r\n",
            timer(1800, Them, true),
        ),
        // Compact forms, and a refresher in capitals.
        (
            "k: 100rel, timer\r\nx: 120;Refresher=UAS\r\n",
            timer(120, Us, true),
        ),
        // No Supported: timer: siphon, the UAS, must refresh.
        (
            "Session-Expires: 1800;refresher=uac\r\n",
            timer(1800, Us, false),
        ),
        ("Session-Expires: 30\r\n", timer(90, Us, false)),
    ];
    for (headers, want) in cases {
        assert_eq!(ask(&invite(headers)), Ask::Run(want), "{headers}");
    }
    assert_eq!(ask(&invite("Supported: timer\r\n")), Ask::None);
    assert_eq!(ask(&invite("")), Ask::None);
    assert_eq!(
        ask(&invite("Supported: timer\r\nSession-Expires: 30\r\n")),
        Ask::TooSmall
    );
    assert_eq!(
        ask(&invite("Supported: timer\r\nSession-Expires: soon\r\n")),
        Ask::None
    );
}

#[test]
fn answers_name_the_refresher_in_the_peers_terms() {
    let h = accepted(timer(1800, Refresher::Them, true));
    assert_eq!(h[0].to_string(), "Session-Expires: 1800;refresher=uac");
    assert_eq!(h[1].to_string(), "Require: timer");
    let h = accepted(timer(600, Refresher::Us, false));
    assert_eq!(h.len(), 1, "no Require toward a peer without the extension");
    assert_eq!(h[0].to_string(), "Session-Expires: 600;refresher=uas");
    assert_eq!(too_small()[0].to_string(), "Min-SE: 90");
}

#[test]
fn siphons_requests_name_the_refresher_in_its_own_terms() {
    let h = in_request(Some(timer(600, Refresher::Us, true)));
    assert_eq!(h[0].to_string(), "Supported: timer");
    assert_eq!(h[1].to_string(), "Session-Expires: 600;refresher=uac");
    let h = in_request(Some(timer(600, Refresher::Them, true)));
    assert_eq!(h[1].to_string(), "Session-Expires: 600;refresher=uas");
    assert_eq!(in_request(None).len(), 1);
}

#[test]
fn a_2xx_to_siphons_request_sets_or_clears_the_timer() {
    assert_eq!(
        from_answer(&ok(
            "Require: timer\r\nSession-Expires: 900;refresher=uac\r\n"
        )),
        Some(timer(900, Refresher::Us, true))
    );
    assert_eq!(
        from_answer(&ok("Session-Expires: 900;refresher=uas\r\n")),
        Some(timer(900, Refresher::Them, true))
    );
    assert_eq!(
        from_answer(&ok("Session-Expires: 900\r\n")),
        Some(timer(900, Refresher::Us, true))
    );
    assert_eq!(from_answer(&ok("")), None);
}

#[test]
fn deadlines_leave_the_refresher_its_margin() {
    assert_eq!(
        deadline(timer(1800, Refresher::Us, true)),
        Duration::from_secs(900)
    );
    assert_eq!(
        deadline(timer(1800, Refresher::Them, true)),
        Duration::from_secs(1768)
    );
    assert_eq!(
        deadline(timer(90, Refresher::Them, true)),
        Duration::from_secs(60)
    );
}

#[test]
fn update_is_used_only_when_the_peer_allows_it() {
    let r = ok("Allow: INVITE, ACK, BYE, update\r\n");
    assert!(allows_update(r.headers.iter()));
    assert!(!allows_update(
        ok("Allow: INVITE, ACK, BYE\r\n").headers.iter()
    ));
    assert!(!allows_update(ok("").headers.iter()));
}
