//! Answers to a browser's mid-call re-offer. The session stays what it was
//! (codecs, DTLS role, SSRC, candidate); only what the re-offer may change
//! changes: ICE credentials on an ICE restart, and the o= version, which
//! must grow with every new description (RFC 3264 section 8).

use sdp_types::Session;

use super::direction::Direction;
use super::transport::Setup;
use super::SdpError;

/// What any WebRTC description (offer or answer) says about the transport
/// and the direction, for checking a renegotiation against the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcSession {
    /// ICE username fragment.
    pub ufrag: String,
    /// DTLS certificate fingerprint value.
    pub fingerprint: String,
    /// Media direction of the audio line.
    pub direction: Direction,
}

/// Parse a browser's description for its transport and direction.
pub fn parse_webrtc_session(sdp: &str) -> Result<WebRtcSession, SdpError> {
    let p = super::session::parse(sdp)?;
    let remote = super::transport::read(&p)?;
    Ok(WebRtcSession {
        ufrag: remote.ice.ufrag,
        fingerprint: remote.fingerprint.value,
        direction: super::direction::read(&p),
    })
}

/// How to turn the last description siphon gave the browser into the
/// answer to its re-offer.
#[derive(Debug, Clone, Default)]
pub struct ReAnswer {
    /// The new o= version.
    pub version: u64,
    /// New local ICE credentials (ufrag, pwd), on an ICE restart.
    pub ice: Option<(String, String)>,
    /// The DTLS role to state; needed when the last description was an
    /// offer (`a=setup:actpass`), since an answer must pick a role.
    pub setup: Option<Setup>,
    /// A new media direction for the active m-lines (hold, resume).
    pub direction: Option<Direction>,
    /// Payload types to keep on the audio m-line; the others, and their
    /// rtpmap/fmtp/rtcp-fb lines, go. `None` keeps all (the last
    /// description was already an answer).
    pub keep_pts: Option<Vec<u8>>,
    /// `a=crypto` lines to put in place of the active m-lines' own (none:
    /// plain RTP); `None` keeps them. A SIP description only.
    pub crypto: Option<Vec<super::Crypto>>,
}

/// Rewrite `local` (siphon's last SDP to the browser) per `edit`.
pub fn build_reanswer(local: &str, edit: &ReAnswer) -> Result<String, SdpError> {
    let mut session = Session::parse(local.as_bytes())?;
    session.origin.sess_version = edit.version;
    let attrs = std::iter::once(&mut session.attributes)
        .chain(session.medias.iter_mut().map(|m| &mut m.attributes));
    for list in attrs {
        for attr in list.iter_mut() {
            let value = match (attr.attribute.as_str(), &edit.ice, edit.setup) {
                ("ice-ufrag", Some((ufrag, _)), _) => ufrag.clone(),
                ("ice-pwd", Some((_, pwd)), _) => pwd.clone(),
                ("setup", _, Some(setup)) => setup.as_str().to_owned(),
                _ => continue,
            };
            attr.value = Some(value);
        }
    }
    for media in session.medias.iter_mut().filter(|m| m.port != 0) {
        if let Some(keep) = &edit.keep_pts {
            keep_formats(media, keep);
        }
        if let Some(lines) = &edit.crypto {
            super::crypto::replace(media, lines);
        }
        if let Some(direction) = edit.direction {
            media
                .attributes
                .retain(|a| a.attribute.parse::<Direction>().is_err());
            super::direction::write(media, direction);
        }
    }
    if edit.direction.is_some() {
        let attrs = &mut session.attributes;
        attrs.retain(|a| a.attribute.parse::<Direction>().is_err());
    }
    Ok(super::session::to_text(&session))
}

fn keep_formats(media: &mut sdp_types::Media, keep: &[u8]) {
    let kept: Vec<&str> = media
        .fmt
        .split_whitespace()
        .filter(|f| f.parse::<u8>().is_ok_and(|pt| keep.contains(&pt)))
        .collect();
    media.fmt = kept.join(" ");
    media.attributes.retain(|a| {
        if !matches!(a.attribute.as_str(), "rtpmap" | "fmtp" | "rtcp-fb") {
            return true;
        }
        let pt = a.value.as_deref().and_then(|v| v.split_whitespace().next());
        pt.and_then(|p| p.parse::<u8>().ok())
            .is_none_or(|pt| keep.contains(&pt))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=siphon 7 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
        m=audio 10000 UDP/TLS/RTP/SAVPF 111 0 101\r\nc=IN IP4 127.0.0.1\r\n\
        a=ice-ufrag:oldU\r\na=ice-pwd:oldpasswordoldpassword1\r\n\
        a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10\r\na=rtcp-fb:111 transport-cc\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn an_ice_restart_changes_credentials_and_version_only() {
        let edit = ReAnswer {
            version: 2,
            ice: Some(("newU".into(), "newpasswordnewpassword12".into())),
            setup: Some(Setup::Passive),
            keep_pts: Some(vec![0, 101]),
            direction: None,
            crypto: None,
        };
        let out = build_reanswer(OFFER, &edit).unwrap();
        for want in [
            "o=siphon 7 2 IN IP4 127.0.0.1",
            "m=audio 10000 UDP/TLS/RTP/SAVPF 0 101",
            "a=ice-ufrag:newU",
            "a=ice-pwd:newpasswordnewpassword12",
            "a=setup:passive",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=mid:0",
        ] {
            assert!(out.lines().any(|l| l == want), "{want} missing in\n{out}");
        }
        assert!(!out.contains("opus") && !out.contains(":111 "), "{out}");
        assert!(!out.contains("oldU"), "{out}");
    }

    #[test]
    fn no_restart_keeps_everything_but_the_version() {
        let edit = ReAnswer {
            version: 5,
            ..Default::default()
        };
        let out = build_reanswer(OFFER, &edit).unwrap();
        assert!(out.contains("o=siphon 7 5 IN IP4"));
        assert!(out.contains("a=ice-ufrag:oldU") && out.contains("a=setup:actpass"));
        assert!(out.contains("m=audio 10000 UDP/TLS/RTP/SAVPF 111 0 101"));
    }

    #[test]
    fn a_new_direction_replaces_the_old_one() {
        let edit = ReAnswer {
            version: 3,
            direction: Some(Direction::RecvOnly),
            ..Default::default()
        };
        let out = build_reanswer(OFFER, &edit).unwrap();
        assert!(
            out.contains("a=recvonly") && !out.contains("a=sendrecv"),
            "{out}"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(build_reanswer("nonsense", &ReAnswer::default()).is_err());
    }
}
