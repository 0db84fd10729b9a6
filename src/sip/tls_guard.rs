//! The TLS port: accepted and handshaken here, then given to rsipstack.
//!
//! A connection that opens with anything but a TLS handshake record (plain
//! SIP sent to the TLS port), a handshake that fails, and one that takes too
//! long are closed, logged at debug and counted by reason; nothing of them
//! reaches the SIP stack. An established connection is read by the same
//! guarded stream reader as TCP (`guard::GuardedStream`: size cap, 400 for
//! what can be answered, drops counted by reason); rsipstack writes the
//! replies through a `TlsConnection` over its write half (`tls_seam`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::guard::GuardedStream;
use super::tls;
use super::tls_seam::{self, AcceptedWriter};
use crate::connections::{Acceptor, Gate};
use crate::metrics::Metrics;

/// Time a client has to complete its handshake, so idle sockets do not pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What each accepted TLS connection needs.
pub(crate) struct TlsGuard {
    pub endpoint: EndpointInnerRef,
    /// Our address as written in Via (`public_ip:port`, TLS).
    pub local: SipAddr,
    pub acceptor: TlsAcceptor,
    /// Largest SIP message accepted, in bytes.
    pub max: usize,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
    /// Connection caps and timeouts of this listener.
    pub gate: Gate,
}

/// Accept TLS connections until shutdown; each holds its permit (a slot
/// under the caps) from accept, handshake included, until it is closed.
pub(crate) async fn serve_tls(listener: TcpListener, guard: Arc<TlsGuard>) {
    let mut acceptor = Acceptor::new(listener, guard.gate.clone());
    loop {
        let (stream, remote, permit) = tokio::select! {
            _ = guard.shutdown.cancelled() => return,
            a = acceptor.next() => a,
        };
        let guard = guard.clone();
        tokio::spawn(async move {
            serve_connection(stream, remote, &guard).await;
            drop(permit);
        });
    }
}

async fn serve_connection(stream: TcpStream, remote: SocketAddr, guard: &TlsGuard) {
    let outcome = tokio::select! {
        _ = guard.shutdown.cancelled() => return,
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &guard.acceptor)) => r,
    };
    let stream = match outcome {
        Ok(Ok(stream)) => stream,
        Ok(Err(reason)) => return refused(guard, remote, reason),
        Err(_) => return refused(guard, remote, "handshake_timeout"),
    };
    guard.metrics.sip_tls_handshake("in", "ok");
    let (read, write) = tokio::io::split(stream);
    // Cancelled when this connection is over: it tells rsipstack the flow is gone.
    let closed = guard.shutdown.child_token();
    let local = guard.local.get_socketaddr().unwrap_or(remote);
    tls_seam::hand_over(remote, AcceptedWriter::new(write, local, closed.clone()));
    let from = SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tls),
        addr: remote.into(),
    };
    let conn = match TlsConnection::connect(&from, None, None, Some(closed.clone())).await {
        Ok(conn) => conn,
        Err(e) => {
            tls_seam::take_back(remote);
            return debug!(error = %e, %remote, "tls connection setup failed");
        }
    };
    let stream = GuardedStream {
        sc: SipConnection::Tls(conn.clone()),
        conn: &conn,
        transport: rsipstack::sip::Transport::Tls,
        remote,
        endpoint: &guard.endpoint,
        max: guard.max,
        metrics: &guard.metrics,
        gate: &guard.gate,
    };
    stream.read(read, &guard.shutdown).await;
    closed.cancel();
    conn.close().await.ok();
}

/// Peek at the first byte, then handshake; the error is the metric reason.
async fn handshake(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
) -> Result<TlsStream<TcpStream>, &'static str> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) | Err(_) => return Err("closed"),
        Ok(_) if !tls::looks_like_tls(first[0]) => return Err("plaintext"),
        Ok(_) => {}
    }
    acceptor
        .accept(stream)
        .await
        .map_err(|e| tls::handshake_reason(&e))
}

fn refused(guard: &TlsGuard, remote: SocketAddr, reason: &'static str) {
    debug!(%remote, reason, "tls connection closed before any SIP");
    guard.metrics.sip_tls_handshake("in", reason);
}
