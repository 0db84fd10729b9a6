//! The kernel's receive time of each datagram (`SO_TIMESTAMPNS`), for the
//! echo extension's tap and the load tool's browsers.
//!
//! `recvmsg` with control messages is hand-written on libc: tokio and mio
//! expose no ancillary data, and this is a few lines on a socket tokio
//! already polls.

#![allow(unsafe_code)] // syscalls through libc; each block has its SAFETY note

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::UdpSocket;

pub use crate::media::relay::batch::to_std as source;

/// Now, in µs since the UNIX epoch (the clock of kernel timestamps).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Ask the kernel to timestamp every datagram `sock` receives.
pub fn enable(sock: &impl AsRawFd) -> io::Result<()> {
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
    let src = source(&name, msg.msg_namelen)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))?;
    Ok((n as usize, src, kernel_time(&msg).unwrap_or_else(now_us)))
}

/// The SCM_TIMESTAMPNS control message of a received `msg`, in µs since
/// the UNIX epoch. `msg` must be a header a receive call filled in, with
/// `msg_control` pointing at its control buffer.
pub fn kernel_time(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: msg is a header recvmsg (or recvmmsg) filled in; the CMSG macros walk only
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

    #[tokio::test]
    async fn the_kernel_stamps_what_a_socket_receives() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable(&rx).unwrap();
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
