//! Who may open `/ws`, who the client is behind a proxy, and where the
//! HTTP-to-HTTPS redirect points. Pure functions of the request's headers.

use std::net::{IpAddr, SocketAddr};

use crate::sip::IpNet;

/// The access rules of the HTTP surface, from `[http]` and `[auth]`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Origins whose pages may open `/ws`; empty = the request's own Host.
    pub allowed_origins: Vec<String>,
    /// A request without Origin (not a browser) is let in only with tokens.
    pub token_required: bool,
    /// Whether `X-Forwarded-For` is read at all.
    pub behind_proxy: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// Why a WebSocket upgrade was refused (a metric label and the 403 body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginRefusal {
    /// An Origin other than the allowed ones.
    Foreign,
    /// No Origin while tokens are off: any local program could call.
    Missing,
}

impl OriginRefusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            OriginRefusal::Foreign => "origin",
            OriginRefusal::Missing => "no_origin",
        }
    }

    /// The 403 body.
    pub fn message(self) -> &'static str {
        match self {
            OriginRefusal::Foreign => "this origin may not open siphon's WebSocket\n",
            OriginRefusal::Missing => "an Origin header is required unless tokens are on\n",
        }
    }
}

impl Access {
    /// Checks the `Origin` of an upgrade against the rules and the request's `Host`.
    pub fn check_origin(
        &self,
        origin: Option<&str>,
        host: Option<&str>,
    ) -> Result<(), OriginRefusal> {
        let Some(origin) = origin.map(|o| o.trim().trim_end_matches('/')) else {
            return if self.token_required {
                Ok(())
            } else {
                Err(OriginRefusal::Missing)
            };
        };
        let allowed = if self.allowed_origins.is_empty() {
            let authority = origin.split_once("://").map(|(_, a)| a);
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h.trim()))
        } else {
            self.allowed_origins
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
        };
        if allowed {
            Ok(())
        } else {
            Err(OriginRefusal::Foreign)
        }
    }

    /// The client's address: the peer's, or behind trusted proxies the last
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.ip().to_canonical();
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        let (true, Some(header)) = (self.behind_proxy && trusted(peer), forwarded_for) else {
            return peer;
        };
        // Entries are appended by each hop: read from the right, skipping
        // our own proxies; anything further left is the client's to forge.
        let mut client = peer;
        for entry in header.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !trusted(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// The HTTPS URL a plain request to `host` for `path` is sent to, with the
/// TLS listener's port (left out when 443); `None` without a usable Host.
pub fn https_location(host: Option<&str>, https_port: u16, path: &str) -> Option<String> {
    let host = host?.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => &host[..v6.find(']')? + 2],
        None => host.split(':').next()?,
    };
    if name.is_empty() || name.contains(['/', '@', ' ']) {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    Some(format!("https://{name}{port}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allowed: &[&str], token_required: bool) -> Access {
        Access {
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            token_required,
            ..Access::default()
        }
    }

    #[test]
    fn by_default_only_the_page_siphon_serves_may_connect() {
        let a = access(&[], false);
        assert_eq!(
            a.check_origin(Some("https://gw.example:8443"), Some("gw.example:8443")),
            Ok(())
        );
        assert_eq!(
            a.check_origin(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
            Ok(())
        );
        let foreign = a.check_origin(Some("https://evil.example"), Some("127.0.0.1:8080"));
        assert_eq!(foreign, Err(OriginRefusal::Foreign));
        assert_eq!(
            a.check_origin(Some("null"), Some("127.0.0.1:8080")),
            Err(OriginRefusal::Foreign)
        );
        assert_eq!(
            a.check_origin(Some("https://gw.example"), None),
            Err(OriginRefusal::Foreign)
        );
    }

    #[test]
    fn listed_origins_replace_the_host_rule() {
        let a = access(&["https://app.example.com"], false);
        assert_eq!(
            a.check_origin(Some("https://APP.example.com/"), Some("gw:8443")),
            Ok(())
        );
        let own = a.check_origin(Some("https://gw:8443"), Some("gw:8443"));
        assert_eq!(own, Err(OriginRefusal::Foreign));
    }

    #[test]
    fn no_origin_only_with_tokens() {
        assert_eq!(
            access(&[], false).check_origin(None, Some("h")),
            Err(OriginRefusal::Missing)
        );
        assert_eq!(access(&[], true).check_origin(None, Some("h")), Ok(()));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut a = Access {
            behind_proxy: true,
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Access::default()
        };
        let proxy: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let xff = Some("1.2.3.4, 203.0.113.9, 10.9.9.9");
        assert_eq!(
            a.client_ip(proxy, xff),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            a.client_ip(stranger, xff),
            stranger.ip(),
            "a stranger's header is ignored"
        );
        assert_eq!(a.client_ip(proxy, None), proxy.ip());
        assert_eq!(a.client_ip(proxy, Some("garbage")), proxy.ip());
        a.behind_proxy = false;
        assert_eq!(a.client_ip(proxy, xff), proxy.ip());
    }

    #[test]
    fn redirects_keep_host_and_path_with_the_tls_port() {
        let to = |h, port, p| https_location(Some(h), port, p);
        assert_eq!(
            to("gw.example", 443, "/ws?x=1").as_deref(),
            Some("https://gw.example/ws?x=1")
        );
        assert_eq!(
            to("gw.example:80", 8443, "/").as_deref(),
            Some("https://gw.example:8443/")
        );
        assert_eq!(
            to("[::1]:8080", 8443, "/").as_deref(),
            Some("https://[::1]:8443/")
        );
        assert_eq!(to("evil/x", 443, "/"), None);
        assert_eq!(https_location(None, 443, "/"), None);
    }
}
