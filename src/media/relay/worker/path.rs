//! The loop's IO path, chosen once at start: io_uring where the kernel
//! allows it, epoll otherwise (`media.io`).

use std::io;
use std::sync::Arc;

use nix::sys::eventfd::EventFd;

use super::epoll::Epoll;
use super::uring_loop::Uring;
use super::Worker;
use crate::config::RelayIo;

/// The IO path a loop runs on.
pub(in super::super) enum Path {
    /// Readiness and recvmmsg/sendmmsg.
    Epoll(Epoll),
    /// Multishot receives into a buffer ring, sends batched per turn.
    Uring(Box<Uring>),
}

impl Path {
    /// The path `want` asks for, built for `worker`'s WebRTC socket and
    /// `waker`.
    pub(in super::super) fn choose(
        worker: &Worker,
        waker: Arc<EventFd>,
        want: RelayIo,
    ) -> io::Result<Path> {
        let uring = || Uring::new(worker, waker.clone()).map(|u| Path::Uring(Box::new(u)));
        match want {
            RelayIo::Epoll => Epoll::new(worker, waker).map(Path::Epoll),
            RelayIo::IoUring => {
                uring().map_err(|e| io::Error::other(format!("media.io = \"io_uring\": {e}")))
            }
            RelayIo::Auto => uring().or_else(|e| {
                tracing::warn!(error = %e, "io_uring unavailable; the relay loop uses epoll");
                Epoll::new(worker, waker.clone()).map(Path::Epoll)
            }),
        }
    }

    /// The name in logs and in `siphon_relay_io{mode}`.
    pub(in super::super) fn mode(&self) -> &'static str {
        match self {
            Path::Epoll(_) => "epoll",
            Path::Uring(_) => "io_uring",
        }
    }

    /// The loop; `Ok` when told to shut down, `Err` when its IO fails.
    pub(in super::super) fn run(&mut self, worker: &mut Worker) -> io::Result<()> {
        match self {
            Path::Epoll(p) => p.run(worker),
            Path::Uring(p) => p.run(worker),
        }
    }
}
