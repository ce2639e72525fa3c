use super::{InvalidValue, LatestMessages, Page, RoomId, Seq, UserId, Username, is_name_char};
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

/// 1–64 letters, digits, `_`, `.`, `-`; unique ignoring case, first spelling kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    /// # Errors
    /// When the name is empty, longer than 64 characters or outside the alphabet.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let n = raw.chars().count();
        if !(1..=64).contains(&n) {
            return Err(InvalidValue::new("Ensure the room name has 1 to 64 characters."));
        }
        if !raw.chars().all(is_name_char) {
            return Err(InvalidValue::new("Enter a valid room name: letters, digits, and _ . - only."));
        }
        // `.` and `..` are path segments every HTTP client rewrites: such a room could be
        // created but never reached again.
        if raw.chars().all(|c| c == '.') {
            return Err(InvalidValue::new("A room name needs a letter, a digit, _ or -."));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    #[must_use]
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room: a named, append-only log of messages numbered by [`Seq`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: RoomName,
    pub created_at: DateTime<Utc>,
    /// The `seq` of the newest message, 0 for an empty room.
    pub last_seq: Seq,
    /// When the last message was posted (or the room created): the order of room lists.
    pub last_activity_at: DateTime<Utc>,
}

/// A room as one user sees it, with its members, who is online and the latest messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub room: Room,
    pub participants: Vec<Username>,
    pub active_participants: Vec<Username>,
    pub unread: i64,
    pub joined: bool,
    pub messages: LatestMessages,
}

/// A room's members, by when they joined (then by name). Shared: stores keep these lists in
/// memory and hand out the same one to every request.
pub type Members = Arc<[(UserId, Username)]>;

/// A room of a listing with what its view needs from the store: its members and the
/// viewer's read marker (`None` when the viewer has not joined it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRoom {
    pub room: Room,
    pub members: Members,
    pub read_marker: Option<Seq>,
}

/// A store's answer to [`RoomRepository::list_then`](crate::ports::RoomRepository::list_then):
/// the page, and the last messages of its rooms when the store read them along with it
/// (`None`: the use case asks [`MessageRepository::latest`](crate::ports::MessageRepository::latest)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub rooms: Vec<ListedRoom>,
    /// Each listed room that has messages, with its last `RoomListQuery::messages` of them.
    pub latest: Option<Vec<(RoomId, LatestMessages)>>,
    /// Who is online in the listed rooms, where the store keeps presence (a cluster's nodes
    /// share it through the store) and read it along (`None`: the use case asks its
    /// [`PresenceReader`](crate::ports::PresenceReader)).
    pub online: Option<Vec<(RoomId, UserId)>>,
}

/// `GET /api/rooms/`, as one viewer asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomListQuery {
    /// Only rooms the viewer has joined.
    pub joined: bool,
    pub page: Page,
    /// How many of the latest messages to embed per room (0–200).
    pub messages: u32,
}
