//! The trunks browsers' calls go out by: the order each call tries them in,
//! and the OPTIONS pings that keep each one's health and its
//! `siphon_trunk_up` gauge.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::call::route::trunk_target;
use crate::config::{Config, TrunkConfig};
use crate::metrics::Metrics;
use crate::sip::trunk_choice::{self, Candidate, Health};
use crate::sip::{self, SipEndpoint};

/// Longest wait for a ping's answer: a trunk that takes longer to answer
/// OPTIONS would also keep callers waiting.
const PING_WAIT: Duration = Duration::from_secs(5);

/// Every configured trunk with its health.
pub(crate) struct Trunks(Vec<Trunk>);

struct Trunk {
    name: String,
    config: TrunkConfig,
    health: Mutex<Health>,
    /// `health` as the calls read it, without the lock.
    up: AtomicBool,
    /// Only pinged trunks have one: an unprobed trunk's health is unknown.
    gauge: Option<IntGauge>,
}

impl Trunks {
    /// The trunks of `config`, all up until their pings say otherwise.
    pub(crate) fn new(config: &Config, metrics: &Metrics) -> Trunks {
        let trunks = config.trunks().into_iter().map(|(name, config)| {
            let gauge = (config.ping_interval_secs > 0).then(|| {
                let gauge = metrics.trunk_up.with_label_values(&[&name]);
                gauge.set(1);
                gauge
            });
            Trunk {
                name,
                config: config.clone(),
                health: Mutex::new(Health::default()),
                up: AtomicBool::new(true),
                gauge,
            }
        });
        Trunks(trunks.collect())
    }

    /// Where a call to `user` (a number or name) goes, in the order to try:
    /// the first destination, then its failovers. `caller` is the browser
    /// user, the From of the INVITE; an anonymous caller is each trunk's
    /// `from_user`.
    pub(crate) fn hops(&self, user: &str, caller: Option<&str>) -> Vec<sip::Hop> {
        let candidates: Vec<Candidate> = self
            .0
            .iter()
            .map(|t| Candidate {
                priority: t.config.priority,
                weight: t.config.weight,
                up: t.up.load(Ordering::Relaxed),
            })
            .collect();
        let order = trunk_choice::order(&candidates, &mut |n| rand::random_range(0..n.max(1)));
        let hop = |t: &Trunk| {
            let uri = t.config.uri.as_deref()?;
            Some(sip::Hop {
                response_wait: t.config.response_wait(),
                target: trunk_target(uri, user),
                from_user: caller.map_or_else(|| t.config.from_user.clone(), str::to_owned),
                credentials: (!t.config.username.is_empty()).then(|| sip::Credentials {
                    username: t.config.username.clone(),
                    password: t.config.password.clone(),
                }),
            })
        };
        order.into_iter().filter_map(|i| hop(&self.0[i])).collect()
    }

    /// Ping each trunk that asks for it until `shutdown`.
    pub(crate) fn spawn_pings(self: &Arc<Self>, sip: &SipEndpoint, shutdown: &CancellationToken) {
        for index in 0..self.0.len() {
            if self.0[index].config.ping_interval_secs == 0 {
                continue;
            }
            let span = info_span!("trunk", trunk = %self.0[index].name);
            let pings = pings(self.clone(), index, sip.clone());
            let shutdown = shutdown.clone();
            tokio::spawn(
                async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = pings => {}
                    }
                }
                .instrument(span),
            );
        }
    }

    /// One ping's outcome for trunk `index`.
    fn record(&self, index: usize, code: Option<u16>) {
        let trunk = &self.0[index];
        let answered = trunk_choice::ping_answered(code);
        let changed = match trunk.health.lock() {
            Ok(mut h) => h.record(answered, trunk.config.down_after, trunk.config.up_after),
            Err(_) => return,
        };
        let Some(up) = changed else {
            return;
        };
        trunk.up.store(up, Ordering::Relaxed);
        if let Some(gauge) = &trunk.gauge {
            gauge.set(i64::from(up));
        }
        match (up, code) {
            (true, _) => info!(code, "trunk up"),
            (false, Some(code)) => warn!(code, "trunk down: calls go to the other trunks first"),
            (false, None) => warn!("trunk down (no answer): calls go to the other trunks first"),
        }
    }
}

/// Ping trunk `index` every `ping_interval_secs`, for ever.
async fn pings(trunks: Arc<Trunks>, index: usize, sip: SipEndpoint) {
    let config = &trunks.0[index].config;
    let Some(uri) = config.uri.clone() else {
        return;
    };
    let every = Duration::from_secs(config.ping_interval_secs.into());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let code = match tokio::time::timeout(every.min(PING_WAIT), sip.ping(&uri)).await {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot ping the trunk");
                None
            }
            Err(_) => None,
        };
        trunks.record(index, code);
    }
}
