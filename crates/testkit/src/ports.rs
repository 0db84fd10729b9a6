//! Ports for tests, from one allocator per process.
//!
//! Every test that needs a fixed port (a gateway's RTP range, a listener
//! whose number the test must know before it starts) takes it from here:
//!
//! - Only 30000–32767 and 61000–65535 are handed out: outside Linux's
//!   ephemeral range (32768–60999), where the kernel picks the ports of
//!   `:0` binds and outgoing connections, and outside siphon's own defaults
//!   (SIP 5060–5062, HTTP 8080, WebRTC 10000, RTP 20000–29999), so `cargo
//!   test` does not collide with a running siphon or with itself.
//! - A process never hands out the same port twice.
//! - Each port is probed free (UDP and TCP bound on 127.0.0.1, then let
//!   go) before it is handed out; a port that is taken is skipped.
//! - Each process starts at its own offset, derived from its pid, so that
//!   two `cargo test` runs at once (two checkouts) rarely meet; the probe
//!   catches the rest.
//!
//! A port probed free may still be taken by someone else before the test
//! binds it; outside the ephemeral range that takes another test run
//! landing on the same ports within moments, which the offsets make
//! unlikely.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::Mutex;

/// The ranges ports are handed out from, in the order they are walked.
pub const RANGES: [RangeInclusive<u16>; 2] = [30000..=32767, 61000..=65535];

/// How many ports [`RANGES`] hold.
const TOTAL: usize = range_len(&RANGES[0]) + range_len(&RANGES[1]);

const fn range_len(r: &RangeInclusive<u16>) -> usize {
    (*r.end() - *r.start()) as usize + 1
}

/// The process's allocator; created on first use.
static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// One free port on 127.0.0.1 (UDP and TCP), not handed out before in
/// this process.
///
/// # Panics
///
/// When every port of [`RANGES`] has been handed out or is taken.
pub fn port() -> u16 {
    with_allocator(|a| a.block(1, false))
}

/// The first of `len` consecutive free ports on 127.0.0.1 (UDP and TCP),
/// none handed out before in this process. The first is even, as an RTP
/// range's `port_min` is (RTP on even ports, RTCP on the next).
///
/// # Panics
///
/// When `len` is 0 or no such block is left in [`RANGES`].
pub fn block(len: u16) -> u16 {
    with_allocator(|a| a.block(len, true))
}

fn with_allocator(f: impl FnOnce(&mut Allocator) -> u16) -> u16 {
    // The only panic under the lock is "ports used up", which leaves the
    // allocator consistent: a poisoned lock is still good to use.
    let mut guard = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    let allocator = guard.get_or_insert_with(|| Allocator::new(pid_offset()));
    f(allocator)
}

/// Where this process starts walking [`RANGES`]: its pid, spread over the
/// ranges, made even.
fn pid_offset() -> usize {
    offset_of(std::process::id())
}

/// [`pid_offset`] of `pid`: Fibonacci hashing, so neighbouring pids land
/// far apart.
fn offset_of(pid: u32) -> usize {
    let spread = u64::from(pid).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((spread >> 32) as usize % TOTAL) & !1
}

/// The `index`th port of [`RANGES`].
fn port_at(index: usize) -> u16 {
    let index = index % TOTAL;
    let first = range_len(&RANGES[0]);
    if index < first {
        RANGES[0].start() + index as u16
    } else {
        RANGES[1].start() + (index - first) as u16
    }
}

/// Whether `port` can be bound on 127.0.0.1 for both UDP and TCP now.
fn probe(port: u16) -> bool {
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
    udp.is_ok() && tcp.is_ok()
}

/// Walks [`RANGES`] from an offset, once around, never handing out a port
/// twice.
struct Allocator {
    /// Index into [`RANGES`] (as by [`port_at`]) of the next port to try.
    next: usize,
    /// How far `next` has moved since the start; once around is all there is.
    walked: usize,
    /// Ports handed out, or found taken (skipped for good), by port number.
    used: Vec<bool>,
    /// Whether a port can be handed out; [`probe`] but for the tests here.
    free: fn(u16) -> bool,
}

impl Allocator {
    fn new(offset: usize) -> Self {
        Self::with_probe(offset, probe)
    }

    fn with_probe(offset: usize, free: fn(u16) -> bool) -> Self {
        Self {
            next: offset % TOTAL,
            walked: 0,
            used: vec![false; usize::from(u16::MAX) + 1],
            free,
        }
    }

    fn advance(&mut self, by: usize) {
        self.next = (self.next + by) % TOTAL;
        self.walked += by;
    }

    /// The first of `len` consecutive ports, all unused and free; even
    /// when `even`.
    fn block(&mut self, len: u16, even: bool) -> u16 {
        assert!(len > 0, "a block of no ports");
        let len = usize::from(len);
        loop {
            assert!(
                self.walked < TOTAL,
                "test ports used up: no {len} free in a row left in {RANGES:?}"
            );
            let first = port_at(self.next);
            if even && first % 2 == 1 {
                self.advance(1);
                continue;
            }
            let range = RANGES
                .iter()
                .find(|r| r.contains(&first))
                .expect("in RANGES");
            let room = usize::from(range.end() - first) + 1;
            if room < len {
                // Runs past the end of its range: go on at the next one.
                self.advance(room);
                continue;
            }
            let ports = (0..len).map(|i| first + i as u16);
            let unusable = ports.clone().position(|p| self.used[usize::from(p)]);
            if let Some(at) = unusable {
                self.advance(at + 1);
                continue;
            }
            let taken = ports.clone().position(|p| !(self.free)(p));
            if let Some(at) = taken {
                self.used[usize::from(first) + at] = true;
                self.advance(at + 1);
                continue;
            }
            for p in ports {
                self.used[usize::from(p)] = true;
            }
            self.advance(len);
            return first;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn always_free(_: u16) -> bool {
        true
    }

    fn in_ranges(port: u16) -> bool {
        RANGES.iter().any(|r| r.contains(&port))
    }

    #[test]
    fn the_ranges_avoid_the_ephemeral_range_and_siphons_defaults() {
        let ephemeral = 32768..=60999;
        let defaults = [5060, 5061, 5062, 8080, 10000];
        for r in &RANGES {
            assert!(!ephemeral.contains(r.start()) && !ephemeral.contains(r.end()));
            assert!(!(r.start() < ephemeral.start() && r.end() > ephemeral.end()));
            assert!(*r.start() > 29999, "siphon's default RTP range");
            assert!(defaults.iter().all(|d| !r.contains(d)));
        }
        assert_eq!(TOTAL, 2768 + 4536);
    }

    #[test]
    fn every_port_handed_out_lies_in_the_ranges_and_none_twice() {
        let mut a = Allocator::with_probe(0, always_free);
        let mut seen = vec![false; usize::from(u16::MAX) + 1];
        let mut count = 0;
        while a.walked < TOTAL - 40 {
            let len = [1, 2, 7, 20, 1, 3][count % 6];
            let first = a.block(len, count % 2 == 0);
            for p in first..first + len {
                assert!(in_ranges(p), "{p} handed out");
                assert!(!seen[usize::from(p)], "{p} handed out twice");
                seen[usize::from(p)] = true;
            }
            count += 1;
        }
        assert!(count > 500, "only {count} blocks");
    }

    #[test]
    fn blocks_start_even_and_stay_inside_one_range() {
        // Start just before the end of the first range: a block of 20 does
        // not fit there, so it comes from the second.
        let near_end = range_len(&RANGES[0]) - 7;
        let mut a = Allocator::with_probe(near_end, always_free);
        let first = a.block(20, true);
        assert_eq!(first, *RANGES[1].start());
        let again = a.block(3, true);
        assert_eq!((again, again % 2), (first + 20, 0));
        let odd = a.block(1, false);
        assert_eq!(odd, again + 3);
        let even = a.block(2, true);
        assert_eq!(even, odd + 1);
    }

    #[test]
    fn the_walk_wraps_around_to_the_first_range() {
        let near_end = TOTAL - 6;
        let mut a = Allocator::with_probe(near_end, always_free);
        assert_eq!(a.block(4, true), 65530);
        assert_eq!(a.block(4, true), 30000);
    }

    #[test]
    #[should_panic(expected = "test ports used up")]
    fn a_walk_once_around_ends_in_a_clear_panic() {
        let mut a = Allocator::with_probe(0, always_free);
        loop {
            a.block(1000, true);
        }
    }

    #[test]
    fn a_port_found_taken_is_skipped_and_not_tried_again() {
        let mut a = Allocator::with_probe(0, |p| p != 30003);
        assert_eq!(a.block(2, true), 30000);
        // 30002-30005 would hold the taken 30003: the block starts after it.
        assert_eq!(a.block(4, true), 30004);
        assert!(a.used[30003]);
        let mut b = Allocator::with_probe(2, |p| p != 30003);
        assert_eq!(b.block(1, false), 30002);
        assert_eq!(b.block(1, false), 30004);
    }

    #[test]
    fn a_port_bound_by_someone_else_is_skipped() {
        // Hold a port of the ranges, then start an allocator right there.
        let held = RANGES[0]
            .clone()
            .step_by(2)
            .find_map(|p| Some((UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).ok()?, p)));
        let (_socket, held) = held.expect("a free port in the first range");
        let offset = usize::from(held - RANGES[0].start());
        let single = Allocator::new(offset).block(1, false);
        assert!(single > held, "{single} after {held}");
        let first = Allocator::new(offset).block(4, true);
        assert!(first > held, "{first} after {held}");
    }

    #[test]
    fn the_process_allocator_hands_out_probed_ports_in_the_ranges() {
        let a = port();
        let b = block(10);
        assert!(in_ranges(a) && in_ranges(b) && in_ranges(b + 9));
        assert_eq!(b % 2, 0);
        assert!(a < b || a >= b + 10);
        assert!(probe(a) && (b..b + 10).all(probe));
    }

    #[test]
    fn offsets_of_neighbouring_pids_lie_far_apart_and_even() {
        let (a, b) = (offset_of(4000), offset_of(4001));
        assert_eq!((a % 2, b % 2), (0, 0));
        assert!(a.abs_diff(b) > 500, "{a} {b}");
        assert!(a < TOTAL && b < TOTAL);
    }
}
