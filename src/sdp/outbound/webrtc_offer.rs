//! Reading the browser's offer (browser calls phone).

use super::super::codec::{media_codecs, split_events, Codec};
use super::super::direction::{self, Direction};
use super::super::session::{self, MLine};
use super::super::transport::{self, Fingerprint, IceCredentials, Setup};
use super::super::SdpError;

/// What the gateway needs from a browser's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcOffer {
    /// Every m-line in order; the answer mirrors them (non-audio at port 0).
    pub mlines: Vec<MLine>,
    /// Index of the accepted audio line in `mlines`.
    pub audio_index: usize,
    /// a=mid of the audio line.
    pub mid: Option<String>,
    /// The browser's ICE credentials.
    pub ice: IceCredentials,
    /// The browser's DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The browser's DTLS role.
    pub setup: Setup,
    /// Whether the browser offered a=rtcp-mux.
    pub rtcp_mux: bool,
    /// The mids of the a=group:BUNDLE line (empty without one).
    pub bundle: Vec<String>,
    /// The browser's direction.
    pub direction: Direction,
    /// Audio codecs in the browser's preference order (no telephone-event).
    pub codecs: Vec<Codec>,
    /// telephone-event entries (Chrome offers one at 48000 and one at 8000).
    pub telephone_events: Vec<Codec>,
    /// Raw "candidate:..." values; empty with trickle ICE.
    pub candidates: Vec<String>,
    /// The browser's audio SSRC, if announced.
    pub ssrc: Option<u32>,
}

impl WebRtcOffer {
    /// The browser's telephone-event entry at a clock rate.
    pub fn event_at(&self, clock: u32) -> Option<&Codec> {
        self.telephone_events.iter().find(|c| c.clock == clock)
    }

    /// The browser's codec with a payload type.
    pub fn codec(&self, pt: u8) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.pt == pt)
    }
}

/// Parses a browser's offer: the first audio m-line and its transport.
pub fn parse_webrtc_offer(sdp: &str) -> Result<WebRtcOffer, SdpError> {
    let p = session::parse(sdp)?;
    let t = transport::read(&p)?;
    // siphon answers as the DTLS server: refused here, before a call is
    // placed for an offer whose answer could not be written.
    if t.setup == Setup::Passive {
        return Err(SdpError::UnsupportedSetup("passive".to_owned()));
    }
    let (codecs, telephone_events) = split_events(media_codecs(p.audio()));
    Ok(WebRtcOffer {
        mid: p.mlines[p.audio_index].mid.clone(),
        audio_index: p.audio_index,
        ice: t.ice,
        fingerprint: t.fingerprint,
        setup: t.setup,
        rtcp_mux: p.audio().has_attribute("rtcp-mux"),
        bundle: bundle(&p.session),
        direction: direction::read(&p),
        codecs,
        telephone_events,
        candidates: t.candidates,
        ssrc: t.ssrc,
        mlines: p.mlines,
    })
}

/// The mids of the session's BUNDLE group.
fn bundle(session: &sdp_types::Session) -> Vec<String> {
    session
        .get_attribute_values("group")
        .flatten()
        .find_map(|g| {
            let mut words = g.split_ascii_whitespace();
            let semantics = words.next()?;
            semantics
                .eq_ignore_ascii_case("BUNDLE")
                .then(|| words.map(str::to_owned).collect())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::super::fixtures::*;
    use super::*;

    fn pts_names(codecs: &[Codec]) -> Vec<(u8, &str, u32)> {
        codecs
            .iter()
            .map(|c| (c.pt, c.name.as_str(), c.clock))
            .collect()
    }

    #[test]
    fn chrome_offer_with_video_and_trickle() {
        let o = parse_webrtc_offer(&crlf(CHROME_OFFER)).expect("chrome offer");
        assert_eq!(o.mid.as_deref(), Some("0"));
        assert_eq!(o.ice.ufrag, "EsAw");
        assert_eq!(o.ice.pwd, "bP+XJMM09aR8AiX1jdukzR6Y");
        assert_eq!(o.fingerprint.algorithm, "sha-256");
        assert!(o.fingerprint.value.starts_with("D2:FA:0E"));
        assert_eq!(o.setup, Setup::ActPass);
        assert!(o.rtcp_mux);
        assert_eq!(o.bundle, ["0", "1"]);
        assert_eq!(o.direction, Direction::SendRecv);
        let names: Vec<_> = o.codecs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["opus", "red", "G722", "PCMU", "PCMA", "CN"]);
        assert_eq!(
            o.codecs[0].fmtp.as_deref(),
            Some("minptime=10;useinbandfec=1")
        );
        assert_eq!(o.codecs[0].channels, 2);
        assert_eq!(
            pts_names(&o.telephone_events),
            [
                (110, "telephone-event", 48000),
                (126, "telephone-event", 8000)
            ]
        );
        assert!(o.candidates.is_empty());
        assert_eq!(o.ssrc, Some(3570614608));
        assert_eq!(o.mlines.len(), 2);
        assert_eq!(o.mlines[1].kind, "video");
        assert_eq!(o.mlines[1].mid.as_deref(), Some("1"));
    }

    #[test]
    fn firefox_offer_with_session_fingerprint_and_candidates() {
        let o = parse_webrtc_offer(FIREFOX_OFFER).expect("firefox offer");
        assert!(o.fingerprint.value.starts_with("5B:1F"));
        assert_eq!(o.ice.ufrag, "9f2a6b1c");
        assert_eq!(o.candidates.len(), 3);
        assert!(o.candidates[0].starts_with("candidate:0 1 UDP 2122252543 192.168.1.23"));
        assert_eq!(
            pts_names(&o.codecs),
            [
                (109, "opus", 48000),
                (9, "G722", 8000),
                (0, "PCMU", 8000),
                (8, "PCMA", 8000)
            ]
        );
        assert_eq!(
            pts_names(&o.telephone_events),
            [(101, "telephone-event", 8000)]
        );
        assert_eq!(o.bundle, ["0"]);
    }

    #[test]
    fn safari_offer_with_mdns_candidate() {
        let o = parse_webrtc_offer(SAFARI_OFFER).expect("safari offer");
        assert_eq!(o.candidates.len(), 2);
        assert!(o.candidates[0].contains(".local 61234 typ host"));
        assert_eq!(o.mlines.len(), 1);
        assert_eq!(o.ssrc, Some(1001766470));
    }

    #[test]
    fn session_level_ice_credentials_are_used() {
        let sdp = CHROME_OFFER
            .replace("a=ice-ufrag:EsAw\n", "")
            .replace("a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\n", "")
            .replace(
                "t=0 0\n",
                "t=0 0\na=ice-ufrag:Sess\na=ice-pwd:sessionpassword1234567\n",
            );
        let o = parse_webrtc_offer(&sdp).expect("offer");
        assert_eq!(o.ice.ufrag, "Sess");
    }

    #[test]
    fn sendonly_offer_is_read() {
        let sdp = SAFARI_OFFER.replace("a=sendrecv", "a=sendonly");
        let o = parse_webrtc_offer(&sdp).expect("offer");
        assert_eq!(o.direction, Direction::SendOnly);
    }

    #[test]
    fn missing_pieces_give_specific_errors() {
        let no_ice = FIREFOX_OFFER.replace("a=ice-pwd:3c5b4a2d7e1f0a9b8c6d5e4f3a2b1c0d\n", "");
        assert_eq!(
            parse_webrtc_offer(&no_ice),
            Err(SdpError::MissingIceCredentials)
        );
        let no_fp = FIREFOX_OFFER
            .lines()
            .filter(|l| !l.starts_with("a=fingerprint"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            parse_webrtc_offer(&no_fp),
            Err(SdpError::MissingFingerprint)
        );
        let bad_fp = FIREFOX_OFFER.replace("sha-256 5B:1F", "sha-256 ZZ:1F");
        assert!(matches!(
            parse_webrtc_offer(&bad_fp),
            Err(SdpError::InvalidFingerprint(_))
        ));
        let plain = SAFARI_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
        assert!(matches!(
            parse_webrtc_offer(&plain),
            Err(SdpError::UnsupportedProfile { .. })
        ));
        let video_only = CHROME_OFFER.replace("m=audio", "m=video");
        assert_eq!(parse_webrtc_offer(&video_only), Err(SdpError::NoAudio));
        let holdconn = SAFARI_OFFER.replace("a=setup:actpass", "a=setup:holdconn");
        assert!(matches!(
            parse_webrtc_offer(&holdconn),
            Err(SdpError::UnsupportedSetup(_))
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        for text in [
            "",
            "   ",
            "hello world",
            "v=1\r\n",
            "INVITE sip:1000@x SIP/2.0\r\n",
        ] {
            assert!(
                matches!(parse_webrtc_offer(text), Err(SdpError::Malformed(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn truncated_input_never_panics() {
        for text in ALL {
            for cut in 0..text.len() {
                if text.is_char_boundary(cut) {
                    let _ = parse_webrtc_offer(&text[..cut]);
                }
            }
        }
    }
}
