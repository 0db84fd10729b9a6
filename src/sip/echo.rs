//! The built-in echo extension: a SIP UAS that answers and sends every media
//! packet back. It lets a newcomer hear a call work with no PBX, and it is
//! the peer the SIP tests call. Out of the box it is a plain echo; a test
//! installs an [`EchoScript`] to make it a PBX that rejects, challenges,
//! rings or hangs up on purpose.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, Request};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::digest::{self, Challenge};
use super::echo_dialog::{self, Session};
use super::echo_media::PortPair;
use super::echo_script::{received, Plain};
pub use super::echo_script::{EchoChallenge, EchoScript};
use super::echo_sdp::{self, Choice};
use super::stack::{self, Stack, StackConfig};
use super::tls::SipTls;
use super::uas::finish;
use super::{SipError, Transport};
use crate::metrics::Metrics;

/// Issued nonces remembered for checking answers.
const NONCES_KEPT: usize = 64;
/// Tries at binding UDP and TCP on one free port when the port is 0.
const PORT_ATTEMPTS: usize = 8;

/// Where the echo listens and how it behaves.
#[derive(Clone, Debug)]
pub struct EchoSettings {
    /// SIP address, UDP and TCP (port 0: any free port, the same for both).
    pub listen: SocketAddr,
    /// Address for the RTP sockets and the SDP answer.
    pub rtp_ip: IpAddr,
    /// How to answer.
    pub behavior: EchoBehavior,
}

/// How the echo answers; the default is a plain echo.
#[derive(Clone, Debug, Default)]
pub struct EchoBehavior {
    /// Take at most this many calls at once; more get 486 (the gateway
    /// sets `limits.max_calls`).
    pub max_calls: Option<u32>,
    /// Sees each RTP packet the echo returns (the load tool installs one
    /// that stamps its payloads); none for a plain echo.
    pub tap: Option<Arc<dyn EchoTap>>,
    /// A test's departures from the plain echo; none in the product.
    pub script: Option<Arc<dyn EchoScript>>,
}

/// A hook on the echo's media: called for each RTP packet it is about to
/// send back, with the kernel's receive time of the packet in µs since the
/// UNIX epoch. With a tap installed the echo asks the kernel for receive
/// times (`SO_TIMESTAMPNS`).
pub trait EchoTap: Send + Sync + std::fmt::Debug {
    /// May rewrite `rtp` in place (its length stays).
    fn on_echo(&self, rtp: &mut [u8], received_us: u64);

    /// Offered each answered call's RTP socket (already asking for kernel
    /// receive times): a tap may echo it itself, as the echo does (latch
    /// the first source, return only while `sending`, count into
    /// `echoed`, stop at `stop`), so that a load generator can serve all
    /// its calls from one thread. The default hands it back, and the
    /// echo's own task serves it.
    fn adopt(&self, rtp: EchoRtp) -> Option<EchoRtp> {
        Some(rtp)
    }
}

/// A call's RTP socket offered to an [`EchoTap`], with what the echo
/// keeps for it.
#[derive(Debug)]
pub struct EchoRtp {
    /// The socket, non-blocking.
    pub socket: std::net::UdpSocket,
    /// The echo's count of packets sent back.
    pub echoed: Arc<AtomicU64>,
    /// Whether the peer receives (false while it holds the call).
    pub sending: Arc<AtomicBool>,
    /// Cancelled when the call ends.
    pub stop: CancellationToken,
}

/// Counters for tests and the demo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// INVITEs answered with 200.
    pub calls_answered: u64,
    /// Calls answered and not yet ended.
    pub active_calls: u64,
    /// RTP and RTCP packets sent back.
    pub packets_echoed: u64,
}

/// A running echo extension; clones share it.
#[derive(Clone)]
pub struct EchoServer {
    inner: Arc<Echo>,
}

struct Echo {
    stack: Stack,
    settings: EchoSettings,
    answered: AtomicU64,
    active: AtomicU64,
    echoed: Arc<AtomicU64>,
    /// The test's script, or the plain echo.
    script: Arc<dyn EchoScript>,
    nonces: Mutex<VecDeque<String>>,
    /// Calls in progress, ringing ones included, when `max_calls` is set.
    slots: Option<Arc<Semaphore>>,
    shutdown: CancellationToken,
}

impl EchoServer {
    /// Bind UDP and TCP on `settings.listen` and start answering.
    pub async fn start(
        settings: EchoSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<EchoServer, SipError> {
        Self::start_with_tls(settings, None, metrics, shutdown).await
    }

    /// `start`, plus a TLS listener on its own port when `tls.listen` is set.
    pub async fn start_with_tls(
        settings: EchoSettings,
        tls: Option<SipTls>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<EchoServer, SipError> {
        let (stack, incoming) = bind(&settings, tls.as_ref(), &metrics, &shutdown).await?;
        let slots = settings
            .behavior
            .max_calls
            .map(|n| Semaphore::new(n as usize));
        let script = settings.behavior.script.clone();
        let inner = Arc::new(Echo {
            script: script.unwrap_or_else(|| Arc::new(Plain)),
            slots: slots.map(Arc::new),
            stack,
            settings,
            answered: AtomicU64::new(0),
            active: AtomicU64::new(0),
            echoed: Arc::new(AtomicU64::new(0)),
            nonces: Mutex::new(VecDeque::new()),
            shutdown,
        });
        tokio::spawn(serve(inner.clone(), incoming));
        Ok(EchoServer { inner })
    }

    /// The SIP address (UDP and TCP share the port).
    pub fn local_addr(&self) -> SocketAddr {
        let s = &self.inner.stack;
        s.local_addr(Transport::Udp)
            .or(s.local_addr(Transport::Tcp))
            .unwrap_or(self.inner.settings.listen)
    }

    /// The TLS listener's address, if it has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.inner.stack.local_addr(Transport::Tls)
    }

    /// Current counters.
    pub fn stats(&self) -> EchoStats {
        EchoStats {
            calls_answered: self.inner.answered.load(Ordering::Relaxed),
            active_calls: self.inner.active.load(Ordering::Relaxed),
            packets_echoed: self.inner.echoed.load(Ordering::Relaxed),
        }
    }
}

/// Start a stack on one port for both transports; with port 0, a free UDP
/// port is picked and TCP tried on it, a few times in case it is taken.
async fn bind(
    s: &EchoSettings,
    tls: Option<&SipTls>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(Stack, TransactionReceiver), SipError> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let mut addr = s.listen;
        if addr.port() == 0 {
            addr.set_port(std::net::UdpSocket::bind(addr)?.local_addr()?.port());
        }
        let public_ip = if addr.ip().is_unspecified() {
            s.rtp_ip
        } else {
            addr.ip()
        };
        let cfg = StackConfig {
            name: "echo",
            udp: Some(addr),
            tcp: Some(addr),
            tls: tls.cloned(),
            public_ip,
            user_agent: "siphon-echo".into(),
            max_message_bytes: 65535,
            t1: Duration::from_millis(500),
            gates: stack::StreamGates::side("echo_tcp", "echo_tls", metrics),
        };
        match stack::start(cfg, metrics.clone(), shutdown.child_token()).await {
            Ok(r) => return Ok(r),
            Err(e) if s.listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(SipError::Shutdown))
}

async fn serve(echo: Arc<Echo>, mut incoming: TransactionReceiver) {
    loop {
        let tx = tokio::select! {
            _ = echo.shutdown.cancelled() => return,
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => return,
            },
        };
        let echo = echo.clone();
        tokio::spawn(async move {
            let Some(tx) = stack::route_in_dialog(&echo.stack.dialogs, tx).await else {
                return;
            };
            if tx.original.method == Method::Invite {
                echo.on_invite(tx).await;
            } else if let Some(code) = echo
                .script
                .options()
                .filter(|_| tx.original.method == Method::Options)
            {
                finish(tx, code, vec![]).await;
            } else {
                stack::answer_other(tx).await;
            }
        });
    }
}

impl Echo {
    async fn on_invite(self: &Arc<Self>, tx: Transaction) {
        if self.settings.behavior.script.is_some() {
            self.script.received(&received(&tx.original));
        }
        if let Some((code, headers)) = self.check_auth(&tx.original) {
            return finish(tx, code, headers).await;
        }
        if let Some(code) = self.script.reject() {
            return finish(tx, code, vec![]).await;
        }
        if let Some(contacts) = self.script.redirect() {
            let contacts = contacts.into_iter().map(|c| Header::Contact(c.into()));
            return finish(tx, 302, contacts.collect()).await;
        }
        let _slot = match self.slots.clone().map(Semaphore::try_acquire_owned) {
            Some(Err(_)) => return finish(tx, 486, vec![]).await,
            slot => slot,
        };
        let offer = String::from_utf8_lossy(&tx.original.body).to_string();
        let allowed = self.script.codecs();
        let Some(mut choice) = echo_sdp::choose(&echo_sdp::offered_formats(&offer), allowed) else {
            return finish(tx, 488, vec![]).await;
        };
        choice.srtp = echo_sdp::mirrored_srtp(&offer);
        match PortPair::bind(self.settings.rtp_ip).await {
            Ok(ports) => self.run_call(tx, choice, ports).await,
            Err(_) => finish(tx, 500, vec![]).await,
        }
    }

    /// `None` to go on, or the refusal: 401 with a fresh challenge when the
    /// INVITE has no usable credentials, 403 when they are wrong.
    fn check_auth(&self, req: &Request) -> Option<(u16, Vec<Header>)> {
        let want = self.script.challenge()?;
        let creds = req
            .headers
            .iter()
            .filter_map(|h| stack::header_value(h, "authorization"))
            .find_map(|v| digest::Credentials::parse(&v));
        let Some(c) = creds.filter(|c| self.nonce_known(&c.nonce)) else {
            return Some((401, vec![self.challenge(want)]));
        };
        let ok = c.username == want.username
            && c.realm == want.realm
            && c.uri.eq_ignore_ascii_case(&req.uri.to_string())
            && c.verify(&want.password, "INVITE");
        (!ok).then(|| (403, vec![]))
    }

    fn challenge(&self, want: &EchoChallenge) -> Header {
        let nonce = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut n) = self.nonces.lock() {
            if n.len() >= NONCES_KEPT {
                n.pop_front();
            }
            n.push_back(nonce.clone());
        }
        let ch = Challenge {
            realm: want.realm.clone(),
            nonce,
            opaque: None,
            algorithm: want.algorithm,
            qop_auth: true,
        };
        Header::WwwAuthenticate(ch.to_header_value().into())
    }

    fn nonce_known(&self, nonce: &str) -> bool {
        self.nonces
            .lock()
            .map(|n| n.iter().any(|x| x == nonce))
            .unwrap_or(false)
    }

    /// 100, 180, (ring), 200 with the answer; echo until either side ends.
    async fn run_call(self: &Arc<Self>, mut tx: Transaction, choice: Choice, ports: PortPair) {
        let (state_tx, mut states) = self.stack.dialogs.new_dialog_state_channel();
        let contact = self.contact(&tx);
        let dialog = match self
            .stack
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, contact)
        {
            Ok(d) => d,
            Err(_) => return finish(tx, 500, vec![]).await,
        };
        // 100 before the dialog task starts, so it cannot follow the 180.
        tx.send_trying().await.ok();
        let mut task_dialog = dialog.clone();
        tokio::spawn(async move { task_dialog.handle(&mut tx).await });
        let id = rand::random::<u64>() >> 1;
        let mut session = Session {
            choice,
            ip: self.settings.rtp_ip,
            port: ports.port(),
            origin: (id, id),
            direction: "sendrecv",
            allowed: self.script.codecs().map(<[String]>::to_vec),
            refuse: self.script.refuse_reoffers(),
            sending: Arc::new(AtomicBool::new(true)),
        };
        let sdp = session.sdp();
        let ctype = Header::ContentType("application/sdp".into());
        let stop = self.shutdown.child_token();
        let mut ports = Some(ports);
        let extra = self.script.ringing_headers().into_iter();
        let mut headers: Vec<Header> = extra.map(|(n, v)| Header::Other(n, v)).collect();
        if self.script.early_media() {
            let body = Some(sdp.clone().into_bytes());
            headers.push(ctype.clone());
            dialog.ringing(Some(headers), body).ok();
            self.echo_on(&mut ports, &stop, &session);
        } else {
            dialog.ringing(Some(headers), None).ok();
        }
        if let Some(ring) = self.script.ring_for() {
            let cancelled =
                tokio::time::timeout(ring, echo_dialog::serve(&mut states, None, None)).await;
            if cancelled.is_ok() {
                stop.cancel();
                return self.stack.dialogs.remove_dialog(&dialog.id());
            }
        }
        if dialog
            .accept(Some(vec![ctype]), Some(sdp.into_bytes()))
            .is_err()
        {
            return self.stack.dialogs.remove_dialog(&dialog.id());
        }
        self.answered.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        self.echo_on(&mut ports, &stop, &session);
        self.until_end(&dialog, &mut states, &mut session).await;
        stop.cancel();
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.stack.dialogs.remove_dialog(&dialog.id());
    }

    /// Start echoing on `ports` unless that already happened (early media).
    fn echo_on(&self, ports: &mut Option<PortPair>, stop: &CancellationToken, session: &Session) {
        if let Some(p) = ports.take() {
            let tap = self.settings.behavior.tap.clone();
            p.spawn_echo(
                self.echoed.clone(),
                stop.clone(),
                tap,
                session.sending.clone(),
            );
        }
    }

    /// Answer in-dialog requests until the BYE (or CANCEL), or send one after `hangup_after`.
    async fn until_end(&self, dialog: &InviteDialog, states: &mut StateRx, session: &mut Session) {
        let hangup = async {
            match self.script.hangup_after() {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = echo_dialog::serve(states, Some(session), Some((dialog, &*self.script))) => {}
            _ = hangup => { dialog.bye().await.ok(); }
            _ = self.shutdown.cancelled() => { dialog.bye().await.ok(); }
        }
    }

    fn contact(&self, tx: &Transaction) -> Option<rsipstack::sip::Uri> {
        let t = match tx.connection.as_ref().map(|c| c.transport()) {
            Some(rsipstack::sip::Transport::Tcp) => Transport::Tcp,
            Some(rsipstack::sip::Transport::Tls) => Transport::Tls,
            _ => Transport::Udp,
        };
        let addr = self.stack.public_addr(t)?;
        let uri = super::uas_call::contact_uri("echo", addr, t, &tx.original.uri);
        rsipstack::sip::Uri::try_from(uri.as_str()).ok()
    }
}

type StateRx = rsipstack::dialog::dialog::DialogStateReceiver;
