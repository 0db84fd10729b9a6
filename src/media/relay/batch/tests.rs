use std::net::{SocketAddr, UdpSocket};

use super::*;

fn bound(addr: &str) -> Option<UdpSocket> {
    let s = UdpSocket::bind(addr).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

fn v4() -> UdpSocket {
    bound("127.0.0.1:0").expect("bind 127.0.0.1")
}

/// Wait until `socket` has something queued (loopback delivery is quick but
/// not synchronous with the send).
fn settle(socket: &UdpSocket) {
    let mut probe = [0u8; 1];
    for _ in 0..200 {
        if socket.peek(&mut probe).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_burst_arrives_in_full_batches_then_the_rest() {
    let rx = v4();
    let (a, b) = (v4(), v4());
    for i in 0..40u8 {
        let from = if i % 2 == 0 { &a } else { &b };
        from.send_to(&[i; 100][..100 - i as usize], rx.local_addr().unwrap())
            .unwrap();
    }
    settle(&rx);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut batch = RecvBatch::new();
    let mut seen = Vec::new();
    loop {
        match batch.recv(&rx, BATCH) {
            Ok(n) => {
                for i in 0..n {
                    let (buf, len, src) = batch.get(i);
                    seen.push((buf[0], len, src.unwrap()));
                }
                if n < BATCH {
                    break;
                }
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
    assert_eq!(seen.len(), 40);
    for (i, (first, len, src)) in seen.into_iter().enumerate() {
        let from = if i % 2 == 0 { &a } else { &b };
        assert_eq!(first as usize, i);
        assert_eq!(len, 100 - i);
        assert_eq!(src, from.local_addr().unwrap());
    }
    let err = batch.recv(&rx, BATCH).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn an_ipv6_source_after_an_ipv4_one_comes_back_whole() {
    let Some(rx6) = bound("[::1]:0") else {
        return; // no IPv6 loopback on this host
    };
    let rx4 = v4();
    let tx4 = v4();
    let tx6 = bound("[::1]:0").unwrap();
    let mut batch = RecvBatch::new();
    tx4.send_to(b"four", rx4.local_addr().unwrap()).unwrap();
    settle(&rx4);
    assert_eq!(batch.recv(&rx4, BATCH).unwrap(), 1);
    assert_eq!(batch.get(0).2, Some(tx4.local_addr().unwrap()));
    tx6.send_to(b"six", rx6.local_addr().unwrap()).unwrap();
    settle(&rx6);
    assert_eq!(batch.recv(&rx6, BATCH).unwrap(), 1);
    let (buf, len, src) = batch.get(0);
    assert_eq!(&buf[..len], b"six");
    assert_eq!(src, Some(tx6.local_addr().unwrap()));
}

#[test]
fn one_send_reaches_each_destination_in_order() {
    let tx = v4();
    let peers: Vec<UdpSocket> = (0..3).map(|_| v4()).collect();
    let mut batch = SendBatch::new();
    for round in 0..2u8 {
        for (i, peer) in peers.iter().enumerate() {
            let meta = Sent {
                slot: i,
                is_rtcp: round == 1,
                len: 10 + i,
                ..Sent::default()
            };
            batch.push(&[round, i as u8], peer.local_addr().unwrap(), meta);
        }
    }
    let mut done = Vec::new();
    batch.flush(&tx, |meta, ok| done.push((meta, ok)));
    assert_eq!(done.len(), 6);
    assert!(done.iter().all(|(_, ok)| *ok));
    assert_eq!(
        done[4].0,
        Sent {
            slot: 1,
            is_rtcp: true,
            len: 11,
            ..Sent::default()
        }
    );
    for (i, peer) in peers.iter().enumerate() {
        settle(peer);
        let mut buf = [0u8; 8];
        for round in 0..2u8 {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[round, i as u8]);
            assert_eq!(from, tx.local_addr().unwrap());
        }
    }
    // Flushed means empty: a second flush sends nothing.
    batch.flush(&tx, |_, _| panic!("nothing was queued"));
}

#[test]
fn a_refused_datagram_fails_alone() {
    let tx = v4();
    let (a, b) = (v4(), v4());
    let unreachable: SocketAddr = "[::1]:9".parse().unwrap(); // IPv6 from an IPv4 socket
    let mut batch = SendBatch::new();
    let meta = |slot| Sent {
        slot,
        is_rtcp: false,
        len: 1,
        ..Sent::default()
    };
    batch.push(b"a", a.local_addr().unwrap(), meta(0));
    batch.push(b"x", unreachable, meta(1));
    batch.push(b"b", b.local_addr().unwrap(), meta(2));
    let mut done = Vec::new();
    batch.flush(&tx, |meta, ok| done.push((meta.slot, ok)));
    assert_eq!(done, vec![(0, true), (1, false), (2, true)]);
    for (peer, want) in [(&a, b"a"), (&b, b"b")] {
        settle(peer);
        let mut buf = [0u8; 4];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], want);
    }
}

#[test]
fn a_full_batch_says_so() {
    let mut batch = SendBatch::new();
    let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for _ in 0..BATCH {
        assert!(!batch.is_full());
        batch.push(b"x", dest, Sent::default());
    }
    assert!(batch.is_full());
}

#[test]
fn a_smaller_batch_takes_no_more() {
    let rx = v4();
    let tx = v4();
    for i in 0..6u8 {
        tx.send_to(&[i], rx.local_addr().unwrap()).unwrap();
    }
    settle(&rx);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut batch = RecvBatch::new();
    assert_eq!(batch.recv(&rx, 4).unwrap(), 4);
    assert_eq!(batch.get(3).0[0], 3);
    assert_eq!(batch.recv(&rx, 4).unwrap(), 2, "fewer than asked: drained");
    assert_eq!(batch.get(1).0[0], 5);
}

#[test]
fn an_icmp_error_is_transient_and_the_socket_reads_on() {
    use std::os::fd::AsRawFd;
    // A connected socket hears of an ICMP port unreachable on its next
    // receive (ECONNREFUSED).
    let gone = v4();
    let port = gone.local_addr().unwrap();
    drop(gone);
    let rx = v4();
    rx.connect(port).unwrap();
    rx.send(b"into the void").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut batch = RecvBatch::new();
    let mut seen = Vec::new();
    let mut take = |b: &mut RecvBatch, n: usize| {
        for i in 0..n {
            let (buf, len, _) = b.get(i);
            seen.push(buf[..len].to_vec());
        }
    };
    let faults = drain(&mut batch, rx.as_raw_fd(), BATCH, &mut take);
    assert_eq!(faults, Faults { icmp: 1, other: 0 });
    // Reading the error cleared it: the next datagram is read as usual.
    let peer = UdpSocket::bind(port).expect("the port just freed");
    peer.send_to(b"after", rx.local_addr().unwrap()).unwrap();
    settle(&rx);
    let faults = drain(&mut batch, rx.as_raw_fd(), BATCH, &mut take);
    assert_eq!(faults, Faults::default());
    assert_eq!(seen, vec![b"after".to_vec()]);
}

#[test]
fn a_persistent_receive_error_ends_the_drain() {
    use std::os::fd::AsRawFd;
    // Not a socket: every receive fails the same way (ENOTSOCK). Retrying
    // it would spin the loop for good.
    let not_a_socket = std::fs::File::open("/dev/null").unwrap();
    let mut batch = RecvBatch::new();
    let (tx, done) = std::sync::mpsc::channel();
    let fd = not_a_socket.as_raw_fd();
    std::thread::spawn(move || {
        let faults = drain(&mut batch, fd, BATCH, |_, _| {});
        let _ = tx.send(faults);
    });
    let faults = done
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the drain returns");
    assert_eq!(faults, Faults { icmp: 0, other: 1 });
    drop(not_a_socket);
}

#[test]
fn an_oversize_datagram_is_flagged_truncated() {
    let rx = v4();
    let tx = v4();
    tx.send_to(&[7u8; MAX_RECV + 1], rx.local_addr().unwrap())
        .unwrap();
    tx.send_to(&[8u8; MAX_RECV], rx.local_addr().unwrap())
        .unwrap();
    settle(&rx);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut batch = RecvBatch::new();
    assert_eq!(batch.recv(&rx, BATCH).unwrap(), 2);
    assert!(batch.truncated(0));
    assert!(!batch.truncated(1), "a full buffer is not a cut one");
    assert_eq!(batch.get(1).1, MAX_RECV);
}
