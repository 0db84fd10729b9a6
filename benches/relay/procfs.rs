//! CPU and memory figures from /proc: per thread group (by thread name) and
//! for the whole process.

use std::collections::BTreeMap;
use std::fs;

/// Kernel clock ticks per second for /proc times (USER_HZ, fixed by the ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// Which part of the process a thread works for, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// siphon's relay loops (`relay-N`).
    Relay,
    /// siphon's control plane runtime (HTTP, WebSocket, SIP, call tasks).
    Gateway,
    /// The echo UAS runtime (SIP and RTP echo).
    Echo,
    /// The lightweight browsers' runtime.
    Client,
    /// Everything else (the main thread, short-lived threads).
    Other,
}

impl Group {
    /// Thread name prefixes; runtimes are named so that they land here.
    pub const GATEWAY_THREAD: &'static str = "gw-rt";
    pub const ECHO_THREAD: &'static str = "echo-rt";
    pub const CLIENT_THREAD: &'static str = "client-rt";

    fn of(name: &str) -> Group {
        if name.starts_with("relay-") {
            Group::Relay
        } else if name.starts_with(Self::GATEWAY_THREAD) {
            Group::Gateway
        } else if name.starts_with(Self::ECHO_THREAD) {
            Group::Echo
        } else if name.starts_with(Self::CLIENT_THREAD) {
            Group::Client
        } else {
            Group::Other
        }
    }
}

/// CPU seconds (user + system) at one instant.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    /// Live threads, summed by group.
    pub groups: BTreeMap<Group, f64>,
    /// The whole process, including threads that have exited.
    pub process: f64,
}

impl CpuSnapshot {
    /// Reads every thread of this process and the process itself.
    pub fn take() -> CpuSnapshot {
        let mut groups = BTreeMap::new();
        if let Ok(tasks) = fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let Ok(stat) = fs::read_to_string(task.path().join("stat")) else {
                    continue; // the thread exited meanwhile
                };
                if let Some((name, secs)) = parse_stat(&stat) {
                    *groups.entry(Group::of(&name)).or_insert(0.0) += secs;
                }
            }
        }
        let process = fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat(&s))
            .map_or(0.0, |(_, secs)| secs);
        CpuSnapshot { groups, process }
    }

    /// CPU seconds spent by `group` since `earlier`.
    pub fn group_since(&self, earlier: &CpuSnapshot, group: Group) -> f64 {
        let get = |s: &CpuSnapshot| s.groups.get(&group).copied().unwrap_or(0.0);
        (get(self) - get(earlier)).max(0.0)
    }

    /// CPU seconds spent by the whole process since `earlier`.
    pub fn process_since(&self, earlier: &CpuSnapshot) -> f64 {
        self.process - earlier.process
    }
}

/// (comm, utime + stime in seconds) from a `stat` line. The name sits in
/// parentheses and may itself contain spaces or parentheses, so fields are
/// counted from the last ')'.
fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After ')': field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let mut fields = stat.get(close + 1..)?.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, (utime + stime) as f64 / TICKS_PER_SEC))
}

/// Resident set size of this process in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
