//! AES_CM_128_HMAC_SHA1_80 and _32 (RFC 3711 sections 4.1.1 and 4.2.1), in place.
//!
//! HMAC-SHA1 comes from the caller's `RTCCrypto` provider and AES-CTR from
//! RustCrypto, both keyed once per context; only the SRTP framing around
//! them lives here.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128Enc;
use rtc_crypto::{constant_time_eq, CryptoError, HmacAlgorithm, Mac, RTCCrypto};

use super::kdf::{self, Labels};
use super::transform::{split, split_tail, Fail, E_FLAG, RTCP_FIXED};

/// Bytes of HMAC-SHA1 kept on the wire (80 bits); always so on SRTCP.
pub(super) const TAG_LEN: usize = 10;
/// The SRTP tag of AES_CM_128_HMAC_SHA1_32 (32 bits).
pub(super) const SHORT_TAG_LEN: usize = 4;
/// Session salt length (112 bits).
const SALT_LEN: usize = 14;
/// Session authentication key length (160 bits).
const AUTH_KEY_LEN: usize = 20;
/// Full HMAC-SHA1 output.
const SHA1_LEN: usize = 20;

/// Session keys for SRTP or for SRTCP.
struct Keys {
    /// The expanded session key (wiped on drop). Held here rather than as the
    /// provider's `StreamCipher`, which expands the key again on every packet.
    cipher: Aes128Enc,
    mac: Box<dyn Mac>,
    salt: [u8; SALT_LEN],
}

impl Keys {
    fn derive(
        crypto: &dyn RTCCrypto,
        master_key: &[u8],
        master_salt: &[u8],
        labels: Labels,
    ) -> Result<Keys, CryptoError> {
        let mut key = [0u8; 16];
        let mut auth = [0u8; AUTH_KEY_LEN];
        let mut salt = [0u8; SALT_LEN];
        kdf::derive(crypto, master_key, master_salt, labels.cipher, &mut key)?;
        kdf::derive(crypto, master_key, master_salt, labels.auth, &mut auth)?;
        kdf::derive(crypto, master_key, master_salt, labels.salt, &mut salt)?;
        let keys = Keys {
            cipher: Aes128Enc::new_from_slice(&key).map_err(|_| CryptoError::InvalidKeyLength {
                expected: 16,
                actual: key.len(),
            })?,
            mac: crypto.new_hmac(HmacAlgorithm::Sha1, &auth)?,
            salt,
        };
        key.fill(0);
        auth.fill(0);
        Ok(keys)
    }

    /// XORs the keystream for (`ssrc`, `index`) into `data`.
    fn apply(&mut self, ssrc: u32, index: u64, data: &mut [u8]) -> Result<(), Fail> {
        // IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16), i the 48-bit index.
        let mut iv = [0u8; 16];
        iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..14].copy_from_slice(&index.to_be_bytes()[2..]);
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        // RFC 3711 section 4.1.1: a 128-bit big-endian counter from the IV.
        let core = ctr::CtrCore::inner_iv_init(self.cipher.clone(), &iv.into());
        let mut ctr = ctr::Ctr128BE::<Aes128Enc>::from_core(core);
        ctr.try_apply_keystream(data).map_err(|_| Fail::Crypto)
    }

    /// The 80-bit tag over the concatenation of `parts` (SHA1_32 keeps its first 4 octets).
    fn tag(&mut self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN], Fail> {
        let mut full = [0u8; SHA1_LEN];
        self.mac.sign(parts, &mut full).map_err(|_| Fail::Crypto)?;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        Ok(tag)
    }
}

/// SRTP and SRTCP session state for AES_CM_128_HMAC_SHA1_80.
pub(super) struct AesCm {
    rtp: Keys,
    rtcp: Keys,
    /// Tag octets on SRTP: 10, or 4 for SHA1_32.
    rtp_tag: usize,
}

impl AesCm {
    /// Derives the session keys from a master key and salt.
    pub fn new(
        crypto: &dyn RTCCrypto,
        master_key: &[u8],
        master_salt: &[u8],
        rtp_tag: usize,
    ) -> Result<AesCm, CryptoError> {
        Ok(AesCm {
            rtp: Keys::derive(crypto, master_key, master_salt, kdf::SRTP)?,
            rtcp: Keys::derive(crypto, master_key, master_salt, kdf::SRTCP)?,
            rtp_tag: rtp_tag.min(TAG_LEN),
        })
    }

    /// Encrypts `buf[header_len..len]` and appends the tag; returns the new length.
    pub fn seal_rtp(
        &mut self,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Fail> {
        let (packet, tail) = split(buf, len)?;
        let (_, payload) = split(packet, header_len)?;
        self.rtp.apply(ssrc, index, payload)?;
        let roc = roc_bytes(index);
        let tag = self.rtp.tag(&[&*packet, &roc])?;
        let n = self.rtp_tag;
        tail.get_mut(..n)
            .ok_or(Fail::Malformed)?
            .copy_from_slice(&tag[..n]);
        Ok(len + n)
    }

    /// Authenticates and decrypts `packet` (header, payload, tag); returns the RTP length.
    pub fn open_rtp(
        &mut self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, Fail> {
        let n = self.rtp_tag;
        let (body, tag) = split_tail(packet, n)?;
        let expected = self.rtp.tag(&[&*body, &roc_bytes(index)])?;
        if !constant_time_eq(&expected[..n], tag) {
            return Err(Fail::Auth);
        }
        let body_len = body.len();
        let (_, payload) = split(body, header_len)?;
        self.rtp.apply(ssrc, index, payload)?;
        Ok(body_len)
    }

    /// Encrypts RTCP in `buf[..len]`, appends E|index and the tag; returns the new length.
    pub fn seal_rtcp(
        &mut self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
    ) -> Result<usize, Fail> {
        let (packet, tail) = split(buf, len)?;
        let (_, payload) = split(packet, RTCP_FIXED)?;
        self.rtcp.apply(ssrc, u64::from(index), payload)?;
        let (trailer, tail) = split(tail, 4)?;
        trailer.copy_from_slice(&(index | E_FLAG).to_be_bytes());
        let tag = self.rtcp.tag(&[&*packet, &*trailer])?;
        tail.get_mut(..TAG_LEN)
            .ok_or(Fail::Malformed)?
            .copy_from_slice(&tag);
        Ok(len + 4 + TAG_LEN)
    }

    /// Authenticates SRTCP `packet`, decrypts it if `encrypted`; returns the RTCP length.
    ///
    /// The tag covers the packet whatever the E flag says (RFC 3711 section
    /// 3.4: authentication is mandatory for SRTCP).
    pub fn open_rtcp(
        &mut self,
        packet: &mut [u8],
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, Fail> {
        let (body, tag) = split_tail(packet, TAG_LEN)?;
        let expected = self.rtcp.tag(&[&*body])?;
        if !constant_time_eq(&expected, tag) {
            return Err(Fail::Auth);
        }
        let (rtcp, _) = split_tail(body, 4)?;
        let rtcp_len = rtcp.len();
        if encrypted {
            let (_, payload) = split(rtcp, RTCP_FIXED)?;
            self.rtcp.apply(ssrc, u64::from(index), payload)?;
        }
        Ok(rtcp_len)
    }
}

/// The E|index word of an SRTCP `packet`: it sits just before the tag.
pub(super) fn rtcp_trailer(packet: &[u8]) -> Option<u32> {
    let end = packet.len().checked_sub(TAG_LEN)?;
    let word = packet.get(end.checked_sub(4)?..end)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// The ROC appended to the authenticated portion (RFC 3711 section 4.2).
fn roc_bytes(index: u64) -> [u8; 4] {
    ((index >> 16) as u32).to_be_bytes()
}
