//! The `[sip]` keys of SIP over TLS and their checks: a listener needs a
//! certificate and key that can be read and parsed at start, and a trunk or
//! registrar that asks for TLS needs the listener (siphon's Contact names it).

use std::net::SocketAddr;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::ConfigError;
use super::schema::Visitor;
use super::types::Config;

/// SIP over TLS, written flat in `[sip]` (`sip.tls`, `sip.tls_cert`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SipTlsConfig {
    /// `sip.tls`: TLS listen address; `None` disables the listener.
    pub listen: Option<SocketAddr>,
    /// `sip.tls_cert`: PEM certificate chain of the listener, leaf first.
    pub cert: String,
    /// `sip.tls_key`: PEM private key of `cert`.
    pub key: String,
    /// `sip.tls_ca`: PEM bundle trusted for TLS peers; empty = the host's CA store.
    pub ca: String,
    /// `sip.tls_client_cert`: PEM chain presented to peers that ask; empty = `cert`.
    pub client_cert: String,
    /// `sip.tls_client_key`: PEM private key of `client_cert`.
    pub client_key: String,
}

impl SipTlsConfig {
    /// Hands each key to `v`, as keys of the enclosing `[sip]` table.
    pub(super) fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.field("tls", &mut self.listen);
        v.field("tls_cert", &mut self.cert);
        v.field("tls_key", &mut self.key);
        v.field("tls_ca", &mut self.ca);
        v.field("tls_client_cert", &mut self.client_cert);
        v.field("tls_client_key", &mut self.client_key);
    }

    /// The client certificate and key files: `tls_client_*`, else the listener's.
    pub fn client_files(&self) -> Option<(&str, &str)> {
        match (self.client_cert.as_str(), self.client_key.as_str()) {
            ("", "") if !self.cert.is_empty() && !self.key.is_empty() => {
                Some((&self.cert, &self.key))
            }
            ("", _) | (_, "") => None,
            (cert, key) => Some((cert, key)),
        }
    }
}

/// What a PEM file must hold.
#[derive(Clone, Copy)]
enum Pem {
    Certs,
    Key,
    /// rsipstack's TLS client reads PKCS#8 and PKCS#1 keys only.
    ClientKey,
}

/// Reads and parses every TLS file named, and checks that TLS targets have a listener.
pub(super) fn check(config: &Config, errors: &mut Vec<ConfigError>) {
    let tls = &config.sip.tls;
    let mut report = |key: &str, reason: String| errors.push(ConfigError::new(key, reason));
    if tls.listen.is_some() {
        for (key, value) in [("sip.tls_cert", &tls.cert), ("sip.tls_key", &tls.key)] {
            if value.is_empty() {
                report(key, "required while sip.tls is set".into());
            }
        }
    }
    let files = [
        ("sip.tls_cert", &tls.cert, Pem::Certs),
        ("sip.tls_key", &tls.key, Pem::Key),
        ("sip.tls_ca", &tls.ca, Pem::Certs),
        ("sip.tls_client_cert", &tls.client_cert, Pem::Certs),
        ("sip.tls_client_key", &tls.client_key, Pem::ClientKey),
    ];
    for (key, path, kind) in files {
        if let Some(problem) = file_problem(path, kind) {
            report(key, problem.to_string());
        }
    }
    match (tls.client_cert.is_empty(), tls.client_key.is_empty()) {
        (false, true) => report(
            "sip.tls_client_key",
            "required with sip.tls_client_cert".into(),
        ),
        (true, false) => report(
            "sip.tls_client_cert",
            "required with sip.tls_client_key".into(),
        ),
        _ => {}
    }
    if tls.listen.is_none() {
        for (key, uri) in tls_targets(config) {
            report(
                &key,
                format!(
                    "{uri:?} asks for TLS; set sip.tls (siphon's Contact names its TLS listener)"
                ),
            );
        }
    }
}

/// Whether a SIP URI asks for TLS: `sips:` or `transport=tls`.
pub fn wants_tls(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.starts_with("sips:") || lower.contains(";transport=tls")
}

/// Keys whose URI asks for TLS.
fn tls_targets(config: &Config) -> Vec<(String, String)> {
    let trunks = config.trunk_keys().into_iter();
    let trunks = trunks.map(|(key, t)| (format!("{key}.uri"), t.uri.clone()));
    let mut uris: Vec<(String, Option<String>)> = trunks.collect();
    uris.extend([
        (
            "sip.client_register.registrar".to_string(),
            config.sip.client_register.registrar.clone(),
        ),
        (
            "cluster.registrar".to_string(),
            config.cluster.registrar.clone(),
        ),
    ]);
    for (i, user) in config.users.iter().enumerate() {
        uris.push((format!("users[{i}].registrar"), user.registrar.clone()));
    }
    uris.into_iter()
        .filter_map(|(key, uri)| uri.filter(|u| wants_tls(u)).map(|u| (key, u)))
        .collect()
}

/// Why a PEM file named in `[sip]` cannot be used; the config error names the key.
#[derive(Debug, thiserror::Error)]
enum PemFileError {
    /// The file cannot be read.
    #[error("cannot read {path:?}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The certificate file is not PEM.
    #[error("{path:?} is not a PEM certificate file ({source})")]
    NotCerts { path: String, source: pem::Error },
    /// The certificate file is PEM without a certificate.
    #[error("{path:?} holds no CERTIFICATE block")]
    NoCerts { path: String },
    /// The key file is not PEM.
    #[error("{path:?} is not a PEM private key file ({source})")]
    NotKey { path: String, source: pem::Error },
    /// The key file is PEM without a private key.
    #[error("{path:?} holds no PRIVATE KEY block")]
    NoKey { path: String },
    /// A client key rsipstack cannot read.
    #[error(
        "{path:?} is an EC key in SEC1 form (BEGIN EC PRIVATE KEY); give it as PKCS#8 \
         (openssl pkcs8 -topk8 -nocrypt)"
    )]
    Sec1ClientKey { path: String },
}

/// Why the PEM file at `path` cannot be used; `None` when it can (or is unset).
fn file_problem(path: &str, kind: Pem) -> Option<PemFileError> {
    if path.is_empty() {
        return None;
    }
    let path = path.to_owned();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(source) => return Some(PemFileError::Read { path, source }),
    };
    match kind {
        Pem::Certs => match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if certs.is_empty() => Some(PemFileError::NoCerts { path }),
            Ok(_) => None,
            Err(source) => Some(PemFileError::NotCerts { path, source }),
        },
        Pem::Key | Pem::ClientKey => match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(PrivateKeyDer::Sec1(_)) if matches!(kind, Pem::ClientKey) => {
                Some(PemFileError::Sec1ClientKey { path })
            }
            Ok(_) => None,
            Err(pem::Error::NoItemsFound) => Some(PemFileError::NoKey { path }),
            Err(source) => Some(PemFileError::NotKey { path, source }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_file() {
        let missing = file_problem("/nonexistent/sip.pem", Pem::Certs).expect("unreadable");
        assert!(
            missing
                .to_string()
                .starts_with("cannot read \"/nonexistent/sip.pem\": "),
            "{missing}"
        );
        let sec1 = PemFileError::Sec1ClientKey {
            path: "k.pem".into(),
        };
        assert_eq!(
            sec1.to_string(),
            "\"k.pem\" is an EC key in SEC1 form (BEGIN EC PRIVATE KEY); give it as PKCS#8 \
             (openssl pkcs8 -topk8 -nocrypt)"
        );
        let none = PemFileError::NoKey {
            path: "k.pem".into(),
        };
        assert_eq!(none.to_string(), "\"k.pem\" holds no PRIVATE KEY block");
    }
}
