//! A memory of rooms' member lists, for `GET /api/rooms/`, which names every member of
//! every room it lists.
//!
//! An entry is filed under the room's `members_rev`, which every join, leave, and rename
//! or deletion of a member's account increments in its own transaction, on whichever node
//! makes it. A list read together with (or after) a `members_rev` is never older than it,
//! so an entry answers for exactly that `members_rev` on any node, and needs no expiry: a
//! change anywhere moves the room to a new `members_rev` that no entry has yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use webchat_domain::model::{Members, RoomId};

#[derive(Debug, Default)]
pub(super) struct RoomMembers {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<RoomId, (i64, Members)>,
    /// Members held in all entries, against [`RoomMembers::MAX_MEMBERS`].
    held: usize,
}

impl RoomMembers {
    /// Rooms kept at most; past it the memory starts over.
    const MAX_ROOMS: usize = 4096;
    /// Members kept at most over all rooms (a name is at most 150 bytes).
    const MAX_MEMBERS: usize = 65_536;

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A map of copies: nothing a panic could leave half-changed.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The members of `room` as of `rev`, if they are known.
    pub(super) fn get(&self, room: RoomId, rev: i64) -> Option<Members> {
        let inner = self.lock();
        inner.rooms.get(&room).filter(|(r, _)| *r == rev).map(|(_, m)| Arc::clone(m))
    }

    /// Keeps `members` as `room`'s list at `rev`, unless a later `rev` is already known.
    pub(super) fn put(&self, room: RoomId, rev: i64, members: Members) {
        let mut inner = self.lock();
        if members.len() > Self::MAX_MEMBERS || inner.rooms.get(&room).is_some_and(|(r, _)| *r > rev) {
            return;
        }
        if let Some((_, old)) = inner.rooms.remove(&room) {
            inner.held -= old.len();
        }
        if inner.rooms.len() >= Self::MAX_ROOMS || inner.held + members.len() > Self::MAX_MEMBERS {
            inner.rooms.clear();
            inner.held = 0;
        }
        inner.held += members.len();
        inner.rooms.insert(room, (rev, members));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;
    use webchat_domain::model::{UserId, Username};

    const ROOM: RoomId = RoomId(7);

    fn members(names: &[&str]) -> Members {
        names.iter().map(|n| (UserId(Uuid::new_v4()), Username::parse(n).expect("a username"))).collect()
    }

    #[test]
    fn an_entry_answers_only_for_its_members_rev() {
        let memory = RoomMembers::default();
        memory.put(ROOM, 3, members(&["alex", "bob"]));
        assert_eq!(memory.get(ROOM, 3).map(|m| m.len()), Some(2));
        assert!(memory.get(ROOM, 4).is_none(), "the members changed since");
        assert!(memory.get(ROOM, 2).is_none());
        assert!(memory.get(RoomId(8), 3).is_none());
    }

    #[test]
    fn an_older_list_does_not_replace_a_newer_one() {
        let memory = RoomMembers::default();
        memory.put(ROOM, 4, members(&["alex", "bob", "cleo"]));
        memory.put(ROOM, 3, members(&["alex", "bob"]));
        assert_eq!(memory.get(ROOM, 4).map(|m| m.len()), Some(3));
        assert!(memory.get(ROOM, 3).is_none());
        memory.put(ROOM, 5, members(&["alex"]));
        assert_eq!(memory.get(ROOM, 5).map(|m| m.len()), Some(1));
        assert_eq!(memory.lock().held, 1, "the replaced entry no longer counts");
    }

    #[test]
    fn the_memory_keeps_to_its_budgets() {
        let memory = RoomMembers::default();
        let one = members(&["alex"]);
        for r in 0..RoomMembers::MAX_ROOMS + 1 {
            memory.put(RoomId(1_000 + r as i64), 1, Arc::clone(&one));
            assert!(memory.lock().rooms.len() <= RoomMembers::MAX_ROOMS);
        }
        assert!(memory.get(RoomId(1_000 + RoomMembers::MAX_ROOMS as i64), 1).is_some(), "the newest is kept");

        let crowd: Members = (0..RoomMembers::MAX_MEMBERS / 2 + 1).map(|_| one[0].clone()).collect();
        memory.put(RoomId(1), 1, Arc::clone(&crowd));
        memory.put(RoomId(2), 1, Arc::clone(&crowd));
        let inner = memory.lock();
        assert!(inner.held <= RoomMembers::MAX_MEMBERS, "{} members held", inner.held);
        assert_eq!(inner.held, inner.rooms.values().map(|(_, m)| m.len()).sum::<usize>());
        drop(inner);
        assert!(memory.get(RoomId(2), 1).is_some());

        let too_many: Members = (0..=RoomMembers::MAX_MEMBERS).map(|_| one[0].clone()).collect();
        memory.put(RoomId(3), 1, too_many);
        assert!(memory.get(RoomId(3), 1).is_none(), "a list over the whole budget is not kept");
    }
}
