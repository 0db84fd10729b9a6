//! Why a browser's hold or resume did not happen, and the `error` code that
//! says so: only an SDP problem is `bad_sdp`; a SIP side that answers with
//! another failure (a 501 from a UA without re-INVITE support, a third 491)
//! or does not answer at all is `sip_refused`, with the code in words.

use super::SessionError;
use crate::signaling::ErrorCode;

/// A browser offer (hold, resume) the SIP side did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRefused {
    /// The SIP side answered siphon's re-INVITE with this failure code.
    Sip(u16),
    /// No final answer came (a transaction timeout, a lost dialog).
    NoAnswer,
    /// An SDP problem: the SIP side's answer, or the browser's offer.
    Sdp(SessionError),
}

impl ChangeRefused {
    /// The `error` code for the browser.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChangeRefused::Sip(488) | ChangeRefused::Sdp(_) => ErrorCode::BadSdp,
            ChangeRefused::Sip(_) | ChangeRefused::NoAnswer => ErrorCode::SipRefused,
        }
    }

    /// The `error` message for the browser: what happened, with the SIP code.
    pub fn message(&self) -> String {
        match self {
            ChangeRefused::Sip(491) => {
                "the SIP side refused the change with 491 Request Pending (glare, three times)"
                    .into()
            }
            ChangeRefused::Sip(code) => match phrase(*code) {
                Some(p) => format!("the SIP side refused the change with {code} {p}"),
                None => format!("the SIP side refused the change with {code}"),
            },
            ChangeRefused::NoAnswer => "the SIP side did not answer the re-INVITE".into(),
            ChangeRefused::Sdp(reason) => reason.to_string(),
        }
    }
}

/// RFC 3261's reason phrase for the failures a re-INVITE meets.
fn phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_501_is_not_an_sdp_problem() {
        let r = ChangeRefused::Sip(501);
        assert_eq!(r.code(), ErrorCode::SipRefused);
        assert_eq!(
            r.message(),
            "the SIP side refused the change with 501 Not Implemented"
        );
    }

    #[test]
    fn only_488_and_unusable_sdp_are_bad_sdp() {
        assert_eq!(ChangeRefused::Sip(488).code(), ErrorCode::BadSdp);
        let unusable = SessionError::UnusableAnswer(crate::sdp::SdpError::NoAudio);
        let sdp = ChangeRefused::Sdp(unusable);
        assert_eq!(sdp.code(), ErrorCode::BadSdp);
        assert_eq!(
            sdp.message(),
            format!("unusable answer: {}", crate::sdp::SdpError::NoAudio)
        );
        for code in [403, 491, 500, 503, 606] {
            assert_eq!(
                ChangeRefused::Sip(code).code(),
                ErrorCode::SipRefused,
                "{code}"
            );
        }
        assert_eq!(ChangeRefused::NoAnswer.code(), ErrorCode::SipRefused);
        assert!(ChangeRefused::Sip(491).message().contains("glare"));
        assert!(ChangeRefused::Sip(606).message().ends_with("with 606"));
    }
}
