//! An in-process stand-in for a browser: ICE controlling agent (rtc-stun),
//! DTLS client (dimpl, active role) or, for a gateway leg in the client role,
//! DTLS server (dimpl, passive, as pion-lineage peers answer an ICE-lite
//! offer), and its own SRTP contexts (rtc-srtp used directly, not through
//! `SrtpContext`). It drives an `Endpoint` with no socket in between; the
//! pieces it shares with the lightweight browser that goes over sockets
//! (its binding request, its SRTP keys) are that browser's, in the testkit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dimpl::{Config, Dtls, Output};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, BINDING_SUCCESS};
use rtc_stun::xoraddr::XorMappedAddress;

use crate::webrtc::{
    random_ice_credentials, DtlsRole, Endpoint, Identity, LegConfig, LegId, Receive, SrtpProfile,
    DEFAULT_CONSENT_TIMEOUT, DEFAULT_DISCONNECT_TIMEOUT,
};

/// Encodes a binding request as a controlling browser sends it.
pub fn binding_request(username: &str, pwd: &str, use_candidate: bool) -> Vec<u8> {
    siphon_testkit::browser::binding_request_as(username, pwd, use_candidate)
}

/// The browser side of one leg.
pub struct Browser {
    pub addr: SocketAddr,
    pub ufrag: String,
    pub pwd: String,
    /// The credentials the gateway put into its SDP for this leg.
    pub gw_ufrag: String,
    pub gw_pwd: String,
    pub identity: Identity,
    dtls: Dtls,
    /// The role the gateway's leg plays (the browser plays the other one).
    pub gw_role: DtlsRole,
    pub profile: Option<SrtpProfile>,
    /// Encrypts what the browser sends (its own write key).
    pub tx: Option<Context>,
    /// Decrypts what the gateway sends (the gateway's write key).
    pub rx: Option<Context>,
}

impl Browser {
    /// A browser at `addr` speaking DTLS 1.2 (or 1.3 when `dtls13`).
    pub fn new(addr: SocketAddr, now: Instant, dtls13: bool) -> Browser {
        let identity = Identity::generate().expect("identity");
        let config = Arc::new(Config::default());
        let cert = identity.dtls_certificate();
        let mut dtls = if dtls13 {
            Dtls::new_13(config, cert, now)
        } else {
            Dtls::new_12(config, cert, now)
        };
        dtls.set_active(true);
        Browser::with_dtls(addr, identity, dtls, DtlsRole::Server)
    }

    /// A browser at `addr` that answered a=setup:passive: a DTLS server
    /// (auto-sensing 1.2/1.3), so the gateway's leg is the DTLS client.
    pub fn passive(addr: SocketAddr, now: Instant) -> Browser {
        let identity = Identity::generate().expect("identity");
        let config = Arc::new(Config::default());
        let dtls = Dtls::new_auto(config, identity.dtls_certificate(), now);
        Browser::with_dtls(addr, identity, dtls, DtlsRole::Client)
    }

    fn with_dtls(addr: SocketAddr, identity: Identity, dtls: Dtls, gw_role: DtlsRole) -> Browser {
        let (ufrag, pwd) = random_ice_credentials();
        let (gw_ufrag, gw_pwd) = random_ice_credentials();
        Browser {
            addr,
            ufrag,
            pwd,
            gw_ufrag,
            gw_pwd,
            identity,
            dtls,
            gw_role,
            profile: None,
            tx: None,
            rx: None,
        }
    }

    /// The leg configuration the gateway derives from this browser's SDP.
    pub fn leg_config(&self) -> LegConfig {
        LegConfig {
            local_ufrag: self.gw_ufrag.clone(),
            local_pwd: self.gw_pwd.clone(),
            remote_ufrag: self.ufrag.clone(),
            remote_pwd: self.pwd.clone(),
            remote_fingerprint: self.identity.fingerprint.clone(),
            consent_timeout: DEFAULT_CONSENT_TIMEOUT,
            disconnect_timeout: DEFAULT_DISCONNECT_TIMEOUT,
            dtls_role: self.gw_role,
        }
    }

    /// A correctly signed check from this browser.
    pub fn request(&self, use_candidate: bool) -> Vec<u8> {
        let username = format!("{}:{}", self.gw_ufrag, self.ufrag);
        binding_request(&username, &self.gw_pwd, use_candidate)
    }

    /// Sends a check from `from`, expects a verified success response there.
    pub fn check_from(&self, ep: &mut Endpoint, now: Instant, from: SocketAddr, nominate: bool) {
        let mut buf = self.request(nominate);
        buf.resize(buf.len() + 64, 0);
        let len = buf.len() - 64;
        assert_eq!(
            ep.handle_receive(now, from, &mut buf, len),
            Receive::Handled
        );
        let t = ep.poll_transmit().expect("binding response");
        assert_eq!(t.dest, from);
        let mut resp = Message::new();
        resp.unmarshal_binary(&t.data).expect("decode response");
        assert_eq!(resp.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut resp, self.gw_pwd.as_bytes(), &RingCrypto)
            .expect("response integrity");
        FINGERPRINT.check(&resp).expect("response fingerprint");
        let mut mapped = XorMappedAddress::default();
        mapped
            .get_from_as(&resp, rtc_stun::attributes::ATTR_XORMAPPED_ADDRESS)
            .expect("xor-mapped-address");
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
    }

    /// A nominating check from the browser's own address.
    pub fn check(&self, ep: &mut Endpoint, now: Instant) {
        self.check_from(ep, now, self.addr, true);
    }

    /// Runs the DTLS handshake against `ep` until neither side has anything to say.
    pub fn handshake(&mut self, ep: &mut Endpoint, now: Instant) {
        self.dtls.handle_timeout(now).expect("client timeout");
        for round in 0..20 {
            let sent = self.flush_to(ep, now);
            let mut received = 0;
            while let Some(t) = ep.poll_transmit() {
                assert_eq!(t.dest, self.addr, "DTLS goes to the validated address");
                self.dtls.handle_timeout(now).expect("client timeout");
                self.dtls.handle_packet(&t.data).expect("client packet");
                received += 1;
            }
            if sent == 0 && received == 0 && round > 0 {
                return;
            }
        }
        panic!("handshake did not settle");
    }

    /// Feeds every pending client datagram to `ep`; returns how many.
    fn flush_to(&mut self, ep: &mut Endpoint, now: Instant) -> usize {
        let mut out = vec![0u8; 4096];
        let mut sent = 0;
        loop {
            match self.dtls.poll_output(&mut out) {
                Output::Packet(p) => {
                    let mut buf = p.to_vec();
                    let len = buf.len();
                    buf.resize(len + 64, 0);
                    // Not asserted: a failing leg answers its last records with Dropped(Dtls).
                    let _ = ep.handle_receive(now, self.addr, &mut buf, len);
                    sent += 1;
                }
                Output::KeyingMaterial(km, profile) => self.set_keys(&km, profile),
                Output::Timeout(_) => return sent,
                _ => {}
            }
        }
    }

    fn set_keys(&mut self, km: &[u8], profile: dimpl::SrtpProfile) {
        // The gateway's leg as DTLS server makes the browser the client.
        let client = self.gw_role == DtlsRole::Server;
        let srtp = siphon_testkit::browser::srtp_keys(km, profile, client).expect("client srtp");
        self.tx = Some(srtp.tx);
        self.rx = Some(srtp.rx);
        self.profile = Some(SrtpProfile::from_dtls(profile).expect("profile"));
    }

    /// Encrypts an RTP packet as the browser would send it.
    pub fn srtp(&mut self, plain: &[u8]) -> Vec<u8> {
        let tx = self.tx.as_mut().expect("keys");
        tx.encrypt_rtp(plain).expect("encrypt").to_vec()
    }

    /// Encrypts an RTCP packet as the browser would send it.
    pub fn srtcp(&mut self, plain: &[u8]) -> Vec<u8> {
        let tx = self.tx.as_mut().expect("keys");
        tx.encrypt_rtcp(plain).expect("encrypt").to_vec()
    }
}

/// Drives ICE and DTLS over a real socket against a gateway at `server`
/// (a relay loop's WebRTC port) until SRTP keys are set.
pub fn connect_over(browser: &mut Browser, sock: &std::net::UdpSocket, server: SocketAddr) {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut buf = vec![0u8; 4096];
    let started = Instant::now();
    sock.send_to(&browser.request(true), server)
        .expect("send check");
    browser
        .dtls
        .handle_timeout(Instant::now())
        .expect("client timeout");
    while browser.tx.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no DTLS connection"
        );
        loop {
            match browser.dtls.poll_output(&mut buf) {
                Output::Packet(p) => {
                    sock.send_to(p, server).expect("send dtls");
                }
                Output::KeyingMaterial(km, profile) => browser.set_keys(&km, profile),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            // STUN responses start with 0 or 1; everything else is DTLS here.
            if buf[0] > 3 {
                let _ = browser.dtls.handle_packet(&buf[..n]);
            }
        }
        browser
            .dtls
            .handle_timeout(Instant::now())
            .expect("client timeout");
    }
}

/// Sets up an endpoint with one leg per browser, all checked and connected.
pub fn connected(browsers: &mut [Browser], now: Instant) -> Endpoint {
    let identity = Arc::new(Identity::generate().expect("identity"));
    let mut ep = Endpoint::new(identity);
    for (i, b) in browsers.iter_mut().enumerate() {
        ep.add_leg(i as LegId, b.leg_config(), now)
            .expect("add leg");
        b.check(&mut ep, now);
        b.handshake(&mut ep, now + Duration::from_millis(1));
    }
    ep
}

/// A plain RTP packet.
pub fn rtp(seq: u16, ssrc: u32, payload: u8) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[payload; 60]);
    p
}

/// A plain RTCP receiver report with one empty report block.
pub fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0u8; 24]);
    p
}

/// `data` copied into a buffer with 64 spare bytes; returns (buf, len).
pub fn room(data: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = data.to_vec();
    buf.resize(data.len() + 64, 0);
    (buf, data.len())
}
