//! The IO of a browser's transfer: where its REFER points (a number routed
//! like a `call`'s `to`, or the far end of another call with a Replaces),
//! the REFER sent in the background, and its answer and NOTIFY deadline
//! heard as the call's events. What they mean is `call::transfer`'s.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dialog::Dialog;
use super::Inner;
use crate::call::transfer::NOTIFY_WAIT;
use crate::call::{Event, RouteError, SipInput};
use crate::signaling::{ClientEvent, DialogReply, OtherCall, SessionId};

/// How long the other call of an attended transfer may take to name its
/// dialog: it answers from its own event loop, at once unless busy.
const DIALOG_WAIT: Duration = Duration::from_secs(2);

/// Where REFERs report their final status (`None`: no answer).
type Answers = (
    mpsc::UnboundedSender<Option<u16>>,
    mpsc::UnboundedReceiver<Option<u16>>,
);

/// siphon's REFERs on one call. The channel is made at the first: most
/// calls are never transferred.
#[derive(Default)]
pub(super) struct Refers {
    channel: Option<Answers>,
    /// When the transfer fails unless a NOTIFY came.
    deadline: Option<Instant>,
}

impl Refers {
    /// Send REFER with `refer_to` on `dialog`, in the background.
    pub(super) fn send(&mut self, dialog: Dialog, refer_to: String) {
        let (tx, _) = self.channel.get_or_insert_with(mpsc::unbounded_channel);
        let tx = tx.clone();
        self.deadline = Some(Instant::now() + NOTIFY_WAIT);
        tokio::spawn(async move {
            let _ = tx.send(dialog.refer(&refer_to).await);
        });
    }

    /// The next REFER answer or NOTIFY deadline, as the machine hears it;
    /// pending while there is none.
    pub(super) async fn next(&mut self) -> Event {
        let deadline = self.deadline;
        let answer = async {
            match &mut self.channel {
                Some((_, rx)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(code) = answer => Event::Sip(SipInput::ReferAnswered(code)),
            () = timeout => {
                self.deadline = None;
                Event::TransferTimeout
            }
        }
    }
}

/// The Refer-To of a browser's transfer of the call on `dialog`: blind to
/// `to`, or attended to the far end of `replaces`; `Err` is why there is
/// none (for `transfer_failed`).
pub(super) async fn refer_to(
    gw: &Inner,
    dialog: &Dialog,
    session: SessionId,
    (to, replaces): (Option<String>, Option<OtherCall>),
) -> Result<String, String> {
    if let Some(other) = replaces {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let asked = other
            .0
            .send((session, ClientEvent::DialogRef(DialogReply(tx))));
        let answer = tokio::time::timeout(DIALOG_WAIT, rx.recv()).await;
        return match (asked, answer) {
            (Ok(()), Ok(Some(Some(dialog)))) => Ok(dialog.replaces_target()),
            (Ok(()), Ok(Some(None))) => Err("the other call is not answered".into()),
            _ => Err("the other call has ended".into()),
        };
    }
    let to = to.unwrap_or_default();
    match crate::call::resolve(&to, &gw.route) {
        Ok(target) => Ok(target.uri),
        // No trunk: the number is the far end's to route, on its own host.
        Err(RouteError::NoTrunk(user)) => match dialog.dialog_ref() {
            Some(d) => Ok(format!(
                "sip:{user}@{}",
                crate::sip::uri_host(&d.remote_target)
            )),
            None => Err("the call is not answered".into()),
        },
        Err(e) => Err(e.to_string()),
    }
}
