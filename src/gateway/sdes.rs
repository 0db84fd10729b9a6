//! The IO edge of SDES: fresh keys from the system's randomness, and the
//! SRTP mode of a call once its signaling transport is known.

use crate::call::SdesError;
use crate::config::{secure_uri, Config, SrtpMode};
use crate::sdp::{key_len, Crypto, OFFERED_SUITES};
use crate::sip::Transport;
use crate::srtp::{MasterKey, SrtpProfile};

/// Suites siphon answers an inbound offer with: those it offers, and
/// AEAD_AES_256_GCM, which costs nothing more to take.
const ANSWERED_SUITES: [SrtpProfile; 4] = [
    OFFERED_SUITES[0],
    OFFERED_SUITES[1],
    OFFERED_SUITES[2],
    SrtpProfile::AeadAes256Gcm,
];

/// One `a=crypto` line per suite with a fresh random key, tags from 1.
fn fresh(suites: &[SrtpProfile]) -> Vec<Crypto> {
    (1..)
        .zip(suites)
        .map(|(tag, &suite)| {
            let mut bytes = vec![0u8; key_len(suite)];
            rand::fill(&mut bytes[..]);
            Crypto {
                tag,
                suite,
                key: MasterKey::new(bytes),
            }
        })
        .collect()
}

/// Keys for an outbound offer, or none when SRTP is off.
pub(super) fn offer_keys(mode: SrtpMode) -> Vec<Crypto> {
    match mode {
        SrtpMode::Off => Vec::new(),
        _ => fresh(&OFFERED_SUITES),
    }
}

/// Keys for answering an inbound offer, or none when SRTP is off.
pub(super) fn answer_keys(mode: SrtpMode) -> Vec<Crypto> {
    match mode {
        SrtpMode::Off => Vec::new(),
        _ => fresh(&ANSWERED_SUITES),
    }
}

/// The SRTP mode of a browser's call to `uri`: keys only over encrypted
/// signaling unless allowed; `Err` (the reason of a 488) when SRTP is
/// required and the signaling is plain.
pub(super) fn outbound_mode(
    config: &Config,
    caller: Option<&str>,
    via_trunk: bool,
    uri: &str,
) -> Result<SrtpMode, SdesError> {
    let mode = config.outbound_srtp(caller, via_trunk);
    if mode == SrtpMode::Off || secure_uri(uri) || config.sip.srtp_allow_insecure_signaling {
        return Ok(mode);
    }
    match mode {
        SrtpMode::Require => Err(SdesError::RequiredOverPlain(uri.to_owned())),
        _ => {
            tracing::info!(%uri, "SRTP not offered: keys do not go over plain signaling");
            Ok(SrtpMode::Off)
        }
    }
}

/// Whether an INVITE that came over `transport` may not be answered with keys.
pub(super) fn plain_signaling(config: &Config, transport: Transport) -> bool {
    let plain = matches!(transport, Transport::Udp | Transport::Tcp);
    plain && !config.sip.srtp_allow_insecure_signaling
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_fit_every_suite_and_differ() {
        let a = answer_keys(SrtpMode::Offer);
        let b = answer_keys(SrtpMode::Require);
        assert_eq!(a.len(), ANSWERED_SUITES.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.key.expose().len(), key_len(x.suite));
            assert_ne!(x.key, y.key);
        }
        assert!(offer_keys(SrtpMode::Off).is_empty());
        assert_eq!(offer_keys(SrtpMode::Offer).len(), OFFERED_SUITES.len());
    }
}
