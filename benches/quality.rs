//! ns per relayed packet that the per-call quality state adds to the relay
//! loop: the RTP header read and the RFC 3550 sequence and jitter update,
//! and, much rarer, the walk over a compound RTCP packet (an SR with a
//! report block, then an RR). Run with `cargo bench --bench quality`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use siphon::media::quality::{CallQuality, Leg};

/// Packets per timed run.
const N: usize = 1_000_000;
/// Timed runs per figure; the fastest is reported (least disturbed).
const RUNS: usize = 5;

fn rtp(seq: u16, ts: u32) -> [u8; 172] {
    let mut p = [0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p
}

/// An SR with one report block followed by an RR with one, as browsers send.
fn compound() -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend(1u32.to_be_bytes());
    p.extend([0u8; 20]);
    p.extend([0u8; 24]);
    p.extend([0x81, 201, 0, 7]);
    p.extend(2u32.to_be_bytes());
    p.extend([0u8; 24]);
    p
}

fn fastest(mut run: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| run()).min().unwrap_or_default()
}

/// Time `N` packets through `feed`, each written into one hot buffer (as
/// the relay's receive buffer is) with its sequence number, timestamp and
/// arrival 20 ms after the one before.
fn run(mut feed: impl FnMut(&[u8], Instant)) -> Duration {
    let mut p = rtp(0, 0);
    let start = Instant::now();
    let t = Instant::now();
    for i in 0..N {
        p[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        p[4..8].copy_from_slice(&(i as u32).wrapping_mul(160).to_be_bytes());
        let at = start + Duration::from_millis(20 * i as u64);
        feed(black_box(&p), at);
    }
    t.elapsed()
}

fn main() {
    let base = fastest(|| {
        run(|p, at| {
            black_box((p, at));
        })
    });
    let rtp_time = fastest(|| {
        let mut q = CallQuality::default();
        let took = run(|p, at| q.rtp_from(Leg::Sip, p, at, 8000, true));
        black_box(q.snapshot());
        took
    });
    let rtcp = compound();
    let rtcp_time = fastest(|| {
        let mut q = CallQuality::default();
        let took = run(|_, at| q.rtcp_from(Leg::Browser, black_box(&rtcp), 0x1111, at, 8000));
        black_box(q.snapshot());
        took
    });
    let per = |d: Duration| d.saturating_sub(base).as_nanos() as f64 / N as f64;
    println!("quality per RTP packet:   {:6.1} ns", per(rtp_time));
    println!("quality per RTCP packet:  {:6.1} ns", per(rtcp_time));
}
