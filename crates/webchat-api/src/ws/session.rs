//! One WebSocket connection's task: the replay, the client's frames (sends, typing, read
//! markers, pings) and the heartbeat. Its own frames go to the socket's writer
//! ([`Outbox`](super::outbox::Outbox)), which also drains the hub's queue once this task
//! says the replay is out.

use super::frames::{self, Frame};
use super::hub::{Conn, Hub, close};
use super::outbox::{Direct, Mailbox, Refused};
use crate::MAX_BODY_BYTES;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, ProtocolError};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webchat_domain::DomainError;
use webchat_domain::model::{AuthContext, ClientMsgId, MessageContent, Room, RoomName, Seq};
use webchat_domain::services::RoomService;

/// Past this many missing messages a resume is refused with `resync_required`.
pub const MAX_REPLAY: i64 = 1000;
/// A client that sends nothing for this many heartbeats is closed.
const SILENT_BEATS: u32 = 3;
const BAD_FRAMES_LIMIT: usize = 20;
const BAD_FRAMES_WINDOW: Duration = Duration::from_secs(10);
/// How long a `/ws/` connection waits for a first `resume` frame before going live.
const RESUME_WAIT: Duration = Duration::from_secs(1);
/// How long one of the session's own writes may wait for a client that does not read.
const WRITE_STALL: Duration = Duration::from_secs(30);
/// At most one typing notice per room per this long from one socket.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// How long a close frame may wait behind data a client has not read yet.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Which rooms a connection serves.
#[derive(Debug)]
pub enum Scope {
    /// `/ws/chat/{room}/`, with an optional `after_seq`.
    Room { room: Room, after: Option<Seq>, start: Seq },
    /// `/ws/`: every joined room, each with the `seq` it went live from.
    All { rooms: Vec<(Room, Seq)> },
}

/// Everything a connection's task needs. The hub's queue for the socket is drained by its
/// [`Outbox`](super::outbox::Outbox), not by this task.
#[derive(Debug)]
pub struct Socket {
    pub hub: Arc<Hub>,
    pub rooms: Arc<RoomService>,
    pub conn: Arc<Conn>,
    pub auth: AuthContext,
    pub scope: Scope,
}

/// Why the connection ends.
enum End {
    /// Close with this code.
    Close(u16),
    /// The client went away (or closed first).
    Gone,
}

struct Io {
    /// To the socket's writer, in order.
    out: Mailbox,
    stream: AggregatedMessageStream,
}

impl Io {
    async fn send(&self, conn: &Conn, frame: Frame) -> Result<(), End> {
        self.write(conn, Direct::Frame(frame)).await
    }

    /// Hands one item to the writer, giving up when the connection must close meanwhile (a
    /// reader that stopped reading must not hold its task forever).
    async fn write(&self, conn: &Conn, item: Direct) -> Result<(), End> {
        let item = match self.out.try_send(item) {
            Ok(()) => return Ok(()),
            Err(Refused::Gone) => return Err(End::Gone),
            Err(Refused::Full(item)) => item,
        };
        tokio::select! {
            r = self.out.send(item) => r.map_err(|_| End::Gone),
            code = conn.closer.requested() => Err(End::Close(code)),
            () = tokio::time::sleep(WRITE_STALL) => Err(End::Close(close::SLOW_CONSUMER)),
        }
    }
}

/// Runs the connection to its end, then forgets it in the hub.
pub async fn run(mut socket: Socket, out: Mailbox, stream: AggregatedMessageStream) {
    let mut io = Io { out, stream };
    let end = match serve(&mut socket, &mut io).await {
        Ok(()) => End::Close(close::NORMAL),
        Err(end) => end,
    };
    socket.hub.disconnect(&socket.conn);
    if matches!(end, End::Close(close::SLOW_CONSUMER)) {
        crate::metrics::slow_consumer_closed();
    }
    if let End::Close(code) = end {
        // The close frame waits behind the session's own frames (not the hub's queue, which
        // is discarded); a reader that never reads gets a bounded grace.
        let _ = tokio::time::timeout(CLOSE_GRACE, io.out.send(Direct::Close(frames::close(code)))).await;
    }
}

async fn serve(socket: &mut Socket, io: &mut Io) -> Result<(), End> {
    let mut first = None;
    match &socket.scope {
        Scope::Room { room, after, start } => {
            let (room, after, start) = (room.clone(), *after, *start);
            if let Some(after) = after {
                replay(socket, io, &room, after, start).await?;
            }
            io.send(&socket.conn, frames::ready(room.name.as_str(), start)).await?;
        }
        Scope::All { rooms } => {
            let rooms = rooms.clone();
            // The first frame may say where each room resumes.
            let mut resume = HashMap::new();
            // A revocation during the wait closes the socket at once, not after it.
            let waited = tokio::select! {
                code = socket.conn.closer.requested() => return Err(End::Close(code)),
                waited = tokio::time::timeout(RESUME_WAIT, io.stream.recv()) => waited,
            };
            if let Ok(item) = waited {
                match item {
                    Some(Ok(AggregatedMessage::Text(text))) => match parse_resume(&text) {
                        Some(points) => resume = points,
                        None => first = Some(AggregatedMessage::Text(text)),
                    },
                    Some(Ok(other)) => first = Some(other),
                    Some(Err(e)) => return Err(protocol_end(&e)),
                    None => return Err(End::Gone),
                }
            }
            for (room, start) in rooms {
                if let Some(after) = resume.get(&room.name.normalized()) {
                    replay(socket, io, &room, *after, start).await?;
                }
                io.send(&socket.conn, frames::ready(room.name.as_str(), start)).await?;
            }
        }
    }
    // Replays and `ready` frames are out: the hub's queue follows them.
    io.write(&socket.conn, Direct::Live).await?;
    let mut state = Live::new();
    if let Some(item) = first {
        handle(socket, io, &mut state, item).await?;
    }
    let beat = socket.hub.settings().heartbeat;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    loop {
        tokio::select! {
            biased;
            code = socket.conn.closer.requested() => return Err(End::Close(code)),
            item = io.stream.recv() => match item {
                Some(Ok(item)) => handle(socket, io, &mut state, item).await?,
                Some(Err(e)) => return Err(protocol_end(&e)),
                None => return Err(End::Gone),
            },
            _ = heartbeat.tick() => {
                if state.last_seen.elapsed() > beat * SILENT_BEATS {
                    return Err(End::Close(close::NORMAL));
                }
                // A reader that stopped reading in a quiet room never overflows its queue:
                // queued frames that the writer has not touched for a whole beat mark it.
                let (queued, written) = socket.conn.backlog();
                if queued > 0 && state.stuck_at == Some(written) {
                    return Err(End::Close(close::SLOW_CONSUMER));
                }
                state.stuck_at = (queued > 0).then_some(written);
                io.write(&socket.conn, Direct::Frame(frames::ping_control())).await?;
            }
        }
    }
}

fn protocol_end(e: &ProtocolError) -> End {
    match e {
        ProtocolError::Overflow => End::Close(close::TOO_BIG),
        ProtocolError::Io(io) if io.to_string().contains("size") => End::Close(close::TOO_BIG),
        _ => End::Close(1002),
    }
}

/// `{"type": "resume", "rooms": {"general": 41}}` → room (lowercase) → seq.
fn parse_resume(text: &str) -> Option<HashMap<String, Seq>> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("type")?.as_str()? != "resume" {
        return None;
    }
    let rooms = v.get("rooms")?.as_object()?;
    Some(
        rooms
            .iter()
            .filter_map(|(name, seq)| Some((name.to_lowercase(), Seq(seq.as_i64().filter(|s| *s >= 0)?))))
            .collect(),
    )
}

/// Sends the messages of `room` in `(after, start]`, or `resync_required` when too many.
async fn replay(socket: &Socket, io: &mut Io, room: &Room, after: Seq, start: Seq) -> Result<(), End> {
    if after >= start {
        return Ok(());
    }
    if start.0 - after.0 > MAX_REPLAY {
        crate::metrics::resumed("resync");
        return io.send(&socket.conn, frames::resync_required(room.name.as_str(), start)).await;
    }
    crate::metrics::resumed("replayed");
    let mut from = after;
    while from < start {
        let service = socket.rooms.clone();
        let room_id = room.id;
        let page = actix_web::web::block(move || service.messages_after(room_id, from, 200))
            .await
            .map_err(|_| End::Close(1011))?
            .map_err(|_| End::Close(1011))?;
        if page.messages.is_empty() {
            break;
        }
        for m in page.messages.iter().filter(|m| m.seq <= start) {
            io.send(&socket.conn, frames::message(m)).await?;
            from = m.seq;
        }
        if !page.has_more {
            break;
        }
    }
    Ok(())
}

/// Per-connection state of the live phase.
struct Live {
    last_seen: Instant,
    bad_frames: VecDeque<Instant>,
    typing: HashMap<webchat_domain::model::RoomId, Instant>,
    /// At the last heartbeat frames were queued and the writer had taken this many.
    stuck_at: Option<u64>,
}

impl Live {
    fn new() -> Self {
        Self {
            last_seen: Instant::now(),
            bad_frames: VecDeque::new(),
            typing: HashMap::new(),
            stuck_at: None,
        }
    }

    /// Counts a bad frame; `true` when the connection has sent too many.
    fn bad(&mut self) -> bool {
        let now = Instant::now();
        while self.bad_frames.front().is_some_and(|t| now.duration_since(*t) > BAD_FRAMES_WINDOW) {
            self.bad_frames.pop_front();
        }
        self.bad_frames.push_back(now);
        self.bad_frames.len() > BAD_FRAMES_LIMIT
    }
}

/// A client frame that could not be served.
struct Reject {
    code: &'static str,
    detail: String,
    client_msg_id: Option<String>,
    /// Counts towards the bad-frame limit (a malformed frame, not a refused action).
    malformed: bool,
}

impl Reject {
    fn malformed(code: &'static str, detail: impl Into<String>, client_msg_id: Option<String>) -> Self {
        Self { code, detail: detail.into(), client_msg_id, malformed: true }
    }
}

async fn handle(socket: &Socket, io: &mut Io, state: &mut Live, item: AggregatedMessage) -> Result<(), End> {
    state.last_seen = Instant::now();
    match item {
        AggregatedMessage::Text(text) => {
            if text.len() > MAX_BODY_BYTES {
                return Err(End::Close(close::TOO_BIG));
            }
            match client_frame(socket, io, state, &text).await {
                Ok(()) => Ok(()),
                Err(Err(end)) => Err(end),
                Err(Ok(reject)) => {
                    let frame = frames::error(reject.code, &reject.detail, reject.client_msg_id.as_deref());
                    io.send(&socket.conn, frame).await?;
                    if reject.malformed && state.bad() { Err(End::Close(close::POLICY)) } else { Ok(()) }
                }
            }
        }
        AggregatedMessage::Binary(_) => {
            io.send(&socket.conn, frames::error("invalid_frame", "Send JSON text frames.", None)).await?;
            if state.bad() { Err(End::Close(close::POLICY)) } else { Ok(()) }
        }
        AggregatedMessage::Ping(bytes) => io.send(&socket.conn, frames::pong_control(&bytes)).await,
        AggregatedMessage::Pong(_) => Ok(()),
        AggregatedMessage::Close(_) => Err(End::Close(close::NORMAL)),
    }
}

type FrameResult = Result<(), Result<Reject, End>>;

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Reject> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Reject::malformed("validation_failed", format!("`{key}` must be a string."), None)),
    }
}

async fn client_frame(socket: &Socket, io: &mut Io, state: &mut Live, text: &str) -> FrameResult {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Ok(Reject::malformed("invalid_json", format!("JSON parse error - {e}"), None)))?;
    let Value::Object(obj) = value else {
        return Err(Ok(Reject::malformed("invalid_json", "Expected a JSON object.", None)));
    };
    let kind = string_field(&obj, "type").map_err(Ok)?;
    match kind.as_deref() {
        Some("message") => send_message(socket, io, &obj, "content").await,
        None if obj.contains_key("message") => send_message(socket, io, &obj, "message").await,
        Some("typing") => {
            let room = target_room(socket, &obj).await.map_err(Ok)?;
            let now = Instant::now();
            if state.typing.get(&room.id).is_none_or(|t| now.duration_since(*t) >= TYPING_EVERY) {
                state.typing.insert(room.id, now);
                socket.hub_typing(&room);
            }
            Ok(())
        }
        Some("read") => {
            let seq = match obj.get("seq").and_then(Value::as_i64) {
                Some(s) if s >= 0 => Seq(s),
                _ => {
                    return Err(Ok(Reject::malformed(
                        "validation_failed",
                        "`seq` must be an integer of at least 0.",
                        None,
                    )));
                }
            };
            let room = target_room(socket, &obj).await.map_err(Ok)?;
            let (service, auth) = (socket.rooms.clone(), socket.auth);
            blocking(move || service.mark_read(auth, &room.name, seq))
                .await
                .map_err(|e| Ok(domain_reject(&e, None)))
        }
        Some("ping") => io.send(&socket.conn, frames::pong()).await.map_err(Err),
        Some("resume") => Err(Ok(Reject::malformed(
            "validation_failed",
            "`resume` is only accepted as the first frame on /ws/.",
            None,
        ))),
        Some(other) => {
            Err(Ok(Reject::malformed("unknown_type", format!("Unknown frame type {other:?}."), None)))
        }
        None => Err(Ok(Reject::malformed("validation_failed", "A frame needs a `type`.", None))),
    }
}

async fn send_message(socket: &Socket, io: &mut Io, obj: &Map<String, Value>, key: &str) -> FrameResult {
    let client_msg_id = string_field(obj, "client_msg_id").map_err(Ok)?;
    let raw = string_field(obj, key).map_err(Ok)?;
    let reject = |detail: String| Ok(Reject::malformed("validation_failed", detail, client_msg_id.clone()));
    let content = match raw {
        None => return Err(reject(format!("`{key}` is required."))),
        Some(raw) => MessageContent::parse(&raw).map_err(|e| reject(e.0))?,
    };
    let key_id = client_msg_id.as_deref().map(ClientMsgId::parse).transpose().map_err(|e| reject(e.0))?;
    let room = target_room(socket, obj).await.map_err(|mut r| {
        r.client_msg_id.clone_from(&client_msg_id);
        Ok(r)
    })?;
    if !socket.hub.allow_send(socket.auth.user_id) {
        return Err(Ok(Reject {
            code: "rate_limited",
            detail: "Too many messages; slow down.".into(),
            client_msg_id,
            malformed: false,
        }));
    }
    let (message, created) =
        crate::extract::post_and_wait(&socket.rooms, socket.auth, room.id, content, key_id)
            .await
            .map_err(|e| Ok(domain_reject(&e, client_msg_id.clone())))?;
    if created {
        crate::metrics::message_stored();
    }
    io.send(&socket.conn, frames::ack(client_msg_id.as_deref(), &message)).await.map_err(Err)
}

/// The room a frame is about: the connection's room, or the frame's `room` on `/ws/`.
async fn target_room(socket: &Socket, obj: &Map<String, Value>) -> Result<Room, Reject> {
    match &socket.scope {
        Scope::Room { room, .. } => Ok(room.clone()),
        Scope::All { .. } => {
            let name = string_field(obj, "room")?
                .ok_or_else(|| Reject::malformed("validation_failed", "`room` is required on /ws/.", None))?;
            let name = RoomName::parse(&name).map_err(|_| Reject {
                code: "not_found",
                detail: "No such room.".into(),
                client_msg_id: None,
                malformed: false,
            })?;
            let service = socket.rooms.clone();
            let room =
                blocking(move || service.find_room(&name)).await.map_err(|e| domain_reject(&e, None))?;
            if !socket.conn.rooms().contains(&room.id) {
                return Err(Reject {
                    code: "not_a_member",
                    detail: DomainError::NotAMember.to_string(),
                    client_msg_id: None,
                    malformed: false,
                });
            }
            Ok(room)
        }
    }
}

fn domain_reject(e: &DomainError, client_msg_id: Option<String>) -> Reject {
    if let DomainError::Internal(m) = e {
        tracing::error!(error = %m, "internal error on a socket");
    }
    let detail = match e {
        DomainError::Internal(_) => "A server error occurred.".to_owned(),
        other => other.to_string(),
    };
    Reject { code: e.code(), detail, client_msg_id, malformed: false }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DomainError> + Send + 'static,
) -> Result<T, DomainError> {
    actix_web::web::block(f).await.map_err(|e| DomainError::Internal(format!("blocking pool: {e}")))?
}

impl Socket {
    fn hub_typing(&self, room: &Room) {
        self.hub.typing(room, &self.conn);
    }
}
