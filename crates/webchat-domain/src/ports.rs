//! The ports: everything the domain needs from the outside world.
//!
//! Every port is synchronous: callers run use cases on a blocking thread pool, so the
//! implementations may block on the database or on bcrypt. Storage ports share the error
//! contract of [`StoreError`]: `Conflict` only where a method's doc says so, `Unavailable`
//! when the store cannot be reached, `Internal` for anything else.

use crate::StoreError;
use crate::model::{
    Appended, Claims, Event, HistoryCursor, HistoryPage, LatestMessages, ListedRoom, Listing, NewMessage,
    NewUser, Page, PasswordHash, Room, RoomId, RoomListQuery, RoomName, Seq, Session, SessionId, User,
    UserId, UserListQuery, UserPatch, Username,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait UserRepository: Send + Sync {
    /// Stores a new account.
    /// # Errors
    /// `Conflict(Email)` or `Conflict(Username)` when either is taken, ignoring case.
    fn insert(&self, user: &NewUser) -> StoreResult<User>;
    fn find(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The account and its password hash, by email ignoring case.
    fn find_credentials(&self, email: &str) -> StoreResult<Option<(User, PasswordHash)>>;
    fn password_hash(&self, id: UserId) -> StoreResult<Option<PasswordHash>>;
    /// Ordered by username ignoring case.
    fn list(&self, query: &UserListQuery) -> StoreResult<Vec<User>>;
    /// Applies the patch; `Ok(None)` when the user does not exist.
    /// # Errors
    /// `Conflict(Email)` or `Conflict(Username)` when the new value belongs to someone else.
    fn update(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<User>>;
    fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<()>;
    /// Deletes the account with its sessions and memberships, keeping its messages with no
    /// sender, in one transaction. Returns the ids of the sessions it ended, or `None` when
    /// there was no such user.
    fn delete(&self, id: UserId) -> StoreResult<Option<Vec<SessionId>>>;
}

/// The outcome of presenting a refresh token's `jti` for rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The `jti` was current: it is retired and the new one is current.
    Rotated,
    /// The session is live but the `jti` was already retired: a reuse.
    Stale,
    /// No such session, or it was revoked.
    Gone,
}

/// Login sessions and their current refresh token.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SessionRepository: Send + Sync {
    fn insert(&self, session: &Session) -> StoreResult<()>;
    fn find(&self, id: SessionId) -> StoreResult<Option<Session>>;
    /// Atomically swaps `old_jti` for `new_jti` if and only if `old_jti` is current and the
    /// session is live; concurrent rotations of one token succeed at most once.
    fn rotate(
        &self,
        id: SessionId,
        old_jti: Uuid,
        new_jti: Uuid,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome>;
    /// Revokes one session; `false` when it was already gone or revoked.
    fn revoke(&self, id: SessionId) -> StoreResult<bool>;
    /// Revokes every live session of `user` except `keep`; returns those it revoked.
    fn revoke_all_of_user(&self, user: UserId, keep: Option<SessionId>) -> StoreResult<Vec<SessionId>>;
    /// Of `ids`, those that are no longer live (revoked, or no such session), in one read.
    /// Lets a node that missed revocation notices find the sockets it must close.
    fn ended_among(&self, ids: &[SessionId]) -> StoreResult<Vec<SessionId>>;
}

/// Rooms and their memberships (with each member's read marker).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RoomRepository: Send + Sync {
    fn find_by_name(&self, name: &RoomName) -> StoreResult<Option<Room>>;
    /// Creates the room if no room has this name (ignoring case) and makes `user` a member;
    /// returns the room and whether this call created it. Safe under concurrent calls.
    fn join_or_create(&self, name: &RoomName, user: UserId, now: DateTime<Utc>) -> StoreResult<(Room, bool)>;
    /// Ends a membership; `false` when `user` was not a member.
    fn leave(&self, room: RoomId, user: UserId) -> StoreResult<bool>;
    /// A page of rooms, most recently active first, each with its members and `viewer`'s
    /// read marker (`None` where `viewer` is not a member); `query.joined` keeps only the
    /// rooms `viewer` has joined. A listing is a page, so stores answer it with as few
    /// round trips as they can.
    fn list(&self, viewer: UserId, query: &RoomListQuery) -> StoreResult<Vec<ListedRoom>>;
    /// [`list`](Self::list) without holding the caller's thread for a round trip: `done`
    /// runs with the same page, on the caller's thread where the store is in-process (the
    /// default: it calls `list`), or on a reader thread of the store's, which may answer the
    /// listings queued together in one round trip. A store may read the last
    /// `query.messages` messages of the listed rooms along with the page
    /// ([`Listing::latest`]), and who is online in them where it keeps presence
    /// ([`Listing::online`]). `done` runs on the store's thread, one listing after another:
    /// it should not wait on anything.
    /// # Errors
    /// Those of `list`, handed to `done`.
    fn list_then(&self, viewer: UserId, query: RoomListQuery, done: ListDone) {
        done(self.list(viewer, &query).map(|rooms| Listing { rooms, latest: None, online: None }));
    }
    /// A page of the rooms `user` has joined, most recently active first, without members.
    fn joined(&self, user: UserId, page: Page) -> StoreResult<Vec<Room>>;
    /// The members of each room, as `(room, user, username)`, ordered by join time.
    fn members(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, UserId, Username)>>;
    /// `user`'s read marker in each of `rooms` it has joined; rooms it has not joined are absent.
    fn read_markers(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>>;
    /// Moves `user`'s read marker forward to `seq` (never back); `false` when not a member.
    fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<bool>;
}

/// Receives the answer of [`RoomRepository::list_then`].
pub type ListDone = Box<dyn FnOnce(StoreResult<Listing>) + Send>;

/// Receives the outcome of [`MessageRepository::append_then`].
pub type AppendDone = Box<dyn FnOnce(StoreResult<Appended>) + Send>;

/// The message log of every room.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait MessageRepository: Send + Sync {
    /// Appends a message with the next `seq` of its room, assigned inside the same
    /// transaction, so a room's `seq`s never have gaps or repeats. In that transaction the
    /// sender must be a member of the room ([`Appended::NotAMember`] otherwise), and a
    /// `client_msg_id` this sender already used in this room stores nothing and returns the
    /// original ([`Appended::Duplicate`]). Stores may commit concurrent appends together
    /// (group commit); each call still returns only once its message is durable.
    /// # Errors
    /// `Unavailable` when the store cannot be reached; never `Conflict`.
    fn append(&self, message: &NewMessage) -> StoreResult<Appended>;
    /// [`append`](Self::append) without waiting: queues the message and returns at once;
    /// `done` runs with the outcome, on a thread of the store's, once the message is durable
    /// or has failed. Outcomes are handed over in the order the store took the seqs, so a
    /// room's messages reach `done` in `seq` order. `done` must not block.
    fn append_then(&self, message: NewMessage, done: AppendDone);
    fn page(&self, room: RoomId, cursor: HistoryCursor, limit: u32) -> StoreResult<HistoryPage>;
    /// The last `per_room` messages of each of `rooms` (each named once) up to its `Seq`,
    /// oldest first; a room with no messages may be absent.
    fn latest(&self, rooms: &[(RoomId, Seq)], per_room: u32) -> StoreResult<Vec<(RoomId, LatestMessages)>>;
}

/// Password hashing (bcrypt in production).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PasswordHasher: Send + Sync {
    /// # Errors
    /// `Internal` only when the hashing library fails.
    fn hash(&self, password: &str) -> StoreResult<PasswordHash>;
    /// `Ok(false)` for a wrong password or a malformed hash.
    fn verify(&self, password: &str, hash: &PasswordHash) -> StoreResult<bool>;
}

/// Why a token could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDecodeError {
    /// Not a token of ours: malformed, badly signed or missing claims.
    Invalid,
}

/// Signs and reads tokens. The codec checks the signature and shape only; expiry and
/// session liveness are the domain's rules, checked against the [`Clock`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenCodec: Send + Sync {
    /// # Errors
    /// `Internal` only when signing fails.
    fn encode(&self, claims: &Claims) -> StoreResult<String>;
    /// # Errors
    /// [`TokenDecodeError::Invalid`] for anything that is not a well-signed token.
    fn decode(&self, token: &str) -> Result<Claims, TokenDecodeError>;
}

/// The time. A port so that expiry is testable.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Random identifiers (users, sessions, token ids).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn new_uuid(&self) -> Uuid;
}

/// Who is online: the users with a live WebSocket in a room.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PresenceReader: Send + Sync {
    /// The `(room, user)` pairs with a live socket, for all of `rooms` at once (one read
    /// however many rooms a page lists). Unreadable presence is empty, never an error.
    fn active_users(&self, rooms: &[RoomId]) -> Vec<(RoomId, UserId)>;
}

/// Where the bus hands the events this node must deliver (the WebSocket hub).
pub trait EventSink: Send + Sync {
    /// Called for every event of a watched room and every revocation, in publish order
    /// per publisher. Must not block: it runs on the publisher's thread.
    fn deliver(&self, event: &Event);
}

/// How a bus reaches the other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusHealth {
    /// One node, in-process: nothing to lose.
    Local,
    /// Connected to the other nodes.
    Connected,
    /// Cut off from the other nodes: their messages arrive only by reading the log.
    Disconnected,
}

/// The fan-out between the code that changes things and the live connections that must
/// hear about it, on this node (in-process) or across nodes.
///
/// Delivery is at-most-once and may reorder messages of different publishers: receivers
/// order messages by `seq` and read gaps from the log ([`MessageRepository`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait MessageBus: Send + Sync {
    /// Sends an event to every node (this one included). Never blocks on the network.
    fn publish(&self, event: Event);
    /// Sets where this node's events go; called once at start-up.
    fn attach(&self, sink: std::sync::Arc<dyn EventSink>);
    /// This node now holds sockets in `room` (a cross-node bus subscribes to it).
    fn watch_room(&self, room: RoomId);
    /// This node no longer holds sockets in `room`.
    fn unwatch_room(&self, room: RoomId);
    /// Whether notices from other nodes can arrive; when not, receivers poll the log.
    fn health(&self) -> BusHealth;
}

/// Cluster-wide presence: which users have a live socket in which room on which node.
/// Each node refreshes its rows with a heartbeat; rows of a node that stopped expire.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PresenceStore: Send + Sync {
    /// `user` has a socket in `room` on `node` (idempotent).
    fn enter(&self, node: Uuid, room: RoomId, user: UserId, now: DateTime<Utc>) -> StoreResult<()>;
    /// `user` has no socket left in `room` on `node`.
    fn leave(&self, node: Uuid, room: RoomId, user: UserId) -> StoreResult<()>;
    /// Whether `user` has a socket in `room` on a node other than `node`, seen since `since`.
    fn elsewhere(&self, node: Uuid, room: RoomId, user: UserId, since: DateTime<Utc>) -> StoreResult<bool>;
    /// [`enter`](Self::enter) for every pair of `entered` and [`leave`](Self::leave) for every
    /// pair of `left`, in one transaction: one commit for a burst of sockets (a node's
    /// restart reconnects thousands at once). A pair in both lists is entered first, then left.
    /// On error nothing is recorded.
    fn record(
        &self,
        node: Uuid,
        entered: &[(RoomId, UserId)],
        left: &[(RoomId, UserId)],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Of `pairs`, those whose user has a socket in that room on a node other than `node`,
    /// seen since `since`: [`elsewhere`](Self::elsewhere) for many pairs in one read.
    fn elsewhere_among(
        &self,
        node: Uuid,
        pairs: &[(RoomId, UserId)],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(RoomId, UserId)>>;
    /// Refreshes every row of `node`; returns how many rows it refreshed (fewer than the
    /// node's live sockets means other nodes expired some: the node enters them again).
    fn heartbeat(&self, node: Uuid, now: DateTime<Utc>) -> StoreResult<usize>;
    /// Deletes rows not refreshed since `before`; returns the users who thereby went
    /// offline in a room (no row left there), with the names the notices need.
    fn expire(&self, before: DateTime<Utc>) -> StoreResult<Vec<(RoomId, RoomName, UserId, Username)>>;
    /// The `(room, user)` pairs with a socket on any node seen since `since`, for all of
    /// `rooms` in one read.
    fn active(&self, rooms: &[RoomId], since: DateTime<Utc>) -> StoreResult<Vec<(RoomId, UserId)>>;
}
