//! The echo extension's media: every RTP and RTCP packet goes back to where
//! it came from.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::echo::{EchoRtp, EchoTap};
use crate::media::rx_time;

/// Attempts at finding a free port pair before giving up.
const PAIR_ATTEMPTS: usize = 32;

/// An RTP socket and its RTCP neighbour (port + 1, RFC 3550 §11).
pub(crate) struct PortPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl PortPair {
    /// Bind a fresh pair on `ip`.
    pub async fn bind(ip: IpAddr) -> io::Result<PortPair> {
        for _ in 0..PAIR_ATTEMPTS {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let port = rtp.local_addr()?.port();
            let Some(next) = port.checked_add(1) else {
                continue;
            };
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, next)).await {
                return Ok(PortPair { rtp, rtcp });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP/RTCP port pair",
        ))
    }

    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Echo both sockets until `stop`, counting packets into `echoed`;
    /// with a `tap`, each RTP packet passes through it before going back.
    /// RTP goes back only while `sending` (the peer receives); RTCP always.
    pub fn spawn_echo(
        self,
        echoed: Arc<AtomicU64>,
        stop: CancellationToken,
        tap: Option<Arc<dyn EchoTap>>,
        sending: Arc<AtomicBool>,
    ) {
        let tap = tap.filter(|_| rx_time::enable(&self.rtp).is_ok());
        let rtcp = Echo {
            echoed: echoed.clone(),
            stop: stop.clone(),
            tap: None,
            sending: Arc::new(AtomicBool::new(true)),
        };
        tokio::spawn(echo(self.rtcp, rtcp));
        let mut sock = self.rtp;
        let (mut echoed, mut sending, mut stop) = (echoed, sending, stop);
        if let Some(t) = &tap {
            let Ok(socket) = sock.into_std() else {
                return;
            };
            let offer = EchoRtp {
                socket,
                echoed,
                sending,
                stop,
            };
            let Some(back) = t.adopt(offer) else {
                return;
            };
            let Ok(s) = UdpSocket::from_std(back.socket) else {
                return;
            };
            (sock, echoed, sending, stop) = (s, back.echoed, back.sending, back.stop);
        }
        let rtp = Echo {
            echoed,
            stop,
            tap,
            sending,
        };
        tokio::spawn(echo(sock, rtp));
    }
}

/// How one socket echoes.
struct Echo {
    echoed: Arc<AtomicU64>,
    stop: CancellationToken,
    tap: Option<Arc<dyn EchoTap>>,
    sending: Arc<AtomicBool>,
}

/// Symmetric echo: the first packet's source is latched, and only packets
/// from it are returned, so a stray sender cannot redirect the stream.
async fn echo(sock: UdpSocket, e: Echo) {
    let Echo {
        echoed,
        stop,
        tap,
        sending,
    } = e;
    let mut buf = vec![0u8; 2048];
    let mut latched: Option<SocketAddr> = None;
    loop {
        let (n, from, rx) = tokio::select! {
            _ = stop.cancelled() => return,
            r = recv(&sock, &mut buf, tap.is_some()) => match r {
                Ok(r) => r,
                // ICMP errors surface here on some systems; keep serving.
                Err(_) => continue,
            },
        };
        if *latched.get_or_insert(from) != from || !sending.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(tap) = &tap {
            tap.on_echo(&mut buf[..n], rx);
        }
        if sock.send_to(&buf[..n], from).await.is_ok() {
            echoed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One datagram, with the kernel's receive time when `timed` (else 0).
async fn recv(
    sock: &UdpSocket,
    buf: &mut [u8],
    timed: bool,
) -> io::Result<(usize, SocketAddr, u64)> {
    if timed {
        return rx_time::recv_from(sock, buf).await;
    }
    let (n, from) = sock.recv_from(buf).await?;
    Ok((n, from, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Marks what it sees, or takes the socket over.
    #[derive(Debug, Default)]
    struct Tap {
        adopt: bool,
        taken: Mutex<Vec<EchoRtp>>,
    }

    impl EchoTap for Tap {
        fn on_echo(&self, rtp: &mut [u8], _received_us: u64) {
            rtp[0] = b'!';
        }

        fn adopt(&self, rtp: EchoRtp) -> Option<EchoRtp> {
            if !self.adopt {
                return Some(rtp);
            }
            self.taken.lock().unwrap().push(rtp);
            None
        }
    }

    #[tokio::test]
    async fn a_tap_sees_each_packet_or_takes_the_socket_over() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for adopt in [false, true] {
            let pair = PortPair::bind(ip).await.unwrap();
            let to = SocketAddr::new(ip, pair.port());
            let tap = Arc::new(Tap {
                adopt,
                ..Default::default()
            });
            let echoed = Arc::new(AtomicU64::new(0));
            let stop = CancellationToken::new();
            let sending = Arc::new(AtomicBool::new(true));
            pair.spawn_echo(echoed.clone(), stop.clone(), Some(tap.clone()), sending);
            if adopt {
                let taken = tap.taken.lock().unwrap();
                assert_eq!(taken.len(), 1);
                assert_eq!(taken[0].socket.local_addr().unwrap(), to);
                continue;
            }
            peer.send_to(b"hello", to).await.unwrap();
            let mut buf = [0u8; 16];
            let wait = Duration::from_secs(5);
            let (n, _) = tokio::time::timeout(wait, peer.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf[..n], b"!ello");
            for _ in 0..100 {
                if echoed.load(Ordering::Relaxed) == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(echoed.load(Ordering::Relaxed), 1);
            stop.cancel();
        }
    }
}
