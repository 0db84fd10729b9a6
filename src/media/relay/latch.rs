//! Symmetric RTP: the SIP peer's source on one of a call's sockets is
//! taken from its first authenticated packet, and the socket is connected
//! to it. From then on the kernel itself refuses other sources (counted in
//! the kernel's UDP `NoPorts`, answered with ICMP port unreachable) and
//! sends need no address (no route lookup per packet). When the SIP side
//! moves its media (a re-offer with another address), the latch is let go
//! and the next packet latches again; but not, for a moment, one from the
//! source it had: when a new dialog takes the call (INVITE with Replaces),
//! the old party sends until its BYE lands, and one packet of its after the
//! move would otherwise take the latch back and shut the new party out.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::batch;

/// How long the source let go by a move may not latch again.
const LEFT_FOR: Duration = Duration::from_millis(500);

/// One socket's latched source.
#[derive(Debug, Default)]
pub(super) struct Latch {
    addr: Option<SocketAddr>,
    /// The socket is connected to `addr`.
    connected: bool,
    /// The source let go by a move, refused until then.
    left: Option<(SocketAddr, Instant)>,
}

impl Latch {
    /// Whether a packet from `src` may be taken.
    pub(super) fn admits(&self, src: SocketAddr, now: Instant) -> bool {
        match self.addr {
            Some(addr) => addr == src,
            None => !self
                .left
                .is_some_and(|(left, until)| left == src && now < until),
        }
    }

    /// Latch `src` if nothing is latched yet, connecting `socket` to it;
    /// true if this latched it.
    pub(super) fn latch(&mut self, socket: &UdpSocket, src: SocketAddr) -> bool {
        if self.addr.is_some() {
            return false;
        }
        self.addr = Some(src);
        // Unconnected, the socket still works: sends then carry the address.
        self.connected = socket.connect(src).is_ok();
        true
    }

    /// Where packets to the peer go: the latched source, else `signaled`
    /// (the address in its SDP); and whether the socket is connected there.
    pub(super) fn dest(&self, signaled: SocketAddr) -> (SocketAddr, bool) {
        match self.addr {
            Some(addr) => (addr, self.connected),
            None => (signaled, false),
        }
    }

    /// Forget the latched source and take packets from anywhere again.
    pub(super) fn release(&mut self, socket: &UdpSocket) {
        if self.connected {
            let _ = batch::disconnect(socket);
        }
        *self = Latch::default();
    }

    /// The peer's media moved to `signaled`: release, and refuse the
    /// source latched so far for [`LEFT_FOR`] unless it is `signaled`.
    pub(super) fn moved(&mut self, socket: &UdpSocket, signaled: SocketAddr, now: Instant) {
        let left = self.addr.filter(|addr| *addr != signaled);
        self.release(socket);
        self.left = left.map(|addr| (addr, now + LEFT_FOR));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn the_first_source_is_latched_and_connected_until_released() {
        let (socket, a, b) = (udp(), udp(), udp());
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let signaled: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = Instant::now();
        let mut latch = Latch::default();
        assert!(latch.admits(a_addr, now) && latch.admits(b_addr, now));
        assert_eq!(latch.dest(signaled), (signaled, false));

        assert!(latch.latch(&socket, a_addr));
        assert!(!latch.latch(&socket, b_addr), "latched once");
        assert!(latch.admits(a_addr, now) && !latch.admits(b_addr, now));
        assert_eq!(latch.dest(signaled), (a_addr, true));
        assert_eq!(socket.peer_addr().unwrap(), a_addr);

        latch.release(&socket);
        assert!(socket.peer_addr().is_err(), "disconnected");
        assert!(latch.admits(b_addr, now));
        assert!(latch.latch(&socket, b_addr));
        assert_eq!(socket.peer_addr().unwrap(), b_addr);
    }

    #[test]
    fn a_move_refuses_the_source_it_left_for_a_moment() {
        let (socket, a, b) = (udp(), udp(), udp());
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let now = Instant::now();
        let mut latch = Latch::default();
        latch.latch(&socket, a_addr);
        latch.moved(&socket, b_addr, now);
        assert!(socket.peer_addr().is_err(), "disconnected");
        assert!(!latch.admits(a_addr, now), "the old source is refused");
        assert!(latch.admits(b_addr, now));
        assert!(latch.admits(a_addr, now + LEFT_FOR), "for a moment only");
        // A move to where the latched source is keeps it welcome.
        latch.latch(&socket, a_addr);
        latch.moved(&socket, a_addr, now);
        assert!(latch.admits(a_addr, now));
    }

    #[test]
    fn a_connected_socket_takes_only_its_peer() {
        let (socket, a, b) = (udp(), udp(), udp());
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut latch = Latch::default();
        latch.latch(&socket, a.local_addr().unwrap());
        let to = socket.local_addr().unwrap();
        b.send_to(b"stranger", to).unwrap();
        a.send_to(b"peer", to).unwrap();
        let mut buf = [0; 16];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"peer"[..], a.local_addr().unwrap()));
    }
}
