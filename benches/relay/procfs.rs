//! CPU and memory figures from /proc: per thread group (by thread name) and
//! for the whole process.

use std::collections::BTreeMap;
use std::fs;

use siphon_load::procfs::parse_stat;

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

/// Resident set size of this process in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    siphon_load::procfs::rss_bytes(None)
}
