//! SDES-SRTP on the SIP leg (RFC 4568), SIP -> browser, through a whole
//! in-process siphon: the PBX (tests/common/sdes.rs) protects its media
//! with rtc-srtp; the `webrtc` crate plays the browser that answers.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::sdes::{
    context, crypto_attr, crypto_line, media_addr, pbx_sdp, rtp, Rig, PBX_KEY, PBX_KEY2, T,
};
use common::{frame_index, stamped_frame};
use rtc_srtp::protection_profile::ProtectionProfile;
use siphon::config::SrtpMode;
use siphon::sip::{OutboundInvite, Transport, UacEvent};

/// SRTP PBX -> browser (`offer`): siphon answers RTP/SAVP with its own key
/// under the offer's tag, and the PBX's audio comes back through the
/// browser, before and after the PBX re-keys with a re-INVITE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_pbx_calls_the_browser_and_a_re_invite_rekeys() {
    let rig = Rig::start(|c, _| {
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
        failover: Vec::new(),
        response_wait: None,
        headers: Vec::new(),
    };
    let (uac, mut events) = rig.pbx.invite(invite).await.unwrap();
    let (browser, _) = common::accept_incoming(&mut sig).await;
    let sdp = common::uac_answer(&mut events).await;
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
    let rig = Rig::start(|c, _| c.sip.inbound.srtp = SrtpMode::Require).await;
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
            failover: Vec::new(),
            response_wait: None,
            headers: Vec::new(),
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
