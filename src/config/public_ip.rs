//! Listeners on all interfaces need the address peers reach: a wildcard
//! bind (`0.0.0.0`, `::`) cannot be written into SDP, Via or a candidate,
//! and a call set up with it shows in-call with no audio.

use std::net::SocketAddr;

use super::error::ConfigError;
use super::types::Config;

/// Adds an error at `*.public_ip` for each side that binds a wildcard address without one.
pub(super) fn check_public_ips(config: &Config, errors: &mut Vec<ConfigError>) {
    let sip = sip_wildcards(config);
    if config.sip.public_ip.is_none() && !sip.is_empty() {
        let binds = sip.join(" and ");
        errors.push(missing("sip.public_ip", &binds, sip.len() > 1, "PBXs"));
    }
    if config.webrtc.public_ip.is_none() && config.webrtc.bind.is_unspecified() {
        let bind = format!("webrtc.bind ({})", config.webrtc.bind);
        errors.push(missing("webrtc.public_ip", &bind, false, "browsers"));
    }
    if config.rtp.public_ip.is_none() && config.rtp.bind.is_unspecified() {
        let bind = format!("rtp.bind ({})", config.rtp.bind);
        errors.push(missing("rtp.public_ip", &bind, false, "PBXs"));
    }
}

/// The SIP listeners bound to a wildcard address, as `key (address)`.
fn sip_wildcards(config: &Config) -> Vec<String> {
    let listeners = [
        ("sip.udp", config.sip.udp),
        ("sip.tcp", config.sip.tcp),
        ("sip.tls", config.sip.tls.listen),
    ];
    listeners
        .into_iter()
        .filter_map(|(key, addr)| addr.filter(is_wildcard).map(|a| format!("{key} ({a})")))
        .collect()
}

fn is_wildcard(addr: &SocketAddr) -> bool {
    addr.ip().is_unspecified()
}

fn missing(key: &str, binds: &str, plural: bool, peers: &str) -> ConfigError {
    let var = super::env::var_name(&key.split('.').collect::<Vec<_>>());
    let verb = if plural { "listen" } else { "listens" };
    let reason = format!(
        "required because {binds} {verb} on all interfaces, which is no address {peers} \
         can send to; set the address they reach this host at (e.g. {var})"
    );
    ConfigError::new(key, reason)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn errors(config: &Config) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        check_public_ips(config, &mut errors);
        errors.into_iter().map(|e| (e.key, e.reason)).collect()
    }

    fn all_interfaces() -> Config {
        let mut c = Config::default();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        c.sip.udp = Some(SocketAddr::new(any, 5060));
        c.sip.tcp = Some(SocketAddr::new("::".parse().unwrap(), 5060));
        c.webrtc.bind = "::".parse().unwrap();
        c.rtp.bind = any;
        c
    }

    #[test]
    fn loopback_and_specific_binds_need_no_public_ip() {
        assert!(errors(&Config::default()).is_empty());
        let mut c = Config::default();
        c.rtp.bind = "10.0.0.5".parse().unwrap();
        c.sip.udp = Some("192.0.2.7:5060".parse().unwrap());
        assert!(errors(&c).is_empty());
    }

    #[test]
    fn each_wildcard_bind_without_public_ip_names_its_key() {
        let found = errors(&all_interfaces());
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["sip.public_ip", "webrtc.public_ip", "rtp.public_ip"]);
        let (_, sip) = &found[0];
        assert!(sip.contains("sip.udp (0.0.0.0:5060)"), "{sip}");
        assert!(sip.contains("sip.tcp ([::]:5060) listen on"), "{sip}");
        assert!(sip.contains("SIPHON_SIP_PUBLIC_IP"), "{sip}");
        assert!(
            found[1].1.contains("webrtc.bind (::) listens on"),
            "{}",
            found[1].1
        );
        assert!(
            found[2].1.contains("SIPHON_RTP_PUBLIC_IP"),
            "{}",
            found[2].1
        );
    }

    #[test]
    fn a_public_ip_satisfies_its_side_only() {
        let mut c = all_interfaces();
        c.sip.public_ip = Some("203.0.113.9".parse().unwrap());
        c.rtp.public_ip = Some("203.0.113.9".parse().unwrap());
        let keys: Vec<String> = errors(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["webrtc.public_ip"]);
    }

    #[test]
    fn one_wildcard_sip_transport_is_enough_to_need_it() {
        let mut c = Config::default();
        c.sip.tcp = Some("0.0.0.0:5060".parse().unwrap());
        let found = errors(&c);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].1.contains("sip.tcp (0.0.0.0:5060)"),
            "{}",
            found[0].1
        );
        assert!(!found[0].1.contains("sip.udp"), "{}", found[0].1);
    }
}
