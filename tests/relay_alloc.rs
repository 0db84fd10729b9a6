//! The relay loop allocates nothing per packet, SDES-SRTP on the SIP leg
//! included: allocations on the `relay-*` threads are counted (a global
//! allocator wrapper) while a call relays a few hundred packets.
//!
//! The loop also does control work that allocates (answering the
//! browser's ICE consent checks with fresh datagrams, among others): a
//! plain call's window is measured beside the SDES one, and SDES must add
//! nothing that grows with the packet count.
//!
//! RTCP goes both ways in the window too (the browser's sender reports,
//! echoed back), and the call's quality figures are read every second, so
//! the per-call quality state is fed and read as in a real call.

mod common;
mod counting;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use common::Signaling;
use siphon::config::SrtpMode;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use tokio_util::sync::CancellationToken;

/// Frames sent each way in the measured window.
const FRAMES: usize = 150;

static RELAY_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// 0: not looked at yet, 1: a relay loop thread, 2: any other.
    static KIND: Cell<u8> = const { Cell::new(0) };
}

fn on_relay_thread(kind: &Cell<u8>) -> bool {
    if kind.get() == 0 {
        // An allocation while the name is looked up counts as another thread's.
        kind.set(2);
        let relay = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("relay-"));
        kind.set(if relay { 1 } else { 2 });
    }
    kind.get() == 1
}

fn count() {
    if KIND.try_with(on_relay_thread).unwrap_or(false) {
        RELAY_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Allocations are counted by `count`.
#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting(count);

/// Relay-thread allocations while `FRAMES` frames go each way on an
/// answered call to an echo trunk with `srtp`.
async fn relay_allocations(srtp: SrtpMode) -> u64 {
    let stop = CancellationToken::new();
    let (echo, script) = common::recording_echo_uas(&stop).await;
    let mut config = common::loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{};transport=udp", echo.local_addr()));
    config.sip.trunk.srtp = srtp;
    config.sip.srtp_allow_insecure_signaling = true;
    config.media.quality_interval_secs = 1;
    let metrics = Metrics::new();
    let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
    let url = format!("ws://{}/ws", gateway.http_addr());
    let mut sig = Signaling::connect(&url).await.unwrap();
    let browser = common::answered_call(&mut sig, "a1").await;
    let sdp = script.last_invite().unwrap().sdp;
    assert_eq!(sdp.contains("a=crypto:"), srtp != SrtpMode::Off, "{sdp}");
    // Warm up: streams, replay windows and send batches are set up once.
    assert!(common::echo_round_trip(&browser, 25).await >= 20);
    let before = RELAY_ALLOCATIONS.load(Ordering::Relaxed);
    let reports = async {
        // An SR every 200 ms; each answers the one before (echoed back).
        for i in 1..=(FRAMES as u64 / 10) {
            tokio::time::sleep(common::FRAME_INTERVAL * 10).await;
            let lsr = ((i - 1) << 16) as u32;
            let _ = browser.send_sender_report(i << 32, 0x1234, lsr).await;
        }
    };
    let (back, ()) = tokio::join!(common::echo_round_trip(&browser, FRAMES), reports);
    let allocations = RELAY_ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(back >= FRAMES * 9 / 10, "only {back} of {FRAMES} came back");
    // The browser's SRs went to SIP and came back (flushed within 500 ms).
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for flow in ["webrtc_to_sip", "sip_to_webrtc"] {
        let line = format!("siphon_media_packets_total{{flow=\"{flow}\",kind=\"rtcp\"}}");
        let rtcp = common::counter(&metrics, &line);
        assert!(rtcp >= 10, "{line} {rtcp}");
    }
    browser.close().await;
    stop.cancel();
    allocations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_allocates_nothing_per_packet_with_sdes_on_the_sip_leg() {
    let plain = relay_allocations(SrtpMode::Off).await;
    let sdes = relay_allocations(SrtpMode::Require).await;
    // Each frame is relayed twice: to the SIP side, and back to the browser.
    let packets = 2 * FRAMES as u64;
    println!("relay-thread allocations over {packets} relayed packets: plain {plain}, SDES {sdes}");
    // One allocation per packet on the SIP leg would add hundreds.
    assert!(
        sdes <= plain + packets / 20,
        "SDES: {sdes} allocations against {plain} for plain RTP, {packets} packets"
    );
    assert!(plain < packets / 4, "plain RTP: {plain} allocations");
}
