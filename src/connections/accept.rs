//! The accept step every TCP listener shares: accept, admit through the
//! gate or close at once, and back off when `accept` itself fails.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use tokio::net::{TcpListener, TcpStream};

use super::{Backoff, Gate, Permit, Refused};

/// A listener behind its gate.
pub struct Acceptor {
    listener: TcpListener,
    gate: Gate,
    backoff: Backoff,
    /// An fd held back so that, out of fds, one pending connection can
    /// still be accepted and closed: the peer hears a close instead of
    /// waiting in the backlog, and the loop does not wake for it again.
    spare: Option<File>,
}

impl Acceptor {
    /// Accepts on `listener`, admitting through `gate`.
    pub fn new(listener: TcpListener, gate: Gate) -> Self {
        Acceptor {
            listener,
            gate,
            backoff: Backoff::default(),
            spare: spare_fd(),
        }
    }

    /// The listener's gate.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next admitted connection. Refused ones are closed and counted
    /// here; a failed `accept` waits out the backoff. Cancel-safe.
    pub async fn next(&mut self) -> (TcpStream, SocketAddr, Permit) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff.succeeded();
                    match self.gate.admit(peer.ip()) {
                        Ok(permit) => return (stream, peer, permit),
                        Err(why) => {
                            tracing::debug!(%peer, reason = why.reason(), "connection refused");
                        }
                    }
                }
                Err(e) => self.failed(&e).await,
            }
        }
    }

    async fn failed(&mut self, e: &io::Error) {
        self.gate.accept_failed();
        if out_of_fds(e) && self.spare.take().is_some() {
            if let Some(Ok((stream, peer))) = accept_waiting(&self.listener) {
                drop(stream);
                self.gate.refused(Refused::FdExhausted);
                tracing::debug!(%peer, "out of file descriptors: connection closed");
            }
            self.spare = spare_fd();
        }
        let wait = self.backoff.failed();
        tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "accept failed; backing off");
        tokio::time::sleep(wait).await;
    }
}

/// A connection already waiting to be accepted, without waiting for one.
fn accept_waiting(listener: &TcpListener) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    let accept = std::pin::pin!(listener.accept());
    match accept.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

fn spare_fd() -> Option<File> {
    File::open("/dev/null").ok()
}

fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
