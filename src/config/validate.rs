//! Checks that span keys or need more than a type: each adds errors to the
//! list and never stops early, so one run reports every problem.

use super::error::ConfigError;
use super::types::{default_user_agent, Config};

/// Codec names accepted in `sip.codecs`, in canonical spelling.
pub const CODECS: &[&str] = &["opus", "PCMU", "PCMA", "G722"];

/// Fills derived defaults, canonicalises codec names, and checks `config`.
pub(super) fn finish(config: &mut Config, errors: &mut Vec<ConfigError>) {
    if config.sip.user_agent.is_empty() {
        config.sip.user_agent = default_user_agent();
    }
    check_codecs(&mut config.sip.codecs, errors);
    check_sip(config, errors);
    check_inbound(config, errors);
    check_nonzero(config, errors);
    check_ports(config, errors);
    check_auth(config, errors);
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
    if sip.udp.is_none() && sip.tcp.is_none() {
        let reason = "sip.udp and sip.tcp are both disabled; enable at least one";
        errors.push(ConfigError::new("sip.udp", reason));
    }
    if let Some(uri) = &sip.trunk.uri {
        let lower = uri.to_ascii_lowercase();
        if !lower.starts_with("sip:") && !lower.starts_with("sips:") {
            let reason =
                format!("expected a sip: URI such as \"sip:pbx.example.com\", got {uri:?}");
            errors.push(ConfigError::new("sip.trunk.uri", reason));
        }
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
    match inbound.others.as_str() {
        "refuse" => {}
        "challenge" if inbound.username.is_empty() || inbound.password.is_empty() => {
            let reason = "others = \"challenge\" needs sip.inbound.username and password";
            errors.push(ConfigError::new("sip.inbound.others", reason));
        }
        "challenge" => {}
        other => {
            let reason = format!("expected \"refuse\" or \"challenge\", got {other:?}");
            errors.push(ConfigError::new("sip.inbound.others", reason));
        }
    }
}

/// `10.0.0.5`, `10.0.0.0/24`, `::1/128`.
fn valid_cidr(s: &str) -> bool {
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
    ];
    for (key, value) in values {
        if value == 0 {
            errors.push(ConfigError::new(key, "must be at least 1"));
        }
    }
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
