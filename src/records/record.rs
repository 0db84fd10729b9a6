//! One call's record: what the call driver knows when the call ends.
//!
//! Plain values with public fields, filled as the call goes; times are
//! `SystemTime`s the caller read (this module never reads the clock). The
//! JSON form (schema 1, times as RFC 3339, setup and duration worked out
//! from the times) is in `wire`, and docs/records.md documents it.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The record of one call, written once as the call ends.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The call's `call_id` as the browser knows it (its own outbound, siphon's inbound).
    pub id: String,
    /// The siphon instance that carried the call (`cluster.instance` or the host name).
    pub instance: String,
    /// Who called whom: a browser (`outbound`) or a SIP peer (`inbound`).
    pub direction: Direction,
    /// The caller: a SIP URI or a browser user.
    pub from: String,
    /// The callee: what was dialled, or the browser user rung.
    pub to: String,
    /// The browser user on the call, when known.
    pub user: Option<String>,
    /// When the call began: the browser's `call` or the INVITE.
    pub started_at: SystemTime,
    /// When it first rang (180/183 outbound, the browser rung inbound).
    pub ringing_at: Option<SystemTime>,
    /// When it was answered.
    pub answered_at: Option<SystemTime>,
    /// When it ended.
    pub ended_at: SystemTime,
    /// How it ended.
    pub end: End,
    /// What each leg used.
    pub legs: Legs,
    /// Media quality in each direction.
    pub quality: QualityPair,
    /// ICE restarts the browser made.
    pub ice_restarts: u32,
    /// Key presses relayed, both ways.
    pub dtmf: u32,
    /// Transfers (REFER) on the call.
    pub transfers: u32,
}

impl CallRecord {
    /// A record of call `id` that began at `started_at`, every other fact
    /// empty; `ended_at` is `started_at` until set.
    pub fn new(id: impl Into<String>, direction: Direction, started_at: SystemTime) -> Self {
        Self {
            id: id.into(),
            instance: String::new(),
            direction,
            from: String::new(),
            to: String::new(),
            user: None,
            started_at,
            ringing_at: None,
            answered_at: None,
            ended_at: started_at,
            end: End::default(),
            legs: Legs::default(),
            quality: QualityPair::default(),
            ice_restarts: 0,
            dtmf: 0,
            transfers: 0,
        }
    }

    /// Start to answer; `None` when never answered.
    pub fn setup(&self) -> Option<Duration> {
        let answered = self.answered_at?;
        Some(answered.duration_since(self.started_at).unwrap_or_default())
    }

    /// Answer to end; zero when never answered.
    pub fn duration(&self) -> Duration {
        self.answered_at
            .and_then(|answered| self.ended_at.duration_since(answered).ok())
            .unwrap_or_default()
    }
}

/// An empty outbound record of a call at the Unix epoch: for tests and
/// struct-update syntax; a real record comes from [`CallRecord::new`].
impl Default for CallRecord {
    fn default() -> Self {
        Self::new(String::new(), Direction::Outbound, SystemTime::UNIX_EPOCH)
    }
}

/// A webhook event sent as a call progresses (with `records.events`); the
/// record itself goes out as `call.ended` from [`crate::records::Records::ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    /// `call.started`: the call began.
    Started,
    /// `call.answered`: the call was answered.
    Answered,
}

impl CallEvent {
    /// The event's name in the webhook body.
    pub fn name(self) -> &'static str {
        match self {
            CallEvent::Started => "call.started",
            CallEvent::Answered => "call.answered",
        }
    }
}

/// Which side placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A browser called a SIP destination.
    #[default]
    Outbound,
    /// A SIP peer called a browser user.
    Inbound,
}

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndedBy {
    /// The browser hung up, rejected or went away.
    Browser,
    /// The SIP side hung up, rejected or cancelled.
    Sip,
    /// siphon ended it: a timeout, a limit, a failure, a shutdown.
    #[default]
    Gateway,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct End {
    /// The SIP status the call ended with (200 for a normal hang-up after an answer).
    pub code: u16,
    /// The reason in words ("Busy Here", "Normal clearing").
    pub reason: String,
    /// Which side ended it.
    pub by: EndedBy,
    /// The outcome label of `siphon_calls_total` (answered, cancelled, rejected, ...).
    pub outcome: String,
}

/// What each leg of the call used.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Legs {
    /// The browser's leg.
    pub webrtc: WebRtcLeg,
    /// The SIP leg.
    pub sip: SipLeg,
}

/// The browser's leg.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WebRtcLeg {
    /// The codec ("opus", "PCMU", ...), when negotiated.
    pub codec: Option<String>,
    /// The SRTP profile keyed by DTLS, when keyed.
    pub srtp: Option<String>,
}

/// The SIP leg.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SipLeg {
    /// The codec, when negotiated.
    pub codec: Option<String>,
    /// The SDES suite, when the leg was SRTP.
    pub srtp: Option<String>,
    /// The peer's media address (`ip:port`), when known.
    pub peer: Option<String>,
}

/// Media quality, one figure set per direction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QualityPair {
    /// What the browser received (SIP to WebRTC).
    pub to_browser: Quality,
    /// What the SIP side received (WebRTC to SIP).
    pub to_sip: Quality,
}

/// Media quality in one direction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quality {
    /// RTP and RTCP packets relayed.
    pub packets: u64,
    /// Packets lost (siphon's count or the receiver's report, the larger),
    /// once answered media came this way.
    pub lost: Option<u64>,
    /// Interarrival jitter (RFC 3550), in milliseconds, when measured.
    pub jitter_ms: Option<f64>,
    /// Round trip of the leg this media goes out on (RTCP), in
    /// milliseconds, when measured.
    pub rtt_ms: Option<f64>,
    /// Estimated mean opinion score (E-model, 1 to 4.5), when worked out.
    pub mos: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn setup_and_duration_come_from_the_times() {
        let mut record = CallRecord::new("c1", Direction::Inbound, at(1_000));
        record.ended_at = at(9_000);
        assert_eq!(record.setup(), None);
        assert_eq!(record.duration(), Duration::ZERO);
        record.answered_at = Some(at(3_500));
        assert_eq!(record.setup(), Some(Duration::from_millis(2_500)));
        assert_eq!(record.duration(), Duration::from_millis(5_500));
    }

    #[test]
    fn times_out_of_order_give_zero_not_a_panic() {
        let mut record = CallRecord::new("c1", Direction::Outbound, at(5_000));
        record.answered_at = Some(at(4_000));
        record.ended_at = at(3_000);
        assert_eq!(record.setup(), Some(Duration::ZERO));
        assert_eq!(record.duration(), Duration::ZERO);
    }
}
