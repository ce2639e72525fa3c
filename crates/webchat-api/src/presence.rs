//! Who has a live WebSocket in which room, on this node.

use std::collections::HashMap;
use std::sync::Mutex;
use webchat_domain::model::{RoomId, UserId};
use webchat_domain::ports::PresenceReader;

/// Counts sockets per user per room, so presence changes on the first open and last close.
#[derive(Debug, Default)]
pub struct Presence {
    rooms: Mutex<HashMap<RoomId, HashMap<UserId, usize>>>,
}

impl Presence {
    /// Records a socket; `true` when it is the user's first in the room (now online).
    pub fn connect(&self, room: RoomId, user: UserId) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = rooms.entry(room).or_default().entry(user).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Forgets a socket; `true` when it was the user's last in the room (now offline).
    pub fn disconnect(&self, room: RoomId, user: UserId) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(users) = rooms.get_mut(&room) else { return false };
        let Some(n) = users.get_mut(&user) else { return false };
        *n -= 1;
        if *n > 0 {
            return false;
        }
        users.remove(&user);
        if users.is_empty() {
            rooms.remove(&room);
        }
        true
    }
}

impl Presence {
    /// Every `(room, user)` with a socket on this node.
    #[must_use]
    pub fn entries(&self) -> Vec<(RoomId, UserId)> {
        let rooms = self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms.iter().flat_map(|(room, users)| users.keys().map(|u| (*room, *u))).collect()
    }
}

impl PresenceReader for Presence {
    fn active_users(&self, wanted: &[RoomId]) -> Vec<(RoomId, UserId)> {
        let rooms = self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        wanted
            .iter()
            .filter_map(|room| Some((*room, rooms.get(room)?)))
            .flat_map(|(room, users)| users.keys().map(move |u| (room, *u)))
            .collect()
    }
}

/// Who is online across the nodes of a cluster: the presence table, minus the rows of
/// nodes that stopped refreshing theirs.
pub struct ClusterPresenceReader {
    pub store: std::sync::Arc<dyn webchat_domain::ports::PresenceStore>,
}

impl std::fmt::Debug for ClusterPresenceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterPresenceReader")
    }
}

impl PresenceReader for ClusterPresenceReader {
    fn active_users(&self, rooms: &[RoomId]) -> Vec<(RoomId, UserId)> {
        let since =
            chrono::Utc::now() - chrono::Duration::from_std(crate::ws::hub::PRESENCE_TTL).unwrap_or_default();
        self.store.active(rooms, since).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read presence");
            Vec::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_user_is_online_from_the_first_socket_to_the_last() {
        let p = Presence::default();
        let (room, user) = (RoomId(1), UserId(Uuid::new_v4()));
        assert!(p.connect(room, user));
        assert!(!p.connect(room, user));
        assert_eq!(p.active_users(&[room]), vec![(room, user)]);
        assert!(!p.disconnect(room, user));
        assert!(p.disconnect(room, user));
        assert!(p.active_users(&[room]).is_empty());
        assert!(!p.disconnect(room, user));
    }
}
