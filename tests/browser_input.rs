//! Hostile and broken input from browsers, through a whole in-process
//! siphon: WebSocket frames, JSON messages and tokens (SDP is in
//! browser_sdp.rs). Each test checks the answer the sender sees;
//! docs/reliability.md lists them in its bad-input catalogue.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const T: Duration = Duration::from_secs(10);
const SECRET: &str = "browser-input-secret-0123456789abcdef";
const CHROME_OFFER: &str = include_str!("../src/sdp/fixtures/chrome_offer.sdp");

type Ws = WebSocketStream<TcpStream>;

async fn gateway(tweak: impl FnOnce(&mut Config)) -> (Gateway, Metrics) {
    common::gateway_with_echo(tweak).await
}

/// A raw client socket: frames can be written by hand through `get_mut`.
async fn connect(gw: &Gateway, query: &str) -> Ws {
    let url = format!("ws://{}/ws{query}", gw.http_addr());
    let request = siphon_testkit::ws::ws_request(&url).unwrap();
    let tcp = TcpStream::connect(gw.http_addr()).await.unwrap();
    // A small read buffer keeps the client's own memory out of the figures.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .unwrap();
    ws
}

/// A socket past its `welcome`.
async fn ready(gw: &Gateway) -> Ws {
    let mut ws = connect(gw, "").await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    ws
}

/// What the server sent next: a JSON message, or a close as
/// `{"close": code, "reason": ...}`, or `{"gone": ...}` when the socket ended
/// without a close frame.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let next = tokio::time::timeout(T, ws.next()).await.expect("in time");
        return match next {
            Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(Some(f)))) => {
                json!({"close": u16::from(f.code), "reason": f.reason.as_str()})
            }
            Some(Ok(Message::Close(None))) => json!({"close": null}),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => json!({"gone": format!("{other:?}")}),
        };
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// One masked frame header (mask key 0, so the payload goes as is).
fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// Polls a counter until it reaches `want` (the session counts as it ends).
async fn wait_counter(metrics: &Metrics, line: &str, want: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let now = common::counter(metrics, line);
        if now >= want || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_faults_get_an_error_and_the_socket_lives() {
    let (gw, _) = gateway(|_| {}).await;
    let mut ws = ready(&gw).await;
    let long_id = "c".repeat(65);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_json"),
        ("[1,2,3]".into(), "bad_json"),
        ("\"call\"".into(), "bad_json"),
        (json!({"type":"dance"}).to_string(), "unknown_type"),
        (json!({"call_id":"x"}).to_string(), "bad_message"),
        (json!({"type":7}).to_string(), "bad_message"),
        (
            json!({"type":"call","to":"echo"}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"call","to":5,"sdp":"v=0"}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"call","to":" ","sdp":"v=0"}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"hangup","call_id":"a","extra":1}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"hangup","call_id":long_id}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"hangup","call_id":"a b"}).to_string(),
            "bad_message",
        ),
        (
            r#"{"type":"dtmf","call_id":"a","digits":"1","duration":1e400}"#.into(),
            "bad_json",
        ),
        (
            r#"{"type":"dtmf","call_id":"a","digits":"1","duration":99999999999999999999}"#.into(),
            "bad_message",
        ),
        (
            json!({"type":"dtmf","call_id":"a","digits":"Z"}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"reject","call_id":"a","code":500}).to_string(),
            "bad_message",
        ),
        (
            json!({"type":"hangup","call_id":"nope"}).to_string(),
            "unknown_call",
        ),
        (
            json!({"type":"answer","call_id":"nope","sdp":"v=0"}).to_string(),
            "unknown_call",
        ),
        (
            json!({"type":"accept","call_id":"nope","sdp":"v=0"}).to_string(),
            "unknown_call",
        ),
        (
            json!({"type":"register","password":"pw"}).to_string(),
            "forbidden",
        ),
        (
            json!({"type":"resume","call_id":"a"}).to_string(),
            "forbidden",
        ),
        (
            json!({"type":"call","to":"echo","sdp":"x".repeat(100_000)}).to_string(),
            "too_large",
        ),
    ];
    for (text, code) in &cases {
        ws.send(Message::text(text.as_str())).await.unwrap();
        let reply = recv(&mut ws).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some(*code)),
            "{text:.80} -> {reply}"
        );
    }
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "bad_json");
    // After all of that the socket still places calls.
    send(
        &mut ws,
        json!({"type":"call","call_id":"after","to":"echo","sdp":"v=0"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], 488);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_call_id_is_refused_and_the_first_call_goes_on() {
    let (gw, _) = gateway(|_| {}).await;
    let mut ws = ready(&gw).await;
    let call = json!({"type":"call","call_id":"d1","to":"echo","sdp":CHROME_OFFER});
    send(&mut ws, call.clone()).await;
    let mut seen = Vec::new();
    loop {
        let msg = recv(&mut ws).await;
        seen.push(msg["type"].as_str().unwrap_or("?").to_owned());
        if msg["type"] == "answered" {
            break;
        }
        assert!(msg["type"] != "hangup", "{msg}");
    }
    send(&mut ws, call).await;
    let dup = recv(&mut ws).await;
    assert_eq!(
        (dup["code"].as_str(), dup["call_id"].as_str()),
        (Some("duplicate_call"), Some("d1"))
    );
    send(&mut ws, json!({"type":"hangup","call_id":"d1"})).await;
    let hangup = recv(&mut ws).await;
    assert_eq!(
        (hangup["type"].as_str(), hangup["code"].as_u64()),
        (Some("hangup"), Some(200))
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_announcing_10_mb_is_refused_at_its_header_with_1009() {
    let (gw, metrics) = gateway(|_| {}).await;
    let mut ws = ready(&gw).await;
    // Only the header goes out: the answer cannot wait for the payload.
    let header = frame_header(0x1, 10_000_000);
    ws.get_mut().write_all(&header).await.unwrap();
    let close = recv(&mut ws).await;
    assert_eq!(close["close"], 1009, "{close}");
    assert_eq!(close["reason"], "message of 10000000 bytes exceeds 131072");
    let line = "siphon_ws_closed_total{reason=\"too_large\"}";
    assert_eq!(wait_counter(&metrics, line, 1).await, 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_message_ends_the_socket_counted_too_large() {
    let (gw, metrics) = gateway(|_| {}).await;
    let mut ws = ready(&gw).await;
    let huge = format!(
        r#"{{"type":"call","to":"echo","sdp":"{}"}}"#,
        "x".repeat(10 << 20)
    );
    // The server stops reading at the header, so the send may fail midway.
    let sent = tokio::time::timeout(T, ws.send(Message::text(huge))).await;
    assert!(sent.is_ok(), "the send neither finished nor failed");
    let end = recv(&mut ws).await;
    assert!(end["close"] == 1009 || end.get("gone").is_some(), "{end}");
    let line = "siphon_ws_closed_total{reason=\"too_large\"}";
    assert_eq!(wait_counter(&metrics, line, 1).await, 1);
    // Others are not disturbed.
    let mut other = ready(&gw).await;
    send(&mut other, json!({"type":"hangup","call_id":"x"})).await;
    assert_eq!(recv(&mut other).await["code"], "unknown_call");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_faults_close_with_their_code() {
    let (gw, metrics) = gateway(|_| {}).await;
    // A text frame that is not UTF-8: 1007.
    let mut ws = ready(&gw).await;
    let mut frame = frame_header(0x1, 2);
    frame.extend_from_slice(&[0xC3, 0x28]);
    ws.get_mut().write_all(&frame).await.unwrap();
    assert_eq!(recv(&mut ws).await["close"], 1007);
    // An unmasked frame from a client: 1002.
    let mut ws = ready(&gw).await;
    ws.get_mut()
        .write_all(&[0x81, 0x02, b'{', b'}'])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["close"], 1002);
    // A reserved opcode: 1002.
    let mut ws = ready(&gw).await;
    let mut frame = frame_header(0x3, 1);
    frame.push(b'x');
    ws.get_mut().write_all(&frame).await.unwrap();
    assert_eq!(recv(&mut ws).await["close"], 1002);
    let line = "siphon_ws_closed_total{reason=\"protocol\"}";
    assert_eq!(wait_counter(&metrics, line, 3).await, 3);
    gw.shutdown().await;
}

fn token(claims: Value, secret: &str, alg: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let header = URL_SAFE_NO_PAD.encode(json!({"alg":alg,"typ":"JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    if alg == "none" {
        return format!("{input}.");
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn unix_now() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_get_unauthorized_and_a_close() {
    let (gw, metrics) = gateway(|c| {
        c.auth.required = true;
        c.auth.secret = SECRET.into();
    })
    .await;
    let now = unix_now();
    let good = json!({"sub":"alice","exp":now + 600});
    let cases = [
        (
            "expired",
            token(json!({"sub":"alice","exp":now - 1}), SECRET, "HS256"),
        ),
        (
            "bad_signature",
            token(good.clone(), "another-secret-of-32-bytes-or-more!", "HS256"),
        ),
        ("wrong_algorithm", token(good.clone(), SECRET, "none")),
        ("wrong_algorithm", token(good.clone(), SECRET, "HS512")),
        (
            "not_yet_valid",
            token(
                json!({"sub":"alice","exp":now + 600,"nbf":now + 300}),
                SECRET,
                "HS256",
            ),
        ),
        (
            "missing_claim",
            token(json!({"sub":"alice"}), SECRET, "HS256"),
        ),
        (
            "wrong_audience",
            token(
                json!({"sub":"alice","exp":now + 600,"aud":"pbx"}),
                SECRET,
                "HS256",
            ),
        ),
        ("malformed", "a.b".to_owned()),
    ];
    for (reason, token) in &cases {
        let mut ws = connect(&gw, &format!("?token={token}")).await;
        let refused = recv(&mut ws).await;
        assert_eq!(refused["code"], "unauthorized", "{reason}: {refused}");
        assert!(
            recv(&mut ws).await.get("close").is_some(),
            "{reason}: no close"
        );
        let line = format!("siphon_ws_auth_failures_total{{reason=\"{reason}\"}}");
        assert!(common::counter(&metrics, &line) >= 1, "{line}");
    }
    // A call before login: the first message must be a hello with a token.
    let mut ws = connect(&gw, "").await;
    send(&mut ws, json!({"type":"call","to":"echo","sdp":"v=0"})).await;
    let refused = recv(&mut ws).await;
    assert_eq!(
        (refused["code"].as_str(), refused["message"].as_str()),
        (Some("unauthorized"), Some("no token"))
    );
    // The good token is let in.
    let good = token(good, SECRET, "HS256");
    let mut ws = connect(&gw, &format!("?token={good}")).await;
    assert_eq!(recv(&mut ws).await["user"], "alice");
    let line = "siphon_ws_closed_total{reason=\"unauthorized\"}";
    assert_eq!(wait_counter(&metrics, line, 9).await, 9);
    gw.shutdown().await;
}
