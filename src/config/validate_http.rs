//! Checks of `[http]`: TLS files, who may reach the page, and the proxy in front.

use std::path::Path;

use super::error::ConfigError;
use super::types::Config;
use super::validate::valid_cidr;
use crate::tls::{certified_key, Which};

/// Adds every `[http]` problem to `errors`.
pub(super) fn check_http(config: &Config, errors: &mut Vec<ConfigError>) {
    let http = &config.http;
    let tls = check_tls_files(config, errors);
    if http.redirect_listen.is_some() && !tls {
        let reason = "redirects to HTTPS, so it needs http.tls_cert and http.tls_key";
        errors.push(ConfigError::new("http.redirect_listen", reason));
    }
    if !tls && !http.behind_proxy && !http.listen.ip().is_loopback() {
        let reason = format!(
            "{} serves plain HTTP beyond loopback, where browsers refuse the microphone: \
             set http.tls_cert and http.tls_key, or http.behind_proxy = true when a reverse \
             proxy terminates TLS",
            http.listen
        );
        errors.push(ConfigError::new("http.listen", reason));
    }
    for proxy in &http.trusted_proxies {
        if !valid_cidr(proxy) {
            let reason = format!("{proxy:?} is not an IP address or CIDR range");
            errors.push(ConfigError::new("http.trusted_proxies", reason));
        }
    }
    for origin in &http.allowed_origins {
        if let Some(reason) = origin_problem(origin) {
            errors.push(ConfigError::new("http.allowed_origins", reason));
        }
    }
}

/// Whether TLS is configured; reports a half-set pair and files that do not load.
fn check_tls_files(config: &Config, errors: &mut Vec<ConfigError>) -> bool {
    let (cert, key) = (&config.http.tls_cert, &config.http.tls_key);
    match (cert, key) {
        (None, None) => false,
        (Some(_), None) => {
            errors.push(ConfigError::new(
                "http.tls_key",
                "required with http.tls_cert",
            ));
            true
        }
        (None, Some(_)) => {
            errors.push(ConfigError::new(
                "http.tls_cert",
                "required with http.tls_key",
            ));
            true
        }
        (Some(cert), Some(key)) => {
            if let Err(e) = certified_key(Path::new(cert), Path::new(key)) {
                let key = match e.which() {
                    Which::Cert => "http.tls_cert",
                    Which::Key => "http.tls_key",
                };
                errors.push(ConfigError::new(key, e.to_string()));
            }
            true
        }
    }
}

/// What is wrong with an `allowed_origins` entry: it must be `scheme://host[:port]`.
fn origin_problem(origin: &str) -> Option<String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(authority) if !authority.is_empty() && !authority.contains('/') => None,
        _ => Some(format!(
            "{origin:?} is not an origin such as \"https://phone.example.com\" \
             (scheme and host, optional port, no path)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(config: &Config) -> Vec<String> {
        let mut errors = Vec::new();
        check_http(config, &mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn plain_http_beyond_loopback_needs_tls_or_a_proxy() {
        let mut config = Config::default();
        assert!(errors(&config).is_empty(), "loopback may be plain");
        config.http.listen = "0.0.0.0:8080".parse().unwrap();
        let e = errors(&config);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("http.listen:") && e[0].contains("behind_proxy"),
            "{e:?}"
        );
        config.http.behind_proxy = true;
        assert!(errors(&config).is_empty());
    }

    #[test]
    fn tls_keys_come_in_pairs_and_must_load() {
        let mut config = Config::default();
        config.http.tls_cert = Some("/nonexistent/cert.pem".into());
        let e = errors(&config);
        assert!(
            e.iter().any(|e| e.starts_with("http.tls_key: required")),
            "{e:?}"
        );
        config.http.tls_key = Some("/nonexistent/key.pem".into());
        let e = errors(&config);
        assert!(
            e.iter()
                .any(|e| e.starts_with("http.tls_cert: cannot read /nonexistent/cert.pem")),
            "{e:?}"
        );
    }

    #[test]
    fn redirect_needs_tls_and_lists_are_checked() {
        let mut config = Config::default();
        config.http.redirect_listen = Some("127.0.0.1:8081".parse().unwrap());
        config.http.trusted_proxies = vec!["10.0.0.0/33".into()];
        config.http.allowed_origins = vec!["https://ok.example:8443".into(), "ok.example".into()];
        let e = errors(&config);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("http.redirect_listen:"));
        assert!(e[1].starts_with("http.trusted_proxies:"));
        assert!(e[2].starts_with("http.allowed_origins:") && e[2].contains("\"ok.example\""));
    }
}
