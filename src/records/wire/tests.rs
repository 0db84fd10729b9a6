use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::records::record::{EndedBy, Quality, SipLeg, WebRtcLeg};

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// 2026-12-05T12:05:42.123Z, the example call's start.
const START_MS: u64 = 1_796_472_342_123;

/// The example of docs/records.md: an answered outbound call.
pub(crate) fn example() -> CallRecord {
    CallRecord {
        instance: "siphon-a".into(),
        from: "sip:alice@pbx.example.com".into(),
        to: "1001".into(),
        user: Some("alice".into()),
        ringing_at: Some(at(START_MS + 310)),
        answered_at: Some(at(START_MS + 2_480)),
        ended_at: at(START_MS + 64_980),
        end: End {
            code: 200,
            reason: "Normal clearing".into(),
            by: EndedBy::Browser,
            outcome: "answered".into(),
        },
        legs: Legs {
            webrtc: WebRtcLeg {
                codec: Some("opus".into()),
                srtp: Some("AES_CM_128_HMAC_SHA1_80".into()),
            },
            sip: SipLeg {
                codec: Some("PCMU".into()),
                srtp: None,
                peer: Some("203.0.113.20:30000".into()),
            },
        },
        quality: QualityPair {
            to_browser: Quality {
                packets: 3125,
                lost: Some(2),
                jitter_ms: Some(1.5),
                rtt_ms: Some(24.0),
                mos: Some(4.3),
            },
            to_sip: Quality {
                packets: 3120,
                lost: Some(0),
                jitter_ms: Some(0.8),
                rtt_ms: None,
                mos: Some(4.39),
            },
        },
        dtmf: 4,
        ..CallRecord::new(
            "c7b1e0d2-5f7a-4c1e-9d55-0c1f2a3b4c5d",
            Direction::Outbound,
            at(START_MS),
        )
    }
}

#[test]
fn the_record_has_the_documented_shape() {
    let value = serde_json::to_value(example()).unwrap();
    let expected = json!({
        "schema": 1,
        "id": "c7b1e0d2-5f7a-4c1e-9d55-0c1f2a3b4c5d",
        "instance": "siphon-a",
        "direction": "outbound",
        "from": "sip:alice@pbx.example.com",
        "to": "1001",
        "user": "alice",
        "started_at": "2026-12-05T12:05:42.123Z",
        "ringing_at": "2026-12-05T12:05:42.433Z",
        "answered_at": "2026-12-05T12:05:44.603Z",
        "ended_at": "2026-12-05T12:06:47.103Z",
        "setup_ms": 2480,
        "duration_s": 62.5,
        "end": {"code": 200, "reason": "Normal clearing", "by": "browser", "outcome": "answered"},
        "legs": {
            "webrtc": {"codec": "opus", "srtp": "AES_CM_128_HMAC_SHA1_80"},
            "sip": {"codec": "PCMU", "srtp": null, "peer": "203.0.113.20:30000"}
        },
        "quality": {
            "to_browser": {"packets": 3125, "lost": 2, "jitter_ms": 1.5, "rtt_ms": 24.0, "mos": 4.3},
            "to_sip": {"packets": 3120, "lost": 0, "jitter_ms": 0.8, "rtt_ms": null, "mos": 4.39}
        },
        "ice_restarts": 0,
        "dtmf": 4,
        "transfers": 0
    });
    assert_eq!(value, expected);
}

#[test]
fn keys_come_in_the_documented_order() {
    let text = serde_json::to_string(&example()).unwrap();
    let keys: Vec<usize> = [
        "schema",
        "id",
        "instance",
        "direction",
        "from",
        "to",
        "user",
        "started_at",
        "ringing_at",
        "answered_at",
        "ended_at",
        "setup_ms",
        "duration_s",
        "end",
        "legs",
        "quality",
        "ice_restarts",
        "dtmf",
        "transfers",
    ]
    .iter()
    .map(|k| text.find(&format!("\"{k}\":")).unwrap())
    .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn docs_show_the_example_as_written() {
    let doc = include_str!("../../../docs/records.md");
    let pretty = serde_json::to_string_pretty(&example()).unwrap();
    assert!(
        doc.contains(&pretty),
        "docs/records.md should show the example as siphon writes it:\n{pretty}"
    );
}

#[test]
fn an_unanswered_call_has_no_setup_and_zero_duration() {
    let mut record = CallRecord::new("c2", Direction::Inbound, at(START_MS));
    record.ended_at = at(START_MS + 30_000);
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["direction"], "inbound");
    assert_eq!(value["setup_ms"], Value::Null);
    assert_eq!(value["duration_s"], 0.0);
    assert_eq!(value["answered_at"], Value::Null);
    assert_eq!(value["user"], Value::Null);
    assert_eq!(value["end"]["by"], "gateway");
}

#[test]
fn timestamps_are_utc_with_milliseconds() {
    assert_eq!(
        timestamp(SystemTime::UNIX_EPOCH).unwrap(),
        "1970-01-01T00:00:00.000Z"
    );
    // Below a millisecond is cut, never rounded up into the next second.
    let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_999_999_999);
    assert_eq!(timestamp(t).unwrap(), "1970-01-01T00:00:01.999Z");
    let before = SystemTime::UNIX_EPOCH - Duration::from_millis(1);
    assert_eq!(timestamp(before).unwrap(), "1969-12-31T23:59:59.999Z");
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
    assert!(
        timestamp(far).is_err(),
        "past year 9999 is an error, not a panic"
    );
}

#[test]
fn timestamps_read_back_with_any_offset() {
    let t = parse_timestamp("2026-12-05T12:05:42.123Z").unwrap();
    assert_eq!(t, at(START_MS));
    let shifted = parse_timestamp("2026-12-05T13:05:42.123+01:00").unwrap();
    assert_eq!(shifted, t);
    assert!(parse_timestamp("yesterday").is_err());
}

#[test]
fn a_record_reads_back_equal() {
    let record = example();
    let text = serde_json::to_string(&record).unwrap();
    let back: CallRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, record);
}

#[test]
fn a_higher_schema_is_refused() {
    let mut value = serde_json::to_value(example()).unwrap();
    value["schema"] = json!(2);
    let e = serde_json::from_value::<CallRecord>(value).unwrap_err();
    assert!(e.to_string().contains("schema 2"), "{e}");
}

#[test]
fn the_ended_body_is_the_record_after_its_event() {
    let body = ended_body(&example()).unwrap();
    assert!(
        body.starts_with(r#"{"event":"call.ended","schema":1,"#),
        "{body}"
    );
    let mut value: Value = serde_json::from_str(&body).unwrap();
    value.as_object_mut().unwrap().remove("event");
    assert_eq!(value, serde_json::to_value(example()).unwrap());
}

#[test]
fn progress_events_say_who_calls_whom_and_when() {
    let record = example();
    let body = event_body(CallEvent::Answered, &record, at(START_MS + 2_480)).unwrap();
    let value: Value = serde_json::from_str(&body).unwrap();
    let expected = json!({
        "event": "call.answered",
        "schema": 1,
        "id": "c7b1e0d2-5f7a-4c1e-9d55-0c1f2a3b4c5d",
        "instance": "siphon-a",
        "direction": "outbound",
        "from": "sip:alice@pbx.example.com",
        "to": "1001",
        "user": "alice",
        "at": "2026-12-05T12:05:44.603Z"
    });
    assert_eq!(value, expected);
    assert!(body.starts_with(r#"{"event":"call.answered","#), "{body}");
}

#[test]
fn docs_show_an_event_and_its_signature_as_written() {
    let doc = include_str!("../../../docs/records.md");
    let answered = event_body(CallEvent::Answered, &example(), at(START_MS + 2_480)).unwrap();
    assert!(doc.contains(&answered), "docs/records.md lacks {answered}");
    let secret = b"0123456789abcdef0123456789abcdef";
    let header = crate::records::signature(secret, 1_796_472_344, answered.as_bytes());
    assert!(
        doc.contains(&format!("Siphon-Signature: {header}")),
        "docs/records.md lacks {header}"
    );
}
