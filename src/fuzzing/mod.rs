//! Entry points for the fuzz targets under `fuzz/`: one function per parser
//! that reads network input, each taking the raw bytes a peer could send.
//!
//! Only built for tests and with the `fuzzing` feature: the parsers stay
//! `pub(crate)`, and this thin layer is the one door the fuzzer gets. Each
//! function drives the parser the way the product does and ignores the
//! outcome; the fuzzer looks for panics, hangs and runaway memory.

mod media;
mod media_seeds;
mod seeds;
mod sip;

#[cfg(test)]
mod tests;

pub use media::{datagrams, records, rtcp_translate, srtp_unprotect, webrtc_receive};
pub use seeds::{seeds, write_seeds, TARGETS};
pub use sip::{digest, sip_challenge, sip_datagram, sip_stream};

use std::net::SocketAddr;
use std::sync::OnceLock;

use crate::sdp::{
    self, Crypto, IceCredentials, SipOffer, SipOfferPlan, SipParams, WebRtcOffer, WebRtcOfferPlan,
    WebRtcParams, OFFERED_SUITES,
};
use crate::signaling::{auth, parse_client_message};
use crate::srtp::MasterKey;

/// The browser offer the SIP-answer targets answer (a captured Chrome offer).
const CHROME_OFFER: &str = include_str!("../sdp/fixtures/chrome_offer.sdp");
/// The SIP offer the WebRTC-answer target answers (a captured Asterisk offer).
const ASTERISK_OFFER: &str = include_str!("../sdp/fixtures/asterisk_offer.sdp");
/// Every codec the gateway can translate, in a typical configured order.
const CODECS: [&str; 4] = ["opus", "G722", "PCMU", "PCMA"];
/// `limits.max_ws_message_bytes` default.
const WS_MAX: usize = 65_536;
/// The HS256 secret the JWT target signs with, so claims parsing is reached.
const JWT_SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef";

fn codecs() -> Vec<String> {
    CODECS.iter().map(|c| c.to_string()).collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4000)))
}

/// The SIP side's parameters; `savp` offers SDES keys for every suite.
fn sip_params(savp: bool) -> SipParams {
    let crypto = if savp { offered_crypto() } else { Vec::new() };
    SipParams {
        savp,
        crypto,
        rtp_addr: addr("203.0.113.10:30000"),
        session_id: 42,
        session_version: 1,
    }
}

fn offered_crypto() -> Vec<Crypto> {
    (1..)
        .zip(OFFERED_SUITES)
        .map(|(tag, suite)| Crypto {
            tag,
            suite,
            key: MasterKey::new(vec![7; suite.key_len() + suite.salt_len()]),
        })
        .collect()
}

fn webrtc_params() -> WebRtcParams {
    WebRtcParams {
        session_id: 7,
        session_version: 1,
        ice: IceCredentials {
            ufrag: "gw01".to_owned(),
            pwd: "gatewaypassword0123456789".to_owned(),
        },
        fingerprint_sha256: ["AB"; 32].join(":"),
        candidate: addr("203.0.113.1:3478"),
        ssrc: 123_456_789,
        cname: "siphon".to_owned(),
        stream_id: "siphon-stream".to_owned(),
        track_id: "siphon-audio".to_owned(),
    }
}

/// Runs `data` through the target named `target`; `false` for an unknown name.
pub fn run(target: &str, data: &[u8]) -> bool {
    let f: fn(&[u8]) = match target {
        "sip_datagram" => sip_datagram,
        "sip_stream" => sip_stream,
        "sip_challenge" => sip_challenge,
        "digest" => digest,
        "sdp_webrtc_offer" => sdp_webrtc_offer,
        "sdp_sip_answer" => sdp_sip_answer,
        "sdp_sip_offer" => sdp_sip_offer,
        "sdp_webrtc_answer" => sdp_webrtc_answer,
        "signaling_json" => signaling_json,
        "jwt" => jwt,
        "webrtc_receive" => webrtc_receive,
        "srtp_unprotect" => srtp_unprotect,
        "rtcp_translate" => rtcp_translate,
        _ => return false,
    };
    f(data);
    true
}

/// Browser calls phone, step 1: a browser offer (or re-offer) to a SIP offer.
pub fn sdp_webrtc_offer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = sdp::parse_webrtc_session(&text);
    let Ok(offer) = sdp::parse_webrtc_offer(&text) else {
        return;
    };
    for savp in [false, true] {
        let _ = sdp::build_sip_offer(&offer, &codecs(), &sip_params(savp));
    }
}

/// A browser offer and the SIP offers made from it, each with its plan.
type OutboundOffer = (WebRtcOffer, Vec<(SipParams, SipOfferPlan)>);

/// The offer made from Chrome's, plain and with SDES keys, with its plans;
/// built once, as the fixed half of every input.
fn outbound_offer() -> Option<&'static OutboundOffer> {
    static OFFER: OnceLock<Option<OutboundOffer>> = OnceLock::new();
    OFFER
        .get_or_init(|| {
            let offer = sdp::parse_webrtc_offer(CHROME_OFFER).ok()?;
            let plans = [false, true]
                .into_iter()
                .filter_map(|savp| {
                    let p = sip_params(savp);
                    let (_, plan) = sdp::build_sip_offer(&offer, &codecs(), &p).ok()?;
                    Some((p, plan))
                })
                .collect();
            Some((offer, plans))
        })
        .as_ref()
}

/// Browser calls phone, step 2: the SIP side's answer to a WebRTC answer.
pub fn sdp_sip_answer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Some((offer, plans)) = outbound_offer() else {
        return;
    };
    for (p, plan) in plans {
        if let Ok(answer) = sdp::parse_sip_answer(&text, plan, &p.crypto) {
            let _ = sdp::build_webrtc_answer(offer, &answer, &webrtc_params());
            let _ = sdp::media_map(offer, &answer);
        }
    }
}

/// Phone calls browser, step 1: a SIP offer to a WebRTC offer.
pub fn sdp_sip_offer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(offer) = sdp::parse_sip_offer(&text) {
        let _ = sdp::build_webrtc_offer(&offer, &codecs(), &webrtc_params());
    }
}

/// The offer made from Asterisk's with its plan; built once.
fn inbound_offer() -> Option<&'static (SipOffer, WebRtcOfferPlan)> {
    static OFFER: OnceLock<Option<(SipOffer, WebRtcOfferPlan)>> = OnceLock::new();
    OFFER
        .get_or_init(|| {
            let offer = sdp::parse_sip_offer(ASTERISK_OFFER).ok()?;
            let (_, plan) = sdp::build_webrtc_offer(&offer, &codecs(), &webrtc_params()).ok()?;
            Some((offer, plan))
        })
        .as_ref()
}

/// Phone calls browser, step 2: the browser's answer to a SIP answer.
pub fn sdp_webrtc_answer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Some((offer, plan)) = inbound_offer() else {
        return;
    };
    if let Ok(answer) = sdp::parse_webrtc_answer(&text, plan) {
        let _ = sdp::build_sip_answer(offer, &answer, &sip_params(false));
        let _ = sdp::media_map_inbound(offer, &answer);
    }
}

/// One WebSocket text frame of the signaling protocol.
pub fn signaling_json(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_client_message(text, WS_MAX);
    }
}

/// A token as a browser presents it, and the same header and payload
/// correctly signed, so the claims parser behind the signature is reached.
pub fn jwt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = 1_700_000_000;
    let _ = auth::verify(&text, JWT_SECRET, now);
    let signing_input = text.rsplit_once('.').map_or(&*text, |(s, _)| s);
    let _ = auth::verify(&sign(signing_input), JWT_SECRET, now);
}

/// `signing_input` with a valid HS256 signature appended.
pub(crate) fn sign(signing_input: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(JWT_SECRET) else {
        return signing_input.to_owned();
    };
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}
