//! The JSON shapes of SPEC §3's objects.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use webchat_domain::model::{Message, RoomView, User};

/// RFC 3339, UTC, milliseconds: `2024-09-28T12:30:00.000Z`.
#[must_use]
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Serialize)]
pub struct UserDto {
    pub id: String,
    pub username: String,
    pub email: String,
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

#[derive(Debug, Serialize)]
pub struct MessageDto {
    pub id: i64,
    pub room: String,
    pub seq: i64,
    pub sender: Option<String>,
    pub sender_id: Option<String>,
    pub content: String,
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

#[derive(Debug, Serialize)]
pub struct RoomDto {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub participants: Vec<String>,
    pub active_participants: Vec<String>,
    pub last_seq: i64,
    pub unread: i64,
    pub joined: bool,
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
