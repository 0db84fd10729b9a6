//! Per-user call accounting for `limits.per_user_calls`: a slot is taken
//! when a call starts and given back when its guard drops.

use std::sync::Arc;

use dashmap::DashMap;

/// Calls in progress per user.
#[derive(Debug, Default, Clone)]
pub(crate) struct UserSlots {
    counts: Arc<DashMap<String, u32>>,
}

/// One call's slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<DashMap<String, u32>>,
    user: String,
}

impl UserSlots {
    /// Take a slot for `user` unless `limit` calls are already up.
    pub(crate) fn take(&self, user: &str, limit: u32) -> Option<Slot> {
        let mut count = self.counts.entry(user.to_owned()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        drop(count);
        Some(Slot {
            counts: self.counts.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(mut count) = self.counts.get_mut(&self.user) {
            *count = count.saturating_sub(1);
        }
        self.counts.remove_if(&self.user, |_, n| *n == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_given_back() {
        let slots = UserSlots::default();
        let a = slots.take("alice", 2).unwrap();
        let _b = slots.take("alice", 2).unwrap();
        assert!(slots.take("alice", 2).is_none());
        assert!(slots.take("bob", 2).is_some(), "per user");
        drop(a);
        assert!(slots.take("alice", 2).is_some());
    }
}
