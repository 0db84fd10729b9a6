//! `[[users]]`: browser users that are extensions of the PBX, and how the
//! rest of the gateway finds them.

use std::fmt;

use super::srtp::SrtpMode;
use super::types::{redact, Config};

/// Shortest `expires` accepted: registrars commonly refuse less (423 Interval Too Brief).
pub const MIN_EXPIRES: u32 = 60;
/// Longest `expires` accepted: a day; a longer binding keeps the PBX ringing a
/// gateway that has gone away for that long.
pub const MAX_EXPIRES: u32 = 86400;

/// One `[[users]]` table: a browser user and its PBX extension.
#[derive(Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// The siphon user: the `sub` of its tokens.
    pub name: String,
    /// SIP user part of its address of record and of INVITEs routed to it;
    /// `""` in the file means `name`, and loading fills it in.
    pub extension: String,
    /// Whether siphon REGISTERs this user upstream.
    pub register: bool,
    /// Registrar URI; `None` = `sip.trunk.uri` (see [`Config::user_registrar`]).
    pub registrar: Option<String>,
    /// Host of the address of record; empty = the registrar's host.
    pub domain: String,
    /// Digest username; empty = `extension`.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// Registration expiry to request, in seconds.
    pub expires: u32,
    /// Keep the registration from start to shutdown, online or not; when
    /// false it lives while the user has a session (plus the grace below).
    pub keep_registered: bool,
    /// Seconds after the user's last session closes before unregistering,
    /// so that reloading the page is not a logout.
    pub unregister_after_secs: u32,
    /// SRTP (SDES) toward the PBX on this user's calls.
    pub srtp: SrtpMode,
}

impl Default for UserConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            extension: String::new(),
            register: false,
            registrar: None,
            domain: String::new(),
            username: String::new(),
            password: String::new(),
            expires: 300,
            keep_registered: false,
            unregister_after_secs: 10,
            srtp: SrtpMode::Off,
        }
    }
}

impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("extension", &self.extension)
            .field("register", &self.register)
            .field("registrar", &self.registrar)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("expires", &self.expires)
            .field("keep_registered", &self.keep_registered)
            .field("unregister_after_secs", &self.unregister_after_secs)
            .field("srtp", &self.srtp)
            .finish()
    }
}

impl Config {
    /// The configured user whose name (token `sub`) is `name`.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The configured user an INVITE to SIP user part `extension` is for.
    pub fn user_by_extension(&self, extension: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.extension == extension)
    }

    /// Where `user` registers: its own registrar, else the trunk; `None` when neither is set.
    pub fn user_registrar<'a>(&'a self, user: &'a UserConfig) -> Option<&'a str> {
        user.registrar.as_deref().or(self.trunk_uri())
    }

    /// Where `register` messages register: `sip.client_register.registrar`,
    /// else the trunk; `None` when neither is set.
    pub fn client_registrar(&self) -> Option<&str> {
        let own = self.sip.client_register.registrar.as_deref();
        own.or(self.trunk_uri())
    }
}
