//! A transfer the browser asked for, blind or attended: siphon's REFER on
//! the call's SIP dialog and the NOTIFYs that report on it (RFC 3515), as
//! `transfer_progress`, `transfer_failed`, or the call's end once the
//! transfer target answered. The same for both directions.

use super::machine::{Command, Ending};
use crate::signaling::{ServerMessage, SessionId};

/// How long siphon waits for the first NOTIFY after its REFER before the
/// transfer counts as failed (64 T1, like a transaction's own timeout).
pub const NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(32);

/// Where a transfer stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// None under way.
    #[default]
    Idle,
    /// The REFER went out; no NOTIFY yet.
    Referred,
    /// A NOTIFY came: the target is being called.
    Notified,
}

/// What a transfer event leads to.
#[derive(Debug)]
pub(super) enum TransferStep {
    /// Tell the browser, or do nothing.
    Commands(Vec<Command>),
    /// The target answered: the call ends, transferred.
    Done(Vec<Command>, Ending),
}

impl Transfer {
    /// The browser asked to transfer the call to `target` (the Refer-To),
    /// or to somewhere siphon cannot route (`Err`: why).
    pub(super) fn start(
        &mut self,
        call: (&str, SessionId),
        target: Result<String, String>,
    ) -> Vec<Command> {
        if *self != Transfer::Idle {
            let why = "a transfer is already under way";
            return vec![failed(call, 491, why)];
        }
        match target {
            Ok(refer_to) => {
                *self = Transfer::Referred;
                vec![Command::SipRefer(refer_to)]
            }
            Err(why) => vec![failed(call, 404, &why)],
        }
    }

    /// The REFER's final status (`None`: no answer).
    pub(super) fn refer_answered(
        &mut self,
        call: (&str, SessionId),
        code: Option<u16>,
    ) -> Vec<Command> {
        match code {
            _ if *self == Transfer::Idle => Vec::new(),
            Some(200..=299) => Vec::new(),
            Some(code) => {
                *self = Transfer::Idle;
                vec![failed(call, code, "the far end refused the transfer")]
            }
            None => {
                *self = Transfer::Idle;
                vec![failed(call, 408, "the far end did not answer the REFER")]
            }
        }
    }

    /// A NOTIFY with the transfer target's status `code`.
    pub(super) fn notified(
        &mut self,
        call: (&str, SessionId),
        code: u16,
        last: bool,
    ) -> TransferStep {
        if *self == Transfer::Idle {
            return TransferStep::Commands(Vec::new());
        }
        let (call_id, owner) = call;
        let progress = Command::Send(
            owner,
            ServerMessage::TransferProgress {
                call_id: call_id.to_owned(),
                code,
            },
        );
        match code {
            200..=299 => {
                *self = Transfer::Idle;
                let ending = Ending::new(200, "Transferred", "transferred", true);
                TransferStep::Done(vec![progress], ending)
            }
            100..=199 if !last => {
                *self = Transfer::Notified;
                TransferStep::Commands(vec![progress])
            }
            _ => {
                *self = Transfer::Idle;
                let why = "the transfer target did not answer";
                TransferStep::Commands(vec![progress, failed(call, code, why)])
            }
        }
    }

    /// `NOTIFY_WAIT` passed since the REFER.
    pub(super) fn timed_out(&mut self, call: (&str, SessionId)) -> Vec<Command> {
        if *self != Transfer::Referred {
            return Vec::new();
        }
        *self = Transfer::Idle;
        vec![failed(call, 408, "no NOTIFY came within 32 s of the REFER")]
    }
}

/// `transfer_failed` to the browser.
pub(super) fn failed((call_id, owner): (&str, SessionId), code: u16, reason: &str) -> Command {
    Command::Send(
        owner,
        ServerMessage::TransferFailed {
            call_id: call_id.to_owned(),
            code,
            reason: reason.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: (&str, SessionId) = ("c1", 7);

    fn sent(cmds: &[Command]) -> Vec<&ServerMessage> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::Send(7, m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn failed_code(cmds: &[Command]) -> Option<u16> {
        sent(cmds).into_iter().find_map(|m| match m {
            ServerMessage::TransferFailed { code, .. } => Some(*code),
            _ => None,
        })
    }

    #[test]
    fn a_transfer_refers_reports_progress_and_ends_the_call_once_answered() {
        let mut t = Transfer::default();
        let cmds = t.start(CALL, Ok("<sip:1000@pbx>".into()));
        assert!(matches!(&cmds[..], [Command::SipRefer(to)] if to == "<sip:1000@pbx>"));
        assert!(t.refer_answered(CALL, Some(202)).is_empty());
        let TransferStep::Commands(cmds) = t.notified(CALL, 100, false) else {
            panic!("trying ends nothing")
        };
        assert!(matches!(
            sent(&cmds)[..],
            [ServerMessage::TransferProgress { code: 100, .. }]
        ));
        assert!(t.timed_out(CALL).is_empty(), "a NOTIFY came in time");
        let TransferStep::Done(cmds, ending) = t.notified(CALL, 200, true) else {
            panic!("200 ends the call")
        };
        assert_eq!(sent(&cmds).len(), 1);
        assert_eq!(
            (ending.code, ending.reason.as_str(), ending.bye),
            (200, "Transferred", true)
        );
        assert_eq!(t, Transfer::Idle);
    }

    #[test]
    fn every_failure_is_told_and_the_call_goes_on() {
        let mut t = Transfer::default();
        t.start(CALL, Ok("sip:x@y".into()));
        assert_eq!(failed_code(&t.refer_answered(CALL, Some(403))), Some(403));
        t.start(CALL, Ok("sip:x@y".into()));
        assert_eq!(failed_code(&t.refer_answered(CALL, None)), Some(408));
        t.start(CALL, Ok("sip:x@y".into()));
        t.refer_answered(CALL, Some(202));
        let TransferStep::Commands(cmds) = t.notified(CALL, 486, true) else {
            panic!("a failure ends nothing")
        };
        assert_eq!(failed_code(&cmds), Some(486));
        t.start(CALL, Ok("sip:x@y".into()));
        assert_eq!(failed_code(&t.timed_out(CALL)), Some(408));
        assert_eq!(
            failed_code(&t.start(CALL, Err("no route".into()))),
            Some(404)
        );
        assert_eq!(t, Transfer::Idle);
    }

    #[test]
    fn one_transfer_at_a_time_and_stray_reports_are_ignored() {
        let mut t = Transfer::default();
        assert!(t.refer_answered(CALL, Some(202)).is_empty());
        assert!(matches!(t.notified(CALL, 200, true), TransferStep::Commands(c) if c.is_empty()));
        t.start(CALL, Ok("sip:x@y".into()));
        assert_eq!(failed_code(&t.start(CALL, Ok("sip:z@y".into()))), Some(491));
        assert_eq!(t, Transfer::Referred);
    }
}
