//! A call's record, gathered as the call goes: the driver shows it each
//! event the machine hears and each command it carries out, and the record
//! goes to `[records]` when the call ends. Written once for both directions.

use std::time::SystemTime;

use crate::call::{CallMachine, Command, Event, Outcome};
use crate::media::CallStats;
use crate::records::{CallEvent, CallRecord, Direction, EndedBy, Quality};
use crate::signaling::ServerMessage;

use super::Inner;

/// The record of one call in the making.
pub(crate) struct Facts {
    record: CallRecord,
    /// Where the event the machine is handling came from: the side that
    /// ended the call when that event finishes it.
    cause: EndedBy,
    /// The `hangup` reason the browser was given.
    reason: Option<String>,
}

impl Facts {
    /// A call from `from` to `to` begins; `user` is the browser user.
    pub(crate) fn start(
        gw: &Inner,
        call_id: &str,
        direction: Direction,
        (from, to): (&str, &str),
        user: Option<&str>,
    ) -> Facts {
        let mut record = gw.records.record(call_id, direction, SystemTime::now());
        record.from = from.to_owned();
        record.to = to.to_owned();
        record.user = user.map(str::to_owned);
        gw.records
            .event(CallEvent::Started, &record, record.started_at);
        Facts {
            record,
            cause: EndedBy::Gateway,
            reason: None,
        }
    }

    /// The record of an INVITE refused before it became a call (an unknown
    /// user, a call limit), written at once; no `call.started` event.
    pub(crate) fn refused_call(
        gw: &Inner,
        (direction, from, to): (Direction, &str, &str),
        outcome: &Outcome,
        reason: &str,
    ) {
        let id = crate::signaling::new_call_id();
        let mut record = gw.records.record(&id, direction, SystemTime::now());
        record.from = from.to_owned();
        record.to = to.to_owned();
        let facts = Facts {
            record,
            cause: EndedBy::Gateway,
            reason: Some(reason.to_owned()),
        };
        facts.ended(gw, outcome);
    }

    /// A record that goes nowhere: what is left behind once a call's
    /// record has been taken to be sent.
    pub(crate) fn none() -> Facts {
        Facts {
            record: CallRecord::default(),
            cause: EndedBy::Gateway,
            reason: None,
        }
    }

    /// The call was refused before it started, for `reason`.
    pub(crate) fn refused(&mut self, reason: &str) {
        self.reason = Some(reason.to_owned());
    }

    /// The machine is about to hear `event`.
    pub(crate) fn heard(&mut self, event: &Event) {
        self.cause = match event {
            Event::Client(..) => EndedBy::Browser,
            Event::Sip(..) => EndedBy::Sip,
            Event::Delivered(_)
            | Event::Media(_)
            | Event::RingTimeout
            | Event::TransferTimeout
            | Event::Shutdown => EndedBy::Gateway,
        };
    }

    /// The driver carries out `cmd`.
    pub(crate) fn saw(&mut self, gw: &Inner, cmd: &Command) {
        let now = SystemTime::now();
        let record = &mut self.record;
        match cmd {
            Command::SipRinging => {
                record.ringing_at.get_or_insert(now);
            }
            Command::Send(_, msg) => match msg {
                ServerMessage::Ringing { .. } | ServerMessage::Progress { .. } => {
                    record.ringing_at.get_or_insert(now);
                }
                ServerMessage::Answered { .. } => self.answered(gw, now),
                ServerMessage::Hangup { reason, .. } => {
                    self.reason.get_or_insert_with(|| reason.clone());
                }
                ServerMessage::Dtmf { .. } => record.dtmf += 1,
                _ => {}
            },
            // Inbound: the browser's `accept` becomes the 200.
            Command::Answer(_, accepted) => {
                record.legs.sip.peer = Some(accepted.media.remote_rtp.to_string());
                self.answered(gw, now);
            }
            Command::RelayDtmf(presses) => record.dtmf += presses.len() as u32,
            Command::SipInfo(digits) => record.dtmf += digits.len() as u32,
            Command::RestartIce(_) => record.ice_restarts += 1,
            Command::SipRefer(_) | Command::FollowReferral(_) => record.transfers += 1,
            Command::ConfigureMedia(media) => {
                record.legs.sip.peer = Some(media.remote_rtp.to_string());
            }
            Command::Finish(_) => self.record.end.by = self.cause,
            _ => {}
        }
    }

    fn answered(&mut self, gw: &Inner, now: SystemTime) {
        if self.record.answered_at.is_none() {
            self.record.answered_at = Some(now);
            gw.records.event(CallEvent::Answered, &self.record, now);
        }
    }

    /// What the session uses, read from `machine` whenever its `cmds`
    /// set the media up (the answer, a re-negotiation).
    pub(crate) fn session(&mut self, machine: &impl CallMachine, cmds: &[Command]) {
        let sets_media =
            |c: &Command| matches!(c, Command::ConfigureMedia(_) | Command::Answer(..));
        if !cmds.iter().any(sets_media) {
            return;
        }
        let Some(facts) = machine.session() else {
            return;
        };
        let legs = &mut self.record.legs;
        legs.webrtc.codec = facts.codec.clone();
        legs.webrtc.srtp = Some("DTLS-SRTP".to_owned());
        legs.sip.codec = facts.codec;
        legs.sip.srtp = facts.sip_srtp.map(str::to_owned);
    }

    /// The relay's counts and quality figures for the call as its leg was
    /// removed; the figures count once the call was answered.
    pub(crate) fn released(&mut self, gw: &Inner, stats: &CallStats) {
        let quality = &mut self.record.quality;
        quality.to_browser = Quality {
            packets: stats.to_webrtc_packets,
            ..Quality::default()
        };
        quality.to_sip = Quality {
            packets: stats.to_sip_packets,
            ..Quality::default()
        };
        if self.record.answered_at.is_some() {
            let codec = self.record.legs.sip.codec.as_deref().unwrap_or_default();
            super::quality::ended(gw, &stats.quality, codec, quality);
        }
    }

    /// The side that ended the call, once it has ended.
    pub(crate) fn ended_by(&self) -> &'static str {
        match self.record.end.by {
            EndedBy::Browser => "browser",
            EndedBy::Sip => "sip",
            EndedBy::Gateway => "gateway",
        }
    }

    /// The call ended with `outcome`: the record goes out.
    pub(crate) fn ended(mut self, gw: &Inner, outcome: &Outcome) {
        let record = &mut self.record;
        record.ended_at = SystemTime::now();
        record.end.code = outcome.code;
        record.end.outcome = outcome.label.to_owned();
        record.end.reason = self.reason.take().unwrap_or_else(|| outcome.label.into());
        gw.records.ended(record);
    }
}
