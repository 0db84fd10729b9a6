//! The SIP-side RTP port pool: even ports from a configured range, RTCP on port+1.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;

/// Why no port pair could be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// Every port pair in the range is taken (by siphon or by another process).
    #[error("no free RTP port in {min}-{max}")]
    Exhausted {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
}

/// Free even ports, handed out oldest-released first so a port just freed is
/// not reused at once (late packets of the old call would hit the new one).
#[derive(Debug)]
pub struct PortRange {
    min: u16,
    max: u16,
    free: VecDeque<u16>,
    total: usize,
    /// `siphon_rtp_ports_in_use`, kept at `total - free`.
    in_use: Option<IntGauge>,
}

impl PortRange {
    /// All even ports `p` in `min..=max` with `p + 1 <= max`.
    pub fn new(min: u16, max: u16) -> Self {
        let first = min + (min % 2);
        let free: VecDeque<u16> = (first..max).step_by(2).collect();
        let total = free.len();
        PortRange {
            min,
            max,
            free,
            total,
            in_use: None,
        }
    }

    /// Take the next free port.
    pub fn take(&mut self) -> Option<u16> {
        let port = self.free.pop_front();
        self.report();
        port
    }

    fn report(&self) {
        if let Some(g) = &self.in_use {
            g.set((self.total - self.free.len()) as i64);
        }
    }

    /// Give a port back; ports outside the range or already free are ignored.
    pub fn give(&mut self, port: u16) {
        if port >= self.min
            && port < self.max
            && port.is_multiple_of(2)
            && !self.free.contains(&port)
        {
            self.free.push_back(port);
        }
        self.report();
    }

    /// How many ports are free.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }
}

/// A bound RTP/RTCP socket pair; its port goes back to the pool when the
/// lease drops (fields drop in order: the sockets close first).
#[derive(Debug)]
pub struct PortPair {
    /// The RTP socket (even port).
    pub rtp: UdpSocket,
    /// The RTCP socket (RTP port + 1).
    pub rtcp: UdpSocket,
    /// Returns the port to the pool on drop.
    pub lease: PortLease,
}

impl PortPair {
    /// The RTP port number.
    pub fn port(&self) -> u16 {
        self.lease.port
    }
}

/// Ownership of one port pair in the pool.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    pool: Arc<Mutex<PortRange>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut range) = self.pool.lock() {
            range.give(self.port);
        }
    }
}

/// Thread-safe pool binding port pairs on one IP (control plane only).
#[derive(Debug, Clone)]
pub struct PortPool {
    ip: IpAddr,
    range: Arc<Mutex<PortRange>>,
}

impl PortPool {
    /// A pool over `min..=max` on `ip`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        PortPool {
            ip,
            range: Arc::new(Mutex::new(PortRange::new(min, max))),
        }
    }

    /// Keep `gauge` at the number of pairs in use (`siphon_rtp_ports_in_use`).
    pub fn with_gauge(self, gauge: IntGauge) -> Self {
        if let Ok(mut range) = self.range.lock() {
            range.in_use = Some(gauge);
            range.report();
        }
        self
    }

    /// Bind the next free pair; pairs another process holds are skipped and
    /// come back at the end of the queue.
    pub fn allocate(&self) -> Result<PortPair, PoolError> {
        let mut range = self.range.lock().unwrap_or_else(|e| e.into_inner());
        let (min, max) = (range.min, range.max);
        for _ in 0..range.free_count() {
            let Some(port) = range.take() else { break };
            match bind_pair(self.ip, port) {
                Some((rtp, rtcp)) => {
                    let pool = self.range.clone();
                    let lease = PortLease { port, pool };
                    return Ok(PortPair { rtp, rtcp, lease });
                }
                None => range.give(port),
            }
        }
        Err(PoolError::Exhausted { min, max })
    }

    /// Ports not in use.
    pub fn free_count(&self) -> usize {
        self.range.lock().map(|r| r.free_count()).unwrap_or(0)
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> Option<(UdpSocket, UdpSocket)> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1)).ok()?;
    rtp.set_nonblocking(true).ok()?;
    rtcp.set_nonblocking(true).ok()?;
    Some((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_hands_out_even_ports_and_reuses_last() {
        let mut r = PortRange::new(20001, 20008);
        assert_eq!(r.free_count(), 3); // 20002, 20004, 20006 (20008 has no +1)
        let a = r.take().unwrap();
        assert_eq!(a, 20002);
        r.give(a);
        assert_eq!(r.take(), Some(20004));
        assert_eq!(r.take(), Some(20006));
        assert_eq!(r.take(), Some(20002));
        assert_eq!(r.take(), None);
        r.give(20003); // odd: ignored
        r.give(30000); // outside: ignored
        assert_eq!(r.free_count(), 0);
    }

    #[test]
    fn pairs_return_to_pool_on_drop_and_busy_ports_are_skipped() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Free ports from the test-port allocator; occupy the first pair.
        let min = siphon_testkit::ports::block(5);
        let max = min + 4;
        let blocker = UdpSocket::bind(SocketAddr::new(ip, min));
        let pool = PortPool::new(ip, min, max);
        let total = pool.free_count();
        let pair = pool.allocate().unwrap();
        if blocker.is_ok() {
            assert_ne!(pair.port(), min, "busy port skipped");
        }
        assert_eq!(pair.rtcp.local_addr().unwrap().port(), pair.port() + 1);
        assert_eq!(pool.free_count(), total - 1);
        drop(pair);
        assert_eq!(pool.free_count(), total);
    }

    #[test]
    fn ports_in_use_reach_the_metrics() {
        let metrics = crate::metrics::Metrics::new();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let min = siphon_testkit::ports::block(10);
        let pool = PortPool::new(ip, min, min + 9).with_gauge(metrics.rtp_ports_in_use.clone());
        assert!(metrics.render().contains("siphon_rtp_ports_in_use 0"));
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert!(metrics.render().contains("siphon_rtp_ports_in_use 2"));
        drop(a);
        assert!(metrics.render().contains("siphon_rtp_ports_in_use 1"));
        drop(b);
        assert!(metrics.render().contains("siphon_rtp_ports_in_use 0"));
    }

    #[test]
    fn exhaustion_is_an_error() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 10, 10);
        assert_eq!(
            pool.allocate().unwrap_err(),
            PoolError::Exhausted { min: 10, max: 10 }
        );
    }
}
