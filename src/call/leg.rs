//! What both call directions build the same way: the relay's view of the
//! SIP side, and our WebRTC SDP parameters.

use std::net::SocketAddr;

use crate::media::{PtMap, SipMedia};
use crate::sdp::{self, MediaMap};

/// Our side of the WebRTC leg, as it goes into SDP.
#[derive(Debug, Clone)]
pub struct LocalWebRtc {
    /// ICE username fragment.
    pub ice_ufrag: String,
    /// ICE password.
    pub ice_pwd: String,
    /// sha-256 fingerprint of our DTLS certificate.
    pub fingerprint: String,
    /// Our host candidate (the relay loop's public WebRTC address).
    pub candidate: SocketAddr,
    /// SSRC of the stream sent to the browser.
    pub ssrc: u32,
    /// SDP session id (o= line).
    pub session_id: u64,
}

impl LocalWebRtc {
    /// The sdp module's parameters for an offer or answer.
    pub fn sdp_params(&self) -> sdp::WebRtcParams {
        let tag = format!("{:x}", self.session_id);
        sdp::WebRtcParams {
            session_id: self.session_id,
            session_version: 1,
            ice: sdp::IceCredentials {
                ufrag: self.ice_ufrag.clone(),
                pwd: self.ice_pwd.clone(),
            },
            fingerprint_sha256: self.fingerprint.clone(),
            candidate: self.candidate,
            ssrc: self.ssrc,
            cname: format!("siphon-{tag}"),
            stream_id: format!("siphon-{tag}"),
            track_id: format!("audio-{tag}"),
        }
    }
}

/// The relay's view of a negotiated SIP side.
pub fn sip_media(map: &MediaMap, rtp_addr: SocketAddr, rtcp_mux: bool) -> SipMedia {
    let mut to_sip = PtMap::empty();
    let mut to_webrtc = PtMap::empty();
    to_sip.insert(map.browser_pt, map.sip_pt);
    to_webrtc.insert(map.sip_pt, map.browser_pt);
    if let (Some(b), Some(s)) = (map.browser_event_pt, map.sip_event_pt) {
        to_sip.insert(b, s);
        to_webrtc.insert(s, b);
    }
    let rtcp_port = if rtcp_mux {
        rtp_addr.port()
    } else {
        rtp_addr.port().wrapping_add(1)
    };
    SipMedia {
        remote_rtp: rtp_addr,
        remote_rtcp: SocketAddr::new(rtp_addr.ip(), rtcp_port),
        rtcp_mux,
        to_sip,
        to_webrtc,
        ts_step: map.clock_rate * map.ptime / 1000,
        clock_rate: map.clock_rate,
        webrtc_dtmf: map.browser_dtmf,
        sip_dtmf: map.sip_dtmf,
        webrtc_dtmf_convert: map.browser_dtmf_convert,
        send_to_sip: true,
        send_to_webrtc: true,
        held: false,
        srtp: None,
    }
}
