//! Media direction (a=sendrecv and friends), the basis of hold and resume.

use sdp_types::Media;

pub use sdp_types::Direction;

use super::session::{flag, Parsed};

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

    #[test]
    fn zero_address_hold_removes_receive() {
        assert_eq!(without_recv(SendRecv), SendOnly);
        assert_eq!(without_recv(RecvOnly), Inactive);
    }
}
