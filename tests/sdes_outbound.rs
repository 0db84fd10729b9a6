//! SDES-SRTP on the SIP leg (RFC 4568), browser -> SIP, through a whole
//! in-process siphon: the PBX (tests/common/sdes.rs) protects its media
//! with rtc-srtp; the `webrtc` crate plays the browser.

mod common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use common::sdes::{
    context, crypto_attr, crypto_line, media_addr, pbx_sdp, rtp, Rig, PBX_KEY, PBX_KEY2, T,
};
use common::{frame_index, stamped_frame, Browser, Codec, Signaling};
use rtc_srtp::protection_profile::ProtectionProfile;
use serde_json::json;
use siphon::config::SrtpMode;

use siphon::sip::IncomingCall;
use tokio_util::sync::CancellationToken;

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

/// A browser calls `1000` through the rig's trunk: the signaling socket,
/// the browser, and the INVITE as the PBX received it (not yet answered).
async fn call_the_pbx(rig: &Rig, call_id: &str) -> (Signaling, Browser, IncomingCall) {
    let mut calls = rig.pbx.take_inbound().unwrap();
    let mut sig = rig.signaling(None).await;
    let browser = Browser::new(&[Codec::Pcmu]).await.unwrap();
    let offer = browser.create_offer().await.unwrap();
    sig.send(json!({"type":"call","call_id":call_id,"to":"1000","sdp":offer}))
        .await
        .unwrap();
    let call = tokio::time::timeout(T, calls.recv())
        .await
        .unwrap()
        .unwrap();
    (sig, browser, call)
}

/// Browser -> SRTP PBX (`require`, RTP/SAVP): audio both ways through the
/// PBX's echo with AES_CM_128_HMAC_SHA1_32 (4-byte tags); a re-INVITE with
/// a new PBX key keeps audio flowing; a bad tag and a replay are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_calls_an_srtp_pbx_and_a_re_invite_rekeys() {
    let rig = Rig::start(|c, pbx| {
        c.sip.trunk.uri = Some(format!("sip:{pbx};transport=udp"));
        c.sip.trunk.srtp = SrtpMode::Require;
        // The PBX is on UDP: allowed here, refused by default.
        c.sip.srtp_allow_insecure_signaling = true;
    })
    .await;
    let (mut sig, browser, call) = call_the_pbx(&rig, "s1").await;
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

/// `offer` toward a PBX without SRTP: RTP/AVP with a=crypto (RFC 8643),
/// answered plainly, and the call goes on in plain RTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_offer_to_a_plain_pbx_falls_back_to_rtp() {
    let rig = Rig::start(|c, pbx| {
        c.sip.trunk.uri = Some(format!("sip:{pbx};transport=udp"));
        c.sip.trunk.srtp = SrtpMode::Offer;
        c.sip.srtp_allow_insecure_signaling = true;
    })
    .await;
    let (mut sig, browser, call) = call_the_pbx(&rig, "p1").await;
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
    let (echo, script) = common::recording_echo_uas(&stop).await;
    let addr = echo.local_addr();
    let rig = Rig::start(|c, _| {
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
    assert!(script.last_invite().unwrap().sdp.contains(" RTP/SAVP "));
    let back = common::echo_round_trip(&browser, 50).await;
    assert!(back >= 45, "only {back} of 50 frames came back over SRTP");
    assert_eq!(rig.sip_drops("srtp_auth") + rig.sip_drops("srtp_replay"), 0);
    browser.close().await;
    stop.cancel();
}
