//! SIP over TLS: the listener's certificate, what siphon trusts and presents
//! when it connects to a TLS peer, and the words for a failed handshake.
//!
//! rsipstack's TLS transport carries the messages (its `TlsConnection`); this
//! module builds the rustls configurations. Why not all of rsipstack's: its
//! listener accepts without a guard (a failed handshake is only logged at
//! warn, plain text is not told apart, nothing is counted) and reads with
//! its own stream reader, so siphon accepts, handshakes and reads itself
//! (`tls_guard`) and gives rsipstack the write side (`tls_seam`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The first byte of every TLS record that opens a connection (handshake).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TLS material of the SIP leg: PEM bytes, read from the files the config names.
#[derive(Clone, Default)]
pub struct SipTls {
    /// TLS listen address; `None` = no listener (port 0: any free port).
    pub listen: Option<SocketAddr>,
    /// Certificate chain the listener presents (leaf first).
    pub cert: Vec<u8>,
    /// The listener's private key.
    pub key: Vec<u8>,
    /// Trust anchors for TLS peers; `None` = the host's CA store.
    pub ca: Option<Vec<u8>>,
    /// Certificate chain and key presented when a peer asks for one (mutual TLS).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
    /// Require the listener's clients to present a certificate issued by this CA.
    pub client_ca: Option<Vec<u8>>,
}

/// Key material stays out of logs: only what is set is shown.
impl fmt::Debug for SipTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipTls")
            .field("listen", &self.listen)
            .field("cert_bytes", &self.cert.len())
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client.is_some())
            .field("client_ca", &self.client_ca.is_some())
            .finish()
    }
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM input holds nothing usable.
    #[error("{what}: {source}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        source: PemError,
    },
    /// A certificate of the client CA bundle cannot be a trust anchor.
    #[error("client CA: {0}")]
    ClientCaAnchor(#[source] rustls::Error),
    /// No client verifier can be built on the client CA bundle.
    #[error("client CA: {0}")]
    ClientCaVerifier(#[source] rustls::server::VerifierBuilderError),
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What is wrong with PEM bytes that should hold certificates or a key.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The bytes are not PEM.
    #[error("not a PEM certificate file ({0})")]
    NotCertificates(#[source] pem::Error),
    /// PEM without a certificate.
    #[error("no CERTIFICATE block found")]
    NoCertificate,
    /// The bytes are not PEM.
    #[error("not a PEM private key file ({0})")]
    NotKey(#[source] pem::Error),
    /// PEM without a private key.
    #[error("no PRIVATE KEY block found")]
    NoKey,
}

/// Every certificate in a PEM bundle; an error when there is none.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::NotCertificates)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => PemError::NoKey,
        e => PemError::NotKey(e),
    })
}

/// Whether rsipstack's TLS client can use this PEM key (PKCS#8 or PKCS#1).
pub fn is_client_key(pem: &[u8]) -> bool {
    matches!(
        PrivateKeyDer::from_pem_slice(pem),
        Ok(PrivateKeyDer::Pkcs8(_) | PrivateKeyDer::Pkcs1(_))
    )
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rsipstack's client side builds its rustls configuration with the
/// process-wide provider; make it ring before the first connection.
pub(crate) fn install_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The listener's rustls configuration.
pub(crate) fn server_config(t: &SipTls) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = parse_certs(&t.cert).map_err(|e| pem_error("certificate", e))?;
    let key = parse_key(&t.key).map_err(|e| pem_error("private key", e))?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let roots = client_ca_roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(TlsError::ClientCaVerifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_single_cert(certs, key)?))
}

fn pem_error(what: &'static str, source: PemError) -> TlsError {
    TlsError::Pem { what, source }
}

/// The trust anchors a listener's client certificates must chain to.
fn client_ca_roots(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(pem).map_err(|e| pem_error("client CA", e))? {
        roots.add(cert).map_err(TlsError::ClientCaAnchor)?;
    }
    Ok(roots)
}

/// What rsipstack's TLS client is given: the trust anchors (the configured
/// CA bundle, else the host's store) and the client certificate, if any.
pub(crate) fn client_config(t: &SipTls) -> rsipstack::transport::tls::TlsConfig {
    let (client_cert, client_key) = match &t.client {
        Some((cert, key)) => (Some(cert.clone()), Some(key.clone())),
        None => (None, None),
    };
    rsipstack::transport::tls::TlsConfig {
        ca_certs: Some(t.ca.clone().unwrap_or_else(|| system_roots().to_vec())),
        client_cert,
        client_key,
        ..Default::default()
    }
}

/// The host's CA store as one PEM bundle, read once. rsipstack's TLS client
/// takes trust anchors only as PEM, which is why the native store (whole
/// certificates) is used and not webpki-roots (anchors without certificates).
fn system_roots() -> &'static [u8] {
    static ROOTS: OnceLock<Vec<u8>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "reading the host's CA store");
        }
        to_pem(&found.certs)
    })
}

/// DER certificates as a PEM bundle.
fn to_pem(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut out = String::new();
    for cert in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// Whether the first byte a client sent can open a TLS connection; plain
/// SIP starts with a method name.
pub(crate) fn looks_like_tls(first: u8) -> bool {
    first == TLS_HANDSHAKE_RECORD
}

/// The metric reason of a failed server handshake.
pub(crate) fn handshake_reason(e: &std::io::Error) -> &'static str {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return "io";
    };
    match tls {
        rustls::Error::NoCertificatesPresented => "no_client_certificate",
        rustls::Error::InvalidCertificate(_) => "bad_client_certificate",
        rustls::Error::PeerIncompatible(_) => "incompatible",
        rustls::Error::AlertReceived(_) => "alert",
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => "bad_handshake",
        _ => "handshake_failed",
    }
}

/// Open (or find) the TLS connection to `target` before a request goes out:
/// rsipstack treats a failed connect like a lost datagram and retries until
/// Timer B, so a refused certificate would only show as a 408 half a minute
/// later. The connection is kept in rsipstack's cache for the request.
pub(crate) async fn connect_first(
    layer: &rsipstack::transport::TransportLayer,
    uri: &rsipstack::sip::Uri,
    metrics: &crate::metrics::Metrics,
) -> Result<(), TlsPeerError> {
    let mut target = rsipstack::transport::SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tls),
        addr: uri.host_with_port.clone(),
    };
    // SIPS default port (RFC 3261 §26.2.3), as rsipstack sends it.
    if target.addr.port.is_none() {
        target.addr.port = Some(5061.into());
    }
    let Err(source) = layer.lookup(&target, None).await else {
        return Ok(());
    };
    let host = target.addr.to_string();
    let why = match certificate_problem(&source) {
        Some(problem) => TlsPeerError::Certificate {
            host,
            problem,
            source: Box::new(source),
        },
        None => TlsPeerError::Failed {
            host,
            source: Box::new(source),
        },
    };
    metrics.sip_tls_handshake("out", why.outcome());
    tracing::warn!(%target, %why, "TLS peer not reached");
    Err(why)
}

/// Why a TLS peer was not reached before a request went out.
#[derive(Debug, thiserror::Error)]
pub enum TlsPeerError {
    /// The peer's certificate was refused.
    #[error("TLS certificate of {host} rejected: {problem}")]
    Certificate {
        /// The peer's host and port.
        host: String,
        /// What is wrong with the certificate.
        problem: String,
        /// The transport's error (boxed: it is large, and rare).
        source: Box<rsipstack::Error>,
    },
    /// The connection or handshake failed for another reason.
    #[error("TLS connection to {host} failed: {source}")]
    Failed {
        /// The peer's host and port.
        host: String,
        /// The transport's error (boxed: it is large, and rare).
        source: Box<rsipstack::Error>,
    },
}

impl TlsPeerError {
    /// The outcome label of the handshake metric.
    fn outcome(&self) -> &'static str {
        match self {
            TlsPeerError::Certificate { .. } => "certificate",
            TlsPeerError::Failed { .. } => "failed",
        }
    }
}

/// Why a TLS peer's certificate was refused, when that is what `e` says.
pub(crate) fn certificate_problem(e: &rsipstack::Error) -> Option<String> {
    if let rsipstack::Error::IoError(io) = e {
        let inner = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(c)) = inner {
            return Some(c.to_string());
        }
    }
    // The error may have been turned into text on its way up.
    const MARK: &str = "invalid peer certificate: ";
    let text = e.to_string();
    let at = text.find(MARK)?;
    Some(text[at + MARK.len()..].to_string())
}

#[cfg(test)]
mod tests;
