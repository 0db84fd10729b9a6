//! AEAD_AES_128_GCM and AEAD_AES_256_GCM for SRTP (RFC 7714), in place.
//!
//! The AEAD comes from the caller's `RTCCrypto` provider, keyed once per
//! context; only the SRTP framing (IV, AAD, trailer) lives here.

use rtc_crypto::{AeadAlgorithm, AeadCipher, CryptoError, RTCCrypto};

use super::kdf::{self, Labels};
use super::transform::{split, split_tail, Fail, E_FLAG, RTCP_FIXED};

/// GCM authentication tag length (RFC 7714 section 7.1 uses 16 octets).
pub(super) const TAG_LEN: usize = 16;
/// Session salt length (96 bits).
const SALT_LEN: usize = 12;

/// Session keys for SRTP or for SRTCP.
struct Keys {
    aead: Box<dyn AeadCipher>,
    salt: [u8; SALT_LEN],
}

impl Keys {
    fn derive(
        crypto: &dyn RTCCrypto,
        master_key: &[u8],
        master_salt: &[u8],
        labels: Labels,
    ) -> Result<Keys, CryptoError> {
        let algorithm = match master_key.len() {
            16 => AeadAlgorithm::Aes128Gcm,
            _ => AeadAlgorithm::Aes256Gcm,
        };
        let mut key = [0u8; 32];
        let key = &mut key[..master_key.len().min(32)];
        let mut salt = [0u8; SALT_LEN];
        kdf::derive(crypto, master_key, master_salt, labels.cipher, key)?;
        kdf::derive(crypto, master_key, master_salt, labels.salt, &mut salt)?;
        let aead = crypto.new_aead(algorithm, key)?;
        key.fill(0);
        if aead.tag_len() != TAG_LEN {
            return Err(CryptoError::InvalidTagLength {
                expected: TAG_LEN,
                actual: aead.tag_len(),
            });
        }
        Ok(Keys { aead, salt })
    }

    /// The 12-byte IV: 00 00 || SSRC || 48-bit index, XOR the salt.
    ///
    /// For SRTP the index is ROC || SEQ (RFC 7714 section 8.1); for SRTCP it
    /// is 00 00 || the 31-bit SRTCP index (section 9.1): the same layout.
    fn iv(&self, ssrc: u32, index: u64) -> [u8; SALT_LEN] {
        let mut iv = [0u8; SALT_LEN];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        iv
    }
}

/// SRTP and SRTCP session state for the AES-GCM profiles.
pub(super) struct Gcm {
    rtp: Keys,
    rtcp: Keys,
}

impl Gcm {
    /// Derives the session keys; AES-128 or AES-256 follows the master key length.
    pub fn new(
        crypto: &dyn RTCCrypto,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Gcm, CryptoError> {
        Ok(Gcm {
            rtp: Keys::derive(crypto, master_key, master_salt, kdf::SRTP)?,
            rtcp: Keys::derive(crypto, master_key, master_salt, kdf::SRTCP)?,
        })
    }

    /// Seals `buf[header_len..len]` with the header as AAD and appends the tag.
    pub fn seal_rtp(
        &mut self,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Fail> {
        let iv = self.rtp.iv(ssrc, index);
        let (packet, tail) = split(buf, len)?;
        let (header, payload) = split(packet, header_len)?;
        let tag = tail.get_mut(..TAG_LEN).ok_or(Fail::Malformed)?;
        self.rtp
            .aead
            .seal_in_place(&iv, header, payload, tag)
            .map_err(|_| Fail::Crypto)?;
        Ok(len + TAG_LEN)
    }

    /// Opens `packet` (header, ciphertext, tag); returns the RTP length.
    pub fn open_rtp(
        &mut self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Fail> {
        let iv = self.rtp.iv(ssrc, index);
        let (body, tag) = split_tail(packet, TAG_LEN)?;
        let body_len = body.len();
        let (header, payload) = split(body, header_len)?;
        self.rtp
            .aead
            .open_in_place(&iv, header, payload, tag)
            .map_err(|_| Fail::Auth)?;
        Ok(body_len)
    }

    /// Seals RTCP in `buf[..len]`, appends the tag and E|index; returns the new length.
    ///
    /// AAD is the first 8 octets and the E|index word (RFC 7714 section 9.2).
    pub fn seal_rtcp(
        &mut self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
    ) -> Result<usize, Fail> {
        let iv = self.rtcp.iv(ssrc, u64::from(index));
        let word = (index | E_FLAG).to_be_bytes();
        let (packet, tail) = split(buf, len)?;
        let (fixed, payload) = split(packet, RTCP_FIXED)?;
        let aad = encrypted_aad(fixed, word)?;
        let (tag, tail) = split(tail, TAG_LEN)?;
        self.rtcp
            .aead
            .seal_in_place(&iv, &aad, payload, tag)
            .map_err(|_| Fail::Crypto)?;
        tail.get_mut(..4)
            .ok_or(Fail::Malformed)?
            .copy_from_slice(&word);
        Ok(len + TAG_LEN + 4)
    }

    /// Opens SRTCP `packet` (RTCP, tag, E|index); returns the RTCP length.
    ///
    /// With the E flag clear the whole RTCP packet is AAD and nothing is
    /// encrypted (RFC 7714 section 9.3); the trailer word is then moved over
    /// the tag so that the AAD is contiguous, and the tag kept on the stack.
    pub fn open_rtcp(
        &mut self,
        packet: &mut [u8],
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, Fail> {
        let iv = self.rtcp.iv(ssrc, u64::from(index));
        let (body, word) = split_tail(packet, 4)?;
        let word = [word[0], word[1], word[2], word[3]];
        let (rtcp, tag) = split_tail(body, TAG_LEN)?;
        let rtcp_len = rtcp.len();
        if encrypted {
            let (fixed, payload) = split(rtcp, RTCP_FIXED)?;
            let aad = encrypted_aad(fixed, word)?;
            self.rtcp
                .aead
                .open_in_place(&iv, &aad, payload, tag)
                .map_err(|_| Fail::Auth)?;
        } else {
            let mut saved = [0u8; TAG_LEN];
            saved.copy_from_slice(tag);
            body.get_mut(rtcp_len..rtcp_len + 4)
                .ok_or(Fail::Malformed)?
                .copy_from_slice(&word);
            let aad = body.get(..rtcp_len + 4).ok_or(Fail::Malformed)?;
            self.rtcp
                .aead
                .open_in_place(&iv, aad, &mut [], &saved)
                .map_err(|_| Fail::Auth)?;
        }
        Ok(rtcp_len)
    }
}

/// AAD of an encrypted SRTCP packet: its first 8 octets, then E|index.
fn encrypted_aad(fixed: &[u8], word: [u8; 4]) -> Result<[u8; 12], Fail> {
    let mut aad = [0u8; 12];
    aad.get_mut(..RTCP_FIXED)
        .ok_or(Fail::Malformed)?
        .copy_from_slice(fixed.get(..RTCP_FIXED).ok_or(Fail::Malformed)?);
    aad[RTCP_FIXED..].copy_from_slice(&word);
    Ok(aad)
}

/// The E|index word of an SRTCP `packet`: its last 4 octets.
pub(super) fn rtcp_trailer(packet: &[u8]) -> Option<u32> {
    let word = packet.get(packet.len().checked_sub(4)?..)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}
