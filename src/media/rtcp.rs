//! In-place RTCP translation between the two legs of a bridge.
//!
//! Each side must see only the SSRCs, sequence numbers and timestamps the
//! bridge showed it, so SSRC fields are mapped through the two stream
//! rewriters. Hand-written because it edits a few fields of a compound packet
//! in the caller's buffer; `rtc-rtcp` would unmarshal into owned packets.

use super::rewrite::StreamRewriter;

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;

/// The compound packet is not valid RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedRtcp;

/// Translate a compound RTCP packet travelling from side A to side B.
///
/// `a_to_b` rewrites the RTP that A sends; `b_to_a` the RTP that A receives.
pub fn translate(
    pkt: &mut [u8],
    a_to_b: &StreamRewriter,
    b_to_a: &StreamRewriter,
) -> Result<(), MalformedRtcp> {
    if pkt.len() < 8 {
        return Err(MalformedRtcp);
    }
    let mut at = 0;
    while at < pkt.len() {
        let rest = &mut pkt[at..];
        if rest.len() < 4 || rest[0] >> 6 != 2 {
            return Err(MalformedRtcp);
        }
        let words = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let len = (words + 1) * 4;
        if len > rest.len() {
            return Err(MalformedRtcp);
        }
        translate_one(&mut rest[..len], a_to_b, b_to_a)?;
        at += len;
    }
    Ok(())
}

fn translate_one(
    p: &mut [u8],
    a_to_b: &StreamRewriter,
    b_to_a: &StreamRewriter,
) -> Result<(), MalformedRtcp> {
    let count = (p[0] & 0x1f) as usize;
    let own = a_to_b.out_ssrc();
    match p[1] {
        SR => {
            need(p, 28 + 24 * count)?;
            put_u32(p, 4, own);
            let ts = get_u32(p, 16).wrapping_add(a_to_b.ts_offset());
            put_u32(p, 16, ts);
            report_blocks(&mut p[28..28 + 24 * count], b_to_a);
        }
        RR => {
            need(p, 8 + 24 * count)?;
            put_u32(p, 4, own);
            report_blocks(&mut p[8..8 + 24 * count], b_to_a);
        }
        SDES => sdes_chunks(p, count, own)?,
        BYE => {
            need(p, 4 + 4 * count)?;
            for i in 0..count {
                put_u32(p, 4 + 4 * i, own);
            }
        }
        RTPFB | PSFB => {
            need(p, 12)?;
            put_u32(p, 4, own);
            let media = get_u32(p, 8);
            put_u32(p, 8, received_source(media, b_to_a));
        }
        _ => {}
    }
    Ok(())
}

/// Report blocks describe what A received: the bridge's output toward A.
/// Point them back at the source B actually sent.
fn report_blocks(blocks: &mut [u8], b_to_a: &StreamRewriter) {
    for block in blocks.chunks_exact_mut(24) {
        let ssrc = get_u32(block, 0);
        if ssrc != b_to_a.out_ssrc() {
            continue;
        }
        put_u32(block, 0, received_source(ssrc, b_to_a));
        let seq = u16::from_be_bytes([block[10], block[11]]).wrapping_sub(b_to_a.seq_offset());
        block[10..12].copy_from_slice(&seq.to_be_bytes());
    }
}

fn received_source(ssrc: u32, b_to_a: &StreamRewriter) -> u32 {
    match b_to_a.in_ssrc() {
        Some(original) if ssrc == b_to_a.out_ssrc() => original,
        _ => ssrc,
    }
}

fn sdes_chunks(p: &mut [u8], count: usize, own: u32) -> Result<(), MalformedRtcp> {
    let mut at = 4;
    for _ in 0..count {
        need(p, at + 4)?;
        put_u32(p, at, own);
        at += 4;
        // Items: type, length, text; a zero type ends the chunk, which is
        // then padded to a 32-bit boundary.
        loop {
            need(p, at + 1)?;
            if p[at] == 0 {
                at = (at + 4) & !3;
                break;
            }
            need(p, at + 2)?;
            at += 2 + p[at + 1] as usize;
        }
    }
    Ok(())
}

fn need(p: &[u8], len: usize) -> Result<(), MalformedRtcp> {
    if p.len() < len {
        Err(MalformedRtcp)
    } else {
        Ok(())
    }
}

fn get_u32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

fn put_u32(p: &mut [u8], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::super::rewrite::PtMap;
    use super::*;

    fn rw(out_ssrc: u32) -> StreamRewriter {
        let mut map = PtMap::empty();
        map.insert(0, 0);
        StreamRewriter::new(out_ssrc, map, 160)
    }

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    /// Streams where B->A switched source once, so offsets are non-zero.
    fn streams() -> (StreamRewriter, StreamRewriter) {
        let a_to_b = rw(0xA0A0);
        let mut b_to_a = rw(0xB0B0);
        b_to_a.rewrite(&mut rtp(100, 1000, 0x1111)).unwrap();
        b_to_a.rewrite(&mut rtp(500, 7000, 0x2222)).unwrap();
        (a_to_b, b_to_a)
    }

    #[test]
    fn sr_with_block_and_sdes() {
        let (a_to_b, b_to_a) = streams();
        let mut p = vec![0x81, SR, 0, 12];
        p.extend(0x1234u32.to_be_bytes()); // A's SSRC
        p.extend([0; 8]); // NTP
        p.extend(5000u32.to_be_bytes()); // RTP ts
        p.extend([0; 8]); // counts
        p.extend(0xB0B0u32.to_be_bytes()); // block about what A received
        p.extend([0; 4]);
        p.extend(101u32.to_be_bytes()); // highest seq A saw
        p.extend([0; 12]);
        p.extend([0x81, SDES, 0, 3]);
        p.extend(0x1234u32.to_be_bytes());
        p.extend([1, 2, b'h', b'i', 0, 0, 0, 0]);
        translate(&mut p, &a_to_b, &b_to_a).unwrap();
        assert_eq!(get_u32(&p, 4), 0xA0A0);
        assert_eq!(get_u32(&p, 16), 5000);
        assert_eq!(get_u32(&p, 28), 0x2222);
        // Out seq 101 = in 500 + offset; B sees its own numbering back.
        assert_eq!(u16::from_be_bytes([p[38], p[39]]), 500);
        assert_eq!(get_u32(&p, 56), 0xA0A0);
    }

    #[test]
    fn feedback_and_bye() {
        let (a_to_b, b_to_a) = streams();
        let mut p = vec![0x81, PSFB, 0, 2];
        p.extend(1u32.to_be_bytes());
        p.extend(0xB0B0u32.to_be_bytes());
        p.extend([0x81, BYE, 0, 1]);
        p.extend(9u32.to_be_bytes());
        translate(&mut p, &a_to_b, &b_to_a).unwrap();
        assert_eq!(get_u32(&p, 4), 0xA0A0);
        assert_eq!(get_u32(&p, 8), 0x2222);
        assert_eq!(get_u32(&p, 16), 0xA0A0);
    }

    #[test]
    fn malformed_never_panics() {
        let (a_to_b, b_to_a) = streams();
        assert_eq!(
            translate(&mut [0x81, SR, 0, 1], &a_to_b, &b_to_a),
            Err(MalformedRtcp)
        );
        // Length field larger than the buffer.
        let mut p = vec![0x81, RR, 0, 9, 0, 0, 0, 0];
        assert_eq!(translate(&mut p, &a_to_b, &b_to_a), Err(MalformedRtcp));
        // Report count larger than the body.
        let mut p = vec![0x85, RR, 0, 1, 0, 0, 0, 0];
        assert_eq!(translate(&mut p, &a_to_b, &b_to_a), Err(MalformedRtcp));
        // Every short prefix of random-ish bytes.
        let mut seed = 7u32;
        for len in 0..64 {
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            if len > 0 {
                buf[0] = 0x80 | (buf[0] & 0x1f);
            }
            let _ = translate(&mut buf, &a_to_b, &b_to_a);
        }
    }
}
