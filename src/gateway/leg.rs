//! A call's WebRTC leg on a relay loop, made the same way in both
//! directions: siphon's side of it (fresh ICE credentials, SSRC and SDP
//! session id on the loop's port), and the leg added once the browser's
//! side is known (from its offer, or from its answer).

use tokio::sync::mpsc;

use super::midcall::Resources;
use super::Inner;
use crate::call::leg::LocalWebRtc;
use crate::media::{AddCall, MediaEvent, PortPair, RelayError};
use crate::webrtc::{self, DtlsRole, LegConfig};

/// A WebRTC leg to put on the relay when the browser accepts (SIP ->
/// browser; a browser -> SIP call has its leg before its INVITE).
pub(super) struct PendingLeg {
    /// The call's RTP ports.
    pub(super) ports: PortPair,
    /// siphon's side of the leg.
    pub(super) local: LocalWebRtc,
}

/// Why siphon could not answer the accepted call.
#[derive(Debug, thiserror::Error)]
pub(super) enum AnswerError {
    /// A second `Answer` for one call.
    #[error("answered twice")]
    Twice,
    /// An `Answer` on siphon's own INVITE.
    #[error("only an incoming call is answered")]
    NotIncoming,
    /// The relay did not take the leg.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The 200 did not go out.
    #[error(transparent)]
    Sip(#[from] crate::sip::SipError),
}

/// siphon's side of a new call's leg on relay loop `relay`.
pub(super) fn local_side(gw: &Inner, relay: usize) -> LocalWebRtc {
    let (ice_ufrag, ice_pwd) = webrtc::random_ice_credentials();
    let port = gw.relays.get(relay).webrtc_addr().port();
    LocalWebRtc {
        ice_ufrag,
        ice_pwd,
        fingerprint: gw.identity.fingerprint.clone(),
        candidate: std::net::SocketAddr::new(gw.config.webrtc_public_ip(), port),
        ssrc: rand::random(),
        session_id: u64::from(rand::random::<u32>()),
    }
}

/// The browser's side of a leg: ICE credentials, certificate fingerprint,
/// and the DTLS role siphon takes toward it.
pub(super) struct BrowserSide {
    /// ICE username fragment.
    pub(super) ufrag: String,
    /// ICE password.
    pub(super) pwd: String,
    /// Its certificate's sha-256 fingerprint.
    pub(super) fingerprint: String,
    /// siphon's DTLS role.
    pub(super) dtls_role: DtlsRole,
}

/// Put the call's leg on relay loop `relay`, with its RTP `ports`; the
/// loop reports the leg's media events on `events`.
pub(super) async fn add(
    gw: &Inner,
    relay: usize,
    local: &LocalWebRtc,
    browser: BrowserSide,
    ports: PortPair,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> Result<Resources, RelayError> {
    let leg = LegConfig {
        local_ufrag: local.ice_ufrag.clone(),
        local_pwd: local.ice_pwd.clone(),
        remote_ufrag: browser.ufrag,
        remote_pwd: browser.pwd,
        remote_fingerprint: browser.fingerprint,
        consent_timeout: gw.config.webrtc.consent_timeout(),
        disconnect_timeout: gw.config.webrtc.disconnect_timeout(),
        dtls_role: browser.dtls_role,
    };
    let add = AddCall {
        leg,
        ports,
        ssrc_to_webrtc: local.ssrc,
        ssrc_to_sip: rand::random(),
        events,
        media_timeout: Some(gw.config.limits.media_timeout()),
    };
    let leg = gw.relays.get(relay).add(add).await?;
    Ok(Resources { relay, leg })
}
