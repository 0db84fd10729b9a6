//! A browser's mid-call re-offer, the same way in both call directions: an
//! ICE restart (new ufrag/pwd) is absorbed on the WebRTC leg and answered
//! without touching SIP; anything else the session cannot absorb is refused
//! and the call goes on as it was.

use super::SessionError;
use crate::sdp::{self, Direction, ReAnswer, SdpError, Setup};
use crate::webrtc::IceRestart;

/// What siphon and the browser agreed on, as far as re-offers care.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// Siphon's last description to the browser.
    local_sdp: String,
    version: u64,
    /// siphon's DTLS role, stated in every re-answer.
    setup: Setup,
    /// Payload types to keep when `local_sdp` was an offer.
    keep_pts: Option<Vec<u8>>,
    remote_ufrag: String,
    remote_pwd: String,
    remote_fingerprint: String,
    remote_direction: Direction,
    mlines: usize,
}

/// Why a re-offer was not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It cannot be taken: the reason (for `error` `bad_sdp`).
    Bad(SessionError),
    /// The browser holds or resumes: the SIP side must agree first (a
    /// re-INVITE in this direction), then the offer is answered.
    Direction(Direction),
}

impl From<SessionError> for Refused {
    fn from(reason: SessionError) -> Self {
        Refused::Bad(reason)
    }
}

impl From<SdpError> for Refused {
    fn from(e: SdpError) -> Self {
        Refused::Bad(SessionError::Sdp(e))
    }
}

/// The outcome of an acceptable re-offer.
#[derive(Debug, Clone)]
pub struct Renegotiated {
    /// The `answer` to send.
    pub answer: String,
    /// The ICE restart to apply on the leg, when the credentials changed.
    pub restart: Option<IceRestart>,
}

/// What the browser's side of the session looked like when it was set up.
#[derive(Debug, Clone)]
pub struct Remote {
    /// ICE ufrag.
    pub ufrag: String,
    /// ICE pwd.
    pub pwd: String,
    /// DTLS certificate fingerprint.
    pub fingerprint: String,
    /// Media direction it stated.
    pub direction: Direction,
    /// Number of m-lines in the session.
    pub mlines: usize,
}

impl Negotiated {
    /// After siphon answered the browser's offer (browser -> SIP calls,
    /// where siphon is always the DTLS server).
    pub fn answered(local_answer: String, remote: Remote) -> Self {
        Negotiated::new(local_answer, Setup::Passive, None, remote)
    }

    /// After the browser answered siphon's offer (SIP -> browser calls):
    /// re-answers state siphon's DTLS role and the payload types kept.
    pub fn offered(local_offer: String, role: Setup, pts: Vec<u8>, remote: Remote) -> Self {
        Negotiated::new(local_offer, role, Some(pts), remote)
    }

    fn new(local: String, setup: Setup, keep: Option<Vec<u8>>, r: Remote) -> Self {
        Negotiated {
            local_sdp: local,
            version: 1,
            setup,
            keep_pts: keep,
            remote_ufrag: r.ufrag,
            remote_pwd: r.pwd,
            remote_fingerprint: r.fingerprint,
            remote_direction: r.direction,
            mlines: r.mlines,
        }
    }

    /// Answer the re-offer `sdp`; `fresh_ice` gives new local credentials if
    /// it restarts ICE. `Err` is the reason it is refused (nothing changed).
    /// A change of the browser's direction is `Refused::Direction` unless
    /// `agreed` (the SIP side took it), when the answer mirrors it.
    pub fn on_offer(
        &mut self,
        sdp: &str,
        fresh_ice: impl FnOnce() -> (String, String),
        agreed: bool,
    ) -> Result<Renegotiated, Refused> {
        let offer = sdp::parse_webrtc_offer(sdp)?;
        if !offer
            .fingerprint
            .value
            .eq_ignore_ascii_case(&self.remote_fingerprint)
        {
            return Err(SessionError::OfferFingerprint.into());
        }
        if offer.mlines.len() != self.mlines {
            return Err(SessionError::Mlines.into());
        }
        let turned = offer.direction != self.remote_direction;
        if turned && !agreed {
            return Err(Refused::Direction(offer.direction));
        }
        let restarts = offer.ice.ufrag != self.remote_ufrag || offer.ice.pwd != self.remote_pwd;
        let ice = restarts.then(fresh_ice);
        let edit = ReAnswer {
            version: self.version + 1,
            ice: ice.clone(),
            setup: Some(self.setup),
            keep_pts: self.keep_pts.clone(),
            direction: turned.then(|| offer.direction.reverse()),
            crypto: None,
        };
        let answer = sdp::build_reanswer(&self.local_sdp, &edit)?;
        self.version += 1;
        self.remote_direction = offer.direction;
        // What siphon states is an answer again (after an offer of its own).
        self.local_sdp = answer.clone();
        let restart = ice.map(|(local_ufrag, local_pwd)| IceRestart {
            local_ufrag,
            local_pwd,
            remote_ufrag: offer.ice.ufrag.clone(),
            remote_pwd: offer.ice.pwd.clone(),
        });
        if restart.is_some() {
            self.remote_ufrag = offer.ice.ufrag;
            self.remote_pwd = offer.ice.pwd;
        }
        Ok(Renegotiated { answer, restart })
    }

    /// siphon's own re-offer to the browser (the SIP side put the call on
    /// hold or took it off): the session as it is, in `direction`.
    pub fn offer(&mut self, direction: Direction) -> Result<String, SdpError> {
        let edit = ReAnswer {
            version: self.version + 1,
            setup: Some(Setup::ActPass),
            keep_pts: self.keep_pts.clone(),
            direction: Some(direction),
            ice: None,
            crypto: None,
        };
        let offer = sdp::build_reanswer(&self.local_sdp, &edit)?;
        self.version += 1;
        self.local_sdp = offer.clone();
        Ok(offer)
    }

    /// The browser's answer to siphon's re-offer: same certificate and
    /// credentials; its direction is the session's now.
    pub fn on_answer(&mut self, sdp: &str) -> Result<(), SessionError> {
        let answer = sdp::parse_webrtc_session(sdp)?;
        if !answer
            .fingerprint
            .eq_ignore_ascii_case(&self.remote_fingerprint)
        {
            return Err(SessionError::AnswerFingerprint);
        }
        if answer.ufrag != self.remote_ufrag {
            return Err(SessionError::AnswerIce);
        }
        // The answer's direction is siphon's offer narrowed, not the
        // browser's own wish: that is what its offers say.
        Ok(())
    }
}
