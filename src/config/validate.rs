//! Checks that span keys or need more than a type: each adds errors to the
//! list and never stops early, so one run reports every problem.

use super::error::ConfigError;
use super::schema::element;
use super::types::{default_user_agent, Config, InboundOthers};
use super::users::{UserConfig, MAX_EXPIRES, MIN_EXPIRES};

/// Codec names accepted in `sip.codecs`, in canonical spelling.
pub const CODECS: &[&str] = &["opus", "PCMU", "PCMA", "G722"];

/// Fills derived defaults, canonicalises codec names, and checks `config`.
pub(super) fn finish(config: &mut Config, errors: &mut Vec<ConfigError>) {
    if config.sip.user_agent.is_empty() {
        config.sip.user_agent = default_user_agent();
    }
    check_codecs(&mut config.sip.codecs, errors);
    check_sip(config, errors);
    super::trunks::check(config, errors);
    super::sip_tls::check(config, errors);
    check_inbound(config, errors);
    check_client_register(config, errors);
    check_cluster(config, errors);
    check_nonzero(config, errors);
    check_per_user_calls(config.limits.per_user_calls, errors);
    super::connections::check(config, errors);
    check_ports(config, errors);
    check_disconnect(config, errors);
    check_auth(config, errors);
    super::validate_http::check_http(config, errors);
    check_users(config, errors);
    super::records::check(config, errors);
    super::srtp::check_srtp(config, errors);
    check_log_level(&config.log.level, errors);
}

fn check_codecs(codecs: &mut [String], errors: &mut Vec<ConfigError>) {
    const KEY: &str = "sip.codecs";
    if codecs.is_empty() {
        errors.push(ConfigError::new(KEY, "at least one codec is required"));
    }
    for i in 0..codecs.len() {
        let Some(canonical) = CODECS.iter().find(|c| c.eq_ignore_ascii_case(&codecs[i])) else {
            let reason = format!(
                "unknown codec {:?} (allowed: {})",
                codecs[i],
                CODECS.join(", ")
            );
            errors.push(ConfigError::new(KEY, reason));
            continue;
        };
        codecs[i] = (*canonical).to_owned();
        if codecs[..i].contains(&codecs[i]) {
            let reason = format!("codec {canonical} is listed twice");
            errors.push(ConfigError::new(KEY, reason));
        }
    }
}

fn check_sip(config: &Config, errors: &mut Vec<ConfigError>) {
    let sip = &config.sip;
    if sip.udp.is_none() && sip.tcp.is_none() && sip.tls.listen.is_none() {
        let reason = "sip.udp, sip.tcp and sip.tls are all disabled; enable at least one";
        errors.push(ConfigError::new("sip.udp", reason));
    }
    if config.echo.enabled && config.echo.extension.trim().is_empty() {
        let reason = "must not be empty while echo.enabled = true";
        errors.push(ConfigError::new("echo.extension", reason));
    }
}

fn check_inbound(config: &Config, errors: &mut Vec<ConfigError>) {
    let inbound = &config.sip.inbound;
    for source in &inbound.trunk_sources {
        if !valid_cidr(source) {
            let reason = format!("{source:?} is not an IP address or CIDR range");
            errors.push(ConfigError::new("sip.inbound.trunk_sources", reason));
        }
    }
    let unnamed = inbound.username.is_empty() || inbound.password.is_empty();
    if inbound.others == InboundOthers::Challenge && unnamed {
        let reason = "others = \"challenge\" needs sip.inbound.username and password";
        errors.push(ConfigError::new("sip.inbound.others", reason));
    }
}

fn check_client_register(config: &Config, errors: &mut Vec<ConfigError>) {
    let c = &config.sip.client_register;
    if let Some(reason) = c.registrar.as_deref().and_then(sip_uri_problem) {
        errors.push(ConfigError::new("sip.client_register.registrar", reason));
    }
    if c.enabled && config.client_registrar().is_none() {
        let reason = "enabled = true needs sip.client_register.registrar or sip.trunk.uri";
        errors.push(ConfigError::new("sip.client_register.enabled", reason));
    }
    if let Some(reason) = range_problem(c.expires, MIN_EXPIRES, MAX_EXPIRES) {
        errors.push(ConfigError::new("sip.client_register.expires", reason));
    }
}

fn check_cluster(config: &Config, errors: &mut Vec<ConfigError>) {
    let c = &config.cluster;
    if let Some(reason) = c.registrar.as_deref().and_then(sip_uri_problem) {
        errors.push(ConfigError::new("cluster.registrar", reason));
    }
    // Shorter than a PBX registration may be: it bounds how long a dead
    // instance's Contacts linger. A registrar's 423 raises it if need be.
    if let Some(reason) = range_problem(c.expires, MIN_CLUSTER_EXPIRES, MAX_EXPIRES) {
        errors.push(ConfigError::new("cluster.expires", reason));
    }
    if let Some(reason) = range_problem(c.unregister_after_secs, 0, 3600) {
        errors.push(ConfigError::new("cluster.unregister_after_secs", reason));
    }
    if c.contact.contains(['@', ' ', '<', '>']) || c.contact.starts_with("sip") {
        let reason = "expected host[:port][;transport=...], e.g. \"10.0.0.2:5060\"";
        errors.push(ConfigError::new("cluster.contact", reason));
    }
    if !c
        .instance
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        let reason = "use only A-Z a-z 0-9 - _ . (it is a metric label value)";
        errors.push(ConfigError::new("cluster.instance", reason));
    }
}

/// Shortest `cluster.expires`: refreshes come every few seconds at that.
const MIN_CLUSTER_EXPIRES: u32 = 10;

/// What is wrong with a registrar or trunk URI, if anything.
pub(super) fn sip_uri_problem(uri: &str) -> Option<String> {
    let lower = uri.to_ascii_lowercase();
    let sip = lower.starts_with("sip:") || lower.starts_with("sips:");
    (!sip).then(|| format!("expected a sip: URI such as \"sip:pbx.example.com\", got {uri:?}"))
}

/// `10.0.0.5`, `10.0.0.0/24`, `::1/128`.
pub(super) fn valid_cidr(s: &str) -> bool {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, ""));
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

/// Values where 0 would make the gateway useless rather than unlimited.
fn check_nonzero(config: &Config, errors: &mut Vec<ConfigError>) {
    let values = [
        ("limits.max_calls", u64::from(config.limits.max_calls)),
        (
            "limits.max_ws_message_bytes",
            u64::from(config.limits.max_ws_message_bytes),
        ),
        ("limits.ring_timeout_secs", config.limits.ring_timeout_secs),
        (
            "limits.media_timeout_secs",
            config.limits.media_timeout_secs,
        ),
        (
            "sip.max_message_bytes",
            u64::from(config.sip.max_message_bytes),
        ),
        (
            "webrtc.consent_timeout_secs",
            config.webrtc.consent_timeout_secs,
        ),
        ("webrtc.port", u64::from(config.webrtc.port)),
        (
            "limits.max_ring_sessions",
            u64::from(config.limits.max_ring_sessions),
        ),
    ];
    for (key, value) in values {
        if value == 0 {
            errors.push(ConfigError::new(key, "must be at least 1"));
        }
    }
}

/// Most calls one user may have at once: more is a runaway client, not a person.
const MAX_PER_USER_CALLS: u32 = 100;

fn check_per_user_calls(calls: u32, errors: &mut Vec<ConfigError>) {
    if let Some(reason) = range_problem(calls, 1, MAX_PER_USER_CALLS) {
        errors.push(ConfigError::new("limits.per_user_calls", reason));
    }
}

fn check_disconnect(config: &Config, errors: &mut Vec<ConfigError>) {
    let w = &config.webrtc;
    if w.disconnect_timeout_secs == 0 || w.disconnect_timeout_secs >= w.consent_timeout_secs {
        let reason = format!(
            "must be at least 1 and below webrtc.consent_timeout_secs ({}), got {}",
            w.consent_timeout_secs, w.disconnect_timeout_secs
        );
        errors.push(ConfigError::new("webrtc.disconnect_timeout_secs", reason));
    }
}

fn range_problem(value: u32, min: u32, max: u32) -> Option<String> {
    let inside = (min..=max).contains(&value);
    (!inside).then(|| format!("must be from {min} to {max}, got {value}"))
}

fn check_ports(config: &Config, errors: &mut Vec<ConfigError>) {
    let rtp = &config.rtp;
    if rtp.port_min % 2 == 1 {
        let reason = format!("must be even (RTCP uses port + 1), got {}", rtp.port_min);
        errors.push(ConfigError::new("rtp.port_min", reason));
    }
    if rtp.port_min == 0 {
        errors.push(ConfigError::new("rtp.port_min", "must be at least 2"));
    }
    if rtp.port_min > rtp.port_max {
        let reason = format!(
            "rtp.port_min ({}) is greater than rtp.port_max ({})",
            rtp.port_min, rtp.port_max
        );
        errors.push(ConfigError::new("rtp.port_max", reason));
    }
    let workers = config.worker_count();
    let last_webrtc = u64::from(config.webrtc.port) + workers as u64 - 1;
    if last_webrtc > u64::from(u16::MAX) {
        let reason = format!(
            "webrtc.port + {workers} relay loops runs past port 65535; lower webrtc.port or media.workers"
        );
        errors.push(ConfigError::new("webrtc.port", reason));
    }
    // The last RTP port handed out may carry its RTCP one above port_max.
    let rtp_last = u64::from(rtp.port_max) | 1;
    let webrtc_first = u64::from(config.webrtc.port);
    let overlaps = u64::from(rtp.port_min) <= last_webrtc && webrtc_first <= rtp_last;
    if rtp.port_min <= rtp.port_max && overlaps {
        let reason = format!(
            "RTP ports {}-{} overlap the WebRTC ports {webrtc_first}-{last_webrtc} (webrtc.port + media.workers)",
            rtp.port_min, rtp.port_max
        );
        errors.push(ConfigError::new("rtp.port_min", reason));
    }
}

/// Shortest accepted token secret.
const MIN_SECRET: usize = 32;

fn check_auth(config: &Config, errors: &mut Vec<ConfigError>) {
    let auth = &config.auth;
    if auth.required && auth.secret.is_empty() {
        let reason = "required when auth.required = true (set it here or in SIPHON_AUTH_SECRET)";
        errors.push(ConfigError::new("auth.secret", reason));
    } else if auth.required && auth.secret.len() < MIN_SECRET {
        // A short HMAC key can be brute-forced offline from one token.
        let reason = format!(
            "must be at least {MIN_SECRET} bytes, got {} (e.g. `openssl rand -hex 32`)",
            auth.secret.len()
        );
        errors.push(ConfigError::new("auth.secret", reason));
    }
    if !auth.required {
        let exposed: Vec<String> = config
            .listeners()
            .into_iter()
            .filter(|(_, ip)| !ip.is_loopback())
            .map(|(key, ip)| format!("{key} ({ip})"))
            .collect();
        if !exposed.is_empty() {
            let reason = format!(
                "must be true because {} {} not loopback; set auth.required = true and auth.secret",
                exposed.join(", "),
                if exposed.len() == 1 { "is" } else { "are" }
            );
            errors.push(ConfigError::new("auth.required", reason));
        }
    }
}

/// Checks every `[[users]]` element, filling `extension` from `name`.
///
/// Keys that already have an error from reading (a wrong type, or an element
/// that is not a table) are skipped: their value is only the default, and a
/// second error about it would mislead.
fn check_users(config: &mut Config, errors: &mut Vec<ConfigError>) {
    let mut found = Vec::new();
    let trunk = config.trunk_uri().is_some();
    for (i, user) in config.users.iter().enumerate() {
        check_user(user, trunk, &mut |key, reason| {
            found.push((format!("{}.{key}", element("users", i)), reason));
        });
    }
    for user in &mut config.users {
        if user.extension.is_empty() {
            user.extension = user.name.clone();
        }
    }
    check_unique(&config.users, &mut found);
    let read: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    let fresh: Vec<ConfigError> = found
        .into_iter()
        .filter(|(key, _)| {
            let element = key.split('.').next().unwrap_or_default();
            !read.contains(&key.as_str()) && !read.contains(&element)
        })
        .map(|(key, reason)| ConfigError::new(key, reason))
        .collect();
    errors.extend(fresh);
}

/// The rules for one element, each problem given as (key in the element, reason).
fn check_user(user: &UserConfig, trunk: bool, report: &mut impl FnMut(&str, String)) {
    if user.name.is_empty() {
        report(
            "name",
            "required: the user's name, as in the `sub` of its tokens".into(),
        );
    } else if !valid_user_part(&user.name) {
        report("name", user_part_reason(&user.name));
    }
    // Empty means the name, which is checked above.
    if !user.extension.is_empty() && !valid_user_part(&user.extension) {
        report("extension", user_part_reason(&user.extension));
    }
    if let Some(uri) = &user.registrar {
        if let Some(reason) = sip_uri_problem(uri) {
            report("registrar", reason);
        }
    } else if user.register && !trunk {
        let reason = "register = true needs a registrar here or sip.trunk.uri";
        report("registrar", reason.into());
    }
    if user
        .domain
        .contains(|c: char| c.is_whitespace() || "@;<>\"".contains(c))
    {
        let reason = format!("expected a host name or IP address, got {:?}", user.domain);
        report("domain", reason);
    }
    if let Some(reason) = range_problem(user.unregister_after_secs, 0, 3600) {
        report("unregister_after_secs", reason);
    }
    if let Some(reason) = range_problem(user.expires, MIN_EXPIRES, MAX_EXPIRES) {
        report("expires", reason);
    }
}

/// Longest user name or extension.
const MAX_USER_PART: usize = 64;

/// A name or extension: safe both as a token `sub` and as a SIP user part
/// (`+` for E.164, `*` and `#` for feature codes).
fn valid_user_part(s: &str) -> bool {
    (1..=MAX_USER_PART).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+*#._-".contains(&b))
}

fn user_part_reason(value: &str) -> String {
    format!("expected 1 to {MAX_USER_PART} characters of A-Z a-z 0-9 + * # . _ -, got {value:?}")
}

/// Reports each user whose name or extension repeats an earlier user's, at the later one.
fn check_unique(users: &[UserConfig], found: &mut Vec<(String, String)>) {
    let names = duplicates(users, |u| &u.name);
    let mut report = |i: usize, first: usize, field: &str, value: &str| {
        let key = format!("{}.{field}", element("users", i));
        let reason = format!("{value:?} is already {}.{field}", element("users", first));
        found.push((key, reason));
    };
    for &(i, first) in &names {
        report(i, first, "name", &users[i].name);
    }
    for (i, first) in duplicates(users, |u| &u.extension) {
        // An extension taken from a repeated name would only repeat that error.
        let user = &users[i];
        if user.extension != user.name || !names.iter().any(|&(j, _)| j == i) {
            report(i, first, "extension", &user.extension);
        }
    }
}

/// Pairs (later, first) of users with the same non-empty `value`.
fn duplicates(users: &[UserConfig], value: impl Fn(&UserConfig) -> &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let first = users[..i].iter().position(|u| value(u) == value(user));
        if let (Some(first), false) = (first, value(user).is_empty()) {
            out.push((i, first));
        }
    }
    out
}

fn check_log_level(level: &str, errors: &mut Vec<ConfigError>) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
        let reason = format!("not a valid tracing filter directive: {e}");
        errors.push(ConfigError::new("log.level", reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec_errors(names: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut codecs: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut errors = Vec::new();
        check_codecs(&mut codecs, &mut errors);
        (codecs, errors.into_iter().map(|e| e.reason).collect())
    }

    #[test]
    fn codecs_are_canonicalised_case_insensitively() {
        let (codecs, errors) = codec_errors(&["OPUS", "pcmu", "g722"]);
        assert_eq!(codecs, ["opus", "PCMU", "G722"]);
        assert!(errors.is_empty());
    }

    #[test]
    fn codecs_unknown_duplicate_and_empty_are_errors() {
        let (_, errors) = codec_errors(&["opus", "speex", "Opus"]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("\"speex\""));
        assert!(errors[1].contains("twice"));
        let (_, errors) = codec_errors(&[]);
        assert_eq!(errors, ["at least one codec is required"]);
    }
}
