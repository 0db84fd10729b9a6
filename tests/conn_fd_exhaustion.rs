//! A flood of idle connections past the process's file descriptor limit.
//! With the reserve, the flood is refused (`fd_reserve`) while `/healthz`,
//! `/metrics` and a WebSocket keep working; without it, `accept` fails with
//! EMFILE and the loop backs off instead of spinning.
//!
//! The flood runs in a child process (this binary again, running only
//! `flood_child`) so that its sockets do not count against siphon's limit.
//! Alone in its binary: it lowers RLIMIT_NOFILE for the whole process.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use siphon::connections::fd;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TARGET_VAR: &str = "SIPHON_TEST_FLOOD_TARGET";
/// More than the limit, and less than it plus the listen backlog (the
/// kernel's `somaxconn`, 128 at least): connects past both would hang.
const FLOOD: usize = 600;
const SOFT_LIMIT: u64 = 512;

/// A gateway on loopback with SIP over TCP only.
async fn gateway(fd_reserve: u32) -> (Gateway, Metrics) {
    let mut config = siphon_doubles::loopback_config();
    config.sip.udp = None;
    config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.limits.connections.fd_reserve = fd_reserve;
    // The flood comes from one address: only the fd budget may stop it.
    config.limits.connections.sip_per_ip = config.limits.connections.sip_max;
    let metrics = Metrics::new();
    let gw = Gateway::start(config, metrics.clone()).await.unwrap();
    (gw, metrics)
}

/// Starts the flood and waits until every connection is open.
fn flood(target: SocketAddr) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["flood_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(TARGET_VAR, target.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("FLOOD READY") {
            // Keep reading, so the child's last words find an open pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return child;
        }
    }
    let _ = child.wait();
    panic!("the flood child ended before it was ready");
}

/// Not a test on its own: the flood's body when run as the child.
#[test]
fn flood_child() {
    let Ok(target) = std::env::var(TARGET_VAR) else {
        return;
    };
    fd::set_soft_limit(4 * FLOOD as u64).unwrap();
    let target: SocketAddr = target.parse().unwrap();
    let held: Vec<std::net::TcpStream> = (0..FLOOD)
        .filter_map(|_| std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1)).ok())
        .collect();
    println!("FLOOD READY {}", held.len());
    // Hold them until the parent closes our stdin.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

fn count(m: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
    m.with_label_values(labels).get()
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_fd_limit_is_refused_and_accept_does_not_spin() {
    if std::env::var(TARGET_VAR).is_ok() {
        return;
    }
    fd::set_soft_limit(SOFT_LIMIT).unwrap();

    // With the reserve: refused by reason, and the probes still answer.
    let (gw, m) = gateway(128).await;
    let child = flood(gw.sip_addr(siphon::sip::Transport::Tcp).unwrap());
    let refused = || count(&m.connections_refused_total, &["sip_tcp", "fd_reserve"]);
    let budget_spent = async {
        while refused() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), budget_spent)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the flood past the budget is refused: open {}, accept errors {}, fds {:?}",
                m.connections_open.with_label_values(&["sip_tcp"]).get(),
                count(&m.accept_errors_total, &["sip_tcp"]),
                fd::open_fds()
            )
        });
    assert!(get(gw.http_addr(), "/healthz")
        .await
        .starts_with("HTTP/1.0 200"));
    let metrics = get(gw.http_addr(), "/metrics").await;
    assert!(
        metrics.contains("siphon_connections_refused_total"),
        "{metrics}"
    );
    let url = format!("ws://{}/ws", gw.http_addr());
    let request = siphon_testkit::ws::ws_request(&url).unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    drop(ws);
    stop(child);
    gw.shutdown().await;

    // Without it: EMFILE, and the loop waits between attempts.
    let (gw, m) = gateway(0).await;
    let child = flood(gw.sip_addr(siphon::sip::Transport::Tcp).unwrap());
    let out_of_fds = async {
        while count(&m.accept_errors_total, &["sip_tcp"]) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), out_of_fds)
        .await
        .expect("the process runs out of fds");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let errors = count(&m.accept_errors_total, &["sip_tcp"]);
    // A spinning loop fails hundreds of thousands of times a second; the
    // backoff (10 ms doubling to 1 s) allows about ten in two seconds.
    assert!(errors < 100, "{errors} failed accepts: the loop spins");
    assert!(count(&m.connections_refused_total, &["sip_tcp", "fd_exhausted"]) > 0);
    stop(child);
    // The flood's connections close; the probes answer again.
    let health = async {
        loop {
            if let Ok(Ok(mut s)) =
                tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(gw.http_addr()))
                    .await
            {
                let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await;
                let mut out = String::new();
                let _ = s.read_to_string(&mut out).await;
                if out.starts_with("HTTP/1.0 200") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), health)
        .await
        .expect("/healthz answers once the flood is gone");
}
