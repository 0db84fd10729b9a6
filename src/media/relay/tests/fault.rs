//! Hostile input and faults on a real relay loop: oversize datagrams,
//! handshake and port metrics.

use std::net::SocketAddr;
use std::time::Duration;

use super::{setup, wait_for_metric, BROWSER_SSRC};
use crate::config::RelayIo;
use crate::media::relay::MediaEvent;
use crate::webrtc::tests::browser::rtp;

/// A datagram larger than a receive buffer: the kernel cuts it to the
/// buffer, and relaying the cut packet would send garbage on.
const OVERSIZE: usize = 2100;

async fn oversize_datagrams_are_dropped_and_counted_not_relayed_cut(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    let mut plain = rtp(1, 0x5151, 9);
    plain[1] = 0;
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    let mut buf = [0u8; 4096];
    s.browser_sock.recv_from(&mut buf).unwrap();

    // From the latched SIP peer: plain RTP the relay would otherwise pass.
    let mut big = rtp(2, 0x5151, 9);
    big[1] = 0;
    big.resize(OVERSIZE, 9);
    s.sip_peer.send_to(&big, rtp_addr).unwrap();
    // From the browser: SRTP whose tag the cut would lose.
    let mut big = rtp(2, BROWSER_SSRC, 3);
    big.resize(OVERSIZE - 10, 3);
    let packet = s.browser.srtp(&big);
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    wait_for_metric(
        &s.metrics,
        "siphon_media_dropped_total{reason=\"oversize\",side=\"relay\"} 2",
    )
    .await;
    s.browser_sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        s.browser_sock.recv_from(&mut buf).is_err(),
        "nothing of the oversize packet reaches the browser"
    );
    s.sip_peer
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(s.sip_peer.recv_from(&mut buf).is_err(), "nor the SIP peer");
    assert!(s
        .metrics
        .render()
        .contains("siphon_media_dropped_total{reason=\"srtp_auth\",side=\"webrtc\"} 0"));

    // The call goes on.
    let packet = s.browser.srtp(&rtp(3, BROWSER_SSRC, 5));
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    s.sip_peer
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (n, _) = s.sip_peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[12..n], &[5u8; 60][..]);
    s.relay.remove(s.leg).await.unwrap();
}

async fn rtcp_garbage_from_the_sip_peer_is_dropped_and_counted(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let rtcp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port + 1).into();
    // RTCP version 2, a length that runs past the datagram.
    s.sip_peer
        .send_to(&[0x81, 200, 0x40, 0, 1, 2, 3, 4, 9, 9], rtcp_addr)
        .unwrap();
    wait_for_metric(
        &s.metrics,
        "siphon_media_dropped_total{reason=\"malformed\",side=\"relay\"} 1",
    )
    .await;
    let mut buf = [0u8; 2048];
    s.browser_sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        s.browser_sock.recv_from(&mut buf).is_err(),
        "nothing relayed"
    );
    // Audio still flows.
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    let mut plain = rtp(1, 0x5151, 9);
    plain[1] = 0;
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    s.browser_sock
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (n, _) = s.browser_sock.recv_from(&mut buf).unwrap();
    let plain = s.browser.rx.as_mut().unwrap().decrypt_rtp(&buf[..n]);
    assert!(plain.is_ok());
    s.relay.remove(s.leg).await.unwrap();
}

async fn dtls_handshakes_are_counted_by_outcome(io: RelayIo) {
    use crate::webrtc::tests::browser::{connect_over, Browser};
    use crate::webrtc::Identity;
    // A good one: the setup's browser.
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    wait_for_metric(&s.metrics, "siphon_dtls_handshakes_total{outcome=\"ok\"} 1").await;

    // A browser whose certificate is not the one its offer named.
    let sock = super::udp();
    let mut browser = Browser::new(sock.local_addr().unwrap(), std::time::Instant::now(), false);
    let mut leg = browser.leg_config();
    leg.remote_fingerprint = Identity::generate().unwrap().fingerprint;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let add = crate::media::relay::AddCall {
        leg,
        ports: s.pool.allocate().unwrap(),
        ssrc_to_webrtc: 0x3333,
        ssrc_to_sip: 0x4444,
        events: tx,
        media_timeout: None,
    };
    let id = s.relay.add(add).await.unwrap();
    let server = s.relay.webrtc_addr();
    // The browser never gets keys: connect_over gives up (a panic in its task).
    let _ = tokio::task::spawn_blocking(move || connect_over(&mut browser, &sock, server)).await;
    let failed = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert!(
        matches!(failed, Ok(Some(MediaEvent::WebRtcFailed(_)))),
        "{failed:?}"
    );
    wait_for_metric(
        &s.metrics,
        "siphon_dtls_handshakes_total{outcome=\"failed\"} 1",
    )
    .await;
    assert!(s
        .metrics
        .render()
        .contains("siphon_dtls_handshakes_total{outcome=\"ok\"} 1"));
    s.relay.remove(id).await.unwrap();
    s.relay.remove(s.leg).await.unwrap();
}

async fn a_panicking_loop_ends_its_calls_and_clears_ready(io: RelayIo) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    // The setup's loop has its own ready flag; this one starts ready too.
    let ready = Arc::new(AtomicBool::new(true));
    let metrics = crate::metrics::Metrics::new();
    let relay = crate::media::relay::RelayHandle::start(
        1,
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(crate::webrtc::Identity::generate().unwrap()),
        &metrics,
        crate::media::relay::Tuning {
            io,
            ..Default::default()
        },
        ready.clone(),
    )
    .unwrap();
    let browser = crate::webrtc::tests::browser::Browser::new(
        "127.0.0.1:9".parse().unwrap(),
        std::time::Instant::now(),
        false,
    );
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let free = s.pool.free_count();
    let add = crate::media::relay::AddCall {
        leg: browser.leg_config(),
        ports: s.pool.allocate().unwrap(),
        ssrc_to_webrtc: 0x3333,
        ssrc_to_sip: 0x4444,
        events: tx,
        media_timeout: None,
    };
    let leg = relay.add(add).await.unwrap();
    relay.inject_panic();
    let ev = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert!(
        matches!(&ev, Ok(Some(MediaEvent::RelayFailed(why))) if why.contains("panicked")),
        "{ev:?}"
    );
    assert!(!ready.load(Ordering::Relaxed), "/readyz turns 503");
    assert!(!relay.alive());
    assert!(metrics
        .render()
        .contains("siphon_relay_loop_failures_total 1"));
    // The dead loop still releases the call's port, and takes no new call.
    relay.remove(leg).await.unwrap();
    assert_eq!(s.pool.free_count(), free);
    let add = crate::media::relay::AddCall {
        leg: browser.leg_config(),
        ports: s.pool.allocate().unwrap(),
        ssrc_to_webrtc: 1,
        ssrc_to_sip: 2,
        events: tokio::sync::mpsc::unbounded_channel().0,
        media_timeout: None,
    };
    assert!(matches!(
        relay.add(add).await,
        Err(crate::media::relay::RelayError::Stopped)
    ));
    assert_eq!(s.pool.free_count(), free, "the refused call's port is back");
    // The other loop was never touched.
    assert!(s.relay.alive());
    s.relay.remove(s.leg).await.unwrap();
}

async fn a_sip_peer_is_heard_again_after_a_forged_ssrc_flood(io: RelayIo) {
    use crate::media::SipSrtp;
    use crate::srtp::{MasterKey, SrtpContext, SrtpProfile};
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let profile = SrtpProfile::Aes128CmHmacSha1_80;
    let key = |b: u8| vec![b; profile.key_len() + profile.salt_len()];
    let peer = s.sip_peer.local_addr().unwrap();
    let mut media = crate::media::test_media();
    media.remote_rtp = peer;
    media.remote_rtcp = SocketAddr::new(peer.ip(), peer.port() + 1);
    media.to_sip.insert(111, 0);
    media.to_webrtc.insert(0, 111);
    media.srtp = Some(SipSrtp {
        profile,
        tx: MasterKey::new(key(1)),
        rx: MasterKey::new(key(2)),
    });
    s.relay.configure(s.leg, media).unwrap();
    let provider = rtc_crypto::default_provider().unwrap();
    let mut tx = SrtpContext::new(profile, &key(2), provider.crypto()).unwrap();
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    // Forged SRTP from the peer's own address, each with a new SSRC: more
    // than the stranger budget.
    for ssrc in 0..400u32 {
        let mut forged = rtp(1, 0x7000_0000 + ssrc, 1);
        forged[1] = 0;
        forged.extend_from_slice(&[0u8; 10]);
        s.sip_peer.send_to(&forged, rtp_addr).unwrap();
        if ssrc % 20 == 0 {
            // Paced so the socket's receive queue holds them all.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let refused = || {
        let text = s.metrics.render();
        let needle = "siphon_media_dropped_total{reason=\"srtp_auth\",side=\"sip\"} ";
        text.lines()
            .find_map(|l| l.strip_prefix(needle))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while refused() < 400 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused(), 400, "every forged packet refused");
    // The genuine stream, on a new SSRC, gets through once the budget has
    // refilled a little: sent every 100 ms until the browser hears it.
    s.browser_sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut heard = false;
    for seq in 0..30u16 {
        let mut plain = rtp(seq, 0x5151, 9);
        plain[1] = 0;
        plain.resize(plain.len() + 10, 0);
        let n = tx.protect_rtp(&mut plain, 72).unwrap();
        s.sip_peer.send_to(&plain[..n], rtp_addr).unwrap();
        if s.browser_sock.recv_from(&mut buf).is_ok() {
            heard = true;
            break;
        }
    }
    assert!(heard, "the SIP peer's new SSRC never got through");
    s.relay.remove(s.leg).await.unwrap();
}

on_both_paths!(
    oversize_datagrams_are_dropped_and_counted_not_relayed_cut,
    rtcp_garbage_from_the_sip_peer_is_dropped_and_counted,
    dtls_handshakes_are_counted_by_outcome,
    a_panicking_loop_ends_its_calls_and_clears_ready,
    a_sip_peer_is_heard_again_after_a_forged_ssrc_flood,
);
