//! A real relay loop thread between a browser stand-in (ICE, DTLS, SRTP over
//! a UDP socket) and a plain UDP socket playing the SIP peer.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AddCall, MediaEvent, RelayHandle, SipMedia};
use crate::config::RelayIo;
use crate::media::{PortPool, PtMap};
use crate::metrics::Metrics;
use crate::webrtc::tests::browser::{connect_over, rtp, Browser};
use crate::webrtc::Identity;

pub(super) const BROWSER_SSRC: u32 = 0xB0B0;

/// Each listed test (an `async fn(RelayIo)` of the module) runs once on
/// each IO path. Where this kernel (or its seccomp profile) forbids
/// io_uring, its half says so and passes: CI proves the path elsewhere.
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {
        mod epoll {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(crate::config::RelayIo::Epoll).await
                }
            )*
        }
        mod io_uring {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    if $crate::media::relay::tests::io_uring_here() {
                        super::$name(crate::config::RelayIo::IoUring).await
                    }
                }
            )*
        }
    };
}

mod fault;
mod quality;

/// Whether io_uring works here; says why not when it does not.
pub(super) fn io_uring_here() -> bool {
    match super::uring::probe() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("io_uring unavailable here ({e}): tested on epoll only");
            false
        }
    }
}

pub(super) struct Setup {
    pub(super) relay: RelayHandle,
    pub(super) metrics: Metrics,
    pub(super) pool: PortPool,
    pub(super) browser: Browser,
    pub(super) browser_sock: UdpSocket,
    pub(super) sip_peer: UdpSocket,
    pub(super) rtp_port: u16,
    pub(super) leg: u64,
    pub(super) events: tokio::sync::mpsc::UnboundedReceiver<MediaEvent>,
}

pub(super) fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

pub(super) async fn setup(io: RelayIo) -> Setup {
    setup_with(io, None).await
}

/// A relay loop with one call, its SIP side on 10 RTP ports from the
/// test-port allocator.
pub(super) async fn setup_with(io: RelayIo, media_timeout: Option<Duration>) -> Setup {
    let port_base = siphon_testkit::ports::block(10);
    let metrics = Metrics::new();
    let identity = Arc::new(Identity::generate().unwrap());
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tuning = super::Tuning {
        timing_sample: 1,
        io,
        ..Default::default()
    };
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let relay = RelayHandle::start(0, bind, identity, &metrics, tuning, ready).unwrap();
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), port_base, port_base + 9);
    let browser_sock = udp();
    let sip_peer = udp();
    let mut browser = Browser::new(browser_sock.local_addr().unwrap(), Instant::now(), false);
    let ports = pool.allocate().unwrap();
    let rtp_port = ports.port();
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let add = AddCall {
        leg: browser.leg_config(),
        ports,
        ssrc_to_webrtc: 0x1111,
        ssrc_to_sip: 0x2222,
        events: tx,
        media_timeout,
    };
    let leg = relay.add(add).await.unwrap();
    let (mut to_sip, mut to_webrtc) = (PtMap::empty(), PtMap::empty());
    to_sip.insert(111, 0);
    to_webrtc.insert(0, 111);
    let peer = sip_peer.local_addr().unwrap();
    let media = SipMedia {
        remote_rtp: peer,
        remote_rtcp: SocketAddr::new(peer.ip(), peer.port() + 1),
        rtcp_mux: false,
        to_sip,
        to_webrtc,
        ts_step: 160,
        clock_rate: 8000,
        webrtc_dtmf: Some((126, 8000)),
        sip_dtmf: Some((101, 8000)),
        webrtc_dtmf_convert: Some((110, 48000)),
        send_to_sip: true,
        send_to_webrtc: true,
        held: false,
        srtp: None,
    };
    relay.configure(leg, media).unwrap();
    let server = relay.webrtc_addr();
    let sock = browser_sock.try_clone().unwrap();
    let browser = tokio::task::spawn_blocking(move || {
        connect_over(&mut browser, &sock, server);
        browser
    })
    .await
    .unwrap();
    Setup {
        relay,
        metrics,
        pool,
        browser,
        browser_sock,
        sip_peer,
        rtp_port,
        leg,
        events,
    }
}

fn header(p: &[u8]) -> (u8, u32) {
    (p[1] & 0x7f, u32::from_be_bytes([p[8], p[9], p[10], p[11]]))
}

/// Nothing reaches `sock` for 300 ms.
pub(super) fn assert_silent(sock: &UdpSocket, why: &str) {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(sock.recv_from(&mut [0u8; 2048]).is_err(), "{why}");
}

pub(super) async fn wait_for_metric(metrics: &Metrics, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !metrics.render().contains(needle) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.render().contains(needle),
        "metric `{needle}` not found"
    );
}

async fn relays_both_ways_rewriting_headers(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let mut buf = [0u8; 2048];

    // Browser -> SIP: decrypted, PT 111 -> 0, SSRC replaced, payload intact.
    let packet = s.browser.srtp(&rtp(1, BROWSER_SSRC, 7));
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    let (n, from) = s.sip_peer.recv_from(&mut buf).unwrap();
    assert_eq!(from.port(), s.rtp_port, "sent from the call's RTP port");
    assert_eq!(header(&buf[..n]), (0, 0x2222));
    assert_eq!(&buf[12..n], &[7u8; 60][..]);

    // SIP -> browser: latched, PT 0 -> 111, encrypted for the browser.
    let mut plain = rtp(500, 0x5151, 9);
    plain[1] = 0;
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    assert_eq!(
        s.events.recv().await,
        Some(MediaEvent::SipLatched(s.sip_peer.local_addr().unwrap()))
    );
    let (n, _) = s.browser_sock.recv_from(&mut buf).unwrap();
    let rx = s.browser.rx.as_mut().unwrap();
    let decrypted = rx.decrypt_rtp(&buf[..n]).unwrap();
    assert_eq!(header(&decrypted), (111, 0x1111));
    assert_eq!(&decrypted[12..], &[9u8; 60][..]);

    let free = s.pool.free_count();
    let stats = s.relay.remove(s.leg).await.unwrap();
    assert_eq!((stats.to_sip_packets, stats.to_webrtc_packets), (1, 1));
    assert_eq!(s.pool.free_count(), free + 1, "port back in the pool");
    wait_for_metric(
        &s.metrics,
        "siphon_media_packets_total{flow=\"webrtc_to_sip\",kind=\"rtp\"} 1",
    )
    .await;
}

async fn bad_packets_are_dropped_and_counted(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    // Not STUN, DTLS or SRTP.
    s.browser_sock
        .send_to(&[0x42; 40], s.relay.webrtc_addr())
        .unwrap();
    // SRTP with a broken tag.
    let mut forged = s.browser.srtp(&rtp(2, BROWSER_SSRC, 1));
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    s.browser_sock
        .send_to(&forged, s.relay.webrtc_addr())
        .unwrap();
    // A second SIP source after the first one latched: the call's socket
    // is connected to the first, so the kernel refuses the second (it
    // hears ICMP port unreachable, as a connected socket of its own).
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    let mut plain = rtp(1, 0x5151, 1);
    plain[1] = 0;
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    let peer = s.sip_peer.local_addr().unwrap();
    assert_eq!(s.events.recv().await, Some(MediaEvent::SipLatched(peer)));
    let stranger = udp();
    stranger.connect(rtp_addr).unwrap();
    stranger.send(&plain).unwrap();
    let refused = stranger.recv(&mut [0u8; 64]).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // A payload type nobody negotiated.
    let mut cn = rtp(3, BROWSER_SSRC, 1);
    cn[1] = 13;
    let packet = s.browser.srtp(&cn);
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    for needle in [
        "reason=\"not_webrtc\",side=\"webrtc\"} 1",
        "reason=\"srtp_auth\",side=\"webrtc\"} 1",
        "reason=\"unknown_payload_type\",side=\"relay\"} 1",
    ] {
        wait_for_metric(&s.metrics, needle).await;
    }
    // The call still works after all that.
    let packet = s.browser.srtp(&rtp(4, BROWSER_SSRC, 5));
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = s.sip_peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[12..n], &[5u8; 60][..]);
}

async fn a_held_side_gets_rtcp_but_no_rtp(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let peer = s.sip_peer.local_addr().unwrap();
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    // Both sides hold; RTCP shares the RTP port.
    let mut media = crate::media::test_media();
    media.remote_rtp = peer;
    media.remote_rtcp = peer;
    media.rtcp_mux = true;
    media.to_sip.insert(111, 0);
    media.to_webrtc.insert(0, 111);
    media.send_to_sip = false;
    media.send_to_webrtc = false;
    media.held = true;
    s.relay.configure(s.leg, media).unwrap();
    let mut buf = [0u8; 2048];

    let packet = s.browser.srtp(&rtp(1, BROWSER_SSRC, 7));
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    let report = s
        .browser
        .srtcp(&crate::webrtc::tests::browser::rtcp(BROWSER_SSRC));
    s.browser_sock
        .send_to(&report, s.relay.webrtc_addr())
        .unwrap();
    let (n, _) = s.sip_peer.recv_from(&mut buf).unwrap();
    assert_eq!(
        buf[1],
        201,
        "the RTCP receiver report, not the RTP: {:?}",
        &buf[..n]
    );

    // The SIP peer's RTP is held back from the browser too.
    let mut plain = rtp(500, 0x5151, 9);
    plain[1] = 0;
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    assert_silent(&s.browser_sock, "no RTP to a holding browser");
    wait_for_metric(
        &s.metrics,
        "siphon_media_dropped_total{reason=\"held\",side=\"relay\"} 2",
    )
    .await;
    s.relay.remove(s.leg).await.unwrap();
}

async fn a_silent_sip_peer_times_the_call_out_once(io: RelayIo) {
    let mut s = setup_with(io, Some(Duration::from_millis(1200))).await;
    let (mut browser, sock) = (s.browser, s.browser_sock.try_clone().unwrap());
    let server = s.relay.webrtc_addr();
    // The browser keeps talking; the SIP peer never answers with media.
    let talker = tokio::task::spawn_blocking(move || {
        for seq in 0..30u16 {
            let packet = browser.srtp(&rtp(seq, BROWSER_SSRC, 1));
            sock.send_to(&packet, server).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut timeouts = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, s.events.recv()).await {
        if let MediaEvent::MediaTimeout(side) = ev {
            timeouts.push(side);
        }
    }
    talker.await.unwrap();
    assert_eq!(
        timeouts,
        [super::SilentSide::Sip],
        "reported once, naming the SIP side"
    );
    wait_for_metric(&s.metrics, "siphon_media_timeouts_total{side=\"sip\"} 1").await;
    s.relay.remove(s.leg).await.unwrap();
}

async fn generated_key_presses_reach_each_side_as_rfc4733(io: RelayIo) {
    use super::Press;
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let mut buf = [0u8; 2048];
    // A press is a start, updates while it lasts (how many depends on when
    // the loop wakes), and three ends: collect up to the third end.
    let collect = |sock: &UdpSocket, buf: &mut [u8], decrypt: &mut dyn FnMut(&[u8]) -> Vec<u8>| {
        let mut got: Vec<Vec<u8>> = Vec::new();
        while let Ok((n, _)) = sock.recv_from(buf) {
            got.push(decrypt(&buf[..n]));
            if got
                .iter()
                .filter(|p| p.len() > 13 && p[13] & 0x80 != 0)
                .count()
                == 3
            {
                break;
            }
        }
        got
    };
    let ends = |packets: &[Vec<u8>]| {
        packets
            .iter()
            .filter(|p| p.len() > 13 && p[13] & 0x80 != 0)
            .count()
    };

    // Toward SIP: plain RTP on the SIP side's telephone-event PT (101).
    let press = Press {
        to_sip: true,
        code: 5,
        duration_ms: 100,
    };
    s.relay.dtmf(s.leg, press).unwrap();
    let to_sip = collect(&s.sip_peer, &mut buf, &mut |p| p.to_vec());
    assert!(to_sip.len() >= 4, "start, updates, three ends: {to_sip:?}");
    assert!(to_sip
        .iter()
        .all(|p| header(p) == (101, 0x2222) && p[12] == 5));
    assert!(to_sip[0][1] & 0x80 != 0, "marker on the first packet");
    let last_three = to_sip.len() - 3;
    assert!(
        to_sip[last_three..].iter().all(|p| p[13] & 0x80 != 0) && ends(&to_sip) == 3,
        "E bit on the last three, and only there"
    );

    // Toward the browser: SRTP on the browser's telephone-event PT (126).
    let press = Press {
        to_sip: false,
        code: 11,
        duration_ms: 100,
    };
    s.relay.dtmf(s.leg, press).unwrap();
    let rx = s.browser.rx.as_mut().unwrap();
    let to_webrtc = collect(&s.browser_sock, &mut buf, &mut |p| {
        rx.decrypt_rtp(p).map(|d| d.to_vec()).unwrap_or_default()
    });
    assert!(to_webrtc.len() >= 4, "start, updates, three ends");
    assert_eq!(ends(&to_webrtc), 3);
    assert!(to_webrtc
        .iter()
        .all(|p| header(p) == (126, 0x1111) && p[12] == 11));
    s.relay.remove(s.leg).await.unwrap();
}

async fn browser_key_presses_at_48_khz_reach_sip_at_8_khz(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    // Key 7 for 100 ms at 48 kHz on PT 110: start, an update, three ends.
    for (seq, end, duration) in [
        (1u16, false, 0u16),
        (2, false, 2400),
        (3, true, 4800),
        (4, true, 4800),
        (5, true, 4800),
    ] {
        let mut p = rtp(seq, BROWSER_SSRC, 0);
        p.truncate(12);
        p[1] = 110;
        p[4..8].copy_from_slice(&96_000u32.to_be_bytes());
        p.extend(crate::media::dtmf::payload(7, end, duration));
        let packet = s.browser.srtp(&p);
        s.browser_sock
            .send_to(&packet, s.relay.webrtc_addr())
            .unwrap();
    }
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while let Ok((n, _)) = s.sip_peer.recv_from(&mut buf) {
        got.push(buf[..n].to_vec());
        if got.len() == 5 {
            break;
        }
    }
    assert_eq!(
        got.len(),
        5,
        "siphon's own press: start, update, three ends"
    );
    assert!(got.iter().all(|p| header(p) == (101, 0x2222) && p[12] == 7));
    let end = crate::media::dtmf::parse(&got[4][12..]).unwrap();
    assert_eq!((end.end, end.duration), (true, 800), "100 ms at 8 kHz");
    s.relay.remove(s.leg).await.unwrap();
}

async fn browser_key_presses_toward_a_sip_side_without_events_are_reported(io: RelayIo) {
    let mut media = crate::media::test_media();
    media.sip_dtmf = None;
    media.webrtc_dtmf_convert = Some((110, 48000));
    let mut s = setup(io).await;
    s.relay.configure(s.leg, media).unwrap();
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    for (seq, end) in [(1u16, false), (2, true), (3, true), (4, true)] {
        let mut p = rtp(seq, BROWSER_SSRC, 0);
        p.truncate(12);
        p[1] = 110;
        p[4..8].copy_from_slice(&48_000u32.to_be_bytes());
        p.extend(crate::media::dtmf::payload(11, end, 9600));
        let packet = s.browser.srtp(&p);
        s.browser_sock
            .send_to(&packet, s.relay.webrtc_addr())
            .unwrap();
    }
    let mut keys = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, s.events.recv()).await {
        if let MediaEvent::BrowserKey(code, ms) = ev {
            keys.push((code, ms));
        }
    }
    assert_eq!(keys, [(11, 200)], "one key, 200 ms, for SIP INFO");
    s.relay.remove(s.leg).await.unwrap();
}

/// A call whose SIP side latched `sip_peer`, then moved its media to a new
/// socket (a re-offer with another address). Returns the setup, the new
/// socket, the relay's RTP address and the old peer's plain RTP packet,
/// once siphon sends to the new address before it sent anything.
async fn moved_sip_side(io: RelayIo) -> (Setup, UdpSocket, SocketAddr, Vec<u8>) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    let mut plain = rtp(500, 0x5151, 9);
    plain[1] = 0;
    let mut buf = [0u8; 2048];
    let old = s.sip_peer.local_addr().unwrap();
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    assert_eq!(s.events.recv().await, Some(MediaEvent::SipLatched(old)));
    s.browser_sock.recv_from(&mut buf).unwrap();

    // The peer moves: a re-offer names its new address.
    let moved = udp();
    let new = moved.local_addr().unwrap();
    let mut media = crate::media::test_media();
    media.remote_rtp = new;
    media.remote_rtcp = SocketAddr::new(new.ip(), new.port() + 1);
    media.to_sip.insert(111, 0);
    media.to_webrtc.insert(0, 111);
    s.relay.configure(s.leg, media).unwrap();
    // Toward SIP, packets go to the new address before it sends anything.
    let packet = s.browser.srtp(&rtp(2, BROWSER_SSRC, 7));
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    let (n, _) = moved.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[12..n], &[7u8; 60][..]);
    (s, moved, rtp_addr, plain)
}

/// A re-offer that moves the SIP side's media to another address lets the
/// latch go: the new source is latched (and the old one refused) from then on.
async fn a_sip_side_that_moves_its_media_is_latched_again(io: RelayIo) {
    let (mut s, moved, rtp_addr, mut plain) = moved_sip_side(io).await;
    let mut buf = [0u8; 2048];
    // Its first packet latches it, and reaches the browser.
    plain[3] = 1;
    moved.send_to(&plain, rtp_addr).unwrap();
    let new = moved.local_addr().unwrap();
    assert_eq!(s.events.recv().await, Some(MediaEvent::SipLatched(new)));
    s.browser_sock.recv_from(&mut buf).unwrap();
    // The old source is refused now.
    plain[3] = 2;
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    assert_silent(&s.browser_sock, "nothing from the old source");
    let stats = s.relay.remove(s.leg).await.unwrap();
    assert_eq!((stats.to_sip_packets, stats.to_webrtc_packets), (1, 2));
}

/// A call taken over by another dialog (INVITE with Replaces): the old
/// party's packets still in flight after the move must not take the latch
/// back, or the new party would be refused for the rest of the call.
async fn the_source_left_by_a_move_cannot_latch_again_before_the_new_one(io: RelayIo) {
    let (mut s, moved, rtp_addr, mut plain) = moved_sip_side(io).await;
    let mut buf = [0u8; 2048];
    // The old party's last packet, sent before it heard its BYE.
    plain[3] = 1;
    s.sip_peer.send_to(&plain, rtp_addr).unwrap();
    assert_silent(&s.browser_sock, "the old party's straggler is not relayed");
    // The new party's first packet latches it and reaches the browser.
    let mut theirs = rtp(100, 0x6262, 5);
    theirs[1] = 0;
    moved.send_to(&theirs, rtp_addr).unwrap();
    let new = moved.local_addr().unwrap();
    assert_eq!(s.events.recv().await, Some(MediaEvent::SipLatched(new)));
    s.browser_sock.recv_from(&mut buf).unwrap();
    let stats = s.relay.remove(s.leg).await.unwrap();
    assert_eq!(stats.to_webrtc_packets, 2);
}

/// A stopped loop leaves its ports free at once: a restart binds them again
/// (the kernel tears an io_uring ring down in the background, so the ring
/// must let go of its sockets first), even with a call on it.
async fn a_stopped_loop_frees_its_ports_at_once(io: RelayIo) {
    let s = setup(io).await;
    let webrtc = s.relay.webrtc_addr();
    let rtp: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    drop(s.relay);
    drop(s.pool);
    UdpSocket::bind(webrtc).expect("the WebRTC port is free");
    UdpSocket::bind(rtp).expect("the call's RTP port is free");
}

on_both_paths!(
    relays_both_ways_rewriting_headers,
    a_stopped_loop_frees_its_ports_at_once,
    a_sip_side_that_moves_its_media_is_latched_again,
    the_source_left_by_a_move_cannot_latch_again_before_the_new_one,
    bad_packets_are_dropped_and_counted,
    a_held_side_gets_rtcp_but_no_rtp,
    a_silent_sip_peer_times_the_call_out_once,
    generated_key_presses_reach_each_side_as_rfc4733,
    browser_key_presses_at_48_khz_reach_sip_at_8_khz,
    browser_key_presses_toward_a_sip_side_without_events_are_reported,
);
