//! The JSON shapes of SPEC §3's objects.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use webchat_domain::model::{ClientMsgId, Message, RoomView, User, Username};

/// RFC 3339, UTC, milliseconds: `2024-09-28T12:30:00.000Z`.
#[must_use]
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `200` with `value` as JSON, written into a buffer of `capacity` bytes: a listing of
/// rooms is tens of kilobytes, and growing the buffer from nothing copied it again and
/// again.
/// # Errors
/// `Internal` if `value` cannot be written as JSON (none of these shapes can fail).
pub fn json_ok<T: Serialize>(
    value: &T,
    capacity: usize,
) -> Result<actix_web::HttpResponse, crate::error::ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).map_err(|e| crate::error::ApiError::Internal(e.to_string()))?;
    Ok(actix_web::HttpResponse::Ok().content_type(actix_web::http::header::ContentType::json()).body(body))
}

/// About how many bytes `view` takes as JSON, for [`json_ok`].
#[must_use]
pub fn room_json_size(view: &RoomView) -> usize {
    let names: usize =
        view.participants.iter().chain(&view.active_participants).map(|n| n.as_str().len() + 3).sum();
    let messages: usize =
        view.messages.iter().map(|m| 240 + m.content.as_str().len() + m.room.as_str().len()).sum();
    200 + view.room.name.as_str().len() + names + messages
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
pub struct MessageDto<'a> {
    pub id: i64,
    pub room: &'a str,
    #[schema(minimum = 1)]
    pub seq: i64,
    /// `null` once the sender's account is deleted.
    pub sender: Option<&'a str>,
    #[schema(format = "uuid")]
    pub sender_id: Option<String>,
    pub content: &'a str,
    #[schema(format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub timestamp: String,
    pub client_msg_id: Option<&'a str>,
}

// The answers borrow from the domain's values: `GET /api/rooms/` writes up to 200 rooms of
// 200 messages each, and copying every string first was a tenth of its time.
impl<'a> From<&'a Message> for MessageDto<'a> {
    fn from(m: &'a Message) -> Self {
        Self {
            id: m.id.0,
            room: m.room.as_str(),
            seq: m.seq.0,
            sender: m.sender.as_ref().map(Username::as_str),
            sender_id: m.sender_id.map(|s| s.to_string()),
            content: m.content.as_str(),
            timestamp: timestamp(m.created_at),
            client_msg_id: m.client_msg_id.as_ref().map(ClientMsgId::as_str),
        }
    }
}

/// A room with its members, who is online, the caller's unread count and its last messages.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Room)]
pub struct RoomDto<'a> {
    pub id: i64,
    pub name: &'a str,
    #[schema(format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub created_at: String,
    /// Members, by username.
    pub participants: Vec<&'a str>,
    /// Members with a live WebSocket now, on any node.
    pub active_participants: Vec<&'a str>,
    #[schema(minimum = 0)]
    pub last_seq: i64,
    /// `last_seq` minus the caller's read marker; 0 when not joined.
    #[schema(minimum = 0)]
    pub unread: i64,
    pub joined: bool,
    /// The last messages, oldest first.
    pub messages: Vec<MessageDto<'a>>,
}

impl<'a> From<&'a RoomView> for RoomDto<'a> {
    fn from(v: &'a RoomView) -> Self {
        Self {
            id: v.room.id.0,
            name: v.room.name.as_str(),
            created_at: timestamp(v.room.created_at),
            participants: v.participants.iter().map(Username::as_str).collect(),
            active_participants: v.active_participants.iter().map(Username::as_str).collect(),
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
pub struct JoinResponse<'a> {
    pub room: RoomDto<'a>,
    /// Whether this call created the room.
    pub created: bool,
}

/// A page of a room's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPageDto<'a> {
    pub messages: Vec<MessageDto<'a>>,
    /// Whether more messages lie beyond the page in its direction.
    pub has_more: bool,
}
