//! A read-only walk over a compound RTCP packet for what quality needs:
//! each sender report's NTP time and each report block. In place, no
//! allocation; anything malformed ends the walk (what came before stands).

const SR: u8 = 200;
const RR: u8 = 201;
const BLOCK: usize = 24;

/// One report block (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source the block is about.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time the reporter received.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// What the walk finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A sender report: the middle 32 bits of its NTP time.
    SenderReport(u32),
    /// A report block, in an SR or an RR.
    Block(ReportBlock),
}

/// Call `found` with every SR and report block of the compound `pkt`.
pub fn scan(pkt: &[u8], mut found: impl FnMut(Found)) {
    let mut rest = pkt;
    while rest.len() >= 8 {
        if rest[0] >> 6 != 2 {
            return;
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let Some(one) = rest.get(..len) else {
            return;
        };
        let count = usize::from(one[0] & 0x1f);
        let blocks_at = match one[1] {
            SR if one.len() >= 28 => {
                found(Found::SenderReport(u32_at(one, 10)));
                28
            }
            RR => 8,
            _ => one.len(),
        };
        let blocks = one.get(blocks_at..).unwrap_or_default();
        for block in blocks.chunks_exact(BLOCK).take(count) {
            found(Found::Block(read_block(block)));
        }
        rest = &rest[len..];
    }
}

fn read_block(b: &[u8]) -> ReportBlock {
    // 24 bits, sign-extended through the top byte.
    let cumulative_lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
    ReportBlock {
        ssrc: u32_at(b, 0),
        fraction_lost: b[4],
        cumulative_lost,
        jitter: u32_at(b, 12),
        lsr: u32_at(b, 16),
        dlsr: u32_at(b, 20),
    }
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An SR from `ssrc` with NTP middle bits `mid` and `blocks`.
    pub(crate) fn sr(ssrc: u32, mid: u32, blocks: &[ReportBlock]) -> Vec<u8> {
        let mut p = vec![0x80 | blocks.len() as u8, SR, 0, 0];
        p.extend(ssrc.to_be_bytes());
        p.extend([0, 0]);
        p.extend(mid.to_be_bytes());
        p.extend([0, 0]);
        p.extend([0; 12]); // RTP time, packet and octet counts
        with_blocks(p, blocks)
    }

    /// An RR from `ssrc` with `blocks`.
    pub(crate) fn rr(ssrc: u32, blocks: &[ReportBlock]) -> Vec<u8> {
        let mut p = vec![0x80 | blocks.len() as u8, RR, 0, 0];
        p.extend(ssrc.to_be_bytes());
        with_blocks(p, blocks)
    }

    fn with_blocks(mut p: Vec<u8>, blocks: &[ReportBlock]) -> Vec<u8> {
        for b in blocks {
            p.extend(b.ssrc.to_be_bytes());
            p.push(b.fraction_lost);
            p.extend(&b.cumulative_lost.to_be_bytes()[1..]);
            p.extend(0u32.to_be_bytes());
            p.extend(b.jitter.to_be_bytes());
            p.extend(b.lsr.to_be_bytes());
            p.extend(b.dlsr.to_be_bytes());
        }
        let words = (p.len() / 4 - 1) as u16;
        p[2..4].copy_from_slice(&words.to_be_bytes());
        p
    }

    pub(crate) fn block(ssrc: u32, lost: i32, lsr: u32, dlsr: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost: lost,
            jitter: 80,
            lsr,
            dlsr,
        }
    }

    fn all(pkt: &[u8]) -> Vec<Found> {
        let mut out = Vec::new();
        scan(pkt, |f| out.push(f));
        out
    }

    #[test]
    fn finds_reports_and_blocks_in_a_compound_packet() {
        let b1 = block(0xA, 12, 0x1111, 99);
        let b2 = block(0xB, -3, 0, 0);
        let mut p = sr(1, 0xDEAD_BEEF, &[b1]);
        p.extend(rr(2, &[b1, b2]));
        // An SDES after them is walked over.
        p.extend([0x81, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]);
        let found = all(&p);
        assert_eq!(
            found,
            [
                Found::SenderReport(0xDEAD_BEEF),
                Found::Block(b1),
                Found::Block(b1),
                Found::Block(b2),
            ]
        );
    }

    #[test]
    fn an_sr_without_blocks_is_still_an_sr() {
        assert_eq!(all(&sr(1, 5, &[])), [Found::SenderReport(5)]);
    }

    #[test]
    fn malformed_input_ends_the_walk_without_a_panic() {
        let good = rr(2, &[block(1, 1, 1, 1)]);
        let mut wrong_version = good.clone();
        wrong_version[0] = 0x40 | 1;
        assert!(all(&wrong_version).is_empty());
        // A count larger than the body: the blocks there are read.
        let mut overcount = good.clone();
        overcount[0] = 0x80 | 5;
        assert_eq!(all(&overcount).len(), 1);
        // A length past the end, and a short SR.
        let mut long = good.clone();
        long[3] = 40;
        assert!(all(&long).is_empty());
        assert!(all(&[0x80, SR, 0, 1, 0, 0, 0, 0]).is_empty());
        for len in 0..good.len() {
            let _ = all(&good[..len]);
        }
        let mut seed = 11u32;
        for len in 0..96 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = all(&junk);
        }
    }
}
