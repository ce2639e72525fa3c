//! The frames of SPEC §4, encoded as WebSocket frames once and shared.

use crate::dto::MessageDto;
use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::{Value, json};
use webchat_domain::model::{Message, Seq};

/// Control frames carry at most this many bytes (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// One WebSocket frame, header included, ready to write. A server's frames are not masked,
/// so the same bytes go to every socket: a message is encoded once and shared (by
/// reference count) by every socket that gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    fn encode(op: OpCode, payload: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(payload.len() + 10);
        Parser::write_message(&mut buf, payload, op, true, false);
        Self(buf.freeze())
    }

    fn text(json: &[u8]) -> Self {
        Self::encode(OpCode::Text, json)
    }

    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

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
    Frame::text(v.to_string().as_bytes())
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
    Frame::text(&serde_json::to_vec(&f).unwrap_or_default())
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

/// The JSON `pong`, for clients that cannot see protocol frames.
#[must_use]
pub fn pong() -> Frame {
    frame(&json!({"type": "pong"}))
}

/// The protocol ping of the heartbeat.
#[must_use]
pub fn ping_control() -> Frame {
    Frame::encode(OpCode::Ping, b"")
}

/// The protocol pong answering a client's ping with its payload.
#[must_use]
pub fn pong_control(payload: &[u8]) -> Frame {
    Frame::encode(OpCode::Pong, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// The close frame with `code` and no reason.
#[must_use]
pub fn close(code: u16) -> Frame {
    let mut buf = BytesMut::with_capacity(4);
    Parser::write_close(&mut buf, Some(CloseReason { code: code.into(), description: None }), false);
    Frame(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `frame` back as a client does: unmasked, one whole frame.
    fn parse(frame: &Frame) -> (OpCode, Vec<u8>) {
        let mut buf = BytesMut::from(frame.as_bytes());
        let (fin, op, payload) =
            Parser::parse(&mut buf, false, usize::MAX).expect("a valid frame").expect("whole");
        assert!(fin, "one frame per message");
        assert!(buf.is_empty(), "nothing after the frame");
        (op, payload.map(|p| p.to_vec()).unwrap_or_default())
    }

    #[test]
    fn text_frames_of_every_length_class_read_back_as_the_same_json() {
        // 7-bit, 16-bit and 64-bit payload lengths.
        for len in [0, 125, 126, 65_535, 65_536, 70_000] {
            let content = "x".repeat(len);
            let f = frame(&json!({"type": "message", "content": content}));
            let (op, payload) = parse(&f);
            assert_eq!(op, OpCode::Text);
            let v: Value = serde_json::from_slice(&payload).expect("JSON");
            assert_eq!(v["content"].as_str().map(str::len), Some(len));
        }
    }

    #[test]
    fn close_frames_carry_their_code() {
        let mut buf = BytesMut::from(close(4008).as_bytes());
        let (_, op, payload) = Parser::parse(&mut buf, false, 125).expect("valid").expect("whole");
        assert_eq!(op, OpCode::Close);
        let reason = Parser::try_parse_close_payload(&payload.expect("payload")).expect("valid");
        assert_eq!(reason.map(|r| u16::from(r.code)), Some(4008));
    }

    #[test]
    fn a_pong_repeats_at_most_125_bytes_of_the_ping() {
        let (op, payload) = parse(&pong_control(&[7; 300]));
        assert_eq!(op, OpCode::Pong);
        assert_eq!(payload, vec![7; 125]);
        assert_eq!(parse(&ping_control()), (OpCode::Ping, Vec::new()));
    }
}
