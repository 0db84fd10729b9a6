//! Upstream registration of configured users (`register = true`). A
//! registration follows the user's presence, the model of Janus's SIP plugin:
//! REGISTER when the user's first session opens, unregister a grace period
//! after the last one closes; `keep_registered` users stay registered from
//! start to shutdown. Every state change is told to the user's sessions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Inner;
use crate::config::UserConfig;
use crate::signaling::{ServerMessage, SessionLink};
use crate::sip::{Registration, RegistrationSpec, RegistrationState};

/// Configured users' registrations, by user name.
#[derive(Default)]
pub(crate) struct Registrations {
    live: std::sync::Mutex<HashMap<String, Slot>>,
}

enum Slot {
    /// Registered or trying to be.
    Live(Registration),
    /// The Expires: 0 exchange is under way; a new session waits for it,
    /// lest the old unregister remove the new binding.
    Leaving,
}

impl Registrations {
    /// Start the registrations that do not wait for a session.
    pub(crate) fn start_kept(gw: &Arc<Inner>) {
        for user in gw
            .config
            .users
            .iter()
            .filter(|u| u.register && u.keep_registered)
        {
            start(gw, user);
        }
    }

    /// Whether `user` registers from the configuration.
    pub(crate) fn configured(gw: &Inner, user: &str) -> bool {
        gw.config.user(user).is_some_and(|u| u.register)
    }

    /// A session of `link.user` opened: register the user if it is not yet,
    /// or tell the session where the registration stands.
    pub(crate) fn session_opened(gw: &Arc<Inner>, link: &SessionLink) {
        let Some(user) = gw.config.user(&link.user).filter(|u| u.register) else {
            return;
        };
        let live = lock(&gw.registrations.live);
        match live.get(&user.name) {
            Some(Slot::Live(reg)) => {
                let state = reg.state().borrow().clone();
                if let Some(msg) = message(&user.name, &state) {
                    let _ = link.to_client.try_send(msg);
                }
            }
            // The unregister in flight starts a new registration when done.
            Some(Slot::Leaving) => {}
            None => {
                drop(live);
                start(gw, user);
            }
        }
    }

    /// The last session of `user` closed: unregister after the grace period
    /// unless a session comes back.
    pub(crate) fn user_offline(gw: &Arc<Inner>, user: &str) {
        let Some(user) = gw
            .config
            .user(user)
            .filter(|u| u.register && !u.keep_registered)
        else {
            return;
        };
        let (gw, name) = (gw.clone(), user.name.clone());
        let grace = Duration::from_secs(u64::from(user.unregister_after_secs));
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if online(&gw, &name) {
                return;
            }
            let reg = {
                let mut live = lock(&gw.registrations.live);
                match live.insert(name.clone(), Slot::Leaving) {
                    Some(Slot::Live(reg)) => reg,
                    other => {
                        restore(&mut live, &name, other);
                        return;
                    }
                }
            };
            reg.unregister().await;
            lock(&gw.registrations.live).remove(&name);
            // A session that opened meanwhile found `Leaving` and waited.
            if online(&gw, &name) {
                if let Some(user) = gw.config.user(&name) {
                    start(&gw, user);
                }
            }
        });
    }

    /// REGISTER with Expires: 0 for everyone, each bounded by the SIP layer.
    pub(crate) async fn unregister_all(&self) {
        let live = std::mem::take(&mut *lock(&self.live));
        let all = live.into_values().filter_map(|slot| match slot {
            Slot::Live(reg) => Some(reg.unregister()),
            Slot::Leaving => None,
        });
        let bound = Duration::from_secs(5);
        let _ = tokio::time::timeout(bound, futures_join_all(all)).await;
    }
}

fn restore(live: &mut HashMap<String, Slot>, name: &str, previous: Option<Slot>) {
    match previous {
        Some(slot) => live.insert(name.to_owned(), slot),
        None => live.remove(name),
    };
}

fn online(gw: &Inner, user: &str) -> bool {
    gw.users.get(user).is_some_and(|links| !links.is_empty())
}

/// Start `user`'s registration (at most one per user).
fn start(gw: &Arc<Inner>, user: &UserConfig) {
    let Some(registrar) = gw.config.user_registrar(user).map(str::to_owned) else {
        return;
    };
    let mut live = lock(&gw.registrations.live);
    if live.contains_key(&user.name) {
        return;
    }
    let spec = RegistrationSpec {
        registrar,
        user: user.extension.clone(),
        domain: user.domain.clone(),
        username: user.username.clone(),
        password: user.password.clone(),
        expires: user.expires,
    };
    match gw.sip.register(spec) {
        Ok(reg) => {
            spawn_reporter(gw, user.name.clone(), reg.state());
            live.insert(user.name.clone(), Slot::Live(reg));
        }
        Err(e) => tracing::error!(user = %user.name, error = %e, "cannot register"),
    }
}

/// Tell `user`'s sessions of every change of `rx`, until it is unregistered.
pub(super) fn spawn_reporter(
    gw: &Arc<Inner>,
    user: String,
    mut rx: watch::Receiver<RegistrationState>,
) {
    let gw = gw.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let state = rx.borrow_and_update().clone();
            if let Some(msg) = message(&user, &state) {
                let links = gw.users.get(&user).map(|l| l.clone()).unwrap_or_default();
                for link in links {
                    let _ = link.to_client.send(msg.clone()).await;
                }
            }
            if state == RegistrationState::Unregistered {
                return;
            }
        }
    });
}

/// The message a registration state gives the user's sessions, if any.
pub(super) fn message(user: &str, state: &RegistrationState) -> Option<ServerMessage> {
    match state {
        RegistrationState::Registered { expires } => Some(ServerMessage::Registered {
            user: user.to_owned(),
            expires: *expires,
        }),
        RegistrationState::Failed {
            code,
            reason,
            retry_in,
        } => Some(ServerMessage::RegistrationFailed {
            user: user.to_owned(),
            code: *code,
            reason: reason.clone(),
            retry_in: retry_in.as_secs(),
        }),
        RegistrationState::Unregistered => Some(ServerMessage::Unregistered {
            user: user.to_owned(),
        }),
        RegistrationState::Registering => None,
    }
}

pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run futures concurrently to completion (avoids a futures dependency).
pub(super) async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    all: impl Iterator<Item = F>,
) {
    let tasks: Vec<_> = all.map(tokio::spawn).collect();
    for t in tasks {
        let _ = t.await;
    }
}
