//! The SIP leg's TLS material, read from the files `[sip]` names.

use crate::config::Config;
use crate::sip::SipTls;

use super::StartError;

/// `None` when nothing about TLS is configured; rsipstack's TLS client then
/// trusts the host's CA store and presents no certificate.
pub(super) fn load(config: &Config) -> Result<Option<SipTls>, StartError> {
    let c = &config.sip.tls;
    let read = |key: &'static str, path: &str| -> Result<Option<Vec<u8>>, StartError> {
        if path.is_empty() {
            return Ok(None);
        }
        std::fs::read(path).map(Some).map_err(|e| StartError::Tls {
            key,
            reason: format!("cannot read {path:?}: {e}"),
        })
    };
    let client = match c.client_files() {
        Some((cert, key)) if cert == c.cert => (cert, key, "sip.tls_cert", "sip.tls_key"),
        Some((cert, key)) => (cert, key, "sip.tls_client_cert", "sip.tls_client_key"),
        None => ("", "", "", ""),
    };
    let client = match (read(client.2, client.0)?, read(client.3, client.1)?) {
        // The listener's key stands in only in a form rsipstack's client reads.
        (Some(cert), Some(key)) if crate::sip::is_client_key(&key) => Some((cert, key)),
        _ => None,
    };
    let tls = SipTls {
        listen: c.listen,
        cert: read("sip.tls_cert", &c.cert)?.unwrap_or_default(),
        key: read("sip.tls_key", &c.key)?.unwrap_or_default(),
        ca: read("sip.tls_ca", &c.ca)?,
        client,
        client_ca: None,
    };
    let configured = tls.listen.is_some() || tls.ca.is_some() || tls.client.is_some();
    Ok(configured.then_some(tls))
}
