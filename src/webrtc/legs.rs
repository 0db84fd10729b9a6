//! The legs of one endpoint, indexed by id. A leg's id is the index of its
//! call's slot on the relay loop, so ids are small and dense, and finding a
//! leg is one indexed load instead of a hash lookup per packet.

use super::leg::Leg;
use super::LegId;

/// Legs by id.
#[derive(Default)]
pub(super) struct Legs {
    // Boxed: a leg is about 4 KB (dimpl's state sits inline) and the table
    // keeps a slot for every id up to the highest.
    slots: Vec<Option<Box<Leg>>>,
    count: usize,
}

impl Legs {
    /// Ids from here on are refused: the table would grow past reason.
    pub(super) const LIMIT: LegId = 1 << 20;

    pub(super) fn contains(&self, id: LegId) -> bool {
        self.slots.get(id as usize).is_some_and(Option::is_some)
    }

    /// Put `leg` at `id` (below [`Self::LIMIT`], not yet taken).
    pub(super) fn insert(&mut self, id: LegId, leg: Box<Leg>) {
        let index = id as usize;
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        if self.slots[index].replace(leg).is_none() {
            self.count += 1;
        }
    }

    pub(super) fn get_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        self.slots.get_mut(id as usize)?.as_deref_mut()
    }

    pub(super) fn remove(&mut self, id: LegId) -> Option<Box<Leg>> {
        let leg = self.slots.get_mut(id as usize)?.take()?;
        self.count -= 1;
        Some(leg)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (LegId, &mut Leg)> {
        let legs = self.slots.iter_mut().enumerate();
        legs.filter_map(|(id, leg)| Some((id as LegId, leg.as_deref_mut()?)))
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }
}
