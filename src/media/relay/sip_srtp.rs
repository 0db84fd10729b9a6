//! SRTP on a call's SIP side, keyed by SDES: the two contexts and their
//! keys, rebuilt only for a direction whose key changed (a re-INVITE that
//! keeps the key keeps the rollover counter and replay window).

use rtc_srtp::crypto::RTCCrypto;

use crate::media::SipSrtp;
use crate::srtp::{Rejected, SrtpContext, SrtpError};

/// Why a packet on the SIP side was dropped by SRTP; `as_str` is its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SipDrop {
    /// SRTP/SRTCP too short or with a header that does not parse.
    Malformed,
    /// The authentication tag does not verify.
    Auth,
    /// Already seen, or too old for the replay window.
    Replay,
    /// siphon could not protect a packet toward the SIP peer.
    Protect,
}

impl SipDrop {
    pub(super) const ALL: [SipDrop; 4] = [
        SipDrop::Malformed,
        SipDrop::Auth,
        SipDrop::Replay,
        SipDrop::Protect,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            SipDrop::Malformed => "srtp_malformed",
            SipDrop::Auth => "srtp_auth",
            SipDrop::Replay => "srtp_replay",
            SipDrop::Protect => "srtp_protect",
        }
    }
}

impl From<Rejected> for SipDrop {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Malformed => SipDrop::Malformed,
            Rejected::Auth => SipDrop::Auth,
            Rejected::Replay => SipDrop::Replay,
        }
    }
}

/// The SIP side's SRTP contexts and the keys they were built from.
pub(super) struct SipCrypto {
    keys: SipSrtp,
    /// Protects what goes to the SIP peer.
    pub(super) tx: SrtpContext,
    /// Unprotects what the SIP peer sends.
    pub(super) rx: SrtpContext,
}

impl SipCrypto {
    /// The contexts for `keys` (`None`: plain RTP), reusing those of `old`
    /// whose key is unchanged.
    pub(super) fn update(
        old: Option<SipCrypto>,
        keys: Option<&SipSrtp>,
        crypto: &dyn RTCCrypto,
    ) -> Result<Option<SipCrypto>, SrtpError> {
        let Some(keys) = keys else {
            return Ok(None);
        };
        let new =
            |key: &crate::srtp::MasterKey| SrtpContext::new(keys.profile, key.expose(), crypto);
        let (tx, rx) = match old {
            Some(old) if old.keys.profile == keys.profile => {
                let tx = if old.keys.tx == keys.tx {
                    old.tx
                } else {
                    new(&keys.tx)?
                };
                let rx = if old.keys.rx == keys.rx {
                    old.rx
                } else {
                    new(&keys.rx)?
                };
                (tx, rx)
            }
            _ => (new(&keys.tx)?, new(&keys.rx)?),
        };
        Ok(Some(SipCrypto {
            keys: keys.clone(),
            tx,
            rx,
        }))
    }
}
