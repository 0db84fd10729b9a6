//! Connection limits on a running siphon: the per-IP cap, the idle and
//! header timeouts on SIP TCP and on HTTP, each closing the connection and
//! counting it by reason, while other clients are served.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// An upper bound for "the server closed it", well above any timeout here.
const CLOSED_WITHIN: Duration = Duration::from_secs(10);

/// A gateway on loopback with SIP over TCP only; `tweak` sets the limits
/// under test.
async fn gateway(tweak: impl FnOnce(&mut Config)) -> (Gateway, Metrics) {
    let mut config = siphon_doubles::loopback_config();
    config.sip.udp = None;
    config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    tweak(&mut config);
    let metrics = Metrics::new();
    let gw = Gateway::start(config, metrics.clone()).await.unwrap();
    (gw, metrics)
}

/// A TCP connection from the loopback address `from` (127.0.0.x).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closes `stream` (EOF or reset) within `CLOSED_WITHIN`.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let read_until_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, read_until_end)
        .await
        .is_ok()
}

/// Whether `stream` is still open: nothing to read and no EOF for a moment.
async fn still_open(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf))
        .await
        .is_err()
}

fn refused(m: &Metrics, listener: &str, reason: &str) -> u64 {
    m.connections_refused_total
        .with_label_values(&[listener, reason])
        .get()
}

fn closed(m: &Metrics, listener: &str, reason: &str) -> u64 {
    m.connections_closed_total
        .with_label_values(&[listener, reason])
        .get()
}

async fn healthz(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(CLOSED_WITHIN, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn sip_tcp_per_ip_cap_closes_the_next_connection_and_counts_it() {
    let (gw, m) = gateway(|c| c.limits.connections.sip_per_ip = 2).await;
    let sip = gw.sip_addr(siphon::sip::Transport::Tcp).unwrap();
    let mut held = vec![
        connect_from([127, 0, 0, 2], sip).await,
        connect_from([127, 0, 0, 2], sip).await,
    ];
    let mut third = connect_from([127, 0, 0, 2], sip).await;
    assert!(closed_by_server(&mut third).await, "the third is closed");
    assert_eq!(refused(&m, "sip_tcp", "per_ip_cap"), 1);
    for s in &mut held {
        assert!(still_open(s).await, "the first two stay up");
    }
    // Another address is not affected.
    let mut other = connect_from([127, 0, 0, 3], sip).await;
    assert!(still_open(&mut other).await);
    assert_eq!(m.connections_open.with_label_values(&["sip_tcp"]).get(), 3);
}

#[tokio::test]
async fn sip_tcp_connection_without_a_message_is_closed_as_idle() {
    let (gw, m) = gateway(|c| c.limits.connections.idle_secs = 1).await;
    let sip = gw.sip_addr(siphon::sip::Transport::Tcp).unwrap();
    let mut idle = TcpStream::connect(sip).await.unwrap();
    assert!(closed_by_server(&mut idle).await);
    assert_eq!(closed(&m, "sip_tcp", "idle"), 1);
    assert_eq!(closed(&m, "sip_tcp", "header_timeout"), 0);
}

#[tokio::test]
async fn sip_tcp_slowloris_head_is_closed_at_the_header_timeout() {
    let (gw, m) = gateway(|c| {
        c.limits.connections.header_timeout_secs = 1;
        c.limits.connections.idle_secs = 600;
    })
    .await;
    let sip = gw.sip_addr(siphon::sip::Transport::Tcp).unwrap();
    let mut slow = TcpStream::connect(sip).await.unwrap();
    // 60 KB of header lines with no blank line: a message that never ends.
    slow.write_all(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n")
        .await
        .unwrap();
    for i in 0..1000 {
        let line = format!("X-Filler-{i:04}: {}\r\n", "a".repeat(40));
        slow.write_all(line.as_bytes()).await.unwrap();
    }
    assert!(closed_by_server(&mut slow).await);
    assert_eq!(closed(&m, "sip_tcp", "header_timeout"), 1);
}

#[tokio::test]
async fn http_per_ip_cap_closes_the_next_connection_and_health_still_answers() {
    let (gw, m) = gateway(|c| c.limits.connections.http_per_ip = 2).await;
    let http = gw.http_addr();
    let mut held = vec![
        connect_from([127, 0, 0, 4], http).await,
        connect_from([127, 0, 0, 4], http).await,
    ];
    let mut third = connect_from([127, 0, 0, 4], http).await;
    assert!(closed_by_server(&mut third).await);
    assert_eq!(refused(&m, "http", "per_ip_cap"), 1);
    for s in &mut held {
        assert!(still_open(s).await);
    }
    assert!(healthz(http).await.starts_with("HTTP/1.0 200"));
}

#[tokio::test]
async fn http_unfinished_request_head_and_idle_connection_are_closed_by_reason() {
    let (gw, m) = gateway(|c| {
        c.limits.connections.header_timeout_secs = 1;
    })
    .await;
    let http = gw.http_addr();
    let mut slow = TcpStream::connect(http).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(http).await.unwrap();
    assert!(closed_by_server(&mut slow).await);
    assert!(closed_by_server(&mut silent).await);
    assert_eq!(closed(&m, "http", "header_timeout"), 1);
    assert_eq!(closed(&m, "http", "idle"), 1);
}

#[tokio::test]
async fn http_keep_alive_connection_waiting_for_its_next_request_is_closed_as_idle() {
    let (gw, m) = gateway(|c| {
        c.limits.connections.header_timeout_secs = 1;
    })
    .await;
    let mut conn = TcpStream::connect(gw.http_addr()).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    conn.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(closed_by_server(&mut conn).await);
    assert_eq!(closed(&m, "http", "idle"), 1);
}

#[tokio::test]
async fn a_websocket_holds_its_slot_until_it_closes() {
    let (gw, m) = gateway(|c| {
        c.limits.connections.http_max = 1;
        c.limits.connections.http_per_ip = 1;
    })
    .await;
    let url = format!("ws://{}/ws", gw.http_addr());
    let request = siphon_testkit::ws::ws_request(&url).unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut second = TcpStream::connect(gw.http_addr()).await.unwrap();
    assert!(
        closed_by_server(&mut second).await,
        "the upgraded socket still counts"
    );
    assert_eq!(refused(&m, "http", "global_cap"), 1);
    drop(ws);
    let open = m.connections_open.with_label_values(&["http"]);
    let freed = async {
        while open.get() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, freed).await.unwrap();
    assert!(healthz(gw.http_addr()).await.starts_with("HTTP/1.0 200"));
}
