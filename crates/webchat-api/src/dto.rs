//! The JSON shapes of SPEC §3's objects.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use webchat_domain::model::{Message, RoomView, User};

/// RFC 3339, UTC, milliseconds: `2024-09-28T12:30:00.000Z`.
#[must_use]
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    #[schema(format = "uuid")]
    pub id: String,
    pub username: String,
    pub email: String,
    #[schema(format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub created_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.to_string(),
            email: u.email.to_string(),
            created_at: timestamp(u.created_at),
        }
    }
}

/// A stored message. `seq` numbers a room's messages 1, 2, 3, … with no gaps.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageDto {
    pub id: i64,
    pub room: String,
    #[schema(minimum = 1)]
    pub seq: i64,
    /// `null` once the sender's account is deleted.
    pub sender: Option<String>,
    #[schema(format = "uuid")]
    pub sender_id: Option<String>,
    pub content: String,
    #[schema(format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub timestamp: String,
    pub client_msg_id: Option<String>,
}

impl From<&Message> for MessageDto {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.0,
            room: m.room.to_string(),
            seq: m.seq.0,
            sender: m.sender.as_ref().map(ToString::to_string),
            sender_id: m.sender_id.map(|s| s.to_string()),
            content: m.content.as_str().to_owned(),
            timestamp: timestamp(m.created_at),
            client_msg_id: m.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
        }
    }
}

/// A room with its members, who is online, the caller's unread count and its last messages.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Room)]
pub struct RoomDto {
    pub id: i64,
    pub name: String,
    #[schema(format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub created_at: String,
    /// Members, by username.
    pub participants: Vec<String>,
    /// Members with a live WebSocket now, on any node.
    pub active_participants: Vec<String>,
    #[schema(minimum = 0)]
    pub last_seq: i64,
    /// `last_seq` minus the caller's read marker; 0 when not joined.
    #[schema(minimum = 0)]
    pub unread: i64,
    pub joined: bool,
    /// The last messages, oldest first.
    pub messages: Vec<MessageDto>,
}

impl From<&RoomView> for RoomDto {
    fn from(v: &RoomView) -> Self {
        Self {
            id: v.room.id.0,
            name: v.room.name.to_string(),
            created_at: timestamp(v.room.created_at),
            participants: v.participants.iter().map(ToString::to_string).collect(),
            active_participants: v.active_participants.iter().map(ToString::to_string).collect(),
            last_seq: v.room.last_seq.0,
            unread: v.unread,
            joined: v.joined,
            messages: v.messages.iter().map(MessageDto::from).collect(),
        }
    }
}

/// `201` of `POST /api/users/register/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    /// Always "User created successfully!" (the original API's key).
    #[serde(rename = "Message")]
    #[schema(rename = "Message")]
    pub message: &'static str,
    pub user: UserDto,
}

/// `200` of `POST /api/users/login/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Access token (JWT, HS256), for `Authorization: Bearer`.
    pub access: String,
    /// Refresh token: works once, for `POST /api/login/refresh/`.
    pub refresh: String,
    pub user: UserDto,
}

/// `200` of a refresh: a new pair; the old refresh token is retired.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

/// `200`/`201` of `POST /api/room/{room_name}/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinResponse {
    pub room: RoomDto,
    /// Whether this call created the room.
    pub created: bool,
}

/// A page of a room's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPageDto {
    pub messages: Vec<MessageDto>,
    /// Whether more messages lie beyond the page in its direction.
    pub has_more: bool,
}
