//! SDES key exchange: `a=crypto` lines (RFC 4568), read and written.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:len] [params]`.
//! A line with a suite siphon does not know, an MKI, a lifetime that could
//! run out within a call, or session parameters that change the transform
//! (UNENCRYPTED_SRTP, KDR, FEC_*) is unsupported: it is skipped, and an
//! offer with no supported line is refused. A supported suite with a key
//! that does not decode, or of the wrong size, is a malformed SDP.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sdp_types::Media;

use super::session::push;
use super::SdpError;
use crate::srtp::{MasterKey, SrtpProfile};

/// The attribute name.
const CRYPTO: &str = "crypto";

/// Keys are written padded (RFC 4568 section 6.1 uses RFC 3548 base64) and
/// read padded or not: some phones drop the `=` of a 28-byte GCM key.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A lifetime at least this long cannot run out within a call (2^31
/// packets is over a year at 50 packets a second), so it is accepted and
/// not tracked. Shorter ones would need a re-key siphon does not do.
const MIN_LIFETIME_LOG2: u32 = 31;

/// The suites siphon offers toward SIP, in preference order.
pub const OFFERED_SUITES: [SrtpProfile; 3] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::Aes128CmHmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
];

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The tag that pairs an answer's line with the offer's.
    pub tag: u32,
    /// The crypto suite.
    pub suite: SrtpProfile,
    /// The master key and salt (redacted in `Debug`).
    pub key: MasterKey,
}

/// Why siphon does not take an `a=crypto` line, or an SDES answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoRefusal {
    /// A suite siphon does not know.
    #[error("unknown crypto suite {0}")]
    UnknownSuite(String),
    /// A session parameter that changes the transform (UNENCRYPTED_SRTP, KDR, FEC_*).
    #[error("session parameter {0} is not supported")]
    SessionParameter(String),
    /// Several `inline:` keys on one line.
    #[error("more than one key per line is not supported")]
    SeveralKeys,
    /// A key with a master key identifier (`|MKI:len`).
    #[error("MKI is not supported")]
    Mki,
    /// A key lifetime that could run out within a call.
    #[error("key lifetime {0} is not supported")]
    Lifetime(String),
    /// An RTP/SAVP m-line keyed some other way (MIKEY, DTLS).
    #[error("RTP/SAVP without a=crypto")]
    SavpWithoutCrypto,
    /// The answer's line pairs with none siphon offered.
    #[error(
        "the answer's a=crypto tag {tag} ({}) matches no offered line",
        suite_name(*.suite)
    )]
    UnofferedTag {
        /// The answer's tag.
        tag: u32,
        /// The answer's suite.
        suite: SrtpProfile,
    },
}

/// The RFC 4568 / RFC 7714 name of a suite.
pub fn suite_name(suite: SrtpProfile) -> &'static str {
    match suite {
        SrtpProfile::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
        SrtpProfile::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
        SrtpProfile::AeadAes256Gcm => "AEAD_AES_256_GCM",
    }
}

fn suite_by_name(name: &str) -> Option<SrtpProfile> {
    let all = [
        SrtpProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
    ];
    all.into_iter()
        .find(|s| suite_name(*s).eq_ignore_ascii_case(name))
}

/// Bytes of `key || salt` a suite takes.
pub fn key_len(suite: SrtpProfile) -> usize {
    suite.key_len() + suite.salt_len()
}

/// Reads one `a=crypto` value: `Ok(Err(why))` when siphon does not
/// support it, `Err` when it is malformed.
fn parse(value: &str) -> Result<Result<Crypto, CryptoRefusal>, SdpError> {
    // The tag and suite only: the rest may be a key, and this goes into logs.
    let invalid = || SdpError::InvalidAttribute {
        name: CRYPTO.to_owned(),
        value: value
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut words = value.split_whitespace();
    let (Some(tag), Some(suite), Some(params)) = (words.next(), words.next(), words.next()) else {
        return Err(invalid());
    };
    let tag: u32 = tag
        .parse()
        .ok()
        .filter(|_| tag.len() <= 9)
        .ok_or_else(invalid)?;
    let Some(suite) = suite_by_name(suite) else {
        return Ok(Err(CryptoRefusal::UnknownSuite(suite.to_owned())));
    };
    if let Some(param) = words.find(|p| !p.starts_with("WSH=")) {
        return Ok(Err(CryptoRefusal::SessionParameter(param.to_owned())));
    }
    let key = params.strip_prefix("inline:").ok_or_else(invalid)?;
    if params.contains(';') {
        return Ok(Err(CryptoRefusal::SeveralKeys));
    }
    let mut parts = key.split('|');
    let encoded = parts.next().unwrap_or_default();
    for extra in parts {
        if let Some(why) = unsupported_extra(extra) {
            return Ok(Err(why));
        }
    }
    let bytes = BASE64.decode(encoded).map_err(|_| invalid())?;
    if bytes.len() != key_len(suite) {
        return Err(SdpError::InvalidAttribute {
            name: CRYPTO.to_owned(),
            value: format!(
                "{tag} {}: a {}-byte key, expected {}",
                suite_name(suite),
                bytes.len(),
                key_len(suite)
            ),
        });
    }
    Ok(Ok(Crypto {
        tag,
        suite,
        key: MasterKey::new(bytes),
    }))
}

/// Why a `|lifetime` or `|MKI:len` part makes a line unsupported, if it does.
fn unsupported_extra(extra: &str) -> Option<CryptoRefusal> {
    if extra.contains(':') {
        return Some(CryptoRefusal::Mki);
    }
    let long_enough = match extra.strip_prefix("2^") {
        Some(exp) => exp.parse::<u32>().is_ok_and(|e| e >= MIN_LIFETIME_LOG2),
        None => extra
            .parse::<u64>()
            .is_ok_and(|n| n >= 1 << MIN_LIFETIME_LOG2),
    };
    (!long_enough).then(|| CryptoRefusal::Lifetime(extra.to_owned()))
}

/// The supported `a=crypto` lines of `media`, in the writer's order.
///
/// `Ok(empty)` when there are none at all; `Err` when a line is malformed,
/// or when lines exist but none is supported (the reason names the first).
pub fn read_media(media: &Media) -> Result<Vec<Crypto>, SdpError> {
    let mut usable = Vec::new();
    let mut refused = None;
    for value in media.get_attribute_values(CRYPTO).flatten() {
        match parse(value)? {
            Ok(c) => usable.push(c),
            Err(why) => {
                refused.get_or_insert(why);
            }
        }
    }
    match (usable.is_empty(), refused) {
        (true, Some(why)) => Err(SdpError::CryptoRefused(why)),
        _ => Ok(usable),
    }
}

/// The `a=crypto` value of `c`.
pub fn value(c: &Crypto) -> String {
    format!(
        "{} {} inline:{}",
        c.tag,
        suite_name(c.suite),
        BASE64.encode(c.key.expose())
    )
}

/// Adds an `a=crypto` line per entry.
pub fn write(media: &mut Media, lines: &[Crypto]) {
    for c in lines {
        push(media, CRYPTO, value(c));
    }
}

/// Replaces every `a=crypto` line of `media` with `lines`.
pub fn replace(media: &mut Media, lines: &[Crypto]) {
    media.attributes.retain(|a| a.attribute != CRYPTO);
    write(media, lines);
}

#[cfg(test)]
mod tests;
