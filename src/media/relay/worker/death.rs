//! A loop that died: its calls hear of it at once, `/readyz` turns 503,
//! and the thread stays only to answer commands (a child module, for the
//! loop's fields).

use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::super::{Command, MediaEvent, RelayError};
use super::{Attach, Path, Worker};

/// Where a loop reports its own death.
pub(in super::super) struct Health {
    /// This loop's flag (new calls avoid a dead loop).
    pub alive: Arc<AtomicBool>,
    /// The gateway's `/readyz`.
    pub ready: Arc<AtomicBool>,
    /// `siphon_relay_loop_failures_total`.
    pub failures: prometheus::IntCounter,
}

/// Runs the loop on its IO path; if it dies (its poll fails or it
/// panics), ends its calls loudly and then only answers commands, so
/// removals still release ports.
pub(in super::super) fn run_guarded(mut worker: Worker, mut path: Path) {
    let ended = panic::catch_unwind(AssertUnwindSafe(|| path.run(&mut worker)));
    // The IO path lets go of the sockets before the calls' ports return.
    drop(path);
    let why = match ended {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("poll failed: {e}"),
        Err(_) => "the loop panicked".to_owned(),
    };
    worker.die(&why);
    let _ = panic::catch_unwind(AssertUnwindSafe(|| worker.serve_dead(&why)));
}

impl Worker {
    /// Tell every call, the gateway's readiness and the metrics.
    pub(super) fn die(&mut self, why: &str) {
        let calls = self.slots.iter().flatten().count();
        tracing::error!(
            reason = why,
            calls,
            "relay loop failed: its calls end and /readyz answers 503"
        );
        self.health.alive.store(false, Ordering::Relaxed);
        self.health.ready.store(false, Ordering::Relaxed);
        self.health.failures.inc();
        for slot in self.slots.iter().flatten() {
            let _ = slot.events.send(MediaEvent::RelayFailed(why.to_owned()));
        }
    }

    /// Answer commands without a poller until shutdown: new calls are
    /// refused, removals release their ports, and a call configured after
    /// the death (an inbound call answered late) hears of it then.
    pub(super) fn serve_dead(&mut self, why: &str) {
        while let Ok(cmd) = self.commands.recv() {
            match cmd {
                Command::Add(call, reply) => {
                    // Its ports go back before the refusal is heard.
                    drop(call);
                    let _ = reply.send(Err(RelayError::Stopped));
                }
                Command::RestartIce(_, _, reply) => {
                    let _ = reply.send(Err(RelayError::Stopped));
                }
                Command::Remove(leg, reply) => {
                    let _ = reply.send(self.remove(leg, &mut Unwatched));
                }
                Command::Configure(leg, _) => {
                    let slot = self.slots.get(leg as usize).and_then(Option::as_ref);
                    if let Some(slot) = slot {
                        let _ = slot.events.send(MediaEvent::RelayFailed(why.to_owned()));
                    }
                }
                Command::Shutdown => return,
                Command::Dtmf(..) => {}
                #[cfg(test)]
                Command::FailPoll | Command::Panic => {}
            }
        }
    }
}

/// A dead loop watches no socket.
struct Unwatched;

impl Attach for Unwatched {
    fn attach(&mut self, _: usize, _: RawFd, _: RawFd) -> std::io::Result<()> {
        Err(std::io::Error::other("the relay loop is dead"))
    }
    fn detach(&mut self, _: usize, _: RawFd, _: RawFd) {}
}
