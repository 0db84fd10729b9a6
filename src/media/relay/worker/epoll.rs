//! The epoll IO path (mio): readiness per socket, recvmmsg on each readable
//! socket, sendmmsg for the packets to browsers (one shared socket), one
//! sendto per packet to SIP (each call has its own socket). The fallback
//! where io_uring is unavailable or forbidden.

use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::eventfd::EventFd;

use super::super::batch::{self, RecvBatch, SendBatch, BATCH};
use super::{Attach, Out, Via, Worker};

const WEBRTC: Token = Token(0);
const WAKER: Token = Token(1);
/// Datagrams taken per receive from a call's own socket: at 50 packets a
/// second it rarely holds more than one, and a smaller batch is less to set
/// up per call.
const SIP_BATCH: usize = 4;

/// Tokens: 0 WebRTC socket, 1 waker, then two per slot (RTP, RTCP).
fn slot_tokens(slot: usize) -> (Token, Token) {
    (Token(2 + 2 * slot), Token(3 + 2 * slot))
}

/// The loop's poller and its batches.
pub(in super::super) struct Epoll {
    poll: Poll,
    waker: Arc<EventFd>,
    rx: Box<RecvBatch>,
    tx: Box<SendBatch>,
}

impl Attach for Poll {
    fn attach(&mut self, index: usize, rtp: RawFd, rtcp: RawFd) -> io::Result<()> {
        let (rtp_token, rtcp_token) = slot_tokens(index);
        let registry = self.registry();
        registry.register(&mut SourceFd(&rtp), rtp_token, Interest::READABLE)?;
        registry
            .register(&mut SourceFd(&rtcp), rtcp_token, Interest::READABLE)
            .inspect_err(|_| {
                let _ = registry.deregister(&mut SourceFd(&rtp));
            })
    }

    fn detach(&mut self, _index: usize, rtp: RawFd, rtcp: RawFd) {
        let _ = self.registry().deregister(&mut SourceFd(&rtp));
        let _ = self.registry().deregister(&mut SourceFd(&rtcp));
    }
}

impl Epoll {
    /// A poller watching the loop's WebRTC socket and its waker.
    pub(in super::super) fn new(worker: &Worker, waker: Arc<EventFd>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let webrtc = worker.webrtc_fd();
        poll.registry()
            .register(&mut SourceFd(&webrtc), WEBRTC, Interest::READABLE)?;
        poll.registry()
            .register(&mut SourceFd(&waker.as_raw_fd()), WAKER, Interest::READABLE)?;
        Ok(Epoll {
            poll,
            waker,
            rx: Box::new(RecvBatch::new()),
            tx: Box::new(SendBatch::new()),
        })
    }

    /// The loop; `Ok` when told to shut down, `Err` when its poll fails.
    pub(in super::super) fn run(&mut self, w: &mut Worker) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            if w.poll_fails() {
                return Err(io::Error::other("injected poll failure"));
            }
            if let Err(e) = self.poll.poll(&mut events, Some(w.deadline_in())) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            w.counters.wakeup();
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WEBRTC => {
                        // Packets already queued for browsers go first: a
                        // full drain of this socket can take a while.
                        self.flush_tx(w);
                        self.drain(w, None, now);
                    }
                    WAKER => {
                        self.flush_tx(w);
                        // Level-triggered by nature: read to clear it.
                        let _ = self.waker.read();
                        if !w.run_commands(now, &mut self.poll) {
                            return Ok(());
                        }
                    }
                    Token(t) => self.drain(w, Some(((t - 2) / 2, t % 2 == 1)), now),
                }
            }
            self.flush_tx(w);
            w.on_timers(Instant::now());
        }
    }

    /// Receive what one socket holds (the WebRTC socket for `None`, else a
    /// slot's RTP or RTCP socket) and relay each datagram.
    fn drain(&mut self, w: &mut Worker, sip: Option<(usize, bool)>, now: Instant) {
        let (fd, max) = match sip {
            None => (w.webrtc_fd(), BATCH),
            Some((index, rtcp)) => {
                let via = if rtcp { Via::Rtcp } else { Via::Rtp };
                // The slot stays while its socket drains: only commands free slots.
                let Some(socket) = w.socket(index, via) else {
                    return;
                };
                let fd = socket.as_raw_fd();
                (fd, SIP_BATCH)
            }
        };
        let Epoll { rx, tx, .. } = self;
        let faults = batch::drain(rx, fd, max, |rx, n| {
            for i in 0..n {
                let truncated = rx.truncated(i);
                let (buf, len, src) = rx.get(i);
                let Some(src) = src else { continue };
                if truncated {
                    w.oversize(sip.map(|(index, _)| index));
                    continue;
                }
                if let Some(out) = w.on_datagram(now, sip, src, &mut buf[..], len) {
                    send(w, tx, &buf[..out.len], out);
                }
            }
        });
        w.counters.recv_faults(faults);
    }

    /// Send the packets queued for browsers and count each as sent or not.
    fn flush_tx(&mut self, w: &mut Worker) {
        flush(w, &mut self.tx);
    }
}

fn flush(w: &mut Worker, tx: &mut SendBatch) {
    let fd = w.webrtc_fd();
    tx.flush(&fd, |sent, ok| w.sent(sent, ok));
}

/// Packets to browsers join the batch on the shared socket; packets to SIP
/// go out at once on the call's own socket.
fn send(w: &mut Worker, tx: &mut SendBatch, data: &[u8], out: Out) {
    if out.via == Via::WebRtc {
        tx.push(data, out.dest, out.sent);
        if tx.is_full() {
            flush(w, tx);
        }
        return;
    }
    let ok = w.socket(out.sent.slot, out.via).is_some_and(|s| {
        let sent = match out.connected {
            true => s.send(data),
            false => s.send_to(data, out.dest),
        };
        sent.is_ok()
    });
    w.sent(out.sent, ok);
}
