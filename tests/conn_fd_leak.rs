//! File descriptors after SIP over TCP: 100 INVITEs to an offline user, and
//! 100 with a broken SDP, each on its own connection that the client closes
//! after the final answer. rsipstack's INVITE server transaction would keep
//! the connection (and its socket) until Timer H (64*T1 = 32 s), waiting for
//! an ACK that a closed client never sends; siphon lets the transaction go
//! when the connection closes, so every fd and every slot comes back at
//! once. (Alone in its binary: it counts every fd of the process.)

use std::net::SocketAddr;
use std::time::Duration;

use siphon::config::UserConfig;
use siphon::connections::fd::open_fds;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 21499 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
const BROKEN_SDP: &str = "v=0\r\nthis is not sdp\r\n";

fn invite(i: usize, to: &str, from: SocketAddr, sdp: &str) -> String {
    format!(
        "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP {from};branch=z9hG4bK-leak-{i}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@127.0.0.1>;tag=leak{i}\r\n\
         To: <sip:{to}@127.0.0.1>\r\n\
         Call-ID: leak-{i}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:pbx@{from};transport=tcp>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Sends one INVITE on a new connection, reads until a final answer, closes.
async fn one_call(sip: SocketAddr, i: usize, to: &str, sdp: &str) -> u16 {
    let mut s = TcpStream::connect(sip).await.unwrap();
    let from = s.local_addr().unwrap();
    s.write_all(invite(i, to, from, sdp).as_bytes())
        .await
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("a final answer in time")
            .unwrap();
        assert!(n > 0, "closed before a final answer: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(code) = final_code(&got) {
            return code;
        }
    }
}

fn final_code(text: &str) -> Option<u16> {
    text.split("SIP/2.0 ")
        .filter_map(|r| r.get(..3)?.parse::<u16>().ok())
        .find(|c| *c >= 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fds_come_back_after_tcp_invites_that_get_a_final_answer() {
    let mut config = siphon_doubles::loopback_config();
    config.sip.udp = None;
    config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.limits.connections.sip_per_ip = 20;
    config.users = vec![UserConfig {
        name: "alice".into(),
        ..UserConfig::default()
    }];
    let metrics = Metrics::new();
    let gw = Gateway::start(config, metrics.clone()).await.unwrap();
    let sip = gw.sip_addr(siphon::sip::Transport::Tcp).unwrap();
    // One call first, so lazily created fds are not counted as a leak.
    one_call(sip, 0, "alice", SDP).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = open_fds().unwrap();
    for i in 1..=100 {
        assert_eq!(one_call(sip, i, "alice", SDP).await, 480);
    }
    for i in 101..=199 {
        let code = one_call(sip, i, "alice", BROKEN_SDP).await;
        assert!((400..500).contains(&code), "{code}");
    }
    let open = metrics.connections_open.with_label_values(&["sip_tcp"]);
    let back = async {
        loop {
            let now = open_fds().unwrap();
            // The slot is given back within a second of the socket.
            if now <= baseline + 2 && open.get() == 0 {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // Timer H (32 s) would hold them past this bound; the release is at once.
    let result = tokio::time::timeout(Duration::from_secs(10), back).await;
    assert!(
        result.is_ok(),
        "fds held: {} now against {baseline} before; {} slots",
        open_fds().unwrap(),
        open.get()
    );
    // The caps were never the limit: 199 connections from one address
    // under a per-IP cap of 20.
    let refused = metrics
        .connections_refused_total
        .with_label_values(&["sip_tcp", "per_ip_cap"]);
    assert_eq!(refused.get(), 0);
}
