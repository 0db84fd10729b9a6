//! SDES-SRTP toward SIP: the `srtp` keys and the rule that keys do not
//! travel over plain signaling.
//!
//! `a=crypto` carries the media key in the SDP, so whoever reads the SIP
//! message can decrypt the call. Where a URI names the transport (trunk,
//! registrar) the rule is checked here, at load time; inbound INVITEs are
//! checked when they arrive, since their transport is only known then.

use super::error::ConfigError;
use super::field::Choice;
use super::schema::element;
use super::types::Config;

/// The insecure-signaling escape hatch, named in every error about it.
pub const ALLOW_INSECURE_KEY: &str = "sip.srtp_allow_insecure_signaling";

/// Whether siphon uses SRTP (SDES keys) toward a SIP peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum SrtpMode {
    /// Plain RTP; SRTP-only offers are refused with 488.
    #[default]
    Off,
    /// SRTP when the peer takes it, plain RTP otherwise.
    Offer,
    /// SRTP or no call (488).
    Require,
}

impl SrtpMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        self.name()
    }
}

impl Choice for SrtpMode {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("off", Self::Off),
        ("offer", Self::Offer),
        ("require", Self::Require),
    ];
}

/// Whether signaling to `uri` is encrypted: `sips:` or `;transport=tls`.
pub fn secure_uri(uri: &str) -> bool {
    let lower = uri.trim().to_ascii_lowercase();
    lower.starts_with("sips:")
        || lower
            .split(';')
            .skip(1)
            .any(|p| p.split('?').next() == Some("transport=tls"))
}

impl Config {
    /// SRTP toward the SIP side of a browser's call: on calls to the trunk,
    /// the stricter of the trunk's mode and the calling user's (when it
    /// registers upstream); off on calls to the echo or a dialed URI.
    pub fn outbound_srtp(&self, caller: Option<&str>, via_trunk: bool) -> SrtpMode {
        if !via_trunk {
            return SrtpMode::Off;
        }
        let user = caller
            .and_then(|name| self.user(name))
            .filter(|u| u.register)
            .map_or(SrtpMode::Off, |u| u.srtp);
        // Every trunk has the same mode (config check).
        user.max(self.primary_trunk().map_or(SrtpMode::Off, |t| t.srtp))
    }

    /// Whether any SRTP mode is on, so SIP messages may carry media keys.
    pub fn srtp_in_use(&self) -> bool {
        let users = self.users.iter().map(|u| u.srtp);
        let trunks = self.trunks().into_iter().map(|(_, t)| t.srtp);
        let all = [self.sip.inbound.srtp].into_iter().chain(trunks);
        all.chain(users).any(|m| m != SrtpMode::Off)
    }

    /// SRTP toward the caller of a browser user: the stricter of
    /// `sip.inbound.srtp` and the called user's own mode.
    pub fn inbound_srtp(&self, user: &str) -> SrtpMode {
        let own = self.user(user).map_or(SrtpMode::Off, |u| u.srtp);
        self.sip.inbound.srtp.max(own)
    }
}

/// Refuses an SRTP mode whose URI would carry the key in clear text.
pub(super) fn check_srtp(config: &Config, errors: &mut Vec<ConfigError>) {
    if config.sip.srtp_allow_insecure_signaling {
        return;
    }
    for (key, trunk) in config.trunk_keys() {
        if let Some(uri) = trunk.uri.as_deref().filter(|u| !secure_uri(u)) {
            if trunk.srtp != SrtpMode::Off {
                errors.push(insecure(&format!("{key}.srtp"), trunk.srtp, uri));
            }
        }
    }
    for (i, user) in config.users.iter().enumerate() {
        let registrar = config.user_registrar(user).filter(|u| !secure_uri(u));
        if let Some(uri) = registrar.filter(|_| user.srtp != SrtpMode::Off) {
            let key = format!("{}.srtp", element("users", i));
            errors.push(insecure(&key, user.srtp, uri));
        }
    }
}

fn insecure(key: &str, mode: SrtpMode, uri: &str) -> ConfigError {
    let reason = format!(
        "\"{}\" would send the SRTP key (a=crypto) in clear text to {uri}; \
         use a sips: or ;transport=tls URI, or set {ALLOW_INSECURE_KEY} = true",
        mode.as_str()
    );
    ConfigError::new(key, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::field::Field;
    use toml::Value;

    #[test]
    fn tls_uris_are_secure() {
        assert!(secure_uri("sips:pbx.example.com"));
        assert!(secure_uri("sip:pbx.example.com:5061;transport=TLS"));
        assert!(secure_uri("sip:pbx;lr;transport=tls"));
        assert!(!secure_uri("sip:pbx.example.com;transport=tcp"));
        assert!(!secure_uri("sip:transport=tls@pbx"));
        assert!(!secure_uri("sip:pbx.example.com"));
    }

    fn load(text: &str) -> Result<Config, crate::config::ConfigErrors> {
        Config::from_toml_str(text, &std::collections::BTreeMap::new())
    }

    #[test]
    fn keys_over_plain_signaling_are_config_errors_naming_the_key() {
        let text = r#"
            [sip.trunk]
            uri = "sip:pbx.example.com;transport=tcp"
            srtp = "require"
            [[users]]
            name = "alice"
            register = true
            registrar = "sip:pbx.example.com"
            srtp = "offer"
        "#;
        let errors = load(text).expect_err("insecure");
        let trunk = errors.get("sip.trunk.srtp").expect("trunk error");
        assert!(
            trunk.reason.contains(ALLOW_INSECURE_KEY),
            "{}",
            trunk.reason
        );
        assert!(trunk.reason.contains("clear text"), "{}", trunk.reason);
        assert!(errors.get("users[0].srtp").is_some(), "{errors}");
        let allowed = format!("[sip]\nsrtp_allow_insecure_signaling = true\n{text}");
        let config = load(&allowed).expect("allowed");
        assert_eq!(config.outbound_srtp(Some("alice"), true), SrtpMode::Require);
        assert_eq!(config.outbound_srtp(Some("alice"), false), SrtpMode::Off);
        assert_eq!(config.inbound_srtp("alice"), SrtpMode::Offer);
        assert_eq!(config.inbound_srtp("bob"), SrtpMode::Off);
        // TLS targets need siphon's own TLS listener (its Contact names it).
        let dir = crate::tls::temp_dir("srtp-config");
        let (cert, key) = crate::tls::write_pair(&dir, "gw.example.com");
        let listener =
            format!("[sip]\ntls = \"127.0.0.1:5061\"\ntls_cert = {cert:?}\ntls_key = {key:?}\n");
        let tls = listener
            + &text
                .replace(";transport=tcp", ";transport=tls")
                .replace("sip:pbx.example.com\"", "sips:pbx.example.com\"");
        load(&tls).expect("TLS URIs carry keys");
        let bad = load("[sip.inbound]\nsrtp = \"yes\"\n").expect_err("bad value");
        assert!(bad.get("sip.inbound.srtp").is_some(), "{bad}");
    }

    #[test]
    fn modes_read_and_refuse_other_words() {
        let read = |s: &str| SrtpMode::from_toml(&Value::String(s.into()));
        assert_eq!(read("Require"), Ok(SrtpMode::Require));
        assert_eq!(read("offer"), Ok(SrtpMode::Offer));
        let err = read("mandatory").unwrap_err().to_string();
        assert!(err.contains("\"off\", \"offer\" or \"require\""), "{err}");
        assert_eq!(
            err,
            "expected \"off\", \"offer\" or \"require\", got \"mandatory\""
        );
        let err = SrtpMode::from_toml(&Value::Boolean(true)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected \"off\", \"offer\" or \"require\", got true"
        );
        assert_eq!(
            SrtpMode::from_toml(&SrtpMode::Offer.to_toml()),
            Ok(SrtpMode::Offer)
        );
    }
}
