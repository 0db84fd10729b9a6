//! DTLS-SRTP per leg over `dimpl`, and the endpoint's certificate.
//!
//! siphon is the DTLS server when it answers (a=setup:passive) or when its
//! actpass offer is answered active (browsers). It is the DTLS client when
//! its actpass offer is answered passive: pion-lineage stacks do that
//! whenever the offerer is ICE-lite. After the handshake the peer
//! certificate is pinned to the SDP fingerprint and the RFC 5764 keying
//! material becomes the SRTP keys.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use dimpl::{Config, Dtls, DtlsCertificate, Output};
use rand::Rng;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use sha2::{Digest, Sha256};

use super::{DtlsFailure, SrtpProfile, WebRtcError};

/// A DTLS flight larger than this is refused rather than buffered.
const MAX_DTLS_DATAGRAM: usize = 16 * 1024;

/// The endpoint's DTLS certificate (ECDSA P-256) and its SDP fingerprint.
pub struct Identity {
    /// sha-256 of the DER certificate, uppercase hex, colon-separated.
    pub fingerprint: String,
    cert: DtlsCertificate,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Generates a fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<Identity, WebRtcError> {
        let err = |e: rcgen::Error| WebRtcError::Certificate(Arc::new(e));
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "siphon");
        params.distinguished_name = name;
        // Firefox rejects two certificates with the same issuer and serial,
        // even across processes, so the serial is random.
        let serial: [u8; 16] = rand::rng().random();
        params.serial_number = Some(serial.to_vec().into());
        let cert = params.self_signed(&key).map_err(err)?;
        let der = cert.der().to_vec();
        Ok(Identity {
            fingerprint: format_fingerprint(&sha256(&der)),
            cert: DtlsCertificate {
                certificate: der,
                private_key: key.serialize_der(),
            },
        })
    }

    /// The certificate in DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert.certificate
    }

    pub(crate) fn dtls_certificate(&self) -> DtlsCertificate {
        self.cert.clone()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn format_fingerprint(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Parses an SDP sha-256 fingerprint value ("ab:CD:..."; a leading "sha-256 " is tolerated).
pub(crate) fn parse_fingerprint(s: &str) -> Result<[u8; 32], WebRtcError> {
    let bad = || WebRtcError::InvalidFingerprint(s.to_owned());
    let s = s.trim();
    let value = match s.split_once(' ') {
        Some((algo, v)) if algo.eq_ignore_ascii_case("sha-256") => v.trim(),
        Some(_) => return Err(bad()),
        None => s,
    };
    let mut out = [0u8; 32];
    let mut parts = value.split(':');
    for byte in out.iter_mut() {
        let part = parts
            .next()
            .filter(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(bad)?;
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

/// Which end of the DTLS handshake a leg plays (from the SDP a=setup exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// We wait for the peer's ClientHello (peer is a=setup:active).
    Server,
    /// We send the ClientHello once ICE validated a path (peer is a=setup:passive).
    Client,
}

/// SRTP master keys for one leg, each `key || salt`.
#[derive(Debug)]
pub(crate) struct SrtpKeys {
    pub profile: SrtpProfile,
    /// Our write key (server or client per role): protects what we send.
    pub local: Vec<u8>,
    /// The peer's write key: unprotects what we receive.
    pub remote: Vec<u8>,
}

/// Where a handshake stands after draining dimpl's output.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Still handshaking (or connected and already reported).
    Pending,
    /// Just connected with a verified peer; here are the keys.
    Connected(SrtpKeys),
    /// The peer sent close_notify.
    Closed,
}

/// The DTLS end of one leg, in either role.
pub(crate) struct DtlsSession {
    dtls: Dtls,
    role: DtlsRole,
    /// False for a client until ICE validated a path: dimpl emits the
    /// ClientHello on its first `handle_timeout`, so until then it is never
    /// given the time and never polled.
    started: bool,
    expected_fingerprint: [u8; 32],
    peer_verified: bool,
    connected: bool,
    keys: Option<SrtpKeys>,
    reported: bool,
    timeout: Option<Instant>,
}

impl DtlsSession {
    /// A session that will accept only a peer certificate with this sha-256.
    pub fn new(
        identity: &Identity,
        config: Arc<Config>,
        expected_fingerprint: [u8; 32],
        role: DtlsRole,
        now: Instant,
    ) -> DtlsSession {
        let dtls = match role {
            // Auto-sense: DTLS 1.3 if the browser's ClientHello offers it, else 1.2.
            DtlsRole::Server => Dtls::new_auto(config, identity.dtls_certificate(), now),
            // Plain 1.2: the peers that answer passive (pion lineage, and
            // browsers as DTLS servers) speak 1.2; dimpl's 1.2 ClientHello
            // offers use_srtp with AES-256-GCM, AES-128-GCM and
            // AES_CM_128_HMAC_SHA1_80.
            DtlsRole::Client => {
                let mut dtls = Dtls::new_12(config, identity.dtls_certificate(), now);
                dtls.set_active(true);
                dtls
            }
        };
        DtlsSession {
            dtls,
            role,
            started: role == DtlsRole::Server,
            expected_fingerprint,
            peer_verified: false,
            connected: false,
            keys: None,
            reported: false,
            timeout: None,
        }
    }

    /// Starts a client's handshake (queues the ClientHello); a no-op for a
    /// server or a client already started. Call once ICE validated a path.
    pub fn start(&mut self, now: Instant) -> Result<(), WebRtcError> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        self.dtls.handle_timeout(now).map_err(dtls_error)
    }

    /// True for a client that has not sent its ClientHello yet.
    pub fn awaiting_start(&self) -> bool {
        !self.started
    }

    /// Feeds one DTLS datagram. Any error is fatal for the leg.
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), WebRtcError> {
        // dimpl learns the time only through handle_timeout; it must precede
        // packets. For an unstarted client this also starts it, which is
        // right: the datagram came from an address ICE validated.
        self.started = true;
        self.dtls.handle_timeout(now).map_err(dtls_error)?;
        self.dtls.handle_packet(packet).map_err(dtls_error)
    }

    /// Runs retransmission timers (and the handshake deadline) if due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WebRtcError> {
        match self.timeout {
            Some(t) if self.started && now >= t => {
                self.dtls.handle_timeout(now).map_err(dtls_error)
            }
            _ => Ok(()),
        }
    }

    /// When dimpl next wants `handle_timeout`; `None` before a client starts.
    pub fn timeout(&self) -> Option<Instant> {
        self.timeout.filter(|_| self.started)
    }

    /// Drains dimpl: datagrams go to `send`, events become [`Progress`].
    pub fn poll(
        &mut self,
        scratch: &mut Vec<u8>,
        mut send: impl FnMut(&[u8]),
    ) -> Result<Progress, WebRtcError> {
        if !self.started {
            // An unstarted client reports "timeout now" forever; keeping that
            // would spin the endpoint's timer.
            return Ok(Progress::Pending);
        }
        let mut closed = false;
        loop {
            match self.dtls.poll_output(scratch) {
                Output::Packet(p) => send(p),
                Output::BufferTooSmall { needed } if needed <= MAX_DTLS_DATAGRAM => {
                    scratch.resize(needed, 0)
                }
                Output::BufferTooSmall { needed } => {
                    return Err(WebRtcError::Dtls(DtlsFailure::Oversized(needed)));
                }
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    break;
                }
                Output::Connected => self.connected = true,
                Output::PeerCert(der) => self.verify_peer(der)?,
                Output::KeyingMaterial(material, profile) => self.set_keys(&material, profile)?,
                Output::CloseNotify => closed = true,
                // No data channels: application data has no consumer.
                _ => {}
            }
        }
        if closed {
            return Ok(Progress::Closed);
        }
        self.progress()
    }

    fn progress(&mut self) -> Result<Progress, WebRtcError> {
        if !self.connected || self.reported {
            return Ok(Progress::Pending);
        }
        if !self.peer_verified {
            return Err(WebRtcError::FingerprintMismatch);
        }
        let keys = self.keys.take().ok_or(WebRtcError::NoSrtpProfile)?;
        self.reported = true;
        Ok(Progress::Connected(keys))
    }

    fn verify_peer(&mut self, der: &[u8]) -> Result<(), WebRtcError> {
        if sha256(der) != self.expected_fingerprint {
            return Err(WebRtcError::FingerprintMismatch);
        }
        self.peer_verified = true;
        Ok(())
    }

    fn set_keys(
        &mut self,
        material: &[u8],
        profile: dimpl::SrtpProfile,
    ) -> Result<(), WebRtcError> {
        let profile = SrtpProfile::from_dtls(profile).ok_or(WebRtcError::NoSrtpProfile)?;
        let (client, server) = profile
            .split_keying_material(material)
            .ok_or(WebRtcError::NoSrtpProfile)?;
        // RFC 5764 4.2: each side protects with its own write key.
        let (local, remote) = match self.role {
            DtlsRole::Server => (server, client),
            DtlsRole::Client => (client, server),
        };
        self.keys = Some(SrtpKeys {
            profile,
            local,
            remote,
        });
        Ok(())
    }
}

fn dtls_error(e: dimpl::Error) -> WebRtcError {
    WebRtcError::Dtls(DtlsFailure::Engine(Arc::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtls_failures_read_as_before() {
        let big = WebRtcError::Dtls(DtlsFailure::Oversized(2000));
        assert_eq!(big.to_string(), "DTLS: datagram of 2000 bytes");
        let shown = dimpl::Error::ConnectionClosed.to_string();
        let engine = dtls_error(dimpl::Error::ConnectionClosed);
        assert_eq!(engine.to_string(), format!("DTLS: {shown}"));
        assert!(std::error::Error::source(&engine).is_some());
    }

    #[test]
    fn identity_fingerprint_is_sha256_of_der() {
        let id = Identity::generate().expect("identity");
        assert_eq!(id.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(id.fingerprint, id.fingerprint.to_uppercase());
        let parsed = parse_fingerprint(&id.fingerprint).expect("parse");
        assert_eq!(parsed, sha256(id.certificate_der()));
        let other = Identity::generate().expect("identity");
        assert_ne!(id.fingerprint, other.fingerprint);
    }

    #[test]
    fn fingerprint_parsing_is_strict_but_case_blind() {
        let upper = ["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&upper).expect("upper"), [0xab; 32]);
        let lower = format!("sha-256 {}", upper.to_lowercase());
        assert_eq!(parse_fingerprint(&lower).expect("lower"), [0xab; 32]);
        for bad in [
            "",
            "AB",
            &["AB"; 31].join(":"),
            &["AB"; 33].join(":"),
            &["A"; 32].join(":"),
            &["ZZ"; 32].join(":"),
            &["+A"; 32].join(":"),
            &format!("sha-1 {upper}"),
        ] {
            assert!(parse_fingerprint(bad).is_err(), "{bad:?}");
        }
    }
}
