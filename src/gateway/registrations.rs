//! Upstream registration of configured users: one REGISTER loop per user
//! with `register = true`, its state told to that user's sessions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Inner;
use crate::config::Config;
use crate::signaling::{ServerMessage, SessionLink};
use crate::sip::{Registration, RegistrationSpec, RegistrationState, SipEndpoint};

/// Live registrations, by user name.
#[derive(Default)]
pub(crate) struct Registrations {
    live: std::sync::Mutex<Vec<(String, Registration)>>,
    states: dashmap::DashMap<String, watch::Receiver<RegistrationState>>,
}

impl Registrations {
    /// Start a registration for every user that asks for one.
    pub(crate) fn start(config: &Config, sip: &SipEndpoint) -> Self {
        let regs = Registrations::default();
        for user in config.users.iter().filter(|u| u.register) {
            let Some(registrar) = config.user_registrar(user).map(str::to_owned) else {
                continue;
            };
            let spec = RegistrationSpec {
                registrar,
                user: user.extension.clone(),
                domain: user.domain.clone(),
                username: user.username.clone(),
                password: user.password.clone(),
                expires: user.expires,
            };
            match sip.register(spec) {
                Ok(reg) => {
                    regs.states.insert(user.name.clone(), reg.state());
                    lock(&regs.live).push((user.name.clone(), reg));
                }
                Err(e) => tracing::error!(user = %user.name, error = %e, "cannot register"),
            }
        }
        regs
    }

    /// Forward every state change to the user's sessions.
    pub(crate) fn spawn_reporters(gw: &Arc<Inner>) {
        for entry in gw.registrations.states.iter() {
            spawn_reporter(gw, entry.key().clone(), entry.value().clone());
        }
    }

    /// Whether `user` has a registration from the configuration.
    pub(crate) fn configured(&self, user: &str) -> bool {
        self.states.contains_key(user)
    }

    /// Tell a new session where its user's registration stands.
    pub(crate) fn greet(&self, link: &SessionLink) {
        let Some(rx) = self.states.get(&link.user) else {
            return;
        };
        let state = rx.borrow().clone();
        if let Some(msg) = message(&link.user, &state) {
            let _ = link.to_client.try_send(msg);
        }
    }

    /// REGISTER with Expires: 0 for everyone, each bounded by the SIP layer.
    pub(crate) async fn unregister_all(&self) {
        let live = std::mem::take(&mut *lock(&self.live));
        let all = live.into_iter().map(|(_, reg)| reg.unregister());
        let bound = Duration::from_secs(5);
        let _ = tokio::time::timeout(bound, futures_join_all(all)).await;
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
