//! The browser -> SIP call: a state machine that takes events (SIP responses,
//! client messages, media events, timers) and returns commands for the
//! driver to carry out. No IO, no clock: `now` is passed in.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::leg::{sip_media, LocalWebRtc};
use crate::media::SipMedia;
use crate::sdp::{self, SdpError, SipOfferPlan, WebRtcOffer};
use crate::signaling::ServerMessage;

/// What the driver allocated and configured before the call starts.
#[derive(Debug, Clone)]
pub struct OutboundParams {
    /// The call id known to the client.
    pub call_id: String,
    /// The browser's SDP offer.
    pub offer_sdp: String,
    /// SIP-side codecs in preference order.
    pub sip_codecs: Vec<String>,
    /// The public address of the call's RTP port.
    pub rtp_addr: SocketAddr,
    /// Our side of the WebRTC leg.
    pub local: LocalWebRtc,
}

/// Inputs from the SIP leg.
#[derive(Debug, Clone, PartialEq)]
pub enum SipEvent {
    /// 180 (or 183 without SDP).
    Ringing,
    /// 183 with SDP.
    Progress(String),
    /// 200 with SDP.
    Answered(String),
    /// A final failure.
    Failed(u16, String),
    /// The dialog ended (BYE); `by_remote` when the far end hung up.
    Ended {
        /// The far end sent the BYE.
        by_remote: bool,
    },
}

/// Inputs from the media plane.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaSignal {
    /// The WebRTC leg is connected and keyed.
    Connected,
    /// Consent checks stopped arriving.
    ConsentExpired,
    /// The browser closed its DTLS transport.
    Closed,
    /// DTLS or fingerprint failure.
    Failed(String),
    /// A side sent no media for `limits.media_timeout_secs`; the reason
    /// names it.
    Timeout(String),
}

/// How a call ended, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A metric label: answered, cancelled, rejected, timeout, no_codec, error.
    pub label: &'static str,
    /// The SIP code reported to the client.
    pub code: u16,
    /// Time to answer, when answered.
    pub setup: Option<Duration>,
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a message to the client.
    Send(ServerMessage),
    /// Program the relay with the SIP side's media.
    ConfigureMedia(Box<SipMedia>),
    /// CANCEL or BYE the SIP leg.
    SipHangup,
    /// Release everything; the call is over.
    Finish(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Inviting,
    Early,
    Answered,
    Ended,
}

/// One browser -> SIP call.
#[derive(Debug)]
pub struct OutboundCall {
    params: OutboundParams,
    offer: WebRtcOffer,
    plan: SipOfferPlan,
    state: State,
    rang: bool,
    started: Instant,
    answered_at: Option<Instant>,
}

/// The call could not start: the `hangup` code and reason to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// SIP-style code (488 for SDP problems).
    pub code: u16,
    /// Explanation.
    pub reason: String,
}

impl OutboundCall {
    /// Translate the browser offer; returns the call and the SIP offer SDP.
    pub fn start(params: OutboundParams, now: Instant) -> Result<(Self, String), StartError> {
        let not_acceptable = |e: SdpError| StartError {
            code: 488,
            reason: e.to_string(),
        };
        let offer = sdp::parse_webrtc_offer(&params.offer_sdp).map_err(not_acceptable)?;
        let sip_params = sdp::SipOfferParams {
            rtp_addr: params.rtp_addr,
            session_id: params.local.session_id,
            session_version: 1,
        };
        let (sip_offer, plan) = sdp::build_sip_offer(&offer, &params.sip_codecs, &sip_params)
            .map_err(not_acceptable)?;
        let call = OutboundCall {
            params,
            offer,
            plan,
            state: State::Inviting,
            rang: false,
            started: now,
            answered_at: None,
        };
        Ok((call, sip_offer))
    }

    /// The client's call id.
    pub fn call_id(&self) -> &str {
        &self.params.call_id
    }

    /// The browser's ICE credentials and DTLS fingerprint: (ufrag, pwd, fingerprint).
    pub fn remote_ice(&self) -> (String, String, String) {
        let o = &self.offer;
        (
            o.ice.ufrag.clone(),
            o.ice.pwd.clone(),
            o.fingerprint.value.clone(),
        )
    }

    /// Whether the call was answered.
    pub fn is_answered(&self) -> bool {
        self.state == State::Answered
    }

    /// The INVITE went out.
    pub fn on_invite_sent(&self) -> Vec<Command> {
        vec![Command::Send(ServerMessage::Trying {
            call_id: self.call_id().to_owned(),
        })]
    }

    /// A SIP event.
    pub fn on_sip(&mut self, event: SipEvent, now: Instant) -> Vec<Command> {
        if self.state == State::Ended {
            return Vec::new();
        }
        match event {
            SipEvent::Ringing => self.ringing(),
            SipEvent::Progress(sdp) => self.early_media(&sdp),
            SipEvent::Answered(sdp) => self.answered(&sdp, now),
            SipEvent::Failed(code, reason) => {
                let label = if code == 408 { "timeout" } else { "rejected" };
                self.finish(label, code, reason, false)
            }
            SipEvent::Ended { by_remote } => {
                let reason = if by_remote { "Remote hangup" } else { "Hangup" };
                self.finish(self.ended_label(), 200, reason.into(), false)
            }
        }
    }

    /// The client sent `hangup`.
    pub fn on_client_hangup(&mut self) -> Vec<Command> {
        if self.state == State::Ended {
            return Vec::new();
        }
        if self.state == State::Answered {
            self.finish("answered", 200, "Local hangup".into(), true)
        } else {
            self.finish("cancelled", 487, "Request Terminated".into(), true)
        }
    }

    /// The client's socket went away: end the call on the SIP side too.
    pub fn on_client_gone(&mut self) -> Vec<Command> {
        let mut cmds = self.on_client_hangup();
        cmds.retain(|c| !matches!(c, Command::Send(_)));
        cmds
    }

    /// No final answer within the ring timeout.
    pub fn on_ring_timeout(&mut self) -> Vec<Command> {
        match self.state {
            State::Inviting | State::Early => {
                self.finish("timeout", 408, "Request Timeout".into(), true)
            }
            _ => Vec::new(),
        }
    }

    /// A media event.
    pub fn on_media(&mut self, signal: MediaSignal) -> Vec<Command> {
        match signal {
            MediaSignal::Connected => Vec::new(),
            MediaSignal::ConsentExpired => {
                let label = self.ended_label();
                self.finish(
                    label,
                    408,
                    "Media timeout: ICE consent expired".into(),
                    true,
                )
            }
            MediaSignal::Closed => {
                let label = self.ended_label();
                self.finish(label, 200, "WebRTC transport closed".into(), true)
            }
            MediaSignal::Failed(reason) => {
                self.finish("error", 500, format!("WebRTC media failed: {reason}"), true)
            }
            MediaSignal::Timeout(reason) => {
                let label = self.ended_label();
                self.finish(label, 408, reason, true)
            }
        }
    }

    fn ringing(&mut self) -> Vec<Command> {
        if self.rang || self.state != State::Inviting {
            return Vec::new();
        }
        self.rang = true;
        vec![Command::Send(ServerMessage::Ringing {
            call_id: self.call_id().to_owned(),
        })]
    }

    fn early_media(&mut self, sdp: &str) -> Vec<Command> {
        if self.state != State::Inviting {
            return Vec::new();
        }
        match self.translate_answer(sdp) {
            Ok((media, answer)) => {
                self.state = State::Early;
                let call_id = self.call_id().to_owned();
                vec![
                    Command::ConfigureMedia(Box::new(media)),
                    Command::Send(ServerMessage::Progress {
                        call_id,
                        sdp: answer,
                    }),
                ]
            }
            // Early media is optional: a bad 183 SDP is not worth the call.
            Err(_) => self.ringing(),
        }
    }

    fn answered(&mut self, sdp: &str, now: Instant) -> Vec<Command> {
        match self.translate_answer(sdp) {
            Ok((media, answer)) => {
                self.state = State::Answered;
                self.answered_at = Some(now);
                let call_id = self.call_id().to_owned();
                vec![
                    Command::ConfigureMedia(Box::new(media)),
                    Command::Send(ServerMessage::Answered {
                        call_id,
                        sdp: answer,
                    }),
                ]
            }
            Err(e) => self.finish("no_codec", 488, e.to_string(), true),
        }
    }

    fn translate_answer(&self, sdp: &str) -> Result<(SipMedia, String), SdpError> {
        let answer = sdp::parse_sip_answer(sdp, &self.plan)?;
        let webrtc_params = self.params.local.sdp_params();
        let webrtc_answer = sdp::build_webrtc_answer(&self.offer, &answer, &webrtc_params)?;
        let map = sdp::media_map(&self.offer, &answer);
        let media = sip_media(&map, answer.rtp_addr, answer.rtcp_mux);
        Ok((media, webrtc_answer))
    }

    fn ended_label(&self) -> &'static str {
        if self.state == State::Answered {
            "answered"
        } else {
            "cancelled"
        }
    }

    fn finish(
        &mut self,
        label: &'static str,
        code: u16,
        reason: String,
        hangup_sip: bool,
    ) -> Vec<Command> {
        self.state = State::Ended;
        let setup = self
            .answered_at
            .map(|t| t.saturating_duration_since(self.started));
        let mut cmds = Vec::with_capacity(3);
        if hangup_sip {
            cmds.push(Command::SipHangup);
        }
        cmds.push(Command::Send(ServerMessage::hangup(
            self.call_id(),
            code,
            reason,
        )));
        cmds.push(Command::Finish(Outcome { label, code, setup }));
        cmds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::fixtures::{ASTERISK_ANSWER, CHROME_OFFER, FREESWITCH_ANSWER};

    fn params(offer: &str) -> OutboundParams {
        OutboundParams {
            call_id: "c1".into(),
            offer_sdp: offer.into(),
            sip_codecs: vec!["opus".into(), "PCMU".into(), "PCMA".into()],
            rtp_addr: "192.0.2.10:20000".parse().unwrap(),
            local: LocalWebRtc {
                ice_ufrag: "ufrag123".into(),
                ice_pwd: "pwd4567890123456789012345".into(),
                fingerprint: "AB:CD".into(),
                candidate: "192.0.2.10:10000".parse().unwrap(),
                ssrc: 42,
                session_id: 7,
            },
        }
    }

    fn start(offer: &str) -> (OutboundCall, String, Instant) {
        let now = Instant::now();
        let (call, sip) = OutboundCall::start(params(offer), now).unwrap();
        (call, sip, now)
    }

    fn sent(cmds: &[Command]) -> Vec<ServerMessage> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::Send(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn outcome(cmds: &[Command]) -> Option<Outcome> {
        cmds.iter().find_map(|c| match c {
            Command::Finish(o) => Some(o.clone()),
            _ => None,
        })
    }

    #[test]
    fn answered_call_configures_media_and_answers_the_browser() {
        let (mut call, sip_offer, t0) = start(CHROME_OFFER);
        assert!(sip_offer.contains("RTP/AVP"));
        assert!(matches!(
            &sent(&call.on_invite_sent())[..],
            [ServerMessage::Trying { .. }]
        ));
        assert!(matches!(
            &sent(&call.on_sip(SipEvent::Ringing, t0))[..],
            [ServerMessage::Ringing { .. }]
        ));
        assert!(
            call.on_sip(SipEvent::Ringing, t0).is_empty(),
            "ringing is sent once"
        );
        let t1 = t0 + Duration::from_millis(1500);
        let cmds = call.on_sip(SipEvent::Answered(ASTERISK_ANSWER.into()), t1);
        let media = cmds.iter().find_map(|c| match c {
            Command::ConfigureMedia(m) => Some((**m).clone()),
            _ => None,
        });
        let media = media.expect("media configured");
        // Asterisk answers PCMU (0) and telephone-event 101; Chrome uses 0 and 126.
        assert_eq!(media.to_sip.get(0), Some(0));
        assert_eq!(media.to_webrtc.get(101), Some(126));
        assert_eq!(media.ts_step, 160);
        let ServerMessage::Answered { sdp, .. } = &sent(&cmds)[0] else {
            panic!("expected answered");
        };
        assert!(sdp.contains("a=ice-ufrag:ufrag123") && sdp.contains("a=setup:passive"));
        assert!(call.is_answered());
        let end = call.on_sip(SipEvent::Ended { by_remote: true }, t1);
        let o = outcome(&end).unwrap();
        assert_eq!((o.label, o.code), ("answered", 200));
        assert_eq!(o.setup, Some(Duration::from_millis(1500)));
        assert!(!end.iter().any(|c| matches!(c, Command::SipHangup)));
        assert!(call.on_client_hangup().is_empty(), "nothing after the end");
    }

    #[test]
    fn opus_answer_maps_renumbered_payload_types() {
        let (mut call, _, t0) = start(CHROME_OFFER);
        let cmds = call.on_sip(SipEvent::Answered(FREESWITCH_ANSWER.into()), t0);
        let Some(Command::ConfigureMedia(m)) = cmds.first() else {
            panic!("expected media first: {cmds:?}");
        };
        assert_eq!(m.to_sip.get(111), Some(102));
        assert_eq!(m.to_webrtc.get(102), Some(111));
        assert_eq!(m.ts_step, 960);
    }

    #[test]
    fn failure_and_client_hangup_map_to_hangup_codes() {
        let (mut call, _, t0) = start(CHROME_OFFER);
        let cmds = call.on_sip(SipEvent::Failed(486, "Busy Here".into()), t0);
        assert_eq!(
            sent(&cmds),
            vec![ServerMessage::hangup("c1", 486, "Busy Here")]
        );
        assert_eq!(outcome(&cmds).unwrap().label, "rejected");

        let (mut call, _, _) = start(CHROME_OFFER);
        let cmds = call.on_client_hangup();
        assert!(matches!(cmds[0], Command::SipHangup));
        assert_eq!(
            sent(&cmds),
            vec![ServerMessage::hangup("c1", 487, "Request Terminated")]
        );

        let (mut call, _, _) = start(CHROME_OFFER);
        let cmds = call.on_ring_timeout();
        assert_eq!(outcome(&cmds).unwrap().code, 408);
        assert!(call.on_ring_timeout().is_empty());
    }

    #[test]
    fn no_common_codec_refuses_with_488_naming_both_sides() {
        let mut p = params(CHROME_OFFER);
        p.sip_codecs = vec!["G722".into()];
        p.offer_sdp = CHROME_OFFER
            .replace(" 63 9 0", " 63 0")
            .replace("a=rtpmap:9 G722/8000\r\n", "");
        let err = OutboundCall::start(p, Instant::now()).unwrap_err();
        assert_eq!(err.code, 488);
        assert!(
            err.reason.contains("opus") && err.reason.contains("G722"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn unusable_answer_ends_the_call_with_488_and_bye() {
        let (mut call, _, t0) = start(CHROME_OFFER);
        let cmds = call.on_sip(SipEvent::Answered("v=0\r\ngarbage".into()), t0);
        assert!(matches!(cmds[0], Command::SipHangup));
        assert_eq!(outcome(&cmds).unwrap().code, 488);
    }

    #[test]
    fn consent_loss_and_media_failure_end_the_call() {
        let (mut call, _, t0) = start(CHROME_OFFER);
        call.on_sip(SipEvent::Answered(ASTERISK_ANSWER.into()), t0);
        let cmds = call.on_media(MediaSignal::ConsentExpired);
        assert!(matches!(cmds[0], Command::SipHangup));
        assert_eq!(outcome(&cmds).unwrap().code, 408);

        let (mut call, _, t0) = start(CHROME_OFFER);
        call.on_sip(SipEvent::Answered(ASTERISK_ANSWER.into()), t0);
        let reason = "Media timeout: no media from the SIP peer";
        let cmds = call.on_media(MediaSignal::Timeout(reason.into()));
        assert!(matches!(cmds[0], Command::SipHangup));
        assert_eq!(outcome(&cmds).unwrap().code, 408);
        let told = cmds.iter().any(|c| {
            matches!(c, Command::Send(ServerMessage::Hangup { code: 408, reason: r, .. }) if r == reason)
        });
        assert!(told, "{cmds:?}");
    }

    #[test]
    fn early_media_then_answer() {
        let (mut call, _, t0) = start(CHROME_OFFER);
        let cmds = call.on_sip(SipEvent::Progress(ASTERISK_ANSWER.into()), t0);
        assert!(matches!(&sent(&cmds)[..], [ServerMessage::Progress { .. }]));
        let cmds = call.on_sip(SipEvent::Answered(ASTERISK_ANSWER.into()), t0);
        assert!(matches!(&sent(&cmds)[..], [ServerMessage::Answered { .. }]));
    }
}
