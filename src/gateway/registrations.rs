//! Registrations that follow a user's presence, the model of Janus's SIP
//! plugin: REGISTER when the user's first session opens, unregister a grace
//! period after the last one closes. Two kinds run side by side:
//!
//! - `Pbx`: configured users (`register = true`) at their PBX registrar;
//!   `keep_registered` users stay registered from start to shutdown, and
//!   every state change is told to the user's sessions.
//! - `Cluster`: every online user at `[cluster] registrar`, with this
//!   instance's Contact, so that the registrar's proxy finds the instance
//!   (or instances) a user is on (docs/scale-out.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Inner;
use crate::signaling::{ServerMessage, SessionLink};
use crate::sip::{Registration, RegistrationSpec, RegistrationState};

/// Which registrar a set of presence registrations goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Configured users at their PBX registrar.
    Pbx,
    /// Every online user at the cluster's registrar.
    Cluster,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Pbx, Kind::Cluster];

    /// The `kind` label of `siphon_registrations`.
    fn label(self) -> &'static str {
        match self {
            Kind::Pbx => "pbx",
            Kind::Cluster => "cluster",
        }
    }

    fn set(self, gw: &Inner) -> &Registrations {
        match self {
            Kind::Pbx => &gw.registrations,
            Kind::Cluster => &gw.cluster,
        }
    }

    /// The registration of this kind `user` needs, if any.
    fn spec(self, gw: &Inner, user: &str) -> Option<RegistrationSpec> {
        let config = &gw.config;
        match self {
            Kind::Pbx => {
                let u = config.user(user).filter(|u| u.register)?;
                Some(RegistrationSpec {
                    registrar: config.user_registrar(u)?.to_owned(),
                    user: u.extension.clone(),
                    domain: u.domain.clone(),
                    username: u.username.clone(),
                    password: u.password.clone(),
                    expires: u.expires,
                    // Clustered, the PBX calls the cluster, which finds the user.
                    contact: config.cluster.front_door(),
                })
            }
            Kind::Cluster => {
                let c = &config.cluster;
                // Only users an INVITE can ring here (inbound::route_user):
                // anyone else would draw a 404 from this instance.
                let configured = config.user(user);
                if configured.is_none() && !config.auth.allow_dynamic_users {
                    return None;
                }
                // The user part a PBX dials: a configured user's extension.
                let aor = configured.map_or(user, |u| u.extension.as_str());
                Some(RegistrationSpec {
                    registrar: c.registrar.clone()?,
                    user: aor.to_owned(),
                    domain: c.domain.clone(),
                    username: c.username.clone(),
                    password: c.password.clone(),
                    expires: c.expires,
                    contact: None,
                })
            }
        }
    }

    /// How long after `user`'s last session closes its binding is removed;
    /// `None`: it is not (kept, or never made).
    fn grace(self, gw: &Inner, user: &str) -> Option<Duration> {
        let secs = match self {
            Kind::Pbx => {
                let u = gw
                    .config
                    .user(user)
                    .filter(|u| u.register && !u.keep_registered)?;
                // Clustered, the binding is the cluster's: kept from start.
                if gw.config.cluster.enabled() {
                    return None;
                }
                u.unregister_after_secs
            }
            Kind::Cluster if gw.config.cluster.enabled() => gw.config.cluster.unregister_after_secs,
            Kind::Cluster => return None,
        };
        Some(Duration::from_secs(u64::from(secs)))
    }
}

/// One kind's registrations, by user name.
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
    /// Start the registrations that do not wait for a session: those with
    /// `keep_registered`, and while clustered every one (the PBX then calls
    /// the cluster, which knows where, or whether, the user is online).
    pub(crate) fn start_kept(gw: &Arc<Inner>) {
        let clustered = gw.config.cluster.enabled();
        for user in gw
            .config
            .users
            .iter()
            .filter(|u| u.register && (u.keep_registered || clustered))
        {
            start(gw, Kind::Pbx, &user.name);
        }
    }

    /// Whether `user` registers at the PBX from the configuration.
    pub(crate) fn configured(gw: &Inner, user: &str) -> bool {
        gw.config.user(user).is_some_and(|u| u.register)
    }

    /// A session of `link.user` opened: register the user where it is not
    /// yet, and tell the session where its PBX registration stands.
    pub(crate) fn session_opened(gw: &Arc<Inner>, link: &SessionLink) {
        for kind in Kind::ALL {
            if kind.spec(gw, &link.user).is_none() {
                continue;
            }
            let live = lock(&kind.set(gw).live);
            match live.get(&link.user) {
                Some(Slot::Live(reg)) => {
                    let state = reg.state().borrow().clone();
                    let told = (kind == Kind::Pbx).then(|| message(&link.user, &state));
                    if let Some(msg) = told.flatten() {
                        let _ = link.to_client.try_send(msg);
                    }
                }
                // The unregister in flight starts a new registration when done.
                Some(Slot::Leaving) => {}
                None => {
                    drop(live);
                    start(gw, kind, &link.user);
                }
            }
        }
    }

    /// The last session of `user` closed: unregister after the grace period
    /// unless a session comes back.
    pub(crate) fn user_offline(gw: &Arc<Inner>, user: &str) {
        for kind in Kind::ALL {
            if let Some(grace) = kind.grace(gw, user) {
                tokio::spawn(leave(gw.clone(), kind, user.to_owned(), grace));
            }
        }
    }

    /// Stop refreshing without unregistering: the bindings lapse at their
    /// expiry unless another instance refreshes them (the PBX bindings of a
    /// cluster, which all instances share).
    pub(crate) fn release_all(&self) {
        lock(&self.live).clear();
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

/// Unregister `name` of `kind` after `grace`, unless it came back online.
async fn leave(gw: Arc<Inner>, kind: Kind, name: String, grace: Duration) {
    tokio::time::sleep(grace).await;
    if online(&gw, &name) {
        return;
    }
    let reg = {
        let mut live = lock(&kind.set(&gw).live);
        match live.insert(name.clone(), Slot::Leaving) {
            Some(Slot::Live(reg)) => reg,
            other => {
                restore(&mut live, &name, other);
                return;
            }
        }
    };
    reg.unregister().await;
    lock(&kind.set(&gw).live).remove(&name);
    // A session that opened meanwhile found `Leaving` and waited.
    if online(&gw, &name) {
        start(&gw, kind, &name);
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

/// Start `user`'s registration of `kind` (at most one per user and kind).
fn start(gw: &Arc<Inner>, kind: Kind, user: &str) {
    let Some(spec) = kind.spec(gw, user) else {
        return;
    };
    let mut live = lock(&kind.set(gw).live);
    if live.contains_key(user) {
        return;
    }
    match gw.sip.register(spec) {
        Ok(reg) => {
            let tell = kind == Kind::Pbx;
            spawn_reporter(gw, kind.label(), tell, user.to_owned(), reg.state());
            live.insert(user.to_owned(), Slot::Live(reg));
        }
        Err(e) => tracing::error!(user, kind = kind.label(), error = %e, "cannot register"),
    }
}

/// Count every state change of `rx` in `siphon_registrations{kind}` and,
/// if `tell`, tell `user`'s sessions of it, until it is unregistered.
pub(super) fn spawn_reporter(
    gw: &Arc<Inner>,
    kind: &'static str,
    tell: bool,
    user: String,
    mut rx: watch::Receiver<RegistrationState>,
) {
    let gw = gw.clone();
    tokio::spawn(async move {
        let mut counted = None;
        loop {
            let state = rx.borrow_and_update().clone();
            if kind == Kind::Cluster.label() {
                registrar_reached(&gw, &state);
            }
            counted = count_state(&gw, kind, counted, &state);
            if let Some(msg) = message(&user, &state).filter(|_| tell) {
                let links = gw.users.get(&user).map(|l| l.clone()).unwrap_or_default();
                for link in links {
                    let _ = link.to_client.send(msg.clone()).await;
                }
            }
            if state == RegistrationState::Unregistered || rx.changed().await.is_err() {
                break;
            }
        }
        count_state(&gw, kind, counted, &RegistrationState::Unregistered);
    });
}

/// Move one registration of `kind` from the `was` state label to `state`'s
/// in `siphon_registrations`; returns the label it is counted under now.
fn count_state(
    gw: &Inner,
    kind: &'static str,
    was: Option<&'static str>,
    state: &RegistrationState,
) -> Option<&'static str> {
    let now = match state {
        RegistrationState::Registering => Some("registering"),
        RegistrationState::Registered { .. } => Some("registered"),
        RegistrationState::Failed { .. } => Some("failed"),
        RegistrationState::Unregistered => None,
    };
    let gauge = &gw.metrics.registrations;
    if let Some(was) = was.filter(|w| Some(*w) != now) {
        gauge.with_label_values(&[kind, was]).dec();
    }
    if let Some(now) = now.filter(|n| Some(*n) != was) {
        gauge.with_label_values(&[kind, now]).inc();
    }
    now
}

/// `siphon_cluster_registrar_up` from the last answer of the cluster's
/// registrar: 0 when it could not be reached (408, 503), else 1.
fn registrar_reached(gw: &Inner, state: &RegistrationState) {
    let up = match state {
        RegistrationState::Registered { .. } => 1,
        RegistrationState::Failed { code, .. } => i64::from(!matches!(code, 408 | 503)),
        _ => return,
    };
    gw.metrics.cluster_registrar_up.set(up);
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
