//! W8: the soak. Minutes of a mixed load against one server: rooms of sockets with open-loop
//! senders, REST reads (room list, history pages, user list), and churn (listening sockets
//! that drop and resume with `?after_seq=`), while the server's RSS is sampled. Every
//! delivery is checked, the replays of resumed sockets included.

use crate::fanout::secs_parser;
use crate::util::{
    CpuMeter, Env, Frame, Integrity, SeqCheck, Ws, account, accounts, clients_of, connect, connect_after,
    histogram, lock, open_fds, parse, port_of, record_ns, round2, rss_kib, summary, threads,
};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// The server's default per-user send limit (SPEC §1: 20 messages/s, burst 40).
const SERVER_SEND_RATE: f64 = 20.0;
/// REST requests in flight at most; a tick finding none free is counted as skipped.
const REST_IN_FLIGHT: u32 = 64;

/// The phases of a run, in order (the value of the phase channel).
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
/// No more sends, churn or REST: the sockets catch up.
const DRAIN: u8 = 2;
const STOP: u8 = 3;

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 300.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Seconds of the same load before measuring; the RSS baseline is taken at its end.
    #[arg(long, default_value_t = 30.0, value_parser = secs_parser)]
    pub warmup: f64,
    /// Rooms.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Sockets per room, one user each.
    #[arg(long, default_value_t = 10)]
    pub per_room: usize,
    /// Sockets per room that send; the others listen, and churn.
    #[arg(long, default_value_t = 2)]
    pub senders_per_room: usize,
    /// Messages per second, all rooms together (open loop, evenly phased over the senders).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// The most one user may send per second (the server's `--send-rate`); the run is
    /// refused when rate ÷ senders is above it.
    #[arg(long, default_value_t = SERVER_SEND_RATE)]
    pub max_user_rate: f64,
    /// REST reads per second: `GET /api/rooms/`, a history page, `GET /api/users/list`, in turn.
    #[arg(long, default_value_t = 50.0)]
    pub rest_rate: f64,
    /// Seconds between two rounds of churn.
    #[arg(long, default_value_t = 5.0, value_parser = secs_parser)]
    pub churn_every: f64,
    /// Listening sockets that drop in each round (alternately with a close frame and by
    /// cutting the TCP connection) and resume with `?after_seq=<last seq seen>`.
    #[arg(long, default_value_t = 3)]
    pub churn_sockets: usize,
    /// How long a dropped socket stays away before it resumes.
    #[arg(long, default_value_t = 1000)]
    pub churn_down_ms: u64,
    /// Seconds between two samples of the server's RSS.
    #[arg(long, default_value_t = 5.0, value_parser = secs_parser)]
    pub rss_every: f64,
    /// Longest wait, after the load stops, for every socket to catch up (the rest is lost).
    #[arg(long, default_value_t = 20.0, value_parser = secs_parser)]
    pub drain_secs: f64,
    /// Bytes of padding in each message's content.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// A token older than this is renewed (a new login) before it is used, so that a run
    /// longer than the server's access token lifetime (15 min by default) still reconnects.
    #[arg(long, default_value_t = 600.0, value_parser = secs_parser)]
    pub token_max_age: f64,
}

#[derive(Debug)]
struct Agg {
    /// Delivery latency of the messages sent in the measured phase, live deliveries only.
    hist: Histogram<u64>,
    rest_hist: Histogram<u64>,
    /// Messages sent, by phase (warm-up, measured).
    sent: [u64; 2],
    acks: u64,
    /// Message frames received live (after `ready`).
    live: u64,
    /// Message frames received in the replay of a resume (before `ready`).
    replayed: u64,
    reconnects: u64,
    /// Resumes whose replay did not end at the `last_seq` of the `ready` that followed.
    resume_mismatches: u64,
    /// Scheduled sends dropped because a sender fell more than a second behind.
    late_skipped: u64,
    relogins: u64,
    /// Successful REST reads: room list, history page, user list.
    rest_ok: [u64; 3],
    rest_errors: u64,
    /// History pages whose seqs were not the expected run.
    history_mismatches: u64,
    rest_skipped: u64,
    /// Every error: error frames, closes not asked for, failed sends or resumes, REST
    /// answers other than 2xx, history mismatches, resume mismatches.
    errors: u64,
    /// Sockets closed (or cut) by the server.
    closed: u64,
    first_error: Option<String>,
}

impl Agg {
    fn new() -> Self {
        Self {
            hist: histogram(),
            rest_hist: histogram(),
            sent: [0; 2],
            acks: 0,
            live: 0,
            replayed: 0,
            reconnects: 0,
            resume_mismatches: 0,
            late_skipped: 0,
            relogins: 0,
            rest_ok: [0; 3],
            rest_errors: 0,
            history_mismatches: 0,
            rest_skipped: 0,
            errors: 0,
            closed: 0,
            first_error: None,
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Each user's access token and when it was issued.
#[derive(Debug)]
struct Tokens {
    names: Vec<String>,
    current: Mutex<Vec<(String, Instant)>>,
    max_age: Duration,
}

impl Tokens {
    async fn get(&self, env: &Env, i: usize, agg: &Mutex<Agg>) -> Result<String, String> {
        let (token, issued) = lock(&self.current)[i].clone();
        if issued.elapsed() < self.max_age {
            return Ok(token);
        }
        let fresh = account(env, &self.names[i]).await?;
        lock(&self.current)[i] = (fresh.clone(), Instant::now());
        lock(agg).relogins += 1;
        Ok(fresh)
    }
}

/// What every task of the run shares.
#[derive(Debug)]
struct Shared {
    env: Env,
    agg: Mutex<Agg>,
    tokens: Tokens,
    rooms: Vec<String>,
    /// The highest acknowledged seq of each room.
    room_max: Vec<AtomicI64>,
    /// The last seq each socket has seen.
    last_seen: Vec<AtomicI64>,
    /// Sockets dropped and not resumed yet.
    away: AtomicUsize,
    pad: String,
    churn_down: Duration,
}

/// A sending socket's schedule: the next send and the time between two.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    next: Instant,
    period: Duration,
    k: u64,
}

/// Why a socket left its live loop.
enum Outcome {
    Stop,
    Churn { graceful: bool },
    Lost,
}

/// One socket for the whole run: live traffic, sends on its schedule, and, when told to
/// churn (or cut by the server), a resume from the last seq it saw.
#[expect(clippy::too_many_arguments, reason = "the socket's state, spelled out")]
async fn socket_task(
    i: usize,
    room: usize,
    mut ws: Ws,
    last_seq: i64,
    mut schedule: Option<Schedule>,
    mut churn: mpsc::Receiver<bool>,
    mut phase: watch::Receiver<u8>,
    sh: Arc<Shared>,
) -> SeqCheck {
    let mut check = SeqCheck::new(last_seq);
    loop {
        let outcome = live(i, room, &mut ws, &mut check, &mut schedule, &mut churn, &mut phase, &sh).await;
        let away = match outcome {
            Outcome::Stop => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return check;
            }
            Outcome::Churn { graceful } => {
                if graceful {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                }
                sh.churn_down
            }
            Outcome::Lost => Duration::from_millis(500),
        };
        drop(ws);
        sh.away.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(away).await;
        ws = loop {
            if *phase.borrow() >= STOP {
                return check;
            }
            match resume(i, room, &mut check, &sh).await {
                Ok(w) => {
                    sh.away.fetch_sub(1, Ordering::Relaxed);
                    break w;
                }
                Err(e) => {
                    lock(&sh.agg).error(format!("socket {i} resuming: {e}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
    }
}

#[expect(clippy::too_many_arguments, reason = "the socket's state, spelled out")]
async fn live(
    i: usize,
    room: usize,
    ws: &mut Ws,
    check: &mut SeqCheck,
    schedule: &mut Option<Schedule>,
    churn: &mut mpsc::Receiver<bool>,
    phase: &mut watch::Receiver<u8>,
    sh: &Shared,
) -> Outcome {
    let far = Instant::now() + Duration::from_secs(86_400);
    loop {
        let p = *phase.borrow_and_update();
        if p >= STOP {
            return Outcome::Stop;
        }
        let send_at = schedule.as_ref().filter(|_| p <= MEASURE).map(|s| s.next);
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    return Outcome::Stop;
                }
            }
            Some(graceful) = churn.recv() => return Outcome::Churn { graceful },
            next = ws.next() => match next {
                Some(Ok(Message::Text(t))) => on_text(i, room, t.as_str(), check, sh),
                Some(Ok(Message::Close(c))) => {
                    let mut a = lock(&sh.agg);
                    a.closed += 1;
                    a.error(format!("socket {i} closed by the server: {c:?}"));
                    return Outcome::Lost;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let mut a = lock(&sh.agg);
                    a.closed += 1;
                    a.error(format!("socket {i}: {e}"));
                    return Outcome::Lost;
                }
                None => {
                    let mut a = lock(&sh.agg);
                    a.closed += 1;
                    a.error(format!("socket {i} ended"));
                    return Outcome::Lost;
                }
            },
            () = tokio::time::sleep_until(send_at.unwrap_or(far).into()), if send_at.is_some() => {
                if let Some(s) = schedule.as_mut() {
                    let t = sh.env.epoch.elapsed().as_nanos();
                    let frame = format!(
                        r#"{{"type":"message","content":"t={t} p={p} s={i} k={} {}","client_msg_id":"{i}-{}"}}"#,
                        s.k, sh.pad, s.k
                    );
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        lock(&sh.agg).error(format!("socket {i} send: {e}"));
                        return Outcome::Lost;
                    }
                    s.k += 1;
                    s.next += s.period;
                    // Open loop, but a sender more than a second behind (a stalled socket)
                    // skips what it missed rather than bursting past the per-user limit.
                    let mut skipped = 0;
                    while s.next + Duration::from_secs(1) < Instant::now() {
                        s.next += s.period;
                        skipped += 1;
                    }
                    let mut a = lock(&sh.agg);
                    a.sent[usize::from(p.min(MEASURE))] += 1;
                    a.late_skipped += skipped;
                }
            }
        }
    }
}

fn on_text(i: usize, room: usize, text: &str, check: &mut SeqCheck, sh: &Shared) {
    match parse(text) {
        Frame::Message(d) => {
            check.see(d.seq);
            sh.last_seen[i].store(check.last(), Ordering::Relaxed);
            let now = u64::try_from(sh.env.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let mut a = lock(&sh.agg);
            a.live += 1;
            if let (Some(1), Some(sent)) = (d.phase, d.sent_ns) {
                record_ns(&mut a.hist, now.saturating_sub(sent));
            }
        }
        Frame::Ack { seq } => {
            sh.room_max[room].fetch_max(seq, Ordering::Relaxed);
            lock(&sh.agg).acks += 1;
        }
        Frame::Error(e) => lock(&sh.agg).error(format!("socket {i}: error frame {e}")),
        Frame::Other => {}
    }
}

/// Reconnects with `?after_seq=<last seq seen>`: the replay goes through the socket's check,
/// and must end exactly at the `last_seq` of the `ready` that follows it.
async fn resume(i: usize, room: usize, check: &mut SeqCheck, sh: &Shared) -> Result<Ws, String> {
    let token = sh.tokens.get(&sh.env, i, &sh.agg).await?;
    let after = check.last();
    let mut replayed = 0u64;
    let mut frame_errors = Vec::new();
    let (ws, last_seq) = connect_after(&sh.env, &sh.rooms[room], &token, Some(after), |f| match f {
        Frame::Message(d) => {
            check.see(d.seq);
            replayed += 1;
        }
        Frame::Error(e) => frame_errors.push(e),
        Frame::Ack { .. } | Frame::Other => {}
    })
    .await?;
    sh.last_seen[i].store(check.last(), Ordering::Relaxed);
    let mut a = lock(&sh.agg);
    a.reconnects += 1;
    a.replayed += replayed;
    for e in frame_errors {
        a.error(format!("socket {i}: error frame during the replay: {e}"));
    }
    if check.last() != last_seq {
        a.resume_mismatches += 1;
        a.error(format!(
            "socket {i}: resumed after {after}, the replay ended at {} but ready says last_seq {last_seq}",
            check.last()
        ));
    }
    Ok(ws)
}

/// Every `every`, tells the next `per_round` listening sockets (round robin, spread over the
/// rooms) to drop and resume, until the measured phase ends: the rounds asked for.
async fn churner(
    order: Vec<usize>,
    txs: Vec<Option<mpsc::Sender<bool>>>,
    every: f64,
    per_round: usize,
    mut phase: watch::Receiver<u8>,
) -> u64 {
    if order.is_empty() || per_round == 0 || every <= 0.0 {
        return 0;
    }
    let every = Duration::from_secs_f64(every);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let (mut next, mut round, mut asked) = (0usize, 0u64, 0u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() > MEASURE {
                    return asked;
                }
                continue;
            }
        }
        if *phase.borrow() > MEASURE {
            return asked;
        }
        for _ in 0..per_round.min(order.len()) {
            let s = order[next % order.len()];
            next += 1;
            // At most one order waits for a socket that is still away (it drops again on return).
            if txs[s].as_ref().is_some_and(|tx| tx.try_send(round.is_multiple_of(2)).is_ok()) {
                asked += 1;
            }
        }
        round += 1;
    }
}

/// A small deterministic generator for the history pages' positions.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Open loop at `rate` requests/s until the measured phase ends; waits for the last ones.
async fn rest_load(sh: Arc<Shared>, rate: f64, mut phase: watch::Receiver<u8>) {
    if rate <= 0.0 {
        return;
    }
    let in_flight = Arc::new(Semaphore::new(REST_IN_FLIGHT as usize));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let (mut n, mut rng) = (0u64, 0x9e37_79b9_7f4a_7c15_u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() > MEASURE {
                    break;
                }
                continue;
            }
        }
        if *phase.borrow() > MEASURE {
            break;
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            lock(&sh.agg).rest_skipped += 1;
            continue;
        };
        let kind = usize::try_from(n % 3).unwrap_or(0);
        let room = usize::try_from(n / 3).unwrap_or(0) % sh.rooms.len();
        let pick = xorshift(&mut rng);
        n += 1;
        let sh = sh.clone();
        tokio::spawn(async move {
            let _permit = permit;
            rest_one(&sh, kind, room, pick).await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(35), in_flight.acquire_many(REST_IN_FLIGHT)).await;
}

/// One REST read. A history page (`?before=`, 50 messages, below the room's highest
/// acknowledged seq) must hold exactly the seqs before its `before`, oldest first.
async fn rest_one(sh: &Shared, kind: usize, room: usize, pick: u64) {
    let token = match sh.tokens.get(&sh.env, 0, &sh.agg).await {
        Ok(t) => t,
        Err(e) => {
            let mut a = lock(&sh.agg);
            a.rest_errors += 1;
            a.error(format!("REST token: {e}"));
            return;
        }
    };
    let mut expected = None;
    let path = match kind {
        0 => "/api/rooms/".to_owned(),
        1 => {
            let name = &sh.rooms[room];
            let max = sh.room_max[room].load(Ordering::Relaxed);
            if max >= 2 {
                // before ∈ [2, max]: the page is max(1, before − 50) … before − 1.
                let before = 2 + i64::try_from(pick % u64::try_from(max - 1).unwrap_or(1)).unwrap_or(0);
                expected = Some(((before - 50).max(1), before - 1));
                format!("/api/rooms/{name}/messages/?before={before}&limit=50")
            } else {
                format!("/api/rooms/{name}/messages/")
            }
        }
        _ => "/api/users/list".to_owned(),
    };
    let t = Instant::now();
    let answer = match sh.env.http.get(format!("{}{path}", sh.env.http_base)).bearer_auth(&token).send().await
    {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(body) if status.is_success() => Ok(body),
                Ok(body) => Err(format!(
                    "GET {path}: {status} {}",
                    String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
                )),
                Err(e) => Err(format!("GET {path}: {e}")),
            }
        }
        Err(e) => Err(format!("GET {path}: {e}")),
    };
    let elapsed = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let body = match answer {
        Ok(b) => b,
        Err(e) => {
            let mut a = lock(&sh.agg);
            a.rest_errors += 1;
            a.error(e);
            return;
        }
    };
    let mismatch = expected.and_then(|(first, last)| {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let seqs: Vec<i64> = v["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["seq"].as_i64()).collect())
            .unwrap_or_default();
        let want: Vec<i64> = (first..=last).collect();
        (seqs != want).then(|| {
            format!(
                "GET {path}: seqs {:?}…{:?} ({} messages), expected {first}…{last}",
                seqs.first(),
                seqs.last(),
                seqs.len()
            )
        })
    });
    let mut a = lock(&sh.agg);
    record_ns(&mut a.rest_hist, elapsed);
    a.rest_ok[kind.min(2)] += 1;
    if let Some(m) = mismatch {
        a.history_mismatches += 1;
        a.error(m);
    }
}

/// One sample of the server: seconds since the warm-up started, VmRSS KiB, open descriptors,
/// threads, and connections to its port from processes other than this one (another load
/// on the same server makes the RSS figures meaningless).
type Sample = (f64, Option<u64>, Option<u64>, Option<u64>, Option<u64>);

fn sample(pid: u32, port: Option<u16>, start: Instant) -> Sample {
    let others = port.and_then(clients_of).map(|(all, ours)| all.saturating_sub(ours));
    (round2(start.elapsed().as_secs_f64()), rss_kib(pid), open_fds(pid), threads(pid), others)
}

/// Samples the server every `every` until the measured phase ends.
async fn sampler(
    pid: u32,
    port: Option<u16>,
    start: Instant,
    every: f64,
    mut phase: watch::Receiver<u8>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let every = Duration::from_secs_f64(every.max(0.5));
    let mut tick = tokio::time::interval_at(start.into(), every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() > MEASURE {
                    return samples;
                }
                continue;
            }
        }
        if *phase.borrow() > MEASURE {
            return samples;
        }
        samples.push(sample(pid, port, start));
    }
}

/// The least-squares slope of RSS over time, KiB per minute, over the samples from `from` s.
fn slope_kib_per_min(samples: &[Sample], from: f64) -> Option<f64> {
    let pts: Vec<(f64, f64)> =
        samples.iter().filter(|s| s.0 >= from).filter_map(|s| Some((s.0, s.1? as f64))).collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| round2(sxy / sxx * 60.0))
}

/// W8.
pub async fn soak(env: &Env, args: &SoakArgs) -> Result<Value, String> {
    let pid = env.server_pid.ok_or("W8 needs --server-pid to sample the server's RSS")?;
    let (rooms, per_room) = (args.rooms.max(1), args.per_room.max(1));
    let spr = args.senders_per_room.clamp(1, per_room);
    if args.churn_sockets > 0 && spr >= per_room {
        return Err("churn needs listening sockets: --per-room must be above --senders-per-room".into());
    }
    let n_senders = rooms * spr;
    let rate = args.rate.max(0.001);
    let per_user = rate / n_senders as f64;
    if per_user > args.max_user_rate {
        return Err(format!(
            "{rate} msg/s over {n_senders} senders is {per_user:.1} msg/s per user, above --max-user-rate {}: add rooms or senders",
            args.max_user_rate
        ));
    }
    let t0 = Instant::now();
    let n = rooms * per_room;
    let names: Vec<String> = (0..n).map(|i| env.username("w8", i)).collect();
    let tokens = accounts(env, "w8", n, 16).await?;
    let issued = Instant::now();
    let room_names: Vec<String> = (0..rooms).map(|r| env.room("w8", r)).collect();
    // Socket i is user i, in room i / per_room; the first `spr` of each room send.
    let opened: Vec<Result<(Ws, i64), String>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (env, room, token) = (env.clone(), room_names[i / per_room].clone(), tokens[i].clone());
            async move { connect(&env, &room, &token).await }
        })
        .buffered(32)
        .collect()
        .await;
    let mut sockets = Vec::with_capacity(n);
    for o in opened {
        sockets.push(o?);
    }
    let sh = Arc::new(Shared {
        env: env.clone(),
        agg: Mutex::new(Agg::new()),
        tokens: Tokens {
            names,
            current: Mutex::new(tokens.into_iter().map(|t| (t, issued)).collect()),
            max_age: Duration::from_secs_f64(args.token_max_age.max(1.0)),
        },
        rooms: room_names,
        room_max: (0..rooms).map(|_| AtomicI64::new(0)).collect(),
        last_seen: sockets.iter().map(|(_, s)| AtomicI64::new(*s)).collect(),
        away: AtomicUsize::new(0),
        pad: "x".repeat(args.pad),
        churn_down: Duration::from_millis(args.churn_down_ms),
    });
    for (r, max) in sh.room_max.iter().enumerate() {
        let last = sockets[r * per_room..(r + 1) * per_room].iter().map(|(_, s)| *s).max().unwrap_or(0);
        max.store(last, Ordering::Relaxed);
    }
    let setup_secs = round2(t0.elapsed().as_secs_f64());
    let rss_setup = rss_kib(pid);

    let start = Instant::now() + Duration::from_millis(100);
    let (phase_tx, phase_rx) = watch::channel(WARMUP);
    let period = Duration::from_secs_f64(n_senders as f64 / rate);
    let mut tasks = Vec::with_capacity(n);
    let mut churn_txs = Vec::with_capacity(n);
    for (i, (ws, last_seq)) in sockets.into_iter().enumerate() {
        let (room, pos) = (i / per_room, i % per_room);
        // Consecutive sends go to different rooms: sender g sends at g/rate, then every period.
        let schedule = (pos < spr).then(|| Schedule {
            next: start + Duration::from_secs_f64((pos * rooms + room) as f64 / rate),
            period,
            k: 0,
        });
        let (tx, rx) = mpsc::channel(1);
        churn_txs.push((pos >= spr).then_some(tx));
        let task = socket_task(i, room, ws, last_seq, schedule, rx, phase_rx.clone(), sh.clone());
        tasks.push((room, tokio::spawn(task)));
    }
    // Listeners in churn order: one from each room in turn.
    let order: Vec<usize> =
        (spr..per_room).flat_map(|pos| (0..rooms).map(move |room| room * per_room + pos)).collect();
    let churn =
        tokio::spawn(churner(order, churn_txs, args.churn_every, args.churn_sockets, phase_rx.clone()));
    let rest = tokio::spawn(rest_load(sh.clone(), args.rest_rate, phase_rx.clone()));
    let port = port_of(&env.http_base);
    let samples = tokio::spawn(sampler(pid, port, start, args.rss_every, phase_rx.clone()));

    let measure_from = start + Duration::from_secs_f64(args.warmup);
    tokio::time::sleep_until(measure_from.into()).await;
    let warm = sample(pid, port, start);
    let _ = phase_tx.send(MEASURE);
    let cpu = CpuMeter::start(Some(pid));
    tokio::time::sleep_until((measure_from + Duration::from_secs_f64(args.secs)).into()).await;
    let end = sample(pid, port, start);
    let cpu_json = cpu.json();
    let measured_secs = measure_from.elapsed().as_secs_f64();
    let _ = phase_tx.send(DRAIN);
    let churns = churn.await.unwrap_or(0);
    let _ = rest.await;
    let samples = samples.await.unwrap_or_default();

    // Every message sent acknowledged, every socket back (the last round of churn resumed)
    // and at its room's last acknowledged seq.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_secs);
    while Instant::now() < drain_deadline {
        let (sent, acks) = {
            let a = lock(&sh.agg);
            (a.sent[0] + a.sent[1], a.acks)
        };
        let behind = (0..n)
            .filter(|&i| {
                sh.last_seen[i].load(Ordering::Relaxed) < sh.room_max[i / per_room].load(Ordering::Relaxed)
            })
            .count();
        if acks >= sent && behind == 0 && sh.away.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = phase_tx.send(STOP);
    let mut integrity = Integrity::default();
    let mut deliveries = 0u64;
    for (room, task) in tasks {
        match task.await {
            Ok(check) => {
                deliveries += check.delivered;
                integrity.add(&check, sh.room_max[room].load(Ordering::Relaxed));
            }
            Err(e) => lock(&sh.agg).error(format!("socket task: {e}")),
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = sample(pid, port, start);
    let (rss_warm, rss_end) = (warm.1, end.1);
    let others_max = samples.iter().chain([&warm, &end]).filter_map(|s| s.4).max();

    let growth = match (rss_warm, rss_end) {
        (Some(w), Some(e)) if w > 0 => Some(round2((e as f64 - w as f64) / w as f64 * 100.0)),
        _ => None,
    };
    let rss_max = samples.iter().filter(|s| s.0 >= args.warmup).filter_map(|s| s.1).chain(rss_end).max();
    let away = sh.away.load(Ordering::Relaxed);
    if away > 0 {
        lock(&sh.agg).error(format!("{away} dropped sockets had not resumed when the drain ended"));
    }
    let a = lock(&sh.agg);
    let sent = a.sent[0] + a.sent[1];
    let rest_ok: u64 = a.rest_ok.iter().sum();
    let mut out = json!({
        "workload": "W8",
        "secs": round2(measured_secs),
        "warmup": args.warmup,
        "rooms": rooms,
        "sockets": n,
        "senders": n_senders,
        "rate": rate,
        "per_user_rate": round2(per_user),
        "rest_rate": args.rest_rate,
        "churn_every": args.churn_every,
        "churn_sockets": args.churn_sockets,
        "setup_secs": setup_secs,
        "rss_setup_kib": rss_setup,
        "rss_warm_kib": rss_warm,
        "rss_end_kib": rss_end,
        "rss_max_kib": rss_max,
        "rss_growth_pct": growth,
        "rss_slope_kib_per_min": slope_kib_per_min(&samples, args.warmup),
        "rss_after_stop_kib": after.1,
        "fds_warm": warm.2,
        "fds_end": end.2,
        "fds_after_stop": after.2,
        "other_clients_max": others_max,
        "other_clients_after_stop": after.4,
        "threads_warm": warm.3,
        "threads_end": end.3,
        "samples_format": ["secs", "rss_kib", "fds", "threads", "other_clients"],
        "rss_samples": samples.iter().map(|s| json!([s.0, s.1, s.2, s.3, s.4])).collect::<Vec<_>>(),
    });
    let traffic = json!({
        "sent": sent,
        "sent_measured": a.sent[1],
        "messages_per_s": round2(a.sent[1] as f64 / measured_secs.max(1e-9)),
        "acked": a.acks,
        "unacked": sent.saturating_sub(a.acks),
        "deliveries": deliveries,
        "live_deliveries": a.live,
        "replayed": a.replayed,
        "deliveries_per_s": round2(a.hist.len() as f64 / measured_secs.max(1e-9)),
        "latency": summary(&a.hist),
        "churns": churns,
        "away_at_stop": away,
        "reconnects": a.reconnects,
        "resume_mismatches": a.resume_mismatches,
        "late_skipped": a.late_skipped,
        "relogins": a.relogins,
        "rest": {
            "requests": rest_ok,
            "rooms": a.rest_ok[0],
            "history": a.rest_ok[1],
            "users_list": a.rest_ok[2],
            "errors": a.rest_errors,
            "history_mismatches": a.history_mismatches,
            "skipped": a.rest_skipped,
            "latency": summary(&a.rest_hist),
        },
        "lost": integrity.lost,
        "duplicated": integrity.duplicated,
        "out_of_order": integrity.out_of_order,
        "errors": a.errors,
        "closed": a.closed,
        "first_error": a.first_error,
    });
    if let Some(o) = out.as_object_mut() {
        for part in [traffic, cpu_json] {
            if let Value::Object(p) = part {
                o.extend(p);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_kib_per_minute_over_the_measured_samples() {
        let samples: Vec<Sample> = (0..10u32)
            .map(|i| (f64::from(i) * 5.0, Some(1000 + u64::from(i) * 10), None, None, None))
            .collect();
        // 10 KiB every 5 s = 120 KiB/min; the samples before 10 s are left out.
        assert_eq!(slope_kib_per_min(&samples, 10.0), Some(120.0));
        assert_eq!(slope_kib_per_min(&samples[..2], 0.0), None);
    }
}
