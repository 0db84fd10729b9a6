//! Tests that keep the shipped files (documented config, docker config,
//! Dockerfile) in step with the code.

use super::*;

const DOCUMENTED: &str = include_str!("../../../config/siphon.toml");
const DOCKER: &str = include_str!("../../../config/docker.toml");

#[test]
fn documented_file_is_exactly_the_defaults() {
    assert_eq!(load(DOCUMENTED), Config::default());
}

#[test]
fn documented_file_has_every_key() {
    let documented: toml::Table = DOCUMENTED.parse().unwrap();
    let defaults = schema::write(&Config::default());
    for (path, _) in schema::leaves(&defaults) {
        let mut value = documented.get(path[0]);
        for key in &path[1..] {
            value = value.and_then(|v| v.get(key));
        }
        assert!(
            value.is_some(),
            "config/siphon.toml lacks {}",
            path.join(".")
        );
    }
}

#[test]
fn written_defaults_read_back_unchanged() {
    let text = toml::to_string(&schema::write(&Config::default())).unwrap();
    assert_eq!(load(&text), Config::default());
}

#[test]
fn docker_config_binds_everything_and_requires_auth() {
    let config = Config::from_toml_str(
        DOCKER,
        &env(&[("SIPHON_AUTH_SECRET", "0123456789abcdef0123456789abcdef")]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.auth.required);
    assert_eq!(config.auth.secret, "0123456789abcdef0123456789abcdef");
    assert_eq!(config.http.listen, addr("0.0.0.0:8080"));
    assert_eq!(config.http_local_addr(), addr("127.0.0.1:8080"));
    assert_eq!(config.webrtc_ports(), 10000..=10001);
    assert!(!config.all_listeners_loopback());

    let errors = rejected(DOCKER);
    assert_eq!(keys(&errors), ["auth.secret"]);
}

#[test]
fn dockerfile_exposes_the_docker_config_ports() {
    let config = Config::from_toml_str(
        DOCKER,
        &env(&[("SIPHON_AUTH_SECRET", "0123456789abcdef0123456789abcdef")]),
    )
    .unwrap();
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
