use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::config::ConnectionsConfig;

fn config(max: u32, per_ip: u32, fd_reserve: u32) -> ConnectionsConfig {
    ConnectionsConfig {
        sip_max: max,
        sip_per_ip: per_ip,
        http_max: max,
        http_per_ip: per_ip,
        fd_reserve,
        ..ConnectionsConfig::default()
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn refused(m: &Metrics, listener: &str, reason: &str) -> u64 {
    m.connections_refused_total
        .with_label_values(&[listener, reason])
        .get()
}

#[test]
fn per_ip_cap_refuses_the_next_connection_from_that_ip_only() {
    let m = Metrics::new();
    let gate = Connections::new(&config(10, 2, 0), 10_000, m.clone()).sip("sip_tcp");
    let held: Vec<Permit> = (0..2).map(|_| gate.admit(ip(1)).unwrap()).collect();
    assert_eq!(gate.admit(ip(1)).err(), Some(Refused::PerIpCap));
    assert!(gate.admit(ip(2)).is_ok());
    assert_eq!(refused(&m, "sip_tcp", "per_ip_cap"), 1);
    drop(held);
    assert!(
        gate.admit(ip(1)).is_ok(),
        "a closed connection frees its slot"
    );
}

#[test]
fn global_cap_refuses_past_max_and_the_gauge_follows() {
    let m = Metrics::new();
    let gate = Connections::new(&config(3, 3, 0), 10_000, m.clone()).http("http", None);
    let held: Vec<Permit> = (1..=3).map(|i| gate.admit(ip(i)).unwrap()).collect();
    assert_eq!(gate.admit(ip(9)).err(), Some(Refused::GlobalCap));
    let open = m.connections_open.with_label_values(&["http"]);
    assert_eq!(open.get(), 3);
    drop(held);
    assert_eq!(open.get(), 0);
    assert_eq!(refused(&m, "http", "global_cap"), 1);
}

#[test]
fn fd_reserve_is_shared_and_http_may_use_half_of_it() {
    let m = Metrics::new();
    // 20 fds, 15 kept back: only 10 (half the limit) are, leaving 10.
    let conns = Connections::new(&config(100, 100, 15), 20, m.clone());
    assert_eq!(conns.budget(), 10);
    let (sip, http) = (conns.sip("sip_tcp"), conns.http("http", None));
    let mut held: Vec<Permit> = (0..10).map(|i| sip.admit(ip(i)).unwrap()).collect();
    assert_eq!(sip.admit(ip(50)).err(), Some(Refused::FdReserve));
    assert_eq!(refused(&m, "sip_tcp", "fd_reserve"), 1);
    // A SIP flood leaves HTTP half of the reserve (probes, browsers) ...
    held.extend((0..5).map(|i| http.admit(ip(i)).unwrap()));
    // ... and the other half to calls.
    assert_eq!(http.admit(ip(50)).err(), Some(Refused::FdReserve));
    held.truncate(9);
    assert!(sip.admit(ip(50)).is_ok());
}

#[test]
fn exempt_peers_skip_the_per_ip_cap_but_not_the_global_one() {
    let m = Metrics::new();
    let proxy = ip(7);
    let exempt: Exempt = Arc::new(move |peer| peer == proxy);
    let gate = Connections::new(&config(4, 1, 0), 10_000, m).http("http", Some(exempt));
    let held: Vec<Permit> = (0..4).map(|_| gate.admit(proxy).unwrap()).collect();
    assert_eq!(gate.admit(proxy).err(), Some(Refused::GlobalCap));
    drop(held);
    let _one = gate.admit(ip(1)).unwrap();
    assert_eq!(gate.admit(ip(1)).err(), Some(Refused::PerIpCap));
}

#[test]
fn a_refused_admission_gives_back_what_it_took() {
    let m = Metrics::new();
    let conns = Connections::new(&config(2, 1, 0), 10_000, m.clone());
    let gate = conns.sip("sip_tls");
    let _a = gate.admit(ip(1)).unwrap();
    for _ in 0..5 {
        assert_eq!(gate.admit(ip(1)).err(), Some(Refused::PerIpCap));
    }
    // The global slot and the fd count came back each time.
    assert!(gate.admit(ip(2)).is_ok());
    let open = m.connections_open.with_label_values(&["sip_tls"]);
    assert_eq!(open.get(), 1);
}

#[test]
fn ipv4_mapped_ipv6_counts_as_its_ipv4_address() {
    let gate = Connections::new(&config(10, 1, 0), 10_000, Metrics::new()).sip("sip_tcp");
    let _v4 = gate.admit(ip(1)).unwrap();
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert_eq!(gate.admit(mapped).err(), Some(Refused::PerIpCap));
}
