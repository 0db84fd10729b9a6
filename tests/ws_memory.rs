//! What one large WebSocket frame leaves held on the server: 200 sockets
//! each send one frame, and the process's resident memory is compared with
//! the same 200 sockets idle. Prints the figures; its only assertion is a
//! generous bound on the memory a refused 900 KB frame may leave behind.
//! Alone in its binary so that no other test moves the figures.

use std::time::Duration;

use futures_util::StreamExt;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const SOCKETS: usize = 200;

type Ws = WebSocketStream<TcpStream>;

async fn gateway() -> Gateway {
    let config = siphon_doubles::loopback_config();
    Gateway::start(config, Metrics::new()).await.unwrap()
}

async fn open(gw: &Gateway) -> Ws {
    let url = format!("ws://{}/ws", gw.http_addr());
    let request = siphon_testkit::ws::ws_request(&url).unwrap();
    let tcp = TcpStream::connect(gw.http_addr()).await.unwrap();
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .unwrap();
    assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
    ws
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:"));
    let kib = line.and_then(|l| l.split_whitespace().nth(1));
    kib.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One masked text frame (mask key 0) carrying `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | 127];
    f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Each socket sends `bytes` in one frame and waits for the server's answer
/// (an `error`, a close, or the end). Returns how many stayed open.
async fn send_one_frame_each(sockets: &mut [Ws], bytes: usize) -> usize {
    let text = format!(
        r#"{{"type":"call","to":"x","sdp":"{}"}}"#,
        "x".repeat(bytes)
    );
    let raw = frame(text.as_bytes());
    let mut open = 0;
    for ws in sockets.iter_mut() {
        // A refused frame may see its socket reset while it is written.
        let _ = ws.get_mut().write_all(&raw).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        if let Ok(Some(Ok(Message::Text(_)))) = answer {
            open += 1;
        }
    }
    open
}

async fn held_per_socket(bytes: usize) -> (f64, usize) {
    let gw = gateway().await;
    let mut sockets = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        sockets.push(open(&gw).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = rss_kib();
    let open = send_one_frame_each(&mut sockets, bytes).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_kib();
    let per_socket = after.saturating_sub(idle) as f64 / SOCKETS as f64;
    println!(
        "ws_memory: {SOCKETS} sockets, one {} KB frame each: RSS {idle} -> {after} KiB, \
         {per_socket:.1} KiB held per socket, {open} sockets still open",
        bytes / 1000
    );
    drop(sockets);
    gw.shutdown().await;
    (per_socket, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_large_frame_leaves_little_held_per_socket() {
    let (refused, open) = held_per_socket(900_000).await;
    assert_eq!(
        open, 0,
        "a 900 KB frame is over the cap: every socket closes"
    );
    assert!(
        refused < 300.0,
        "{refused:.1} KiB held per socket after a 900 KB frame"
    );
    // Under the cap the frame is read, answered, and its buffer stays.
    let (under_cap, open) = held_per_socket(120_000).await;
    assert_eq!(open, SOCKETS);
    println!("ws_memory: under the cap {under_cap:.1} KiB per socket stays held");
}
