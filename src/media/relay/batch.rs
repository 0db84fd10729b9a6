//! Batched UDP receive and send for the relay loop: recvmmsg and sendmmsg.
//!
//! Written on libc by hand, because no crate does it as the loop needs:
//! mio and quinn-udp send one datagram per call (quinn-udp batches only to
//! one destination, by GSO), while the loop's packets to browsers go to a
//! different address each; nix's `recvmmsg` keeps each header's
//! `msg_namelen` from the previous call, so after an IPv4 datagram an IPv6
//! source would come back truncated. Here the headers are built afresh on
//! the stack for each call, over buffers the loop owns.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// Datagrams per syscall. 32 is what quinn-udp and most QUIC stacks use:
/// past it the saving per packet is small and the buffers grow.
pub(super) const BATCH: usize = 32;
/// One buffer: room for the largest datagram plus the SRTP tag added on the
/// way out.
pub(super) const BUF: usize = 2048;
/// What a receive may fill, leaving room for the tag.
pub(super) const MAX_RECV: usize = BUF - 64;

/// Up to [`BATCH`] received datagrams.
pub(super) struct RecvBatch {
    bufs: Box<[[u8; BUF]; BATCH]>,
    lens: [usize; BATCH],
    srcs: [Option<SocketAddr>; BATCH],
}

impl RecvBatch {
    pub(super) fn new() -> Self {
        RecvBatch {
            bufs: Box::new([[0; BUF]; BATCH]),
            lens: [0; BATCH],
            srcs: [None; BATCH],
        }
    }

    /// Receive what the socket holds, up to a batch, without blocking.
    /// Fewer than [`BATCH`] means the queue was empty when the kernel looked
    /// (it reports a socket error only on an empty queue), so the loop need
    /// not call again before the next readiness event.
    pub(super) fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (((hdr, iov), name), buf) in hdrs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(names.iter_mut())
            .zip(self.bufs.iter_mut())
        {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = MAX_RECV;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        let n = loop {
            // SAFETY: every header points at an iovec over a live buffer of
            // MAX_RECV bytes and at a sockaddr_storage, all of which outlive
            // the call; the kernel writes no further than those lengths.
            let r = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        for i in 0..n {
            self.lens[i] = (hdrs[i].msg_len as usize).min(MAX_RECV);
            self.srcs[i] = to_std(&names[i], hdrs[i].msg_hdr.msg_namelen);
        }
        Ok(n)
    }

    /// Datagram `i` of the last receive: its buffer (whole, so it can grow
    /// in place), its length, and where it came from.
    pub(super) fn get(&mut self, i: usize) -> (&mut [u8; BUF], usize, Option<SocketAddr>) {
        (&mut self.bufs[i], self.lens[i], self.srcs[i])
    }
}

fn to_std(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match name.ss_family as libc::c_int {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(name as *const _ as *const libc::sockaddr_in) };
            let ip = u32::from_be(a.sin_addr.s_addr);
            Some(SocketAddrV4::new(ip.into(), u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(name as *const _ as *const libc::sockaddr_in6) };
            let v6 = SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            );
            Some(v6.into())
        }
        _ => None,
    }
}

/// `addr` as the kernel takes it, and its length.
fn to_raw(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// What the loop needs to account for a packet once it is sent or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Sent {
    /// The call's slot.
    pub slot: usize,
    pub is_rtcp: bool,
    /// Bytes before protection (what the counters count).
    pub len: usize,
}

/// Up to [`BATCH`] datagrams queued for one socket, each to its own address.
pub(super) struct SendBatch {
    bufs: Box<[[u8; BUF]; BATCH]>,
    lens: [usize; BATCH],
    dests: [SocketAddr; BATCH],
    meta: [Sent; BATCH],
    queued: usize,
}

impl SendBatch {
    pub(super) fn new() -> Self {
        SendBatch {
            bufs: Box::new([[0; BUF]; BATCH]),
            lens: [0; BATCH],
            dests: [SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            meta: [Sent::default(); BATCH],
            queued: 0,
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.queued == BATCH
    }

    /// Queue a copy of `data` for `dest`. The caller flushes when full.
    pub(super) fn push(&mut self, data: &[u8], dest: SocketAddr, meta: Sent) {
        let i = self.queued;
        let len = data.len().min(BUF);
        self.bufs[i][..len].copy_from_slice(&data[..len]);
        self.lens[i] = len;
        self.dests[i] = dest;
        self.meta[i] = meta;
        self.queued += 1;
    }

    /// Send everything queued in as few syscalls as the kernel allows, and
    /// report each packet to `done` with whether it went out. A datagram the
    /// kernel refuses (a full buffer, an unreachable address) is reported
    /// failed and the rest still go.
    pub(super) fn flush(&mut self, socket: &impl AsRawFd, mut done: impl FnMut(Sent, bool)) {
        let n = std::mem::take(&mut self.queued);
        if n == 0 {
            return;
        }
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..n {
            let namelen = to_raw(self.dests[i], &mut names[i]);
            iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = self.lens[i];
            let hdr = &mut hdrs[i].msg_hdr;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = namelen;
        }
        let mut off = 0;
        while off < n {
            // SAFETY: headers off..n point at live buffers, iovecs and
            // addresses that outlive the call; the kernel only reads them.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    hdrs[off..].as_mut_ptr(),
                    (n - off) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                let sent = r as usize;
                for meta in &self.meta[off..off + sent] {
                    done(*meta, true);
                }
                off += sent;
            } else if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                // The error (or a send of none, which Linux does not do)
                // belongs to the first datagram of the call.
                done(self.meta[off], false);
                off += 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
