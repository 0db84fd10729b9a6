//! The SRTP/SRTCP replay window (RFC 3711 section 3.3.2) as a ring of bits.
//!
//! Hand-written because rtc-shared's `SlidingWindowDetector` keeps its mask
//! in a heap-allocated big integer and shifts all of it for every accepted
//! packet; in the relay loop that shift was the largest user-space cost
//! after AES. Here bit `index % SIZE` stands for `index`, so the usual
//! packet clears the bits it moves past (one) and sets its own. Its answers
//! equal `SlidingWindowDetector`'s, which the tests use as the oracle.

/// A window of `64 * WORDS` packet indices below the highest accepted one.
#[derive(Clone, Debug)]
pub(super) struct ReplayWindow<const WORDS: usize> {
    bits: [u64; WORDS],
    /// Highest index accepted (0 before any, as in the oracle).
    latest: u64,
    /// Largest valid index.
    max: u64,
}

impl<const WORDS: usize> ReplayWindow<WORDS> {
    const SIZE: u64 = 64 * WORDS as u64;

    pub(super) fn new(max: u64) -> Self {
        ReplayWindow {
            bits: [0; WORDS],
            latest: 0,
            max,
        }
    }

    /// Whether `index` may be accepted: inside the window and not seen.
    pub(super) fn check(&self, index: u64) -> bool {
        if index > self.max {
            return false;
        }
        if index <= self.latest {
            return self.latest - index < Self::SIZE && !self.bit(index);
        }
        true
    }

    /// Records `index`, which [`check`](Self::check) allowed.
    pub(super) fn accept(&mut self, index: u64) {
        if index > self.latest {
            if index - self.latest >= Self::SIZE {
                self.bits = [0; WORDS];
            } else {
                // The bits passed over stood for indices now out of the window.
                for passed in self.latest + 1..index {
                    self.set(passed, false);
                }
            }
            self.latest = index;
        }
        self.set(index, true);
    }

    fn bit(&self, index: u64) -> bool {
        let at = index % Self::SIZE;
        self.bits[(at / 64) as usize] & (1 << (at % 64)) != 0
    }

    fn set(&mut self, index: u64, on: bool) {
        let at = index % Self::SIZE;
        let word = &mut self.bits[(at / 64) as usize];
        if on {
            *word |= 1 << (at % 64);
        } else {
            *word &= !(1 << (at % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use rtc_shared::replay_detector::{ReplayDetector, SlidingWindowDetector};

    use super::ReplayWindow;

    /// Feed the same indices to both and compare every answer.
    fn agree<const W: usize>(indices: impl IntoIterator<Item = u64>, max: u64) {
        let mut ours = ReplayWindow::<W>::new(max);
        let mut oracle = SlidingWindowDetector::new(64 * W, max);
        for (n, index) in indices.into_iter().enumerate() {
            let ok = oracle.check(index);
            assert_eq!(ours.check(index), ok, "packet {n}, index {index}");
            if ok {
                oracle.accept();
                ours.accept(index);
            }
        }
    }

    #[test]
    fn in_order_with_duplicates_and_late_packets() {
        let mut seq = Vec::new();
        for i in 0..2000u64 {
            seq.push(i);
            if i % 7 == 0 {
                seq.push(i); // duplicate
            }
            if i % 13 == 0 && i > 600 {
                seq.push(i - 500); // late, inside the window
                seq.push(i - 520); // too late
            }
        }
        agree::<8>(seq.clone(), (1 << 48) - 1);
        agree::<2>(seq, 0x7fff_ffff);
    }

    #[test]
    fn jumps_edges_and_the_upper_limit() {
        let max = (1 << 48) - 1;
        let seq = [
            5,
            5,
            0,
            517,
            5,
            6,
            1029,
            518,
            517,
            516,
            1028,
            100_000,
            99_489,
            99_488,
            99_489,
            max,
            max,
            max - 1,
            max - 600,
        ];
        agree::<8>(seq, max);
        agree::<8>([max + 1, 0, max + 1], max);
    }

    #[test]
    fn random_walks_agree_with_the_oracle() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let mut at = rng.random_range(0..1_000_000u64);
            let walk: Vec<u64> = (0..5000)
                .map(|_| {
                    at = (at as i64 + rng.random_range(-700i64..=40)).max(0) as u64 + 30;
                    at
                })
                .collect();
            agree::<8>(walk.clone(), (1 << 48) - 1);
            agree::<2>(walk, (1 << 48) - 1);
        }
    }
}
