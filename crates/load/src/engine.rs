//! The generator's media: one thread for every call's RTP, both ends.
//!
//! A task, a timer and a readiness wake-up per packet cost the generator
//! more than siphon spends relaying it. So, as the rtpengine anchor's
//! generator does, one thread owns all the sockets: every millisecond it
//! sends the packets due (each browser in one of 20 slots, so the calls'
//! 20 ms phases spread evenly), and in between it reads what epoll
//! reports ready, a batch per socket (`recvmmsg`, with the kernel's receive
//! times). Browsers stamp and protect each packet as they send it; the
//! echo stamps as it returns it, as siphon's own echo task does with the
//! [`PassStamper`](super::stamp::PassStamper) tap.
//!
//! Calls come in over a channel: a browser's media once its call is keyed
//! ([`add_browser`]), an echoed RTP socket once siphon's echo answered
//! ([`add_echo`]). A browser leaves when its call's task sets its `gone`
//! flag, an echo when its call's `stop` is cancelled.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use std::net::UdpSocket;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use siphon::sip::EchoRtp;

use super::client::{Datagram, Media, Shared};
use super::stamp;
use super::stats::Jitter;
use super::sys::{RecvBatch, BATCH};

/// One send turn.
const TICK: Duration = Duration::from_millis(1);
/// Send slots: a browser sends every `SLOTS` ticks (20 ms, G.711's ptime).
const SLOTS: usize = 20;
/// How often legs that left are swept and consent checks sent (a sweep
/// touches every leg, so not every turn).
const SWEEP: Duration = Duration::from_millis(250);
/// Browsers refresh consent every 5 s or so (RFC 7675).
const CONSENT_EVERY: Duration = Duration::from_secs(5);
/// A turn this late skips the packets missed rather than bursting them.
const MAX_CATCH_UP: u64 = SLOTS as u64;

/// What the thread is handed.
enum Add {
    Browser(Box<Browser>),
    Echo(Echo),
}

/// A browser's media.
struct Browser {
    media: Media,
    sock: UdpSocket,
    shared: Arc<Shared>,
    /// `shared.media`, kept here: the send turn reads nothing else.
    sends: bool,
    gone: Arc<AtomicBool>,
    jitter: Jitter,
    next_consent: Instant,
    slot: usize,
}

/// An echoed RTP socket of siphon's echo UAS.
struct Echo {
    rtp: EchoRtp,
    latched: Option<SocketAddr>,
}

enum Leg {
    Browser(Box<Browser>),
    Echo(Echo),
}

static THREAD: OnceLock<Option<Sender<Add>>> = OnceLock::new();

/// The media thread's inbox, started on first use.
fn inbox() -> io::Result<&'static Sender<Add>> {
    let tx = THREAD.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("load-media".into())
            .spawn(move || run(rx));
        spawned.ok().map(|_| tx)
    });
    tx.as_ref()
        .ok_or_else(|| io::Error::other("the media thread did not start"))
}

/// Hand a keyed browser's media to the thread; it streams (when
/// `shared.media`), counts into `shared.counters` and checks consent until
/// `gone`. Returns a second handle on its socket, for the flood.
pub fn add_browser(
    media: Media,
    sock: UdpSocket,
    shared: Arc<Shared>,
    gone: Arc<AtomicBool>,
) -> io::Result<UdpSocket> {
    let flood = sock.try_clone()?;
    sock.set_nonblocking(true)?;
    let b = Browser {
        media,
        sock,
        sends: shared.media,
        shared,
        gone,
        jitter: Jitter::default(),
        next_consent: Instant::now(),
        slot: 0,
    };
    inbox()?
        .send(Add::Browser(Box::new(b)))
        .map_err(|_| io::Error::other("the media thread ended"))?;
    Ok(flood)
}

/// Hand siphon's echo one call's RTP socket; `Err` gives it back.
pub fn add_echo(rtp: EchoRtp) -> Result<(), EchoRtp> {
    let Ok(inbox) = inbox() else {
        return Err(rtp);
    };
    if rtp.socket.set_nonblocking(true).is_err() {
        return Err(rtp);
    }
    let echo = Echo { rtp, latched: None };
    inbox.send(Add::Echo(echo)).map_err(|e| match e.0 {
        Add::Echo(echo) => echo.rtp,
        Add::Browser(_) => unreachable!("sent an echo"),
    })
}

/// All the legs, by token.
struct Legs {
    epoll: Epoll,
    legs: Vec<Option<Leg>>,
    free: Vec<usize>,
    /// Browsers by send slot.
    slots: Vec<Vec<usize>>,
    batch: RecvBatch,
}

fn run(rx: Receiver<Add>) {
    let Ok(epoll) = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) else {
        return;
    };
    let mut l = Legs {
        epoll,
        legs: Vec::new(),
        free: Vec::new(),
        slots: vec![Vec::new(); SLOTS],
        batch: RecvBatch::default(),
    };
    let mut events = vec![EpollEvent::empty(); 1024];
    let start = Instant::now();
    let mut tick: u64 = 0;
    let mut next_sweep = start;
    loop {
        if l.legs.len() == l.free.len() {
            // Nothing to serve: wait for a leg rather than spin.
            match rx.recv() {
                Ok(add) => l.add(add),
                Err(_) => return,
            }
        }
        while let Ok(add) = rx.try_recv() {
            l.add(add);
        }
        let now = Instant::now();
        let due = (now.duration_since(start).as_micros() / TICK.as_micros()) as u64;
        tick = tick.max(due.saturating_sub(MAX_CATCH_UP - 1));
        while tick <= due {
            l.send_slot((tick % SLOTS as u64) as usize);
            tick += 1;
        }
        if now >= next_sweep {
            l.sweep(now);
            next_sweep = now + SWEEP;
        }
        let next_tick = start + TICK * tick as u32;
        let wait = next_tick.saturating_duration_since(Instant::now());
        // Whole milliseconds, rounded up: never a busy loop.
        let ms = wait.as_micros().div_ceil(1000).min(1000) as u16;
        let Ok(n) = l.epoll.wait(&mut events, EpollTimeout::from(ms)) else {
            continue;
        };
        for ev in &events[..n] {
            l.readable(ev.data() as usize);
        }
    }
}

impl Leg {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Leg::Browser(b) => b.sock.as_fd(),
            Leg::Echo(e) => e.rtp.socket.as_fd(),
        }
    }
}

impl Legs {
    fn add(&mut self, add: Add) {
        let i = self.free.pop().unwrap_or_else(|| {
            self.legs.push(None);
            self.legs.len() - 1
        });
        let leg = match add {
            Add::Browser(mut b) => {
                // The emptiest slot keeps the phases even as calls come and go.
                let slot = (0..SLOTS).min_by_key(|&s| self.slots[s].len()).unwrap_or(0);
                self.slots[slot].push(i);
                b.slot = slot;
                Leg::Browser(b)
            }
            Add::Echo(e) => Leg::Echo(e),
        };
        let ready = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, i as u64);
        if self.epoll.add(leg.fd(), ready).is_err() {
            self.remove(i, leg);
            return;
        }
        self.legs[i] = Some(leg);
    }

    /// Drop `leg` (its socket closes with it, unless the flood or the
    /// echo holds another handle).
    fn remove(&mut self, i: usize, leg: Leg) {
        if let Leg::Browser(b) = &leg {
            self.slots[b.slot].retain(|&j| j != i);
        }
        let _ = self.epoll.delete(leg.fd());
        drop(leg);
        self.legs[i] = None;
        self.free.push(i);
    }

    /// Drop the legs whose calls ended; send the consent checks due.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.legs.len() {
            let done = match &mut self.legs[i] {
                None => continue,
                Some(Leg::Echo(e)) => e.rtp.stop.is_cancelled(),
                Some(Leg::Browser(b)) => {
                    if !b.gone.load(Relaxed) && now >= b.next_consent {
                        b.next_consent = now + CONSENT_EVERY;
                        let check = b.media.consent_check();
                        let _ = b.sock.send_to(&check, b.media.target());
                    }
                    b.gone.load(Relaxed)
                }
            };
            if done {
                if let Some(leg) = self.legs[i].take() {
                    self.remove(i, leg);
                }
            }
        }
    }

    /// Every browser of `slot` sends its next packet, stamped as protected.
    fn send_slot(&mut self, slot: usize) {
        for &i in &self.slots[slot] {
            let Some(Leg::Browser(b)) = &mut self.legs[i] else {
                continue;
            };
            if !b.sends {
                continue;
            }
            let Some((pkt, stamp)) = b.media.next_packet() else {
                continue;
            };
            let c = &b.shared.counters;
            if b.sock.send_to(pkt.as_ref(), b.media.target()).is_ok() {
                c.sent.fetch_add(1, Relaxed);
                if c.in_window(stamp) {
                    c.window_sent.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Read what leg `i` has queued.
    fn readable(&mut self, i: usize) {
        let Some(leg) = self.legs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let batch = &mut self.batch;
        let fd: RawFd = leg.fd().as_raw_fd();
        // Edge-triggered: read until a batch comes back short (the queue
        // was empty then; anything later raises a new edge). A few errors
        // in a row (ICMP reports) end the turn too.
        let mut errors = 0;
        loop {
            let n = match batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) if errors < 4 => {
                    errors += 1;
                    continue;
                }
                Err(_) => return,
            };
            for k in 0..n {
                let (data, from, rx) = batch.get(k);
                match leg {
                    Leg::Browser(b) => b.received(data, rx),
                    Leg::Echo(e) => e.echo(data, from, rx),
                }
            }
            if n < BATCH {
                return;
            }
        }
    }
}

impl Browser {
    /// A datagram from siphon, received by the kernel at `kernel_rx`.
    fn received(&mut self, data: &[u8], kernel_rx: u64) {
        let c = &self.shared.counters;
        match self.media.open(data) {
            Datagram::Other => {}
            Datagram::Bad => {
                c.bad.fetch_add(1, Relaxed);
            }
            Datagram::Echo(stamps) => {
                let now = stamp::now_us();
                let sent_at = stamps.sent;
                c.received.fetch_add(1, Relaxed);
                if c.in_window(sent_at) {
                    c.window_back.fetch_add(1, Relaxed);
                }
                c.rtt.record(now.saturating_sub(sent_at));
                c.record_passes(&stamps, kernel_rx);
                let j = self.jitter.update(sent_at, now);
                c.jitter_sum_us.fetch_add(j as u64, Relaxed);
            }
        }
    }
}

impl Echo {
    /// As siphon's echo task: latch the first source, return only to it
    /// and only while the peer receives, stamp, count.
    fn echo(&mut self, data: &mut [u8], from: Option<SocketAddr>, rx: u64) {
        let Some(from) = from else {
            return;
        };
        if *self.latched.get_or_insert(from) != from || !self.rtp.sending.load(Relaxed) {
            return;
        }
        stamp::restamp(data, rx, stamp::now_us());
        if self.rtp.socket.send_to(data, from).is_ok() {
            self.rtp.echoed.fetch_add(1, Relaxed);
        }
    }
}
