//! The process's file descriptor limit: raised at start, read for the
//! connection budget, and the open fds counted for tests and the flood.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Used when the limit cannot be read: the usual default soft limit.
const FALLBACK_SOFT: u64 = 1024;
/// Linux's default `fs.nr_open`: a soft limit above it is refused.
const NR_OPEN: u64 = 1 << 20;

/// The soft RLIMIT_NOFILE now.
pub fn soft_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(FALLBACK_SOFT, |(soft, _)| soft)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most `fs.nr_open`'s
/// default); returns the (old, new) soft limits.
pub fn raise_nofile() -> std::io::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let target = hard.min(NR_OPEN).max(soft);
    if target > soft {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    }
    Ok((soft, target))
}

/// Sets the soft RLIMIT_NOFILE (tests that exhaust fds on purpose).
pub fn set_soft_limit(soft: u64) -> std::io::Result<()> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard)?)
}

/// File descriptors open in this process (`/proc/self/fd`), if readable.
pub fn open_fds() -> Option<usize> {
    // The directory handle itself is one of the entries.
    Some(
        std::fs::read_dir("/proc/self/fd")
            .ok()?
            .count()
            .saturating_sub(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_and_counts_are_read() {
        let before = soft_limit();
        let (old, new) = raise_nofile().expect("getrlimit works here");
        assert_eq!(old, before);
        assert!(new >= old);
        assert!(open_fds().is_some_and(|n| n >= 3));
    }
}
