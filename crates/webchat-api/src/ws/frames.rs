//! The JSON frames of SPEC §4.

use crate::dto::MessageDto;
use serde::Serialize;
use serde_json::{Value, json};
use webchat_domain::model::{Message, Seq};

/// A frame ready to write, serialized once and shared (by reference count) by every
/// socket that gets it.
pub type Frame = bytestring::ByteString;

/// A frame in a socket's queue. A message carries when it was stored, so the socket can
/// measure the delivery latency when it writes it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub frame: Frame,
    /// The message's timestamp (Unix milliseconds); `None` for other frames.
    pub stored_at_ms: Option<i64>,
}

impl From<Frame> for Outgoing {
    fn from(frame: Frame) -> Self {
        Self { frame, stored_at_ms: None }
    }
}

fn frame(v: &Value) -> Frame {
    Frame::from(v.to_string())
}

#[derive(Serialize)]
struct MessageFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    message: &'a MessageDto<'a>,
    /// The original client reads `message`.
    #[serde(rename = "message")]
    legacy: &'a str,
}

#[must_use]
pub fn message(m: &Message) -> Frame {
    let dto = MessageDto::from(m);
    let f = MessageFrame { kind: "message", message: &dto, legacy: dto.content };
    Frame::from(serde_json::to_string(&f).unwrap_or_default())
}

#[must_use]
pub fn ack(client_msg_id: Option<&str>, m: &Message) -> Frame {
    frame(
        &json!({"type": "ack", "client_msg_id": client_msg_id, "id": m.id.0, "seq": m.seq.0, "room": m.room.as_str()}),
    )
}

#[must_use]
pub fn ready(room: &str, last_seq: Seq) -> Frame {
    frame(&json!({"type": "ready", "room": room, "last_seq": last_seq.0}))
}

#[must_use]
pub fn resync_required(room: &str, last_seq: Seq) -> Frame {
    frame(&json!({"type": "resync_required", "room": room, "last_seq": last_seq.0}))
}

#[must_use]
pub fn presence(room: &str, user: &str, online: bool) -> Frame {
    frame(
        &json!({"type": "presence", "room": room, "user": user, "status": if online { "online" } else { "offline" }}),
    )
}

#[must_use]
pub fn typing(room: &str, user: &str) -> Frame {
    frame(&json!({"type": "typing", "room": room, "user": user}))
}

#[must_use]
pub fn error(code: &str, detail: &str, client_msg_id: Option<&str>) -> Frame {
    let mut v = json!({"type": "error", "code": code, "detail": detail});
    if let Some(id) = client_msg_id {
        v["client_msg_id"] = Value::from(id);
    }
    frame(&v)
}

#[must_use]
pub fn pong() -> Frame {
    frame(&json!({"type": "pong"}))
}
