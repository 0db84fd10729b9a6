//! The gateway's records: the file opens at start (or the start fails,
//! naming `records.file`), SIGHUP reopens it, shutdown closes it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use siphon_testkit::ports::port;

use super::config;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::metrics::Metrics;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The test config with every listener on a port from the test allocator.
fn records_config(file: &Path) -> Config {
    let mut c = config();
    c.http.listen = loopback(port());
    c.sip.udp = Some(loopback(port()));
    c.sip.tcp = c.sip.udp;
    c.webrtc.port = port();
    c.echo.enabled = false;
    c.records.file = file.display().to_string();
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reopens_the_records_file_at_its_path() {
    let path = crate::tls::temp_dir("gateway-records").join("calls.jsonl");
    let gw = Gateway::start(records_config(&path), Metrics::new())
        .await
        .expect("start");
    assert!(path.exists(), "opened at start");
    std::fs::rename(&path, path.with_extension("jsonl.1")).unwrap();
    gw.reload();
    let mut reopened = false;
    for _ in 0..200 {
        reopened = path.exists();
        if reopened {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reopened, "SIGHUP creates the file again at its path");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_records_file_that_cannot_be_opened_names_records_file() {
    let path = Path::new("/nonexistent-siphon-dir/calls.jsonl");
    let Err(e) = Gateway::start(records_config(path), Metrics::new()).await else {
        panic!("the gateway started without its records file");
    };
    let why = e.to_string();
    assert!(
        why.starts_with("records.file \"/nonexistent-siphon-dir/calls.jsonl\": "),
        "{why}"
    );
}
