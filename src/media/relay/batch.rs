//! Batched UDP receive and send for the relay loop: recvmmsg and sendmmsg.
//!
//! Written on libc by hand, because no crate does it as the loop needs:
//! mio and quinn-udp send one datagram per call (quinn-udp batches only to
//! one destination, by GSO), while the loop's packets to browsers go to a
//! different address each; nix's `recvmmsg` keeps each header's
//! `msg_namelen` from the previous call, so after an IPv4 datagram an IPv6
//! source would come back truncated. Here the headers are set up once over
//! buffers the loop owns, and each call resets what the kernel overwrote.

#![allow(unsafe_code)] // syscalls through libc; each block has its SAFETY note

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams per syscall. 32 is what quinn-udp and most QUIC stacks use:
/// past it the saving per packet is small and the buffers grow.
pub(super) const BATCH: usize = 32;
/// One buffer: room for the largest datagram plus the SRTP tag added on the
/// way out.
pub(super) const BUF: usize = 2048;
/// What a receive may fill, leaving room for the tag.
pub(super) const MAX_RECV: usize = BUF - 64;

/// The kernel's view of a batch: one header, iovec and address per
/// datagram, pointing into buffers that live as long as it does.
struct Headers {
    hdrs: Box<[libc::mmsghdr; BATCH]>,
    _iovs: Box<[libc::iovec; BATCH]>,
    names: Box<[libc::sockaddr_storage; BATCH]>,
}

// SAFETY: the raw pointers point only into this struct's own boxes (and the
// batch's buffers, owned beside it), whose heap storage does not move when
// the struct does; nothing else holds them.
unsafe impl Send for Headers {}

impl Headers {
    fn new(bufs: &mut [[u8; BUF]; BATCH]) -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut hdrs: Box<[libc::mmsghdr; BATCH]> = Box::new(unsafe { zeroed() });
        // SAFETY: as above.
        let mut iovs: Box<[libc::iovec; BATCH]> = Box::new(unsafe { zeroed() });
        // SAFETY: as above.
        let mut names: Box<[libc::sockaddr_storage; BATCH]> = Box::new(unsafe { zeroed() });
        for i in 0..BATCH {
            iovs[i].iov_base = bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = MAX_RECV;
            let hdr = &mut hdrs[i].msg_hdr;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        Headers {
            hdrs,
            _iovs: iovs,
            names,
        }
    }

    fn iov_len(&mut self, i: usize, len: usize) {
        // SAFETY: msg_iov points at this struct's iovec `i`.
        unsafe { (*self.hdrs[i].msg_hdr.msg_iov).iov_len = len };
    }
}

/// Up to [`BATCH`] received datagrams.
pub(super) struct RecvBatch {
    // Declared first: the headers point into the buffers.
    headers: Headers,
    bufs: Box<[[u8; BUF]; BATCH]>,
    lens: [usize; BATCH],
    srcs: [Option<SocketAddr>; BATCH],
    /// The kernel cut the datagram to the buffer (MSG_TRUNC).
    truncated: [bool; BATCH],
}

impl RecvBatch {
    pub(super) fn new() -> Self {
        let mut bufs = Box::new([[0; BUF]; BATCH]);
        RecvBatch {
            headers: Headers::new(&mut bufs),
            bufs,
            lens: [0; BATCH],
            srcs: [None; BATCH],
            truncated: [false; BATCH],
        }
    }

    /// Receive what the socket holds, up to `max` datagrams (at most
    /// [`BATCH`]), without blocking. Fewer than `max` means the queue was
    /// empty when the kernel looked (it reports a socket error only on an
    /// empty queue), so the loop need not call again before the next
    /// readiness event.
    pub(super) fn recv(&mut self, socket: &impl AsRawFd, max: usize) -> io::Result<usize> {
        let max = max.min(BATCH);
        for hdr in &mut self.headers.hdrs[..max] {
            // The kernel wrote the last sender's length here.
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        let n = loop {
            // SAFETY: the first `max` headers point at iovecs over live
            // buffers of MAX_RECV bytes and at sockaddr_storages, all owned
            // by self; the kernel writes no further than those lengths.
            let r = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.headers.hdrs.as_mut_ptr(),
                    max as libc::c_uint,
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
            let hdr = &self.headers.hdrs[i];
            self.lens[i] = (hdr.msg_len as usize).min(MAX_RECV);
            self.srcs[i] = to_std(&self.headers.names[i], hdr.msg_hdr.msg_namelen);
            self.truncated[i] = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(n)
    }

    /// Whether datagram `i` of the last receive was larger than a buffer
    /// and came cut: it must be dropped, not relayed.
    pub(super) fn truncated(&self, i: usize) -> bool {
        self.truncated[i]
    }

    /// Datagram `i` of the last receive: its buffer (whole, so it can grow
    /// in place), its length, and where it came from.
    pub(super) fn get(&mut self, i: usize) -> (&mut [u8; BUF], usize, Option<SocketAddr>) {
        (&mut self.bufs[i], self.lens[i], self.srcs[i])
    }
}

/// How a receive error is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecvFault {
    /// An ICMP error the kernel queued on the socket (port or host
    /// unreachable): reading it cleared it, and datagrams behind it wait.
    Icmp,
    /// Anything else: the drain stops until the socket is readable again,
    /// so a lasting error cannot spin the loop.
    Other,
}

impl RecvFault {
    /// The kind of `e`.
    pub(super) fn of(e: &io::Error) -> RecvFault {
        match e.raw_os_error() {
            Some(
                libc::ECONNREFUSED
                | libc::ECONNRESET
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
                | libc::EMSGSIZE
                | libc::EPROTO,
            ) => RecvFault::Icmp,
            _ => RecvFault::Other,
        }
    }
}

/// ICMP errors taken in one drain before it yields: each costs a syscall
/// and an ICMP storm must not hold the loop.
const MAX_ICMP_PER_DRAIN: u32 = 64;

/// Receive errors one drain met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Faults {
    /// ICMP errors read and passed over.
    pub icmp: u32,
    /// Other errors (each ended the drain).
    pub other: u32,
}

/// Receive from `fd` in batches of up to `max` until its queue is empty,
/// handing each batch's count to `each`. Errors are counted, never retried
/// blindly: an ICMP error is read and the drain goes on (up to a bound);
/// any other error ends the drain.
pub(super) fn drain(
    rx: &mut RecvBatch,
    fd: RawFd,
    max: usize,
    mut each: impl FnMut(&mut RecvBatch, usize),
) -> Faults {
    let mut faults = Faults::default();
    loop {
        match rx.recv(&fd, max) {
            Ok(n) => {
                each(rx, n);
                if n < max.min(BATCH) {
                    return faults;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return faults,
            Err(e) => match RecvFault::of(&e) {
                RecvFault::Icmp if faults.icmp < MAX_ICMP_PER_DRAIN => faults.icmp += 1,
                RecvFault::Icmp => return faults,
                RecvFault::Other => {
                    faults.other += 1;
                    return faults;
                }
            },
        }
    }
}

/// The address the kernel wrote into `name` (`len` bytes), if IPv4 or IPv6.
pub fn to_std(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
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
pub(super) fn to_raw(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
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
    /// Toward the SIP side (else toward the browser).
    pub to_sip: bool,
    /// Bytes before protection (what the counters count).
    pub len: usize,
}

/// Up to [`BATCH`] datagrams queued for one socket, each to its own address.
pub(super) struct SendBatch {
    // Declared first: the headers point into the buffers.
    headers: Headers,
    bufs: Box<[[u8; BUF]; BATCH]>,
    meta: [Sent; BATCH],
    queued: usize,
}

impl SendBatch {
    pub(super) fn new() -> Self {
        let mut bufs = Box::new([[0; BUF]; BATCH]);
        SendBatch {
            headers: Headers::new(&mut bufs),
            bufs,
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
        self.headers.iov_len(i, len);
        let namelen = to_raw(dest, &mut self.headers.names[i]);
        self.headers.hdrs[i].msg_hdr.msg_namelen = namelen;
        self.meta[i] = meta;
        self.queued += 1;
    }

    /// Send everything queued in as few syscalls as the kernel allows, and
    /// report each packet to `done` with whether it went out. A datagram the
    /// kernel refuses (a full buffer, an unreachable address) is reported
    /// failed and the rest still go.
    pub(super) fn flush(&mut self, socket: &impl AsRawFd, mut done: impl FnMut(Sent, bool)) {
        let n = std::mem::take(&mut self.queued);
        let mut off = 0;
        while off < n {
            // SAFETY: headers off..n point at iovecs over live buffers, with
            // the lengths and addresses `push` wrote, all owned by self; the
            // kernel only reads them.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers.hdrs[off..].as_mut_ptr(),
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

/// Set the DF bit on what `socket` sends without taking part in path MTU
/// discovery (`IP_PMTUDISC_PROBE`): media packets are small and never
/// fragmented, and with DF set the kernel skips choosing an IP ID for each
/// datagram of an unconnected socket (`__ip_select_ident`). Neither socket2
/// nor nix sets this option.
pub(super) fn probe_pmtu(socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )
    };
    // SAFETY: the option value is a c_int that lives across the call.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Undo `connect` on a UDP socket (connect to `AF_UNSPEC`), so it takes
/// datagrams from any source again. std and socket2 have no call for it.
pub(super) fn disconnect(socket: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: all-zero is a valid sockaddr_storage; AF_UNSPEC is 0.
    let unspec: libc::sockaddr_storage = unsafe { zeroed() };
    // SAFETY: `unspec` lives across the call and is as long as stated.
    let r = unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&unspec as *const libc::sockaddr_storage).cast(),
            size_of::<libc::sa_family_t>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
