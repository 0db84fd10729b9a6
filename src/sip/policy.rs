//! Who may call in: trusted trunk networks, and what to do with everyone
//! else (refuse, or demand digest credentials). Pure values; the gate in
//! `uas_auth` applies them to requests.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR form (`10.0.0.0/24`, `::1/128`; a bare address is
/// a single host). Written here rather than taken from a crate: siphon only
/// needs parsing and membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// Network address (host bits are ignored when matching).
    pub addr: IpAddr,
    /// Prefix length: 0-32 for IPv4, 0-128 for IPv6.
    pub prefix: u8,
}

/// Why a string is not an `IpNet`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// The address part does not parse.
    #[error("invalid network address {0:?}")]
    Addr(String),
    /// The prefix is not a number within the address family's width.
    #[error("invalid prefix length {0:?}")]
    Prefix(String),
}

fn width(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl IpNet {
    /// A single host.
    pub fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix: width(addr),
        }
    }

    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`, what a dual-stack socket reports) count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip) = (self.addr.to_canonical(), ip.to_canonical());
        if net.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let w = width(net);
        let prefix = self.prefix.min(w);
        if prefix == 0 {
            return true;
        }
        let shift = u32::from(w - prefix);
        (bits(net) >> shift) == (bits(ip) >> shift)
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| IpNetError::Addr(addr.to_string()))?;
        let prefix = match prefix {
            None => width(addr),
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= width(addr))
                .ok_or_else(|| IpNetError::Prefix(p.to_string()))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which inbound INVITEs are let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundPolicy {
    /// Sources trusted without authentication (PBXs, carrier trunks).
    pub trunk_sources: Vec<IpNet>,
    /// What to do with INVITEs from any other source.
    pub others: OthersPolicy,
}

impl Default for InboundPolicy {
    /// Only this host is trusted; everyone else is refused.
    fn default() -> Self {
        let v4 = IpNet {
            addr: IpAddr::from([127, 0, 0, 0]),
            prefix: 8,
        };
        let v6 = IpNet::host(std::net::Ipv6Addr::LOCALHOST.into());
        InboundPolicy {
            trunk_sources: vec![v4, v6],
            others: OthersPolicy::Refuse,
        }
    }
}

impl InboundPolicy {
    /// Whether `ip` is a trusted trunk source.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trunk_sources.iter().any(|n| n.contains(ip))
    }
}

/// The answer to INVITEs from untrusted sources.
#[derive(Clone, PartialEq, Eq)]
pub enum OthersPolicy {
    /// 403 Forbidden.
    Refuse,
    /// 401 with digest challenges (SHA-256 and MD5, qop=auth); wrong
    /// credentials get 403.
    Challenge {
        /// Realm of the challenge.
        realm: String,
        /// Accepted username.
        username: String,
        /// Accepted password.
        password: String,
    },
}

impl fmt::Debug for OthersPolicy {
    // Settings are logged at startup; the password must not be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OthersPolicy::Refuse => f.write_str("Refuse"),
            OthersPolicy::Challenge {
                realm, username, ..
            } => f
                .debug_struct("Challenge")
                .field("realm", realm)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect(s)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn parses_hosts_and_networks() {
        assert_eq!(net("10.0.0.5"), IpNet::host(ip("10.0.0.5")));
        assert_eq!(net("10.0.0.0/24").prefix, 24);
        assert_eq!(net(" ::1/128 ").to_string(), "::1/128");
        assert_eq!(net("fe80::/10").prefix, 10);
        assert_eq!(net("0.0.0.0/0").prefix, 0);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "x/8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn membership() {
        assert!(net("10.0.0.0/24").contains(ip("10.0.0.200")));
        assert!(!net("10.0.0.0/24").contains(ip("10.0.1.1")));
        assert!(net("10.0.0.5/24").contains(ip("10.0.0.1")));
        assert!(net("10.0.0.5").contains(ip("10.0.0.5")));
        assert!(!net("10.0.0.5").contains(ip("10.0.0.6")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn default_trusts_only_loopback() {
        let p = InboundPolicy::default();
        assert!(p.trusts(ip("127.0.0.1")));
        assert!(p.trusts(ip("127.8.9.10")));
        assert!(p.trusts(ip("::1")));
        assert!(!p.trusts(ip("10.0.0.1")));
        assert_eq!(p.others, OthersPolicy::Refuse);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = OthersPolicy::Challenge {
            realm: "r".into(),
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
