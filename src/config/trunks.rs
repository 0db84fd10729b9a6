//! `[sip.trunk]` and `[[sip.trunks]]`: where numbers and users are sent, in
//! which order, and how each trunk's health is probed.

use std::fmt;

use super::error::ConfigError;
use super::schema::element;
use super::srtp::SrtpMode;
use super::types::{redact, Config};

/// Longest OPTIONS interval accepted, in seconds.
const MAX_PING_INTERVAL: u32 = 3600;
/// Shortest OPTIONS interval accepted: a ping's transaction lasts up to 32 s
/// over UDP, so a shorter one would only pile them up.
const MIN_PING_INTERVAL: u32 = 5;
/// The INVITE transaction's own timeout (Timer B, 64 T1), in seconds: the
/// longest `response_timeout_secs`, and the one that adds no timer.
const MAX_RESPONSE_TIMEOUT: u32 = 32;

/// One trunk: `[sip.trunk]`, or one `[[sip.trunks]]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// Its name, the `trunk` label of its metrics; "" = `trunk` for
    /// `[sip.trunk]`, `trunk<n>` for the n-th `[[sip.trunks]]` table.
    pub name: String,
    /// Trunk URI such as `sip:pbx.example.com:5060;transport=tcp`; `None` = no trunk.
    pub uri: Option<String>,
    /// Digest username answered once on 401/407.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// User part of From when the browser user is anonymous.
    pub from_user: String,
    /// SRTP (SDES) toward the trunk.
    pub srtp: SrtpMode,
    /// Lower is tried first.
    pub priority: u32,
    /// Share of calls among the trunks of one priority.
    pub weight: u32,
    /// Seconds between OPTIONS pings; 0 = not pinged, always taken as up.
    pub ping_interval_secs: u32,
    /// Failed pings in a row that mark the trunk down.
    pub down_after: u32,
    /// Answered pings in a row that mark a down trunk up again.
    pub up_after: u32,
    /// Seconds an INVITE may go without any answer (100 Trying counts)
    /// before the call moves to the next trunk; 32 = the transaction's
    /// own timeout (Timer B).
    pub response_timeout_secs: u32,
}

impl Default for TrunkConfig {
    /// A `[[sip.trunks]]` table: pinged, so that failover knows which is up.
    fn default() -> Self {
        Self {
            name: String::new(),
            uri: None,
            username: String::new(),
            password: String::new(),
            from_user: "siphon".to_owned(),
            srtp: SrtpMode::Off,
            priority: 1,
            weight: 1,
            ping_interval_secs: 30,
            down_after: 3,
            up_after: 2,
            response_timeout_secs: 5,
        }
    }
}

impl TrunkConfig {
    /// How long an INVITE to this trunk may go unanswered before failover;
    /// `None` at the transaction's own timeout.
    pub fn response_wait(&self) -> Option<std::time::Duration> {
        let secs = self.response_timeout_secs;
        (secs < MAX_RESPONSE_TIMEOUT).then(|| std::time::Duration::from_secs(secs.into()))
    }

    /// `[sip.trunk]`: not pinged unless asked, as it has nothing to fail
    /// over to (and PBXs configured before pings existed see none).
    pub fn single() -> Self {
        Self {
            ping_interval_secs: 0,
            ..Self::default()
        }
    }

    /// The trunk's name as its metrics and logs show it.
    pub fn label(&self, index: Option<usize>) -> String {
        match (self.name.is_empty(), index) {
            (false, _) => self.name.clone(),
            (true, None) => "trunk".to_owned(),
            (true, Some(i)) => format!("trunk{}", i + 1),
        }
    }
}

impl fmt::Debug for TrunkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("uri", &self.uri)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("from_user", &self.from_user)
            .field("srtp", &self.srtp)
            .field("priority", &self.priority)
            .field("weight", &self.weight)
            .field("ping_interval_secs", &self.ping_interval_secs)
            .field("down_after", &self.down_after)
            .field("up_after", &self.up_after)
            .field("response_timeout_secs", &self.response_timeout_secs)
            .finish()
    }
}

impl Config {
    /// The trunks calls may go to, named, in file order: `[[sip.trunks]]`,
    /// else `[sip.trunk]` when it has a URI; empty when there is none.
    pub fn trunks(&self) -> Vec<(String, &TrunkConfig)> {
        if self.sip.trunks.is_empty() {
            let single = &self.sip.trunk;
            return single
                .uri
                .is_some()
                .then(|| (single.label(None), single))
                .into_iter()
                .collect();
        }
        let list = self.sip.trunks.iter().enumerate();
        list.map(|(i, t)| (t.label(Some(i)), t)).collect()
    }

    /// Each trunk with the key its config errors name: `sip.trunk`, `sip.trunks[1]`.
    pub(super) fn trunk_keys(&self) -> Vec<(String, &TrunkConfig)> {
        if self.sip.trunks.is_empty() {
            let single = &self.sip.trunk;
            let single = single
                .uri
                .is_some()
                .then(|| ("sip.trunk".to_owned(), single));
            return single.into_iter().collect();
        }
        let list = self.sip.trunks.iter().enumerate();
        list.map(|(i, t)| (element("sip.trunks", i), t)).collect()
    }

    /// The first trunk of the best priority: the registrar users fall back to.
    pub fn primary_trunk(&self) -> Option<&TrunkConfig> {
        let trunks = self.trunks();
        let best = trunks.iter().map(|(_, t)| t.priority).min()?;
        trunks
            .into_iter()
            .map(|(_, t)| t)
            .find(|t| t.priority == best)
    }

    /// The primary trunk's URI.
    pub fn trunk_uri(&self) -> Option<&str> {
        self.primary_trunk().and_then(|t| t.uri.as_deref())
    }
}

/// Checks each trunk, and that the two forms are not mixed.
pub(super) fn check(config: &Config, errors: &mut Vec<ConfigError>) {
    let sip = &config.sip;
    if sip.trunk.uri.is_some() || sip.trunk.ping_interval_secs != 0 {
        check_one("sip.trunk", &sip.trunk, errors);
    }
    if !sip.trunks.is_empty() && sip.trunk.uri.is_some() {
        let reason = "set either sip.trunk or [[sip.trunks]], not both";
        errors.push(ConfigError::new("sip.trunks", reason));
    }
    for (i, trunk) in sip.trunks.iter().enumerate() {
        let key = element("sip.trunks", i);
        if trunk.uri.is_none() {
            errors.push(ConfigError::new(format!("{key}.uri"), "required"));
        }
        check_one(&key, trunk, errors);
    }
    let trunks = config.trunks();
    for (i, (name, trunk)) in trunks.iter().enumerate() {
        let key = element("sip.trunks", i);
        if trunks[..i].iter().any(|(other, _)| other == name) {
            let reason = format!("the name {name:?} is taken by an earlier trunk");
            errors.push(ConfigError::new(format!("{key}.name"), reason));
        }
        // Failover resends the call's offer, whose keys follow the mode.
        if trunk.srtp != trunks[0].1.srtp {
            let reason = "every trunk needs the same srtp mode: a failover resends the same offer";
            errors.push(ConfigError::new(format!("{key}.srtp"), reason));
        }
    }
}

fn check_one(key: &str, trunk: &TrunkConfig, errors: &mut Vec<ConfigError>) {
    let mut report = |field: &str, reason: String| {
        errors.push(ConfigError::new(format!("{key}.{field}"), reason));
    };
    if let Some(reason) = trunk
        .uri
        .as_deref()
        .and_then(super::validate::sip_uri_problem)
    {
        report("uri", reason);
    }
    let name_ok = trunk
        .name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok || trunk.name.len() > 64 {
        let reason = format!(
            "up to 64 letters, digits, \"-\", \"_\" and \".\", got {:?}",
            trunk.name
        );
        report("name", reason);
    }
    if !(1..=1000).contains(&trunk.weight) {
        report(
            "weight",
            format!("must be from 1 to 1000, got {}", trunk.weight),
        );
    }
    let ping = trunk.ping_interval_secs;
    if ping != 0 && !(MIN_PING_INTERVAL..=MAX_PING_INTERVAL).contains(&ping) {
        let reason = format!(
            "must be 0 (no pings) or from {MIN_PING_INTERVAL} to {MAX_PING_INTERVAL}, got {ping}"
        );
        report("ping_interval_secs", reason);
    }
    let wait = trunk.response_timeout_secs;
    if !(1..=MAX_RESPONSE_TIMEOUT).contains(&wait) {
        let reason = format!("must be from 1 to {MAX_RESPONSE_TIMEOUT}, got {wait}");
        report("response_timeout_secs", reason);
    }
    for (field, value) in [
        ("down_after", trunk.down_after),
        ("up_after", trunk.up_after),
    ] {
        if !(1..=100).contains(&value) {
            report(field, format!("must be from 1 to 100, got {value}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::ConfigErrors;

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml_str(text, &env)
    }

    const TWO: &str = r#"
        [[sip.trunks]]
        uri = "sip:pbx2.example.com"
        priority = 2
        [[sip.trunks]]
        name = "main"
        uri = "sip:pbx1.example.com;transport=tcp"
        username = "gw"
        weight = 3
        ping_interval_secs = 0
        [[users]]
        name = "alice"
        register = true
    "#;

    #[test]
    fn a_list_of_trunks_is_named_and_the_best_priority_is_primary() {
        let password = [("SIPHON_SIP_TRUNKS_1_PASSWORD", "secret")];
        let config = load(TWO, &password).unwrap_or_else(|e| panic!("{e}"));
        let trunks = config.trunks();
        let names: Vec<&str> = trunks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["trunk1", "main"]);
        let (first, main) = (trunks[0].1, trunks[1].1);
        assert_eq!(
            (first.ping_interval_secs, first.down_after, first.up_after),
            (30, 3, 2)
        );
        assert_eq!((main.weight, main.password.as_str()), (3, "secret"));
        assert_eq!(
            config.trunk_uri(),
            Some("sip:pbx1.example.com;transport=tcp")
        );
        // Users register with the primary trunk when they name no registrar.
        let alice = config.user("alice").expect("alice");
        assert_eq!(config.user_registrar(alice), config.trunk_uri());
    }

    #[test]
    fn the_single_trunk_is_one_entry_and_is_not_pinged_unless_asked() {
        let config = load("[sip.trunk]\nuri = \"sip:pbx\"\n", &[]).expect("valid");
        let trunks = config.trunks();
        assert_eq!(trunks.len(), 1);
        assert_eq!(trunks[0].0, "trunk");
        assert_eq!(trunks[0].1.ping_interval_secs, 0);
        assert!(Config::default().trunks().is_empty());
        // 5 s to answer at all; 32 adds no timer of siphon's.
        assert_eq!(trunks[0].1.response_wait(), Some(Duration::from_secs(5)));
        let slow = TrunkConfig {
            response_timeout_secs: 32,
            ..TrunkConfig::default()
        };
        assert_eq!(slow.response_wait(), None);
    }

    #[test]
    fn each_bad_trunk_key_is_named() {
        let text = r#"
            [sip.trunk]
            uri = "sip:pbx0"
            [[sip.trunks]]
            name = "a"
            uri = "http://pbx1"
            weight = 0
            ping_interval_secs = 2
            down_after = 0
            [[sip.trunks]]
            name = "a"
            uri = "sips:pbx2"
            srtp = "require"
            response_timeout_secs = 33
            [[sip.trunks]]
            name = "no spaces"
        "#;
        let errors = load(text, &[]).expect_err("invalid");
        for key in [
            "sip.trunks",
            "sip.trunks[0].uri",
            "sip.trunks[0].weight",
            "sip.trunks[0].ping_interval_secs",
            "sip.trunks[0].down_after",
            "sip.trunks[1].name",
            "sip.trunks[1].srtp",
            "sip.trunks[1].response_timeout_secs",
            "sip.trunks[2].uri",
            "sip.trunks[2].name",
        ] {
            assert!(errors.get(key).is_some(), "no error for {key}: {errors}");
        }
        assert!(errors.get("sip.trunks[0].up_after").is_none(), "{errors}");
    }
}
