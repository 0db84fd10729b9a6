//! Where the input guard (`ingress`) meets the sockets.
//!
//! UDP: rsipstack reads datagrams through its `UdpSocket` trait, so the
//! socket handed to it is wrapped: `recv_from` only returns datagrams that
//! passed the checks and answers or drops the rest itself.
//!
//! TCP: rsipstack's stream reader cannot be hooked, so inbound connections
//! are accepted and framed here and each message is given to the endpoint
//! with `on_received_message`, exactly as rsipstack's reader would. Replies
//! still go out through rsipstack's `TcpConnection` writer. Connections
//! siphon opens itself (outbound calls over TCP) keep rsipstack's reader: a
//! peer we chose to call is trusted to frame its responses.
//!
//! TLS: once `tls_guard` has handshaken, the same `GuardedStream` reads the
//! decrypted stream; replies go out through an rsipstack `TlsConnection`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ingress::{self, Frame, Verdict};
use crate::metrics::Metrics;

/// rsipstack reads datagrams into a buffer of this size (its
/// `MAX_UDP_BUF_SIZE`); a larger accepted datagram would be cut short there.
const STACK_UDP_BUF: usize = 8192;

/// Count a message seen on the wire.
pub(crate) fn count(metrics: &Metrics, direction: &str, kind: &str) {
    metrics
        .sip_messages_total
        .with_label_values(&[direction, kind])
        .inc();
}

fn is_keepalive(data: &[u8]) -> bool {
    data.iter().all(|b| b.is_ascii_whitespace())
}

/// A UDP socket that only lets checked datagrams through to rsipstack.
///
/// Two of these share one socket: the one listed in rsipstack's transport
/// layer only sends (its reads never complete, so rsipstack's own read task
/// idles), and the one `udp_reader` serves reads, in a task siphon watches.
pub(crate) struct GuardedUdp {
    sock: Arc<UdpSocket>,
    max: usize,
    metrics: Metrics,
    reads: bool,
}

impl GuardedUdp {
    /// Wrap a bound socket; datagrams over `max` bytes (at most rsipstack's
    /// 8,192) are refused. Only a `reads` wrapper ever receives.
    pub(crate) fn new(sock: Arc<UdpSocket>, max: usize, metrics: Metrics, reads: bool) -> Self {
        GuardedUdp {
            sock,
            max: max.min(STACK_UDP_BUF),
            metrics,
            reads,
        }
    }

    /// Apply the verdict's side effects; `true` when the datagram goes on.
    async fn settle(&self, verdict: Verdict, from: SocketAddr) -> bool {
        match verdict {
            Verdict::Accept(_) => return true,
            Verdict::Refuse { reason, response } => {
                self.metrics.sip_error(reason);
                // Answer the source address (as rport would): the Via of a
                // malformed request is not worth trusting for routing.
                if self.sock.send_to(&response, from).await.is_ok() {
                    count(&self.metrics, "out", &status_class(&response));
                }
            }
            Verdict::Drop { reason } => self.metrics.sip_error(reason),
        }
        debug!(%from, "refused SIP datagram");
        false
    }
}

/// `4xx` / `5xx` from the status line of a response we built.
pub(crate) fn status_class(response: &[u8]) -> String {
    match response.get(8) {
        Some(d) if d.is_ascii_digit() => format!("{}xx", *d as char),
        _ => "other".into(),
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        if !self.reads {
            return std::future::pending().await;
        }
        let max = self.max.min(buf.len());
        // One byte more than allowed, so an oversize datagram is detectable.
        let mut scratch = vec![0u8; max + 1];
        loop {
            let (n, from) = self.sock.recv_from(&mut scratch).await?;
            let data = &scratch[..n];
            // The size check comes first: an oversize keepalive must not
            // reach the copy below (it would not fit in `buf`).
            let pass = if n <= max && is_keepalive(data) {
                true
            } else {
                self.settle(ingress::check_message(data, max), from).await
            };
            if let Some(dst) = buf.get_mut(..n).filter(|_| pass) {
                dst.copy_from_slice(data);
                return Ok((n, from));
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.sock.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
}

/// What each guarded TCP connection needs.
#[derive(Clone)]
pub(crate) struct TcpGuard {
    pub endpoint: EndpointInnerRef,
    pub local: SipAddr,
    pub max: usize,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
}

/// Accept inbound TCP connections until shutdown.
pub(crate) async fn serve_tcp(listener: TcpListener, guard: Arc<TcpGuard>) {
    loop {
        let accepted = tokio::select! {
            _ = guard.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let guard = guard.clone();
                tokio::spawn(async move { serve_connection(stream, &guard).await });
            }
            Err(e) => warn!(error = %e, "tcp accept failed"),
        }
    }
}

async fn serve_connection(stream: TcpStream, guard: &TcpGuard) {
    let Ok(remote) = stream.peer_addr() else {
        return;
    };
    let conn = match TcpConnection::from_stream(
        stream,
        guard.local.clone(),
        Some(guard.shutdown.child_token()),
    ) {
        Ok(c) => c,
        Err(e) => return warn!(error = %e, "tcp connection setup failed"),
    };
    // Take the read half so rsipstack's own reader never runs on it.
    let Some(reader) = conn.inner.read_half.lock().await.take() else {
        return;
    };
    let stream = GuardedStream {
        sc: SipConnection::Tcp(conn.clone()),
        conn: &conn,
        transport: rsipstack::sip::Transport::Tcp,
        remote,
        endpoint: &guard.endpoint,
        max: guard.max,
        metrics: &guard.metrics,
    };
    stream.read(reader, &guard.shutdown).await;
    conn.close().await.ok();
}

/// One inbound stream connection (TCP, or TLS once handshaken) whose
/// messages the guard reads and checks before rsipstack sees them.
pub(crate) struct GuardedStream<'a, C> {
    /// How rsipstack names the connection (replies go out through it).
    pub sc: SipConnection,
    /// Its writer, for refusals and keepalive answers.
    pub conn: &'a C,
    pub transport: rsipstack::sip::Transport,
    pub remote: SocketAddr,
    pub endpoint: &'a EndpointInnerRef,
    pub max: usize,
    pub metrics: &'a Metrics,
}

impl<C: StreamConnection> GuardedStream<'_, C> {
    /// Read and deliver messages until the peer closes, the stream breaks or shutdown.
    pub(crate) async fn read(
        &self,
        mut reader: impl AsyncRead + Unpin,
        shutdown: &CancellationToken,
    ) {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = reader.read_buf(&mut buf) => r,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if !self.drain_frames(&mut buf).await {
                break;
            }
        }
    }

    /// Handle every complete frame in `buf`; `false` when the stream is broken.
    async fn drain_frames(&self, buf: &mut BytesMut) -> bool {
        loop {
            match ingress::frame(buf, self.max) {
                Frame::Incomplete => return true,
                Frame::Keepalive { len, pong } => {
                    let _ = buf.split_to(len);
                    if pong && self.conn.send_raw(b"\r\n").await.is_err() {
                        return false;
                    }
                }
                Frame::Message(len) => {
                    let msg = buf.split_to(len);
                    let verdict = ingress::check_message(&msg, self.max);
                    self.deliver(verdict).await;
                }
                Frame::Broken { reason, head } => {
                    // The byte stream cannot be split into messages any more
                    // (RFC 3261 §18.3): answer if possible, then close.
                    let verdict = match head {
                        Some(h) => ingress::refuse(&buf[..h], reason, 400),
                        None => Verdict::Drop { reason },
                    };
                    self.deliver(verdict).await;
                    return false;
                }
            }
        }
    }

    async fn deliver(&self, verdict: Verdict) {
        let remote = self.remote;
        match verdict {
            Verdict::Accept(msg) => {
                let from = SipAddr {
                    r#type: Some(self.transport),
                    addr: remote.into(),
                };
                let msg = match SipConnection::update_msg_received(*msg, remote, self.transport) {
                    Ok(m) => m,
                    Err(_) => return self.metrics.sip_error("bad_header"),
                };
                let sc = self.sc.clone();
                if let Err(e) = self.endpoint.on_received_message(msg, sc, &from).await {
                    debug!(error = %e, %remote, "stack refused stream message");
                }
            }
            Verdict::Refuse { reason, response } => {
                self.metrics.sip_error(reason);
                if self.conn.send_raw(&response).await.is_ok() {
                    count(self.metrics, "out", &status_class(&response));
                }
            }
            Verdict::Drop { reason } => self.metrics.sip_error(reason),
        }
    }
}
