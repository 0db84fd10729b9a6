//! Where a browser's `to` goes: the built-in echo extension, the trunk, or a
//! full SIP URI where config allows it. Pure: config in, request URI out.

use std::net::SocketAddr;

/// What routing needs from the config.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    /// The first trunk's URI (`sip:host[:port][;params]`), if any: the
    /// gateway puts the others behind it for failover.
    pub trunk: Option<String>,
    /// Whether browsers may dial `sip:` URIs directly.
    pub allow_uri_dial: bool,
    /// The echo extension's name and SIP address, when enabled.
    pub echo: Option<(String, SocketAddr)>,
}

/// A routed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI of the INVITE.
    pub uri: String,
    /// Whether the trunk's credentials apply (digest challenges from it).
    pub via_trunk: bool,
}

/// Why a destination cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Characters that cannot appear in a SIP user part.
    #[error("`{0}` is not a valid number or user (allowed: letters, digits, + * # . _ -)")]
    InvalidDestination(String),
    /// A `sip:` URI while `sip.allow_uri_dial` is off.
    #[error("dialing SIP URIs is disabled (sip.allow_uri_dial)")]
    UriDialNotAllowed,
    /// A malformed `sip:` URI.
    #[error("invalid SIP URI `{0}`")]
    InvalidUri(String),
    /// A number or user with no trunk configured.
    #[error("no trunk configured for `{0}` (sip.trunk.uri)")]
    NoTrunk(String),
}

const MAX_USER: usize = 64;

/// Route `to` per `cfg`.
pub fn resolve(to: &str, cfg: &RouteConfig) -> Result<Target, RouteError> {
    let to = to.trim();
    if let Some((ext, addr)) = &cfg.echo {
        if to == ext {
            let uri = format!("sip:{ext}@{addr}");
            return Ok(Target {
                uri,
                via_trunk: false,
            });
        }
    }
    let lower = to.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        if !cfg.allow_uri_dial {
            return Err(RouteError::UriDialNotAllowed);
        }
        validate_uri(to)?;
        return Ok(Target {
            uri: to.to_owned(),
            via_trunk: false,
        });
    }
    if !valid_user(to) {
        return Err(RouteError::InvalidDestination(printable(to)));
    }
    let trunk = cfg
        .trunk
        .as_deref()
        .ok_or_else(|| RouteError::NoTrunk(to.to_owned()))?;
    Ok(Target {
        uri: trunk_target(trunk, to),
        via_trunk: true,
    })
}

/// The Request-URI for `user` (a checked number or name) at `trunk`.
pub fn trunk_target(trunk: &str, user: &str) -> String {
    // A sips: trunk keeps its scheme: the call must go over TLS (RFC 3261 §19.1).
    let (scheme, rest) = match trunk.split_once(':') {
        Some((s, rest)) if s.eq_ignore_ascii_case("sips") => ("sips", rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("sip") => ("sip", rest),
        _ => ("sip", trunk),
    };
    // A trunk URI may carry a user part already (sip:gw@host): replace it.
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}:{user}@{host}")
}

fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= MAX_USER
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+*#._-".contains(&b))
}

/// A URI goes into the Request-URI and To header verbatim, so anything that
/// could break the header (whitespace, quotes, angle brackets, CR/LF) is refused.
fn validate_uri(uri: &str) -> Result<(), RouteError> {
    let bad = || RouteError::InvalidUri(printable(uri));
    let rest = uri.split_once(':').map(|(_, r)| r).ok_or_else(bad)?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split([';', '?']).next().unwrap_or("");
    let ok_chars = uri.len() <= 256
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>\"'`\\{}|^".contains(&b));
    if !ok_chars || host.is_empty() || host.starts_with(':') {
        return Err(bad());
    }
    Ok(())
}

fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RouteConfig {
        RouteConfig {
            trunk: Some("sip:pbx.example.com:5080;transport=tcp".into()),
            allow_uri_dial: false,
            echo: Some(("echo".into(), "127.0.0.1:5062".parse().unwrap())),
        }
    }

    #[test]
    fn numbers_and_users_go_to_the_trunk() {
        let t = resolve("1000", &cfg()).unwrap();
        assert_eq!(t.uri, "sip:1000@pbx.example.com:5080;transport=tcp");
        assert!(t.via_trunk);
        let mut c = cfg();
        c.trunk = Some("sip:gw@10.0.0.1".into());
        assert_eq!(
            resolve("+4930123", &c).unwrap().uri,
            "sip:+4930123@10.0.0.1"
        );
        c.trunk = Some("SIPS:gw@carrier.example:5061".into());
        assert_eq!(
            resolve("1000", &c).unwrap().uri,
            "sips:1000@carrier.example:5061"
        );
    }

    #[test]
    fn echo_extension_is_local() {
        let t = resolve("echo", &cfg()).unwrap();
        assert_eq!(t.uri, "sip:echo@127.0.0.1:5062");
        assert!(!t.via_trunk);
    }

    #[test]
    fn uri_dial_only_when_allowed() {
        let mut c = cfg();
        assert_eq!(
            resolve("sip:bob@example.org", &c),
            Err(RouteError::UriDialNotAllowed)
        );
        c.allow_uri_dial = true;
        assert_eq!(
            resolve("sip:bob@example.org", &c).unwrap().uri,
            "sip:bob@example.org"
        );
        assert!(matches!(
            resolve("sip:bob@exa mple.org", &c),
            Err(RouteError::InvalidUri(_))
        ));
        assert!(matches!(
            resolve("sip:bob@x\r\nVia: evil", &c),
            Err(RouteError::InvalidUri(_))
        ));
        assert!(matches!(
            resolve("sip:", &c),
            Err(RouteError::InvalidUri(_))
        ));
    }

    #[test]
    fn bad_destinations_are_refused() {
        let c = cfg();
        assert!(matches!(
            resolve("10 00", &c),
            Err(RouteError::InvalidDestination(_))
        ));
        assert!(
            matches!(resolve("a\r\nb", &c), Err(RouteError::InvalidDestination(s)) if s == "a??b")
        );
        assert!(matches!(
            resolve(&"1".repeat(65), &c),
            Err(RouteError::InvalidDestination(_))
        ));
        let no_trunk = RouteConfig::default();
        assert_eq!(
            resolve("1000", &no_trunk),
            Err(RouteError::NoTrunk("1000".into()))
        );
    }
}
