//! The SDES tests' PBX: an rsipstack endpoint beside an in-process siphon,
//! whose media is protected with rtc-srtp, an implementation siphon's relay
//! shares no code with; and the `a=crypto` helpers it needs.

use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use serde_json::json;
use siphon::config::{Config, UserConfig};
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{InboundPolicy, SipEndpoint, SipSettings, Transport};
use tokio_util::sync::CancellationToken;

pub use super::media_addr;
use super::Signaling;

pub const T: Duration = Duration::from_secs(10);
/// The PBX's keys: a first one and the one a re-INVITE moves to.
pub const PBX_KEY: [u8; 30] = [0x21; 30];
pub const PBX_KEY2: [u8; 30] = [0x42; 30];

/// A gateway on [`super::loopback_config`] plus a PBX endpoint on its own
/// UDP port.
pub struct Rig {
    pub gateway: Gateway,
    pub metrics: Metrics,
    pub pbx: SipEndpoint,
    _stop: CancellationToken,
}

impl Rig {
    pub async fn start(tweak: impl FnOnce(&mut Config, SocketAddr)) -> Rig {
        let stop = CancellationToken::new();
        let settings = SipSettings {
            udp: Some("127.0.0.1:0".parse().unwrap()),
            tcp: None,
            public_ip: "127.0.0.1".parse().unwrap(),
            domain: "pbx.test".into(),
            user_agent: "test-pbx".into(),
            max_message_bytes: 65535,
            inbound: InboundPolicy::default(),
            tls: None,
        };
        let pbx = SipEndpoint::start(settings, Metrics::new(), stop.clone())
            .await
            .unwrap();
        let mut config = super::loopback_config();
        config.users = vec![UserConfig {
            name: "alice".into(),
            extension: "2001".into(),
            ..Default::default()
        }];
        tweak(&mut config, pbx.local_addr(Transport::Udp).unwrap());
        let metrics = Metrics::new();
        let gateway = Gateway::start(config, metrics.clone()).await.unwrap();
        Rig {
            gateway,
            metrics,
            pbx,
            _stop: stop,
        }
    }

    pub async fn signaling(&self, user: Option<&str>) -> Signaling {
        let url = format!("ws://{}/ws", self.gateway.http_addr());
        let mut sig = Signaling::connect(&url).await.unwrap();
        if let Some(user) = user {
            sig.send(json!({"type":"hello","user":user})).await.unwrap();
            sig.send(json!({"type":"hangup","call_id":"sync"}))
                .await
                .unwrap();
            assert_eq!(sig.recv(T).await.unwrap()["code"], "unknown_call");
        }
        sig
    }

    /// `siphon_media_dropped_total` for the SIP side and `reason`.
    pub fn sip_drops(&self, reason: &str) -> u64 {
        let needle = format!("siphon_media_dropped_total{{reason=\"{reason}\",side=\"sip\"}} ");
        let text = self.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

/// The key of siphon's `a=crypto:<tag>` line, and its suite name.
pub fn crypto_line(sdp: &str, tag: u32) -> Option<(String, Vec<u8>)> {
    let prefix = format!("a=crypto:{tag} ");
    let line = sdp.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let mut words = line.split_whitespace();
    let suite = words.next()?.to_owned();
    let key = words.next()?.strip_prefix("inline:")?;
    Some((suite, STANDARD.decode(key).ok()?))
}

/// An rtc-srtp context for `key || salt`.
pub fn context(profile: ProtectionProfile, key: &[u8]) -> Context {
    let provider = rtc_crypto::default_provider().expect("provider");
    Context::new(
        &key[..16],
        &key[16..],
        profile,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
        provider.crypto(),
    )
    .expect("context")
}

pub fn pbx_sdp(port: u16, proto: &str, crypto: &str) -> String {
    format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0 101\r\n{crypto}a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    )
}

pub fn crypto_attr(tag: u32, suite: &str, key: &[u8]) -> String {
    format!("a=crypto:{tag} {suite} inline:{}\r\n", STANDARD.encode(key))
}

/// A plain PCMU RTP packet, the one the other tests send.
pub use super::pcmu_rtp as rtp;
