//! The RFC 4475 torture messages (and RFC 5118's IPv6 ones) sent to a
//! running siphon while a browser call is up. Each message is a fixture file
//! under `tests/fixtures/torture/`, byte for byte as RFC 4475 Appendix A
//! ships it. Every message gets the answer written next to it below, or
//! silence, and the call in progress keeps its audio and hears nothing.
//!
//! Ports: each gateway, and each run of messages over UDP, takes a block
//! from the test-port allocator.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Browser, Signaling};
use serde_json::json;
use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{EchoBehavior, EchoServer, EchoSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);
/// How long to wait for an answer that must not come.
const QUIET: Duration = Duration::from_millis(400);

/// What a message must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// This final status code.
    Final(u16),
    /// Nothing at all (a response, or a request too broken to answer).
    Silence,
}

use Answer::{Final, Silence};

/// RFC 4475 section, file name, valid per the RFC, and siphon's answer.
const TORTURE: &[(&str, &str, bool, Answer)] = &[
    ("3.1.1.1", "wsinv", true, Final(481)),
    ("3.1.1.2", "intmeth", true, Final(501)),
    ("3.1.1.3", "esc01", true, Final(404)),
    ("3.1.1.4", "escnull", true, Final(405)),
    ("3.1.1.5", "esc02", true, Final(501)),
    ("3.1.1.6", "lwsdisp", true, Final(200)),
    ("3.1.1.7", "longreq", true, Final(404)),
    ("3.1.1.8", "dblreq", true, Final(405)),
    ("3.1.1.9", "semiuri", true, Final(200)),
    ("3.1.1.10", "transports", true, Final(200)),
    ("3.1.1.11", "mpart01", true, Final(405)),
    ("3.1.1.12", "unreason", true, Silence),
    ("3.1.1.13", "noreason", true, Silence),
    ("3.1.2.1", "badinv01", false, Final(400)),
    ("3.1.2.2", "clerr", false, Final(400)),
    ("3.1.2.3", "ncl", false, Final(400)),
    ("3.1.2.4", "scalar02", false, Final(400)),
    ("3.1.2.5", "scalarlg", false, Silence),
    ("3.1.2.6", "quotbal", false, Final(400)),
    ("3.1.2.7", "ltgtruri", false, Final(400)),
    ("3.1.2.8", "lwsruri", false, Final(400)),
    ("3.1.2.9", "lwsstart", false, Final(400)),
    ("3.1.2.10", "trws", false, Final(400)),
    ("3.1.2.11", "escruri", false, Final(400)),
    ("3.1.2.12", "baddate", false, Final(404)),
    ("3.1.2.13", "regbadct", false, Final(405)),
    ("3.1.2.14", "badaspec", false, Final(200)),
    ("3.1.2.15", "baddn", false, Silence),
    ("3.1.2.16", "badvers", false, Final(505)),
    ("3.1.2.17", "mismatch01", false, Final(400)),
    ("3.1.2.18", "mismatch02", false, Final(400)),
    ("3.1.2.19", "bigcode", false, Silence),
    ("3.2.1", "badbranch", true, Final(200)),
    ("3.3.1", "insuf", false, Silence),
    ("3.3.2", "unkscm", false, Final(416)),
    ("3.3.3", "novelsc", false, Final(416)),
    ("3.3.4", "unksm2", true, Final(405)),
    ("3.3.5", "bext01", false, Final(420)),
    ("3.3.6", "invut", false, Final(415)),
    ("3.3.7", "regaut01", true, Final(405)),
    ("3.3.8", "multi01", false, Final(400)),
    ("3.3.9", "mcl01", false, Final(400)),
    ("3.3.10", "bcast", false, Silence),
    ("3.3.11", "zeromf", true, Final(200)),
    ("3.3.12", "cparam01", true, Final(405)),
    ("3.3.13", "cparam02", true, Final(405)),
    ("3.3.14", "regescrt", false, Final(405)),
    ("3.3.15", "sdp01", false, Final(404)),
    ("3.4.1", "inv2543", true, Final(400)),
];

/// RFC 5118 section, file name, valid per the RFC, and siphon's answer.
const IPV6: &[(&str, &str, bool, Answer)] = &[
    ("4.1", "ipv6-good", true, Final(405)),
    ("4.2", "ipv6-bad", false, Final(400)),
    ("4.3", "port-ambiguous", true, Final(405)),
    ("4.4", "port-unambiguous", true, Final(405)),
    ("4.5", "via-received-param-with-delim", true, Final(481)),
    ("4.5", "via-received-param-no-delim", true, Final(200)),
    ("4.6", "ipv6-in-sdp", true, Final(404)),
    ("4.7", "mult-ip-in-header", true, Final(481)),
    ("4.8", "mult-ip-in-sdp", true, Final(404)),
    ("4.9", "ipv4-mapped", true, Final(404)),
];

fn fixture(name: &str) -> Vec<u8> {
    let dir = if IPV6.iter().any(|t| t.1 == name) {
        "torture-ipv6"
    } else {
        "torture"
    };
    let path = format!(
        "{}/tests/fixtures/{dir}/{name}.sip",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A gateway on 30 ports from `base` whose trunk is an echo UAS, with one
/// answered browser call.
struct Rig {
    base: u16,
    gateway: Gateway,
    sig: Signaling,
    browser: Browser,
    _echo: EchoServer,
    _stop: CancellationToken,
}

impl Rig {
    /// A gateway on `base`.. (30 ports from the test-port allocator), its
    /// trunk an echo UAS on `base + 3`, with a browser call up.
    async fn start() -> Rig {
        let base = siphon_testkit::ports::block(30);
        let stop = CancellationToken::new();
        let settings = EchoSettings {
            listen: addr(base + 3),
            rtp_ip: "127.0.0.1".parse().unwrap(),
            behavior: EchoBehavior::default(),
        };
        let echo = EchoServer::start(settings, Metrics::new(), stop.clone())
            .await
            .unwrap();
        let mut config = Config::default();
        config.http.listen = addr(base);
        config.sip.udp = Some(addr(base + 1));
        config.sip.tcp = Some(addr(base + 1));
        config.webrtc.port = base + 2;
        config.rtp.port_min = base + 10;
        config.rtp.port_max = base + 29;
        config.media.workers = 1;
        config.echo.enabled = false;
        config.sip.trunk.uri = Some(format!("sip:{}", echo.local_addr()));
        let gateway = Gateway::start(config, Metrics::new()).await.unwrap();
        let url = format!("ws://{}/ws", gateway.http_addr());
        let mut sig = Signaling::connect(&url).await.unwrap();
        let browser = common::answered_call(&mut sig, "c1").await;
        Rig {
            base,
            gateway,
            sig,
            browser,
            _echo: echo,
            _stop: stop,
        }
    }

    fn sip(&self) -> SocketAddr {
        addr(self.base + 1)
    }

    /// The call still carries audio and the browser heard nothing about it.
    async fn assert_call_undisturbed(&mut self) {
        let back = common::echo_round_trip(&self.browser, 50).await;
        assert!(back >= 45, "only {back} of 50 frames came back");
        assert_eq!(self.gateway.active_calls(), 1);
        // Anything the gateway sent about the call would come before this
        // answer on the same socket.
        let probe = json!({"type":"hangup","call_id":"no-such-call"});
        self.sig.send(probe).await.unwrap();
        let next = self.sig.recv(T).await.unwrap();
        assert_eq!(next["code"], "unknown_call", "{next}");
    }
}

/// The status codes of every response to `bytes` sent from `port`, until
/// a final one, or until nothing more comes within QUIET.
async fn udp_answers(to: SocketAddr, port: u16, bytes: &[u8]) -> Vec<u16> {
    let sock = UdpSocket::bind(addr(port)).await.unwrap();
    sock.send_to(bytes, to).await.unwrap();
    let mut codes = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok((n, _))) = timeout(QUIET.max(wait_for(&codes)), sock.recv_from(&mut buf)).await
    {
        let code = status(&buf[..n]);
        codes.push(code);
        if code >= 200 {
            break;
        }
    }
    codes
}

/// After a provisional answer a final one must follow: wait longer for it.
fn wait_for(codes: &[u16]) -> Duration {
    if codes.is_empty() {
        QUIET
    } else {
        T
    }
}

fn status(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    let code = text.strip_prefix("SIP/2.0 ").and_then(|t| t.get(..3));
    code.and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {text}"))
}

fn final_answer(codes: &[u16]) -> Answer {
    match codes.last() {
        Some(&c) if c >= 200 => Final(c),
        None => Silence,
        Some(c) => panic!("only a provisional {c}"),
    }
}

/// Send each message of `set` over UDP, each from its own port of a block;
/// the call must be undisturbed afterwards.
async fn udp_torture(set: &[(&str, &str, bool, Answer)]) {
    let mut rig = Rig::start().await;
    let first_port = siphon_testkit::ports::block(set.len() as u16);
    let mut wrong = Vec::new();
    for (i, &(section, name, _, want)) in set.iter().enumerate() {
        let codes = udp_answers(rig.sip(), first_port + i as u16, &fixture(name)).await;
        let got = final_answer(&codes);
        if got != want {
            wrong.push(format!("{section} {name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    rig.assert_call_undisturbed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4475_torture_messages_over_udp_leave_the_call_alone() {
    udp_torture(TORTURE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc5118_ipv6_messages_over_udp_leave_the_call_alone() {
    udp_torture(IPV6).await;
}

/// Messages also sent over TCP, each on its own connection.
const OVER_TCP: &[&str] = &[
    "wsinv",
    "intmeth",
    "lwsdisp",
    "transports",
    "badinv01",
    "ncl",
    "scalar02",
    "badvers",
    "mismatch01",
    "unkscm",
    "mcl01",
    "zeromf",
];

/// The status codes read from a fresh connection after sending `bytes`,
/// until a final one, the peer closing, or QUIET without a byte.
async fn tcp_answers(to: SocketAddr, bytes: &[u8]) -> Vec<u16> {
    let mut stream = TcpStream::connect(to).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut codes = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut have = 0;
    while let Ok(Ok(n)) = timeout(wait_for(&codes), stream.read(&mut buf[have..])).await {
        if n == 0 {
            break;
        }
        have += n;
        // Each response siphon sends here has an empty body.
        while let Some(end) = find(&buf[..have], b"\r\n\r\n") {
            codes.push(status(&buf[..end]));
            buf.copy_within(end + 4..have, 0);
            have -= end + 4;
        }
        if codes.last().is_some_and(|&c| c >= 200) {
            break;
        }
    }
    codes
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4475_torture_messages_over_tcp_get_the_same_answers() {
    let mut rig = Rig::start().await;
    let mut wrong = Vec::new();
    for name in OVER_TCP {
        let &(section, _, _, want) = TORTURE.iter().find(|t| t.1 == *name).unwrap();
        let got = final_answer(&tcp_answers(rig.sip(), &fixture(name)).await);
        if got != want {
            wrong.push(format!("{section} {name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    rig.assert_call_undisturbed().await;
}
