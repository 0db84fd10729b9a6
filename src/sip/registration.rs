//! Upstream registration: makes a browser user an extension of the PBX by
//! REGISTERing it with the PBX's registrar, answering digest challenges and
//! refreshing the binding until it is unregistered or dropped.
//!
//! Built on rsipstack's transaction layer rather than its `Registration`
//! helper: that one puts the registrar URI and the digest username in To
//! (siphon needs the extension's AOR, and an auth user that may differ),
//! answers challenges with rsipstack's digest (no `SHA-256`, no qop lists),
//! and leaves refresh and retry to the caller anyway.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Request, Response, SipMessage};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use super::endpoint::Shared;
use super::registration_plan::{Plan, Reply, MAX_JITTER_PERMILLE};
use super::registration_request::{self as request, Target};
use super::{tls, SipError};
use crate::metrics::Metrics;

/// How long unregistering waits for the registrar before giving up: the
/// binding then lapses at its expiry, which is harmless, while a shutdown
/// should not hang on an unreachable PBX.
const UNREGISTER_WAIT: Duration = Duration::from_secs(4);

/// How long a REGISTER under way when the unregister is asked for may take
/// to finish; with `UNREGISTER_WAIT` it stays within the gateway's 5 s.
const FINISH_WAIT: Duration = Duration::from_secs(1);

/// Who to register, where, and with which credentials.
#[derive(Clone, Debug)]
pub struct RegistrationSpec {
    /// Registrar URI, e.g. `sip:pbx.example.com:5060;transport=tcp`.
    pub registrar: String,
    /// User part of the address of record (the extension), e.g. `1001`.
    pub user: String,
    /// Host of the address of record; empty means the registrar's host.
    pub domain: String,
    /// Digest username; empty means `user`.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// Expiry to request, in seconds.
    pub expires: u32,
    /// The binding's Contact host and port (with `;transport=` if any), e.g.
    /// a cluster's front door; `None` = this instance's own listener.
    pub contact: Option<String>,
}

/// Where a registration stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// The first REGISTER is under way.
    Registering,
    /// The registrar holds the binding (refreshes keep this state).
    Registered {
        /// Expiry the registrar granted, in seconds.
        expires: u32,
    },
    /// The last attempt failed (a timeout is 408); it is retried after `retry_in`.
    Failed {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// Refreshing has stopped: unregistered, dropped or shut down.
    Unregistered,
}

/// A running registration. Dropping it stops refreshing and leaves the
/// binding to lapse; `unregister` removes it at once.
pub struct Registration {
    state: watch::Receiver<RegistrationState>,
    bye: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// The current state and its changes.
    pub fn state(&self) -> watch::Receiver<RegistrationState> {
        self.state.clone()
    }

    /// Stop refreshing and REGISTER with `Expires: 0` (digest answered),
    /// after a REGISTER under way has finished; waits a few seconds at most
    /// for the registrar.
    pub async fn unregister(mut self) {
        if let Some(bye) = self.bye.take() {
            // A closed channel means the task has already stopped.
            let _ = bye.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                debug!(error = %e, "registration task ended abnormally");
            }
        }
    }
}

/// Validate `spec` and start registering.
pub(super) fn start(shared: Arc<Shared>, spec: RegistrationSpec) -> Result<Registration, SipError> {
    let target = Target::new(&shared, &spec)?;
    let (state_tx, state) = watch::channel(RegistrationState::Registering);
    let (bye, bye_rx) = oneshot::channel();
    let span = info_span!("registration", user = %spec.user, registrar = %spec.registrar);
    let driver = Driver {
        endpoint: shared.stack.dialogs.endpoint.clone(),
        metrics: shared.metrics.clone(),
        shutdown: shared.shutdown.clone(),
        target,
        plan: Plan::with_jitter(spec.expires, rand::random_range(0..=MAX_JITTER_PERMILLE)),
        cseq: 0,
        state: state_tx,
    };
    let task = tokio::spawn(driver.run(bye_rx).instrument(span));
    Ok(Registration {
        state,
        bye: Some(bye),
        task: Some(task),
    })
}

/// Why the refresh loop stopped.
enum Stop {
    Unregister,
    Dropped,
    Shutdown,
}

/// Run `fut` unless the registration is stopped first.
async fn unless_stopped<T>(
    fut: impl Future<Output = T>,
    bye: &mut oneshot::Receiver<()>,
    shutdown: &CancellationToken,
) -> Result<T, Stop> {
    tokio::select! {
        v = fut => Ok(v),
        asked = bye => Err(if asked.is_ok() { Stop::Unregister } else { Stop::Dropped }),
        _ = shutdown.cancelled() => Err(Stop::Shutdown),
    }
}

/// The task that owns one registration's Call-ID, CSeq and schedule.
struct Driver {
    endpoint: EndpointInnerRef,
    metrics: Metrics,
    shutdown: CancellationToken,
    target: Target,
    plan: Plan,
    cseq: u32,
    state: watch::Sender<RegistrationState>,
}

impl Driver {
    async fn run(mut self, mut bye: oneshot::Receiver<()>) {
        let shutdown = self.shutdown.clone();
        let stop = loop {
            let sent = Instant::now();
            let expires = self.plan.expires;
            let reply = match self.exchange_or_stop(expires, &mut bye, &shutdown).await {
                Ok(r) => r,
                Err(stop) => break stop,
            };
            let step = self.plan.on_reply(reply, sent, Instant::now());
            if let Some(st) = step.state {
                self.publish(st);
            }
            let wait = tokio::time::sleep_until(step.next);
            if let Err(stop) = unless_stopped(wait, &mut bye, &shutdown).await {
                break stop;
            }
        };
        match stop {
            Stop::Unregister => self.unregister().await,
            Stop::Dropped => debug!("registration dropped; the binding lapses at its expiry"),
            Stop::Shutdown => debug!("shutting down; the binding lapses at its expiry"),
        }
        self.publish(RegistrationState::Unregistered);
    }

    /// One REGISTER, unless stopped first. Asked to unregister meanwhile,
    /// it finishes (within `UNREGISTER_WAIT`) and then stops: a registrar
    /// that just challenged it waits for the answer to that challenge and
    /// may refuse (403) any other REGISTER first, the unregister included.
    async fn exchange_or_stop(
        &mut self,
        expires: u32,
        bye: &mut oneshot::Receiver<()>,
        shutdown: &CancellationToken,
    ) -> Result<Reply, Stop> {
        let exchange = self.exchange(expires);
        tokio::pin!(exchange);
        tokio::select! {
            reply = &mut exchange => Ok(reply),
            asked = bye => {
                if asked.is_err() {
                    return Err(Stop::Dropped);
                }
                let _ = tokio::time::timeout(FINISH_WAIT, exchange).await;
                Err(Stop::Unregister)
            }
            _ = shutdown.cancelled() => Err(Stop::Shutdown),
        }
    }

    async fn unregister(&mut self) {
        match tokio::time::timeout(UNREGISTER_WAIT, self.exchange(0)).await {
            Ok(Reply::Ok { .. }) => {}
            Ok(other) => warn!(reply = ?other, "unregister refused"),
            Err(_) => warn!("no reply to unregister"),
        }
    }

    fn publish(&self, st: RegistrationState) {
        let old = self.state.send_replace(st.clone());
        log_change(&old, &st);
    }

    /// One REGISTER asking for `expires`, answering at most one challenge.
    async fn exchange(&mut self, expires: u32) -> Reply {
        let mut auth = None;
        let mut answered = false;
        loop {
            // Every request, refreshes and digest retries alike, takes the
            // next CSeq under the one Call-ID (RFC 3261 §10.2.4).
            self.cseq = self.cseq.wrapping_add(1);
            let req = match self
                .target
                .request(&self.endpoint, self.cseq, expires, auth.take())
            {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "cannot build REGISTER");
                    return unreachable();
                }
            };
            debug!(cseq = self.cseq, expires, "REGISTER");
            let dest = self.target.destination.clone();
            if dest.is_some() {
                // A refused certificate is the reason the registration shows.
                let layer = &self.endpoint.transport_layer;
                if let Err(why) = tls::connect_first(layer, &req.uri, &self.metrics).await {
                    return unreachable_because(&why);
                }
            }
            let Some(resp) = transact(&self.endpoint, req.clone(), dest).await else {
                return unreachable();
            };
            if matches!(resp.status_code.code(), 401 | 407) && !answered {
                answered = true;
                auth = self.target.authorization(&req, &resp);
                if auth.is_some() {
                    continue;
                }
            }
            return request::reply(&resp, &self.target.contact, expires);
        }
    }
}

/// One line per change that matters to an operator; refreshes that keep
/// the grant are routine.
fn log_change(old: &RegistrationState, new: &RegistrationState) {
    use RegistrationState as S;
    match (old, new) {
        (S::Registered { expires: a }, S::Registered { expires: b }) if a == b => {
            debug!(expires = b, "refreshed")
        }
        (_, S::Registered { expires }) => info!(expires, "registered"),
        (
            _,
            S::Failed {
                code,
                reason,
                retry_in,
            },
        ) => {
            warn!(code, %reason, ?retry_in, "registration failed")
        }
        (_, S::Unregistered) => info!("unregistered"),
        (_, S::Registering) => {}
    }
}

/// Send `req` in a client transaction; its final response, if any arrives.
/// Timer F makes rsipstack hand back a 408 of its own.
pub(super) async fn transact(
    endpoint: &EndpointInnerRef,
    req: Request,
    destination: Option<SipAddr>,
) -> Option<Response> {
    let key = match TransactionKey::from_request(&req, TransactionRole::Client) {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, method = %req.method, "request has no transaction key");
            return None;
        }
    };
    let mut tx = Transaction::new_client(key, req, endpoint.clone(), None);
    tx.destination = destination;
    if let Err(e) = tx.send().await {
        debug!(error = %e, "request not sent");
        return None;
    }
    while let Some(msg) = tx.receive().await {
        if let SipMessage::Response(resp) = msg {
            if resp.status_code.code() >= 200 {
                return Some(resp);
            }
        }
    }
    None
}

/// The registrar could not be reached over TLS, for the reason given.
fn unreachable_because(why: &tls::TlsPeerError) -> Reply {
    Reply::Failed {
        code: 503,
        reason: why.to_string(),
        retry_after: None,
    }
}

/// The registrar could not be reached at the transport level (RFC 3263
/// treats that like a 503 from the next hop).
fn unreachable() -> Reply {
    Reply::Failed {
        code: 503,
        reason: "Service Unavailable".into(),
        retry_after: None,
    }
}
