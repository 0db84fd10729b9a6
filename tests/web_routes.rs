//! The web phone's routes on a running siphon: the page and its files with
//! their content types and `Cache-Control: no-cache`, 404 for anything else,
//! and the other routes still reachable next to the catch-all `/{name}`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use siphon::gateway::Gateway;
use siphon::metrics::Metrics;

async fn gateway() -> Gateway {
    let mut config = siphon_doubles::loopback_config();
    config.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.echo.enabled = true;
    config.echo.listen = "127.0.0.1:0".parse().unwrap();
    Gateway::start(config, Metrics::new()).await.unwrap()
}

/// One response: status, lower-cased headers, body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.0 GET on a blocking thread: no HTTP client crate needed.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw
    })
    .await
    .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status: status.parse().unwrap(),
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn the_page_and_its_files_are_served_and_nothing_else() {
    let gw = gateway().await;
    let addr = gw.http_addr();

    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert!(
        page.body.contains(r#"src="/app.js""#),
        "the page loads app.js"
    );
    for id in ["token", "user", "connect", "to", "call", "state", "hangup"] {
        assert!(
            page.body.contains(&format!(r#"id="{id}""#)),
            "#{id} missing"
        );
    }

    for (path, ty, marker) in [
        ("/index.html", "text/html; charset=utf-8", "<!doctype html>"),
        (
            "/siphon.js",
            "text/javascript; charset=utf-8",
            "export class Siphon",
        ),
        ("/app.js", "text/javascript; charset=utf-8", "/siphon.js"),
        ("/style.css", "text/css; charset=utf-8", "#state"),
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert!(r.body.contains(marker), "{path} lacks {marker:?}");
    }

    for path in [
        "/nope.js",
        "/index.htm",
        "/web/app.js",
        "/a/b",
        "/..%2FCargo.toml",
        "/%2E%2E/Cargo.toml",
        "/siphon.js/",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }

    // The catch-all must not shadow the fixed routes.
    assert_eq!(get(addr, "/healthz").await.body, "ok\n");
    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("siphon_"));
}
