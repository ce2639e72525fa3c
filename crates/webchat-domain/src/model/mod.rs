//! The domain's values and entities. Newtypes are parsed once at the edge (`parse`) and
//! trusted everywhere after; their constructors are the only place a rule is checked.

mod event;
mod ids;
mod message;
mod room;
mod session;
mod user;

pub use event::Event;
pub use ids::{MessageId, RoomId, SessionId, UserId};
pub use message::{
    Appended, ClientMsgId, HistoryCursor, HistoryPage, LatestMessages, Message, MessageContent, NewMessage,
    Seq,
};
pub use room::{ListedRoom, Listing, Members, Room, RoomListQuery, RoomName, RoomView};
pub use session::{AuthContext, Claims, Session, TokenKind, TokenPair};
pub use user::{Email, NewUser, Password, PasswordHash, User, UserListQuery, UserPatch, Username};

use std::fmt;

/// Why a raw value was refused; the message is shown to the client next to the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue(pub String);

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl InvalidValue {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Letters, digits, `_`, `.`, `-`: the alphabet of usernames and room names.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Pagination bounds shared by every list: `limit` 1..=200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

impl Page {
    pub const MAX_LIMIT: u32 = 200;

    /// # Errors
    /// When `limit` is outside 1..=200.
    pub fn new(limit: u32, offset: u64) -> Result<Self, InvalidValue> {
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(InvalidValue::new("Ensure this value is between 1 and 200."));
        }
        Ok(Self { limit, offset })
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
