//! The encoding of events between nodes: JSON, one object per notice.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webchat_domain::model::{
    ClientMsgId, Event, Message, MessageContent, MessageId, RoomId, RoomName, Seq, SessionId, UserId,
    Username,
};

/// A notice: the event and the node that published it.
#[derive(Debug)]
pub struct Wire {
    pub origin: Uuid,
    pub event: Event,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: Uuid,
    #[serde(flatten)]
    event: WireEvent,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireEvent {
    Message {
        id: i64,
        room_id: i64,
        room: String,
        seq: i64,
        sender_id: Option<Uuid>,
        sender: Option<String>,
        content: String,
        created_at_ms: i64,
        client_msg_id: Option<String>,
    },
    Presence {
        room_id: i64,
        room: String,
        user: Uuid,
        username: String,
        online: bool,
    },
    Typing {
        room_id: i64,
        room: String,
        user: Uuid,
        username: String,
    },
    Membership {
        room_id: i64,
        room: String,
        user: Uuid,
        joined: bool,
    },
    Revoked {
        sessions: Vec<Uuid>,
    },
}

/// # Errors
/// Only if serialization fails, which it does not for these types.
pub fn encode(origin: Uuid, event: &Event) -> Result<Vec<u8>, serde_json::Error> {
    let event = match event {
        Event::Message(m) => WireEvent::Message {
            id: m.id.0,
            room_id: m.room_id.0,
            room: m.room.to_string(),
            seq: m.seq.0,
            sender_id: m.sender_id.map(|u| u.0),
            sender: m.sender.as_ref().map(ToString::to_string),
            content: m.content.as_str().to_owned(),
            created_at_ms: m.created_at.timestamp_millis(),
            client_msg_id: m.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
        },
        Event::Presence { room, room_name, user, username, online } => WireEvent::Presence {
            room_id: room.0,
            room: room_name.to_string(),
            user: user.0,
            username: username.to_string(),
            online: *online,
        },
        Event::Typing { room, room_name, user, username } => WireEvent::Typing {
            room_id: room.0,
            room: room_name.to_string(),
            user: user.0,
            username: username.to_string(),
        },
        Event::Membership { room, room_name, user, joined } => WireEvent::Membership {
            room_id: room.0,
            room: room_name.to_string(),
            user: user.0,
            joined: *joined,
        },
        Event::SessionsRevoked(ids) => WireEvent::Revoked { sessions: ids.iter().map(|s| s.0).collect() },
    };
    serde_json::to_vec(&Envelope { origin, event })
}

/// # Errors
/// When the bytes are not a notice of ours.
pub fn decode(bytes: &[u8]) -> Result<Wire, serde_json::Error> {
    let Envelope { origin, event } = serde_json::from_slice(bytes)?;
    let event = match event {
        WireEvent::Message {
            id,
            room_id,
            room,
            seq,
            sender_id,
            sender,
            content,
            created_at_ms,
            client_msg_id,
        } => Event::Message(Message {
            id: MessageId(id),
            room_id: RoomId(room_id),
            room: RoomName::from_trusted(room),
            seq: Seq(seq),
            sender_id: sender_id.map(UserId),
            sender: sender.map(Username::from_trusted),
            content: MessageContent::from_trusted(content),
            created_at: DateTime::from_timestamp_millis(created_at_ms).unwrap_or_default(),
            client_msg_id: client_msg_id.map(ClientMsgId::from_trusted),
        }),
        WireEvent::Presence { room_id, room, user, username, online } => Event::Presence {
            room: RoomId(room_id),
            room_name: RoomName::from_trusted(room),
            user: UserId(user),
            username: Username::from_trusted(username),
            online,
        },
        WireEvent::Typing { room_id, room, user, username } => Event::Typing {
            room: RoomId(room_id),
            room_name: RoomName::from_trusted(room),
            user: UserId(user),
            username: Username::from_trusted(username),
        },
        WireEvent::Membership { room_id, room, user, joined } => Event::Membership {
            room: RoomId(room_id),
            room_name: RoomName::from_trusted(room),
            user: UserId(user),
            joined,
        },
        WireEvent::Revoked { sessions } => {
            Event::SessionsRevoked(sessions.into_iter().map(SessionId).collect())
        }
    };
    Ok(Wire { origin, event })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_the_wire() {
        let user = UserId(Uuid::new_v4());
        let events = vec![
            Event::Message(Message {
                id: MessageId(7),
                room_id: RoomId(3),
                room: RoomName::from_trusted("general".into()),
                seq: Seq(5),
                sender_id: Some(user),
                sender: Some(Username::from_trusted("alex".into())),
                content: MessageContent::from_trusted("hi \"there\"".into()),
                created_at: DateTime::from_timestamp_millis(1_700_000_000_123).expect("time"),
                client_msg_id: Some(ClientMsgId::from_trusted("c-1".into())),
            }),
            Event::Presence {
                room: RoomId(3),
                room_name: RoomName::from_trusted("general".into()),
                user,
                username: Username::from_trusted("alex".into()),
                online: true,
            },
            Event::Typing {
                room: RoomId(3),
                room_name: RoomName::from_trusted("general".into()),
                user,
                username: Username::from_trusted("alex".into()),
            },
            Event::Membership {
                room: RoomId(3),
                room_name: RoomName::from_trusted("general".into()),
                user,
                joined: false,
            },
            Event::SessionsRevoked(vec![SessionId(Uuid::new_v4())]),
        ];
        let origin = Uuid::new_v4();
        for e in events {
            let bytes = encode(origin, &e).expect("encodes");
            let w = decode(&bytes).expect("decodes");
            assert_eq!((w.origin, w.event), (origin, e));
        }
    }

    #[test]
    fn garbage_is_not_a_notice() {
        assert!(decode(b"{\"origin\": 1}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
