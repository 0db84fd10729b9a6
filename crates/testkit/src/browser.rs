//! The lightweight browser's WebRTC side: offer SDP, answer parsing, ICE as
//! the controlling agent (rtc-stun), DTLS client (dimpl) and SRTP (rtc-srtp)
//! on a real UDP socket. Just enough of a browser to load siphon, at a
//! fraction of a full stack's cost per call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use dimpl::{Config, Dtls, DtlsCertificate, Output};
use rand::Rng;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use rtc_stun::attributes::{
    AttrType, RawAttribute, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;

mod error;

pub use error::BrowserError;

/// Which protocol a datagram carries, by its first byte (RFC 7983).
pub fn is_stun(b: u8) -> bool {
    b < 4
}

fn is_dtls(b: u8) -> bool {
    (20..64).contains(&b)
}

/// A client certificate shared by every browser: siphon pins each leg to the
/// fingerprint in its offer, and one key pair keeps setup cheap.
pub struct ClientIdentity {
    cert: DtlsCertificate,
    fingerprint: String,
}

impl ClientIdentity {
    /// A fresh self-signed ECDSA P-256 certificate, as browsers use.
    pub fn generate() -> Result<ClientIdentity, BrowserError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = CertificateParams::new(vec!["bench".to_owned()])?;
        let cert = params.self_signed(&key)?;
        let der = cert.der().to_vec();
        Ok(ClientIdentity {
            fingerprint: fingerprint(&der),
            cert: DtlsCertificate {
                certificate: der,
                private_key: key.serialize_der(),
            },
        })
    }
}

fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Our side of the offer/answer.
pub struct Offer {
    /// The browser's ICE ufrag.
    pub ufrag: String,
    /// The offer as sent.
    pub sdp: String,
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A minimal browser offer: one audio m-line with PCMU and telephone-event,
/// BUNDLE, rtcp-mux, DTLS actpass and one host candidate.
pub fn offer(identity: &ClientIdentity, local: SocketAddr, ssrc: u32) -> Offer {
    let ufrag = random_token(4);
    let pwd = random_token(24);
    let session: u64 = rand::rng().random::<u64>() >> 2;
    let (ip, port) = (local.ip(), local.port());
    let sdp = [
        "v=0".to_owned(),
        format!("o=- {session} 2 IN IP4 127.0.0.1"),
        "s=-".to_owned(),
        "t=0 0".to_owned(),
        "a=group:BUNDLE 0".to_owned(),
        "a=msid-semantic: WMS bench".to_owned(),
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 126".to_owned(),
        "c=IN IP4 0.0.0.0".to_owned(),
        "a=rtcp:9 IN IP4 0.0.0.0".to_owned(),
        format!("a=candidate:1 1 udp 2122260223 {ip} {port} typ host"),
        format!("a=ice-ufrag:{ufrag}"),
        format!("a=ice-pwd:{pwd}"),
        format!("a=fingerprint:sha-256 {}", identity.fingerprint),
        "a=setup:actpass".to_owned(),
        "a=mid:0".to_owned(),
        "a=sendrecv".to_owned(),
        "a=msid:bench track".to_owned(),
        "a=rtcp-mux".to_owned(),
        "a=rtpmap:0 PCMU/8000".to_owned(),
        "a=rtpmap:126 telephone-event/8000".to_owned(),
        "a=fmtp:126 0-15".to_owned(),
        format!("a=ssrc:{ssrc} cname:bench"),
        String::new(),
    ]
    .join("\r\n");
    Offer { ufrag, sdp }
}

/// What the browser needs from siphon's answer.
#[derive(Debug)]
pub struct Answer {
    /// siphon's ICE ufrag.
    pub ufrag: String,
    /// siphon's ICE password.
    pub pwd: String,
    /// siphon's DTLS certificate fingerprint (sha-256).
    pub fingerprint: String,
    /// siphon's one host candidate.
    pub candidate: SocketAddr,
}

/// Reads ICE credentials, fingerprint and the host candidate from an answer.
pub fn parse_answer(sdp: &str) -> Result<Answer, BrowserError> {
    let attr = |name: &'static str| {
        sdp.lines()
            .find_map(|l| l.trim_end().strip_prefix(name))
            .map(str::to_owned)
            .ok_or(BrowserError::MissingAttribute(name))
    };
    let fp = attr("a=fingerprint:")?;
    let cand = attr("a=candidate:")?;
    // foundation component transport priority ip port "typ" type
    let f: Vec<&str> = cand.split_ascii_whitespace().collect();
    let candidate = match (f.get(4), f.get(5)) {
        (Some(ip), Some(port)) => format!("{ip}:{port}")
            .parse()
            .map_err(|_| BrowserError::BadCandidate(cand.clone()))?,
        _ => return Err(BrowserError::BadCandidate(cand)),
    };
    Ok(Answer {
        ufrag: attr("a=ice-ufrag:")?,
        pwd: attr("a=ice-pwd:")?,
        fingerprint: fp
            .strip_prefix("sha-256 ")
            .ok_or_else(|| BrowserError::NotSha256(fp.clone()))?
            .to_owned(),
        candidate,
    })
}

fn raw(typ: AttrType, value: &[u8]) -> RawAttribute {
    RawAttribute {
        typ,
        length: value.len() as u16,
        value: value.to_vec(),
    }
}

/// A binding request as a controlling browser sends it (with USE-CANDIDATE
/// for the nomination, without for consent freshness).
pub fn binding_request(offer: &Offer, answer: &Answer, nominate: bool) -> Vec<u8> {
    let username = format!("{}:{}", answer.ufrag, offer.ufrag);
    binding_request_as(&username, &answer.pwd, nominate)
}

/// [`binding_request`] from its parts: `username` is the answerer's ufrag
/// and the browser's (`theirs:ours`), signed with the answerer's `pwd`.
pub fn binding_request_as(username: &str, pwd: &str, nominate: bool) -> Vec<u8> {
    let username = username.to_owned();
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, username)),
        Box::new(raw(ATTR_PRIORITY, &1_853_817_087u32.to_be_bytes())),
        Box::new(raw(
            ATTR_ICE_CONTROLLING,
            &rand::random::<u64>().to_be_bytes(),
        )),
    ];
    if nominate {
        setters.push(Box::new(raw(ATTR_USE_CANDIDATE, &[])));
    }
    setters.push(Box::new(
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), &RingCrypto),
    ));
    setters.push(Box::new(FINGERPRINT));
    let mut m = Message::new();
    // Only fails on attribute overflow, impossible with these fixed fields.
    m.build(&setters).expect("binding request fits");
    m.raw
}

/// True for a binding success response signed with siphon's password.
pub fn is_binding_success(data: &[u8], answer: &Answer) -> bool {
    let mut m = Message::new();
    m.unmarshal_binary(data).is_ok()
        && m.typ == BINDING_SUCCESS
        && MessageIntegrity::check(&mut m, answer.pwd.as_bytes(), &RingCrypto).is_ok()
}

/// Nominates the pair: USE-CANDIDATE checks until one is answered.
pub async fn connect_ice(
    sock: &UdpSocket,
    offer: &Offer,
    answer: &Answer,
    deadline: Instant,
) -> Result<(), BrowserError> {
    let mut buf = vec![0u8; 2048];
    let request = binding_request(offer, answer, true);
    while Instant::now() < deadline {
        sock.send_to(&request, answer.candidate)
            .await
            .map_err(BrowserError::StunSend)?;
        // A browser retransmits checks quickly at first (RFC 8445 Ta).
        let retry = (Instant::now() + std::time::Duration::from_millis(250)).min(deadline);
        while let Ok(r) = tokio::time::timeout_at(retry.into(), sock.recv_from(&mut buf)).await {
            let (n, _) = r.map_err(BrowserError::StunRecv)?;
            if n > 0 && is_stun(buf[0]) && is_binding_success(&buf[..n], answer) {
                return Ok(());
            }
        }
    }
    Err(BrowserError::IceTimeout)
}

/// The browser's two SRTP directions.
pub struct Srtp {
    /// Protects what the browser sends (its own write key).
    pub tx: Context,
    /// Unprotects what siphon sends (siphon's write key).
    pub rx: Context,
    /// The negotiated SRTP profile, by its RFC name.
    pub profile: &'static str,
}

/// Runs the DTLS client handshake, checks siphon's certificate against the
/// answer's fingerprint and keys SRTP.
pub async fn connect_dtls(
    sock: &UdpSocket,
    identity: &ClientIdentity,
    answer: &Answer,
    deadline: Instant,
) -> Result<Srtp, BrowserError> {
    let mut dtls = Dtls::new_12(
        Arc::new(Config::default()),
        identity.cert.clone(),
        Instant::now(),
    );
    dtls.set_active(true);
    dtls.handle_timeout(Instant::now())
        .map_err(BrowserError::Dtls)?;
    let mut state = Handshake::default();
    let mut out = vec![0u8; 4096];
    let mut buf = vec![0u8; 4096];
    loop {
        let timer = state.drain(&mut dtls, &mut out, sock, answer).await?;
        if let Some(srtp) = state.finished()? {
            return Ok(srtp);
        }
        let wake = timer.min(deadline);
        match tokio::time::timeout_at(wake.into(), sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) if n > 0 && is_dtls(buf[0]) => {
                dtls.handle_timeout(Instant::now())
                    .map_err(BrowserError::Dtls)?;
                dtls.handle_packet(&buf[..n]).map_err(BrowserError::Dtls)?;
            }
            // Late STUN responses and anything else are not for DTLS.
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(BrowserError::DtlsRecv(e)),
            Err(_) if Instant::now() >= deadline => return Err(BrowserError::DtlsTimeout),
            Err(_) => dtls
                .handle_timeout(Instant::now())
                .map_err(BrowserError::Dtls)?,
        }
    }
}

/// What the handshake has produced so far.
#[derive(Default)]
struct Handshake {
    connected: bool,
    peer_ok: Option<bool>,
    keys: Option<Srtp>,
}

impl Handshake {
    /// Sends dimpl's datagrams, records its events; returns its next timer.
    async fn drain(
        &mut self,
        dtls: &mut Dtls,
        out: &mut Vec<u8>,
        sock: &UdpSocket,
        answer: &Answer,
    ) -> Result<Instant, BrowserError> {
        loop {
            match dtls.poll_output(out) {
                Output::Packet(p) => {
                    sock.send_to(p, answer.candidate)
                        .await
                        .map_err(BrowserError::DtlsSend)?;
                }
                Output::BufferTooSmall { needed } => out.resize(needed, 0),
                Output::Timeout(t) => return Ok(t),
                Output::Connected => self.connected = true,
                Output::PeerCert(der) => {
                    self.peer_ok = Some(fingerprint(der) == answer.fingerprint)
                }
                Output::KeyingMaterial(km, profile) => {
                    self.keys = Some(srtp_keys(&km, profile, true)?)
                }
                _ => {}
            }
        }
    }

    fn finished(&mut self) -> Result<Option<Srtp>, BrowserError> {
        if !self.connected || self.keys.is_none() {
            return Ok(None);
        }
        if self.peer_ok != Some(true) {
            return Err(BrowserError::FingerprintMismatch);
        }
        Ok(self.keys.take())
    }
}

/// The browser's SRTP contexts from DTLS keying material (RFC 5764 §4.2:
/// client key | server key | client salt | server salt); `client`: the
/// browser was the DTLS client, so it writes with the client's key.
pub fn srtp_keys(
    km: &[u8],
    profile: dimpl::SrtpProfile,
    client: bool,
) -> Result<Srtp, BrowserError> {
    let (p, name) = match profile {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => {
            (ProtectionProfile::Aes128CmHmacSha1_80, "AES128_CM_SHA1_80")
        }
        dimpl::SrtpProfile::AEAD_AES_128_GCM => {
            (ProtectionProfile::AeadAes128Gcm, "AEAD_AES_128_GCM")
        }
        dimpl::SrtpProfile::AEAD_AES_256_GCM => {
            (ProtectionProfile::AeadAes256Gcm, "AEAD_AES_256_GCM")
        }
        other => return Err(BrowserError::UnexpectedProfile(other)),
    };
    let (k, s) = (p.key_len(), p.salt_len());
    if km.len() < 2 * (k + s) {
        return Err(BrowserError::ShortKeyingMaterial);
    }
    let ctx = |key: &[u8], salt: &[u8]| {
        Context::new(
            key,
            salt,
            p,
            Some(srtp_replay_protection(64)),
            Some(srtcp_replay_protection(64)),
            &RingCrypto,
        )
        .map_err(BrowserError::Srtp)
    };
    let client_write = ctx(&km[..k], &km[2 * k..2 * k + s])?;
    let server_write = ctx(&km[k..2 * k], &km[2 * k + s..2 * (k + s)])?;
    let (tx, rx) = match client {
        true => (client_write, server_write),
        false => (server_write, client_write),
    };
    Ok(Srtp {
        tx,
        rx,
        profile: name,
    })
}
