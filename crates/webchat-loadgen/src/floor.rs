//! `floor-server`: the least a WebSocket fan-out server can do, to measure what the machine
//! itself allows W1–W3 (docs/benchmarks.md, "The machine's floor").
//!
//! One room, no accounts, no storage, no JSON parser: it accepts WebSocket connections on any
//! path, answers each with `ready`, and for every text frame a client sends it numbers the
//! message, acknowledges it to its sender and queues one pre-encoded frame, shaped like the
//! real server's `message` frame, for every socket; each socket's queue is written with one
//! `write(2)` once the messages that arrived together are queued. The load
//! generator's W1–W3 run against it unchanged (`--floor` skips the accounts), so what they
//! measure there is the kernel's loopback TCP, the client and the scheduler: a p99 or a rate
//! the floor misses is one no server on this machine can reach.
//!
//! With `--commit-to postgres://…` each message is first inserted into PostgreSQL, as one
//! autocommitted statement per batch of the messages that arrived together (on a thread of
//! its own with a blocking libpq connection, as webchat's appender lanes do), and only fanned
//! out once committed: the floor of a server that makes every message durable in PostgreSQL
//! before delivering it, its `seq` included, and nothing else.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::util::lock;

#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// Where to listen, on the loopback address only.
    #[arg(long, default_value = "127.0.0.1:18470", value_parser = loopback_addr)]
    pub listen: SocketAddr,
    /// Commit every message to this PostgreSQL database (on the loopback address) before
    /// delivering it; the table `floor_messages` is created there.
    #[arg(long, value_parser = loopback_url)]
    pub commit_to: Option<String>,
}

fn loopback_url(raw: &str) -> Result<String, String> {
    let host = raw.split_once("://").map(|(_, rest)| rest).unwrap_or(raw);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let ok = ["127.0.0.1:", "127.0.0.1/", "localhost:", "localhost/"].iter().any(|p| host.starts_with(p));
    if raw.starts_with("postgres") && ok {
        Ok(raw.to_owned())
    } else {
        Err("only postgres://…@127.0.0.1:PORT/DB is allowed".into())
    }
}

fn loopback_addr(raw: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = raw.parse().map_err(|e| format!("{raw}: {e}"))?;
    if addr.ip().is_loopback() { Ok(addr) } else { Err("only 127.0.0.1:PORT is allowed".into()) }
}

/// One socket: the stream, shared by its reader, the room's flusher and its own drainer, and
/// the bytes due to it.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    out: Mutex<Vec<u8>>,
    /// The socket refused bytes: its drainer writes `out` as it drains, the flusher skips it.
    blocked: AtomicBool,
    drain: Notify,
    gone: AtomicBool,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            out: Mutex::new(Vec::new()),
            blocked: AtomicBool::new(false),
            drain: Notify::new(),
            gone: AtomicBool::new(false),
        }
    }

    /// Writes what is due with one `write(2)`; what the socket does not take waits for the drainer.
    fn flush(&self) {
        if self.blocked.load(Ordering::Relaxed) || self.gone.load(Ordering::Relaxed) {
            return;
        }
        let mut out = lock(&self.out);
        if out.is_empty() {
            return;
        }
        match self.stream.try_write(&out) {
            Ok(n) if n == out.len() => out.clear(),
            Ok(n) => {
                out.drain(..n);
                self.blocked.store(true, Ordering::Relaxed);
                self.drain.notify_one();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.blocked.store(true, Ordering::Relaxed);
                self.drain.notify_one();
            }
            Err(_) => self.gone.store(true, Ordering::Relaxed),
        }
    }

    /// Writes a blocked socket's bytes out as it drains.
    async fn drainer(self: Arc<Self>) {
        loop {
            self.drain.notified().await;
            while self.blocked.load(Ordering::Relaxed) {
                if self.gone.load(Ordering::Relaxed) || self.stream.writable().await.is_err() {
                    return;
                }
                let mut out = lock(&self.out);
                match self.stream.try_write(&out) {
                    Ok(n) => {
                        out.drain(..n);
                        if out.is_empty() {
                            self.blocked.store(false, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => {
                        self.gone.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
            if self.gone.load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

/// Bytes queued for one socket beyond which it is dropped.
const MAX_QUEUED_BYTES: usize = 8 << 20;

/// The one room. A message's frame is appended to every socket's bytes; the flusher then
/// writes each socket's bytes with one `write(2)`, so that messages arriving together go out
/// together, as webchat's writers do.
#[derive(Debug, Default)]
struct Room {
    conns: Mutex<Vec<Arc<Conn>>>,
    seq: AtomicI64,
    flush: Notify,
    /// With `--commit-to`: messages go to the committer, and are delivered when it is done.
    store: Option<std::sync::mpsc::SyncSender<Pending>>,
}

/// A message waiting for its commit.
#[derive(Debug)]
struct Pending {
    from: Arc<Conn>,
    content: String,
    cmid: String,
}

/// The most messages one commit takes (webchat's appender takes as many).
const MAX_BATCH: usize = 256;

/// Messages waiting for the committer beyond which a new one is dropped (never acked: the
/// load generator counts it), so a stalled database cannot grow the queue without bound.
const MAX_PENDING: usize = 65_536;

/// Inserts each batch of waiting messages with one autocommitted statement, then hands the
/// batch back for delivery. Their `seq`s are given here, in arrival order, and again in the
/// same order by [`deliver`]. A failed insert ends the process: the floor is then not a floor.
fn committer(
    mut conn: diesel::PgConnection,
    mut seq: i64,
    from: &std::sync::mpsc::Receiver<Pending>,
    done: &tokio::sync::mpsc::UnboundedSender<Vec<Pending>>,
) {
    use diesel::RunQueryDsl as _;
    use diesel::sql_types::{Array, BigInt, Text};
    while let Ok(first) = from.recv() {
        let mut batch = vec![first];
        batch.extend(from.try_iter().take(MAX_BATCH - 1));
        let seqs: Vec<i64> = (seq + 1..).take(batch.len()).collect();
        let contents: Vec<&str> = batch.iter().map(|p| p.content.as_str()).collect();
        let cmids: Vec<&str> = batch.iter().map(|p| p.cmid.as_str()).collect();
        let inserted = diesel::sql_query(
            "INSERT INTO floor_messages (seq, content, client_msg_id) \
             SELECT * FROM unnest($1::int8[], $2::text[], $3::text[])",
        )
        .bind::<Array<BigInt>, _>(&seqs)
        .bind::<Array<Text>, _>(&contents)
        .bind::<Array<Text>, _>(&cmids)
        .execute(&mut conn);
        if let Err(e) = inserted {
            eprintln!("error: floor-server: the commit failed: {e}");
            std::process::exit(1);
        }
        seq += seqs.len() as i64;
        if done.send(batch).is_err() {
            return;
        }
    }
}

/// Connects to `url`, makes the table and starts the committer; its batches come back on
/// the returned receiver.
fn start_committer(url: &str) -> Result<Store, String> {
    use diesel::{Connection as _, RunQueryDsl as _};
    let mut conn = diesel::PgConnection::establish(url).map_err(|e| format!("{url}: {e}"))?;
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS floor_messages (seq int8 PRIMARY KEY, content text NOT NULL, \
         client_msg_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut conn)
    .map_err(|e| format!("floor_messages: {e}"))?;
    // An earlier floor's rows stay; this one's continue after them (its clients' seqs start
    // at 1 all the same: the room's numbering is in memory).
    #[derive(diesel::QueryableByName)]
    struct Top {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        top: i64,
    }
    let top = diesel::sql_query("SELECT coalesce(max(seq), 0) AS top FROM floor_messages")
        .get_result::<Top>(&mut conn)
        .map_err(|e| format!("floor_messages: {e}"))?
        .top;
    let (to_store, from) = std::sync::mpsc::sync_channel(MAX_PENDING);
    let (done, committed) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("floor-commit".into())
        .spawn(move || committer(conn, top, &from, &done))
        .map_err(|e| format!("committer thread: {e}"))?;
    Ok((to_store, committed))
}

impl Room {
    async fn flusher(self: Arc<Self>) {
        loop {
            self.flush.notified().await;
            for c in lock(&self.conns).iter() {
                c.flush();
            }
        }
    }
}

/// Serves until killed.
/// # Errors
/// When the address cannot be bound.
pub async fn serve(args: &FloorArgs) -> Result<(), String> {
    let store = args.commit_to.as_deref().map(start_committer).transpose()?;
    let listener = TcpListener::bind(args.listen).await.map_err(|e| format!("bind {}: {e}", args.listen))?;
    eprintln!("floor-server listening on {}", args.listen);
    serve_on(listener, store).await;
    Ok(())
}

/// The way to the committer, and the batches it has committed.
type Store = (std::sync::mpsc::SyncSender<Pending>, tokio::sync::mpsc::UnboundedReceiver<Vec<Pending>>);

async fn serve_on(listener: TcpListener, store: Option<Store>) {
    let (to_store, committed) = store.map_or((None, None), |(tx, rx)| (Some(tx), Some(rx)));
    let room = Arc::new(Room { store: to_store, ..Room::default() });
    tokio::spawn(room.clone().flusher());
    if let Some(mut committed) = committed {
        let room = room.clone();
        tokio::spawn(async move {
            while let Some(batch) = committed.recv().await {
                for p in batch {
                    deliver(&room, &p.from, &p.content, &p.cmid);
                }
            }
        });
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: wait instead of spinning on the error.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let room = room.clone();
        tokio::spawn(async move {
            let _ = socket(room, stream).await;
        });
    }
}

/// The HTTP upgrade, by hand: the request's head and the `101` with the accept key.
/// Whatever the client sent after the head is returned (the start of its first frame).
async fn handshake(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err("request head too large".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        })
        .ok_or("no Sec-WebSocket-Key")?;
    let accept = derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes()).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(buf.split_off(end))
}

async fn socket(room: Arc<Room>, mut stream: TcpStream) -> Result<(), String> {
    let mut buf = handshake(&mut stream).await?;
    let conn = Arc::new(Conn::new(stream));
    tokio::spawn(conn.clone().drainer());
    // Joining and reading `last_seq` happen without an await between them, on the one thread
    // of the runtime, so no message falls between `ready` and the first delivery.
    lock(&room.conns).push(conn.clone());
    let last = room.seq.load(Ordering::Relaxed);
    lock(&conn.out)
        .extend(encode(0x1, format!(r#"{{"type":"ready","room":"floor","last_seq":{last}}}"#).as_bytes()));
    conn.flush();
    let result = read_frames(&room, &conn, &mut buf).await;
    conn.gone.store(true, Ordering::Relaxed);
    conn.drain.notify_one();
    lock(&room.conns).retain(|c| !Arc::ptr_eq(c, &conn));
    result
}

/// Reads the client's (masked) frames until it closes.
async fn read_frames(room: &Room, conn: &Arc<Conn>, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = vec![0u8; 4096];
    loop {
        while let Some((opcode, payload, used)) = decode(buf)? {
            buf.drain(..used);
            match opcode {
                0x1 => publish(room, conn, &payload),
                0x8 => {
                    lock(&conn.out).extend(encode(0x8, &payload[..payload.len().min(2)]));
                    conn.flush();
                    return Ok(());
                }
                0x9 => {
                    lock(&conn.out).extend(encode(0xA, &payload));
                    room.flush.notify_one();
                }
                _ => {}
            }
        }
        conn.stream.readable().await.map_err(|e| e.to_string())?;
        match conn.stream.try_read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The text between `"key":"` and the next `"` (the load generator's strings hold no escapes).
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    let pat = format!(r#""{key}":""#);
    text.find(&pat).map_or("", |at| {
        let rest = &text[at + pat.len()..];
        &rest[..rest.find('"').unwrap_or(rest.len())]
    })
}

/// A message from a client: to the committer, or straight to [`deliver`].
fn publish(room: &Room, from: &Arc<Conn>, payload: &[u8]) {
    let text = String::from_utf8_lossy(payload);
    let content = field(&text, "content");
    let cmid = field(&text, "client_msg_id");
    match &room.store {
        Some(store) => {
            let pending = Pending { from: from.clone(), content: content.to_owned(), cmid: cmid.to_owned() };
            // Full: dropped, never acked (see MAX_PENDING). The runtime's thread must not
            // block here. The committer only stops with the process.
            let _ = store.try_send(pending);
        }
        None => deliver(room, from, content, cmid),
    }
}

/// Its `seq`, the ack to its sender, one frame to every socket.
fn deliver(room: &Room, from: &Conn, content: &str, cmid: &str) {
    let seq = room.seq.fetch_add(1, Ordering::Relaxed) + 1;
    lock(&from.out).extend(encode(
        0x1,
        format!(r#"{{"type":"ack","client_msg_id":"{cmid}","id":{seq},"seq":{seq},"room":"floor"}}"#)
            .as_bytes(),
    ));
    // The real server's frame, field for field, so that both sides move the same bytes.
    let frame = encode(
        0x1,
        format!(
            r#"{{"type":"message","id":{seq},"room":"floor","seq":{seq},"sender":"lg000000_floor0","sender_id":"00000000-0000-4000-8000-000000000000","content":"{content}","timestamp":"2026-12-02T00:00:00.000000Z","client_msg_id":"{cmid}","message":"{content}"}}"#
        )
        .as_bytes(),
    );
    for c in lock(&room.conns).iter() {
        if c.gone.load(Ordering::Relaxed) {
            continue;
        }
        let mut out = lock(&c.out);
        // A reader this far behind gets nothing more, so the queue stays bounded; the load
        // generator counts what it missed as lost.
        if out.len() > MAX_QUEUED_BYTES {
            c.gone.store(true, Ordering::Relaxed);
            out.clear();
            continue;
        }
        out.extend_from_slice(&frame);
    }
    room.flush.notify_one();
}

/// One unmasked frame, as a server sends it.
fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// The first whole frame of `buf`: opcode, unmasked payload, bytes used. Fragmented
/// messages are not expected from the load generator and are refused.
fn decode(buf: &[u8]) -> Result<Option<(u8, Vec<u8>, usize)>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] & 0x80 == 0 {
        return Err("fragmented frames are not supported".into());
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (usize::try_from(u64::from_be_bytes(b)).map_err(|e| e.to_string())?, 10)
        }
        126 | 127 => return Ok(None),
        n => (usize::from(n), 2),
    };
    if len > 1 << 20 {
        return Err("frame too large".into());
    }
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Ok(Some((opcode, payload, at + len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::{FanoutArgs, fanout};
    use crate::util::Env;

    /// A floor on a free loopback port, and a second of W1 (20 sockets) against it, which
    /// must lose, repeat and reorder nothing.
    async fn w1_against_a_floor(store: Option<Store>) -> serde_json::Value {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        tokio::spawn(serve_on(listener, store));
        let mut env = Env::new(&format!("http://127.0.0.1:{port}"), None, None);
        env.floor = true;
        let args =
            FanoutArgs { sockets: None, users: None, rate: None, senders: 3, secs: 1.0, warmup: 0.2, pad: 8 };
        let out = fanout(&env, "W1", &args, 20, 50.0).await.expect("a run");
        assert_eq!(
            (out["lost"].as_u64(), out["duplicated"].as_u64(), out["out_of_order"].as_u64()),
            (Some(0), Some(0), Some(0))
        );
        assert_eq!((out["errors"].as_u64(), out["unacked"].as_u64()), (Some(0), Some(0)));
        out
    }

    #[tokio::test]
    async fn the_load_generator_finds_every_message_of_the_floor_in_order() {
        let out = w1_against_a_floor(None).await;
        assert_eq!(out["deliveries"], out["expected_deliveries"]);
        assert!(out["deliveries"].as_u64().is_some_and(|d| d >= 20 * 40), "{out}");
    }

    /// A fresh database on the test server (`WEBCHAT_TEST_PG`, as the store's tests), dropped
    /// by [`drop_database`].
    fn fresh_database() -> (String, String) {
        use diesel::{Connection as _, RunQueryDsl as _};
        let server =
            std::env::var("WEBCHAT_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name =
            format!("lg_floor_{}_{}", std::process::id(), Env::new("http://127.0.0.1:1", None, None).prefix);
        let mut admin =
            diesel::PgConnection::establish(&format!("{server}/postgres")).expect("the test server");
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("a database");
        (server, name)
    }

    fn drop_database(server: &str, name: &str) {
        use diesel::{Connection as _, RunQueryDsl as _};
        let mut admin =
            diesel::PgConnection::establish(&format!("{server}/postgres")).expect("the test server");
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).expect("dropped");
    }

    #[tokio::test]
    async fn with_a_commit_every_acknowledged_message_is_stored_and_delivered_in_order() {
        use diesel::{Connection as _, QueryableByName, RunQueryDsl as _};
        let (server, name) = fresh_database();
        let url = format!("{server}/{name}");
        let store = start_committer(&url).expect("the committer starts");
        let out = w1_against_a_floor(Some(store)).await;
        #[derive(QueryableByName)]
        struct Stored {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            top: i64,
        }
        let mut conn = diesel::PgConnection::establish(&url).expect("the floor's database");
        let stored: Stored =
            diesel::sql_query("SELECT count(*) AS n, coalesce(max(seq), 0) AS top FROM floor_messages")
                .get_result(&mut conn)
                .expect("a count");
        drop(conn);
        // Every acknowledged message is a row, numbered without a gap.
        let acked = out["acked"].as_i64().expect("acked");
        assert!(acked >= 40, "{out}");
        assert_eq!((stored.n, stored.top), (acked, acked));
        drop_database(&server, &name);
    }

    #[test]
    fn the_floor_commits_only_to_a_loopback_postgresql() {
        assert!(loopback_url("postgres://postgres@127.0.0.1:5432/db").is_ok());
        assert!(loopback_url("postgresql://localhost/db").is_ok());
        assert!(loopback_url("postgres://u@db.example:5432/db").is_err());
        assert!(loopback_url("sqlite:///tmp/x").is_err());
    }

    #[test]
    fn a_masked_client_frame_is_decoded_and_a_short_one_waits() {
        let payload = b"hello floor";
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        assert_eq!(decode(&frame[..frame.len() - 1]), Ok(None));
        assert_eq!(decode(&frame), Ok(Some((0x1, payload.to_vec(), frame.len()))));
    }

    #[test]
    fn a_long_server_frame_carries_a_16_bit_length() {
        let payload = vec![b'x'; 300];
        let frame = encode(0x1, &payload);
        assert_eq!(&frame[..4], &[0x81, 126, 1, 44]);
        assert_eq!(decode(&frame), Ok(Some((0x1, payload, 304))));
    }

    #[test]
    fn the_message_frame_reads_as_the_real_servers_does() {
        let text = r#"{"type":"message","content":"t=5 p=1 s=2 k=3 xx","client_msg_id":"2-3"}"#;
        assert_eq!(field(text, "content"), "t=5 p=1 s=2 k=3 xx");
        assert_eq!(field(text, "client_msg_id"), "2-3");
        assert_eq!(field(text, "absent"), "");
    }
}
