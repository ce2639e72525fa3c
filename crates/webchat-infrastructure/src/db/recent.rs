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
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<RoomId, Entry>,
    /// The bytes of message text held, against [`RecentMessages::MAX_BYTES`].
    bytes: usize,
    /// Counts [`RecentMessages::clear`], so that a read that raced a rename does not keep
    /// the old name.
    generation: u64,
}

/// Taken before reading the store; [`RecentMessages::put`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket(u64);

#[derive(Debug)]
struct Entry {
    last: Seq,
    /// How many messages were asked for when these were read (fewer exist when the room
    /// has fewer).
    window: u32,
    read_at: Instant,
    /// Oldest first, ending at `last`.
    messages: Arc<[Message]>,
    bytes: usize,
}

/// What an entry counts against the budget: the text it holds, and a little per message.
fn size_of(messages: &[Message]) -> usize {
    messages
        .iter()
        .map(|m| {
            128 + m.room.as_str().len()
                + m.content.as_str().len()
                + m.sender.as_ref().map_or(0, |n| n.as_str().len())
                + m.client_msg_id.as_ref().map_or(0, |k| k.as_str().len())
        })
        .sum()
}

impl RecentMessages {
    /// How long an entry is used.
    pub(super) const TTL: Duration = Duration::from_secs(1);
    /// Rooms kept at most; past it the memory starts over.
    const MAX_ROOMS: usize = 4096;
    /// Message bytes kept at most (a room may embed 200 messages of 4,000 characters).
    const MAX_BYTES: usize = 16 << 20;

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A map of copies: nothing a panic could leave half-changed.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last `per_room` messages of `room` up to `last`, if they were read less than
    /// [`Self::TTL`] ago.
    pub(super) fn get(&self, room: RoomId, last: Seq, per_room: u32, now: Instant) -> Option<Arc<[Message]>> {
        let inner = self.lock();
        let entry = inner.rooms.get(&room)?;
        let fresh = entry.last == last && now.saturating_duration_since(entry.read_at) < Self::TTL;
        (fresh && entry.window >= per_room).then(|| Arc::clone(&entry.messages))
    }

    /// To be taken before the store is read.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Keeps `messages` (the last `window` of `room` up to `last`, oldest first), read at
    /// `read_at`, unless a [`Self::clear`] came since `ticket` was taken. A newer entry of
    /// the room is not replaced by an older read.
    pub(super) fn put(
        &self,
        ticket: Ticket,
        room: RoomId,
        last: Seq,
        window: u32,
        messages: Arc<[Message]>,
        read_at: Instant,
    ) {
        let bytes = size_of(&messages);
        let mut inner = self.lock();
        if inner.generation != ticket.0 || bytes > Self::MAX_BYTES {
            return;
        }
        if inner.rooms.get(&room).is_some_and(|e| e.last > last || (e.last == last && e.window > window)) {
            return;
        }
        if let Some(old) = inner.rooms.remove(&room) {
            inner.bytes -= old.bytes;
        }
        if inner.rooms.len() >= Self::MAX_ROOMS || inner.bytes + bytes > Self::MAX_BYTES {
            inner.rooms.retain(|_, e| read_at.saturating_duration_since(e.read_at) < Self::TTL);
            inner.bytes = inner.rooms.values().map(|e| e.bytes).sum();
            if inner.rooms.len() >= Self::MAX_ROOMS || inner.bytes + bytes > Self::MAX_BYTES {
                inner.rooms.clear();
                inner.bytes = 0;
            }
        }
        inner.bytes += bytes;
        inner.rooms.insert(room, Entry { last, window, read_at, messages, bytes });
    }

    /// Forgets every room (a sender's name changed).
    pub(super) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.rooms.clear();
        inner.bytes = 0;
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
        memory.put(memory.ticket(), ROOM, Seq(10), 5, messages(6..=10), t0);
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
        memory.put(memory.ticket(), ROOM, Seq(11), 5, messages(7..=11), t0);
        memory.put(memory.ticket(), ROOM, Seq(10), 5, messages(6..=10), t0);
        assert!(memory.get(ROOM, Seq(11), 5, t0).is_some());
        assert!(memory.get(ROOM, Seq(10), 5, t0).is_none());
        // A wider read of the same messages replaces a narrower one, not the other way round.
        memory.put(memory.ticket(), ROOM, Seq(11), 8, messages(4..=11), t0);
        memory.put(memory.ticket(), ROOM, Seq(11), 2, messages(10..=11), t0);
        assert_eq!(memory.get(ROOM, Seq(11), 8, t0).map(|m| m.len()), Some(8));
    }

    #[test]
    fn clear_forgets_every_room() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        memory.put(memory.ticket(), ROOM, Seq(10), 5, messages(6..=10), t0);
        memory.clear();
        assert!(memory.get(ROOM, Seq(10), 5, t0).is_none());
    }

    #[test]
    fn a_full_memory_makes_room_for_a_new_entry() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        let few = messages(1..=1);
        for r in 0..RecentMessages::MAX_ROOMS {
            memory.put(memory.ticket(), RoomId(1_000 + r as i64), Seq(1), 1, Arc::clone(&few), t0);
        }
        memory.put(memory.ticket(), ROOM, Seq(1), 1, Arc::clone(&few), t0 + RecentMessages::TTL);
        assert!(memory.get(ROOM, Seq(1), 1, t0 + RecentMessages::TTL).is_some());
        assert_eq!(memory.lock().rooms.len(), 1, "the expired entries were dropped");
    }

    #[test]
    fn a_read_that_raced_a_clear_is_not_kept() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        let ticket = memory.ticket();
        // A rename committed and cleared while this read was under way: it may hold the old name.
        memory.clear();
        memory.put(ticket, ROOM, Seq(10), 5, messages(6..=10), t0);
        assert!(memory.get(ROOM, Seq(10), 5, t0).is_none());
        memory.put(memory.ticket(), ROOM, Seq(10), 5, messages(6..=10), t0);
        assert!(memory.get(ROOM, Seq(10), 5, t0).is_some());
    }

    #[test]
    fn the_memory_keeps_to_its_byte_budget() {
        let memory = RecentMessages::default();
        let t0 = Instant::now();
        let long = "x".repeat(4000);
        let big: Arc<[Message]> = (1..=200_i64)
            .map(|s| Message {
                content: MessageContent::parse(&long).expect("content"),
                ..messages(s..=s)[0].clone()
            })
            .collect();
        let each = size_of(&big);
        let fit = RecentMessages::MAX_BYTES / each;
        for r in 0..fit + 3 {
            memory.put(memory.ticket(), RoomId(1_000 + r as i64), Seq(200), 200, Arc::clone(&big), t0);
            let inner = memory.lock();
            assert!(inner.bytes <= RecentMessages::MAX_BYTES, "{} bytes held", inner.bytes);
            assert_eq!(inner.bytes, inner.rooms.values().map(|e| e.bytes).sum::<usize>());
        }
        assert!(
            memory.get(RoomId(1_000 + fit as i64 + 2), Seq(200), 200, t0).is_some(),
            "the newest is kept"
        );
    }
}
