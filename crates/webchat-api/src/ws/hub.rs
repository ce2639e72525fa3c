//! The hub: this node's live sockets by room and by session, and the fan-out.
//!
//! The hub is the bus's [`EventSink`]. A stored message reaches it once; the hub puts the
//! room's messages in `seq` order (publishers on different threads may overtake each
//! other), serializes each message once, and offers the frame to every socket of the room
//! with a non-blocking `try_send` into that socket's bounded queue. A full queue never
//! blocks the room: that socket is closed with 4008 and resumes from its last `seq`.
//! A gap that is not filled by the publishers is read from the log by the repair thread.

use super::frames::{self, Frame, Outgoing};
use crate::presence::Presence;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc as std_mpsc};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use webchat_domain::model::{Event, Message, Room, RoomId, RoomName, Seq, SessionId, UserId, Username};
use webchat_domain::ports::{BusHealth, EventSink, MessageBus, PresenceStore, SessionRepository};
use webchat_domain::services::RoomService;

pub type ConnId = u64;

/// Close codes of SPEC §4.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const SHUTDOWN: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SLOW_CONSUMER: u16 = 4008;
    pub const NOT_ALLOWED: u16 = 4403;
    pub const REVOKED: u16 = 4401;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Asks a socket to close; the first code asked for wins.
#[derive(Debug, Default)]
pub struct Closer {
    code: AtomicU16,
    notify: Notify,
}

impl Closer {
    pub fn close(&self, code: u16) {
        if self.code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.notify.notify_one();
        }
    }

    #[must_use]
    pub fn code(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// Resolves once a close was asked for.
    pub async fn requested(&self) -> u16 {
        loop {
            if let Some(c) = self.code() {
                return c;
            }
            self.notify.notified().await;
        }
    }
}

/// One WebSocket connection as the hub sees it.
#[derive(Debug)]
pub struct Conn {
    pub id: ConnId,
    pub user: UserId,
    pub username: Username,
    pub session: SessionId,
    /// A `/ws/` connection: follows the user's joins and leaves.
    pub multi: bool,
    tx: mpsc::Sender<Outgoing>,
    /// Frames the socket's writer took from `tx`'s queue.
    written: AtomicU64,
    pub closer: Closer,
    rooms: Mutex<ConnRooms>,
}

/// The rooms a connection is in; `closed` once the hub forgot it, so that no late
/// subscription (a follow racing the close) can bring it back.
#[derive(Debug, Default)]
struct ConnRooms {
    rooms: HashSet<RoomId>,
    closed: bool,
}

impl Conn {
    /// Offers a frame; a full queue closes the socket with 4008 instead of dropping it.
    fn push(&self, item: impl Into<Outgoing>) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(item.into()) {
            self.closer.close(close::SLOW_CONSUMER);
        }
    }

    #[must_use]
    pub fn rooms(&self) -> Vec<RoomId> {
        lock(&self.rooms).rooms.iter().copied().collect()
    }

    /// Counts a frame the socket's writer took from the queue.
    pub fn written(&self) {
        self.written.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames waiting in the queue, and how many the writer has taken so far.
    #[must_use]
    pub fn backlog(&self) -> (usize, u64) {
        (self.tx.max_capacity() - self.tx.capacity(), self.written.load(Ordering::Relaxed))
    }
}

struct RoomState {
    name: RoomName,
    /// The highest `seq` handed to this room's sockets; everything up to it went out.
    last: Seq,
    /// Messages that arrived ahead of a missing `seq`.
    pending: BTreeMap<Seq, Message>,
    conns: HashMap<ConnId, Arc<Conn>>,
}

impl RoomState {
    fn fan_out(&self, m: &Message) {
        if self.conns.is_empty() {
            return;
        }
        let out = Outgoing { frame: frames::message(m), stored_at_ms: Some(m.created_at.timestamp_millis()) };
        for conn in self.conns.values() {
            conn.push(out.clone());
        }
    }

    fn to_others(&self, user: UserId, frame: &Frame) {
        for conn in self.conns.values().filter(|c| c.user != user) {
            conn.push(frame.clone());
        }
    }
}

/// Tuning of the hub.
#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    /// Events a socket may have queued before it is closed with 4008.
    pub socket_queue: usize,
    /// Messages per second per user (burst twice that); 0 turns the limit off.
    pub send_rate: u32,
    /// How often a live socket is pinged and checked for silence and stalls.
    pub heartbeat: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self { socket_queue: 1024, send_rate: 20, heartbeat: Duration::from_secs(20) }
    }
}

/// What a node of a cluster reads from the database besides the log: presence shared
/// through the [`PresenceStore`], and the sessions whose revocation notices it may have
/// missed while cut off from the bus.
pub struct Cluster {
    pub store: Arc<dyn PresenceStore>,
    pub sessions: Arc<dyn SessionRepository>,
    /// This process, as the store knows it.
    pub node: uuid::Uuid,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish_non_exhaustive()
    }
}

/// How long a gap in a room's `seq`s may last before the log is read.
const GAP_GRACE: Duration = Duration::from_millis(20);

/// A node's rows are refreshed this often…
const HEARTBEAT: Duration = Duration::from_secs(5);
/// …and count as gone when older than this.
pub const PRESENCE_TTL: Duration = Duration::from_secs(20);

/// The most presence changes written with one commit.
const PRESENCE_BATCH: usize = 512;

enum Task {
    /// A user's first socket on this node opened in a room, or their last one closed.
    Presence(PresenceChange),
    /// Read the room's log past what was delivered (a gap, or a room just watched).
    Repair { room: RoomId, always: bool },
    /// A user joined a room: their `/ws/` sockets start receiving it.
    Follow { user: UserId, room: RoomName },
    /// Answers once every task queued before it is done (shutdown).
    Flush(std_mpsc::Sender<()>),
}

/// A user's first socket on this node opened in a room (`online`), or their last one closed.
struct PresenceChange {
    room: RoomId,
    room_name: RoomName,
    user: UserId,
    username: Username,
    online: bool,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// This node's sockets and the fan-out to them.
pub struct Hub {
    rooms: Mutex<HashMap<RoomId, Arc<Mutex<RoomState>>>>,
    sessions: Mutex<HashMap<SessionId, HashMap<ConnId, Arc<Conn>>>>,
    /// Every connection by user (memberships follow them).
    users: Mutex<HashMap<UserId, HashMap<ConnId, Arc<Conn>>>>,
    presence: Arc<Presence>,
    /// Makes a presence change and its notice one step, so notices keep their order.
    presence_lock: Mutex<()>,
    /// The last heartbeat refreshed fewer rows than this node has sockets.
    presence_short: AtomicBool,
    /// Rooms with a repair queued: one queued repair per room is enough.
    repairs_queued: Mutex<HashSet<RoomId>>,
    bus: Arc<dyn MessageBus>,
    room_service: Arc<RoomService>,
    tasks: std_mpsc::Sender<Task>,
    cluster: Option<Cluster>,
    next_id: AtomicU64,
    buckets: Mutex<HashMap<UserId, Bucket>>,
    settings: HubSettings,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Hub {
    /// Builds the hub and its repair thread. Attach it to the bus as its sink.
    #[must_use]
    pub fn new(
        room_service: Arc<RoomService>,
        bus: Arc<dyn MessageBus>,
        presence: Arc<Presence>,
        cluster: Option<Cluster>,
        settings: HubSettings,
    ) -> Arc<Self> {
        // Unbounded in type only: repairs are queued once per room, follows once per join
        // and presence changes once per first/last socket.
        let (tasks, rx) = std_mpsc::channel();
        let hub = Arc::new(Self {
            rooms: Mutex::default(),
            sessions: Mutex::default(),
            users: Mutex::default(),
            presence,
            presence_lock: Mutex::default(),
            presence_short: AtomicBool::new(false),
            repairs_queued: Mutex::default(),
            bus,
            room_service,
            tasks,
            cluster,
            next_id: AtomicU64::new(1),
            buckets: Mutex::default(),
            settings,
        });
        let weak = Arc::downgrade(&hub);
        let spawned =
            std::thread::Builder::new().name("webchat-repair".into()).spawn(move || repair_loop(&weak, &rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the repair thread; gaps will wait for the next message");
        }
        hub
    }

    #[must_use]
    pub fn settings(&self) -> HubSettings {
        self.settings
    }

    /// Registers a new connection; returns it and the queue its writer drains.
    pub fn connect(
        &self,
        user: UserId,
        username: Username,
        session: SessionId,
        multi: bool,
    ) -> (Arc<Conn>, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(self.settings.socket_queue.max(1));
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            username,
            session,
            multi,
            tx,
            written: AtomicU64::new(0),
            closer: Closer::default(),
            rooms: Mutex::default(),
        });
        lock(&self.users).entry(user).or_default().insert(conn.id, conn.clone());
        lock(&self.sessions).entry(session).or_default().insert(conn.id, conn.clone());
        (conn, rx)
    }

    /// Adds `conn` to `room`'s live delivery and returns the `seq` from which it is live:
    /// every message after it will be queued, in order; the caller replays what came
    /// before. With `announce`, a `ready` frame is queued first.
    pub fn subscribe(&self, conn: &Arc<Conn>, room: &Room, announce: bool) -> Option<Seq> {
        {
            let mut rooms = lock(&conn.rooms);
            if rooms.closed || !rooms.rooms.insert(room.id) {
                return None;
            }
        }
        let (start, created) = {
            // The room's lock is taken under the map's, as in `unsubscribe`, so a state
            // being removed for its last socket cannot swallow a new one.
            let mut rooms = lock(&self.rooms);
            let created = !rooms.contains_key(&room.id);
            let state = rooms.entry(room.id).or_insert_with(|| {
                Arc::new(Mutex::new(RoomState {
                    name: room.name.clone(),
                    last: room.last_seq,
                    pending: BTreeMap::new(),
                    conns: HashMap::new(),
                }))
            });
            let mut s = lock(state);
            s.conns.insert(conn.id, conn.clone());
            if announce {
                conn.push(frames::ready(s.name.as_str(), s.last));
            }
            (s.last, created)
        };
        if created {
            self.bus.watch_room(room.id);
            // A message stored between reading `room` and creating the state was
            // published to nobody: read the log once to be sure.
            self.task(Task::Repair { room: room.id, always: true });
        }
        let _order = lock(&self.presence_lock);
        if self.presence.connect(room.id, conn.user) {
            self.presence_changed(room.id, room.name.clone(), conn.user, conn.username.clone(), true);
        }
        Some(start)
    }

    /// Removes `conn` from `room`.
    pub fn unsubscribe(&self, conn: &Conn, room: RoomId) {
        if !lock(&conn.rooms).rooms.remove(&room) {
            return;
        }
        let mut name = None;
        let mut emptied = false;
        {
            let mut rooms = lock(&self.rooms);
            if let Some(state) = rooms.get(&room).cloned() {
                let mut s = lock(&state);
                s.conns.remove(&conn.id);
                name = Some(s.name.clone());
                if s.conns.is_empty() {
                    drop(s);
                    rooms.remove(&room);
                    emptied = true;
                }
            }
        }
        if emptied {
            self.bus.unwatch_room(room);
        }
        let _order = lock(&self.presence_lock);
        if self.presence.disconnect(room, conn.user)
            && let Some(room_name) = name
        {
            self.presence_changed(room, room_name, conn.user, conn.username.clone(), false);
        }
    }

    /// On one node the change is the news; in a cluster it is news only if no other
    /// node holds a socket of the user in the room, which the store knows (off the
    /// async workers, on the background thread).
    fn presence_changed(
        &self,
        room: RoomId,
        room_name: RoomName,
        user: UserId,
        username: Username,
        online: bool,
    ) {
        if self.cluster.is_some() {
            let _ =
                self.tasks.send(Task::Presence(PresenceChange { room, room_name, user, username, online }));
        } else {
            self.bus.publish(Event::Presence { room, room_name, user, username, online });
        }
    }

    /// Writes queued presence changes to the cluster's table and announces those that
    /// change what the cluster sees, in queue order. Changes come in bursts (a node's
    /// restart reconnects every socket at once), so each run of changes in which a
    /// `(room, user)` appears once is one read before, one commit and one read after,
    /// instead of a commit per socket: 1,000 sockets were 3 s of commits on one thread.
    fn cluster_presence(&self, changes: Vec<PresenceChange>) {
        let mut run: Vec<PresenceChange> = Vec::new();
        let mut in_run: HashSet<(RoomId, UserId)> = HashSet::new();
        for change in changes {
            // The same user again in the same room: its changes apply in order.
            if !in_run.insert((change.room, change.user)) {
                self.presence_run(std::mem::take(&mut run));
                in_run.clear();
                in_run.insert((change.room, change.user));
            }
            run.push(change);
        }
        self.presence_run(run);
    }

    fn presence_run(&self, run: Vec<PresenceChange>) {
        let Some(cluster) = &self.cluster else { return };
        if run.is_empty() {
            return;
        }
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::from_std(PRESENCE_TTL).unwrap_or_default();
        let pairs = |online: bool| -> Vec<(RoomId, UserId)> {
            run.iter().filter(|c| c.online == online).map(|c| (c.room, c.user)).collect()
        };
        let (entered, left) = (pairs(true), pairs(false));
        // Online: look before entering; offline: leave before looking. Two nodes changing
        // the same user at once then both announce (a repeat) rather than neither. A read
        // that fails finds no one elsewhere, so the change is announced.
        let elsewhere = |among: &[(RoomId, UserId)], what: &str| -> HashSet<(RoomId, UserId)> {
            if among.is_empty() {
                return HashSet::new();
            }
            match cluster.store.elsewhere_among(cluster.node, among, since) {
                Ok(found) => found.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, what, "cannot read presence");
                    HashSet::new()
                }
            }
        };
        let online_elsewhere = elsewhere(&entered, "online");
        if let Err(e) = cluster.store.record(cluster.node, &entered, &left, now) {
            tracing::warn!(error = %e, changes = run.len(), "cannot record presence");
        }
        let still_elsewhere = elsewhere(&left, "offline");
        for PresenceChange { room, room_name, user, username, online } in run {
            let seen = if online { &online_elsewhere } else { &still_elsewhere };
            if !seen.contains(&(room, user)) {
                self.bus.publish(Event::Presence { room, room_name, user, username, online });
            }
        }
    }

    /// Refreshes this node's presence rows and retires those of nodes that stopped.
    fn presence_heartbeat(&self) {
        let Some(cluster) = &self.cluster else { return };
        let now = chrono::Utc::now();
        let local = self.presence.entries();
        match cluster.store.heartbeat(cluster.node, now) {
            // Another node expired some of ours (this node stalled past the TTL): enter
            // every live socket's row again and say so, as the others announced offline.
            // A socket whose row is still queued on this thread looks short once; expired
            // rows stay short, so only a second shortfall in a row counts.
            Ok(refreshed) if refreshed < local.len() => {
                if self.presence_short.swap(true, Ordering::Relaxed) {
                    self.presence_short.store(false, Ordering::Relaxed);
                    self.reenter(cluster, &local, now);
                }
            }
            Ok(_) => self.presence_short.store(false, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "cannot refresh presence"),
        }
        let before = now - chrono::Duration::from_std(PRESENCE_TTL).unwrap_or_default();
        match cluster.store.expire(before) {
            Ok(gone) => {
                for (room, room_name, user, username) in gone {
                    self.bus.publish(Event::Presence { room, room_name, user, username, online: false });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot expire presence"),
        }
    }

    fn reenter(&self, cluster: &Cluster, local: &[(RoomId, UserId)], now: chrono::DateTime<chrono::Utc>) {
        tracing::warn!(
            rows = local.len(),
            "presence rows of this node were expired by others; entering them again"
        );
        let names: HashMap<RoomId, RoomName> =
            lock(&self.rooms).iter().map(|(id, s)| (*id, lock(s).name.clone())).collect();
        let usernames: HashMap<UserId, Username> = lock(&self.users)
            .iter()
            .filter_map(|(u, conns)| Some((*u, conns.values().next()?.username.clone())))
            .collect();
        // One commit for all of them, as for any burst of presence changes.
        if let Err(e) = cluster.store.record(cluster.node, local, &[], now) {
            tracing::warn!(error = %e, rows = local.len(), "cannot record presence");
            return;
        }
        for (room, user) in local {
            if let (Some(room_name), Some(username)) = (names.get(room), usernames.get(user)) {
                let (room, user, room_name, username) = (*room, *user, room_name.clone(), username.clone());
                self.bus.publish(Event::Presence { room, room_name, user, username, online: true });
            }
        }
    }

    /// Closes the sockets of sessions that ended without this node hearing of it (a
    /// revocation notice lost while the bus was down).
    fn close_ended_sessions(&self) {
        let Some(cluster) = &self.cluster else { return };
        let open: Vec<SessionId> = lock(&self.sessions).keys().copied().collect();
        if open.is_empty() {
            return;
        }
        match cluster.sessions.ended_among(&open) {
            Ok(ended) if !ended.is_empty() => self.deliver(&Event::SessionsRevoked(ended)),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot check sessions"),
        }
    }

    /// Brings `/ws/` sockets in line with their users' memberships (joins and leaves whose
    /// notices were lost while the bus was down).
    fn reconcile_memberships(&self) {
        let users: Vec<(UserId, Vec<Arc<Conn>>)> = lock(&self.users)
            .iter()
            .filter_map(|(user, conns)| {
                let multi: Vec<Arc<Conn>> = conns.values().filter(|c| c.multi).cloned().collect();
                (!multi.is_empty()).then_some((*user, multi))
            })
            .collect();
        for (user, conns) in users {
            let joined = match self.room_service.joined_rooms(user) {
                Ok(joined) => joined,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read memberships");
                    return;
                }
            };
            let ids: HashSet<RoomId> = joined.iter().map(|r| r.id).collect();
            for conn in &conns {
                for room in &joined {
                    self.subscribe(conn, room, true);
                }
                for room in conn.rooms().into_iter().filter(|r| !ids.contains(r)) {
                    self.unsubscribe(conn, room);
                }
            }
        }
    }

    /// Waits (at most `wait`) until the background thread has done every task queued so
    /// far: at shutdown, the presence changes of the sockets just closed.
    pub fn flush(&self, wait: Duration) {
        let (tx, rx) = std_mpsc::channel();
        if self.tasks.send(Task::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(wait);
        }
    }

    /// Forgets a closed connection everywhere.
    pub fn disconnect(&self, conn: &Conn) {
        lock(&conn.rooms).closed = true;
        for room in conn.rooms() {
            self.unsubscribe(conn, room);
        }
        let mut sessions = lock(&self.sessions);
        if let Some(conns) = sessions.get_mut(&conn.session) {
            conns.remove(&conn.id);
            if conns.is_empty() {
                sessions.remove(&conn.session);
            }
        }
        drop(sessions);
        let mut users = lock(&self.users);
        if let Some(conns) = users.get_mut(&conn.user) {
            conns.remove(&conn.id);
            if conns.is_empty() {
                users.remove(&conn.user);
            }
        }
    }

    /// Closes every socket (server shutdown: 1001).
    pub fn close_all(&self, code: u16) {
        for conns in lock(&self.sessions).values() {
            for conn in conns.values() {
                conn.closer.close(code);
            }
        }
    }

    /// The rooms this node holds sockets for.
    #[must_use]
    pub fn watched_rooms(&self) -> Vec<RoomId> {
        lock(&self.rooms).keys().copied().collect()
    }

    /// How this node hears from the others.
    #[must_use]
    pub fn bus_health(&self) -> BusHealth {
        self.bus.health()
    }

    /// Number of open sockets on this node.
    #[must_use]
    pub fn open_sockets(&self) -> usize {
        lock(&self.sessions).values().map(HashMap::len).sum()
    }

    /// Tells the room's other sockets, on every node, that `conn`'s user is typing.
    pub fn typing(&self, room: &Room, conn: &Conn) {
        self.bus.publish(Event::Typing {
            room: room.id,
            room_name: room.name.clone(),
            user: conn.user,
            username: conn.username.clone(),
        });
    }

    /// Takes one send from `user`'s budget; `false` when over the rate.
    pub fn allow_send(&self, user: UserId) -> bool {
        let rate = f64::from(self.settings.send_rate);
        if rate == 0.0 {
            return true;
        }
        let burst = rate * 2.0;
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() > 100_000 {
            // Forget full buckets rather than grow without bound.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(user).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn task(&self, task: Task) {
        if let Task::Repair { room, .. } = &task
            && !lock(&self.repairs_queued).insert(*room)
        {
            return;
        }
        let _ = self.tasks.send(task);
    }

    /// Hands a stored message to the room's sockets in `seq` order.
    fn deliver_message(&self, m: &Message) {
        let Some(state) = lock(&self.rooms).get(&m.room_id).cloned() else { return };
        let mut s = lock(&state);
        if m.seq <= s.last || s.pending.contains_key(&m.seq) {
            return;
        }
        if m.seq != s.last.next() {
            s.pending.insert(m.seq, m.clone());
            drop(s);
            self.task(Task::Repair { room: m.room_id, always: false });
            return;
        }
        s.fan_out(m);
        s.last = m.seq;
        while let Some(next) = {
            let want = s.last.next();
            s.pending.remove(&want)
        } {
            s.fan_out(&next);
            s.last = next.seq;
        }
    }

    /// Reads the log past what the room's sockets have seen and delivers it.
    fn repair(&self, room: RoomId, always: bool) {
        for _ in 0..1000 {
            let Some(state) = lock(&self.rooms).get(&room).cloned() else { return };
            let (from, gap) = {
                let s = lock(&state);
                (s.last, !s.pending.is_empty())
            };
            if !always && !gap {
                return;
            }
            let page = match self.room_service.messages_after(room, from, 200) {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, room = room.0, "cannot read the log to repair a gap");
                    return;
                }
            };
            for m in &page.messages {
                self.deliver_message(m);
            }
            if !page.has_more {
                return;
            }
        }
    }

    /// A user joined a room: their `/ws/` sockets subscribe to it with a `ready` frame.
    fn follow(&self, user: UserId, name: &RoomName) {
        let conns: Vec<Arc<Conn>> = lock(&self.users)
            .get(&user)
            .map(|c| c.values().filter(|c| c.multi).cloned().collect())
            .unwrap_or_default();
        if conns.is_empty() {
            return;
        }
        match self.room_service.find_room(name) {
            Ok(room) => {
                for conn in conns {
                    self.subscribe(&conn, &room, true);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow a joined room"),
        }
    }
}

impl EventSink for Hub {
    fn deliver(&self, event: &Event) {
        match event {
            Event::Message(m) => self.deliver_message(m),
            Event::Presence { room, room_name, user, username, online } => {
                let Some(state) = lock(&self.rooms).get(room).cloned() else { return };
                let frame = frames::presence(room_name.as_str(), username.as_str(), *online);
                lock(&state).to_others(*user, &frame);
            }
            Event::Typing { room, room_name, user, username } => {
                let Some(state) = lock(&self.rooms).get(room).cloned() else { return };
                let frame = frames::typing(room_name.as_str(), username.as_str());
                lock(&state).to_others(*user, &frame);
            }
            Event::Membership { room, room_name, user, joined } => {
                if *joined {
                    if lock(&self.users).get(user).is_some_and(|c| c.values().any(|c| c.multi)) {
                        self.task(Task::Follow { user: *user, room: room_name.clone() });
                    }
                } else {
                    // Leaving ends the room for the user's sockets: a `/ws/` socket drops
                    // it, a socket of that room alone is closed (4403, no longer allowed).
                    let conns: Vec<Arc<Conn>> = lock(&self.users)
                        .get(user)
                        .map(|c| c.values().cloned().collect())
                        .unwrap_or_default();
                    for conn in conns.iter().filter(|c| c.rooms().contains(room)) {
                        if conn.multi {
                            self.unsubscribe(conn, *room);
                        } else {
                            conn.closer.close(close::NOT_ALLOWED);
                        }
                    }
                }
            }
            Event::SessionsRevoked(ids) => {
                let sessions = lock(&self.sessions);
                for id in ids {
                    for conn in sessions.get(id).into_iter().flat_map(HashMap::values) {
                        conn.closer.close(close::REVOKED);
                    }
                }
            }
        }
    }
}

fn repair_loop(hub: &Weak<Hub>, rx: &std_mpsc::Receiver<Task>) {
    let mut last_poll = Instant::now();
    let mut last_heartbeat = Instant::now();
    let mut was = BusHealth::Local;
    // Gap repairs wait here for their moment instead of sleeping, so presence changes,
    // follows and polls queued behind them are not held up.
    let mut due: Vec<(Instant, RoomId)> = Vec::new();
    // A task taken off the queue while gathering presence changes, handled next.
    let mut carried: Option<Task> = None;
    loop {
        let now = Instant::now();
        let wait = due
            .iter()
            .map(|(at, _)| at.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(250))
            .min(Duration::from_millis(250));
        let task = match carried.take().map_or_else(|| rx.recv_timeout(wait), Ok) {
            Ok(task) => Some(task),
            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let Some(hub) = hub.upgrade() else { return };
        match task {
            // Most gaps close by themselves within microseconds, when the overtaken
            // publisher delivers; only one that lasts 20 ms needs the log.
            Some(Task::Repair { room, always: false }) => due.push((Instant::now() + GAP_GRACE, room)),
            Some(Task::Repair { room, always: true }) => {
                lock(&hub.repairs_queued).remove(&room);
                hub.repair(room, true);
            }
            Some(Task::Follow { user, room }) => hub.follow(user, &room),
            Some(Task::Presence(first)) => {
                // With the changes queued behind it, up to the first other task.
                let mut changes = vec![first];
                while changes.len() < PRESENCE_BATCH {
                    match rx.try_recv() {
                        Ok(Task::Presence(next)) => changes.push(next),
                        Ok(other) => {
                            carried = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                hub.cluster_presence(changes);
            }
            Some(Task::Flush(done)) => {
                let _ = done.send(());
            }
            None => {}
        }
        let now = Instant::now();
        due.retain(|(at, room)| {
            if *at > now {
                return true;
            }
            lock(&hub.repairs_queued).remove(room);
            hub.repair(*room, false);
            false
        });
        if last_heartbeat.elapsed() >= HEARTBEAT {
            last_heartbeat = Instant::now();
            hub.presence_heartbeat();
        }
        // Across nodes a notice can be lost, and without the broker none arrive: read
        // the log of every watched room, every second while cut off, every 5 s otherwise,
        // and at once when the broker is back.
        let health = hub.bus.health();
        let every = match health {
            BusHealth::Local => None,
            BusHealth::Connected => Some(Duration::from_secs(5)),
            BusHealth::Disconnected => Some(Duration::from_secs(1)),
        };
        let reconnected = was == BusHealth::Disconnected && health == BusHealth::Connected;
        was = health;
        if reconnected || every.is_some_and(|e| last_poll.elapsed() >= e) {
            last_poll = Instant::now();
            for room in hub.watched_rooms() {
                hub.repair(room, true);
            }
            // Revocations and memberships travel as notices too; while the bus is down
            // (and once it is back) the database says what was missed.
            hub.close_ended_sessions();
            if health == BusHealth::Disconnected || reconnected {
                hub.reconcile_memberships();
            }
        }
    }
}
