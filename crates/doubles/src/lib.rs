//! Test doubles and fixtures that need siphon's own types, for siphon's
//! integration tests, benches and load tool (never for the product): the
//! scripted echo, and the gateway config every such test starts from.
//! Peers that need nothing of siphon (the lightweight browser, the test
//! ports) are in `siphon-testkit`.
//!
//! [`ScriptedEcho`] makes siphon's echo extension play a PBX or phone that
//! misbehaves on purpose:
//!
//! ```
//! use siphon_doubles::ScriptedEcho;
//!
//! // A PBX that is busy: every INVITE gets 486.
//! let busy = ScriptedEcho {
//!     reject: Some(486),
//!     ..ScriptedEcho::default()
//! };
//! let behavior = busy.behavior();
//! assert!(behavior.script.is_some());
//! ```

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use siphon::config::Config;
use siphon::gateway::Gateway;
use siphon::metrics::Metrics;
use siphon::sip::{EchoBehavior, EchoChallenge, EchoScript, EchoServer, EchoSettings};
use siphon::sip::{ReceivedInvite, SipError};
use tokio_util::sync::CancellationToken;

/// A gateway config on 127.0.0.1 with ephemeral SIP (UDP only), HTTP and
/// WebRTC ports, 20 RTP ports from the test-port allocator, one relay loop,
/// and no echo extension: what a test changes is what it is about.
pub fn loopback_config() -> Config {
    let rtp_base = siphon_testkit::ports::block(20);
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().expect("loopback");
    config.sip.udp = Some("127.0.0.1:0".parse().expect("loopback"));
    config.sip.tcp = None;
    config.webrtc.port = 0;
    config.rtp.port_min = rtp_base;
    config.rtp.port_max = rtp_base + 19;
    config.media.workers = 1;
    config.echo.enabled = false;
    config
}

/// An echo UAS of `behavior` on 127.0.0.1, running until `stop`.
pub async fn echo(
    behavior: EchoBehavior,
    stop: &CancellationToken,
) -> Result<EchoServer, SipError> {
    let settings = EchoSettings {
        listen: "127.0.0.1:0".parse().expect("loopback"),
        rtp_ip: [127, 0, 0, 1].into(),
        behavior,
    };
    EchoServer::start(settings, Metrics::new(), stop.clone()).await
}

/// siphon on [`loopback_config`] (changed by `tweak`) whose trunk is an
/// [`echo`] of `behavior`: a browser's call to any number reaches it.
pub async fn gateway_to_echo(
    behavior: EchoBehavior,
    stop: &CancellationToken,
    tweak: impl FnOnce(&mut Config),
) -> Result<(Gateway, EchoServer), Box<dyn std::error::Error>> {
    let uas = echo(behavior, stop).await?;
    let mut config = loopback_config();
    config.sip.trunk.uri = Some(format!("sip:{}", uas.local_addr()));
    tweak(&mut config);
    let gateway = Gateway::start(config, Metrics::new()).await?;
    Ok((gateway, uas))
}

/// The echo's departures from a plain echo, set by field; the default
/// departs from nothing.
#[derive(Debug, Default)]
pub struct ScriptedEcho {
    /// Reject every INVITE with this final code (e.g. 486).
    pub reject: Option<u16>,
    /// Answer every re-INVITE and UPDATE with this code (501: a UA that
    /// takes none).
    pub refuse_reoffers: Option<u16>,
    /// Demand digest authentication first.
    pub challenge: Option<EchoChallenge>,
    /// Answer only with these codecs (encoding names).
    pub codecs: Option<Vec<String>>,
    /// Send BYE this long after answering.
    pub hangup_after: Option<Duration>,
    /// Ring this long before answering.
    pub ring_for: Option<Duration>,
    /// Ring with 183 and the answer SDP, echoing already (early media).
    pub early_media: bool,
    /// Take REFERs: 202, then a NOTIFY with each of these statuses; `None`
    /// refuses them (501).
    pub transfer: Option<Vec<u16>>,
    /// The Refer-To of each REFER received.
    pub referred: Mutex<Vec<String>>,
    /// Headers (name, value) on the 180 or 183 (History-Info, Diversion).
    pub ringing_headers: Vec<(String, String)>,
    /// Answer every INVITE with 302 and these Contacts while there are
    /// any; set at will (the targets' addresses are known once they run).
    pub redirect: Mutex<Vec<String>>,
    /// Answer OPTIONS with this code instead of 200 while it is not 0;
    /// changed at will (a trunk going down and coming back).
    pub options: AtomicU16,
    /// The INVITEs seen.
    pub seen: Seen,
}

/// The last INVITE a scripted echo received.
#[derive(Debug, Default)]
pub struct Seen(Mutex<Option<ReceivedInvite>>, AtomicUsize);

impl ScriptedEcho {
    /// The echo's behaviour with this script; use [`ScriptedEcho::install`]
    /// to read what it received afterwards.
    pub fn behavior(self) -> EchoBehavior {
        Arc::new(self).install()
    }

    /// The echo's behaviour with this script installed.
    pub fn install(self: &Arc<Self>) -> EchoBehavior {
        EchoBehavior {
            script: Some(self.clone()),
            ..EchoBehavior::default()
        }
    }

    /// The last INVITE received, if any.
    pub fn last_invite(&self) -> Option<ReceivedInvite> {
        self.seen.0.lock().ok().and_then(|g| g.clone())
    }

    /// How many INVITEs arrived.
    pub fn invites(&self) -> usize {
        self.seen.1.load(Ordering::Relaxed)
    }
}

impl EchoScript for ScriptedEcho {
    fn received(&self, invite: &ReceivedInvite) {
        if let Ok(mut last) = self.seen.0.lock() {
            *last = Some(invite.clone());
        }
        self.seen.1.fetch_add(1, Ordering::Relaxed);
    }

    fn challenge(&self) -> Option<&EchoChallenge> {
        self.challenge.as_ref()
    }

    fn reject(&self) -> Option<u16> {
        self.reject
    }

    fn codecs(&self) -> Option<&[String]> {
        self.codecs.as_deref()
    }

    fn early_media(&self) -> bool {
        self.early_media
    }

    fn ring_for(&self) -> Option<Duration> {
        self.ring_for
    }

    fn hangup_after(&self) -> Option<Duration> {
        self.hangup_after
    }

    fn refuse_reoffers(&self) -> Option<u16> {
        self.refuse_reoffers
    }

    fn refer(&self, refer_to: &str) -> Result<Vec<u16>, u16> {
        if let Ok(mut seen) = self.referred.lock() {
            seen.push(refer_to.to_owned());
        }
        self.transfer.clone().ok_or(501)
    }

    fn ringing_headers(&self) -> Vec<(String, String)> {
        self.ringing_headers.clone()
    }

    fn redirect(&self) -> Option<Vec<String>> {
        let contacts = self.redirect.lock().ok()?;
        (!contacts.is_empty()).then(|| contacts.clone())
    }

    fn options(&self) -> Option<u16> {
        Some(self.options.load(Ordering::Relaxed)).filter(|&code| code != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_answers_as_set_and_records_invites() {
        let script = Arc::new(ScriptedEcho {
            reject: Some(603),
            ring_for: Some(Duration::from_secs(2)),
            ..ScriptedEcho::default()
        });
        let behavior = script.install();
        let installed = behavior.script.expect("installed");
        assert_eq!(installed.reject(), Some(603));
        assert_eq!(installed.ring_for(), Some(Duration::from_secs(2)));
        assert!(!installed.early_media() && installed.codecs().is_none());
        assert!(script.last_invite().is_none());
        let invite = ReceivedInvite {
            sdp: "v=0".into(),
            headers: vec![("Via".into(), "SIP/2.0/UDP x".into())],
        };
        installed.received(&invite);
        assert_eq!(
            script.last_invite().unwrap().header("via"),
            Some("SIP/2.0/UDP x")
        );
    }
}
