//! In-place RTP header rewriting for one direction of a bridge.
//!
//! Written by hand rather than with `rtc-rtp`: the relay rewrites four fixed
//! header fields in the caller's buffer, and parsing into an owned packet
//! would allocate per packet.

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteDrop {
    /// Shorter than an RTP header or not version 2.
    Malformed,
    /// A payload type the other side did not negotiate.
    UnknownPayloadType,
}

/// Payload type map: `map[in_pt] = out_pt`, `NONE` when not negotiated.
#[derive(Debug, Clone)]
pub struct PtMap([u8; 128]);

impl PtMap {
    const NONE: u8 = 0xff;

    /// A map that forwards nothing.
    pub fn empty() -> Self {
        PtMap([Self::NONE; 128])
    }

    /// Map `from` to `to` (both 0..=127; others are ignored).
    pub fn insert(&mut self, from: u8, to: u8) {
        if from < 128 && to < 128 {
            self.0[from as usize] = to;
        }
    }

    /// The outgoing payload type for `pt`.
    pub fn get(&self, pt: u8) -> Option<u8> {
        match self.0[(pt & 0x7f) as usize] {
            Self::NONE => None,
            out => Some(out),
        }
    }
}

/// The largest forward sequence jump taken as loss, not a restart.
const MAX_DROPOUT: u16 = 3000;
/// The largest backward jump taken as reordering, not a restart.
const MAX_MISORDER: u16 = 100;

/// One direction's rewrite state: a fixed outgoing SSRC, and sequence number
/// and timestamp offsets that keep both continuous when the incoming source
/// changes (a PBX switching media, a re-INVITE, early media to answer).
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    out_ssrc: u32,
    pt_map: PtMap,
    /// Timestamp units per packet, used to step across a source change.
    ts_step: u32,
    in_ssrc: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    last_out_seq: u16,
    last_out_ts: u32,
}

impl StreamRewriter {
    /// A rewriter sending as `out_ssrc`, `ts_step` timestamp units per packet.
    pub fn new(out_ssrc: u32, pt_map: PtMap, ts_step: u32) -> Self {
        StreamRewriter {
            out_ssrc,
            pt_map,
            ts_step,
            in_ssrc: None,
            seq_offset: 0,
            ts_offset: 0,
            last_out_seq: 0,
            last_out_ts: 0,
        }
    }

    /// Replace the payload type map (renegotiation); offsets stay.
    pub fn set_pt_map(&mut self, pt_map: PtMap, ts_step: u32) {
        self.pt_map = pt_map;
        self.ts_step = ts_step;
    }

    /// The SSRC this direction sends with.
    pub fn out_ssrc(&self) -> u32 {
        self.out_ssrc
    }

    /// The SSRC last received, if any.
    pub fn in_ssrc(&self) -> Option<u32> {
        self.in_ssrc
    }

    /// Add to an incoming sequence number (RTCP translation uses it).
    pub fn seq_offset(&self) -> u16 {
        self.seq_offset
    }

    /// Add to an incoming timestamp (RTCP translation uses it).
    pub fn ts_offset(&self) -> u32 {
        self.ts_offset
    }

    /// Header fields for a packet siphon adds to this stream (a generated
    /// key press): the next sequence number, after which relayed packets
    /// move up by one so the stream stays gapless; and the timestamp of the
    /// next frame, where an event starting now belongs.
    pub fn inject(&mut self) -> (u16, u32) {
        let seq = self.last_out_seq.wrapping_add(1);
        self.last_out_seq = seq;
        self.seq_offset = self.seq_offset.wrapping_add(1);
        (seq, self.last_out_ts.wrapping_add(self.ts_step))
    }

    /// Rewrite the RTP header in `pkt` in place.
    pub fn rewrite(&mut self, pkt: &mut [u8]) -> Result<(), RewriteDrop> {
        if pkt.len() < 12 || pkt[0] >> 6 != 2 {
            return Err(RewriteDrop::Malformed);
        }
        let out_pt = self
            .pt_map
            .get(pkt[1] & 0x7f)
            .ok_or(RewriteDrop::UnknownPayloadType)?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
        let mut marker = pkt[1] & 0x80;
        let jump = seq
            .wrapping_add(self.seq_offset)
            .wrapping_sub(self.last_out_seq);
        // RFC 3550 A.1: past MAX_DROPOUT ahead or MAX_MISORDER behind, the
        // same SSRC restarted its numbering (a PBX after a long hold, a
        // restarted phone). Carried through, the jump would desync the
        // browser's SRTP rollover counter past 2^15, so rebase as for a
        // new source.
        let restarted =
            self.in_ssrc == Some(ssrc) && jump > MAX_DROPOUT && jump < MAX_MISORDER.wrapping_neg();
        if self.in_ssrc != Some(ssrc) || restarted {
            if self.in_ssrc.is_some() {
                // New source: continue right after what the receiver last saw,
                // and mark the discontinuity so its jitter buffer resyncs.
                self.seq_offset = self.last_out_seq.wrapping_add(1).wrapping_sub(seq);
                self.ts_offset = self.last_out_ts.wrapping_add(self.ts_step).wrapping_sub(ts);
                marker = 0x80;
            }
            self.in_ssrc = Some(ssrc);
            self.last_out_seq = seq.wrapping_add(self.seq_offset).wrapping_sub(1);
            self.last_out_ts = ts.wrapping_add(self.ts_offset);
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // Track the newest packet only: a reordered one must not pull us back.
        if (out_seq.wrapping_sub(self.last_out_seq) as i16) > 0 {
            self.last_out_seq = out_seq;
            self.last_out_ts = out_ts;
        }
        pkt[1] = marker | out_pt;
        pkt[2..4].copy_from_slice(&out_seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&out_ts.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.out_ssrc.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xAA, 0xBB];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    fn fields(p: &[u8]) -> (bool, u8, u16, u32, u32) {
        (
            p[1] & 0x80 != 0,
            p[1] & 0x7f,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    fn rewriter() -> StreamRewriter {
        let mut map = PtMap::empty();
        map.insert(111, 96);
        map.insert(126, 101);
        StreamRewriter::new(0xC0FFEE, map, 960)
    }

    #[test]
    fn maps_pt_and_ssrc_keeps_payload() {
        let mut rw = rewriter();
        let mut p = rtp(111, 100, 5000, 1);
        rw.rewrite(&mut p).unwrap();
        assert_eq!(fields(&p), (false, 96, 100, 5000, 0xC0FFEE));
        assert_eq!(&p[12..], &[0xAA, 0xBB]);
        let mut dtmf = rtp(126 | 0x80, 101, 5960, 1);
        rw.rewrite(&mut dtmf).unwrap();
        assert_eq!(fields(&dtmf), (true, 101, 101, 5960, 0xC0FFEE));
    }

    #[test]
    fn unknown_pt_and_short_packets_are_dropped() {
        let mut rw = rewriter();
        assert_eq!(
            rw.rewrite(&mut rtp(13, 1, 1, 1)),
            Err(RewriteDrop::UnknownPayloadType)
        );
        assert_eq!(rw.rewrite(&mut [0x80; 11]), Err(RewriteDrop::Malformed));
        let mut v1 = rtp(111, 1, 1, 1);
        v1[0] = 0x40;
        assert_eq!(rw.rewrite(&mut v1), Err(RewriteDrop::Malformed));
    }

    #[test]
    fn source_change_continues_sequence_and_timestamp() {
        let mut rw = rewriter();
        for i in 0..3u16 {
            rw.rewrite(&mut rtp(
                111,
                65534u16.wrapping_add(i),
                1000 + 960 * i as u32,
                7,
            ))
            .unwrap();
        }
        // Last out: seq 0 (wrapped), ts 2920. New source with unrelated numbers.
        let mut p = rtp(111, 40000, 9_000_000, 8);
        rw.rewrite(&mut p).unwrap();
        assert_eq!(fields(&p), (true, 96, 1, 3880, 0xC0FFEE));
        let mut q = rtp(111, 40001, 9_000_960, 8);
        rw.rewrite(&mut q).unwrap();
        assert_eq!(fields(&q), (false, 96, 2, 4840, 0xC0FFEE));
    }

    #[test]
    fn a_source_that_restarts_its_numbering_is_rebased() {
        let mut rw = rewriter();
        rw.rewrite(&mut rtp(111, 100, 96_000, 1)).unwrap();
        // Loss of 2999 packets is carried through as loss.
        let mut p = rtp(111, 3100, 96_000 + 3000 * 960, 1);
        rw.rewrite(&mut p).unwrap();
        assert_eq!(fields(&p).2, 3100);
        // A jump of 40000 (past 2^15: the browser's SRTP index guess would
        // fail) continues right after the last packet, marked.
        let mut p = rtp(111, 43100, 7, 1);
        rw.rewrite(&mut p).unwrap();
        let (marker, _, seq, ts, _) = fields(&p);
        assert!(marker);
        assert_eq!((seq, ts), (3101, 96_000 + 3001 * 960));
        // Then on as usual; a packet far behind restarts again, one a
        // little behind is reordering.
        let mut p = rtp(111, 43101, 967, 1);
        rw.rewrite(&mut p).unwrap();
        assert_eq!(fields(&p).2, 3102);
        let mut p = rtp(111, 43050, 0, 1);
        rw.rewrite(&mut p).unwrap();
        assert_eq!(fields(&p).2, 3051, "reordered, not a restart");
        let mut p = rtp(111, 20000, 0, 1);
        rw.rewrite(&mut p).unwrap();
        assert_eq!(fields(&p).2, 3103, "far behind: a restart");
    }

    #[test]
    fn reordered_packet_does_not_move_the_anchor() {
        let mut rw = rewriter();
        rw.rewrite(&mut rtp(111, 10, 9600, 1)).unwrap();
        rw.rewrite(&mut rtp(111, 12, 11520, 1)).unwrap();
        rw.rewrite(&mut rtp(111, 11, 10560, 1)).unwrap();
        let mut p = rtp(111, 0, 0, 2);
        rw.rewrite(&mut p).unwrap();
        let (_, _, seq, ts, _) = fields(&p);
        assert_eq!((seq, ts), (13, 12480));
    }

    #[test]
    fn injected_packets_take_their_own_sequence_numbers() {
        let mut rw = rewriter();
        rw.rewrite(&mut rtp(111, 10, 9600, 1)).unwrap();
        assert_eq!(rw.inject(), (11, 10560));
        assert_eq!(rw.inject(), (12, 10560));
        let mut p = rtp(111, 11, 10560, 1);
        rw.rewrite(&mut p).unwrap();
        let (_, _, seq, ts, _) = fields(&p);
        assert_eq!(
            (seq, ts),
            (13, 10560),
            "relayed packets move up, timestamps stay"
        );
    }
}
