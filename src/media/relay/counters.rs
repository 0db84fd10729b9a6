//! Plain per-loop and per-call counters, flushed to Prometheus now and then
//! so a relayed packet costs an add to a local integer, not an atomic.

use prometheus::{Histogram, IntCounter};

use super::batch::Faults;
use super::liveness::SilentSide;
use super::sip_srtp::SipDrop;
use crate::media::quality::QualitySnapshot;
use crate::metrics::{flow, Metrics};
use crate::webrtc::DropReason;

/// Why the relay dropped a packet (beyond the WebRTC engine's own reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayDrop {
    /// Not a valid RTP/RTCP packet after decryption, or on the SIP port.
    Malformed,
    /// A payload type the other side did not negotiate.
    UnknownPayloadType,
    /// From a source other than the latched SIP peer.
    UnlatchedSource,
    /// The call's SIP side has no answer yet.
    NotConfigured,
    /// The WebRTC leg is not connected yet.
    WebRtcNotReady,
    /// The socket refused the send.
    SendFailed,
    /// RTP toward a side on hold that does not receive (sendonly, inactive).
    Held,
    /// Larger than a receive buffer: the kernel cut it, so it is dropped whole.
    Oversize,
}

impl RelayDrop {
    const ALL: [RelayDrop; 8] = [
        RelayDrop::Malformed,
        RelayDrop::UnknownPayloadType,
        RelayDrop::UnlatchedSource,
        RelayDrop::NotConfigured,
        RelayDrop::WebRtcNotReady,
        RelayDrop::SendFailed,
        RelayDrop::Held,
        RelayDrop::Oversize,
    ];

    fn as_str(self) -> &'static str {
        match self {
            RelayDrop::Malformed => "malformed",
            RelayDrop::UnknownPayloadType => "unknown_payload_type",
            RelayDrop::UnlatchedSource => "unlatched_source",
            RelayDrop::NotConfigured => "not_configured",
            RelayDrop::WebRtcNotReady => "webrtc_not_ready",
            RelayDrop::SendFailed => "send_failed",
            RelayDrop::Held => "held",
            RelayDrop::Oversize => "oversize",
        }
    }
}

/// Per-call media figures, returned when the call leaves its loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// RTP+RTCP packets relayed browser -> SIP.
    pub to_sip_packets: u64,
    /// RTP+RTCP packets relayed SIP -> browser.
    pub to_webrtc_packets: u64,
    /// Packets of this call that were dropped.
    pub dropped: u64,
    /// Loss, jitter and round trips each way.
    pub quality: QualitySnapshot,
}

/// One flow's pending counts.
#[derive(Default)]
struct FlowCounts {
    rtp: u64,
    rtcp: u64,
    bytes: u64,
}

/// Resolved Prometheus handles for one flow.
struct FlowHandles {
    rtp: IntCounter,
    rtcp: IntCounter,
    bytes: IntCounter,
}

impl FlowHandles {
    fn new(m: &Metrics, name: &str) -> Self {
        FlowHandles {
            rtp: m.media_packets_total.with_label_values(&[name, "rtp"]),
            rtcp: m.media_packets_total.with_label_values(&[name, "rtcp"]),
            bytes: m.media_bytes_total.with_label_values(&[name]),
        }
    }
}

/// The loop's counters and the handles they flush into.
pub(super) struct Counters {
    to_sip: FlowCounts,
    to_webrtc: FlowCounts,
    webrtc_drops: [u64; DropReason::COUNT],
    relay_drops: [u64; RelayDrop::ALL.len()],
    sip_drops: [u64; SipDrop::ALL.len()],
    wakeups: u64,
    wakeups_h: IntCounter,
    /// Receive errors: ICMP-caused, other.
    recv_faults: [u64; 2],
    recv_faults_h: [IntCounter; 2],
    /// DTLS handshakes by outcome: ok, failed (rare: counted at once).
    pub(super) handshakes_h: [IntCounter; 2],
    to_sip_h: FlowHandles,
    to_webrtc_h: FlowHandles,
    webrtc_drop_h: Vec<IntCounter>,
    relay_drop_h: Vec<IntCounter>,
    sip_drop_h: Vec<IntCounter>,
    pub(super) relay_seconds: Histogram,
    timeouts_h: [IntCounter; 2],
    pub(super) disconnects_h: IntCounter,
    pub(super) consent_expiries_h: IntCounter,
}

impl Counters {
    pub(super) fn new(m: &Metrics) -> Self {
        let drop =
            |side: &str, reason: &str| m.media_dropped_total.with_label_values(&[side, reason]);
        Counters {
            to_sip: FlowCounts::default(),
            to_webrtc: FlowCounts::default(),
            webrtc_drops: [0; DropReason::COUNT],
            relay_drops: [0; RelayDrop::ALL.len()],
            sip_drops: [0; SipDrop::ALL.len()],
            wakeups: 0,
            wakeups_h: m.relay_wakeups_total.clone(),
            recv_faults: [0; 2],
            recv_faults_h: ["icmp", "other"]
                .map(|kind| m.relay_receive_errors_total.with_label_values(&[kind])),
            handshakes_h: ["ok", "failed"]
                .map(|outcome| m.dtls_handshakes_total.with_label_values(&[outcome])),
            to_sip_h: FlowHandles::new(m, flow::WEBRTC_TO_SIP),
            to_webrtc_h: FlowHandles::new(m, flow::SIP_TO_WEBRTC),
            webrtc_drop_h: DropReason::ALL
                .iter()
                .map(|r| drop("webrtc", r.as_str()))
                .collect(),
            relay_drop_h: RelayDrop::ALL
                .iter()
                .map(|r| drop("relay", r.as_str()))
                .collect(),
            sip_drop_h: SipDrop::ALL
                .iter()
                .map(|r| drop("sip", r.as_str()))
                .collect(),
            relay_seconds: m.relay_seconds.clone(),
            timeouts_h: [SilentSide::WebRtc, SilentSide::Sip]
                .map(|side| m.media_timeouts_total.with_label_values(&[side.as_str()])),
            disconnects_h: m.ice_disconnects_total.clone(),
            consent_expiries_h: m.ice_consent_expiries_total.clone(),
        }
    }

    /// A call's media timed out (rare: counted at once).
    pub(super) fn media_timeout(&self, side: SilentSide) {
        self.timeouts_h[side as usize].inc();
    }

    /// One packet relayed browser -> SIP.
    pub(super) fn relayed_to_sip(&mut self, rtcp: bool, bytes: usize) {
        count(&mut self.to_sip, rtcp, bytes);
    }

    /// One packet relayed SIP -> browser.
    pub(super) fn relayed_to_webrtc(&mut self, rtcp: bool, bytes: usize) {
        count(&mut self.to_webrtc, rtcp, bytes);
    }

    /// One return from the poller.
    pub(super) fn wakeup(&mut self) {
        self.wakeups += 1;
    }

    /// What one drain's receive errors were.
    pub(super) fn recv_faults(&mut self, f: Faults) {
        self.recv_faults[0] += u64::from(f.icmp);
        self.recv_faults[1] += u64::from(f.other);
    }

    pub(super) fn webrtc_drop(&mut self, reason: DropReason) {
        self.webrtc_drops[reason as usize] += 1;
    }

    pub(super) fn relay_drop(&mut self, reason: RelayDrop) {
        self.relay_drops[reason as usize] += 1;
    }

    pub(super) fn sip_drop(&mut self, reason: SipDrop) {
        self.sip_drops[reason as usize] += 1;
    }

    /// Move pending counts into Prometheus.
    pub(super) fn flush(&mut self) {
        flush_flow(&mut self.to_sip, &self.to_sip_h);
        flush_flow(&mut self.to_webrtc, &self.to_webrtc_h);
        flush_array(&mut self.webrtc_drops, &self.webrtc_drop_h);
        flush_array(&mut self.relay_drops, &self.relay_drop_h);
        flush_array(&mut self.sip_drops, &self.sip_drop_h);
        flush_array(&mut self.recv_faults, &self.recv_faults_h);
        self.wakeups_h.inc_by(std::mem::take(&mut self.wakeups));
    }
}

fn count(f: &mut FlowCounts, rtcp: bool, bytes: usize) {
    if rtcp {
        f.rtcp += 1;
    } else {
        f.rtp += 1;
    }
    f.bytes += bytes as u64;
}

fn flush_flow(f: &mut FlowCounts, h: &FlowHandles) {
    h.rtp.inc_by(std::mem::take(&mut f.rtp));
    h.rtcp.inc_by(std::mem::take(&mut f.rtcp));
    h.bytes.inc_by(std::mem::take(&mut f.bytes));
}

fn flush_array(pending: &mut [u64], handles: &[IntCounter]) {
    for (n, h) in pending.iter_mut().zip(handles) {
        h.inc_by(std::mem::take(n));
    }
}
