//! The loop's quality figures for a call: loss from sequence gaps each
//! way, and the browser leg's round trip from an SR passed toward it.

use std::net::SocketAddr;
use std::time::Duration;

use super::{rtp, setup, MediaEvent, BROWSER_SSRC};
use crate::config::RelayIo;
use crate::media::quality::{block, rr, sr};

/// SSRC of the SIP peer's stream.
const PEER_SSRC: u32 = 0x5151;

async fn loss_each_way_and_a_round_trip(io: RelayIo) {
    let mut s = setup(io).await;
    assert_eq!(s.events.recv().await, Some(MediaEvent::WebRtcConnected));
    let mut buf = [0u8; 2048];
    // The browser sends 1..=30 but for every 10th: 3 lost of 30 ...
    for seq in (1..=30u16).filter(|n| n % 10 != 5) {
        let packet = s.browser.srtp(&rtp(seq, BROWSER_SSRC, 7));
        s.browser_sock
            .send_to(&packet, s.relay.webrtc_addr())
            .unwrap();
        s.sip_peer.recv_from(&mut buf).unwrap();
    }
    // ... and the SIP peer 100..=119, missing two.
    let rtp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port).into();
    for seq in (100..120u16).filter(|n| *n != 104 && *n != 110) {
        let mut plain = rtp(seq, PEER_SSRC, 9);
        plain[1] = 0;
        s.sip_peer.send_to(&plain, rtp_addr).unwrap();
        s.browser_sock.recv_from(&mut buf).unwrap();
    }
    // The peer's SR goes on to the browser; the browser's RR about
    // siphon's stream to it (0x1111) answers it, having held it ~10 ms.
    let rtcp_addr: SocketAddr = ([127, 0, 0, 1], s.rtp_port + 1).into();
    s.sip_peer
        .send_to(&sr(PEER_SSRC, 0x00AB_CDEF, &[]), rtcp_addr)
        .unwrap();
    s.browser_sock.recv_from(&mut buf).unwrap();
    let answer = rr(BROWSER_SSRC, &[block(0x1111, 2, 0x00AB_CDEF, 655)]);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let packet = s.browser.srtcp(&answer);
    s.browser_sock
        .send_to(&packet, s.relay.webrtc_addr())
        .unwrap();
    s.sip_peer.recv_from(&mut buf).unwrap();

    let q = s.relay.quality(s.leg).await.unwrap();
    let to_sip = q.to_sip.received;
    assert_eq!((to_sip.received, to_sip.lost), (27, 3), "{q:?}");
    let to_browser = q.to_browser.received;
    assert_eq!((to_browser.received, to_browser.lost), (18, 2), "{q:?}");
    let rtt = q.to_browser.rtt_us.expect("a round trip");
    assert!((10_000..2_000_000).contains(&rtt), "{rtt}");
    assert_eq!(q.to_browser.far.map(|f| f.lost), Some(2));
    assert_eq!(q.to_sip.rtt_us, None, "the SIP peer reported nothing");
    // The same figures come back with the call.
    let stats = s.relay.remove(s.leg).await.unwrap();
    assert_eq!(stats.quality.to_sip.received, to_sip);
    let gone = s.relay.quality(s.leg).await.unwrap();
    assert_eq!(gone, Default::default());
}

on_both_paths!(loss_each_way_and_a_round_trip);
