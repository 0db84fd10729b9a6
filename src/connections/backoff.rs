//! How long an accept loop waits after a failed `accept`: out of file
//! descriptors (EMFILE, ENFILE) or buffers (ENOBUFS), an immediate retry
//! fails the same way, and a loop that retries at once spins a core.

use std::time::Duration;

/// The first wait after a failure.
pub const FIRST: Duration = Duration::from_millis(10);
/// The longest wait: fds freed by closing connections are noticed within it.
pub const MAX: Duration = Duration::from_secs(1);

/// A doubling wait, reset by a successful accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait after one more failure in a row.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(MAX);
        wait
    }

    /// An accept succeeded: the next failure waits the first delay again.
    pub fn succeeded(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_ten_ms_to_one_second_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..9).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), FIRST);
    }
}
