//! Parsing and serialization of the protocol messages.

use super::*;

fn refused(text: &str) -> Refusal {
    parse_client_message(text, 1024).unwrap_err()
}

#[test]
fn parses_each_client_message() {
    let call = parse_client_message(r#"{"type":"call","to":"1000","sdp":"v=0"}"#, 1024);
    assert_eq!(
        call.unwrap(),
        ClientMessage::Call {
            call_id: None,
            to: "1000".into(),
            sdp: "v=0".into()
        }
    );
    let cand = r#"{"type":"candidate","call_id":"c1","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
    assert!(matches!(
        parse_client_message(cand, 1024).unwrap(),
        ClientMessage::Candidate { candidate: Some(c), .. } if c.sdp_mid.as_deref() == Some("0")
    ));
    let end = r#"{"type":"candidate","call_id":"c1","candidate":null}"#;
    assert!(matches!(
        parse_client_message(end, 1024).unwrap(),
        ClientMessage::Candidate {
            candidate: None,
            ..
        }
    ));
    let hang = parse_client_message(r#"{"type":"hangup","call_id":"c1"}"#, 1024).unwrap();
    assert_eq!(hang.kind(), "hangup");
}

#[test]
fn refusals_carry_the_right_code() {
    assert_eq!(refused("{nope").code, ErrorCode::BadJson);
    assert_eq!(refused("[1,2]").code, ErrorCode::BadJson);
    assert_eq!(refused(r#"{"to":"1"}"#).code, ErrorCode::BadMessage);
    let unknown = refused(r#"{"type":"dance","call_id":"x"}"#);
    assert_eq!(unknown.code, ErrorCode::UnknownType);
    assert_eq!(unknown.call_id.as_deref(), Some("x"));
    assert!(unknown.message.contains("dance"));
    let missing = refused(r#"{"type":"call","to":"1"}"#);
    assert_eq!(missing.code, ErrorCode::BadMessage);
    assert!(missing.message.contains("sdp"), "{}", missing.message);
    assert_eq!(
        refused(r#"{"type":"hangup","call_id":"a b"}"#).code,
        ErrorCode::BadMessage
    );
    assert_eq!(
        refused(r#"{"type":"call","to":" ","sdp":"v=0"}"#).code,
        ErrorCode::BadMessage
    );
    assert_eq!(
        refused(r#"{"type":"hangup","call_id":"a","extra":1}"#).code,
        ErrorCode::BadMessage
    );
    let big = format!(r#"{{"type":"call","to":"1","sdp":"{}"}}"#, "x".repeat(2000));
    assert_eq!(refused(&big).code, ErrorCode::TooLarge);
}

#[test]
fn server_messages_serialize_as_documented() {
    let m = ServerMessage::hangup("c1", 486, "Busy Here");
    assert_eq!(
        m.to_json(),
        r#"{"type":"hangup","call_id":"c1","code":486,"reason":"Busy Here"}"#
    );
    let e = ServerMessage::error(None, ErrorCode::UnknownType, "x");
    assert_eq!(
        e.to_json(),
        r#"{"type":"error","code":"unknown_type","message":"x"}"#
    );
    let way = crate::signaling::DirectionQuality {
        packets: 250,
        lost: 3,
        loss: 0.012,
        jitter_ms: 1.5,
        rtt_ms: None,
        r: 88.5,
        mos: 4.28,
    };
    let q = ServerMessage::Quality(Box::new(crate::signaling::QualityReport {
        call_id: "c1".into(),
        to_browser: way,
        to_sip: way,
    }));
    let figures = r#"{"packets":250,"lost":3,"loss":0.012,"jitter_ms":1.5,"rtt_ms":null,"r":88.5,"mos":4.28}"#;
    assert_eq!(
        q.to_json(),
        format!(r#"{{"type":"quality","call_id":"c1","to_browser":{figures},"to_sip":{figures}}}"#)
    );
}

#[test]
fn register_messages_are_checked() {
    let ok = r#"{"type":"register","extension":"1001","password":"pw","expires":120}"#;
    assert_eq!(parse_client_message(ok, 1024).unwrap().kind(), "register");
    let bare = parse_client_message(r#"{"type":"unregister"}"#, 1024).unwrap();
    assert_eq!(bare, ClientMessage::Unregister {});
    for bad in [
        r#"{"type":"register"}"#,
        r#"{"type":"register","password":""}"#,
        r#"{"type":"register","password":"pw","expires":59}"#,
        r#"{"type":"register","password":"pw","extension":"<sip:x>"}"#,
        r#"{"type":"register","password":"pw","username":"a\"b"}"#,
        r#"{"type":"unregister","extension":"1001"}"#,
    ] {
        assert_eq!(refused(bad).code, ErrorCode::BadMessage, "{bad}");
    }
}

#[test]
fn dtmf_messages_are_checked() {
    let ok = r#"{"type":"dtmf","call_id":"c1","digits":"12*#ad","duration":100}"#;
    assert_eq!(parse_client_message(ok, 1024).unwrap().kind(), "dtmf");
    for bad in [
        r#"{"type":"dtmf","call_id":"c1","digits":""}"#,
        r#"{"type":"dtmf","call_id":"c1","digits":"12E"}"#,
        r#"{"type":"dtmf","call_id":"c1","digits":"1 2"}"#,
        r#"{"type":"dtmf","call_id":"c1","digits":"1","duration":10}"#,
        r#"{"type":"dtmf","call_id":"c1","digits":"123456789012345678901234567890123"}"#,
        r#"{"type":"dtmf","digits":"1"}"#,
    ] {
        let r = refused(bad);
        assert_eq!(r.code, ErrorCode::BadMessage, "{bad}");
    }
    assert!(refused(r#"{"type":"dtmf","call_id":"c1","digits":"X"}"#)
        .message
        .contains("0-9 * # A-D"));
}
