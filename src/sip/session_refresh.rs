//! Running RFC 4028 session timers on one dialog: the state its handle and
//! its task share, the refreshes siphon sends, and the watch that ends a
//! session whose peer stopped refreshing.
//!
//! Any 2xx to a re-INVITE or UPDATE, from either side, refreshes the
//! session. siphon refreshes with a body-less UPDATE when the peer allows
//! UPDATE (no offer/answer to disturb), else with a re-INVITE repeating the
//! last SDP siphon sent, which RFC 3264 section 8 makes a no-change offer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus::IntCounterVec;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, Response};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use super::session_timer::{self, Ask, Refresher, Timer};
use crate::metrics::Metrics;

/// Session-timer state of one dialog; its handle and its task share it.
pub(super) struct SessionTimers {
    state: Mutex<State>,
    changed: Notify,
    events: IntCounterVec,
}

#[derive(Default)]
struct State {
    timer: Option<Timer>,
    /// When siphon next refreshes, or gives up on the peer's refresh.
    due: Option<Instant>,
    /// The SDP siphon last sent (offer or answer) on this dialog.
    local_sdp: Option<String>,
    /// The peer lists UPDATE in Allow (until it refuses one).
    peer_update: bool,
}

/// How one refresh ended.
#[derive(Debug, PartialEq, Eq)]
enum Refresh {
    Done,
    /// 408, 481 or no answer: the dialog is gone (RFC 4028 section 10).
    Gone,
    /// Try again after this long (491, or another refusal).
    Retry(Duration),
}

impl SessionTimers {
    /// State for a dialog whose first SDP from siphon is `local_sdp`.
    pub(super) fn new(local_sdp: Option<String>, peer_update: bool, m: &Metrics) -> Arc<Self> {
        Arc::new(SessionTimers {
            state: Mutex::new(State {
                local_sdp,
                peer_update,
                ..State::default()
            }),
            changed: Notify::new(),
            events: m.session_timer_events_total.clone(),
        })
    }

    fn count(&self, event: &str) {
        self.events.with_label_values(&[event]).inc();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain values, valid even after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The timer in force, if any.
    pub(super) fn timer(&self) -> Option<Timer> {
        self.lock().timer
    }

    /// A 2xx set, refreshed or (with `None`) cleared the timer.
    pub(super) fn refreshed(&self, timer: Option<Timer>) {
        {
            let mut s = self.lock();
            s.timer = timer;
            s.due = timer.map(|t| Instant::now() + session_timer::deadline(t));
        }
        self.changed.notify_one();
    }

    /// siphon sent `sdp` in an offer or answer that the peer took.
    pub(super) fn sent_sdp(&self, sdp: &str) {
        self.lock().local_sdp = Some(sdp.to_string());
    }

    /// Headers for a request siphon sends on this dialog (re-INVITE, UPDATE).
    pub(super) fn request_headers(&self) -> Vec<Header> {
        session_timer::in_request(self.timer())
    }

    /// The peer answered siphon's re-INVITE or UPDATE with `resp`.
    pub(super) fn answered(&self, resp: &Response, sdp: Option<&str>) {
        if (200..300).contains(&resp.status_code.code()) {
            if let Some(sdp) = sdp {
                self.sent_sdp(sdp);
            }
            self.refreshed(session_timer::from_answer(resp));
        }
    }

    fn retry_in(&self, wait: Duration) {
        self.lock().due = Some(Instant::now() + wait);
    }

    fn no_update(&self) {
        self.lock().peer_update = false;
    }

    /// A 422 asked for at least `min_se` seconds.
    fn raise_to(&self, min_se: Option<u32>) {
        let mut s = self.lock();
        if let (Some(t), Some(min)) = (s.timer.as_mut(), min_se) {
            t.interval = t.interval.max(min);
        }
    }

    /// What siphon answers to the peer's re-INVITE or UPDATE: 422 for an
    /// interval below Min-SE, else the timer a 2xx would run and its
    /// headers. Without Session-Expires the running timer carries on.
    pub(super) fn on_peer_request(&self, req: &Request) -> PeerRefresh {
        if self.timer().is_some() {
            self.count("refresh_received");
        }
        let timer = match session_timer::ask(req) {
            Ask::TooSmall => return PeerRefresh::TooSmall,
            Ask::Run(t) => Some(t),
            Ask::None => self.timer(),
        };
        PeerRefresh::Accept {
            timer,
            headers: timer.map(session_timer::accepted).unwrap_or_default(),
        }
    }
}

/// The answer to a peer's request that may refresh the session.
pub(super) enum PeerRefresh {
    /// 422 with Min-SE.
    TooSmall,
    /// A 2xx carrying `headers` runs `timer`.
    Accept {
        /// The timer from the 2xx on.
        timer: Option<Timer>,
        /// Session-Expires (and Require) for the 2xx.
        headers: Vec<Header>,
    },
}

fn min_se(resp: &Response) -> Option<u32> {
    resp.headers.iter().find_map(|h| match h {
        Header::MinSE(v) => v.value().split(';').next()?.trim().parse().ok(),
        _ => None,
    })
}

/// Runs the dialog's refreshes and resolves when the session is over: the
/// peer stopped refreshing, or siphon's refresh found the dialog gone.
/// Dropping the future (a `select!` taking another branch) loses nothing.
pub(super) struct Watch {
    timers: Arc<SessionTimers>,
    running: Option<JoinHandle<Refresh>>,
}

impl Watch {
    pub(super) fn new(timers: Arc<SessionTimers>) -> Self {
        Watch {
            timers,
            running: None,
        }
    }

    /// Wait until the session has expired (then send BYE).
    pub(super) async fn expired(&mut self, dialog: &InviteDialog) {
        loop {
            if let Some(running) = &mut self.running {
                let outcome = running.await.unwrap_or(Refresh::Gone);
                self.running = None;
                match outcome {
                    Refresh::Done => self.timers.count("refresh_sent"),
                    Refresh::Gone => {
                        self.timers.count("refresh_failed");
                        return;
                    }
                    Refresh::Retry(wait) => {
                        self.timers.count("refresh_failed");
                        self.timers.retry_in(wait);
                    }
                }
                continue;
            }
            let changed = self.timers.changed.notified();
            let (timer, due) = {
                let s = self.timers.lock();
                (s.timer, s.due)
            };
            let (Some(timer), Some(due)) = (timer, due) else {
                changed.await;
                continue;
            };
            tokio::select! {
                _ = changed => continue,
                _ = tokio::time::sleep_until(due) => {}
            }
            match timer.refresher {
                Refresher::Them => {
                    debug!("session timer expired without a refresh");
                    self.timers.count("expired");
                    return;
                }
                Refresher::Us => {
                    let task = refresh(dialog.clone(), self.timers.clone());
                    self.running = Some(tokio::spawn(task));
                }
            }
        }
    }
}

/// Send one refresh and apply its answer.
async fn refresh(dialog: InviteDialog, timers: Arc<SessionTimers>) -> Refresh {
    let (update, sdp, interval) = {
        let s = timers.lock();
        let interval = s.timer.map_or(session_timer::MIN_SE, |t| t.interval);
        (s.peer_update, s.local_sdp.clone(), interval)
    };
    let mut headers = timers.request_headers();
    let sent = if update || sdp.is_none() {
        dialog.update(Some(headers), None).await
    } else {
        headers.push(Header::ContentType("application/sdp".into()));
        let body = sdp.clone().map(String::into_bytes);
        dialog.reinvite(Some(headers), body).await
    };
    let resp = match sent {
        Ok(Some(resp)) => resp,
        Ok(None) | Err(_) => return Refresh::Gone,
    };
    let code = resp.status_code.code();
    debug!(code, update, "session refresh answered");
    match code {
        200..=299 => {
            timers.answered(&resp, None);
            Refresh::Done
        }
        408 | 481 => Refresh::Gone,
        405 | 501 if update => {
            timers.no_update();
            Refresh::Retry(Duration::ZERO)
        }
        422 => {
            timers.raise_to(min_se(&resp));
            Refresh::Retry(Duration::ZERO)
        }
        491 => Refresh::Retry(super::reoffer::glare_backoff()),
        // The session goes on; try again while the peer still waits.
        _ => Refresh::Retry(Duration::from_secs(u64::from(interval / 8).max(5))),
    }
}
