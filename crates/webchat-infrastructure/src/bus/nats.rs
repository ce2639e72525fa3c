//! The cross-node bus on NATS (SPEC §5).
//!
//! Every event is serialized once and published once, each kind on its own subject under
//! `webchat.<service>.`: `room.<id>.message`, `room.<id>.presence`, `room.<id>.typing`,
//! `memberships` and `sessions` (revocations). A node subscribes to `room.<id>.>` for the
//! rooms it holds sockets for (`watch_room`), and to `memberships` and `sessions`.
//! Events are also handed to this node's sink directly, so local delivery never waits for
//! the broker; a node ignores its own echoes. Core NATS is at-most-once: a lost notice is
//! a gap, and the hub reads gaps from the log.
//!
//! The client runs on a runtime of its own (one thread), so `publish` never blocks the
//! caller: it only queues the encoded event.

use super::wire::{Wire, decode, encode};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;
use uuid::Uuid;
use webchat_domain::model::{Event, RoomId};
use webchat_domain::ports::{BusHealth, EventSink, MessageBus};

/// Encoded events waiting for the connection; past this, notices are dropped (and later
/// repaired from the log) rather than queued without bound.
const OUTBOX: usize = 65_536;

/// Subjects live under `webchat.<service>.`: deployments sharing a broker never hear
/// each other.
#[derive(Debug, Clone)]
struct Subjects(String);

impl Subjects {
    /// Everything about one room (`.message`, `.presence`, `.typing`): one subscription
    /// per watched room.
    fn room(&self, room: RoomId) -> String {
        format!("webchat.{}.room.{}.>", self.0, room.0)
    }

    /// The subject of one event: each kind travels on its own.
    fn of(&self, event: &Event) -> String {
        let s = &self.0;
        match event {
            Event::Message(m) => format!("webchat.{s}.room.{}.message", m.room_id.0),
            Event::Presence { room, .. } => format!("webchat.{s}.room.{}.presence", room.0),
            Event::Typing { room, .. } => format!("webchat.{s}.room.{}.typing", room.0),
            Event::Membership { .. } => self.memberships(),
            Event::SessionsRevoked(_) => self.sessions(),
        }
    }

    /// Joins and leaves, which every node hears (its `/ws/` sockets follow them).
    fn memberships(&self) -> String {
        format!("webchat.{}.memberships", self.0)
    }

    /// Revoked sessions, which every node hears.
    fn sessions(&self) -> String {
        format!("webchat.{}.sessions", self.0)
    }
}

enum Control {
    Watch(RoomId),
    Unwatch(RoomId),
}

type Sink = Arc<RwLock<Option<Arc<dyn EventSink>>>>;

/// The NATS bus. Build it with [`NatsBus::start`].
pub struct NatsBus {
    node: Uuid,
    subjects: Subjects,
    sink: Sink,
    outbox: mpsc::Sender<(String, Vec<u8>)>,
    control: mpsc::UnboundedSender<Control>,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus").field("node", &self.node).finish_non_exhaustive()
    }
}

fn deliver(sink: &Sink, event: &Event) {
    let sink = sink.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(sink) = sink {
        sink.deliver(event);
    }
}

impl NatsBus {
    /// Starts the client for `url` (`nats://HOST:PORT`). Never fails because the broker is
    /// down: the client keeps reconnecting, and [`health`](MessageBus::health) says so.
    /// # Errors
    /// When the URL is malformed or the client's thread cannot start.
    /// `service` names the deployment (all its nodes share it; it is kept in the database).
    pub fn start(url: &str, service: &str) -> Result<Arc<Self>, String> {
        if service.is_empty() || !service.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("bad service id {service:?}"));
        }
        let subjects = Subjects(service.to_owned());
        let addr: async_nats::ServerAddr = url.parse().map_err(|e| format!("bad NATS URL {url:?}: {e}"))?;
        let node = Uuid::new_v4();
        let sink: Sink = Arc::default();
        let connected = Arc::new(AtomicBool::new(false));
        let (outbox, out_rx) = mpsc::channel(OUTBOX);
        let (control, control_rx) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the NATS runtime: {e}"))?;
        let (task_sink, task_connected, task_subjects) = (sink.clone(), connected.clone(), subjects.clone());
        std::thread::Builder::new()
            .name("webchat-nats".into())
            .spawn(move || {
                runtime.block_on(run(
                    addr,
                    node,
                    task_subjects,
                    task_sink,
                    task_connected,
                    out_rx,
                    control_rx,
                ))
            })
            .map_err(|e| format!("cannot start the NATS thread: {e}"))?;
        Ok(Arc::new(Self { node, subjects, sink, outbox, control, connected }))
    }
}

async fn run(
    addr: async_nats::ServerAddr,
    node: Uuid,
    subjects: Subjects,
    sink: Sink,
    connected: Arc<AtomicBool>,
    mut outbox: mpsc::Receiver<(String, Vec<u8>)>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let flag = connected.clone();
    let options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(std::time::Duration::from_secs(2))
        .event_callback(move |event| {
            let flag = flag.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("connected to NATS");
                        flag.store(true, Ordering::SeqCst);
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost NATS: polling the log until it is back");
                        flag.store(false, Ordering::SeqCst);
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        });
    let client = match options.connect(addr).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the NATS client");
            return;
        }
    };
    connected.store(client.connection_state() == async_nats::connection::State::Connected, Ordering::SeqCst);
    let mut rooms: HashMap<RoomId, tokio::task::JoinHandle<()>> = HashMap::new();
    // Keyed below any real room id: these two are never unwatched.
    rooms.insert(RoomId(-1), forward(&client, subjects.memberships(), node, sink.clone()).await);
    rooms.insert(RoomId(-2), forward(&client, subjects.sessions(), node, sink.clone()).await);
    loop {
        tokio::select! {
            out = outbox.recv() => match out {
                Some((subject, payload)) => {
                    if let Err(e) = client.publish(subject, payload.into()).await {
                        tracing::warn!(error = %e, "a notice was not published; receivers repair from the log");
                    }
                }
                None => return,
            },
            ctl = control.recv() => match ctl {
                Some(Control::Watch(room)) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = rooms.entry(room) {
                        slot.insert(forward(&client, subjects.room(room), node, sink.clone()).await);
                    }
                }
                Some(Control::Unwatch(room)) => {
                    if let Some(task) = rooms.remove(&room) {
                        task.abort();
                    }
                }
                None => return,
            },
        }
    }
}

/// Subscribes to `subject` and hands other nodes' events to the sink.
async fn forward(
    client: &async_nats::Client,
    subject: String,
    node: Uuid,
    sink: Sink,
) -> tokio::task::JoinHandle<()> {
    let sub = client.subscribe(subject.clone()).await;
    tokio::spawn(async move {
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, subject, "cannot subscribe; the log is polled instead");
                return;
            }
        };
        while let Some(msg) = sub.next().await {
            match decode(&msg.payload) {
                Ok(Wire { origin, event }) if origin != node => deliver(&sink, &event),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, subject, "undecodable notice ignored"),
            }
        }
    })
}

impl MessageBus for NatsBus {
    fn publish(&self, event: Event) {
        let subject = self.subjects.of(&event);
        match encode(self.node, &event) {
            Ok(payload) => {
                if self.outbox.try_send((subject, payload)).is_err() {
                    tracing::warn!("NATS outbox full: a notice is dropped; receivers repair from the log");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode an event"),
        }
        deliver(&self.sink, &event);
    }

    fn attach(&self, sink: Arc<dyn EventSink>) {
        *self.sink.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    fn watch_room(&self, room: RoomId) {
        let _ = self.control.send(Control::Watch(room));
    }

    fn unwatch_room(&self, room: RoomId) {
        let _ = self.control.send(Control::Unwatch(room));
    }

    fn health(&self) -> BusHealth {
        if self.connected.load(Ordering::SeqCst) { BusHealth::Connected } else { BusHealth::Disconnected }
    }
}
