//! SIP over TLS through a whole in-process siphon, with certificates made by
//! rcgen at test time: a browser calls a TLS UAS (the echo extension with a
//! TLS listener), a TLS UAC calls a browser user, and the bad cases: a trunk
//! whose certificate names another host or has expired, a peer that wants a
//! client certificate, plain text and a failed handshake on siphon's TLS port.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use common::pki::{Leaf, Pki};
use common::{frame_index, stamped_frame, Browser, Codec, Signaling};
use serde_json::{json, Value};
use siphon::config::{Config, UserConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{
    EchoServer, EchoSettings, InboundPolicy, OutboundInvite, RegistrationSpec, RegistrationState,
    SipEndpoint, SipSettings, SipTls, Transport, UacEvent,
};
use siphon_doubles::ScriptedEcho;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// A TLS echo UAS whose certificate is `leaf`; with `client_ca`, it
/// requires a client certificate issued by that CA.
async fn tls_echo(
    leaf: &Leaf,
    client_ca: Option<String>,
    stop: &CancellationToken,
) -> (EchoServer, Arc<ScriptedEcho>) {
    let script = Arc::new(ScriptedEcho::default());
    let settings = EchoSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ip: "127.0.0.1".parse().unwrap(),
        behavior: script.install(),
    };
    let tls = SipTls {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        cert: leaf.cert.clone().into_bytes(),
        key: leaf.key.clone().into_bytes(),
        client_ca: client_ca.map(String::into_bytes),
        ..Default::default()
    };
    let echo = EchoServer::start_with_tls(settings, Some(tls), Metrics::new(), stop.clone())
        .await
        .unwrap();
    (echo, script)
}

/// A gateway with a TLS listener that trusts `pki`'s CA; `tweak` sets the rest.
async fn gateway(pki: &Pki, tweak: impl FnOnce(&mut Config)) -> (Gateway, Metrics) {
    let port_base = siphon_testkit::ports::block(20);
    let own = pki.issue(&["127.0.0.1"]);
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.sip.udp = Some("127.0.0.1:0".parse().unwrap());
    config.sip.tcp = None;
    config.sip.tls.listen = Some("127.0.0.1:0".parse().unwrap());
    config.sip.tls.cert = pki.write("siphon.crt", &own.cert);
    config.sip.tls.key = pki.write("siphon.key", &own.key);
    config.sip.tls.ca = pki.write("ca.crt", &pki.ca_pem());
    config.webrtc.port = 0;
    config.rtp.port_min = port_base;
    config.rtp.port_max = port_base + 19;
    config.media.workers = 1;
    config.echo.enabled = false;
    tweak(&mut config);
    let metrics = Metrics::new();
    let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
    (gateway, metrics)
}

async fn signaling(gateway: &Gateway) -> Signaling {
    Signaling::connect(&format!("ws://{}/ws", gateway.http_addr()))
        .await
        .unwrap()
}

/// The browser calls `1000` (the trunk); returns the first final message.
async fn browser_calls(sig: &mut Signaling, browser: &Browser) -> Value {
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"c1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    loop {
        let msg = sig.recv(T).await.unwrap();
        if matches!(msg["type"].as_str(), Some("answered" | "hangup")) {
            return msg;
        }
    }
}

/// Browser -> TLS trunk: answered, audio both ways, hung up.
async fn call_over_tls(trunk: &str, pki: &Pki, echo: &EchoServer) {
    let trunk = trunk.to_string();
    let (gw, _) = gateway(pki, |c| c.sip.trunk.uri = Some(trunk)).await;
    let mut sig = signaling(&gw).await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let answered = browser_calls(&mut sig, &browser).await;
    assert_eq!(answered["type"], "answered", "{answered}");
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();
    let back = common::echo_round_trip(&browser, 100).await;
    assert!(back >= 90, "only {back} of 100 packets came back intact");
    assert_eq!(echo.stats().calls_answered, 1);
    sig.send(json!({"type":"hangup","call_id":"c1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_calls_sips_trunk_audio_both_ways() {
    let pki = Pki::new("sips-trunk");
    let stop = CancellationToken::new();
    let (echo, script) = tls_echo(&pki.issue(&["127.0.0.1"]), None, &stop).await;
    let addr = echo.tls_addr().unwrap();
    call_over_tls(&format!("sips:{addr}"), &pki, &echo).await;
    let invite = script.last_invite().unwrap();
    let via = invite.header("Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TLS 127.0.0.1:"), "{via}");
    let contact = invite.header("Contact").unwrap();
    assert!(contact.contains("sips:"), "{contact}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_trunk_gets_siphons_client_certificate() {
    let pki = Pki::new("mtls-trunk");
    let stop = CancellationToken::new();
    // The trunk accepts only clients with a certificate from this CA.
    let (echo, script) = tls_echo(&pki.issue(&["127.0.0.1"]), Some(pki.ca_pem()), &stop).await;
    let addr = echo.tls_addr().unwrap();
    call_over_tls(&format!("sip:{addr};transport=tls"), &pki, &echo).await;
    let contact = script
        .last_invite()
        .unwrap()
        .header("Contact")
        .unwrap()
        .to_string();
    assert!(
        contact.to_ascii_lowercase().contains("transport=tls"),
        "{contact}"
    );
}

/// A trunk whose certificate `leaf` (issued by `pki`) must be refused: the
/// browser gets 503 naming the certificate and `because`, and it is counted.
async fn refused_trunk(pki: &Pki, leaf: Leaf, because: &str) {
    let stop = CancellationToken::new();
    let (echo, _) = tls_echo(&leaf, None, &stop).await;
    let trunk = format!("sip:{};transport=tls", echo.tls_addr().unwrap());
    let (gw, metrics) = gateway(pki, |c| c.sip.trunk.uri = Some(trunk)).await;
    let mut sig = signaling(&gw).await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let hangup = browser_calls(&mut sig, &browser).await;
    assert_eq!(hangup["type"], "hangup", "{hangup}");
    assert_eq!(hangup["code"], 503, "{hangup}");
    let reason = hangup["reason"].as_str().unwrap();
    assert!(reason.contains("TLS certificate of 127.0.0.1:"), "{reason}");
    assert!(reason.contains(because), "{reason}");
    assert_eq!(echo.stats().calls_answered, 0);
    let text = metrics.render();
    let line = r#"siphon_sip_tls_handshakes_total{direction="out",outcome="certificate"} 1"#;
    assert!(text.contains(line), "{text}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_certificate_for_another_host_gives_503_naming_it() {
    let pki = Pki::new("wrong-host");
    let leaf = pki.issue(&["pbx.example.net"]);
    refused_trunk(&pki, leaf, "not valid for name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_trunk_certificate_gives_503_naming_it() {
    let pki = Pki::new("expired");
    let leaf = pki.issue_expired(&["127.0.0.1"]);
    refused_trunk(&pki, leaf, "expired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrar_with_a_certificate_for_another_host_fails_naming_it() {
    let pki = Pki::new("registrar-host");
    let stop = CancellationToken::new();
    let (echo, _) = tls_echo(&pki.issue(&["registrar.example.net"]), None, &stop).await;
    let pbx = tls_pbx(&pki, &stop).await;
    let spec = RegistrationSpec {
        registrar: format!("sips:{}", echo.tls_addr().unwrap()),
        user: "1001".into(),
        domain: String::new(),
        username: String::new(),
        password: "pw".into(),
        expires: 300,
        contact: None,
    };
    let registration = pbx.register(spec).unwrap();
    let mut state = registration.state();
    let failed = tokio::time::timeout(T, async {
        loop {
            if let RegistrationState::Failed { code, reason, .. } = state.borrow().clone() {
                return (code, reason);
            }
            state.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(failed.0, 503);
    assert!(
        failed.1.contains("TLS certificate of 127.0.0.1:"),
        "{}",
        failed.1
    );
    assert!(failed.1.contains("not valid for name"), "{}", failed.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_and_failed_handshakes_on_the_tls_port_are_closed_and_counted() {
    let pki = Pki::new("plaintext");
    let (gw, metrics) = gateway(&pki, |_| {}).await;
    let port = gw.sip_addr(Transport::Tls).unwrap();
    let mut plain = tokio::net::TcpStream::connect(port).await.unwrap();
    let options = "OPTIONS sip:siphon@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-1\r\n\
From: <sip:probe@127.0.0.1>;tag=a\r\nTo: <sip:siphon@127.0.0.1>\r\nCall-ID: p1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";
    plain.write_all(options.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(T, plain.read(&mut buf)).await.unwrap();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "plain text got an answer: {read:?}"
    );

    // A client that trusts nothing aborts the handshake with an alert.
    let roots = rustls::RootCertStore::empty();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(port).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    assert!(connector.connect(name, tcp).await.is_err());

    for outcome in ["plaintext", "alert"] {
        let line =
            format!(r#"siphon_sip_tls_handshakes_total{{direction="in",outcome="{outcome}"}} 1"#);
        wait_for(|| metrics.render().contains(&line)).await;
    }
}

async fn wait_for(f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !f() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(f(), "condition not reached in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sip_inside_tls_gets_400_from_the_ingress_guard() {
    let pki = Pki::new("tls-guard");
    let (gw, metrics) = gateway(&pki, |_| {}).await;
    let port = gw.sip_addr(Transport::Tls).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(pki.ca_pem().as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(port).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let bad = "OPTIONS sip:siphon@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-2\r\n\
From: <sip:probe@127.0.0.1>;tag=a\r\nTo: <sip:siphon@127.0.0.1>\r\nCall-ID: g1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: x\r\n\r\n";
    tls.write_all(bad.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(T, tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("SIP/2.0 400 Bad Request\r\n"), "{reply}");
    let line = r#"siphon_sip_errors_total{reason="bad_content_length"} 1"#;
    wait_for(|| metrics.render().contains(line)).await;
}

/// A PBX (siphon's own SIP endpoint) with a TLS listener, trusting `pki`.
async fn tls_pbx(pki: &Pki, stop: &CancellationToken) -> SipEndpoint {
    let leaf = pki.issue(&["127.0.0.1"]);
    let settings = SipSettings {
        udp: None,
        tcp: None,
        tls: Some(SipTls {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            cert: leaf.cert.into_bytes(),
            key: leaf.key.into_bytes(),
            ca: Some(pki.ca_pem().into_bytes()),
            ..Default::default()
        }),
        public_ip: "127.0.0.1".parse().unwrap(),
        domain: "pbx.test".into(),
        user_agent: "test-pbx".into(),
        max_message_bytes: 65535,
        inbound: InboundPolicy::default(),
    };
    SipEndpoint::start(settings, Metrics::new(), stop.clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_phone_calls_browser_user_audio_both_ways() {
    let pki = Pki::new("inbound");
    let stop = CancellationToken::new();
    let (gw, _) = gateway(&pki, |c| {
        c.users = vec![UserConfig {
            name: "alice".into(),
            extension: "2001".into(),
            ..Default::default()
        }];
    })
    .await;
    let pbx = tls_pbx(&pki, &stop).await;
    let mut sig = signaling(&gw).await;
    sig.send(json!({"type":"hello","user":"alice"}))
        .await
        .unwrap();
    let pbx_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    pbx_rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let port = pbx_rtp.local_addr().unwrap().port();
    let sdp = format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    let gw_tls = gw.sip_addr(Transport::Tls).unwrap();
    let invite = OutboundInvite {
        target: format!("sip:2001@{gw_tls};transport=tls"),
        from_user: "1000".into(),
        from_display: None,
        sdp,
        credentials: None,
        log_id: "pbx".into(),
        failover: Vec::new(),
        response_wait: None,
        headers: Vec::new(),
    };
    let (uac, mut events) = pbx.invite(invite).await.unwrap();
    let (browser, call_id) = common::accept_incoming(&mut sig).await;
    let sdp = common::uac_answer(&mut events).await;
    browser.wait_connected(T).await.unwrap();
    let echo = {
        let browser = browser.clone();
        tokio::spawn(async move {
            while let Ok(p) = browser.recv_payload(Duration::from_secs(2)).await {
                let _ = browser.send_rtp(&p).await;
            }
        })
    };
    let back =
        tokio::task::spawn_blocking(move || pbx_round_trip(&pbx_rtp, common::media_addr(&sdp)))
            .await
            .unwrap();
    assert!(
        back >= 50,
        "only {back} of 60 frames came back through the browser"
    );
    // The browser hangs up: siphon's BYE must reach the phone over TLS.
    sig.send(json!({"type":"hangup","call_id":call_id}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    let ended = loop {
        match tokio::time::timeout(T, events.recv()).await.unwrap() {
            Some(UacEvent::Ended { by_remote }) => break by_remote,
            Some(_) => {}
            None => panic!("the phone's call ended without an event"),
        }
    };
    assert!(ended, "the phone saw the call end from siphon's side");
    drop(uac);
    echo.abort();
}

/// Sends 60 stamped frames to `to`, counting those that come back.
fn pbx_round_trip(sock: &UdpSocket, to: SocketAddr) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut buf = [0u8; 2048];
    for i in 0..60u16 {
        let mut p = vec![0x80, 0];
        p.extend(i.to_be_bytes());
        p.extend((u32::from(i) * 160).to_be_bytes());
        p.extend(0x5EED_u32.to_be_bytes());
        p.extend_from_slice(&stamped_frame(i));
        sock.send_to(&p, to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n > 12 {
                seen.extend(frame_index(&buf[12..n]));
            }
        }
    }
    seen.len()
}
