//! The `siphon` binary under SIGTERM, as a container runtime or systemd
//! stops it: it drains, lets a call up finish, closes every socket with a
//! close frame, and exits 0; with a short `limits.drain_secs` the call gets
//! `hangup` 503 first.

#![allow(unsafe_code)] // kill(2) on the child; the block has its SAFETY note

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Browser, Signaling};
use serde_json::json;

const T: Duration = Duration::from_secs(10);

struct Siphon {
    child: Child,
    http: SocketAddr,
    /// Every line siphon has logged so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Siphon {
    /// Starts the binary on loopback with ephemeral ports (RTP and WebRTC
    /// from the test-port allocator) and waits for its URL.
    fn start(tag: &str, drain_secs: u64) -> Siphon {
        let rtp_base = siphon_testkit::ports::block(20);
        let dir = std::env::temp_dir().join(format!("siphon-stop-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("siphon.toml");
        let toml = format!(
            "[sip]\nudp = \"127.0.0.1:0\"\ntcp = \"\"\n[echo]\nlisten = \"127.0.0.1:0\"\n\
             [webrtc]\nport = {}\n[rtp]\nport_min = {rtp_base}\nport_max = {}\n\
             [media]\nworkers = 1\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [limits]\ndrain_secs = {drain_secs}\n[log]\nformat = \"text\"\n",
            rtp_base + 18,
            rtp_base + 15
        );
        std::fs::write(&config, toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_siphon"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let http = loop {
            let line = lines.next().expect("siphon exited at start").unwrap();
            if let Some(url) = line.split("siphon is running: open ").nth(1) {
                let addr = url
                    .trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                break addr.parse().unwrap();
            }
        };
        // Keep reading so that the pipe never fills.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Siphon { child, http, log }
    }

    /// The logged line that contains every one of `parts`, if any.
    fn logged(&self, parts: &[&str]) -> Option<String> {
        let log = self.log.lock().unwrap();
        let found = log.iter().find(|l| parts.iter().all(|p| l.contains(p)));
        found.cloned()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }

    /// The exit code, if it exited within `within`.
    async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(&self) -> (Signaling, Browser) {
        let mut sig = Signaling::connect(&format!("ws://{}/ws", self.http))
            .await
            .unwrap();
        let browser = common::answered_call_to(&mut sig, "c1", "echo").await;
        (sig, browser)
    }
}

impl Drop for Siphon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_the_call_then_exits_0() {
    let mut siphon = Siphon::start("wait", 300);
    let (mut sig, browser) = siphon.call().await;
    siphon.signal(libc::SIGTERM);
    assert_eq!(
        siphon.exit_code(Duration::from_millis(500)).await,
        None,
        "drains"
    );
    assert!(
        common::echo_round_trip(&browser, 25).await >= 22,
        "the call keeps its audio"
    );
    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    let closed = sig.recv(T).await.unwrap_err().to_string();
    assert!(closed.contains("1001"), "{closed}");
    assert_eq!(siphon.exit_code(T).await, Some(0));
    // Who called whom, and how it ended, at info level.
    let started = siphon.logged(&["call started", "from=anonymous", "to=echo"]);
    assert!(started.is_some(), "{:?}", siphon.log.lock().unwrap());
    let ended = siphon.logged(&["call ended", "answered", "code=200", "lasted_s="]);
    assert!(ended.is_some(), "{:?}", siphon.log.lock().unwrap());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_short_drain_hangs_up_503_and_exits_0() {
    let mut siphon = Siphon::start("short", 1);
    let (mut sig, browser) = siphon.call().await;
    siphon.signal(libc::SIGTERM);
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        (hangup["code"].as_u64(), hangup["reason"].as_str()),
        (Some(503), Some("siphon is shutting down"))
    );
    assert_eq!(siphon.exit_code(T).await, Some(0));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_twice_hangs_up_503_closes_every_socket_and_exits_0() {
    let mut siphon = Siphon::start("int", 300);
    let (mut sig, browser) = siphon.call().await;
    let mut idle = Signaling::connect(&format!("ws://{}/ws", siphon.http))
        .await
        .unwrap();
    siphon.signal(libc::SIGINT);
    assert_eq!(
        siphon.exit_code(Duration::from_millis(500)).await,
        None,
        "drains"
    );
    siphon.signal(libc::SIGINT);
    let hangup = sig.recv_type("hangup", T).await.unwrap();
    assert_eq!(
        (hangup["code"].as_u64(), hangup["reason"].as_str()),
        (Some(503), Some("siphon is shutting down"))
    );
    for socket in [&mut sig, &mut idle] {
        let closed = socket.recv(T).await.unwrap_err().to_string();
        assert!(closed.contains("1001"), "{closed}");
    }
    assert_eq!(siphon.exit_code(T).await, Some(0));
    browser.close().await;
}
