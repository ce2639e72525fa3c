//! A short memory of sessions found live, so that an authenticated request does not read
//! the sessions table every time.
//!
//! SPEC §3 lets a revoked session's access tokens be accepted for up to one second on other
//! nodes. An entry lives [`LiveSessions::TTL`] (half of that); a revocation made or heard of
//! on this node forgets its sessions at once, so on the node that revoked, the very next
//! request is refused.

use crate::model::{SessionId, UserId};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub(super) struct LiveSessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Session → (its user, when the store said it was live).
    live: HashMap<SessionId, (UserId, DateTime<Utc>)>,
    /// Counts revocations, so that a lookup that raced one does not store what it read
    /// before it.
    generation: u64,
}

/// Taken before reading the store; [`LiveSessions::remember`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket(u64);

impl LiveSessions {
    /// How long a session found live is trusted without asking the store again.
    pub(super) const TTL: Duration = Duration::milliseconds(500);
    /// Entries kept at most; past it the memory starts over (each entry then costs one read).
    const MAX_ENTRIES: usize = 100_000;

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map holds no invariant a panic could break halfway.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The user of `session` if it was found live less than [`Self::TTL`] ago.
    pub(super) fn get(&self, session: SessionId, now: DateTime<Utc>) -> Option<UserId> {
        match self.lock().live.get(&session) {
            Some(&(user, at)) if now >= at && now - at < Self::TTL => Some(user),
            _ => None,
        }
    }

    /// To be taken before the store is read for a session.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Remembers that the store found `session` live at `now`, unless a revocation came
    /// since `ticket` was taken (what was read may predate it).
    pub(super) fn remember(&self, ticket: Ticket, session: SessionId, user: UserId, now: DateTime<Utc>) {
        let mut inner = self.lock();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.live.len() >= Self::MAX_ENTRIES {
            inner.live.retain(|_, &mut (_, at)| now >= at && now - at < Self::TTL);
            if inner.live.len() >= Self::MAX_ENTRIES {
                inner.live.clear();
            }
        }
        inner.live.insert(session, (user, now));
    }

    /// Forgets these sessions at once.
    pub(super) fn forget(&self, sessions: &[SessionId]) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        for s in sessions {
            inner.live.remove(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const S1: SessionId = SessionId(Uuid::from_u128(1));
    const S2: SessionId = SessionId(Uuid::from_u128(2));
    const U1: UserId = UserId(Uuid::from_u128(0xA));

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_727_526_600_000 + ms).expect("a valid timestamp")
    }

    #[test]
    fn a_remembered_session_is_known_until_the_ttl_has_passed() {
        let live = LiveSessions::default();
        live.remember(live.ticket(), S1, U1, t(0));
        assert_eq!(live.get(S1, t(0)), Some(U1));
        assert_eq!(live.get(S1, t(499)), Some(U1));
        assert_eq!(live.get(S1, t(500)), None);
        assert_eq!(live.get(S2, t(0)), None);
    }

    #[test]
    fn a_clock_that_went_back_does_not_stretch_an_entry() {
        let live = LiveSessions::default();
        live.remember(live.ticket(), S1, U1, t(1_000));
        assert_eq!(live.get(S1, t(0)), None);
    }

    #[test]
    fn a_forgotten_session_is_unknown_at_once() {
        let live = LiveSessions::default();
        live.remember(live.ticket(), S1, U1, t(0));
        live.remember(live.ticket(), S2, U1, t(0));
        live.forget(&[S1]);
        assert_eq!(live.get(S1, t(1)), None);
        assert_eq!(live.get(S2, t(1)), Some(U1));
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_remembered() {
        let live = LiveSessions::default();
        let ticket = live.ticket();
        // The store said live, then the session was revoked before the answer was kept.
        live.forget(&[S1]);
        live.remember(ticket, S1, U1, t(0));
        assert_eq!(live.get(S1, t(1)), None);
        // A lookup that started after the revocation is kept.
        live.remember(live.ticket(), S1, U1, t(0));
        assert_eq!(live.get(S1, t(1)), Some(U1));
    }

    #[test]
    fn a_full_memory_drops_expired_entries_before_starting_over() {
        let live = LiveSessions::default();
        let ticket = live.ticket();
        for i in 0..LiveSessions::MAX_ENTRIES {
            live.remember(ticket, SessionId(Uuid::from_u128(1_000 + i as u128)), U1, t(0));
        }
        // All of those have expired by t(600): making room keeps the new one and the map small.
        live.remember(ticket, S1, U1, t(600));
        assert_eq!(live.get(S1, t(601)), Some(U1));
        assert_eq!(live.lock().live.len(), 1);
    }
}
