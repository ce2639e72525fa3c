//! What every workload shares: the target server, accounts, sockets, histograms and
//! the per-socket delivery check.

use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The password of every account the load generator makes.
pub const PASSWORD: &str = "bench-password-1";

/// The server under test and what every request needs.
#[derive(Debug, Clone)]
pub struct Env {
    pub http_base: String,
    pub ws_base: String,
    pub http: reqwest::Client,
    /// Every latency is measured against this one instant of this process.
    pub epoch: Instant,
    /// Makes this run's user and room names unique in a database that is reused.
    pub prefix: String,
    pub server_pid: Option<u32>,
    /// The server is `floor-server`: no accounts to make, any token will do.
    pub floor: bool,
}

impl Env {
    pub fn new(server: &str, server_pid: Option<u32>, prefix: Option<String>) -> Self {
        let http_base = server.trim_end_matches('/').to_owned();
        let ws_base = http_base.replacen("http://", "ws://", 1);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client without TLS builds");
        let prefix = prefix.unwrap_or_else(|| {
            let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            format!("{:06x}", (n as u64 ^ u64::from(std::process::id()).rotate_left(20)) & 0xff_ffff)
        });
        Self { http_base, ws_base, http, epoch: Instant::now(), prefix, server_pid, floor: false }
    }

    /// The same run (epoch, prefix, HTTP client) against another server: the second node of
    /// W9. Latencies stay comparable because the epoch is shared.
    pub fn with_server(&self, server: &str, server_pid: Option<u32>) -> Self {
        let http_base = server.trim_end_matches('/').to_owned();
        let ws_base = http_base.replacen("http://", "ws://", 1);
        Self { http_base, ws_base, server_pid, ..self.clone() }
    }

    /// `lg<prefix>_<tag><i>`: 3–32 characters of the allowed alphabet.
    pub fn username(&self, tag: &str, i: usize) -> String {
        format!("lg{}_{tag}{i}", self.prefix)
    }

    pub fn room(&self, tag: &str, i: usize) -> String {
        format!("lg{}-{tag}-{i}", self.prefix)
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A latency histogram in microseconds, 1 µs to 60 s, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

pub fn record_ns(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record((ns / 1000).max(1));
}

/// `{"n", "p50_ms", "p99_ms", "p999_ms", "max_ms"}` of a microsecond histogram.
pub fn summary(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    if h.is_empty() {
        return json!({"n": 0, "p50_ms": null, "p99_ms": null, "p999_ms": null, "max_ms": null});
    }
    json!({
        "n": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

pub fn p99_ms(h: &Histogram<u64>) -> f64 {
    if h.is_empty() { f64::INFINITY } else { h.value_at_quantile(0.99) as f64 / 1000.0 }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Registers `username` (an existing account is fine) and logs in: the access token.
/// A 429 is waited out (bounded: at most 20 tries each).
pub async fn account(env: &Env, username: &str) -> Result<String, String> {
    let email = format!("{username}@example.com");
    let body = json!({"email": email, "username": username, "password": PASSWORD});
    post_retrying(env, "/api/users/register/", &body, &[201, 409]).await?;
    let login = json!({"email": email, "password": PASSWORD});
    let v = post_retrying(env, "/api/users/login/", &login, &[200]).await?;
    v["access"].as_str().map(str::to_owned).ok_or_else(|| format!("login of {username}: no access token"))
}

async fn post_retrying(env: &Env, path: &str, body: &Value, ok: &[u16]) -> Result<Value, String> {
    let url = format!("{}{path}", env.http_base);
    for _ in 0..20 {
        let resp = env.http.post(&url).json(body).send().await.map_err(|e| format!("POST {path}: {e}"))?;
        let status = resp.status().as_u16();
        if status == 429 || status == 503 {
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
                .min(5);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let text = resp.text().await.map_err(|e| format!("POST {path}: {e}"))?;
        if !ok.contains(&status) {
            return Err(format!("POST {path}: {status} {}", text.chars().take(200).collect::<String>()));
        }
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    Err(format!("POST {path}: still rate limited after 20 tries (start the server with the auth limit off)"))
}

/// `n` accounts named `tag0 … tag{n-1}`, made `concurrency` at a time: their access tokens, in order.
pub async fn accounts(env: &Env, tag: &str, n: usize, concurrency: usize) -> Result<Vec<String>, String> {
    if env.floor {
        return Ok(vec!["floor".to_owned(); n]);
    }
    let names: Vec<String> = (0..n).map(|i| env.username(tag, i)).collect();
    let results: Vec<Result<String, String>> =
        futures_util::stream::iter(names.iter().map(|u| account(env, u)))
            .buffered(concurrency.max(1))
            .collect()
            .await;
    results.into_iter().collect()
}

/// The client's WebSocket settings. tungstenite zero-fills the free part of its read buffer
/// (up to `read_buffer_size`) before every read; at its default of 128 KiB that was 30 % of
/// the load generator's core in W2 (a `memset` per read, 100,000 reads/s), enough to leave
/// the client, not the server, the slower side of the measurement. Frames here are well
/// under 4 KiB; a larger one is read in several reads.
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

/// Opens `/ws/chat/{room}/` and waits for `ready`: the socket and the room's `last_seq`.
pub async fn connect(env: &Env, room: &str, token: &str) -> Result<(Ws, i64), String> {
    connect_after(env, room, token, None, |_| {}).await
}

/// Opens `/ws/chat/{room}/`, resuming with `?after_seq=` when given, and waits for `ready`:
/// the socket and the room's `last_seq`. Every `message` and `error` frame the server sends
/// before `ready` (the replay of a resume) goes to `before_ready`, in order; a
/// `resync_required` instead of the replay is an error.
pub async fn connect_after(
    env: &Env,
    room: &str,
    token: &str,
    after_seq: Option<i64>,
    mut before_ready: impl FnMut(Frame),
) -> Result<(Ws, i64), String> {
    let resume = after_seq.map(|s| format!("&after_seq={s}")).unwrap_or_default();
    let url = format!("{}/ws/chat/{room}/?token={token}{resume}", env.ws_base);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true),
    )
    .await
    .map_err(|_| "WebSocket connect timed out after 30 s".to_owned())?
    .map_err(|e| format!("WebSocket connect: {e}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("no ready frame within 30 s".into()),
            Ok(None) => return Err("socket closed before ready".into()),
            Ok(Some(Err(e))) => return Err(format!("socket error before ready: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => match parse(t.as_str()) {
                f @ (Frame::Message(_) | Frame::Error(_)) => before_ready(f),
                Frame::Ack { .. } => {}
                Frame::Other => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v["type"] == "ready" {
                        return Ok((ws, v["last_seq"].as_i64().unwrap_or(0)));
                    }
                    if v["type"] == "resync_required" {
                        return Err(format!("resync_required instead of a replay: {t}"));
                    }
                }
            },
            Ok(Some(Ok(Message::Close(c)))) => return Err(format!("closed before ready: {c:?}")),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The fields the load generator reads from a server `message` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub seq: i64,
    /// `t=` of the content: when it was sent, ns since the sender's epoch.
    pub sent_ns: Option<u64>,
    /// `p=` of the content: the phase it was sent in.
    pub phase: Option<usize>,
    /// `s=` of the content: the sender's index.
    pub sender: Option<usize>,
    /// `k=` of the content: the sender's message counter.
    pub k: Option<u64>,
}

/// A frame the server sent, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Message(Delivery),
    Ack { seq: i64 },
    Error(String),
    Other,
}

fn num_after(s: &str, key: &str) -> Option<u64> {
    let at = s.find(key)? + key.len();
    let digits = s[at..].bytes().take_while(u8::is_ascii_digit).count();
    s[at..at + digits].parse().ok()
}

/// Reads a frame. `message` frames, which are nearly all the traffic, are read without a
/// JSON parser (serde writes them in a fixed shape); anything else goes through serde_json.
pub fn parse(text: &str) -> Frame {
    if text.starts_with(r#"{"type":"message""#) {
        let seq = num_after(text, r#""seq":"#).and_then(|s| i64::try_from(s).ok());
        if let (Some(seq), Some(at)) = (seq, text.find(r#""content":""#)) {
            let content = &text[at + 11..];
            let content = &content[..content.find('"').unwrap_or(content.len())];
            let field = |key: &str| {
                content.split(' ').find_map(|part| part.strip_prefix(key)).and_then(|v| v.parse::<u64>().ok())
            };
            return Frame::Message(Delivery {
                seq,
                sent_ns: field("t="),
                phase: field("p=").and_then(|p| usize::try_from(p).ok()),
                sender: field("s=").and_then(|p| usize::try_from(p).ok()),
                k: field("k="),
            });
        }
    }
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match v["type"].as_str() {
        Some("message") => match v["seq"].as_i64() {
            Some(seq) => {
                let content = v["content"].as_str().unwrap_or("");
                let field = |key: &str| {
                    content.split(' ').find_map(|p| p.strip_prefix(key)).and_then(|x| x.parse::<u64>().ok())
                };
                Frame::Message(Delivery {
                    seq,
                    sent_ns: field("t="),
                    phase: field("p=").and_then(|p| usize::try_from(p).ok()),
                    sender: field("s=").and_then(|p| usize::try_from(p).ok()),
                    k: field("k="),
                })
            }
            None => Frame::Error(format!("message frame without seq: {text}")),
        },
        Some("ack") => Frame::Ack { seq: v["seq"].as_i64().unwrap_or(0) },
        Some("error") => Frame::Error(format!("{}: {}", v["code"], v["detail"])),
        _ => Frame::Other,
    }
}

/// The delivery check of one socket: the `seq` of its message frames must go up by one.
#[derive(Debug, Default)]
pub struct SeqCheck {
    /// The `seq` expected next.
    pub next: i64,
    /// Seqs skipped over and not (yet) seen.
    pub missing: HashSet<i64>,
    /// Skipped seqs beyond what `missing` keeps (a gap of absurd size).
    pub missing_uncounted: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub delivered: u64,
}

impl SeqCheck {
    /// After `ready` with `last_seq`.
    pub fn new(last_seq: i64) -> Self {
        Self { next: last_seq + 1, ..Self::default() }
    }

    pub fn last(&self) -> i64 {
        self.next - 1
    }

    pub fn see(&mut self, seq: i64) {
        self.delivered += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            let gap = seq - self.next;
            if gap <= 1_000_000 {
                self.missing.extend(self.next..seq);
            } else {
                self.missing_uncounted += u64::try_from(gap).unwrap_or(0);
            }
            self.next = seq + 1;
        } else if self.missing.remove(&seq) {
            self.out_of_order += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Lost: never seen, counting those after the last one seen up to `final_seq`.
    pub fn lost(&self, final_seq: i64) -> u64 {
        let tail = u64::try_from((final_seq - self.last()).max(0)).unwrap_or(0);
        self.missing.len() as u64 + self.missing_uncounted + tail
    }
}

/// Totals of the delivery checks of many sockets.
#[derive(Debug, Default, Clone, Copy)]
pub struct Integrity {
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

impl Integrity {
    pub fn add(&mut self, c: &SeqCheck, final_seq: i64) {
        self.lost += c.lost(final_seq);
        self.duplicated += c.duplicated;
        self.out_of_order += c.out_of_order;
    }
}

/// CPU seconds (user + system) of a process so far, from /proc/<pid>/stat.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (man 5 proc), in 1/100 s.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A process's resident set in KiB, from /proc/<pid>/status (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A process's thread count, from /proc/<pid>/status (Threads).
pub fn threads(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

/// Open file descriptors of a process (sockets, database files), from /proc/<pid>/fd.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The port of `http://HOST:PORT`.
pub fn port_of(base: &str) -> Option<u16> {
    base.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// Established IPv4 connections on this machine to `port` (client side, from
/// /proc/net/tcp), and how many of them belong to this process: the others are other clients
/// of the server under test.
pub fn clients_of(port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let remote = format!(":{port:04X}");
    // Fields: sl, local_address, rem_address, st (01: established), …, inode (the 10th).
    let inodes: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let to_port = f.get(2)?.ends_with(&remote) && *f.get(3)? == "01";
            to_port.then(|| f.get(9).copied()).flatten()
        })
        .collect();
    let mine: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|e| {
            let target = std::fs::read_link(e.ok()?.path()).ok()?;
            Some(target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let ours = inodes.iter().filter(|i| mine.contains(**i)).count();
    Some((inodes.len() as u64, ours as u64))
}

/// Times, on a thread of its own, a 4 KiB write and `fdatasync` every 50 ms on the disk the
/// stores write to, for as long as a workload runs. A message is delivered only once it is
/// durable, so a stall of the disk is a stall of every delivery behind it; the probe's
/// slowest sync, next to a run's delivery tail, tells whether the disk made that tail.
#[derive(Debug)]
pub struct DiskProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Histogram<u64>>,
    path: std::path::PathBuf,
}

impl DiskProbe {
    /// Starts probing with the file `path` (created, and removed by [`Self::finish`]).
    /// # Errors
    /// When the file cannot be created or the thread cannot start.
    pub fn start(path: &std::path::Path) -> Result<Self, String> {
        use std::os::unix::fs::FileExt as _;
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn(move || {
                let mut h = histogram();
                let block = [b'x'; 4096];
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    // The same block each time: the file stays 4 KiB however long the run.
                    if file.write_all_at(&block, 0).and_then(|()| file.sync_data()).is_err() {
                        break;
                    }
                    record_ns(&mut h, u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    std::thread::sleep(Duration::from_millis(50));
                }
                h
            })
            .map_err(|e| format!("disk probe thread: {e}"))?;
        Ok(Self { stop, handle, path: path.to_owned() })
    }

    /// Stops the probe: `{"syncs", "p99_ms", "max_ms"}` of the writes it timed.
    pub fn finish(self) -> Value {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let h = self.handle.join().unwrap_or_else(|_| histogram());
        let _ = std::fs::remove_file(&self.path);
        json!({"syncs": h.len(), "p99_ms": p99_ms(&h), "max_ms": round2(h.max() as f64 / 1000.0)})
    }
}

/// CPU use of this process and of the server between `start` and now, as a share of one core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    wall: Instant,
    client: Option<f64>,
    server: Option<f64>,
    pid: Option<u32>,
}

impl CpuMeter {
    pub fn start(pid: Option<u32>) -> Self {
        Self {
            wall: Instant::now(),
            client: cpu_secs(None),
            server: pid.and_then(|p| cpu_secs(Some(p))),
            pid,
        }
    }

    pub fn json(&self) -> Value {
        let wall = self.wall.elapsed().as_secs_f64().max(1e-9);
        let share = |before: Option<f64>, now: Option<f64>| match (before, now) {
            (Some(b), Some(n)) => json!(round2((n - b) / wall)),
            _ => Value::Null,
        };
        json!({
            "client_cpu": share(self.client, cpu_secs(None)),
            "server_cpu": share(self.server, self.pid.and_then(|p| cpu_secs(Some(p)))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_frame_is_read_without_serde() {
        let f = r#"{"type":"message","id":17,"room":"r","seq":5,"sender":"a","sender_id":"x","content":"t=123 p=2 s=7 k=9 xx","timestamp":"2024","client_msg_id":"c","message":"t=123 p=2 s=7 k=9 xx"}"#;
        assert_eq!(
            parse(f),
            Frame::Message(Delivery {
                seq: 5,
                sent_ns: Some(123),
                phase: Some(2),
                sender: Some(7),
                k: Some(9)
            })
        );
        assert_eq!(
            parse(r#"{"type":"ack","client_msg_id":"c","id":1,"seq":4,"room":"r"}"#),
            Frame::Ack { seq: 4 }
        );
        assert_eq!(parse(r#"{"type":"presence"}"#), Frame::Other);
    }

    #[test]
    fn connections_to_a_port_are_told_apart_from_other_clients() -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        assert_eq!(port_of(&format!("http://127.0.0.1:{port}")), Some(port));
        let _client = std::net::TcpStream::connect(("127.0.0.1", port))?;
        let _server_side = listener.accept()?;
        assert_eq!(clients_of(port), Some((1, 1)));
        Ok(())
    }

    #[test]
    fn the_check_counts_lost_duplicated_and_out_of_order() {
        let mut c = SeqCheck::new(10);
        for s in [11, 12, 14, 13, 13, 16] {
            c.see(s);
        }
        assert_eq!((c.duplicated, c.out_of_order), (1, 1));
        assert_eq!(c.lost(18), 3); // 15, 17 and 18
    }
}
