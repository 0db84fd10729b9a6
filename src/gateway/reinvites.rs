//! Where siphon's own re-INVITEs report their final answers to the call.

use tokio::sync::mpsc;

/// A re-INVITE's final status and SDP; `None` when it got no final answer.
pub(super) type Answer = Option<(u16, String)>;

/// The channel is made at the first re-INVITE: most calls never send one,
/// and even an idle channel holds a block of slots.
#[derive(Default)]
pub(super) struct ReinviteAnswers {
    channel: Option<(
        mpsc::UnboundedSender<Answer>,
        mpsc::UnboundedReceiver<Answer>,
    )>,
}

impl ReinviteAnswers {
    /// Where a re-INVITE about to go out reports.
    pub(super) fn sender(&mut self) -> mpsc::UnboundedSender<Answer> {
        let (tx, _) = self.channel.get_or_insert_with(mpsc::unbounded_channel);
        tx.clone()
    }

    /// The next answer; pending until a re-INVITE went out.
    pub(super) async fn recv(&mut self) -> Option<Answer> {
        match &mut self.channel {
            Some((_, rx)) => rx.recv().await,
            None => std::future::pending().await,
        }
    }
}
