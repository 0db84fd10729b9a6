//! The io_uring ring of a relay loop: every `unsafe` of the io_uring path.
//!
//! Built on the `io-uring` crate (tokio-rs): it maps the rings and gives
//! typed submission entries, and stays out of the way of what the loop
//! needs, where runtime wrappers (tokio-uring, glommio, monoio) would own
//! the thread, the buffers and the sockets. What it leaves to its user is
//! written here: the provided-buffer ring (the memory the kernel receives
//! into), the headers that must outlive their submissions, and the
//! conversion of addresses.
//!
//! Lifetimes the kernel relies on, and how they hold:
//! - a buffer is the kernel's from when it is published in the buffer ring
//!   until a receive completion names it; then the loop's, until it is
//!   recycled, or until the completion of the send it was handed to;
//! - the receive header lives in this struct, which drops the ring first
//!   (field order); a send's address is written into its own buffer.

#![allow(unsafe_code)] // io_uring submissions and shared memory; each block has its SAFETY note

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, CancelBuilder, Fd, Fixed, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};

use super::batch::{to_raw, to_std, MAX_RECV};

/// Buffers in the ring: what the kernel may hold between two turns of the
/// loop. At 100,000 packets a second and a turn of a millisecond a turn
/// takes about a hundred; when they run out, receives wait in the socket
/// buffers (`ENOBUFS`, re-armed after the turn), nothing is lost.
pub(super) const BUFFERS: u16 = 512;
/// The receive header the kernel writes before each datagram
/// (`struct io_uring_recvmsg_out`: four u32).
const OUT_HDR: usize = 16;
/// Room for the source address: a sockaddr_in6 (a sockaddr_in fits).
const NAME_LEN: usize = size_of::<libc::sockaddr_in6>();
/// Where a datagram starts in its buffer.
const PAYLOAD: usize = OUT_HDR + NAME_LEN;
/// One buffer: header, address, the largest datagram the loop takes (as
/// on the epoll path) and room for the SRTP tag added on the way out.
const BUF_LEN: usize = PAYLOAD + MAX_RECV + 64;
/// The buffer group of the ring.
const GROUP: u16 = 0;
/// Submission queue entries; a full queue is submitted and reused.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: more than buffers and sends can ever post.
const CQ_ENTRIES: u32 = 8192;

/// A socket as a submission names it: by its registered slot when it has
/// one (the kernel then skips the descriptor lookup), else by descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Fixed(u32),
    Fd(RawFd),
}

/// A received datagram, parsed from its buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Datagram {
    pub bid: u16,
    pub src: Option<SocketAddr>,
    pub len: usize,
    /// Larger than the loop takes: it is dropped whole.
    pub truncated: bool,
}

/// The memory of the provided-buffer ring: the ring of entries the kernel
/// takes buffers from, and the buffers.
struct BufRing {
    entries: NonNull<BufRingEntry>,
    layout: Layout,
    bufs: Box<[u8]>,
    /// The next tail to publish (the kernel sees it on `publish`).
    tail: u16,
}

impl BufRing {
    fn new() -> io::Result<Self> {
        // The kernel wants the ring page-aligned.
        let layout =
            Layout::from_size_align(usize::from(BUFFERS) * size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        let entries =
            NonNull::new(ptr).ok_or_else(|| io::Error::other("no memory for the buffer ring"))?;
        let mut ring = BufRing {
            entries,
            layout,
            bufs: vec![0; usize::from(BUFFERS) * BUF_LEN].into_boxed_slice(),
            tail: 0,
        };
        for bid in 0..BUFFERS {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Give buffer `bid` back to the kernel (seen at the next `publish`).
    fn recycle(&mut self, bid: u16) {
        let mask = BUFFERS - 1;
        let addr = self.bufs[usize::from(bid) * BUF_LEN..].as_mut_ptr() as u64;
        // SAFETY: the index is masked into the ring's BUFFERS entries; the
        // kernel reads entries only up to the published tail, and this one
        // is past it.
        let entry = unsafe { &mut *self.entries.as_ptr().add(usize::from(self.tail & mask)) };
        entry.set_addr(addr);
        entry.set_len(BUF_LEN as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Let the kernel see the buffers recycled since the last call.
    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field,
        // which the kernel reads as an atomic u16 (io_uring_buf_ring).
        let tail = unsafe { &*BufRingEntry::tail(self.entries.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    fn buf(&mut self, bid: u16) -> &mut [u8] {
        let start = usize::from(bid) * BUF_LEN;
        &mut self.bufs[start..start + BUF_LEN]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring that read it
        // is gone (it is dropped before this, see `Ring`'s field order).
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) };
    }
}

/// One relay loop's ring, its buffers and its registered sockets.
pub(super) struct Ring {
    // Declared first: dropped (and its submissions ended) before the
    // memory they point into.
    ring: IoUring,
    bufs: BufRing,
    /// The multishot receives' header (only its lengths matter).
    recv_hdr: Box<libc::msghdr>,
    /// Slots in the registered-file table.
    files: u32,
    /// Sends queued since the last wait: each completes while that wait
    /// submits it, and must not end the wait on its own.
    sends: usize,
}

// SAFETY: the raw pointers point only into this struct's own allocations;
// the ring moves to its loop's thread once, before its first submission.
unsafe impl Send for Ring {}

impl Ring {
    /// A ring for one loop, with room for `files` registered sockets, or
    /// why this kernel (or its seccomp profile) cannot have one.
    pub(super) fn new(files: u32) -> io::Result<Self> {
        check_kernel()?;
        let ring = build()?;
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::other(
                "io_uring without EXT_ARG (kernel older than 5.11)",
            ));
        }
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in [
            (opcode::RecvMsgMulti::CODE, "recvmsg"),
            (opcode::Send::CODE, "send"),
            (opcode::PollAdd::CODE, "poll_add"),
            (opcode::AsyncCancel::CODE, "async_cancel"),
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::other(format!("io_uring without {name}")));
            }
        }
        let bufs = BufRing::new()?;
        // SAFETY: the entries live in `bufs`, which this struct drops after
        // the ring.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries.as_ptr() as u64,
                BUFFERS,
                GROUP,
                0,
            )?;
        }
        ring.submitter().register_files_sparse(files)?;
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut recv_hdr: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
        recv_hdr.msg_namelen = NAME_LEN as libc::socklen_t;
        Ok(Ring {
            ring,
            bufs,
            recv_hdr,
            files,
            sends: 0,
        })
    }

    /// The registered slot `index` holds `fd` from now on (`-1`: none).
    pub(super) fn register(&mut self, index: u32, fd: RawFd) -> io::Result<()> {
        self.ring.submitter().register_files_update(index, &[fd])?;
        Ok(())
    }

    /// Slots in the registered-file table.
    pub(super) fn files(&self) -> u32 {
        self.files
    }

    /// Receive on `target` into the buffer ring, datagram after datagram,
    /// each completion tagged `user_data`.
    pub(super) fn recv(&mut self, target: Target, user_data: u64) -> io::Result<()> {
        let hdr: *const libc::msghdr = &*self.recv_hdr;
        let entry = match target {
            Target::Fixed(i) => opcode::RecvMsgMulti::new(Fixed(i), hdr, GROUP).build(),
            Target::Fd(fd) => opcode::RecvMsgMulti::new(Fd(fd), hdr, GROUP).build(),
        };
        self.push(entry.user_data(user_data))
    }

    /// Completions tagged `user_data` each time `fd` turns readable.
    pub(super) fn poll(&mut self, fd: RawFd, user_data: u64) -> io::Result<()> {
        let entry = opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build();
        self.push(entry.user_data(user_data))
    }

    /// End the submission tagged `user_data` (its last completion says so).
    pub(super) fn cancel(&mut self, user_data: u64) -> io::Result<()> {
        self.push(opcode::AsyncCancel::new(user_data).build())
    }

    /// Send `len` bytes of buffer `bid`, from where its datagram starts, to
    /// `dest` (`None`: the socket is connected); the buffer is the kernel's
    /// until the completion tagged `user_data`, and then goes back to the
    /// ring with `recycle`.
    pub(super) fn send(
        &mut self,
        bid: u16,
        len: usize,
        dest: Option<SocketAddr>,
        target: Target,
        user_data: u64,
    ) -> io::Result<()> {
        let buf = self.bufs.buf(bid);
        let name = dest.map(|dest| {
            // The destination goes where the source was, in the buffer's
            // own header: the cache line is hot, and it lives as long as
            // the send.
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut name: libc::sockaddr_storage = unsafe { zeroed() };
            let name_len = (to_raw(dest, &mut name) as usize).min(NAME_LEN);
            // SAFETY: `name` is a plain struct of at least `name_len` bytes.
            let raw = unsafe {
                std::slice::from_raw_parts(
                    (&name as *const libc::sockaddr_storage).cast::<u8>(),
                    name_len,
                )
            };
            buf[OUT_HDR..OUT_HDR + name_len].copy_from_slice(raw);
            let ptr: *const libc::sockaddr = buf[OUT_HDR..].as_ptr().cast();
            (ptr, name_len as libc::socklen_t)
        });
        let data = buf[PAYLOAD..PAYLOAD + len].as_ptr();
        let len = len as u32;
        let entry = match target {
            Target::Fixed(i) => opcode::Send::new(Fixed(i), data, len),
            Target::Fd(fd) => opcode::Send::new(Fd(fd), data, len),
        };
        // MSG_DONTWAIT: a full socket buffer fails the send (counted), as
        // on the epoll path, instead of parking it.
        let entry = entry.flags(libc::MSG_DONTWAIT);
        let entry = match name {
            Some((ptr, len)) => entry.dest_addr(ptr).dest_addr_len(len),
            None => entry,
        };
        self.sends += 1;
        self.push(entry.build().user_data(user_data))
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: what the entry points at (buffers, the receive header,
            // send addresses) lives in this struct until its completion.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            // Full: hand what is queued to the kernel and go on.
            self.ring.submit()?;
        }
    }

    /// Publish recycled buffers, submit what is queued and wait up to
    /// `timeout` for a completion besides those of the sends it submits.
    pub(super) fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.bufs.publish();
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        // The sends complete during the call; counting them in keeps the
        // wait from ending on them alone, which would cost a second wait
        // per turn. A turn starts at the first other completion: waiting
        // for fuller turns (MIN_TIMEOUT, 50 and 200 µs for 16) measured
        // dearer, not cheaper.
        let want = std::mem::take(&mut self.sends) + 1;
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Move the completions posted so far into `out` (cleared first).
    pub(super) fn reap(&mut self, out: &mut Vec<cqueue::Entry>) {
        out.clear();
        out.extend(self.ring.completion().take(out.capacity()));
    }

    /// The datagram a receive completion (`result`, `flags`) delivered, if
    /// it holds one; its buffer is the loop's until recycled or sent.
    pub(super) fn datagram(&mut self, result: i32, flags: u32) -> Option<Datagram> {
        let bid = cqueue::buffer_select(flags)?;
        if result < 0 {
            self.recycle(bid);
            return None;
        }
        let filled = (result as usize).min(BUF_LEN);
        let parsed = RecvMsgOut::parse(&self.bufs.buf(bid)[..filled], &self.recv_hdr);
        let Ok(msg) = parsed else {
            self.recycle(bid);
            return None;
        };
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut name: libc::sockaddr_storage = unsafe { zeroed() };
        let name_data = msg.name_data();
        let copied = name_data.len().min(size_of::<libc::sockaddr_storage>());
        // SAFETY: `copied` bytes fit in `name`, and `name_data` holds them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                name_data.as_ptr(),
                (&mut name as *mut libc::sockaddr_storage).cast::<u8>(),
                copied,
            );
        }
        let len = msg.payload_data().len();
        Some(Datagram {
            bid,
            src: to_std(&name, copied as libc::socklen_t),
            len,
            truncated: msg.is_payload_truncated() || len > MAX_RECV,
        })
    }

    /// Buffer `bid` from where its datagram starts, with the room behind it.
    pub(super) fn payload(&mut self, bid: u16) -> &mut [u8] {
        &mut self.bufs.buf(bid)[PAYLOAD..]
    }

    /// Give buffer `bid` back to the kernel.
    pub(super) fn recycle(&mut self, bid: u16) {
        self.bufs.recycle(bid);
    }
}

/// The tag of the cancellation that ends every submission at teardown.
const CANCEL_ALL: u64 = u64::MAX;
/// How long teardown waits for the ring's submissions to end.
const TEARDOWN: Duration = Duration::from_millis(500);

impl Drop for Ring {
    /// End every submission and let go of the registered sockets before the
    /// ring goes: the kernel tears a ring down in the background, and a
    /// socket it still held would keep its port bound after siphon exits
    /// (a restart could not bind its WebRTC port).
    fn drop(&mut self) {
        let _ = self.push(
            opcode::AsyncCancel2::new(CancelBuilder::any())
                .build()
                .user_data(CANCEL_ALL),
        );
        let deadline = Instant::now() + TEARDOWN;
        let (mut cancelled, mut ended) = (None, 0usize);
        while Instant::now() < deadline && cancelled.is_none_or(|n| ended < n) {
            if self.submit_and_wait(Duration::from_millis(10)).is_err() {
                break;
            }
            for cqe in self.ring.completion() {
                if cqe.user_data() == CANCEL_ALL {
                    cancelled = Some(usize::try_from(cqe.result()).unwrap_or(0));
                } else if !cqueue::more(cqe.flags()) {
                    ended += 1;
                }
            }
        }
        let _ = self.ring.submitter().unregister_files();
        let _ = self.ring.submitter().unregister_buf_ring(GROUP);
    }
}

/// A ring that runs its completions on the loop's own thread, at its own
/// wait (DEFER_TASKRUN, 6.1), else a plain one.
fn build() -> io::Result<IoUring> {
    let tuned = IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .setup_submit_all()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(SQ_ENTRIES);
    match tuned {
        Ok(ring) => Ok(ring),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES),
        Err(e) => Err(e),
    }
}

/// Multishot recvmsg and send with an address need Linux 6.0; older
/// kernels would take the entries and do something else with them.
fn check_kernel() -> io::Result<()> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if major < 6 {
        return Err(io::Error::other(format!(
            "kernel {} is older than 6.0",
            release.trim()
        )));
    }
    Ok(())
}

/// Whether a loop's ring can be had here, or why not.
#[cfg(test)]
pub(super) fn probe() -> io::Result<()> {
    Ring::new(16).map(drop)
}
