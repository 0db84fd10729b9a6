//! Per-SSRC state: the SRTP packet index (rollover counter) and replay windows.

use super::replay::ReplayWindow;

/// SRTP replay window in 64-packet words: 512 packets (RFC 3711 asks for at
/// least 64).
const SRTP_REPLAY_WORDS: usize = 8;
#[cfg(test)]
const SRTP_REPLAY_WINDOW: usize = 64 * SRTP_REPLAY_WORDS;
/// SRTCP replay window in words: 128 packets.
const SRTCP_REPLAY_WORDS: usize = 2;
/// Largest SRTP packet index: a 32-bit ROC above a 16-bit SEQ (RFC 3711 section 3.3.1).
const MAX_INDEX: u64 = (1 << 48) - 1;
/// Largest SRTCP index: 31 bits, the top bit of its word is the E flag.
pub(super) const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;
/// SSRCs tracked per context and per kind (a leg uses one or two).
///
/// Bounds what an authenticated but hostile peer can make us hold; past it
/// the oldest stream is forgotten.
const MAX_STREAMS: usize = 16;

/// State of one SSRC's SRTP stream.
pub(super) struct RtpStream {
    ssrc: u32,
    /// Highest packet index processed (`ROC << 16 | SEQ`).
    highest: u64,
    /// Windows over the 48-bit packet index, which never wraps, so the plain
    /// sliding window fits and needs no wrap handling.
    replay: ReplayWindow<SRTP_REPLAY_WORDS>,
}

impl RtpStream {
    /// The packet index of `seq`: RFC 3711 section 3.3.1, the index with
    /// these low 16 bits nearest to the highest one seen.
    ///
    /// `None` once the 32-bit ROC would overflow (the key is exhausted).
    pub fn index_of(&self, seq: u16) -> Option<u64> {
        let roc = self.highest >> 16;
        let s_l = self.highest as u16;
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                // ROC-1 does not exist before the first rollover; the oracle
                // and libsrtp then keep ROC 0 (the packet fails to verify).
                roc.saturating_sub(1)
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc + 1
        } else {
            roc
        };
        let index = (v << 16) | u64::from(seq);
        (index <= MAX_INDEX).then_some(index)
    }

    /// Whether `index` was already accepted or fell out of the window.
    pub fn is_replay(&mut self, index: u64) -> bool {
        !self.replay.check(index)
    }

    /// Records an authenticated `index`.
    pub fn accept(&mut self, index: u64) {
        if self.replay.check(index) {
            self.replay.accept(index);
        }
        self.advance(index);
    }

    /// Records a sent `index`: a sender needs no replay window.
    pub fn advance(&mut self, index: u64) {
        self.highest = self.highest.max(index);
    }
}

/// State of one SSRC's SRTCP stream.
pub(super) struct RtcpStream {
    ssrc: u32,
    /// The next SRTCP index to send (RFC 3711 section 3.3.2 starts at 0).
    next: u32,
    replay: ReplayWindow<SRTCP_REPLAY_WORDS>,
}

impl RtcpStream {
    /// Takes the next SRTCP index to send; `None` once 2^31 are used.
    pub fn take_index(&mut self) -> Option<u32> {
        let index = self.next;
        if index > MAX_SRTCP_INDEX {
            return None;
        }
        self.next += 1;
        Some(index)
    }

    /// Whether `index` was already accepted or fell out of the window.
    pub fn is_replay(&mut self, index: u32) -> bool {
        !self.replay.check(u64::from(index))
    }

    /// Records an authenticated `index`.
    pub fn accept(&mut self, index: u32) {
        if self.replay.check(u64::from(index)) {
            self.replay.accept(u64::from(index));
        }
    }
}

/// What the stream table needs of a stream.
pub(super) trait Stream {
    /// A stream for `ssrc` whose first packet has `index`.
    fn new(ssrc: u32, index: u64) -> Self;
    /// The SSRC it belongs to.
    fn ssrc(&self) -> u32;
}

impl Stream for RtpStream {
    fn new(ssrc: u32, index: u64) -> RtpStream {
        RtpStream {
            ssrc,
            highest: index,
            replay: ReplayWindow::new(MAX_INDEX),
        }
    }

    fn ssrc(&self) -> u32 {
        self.ssrc
    }
}

impl Stream for RtcpStream {
    fn new(ssrc: u32, _: u64) -> RtcpStream {
        RtcpStream {
            ssrc,
            next: 0,
            replay: ReplayWindow::new(u64::from(MAX_SRTCP_INDEX)),
        }
    }

    fn ssrc(&self) -> u32 {
        self.ssrc
    }
}

/// Streams looked up by SSRC.
///
/// A vector searched linearly: a leg has a handful of SSRCs, so this beats a
/// hash map and never allocates after the first few streams.
pub(super) struct Streams<S>(Vec<S>);

impl<S: Stream> Streams<S> {
    /// An empty table.
    pub fn new() -> Streams<S> {
        Streams(Vec::with_capacity(4))
    }

    /// The stream of `ssrc`, if it exists.
    pub fn get(&mut self, ssrc: u32) -> Option<&mut S> {
        self.0.iter_mut().find(|s| s.ssrc() == ssrc)
    }

    /// Whether `ssrc` has a stream.
    pub fn contains(&self, ssrc: u32) -> bool {
        self.0.iter().any(|s| s.ssrc() == ssrc)
    }

    /// The stream of `ssrc`, created at `index` if new (only this allocates).
    pub fn get_or_insert(&mut self, ssrc: u32, index: u64) -> &mut S {
        let at = match self.0.iter().position(|s| s.ssrc() == ssrc) {
            Some(at) => at,
            None => {
                if self.0.len() >= MAX_STREAMS {
                    self.0.remove(0);
                }
                self.0.push(S::new(ssrc, index));
                self.0.len() - 1
            }
        };
        &mut self.0[at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(highest: u64) -> RtpStream {
        RtpStream::new(1, highest)
    }

    #[test]
    fn roc_follows_rfc3711_appendix_a() {
        // In order, across the wrap.
        assert_eq!(at(0xfffe).index_of(0xffff), Some(0xffff));
        assert_eq!(at(0xffff).index_of(0), Some(0x1_0000));
        assert_eq!(at(0xffff).index_of(5), Some(0x1_0005));
        // Late packets from before the wrap keep the old ROC.
        assert_eq!(at(0x1_0003).index_of(0xfffa), Some(0xfffa));
        assert_eq!(at(0x5_0003).index_of(0xfffa), Some(0x4_fffa));
        // Before any wrap there is no ROC-1.
        assert_eq!(at(100).index_of(65000), Some(65000));
        // Ordinary jumps within half the space.
        assert_eq!(at(0x2_1000).index_of(0x8000), Some(0x2_8000));
        assert_eq!(at(0x2_9000).index_of(0x1000), Some(0x2_1000));
        assert_eq!(at(0x2_9001).index_of(0x1000), Some(0x3_1000));
    }

    #[test]
    fn roc_overflow_is_refused() {
        assert_eq!(at(MAX_INDEX).index_of(0), None);
        assert_eq!(at(MAX_INDEX - 1).index_of(0xffff), Some(MAX_INDEX));
    }

    #[test]
    fn replay_window_over_the_index() {
        let mut s = at(0xffff);
        s.accept(0xffff);
        assert!(s.is_replay(0xffff));
        assert!(!s.is_replay(0x1_0000));
        s.accept(0x1_0000);
        assert!(s.is_replay(0x1_0000));
        assert!(!s.is_replay(0xfffe), "late but inside the window");
        s.accept(0x1_0000 + SRTP_REPLAY_WINDOW as u64);
        assert!(s.is_replay(0xfffe), "fell out of the window");
        assert_eq!(s.highest, 0x1_0000 + SRTP_REPLAY_WINDOW as u64);
    }

    #[test]
    fn srtcp_index_starts_at_zero_and_stops_at_2_pow_31() {
        let mut s = RtcpStream::new(1, 0);
        assert_eq!(s.take_index(), Some(0));
        assert_eq!(s.take_index(), Some(1));
        s.next = MAX_SRTCP_INDEX;
        assert_eq!(s.take_index(), Some(MAX_SRTCP_INDEX));
        assert_eq!(s.take_index(), None);
        assert_eq!(s.take_index(), None);
    }

    #[test]
    fn stream_table_is_bounded() {
        let mut t = Streams::<RtpStream>::new();
        for ssrc in 0..40 {
            t.get_or_insert(ssrc, 0);
        }
        assert_eq!(t.0.len(), MAX_STREAMS);
        assert!(t.contains(39) && !t.contains(0));
        assert!(t.get(39).is_some());
    }
}
