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
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::BytesMut;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ingress::{self, Frame, Verdict};
use crate::connections::{Acceptor, Gate};
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

    /// Apply the verdict's side effects; `Some` when the datagram goes on,
    /// holding its rewritten bytes if it is not to go on as received.
    async fn settle(&self, verdict: Verdict, from: SocketAddr) -> Option<Option<Vec<u8>>> {
        match verdict {
            Verdict::Accept(_, rewritten) => return Some(rewritten),
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
        None
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
                Some(None)
            } else {
                self.settle(ingress::check_message(data, max), from).await
            };
            let Some(rewritten) = pass else { continue };
            let data = rewritten.as_deref().unwrap_or(data);
            match buf.get_mut(..data.len()) {
                Some(dst) => {
                    dst.copy_from_slice(data);
                    return Ok((data.len(), from));
                }
                // A rewritten header block can be a few bytes longer.
                None => self.metrics.sip_error("oversize"),
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
    /// Connection caps and timeouts of this listener.
    pub gate: Gate,
}

/// Accept inbound TCP connections until shutdown; each holds its permit
/// (a slot under the caps) until it is closed.
pub(crate) async fn serve_tcp(listener: TcpListener, guard: Arc<TcpGuard>) {
    let mut acceptor = Acceptor::new(listener, guard.gate.clone());
    loop {
        let (stream, _, permit) = tokio::select! {
            _ = guard.shutdown.cancelled() => return,
            a = acceptor.next() => a,
        };
        let guard = guard.clone();
        tokio::spawn(async move {
            if let Some(socket) = serve_connection(stream, &guard).await {
                released(socket, &guard.shutdown).await;
            }
            drop(permit);
        });
    }
}

/// How often a closed connection is checked for its socket's release: soon
/// after the close (the transactions let go within a task switch or two),
/// then less and less often, up to once a second while a dialog holds it.
const RELEASE_POLL_FIRST: Duration = Duration::from_millis(5);
const RELEASE_POLL_MAX: Duration = Duration::from_secs(1);

/// Resolves once nothing holds the socket any more (or at shutdown).
/// rsipstack's `TcpConnection` owns the socket, and whatever holds the
/// connection keeps it. An INVITE transaction answered with a failure would
/// hold it until Timer H (64*T1 = 32 s); siphon lets such transactions go
/// once the connection is over (`uas::finish`, `uas_call::let_go`). While
/// anything else holds it, the fd is held, so the connection's slot under
/// the caps is too: the caps bound the fds such holds can take.
async fn released<T>(socket: Weak<T>, shutdown: &CancellationToken) {
    let mut poll = RELEASE_POLL_FIRST;
    while socket.strong_count() > 0 && !shutdown.is_cancelled() {
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(RELEASE_POLL_MAX);
    }
}

/// Serves one connection; what still holds its socket once it is over.
async fn serve_connection(stream: TcpStream, guard: &TcpGuard) -> Option<Weak<impl Sized>> {
    let remote = stream.peer_addr().ok()?;
    // Cancelled when this connection is over: it tells rsipstack the flow is
    // gone, and the transactions that wait on it (`uas::finish`) let it go.
    let closed = guard.shutdown.child_token();
    let conn = match TcpConnection::from_stream(stream, guard.local.clone(), Some(closed.clone())) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "tcp connection setup failed");
            return None;
        }
    };
    // Take the read half so rsipstack's own reader never runs on it.
    let reader = conn.inner.read_half.lock().await.take()?;
    let stream = GuardedStream {
        sc: SipConnection::Tcp(conn.clone()),
        conn: &conn,
        transport: rsipstack::sip::Transport::Tcp,
        remote,
        endpoint: &guard.endpoint,
        max: guard.max,
        metrics: &guard.metrics,
        gate: &guard.gate,
    };
    stream.read(reader, &guard.shutdown).await;
    closed.cancel();
    conn.close().await.ok();
    Some(Arc::downgrade(&conn.inner))
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
    /// The listener's timeouts, and where closes are counted.
    pub gate: &'a Gate,
}

/// When a stream connection is next due to be closed, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deadline {
    /// The last complete message (or keepalive), or the connection's start.
    quiet_since: Instant,
    /// The first byte of an unfinished message, if one is buffered.
    begun: Option<Instant>,
}

impl Deadline {
    fn new(now: Instant) -> Self {
        Deadline {
            quiet_since: now,
            begun: None,
        }
    }

    /// After a read at `now`: whether a frame was consumed, whether bytes remain.
    fn after_read(&mut self, now: Instant, consumed: bool, pending: bool) {
        if consumed {
            self.quiet_since = now;
            self.begun = None;
        }
        if pending {
            self.begun = self.begun.or(Some(now));
        }
    }

    /// The instant and the `reason` label of the next close.
    fn due(
        &self,
        idle: std::time::Duration,
        header: std::time::Duration,
    ) -> (Instant, &'static str) {
        match self.begun {
            Some(begun) => (begun + header, "header_timeout"),
            None => (self.quiet_since + idle, "idle"),
        }
    }
}

impl<C: StreamConnection> GuardedStream<'_, C> {
    /// Read and deliver messages until the peer closes, the stream breaks,
    /// a timeout passes (no complete message for the idle time, or a begun
    /// message unfinished for the header time) or shutdown.
    pub(crate) async fn read(
        &self,
        mut reader: impl AsyncRead + Unpin,
        shutdown: &CancellationToken,
    ) {
        let mut buf = BytesMut::with_capacity(4096);
        let (idle, header) = (self.gate.idle(), self.gate.header_timeout());
        let mut deadline = Deadline::new(Instant::now());
        loop {
            let (due, why) = deadline.due(idle, header);
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {
                    debug!(remote = %self.remote, reason = why, "closing stream connection");
                    self.gate.closed(why);
                    break;
                }
                r = reader.read_buf(&mut buf) => r,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let before = buf.len();
            if !self.drain_frames(&mut buf).await {
                break;
            }
            let consumed = buf.len() < before;
            deadline.after_read(Instant::now(), consumed, !buf.is_empty());
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
            Verdict::Accept(msg, _) => {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::Deadline;

    const IDLE: Duration = Duration::from_secs(300);
    const HEADER: Duration = Duration::from_secs(10);

    #[test]
    fn a_quiet_connection_is_due_idle_from_its_last_message() {
        let start = Instant::now();
        let mut d = Deadline::new(start);
        assert_eq!(d.due(IDLE, HEADER), (start + IDLE, "idle"));
        let later = start + Duration::from_secs(42);
        d.after_read(later, true, false);
        assert_eq!(d.due(IDLE, HEADER), (later + IDLE, "idle"));
    }

    #[test]
    fn a_begun_message_is_due_from_its_first_byte_however_it_trickles() {
        let start = Instant::now();
        let mut d = Deadline::new(start);
        let first = start + Duration::from_secs(1);
        d.after_read(first, false, true);
        // More bytes of the same message do not move the deadline.
        d.after_read(first + Duration::from_secs(5), false, true);
        assert_eq!(d.due(IDLE, HEADER), (first + HEADER, "header_timeout"));
        // A message completes and the next one begins in the same read.
        let done = first + Duration::from_secs(6);
        d.after_read(done, true, true);
        assert_eq!(d.due(IDLE, HEADER), (done + HEADER, "header_timeout"));
        d.after_read(done + Duration::from_secs(1), true, false);
        let quiet = done + Duration::from_secs(1);
        assert_eq!(d.due(IDLE, HEADER), (quiet + IDLE, "idle"));
    }
}
