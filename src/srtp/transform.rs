//! The per-profile packet transforms behind one enum, and their shared helpers.

use rtc_crypto::{CryptoError, RTCCrypto};

use super::aes_cm::{self, AesCm};
use super::gcm::{self, Gcm};
use super::SrtpProfile;

/// The RTCP octets SRTCP never encrypts: the first header word and the sender SSRC.
pub(super) const RTCP_FIXED: usize = 8;
/// The E flag in the SRTCP trailer word (RFC 3711 section 3.4).
pub(super) const E_FLAG: u32 = 1 << 31;

/// Why a transform refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fail {
    /// The tag does not verify.
    Auth,
    /// Lengths do not fit (the callers check first; this keeps slicing panic-free).
    Malformed,
    /// The crypto provider refused.
    Crypto,
}

/// Splits `buf` at `at`, or fails instead of panicking.
pub(super) fn split(buf: &mut [u8], at: usize) -> Result<(&mut [u8], &mut [u8]), Fail> {
    buf.split_at_mut_checked(at).ok_or(Fail::Malformed)
}

/// Splits the last `n` octets off `buf`.
pub(super) fn split_tail(buf: &mut [u8], n: usize) -> Result<(&mut [u8], &mut [u8]), Fail> {
    let at = buf.len().checked_sub(n).ok_or(Fail::Malformed)?;
    split(buf, at)
}

/// The session state of one profile.
pub(super) enum Transform {
    /// Boxed: the expanded AES key with its software fallback is large.
    AesCm(Box<AesCm>),
    Gcm(Gcm),
}

impl Transform {
    /// Derives the session keys for `profile`.
    pub fn new(
        profile: SrtpProfile,
        crypto: &dyn RTCCrypto,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Transform, CryptoError> {
        Ok(match profile {
            SrtpProfile::Aes128CmHmacSha1_80 => Transform::AesCm(Box::new(AesCm::new(
                crypto,
                master_key,
                master_salt,
                aes_cm::TAG_LEN,
            )?)),
            SrtpProfile::Aes128CmHmacSha1_32 => Transform::AesCm(Box::new(AesCm::new(
                crypto,
                master_key,
                master_salt,
                aes_cm::SHORT_TAG_LEN,
            )?)),
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => {
                Transform::Gcm(Gcm::new(crypto, master_key, master_salt)?)
            }
        })
    }

    /// Protects RTP in `buf[..len]`; returns the SRTP length.
    pub fn seal_rtp(
        &mut self,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Fail> {
        match self {
            Transform::AesCm(t) => t.seal_rtp(buf, header_len, len, ssrc, index),
            Transform::Gcm(t) => t.seal_rtp(buf, header_len, len, ssrc, index),
        }
    }

    /// Unprotects the SRTP `packet`; returns the RTP length.
    pub fn open_rtp(
        &mut self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Fail> {
        match self {
            Transform::AesCm(t) => t.open_rtp(packet, header_len, ssrc, index),
            Transform::Gcm(t) => t.open_rtp(packet, header_len, ssrc, index),
        }
    }

    /// Protects RTCP in `buf[..len]` with SRTCP `index`; returns the SRTCP length.
    pub fn seal_rtcp(
        &mut self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
    ) -> Result<usize, Fail> {
        match self {
            Transform::AesCm(t) => t.seal_rtcp(buf, len, ssrc, index),
            Transform::Gcm(t) => t.seal_rtcp(buf, len, ssrc, index),
        }
    }

    /// The (E flag, SRTCP index) of an SRTCP `packet`.
    pub fn rtcp_trailer(&self, packet: &[u8]) -> Option<(bool, u32)> {
        let word = match self {
            Transform::AesCm(_) => aes_cm::rtcp_trailer(packet)?,
            Transform::Gcm(_) => gcm::rtcp_trailer(packet)?,
        };
        Some((word & E_FLAG != 0, word & !E_FLAG))
    }

    /// Unprotects the SRTCP `packet`; returns the RTCP length.
    pub fn open_rtcp(
        &mut self,
        packet: &mut [u8],
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, Fail> {
        match self {
            Transform::AesCm(t) => t.open_rtcp(packet, ssrc, index, encrypted),
            Transform::Gcm(t) => t.open_rtcp(packet, ssrc, index, encrypted),
        }
    }
}
