//! A registrar for tests, on rsipstack as a UAS: digest challenge, a
//! configurable grant, 423 below a minimum, and modes to refuse or stay
//! silent. It records every REGISTER for assertions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tokio::time::Instant;

use super::*;
use crate::sip::digest::{self, Challenge};
use crate::sip::stack::{self, Stack, StackConfig};

/// How the registrar behaves.
#[derive(Clone, Debug)]
pub(crate) struct RegistrarConfig {
    pub realm: String,
    pub username: String,
    pub password: String,
    pub algorithm: DigestAlgorithm,
    /// Challenge with 407 instead of 401.
    pub proxy_auth: bool,
    /// Longest expiry granted, in seconds.
    pub grant: u32,
    /// Requests below this get 423 with Min-Expires.
    pub min_expires: Option<u32>,
    /// Like a scripted registrar (SIPp's): every REGISTER without
    /// credentials is challenged, and the one after a challenge must carry
    /// them or gets 403.
    pub strict: bool,
    /// Hold each challenge this long before sending it.
    pub challenge_delay: Duration,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "pbx".into(),
            username: "auth-1001".into(),
            password: "s3cret".into(),
            algorithm: DigestAlgorithm::Md5,
            proxy_auth: false,
            grant: 3600,
            min_expires: None,
            strict: false,
            challenge_delay: Duration::ZERO,
        }
    }
}

/// What the registrar does with the next REGISTERs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Challenge, check and grant.
    Normal,
    /// Answer every REGISTER with this code.
    Reject(u16),
    /// Never answer.
    Silent,
}

/// One REGISTER as received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub at: Instant,
    pub call_id: String,
    pub cseq: u32,
    pub expires: Option<u32>,
    pub contact: String,
    pub from: String,
    pub to: String,
    pub via: String,
    /// Authorization header value, if any.
    pub auth: Option<String>,
}

struct Inner {
    stack: Stack,
    cfg: RegistrarConfig,
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Seen>>,
    nonces: Mutex<VecDeque<String>>,
    /// A challenge went out and its answer has not come yet (`strict`).
    awaiting_answer: Mutex<bool>,
    replies: Mutex<Vec<u16>>,
}

/// A running test registrar; clones share it.
#[derive(Clone)]
pub(crate) struct Registrar {
    inner: Arc<Inner>,
}

impl Registrar {
    /// Listen on UDP and TCP (separate free ports) until `shutdown`.
    pub async fn start(cfg: RegistrarConfig, shutdown: &CancellationToken) -> Registrar {
        let scfg = StackConfig {
            name: "registrar",
            udp: Some(local()),
            tcp: Some(local()),
            tls: None,
            public_ip: [127, 0, 0, 1].into(),
            user_agent: "test-registrar".into(),
            max_message_bytes: 65535,
            t1: Duration::from_millis(500),
            gates: stack::StreamGates::side("registrar_tcp", "registrar_tls", &Metrics::new()),
        };
        let (stack, incoming) = stack::start(scfg, Metrics::new(), shutdown.child_token())
            .await
            .expect("registrar stack");
        let inner = Arc::new(Inner {
            stack,
            cfg,
            mode: Mutex::new(Mode::Normal),
            seen: Mutex::new(Vec::new()),
            nonces: Mutex::new(VecDeque::new()),
            awaiting_answer: Mutex::new(false),
            replies: Mutex::new(Vec::new()),
        });
        tokio::spawn(serve(inner.clone(), incoming, shutdown.clone()));
        Registrar { inner }
    }

    /// The registrar URI for `transport`.
    pub fn uri(&self, transport: Transport) -> String {
        let addr = self.inner.stack.local_addr(transport).expect("listener");
        match transport {
            Transport::Udp => format!("sip:{addr}"),
            Transport::Tcp => format!("sip:{addr};transport=tcp"),
            Transport::Tls => format!("sips:{addr}"),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().expect("mode") = mode;
    }

    /// The final status of every REGISTER answered so far, in order.
    pub fn replies(&self) -> Vec<u16> {
        self.inner.replies.lock().expect("replies").clone()
    }

    /// Every REGISTER so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().expect("seen").clone()
    }

    /// Wait until `n` REGISTERs have arrived (or PROMPT passes) and return them.
    pub async fn wait_seen(&self, n: usize, within: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + within;
        while self.seen().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.seen()
    }
}

async fn serve(inner: Arc<Inner>, mut incoming: TransactionReceiver, stop: CancellationToken) {
    loop {
        let tx = tokio::select! {
            _ = stop.cancelled() => return,
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => return,
            },
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            if tx.original.method == Method::Register {
                inner.on_register(tx).await;
            } else {
                stack::answer_other(tx).await;
            }
        });
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .iter()
        .find_map(|h| stack::header_value(h, name))
}

impl Inner {
    async fn on_register(&self, mut tx: Transaction) {
        let req = tx.original.clone();
        let seen = record(&req);
        let expires = seen.expires.unwrap_or(3600);
        self.seen.lock().expect("seen").push(seen.clone());
        let mode = *self.mode.lock().expect("mode");
        if mode == Mode::Silent {
            // Keep the transaction so retransmissions are absorbed, not
            // recorded as new REGISTERs.
            while tx.receive().await.is_some() {}
            return;
        }
        let (code, headers) = match mode {
            Mode::Silent | Mode::Normal => match self.check_auth(&req) {
                Some(refusal) => refusal,
                None => self.grant(&seen, expires),
            },
            Mode::Reject(code) => (code, vec![]),
        };
        let (code, headers) = self.strictly(code, headers, seen.auth.is_some());
        if matches!(code, 401 | 407) {
            tokio::time::sleep(self.cfg.challenge_delay).await;
        }
        self.replies.lock().expect("replies").push(code);
        if let Err(e) = tx.reply_with(StatusCode::from(code), headers, None).await {
            tracing::debug!(error = %e, "registrar reply failed");
        }
    }

    /// A `strict` registrar refuses a REGISTER without credentials that
    /// should have answered its last challenge.
    fn strictly(&self, code: u16, headers: Vec<Header>, authorized: bool) -> (u16, Vec<Header>) {
        if !self.cfg.strict {
            return (code, headers);
        }
        let mut awaiting = self.awaiting_answer.lock().expect("awaiting");
        if *awaiting && !authorized {
            *awaiting = false;
            return (403, vec![]);
        }
        *awaiting = matches!(code, 401 | 407);
        (code, headers)
    }

    /// 423 below the minimum, else 200 listing our binding with its grant
    /// among another device's binding of the same AOR.
    fn grant(&self, seen: &Seen, expires: u32) -> (u16, Vec<Header>) {
        if let Some(min) = self
            .cfg
            .min_expires
            .filter(|m| expires != 0 && expires < *m)
        {
            return (423, vec![Header::MinExpires(min.to_string().into())]);
        }
        let granted = expires.min(self.cfg.grant);
        let other = "<sip:1001@192.0.2.99:5060>;expires=3600";
        let contact = format!("{other}, {};expires={granted}", seen.contact);
        (
            200,
            vec![
                Header::Contact(contact.into()),
                Header::Expires(self.cfg.grant.to_string().into()),
            ],
        )
    }

    /// `None` to go on, or the refusal: a challenge when there are no
    /// usable credentials, 403 when they are wrong.
    fn check_auth(&self, req: &Request) -> Option<(u16, Vec<Header>)> {
        let name = if self.cfg.proxy_auth {
            "proxy-authorization"
        } else {
            "authorization"
        };
        let creds = header(req, name).and_then(|v| digest::Credentials::parse(&v));
        let Some(c) = creds.filter(|c| self.nonce_known(&c.nonce)) else {
            return Some(self.challenge());
        };
        let ok = c.username == self.cfg.username
            && c.realm == self.cfg.realm
            && c.algorithm == self.cfg.algorithm
            && c.uri.eq_ignore_ascii_case(&req.uri.to_string())
            && c.verify(&self.cfg.password, "REGISTER");
        (!ok).then(|| (403, vec![]))
    }

    fn challenge(&self) -> (u16, Vec<Header>) {
        let nonce = format!("{:032x}", rand::random::<u128>());
        self.nonces.lock().expect("nonces").push_back(nonce.clone());
        let value = Challenge {
            realm: self.cfg.realm.clone(),
            nonce,
            opaque: Some("op4que".into()),
            algorithm: self.cfg.algorithm,
            qop_auth: true,
        }
        .to_header_value();
        if self.cfg.proxy_auth {
            (407, vec![Header::ProxyAuthenticate(value.into())])
        } else {
            (401, vec![Header::WwwAuthenticate(value.into())])
        }
    }

    fn nonce_known(&self, nonce: &str) -> bool {
        self.nonces
            .lock()
            .expect("nonces")
            .iter()
            .any(|n| n == nonce)
    }
}

fn record(req: &Request) -> Seen {
    Seen {
        at: Instant::now(),
        call_id: header(req, "call-id").unwrap_or_default(),
        cseq: req
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or_default(),
        expires: header(req, "expires").and_then(|v| v.trim().parse().ok()),
        contact: header(req, "contact").unwrap_or_default(),
        from: header(req, "from").unwrap_or_default(),
        to: header(req, "to").unwrap_or_default(),
        via: header(req, "via").unwrap_or_default(),
        auth: header(req, "authorization").or_else(|| header(req, "proxy-authorization")),
    }
}
