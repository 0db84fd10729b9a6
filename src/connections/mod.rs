//! Connection limits shared by every TCP accept loop (SIP TCP and TLS,
//! HTTP/WebSocket and HTTPS), after mini-redis: a semaphore caps a
//! listener's open connections, a map caps them per IP address, and a
//! [`Permit`] held for the connection's life gives both back when it ends.
//!
//! One process-wide count of admitted connections keeps
//! `limits.connections.fd_reserve` file descriptors back from SIP
//! connections; HTTP connections may use half of the reserve, so that
//! `/healthz`, `/metrics` and browsers still connect during a SIP flood,
//! and the other half is never given to connections: the RTP sockets of
//! calls. A connection over a cap is closed at once and counted in
//! `siphon_connections_refused_total{listener,reason}`. Once a flood ebbs,
//! `ebb` hands the memory it took back to the system.

mod accept;
mod backoff;
mod ebb;
pub mod fd;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

pub use accept::Acceptor;
pub use backoff::Backoff;

use crate::config::ConnectionsConfig;
use crate::metrics::Metrics;

/// Why a connection was closed at accept; the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The listener holds its cap of open connections.
    #[error("the listener's connection cap is reached")]
    GlobalCap,
    /// The peer's IP address holds its cap on this listener.
    #[error("the per-IP connection cap is reached")]
    PerIpCap,
    /// Admitting it would eat into the fds kept back for calls and probes.
    #[error("the file descriptor reserve would be touched")]
    FdReserve,
    /// The process ran out of fds (EMFILE/ENFILE); it was closed on accept.
    #[error("the process is out of file descriptors")]
    FdExhausted,
}

impl Refused {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::GlobalCap => "global_cap",
            Refused::PerIpCap => "per_ip_cap",
            Refused::FdReserve => "fd_reserve",
            Refused::FdExhausted => "fd_exhausted",
        }
    }
}

/// Peers exempt from the per-IP cap (trusted proxies carry many clients).
pub type Exempt = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The process-wide limits: the fd budget and the configured caps.
#[derive(Clone)]
pub struct Connections {
    shared: Arc<Shared>,
}

struct Shared {
    config: ConnectionsConfig,
    /// Connections admitted at once across all listeners, before the reserve.
    budget: usize,
    /// The reserve in fds (at most half the soft limit).
    reserve: usize,
    open: AtomicUsize,
    metrics: Metrics,
}

impl Connections {
    /// Limits from `config`; the fd budget is the soft limit `nofile` minus
    /// the reserve, which never takes more than half of `nofile`.
    pub fn new(config: &ConnectionsConfig, nofile: u64, metrics: Metrics) -> Self {
        let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
        let reserve = (config.fd_reserve as usize).min(nofile / 2);
        Connections {
            shared: Arc::new(Shared {
                config: config.clone(),
                budget: nofile - reserve,
                reserve,
                open: AtomicUsize::new(0),
                metrics,
            }),
        }
    }

    /// Limits from `config` with the process's current soft fd limit.
    pub fn for_process(config: &ConnectionsConfig, metrics: Metrics) -> Self {
        Self::new(config, fd::soft_limit(), metrics)
    }

    /// Connections admitted at once across all listeners.
    pub fn budget(&self) -> usize {
        self.shared.budget
    }

    /// Connections open now across all listeners.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Returns freed memory to the system after each flood, until shutdown.
    pub fn watch_ebbs(&self, shutdown: CancellationToken) {
        tokio::spawn(ebb::watch(self.clone(), shutdown));
    }

    /// A gate for a SIP stream listener, labelled `listener` in metrics.
    pub fn sip(&self, listener: &'static str) -> Gate {
        let c = &self.shared.config;
        self.gate(listener, (c.sip_max, c.sip_per_ip), 0, None)
    }

    /// A gate for an HTTP(S) listener; `exempt` peers skip the per-IP cap.
    pub fn http(&self, listener: &'static str, exempt: Option<Exempt>) -> Gate {
        let c = &self.shared.config;
        let headroom = self.shared.reserve / 2;
        self.gate(listener, (c.http_max, c.http_per_ip), headroom, exempt)
    }

    /// `caps` is (listener cap, per-IP cap); `headroom` the part of the
    /// reserve this listener may use.
    fn gate(
        &self,
        listener: &'static str,
        (max, per_ip): (u32, u32),
        headroom: usize,
        exempt: Option<Exempt>,
    ) -> Gate {
        let metrics = &self.shared.metrics;
        Gate {
            inner: Arc::new(GateInner {
                shared: self.shared.clone(),
                listener,
                fd_limit: self.shared.budget + headroom,
                slots: Arc::new(Semaphore::new(max as usize)),
                per_ip: per_ip as usize,
                by_ip: Mutex::new(HashMap::new()),
                exempt,
                open: metrics.connections_open.with_label_values(&[listener]),
            }),
        }
    }
}

/// One listener's caps; clones share them.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    shared: Arc<Shared>,
    listener: &'static str,
    /// Connections of all listeners at once past which this one refuses.
    fd_limit: usize,
    slots: Arc<Semaphore>,
    per_ip: usize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
    exempt: Option<Exempt>,
    open: IntGauge,
}

impl Gate {
    /// Admits a connection from `ip`, or says why not (and counts it).
    pub fn admit(&self, ip: IpAddr) -> Result<Permit, Refused> {
        self.try_admit(ip.to_canonical())
            .inspect_err(|r| self.refused(*r))
    }

    fn try_admit(&self, ip: IpAddr) -> Result<Permit, Refused> {
        let g = &self.inner;
        if g.shared.open.fetch_add(1, Ordering::AcqRel) >= g.fd_limit {
            g.shared.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::FdReserve);
        }
        // From here on, dropping the half-built permit undoes what it holds.
        let mut permit = Permit {
            gate: g.clone(),
            slot: None,
            ip: None,
            admitted: false,
        };
        permit.slot = Some(
            g.slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refused::GlobalCap)?,
        );
        if !g.exempt.as_ref().is_some_and(|exempt| exempt(ip)) {
            let mut by_ip = g.by_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = by_ip.entry(ip).or_insert(0);
            if *count >= g.per_ip {
                if *count == 0 {
                    by_ip.remove(&ip);
                }
                return Err(Refused::PerIpCap);
            }
            *count += 1;
            permit.ip = Some(ip);
        }
        g.open.inc();
        permit.admitted = true;
        Ok(permit)
    }

    /// Counts a connection closed at accept.
    pub fn refused(&self, why: Refused) {
        self.count_refused(why.reason());
    }

    fn count_refused(&self, reason: &str) {
        self.inner
            .shared
            .metrics
            .connections_refused_total
            .with_label_values(&[self.inner.listener, reason])
            .inc();
    }

    /// Counts an admitted connection closed by us, by `reason` (idle, header_timeout).
    pub fn closed(&self, reason: &str) {
        self.inner
            .shared
            .metrics
            .connections_closed_total
            .with_label_values(&[self.inner.listener, reason])
            .inc();
    }

    /// Counts a failed `accept` call.
    pub fn accept_failed(&self) {
        self.inner
            .shared
            .metrics
            .accept_errors_total
            .with_label_values(&[self.inner.listener])
            .inc();
    }

    /// How long a SIP connection may go without a complete message.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.inner.shared.config.idle_secs)
    }

    /// How long a begun message or request head may take to finish.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.inner.shared.config.header_timeout_secs)
    }
}

/// Held for a connection's life; dropping it gives its slots back.
pub struct Permit {
    gate: Arc<GateInner>,
    /// `None` only while `admit` builds it.
    slot: Option<OwnedSemaphorePermit>,
    /// The per-IP count it holds (`None` for an exempt peer).
    ip: Option<IpAddr>,
    /// Counted in the open gauge (admission went through).
    admitted: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let g = &self.gate;
        g.shared.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut by_ip = g.by_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = by_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    by_ip.remove(&ip);
                }
            }
        }
        if self.admitted {
            g.open.dec();
        }
    }
}

#[cfg(test)]
mod tests;
