//! Memory handed back to the system once a flood of connections ebbs.
//!
//! Each connection's buffers are freed when it closes, but glibc's malloc
//! keeps freed pages in its arenas (one per thread that allocated): after
//! 20,000 hostile connections, every one of them closed, siphon's resident
//! memory stayed several times its size before the flood. `malloc_trim(0)`
//! returns the free pages of every arena to the kernel. It walks each
//! arena, so it runs only when the connections open have fallen far below
//! their peak since the last trim: after a flood, never in steady state.

#![allow(unsafe_code)] // syscalls through libc; each block has its SAFETY note

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Connections;

/// How often the connections open are looked at.
const TICK: Duration = Duration::from_secs(5);
/// A fall smaller than this (in connections) is not worth a trim.
const MIN_FALL: usize = 1000;

/// When to trim: the peak of connections open since the last trim, and the
/// rule that a fall of at least [`MIN_FALL`] to half the peak or less is an
/// ebb.
#[derive(Debug, Default)]
pub(crate) struct Ebb {
    peak: usize,
}

impl Ebb {
    /// Takes one reading of the connections open; `true` when it is time
    /// to trim (and the peak starts again from here).
    pub(crate) fn observe(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        let ebbed = self.peak - open >= MIN_FALL && open <= self.peak / 2;
        if ebbed {
            self.peak = open;
        }
        ebbed
    }
}

/// Watches the connections open until shutdown and trims after each ebb.
pub(crate) async fn watch(connections: Connections, shutdown: CancellationToken) {
    let mut ebb = Ebb::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let open = connections.open();
        if ebb.observe(open) {
            let started = std::time::Instant::now();
            // It walks every arena under its lock: off the async workers.
            let released = tokio::task::spawn_blocking(release_free_memory)
                .await
                .unwrap_or(false);
            info!(
                open,
                released,
                took_ms = started.elapsed().as_millis() as u64,
                "connections ebbed: free heap memory returned to the system"
            );
        }
    }
}

/// `malloc_trim(0)`: whether glibc returned any memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks
    // each arena in turn); glibc has had it since 2.0.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators (musl's among them) return memory on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::Ebb;

    #[test]
    fn only_a_large_fall_to_half_the_peak_or_less_is_an_ebb() {
        let mut ebb = Ebb::default();
        // Steady state and ordinary churn never trim.
        for open in [10, 300, 250, 900, 40, 0, 500] {
            assert!(!ebb.observe(open), "{open}");
        }
        // A flood and its end: one trim, when it has fallen.
        assert!(!ebb.observe(16_000));
        assert!(!ebb.observe(12_000));
        assert!(ebb.observe(30));
        assert!(!ebb.observe(20));
        // Under half the peak is not enough without a fall of MIN_FALL.
        assert!(!ebb.observe(1_500));
        assert!(!ebb.observe(749));
        assert!(ebb.observe(0));
    }
}
