//! Where a load packet's time goes, pass by pass.
//!
//! The browser stamps its send time into the payload. The echoing UAS
//! writes two more stamps: when the kernel received the packet, and when the
//! echo sent it back. The browser takes the kernel's receive time of the
//! echo. So each pass through siphon is measured from kernel to kernel,
//! and the generator's own queues (a busy generator core, a late task) stay
//! out of it:
//!
//! | payload bytes | stamp |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..16 | browser send |
//! | 16..24 | kernel receive at the UAS |
//! | 24..32 | UAS send |
//!
//! All stamps are microseconds since the UNIX epoch: `SO_TIMESTAMPNS`
//! reports CLOCK_REALTIME. On loopback the kernel stamps a datagram as the
//! sender's `sendto` hands it to the device, so a pass ends when siphon
//! sends, not when the generator gets round to reading.
//!
//! `recvmsg` with control messages is hand-written on libc: tokio and mio
//! expose no ancillary data, and this is a few lines on a socket tokio
//! already polls.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::media::relay::batch::to_std;

/// Marks the load tool's payloads, so that anything else is counted as bad.
pub const MAGIC: u64 = 0x5349_5048_4f4e_2142;
/// Payload bytes the stamps take.
pub const STAMPS_LEN: usize = 32;

/// The stamps of one packet, in µs since the UNIX epoch. The UAS's two are
/// 0 when the echo did not stamp (an echo other than siphon-load's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamps {
    pub sent: u64,
    pub uas_rx: u64,
    pub uas_tx: u64,
}

impl Stamps {
    /// Browser -> siphon -> UAS, kernel to kernel.
    pub fn to_sip_us(&self) -> Option<u64> {
        (self.uas_rx != 0).then(|| self.uas_rx.saturating_sub(self.sent))
    }

    /// UAS -> siphon -> browser, given the kernel's receive time `rx`.
    pub fn to_browser_us(&self, rx: u64) -> Option<u64> {
        (self.uas_tx != 0).then(|| rx.saturating_sub(self.uas_tx))
    }

    /// How long the echo held the packet (the generator's own share).
    pub fn echo_hold_us(&self) -> Option<u64> {
        (self.uas_tx != 0).then(|| self.uas_tx.saturating_sub(self.uas_rx))
    }
}

/// Now, in µs since the UNIX epoch (the clock of kernel timestamps).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Write [`MAGIC`] and the send stamp `sent` at the start of `payload`
/// (at least [`STAMPS_LEN`] bytes); the UAS's stamps start at 0.
pub fn write_sent(payload: &mut [u8], sent: u64) {
    payload[..8].copy_from_slice(&MAGIC.to_be_bytes());
    payload[8..16].copy_from_slice(&sent.to_be_bytes());
    payload[16..STAMPS_LEN].fill(0);
}

/// The stamps in an RTP packet, if its payload is ours.
pub fn read(rtp: &[u8]) -> Option<Stamps> {
    let p = rtp.get(payload_start(rtp)?..)?.get(..STAMPS_LEN)?;
    let word = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().unwrap_or_default());
    (word(0) == MAGIC).then(|| Stamps {
        sent: word(8),
        uas_rx: word(16),
        uas_tx: word(24),
    })
}

/// At the echo: record the kernel's receive time `rx` and the send time
/// `tx` in a packet of ours; false (and untouched) for any other packet.
pub fn restamp(rtp: &mut [u8], rx: u64, tx: u64) -> bool {
    if read(rtp).is_none() {
        return false;
    }
    let Some(at) = payload_start(rtp) else {
        return false;
    };
    rtp[at + 16..at + 24].copy_from_slice(&rx.to_be_bytes());
    rtp[at + 24..at + 32].copy_from_slice(&tx.to_be_bytes());
    true
}

/// Where an RTP packet's payload starts: past the CSRCs and the header
/// extension.
fn payload_start(rtp: &[u8]) -> Option<usize> {
    if rtp.len() < 12 {
        return None;
    }
    let mut at = 12 + 4 * (rtp[0] & 0x0f) as usize;
    if rtp[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*rtp.get(at + 2)?, *rtp.get(at + 3)?]) as usize;
        at += 4 + 4 * words;
    }
    Some(at)
}

/// Ask the kernel to timestamp every datagram `sock` receives.
pub fn enable_rx_timestamps(sock: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd, and an int option of the size given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receive one datagram: its length, source and the kernel's receive time
/// in µs since the UNIX epoch (now, if the socket gave no timestamp).
pub async fn recv_from(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, u64)> {
    sock.async_io(Interest::READABLE, || recv_now(sock, buf))
        .await
}

fn recv_now(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, u64)> {
    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;
    // SAFETY: msg points at live buffers of the lengths it states, all on
    // this stack frame or borrowed for it.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let src = to_std(&name, msg.msg_namelen)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))?;
    Ok((n as usize, src, kernel_time(&msg).unwrap_or_else(now_us)))
}

/// The SCM_TIMESTAMPNS control message of a received `msg`, in µs.
fn kernel_time(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: msg is a header recvmsg filled in; the CMSG macros walk only
    // within msg_controllen, and the data of an SCM_TIMESTAMPNS message is
    // a timespec (read unaligned, as the macros promise no alignment).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(header: &[u8]) -> Vec<u8> {
        let mut p = header.to_vec();
        let at = p.len();
        p.resize(at + 160, 0xff);
        write_sent(&mut p[at..], 1234);
        p
    }

    #[test]
    fn stamps_are_found_past_csrcs_and_extensions() {
        let mut h = vec![0x91, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        h.extend_from_slice(&[0; 4]); // one CSRC
        h.extend_from_slice(&[0xbe, 0xde, 0, 1, 0, 0, 0, 0]); // one extension word
        let mut p = packet(&h);
        let s = read(&p).expect("ours");
        assert_eq!((s.sent, s.uas_rx, s.uas_tx), (1234, 0, 0));
        assert_eq!(s.to_sip_us(), None, "an echo that does not stamp");
        assert!(restamp(&mut p, 1500, 1600));
        let s = read(&p).expect("still ours");
        assert_eq!((s.sent, s.uas_rx, s.uas_tx), (1234, 1500, 1600));
        assert_eq!(s.to_sip_us(), Some(266));
        assert_eq!(s.echo_hold_us(), Some(100));
        assert_eq!(s.to_browser_us(1700), Some(100));
        p[24] ^= 1;
        assert_eq!(read(&p), None, "not our magic");
        assert!(!restamp(&mut p, 1, 2));
        assert_eq!(read(&[0x80; 11]), None);
        assert_eq!(read(&[0x80; 20]), None, "payload too short for stamps");
    }

    #[tokio::test]
    async fn the_kernel_stamps_what_a_socket_receives() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable_rx_timestamps(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // The kernel turns stamping on in a deferred work item when the
        // first socket asks, so the first datagram may come unstamped (the
        // kernel then stamps it as it is read).
        let mut seen = Vec::new();
        for _ in 0..10 {
            let before = now_us();
            tx.send_to(b"hello", rx.local_addr().unwrap())
                .await
                .unwrap();
            // Read a while later: the stamp is the arrival, not the read.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut buf = [0u8; 64];
            let (n, src, at) = recv_from(&rx, &mut buf).await.unwrap();
            let read_at = now_us();
            assert_eq!((&buf[..n], src), (&b"hello"[..], tx.local_addr().unwrap()));
            assert!(at >= before && at <= read_at, "{before} {at} {read_at}");
            if at + 40_000 < read_at {
                return;
            }
            seen.push((before, at, read_at));
        }
        panic!("never stamped at arrival: {seen:?}");
    }
}
