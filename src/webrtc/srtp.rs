//! SRTP/SRTCP contexts with an in-place API, over `rtc-srtp`.
//!
//! `rtc-srtp` 0.21 returns every protected or unprotected packet as a fresh
//! `BytesMut` (`Context::{encrypt,decrypt}_rtp_with_header`,
//! `Context::{encrypt,decrypt}_rtcp`), so each call here costs one heap
//! allocation plus a copy back into the caller's buffer. The in-place
//! signatures stay so the backend can be swapped without touching callers
//! (rtc-crypto's `StreamCipher`/`AeadCipher` already work in place).

use rtc_rtp::Header;
use rtc_shared::error::Error as SrtpLibError;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::{DropReason, SendError, WebRtcError};

/// SRTP replay window in packets (RFC 3711 asks for at least 64).
const SRTP_REPLAY_WINDOW: usize = 512;
/// SRTCP replay window in packets.
const SRTCP_REPLAY_WINDOW: usize = 128;
/// Failed packets with never-authenticated SSRCs tolerated per context.
///
/// `rtc-srtp` creates per-SSRC state (a boxed replay window) before it checks
/// the tag, so forged packets with random SSRCs would grow its map without
/// bound. Past this budget, packets for SSRCs that never authenticated are
/// refused before they reach the library.
const STRANGER_BUDGET: u32 = 256;

/// The SRTP protection profiles siphon negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (RFC 5764).
    Aes128CmHmacSha1_80,
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

    fn protection(self) -> ProtectionProfile {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        self.protection().key_len()
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        self.protection().salt_len()
    }

    /// Bytes SRTP adds to an RTP packet.
    pub fn rtp_overhead(self) -> usize {
        let p = self.protection();
        p.rtp_auth_tag_len() + p.aead_auth_tag_len()
    }

    /// Bytes SRTCP adds to an RTCP packet (tag plus the 4-byte SRTCP index).
    pub fn rtcp_overhead(self) -> usize {
        let p = self.protection();
        p.rtcp_auth_tag_len() + p.aead_auth_tag_len() + 4
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

/// One direction of SRTP+SRTCP for one leg, with replay protection.
pub struct SrtpContext {
    inner: Context,
    profile: SrtpProfile,
    /// SSRCs that have authenticated at least once (a handful per leg).
    known_ssrcs: Vec<u32>,
    strangers_left: u32,
}

impl SrtpContext {
    /// Builds a context from a master key and salt (`key || salt`, as split from DTLS).
    pub fn new(
        profile: SrtpProfile,
        key_and_salt: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Result<SrtpContext, WebRtcError> {
        let (key, salt) = key_and_salt.split_at(profile.key_len().min(key_and_salt.len()));
        let inner = Context::new(
            key,
            salt,
            profile.protection(),
            Some(srtp_replay_protection(SRTP_REPLAY_WINDOW)),
            Some(srtcp_replay_protection(SRTCP_REPLAY_WINDOW)),
            crypto,
        )
        .map_err(|e| WebRtcError::Srtp(e.to_string()))?;
        Ok(SrtpContext {
            inner,
            profile,
            known_ssrcs: Vec::with_capacity(4),
            strangers_left: STRANGER_BUDGET,
        })
    }

    /// The profile this context was built for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Decrypts and authenticates SRTP in `buf[..len]`; returns the RTP length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, DropReason> {
        let packet = buf.get(..len).ok_or(DropReason::SrtpMalformed)?;
        let header = srtp_header(packet).ok_or(DropReason::SrtpMalformed)?;
        self.admit(header.ssrc)?;
        let out = self.inner.decrypt_rtp_with_header(packet, &header);
        self.finish_unprotect(buf, header.ssrc, out)
    }

    /// Decrypts and authenticates SRTCP in `buf[..len]`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, DropReason> {
        let ssrc = read_ssrc(buf, len, 4)?;
        self.admit(ssrc)?;
        let out = self.inner.decrypt_rtcp(&buf[..len]);
        self.finish_unprotect(buf, ssrc, out)
    }

    /// Encrypts RTP in `buf[..len]` in place; `buf` needs `rtp_overhead` spare bytes.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SendError> {
        check_room(buf, len, 12, self.profile.rtp_overhead())?;
        let header = srtp_header(&buf[..len]).ok_or(SendError::Malformed)?;
        let out = self.inner.encrypt_rtp_with_header(&buf[..len], &header);
        copy_back(buf, out)
    }

    /// Encrypts RTCP in `buf[..len]` in place; `buf` needs `rtcp_overhead` spare bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SendError> {
        check_room(buf, len, 8, self.profile.rtcp_overhead())?;
        let out = self.inner.encrypt_rtcp(&buf[..len]);
        copy_back(buf, out)
    }

    fn admit(&self, ssrc: u32) -> Result<(), DropReason> {
        if self.strangers_left == 0 && !self.known_ssrcs.contains(&ssrc) {
            return Err(DropReason::SrtpAuth);
        }
        Ok(())
    }

    fn finish_unprotect(
        &mut self,
        buf: &mut [u8],
        ssrc: u32,
        out: Result<bytes::BytesMut, SrtpLibError>,
    ) -> Result<usize, DropReason> {
        let known = self.known_ssrcs.contains(&ssrc);
        match out {
            Ok(plain) if plain.len() <= buf.len() => {
                if !known {
                    self.known_ssrcs.push(ssrc);
                }
                buf[..plain.len()].copy_from_slice(&plain);
                Ok(plain.len())
            }
            Ok(_) => Err(DropReason::SrtpMalformed),
            Err(e) => {
                if !known {
                    self.strangers_left = self.strangers_left.saturating_sub(1);
                }
                Err(drop_reason(&e))
            }
        }
    }
}

/// The header rtc-srtp needs, built without `Header::unmarshal`.
///
/// `unmarshal` copies every header extension into its own allocation (five
/// allocations for a typical browser audio packet). rtc-srtp reads only
/// `ssrc`, `sequence_number` and `marshal_size()` (the payload offset), so
/// CSRCs and the extension block are carried as opaque extension padding of
/// the right length instead.
fn srtp_header(packet: &[u8]) -> Option<Header> {
    let first = *packet.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let mut header_len = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let ext = packet.get(header_len..header_len + 4)?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if packet.len() < header_len {
        return None;
    }
    Some(Header {
        version: 2,
        sequence_number: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        // marshal_size() = 12 + (4 + padding) when `extension` is set.
        extension: header_len > 12,
        extensions_padding: header_len.saturating_sub(16),
        ..Header::default()
    })
}

fn read_ssrc(buf: &[u8], len: usize, at: usize) -> Result<u32, DropReason> {
    let packet = buf.get(..len).ok_or(DropReason::SrtpMalformed)?;
    match packet.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(DropReason::SrtpMalformed),
    }
}

fn check_room(buf: &[u8], len: usize, min: usize, overhead: usize) -> Result<(), SendError> {
    if len < min || len > buf.len() {
        return Err(SendError::Malformed);
    }
    if len + overhead > buf.len() {
        return Err(SendError::BufferTooSmall);
    }
    Ok(())
}

fn copy_back(
    buf: &mut [u8],
    out: Result<bytes::BytesMut, SrtpLibError>,
) -> Result<usize, SendError> {
    let out = out.map_err(|e| match e {
        SrtpLibError::ErrExceededMaxPackets | SrtpLibError::Crypto(_) => SendError::Srtp,
        _ => SendError::Malformed,
    })?;
    let dst = buf.get_mut(..out.len()).ok_or(SendError::BufferTooSmall)?;
    dst.copy_from_slice(&out);
    Ok(out.len())
}

fn drop_reason(e: &SrtpLibError) -> DropReason {
    match e {
        SrtpLibError::SrtpSsrcDuplicated(..) | SrtpLibError::SrtcpSsrcDuplicated(..) => {
            DropReason::SrtpReplay
        }
        SrtpLibError::RtpFailedToVerifyAuthTag
        | SrtpLibError::RtcpFailedToVerifyAuthTag
        | SrtpLibError::ErrFailedToVerifyAuthTag
        | SrtpLibError::Crypto(_) => DropReason::SrtpAuth,
        _ => DropReason::SrtpMalformed,
    }
}

#[cfg(test)]
mod tests;
