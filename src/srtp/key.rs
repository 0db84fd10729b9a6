//! A master key and salt as signaling carries it: never printed.

use std::fmt;

/// `key || salt` of one SRTP direction. Its `Debug` hides the bytes, so a
/// key can sit in any struct that is logged; the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(Vec<u8>);

impl MasterKey {
    /// Wraps `key || salt`.
    pub fn new(bytes: Vec<u8>) -> MasterKey {
        MasterKey(bytes)
    }

    /// The raw `key || salt`, for building a context or writing `a=crypto`.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<{} bytes redacted>)", self.0.len())
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = MasterKey::new(vec![0xAB; 30]);
        let shown = format!("{key:?} {:?}", Some(key.clone()));
        assert!(
            !shown.contains("171") && !shown.to_lowercase().contains("ab"),
            "{shown}"
        );
        assert!(shown.contains("30 bytes redacted"), "{shown}");
    }
}
