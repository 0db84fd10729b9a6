//! Key presses on an answered call, the same in both directions: the
//! browser's digits go to SIP as RFC 4733 when the SIP side negotiated
//! telephone-event and as SIP INFO otherwise; a SIP INFO becomes a `dtmf`
//! message and an RFC 4733 press toward the browser.

use crate::media::dtmf::event_code;
use crate::media::Press;
use crate::signaling::ServerMessage;

/// How the browser's digits reach the SIP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TowardSip {
    /// RFC 4733 packets in the media stream.
    Rtp(Vec<Press>),
    /// One INFO per digit: (digit, ms).
    Info(Vec<(char, u32)>),
}

/// The browser's `digits` (already validated) toward SIP.
pub fn toward_sip(digits: &str, duration_ms: u32, sip_has_events: bool) -> TowardSip {
    if sip_has_events {
        let presses = digits.chars().filter_map(event_code).map(|code| Press {
            to_sip: true,
            code,
            duration_ms,
        });
        TowardSip::Rtp(presses.collect())
    } else {
        TowardSip::Info(digits.chars().map(|d| (d, duration_ms)).collect())
    }
}

/// A key press the SIP side sent as INFO: the `dtmf` message for the
/// client and the press toward the browser's media.
pub fn from_sip(call_id: &str, digit: char, duration_ms: u32) -> (ServerMessage, Option<Press>) {
    let msg = ServerMessage::Dtmf {
        call_id: call_id.to_owned(),
        digit: digit.to_string(),
        duration: duration_ms,
    };
    let press = event_code(digit).map(|code| Press {
        to_sip: false,
        code,
        duration_ms,
    });
    (msg, press)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_go_by_rtp_when_the_sip_side_has_events_else_by_info() {
        let TowardSip::Rtp(presses) = toward_sip("1#", 100, true) else {
            panic!("expected RTP");
        };
        let codes: Vec<u8> = presses.iter().map(|p| p.code).collect();
        assert_eq!(codes, [1, 11]);
        assert!(presses.iter().all(|p| p.to_sip && p.duration_ms == 100));
        assert_eq!(
            toward_sip("*9", 250, false),
            TowardSip::Info(vec![('*', 250), ('9', 250)])
        );
    }

    #[test]
    fn a_sip_info_press_is_told_and_played_to_the_browser() {
        let (msg, press) = from_sip("c1", 'A', 200);
        assert_eq!(
            msg.to_json(),
            r#"{"type":"dtmf","call_id":"c1","digit":"A","duration":200}"#
        );
        assert_eq!(
            press,
            Some(Press {
                to_sip: false,
                code: 12,
                duration_ms: 200
            })
        );
    }
}
