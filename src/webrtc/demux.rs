//! RFC 7983 demultiplexing of one UDP port by the first byte of a datagram.
//!
//! Hand-written: it is a range check on two bytes, and no crate exposes it
//! on its own.

/// What a datagram carries, judged by its first bytes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketKind {
    /// 0..=3: STUN.
    Stun,
    /// 20..=63: DTLS.
    Dtls,
    /// 128..=191 with a second byte outside 192..=223: RTP.
    Rtp,
    /// 128..=191 with a second byte in 192..=223 (RFC 5761): RTCP.
    Rtcp,
    /// Anything else (ZRTP, TURN channels, garbage, empty).
    Other,
}

/// Classifies a datagram per RFC 7983 section 7 and RFC 5761 section 4.
pub(crate) fn classify(packet: &[u8]) -> PacketKind {
    match packet.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => match packet.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Other,
        },
        _ => PacketKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0, 1, 0, 0]), PacketKind::Stun);
        assert_eq!(classify(&[3]), PacketKind::Stun);
        assert_eq!(classify(&[22, 254, 253]), PacketKind::Dtls);
        assert_eq!(classify(&[20]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 111]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 0x80 | 111]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 200]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x81, 201]), PacketKind::Rtcp);
        assert_eq!(classify(&[0xbf, 223]), PacketKind::Rtcp);
    }

    #[test]
    fn everything_else_is_other() {
        assert_eq!(classify(&[]), PacketKind::Other);
        assert_eq!(classify(&[4]), PacketKind::Other);
        assert_eq!(classify(&[19]), PacketKind::Other);
        assert_eq!(classify(&[64]), PacketKind::Other);
        assert_eq!(classify(&[127]), PacketKind::Other);
        assert_eq!(classify(&[0x80]), PacketKind::Other);
        assert_eq!(classify(&[192, 200]), PacketKind::Other);
        assert_eq!(classify(&[255]), PacketKind::Other);
    }
}
