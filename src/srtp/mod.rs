//! SRTP/SRTCP contexts that protect and unprotect in place, without allocating.
//!
//! Shared by both media legs: the WebRTC leg keys them from DTLS-SRTP, the
//! SIP leg from SDES (`a=crypto`, RFC 4568). Neither keying is known here.
//!
//! `rtc-srtp` 0.21 returns every protected or unprotected packet as a fresh
//! `BytesMut`, which costs one heap allocation and a copy per media packet on
//! the relay's hot path. So the SRTP framing is written here by hand: key
//! derivation, IVs, tags, ROC estimation and the SRTCP trailer. The crypto
//! itself stays in well-kept crates: HMAC-SHA1 and AES-GCM from the caller's
//! `rtc-crypto` provider, keyed once per context; AES-CTR from RustCrypto's
//! `aes`/`ctr` (what the providers use too) with the key expanded once. The
//! replay windows are rtc-shared's.
//! `rtc-srtp` remains the reference the tests check this against.
//!
//! Only state creation allocates: the session keys when a context is built,
//! and a stream's replay window on its first authenticated packet.

mod aes_cm;
mod gcm;
mod kdf;
mod key;
mod profile;
mod replay;
mod strangers;
mod stream;
mod transform;

use rtc_crypto::RTCCrypto;

pub use key::MasterKey;
pub use profile::SrtpProfile;
use std::time::Instant;

use strangers::Strangers;
use stream::{RtcpStream, RtpStream, Streams};
use transform::{Fail, Transform, RTCP_FIXED};

/// Failed packets with never-authenticated SSRCs tolerated per context.
///
/// Per-SSRC state is only created once a packet authenticates, so forged
/// SSRCs cannot grow memory; the budget still caps the crypto work a flood
/// of forged SSRCs costs. Past it, packets for SSRCs that never
/// authenticated are refused before any crypto runs, until it refills.
const STRANGER_BUDGET: u32 = 256;
/// How fast a spent stranger budget comes back: a flood pays at most this
/// many failed crypto checks a second once the budget is gone, and a peer
/// that changes SSRC after the flood stops is heard again within seconds.
const STRANGER_REFILL_PER_SEC: u32 = 16;

/// The fixed RTP header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC.
const RTP_FIXED: usize = 12;

/// Building a context failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The master key and salt are not the profile's length.
    #[error("SRTP: {profile:?} needs {want} bytes of master key and salt, got {got}")]
    KeyLength {
        /// The profile asked for.
        profile: SrtpProfile,
        /// Its key and salt length.
        want: usize,
        /// The length given.
        got: usize,
    },
    /// The crypto provider refused the key (shared: the provider's error is
    /// not `Clone`).
    #[error("SRTP: {0}")]
    Crypto(#[source] std::sync::Arc<rtc_crypto::CryptoError>),
}

/// Why a packet was not unprotected; a plain `Copy` enum for the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejected {
    /// Too short, or a header that does not parse.
    Malformed,
    /// The authentication tag does not verify.
    Auth,
    /// Already seen, or too old for the replay window.
    Replay,
}

/// Why a packet was not protected; a plain `Copy` enum for the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectError {
    /// The buffer lacks room for the tag (and SRTCP index).
    BufferTooSmall,
    /// Not a parseable RTP/RTCP packet.
    Malformed,
    /// The crypto refused, or the key is exhausted (ROC or SRTCP index overflow).
    Srtp,
}

/// One direction of SRTP+SRTCP for one leg, with replay protection.
pub struct SrtpContext {
    transform: Transform,
    profile: SrtpProfile,
    rtp: Streams<RtpStream>,
    rtcp: Streams<RtcpStream>,
    strangers: Strangers,
}

impl SrtpContext {
    /// Builds a context from a master key and salt (`key || salt`, from DTLS or `a=crypto`).
    pub fn new(
        profile: SrtpProfile,
        key_and_salt: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Result<SrtpContext, SrtpError> {
        let (key_len, salt_len) = (profile.key_len(), profile.salt_len());
        if key_and_salt.len() != key_len + salt_len {
            return Err(SrtpError::KeyLength {
                profile,
                want: key_len + salt_len,
                got: key_and_salt.len(),
            });
        }
        let (key, salt) = key_and_salt.split_at(key_len);
        let transform = Transform::new(profile, crypto, key, salt)
            .map_err(|e| SrtpError::Crypto(std::sync::Arc::new(e)))?;
        Ok(SrtpContext {
            transform,
            profile,
            rtp: Streams::new(),
            rtcp: Streams::new(),
            strangers: Strangers::new(STRANGER_BUDGET, STRANGER_REFILL_PER_SEC),
        })
    }

    /// The profile this context was built for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Gives back stranger budget for the time since the last call (a
    /// token bucket); call it before unprotecting, with the receive time.
    pub fn refill_strangers(&mut self, now: Instant) {
        self.strangers.refill(now);
    }

    /// Decrypts and authenticates SRTP in `buf[..len]`; returns the RTP length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Rejected> {
        let packet = buf.get_mut(..len).ok_or(Rejected::Malformed)?;
        let h = RtpHeader::parse(packet).ok_or(Rejected::Malformed)?;
        if len < h.len + self.profile.rtp_overhead() {
            return Err(Rejected::Malformed);
        }
        let known = self.admit(h.ssrc)?;
        let index = match self.rtp.get(h.ssrc) {
            Some(stream) => {
                let index = stream.index_of(h.seq).ok_or(Rejected::Replay)?;
                if stream.is_replay(index) {
                    return Err(Rejected::Replay);
                }
                index
            }
            // RFC 3711 section 3.3.1: a receiver starts with ROC 0.
            None => u64::from(h.seq),
        };
        match self.transform.open_rtp(packet, h.len, h.ssrc, index) {
            Ok(n) => {
                self.rtp.get_or_insert(h.ssrc, index).accept(index);
                Ok(n)
            }
            Err(fail) => Err(self.refused(known, fail)),
        }
    }

    /// Decrypts and authenticates SRTCP in `buf[..len]`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Rejected> {
        let packet = buf.get_mut(..len).ok_or(Rejected::Malformed)?;
        if len < RTCP_FIXED + self.profile.rtcp_overhead() || !is_rtcp(packet) {
            return Err(Rejected::Malformed);
        }
        let ssrc = read_u32(packet, 4).ok_or(Rejected::Malformed)?;
        let known = self.admit(ssrc)?;
        let (encrypted, index) = self
            .transform
            .rtcp_trailer(packet)
            .ok_or(Rejected::Malformed)?;
        if let Some(stream) = self.rtcp.get(ssrc) {
            if stream.is_replay(index) {
                return Err(Rejected::Replay);
            }
        }
        match self.transform.open_rtcp(packet, ssrc, index, encrypted) {
            Ok(n) => {
                self.rtcp.get_or_insert(ssrc, 0).accept(index);
                Ok(n)
            }
            Err(fail) => Err(self.refused(known, fail)),
        }
    }

    /// Encrypts RTP in `buf[..len]` in place; `buf` needs `rtp_overhead` spare bytes.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        check_room(buf, len, RTP_FIXED, self.profile.rtp_overhead())?;
        let h = RtpHeader::parse(&buf[..len]).ok_or(ProtectError::Malformed)?;
        let stream = self.rtp.get_or_insert(h.ssrc, u64::from(h.seq));
        // The sender tracks its own ROC the way a receiver would, so that
        // reordered or repeated sequence numbers keep the right index.
        let index = stream.index_of(h.seq).ok_or(ProtectError::Srtp)?;
        let n = self
            .transform
            .seal_rtp(buf, h.len, len, h.ssrc, index)
            .map_err(send_error)?;
        if let Some(stream) = self.rtp.get(h.ssrc) {
            stream.advance(index);
        }
        Ok(n)
    }

    /// Encrypts RTCP in `buf[..len]` in place; `buf` needs `rtcp_overhead` spare bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ProtectError> {
        check_room(buf, len, RTCP_FIXED, self.profile.rtcp_overhead())?;
        if !is_rtcp(&buf[..len]) {
            return Err(ProtectError::Malformed);
        }
        let ssrc = read_u32(buf, 4).ok_or(ProtectError::Malformed)?;
        let index = self
            .rtcp
            .get_or_insert(ssrc, 0)
            .take_index()
            .ok_or(ProtectError::Srtp)?;
        self.transform
            .seal_rtcp(buf, len, ssrc, index)
            .map_err(send_error)
    }

    /// Whether `ssrc` ever authenticated; refuses it if not and the budget is spent.
    fn admit(&self, ssrc: u32) -> Result<bool, Rejected> {
        let known = self.rtp.contains(ssrc) || self.rtcp.contains(ssrc);
        if !known && self.strangers.spent() {
            return Err(Rejected::Auth);
        }
        Ok(known)
    }

    /// The drop reason for a packet the transform refused, charging strangers.
    fn refused(&mut self, known: bool, fail: Fail) -> Rejected {
        if !known {
            self.strangers.charge();
        }
        match fail {
            Fail::Auth | Fail::Crypto => Rejected::Auth,
            Fail::Malformed => Rejected::Malformed,
        }
    }
}

/// What SRTP needs of an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RtpHeader {
    /// Octets before the payload: fixed part, CSRCs, extension block.
    len: usize,
    seq: u16,
    ssrc: u32,
}

impl RtpHeader {
    /// Reads the header without copying it; `None` if it is truncated or not RTP v2.
    fn parse(packet: &[u8]) -> Option<RtpHeader> {
        let first = *packet.first()?;
        if first >> 6 != 2 {
            return None;
        }
        let mut len = RTP_FIXED + 4 * usize::from(first & 0x0f);
        if first & 0x10 != 0 {
            let ext = packet.get(len..len + 4)?;
            len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if packet.len() < len {
            return None;
        }
        Some(RtpHeader {
            len,
            seq: u16::from_be_bytes([packet[2], packet[3]]),
            ssrc: read_u32(packet, 8)?,
        })
    }
}

/// Whether `packet` starts like RTCP version 2.
fn is_rtcp(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b >> 6 == 2)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn check_room(buf: &[u8], len: usize, min: usize, overhead: usize) -> Result<(), ProtectError> {
    if len < min || len > buf.len() {
        return Err(ProtectError::Malformed);
    }
    if len + overhead > buf.len() {
        return Err(ProtectError::BufferTooSmall);
    }
    Ok(())
}

fn send_error(fail: Fail) -> ProtectError {
    match fail {
        Fail::Malformed => ProtectError::Malformed,
        Fail::Auth | Fail::Crypto => ProtectError::Srtp,
    }
}

#[cfg(test)]
mod tests;
