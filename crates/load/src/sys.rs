//! The media thread's one syscall that std and mio lack: `recvmmsg` with
//! the kernel's receive time of each datagram (`SO_TIMESTAMPNS`, turned on
//! with `siphon::media::rx_time::enable`).
//!
//! Hand-written on libc: std and mio have no `recvmmsg`, nix's needs its
//! `socket` feature (which the tree does not build; the epoll comes from
//! nix), and quinn-udp batches one socket's GRO segments without handing
//! back timestamps. Sends need no help: each socket sends one packet per
//! turn, so `sendmmsg` would batch nothing (std's `send_to` is all of it).

#![allow(unsafe_code)] // recvmmsg through libc; each block has its SAFETY note

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use super::stamp::now_us;

/// Datagrams one call takes at most.
pub const BATCH: usize = 8;
/// Room per datagram (more than any RTP, STUN or DTLS packet here).
const BUF: usize = 2048;
/// Control room per datagram: one `SCM_TIMESTAMPNS` message and slack, in
/// u64s so that it stays aligned for `cmsghdr`.
const CONTROL: usize = 8;

/// Buffers for one `recvmmsg`, reused from call to call.
pub struct RecvBatch {
    bufs: Box<[[u8; BUF]; BATCH]>,
    names: [libc::sockaddr_storage; BATCH],
    control: [[u64; CONTROL]; BATCH],
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    rx_us: [u64; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: Box::new([[0; BUF]; BATCH]),
            // SAFETY: all-zero is a valid sockaddr_storage.
            names: unsafe { zeroed() },
            control: [[0; CONTROL]; BATCH],
            lens: [0; BATCH],
            from: [None; BATCH],
            rx_us: [0; BATCH],
        }
    }
}

impl RecvBatch {
    /// Receive what `fd` (non-blocking) has queued, up to [`BATCH`]; the
    /// count. Fewer than [`BATCH`] means the queue was empty.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (h, v)) in hdrs.iter_mut().zip(iov.iter_mut()).enumerate() {
            v.iov_base = self.bufs[i].as_mut_ptr().cast();
            v.iov_len = BUF;
            let m = &mut h.msg_hdr;
            m.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_iov = v;
            m.msg_iovlen = 1;
            m.msg_control = self.control[i].as_mut_ptr().cast();
            m.msg_controllen = size_of::<[u64; CONTROL]>() as _;
        }
        // SAFETY: every header points at live buffers of the lengths it
        // states (in self or on this stack frame), and vlen is their count.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = h.msg_len as usize;
            self.from[i] = to_std(&self.names[i], h.msg_hdr.msg_namelen);
            self.rx_us[i] = kernel_time(&h.msg_hdr).unwrap_or_else(now_us);
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: its bytes, source and
    /// the kernel's receive time in µs since the UNIX epoch.
    pub fn get(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>, u64) {
        (
            &mut self.bufs[i][..self.lens[i]],
            self.from[i],
            self.rx_us[i],
        )
    }
}

/// The SCM_TIMESTAMPNS control message of a received `msg`, in µs.
fn kernel_time(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: msg is a header recvmmsg filled in; the CMSG macros walk only
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

/// A source address the kernel wrote.
fn to_std(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match name.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for any.
            let a: &libc::sockaddr_in = unsafe { &*(name as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(name as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_comes_with_sources_and_kernel_times() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        siphon::media::rx_time::enable(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::default();
        assert_eq!(
            batch.recv(rx.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let before = now_us();
        for i in 0..3u8 {
            tx.send_to(&[i; 5], rx.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), 3);
        let after = now_us();
        for i in 0..3 {
            let (data, from, at) = batch.get(i);
            assert_eq!(data, &[i as u8; 5]);
            assert_eq!(from, Some(tx.local_addr().unwrap()));
            assert!(at >= before && at <= after, "{before} {at} {after}");
        }
    }
}
