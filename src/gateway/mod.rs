//! Wiring: builds every part from the config, runs the HTTP server, and
//! drives calls (the IO edge of the `call` state machines). Lives in the
//! library so tests start a whole gateway in-process, as `main` does.

mod call_record;
mod client_registrations;
mod detached;
mod dialog;
mod driver;
mod hangups;
mod inbound;
mod infos;
mod leg;
mod lifecycle;
mod listening;
mod midcall;
mod outbound;
mod quality;
mod referrals;
mod registrations;
mod reinvites;
mod replaces;
mod sdes;
mod sip_tls;
mod slots;
mod start_error;
mod transfers;
mod trunks;

pub use listening::Listening;
pub use start_error::StartError;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::call::RouteConfig;
use crate::config::Config;
use crate::connections::Connections;
use crate::http::tls::CertStore;
use crate::media::{PortPool, Relays};
use crate::metrics::Metrics;
use crate::records::Records;
use crate::signaling::{
    CallRequest, CallService, ClientControl, ErrorCode, Refusal, RegisterRequest, ResumeLink,
    ServerMessage, SessionId, SessionLink,
};
use crate::sip::{self, EchoServer, SipEndpoint};
use crate::webrtc::Identity;

pub use lifecycle::Signal;

/// The session id on the gateway's own shutdown notice (no real session has it).
pub(crate) const SHUTDOWN_SESSION: SessionId = 0;

/// A running gateway.
pub struct Gateway {
    inner: Arc<Inner>,
    http_addr: SocketAddr,
    http_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Shared state of the running gateway.
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
    pub(crate) sip: SipEndpoint,
    pub(crate) relays: Relays,
    pub(crate) ports: PortPool,
    pub(crate) identity: Arc<Identity>,
    pub(crate) route: RouteConfig,
    /// Answered calls by the Call-ID of their SIP dialog, for an INVITE
    /// with Replaces to find.
    pub(crate) sip_calls: DashMap<String, ClientControl>,
    /// The trunks, their order and health.
    pub(crate) trunks: Arc<trunks::Trunks>,
    pub(crate) calls: DashMap<u64, ClientControl>,
    /// Sessions by user: where inbound calls ring.
    pub(crate) users: DashMap<String, Vec<SessionLink>>,
    /// Calls in progress per user (`limits.per_user_calls`).
    pub(crate) slots: slots::UserSlots,
    /// One permit per call in progress, taken before its setup
    /// (`limits.max_calls`).
    pub(crate) call_slots: Arc<tokio::sync::Semaphore>,
    /// Upstream registrations of configured users.
    pub(crate) registrations: registrations::Registrations,
    /// Online users' registrations at the cluster's registrar.
    pub(crate) cluster: registrations::Registrations,
    /// Answered calls whose socket was lost, waiting for a `resume`.
    pub(crate) detached: detached::Detached,
    /// Registrations browser sessions asked for (`register`).
    pub(crate) client_registrations: client_registrations::ClientRegistrations,
    pub(crate) shutdown: CancellationToken,
    /// Set from the first stop signal: new calls are refused.
    pub(crate) draining: AtomicBool,
    /// False while draining: `/readyz` answers 503.
    pub(crate) ready: Arc<AtomicBool>,
    /// Cancelled last: WebSocket sessions send their close frames.
    pub(crate) closing: CancellationToken,
    /// Cancelled at the drain: sessions without a call move elsewhere.
    pub(crate) moving: CancellationToken,
    /// The WebSocket sessions, awaited at exit.
    pub(crate) sessions: TaskTracker,
    /// siphon's BYEs and CANCELs under way, given a moment at exit.
    pub(crate) hangups: TaskTracker,
    /// The HTTPS certificate, when `http.tls_cert` is set.
    pub(crate) certs: Option<Arc<CertStore>>,
    /// Connection caps shared by the SIP stream and HTTP listeners.
    pub(crate) connections: Connections,
    /// Where each call's record goes as it ends (`[records]`).
    pub(crate) records: Records,
    _echo: Option<EchoServer>,
}

impl Gateway {
    /// Start SIP, the echo extension, relay loops and HTTP per `config`.
    pub async fn start(config: Config, metrics: Metrics) -> Result<Gateway, StartError> {
        let shutdown = CancellationToken::new();
        let started = Self::start_parts(config, metrics, shutdown.clone()).await;
        if started.is_err() {
            // What did start (the echo, SIP) stops and frees its sockets.
            shutdown.cancel();
        }
        started
    }

    async fn start_parts(
        config: Config,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Gateway, StartError> {
        let identity = Arc::new(Identity::generate()?);
        let instance = instance_name(&config.cluster.instance);
        metrics
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), &instance])
            .set(1);
        metrics.cluster_registrar_up.set(1);
        metrics.calls_max.set(i64::from(config.limits.max_calls));
        let echo = start_echo(&config, &metrics, &shutdown).await?;
        let connections = Connections::for_process(&config.limits.connections, metrics.clone());
        connections.watch_ebbs(shutdown.clone());
        let settings = sip_settings(&config)?;
        let sip =
            SipEndpoint::start_limited(settings, metrics.clone(), shutdown.clone(), &connections)
                .await
                .map_err(StartError::sip)?;
        let webrtc_bind = SocketAddr::new(config.webrtc.bind, config.webrtc.port);
        // A relay loop that dies clears it too (docs/reliability.md).
        let ready = Arc::new(AtomicBool::new(true));
        let relays = Relays::start(
            config.worker_count(),
            webrtc_bind,
            identity.clone(),
            &metrics,
            crate::media::relay::Tuning {
                timing_sample: config.media.timing_sample,
                socket_buffer: config.media.socket_buffer_bytes as usize,
                io: config.media.io,
            },
            ready.clone(),
        )
        .map_err(StartError::media)?;
        // The pool binds per call: an address this host lacks would fail every call with 503.
        let rtp_first = SocketAddr::new(config.rtp.bind, config.rtp.port_min);
        std::net::UdpSocket::bind(SocketAddr::new(config.rtp.bind, 0))
            .map_err(|source| StartError::bind("rtp.bind", rtp_first, source))?;
        let ports = PortPool::new(config.rtp.bind, config.rtp.port_min, config.rtp.port_max)
            .with_gauge(metrics.rtp_ports_in_use.clone());
        let route = route_config(&config, echo.as_ref());
        let http = lifecycle::bind_http(&config).await?;
        let http_addr = http.local_addr;
        // After every bind: a start that fails on a taken port creates no records file.
        let records =
            Records::start(&config.records, &instance, &metrics).map_err(StartError::Records)?;
        let inner = Arc::new(Inner {
            metrics: metrics.clone(),
            sip,
            relays,
            ports,
            identity,
            route,
            trunks: Arc::new(trunks::Trunks::new(&config, &metrics)),
            sip_calls: DashMap::new(),
            calls: DashMap::new(),
            users: DashMap::new(),
            slots: slots::UserSlots::default(),
            call_slots: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_calls as usize,
            )),
            registrations: Default::default(),
            cluster: Default::default(),
            client_registrations: Default::default(),
            detached: Default::default(),
            shutdown: shutdown.clone(),
            draining: AtomicBool::new(false),
            ready,
            closing: CancellationToken::new(),
            moving: CancellationToken::new(),
            sessions: TaskTracker::new(),
            hangups: TaskTracker::new(),
            certs: http.certs.clone(),
            connections,
            records,
            _echo: echo,
            config,
        });
        inner.sip.watch_capacity(inner.call_slots.clone());
        inner.trunks.spawn_pings(&inner.sip, &inner.shutdown);
        registrations::Registrations::start_kept(&inner);
        if let Some(calls) = inner.sip.take_inbound() {
            tokio::spawn(inbound::serve(inner.clone(), calls));
        }
        let http_tasks = lifecycle::spawn_http(&inner, http);
        Ok(Gateway {
            inner,
            http_addr,
            http_tasks,
        })
    }

    /// The bound HTTP address (`/ws` lives here).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The SIP endpoint's bound address for a transport.
    pub fn sip_addr(&self, transport: sip::Transport) -> Option<SocketAddr> {
        self.inner.sip.local_addr(transport)
    }

    /// Free RTP ports (tests check that calls give theirs back).
    pub fn free_rtp_ports(&self) -> usize {
        self.inner.ports.free_count()
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.inner.calls.len()
    }
}

/// The gateway as the signaling sessions see it.
struct Calls(Arc<Inner>);

impl CallService for Calls {
    fn place_call(
        &self,
        request: CallRequest,
        to_client: mpsc::Sender<ServerMessage>,
    ) -> Result<ClientControl, Refusal> {
        let inner = &self.0;
        let refuse = |code, message: String| Refusal {
            call_id: Some(request.call_id.clone()),
            code,
            message,
        };
        if inner.draining.load(Ordering::Relaxed) {
            let msg = "siphon is draining before a restart: call again".to_owned();
            return Err(refuse(ErrorCode::Draining, msg));
        }
        let Ok(permit) = inner.call_slots.clone().try_acquire_owned() else {
            let max = inner.config.limits.max_calls;
            let msg = format!("gateway is at limits.max_calls ({max})");
            return Err(refuse(ErrorCode::LimitReached, msg));
        };
        let target = crate::call::resolve(&request.to, &inner.route)
            .map_err(|e| refuse(ErrorCode::NoRoute, e.to_string()))?;
        let per_user = inner.config.limits.per_user_calls;
        let slot = match &request.user {
            Some(user) => Some(inner.slots.take(user, per_user).ok_or_else(|| {
                let msg = format!("{user} has limits.per_user_calls ({per_user}) calls up");
                refuse(ErrorCode::LimitReached, msg)
            })?),
            None => None,
        };
        let (control, events) = mpsc::unbounded_channel();
        let key = rand::random::<u64>();
        inner.calls.insert(key, control.clone());
        let gw = inner.clone();
        // The call's future is built inside the task: a future captured and
        // then awaited is stored twice in the task.
        tokio::spawn(async move {
            let admission = midcall::Admission::new(permit, slot);
            outbound::run(gw, key, request, target, to_client, events, admission).await;
        });
        Ok(control)
    }

    fn session_opened(&self, link: SessionLink) {
        self.0.client_registrations.greet(&link);
        let user = link.user.clone();
        self.0.users.entry(user).or_default().push(link.clone());
        registrations::Registrations::session_opened(&self.0, &link);
    }

    fn session_closed(&self, id: SessionId, user: &str) {
        self.0.client_registrations.session_closed(id, user);
        let emptied = match self.0.users.get_mut(user) {
            Some(mut links) => {
                links.retain(|l| l.id != id);
                links.is_empty()
            }
            None => false,
        };
        if emptied {
            self.0.users.remove_if(user, |_, links| links.is_empty());
            registrations::Registrations::user_offline(&self.0, user);
        }
    }

    fn register(&self, request: RegisterRequest) -> Result<(), Refusal> {
        client_registrations::ClientRegistrations::start(&self.0, request)
    }

    fn unregister(&self, session: SessionId, user: &str) -> Result<(), Refusal> {
        self.0.client_registrations.stop(session, user)
    }

    fn resume(
        &self,
        user: &str,
        call_id: &str,
        link: ResumeLink,
    ) -> Result<ClientControl, Refusal> {
        detached::resume(&self.0, user, call_id, link)
    }
}

/// `configured`, or the host name when that is empty.
fn instance_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match host.trim() {
        "" => "siphon".to_owned(),
        name => name.to_owned(),
    }
}

async fn start_echo(
    config: &Config,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<Option<EchoServer>, StartError> {
    if !config.echo.enabled {
        return Ok(None);
    }
    let settings = sip::EchoSettings {
        listen: config.echo.listen,
        rtp_ip: config.echo.listen.ip(),
        // The echo's own calls count against the limit on their own: a
        // browser's echo call is one gateway call and one echo call.
        behavior: sip::EchoBehavior {
            max_calls: Some(config.limits.max_calls),
            ..Default::default()
        },
    };
    let echo = EchoServer::start(settings, metrics.clone(), shutdown.clone())
        .await
        .map_err(StartError::echo)?;
    Ok(Some(echo))
}

fn sip_settings(config: &Config) -> Result<sip::SipSettings, StartError> {
    Ok(sip::SipSettings {
        udp: config.sip.udp,
        tcp: config.sip.tcp,
        tls: sip_tls::load(config)?,
        public_ip: config.sip_public_ip(),
        domain: config.sip_domain(),
        user_agent: config.sip.user_agent.clone(),
        max_message_bytes: config.sip.max_message_bytes as usize,
        inbound: inbound_policy(&config.sip.inbound),
    })
}

/// The SIP layer's inbound policy; config validation already checked the values.
fn inbound_policy(c: &crate::config::InboundConfig) -> sip::InboundPolicy {
    use crate::config::InboundOthers;
    let trunk_sources = c
        .trunk_sources
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let others = match c.others {
        InboundOthers::Challenge => sip::OthersPolicy::Challenge {
            realm: c.realm.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
        },
        InboundOthers::Refuse => sip::OthersPolicy::Refuse,
    };
    sip::InboundPolicy {
        trunk_sources,
        others,
    }
}

fn route_config(config: &Config, echo: Option<&EchoServer>) -> RouteConfig {
    let trunk = config.trunk_uri().map(str::to_owned);
    let echo = echo.map(|e| (config.echo.extension.clone(), e.local_addr()));
    RouteConfig {
        trunk,
        allow_uri_dial: config.sip.allow_uri_dial,
        echo,
    }
}

#[cfg(test)]
mod tests;
