//! Bad input under load: datagrams siphon must drop and count while the
//! calls go on. Half are garbage from a stranger's socket; half look like
//! SRTP of an established call (its header, from its own socket) with an
//! authentication tag that cannot verify.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::client::Shared;

/// Packets sent per tick: the flood goes out in bursts every 10 ms.
const TICK: Duration = Duration::from_millis(10);

/// Send `pps` bad datagrams per second to siphon's WebRTC port `target`
/// until `stop`; counts what it sent in `sent`.
pub async fn run(
    shared: Arc<Shared>,
    target: SocketAddr,
    pps: u32,
    sent: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(stranger) = UdpSocket::bind("127.0.0.1:0").await else {
        return;
    };
    let per_tick = (pps as f64 * TICK.as_secs_f64()).ceil() as u32;
    let mut ticker = tokio::time::interval(TICK);
    let mut n: u32 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        for _ in 0..per_tick {
            n = n.wrapping_add(1);
            let ok = if n.is_multiple_of(2) {
                stranger.send_to(&garbage(n), target).await.is_ok()
            } else {
                forge(&shared, n)
            };
            if ok {
                sent.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Random bytes whose first byte walks every RFC 7983 range.
fn garbage(n: u32) -> Vec<u8> {
    let len = 20 + (n % 180) as usize;
    let mut b: Vec<u8> = (0..len).map(|_| rand::random()).collect();
    b[0] = (n % 256) as u8;
    b
}

/// An RTP header with a forged 10-byte tag, from call `n`'s own socket.
fn forge(shared: &Shared, n: u32) -> bool {
    let leg = {
        let Ok(legs) = shared.legs.lock() else {
            return false;
        };
        if legs.is_empty() {
            return false;
        }
        legs[n as usize % legs.len()].clone()
    };
    let mut p = vec![0u8; 12 + 160 + 10];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    p[4..8].copy_from_slice(&n.wrapping_mul(160).to_be_bytes());
    p[8..12].copy_from_slice(&rand::random::<u32>().to_be_bytes());
    for b in &mut p[12..] {
        *b = rand::random();
    }
    leg.0.send_to(&p, leg.1).is_ok()
}
