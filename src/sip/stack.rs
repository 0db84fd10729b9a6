//! One rsipstack endpoint on guarded transports, shared by the gateway's
//! `SipEndpoint` and the echo extension.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rsipstack::dialog::dialog::Dialog;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption, MessageInspector};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TcpListenerConnection, TlsListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::guard::{self, GuardedUdp, TcpGuard};
use super::tls::{self, SipTls};
use super::tls_guard::{self, TlsGuard};
use super::tls_seam;
use super::udp_reader;
use super::{SipError, Transport};
use crate::connections::{Connections, Gate};
use crate::metrics::Metrics;

/// Methods siphon's UAs accept, for `Allow`: UPDATE and INFO inside calls
/// (hold, session refreshes, key presses), PRACK for reliable 18x.
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, NOTIFY, REFER";

/// Extensions siphon's UAs support, for `Supported` (100rel is added by
/// rsipstack on INVITEs).
pub(crate) const SUPPORTED: &str = "timer, replaces";

/// `Allow` and `Supported` for a dialog-creating INVITE or its 2xx, so the
/// peer knows it may refresh with UPDATE and use session timers.
pub(crate) fn capabilities() -> Vec<Header> {
    vec![
        Header::Allow(ALLOW.into()),
        Header::Supported(SUPPORTED.into()),
    ]
}

/// What a stack needs to start.
pub(crate) struct StackConfig {
    /// Which listener this is, for `siphon_sip_listener_up` (`sip`, `echo`).
    pub name: &'static str,
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// The TLS listener (`listen`) and what TLS peers are trusted with.
    pub tls: Option<SipTls>,
    pub public_ip: IpAddr,
    pub user_agent: String,
    pub max_message_bytes: usize,
    /// RFC 3261 T1; tests shorten it so Timer B fires in seconds.
    pub t1: Duration,
    /// Caps and timeouts of the stream listeners.
    pub gates: StreamGates,
}

/// The connection caps of a stack's TCP and TLS listeners.
pub(crate) struct StreamGates {
    pub tcp: Gate,
    pub tls: Gate,
}

impl StreamGates {
    /// The gateway's SIP listeners (`sip_tcp`, `sip_tls` in metrics).
    pub fn sip(connections: &Connections) -> Self {
        StreamGates {
            tcp: connections.sip("sip_tcp"),
            tls: connections.sip("sip_tls"),
        }
    }

    /// Default caps for a side listener (the echo extension, test peers),
    /// labelled `<tcp>` and `<tls>`; its fd count is its own.
    pub fn side(tcp: &'static str, tls: &'static str, metrics: &Metrics) -> Self {
        let c = Connections::for_process(&Default::default(), metrics.clone());
        StreamGates {
            tcp: c.sip(tcp),
            tls: c.sip(tls),
        }
    }
}

/// A running endpoint.
pub(crate) struct Stack {
    pub dialogs: Arc<DialogLayer>,
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub public_ip: IpAddr,
}

impl Stack {
    /// Bound local address of a transport.
    pub fn local_addr(&self, t: Transport) -> Option<SocketAddr> {
        match t {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
        }
    }

    /// `public_ip:port` of a transport, as written in Via and Contact.
    pub fn public_addr(&self, t: Transport) -> Option<SocketAddr> {
        self.local_addr(t)
            .map(|a| SocketAddr::new(self.public_ip, a.port()))
    }
}

/// Counts SIP messages on the wire: everything rsipstack sends, and every
/// received message it processes (on guarded sockets and on the TCP
/// connections it opens itself alike; absorbed retransmissions excepted).
struct WireCounter(Metrics);

fn kind(msg: &SipMessage) -> String {
    match msg {
        SipMessage::Request(r) => r.method.to_string(),
        SipMessage::Response(r) => format!("{}xx", r.status_code.code() / 100),
    }
}

impl MessageInspector for WireCounter {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        guard::count(&self.0, "out", &kind(&msg));
        msg
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        // `from` is None for responses the stack makes up itself (timeouts).
        if from.is_some() {
            guard::count(&self.0, "in", &kind(&msg));
        }
        msg
    }
}

fn sip_addr(t: rsipstack::sip::Transport, addr: SocketAddr) -> SipAddr {
    SipAddr {
        r#type: Some(t),
        addr: addr.into(),
    }
}

/// Bind the sockets and start the endpoint; the receiver yields requests
/// that open new transactions.
pub(crate) async fn start(
    cfg: StackConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(Stack, TransactionReceiver), SipError> {
    let token = shutdown.child_token();
    let layer = TransportLayer::new(token.clone());
    let udp = bind_udp(&cfg, &metrics, &token, &layer).await?;
    let tcp = match cfg.tcp {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| bind_error(Transport::Tcp, addr, source))?,
        ),
        None => None,
    };
    let tls = bind_tls(cfg.tls.as_ref(), &layer).await?;
    let t1 = cfg.t1;
    let option = EndpointOption {
        t1,
        t1x64: t1 * 64,
        ..Default::default()
    };
    let endpoint = EndpointBuilder::new()
        .with_user_agent(&cfg.user_agent)
        .with_transport_layer(layer)
        .with_cancel_token(token.clone())
        .with_option(option)
        .with_inspector(Box::new(WireCounter(metrics.clone())))
        .build();
    let incoming = endpoint.incoming_transactions()?;
    let inner = endpoint.inner.clone();
    serve(inner.clone()).await;
    let udp_local = udp.map(|(local, reader)| {
        let up = metrics.sip_listener_up.with_label_values(&[cfg.name]);
        udp_reader::spawn(reader, inner.clone(), up, token.clone());
        local
    });

    let mut tcp_local = None;
    if let Some(listener) = tcp {
        let local = listener.local_addr()?;
        let public = SocketAddr::new(cfg.public_ip, local.port());
        // Listed only so rsipstack writes this address in Via and picks it
        // for TCP targets; the socket itself is served by the guard.
        let entry = TcpListenerConnection::new(local, Some(public)).await?;
        inner.transport_layer.add_transport(entry.into());
        let guard = Arc::new(TcpGuard {
            endpoint: inner.clone(),
            local: sip_addr(rsipstack::sip::Transport::Tcp, public),
            max: cfg.max_message_bytes,
            metrics: metrics.clone(),
            shutdown: token.clone(),
            gate: cfg.gates.tcp.clone(),
        });
        tokio::spawn(guard::serve_tcp(listener, guard));
        tcp_local = Some(local);
    }
    let mut tls_local = None;
    if let Some((listener, acceptor)) = tls {
        let local = listener.local_addr()?;
        let public = SocketAddr::new(cfg.public_ip, local.port());
        // Listed only for Via and target selection, as for TCP above.
        let entry = TlsListenerConnection::new(local, Some(public), Default::default()).await?;
        inner.transport_layer.add_transport(entry.into());
        let guard = Arc::new(TlsGuard {
            endpoint: inner.clone(),
            local: sip_addr(rsipstack::sip::Transport::Tls, public),
            acceptor,
            max: cfg.max_message_bytes,
            metrics,
            shutdown: token.clone(),
            gate: cfg.gates.tls.clone(),
        });
        tokio::spawn(tls_guard::serve_tls(listener, guard));
        tls_local = Some(local);
    }
    let stack = Stack {
        dialogs: Arc::new(DialogLayer::new(inner)),
        udp: udp_local,
        tcp: tcp_local,
        tls: tls_local,
        public_ip: cfg.public_ip,
    };
    Ok((stack, incoming))
}

/// Bind the UDP socket: a send-only handle goes to rsipstack's transport
/// layer, the reading one comes back (see `udp_reader`).
async fn bind_udp(
    cfg: &StackConfig,
    metrics: &Metrics,
    token: &CancellationToken,
    layer: &TransportLayer,
) -> Result<Option<(SocketAddr, UdpConnection)>, SipError> {
    let Some(addr) = cfg.udp else {
        return Ok(None);
    };
    let sock = UdpSocket::bind(addr)
        .await
        .map_err(|source| bind_error(Transport::Udp, addr, source))?;
    let local = sock.local_addr()?;
    let sock = Arc::new(sock);
    let public = Some(SocketAddr::new(cfg.public_ip, local.port()));
    let guarded = |reads| {
        let g = GuardedUdp::new(sock.clone(), cfg.max_message_bytes, metrics.clone(), reads);
        Arc::new(g)
    };
    let sender =
        UdpConnection::from_socket(guarded(false), public, Some(token.child_token())).await?;
    layer.add_transport(sender.into());
    let reader =
        UdpConnection::from_socket(guarded(true), public, Some(token.child_token())).await?;
    Ok(Some((local, reader)))
}

fn bind_error(transport: Transport, addr: SocketAddr, source: std::io::Error) -> SipError {
    SipError::Bind {
        transport,
        addr,
        source,
    }
}

/// Set up TLS: the client side of rsipstack's transport always (targets
/// may ask for TLS without a listener of ours), the listener when asked for.
async fn bind_tls(
    t: Option<&SipTls>,
    layer: &TransportLayer,
) -> Result<Option<(TcpListener, tokio_rustls::TlsAcceptor)>, SipError> {
    tls::install_provider();
    tls_seam::install();
    let default = SipTls::default();
    layer.set_tls_config(tls::client_config(t.unwrap_or(&default)));
    let Some((t, addr)) = t.and_then(|t| Some((t, t.listen?))) else {
        return Ok(None);
    };
    let config = tls::server_config(t)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| bind_error(Transport::Tls, addr, source))?;
    Ok(Some((listener, tokio_rustls::TlsAcceptor::from(config))))
}

/// Run the endpoint. It is polled once here before being spawned: that first
/// poll makes rsipstack take its snapshot of the listener list and start
/// them, so the TCP entry added afterwards is never bound by rsipstack (it
/// would only log a bind failure if it were).
async fn serve(inner: EndpointInnerRef) {
    let mut fut = Box::pin(async move {
        if let Err(e) = inner.serve().await {
            debug!(error = %e, "sip endpoint stopped");
        }
    });
    std::future::poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    tokio::spawn(fut);
}

/// Give `tx` to the dialog it belongs to; `Some(tx)` back if there is none.
pub(crate) async fn route_in_dialog(
    dialogs: &DialogLayer,
    mut tx: Transaction,
) -> Option<Transaction> {
    match dialogs.match_dialog(&tx) {
        Some(Dialog::Invite(mut d)) => {
            if let Err(e) = d.handle(&mut tx).await {
                debug!(error = %e, "in-dialog request failed");
            }
            None
        }
        _ => Some(tx),
    }
}

/// Answer out-of-dialog requests no UA role handles (OPTIONS included).
pub(crate) async fn answer_other(mut tx: Transaction) {
    let allow = Header::Allow(ALLOW.into());
    let result = match tx.original.method {
        Method::Options => tx.reply_with(StatusCode::OK, vec![allow], None).await,
        Method::Ack => Ok(()),
        // In-dialog methods outside any dialog siphon knows.
        Method::Bye | Method::Update | Method::Info | Method::PRack | Method::Notify => {
            tx.reply(StatusCode::CallTransactionDoesNotExist).await
        }
        // A REFER names a dialog by its To tag; siphon takes none outside
        // a call (RFC 3515 lets a UA refuse them).
        Method::Refer if has_to_tag(&tx.original) => {
            tx.reply(StatusCode::CallTransactionDoesNotExist).await
        }
        Method::Refer => {
            let warning = Header::Warning("399 siphon \"REFER only within a call\"".into());
            tx.reply_with(StatusCode::Forbidden, vec![warning], None)
                .await
        }
        _ => {
            tx.reply_with(StatusCode::MethodNotAllowed, vec![allow], None)
                .await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "reply failed");
    }
}

fn has_to_tag(req: &rsipstack::sip::Request) -> bool {
    use rsipstack::sip::prelude::HeadersExt;
    let tag = req.to_header().ok().and_then(|t| t.tag().ok().flatten());
    tag.is_some()
}

/// The value of header `h` if its name is `name` (case-insensitive).
pub(crate) fn header_value(h: &Header, name: &str) -> Option<String> {
    h.name()
        .eq_ignore_ascii_case(name)
        .then(|| h.value().to_string())
}
