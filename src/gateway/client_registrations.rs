//! Registrations a browser session asks for with a `register` message, where
//! `sip.client_register.enabled` allows it: the session's credentials, the
//! configured registrar, unregistered when the session says so or closes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::registrations::{futures_join_all, lock, message, spawn_reporter, Registrations};
use super::Inner;
use crate::signaling::{ErrorCode, Refusal, RegisterRequest, SessionId, SessionLink};
use crate::sip::{Registration, RegistrationSpec};

/// One user's registration from a session.
struct ClientRegistration {
    session: SessionId,
    extension: String,
    registration: Registration,
}

/// Client registrations by user, and the user of each extension (one each).
#[derive(Default)]
pub(crate) struct ClientRegistrations {
    inner: std::sync::Mutex<Maps>,
}

#[derive(Default)]
struct Maps {
    by_user: HashMap<String, ClientRegistration>,
    by_extension: HashMap<String, String>,
}

impl ClientRegistrations {
    /// Start the registration `request` asks for, or say why not.
    pub(crate) fn start(gw: &Arc<Inner>, request: RegisterRequest) -> Result<(), Refusal> {
        let config = &gw.config;
        let settings = &config.sip.client_register;
        let Some(registrar) = config.client_registrar().filter(|_| settings.enabled) else {
            let msg = "registration by the client is disabled (sip.client_register.enabled)";
            return Err(refusal(ErrorCode::Forbidden, msg.into()));
        };
        let user = request.user;
        let extension = request.extension.unwrap_or_else(|| user.clone());
        if Registrations::configured(gw, &user) {
            let msg = format!("{user} is registered by the gateway's configuration");
            return Err(refusal(ErrorCode::InUse, msg));
        }
        let owner = config.user_by_extension(&extension);
        if let Some(owner) = owner.or_else(|| config.user(&extension)) {
            if owner.name != user {
                let msg = format!("extension {extension} belongs to user {}", owner.name);
                return Err(refusal(ErrorCode::InUse, msg));
            }
        }
        let clients = &gw.client_registrations;
        let mut maps = lock(&clients.inner);
        if maps.by_user.contains_key(&user) {
            let msg = format!("{user} already has a registration: send unregister first");
            return Err(refusal(ErrorCode::InUse, msg));
        }
        if maps.by_extension.contains_key(&extension) {
            let msg = format!("extension {extension} is registered by another user");
            return Err(refusal(ErrorCode::InUse, msg));
        }
        let spec = RegistrationSpec {
            registrar: registrar.to_owned(),
            user: extension.clone(),
            domain: settings.domain.clone(),
            username: request.username.unwrap_or_default(),
            password: request.password,
            expires: request.expires.unwrap_or(settings.expires),
            contact: None,
        };
        let registration = gw.sip.register(spec).map_err(|e| {
            tracing::warn!(%user, error = %e, "cannot start a client registration");
            refusal(ErrorCode::Internal, format!("cannot register: {e}"))
        })?;
        spawn_reporter(gw, "client", true, user.clone(), registration.state());
        maps.by_extension.insert(extension.clone(), user.clone());
        let entry = ClientRegistration {
            session: request.session,
            extension,
            registration,
        };
        maps.by_user.insert(user, entry);
        Ok(())
    }

    /// Remove `user`'s registration when `session` made it; `unregistered`
    /// reaches the user's sessions once the registrar has answered.
    pub(crate) fn stop(&self, session: SessionId, user: &str) -> Result<(), Refusal> {
        match self.take(session, user) {
            Some(registration) => {
                tokio::spawn(registration.unregister());
                Ok(())
            }
            None => {
                let msg = "this session has no registration";
                Err(refusal(ErrorCode::NotRegistered, msg.into()))
            }
        }
    }

    /// The session closed: its registration, if any, goes with it.
    pub(crate) fn session_closed(&self, session: SessionId, user: &str) {
        if let Some(registration) = self.take(session, user) {
            tokio::spawn(registration.unregister());
        }
    }

    /// The user an INVITE for `extension` rings, when a session registered it.
    pub(crate) fn user_of(&self, extension: &str) -> Option<String> {
        lock(&self.inner).by_extension.get(extension).cloned()
    }

    /// Tell a new session of a user with a registration where it stands.
    pub(crate) fn greet(&self, link: &SessionLink) {
        let maps = lock(&self.inner);
        let Some(entry) = maps.by_user.get(&link.user) else {
            return;
        };
        let state = entry.registration.state().borrow().clone();
        if let Some(msg) = message(&link.user, &state) {
            let _ = link.to_client.try_send(msg);
        }
    }

    /// Unregister everything (shutdown), each bounded by the SIP layer.
    pub(crate) async fn unregister_all(&self) {
        let all = {
            let mut maps = lock(&self.inner);
            maps.by_extension.clear();
            std::mem::take(&mut maps.by_user)
        };
        let all = all.into_values().map(|c| c.registration.unregister());
        let _ = tokio::time::timeout(Duration::from_secs(5), futures_join_all(all)).await;
    }

    fn take(&self, session: SessionId, user: &str) -> Option<Registration> {
        let mut maps = lock(&self.inner);
        if maps.by_user.get(user)?.session != session {
            return None;
        }
        let entry = maps.by_user.remove(user)?;
        maps.by_extension.remove(&entry.extension);
        Some(entry.registration)
    }
}

fn refusal(code: ErrorCode, message: String) -> Refusal {
    Refusal {
        call_id: None,
        code,
        message,
    }
}
