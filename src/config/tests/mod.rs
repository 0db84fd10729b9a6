use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::*;

mod docker;
mod files;
mod sip_tls;
mod users;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn load(text: &str) -> Config {
    Config::from_toml_str(text, &no_env()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors_with(text: &str, vars: &[(&str, &str)]) -> ConfigErrors {
    Config::from_toml_str(text, &env(vars)).expect_err("config should be rejected")
}

fn rejected(text: &str) -> ConfigErrors {
    errors_with(text, &[])
}

fn keys(errors: &ConfigErrors) -> Vec<&str> {
    errors.errors().iter().map(|e| e.key.as_str()).collect()
}

fn reason<'a>(errors: &'a ConfigErrors, key: &str) -> &'a str {
    let error = errors
        .get(key)
        .unwrap_or_else(|| panic!("no error for {key}: {errors}"));
    &error.reason
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn no_file_and_no_env_gives_the_defaults() {
    let config = Config::load(None, &no_env()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.sip.udp, Some(addr("127.0.0.1:5060")));
    assert_eq!(config.sip.user_agent, default_user_agent());
    assert!(config.sip.user_agent.starts_with("siphon/"));
    assert_eq!(config.sip.codecs, CODECS);
    assert_eq!(config.log.format, LogFormat::Text);
    assert!(config.all_listeners_loopback());
    assert_eq!(config.sip_public_ip(), ip("127.0.0.1"));
    assert_eq!(config.sip_domain(), "127.0.0.1");
    assert_eq!(config.webrtc_public_ip(), ip("127.0.0.1"));
    assert_eq!(config.rtp_public_ip(), ip("127.0.0.1"));
    assert!(config.worker_count() >= 1);
    assert_eq!(config.limits.ring_timeout().as_secs(), 60);
}

#[test]
fn every_key_has_a_distinct_variable() {
    let defaults = schema::write(&Config::default());
    let leaves = schema::leaves(&defaults);
    let mut names: Vec<String> = leaves.iter().map(|(p, _)| env::var_name(p)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), leaves.len(), "two keys map to one variable");
    for name in [
        "SIPHON_SIP_TRUNK_PASSWORD",
        "SIPHON_HTTP_LISTEN",
        "SIPHON_AUTH_SECRET",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
}

#[test]
fn env_overrides_file_which_overrides_defaults() {
    let text =
        "[http]\nlisten = \"127.0.0.1:9000\"\n[limits]\nmax_calls = 5\nring_timeout_secs = 9\n";
    let vars = env(&[
        ("SIPHON_LIMITS_MAX_CALLS", "7"),
        ("SIPHON_SIP_TRUNK_PASSWORD", "pw"),
        ("SIPHON_SIP_TRUNK_URI", "sip:pbx.example.com;transport=tcp"),
        ("SIPHON_SIP_TCP", ""),
        ("SIPHON_ECHO_ENABLED", "false"),
        ("SIPHON_CONFIG", "/etc/siphon/siphon.toml"),
    ]);
    let config = Config::from_toml_str(text, &vars).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.limits.max_calls, 7, "env beats file");
    assert_eq!(config.limits.ring_timeout_secs, 9, "file beats default");
    assert_eq!(config.http.listen, addr("127.0.0.1:9000"));
    assert_eq!(config.limits.media_timeout_secs, 60, "default kept");
    assert_eq!(config.sip.trunk.password, "pw");
    assert_eq!(
        config.sip.trunk.uri.as_deref(),
        Some("sip:pbx.example.com;transport=tcp")
    );
    assert_eq!(config.sip.tcp, None, "\"\" disables");
    assert!(!config.echo.enabled);
}

#[test]
fn arrays_come_from_comma_separated_variables() {
    let vars = env(&[("SIPHON_SIP_CODECS", "pcmu, OPUS")]);
    let config = Config::load(None, &vars).unwrap();
    assert_eq!(config.sip.codecs, ["PCMU", "opus"]);
}

#[test]
fn bad_and_unknown_variables_are_named() {
    let errors = errors_with(
        "",
        &[
            ("SIPHON_LIMITS_MAX_CALLS", "many"),
            ("SIPHON_METRICS_ENABLED", "yes"),
            ("SIPHON_HTTP_LISTNE", "127.0.0.1:1"),
            ("SIPHON_HTTP_LISTEN", "nowhere"),
        ],
    );
    assert_eq!(
        keys(&errors),
        [
            "SIPHON_HTTP_LISTNE",
            "SIPHON_LIMITS_MAX_CALLS",
            "SIPHON_METRICS_ENABLED",
            "http.listen"
        ]
    );
    assert!(reason(&errors, "SIPHON_HTTP_LISTNE").contains("unknown variable"));
    assert!(reason(&errors, "SIPHON_LIMITS_MAX_CALLS").contains("\"many\""));
    assert!(reason(&errors, "http.listen").ends_with("(set by SIPHON_HTTP_LISTEN)"));
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    let text = "colour = 1\n[sip]\nudpp = \"\"\n[sip.trunk]\nuser = \"x\"\n[extra]\na = 1\n";
    let errors = rejected(text);
    assert_eq!(
        keys(&errors),
        ["sip.trunk.user", "sip.udpp", "colour", "extra"]
    );
    assert_eq!(reason(&errors, "colour"), "unknown key");
}

#[test]
fn wrong_types_are_all_reported_together() {
    let text = r#"
        http = 5
        [sip]
        allow_uri_dial = "yes"
        codecs = "opus"
        [webrtc]
        port = 70000
        [limits]
        max_calls = -1
        media_timeout_secs = 1.5
    "#;
    let errors = rejected(text);
    assert_eq!(
        keys(&errors),
        [
            "sip.codecs",
            "sip.allow_uri_dial",
            "webrtc.port",
            "http",
            "limits.max_calls",
            "limits.media_timeout_secs"
        ]
    );
    assert_eq!(reason(&errors, "http"), "expected a table, got a integer");
    assert_eq!(
        reason(&errors, "webrtc.port"),
        "expected an integer from 0 to 65535, got 70000"
    );
}

#[test]
fn unparsable_addresses_name_their_keys() {
    let text = "[sip]\nudp = \"localhost:5060\"\npublic_ip = \"1.2.3\"\n[echo]\nlisten = \"127.0.0.1\"\n[rtp]\nbind = \"\"\n";
    let errors = rejected(text);
    assert_eq!(
        keys(&errors),
        ["sip.udp", "sip.public_ip", "echo.listen", "rtp.bind"]
    );
    assert!(reason(&errors, "sip.udp").contains("\"localhost:5060\""));
}

#[test]
fn ipv6_addresses_are_accepted() {
    let config = load("[sip]\nudp = \"[::1]:5060\"\ntcp = \"\"\n");
    assert_eq!(config.sip_public_ip(), ip("::1"));
    assert_eq!(config.sip_domain(), "[::1]");
}

#[test]
fn unknown_codecs_are_rejected() {
    let errors = rejected("[sip]\ncodecs = [\"opus\", \"speex\", \"g729\"]\n");
    assert_eq!(keys(&errors), ["sip.codecs", "sip.codecs"]);
    assert!(errors.to_string().contains("\"g729\""));
}

#[test]
fn port_range_rules() {
    let errors = rejected("[rtp]\nport_min = 30001\nport_max = 30000\n");
    assert_eq!(keys(&errors), ["rtp.port_min", "rtp.port_max"]);
    assert!(reason(&errors, "rtp.port_min").contains("even"));

    let errors = errors_with(
        "[rtp]\nport_min = 9990\nport_max = 10010\n",
        &[("SIPHON_MEDIA_WORKERS", "2")],
    );
    assert_eq!(keys(&errors), ["rtp.port_min"]);
    assert!(reason(&errors, "rtp.port_min").contains("10000-10001"));

    // The last RTP port's RTCP (port_max + 1) would hit the WebRTC port.
    let text =
        "[rtp]\nport_min = 9000\nport_max = 9998\n[media]\nworkers = 1\n[webrtc]\nport = 9999\n";
    assert_eq!(keys(&rejected(text)), ["rtp.port_min"]);
}

#[test]
fn zero_limits_are_rejected() {
    let errors = rejected("[limits]\nmax_calls = 0\nring_timeout_secs = 0\n");
    assert_eq!(
        keys(&errors),
        ["limits.max_calls", "limits.ring_timeout_secs"]
    );
}

#[test]
fn auth_may_be_off_only_on_loopback() {
    let text =
        "[http]\nlisten = \"0.0.0.0:8080\"\nbehind_proxy = true\n[rtp]\nbind = \"10.0.0.5\"\n";
    let errors = rejected(text);
    assert_eq!(keys(&errors), ["auth.required"]);
    let why = reason(&errors, "auth.required");
    assert!(why.contains("http.listen (0.0.0.0)"), "{why}");
    assert!(why.contains("rtp.bind (10.0.0.5)"), "{why}");
    assert!(!why.contains("sip.udp"), "{why}");
}

#[test]
fn auth_required_needs_a_secret() {
    let errors = rejected("[auth]\nrequired = true\n");
    assert_eq!(keys(&errors), ["auth.secret"]);
    let config = Config::from_toml_str(
        "[auth]\nrequired = true\n",
        &env(&[("SIPHON_AUTH_SECRET", "0123456789abcdef0123456789abcdef")]),
    )
    .unwrap();
    assert_eq!(config.auth.secret, "0123456789abcdef0123456789abcdef");
    let short = Config::from_toml_str(
        "[auth]\nrequired = true\n",
        &env(&[("SIPHON_AUTH_SECRET", "k")]),
    )
    .unwrap_err();
    assert!(short
        .get("auth.secret")
        .is_some_and(|e| e.reason.contains("at least 32")));
}

#[test]
fn log_format_and_level_are_checked() {
    let errors = rejected("[log]\nformat = \"xml\"\nlevel = \"info,=[\"\n");
    assert_eq!(keys(&errors), ["log.format", "log.level"]);
    assert_eq!(
        load("[log]\nformat = \"JSON\"\n").log.format,
        LogFormat::Json
    );
}

#[test]
fn inbound_others_is_one_of_two_choices() {
    let errors = rejected("[sip.inbound]\nothers = \"allow\"\n");
    assert_eq!(
        reason(&errors, "sip.inbound.others"),
        "expected \"refuse\" or \"challenge\", got \"allow\""
    );
    let errors = rejected("[sip.inbound]\nothers = \"challenge\"\n");
    assert!(reason(&errors, "sip.inbound.others").contains("needs sip.inbound.username"));
    let text = "[sip.inbound]\nothers = \"challenge\"\nusername = \"u\"\npassword = \"p\"\n";
    assert_eq!(load(text).sip.inbound.others, InboundOthers::Challenge);
    assert_eq!(load("").sip.inbound.others, InboundOthers::Refuse);
}

#[test]
fn many_kinds_of_errors_come_back_at_once() {
    let text = r#"
        [sip]
        codecs = ["opus", "amr"]
        bogus = true
        [rtp]
        port_min = 20001
        [limits]
        max_calls = 0
        [http]
        listen = "0.0.0.0:8080"
        [log]
        format = "yaml"
    "#;
    let errors = errors_with(text, &[("SIPHON_NOPE", "1")]);
    assert_eq!(
        keys(&errors),
        [
            "SIPHON_NOPE",
            "sip.bogus",
            "log.format",
            "sip.codecs",
            "limits.max_calls",
            "rtp.port_min",
            "auth.required",
            "http.listen"
        ]
    );
    assert_eq!(errors.to_string().lines().count(), 8);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let errors = errors_with(
        "[sip]\nudp = \"127.0.0.1:5060\"\ntcp = = 1\n",
        &[("SIPHON_X", "1")],
    );
    assert_eq!(keys(&errors), ["config:3:7", "SIPHON_X"]);
    let why = reason(&errors, "config:3:7");
    assert!(
        why.starts_with("TOML syntax error") && !why.contains('\n'),
        "{why}"
    );
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let path = std::env::temp_dir().join(format!("siphon-config-{}.toml", std::process::id()));
    std::fs::write(&path, "[limits]\nmax_calls = 3\n").unwrap();
    let config = Config::load(Some(&path), &no_env());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(config.unwrap().limits.max_calls, 3);

    let errors = Config::load(Some(&path), &no_env()).unwrap_err();
    assert_eq!(keys(&errors), [path.display().to_string()]);
}

#[test]
fn debug_output_hides_secrets() {
    let vars = env(&[
        ("SIPHON_AUTH_SECRET", "topsecret"),
        ("SIPHON_SIP_TRUNK_PASSWORD", "hunter2"),
    ]);
    let shown = format!("{:?}", Config::load(None, &vars).unwrap());
    assert!(
        !shown.contains("topsecret") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"));
}

#[test]
fn a_bad_value_is_reported_once() {
    let errors = rejected("[http]\nbehind_proxy = \"yes\"\n");
    assert_eq!(keys(&errors), ["http.behind_proxy"], "{errors}");
}
