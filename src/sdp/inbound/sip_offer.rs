//! Reading the plain offer of a PBX or phone (phone calls browser).

use std::net::SocketAddr;

use super::super::codec::{media_codecs, split_events, Codec};
use super::super::crypto::{self, Crypto, CryptoRefusal};
use super::super::direction::{self, Direction};
use super::super::outbound::{SAVP_PROFILE, SIP_PROFILE};
use super::super::session::{self, MLine};
use super::super::SdpError;

/// What the gateway needs from a SIP offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipOffer {
    /// Every m-line in order; the answer mirrors them (non-audio at port 0).
    pub mlines: Vec<MLine>,
    /// Index of the audio line in `mlines`.
    pub audio_index: usize,
    /// Where the offerer receives RTP.
    pub rtp_addr: SocketAddr,
    /// Audio codecs in the offerer's preference order (no telephone-event).
    pub codecs: Vec<Codec>,
    /// telephone-event entries.
    pub telephone_events: Vec<Codec>,
    /// The offerer's direction (c=0.0.0.0 counts as not receiving).
    pub direction: Direction,
    /// Whether the offerer proposed a=rtcp-mux.
    pub rtcp_mux: bool,
    /// a=ptime in milliseconds, if given.
    pub ptime: Option<u32>,
    /// The m-line says RTP/SAVP: SRTP or nothing.
    pub savp: bool,
    /// Its supported `a=crypto` lines in preference order (RTP/AVP may carry
    /// them too: opportunistic SRTP, RFC 8643).
    pub crypto: Vec<Crypto>,
}

impl SipOffer {
    /// The offer's telephone-event entry at a clock rate.
    pub fn event_at(&self, clock: u32) -> Option<&Codec> {
        self.telephone_events.iter().find(|c| c.clock == clock)
    }

    /// The offer's codec of the same format (name and clock) as `codec`.
    pub fn same_format(&self, codec: &Codec) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.same_format(codec))
    }
}

/// Parses an RTP/AVP or RTP/SAVP offer (SDES keys, RFC 4568); whether
/// SRTP is wanted is the caller's policy.
pub fn parse_sip_offer(sdp: &str) -> Result<SipOffer, SdpError> {
    let p = session::parse(sdp)?;
    let media = p.audio();
    let savp = media.proto.eq_ignore_ascii_case(SAVP_PROFILE);
    if !savp && !media.proto.eq_ignore_ascii_case(SIP_PROFILE) {
        return Err(SdpError::UnsupportedProfile {
            found: media.proto.clone(),
            expected: "RTP/AVP or RTP/SAVP",
        });
    }
    let crypto = crypto::read_media(media)?;
    if savp && crypto.is_empty() {
        // SAVP keyed some other way (MIKEY, DTLS) is not what siphon speaks.
        return Err(CryptoRefusal::SavpWithoutCrypto.into());
    }
    if media.port == 0 {
        return Err(SdpError::NoAudio);
    }
    let rtp_addr = p.audio_addr()?;
    let direction = direction::of_sip_audio(&p)?;
    let (codecs, telephone_events) = split_events(media_codecs(media));
    Ok(SipOffer {
        rtp_addr,
        codecs,
        telephone_events,
        direction,
        rtcp_mux: media.has_attribute("rtcp-mux"),
        ptime: p.attr("ptime").and_then(|v| v.trim().parse().ok()),
        savp,
        crypto,
        audio_index: p.audio_index,
        mlines: p.mlines,
    })
}
