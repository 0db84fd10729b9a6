//! The IO of the far end's transfer (its REFER): the referral waiting for
//! the machine, siphon's INVITE to the target in the background with its
//! progress NOTIFYed to the referrer, and the switch of the call onto the
//! target's dialog. What they mean is `call`'s (the answered call's
//! referral).

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::dialog::{Dialog, SipEvents};
use super::Inner;
use crate::call::{Event, SipInput};
use crate::sip::{self, DialogRef, ReferTarget, UacEvent, UacHandle};

/// How the target's INVITE ended: its final status and body (`None`:
/// nothing answered), and its dialog when answered.
type Placed = (Option<(u16, String)>, Option<Answered>);

/// The target's answered dialog.
type Answered = (UacHandle, mpsc::Receiver<UacEvent>);

/// The far end's REFERs on one call.
#[derive(Default)]
pub(super) struct Referrals {
    /// The REFER the machine is deciding on.
    pending: Option<Box<sip::Referral>>,
    /// The one being followed.
    following: Option<Following>,
}

/// A referral siphon took: its INVITE to the target, and what it came to.
struct Following {
    quiet: bool,
    /// siphon's INVITE, placed in the background.
    task: JoinHandle<()>,
    result: Option<oneshot::Receiver<Placed>>,
    /// The INVITE's handle, to hang up if the call ends first.
    uac: Option<UacHandle>,
    /// The target's dialog, once answered.
    answered: Option<Answered>,
}

impl Referrals {
    /// A REFER arrived: the machine hears its target.
    pub(super) fn received(&mut self, referral: Box<sip::Referral>) -> Event {
        let to = referral.target.uri.clone();
        self.pending = Some(referral);
        Event::Sip(SipInput::Referred(to))
    }

    /// Refuse the pending REFER.
    pub(super) async fn refuse(&mut self, code: u16, why: &str) {
        if let Some(referral) = self.pending.take() {
            tracing::info!(code, why, "REFER refused");
            referral.refuse(code, why).await;
        }
    }

    /// Take the pending REFER (202) and INVITE its target with `sdp` on
    /// behalf of `user`, NOTIFYing `referrer` of its progress.
    pub(super) async fn follow(&mut self, gw: &Inner, referrer: &Dialog, sdp: String, user: &str) {
        let Some(referral) = self.pending.take() else {
            return;
        };
        referral.accept().await;
        // An answered call always names its dialog; were it not to, the
        // transfer fails (no answer) instead of waiting for ever.
        let placed = match referrer.dialog_ref() {
            Some(old) => {
                let invite = invite(gw, &referral, &old, sdp, user);
                tracing::info!(to = %invite.target, "transferring the call at the far end's REFER");
                Some(gw.sip.invite(invite).await)
            }
            None => None,
        };
        let (tx, rx) = oneshot::channel();
        let quiet = referral.quiet;
        let notify = (!quiet).then(|| referrer.clone());
        let uac = placed.as_ref().and_then(|p| p.as_ref().ok());
        let uac = uac.map(|(uac, _)| uac.clone());
        let task = tokio::spawn(async move {
            let placed = match placed {
                Some(placed) => progress(placed, notify).await,
                None => (None, None),
            };
            let _ = tx.send(placed);
        });
        self.following = Some(Following {
            quiet,
            task,
            result: Some(rx),
            uac,
            answered: None,
        });
    }

    /// The target's final answer, as the machine hears it; pending while
    /// no INVITE is out.
    pub(super) async fn next(&mut self) -> Event {
        let rx = self.following.as_mut().and_then(|f| f.result.as_mut());
        let Some(rx) = rx else {
            return std::future::pending().await;
        };
        let (result, answered) = rx.await.unwrap_or((None, None));
        if let Some(f) = &mut self.following {
            f.result = None;
            f.answered = answered;
        }
        Event::Sip(SipInput::ReferralAnswered(result))
    }

    /// The transfer is over. `Ok`: the target's dialog becomes the call's
    /// (`dialog`), the referrer hears 200 and gets BYE; the new dialog's
    /// events are returned. `Err(code)`: the referrer hears `code` and the
    /// target's dialog, if any, is hung up.
    pub(super) fn end(
        &mut self,
        gw: &Inner,
        dialog: &mut Dialog,
        result: Result<(), u16>,
    ) -> Option<SipEvents> {
        let f = self.following.take()?;
        let (code, answered) = match (result, f.answered) {
            (Ok(()), Some((uac, events))) => {
                let old = std::mem::replace(dialog, Dialog::Uac(uac));
                // The NOTIFY first: after the BYE the dialog is gone.
                super::hangups::spawn(gw, async move {
                    if !f.quiet {
                        old.clone().notify_referrer(200).await;
                    }
                    old.hangup().await
                });
                tracing::info!("call transferred; BYE on the referrer's dialog");
                return Some(SipEvents::Uac(events));
            }
            (Ok(()), None) => (500, None),
            (Err(code), answered) => (code, answered),
        };
        tracing::info!(code, "the far end's transfer failed");
        if !f.quiet {
            let referrer = dialog.clone();
            tokio::spawn(async move { referrer.notify_referrer(code).await });
        }
        if let Some((uac, _)) = answered {
            super::hangups::spawn(gw, async move { uac.hangup().await });
        }
        None
    }
}

impl Drop for Referrals {
    /// The call ended while siphon called the target: that call goes too.
    fn drop(&mut self) {
        if let Some(f) = self.following.take() {
            f.task.abort();
            let uac = f.answered.map(|(uac, _)| uac).or(f.uac);
            if let Some(uac) = uac {
                tokio::spawn(async move { uac.hangup().await });
            }
        }
    }
}

/// Follow the target's INVITE to its final answer, NOTIFYing the referrer
/// (unless it asked for none) of 100 at once and of ringing.
async fn progress(
    placed: Result<(UacHandle, mpsc::Receiver<UacEvent>), sip::SipError>,
    referrer: Option<Dialog>,
) -> Placed {
    let notify = |code: u16| {
        let referrer = referrer.clone();
        async move {
            if let Some(d) = referrer {
                d.notify_referrer(code).await;
            }
        }
    };
    notify(100).await;
    let (uac, mut events) = match placed {
        Ok(placed) => placed,
        Err(e) => {
            tracing::info!(error = %e, "the transfer target cannot be called");
            return (Some((503, String::new())), None);
        }
    };
    let mut rang = false;
    while let Some(ev) = events.recv().await {
        match ev {
            UacEvent::Ringing | UacEvent::Progress { .. } if !rang => {
                rang = true;
                notify(180).await;
            }
            UacEvent::Answered { sdp } => return (Some((200, sdp)), Some((uac, events))),
            UacEvent::Failed { code, .. } => return (Some((code, String::new())), None),
            UacEvent::Ended { .. } | UacEvent::SessionExpired => break,
            _ => {}
        }
    }
    (None, None)
}

/// siphon's INVITE to the referral's target, on behalf of `user`.
fn invite(
    gw: &Inner,
    referral: &sip::Referral,
    referrer: &DialogRef,
    sdp: String,
    user: &str,
) -> sip::OutboundInvite {
    let target = target_uri(&referral.target, &referrer.remote_target);
    // A target on a trunk's host gets the trunk's identity and credentials.
    let host = sip::uri_host(&target).to_ascii_lowercase();
    let number = target.split_once(':').map_or("", |(_, r)| r);
    let number = number.split('@').next().unwrap_or_default();
    let trunk = (gw.trunks.hops(number, Some(user)).into_iter())
        .find(|hop| sip::uri_host(&hop.target).eq_ignore_ascii_case(&host));
    let (from_user, credentials) = match trunk {
        Some(hop) => (hop.from_user, hop.credentials),
        None => (user.to_owned(), None),
    };
    let mut headers = Vec::new();
    if let Some(by) = &referral.referred_by {
        headers.push(("Referred-By".to_owned(), by.clone()));
    }
    if let Some(replaces) = &referral.target.replaces {
        headers.push(("Replaces".to_owned(), replaces.clone()));
    }
    sip::OutboundInvite {
        target,
        from_user,
        from_display: None,
        sdp,
        credentials,
        log_id: referrer.call_id.clone(),
        failover: Vec::new(),
        response_wait: None,
        headers,
    }
}

/// The Request-URI for a Refer-To: a `tel:` number goes to the referrer's
/// host, and a URI on the referrer's host without a transport takes the
/// referrer's (a PBX reached over TCP expects its target over TCP too).
fn target_uri(target: &ReferTarget, referrer: &str) -> String {
    let referrer = referrer.trim_matches(['<', '>']);
    let host_part = referrer.split_once(':').map_or("", |(_, r)| r);
    let host_part = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
    let host_part = host_part.split('?').next().unwrap_or_default();
    let transport = host_part
        .split(';')
        .find(|p| p.to_ascii_lowercase().starts_with("transport="));
    let uri = match target.uri.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("tel") => {
            let number = rest.split(';').next().unwrap_or_default();
            let host = host_part.split(';').next().unwrap_or_default();
            format!("sip:{number}@{host}")
        }
        _ => target.uri.clone(),
    };
    let same_host = sip::uri_host(&uri).eq_ignore_ascii_case(sip::uri_host(referrer));
    let has_transport = uri.to_ascii_lowercase().contains(";transport=");
    match transport {
        Some(t) if same_host && !has_transport => format!("{uri};{t}"),
        _ => uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(uri: &str) -> ReferTarget {
        ReferTarget {
            uri: uri.into(),
            replaces: None,
        }
    }

    #[test]
    fn a_target_on_the_referrers_host_takes_its_transport_and_tel_goes_there() {
        let pbx = "sip:1000@10.0.0.5:5060;transport=tcp";
        for (referrer, target, uri) in [
            (
                pbx,
                "sip:2000@10.0.0.5:5060",
                "sip:2000@10.0.0.5:5060;transport=tcp",
            ),
            (
                pbx,
                "tel:+15551234;phone-context=x",
                "sip:+15551234@10.0.0.5:5060;transport=tcp",
            ),
            (
                pbx,
                "sip:2000@other.example.com",
                "sip:2000@other.example.com",
            ),
            (
                pbx,
                "sip:2000@10.0.0.5:5060;transport=udp",
                "sip:2000@10.0.0.5:5060;transport=udp",
            ),
            (
                "<sip:10.0.0.5:5060>",
                "sip:2000@10.0.0.5:5060",
                "sip:2000@10.0.0.5:5060",
            ),
        ] {
            assert_eq!(target_uri(&to(target), referrer), uri, "{target}");
        }
    }
}
