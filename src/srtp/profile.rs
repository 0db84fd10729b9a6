//! The SRTP protection profiles and their sizes.

use super::{aes_cm, gcm};

/// The SRTP protection profiles siphon negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (RFC 5764).
    Aes128CmHmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32 (RFC 4568): a 32-bit tag on SRTP, 80 bits on
    /// SRTCP (RFC 3711 section 5.2). Offered over SDES, never by DTLS here.
    Aes128CmHmacSha1_32,
    /// SRTP_AEAD_AES_128_GCM (RFC 7714).
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM (RFC 7714); browsers offer it and DTLS prefers it.
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Maps the profile DTLS negotiated; `None` for one we do not support.
    pub(crate) fn from_dtls(profile: dimpl::SrtpProfile) -> Option<SrtpProfile> {
        match profile {
            dimpl::SrtpProfile::AES128_CM_SHA1_80 => Some(SrtpProfile::Aes128CmHmacSha1_80),
            dimpl::SrtpProfile::AEAD_AES_128_GCM => Some(SrtpProfile::AeadAes128Gcm),
            dimpl::SrtpProfile::AEAD_AES_256_GCM => Some(SrtpProfile::AeadAes256Gcm),
            _ => None,
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80
            | SrtpProfile::Aes128CmHmacSha1_32
            | SrtpProfile::AeadAes128Gcm => 16,
            SrtpProfile::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes (112 bits for AES-CM, 96 for GCM).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 | SrtpProfile::Aes128CmHmacSha1_32 => 14,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 12,
        }
    }

    /// Bytes SRTP adds to an RTP packet (the tag).
    pub fn rtp_overhead(self) -> usize {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 => aes_cm::TAG_LEN,
            SrtpProfile::Aes128CmHmacSha1_32 => aes_cm::SHORT_TAG_LEN,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => gcm::TAG_LEN,
        }
    }

    /// Bytes SRTCP adds to an RTCP packet (tag plus the 4-byte SRTCP index).
    pub fn rtcp_overhead(self) -> usize {
        let tag = match self {
            SrtpProfile::Aes128CmHmacSha1_80 | SrtpProfile::Aes128CmHmacSha1_32 => aes_cm::TAG_LEN,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => gcm::TAG_LEN,
        };
        tag + 4
    }

    /// Splits RFC 5764 section 4.2 keying material into (client, server) master key+salt.
    ///
    /// Layout: client key | server key | client salt | server salt.
    pub(crate) fn split_keying_material(self, m: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let (k, s) = (self.key_len(), self.salt_len());
        if m.len() < 2 * (k + s) {
            return None;
        }
        let client = [&m[..k], &m[2 * k..2 * k + s]].concat();
        let server = [&m[k..2 * k], &m[2 * k + s..2 * (k + s)]].concat();
        Some((client, server))
    }
}
