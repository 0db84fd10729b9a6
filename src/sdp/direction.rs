//! Media direction (a=sendrecv and friends), the basis of hold and resume.

use sdp_types::Media;

pub use sdp_types::Direction;

use super::session::{flag, Parsed};
use super::SdpError;

/// The direction of the audio line, else of the session, else sendrecv.
pub fn read(p: &Parsed) -> Direction {
    let found = |attrs: &[sdp_types::Attribute]| {
        attrs
            .iter()
            .find_map(|a| a.attribute.parse::<Direction>().ok())
    };
    found(&p.audio().attributes)
        .or_else(|| found(&p.session.attributes))
        .unwrap_or_default()
}

/// The audio flows a SIP peer means: its direction, less receive for an
/// RFC 2543 hold to c=0.0.0.0 (RFC 3264 §8.4).
pub fn of_sip_audio(p: &Parsed) -> Result<Direction, SdpError> {
    let direction = read(p);
    Ok(match p.audio_addr()?.ip().is_unspecified() {
        true => without_recv(direction),
        false => direction,
    })
}

/// Whether `sdp` holds the call (any flow but sendrecv), read from the
/// parsed description: a resume that leaves the direction out is sendrecv.
/// What the re-offer counters go by; an SDP that does not parse (never one
/// siphon wrote) counts as no hold.
pub fn is_hold(sdp: &str) -> bool {
    super::session::parse(sdp)
        .and_then(|p| of_sip_audio(&p))
        .is_ok_and(|d| d != Direction::SendRecv)
}

/// Writes the direction attribute.
pub fn write(media: &mut Media, direction: Direction) {
    flag(media, direction.as_str());
}

/// Flows allowed by both: send only if both send, receive only if both receive.
pub fn both(a: Direction, b: Direction) -> Direction {
    from_flags(a.has_send() && b.has_send(), a.has_recv() && b.has_recv())
}

/// An RFC 3264 §8.4 hold with c=0.0.0.0 means the peer cannot receive.
pub fn without_recv(d: Direction) -> Direction {
    from_flags(d.has_send(), false)
}

fn from_flags(send: bool, recv: bool) -> Direction {
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    #[test]
    fn both_keeps_only_common_flows() {
        assert_eq!(both(SendRecv, SendRecv), SendRecv);
        assert_eq!(both(SendRecv, SendOnly), SendOnly);
        assert_eq!(both(RecvOnly, SendOnly), Inactive);
        assert_eq!(both(RecvOnly, SendRecv), RecvOnly);
    }

    fn offer(extra: &str, addr: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\n{extra}c=IN IP4 {addr}\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    }

    #[test]
    fn hold_is_read_from_the_parsed_description() {
        let resume = offer("", "192.0.2.1");
        assert!(!is_hold(&resume), "no direction is sendrecv");
        assert!(!is_hold(&format!("{resume}a=sendrecv\r\n")));
        assert!(is_hold(&format!("{resume}a=sendonly\r\n")));
        assert!(is_hold(&format!("{resume}a=inactive\r\n")));
        assert!(
            is_hold(&offer("a=recvonly\r\n", "192.0.2.1")),
            "session level"
        );
        assert!(is_hold(&offer("", "0.0.0.0")), "RFC 2543 hold");
        // The text search this replaces counted the first as a hold and
        // this one as a resume.
        assert!(is_hold(&format!(
            "{resume}a=sendonly\r\na=x-note:a=sendrecv\r\n"
        )));
        assert!(!is_hold("not sdp"));
    }

    #[test]
    fn zero_address_hold_removes_receive() {
        assert_eq!(without_recv(SendRecv), SendOnly);
        assert_eq!(without_recv(RecvOnly), Inactive);
    }
}
