//! `/healthz` tells when a SIP listener's reader has stopped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Status line and body of a GET on a blocking thread.
async fn get(to: SocketAddr, path: &'static str) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.lines().next().unwrap().to_owned();
        (status, body.to_owned())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_once_a_sip_listener_reader_stopped() {
    // HTTP, SIP, echo and WebRTC on the first four ports, RTP on the rest.
    let base = siphon_testkit::ports::block(20);
    let mut config = Config::default();
    config.http.listen = addr(base);
    config.sip.udp = Some(addr(base + 1));
    config.sip.tcp = None;
    config.echo.listen = addr(base + 2);
    config.webrtc.port = base + 3;
    config.rtp.port_min = base + 4;
    config.rtp.port_max = base + 19;
    config.media.workers = 1;
    let metrics = Metrics::new();
    let _gateway = Gateway::start(config, metrics.clone()).await.unwrap();
    let http = addr(base);

    let text = metrics.render();
    for listener in ["sip", "echo"] {
        let line = format!("siphon_sip_listener_up{{listener=\"{listener}\"}} 1");
        assert!(text.contains(&line), "{text}");
    }
    let (status, body) = get(http, "/healthz").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ok\n");

    // What the reader's watcher does when the reader task ends early
    // (`sip::udp_reader` tests prove it for a panic and for an early return).
    metrics.sip_listener_up.with_label_values(&["echo"]).set(0);
    let (status, body) = get(http, "/healthz").await;
    assert!(status.contains(" 503 "), "{status}");
    assert_eq!(body, "sip listener down: echo\n");
}
