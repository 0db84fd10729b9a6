//! SDES-SRTP toward the SIP side (RFC 4568): what siphon offers, what it
//! accepts, and the keys the relay gets. Pure: siphon's fresh keys come in
//! as values, one line per offered suite.
//!
//! Outbound with `offer`, siphon sends RTP/AVP with `a=crypto`
//! (opportunistic SRTP, RFC 8643) rather than RTP/SAVP: Asterisk and
//! FreeSWITCH answer an RTP/SAVP offer they cannot take with 488, so "SAVP,
//! then a plain retry" would cost every plain call a second INVITE, while a
//! plain peer ignores an `a=crypto` it does not know and answers RTP/AVP,
//! and an SRTP peer (Asterisk's `media_encryption_optimistic`,
//! FreeSWITCH's `rtp_secure_media=optional`, baresip) answers with its key.
//! With `require` the offer is RTP/SAVP, as RFC 4568 has it.

use super::SdesError;
use crate::config::SrtpMode;
use crate::media::SipSrtp;
use crate::sdp::{Crypto, SipAnswer, SipOffer};

/// The negotiated SDES session: siphon's line and the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesSession {
    /// siphon's line (the tag of the answer, siphon's key).
    pub local: Crypto,
    /// The peer's line (its key).
    pub remote: Crypto,
}

impl SdesSession {
    /// The relay's keys.
    pub fn media(&self) -> SipSrtp {
        SipSrtp {
            profile: self.local.suite,
            tx: self.local.key.clone(),
            rx: self.remote.key.clone(),
        }
    }

    /// A re-offer's (or re-answer's) lines against this session: the same
    /// suite with the peer's (maybe new) key. `Err` is the 488 reason.
    pub fn rekey(&self, lines: &[Crypto]) -> Result<SdesSession, SdesError> {
        if lines.is_empty() {
            return Err(SdesError::Dropped);
        }
        let suite = self.local.suite;
        let line = lines
            .iter()
            .find(|c| c.suite == suite)
            .ok_or(SdesError::SuiteChanged(crate::sdp::suite_name(suite)))?;
        let mut local = self.local.clone();
        local.tag = line.tag;
        Ok(SdesSession {
            local,
            remote: line.clone(),
        })
    }
}

/// The m-line profile and `a=crypto` lines of siphon's SIP offer:
/// (RTP/SAVP, lines).
pub fn offer(mode: SrtpMode, local: &[Crypto]) -> (bool, Vec<Crypto>) {
    match mode {
        SrtpMode::Off => (false, Vec::new()),
        SrtpMode::Offer => (false, local.to_vec()),
        SrtpMode::Require => (true, local.to_vec()),
    }
}

/// The SIP answer to siphon's offer: the session, or plain RTP (`None`).
/// `Err` is why the call cannot go on.
pub fn answered(
    mode: SrtpMode,
    local: &[Crypto],
    answer: &SipAnswer,
) -> Result<Option<SdesSession>, SdesError> {
    let Some(remote) = &answer.crypto else {
        return match mode {
            SrtpMode::Require => Err(SdesError::RequiredButAnsweredPlain),
            _ => Ok(None),
        };
    };
    // parse_sip_answer checked the tag and suite against what was offered.
    let local = local
        .iter()
        .find(|l| l.tag == remote.tag && l.suite == remote.suite)
        .ok_or(SdesError::NoOfferedLine)?;
    Ok(Some(SdesSession {
        local: local.clone(),
        remote: remote.clone(),
    }))
}

/// A SIP offer to a browser user: the session siphon answers with, or
/// plain RTP (`None`). `plain_signaling`: the INVITE came over UDP/TCP and
/// keys may not be sent there. `Err` is the reason of a 488.
pub fn accept_offer(
    mode: SrtpMode,
    local: &[Crypto],
    offer: &SipOffer,
    plain_signaling: bool,
) -> Result<Option<SdesSession>, SdesError> {
    if offer.crypto.is_empty() {
        return match mode {
            SrtpMode::Require => Err(SdesError::RequiredButOfferedPlain),
            _ => Ok(None),
        };
    }
    // An opportunistic offer (RTP/AVP with a=crypto) may be answered plainly.
    let plain_ok = !offer.savp && mode != SrtpMode::Require;
    let refuse = |reason| if plain_ok { Ok(None) } else { Err(reason) };
    if mode == SrtpMode::Off {
        return refuse(SdesError::Off);
    }
    if plain_signaling {
        return refuse(SdesError::PlainSignaling);
    }
    // The offerer's preference first (RFC 4568 section 7.1.2).
    let pair = offer.crypto.iter().find_map(|theirs| {
        let mine = local.iter().find(|l| l.suite == theirs.suite)?;
        Some((mine, theirs))
    });
    let Some((mine, theirs)) = pair else {
        return refuse(SdesError::NoSuite);
    };
    let mut mine = mine.clone();
    mine.tag = theirs.tag;
    Ok(Some(SdesSession {
        local: mine,
        remote: theirs.clone(),
    }))
}

#[cfg(test)]
mod tests;
