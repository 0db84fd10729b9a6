//! One rsipstack dialog-state channel for every outbound call, routed to
//! the calls by Call-ID.
//!
//! rsipstack reports a dialog's states on an unbounded tokio channel of
//! `DialogState`, and such a channel holds a block of 32 slots from the
//! start: about 10 KB for each call, which sees a handful of states in its
//! life. One shared channel pays for that block once; each call gets a
//! channel of boxed states, whose slots are pointers.

use std::collections::VecDeque;
use std::sync::Arc;

use dashmap::DashMap;
use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use rsipstack::dialog::DialogId;
use tokio::sync::mpsc;

type Route = mpsc::UnboundedSender<Box<DialogState>>;
type Routes = Arc<DashMap<String, Route>>;

/// The local tag of [`CallStates::flush`]'s marker; rsipstack's tags are
/// alphanumeric, so no dialog has it.
const FLUSH_TAG: &str = "siphon-flush";

/// The shared channel and its routes.
pub(super) struct DialogStates {
    tx: DialogStateSender,
    routes: Routes,
}

impl DialogStates {
    /// Starts the router; it runs until every dialog and this are gone.
    pub(super) fn start() -> DialogStates {
        let (tx, mut rx) = mpsc::unbounded_channel::<DialogState>();
        let routes: Routes = Arc::default();
        let table = routes.clone();
        tokio::spawn(async move {
            while let Some(st) = rx.recv().await {
                let route = table.get(&st.id().call_id).map(|r| r.clone());
                // A state of a call that is gone has no one to hear it.
                if let Some(route) = route {
                    let _ = route.send(Box::new(st));
                }
            }
        });
        DialogStates { tx, routes }
    }

    /// The sender to hand rsipstack for `call_id`'s next INVITE, and where
    /// its states arrive. A newer INVITE with the same Call-ID takes the
    /// route over.
    pub(super) fn open(&self, call_id: &str) -> (DialogStateSender, CallStates) {
        let (route, rx) = mpsc::unbounded_channel();
        self.routes.insert(call_id.to_owned(), route.clone());
        let states = CallStates {
            call_id: call_id.to_owned(),
            local_tag: None,
            rx,
            route,
            routes: self.routes.clone(),
            shared: self.tx.clone(),
            flushed: VecDeque::new(),
        };
        (self.tx.clone(), states)
    }
}

/// One INVITE's dialog states, in the order rsipstack sent them.
pub(super) struct CallStates {
    call_id: String,
    /// Set once the dialog exists: states of an earlier INVITE with the
    /// same Call-ID (a digest retry) are not this one's.
    local_tag: Option<String>,
    rx: mpsc::UnboundedReceiver<Box<DialogState>>,
    route: Route,
    routes: Routes,
    shared: DialogStateSender,
    /// States that came in while waiting for a flush marker.
    flushed: VecDeque<Box<DialogState>>,
}

impl CallStates {
    /// Only states of the dialog with this local tag pass from now on.
    pub(super) fn bind(&mut self, dialog: &DialogId) {
        self.local_tag = Some(dialog.local_tag.clone());
    }

    /// The next state; `None` if the router is gone. Boxed, as it came:
    /// a state is 304 bytes, and a call's future holds one while it waits.
    pub(super) async fn recv(&mut self) -> Option<Box<DialogState>> {
        if let Some(st) = self.pop_flushed() {
            return Some(st);
        }
        loop {
            let st = self.rx.recv().await?;
            if self.is_ours(&st) {
                return Some(st);
            }
        }
    }

    /// A state already here, without waiting.
    pub(super) fn try_recv(&mut self) -> Option<Box<DialogState>> {
        if let Some(st) = self.pop_flushed() {
            return Some(st);
        }
        while let Ok(st) = self.rx.try_recv() {
            if self.is_ours(&st) {
                return Some(st);
            }
        }
        None
    }

    /// Waits until every state rsipstack sent before this call has been
    /// routed here, so that `try_recv` sees them all.
    pub(super) async fn flush(&mut self) {
        let marker = DialogId {
            call_id: self.call_id.clone(),
            local_tag: FLUSH_TAG.to_owned(),
            remote_tag: String::new(),
        };
        if self.shared.send(DialogState::Calling(marker)).is_err() {
            return;
        }
        while let Some(st) = self.rx.recv().await {
            if st.id().local_tag == FLUSH_TAG {
                return;
            }
            if self.is_ours(&st) {
                self.flushed.push_back(st);
            }
        }
    }

    fn pop_flushed(&mut self) -> Option<Box<DialogState>> {
        let st = self.flushed.pop_front()?;
        if self.flushed.is_empty() {
            // A flush happens once per INVITE: its buffer is not needed again.
            self.flushed = VecDeque::new();
        }
        Some(st)
    }

    fn is_ours(&self, st: &DialogState) -> bool {
        let tag = &st.id().local_tag;
        tag != FLUSH_TAG && self.local_tag.as_ref().is_none_or(|t| t == tag)
    }
}

impl Drop for CallStates {
    fn drop(&mut self) {
        self.routes
            .remove_if(&self.call_id, |_, r| r.same_channel(&self.route));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(call_id: &str, local_tag: &str) -> DialogId {
        DialogId {
            call_id: call_id.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: String::new(),
        }
    }

    fn calling(call_id: &str, local_tag: &str) -> DialogState {
        DialogState::Calling(id(call_id, local_tag))
    }

    #[tokio::test]
    async fn each_call_hears_only_its_own_dialog() {
        let states = DialogStates::start();
        let (tx, mut a) = states.open("call-a");
        let (_, mut b) = states.open("call-b");
        tx.send(calling("call-b", "t1")).unwrap();
        tx.send(calling("call-a", "t2")).unwrap();
        tx.send(calling("nobody", "t3")).unwrap();
        assert_eq!(a.recv().await.unwrap().id(), &id("call-a", "t2"));
        assert_eq!(b.recv().await.unwrap().id(), &id("call-b", "t1"));
        a.flush().await;
        assert!(a.try_recv().is_none(), "nothing else was for call-a");
    }

    #[tokio::test]
    async fn a_bound_call_ignores_an_earlier_invite_with_its_call_id() {
        let states = DialogStates::start();
        let (tx, mut call) = states.open("retry");
        call.bind(&id("retry", "second"));
        // A digest retry reuses the Call-ID; the first INVITE's dialog ends late.
        tx.send(calling("retry", "first")).unwrap();
        tx.send(calling("retry", "second")).unwrap();
        assert_eq!(call.recv().await.unwrap().id(), &id("retry", "second"));
    }

    #[tokio::test]
    async fn flush_makes_every_state_sent_before_it_ready_in_order() {
        let states = DialogStates::start();
        let (tx, mut call) = states.open("c");
        for tag in ["1", "2", "3"] {
            tx.send(calling("c", tag)).unwrap();
        }
        call.flush().await;
        for tag in ["1", "2", "3"] {
            assert_eq!(call.try_recv().unwrap().id(), &id("c", tag));
        }
        assert!(
            call.try_recv().is_none(),
            "the marker itself is not a state"
        );
    }

    #[tokio::test]
    async fn a_finished_call_leaves_no_route_and_a_newer_invite_keeps_its_own() {
        let states = DialogStates::start();
        let (_, old) = states.open("same");
        let (tx, mut new) = states.open("same");
        drop(old);
        assert_eq!(states.routes.len(), 1, "the newer INVITE's route stays");
        tx.send(calling("same", "n")).unwrap();
        assert_eq!(new.recv().await.unwrap().id(), &id("same", "n"));
        drop(new);
        assert!(states.routes.is_empty());
    }
}
