//! A short memory of the last messages of rooms, for `GET /api/rooms/`, which embeds up to
//! 200 of them per room in every answer.
//!
//! An entry is keyed by the room's `last_seq` as the caller just read it: `seq` is gap-free
//! and messages are never edited, so the same `last_seq` means the same messages, on any
//! node. What can change under an entry is a sender's name (a rename, or an account deleted,
//! which leaves `sender: null`): this node forgets everything when it renames or deletes an
//! account, and an entry lives at most [`RecentMessages::TTL`], so a change made on another
//! node shows within a second, like a revoked session (SPEC §3).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use webchat_domain::model::{Message, RoomId, Seq};

#[derive(Debug, Default)]
pub(super) struct RecentMessages {
    inner: Mutex<HashMap<RoomId, Entry>>,
}

#[derive(Debug)]
struct Entry {
    last: Seq,
    /// How many messages were asked for when these were read (fewer exist when the room
    /// has fewer).
    window: u32,
    read_at: Instant,
    /// Oldest first, ending at `last`.
    messages: Arc<[Message]>,
}

impl RecentMessages {
    /// How long an entry is used.
    pub(super) const TTL: Duration = Duration::from_secs(1);
    /// Rooms kept at most; past it the memory starts over.
    const MAX_ROOMS: usize = 4096;

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Entry>> {
        // A map of copies: nothing a panic could leave half-changed.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last `per_room` messages of `room` up to `last`, if they were read less than
    /// [`Self::TTL`] ago.
    pub(super) fn get(&self, room: RoomId, last: Seq, per_room: u32, now: Instant) -> Option<Arc<[Message]>> {
        let map = self.lock();
        let entry = map.get(&room)?;
        let fresh = entry.last == last && now.saturating_duration_since(entry.read_at) < Self::TTL;
        (fresh && entry.window >= per_room).then(|| Arc::clone(&entry.messages))
    }

    /// Keeps `messages` (the last `window` of `room` up to `last`, oldest first), read at
    /// `read_at`. A newer entry of the room is not replaced by an older read.
    pub(super) fn put(
        &self,
        room: RoomId,
        last: Seq,
        window: u32,
        messages: Arc<[Message]>,
        read_at: Instant,
    ) {
        let mut map = self.lock();
        if map.get(&room).is_some_and(|e| e.last > last || (e.last == last && e.window > window)) {
            return;
        }
        if map.len() >= Self::MAX_ROOMS && !map.contains_key(&room) {
            map.retain(|_, e| read_at.saturating_duration_since(e.read_at) < Self::TTL);
            if map.len() >= Self::MAX_ROOMS {
                map.clear();
            }
        }
        map.insert(room, Entry { last, window, read_at, messages });
    }

    /// Forgets every room (a sender's name changed).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use webchat_domain::model::{MessageContent, MessageId, RoomName};

    const ROOM: RoomId = RoomId(7);

    fn messages(seqs: std::ops::RangeInclusive<i64>) -> Arc<[Message]> {
        seqs.map(|s| Message {
            id: MessageId(s),
            room_id: ROOM,
            room: RoomName::parse("general").expect("a room name"),
            seq: Seq(s),
            sender_id: None,
            sender: None,
            content: MessageContent::parse(&format!("m{s}")).expect("content"),
            created_at: DateTime::from_timestamp(1_727_526_600, 0).expect("a time"),
            client_msg_id: None,
        })
        .collect()
    }

    #[test]
    fn an_entry_answers_for_its_last_seq_and_a_window_it_covers_until_the_ttl() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        memory.put(ROOM, Seq(10), 5, messages(6..=10), t0);
        assert_eq!(memory.get(ROOM, Seq(10), 5, t0).map(|m| m.len()), Some(5));
        assert!(memory.get(ROOM, Seq(10), 3, t0 + Duration::from_millis(999)).is_some(), "a smaller window");
        assert!(memory.get(ROOM, Seq(10), 6, t0).is_none(), "a larger window than was read");
        assert!(memory.get(ROOM, Seq(11), 5, t0).is_none(), "the room moved on");
        assert!(memory.get(ROOM, Seq(10), 5, t0 + RecentMessages::TTL).is_none(), "too old");
        assert!(memory.get(RoomId(8), Seq(10), 5, t0).is_none());
    }

    #[test]
    fn an_older_read_does_not_replace_a_newer_entry() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        memory.put(ROOM, Seq(11), 5, messages(7..=11), t0);
        memory.put(ROOM, Seq(10), 5, messages(6..=10), t0);
        assert!(memory.get(ROOM, Seq(11), 5, t0).is_some());
        assert!(memory.get(ROOM, Seq(10), 5, t0).is_none());
        // A wider read of the same messages replaces a narrower one, not the other way round.
        memory.put(ROOM, Seq(11), 8, messages(4..=11), t0);
        memory.put(ROOM, Seq(11), 2, messages(10..=11), t0);
        assert_eq!(memory.get(ROOM, Seq(11), 8, t0).map(|m| m.len()), Some(8));
    }

    #[test]
    fn clear_forgets_every_room() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        memory.put(ROOM, Seq(10), 5, messages(6..=10), t0);
        memory.clear();
        assert!(memory.get(ROOM, Seq(10), 5, t0).is_none());
    }

    #[test]
    fn a_full_memory_makes_room_for_a_new_entry() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        let few = messages(1..=1);
        for r in 0..RecentMessages::MAX_ROOMS {
            memory.put(RoomId(1_000 + r as i64), Seq(1), 1, Arc::clone(&few), t0);
        }
        memory.put(ROOM, Seq(1), 1, Arc::clone(&few), t0 + RecentMessages::TTL);
        assert!(memory.get(ROOM, Seq(1), 1, t0 + RecentMessages::TTL).is_some());
        assert_eq!(memory.lock().len(), 1, "the expired entries were dropped");
    }
}
