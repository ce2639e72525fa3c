//! The JSON shapes of SPEC §3's objects.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use webchat_domain::model::{ClientMsgId, Message, RoomView, User, Username};

/// RFC 3339, UTC, milliseconds: `2024-09-28T12:30:00.000Z`.
#[must_use]
pub fn timestamp(t: DateTime<Utc>) -> String {
    with_timestamp_text(t, str::to_owned)
}

/// Hands `t`, written as [`timestamp`] writes it, to `f`: from a stack buffer for the years
/// 0–9999, from chrono's general writer otherwise.
fn with_timestamp_text<R>(t: DateTime<Utc>, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0; 24];
    match rfc3339_millis(t, &mut buf) {
        Some(text) => f(text),
        None => f(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    }
}

/// [`timestamp`] into `buf`, for the years 0–9999 (chrono's general formatter, which
/// handles every year, was a fortieth of `GET /api/rooms/`); `None` outside them.
fn rfc3339_millis(t: DateTime<Utc>, buf: &mut [u8; 24]) -> Option<&str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    // A leap second's nanoseconds run past 10^9; chrono writes those.
    let millis = Some(t.nanosecond() / 1_000_000).filter(|m| *m < 1000)?;
    let fields =
        [(0..4, year), (5..7, t.month()), (8..10, t.day()), (11..13, t.hour()), (14..16, t.minute())];
    for (range, value) in fields.into_iter().chain([(17..19, t.second()), (20..23, millis)]) {
        let mut value = value;
        for digit in buf[range].iter_mut().rev() {
            *digit = b'0' + u8::try_from(value % 10).unwrap_or(0);
            value /= 10;
        }
    }
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')] {
        buf[at] = sep;
    }
    std::str::from_utf8(buf).ok()
}

/// A time written as [`timestamp`] writes it, straight into the JSON (no `String`).
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        with_timestamp_text(self.0, |text| serializer.serialize_str(text))
    }
}

/// A UUID in its hyphenated lower-case form, straight into the JSON (no `String`).
#[derive(Debug, Clone, Copy)]
pub struct UuidText(pub uuid::Uuid);

impl Serialize for UuidText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))
    }
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
    #[schema(value_type = Option<String>, format = "uuid")]
    pub sender_id: Option<UuidText>,
    pub content: &'a str,
    #[schema(value_type = String, format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub timestamp: Timestamp,
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
            sender_id: m.sender_id.map(|s| UuidText(s.0)),
            content: m.content.as_str(),
            timestamp: Timestamp(m.created_at),
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
    #[schema(value_type = String, format = DateTime, example = "2024-09-28T12:30:00.000Z")]
    pub created_at: Timestamp,
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
            created_at: Timestamp(v.room.created_at),
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chrono_text(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    #[test]
    fn timestamps_are_written_exactly_as_chrono_writes_them() {
        let mut times: Vec<DateTime<Utc>> = vec![
            DateTime::UNIX_EPOCH,
            Utc.with_ymd_and_hms(2024, 9, 28, 12, 30, 0).single().expect("a time"),
            Utc.with_ymd_and_hms(2000, 2, 29, 23, 59, 59).single().expect("a time"),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).single().expect("year 0"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().expect("year 9999"),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single().expect("year 10000"),
            Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).single().expect("year -1"),
            DateTime::from_timestamp(1_700_000_000, 999_999_999).expect("sub-millisecond digits"),
            DateTime::from_timestamp(1_483_228_799, 1_500_000_000).expect("a leap second"),
        ];
        // Every millisecond digit and a spread of instants, deterministically.
        let mut ms: i64 = 1_733_000_000_000;
        for _ in 0..5_000 {
            ms = ms.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            times.push(DateTime::from_timestamp_millis(ms.rem_euclid(253_402_300_800_000)).expect("a time"));
        }
        for t in times {
            assert_eq!(timestamp(t), chrono_text(t), "{t:?}");
            let json = serde_json::to_string(&Timestamp(t)).expect("json");
            assert_eq!(json, format!("\"{}\"", chrono_text(t)), "{t:?}");
        }
    }

    #[test]
    fn uuids_are_written_hyphenated_in_lower_case() {
        let id = uuid::Uuid::from_u128(0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF);
        assert_eq!(serde_json::to_string(&UuidText(id)).expect("json"), format!("\"{id}\""));
        assert_eq!(format!("{id}"), "01234567-89ab-cdef-0123-456789abcdef");
    }
}
