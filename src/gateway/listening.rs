//! What siphon tells the operator at start: every address it listens on and
//! the page to open, composed here so that a test can read it.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Gateway;
use crate::sip::Transport;

/// Every listener of a running gateway, with the ports it really bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// The web phone, `/ws`, `/metrics` and the health endpoints.
    pub http: SocketAddr,
    /// Whether `http` serves TLS (then the page is `https://`).
    pub https: bool,
    /// Where a browser reaches this host when `http` is a wildcard address.
    pub public_ip: IpAddr,
    /// SIP listeners as (config key, address): `sip.udp`, `sip.tcp`, `sip.tls`.
    pub sip: Vec<(&'static str, SocketAddr)>,
    /// The WebRTC UDP port of each relay loop.
    pub webrtc: Vec<SocketAddr>,
    /// The SIP-side RTP range: bind address, first and last port.
    pub rtp: (IpAddr, u16, u16),
    /// The echo extension: the name to dial and its SIP address.
    pub echo: Option<(String, SocketAddr)>,
}

impl Listening {
    /// The page to open: `http.listen`, a wildcard replaced by the public address.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let ip = match self.http.ip() {
            ip if ip.is_unspecified() => self.public_ip,
            ip => ip,
        };
        format!("{scheme}://{}/", SocketAddr::new(ip, self.http.port()))
    }

    /// One line per listener, as (what, where): the text of the start-up log.
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut out = vec![("web phone".to_owned(), self.url())];
        out.push(("http.listen".to_owned(), self.http.to_string()));
        for (key, addr) in &self.sip {
            out.push(((*key).to_owned(), addr.to_string()));
        }
        out.push(("webrtc (udp)".to_owned(), ports(&self.webrtc)));
        let (ip, min, max) = self.rtp;
        let rtp = format!("{}-{max}", SocketAddr::new(ip, min));
        out.push(("rtp (udp)".to_owned(), rtp));
        if let Some((extension, addr)) = &self.echo {
            out.push((format!("echo (dial {extension})"), addr.to_string()));
        }
        out
    }

    /// Log every line at info.
    pub fn log(&self) {
        for (what, addr) in self.lines() {
            tracing::info!("listening: {what:<16} {addr}");
        }
    }
}

impl Gateway {
    /// Every address the gateway listens on, for the start-up log.
    pub fn listening(&self) -> Listening {
        let c = &self.inner.config;
        let sip = [
            ("sip.udp", Transport::Udp),
            ("sip.tcp", Transport::Tcp),
            ("sip.tls", Transport::Tls),
        ]
        .into_iter()
        .filter_map(|(key, t)| self.sip_addr(t).map(|a| (key, a)))
        .collect();
        let public_ip = match c.webrtc_public_ip() {
            ip if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
            ip => ip,
        };
        Listening {
            http: self.http_addr,
            // Set from http.tls_cert once HTTPS is served.
            https: false,
            public_ip,
            sip,
            webrtc: self.inner.relays.webrtc_addrs(),
            rtp: (c.rtp.bind, c.rtp.port_min, c.rtp.port_max),
            echo: self.inner.route.echo.clone(),
        }
    }
}

/// `10.0.0.5:10000` for one socket, `10.0.0.5:10000-10003` for consecutive
/// ports on one address, else every address.
fn ports(addrs: &[SocketAddr]) -> String {
    let (Some(first), Some(last)) = (addrs.first(), addrs.last()) else {
        return "none".to_owned();
    };
    let consecutive = addrs
        .windows(2)
        .all(|w| w[0].ip() == w[1].ip() && w[0].port().checked_add(1) == Some(w[1].port()));
    if addrs.len() == 1 {
        first.to_string()
    } else if consecutive {
        format!("{first}-{}", last.port())
    } else {
        let mut s = String::new();
        for (i, a) in addrs.iter().enumerate() {
            let _ = write!(s, "{}{a}", if i == 0 { "" } else { ", " });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn defaults() -> Listening {
        Listening {
            http: addr("127.0.0.1:8080"),
            https: false,
            public_ip: "127.0.0.1".parse().unwrap(),
            sip: vec![
                ("sip.udp", addr("127.0.0.1:5060")),
                ("sip.tcp", addr("127.0.0.1:5060")),
            ],
            webrtc: vec![addr("127.0.0.1:10000"), addr("127.0.0.1:10001")],
            rtp: ("127.0.0.1".parse().unwrap(), 20000, 29999),
            echo: Some(("echo".into(), addr("127.0.0.1:5062"))),
        }
    }

    #[test]
    fn every_listener_and_the_page_to_open_are_listed() {
        let lines = defaults().lines();
        let text: Vec<String> = lines.iter().map(|(w, a)| format!("{w} {a}")).collect();
        assert_eq!(
            text,
            [
                "web phone http://127.0.0.1:8080/",
                "http.listen 127.0.0.1:8080",
                "sip.udp 127.0.0.1:5060",
                "sip.tcp 127.0.0.1:5060",
                "webrtc (udp) 127.0.0.1:10000-10001",
                "rtp (udp) 127.0.0.1:20000-29999",
                "echo (dial echo) 127.0.0.1:5062",
            ]
        );
    }

    #[test]
    fn a_wildcard_http_listen_gives_the_public_address_to_open() {
        let l = Listening {
            http: addr("0.0.0.0:8443"),
            https: true,
            public_ip: "203.0.113.10".parse().unwrap(),
            sip: vec![("sip.tls", addr("0.0.0.0:5061"))],
            webrtc: vec![addr("0.0.0.0:10000")],
            echo: None,
            ..defaults()
        };
        assert_eq!(l.url(), "https://203.0.113.10:8443/");
        let lines = l.lines();
        assert!(lines.contains(&("sip.tls".into(), "0.0.0.0:5061".into())));
        assert!(lines.contains(&("webrtc (udp)".into(), "0.0.0.0:10000".into())));
        assert!(!lines.iter().any(|(w, _)| w.starts_with("echo")));
    }

    #[test]
    fn scattered_webrtc_ports_are_each_listed() {
        let l = vec![addr("127.0.0.1:41000"), addr("127.0.0.1:39000")];
        assert_eq!(ports(&l), "127.0.0.1:41000, 127.0.0.1:39000");
        let v6 = addr("[::1]:8080");
        let l = Listening {
            http: v6,
            ..defaults()
        };
        assert_eq!(l.url(), "http://[::1]:8080/");
    }
}
