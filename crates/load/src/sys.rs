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
use std::net::SocketAddr;
use std::os::fd::RawFd;

use siphon::media::rx_time::{kernel_time, source};

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
            self.from[i] = source(&self.names[i], h.msg_hdr.msg_namelen);
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
