//! Receive statistics of one RTP stream as RFC 3550 appendix A.1 (sequence
//! numbers: expected, received, lost) and A.8 (interarrival jitter) keep
//! them. Fixed-size state, no allocation: it is fed every relayed packet.

use std::time::Instant;

/// The largest forward sequence jump taken as loss, not a restart (A.1).
const MAX_DROPOUT: u16 = 3000;
/// The largest backward jump taken as reordering, not a restart (A.1).
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// The header fields the statistics need, read from an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFields {
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload type (marker bit cleared).
    pub pt: u8,
}

impl RtpFields {
    /// The fields of `pkt`, if it is an RTP version 2 header.
    pub fn read(pkt: &[u8]) -> Option<RtpFields> {
        if pkt.len() < 12 || pkt[0] >> 6 != 2 {
            return None;
        }
        Some(RtpFields {
            seq: u16::from_be_bytes([pkt[2], pkt[3]]),
            ts: u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
            ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
            pt: pkt[1] & 0x7f,
        })
    }
}

/// What one stream's statistics say so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// RTP packets received (duplicates included, as A.1 counts them).
    pub received: u64,
    /// Packets the sequence numbers say were sent.
    pub expected: u64,
    /// `expected - received`, never below zero (duplicates can outnumber losses).
    pub lost: u64,
    /// Interarrival jitter in µs; `None` before two timed packets.
    pub jitter_us: Option<u32>,
}

/// One stream's receive statistics. A new SSRC, or a sequence jump the A.1
/// rules call a restart, starts a new run; the counts of the runs before
/// are kept, so loss and packets add up over the call.
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    /// The run under way, once a packet came.
    run: Option<Run>,
    /// Expected and received packets of the finished runs.
    prior_expected: u64,
    prior_received: u64,
    /// A.8 jitter, in timestamp units scaled by 16 (integer form of A.8).
    jitter16: u32,
    /// The clock the jitter is counted in.
    clock_rate: u32,
    /// The last timed packet's relative transit time, in timestamp units.
    transit: Option<u32>,
    /// Arrival times are counted from here (the first packet).
    epoch: Option<Instant>,
}

/// One run of sequence numbers (A.1's `source` fields).
#[derive(Debug, Clone, Copy)]
struct Run {
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    /// Wraps of the sequence number, shifted left by 16.
    cycles: u32,
    /// After a large jump: the sequence number that confirms a restart.
    bad_seq: Option<u16>,
    received: u64,
}

impl Run {
    fn new(f: RtpFields) -> Run {
        Run {
            ssrc: f.ssrc,
            base_seq: u32::from(f.seq),
            max_seq: f.seq,
            cycles: 0,
            bad_seq: None,
            received: 1,
        }
    }

    fn expected(&self) -> u64 {
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        (extended_max + 1).saturating_sub(u64::from(self.base_seq))
    }
}

/// How one packet fits its run.
enum Fit {
    /// Counted in the run.
    Counted,
    /// A first large jump: not counted until the next packet confirms it.
    Suspect,
    /// A new run starts with this packet.
    Restart,
}

impl ReceiveStats {
    /// Count one packet that arrived at `arrival`, at `clock_rate` Hz.
    /// `timed`: it carries media, so it counts toward jitter (a
    /// telephone-event repeats its timestamp and would read as jitter).
    pub fn on_rtp(&mut self, f: RtpFields, arrival: Instant, clock_rate: u32, timed: bool) {
        let fit = match self.run.as_mut() {
            None => Fit::Restart,
            Some(run) if run.ssrc != f.ssrc => Fit::Restart,
            Some(run) => update_seq(run, f.seq),
        };
        match fit {
            Fit::Counted => {}
            Fit::Suspect => return,
            Fit::Restart => self.restart(f),
        }
        if timed {
            self.jitter(f.ts, arrival, clock_rate);
        }
    }

    /// Fold the run under way into the totals and start one at `f`.
    fn restart(&mut self, f: RtpFields) {
        if let Some(run) = self.run.take() {
            self.prior_expected += run.expected();
            self.prior_received += run.received;
        }
        self.run = Some(Run::new(f));
        // A new source has its own timestamps: transit starts over.
        self.transit = None;
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, in integers scaled by 16.
    fn jitter(&mut self, ts: u32, arrival: Instant, clock_rate: u32) {
        if clock_rate == 0 {
            return;
        }
        if clock_rate != self.clock_rate {
            // Jitter counted at another clock does not carry over.
            self.clock_rate = clock_rate;
            self.jitter16 = 0;
            self.transit = None;
        }
        let epoch = *self.epoch.get_or_insert(arrival);
        let since = arrival.saturating_duration_since(epoch);
        let clock = u64::from(clock_rate);
        // In u64 with a constant divisor (a multiply), not `as_micros`'s
        // u128 division: this runs for every packet. Wrapping: only
        // differences of transit times matter.
        let ticks =
            since.as_secs() * clock + u64::from(since.subsec_nanos()) * clock / 1_000_000_000;
        let arrival_ts = ticks as u32;
        let transit = arrival_ts.wrapping_sub(ts);
        if let Some(last) = self.transit.replace(transit) {
            let d = (transit.wrapping_sub(last) as i32).unsigned_abs();
            // A step larger than a minute of media is a timestamp jump,
            // not jitter: skip it rather than poison the average.
            if d <= clock_rate.saturating_mul(60) {
                let j = self.jitter16 as i64 + i64::from(d) - ((self.jitter16 as i64 + 8) >> 4);
                self.jitter16 = j.clamp(0, i64::from(u32::MAX)) as u32;
            }
        }
    }

    /// The figures so far.
    pub fn figures(&self) -> Received {
        let (expected, received) = match &self.run {
            Some(run) => (run.expected(), run.received),
            None => (0, 0),
        };
        let expected = self.prior_expected + expected;
        let received = self.prior_received + received;
        let jitter_us = match (self.clock_rate, self.transit) {
            (0, _) | (_, None) => None,
            (clock, Some(_)) => {
                Some((u64::from(self.jitter16) * 1_000_000 / 16 / u64::from(clock)) as u32)
            }
        };
        Received {
            received,
            expected,
            lost: expected.saturating_sub(received),
            jitter_us,
        }
    }
}

/// A.1's `update_seq`, without the probation of a new source (a relay
/// counts from the first packet on).
fn update_seq(run: &mut Run, seq: u16) -> Fit {
    let delta = seq.wrapping_sub(run.max_seq);
    if delta < MAX_DROPOUT {
        // In order, with a permissible gap.
        if seq < run.max_seq {
            run.cycles = run.cycles.wrapping_add(SEQ_MOD);
        }
        run.max_seq = seq;
    } else if delta <= MAX_MISORDER.wrapping_neg() {
        // A very large jump: two packets in a row on the new numbering
        // mean the source restarted; one alone is ignored.
        if run.bad_seq == Some(seq) {
            return Fit::Restart;
        }
        run.bad_seq = Some(seq.wrapping_add(1));
        return Fit::Suspect;
    }
    // Else a duplicate or reordered packet: counted, the maximum stays.
    run.bad_seq = None;
    run.received += 1;
    Fit::Counted
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fields(seq: u16, ts: u32) -> RtpFields {
        RtpFields {
            seq,
            ts,
            ssrc: 7,
            pt: 0,
        }
    }

    /// Feed `seqs` 20 ms apart at 8 kHz, each arriving on time.
    fn feed(stats: &mut ReceiveStats, start: Instant, seqs: impl IntoIterator<Item = u16>) {
        for (i, seq) in seqs.into_iter().enumerate() {
            let at = start + Duration::from_millis(20 * i as u64);
            stats.on_rtp(fields(seq, 160 * i as u32), at, 8000, true);
        }
    }

    #[test]
    fn a_clean_stream_loses_nothing_and_has_no_jitter() {
        let mut stats = ReceiveStats::default();
        feed(&mut stats, Instant::now(), 100..200);
        let f = stats.figures();
        assert_eq!((f.received, f.expected, f.lost), (100, 100, 0));
        assert_eq!(f.jitter_us, Some(0));
    }

    #[test]
    fn gaps_count_as_loss_across_a_wrap() {
        let mut stats = ReceiveStats::default();
        let seqs = (0..100u16).map(|i| 65500u16.wrapping_add(i));
        // Every 10th packet missing: 10 lost of 100.
        feed(&mut stats, Instant::now(), seqs.filter(|s| s % 10 != 5));
        let f = stats.figures();
        assert_eq!((f.expected, f.lost), (100, 10), "{f:?}");
    }

    #[test]
    fn reordering_and_duplicates_are_not_loss() {
        let mut stats = ReceiveStats::default();
        feed(&mut stats, Instant::now(), [1, 2, 4, 3, 5, 5, 6]);
        let f = stats.figures();
        assert_eq!((f.received, f.expected, f.lost), (7, 6, 0));
    }

    #[test]
    fn a_restart_or_new_ssrc_keeps_the_counts_before_it() {
        let mut stats = ReceiveStats::default();
        let now = Instant::now();
        feed(&mut stats, now, [10, 11, 13]);
        // One stray far-off packet is ignored; two in a row restart.
        feed(&mut stats, now, [40000]);
        assert_eq!(stats.figures().expected, 4);
        feed(&mut stats, now, [20000, 20001, 20003]);
        let f = stats.figures();
        assert_eq!((f.expected, f.received, f.lost), (7, 5, 2), "{f:?}");
        let mut other = fields(500, 0);
        other.ssrc = 8;
        stats.on_rtp(other, now, 8000, true);
        let f = stats.figures();
        assert_eq!((f.expected, f.received, f.lost), (8, 6, 2), "{f:?}");
    }

    #[test]
    fn jitter_follows_late_packets() {
        let mut stats = ReceiveStats::default();
        let start = Instant::now();
        for i in 0..200u32 {
            // Every other packet 10 ms late: |D| = 80 units each time.
            let late = if i % 2 == 1 { 10 } else { 0 };
            let at = start + Duration::from_millis(u64::from(20 * i + late));
            stats.on_rtp(fields(i as u16, 160 * i), at, 8000, true);
        }
        // J converges on |D| = 10 ms.
        let jitter = stats.figures().jitter_us.unwrap();
        assert!((9_000..=10_000).contains(&jitter), "{jitter}");
    }

    #[test]
    fn untimed_packets_count_but_leave_jitter_alone() {
        let mut stats = ReceiveStats::default();
        let start = Instant::now();
        stats.on_rtp(fields(1, 0), start, 8000, true);
        // A key press 500 ms later keeps an old timestamp.
        stats.on_rtp(
            fields(2, 0),
            start + Duration::from_millis(500),
            8000,
            false,
        );
        let at = start + Duration::from_millis(40);
        stats.on_rtp(fields(3, 320), at, 8000, true);
        let f = stats.figures();
        assert_eq!((f.received, f.jitter_us), (3, Some(0)));
    }

    #[test]
    fn odd_input_gives_sensible_figures() {
        assert_eq!(RtpFields::read(&[0x80; 11]), None);
        assert_eq!(RtpFields::read(&[0x40; 12]), None);
        let mut stats = ReceiveStats::default();
        assert_eq!(stats.figures(), Received::default());
        // A zero clock and timestamps that leap about: no panic.
        let now = Instant::now();
        stats.on_rtp(fields(1, u32::MAX), now, 0, true);
        stats.on_rtp(fields(2, 0), now, 8000, true);
        stats.on_rtp(fields(3, 1 << 31), now, 8000, true);
        stats.on_rtp(fields(4, 5), now - Duration::from_secs(1), 8000, true);
        let f = stats.figures();
        assert_eq!((f.received, f.lost), (4, 0));
    }
}
