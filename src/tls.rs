//! PEM certificates and keys for siphon's TLS servers: read, checked to
//! match, and made into the `CertifiedKey` rustls serves. Config validation
//! calls the same functions, so a file that passes `check-config` loads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Which of the two files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The certificate (chain) file.
    Cert,
    /// The private key file.
    Key,
}

/// Why a certificate and key could not be loaded; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// Which file.
        which: Which,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file is not PEM.
    #[error("{}: not PEM: {source}", path.display())]
    NotPem {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: holds no CERTIFICATE block", path.display())]
    NoCertificate {
        /// Its path.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("{}: no private key: {source}", path.display())]
    NoKey {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The key does not belong to the certificate.
    #[error("{} does not fit the certificate in {}: {source}", key.display(), cert.display())]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// rustls's check.
        source: rustls::Error,
    },
}

impl TlsFileError {
    /// The file at fault.
    pub fn which(&self) -> Which {
        match self {
            TlsFileError::Read { which, .. } => *which,
            TlsFileError::NotPem { .. } | TlsFileError::NoCertificate { .. } => Which::Cert,
            TlsFileError::NoKey { .. } | TlsFileError::Mismatch { .. } => Which::Key,
        }
    }
}

/// Reads a PEM file holding one or more certificates, leaf first.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = read(path, Which::Cert)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsFileError::NotPem {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        let path = path.to_owned();
        return Err(TlsFileError::NoCertificate { path });
    }
    Ok(chain)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let bytes = read(path, Which::Key)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| TlsFileError::NoKey {
        path: path.to_owned(),
        source,
    })
}

fn read(path: &Path, which: Which) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        which,
        path: path.to_owned(),
        source,
    })
}

/// Loads a certificate chain and its key, checking that they belong together.
pub fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsFileError> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key_der, &provider).map_err(|source| {
        TlsFileError::Mismatch {
            key: key.to_owned(),
            cert: cert.to_owned(),
            source,
        }
    })?;
    Ok(Arc::new(certified))
}

/// Test certificates: a self-signed pair for `name` written into `dir`.
#[cfg(test)]
pub(crate) fn write_pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("cert");
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.cert.pem()).expect("write cert");
    std::fs::write(&k, cert.signing_key.serialize_pem()).expect("write key");
    (c, k)
}

/// A fresh directory for one test's files.
#[cfg(test)]
pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
    // One directory per call: tests that run at once must not overwrite
    // each other's files.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("siphon-tls-{tag}-{}-{n}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_pair_loads() {
        let dir = temp_dir("ok");
        let (c, k) = write_pair(&dir, "a.example");
        let key = certified_key(&c, &k).expect("loads");
        assert_eq!(key.cert.len(), 1);
    }

    #[test]
    fn each_problem_names_its_file() {
        let dir = temp_dir("bad");
        let (c, k) = write_pair(&dir, "a.example");
        let (_, other_key) = write_pair(&dir, "b.example");
        let missing = dir.join("missing.pem");

        let e = certified_key(&missing, &k).unwrap_err();
        assert_eq!(e.which(), Which::Cert);
        let text = e.to_string();
        assert!(text.contains("cannot read") && text.contains("missing.pem"));

        let e = certified_key(&k, &k).unwrap_err();
        assert_eq!(e.which(), Which::Cert, "a key file is no certificate");
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");

        let e = certified_key(&c, &c).unwrap_err();
        assert_eq!(e.which(), Which::Key, "a certificate file is no key");

        let e = certified_key(&c, &other_key).unwrap_err();
        assert_eq!(e.which(), Which::Key);
        assert!(e.to_string().contains("does not fit"), "{e}");
    }
}
