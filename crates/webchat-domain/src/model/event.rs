use super::{Message, RoomId, RoomName, SessionId, UserId, Username};

/// Something that happened which live connections must hear about, on this node or any
/// other. Travels through the [`MessageBus`](crate::ports::MessageBus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message was stored (only once: an idempotent resend publishes nothing).
    Message(Message),
    /// A user's first socket in a room opened (`online`) or their last one closed.
    Presence { room: RoomId, room_name: RoomName, user: UserId, username: Username, online: bool },
    /// A user is typing in a room; never stored.
    Typing { room: RoomId, room_name: RoomName, user: UserId, username: Username },
    /// A user joined or left a room: their multi-room sockets follow it.
    Membership { room: RoomId, room_name: RoomName, user: UserId, joined: bool },
    /// These sessions ended (logout, password change, deletion, refresh reuse): their
    /// sockets close with 4401.
    SessionsRevoked(Vec<SessionId>),
}

impl Event {
    /// The room the event belongs to, if any.
    #[must_use]
    pub fn room(&self) -> Option<RoomId> {
        match self {
            Self::Message(m) => Some(m.room_id),
            Self::Presence { room, .. } | Self::Typing { room, .. } | Self::Membership { room, .. } => {
                Some(*room)
            }
            Self::SessionsRevoked(_) => None,
        }
    }
}
