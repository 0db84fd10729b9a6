//! Answered calls whose WebSocket was lost wait `limits.reconnect_grace_secs`
//! for a new socket of the same user to `resume` them; media keeps flowing
//! meanwhile. Each call keeps its own deadline (a `select!` branch of its
//! driver), so a waiting call costs no timer task.

use tokio::time::Instant;

use super::Inner;
use crate::signaling::{ClientControl, ClientEvent, ErrorCode, Refusal, ResumeLink};

/// Calls waiting for a `resume`, by (user, call id).
pub(crate) type Detached = dashmap::DashMap<(String, String), ClientControl>;

/// Hand a waiting call to the session of `link` (the `resume` message).
pub(super) fn resume(
    gw: &Inner,
    user: &str,
    call_id: &str,
    link: ResumeLink,
) -> Result<ClientControl, Refusal> {
    let key = (user.to_owned(), call_id.to_owned());
    let waiting = gw.detached.remove(&key).map(|(_, control)| control);
    let resumed = waiting.filter(|control| {
        let session = link.session;
        control.send((session, ClientEvent::Resumed(link))).is_ok()
    });
    match resumed {
        Some(control) => {
            gw.metrics
                .reconnects_total
                .with_label_values(&["resumed"])
                .inc();
            Ok(control)
        }
        None => Err(Refusal {
            call_id: Some(call_id.to_owned()),
            code: ErrorCode::UnknownCall,
            message: format!("no call {call_id} of {user} is waiting to be resumed"),
        }),
    }
}

/// One call's side of the grace period.
pub(super) struct Grace {
    key: Option<(String, String)>,
    deadline: Option<Instant>,
}

impl Grace {
    /// For a call of `user` (none: anonymous, cannot be resumed).
    pub(super) fn new(user: Option<String>, call_id: &str) -> Self {
        Grace {
            key: user.map(|u| (u, call_id.to_owned())),
            deadline: None,
        }
    }

    /// The socket was lost: start waiting. False when the call cannot wait
    /// (anonymous user, or no grace configured): end it now.
    pub(super) fn start(&mut self, gw: &Inner, control: &ClientControl) -> bool {
        let grace = gw.config.limits.reconnect_grace();
        let Some(key) = self.key.clone().filter(|_| !grace.is_zero()) else {
            return false;
        };
        gw.detached.insert(key, control.clone());
        self.deadline = Some(Instant::now() + grace);
        tracing::info!(
            grace_secs = grace.as_secs(),
            "signaling lost; call waits for a resume"
        );
        true
    }

    /// Whether the call is waiting.
    pub(super) fn waiting(&self) -> bool {
        self.deadline.is_some()
    }

    /// Completes when the grace period is over (never while not waiting).
    pub(super) async fn expired(&self) {
        match self.deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }

    /// The grace ran out: true to end the call; false when a `resume` took
    /// it at the last moment (its `Resumed` event is on the way).
    pub(super) fn give_up(&mut self, gw: &Inner) -> bool {
        self.deadline = None;
        let unclaimed = self.key.as_ref().and_then(|k| gw.detached.remove(k));
        if unclaimed.is_some() {
            gw.metrics
                .reconnects_total
                .with_label_values(&["expired"])
                .inc();
            tracing::info!("no resume within the grace period; ending the call");
        }
        unclaimed.is_some()
    }

    /// A new socket took the call back.
    pub(super) fn resumed(&mut self) {
        self.deadline = None;
    }

    /// The call ended: it can no longer be resumed.
    pub(super) fn forget(&self, gw: &Inner) {
        if let Some(k) = &self.key {
            gw.detached.remove(k);
        }
    }
}
