//! Tests that keep the shipped files (documented config, docker config,
//! Dockerfile) in step with the code.

use super::*;

const DOCUMENTED: &str = include_str!("../../../config/siphon.toml");
const DOCKER: &str = include_str!("../../../config/docker.toml");

#[test]
fn documented_file_is_exactly_the_defaults() {
    assert_eq!(load(DOCUMENTED), Config::default());
}

/// The documented file with its commented-out example lines switched on:
/// those are the lines with no space after the `#`, e.g. `#[[users]]`.
fn with_examples(text: &str) -> String {
    let lines = text.lines().map(|line| match line.strip_prefix('#') {
        Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
        _ => line,
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// The value at a leaf path, stepping into arrays by index.
fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let mut value = table.get(&path[0]);
    for key in &path[1..] {
        value = value.and_then(|v| match key.parse::<usize>() {
            Ok(index) => v.get(index),
            Err(_) => v.get(key),
        });
    }
    value
}

#[test]
fn documented_file_has_every_key() {
    // The first example user shows every key a user can have.
    let documented: toml::Table = with_examples(DOCUMENTED).parse().unwrap();
    let mut with_a_user = Config {
        users: vec![UserConfig::default()],
        ..Config::default()
    };
    with_a_user.sip.trunks.push(Default::default());
    let every_key = schema::write(&with_a_user);
    for (path, _) in schema::leaves(&every_key) {
        // A [[sip.trunks]] table takes the keys documented in [sip.trunk].
        let same = match path.as_slice() {
            [sip, trunks, _, key] if sip == "sip" && trunks == "trunks" => {
                vec![sip.clone(), "trunk".into(), key.clone()]
            }
            _ => path.clone(),
        };
        assert!(
            lookup(&documented, &same).is_some(),
            "config/siphon.toml lacks {}",
            schema::key_name(&path)
        );
    }
}

#[test]
fn documented_examples_are_valid() {
    let mut config = load(&with_examples(DOCUMENTED));
    let users: Vec<(&str, &str)> = config
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.extension.as_str()))
        .collect();
    assert_eq!(users, [("alice", "1001"), ("bob", "bob")]);
    assert!(config.users[0].register);
    let trunks: Vec<String> = config.trunks().into_iter().map(|(name, _)| name).collect();
    assert_eq!(trunks, ["primary", "backup"]);
    config.users.clear();
    config.sip.trunks.clear();
    assert_eq!(
        config,
        Config::default(),
        "examples only add users and trunks"
    );
}

#[test]
fn written_defaults_read_back_unchanged() {
    let text = toml::to_string(&schema::write(&Config::default())).unwrap();
    assert_eq!(load(&text), Config::default());
}

/// What an operator must set to run the docker config (README, Docker section);
/// the certificate files are mounted where docker.toml expects them.
const DOCKER_ENV: [(&str, &str); 4] = [
    ("SIPHON_AUTH_SECRET", "0123456789abcdef0123456789abcdef"),
    ("SIPHON_SIP_PUBLIC_IP", "203.0.113.10"),
    ("SIPHON_WEBRTC_PUBLIC_IP", "203.0.113.10"),
    ("SIPHON_RTP_PUBLIC_IP", "203.0.113.10"),
];

/// The docker config with `DOCKER_ENV` and a certificate in place of the mount.
fn docker_config() -> Config {
    let dir = crate::tls::temp_dir("docker");
    let (cert, key) = crate::tls::write_pair(&dir, "phone.example.com");
    let mut vars = DOCKER_ENV.to_vec();
    vars.push(("SIPHON_HTTP_TLS_CERT", cert.to_str().unwrap()));
    vars.push(("SIPHON_HTTP_TLS_KEY", key.to_str().unwrap()));
    Config::from_toml_str(DOCKER, &env(&vars)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn docker_config_binds_everything_and_requires_auth() {
    let config = docker_config();
    assert!(config.auth.required);
    assert_eq!(config.auth.secret, "0123456789abcdef0123456789abcdef");
    assert_eq!(config.http.listen, addr("0.0.0.0:8080"));
    assert_eq!(config.http_local_addr(), addr("127.0.0.1:8080"));
    assert_eq!(config.webrtc_ports(), 10000..=10001);
    assert!(!config.all_listeners_loopback());
    assert_eq!(config.sip_public_ip(), ip("203.0.113.10"));
    assert_eq!(config.webrtc_public_ip(), ip("203.0.113.10"));
    assert_eq!(config.rtp_public_ip(), ip("203.0.113.10"));
}

#[test]
fn docker_config_names_every_variable_an_operator_must_set() {
    let errors = rejected(DOCKER);
    let expected = [
        "auth.secret",
        "http.tls_cert",
        "sip.public_ip",
        "webrtc.public_ip",
        "rtp.public_ip",
    ];
    assert_eq!(keys(&errors), expected);
    for (var, _) in DOCKER_ENV {
        assert!(
            errors.to_string().contains(var),
            "{var} not named: {errors}"
        );
    }
}

#[test]
fn readme_and_compose_name_every_docker_variable() {
    let readme = include_str!("../../../README.md");
    let docker = readme
        .split("### Docker")
        .nth(1)
        .expect("README has a Docker section");
    let compose = include_str!("../../../docker-compose.yml");
    for (var, _) in DOCKER_ENV {
        assert!(docker.contains(var), "README's Docker section lacks {var}");
        assert!(compose.contains(var), "docker-compose.yml lacks {var}");
    }
}

#[test]
fn dockerfile_exposes_the_docker_config_ports() {
    let config = docker_config();
    let dockerfile = include_str!("../../../Dockerfile");
    let expose = dockerfile
        .lines()
        .find(|line| line.starts_with("EXPOSE "))
        .expect("EXPOSE line");
    let webrtc = config.webrtc_ports();
    let wanted = [
        format!("{}/tcp", config.http.listen.port()),
        format!("{}/udp", config.sip.udp.unwrap().port()),
        format!("{}/tcp", config.sip.tcp.unwrap().port()),
        format!("{}-{}/udp", webrtc.start(), webrtc.end()),
        format!("{}-{}/udp", config.rtp.port_min, config.rtp.port_max),
    ];
    for port in wanted {
        assert!(
            expose.split_whitespace().any(|p| p == port),
            "{port} not in {expose}"
        );
    }
}

const SCALE: &str = include_str!("../../../docker-compose.scale.yml");

/// The `SIPHON_*` variables of one service of docker-compose.scale.yml,
/// with `${PUBLIC_IP...}` and `${SIPHON_AUTH_SECRET...}` filled in.
fn scale_env(service: &str) -> Vec<(String, String)> {
    let block = SCALE
        .split(&format!("\n  {service}:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("docker-compose.scale.yml lacks {service}"));
    // Up to the next service: a line indented by two spaces only.
    let service_start = |l: &&str| l.starts_with("  ") && !l[2..].starts_with(' ');
    let lines = block.lines().take_while(|l| !service_start(l));
    let fill = |value: &str| {
        let mut out = value.trim().trim_matches('"').to_owned();
        for (var, example) in [
            ("PUBLIC_IP", "203.0.113.10"),
            ("SIPHON_AUTH_SECRET", "0123456789abcdef0123456789abcdef"),
        ] {
            while let Some(start) = out.find(&format!("${{{var}")) {
                let end = start + out[start..].find('}').expect("closing brace") + 1;
                out.replace_range(start..end, example);
            }
        }
        out
    };
    lines
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| k.starts_with("SIPHON_"))
        .map(|(k, v)| (k.to_owned(), fill(v)))
        .collect()
}

#[test]
fn the_scale_compose_runs_two_valid_instances_that_do_not_collide() {
    let configs: Vec<Config> = ["siphon-a", "siphon-b"]
        .iter()
        .map(|service| {
            let vars = scale_env(service);
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Config::from_toml_str(DOCKER, &env(&vars)).unwrap_or_else(|e| panic!("{service}: {e}"))
        })
        .collect();
    let (a, b) = (&configs[0], &configs[1]);
    assert_eq!(
        (a.cluster.instance.as_str(), b.cluster.instance.as_str()),
        ("a", "b")
    );
    let list = include_str!("../../../deploy/scale-out/siphon.list");
    for c in [a, b] {
        assert_eq!(c.cluster.registrar.as_deref(), Some("sip:127.0.0.1:5060"));
        assert_eq!(c.cluster.front_door().as_deref(), Some("203.0.113.10:5060"));
        assert!(c.http.behind_proxy && c.http.tls_cert.is_none());
        let sources = &c.sip.inbound.trunk_sources;
        assert!(sources.iter().any(|s| s == "203.0.113.10"), "{sources:?}");
        let port = c.sip.udp.unwrap().port();
        assert!(
            list.contains(&format!("1 sip:127.0.0.1:{port}")),
            "siphon.list lacks {port}"
        );
        assert!(
            SCALE.contains(&format!(
                "LB_SERVER_{}: {}",
                c.cluster.instance.to_uppercase(),
                c.http.listen
            )),
            "HAProxy does not point at {}",
            c.http.listen
        );
    }
    assert_ne!(a.sip.udp, b.sip.udp);
    assert_ne!(a.http.listen, b.http.listen);
    let (wa, wb) = (a.webrtc_ports(), b.webrtc_ports());
    assert!(wa.end() < wb.start(), "WebRTC ports overlap");
    assert!(a.rtp.port_max < b.rtp.port_min, "RTP ranges overlap");
    assert!(b.rtp.port_max < 32768, "RTP inside the ephemeral range");
}
