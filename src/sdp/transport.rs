//! The WebRTC transport attributes: ICE credentials, DTLS fingerprint and role,
//! candidates.

use std::net::SocketAddr;

use sdp_types::Media;

use super::session::{flag, push, Parsed};
use super::SdpError;

/// ICE username fragment and password of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// a=ice-ufrag.
    pub ufrag: String,
    /// a=ice-pwd.
    pub pwd: String,
}

/// A DTLS certificate fingerprint (RFC 8122).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function name, lowercased, e.g. "sha-256".
    pub algorithm: String,
    /// Colon-separated hex digest as written.
    pub value: String,
}

/// The DTLS role offered or answered (RFC 4145 a=setup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The side opens the DTLS association (client).
    Active,
    /// The side waits for the DTLS association (server).
    Passive,
    /// Either; only valid in an offer.
    ActPass,
}

/// What the gateway writes about its own WebRTC transport into an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcParams {
    /// Session id of the o= line.
    pub session_id: u64,
    /// Session version of the o= line.
    pub session_version: u64,
    /// Our ICE credentials.
    pub ice: IceCredentials,
    /// Our certificate's sha-256 fingerprint, colon-separated hex.
    pub fingerprint_sha256: String,
    /// Our single host candidate (the relay loop's UDP port).
    pub candidate: SocketAddr,
    /// The SSRC we send with.
    pub ssrc: u32,
    /// RTCP CNAME for a=ssrc.
    pub cname: String,
    /// MediaStream id for a=msid.
    pub stream_id: String,
    /// Track id for a=msid.
    pub track_id: String,
}

/// Parameters of a WebRTC answer (browser calls phone).
pub type WebRtcAnswerParams = WebRtcParams;
/// Parameters of a WebRTC offer (phone calls browser).
pub type WebRtcOfferParams = WebRtcParams;

/// The transport of a parsed WebRTC description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTransport {
    /// The remote ICE credentials.
    pub ice: IceCredentials,
    /// The remote certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The remote DTLS role.
    pub setup: Setup,
    /// Raw "candidate:..." values (none with trickle ICE).
    pub candidates: Vec<String>,
    /// The first a=ssrc id of the audio line.
    pub ssrc: Option<u32>,
}

/// The only profile a browser uses for DTLS-SRTP audio (RFC 5764, JSEP).
pub const WEBRTC_PROFILE: &str = "UDP/TLS/RTP/SAVPF";

/// Reads ICE, DTLS, candidates and SSRC, checking the profile first.
pub fn read(p: &Parsed) -> Result<RemoteTransport, SdpError> {
    let proto = &p.audio().proto;
    if !proto.eq_ignore_ascii_case(WEBRTC_PROFILE) {
        return Err(SdpError::UnsupportedProfile {
            found: proto.clone(),
            expected: WEBRTC_PROFILE,
        });
    }
    let ice = super::credentials::ice_credentials(p)?;
    let fingerprint = super::credentials::dtls_fingerprint(p)?;
    // RFC 4145 §4: a missing setup attribute means active.
    let setup = p.attr("setup").map_or(Ok(Setup::Active), setup)?;
    Ok(RemoteTransport {
        ice,
        fingerprint,
        setup,
        candidates: candidates(p.audio()),
        ssrc: ssrc(p.audio()),
    })
}

fn setup(value: &str) -> Result<Setup, SdpError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "active" => Ok(Setup::Active),
        "passive" => Ok(Setup::Passive),
        "actpass" => Ok(Setup::ActPass),
        other => Err(SdpError::UnsupportedSetup(other.to_owned())),
    }
}

fn candidates(media: &Media) -> Vec<String> {
    media
        .get_attribute_values("candidate")
        .flatten()
        .map(|c| format!("candidate:{c}"))
        .collect()
}

fn ssrc(media: &Media) -> Option<u32> {
    media
        .get_attribute_values("ssrc")
        .flatten()
        .find_map(|v| v.split_ascii_whitespace().next()?.parse().ok())
}

/// Writes our ICE, DTLS, candidate, mid and rtcp-mux lines on an audio m-line.
pub fn write(media: &mut Media, p: &WebRtcParams, setup: Setup, mid: Option<&str>) {
    push(media, "candidate", host_candidate(p.candidate));
    flag(media, "end-of-candidates");
    push(media, "ice-ufrag", &p.ice.ufrag);
    push(media, "ice-pwd", &p.ice.pwd);
    push(
        media,
        "fingerprint",
        format!("sha-256 {}", p.fingerprint_sha256),
    );
    push(media, "setup", setup.as_str());
    if let Some(mid) = mid {
        push(media, "mid", mid);
    }
}

/// Writes a=msid and a=ssrc cname so the browser creates a remote stream.
pub fn write_stream(media: &mut Media, p: &WebRtcParams) {
    push(media, "ssrc", format!("{} cname:{}", p.ssrc, p.cname));
    push(media, "msid", format!("{} {}", p.stream_id, p.track_id));
}

fn host_candidate(addr: SocketAddr) -> String {
    // Highest host priority (RFC 8445 §5.1.2.1 with type preference 126).
    format!("1 1 udp 2130706431 {} {} typ host", addr.ip(), addr.port())
}

impl Setup {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
        }
    }
}
