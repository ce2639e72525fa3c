use super::{InvalidValue, MessageId, RoomId, RoomName, UserId, Username};
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

/// A message's position in its room's log: 1, 2, 3, … with no gaps and no repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Seq(pub i64);

impl Seq {
    pub const ZERO: Self = Self(0);

    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// 1–4000 characters, not only whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub const MAX_CHARS: usize = 4000;

    /// # Errors
    /// When the content is blank or longer than 4000 characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.trim().is_empty() {
            return Err(InvalidValue::new("This field may not be blank."));
        }
        if raw.contains('\0') {
            return Err(InvalidValue::new("Null characters are not allowed."));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::new("Ensure this field has no more than 4000 characters."));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

/// The sender's idempotency key: 1–64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// # Errors
    /// When the key is empty, longer than 64 characters or not visible ASCII.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty() || raw.len() > 64 || !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(InvalidValue::new("Ensure this field has 1 to 64 visible ASCII characters."));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    pub room: RoomName,
    pub seq: Seq,
    /// `None` once the sender's account is deleted; the message stays.
    pub sender_id: Option<UserId>,
    pub sender: Option<Username>,
    pub content: MessageContent,
    pub created_at: DateTime<Utc>,
    pub client_msg_id: Option<ClientMsgId>,
}

/// A message about to be appended; the store assigns `id` and `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub sender_id: UserId,
    pub content: MessageContent,
    pub client_msg_id: Option<ClientMsgId>,
    pub created_at: DateTime<Utc>,
}

/// What an append did. Membership is checked in the transaction that assigns the `seq`,
/// so someone who left the room a moment ago cannot slip a message in after the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with the room's next `seq`.
    Stored(Message),
    /// This sender already used the `client_msg_id` in this room: the original; nothing stored.
    Duplicate(Message),
    /// The sender is not a member of the room: nothing stored.
    NotAMember,
}

/// Which page of a room's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    /// The newest messages.
    Latest,
    /// Messages with `seq` below this one, the closest first page.
    Before(Seq),
    /// Messages with `seq` above this one.
    After(Seq),
}

/// The last messages of one room, oldest first, as a window onto a list the store may
/// share between requests: `GET /api/rooms/` embeds up to 200 per room, and copying each
/// message out of the store's memory for every request was a twentieth of its time.
#[derive(Debug, Clone, Default)]
pub struct LatestMessages {
    shared: Arc<[Message]>,
    from: usize,
}

impl LatestMessages {
    /// The last `count` messages of `shared` (all of them when it holds fewer).
    #[must_use]
    pub fn last_of(shared: Arc<[Message]>, count: usize) -> Self {
        let from = shared.len().saturating_sub(count);
        Self { shared, from }
    }

    #[must_use]
    pub fn as_slice(&self) -> &[Message] {
        self.shared.get(self.from..).unwrap_or_default()
    }
}

impl std::ops::Deref for LatestMessages {
    type Target = [Message];

    fn deref(&self) -> &[Message] {
        self.as_slice()
    }
}

impl From<Vec<Message>> for LatestMessages {
    fn from(messages: Vec<Message>) -> Self {
        Self { shared: messages.into(), from: 0 }
    }
}

impl PartialEq for LatestMessages {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for LatestMessages {}

/// A page of history, oldest first; `has_more` says whether more lie beyond it in the
/// cursor's direction (older for `Latest` and `Before`, newer for `After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}
