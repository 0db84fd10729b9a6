//! SDES-SRTP on the SIP leg (RFC 4568) through a whole in-process siphon:
//! the PBX is an rsipstack endpoint whose media is protected with rtc-srtp,
//! an implementation siphon's relay shares no code with; the `webrtc`
//! crate plays the browser.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{frame_index, stamped_frame, Browser, Codec, Signaling};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use serde_json::json;
use siphon::config::{Config, SrtpMode, UserConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{
    EchoBehavior, EchoServer, EchoSettings, InboundPolicy, OutboundInvite, SipEndpoint,
    SipSettings, Transport, UacEvent,
};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);
/// The PBX's keys: a first one and the one a re-INVITE moves to.
const PBX_KEY: [u8; 30] = [0x21; 30];
const PBX_KEY2: [u8; 30] = [0x42; 30];

/// A gateway on `port_base` plus a PBX endpoint on its own UDP port.
struct Rig {
    gateway: Gateway,
    metrics: Metrics,
    pbx: SipEndpoint,
    _stop: CancellationToken,
}

impl Rig {
    async fn start(port_base: u16, tweak: impl FnOnce(&mut Config, SocketAddr)) -> Rig {
        let stop = CancellationToken::new();
        let settings = SipSettings {
            udp: Some("127.0.0.1:0".parse().unwrap()),
            tcp: None,
            public_ip: "127.0.0.1".parse().unwrap(),
            domain: "pbx.test".into(),
            user_agent: "test-pbx".into(),
            max_message_bytes: 65535,
            inbound: InboundPolicy::default(),
        };
        let pbx = SipEndpoint::start(settings, Metrics::new(), stop.clone())
            .await
            .unwrap();
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.sip.udp = Some("127.0.0.1:0".parse().unwrap());
        config.sip.tcp = None;
        config.echo.enabled = false;
        config.webrtc.port = 0;
        config.rtp.port_min = port_base;
        config.rtp.port_max = port_base + 19;
        config.media.workers = 1;
        config.users = vec![UserConfig {
            name: "alice".into(),
            extension: "2001".into(),
            ..Default::default()
        }];
        tweak(&mut config, pbx.local_addr(Transport::Udp).unwrap());
        let metrics = Metrics::new();
        let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
        Rig {
            gateway,
            metrics,
            pbx,
            _stop: stop,
        }
    }

    async fn signaling(&self, user: Option<&str>) -> Signaling {
        let url = format!("ws://{}/ws", self.gateway.http_addr());
        let mut sig = Signaling::connect(&url).await.unwrap();
        if let Some(user) = user {
            sig.send(json!({"type":"hello","user":user})).await.unwrap();
            sig.send(json!({"type":"hangup","call_id":"sync"}))
                .await
                .unwrap();
            assert_eq!(sig.recv(T).await.unwrap()["code"], "unknown_call");
        }
        sig
    }

    /// `siphon_media_dropped_total` for the SIP side and `reason`.
    fn sip_drops(&self, reason: &str) -> u64 {
        let needle = format!("siphon_media_dropped_total{{reason=\"{reason}\",side=\"sip\"}} ");
        let text = self.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

/// The key of siphon's `a=crypto:<tag>` line, and its suite name.
fn crypto_line(sdp: &str, tag: u32) -> Option<(String, Vec<u8>)> {
    let prefix = format!("a=crypto:{tag} ");
    let line = sdp.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let mut words = line.split_whitespace();
    let suite = words.next()?.to_owned();
    let key = words.next()?.strip_prefix("inline:")?;
    Some((suite, STANDARD.decode(key).ok()?))
}

/// `c=` and `m=audio` port of an SDP.
fn media_addr(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .unwrap();
    let port = port.split(' ').next().unwrap();
    format!("{}:{port}", ip.trim()).parse().unwrap()
}

/// An rtc-srtp context for `key || salt`.
fn context(profile: ProtectionProfile, key: &[u8]) -> Context {
    let provider = rtc_crypto::default_provider().expect("provider");
    Context::new(
        &key[..16],
        &key[16..],
        profile,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
        provider.crypto(),
    )
    .expect("context")
}

fn pbx_sdp(port: u16, proto: &str, crypto: &str) -> String {
    format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0 101\r\n{crypto}a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    )
}

fn crypto_attr(tag: u32, suite: &str, key: &[u8]) -> String {
    format!("a=crypto:{tag} {suite} inline:{}\r\n", STANDARD.encode(key))
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(0x5EED_u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The PBX echoes what siphon sends: unprotected with siphon's key,
/// protected again with its own, which `rekey` may replace. Returns the
/// packets it could not unprotect, and the key-press (PT 101) packets.
fn spawn_echo(
    sock: UdpSocket,
    profile: ProtectionProfile,
    siphon_key: Vec<u8>,
    rekey: std_mpsc::Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize)> {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut rx = context(profile, &siphon_key);
        let mut tx = context(profile, &PBX_KEY);
        let (mut bad, mut keys) = (0, 0);
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(key) = rekey.try_recv() {
                tx = context(profile, &key);
            }
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if (192..=223).contains(&buf[1]) {
                continue; // SRTCP: not echoed
            }
            match rx.decrypt_rtp(&buf[..n]) {
                Ok(plain) => {
                    keys += usize::from(plain[1] & 0x7f == 101);
                    let wire = tx.encrypt_rtp(&plain).expect("encrypt");
                    let _ = sock.send_to(&wire, from);
                }
                Err(_) => bad += 1,
            }
        }
        (bad, keys)
    })
}

/// Browser -> SRTP PBX (`require`, RTP/SAVP): audio both ways through the
/// PBX's echo with AES_CM_128_HMAC_SHA1_32 (4-byte tags); a re-INVITE with
/// a new PBX key keeps audio flowing; a bad tag and a replay are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_calls_an_srtp_pbx_and_a_re_invite_rekeys() {
    let rig = Rig::start(29000, |c, pbx| {
        c.sip.trunk.uri = Some(format!("sip:{pbx};transport=udp"));
        c.sip.trunk.srtp = SrtpMode::Require;
        // The PBX is on UDP: allowed here, refused by default.
        c.sip.srtp_allow_insecure_signaling = true;
    })
    .await;
    let mut calls = rig.pbx.take_inbound().unwrap();
    let mut sig = rig.signaling(None).await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"s1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let call = tokio::time::timeout(T, calls.recv())
        .await
        .unwrap()
        .unwrap();
    let invite = call.sdp.clone();
    assert!(invite.contains(" RTP/SAVP "), "{invite}");
    let suites: Vec<String> = (1..=3)
        .filter_map(|t| crypto_line(&invite, t))
        .map(|c| c.0)
        .collect();
    assert_eq!(
        suites,
        [
            "AES_CM_128_HMAC_SHA1_80",
            "AES_CM_128_HMAC_SHA1_32",
            "AEAD_AES_128_GCM"
        ]
    );
    let (_, siphon_key) = crypto_line(&invite, 2).unwrap();
    assert_eq!(siphon_key.len(), 30);

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let suite = "AES_CM_128_HMAC_SHA1_32";
    let answer = pbx_sdp(port, "RTP/SAVP", &crypto_attr(2, suite, &PBX_KEY));
    call.handle.answer(answer).await.unwrap();
    let answered = sig.recv_type("answered", T).await.unwrap();
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();

    let (rekey, rekeys) = std_mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let profile = ProtectionProfile::Aes128CmHmacSha1_32;
    let attacker = sock.try_clone().unwrap();
    let echo = spawn_echo(sock, profile, siphon_key.clone(), rekeys, stop.clone());
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 45, "only {back} of 50 frames came back over SRTP");

    // The PBX re-keys; siphon answers with its own key under the same tag.
    let rekeyed = pbx_sdp(port, "RTP/SAVP", &crypto_attr(2, suite, &PBX_KEY2));
    let (code, reanswer) = call.handle.reinvite(rekeyed).await.expect("an answer");
    assert_eq!(code, 200, "{reanswer}");
    assert_eq!(
        crypto_line(&reanswer, 2),
        Some((suite.into(), siphon_key.clone()))
    );
    assert!(reanswer.contains(" RTP/SAVP "), "{reanswer}");
    rekey.send(PBX_KEY2.to_vec()).unwrap();
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(
        back >= 45,
        "only {back} of 50 frames came back after the re-key"
    );
    // siphon's own key presses (RFC 4733) go out protected too.
    sig.send(json!({"type":"dtmf","call_id":"s1","digits":"5"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, Ordering::Relaxed);
    let (bad, keys) = echo.join().unwrap();
    assert_eq!(bad, 0, "siphon's SRTP always unprotected");
    assert!(keys >= 3, "only {keys} key-press packets reached the PBX");

    // A bad tag and a replay from the latched address are counted, not relayed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (auth, replay) = (rig.sip_drops("srtp_auth"), rig.sip_drops("srtp_replay"));
    let gw_media = media_addr(&invite);
    let mut tx = context(profile, &PBX_KEY2);
    let mut forged = tx
        .encrypt_rtp(&rtp(4000, &stamped_frame(1)))
        .unwrap()
        .to_vec();
    *forged.last_mut().unwrap() ^= 1;
    attacker.send_to(&forged, gw_media).unwrap();
    let good = tx
        .encrypt_rtp(&rtp(4001, &stamped_frame(2)))
        .unwrap()
        .to_vec();
    attacker.send_to(&good, gw_media).unwrap();
    attacker.send_to(&good, gw_media).unwrap();
    // Echoed key presses may still be queued ahead of it.
    let genuine = loop {
        let payload = browser.recv_payload(T).await.unwrap();
        if let Some(index) = frame_index(&payload) {
            break index;
        }
    };
    assert_eq!(genuine, 2, "the genuine packet got through");
    let deadline = tokio::time::Instant::now() + T;
    while (rig.sip_drops("srtp_auth"), rig.sip_drops("srtp_replay")) != (auth + 1, replay + 1)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.sip_drops("srtp_auth"), auth + 1);
    assert_eq!(rig.sip_drops("srtp_replay"), replay + 1);
    assert!(
        browser
            .recv_payload(Duration::from_millis(300))
            .await
            .is_err(),
        "neither the forged packet nor the replay reached the browser"
    );

    sig.send(json!({"type":"hangup","call_id":"s1"}))
        .await
        .unwrap();
    assert_eq!(sig.recv_type("hangup", T).await.unwrap()["code"], 200);
    browser.close().await;
}

/// SRTP PBX -> browser (`offer`): siphon answers RTP/SAVP with its own key
/// under the offer's tag, and the PBX's audio comes back through the
/// browser, before and after the PBX re-keys with a re-INVITE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_pbx_calls_the_browser_and_a_re_invite_rekeys() {
    let rig = Rig::start(29100, |c, _| {
        c.sip.inbound.srtp = SrtpMode::Offer;
        c.sip.srtp_allow_insecure_signaling = true;
    })
    .await;
    let mut sig = rig.signaling(Some("alice")).await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let suite = "AES_CM_128_HMAC_SHA1_80";
    let offer = pbx_sdp(port, "RTP/SAVP", &crypto_attr(5, suite, &PBX_KEY));
    let gw = rig.gateway.sip_addr(Transport::Udp).unwrap();
    let invite = OutboundInvite {
        target: format!("sip:2001@{gw}"),
        from_user: "1000".into(),
        from_display: None,
        sdp: offer,
        credentials: None,
        log_id: "pbx".into(),
    };
    let (uac, mut events) = rig.pbx.invite(invite).await.unwrap();
    let incoming = sig.recv_type("incoming", T).await.unwrap();
    let call_id = incoming["call_id"].as_str().unwrap().to_owned();
    let browser = Arc::new(Browser::new(&[Codec::Pcmu]).await.unwrap());
    let answer = browser
        .accept_offer(incoming["sdp"].as_str().unwrap())
        .await
        .unwrap();
    sig.send(json!({"type":"accept","call_id":call_id,"sdp":answer}))
        .await
        .unwrap();
    let sdp = loop {
        match tokio::time::timeout(T, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            UacEvent::Answered { sdp } => break sdp,
            UacEvent::Failed { code, reason } => panic!("{code} {reason}"),
            _ => continue,
        }
    };
    assert!(sdp.contains(" RTP/SAVP "), "{sdp}");
    let (answered_suite, siphon_key) = crypto_line(&sdp, 5).expect("a=crypto:5");
    assert_eq!(answered_suite, suite);
    assert_ne!(siphon_key, PBX_KEY, "siphon's own key");
    browser.wait_connected(T).await.unwrap();

    let echo = {
        let browser = browser.clone();
        tokio::spawn(async move {
            // Until aborted: the re-INVITE between the phases takes a while.
            while let Ok(p) = browser.recv_payload(T).await {
                let _ = browser.send_rtp(&p).await;
            }
        })
    };
    let gw_media = media_addr(&sdp);
    let sock = Arc::new(sock);
    let back = pbx_round_trip(sock.clone(), gw_media, (&PBX_KEY, &siphon_key), 0).await;
    assert!(back >= 50, "only {back} of 60 frames came back over SRTP");

    // The PBX re-keys (a re-INVITE in this call direction too); its RTP
    // stream goes on, under a new key whose index starts again (ROC 0).
    let rekeyed = pbx_sdp(port, "RTP/SAVP", &crypto_attr(5, suite, &PBX_KEY2));
    let (code, reanswer) = uac.reinvite(rekeyed).await.expect("an answer");
    assert_eq!(code, 200, "{reanswer}");
    assert_eq!(
        crypto_line(&reanswer, 5),
        Some((suite.into(), siphon_key.clone()))
    );
    let back = pbx_round_trip(sock, gw_media, (&PBX_KEY2, &siphon_key), 60).await;
    assert!(
        back >= 50,
        "only {back} of 60 frames came back after the re-key"
    );
    uac.hangup().await;
    sig.recv_type("hangup", T).await.unwrap();
    echo.abort();
    browser.close().await;
}

/// The PBX sends 60 stamped frames from sequence number `first`,
/// protected with `pbx_key` (a fresh sender), and counts those that come
/// back through the browser's echo, unprotected with `siphon_key`.
async fn pbx_round_trip(
    sock: Arc<UdpSocket>,
    gw_media: SocketAddr,
    (pbx_key, siphon_key): (&[u8], &[u8]),
    first: u16,
) -> usize {
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    let (mut tx, mut rx) = (context(profile, pbx_key), context(profile, siphon_key));
    tokio::task::spawn_blocking(move || {
        let mut seen = std::collections::HashSet::new();
        let mut buf = [0u8; 2048];
        for i in first..first + 60 {
            let wire = tx.encrypt_rtp(&rtp(i, &stamped_frame(i))).unwrap();
            sock.send_to(&wire, gw_media).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                if let Ok(plain) = rx.decrypt_rtp(&buf[..n]) {
                    seen.extend(
                        plain
                            .get(12..)
                            .and_then(frame_index)
                            .filter(|i| *i >= first),
                    );
                }
            }
        }
        seen.len()
    })
    .await
    .unwrap()
}

/// Offers siphon cannot take get 488 and nothing else: malformed or
/// unsupported a=crypto, SRTP required but not offered, keys over plain
/// signaling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_srtp_offers_get_488() {
    let rig = Rig::start(29200, |c, _| c.sip.inbound.srtp = SrtpMode::Require).await;
    let _sig = rig.signaling(Some("alice")).await;
    let key = STANDARD.encode(PBX_KEY);
    let cases = [
        (
            "RTP/SAVP",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@not-base64@@\r\n".to_owned(),
        ),
        (
            "RTP/SAVP",
            format!("a=crypto:1 AEAD_AES_128_GCM inline:{key}\r\n"),
        ),
        (
            "RTP/SAVP",
            format!("a=crypto:1 F8_128_HMAC_SHA1_80 inline:{key}\r\n"),
        ),
        (
            "RTP/SAVP",
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20\r\n"),
        ),
        (
            "RTP/SAVP",
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:4\r\n"),
        ),
        // Required, not offered.
        ("RTP/AVP", String::new()),
        // Well formed, but the key would go back over plain UDP.
        (
            "RTP/SAVP",
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"),
        ),
    ];
    let gw = rig.gateway.sip_addr(Transport::Udp).unwrap();
    for (proto, crypto) in cases {
        let invite = OutboundInvite {
            target: format!("sip:2001@{gw}"),
            from_user: "1000".into(),
            from_display: None,
            sdp: pbx_sdp(4000, proto, &crypto),
            credentials: None,
            log_id: "pbx".into(),
        };
        let (_uac, mut events) = rig.pbx.invite(invite).await.unwrap();
        let code = loop {
            match tokio::time::timeout(T, events.recv())
                .await
                .unwrap()
                .unwrap()
            {
                UacEvent::Failed { code, .. } => break code,
                UacEvent::Answered { .. } => panic!("{proto} {crypto} was answered"),
                _ => continue,
            }
        };
        assert_eq!(code, 488, "{proto} {crypto}");
    }
    assert_eq!(rig.gateway.active_calls(), 0);
}

/// `offer` toward a PBX without SRTP: RTP/AVP with a=crypto (RFC 8643),
/// answered plainly, and the call goes on in plain RTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_offer_to_a_plain_pbx_falls_back_to_rtp() {
    let rig = Rig::start(29300, |c, pbx| {
        c.sip.trunk.uri = Some(format!("sip:{pbx};transport=udp"));
        c.sip.trunk.srtp = SrtpMode::Offer;
        c.sip.srtp_allow_insecure_signaling = true;
    })
    .await;
    let mut calls = rig.pbx.take_inbound().unwrap();
    let mut sig = rig.signaling(None).await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"p1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let call = tokio::time::timeout(T, calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(call.sdp.contains(" RTP/AVP "), "{}", call.sdp);
    assert!(crypto_line(&call.sdp, 1).is_some(), "{}", call.sdp);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    call.handle
        .answer(pbx_sdp(port, "RTP/AVP", ""))
        .await
        .unwrap();
    let answered = sig.recv_type("answered", T).await.unwrap();
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();
    // A plain echo: what it reflects must be plain RTP to reach the browser.
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let running = stop.clone();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut plain = 0;
        while !running.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                plain += usize::from(n > 12 && frame_index(&buf[12..n]).is_some());
                let _ = sock.send_to(&buf[..n], from);
            }
        }
        plain
    });
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(
        back >= 45,
        "only {back} of 50 frames came back in plain RTP"
    );
    stop.store(true, Ordering::Relaxed);
    assert!(echo.join().unwrap() >= 45, "the PBX received plain RTP");
    browser.close().await;
}

/// The echo extension as an SRTP trunk mirrors siphon's key (it reflects
/// packets unchanged): the relay bench's SDES run rests on this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_extension_mirrors_sdes_keys() {
    let stop = CancellationToken::new();
    let settings = EchoSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ip: "127.0.0.1".parse().unwrap(),
        behavior: EchoBehavior::default(),
    };
    let echo = EchoServer::start(settings, Metrics::new(), stop.clone())
        .await
        .unwrap();
    let addr = echo.local_addr();
    let rig = Rig::start(29400, |c, _| {
        c.sip.trunk.uri = Some(format!("sip:{addr};transport=udp"));
        c.sip.trunk.srtp = SrtpMode::Require;
        c.sip.srtp_allow_insecure_signaling = true;
    })
    .await;
    let mut sig = rig.signaling(None).await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":"e1","to":"1000","sdp":offer}))
        .await
        .unwrap();
    let answered = sig.recv_type("answered", T).await.unwrap();
    browser
        .apply_answer(answered["sdp"].as_str().unwrap())
        .await
        .unwrap();
    browser.wait_connected(T).await.unwrap();
    assert!(echo.last_invite().unwrap().sdp.contains(" RTP/SAVP "));
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 45, "only {back} of 50 frames came back over SRTP");
    assert_eq!(rig.sip_drops("srtp_auth") + rig.sip_drops("srtp_replay"), 0);
    browser.close().await;
    stop.cancel();
}
