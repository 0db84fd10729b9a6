//! What the kernel says about a process and the machine: CPU seconds
//! (user + system) and resident memory of a pid, and softirq time (where
//! loopback packet processing is charged, to no process).

use std::fs;

/// Kernel clock ticks per second for /proc times (USER_HZ, fixed by the ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) of process `pid` (`None`: this process).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat(&fs::read_to_string(path).ok()?).map(|(_, secs)| secs)
}

/// (comm, utime + stime in seconds) from a process's or thread's `stat`
/// line. The name sits in parentheses and may itself hold spaces or
/// parentheses, so fields are counted from the last ')'.
pub fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After ')': field 3 (state) is index 0, so utime (14) is 11, stime 12.
    let mut fields = stat.get(close + 1..)?.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, (utime + stime) as f64 / TICKS_PER_SEC))
}

/// Resident set size of `pid` in bytes (VmRSS), 0 when unreadable.
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Open file descriptors of `pid` (entries of `/proc/<pid>/fd`), `None` when unreadable.
pub fn fd_count(pid: Option<u32>) -> Option<usize> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/fd"),
        None => "/proc/self/fd".to_owned(),
    };
    Some(fs::read_dir(path).ok()?.count())
}

/// Seconds of one kind of CPU time, for the whole machine and each CPU.
#[derive(Debug, Clone, Default)]
pub struct CpuTime {
    /// All CPUs.
    pub total: f64,
    /// By CPU number.
    pub per_cpu: Vec<f64>,
}

impl CpuTime {
    /// Seconds spent since `earlier`, on `cpu` if given, else on all.
    pub fn since(&self, earlier: &CpuTime, cpu: Option<usize>) -> f64 {
        let pick = |s: &CpuTime| match cpu {
            Some(c) => s.per_cpu.get(c).copied().unwrap_or(0.0),
            None => s.total,
        };
        (pick(self) - pick(earlier)).max(0.0)
    }

    fn set(&mut self, cpu: Option<usize>, secs: f64) {
        match cpu {
            None => self.total = secs,
            Some(i) => {
                self.per_cpu.resize(self.per_cpu.len().max(i + 1), 0.0);
                self.per_cpu[i] = secs;
            }
        }
    }
}

/// Softirq and steal time from /proc/stat. Steal is time the hypervisor
/// gave the CPU to someone else: a stall no process on the box can see.
#[derive(Debug, Clone, Default)]
pub struct ProcStat {
    /// Time in softirq.
    pub softirq: CpuTime,
    /// Time stolen by the hypervisor.
    pub steal: CpuTime,
}

impl ProcStat {
    /// Read /proc/stat now (zeros when unreadable).
    pub fn read() -> ProcStat {
        parse_proc_stat(&fs::read_to_string("/proc/stat").unwrap_or_default())
    }
}

fn parse_proc_stat(text: &str) -> ProcStat {
    let mut out = ProcStat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next().filter(|n| n.starts_with("cpu")) else {
            continue;
        };
        let cpu = match name.strip_prefix("cpu").filter(|n| !n.is_empty()) {
            None => None,
            Some(n) => match n.parse::<usize>() {
                Ok(i) => Some(i),
                Err(_) => continue,
            },
        };
        // user nice system idle iowait irq softirq steal: the 7th and 8th.
        let mut ticks = fields.skip(6).map(|v| v.parse::<u64>().ok());
        let (Some(Some(softirq)), steal) = (ticks.next(), ticks.next().flatten()) else {
            continue;
        };
        out.softirq.set(cpu, softirq as f64 / TICKS_PER_SEC);
        out.steal
            .set(cpu, steal.unwrap_or(0) as f64 / TICKS_PER_SEC);
    }
    out
}

/// UDP datagrams the kernel dropped because a socket's receive buffer was
/// full (`RcvbufErrors` in /proc/net/snmp), machine-wide; 0 when unreadable.
pub fn udp_rcvbuf_errors() -> u64 {
    parse_snmp_rcvbuf(&fs::read_to_string("/proc/net/snmp").unwrap_or_default())
}

fn parse_snmp_rcvbuf(text: &str) -> u64 {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_ascii_whitespace()
        .zip(values.split_ascii_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_plus_system() {
        let line = "4242 (relay (a) b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0";
        assert_eq!(parse_stat(line), Some(("relay (a) b".to_owned(), 3.0)));
        assert!(cpu_seconds(None).is_some_and(|s| s >= 0.0));
        assert!(rss_bytes(None) > 0);
        assert!(fd_count(None).is_some_and(|n| n >= 3));
    }

    #[test]
    fn receive_buffer_drops_come_from_the_udp_line() {
        let text = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
Udp: 100 2 7 90 5 0\nUdpLite: InDatagrams RcvbufErrors\nUdpLite: 0 9\n";
        assert_eq!(parse_snmp_rcvbuf(text), 5);
        assert_eq!(parse_snmp_rcvbuf(""), 0);
    }

    #[test]
    fn softirq_and_steal_are_read_per_cpu() {
        let text = "cpu  10 0 5 100 0 0 300 50 0 0\ncpu0 5 0 2 50 0 0 100 0\ncpu1 5 0 3 50 0 0 200 50\nintr 1 2\n";
        let s = parse_proc_stat(text);
        assert_eq!(s.softirq.total, 3.0);
        assert_eq!(s.softirq.per_cpu, vec![1.0, 2.0]);
        let zero = CpuTime::default();
        assert_eq!(s.softirq.since(&zero, Some(1)), 2.0);
        assert_eq!(s.softirq.since(&zero, None), 3.0);
        assert_eq!(s.steal.per_cpu, vec![0.0, 0.5]);
        assert_eq!(s.steal.since(&zero, Some(0)), 0.0);
        // A kernel too old to report steal gives 0 for it.
        let old = parse_proc_stat("cpu0 5 0 2 50 0 0 100\n");
        assert_eq!((old.softirq.per_cpu[0], old.steal.per_cpu[0]), (1.0, 0.0));
    }
}
