//! Where a load packet's time goes, pass by pass.
//!
//! The browser stamps its send time into the payload. The echoing UAS
//! writes two more stamps: when the kernel received the packet, and when the
//! echo sent it back. The browser takes the kernel's receive time of the
//! echo. So each pass through siphon is measured from kernel to kernel,
//! and the generator's own queues (a busy generator core, a late task) stay
//! out of it:
//!
//! | payload bytes | stamp |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..16 | browser send |
//! | 16..24 | kernel receive at the UAS |
//! | 24..32 | UAS send |
//!
//! All stamps are microseconds since the UNIX epoch: `SO_TIMESTAMPNS`
//! reports CLOCK_REALTIME. On loopback the kernel stamps a datagram as the
//! sender's `sendto` hands it to the device, so a pass ends when siphon
//! sends, not when the generator gets round to reading.
//!
//! The kernel's receive times come from `siphon::media::rx_time`; the echo
//! writes its stamps through the [`PassStamper`] tap the load tool installs.

pub use siphon::media::rx_time::now_us;
use siphon::sip::{EchoRtp, EchoTap};

/// Marks the load tool's payloads, so that anything else is counted as bad.
pub const MAGIC: u64 = 0x5349_5048_4f4e_2142;
/// Payload bytes the stamps take.
pub const STAMPS_LEN: usize = 32;

/// The stamps of one packet, in µs since the UNIX epoch. The UAS's two are
/// 0 when the echo did not stamp (an echo other than siphon-load's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamps {
    /// The browser's send time.
    pub sent: u64,
    /// The kernel's receive time at the UAS.
    pub uas_rx: u64,
    /// The UAS's send time.
    pub uas_tx: u64,
}

impl Stamps {
    /// Browser -> siphon -> UAS, kernel to kernel.
    pub fn to_sip_us(&self) -> Option<u64> {
        (self.uas_rx != 0).then(|| self.uas_rx.saturating_sub(self.sent))
    }

    /// UAS -> siphon -> browser, given the kernel's receive time `rx`.
    pub fn to_browser_us(&self, rx: u64) -> Option<u64> {
        (self.uas_tx != 0).then(|| rx.saturating_sub(self.uas_tx))
    }

    /// How long the echo held the packet (the generator's own share).
    pub fn echo_hold_us(&self) -> Option<u64> {
        (self.uas_tx != 0).then(|| self.uas_tx.saturating_sub(self.uas_rx))
    }
}

/// Write [`MAGIC`] and the send stamp `sent` at the start of `payload`
/// (at least [`STAMPS_LEN`] bytes); the UAS's stamps start at 0.
pub fn write_sent(payload: &mut [u8], sent: u64) {
    payload[..8].copy_from_slice(&MAGIC.to_be_bytes());
    payload[8..16].copy_from_slice(&sent.to_be_bytes());
    payload[16..STAMPS_LEN].fill(0);
}

/// The stamps in an RTP packet, if its payload is ours.
pub fn read(rtp: &[u8]) -> Option<Stamps> {
    let p = rtp.get(payload_start(rtp)?..)?.get(..STAMPS_LEN)?;
    let word = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().unwrap_or_default());
    (word(0) == MAGIC).then(|| Stamps {
        sent: word(8),
        uas_rx: word(16),
        uas_tx: word(24),
    })
}

/// At the echo: record the kernel's receive time `rx` and the send time
/// `tx` in a packet of ours; false (and untouched) for any other packet.
pub fn restamp(rtp: &mut [u8], rx: u64, tx: u64) -> bool {
    if read(rtp).is_none() {
        return false;
    }
    let Some(at) = payload_start(rtp) else {
        return false;
    };
    rtp[at + 16..at + 24].copy_from_slice(&rx.to_be_bytes());
    rtp[at + 24..at + 32].copy_from_slice(&tx.to_be_bytes());
    true
}

/// The echo's tap for the load tool: each packet of ours that the echo
/// returns gets the kernel's receive time and the echo's send time. It
/// takes each call's RTP socket over, to echo it from the media thread
/// (`engine`) with the browsers, stamping the same way.
#[derive(Debug)]
pub struct PassStamper;

impl EchoTap for PassStamper {
    fn on_echo(&self, rtp: &mut [u8], received_us: u64) {
        restamp(rtp, received_us, now_us());
    }

    fn adopt(&self, rtp: EchoRtp) -> Option<EchoRtp> {
        super::engine::add_echo(rtp).err()
    }
}

/// Where an RTP packet's payload starts: past the CSRCs and the header
/// extension.
fn payload_start(rtp: &[u8]) -> Option<usize> {
    if rtp.len() < 12 {
        return None;
    }
    let mut at = 12 + 4 * (rtp[0] & 0x0f) as usize;
    if rtp[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*rtp.get(at + 2)?, *rtp.get(at + 3)?]) as usize;
        at += 4 + 4 * words;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(header: &[u8]) -> Vec<u8> {
        let mut p = header.to_vec();
        let at = p.len();
        p.resize(at + 160, 0xff);
        write_sent(&mut p[at..], 1234);
        p
    }

    #[test]
    fn stamps_are_found_past_csrcs_and_extensions() {
        let mut h = vec![0x91, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        h.extend_from_slice(&[0; 4]); // one CSRC
        h.extend_from_slice(&[0xbe, 0xde, 0, 1, 0, 0, 0, 0]); // one extension word
        let mut p = packet(&h);
        let s = read(&p).expect("ours");
        assert_eq!((s.sent, s.uas_rx, s.uas_tx), (1234, 0, 0));
        assert_eq!(s.to_sip_us(), None, "an echo that does not stamp");
        assert!(restamp(&mut p, 1500, 1600));
        let s = read(&p).expect("still ours");
        assert_eq!((s.sent, s.uas_rx, s.uas_tx), (1234, 1500, 1600));
        assert_eq!(s.to_sip_us(), Some(266));
        assert_eq!(s.echo_hold_us(), Some(100));
        assert_eq!(s.to_browser_us(1700), Some(100));
        p[24] ^= 1;
        assert_eq!(read(&p), None, "not our magic");
        assert!(!restamp(&mut p, 1, 2));
        assert_eq!(read(&[0x80; 11]), None);
        assert_eq!(read(&[0x80; 20]), None, "payload too short for stamps");
    }
}
