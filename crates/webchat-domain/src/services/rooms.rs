//! Rooms, memberships, history and sending.

use super::DomainResult;
use crate::DomainError;
use crate::model::Event;
use crate::model::{
    Appended, AuthContext, ClientMsgId, HistoryCursor, HistoryPage, LatestMessages, ListedRoom, Listing,
    Members, Message, MessageContent, NewMessage, Room, RoomId, RoomListQuery, RoomName, RoomView, Seq,
    UserId,
};
use crate::ports::{Clock, MessageBus, MessageRepository, PresenceReader, RoomRepository, StoreResult};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The room and message use cases.
pub struct RoomService {
    rooms: Arc<dyn RoomRepository>,
    messages: Arc<dyn MessageRepository>,
    presence: Arc<dyn PresenceReader>,
    clock: Arc<dyn Clock>,
    bus: Arc<dyn MessageBus>,
}

impl std::fmt::Debug for RoomService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomService").finish_non_exhaustive()
    }
}

/// How many messages a single room object embeds.
pub const ROOM_VIEW_MESSAGES: u32 = 50;

impl RoomService {
    #[must_use]
    pub fn new(
        rooms: Arc<dyn RoomRepository>,
        messages: Arc<dyn MessageRepository>,
        presence: Arc<dyn PresenceReader>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn MessageBus>,
    ) -> Self {
        Self { rooms, messages, presence, clock, bus }
    }

    /// Rooms, most recently active first, as `viewer` sees them.
    /// # Errors
    /// Store failures.
    pub fn list(&self, viewer: AuthContext, query: &RoomListQuery) -> DomainResult<Vec<RoomView>> {
        let rooms = self.rooms.list(viewer.user_id, query)?;
        self.views(rooms, query.messages)
    }

    /// [`Self::list`] without holding the caller's thread while the store reads (see
    /// [`RoomRepository::list_then`]): `done` gets the same answer, on the caller's thread
    /// or on one of the store's.
    pub fn list_then(
        &self,
        viewer: AuthContext,
        query: RoomListQuery,
        done: impl FnOnce(DomainResult<Vec<RoomView>>) + Send + 'static,
    ) {
        let views = self.view_builder();
        let per_room = query.messages;
        self.rooms.list_then(
            viewer.user_id,
            query,
            Box::new(move |listed| {
                done(
                    listed.map_err(DomainError::from).and_then(|listing| views.build_with(listing, per_room)),
                )
            }),
        );
    }

    /// Joins the room, creating it first if no room has this name. Idempotent.
    /// # Errors
    /// Store failures.
    pub fn join(&self, viewer: AuthContext, name: &RoomName) -> DomainResult<(RoomView, bool)> {
        let (room, created) = self.join_room(viewer, name)?;
        let view = self.one_view(viewer.user_id, room)?;
        Ok((view, created))
    }

    /// [`Self::join`] for a socket that only needs the room: no members, markers or
    /// messages are read (a connect costs one write transaction, not four queries more).
    /// # Errors
    /// Store failures.
    pub fn enter(&self, viewer: AuthContext, name: &RoomName) -> DomainResult<Room> {
        Ok(self.join_room(viewer, name)?.0)
    }

    /// Joins (creating the room if need be) and tells every node.
    fn join_room(&self, viewer: AuthContext, name: &RoomName) -> DomainResult<(Room, bool)> {
        let (room, created) = self.rooms.join_or_create(name, viewer.user_id, self.clock.now())?;
        self.bus.publish(Event::Membership {
            room: room.id,
            room_name: room.name.clone(),
            user: viewer.user_id,
            joined: true,
        });
        Ok((room, created))
    }

    /// # Errors
    /// `NotFound`, store failures.
    pub fn get(&self, viewer: AuthContext, name: &RoomName) -> DomainResult<RoomView> {
        let room = self.find(name)?;
        self.one_view(viewer.user_id, room)
    }

    /// Leaves the room; leaving a room one is not in is a no-op.
    /// # Errors
    /// `NotFound`, store failures.
    pub fn leave(&self, viewer: AuthContext, name: &RoomName) -> DomainResult<()> {
        let room = self.find(name)?;
        if self.rooms.leave(room.id, viewer.user_id)? {
            self.bus.publish(Event::Membership {
                room: room.id,
                room_name: room.name,
                user: viewer.user_id,
                joined: false,
            });
        }
        Ok(())
    }

    /// A page of the room's history. Any authenticated user may read any room.
    /// # Errors
    /// `NotFound`, store failures.
    pub fn history(&self, name: &RoomName, cursor: HistoryCursor, limit: u32) -> DomainResult<HistoryPage> {
        let room = self.find(name)?;
        Ok(self.messages.page(room.id, cursor, limit)?)
    }

    /// Appends a message to the room's log. Returns the message and whether it was stored
    /// now (`false`: a resend of `client_msg_id`, answered with the original).
    /// # Errors
    /// `NotFound`, `NotAMember`, store failures.
    pub fn post(
        &self,
        viewer: AuthContext,
        name: &RoomName,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> DomainResult<(Message, bool)> {
        let room = self.find(name)?;
        self.post_to(viewer, room.id, content, client_msg_id)
    }

    /// [`post`](Self::post) for a room already resolved (a socket holds the id).
    /// # Errors
    /// `NotAMember`, store failures.
    pub fn post_to(
        &self,
        viewer: AuthContext,
        room: RoomId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> DomainResult<(Message, bool)> {
        let message = self.new_message(viewer, room, content, client_msg_id);
        settle(&*self.bus, self.messages.append(&message))
    }

    /// [`post_to`](Self::post_to) without waiting: returns at once, and `done` gets the
    /// result on a thread of the store's once the message is durable. No thread waits for
    /// the commit, so a socket can have many sends in flight for the price of a callback.
    ///
    /// `done` runs just before the message is published, on the same thread: the caller's
    /// answer (a socket's ack) is under way before the fan-out, so the sender's answer and
    /// its own copy of the message can leave together.
    pub fn post_to_then(
        &self,
        viewer: AuthContext,
        room: RoomId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
        done: impl FnOnce(DomainResult<(Message, bool)>) + Send + 'static,
    ) {
        let message = self.new_message(viewer, room, content, client_msg_id);
        let bus = Arc::clone(&self.bus);
        self.messages.append_then(
            message,
            Box::new(move |outcome| {
                let (answer, stored) = judge(outcome);
                done(answer);
                if let Some(message) = stored {
                    bus.publish(Event::Message(message));
                }
            }),
        );
    }

    fn new_message(
        &self,
        viewer: AuthContext,
        room: RoomId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> NewMessage {
        NewMessage {
            room_id: room,
            sender_id: viewer.user_id,
            content,
            client_msg_id,
            created_at: self.clock.now(),
        }
    }

    /// The room of this name.
    /// # Errors
    /// `NotFound`, store failures.
    pub fn find_room(&self, name: &RoomName) -> DomainResult<Room> {
        self.find(name)
    }

    /// Every room `user` has joined, most recently active first.
    /// # Errors
    /// Store failures.
    pub fn joined_rooms(&self, user: UserId) -> DomainResult<Vec<Room>> {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let page = crate::model::Page::new(crate::model::Page::MAX_LIMIT, offset)
                .map_err(|e| DomainError::Internal(e.0))?;
            let batch = self.rooms.joined(user, page)?;
            let n = batch.len();
            // Activity can reorder rooms between pages: keep each room once.
            for room in batch {
                if !all.iter().any(|r: &Room| r.id == room.id) {
                    all.push(room);
                }
            }
            if n < crate::model::Page::MAX_LIMIT as usize {
                return Ok(all);
            }
            offset += n as u64;
            if offset > 100_000 {
                return Ok(all);
            }
        }
    }

    /// Up to `limit` messages of `room` after `after`, oldest first: for replays and for
    /// repairing gaps in live delivery.
    /// # Errors
    /// Store failures.
    pub fn messages_after(&self, room: RoomId, after: Seq, limit: u32) -> DomainResult<HistoryPage> {
        Ok(self.messages.page(room, HistoryCursor::After(after), limit)?)
    }

    /// Moves the caller's read marker forward to `seq`, capped at the room's last message.
    /// # Errors
    /// `NotFound`, `NotAMember`, store failures.
    pub fn mark_read(&self, viewer: AuthContext, name: &RoomName, seq: Seq) -> DomainResult<()> {
        let room = self.find(name)?;
        let seq = seq.min(room.last_seq);
        if self.rooms.mark_read(room.id, viewer.user_id, seq)? {
            Ok(())
        } else {
            Err(DomainError::NotAMember)
        }
    }

    fn find(&self, name: &RoomName) -> DomainResult<Room> {
        self.rooms.find_by_name(name)?.ok_or(DomainError::NotFound("room"))
    }

    fn one_view(&self, viewer: UserId, room: Room) -> DomainResult<RoomView> {
        let ids = [room.id];
        let members: Members =
            self.rooms.members(&ids)?.into_iter().map(|(_, user, name)| (user, name)).collect();
        let read_marker = self
            .rooms
            .read_markers(viewer, &ids)?
            .into_iter()
            .find(|(id, _)| *id == room.id)
            .map(|(_, seq)| seq);
        self.views(vec![ListedRoom { room, members, read_marker }], ROOM_VIEW_MESSAGES)?
            .pop()
            .ok_or_else(|| DomainError::Internal("room view lost".into()))
    }

    fn views(&self, rooms: Vec<ListedRoom>, per_room: u32) -> DomainResult<Vec<RoomView>> {
        self.view_builder().build(rooms, per_room)
    }

    fn view_builder(&self) -> Views {
        Views { messages: Arc::clone(&self.messages), presence: Arc::clone(&self.presence) }
    }
}

/// What turns listed rooms into views: who is online, and each room's last messages.
struct Views {
    messages: Arc<dyn MessageRepository>,
    presence: Arc<dyn PresenceReader>,
}

impl Views {
    /// Builds the views of many rooms with a fixed number of queries, whatever their count.
    fn build(&self, rooms: Vec<ListedRoom>, per_room: u32) -> DomainResult<Vec<RoomView>> {
        self.build_with(Listing { rooms, latest: None, online: None }, per_room)
    }

    /// [`Self::build`] with what the store read along with the page already.
    fn build_with(&self, listing: Listing, per_room: u32) -> DomainResult<Vec<RoomView>> {
        let Listing { rooms, latest: known_latest, online: known_online } = listing;
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let present = known_online.unwrap_or_else(|| {
            let ids: Vec<RoomId> = rooms.iter().map(|r| r.room.id).collect();
            self.presence.active_users(&ids)
        });
        let mut online: HashMap<RoomId, HashSet<UserId>> = HashMap::new();
        for (room, user) in present {
            online.entry(room).or_default().insert(user);
        }
        let mut latest: HashMap<RoomId, LatestMessages> = HashMap::new();
        if per_room > 0 {
            if let Some(known) = known_latest {
                latest.extend(known);
            } else {
                let wanted: Vec<(RoomId, Seq)> = rooms
                    .iter()
                    .filter(|r| r.room.last_seq > Seq::ZERO)
                    .map(|r| (r.room.id, r.room.last_seq))
                    .collect();
                if !wanted.is_empty() {
                    latest.extend(self.messages.latest(&wanted, per_room)?);
                }
            }
        }
        Ok(rooms
            .into_iter()
            .map(|ListedRoom { room, members, read_marker }| {
                let online = online.remove(&room.id).unwrap_or_default();
                RoomView {
                    participants: members.iter().map(|(_, name)| name.clone()).collect(),
                    active_participants: members
                        .iter()
                        .filter(|(id, _)| online.contains(id))
                        .map(|(_, name)| name.clone())
                        .collect(),
                    unread: read_marker.map_or(0, |m| (room.last_seq.0 - m.0).max(0)),
                    joined: read_marker.is_some(),
                    messages: latest.remove(&room.id).unwrap_or_default(),
                    room,
                }
            })
            .collect())
    }
}

/// An append's outcome as the use case answers it: a stored message is published before
/// the answer is returned.
fn settle(bus: &dyn MessageBus, outcome: StoreResult<Appended>) -> DomainResult<(Message, bool)> {
    let (answer, stored) = judge(outcome);
    if let Some(message) = stored {
        bus.publish(Event::Message(message));
    }
    answer
}

/// An append's outcome as the use case answers it, and the message to publish, if any.
fn judge(outcome: StoreResult<Appended>) -> (DomainResult<(Message, bool)>, Option<Message>) {
    match outcome {
        Ok(Appended::Stored(message)) => (Ok((message.clone(), true)), Some(message)),
        Ok(Appended::Duplicate(original)) => (Ok((original, false)), None),
        Ok(Appended::NotAMember) => (Err(DomainError::NotAMember), None),
        Err(e) => (Err(e.into()), None),
    }
}

#[cfg(test)]
#[path = "rooms_tests.rs"]
mod tests;
