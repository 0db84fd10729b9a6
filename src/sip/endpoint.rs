//! The gateway's SIP endpoint: listeners, OPTIONS, refusals, outbound and
//! inbound calls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rsipstack::sip::Method;
use rsipstack::transaction::TransactionReceiver;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::dialog_states::DialogStates;
use super::stack::{self, Stack, StackConfig, StreamGates};
use super::tls;
use super::uac::{self, UacEvent, UacHandle};
use super::uac_request;
use super::uas::{self, Inbound, IncomingCall};
use super::{OutboundInvite, SipError, SipSettings, Transport};
use crate::connections::Connections;
use crate::metrics::Metrics;

/// RFC 3261 default T1.
const T1: Duration = Duration::from_millis(500);

/// The running SIP endpoint; clones share it.
#[derive(Clone)]
pub struct SipEndpoint {
    pub(super) inner: Arc<Shared>,
}

/// State shared by the endpoint's tasks and call handles.
pub(super) struct Shared {
    pub stack: Stack,
    pub settings: SipSettings,
    pub shutdown: CancellationToken,
    pub inbound: Inbound,
    pub metrics: Metrics,
    /// Where outbound dialogs report their states.
    pub dialog_states: DialogStates,
    /// Set when the gateway drains: new INVITEs and OPTIONS get 503.
    pub draining: AtomicBool,
    /// The gateway's call permits (`limits.max_calls`): OPTIONS get 503
    /// while none is free, so a dispatcher sends the next call elsewhere.
    pub call_slots: OnceLock<Arc<Semaphore>>,
}

impl Shared {
    fn at_capacity(&self) -> bool {
        self.call_slots
            .get()
            .is_some_and(|slots| slots.available_permits() == 0)
    }
}

impl SipEndpoint {
    /// Bind the configured transports and start serving.
    pub async fn start(
        settings: SipSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<SipEndpoint, SipError> {
        Self::start_with_t1(settings, metrics, shutdown, T1).await
    }

    /// `start` with the gateway's connection limits on the TCP and TLS listeners.
    pub async fn start_limited(
        settings: SipSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
        connections: &Connections,
    ) -> Result<SipEndpoint, SipError> {
        let gates = StreamGates::sip(connections);
        Self::start_gated(settings, metrics, shutdown, T1, gates).await
    }

    /// `start` with a custom T1, so tests see Timer B in seconds.
    pub(crate) async fn start_with_t1(
        settings: SipSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
        t1: Duration,
    ) -> Result<SipEndpoint, SipError> {
        let connections = Connections::for_process(&Default::default(), metrics.clone());
        let gates = StreamGates::sip(&connections);
        Self::start_gated(settings, metrics, shutdown, t1, gates).await
    }

    async fn start_gated(
        settings: SipSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
        t1: Duration,
        gates: StreamGates,
    ) -> Result<SipEndpoint, SipError> {
        let cfg = StackConfig {
            name: "sip",
            udp: settings.udp,
            tcp: settings.tcp,
            tls: settings.tls.clone(),
            public_ip: settings.public_ip,
            user_agent: settings.user_agent.clone(),
            max_message_bytes: settings.max_message_bytes,
            t1,
            gates,
        };
        let inbound = Inbound::new(settings.inbound.clone(), metrics.clone());
        let (stack, incoming) = stack::start(cfg, metrics.clone(), shutdown.clone()).await?;
        let inner = Arc::new(Shared {
            stack,
            settings,
            shutdown,
            inbound,
            metrics,
            dialog_states: DialogStates::start(),
            draining: AtomicBool::new(false),
            call_slots: OnceLock::new(),
        });
        tokio::spawn(serve_incoming(inner.clone(), incoming));
        Ok(SipEndpoint { inner })
    }

    /// The bound address of a transport, if it is enabled.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.inner.stack.local_addr(transport)
    }

    /// Take the stream of inbound calls (once; later calls return `None`).
    /// Until it is taken, inbound INVITEs are refused with 480.
    pub fn take_inbound(&self) -> Option<mpsc::Receiver<IncomingCall>> {
        self.inner.inbound.take()
    }

    /// Place an outbound call; events arrive on the receiver until `Failed`
    /// or `Ended`.
    pub async fn invite(
        &self,
        req: OutboundInvite,
    ) -> Result<(UacHandle, mpsc::Receiver<UacEvent>), SipError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SipError::Shutdown);
        }
        let mut req = req;
        while let Some((uri, transport)) = uac_request::target_uri(&req.target) {
            match connect_first(&self.inner, &uri, transport).await {
                Ok(()) => break,
                Err(e) if !req.failover.is_empty() => {
                    let failed = req.next_hop();
                    tracing::info!(%failed, error = %e, next = %req.target, "failing over");
                }
                Err(e) => return Err(e),
            }
        }
        uac::start(self.inner.clone(), req)
    }

    /// Send one OPTIONS to `target` (`sip:pbx.example.com;transport=tcp`);
    /// its final status, or `None` when nothing answered.
    pub async fn ping(&self, target: &str) -> Result<Option<u16>, SipError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SipError::Shutdown);
        }
        super::options_ping::ping(&self.inner, target).await
    }

    /// Start draining: dialogs go on, but new INVITEs and OPTIONS probes
    /// are answered 503 with Retry-After, so a dispatcher (Kamailio's
    /// OPTIONS pings) routes new calls to another instance.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// OPTIONS probes answer 503 while `slots` has no permit free.
    pub fn watch_capacity(&self, slots: Arc<Semaphore>) {
        let _ = self.inner.call_slots.set(slots);
    }

    /// Register a user with an upstream registrar and keep it registered
    /// until the returned `Registration` is unregistered or dropped.
    pub fn register(&self, spec: super::RegistrationSpec) -> Result<super::Registration, SipError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SipError::Shutdown);
        }
        super::registration::start(self.inner.clone(), spec)
    }
}

/// Open the connection a TCP or TLS request will go over, so that a refused
/// connection or certificate is an error now, not a 408 at Timer B.
pub(super) async fn connect_first(
    shared: &Shared,
    uri: &rsipstack::sip::Uri,
    transport: Transport,
) -> Result<(), SipError> {
    let layer = &shared.stack.dialogs.endpoint.transport_layer;
    match transport {
        Transport::Tls => tls::connect_first(layer, uri, &shared.metrics)
            .await
            .map_err(SipError::TlsPeer),
        Transport::Tcp => uac_request::connect_tcp_first(layer, uri).await,
        Transport::Udp => Ok(()),
    }
}

async fn serve_incoming(shared: Arc<Shared>, mut incoming: TransactionReceiver) {
    loop {
        let tx = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => return,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Some(tx) = uas::refuse_early_offer(&shared, tx).await else {
                return;
            };
            let Some(tx) = stack::route_in_dialog(&shared.stack.dialogs, tx).await else {
                return;
            };
            let fresh = matches!(tx.original.method, Method::Invite | Method::Options);
            if fresh && shared.draining.load(Ordering::Relaxed) {
                shared.metrics.sip_error("draining");
                uas::refuse_unavailable(tx, uas::Unavailable::Draining).await;
            } else if tx.original.method == Method::Options && shared.at_capacity() {
                uas::refuse_unavailable(tx, uas::Unavailable::Full).await;
            } else if tx.original.method == Method::Invite {
                uas::on_invite(shared, tx).await;
            } else {
                stack::answer_other(tx).await;
            }
        });
    }
}
