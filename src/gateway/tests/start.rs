//! A gateway whose address is taken refuses to start, naming the key and the address.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use super::config;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::metrics::Metrics;

/// A UDP socket holding a free loopback port.
fn udp_taken() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = s.local_addr().expect("addr");
    (s, addr)
}

async fn start_error(config: Config) -> String {
    match Gateway::start(config, Metrics::new()).await {
        Ok(_) => panic!("the gateway started on a taken address"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_sip_udp_port_names_sip_udp() {
    let (_held, addr) = udp_taken();
    let mut c = config();
    c.sip.udp = Some(addr);
    let why = start_error(c).await;
    assert_eq!(why, format!("sip.udp {addr}: address already in use"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_sip_tcp_port_names_sip_tcp() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr");
    let mut c = config();
    c.sip.tcp = Some(addr);
    let why = start_error(c).await;
    assert_eq!(why, format!("sip.tcp {addr}: address already in use"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_http_port_names_http_listen() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr");
    let mut c = config();
    c.http.listen = addr;
    let why = start_error(c).await;
    assert_eq!(why, format!("http.listen {addr}: address already in use"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_webrtc_port_names_webrtc_port() {
    let (_held, addr) = udp_taken();
    let mut c = config();
    c.webrtc.port = addr.port();
    let why = start_error(c).await;
    assert_eq!(why, format!("webrtc.port {addr}: address already in use"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_echo_port_names_echo_listen() {
    let (_held, addr) = udp_taken();
    let mut c = config();
    c.echo.listen = addr;
    let why = start_error(c).await;
    assert_eq!(why, format!("echo.listen {addr}: address already in use"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_this_host_lacks_names_its_bind_key() {
    // 192.0.2.0/24 is documentation space (RFC 5737): no interface has it.
    let absent: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let mut c = config();
    c.rtp.bind = absent;
    let port_min = c.rtp.port_min;
    let why = start_error(c).await;
    let reason = "address not available: no interface has it";
    assert_eq!(why, format!("rtp.bind 192.0.2.1:{port_min}: {reason}"));
    let mut c = config();
    c.webrtc.bind = absent;
    let why = start_error(c).await;
    assert_eq!(why, format!("webrtc.bind 192.0.2.1:0: {reason}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_started_gateway_lists_what_it_really_bound() {
    let c = config();
    let rtp = format!("127.0.0.1:{}-{}", c.rtp.port_min, c.rtp.port_max);
    let gw = Gateway::start(c, Metrics::new()).await.expect("start");
    let listening = gw.listening();
    let lines = listening.lines();
    let find = |what: &str| {
        lines
            .iter()
            .find(|(w, _)| w == what)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no {what} in {lines:?}"))
    };
    assert_eq!(listening.url(), format!("http://{}/", gw.http_addr()));
    let udp = gw.sip_addr(crate::sip::Transport::Udp).expect("udp");
    assert_eq!(find("sip.udp"), udp.to_string());
    assert!(!find("webrtc (udp)").ends_with(":0"), "{lines:?}");
    assert_eq!(find("rtp (udp)"), rtp);
    assert!(find("echo (dial echo)").starts_with("127.0.0.1:"));
    gw.shutdown().await;
}
