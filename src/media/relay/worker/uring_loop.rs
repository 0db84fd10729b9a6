//! The io_uring IO path: every socket of the loop receives by a multishot
//! recvmsg into one shared buffer ring, so a datagram costs no syscall and
//! no readiness event of its own; relayed packets are sent from the buffer
//! they arrived in, all of a turn's sends in the one submission that also
//! waits for the next turn. Sockets are registered files where the table
//! has room. The ring and its `unsafe` live in `relay::uring`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use io_uring::cqueue;
use nix::sys::eventfd::EventFd;

use super::super::batch::{RecvFault, Sent};
use super::super::uring::{Datagram, Ring, Target, BUFFERS};
use super::{Attach, Via, Worker};

/// What a submission is, in the top byte of its tag.
const WEBRTC: u64 = 1;
const RTP: u64 = 2;
const RTCP: u64 = 3;
const SEND: u64 = 4;
const WAKER: u64 = 5;
const GEN_MASK: u32 = 0x00ff_ffff;
/// Registered files at most: the WebRTC socket and two per call.
const MAX_FILES: u64 = 32768;
/// Completions taken per reap.
const REAP: usize = 256;

/// A submission's tag: its kind, the generation of its slot and the slot
/// (or buffer) it is for.
fn tag(kind: u64, gen: u32, index: usize) -> u64 {
    kind << 56 | u64::from(gen & GEN_MASK) << 32 | (index as u64 & 0xffff_ffff)
}

fn untag(user_data: u64) -> (u64, u32, usize) {
    let kind = user_data >> 56;
    let gen = (user_data >> 32) as u32 & GEN_MASK;
    (kind, gen, (user_data & 0xffff_ffff) as usize)
}

/// The loop's ring and what its submissions need remembered.
pub(in super::super) struct Uring {
    ring: Ring,
    waker: Arc<EventFd>,
    /// Each slot's generation, bumped when its call leaves: completions
    /// tagged with an older one belong to a call that is gone.
    gens: Vec<u32>,
    /// What each buffer's send counts when it completes (`None`: no send).
    sends: Box<[Option<Sent>]>,
    cqes: Vec<cqueue::Entry>,
    /// Receives that ended (buffers ran out, an error) and are armed again
    /// after the turn.
    rearm: Vec<u64>,
}

impl Uring {
    /// A ring receiving on `worker`'s WebRTC socket and watching `waker`,
    /// or why io_uring cannot be had here.
    pub(in super::super) fn new(worker: &Worker, waker: Arc<EventFd>) -> io::Result<Self> {
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_err(io::Error::from)?;
        let files = soft.clamp(1, MAX_FILES) as u32;
        let mut ring = Ring::new(files)?;
        ring.register(0, worker.webrtc_fd())?;
        ring.recv(Target::Fixed(0), tag(WEBRTC, 0, 0))?;
        ring.poll(waker.as_raw_fd(), tag(WAKER, 0, 0))?;
        Ok(Uring {
            ring,
            waker,
            gens: Vec::new(),
            sends: vec![None; usize::from(BUFFERS)].into_boxed_slice(),
            cqes: Vec::with_capacity(REAP),
            rearm: Vec::new(),
        })
    }

    /// The loop; `Ok` when told to shut down, `Err` when its ring fails.
    pub(in super::super) fn run(&mut self, w: &mut Worker) -> io::Result<()> {
        loop {
            if w.poll_fails() {
                return Err(io::Error::other("injected poll failure"));
            }
            self.ring.submit_and_wait(w.deadline_in())?;
            w.counters.wakeup();
            if !self.complete_all(w, Instant::now()) {
                return Ok(());
            }
            self.rearm(w)?;
            w.on_timers(Instant::now());
        }
    }

    /// Handle every completion posted, commands where the waker's comes
    /// among them; false when the loop must stop.
    fn complete_all(&mut self, w: &mut Worker, now: Instant) -> bool {
        let mut cqes = std::mem::take(&mut self.cqes);
        let mut go_on = true;
        loop {
            self.ring.reap(&mut cqes);
            for cqe in &cqes {
                go_on &= self.complete(w, cqe, now);
            }
            if cqes.len() < REAP || !go_on {
                break;
            }
        }
        self.cqes = cqes;
        go_on
    }

    /// Handle one completion; false when a command stops the loop.
    fn complete(&mut self, w: &mut Worker, cqe: &cqueue::Entry, now: Instant) -> bool {
        let (kind, gen, index) = untag(cqe.user_data());
        let (result, flags) = (cqe.result(), cqe.flags());
        match kind {
            SEND => {
                let bid = index as u16;
                self.ring.recycle(bid);
                if let Some(sent) = self.sends[usize::from(bid)].take() {
                    w.sent(sent, result >= 0);
                }
            }
            WAKER => {
                if !cqueue::more(flags) {
                    self.rearm.push(cqe.user_data());
                }
                // Commands run where they fall among the packets, so a
                // packet sent after a change is relayed under it.
                let _ = self.waker.read();
                return w.run_commands(now, self);
            }
            WEBRTC | RTP | RTCP => {
                let stale = kind != WEBRTC && self.gens.get(index) != Some(&gen);
                match self.ring.datagram(result, flags) {
                    Some(d) if stale => self.ring.recycle(d.bid),
                    Some(d) => self.relay(w, kind, index, d, now),
                    None => w.counters.recv_fault(result),
                }
                if !cqueue::more(flags) && !stale && result != -libc::ECANCELED {
                    self.rearm.push(cqe.user_data());
                }
            }
            // Cancellations and anything else: nothing to do.
            _ => {}
        }
        true
    }

    /// Relay one datagram from its buffer, or give the buffer back.
    fn relay(&mut self, w: &mut Worker, kind: u64, index: usize, d: Datagram, now: Instant) {
        let sip = match kind {
            WEBRTC => None,
            kind => Some((index, kind == RTCP)),
        };
        let Some(src) = d.src.filter(|_| !d.truncated) else {
            if d.truncated {
                w.oversize(sip.map(|(index, _)| index));
            }
            return self.ring.recycle(d.bid);
        };
        let buf = self.ring.payload(d.bid);
        let Some(out) = w.on_datagram(now, sip, src, buf, d.len) else {
            return self.ring.recycle(d.bid);
        };
        let target = match self.target(w, out.sent.slot, out.via) {
            Some(target) => target,
            None => {
                self.ring.recycle(d.bid);
                return w.sent(out.sent, false);
            }
        };
        self.sends[usize::from(d.bid)] = Some(out.sent);
        let user_data = tag(SEND, 0, usize::from(d.bid));
        let dest = (!out.connected).then_some(out.dest);
        if self
            .ring
            .send(d.bid, out.len, dest, target, user_data)
            .is_err()
        {
            self.ring.recycle(d.bid);
            w.sent(out.sent, false);
        }
    }

    /// The registered slot of socket `via` of call slot `index`, if the
    /// table has room for it.
    fn fixed(&self, index: usize, via: Via) -> Option<u32> {
        let file = match via {
            Via::WebRtc => return Some(0),
            Via::Rtp => 1 + 2 * index as u64,
            Via::Rtcp => 2 + 2 * index as u64,
        };
        (file < u64::from(self.ring.files())).then_some(file as u32)
    }

    fn target(&self, w: &Worker, index: usize, via: Via) -> Option<Target> {
        match self.fixed(index, via) {
            Some(file) => Some(Target::Fixed(file)),
            None => Some(Target::Fd(w.socket(index, via)?.as_raw_fd())),
        }
    }

    /// Arm again the receives that ended, unless their call is gone.
    fn rearm(&mut self, w: &Worker) -> io::Result<()> {
        let mut rearm = std::mem::take(&mut self.rearm);
        for user_data in rearm.drain(..) {
            let (kind, gen, index) = untag(user_data);
            let armed = match kind {
                WAKER => self.ring.poll(self.waker.as_raw_fd(), user_data),
                WEBRTC => self.ring.recv(Target::Fixed(0), user_data),
                RTP | RTCP if self.gens.get(index) == Some(&gen) => {
                    let via = if kind == RTP { Via::Rtp } else { Via::Rtcp };
                    match self.target(w, index, via) {
                        Some(target) => self.ring.recv(target, user_data),
                        None => Ok(()),
                    }
                }
                _ => Ok(()),
            };
            armed?;
        }
        self.rearm = rearm;
        Ok(())
    }
}

impl Attach for Uring {
    fn attach(&mut self, index: usize, rtp: RawFd, rtcp: RawFd) -> io::Result<()> {
        if self.gens.len() <= index {
            self.gens.resize(index + 1, 0);
        }
        let gen = self.gens[index];
        for (kind, via, fd) in [(RTP, Via::Rtp, rtp), (RTCP, Via::Rtcp, rtcp)] {
            let target = match self.fixed(index, via) {
                Some(file) => self.ring.register(file, fd).map(|()| Target::Fixed(file)),
                None => Ok(Target::Fd(fd)),
            };
            let armed = target.and_then(|t| self.ring.recv(t, tag(kind, gen, index)));
            if let Err(e) = armed {
                // Half attached: let go of what was, as for a call that left.
                self.detach(index, rtp, rtcp);
                return Err(e);
            }
        }
        Ok(())
    }

    fn detach(&mut self, index: usize, _rtp: RawFd, _rtcp: RawFd) {
        let Some(gen) = self.gens.get_mut(index) else {
            return;
        };
        let old = *gen;
        *gen = old.wrapping_add(1) & GEN_MASK;
        // Sends still under way count for no call: the slot may soon hold
        // another.
        for sent in self.sends.iter_mut().flatten() {
            if sent.slot == index {
                sent.slot = usize::MAX;
            }
        }
        for (kind, via) in [(RTP, Via::Rtp), (RTCP, Via::Rtcp)] {
            // The receive holds its socket open until it ends.
            let _ = self.ring.cancel(tag(kind, old, index));
            if let Some(file) = self.fixed(index, via) {
                let _ = self.ring.register(file, -1);
            }
        }
    }
}

impl RecvFault {
    /// The kind of a failed receive completion's `result` (a negated errno).
    fn of_result(result: i32) -> Option<RecvFault> {
        match -result {
            // Out of buffers (armed again after the turn) or cancelled.
            libc::ENOBUFS | libc::ECANCELED => None,
            errno => Some(RecvFault::of(&io::Error::from_raw_os_error(errno))),
        }
    }
}

impl super::super::counters::Counters {
    /// Count a receive completion that delivered no datagram.
    fn recv_fault(&mut self, result: i32) {
        if result >= 0 {
            return;
        }
        let mut faults = super::super::batch::Faults::default();
        match RecvFault::of_result(result) {
            Some(RecvFault::Icmp) => faults.icmp = 1,
            Some(RecvFault::Other) => faults.other = 1,
            None => return,
        }
        self.recv_faults(faults);
    }
}
