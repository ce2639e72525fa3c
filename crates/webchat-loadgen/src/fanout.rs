//! W1, W2 and W3: many sockets in one room, messages sent on a schedule (open loop) by a
//! few of them, every delivery on every socket checked and timed.

use crate::util::{
    CpuMeter, Env, Frame, Integrity, SeqCheck, Ws, accounts, connect, histogram, lock, p99_ms, parse,
    record_ns, round2, summary,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Phases a run may have (warm-up, steps); each has its own histogram.
const MAX_PHASES: usize = 64;

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Sockets in the room (W1: 100, W2: 1000).
    #[arg(long)]
    pub sockets: Option<usize>,
    /// Distinct users owning the sockets (default: one per socket).
    #[arg(long)]
    pub users: Option<usize>,
    /// Messages per second into the room, all senders together (W1: 50, W2: 100).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sockets that send (round robin over the schedule).
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Seconds sent before measuring (not counted in the figures, but checked for delivery).
    #[arg(long, default_value_t = 2.0, value_parser = secs_parser)]
    pub warmup: f64,
    /// Bytes of padding in each message's content.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RampArgs {
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    #[arg(long)]
    pub users: Option<usize>,
    #[arg(long, default_value_t = 50)]
    pub senders: usize,
    /// Messages per second of the first step.
    #[arg(long, default_value_t = 50.0)]
    pub start_rate: f64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.3)]
    pub factor: f64,
    #[arg(long, default_value_t = 4.0, value_parser = secs_parser)]
    pub step_secs: f64,
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub max_steps: u64,
    /// Stop once a step's p99 passes this.
    #[arg(long, default_value_t = 50.0)]
    pub p99_limit_ms: f64,
    /// Times a step whose p99 passed the limit is run again at the same rate before the
    /// ramp stops: one stall of the machine in a 4 s window (a checkpoint of PostgreSQL,
    /// another process on the core) must not end the ramp below the server's real knee.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=3))]
    pub retries: u64,
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
}

pub fn secs_parser(raw: &str) -> Result<f64, String> {
    let v: f64 = raw.parse().map_err(|_| format!("{raw:?} is not a number of seconds"))?;
    if (0.0..=3600.0).contains(&v) { Ok(v) } else { Err("seconds must be between 0 and 3600".into()) }
}

#[derive(Debug)]
struct Agg {
    hists: Vec<Histogram<u64>>,
    deliveries: Vec<u64>,
    acks: u64,
    errors: u64,
    closed: u64,
    first_error: Option<String>,
}

impl Agg {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// A connected socket: its write half and its reader task.
type Opened = (SplitSink<Ws, Message>, JoinHandle<SeqCheck>);

#[derive(Debug)]
struct PhaseCmd {
    phase: usize,
    start: Instant,
    offset: Duration,
    period: Duration,
    until: Instant,
    done: oneshot::Sender<u64>,
}

/// A room full of connected sockets, each with a reader task, and the sender tasks.
#[derive(Debug)]
struct Room {
    sockets: usize,
    users: usize,
    agg: Arc<Mutex<Agg>>,
    last_seen: Arc<Vec<AtomicI64>>,
    max_ack: Arc<AtomicI64>,
    readers: Vec<JoinHandle<SeqCheck>>,
    senders: Vec<mpsc::Sender<PhaseCmd>>,
    stop: watch::Sender<bool>,
    /// The write halves of the sockets that only listen, kept open for the whole run.
    _listening: Vec<SplitSink<Ws, Message>>,
    sent: u64,
    setup_secs: f64,
}

#[allow(clippy::too_many_arguments, reason = "the reader's shared state, spelled out")]
async fn reader(
    idx: usize,
    mut stream: SplitStream<Ws>,
    last_seq: i64,
    epoch: Instant,
    agg: Arc<Mutex<Agg>>,
    last_seen: Arc<Vec<AtomicI64>>,
    max_ack: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
    record: bool,
) -> SeqCheck {
    let mut check = SeqCheck::new(last_seq);
    loop {
        let next = tokio::select! {
            biased;
            m = stream.next() => m,
            _ = stop.changed() => break,
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                match parse(t.as_str()) {
                    Frame::Message(d) => {
                        check.see(d.seq);
                        last_seen[idx].store(check.last(), Ordering::Relaxed);
                        if let (true, Some(sent), Some(phase)) = (record, d.sent_ns, d.phase) {
                            let mut a = lock(&agg);
                            if phase < MAX_PHASES {
                                record_ns(&mut a.hists[phase], now.saturating_sub(sent));
                                a.deliveries[phase] += 1;
                            }
                        }
                    }
                    Frame::Ack { seq } => {
                        max_ack.fetch_max(seq, Ordering::Relaxed);
                        lock(&agg).acks += 1;
                    }
                    Frame::Error(e) => lock(&agg).error(format!("socket {idx}: {e}")),
                    Frame::Other => {}
                }
            }
            Some(Ok(Message::Close(c))) => {
                let mut a = lock(&agg);
                a.closed += 1;
                a.error(format!("socket {idx} closed by the server: {c:?}"));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let mut a = lock(&agg);
                a.closed += 1;
                a.error(format!("socket {idx}: {e}"));
                break;
            }
            None => {
                let mut a = lock(&agg);
                a.closed += 1;
                a.error(format!("socket {idx} ended"));
                break;
            }
        }
    }
    check
}

async fn sender(
    idx: usize,
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<PhaseCmd>,
    epoch: Instant,
    pad: String,
    errors: Arc<AtomicU64>,
) {
    let mut k = 0u64;
    while let Some(cmd) = rx.recv().await {
        let mut sent = 0;
        let mut at = cmd.start + cmd.offset;
        while at < cmd.until {
            tokio::time::sleep_until(at.into()).await;
            let t = epoch.elapsed().as_nanos();
            let frame = format!(
                r#"{{"type":"message","content":"t={t} p={} s={idx} k={k} {pad}","client_msg_id":"{idx}-{k}"}}"#,
                cmd.phase
            );
            if sink.send(Message::text(frame)).await.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
            sent += 1;
            k += 1;
            at += cmd.period;
        }
        let _ = cmd.done.send(sent);
    }
}

impl Room {
    /// Opens the room. Without `split`, `sockets` sockets on `env`, `senders` of them sending,
    /// every delivery timed. With `split` (W9), `senders` sockets on `env` (node A) that send
    /// and are only checked, plus `sockets` listening sockets on `split` (node B), whose
    /// deliveries alone are timed.
    async fn open(
        env: &Env,
        split: Option<&Env>,
        tag: &str,
        sockets: usize,
        users: usize,
        senders: usize,
        pad: usize,
    ) -> Result<(Self, Arc<AtomicU64>), String> {
        let t0 = Instant::now();
        let total = if split.is_some() { sockets + senders.max(1) } else { sockets };
        let users = users.clamp(1, total.max(1));
        let tokens = accounts(env, tag, users, 16).await?;
        let room = env.room(tag, 0);
        let agg = Arc::new(Mutex::new(Agg {
            hists: (0..MAX_PHASES).map(|_| histogram()).collect(),
            deliveries: vec![0; MAX_PHASES],
            acks: 0,
            errors: 0,
            closed: 0,
            first_error: None,
        }));
        let last_seen: Arc<Vec<AtomicI64>> = Arc::new((0..total).map(|_| AtomicI64::new(0)).collect());
        let max_ack = Arc::new(AtomicI64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let n_send = senders.clamp(1, total.max(1));
        // Which node socket `i` is on, and whether its deliveries are timed.
        let place = |i: usize| match split {
            Some(b) if i >= n_send => (b.clone(), true),
            Some(_) => (env.clone(), false),
            None => (env.clone(), true),
        };
        // The first socket creates the room; the others join it, 64 at a time.
        let opened: Vec<Result<Opened, String>> = futures_util::stream::iter(0..total)
            .map(|i| {
                let ((env, record), room, token) = (place(i), room.clone(), tokens[i % users].clone());
                let (agg, last_seen, max_ack, stop_rx) =
                    (agg.clone(), last_seen.clone(), max_ack.clone(), stop_rx.clone());
                async move {
                    let (ws, last_seq) = connect(&env, &room, &token).await?;
                    last_seen[i].store(last_seq, Ordering::Relaxed);
                    let (sink, stream) = ws.split();
                    let h = tokio::spawn(reader(
                        i, stream, last_seq, env.epoch, agg, last_seen, max_ack, stop_rx, record,
                    ));
                    Ok((sink, h))
                }
            })
            .buffered(64)
            .collect()
            .await;
        let mut sinks = Vec::with_capacity(total);
        let mut readers = Vec::with_capacity(total);
        for o in opened {
            let (sink, h) = o?;
            sinks.push(sink);
            readers.push(h);
        }
        let send_errors = Arc::new(AtomicU64::new(0));
        let pad: String = "x".repeat(pad);
        let mut txs = Vec::new();
        // Sockets 0, step, 2·step, … send, so that senders are spread over users (with
        // `split`, sockets 0 … senders-1, those on node A).
        let step = if split.is_some() { 1 } else { (total / n_send).max(1) };
        let mut kept = Vec::new();
        for (i, sink) in sinks.into_iter().enumerate() {
            if i % step == 0 && txs.len() < n_send {
                let (tx, rx) = mpsc::channel(4);
                tokio::spawn(sender(i, sink, rx, env.epoch, pad.clone(), send_errors.clone()));
                txs.push(tx);
            } else {
                kept.push(sink);
            }
        }
        Ok((
            Self {
                sockets: total,
                users,
                agg,
                last_seen,
                max_ack,
                readers,
                senders: txs,
                stop,
                _listening: kept,
                sent: 0,
                setup_secs: round2(t0.elapsed().as_secs_f64()),
            },
            send_errors,
        ))
    }

    /// Sends at `rate` messages/s for `secs`, spread evenly over the senders; the number sent.
    async fn phase(&mut self, phase: usize, rate: f64, secs: f64) -> u64 {
        let n = self.senders.len() as f64;
        let period = Duration::from_secs_f64(n / rate.max(0.001));
        let start = Instant::now() + Duration::from_millis(20);
        let until = start + Duration::from_secs_f64(secs);
        let mut dones = Vec::new();
        for (i, tx) in self.senders.iter().enumerate() {
            let (done, rx) = oneshot::channel();
            let offset = Duration::from_secs_f64(i as f64 / rate.max(0.001));
            if tx.send(PhaseCmd { phase, start, offset, period, until, done }).await.is_ok() {
                dones.push(rx);
            }
        }
        let mut sent = 0;
        for d in dones {
            sent += d.await.unwrap_or(0);
        }
        self.sent += sent;
        sent
    }

    /// Waits (at most `limit`) until every message sent is acknowledged and every open
    /// socket has seen the last one.
    async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let (acks, closed) = {
                let a = lock(&self.agg);
                (a.acks, a.closed)
            };
            let last = self.max_ack.load(Ordering::Relaxed);
            let behind = self.last_seen.iter().filter(|s| s.load(Ordering::Relaxed) < last).count();
            if acks >= self.sent && behind as u64 <= closed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the readers: the delivery check over every socket.
    async fn finish(self) -> (Integrity, Arc<Mutex<Agg>>, u64, Self) {
        let _ = self.stop.send(true);
        let final_seq = self.max_ack.load(Ordering::Relaxed);
        let mut integrity = Integrity::default();
        let mut readers = Vec::new();
        let mut me = self;
        std::mem::swap(&mut readers, &mut me.readers);
        for r in readers {
            match r.await {
                Ok(check) => integrity.add(&check, final_seq),
                Err(e) => lock(&me.agg).error(format!("reader task: {e}")),
            }
        }
        let sent = me.sent;
        (integrity, me.agg.clone(), sent, me)
    }
}

fn common(room: &Room, integrity: &Integrity, agg: &Agg, sent: u64, send_errors: u64) -> Value {
    json!({
        "sockets": room.sockets,
        "users": room.users,
        "senders": room.senders.len(),
        "setup_secs": room.setup_secs,
        "sent": sent,
        "acked": agg.acks,
        "unacked": sent.saturating_sub(agg.acks),
        "lost": integrity.lost,
        "duplicated": integrity.duplicated,
        "out_of_order": integrity.out_of_order,
        "errors": agg.errors + send_errors,
        "closed": agg.closed,
        "first_error": agg.first_error,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// W1/W2: a warm-up phase, then `secs` at `rate`.
pub async fn fanout(
    env: &Env,
    label: &str,
    args: &FanoutArgs,
    sockets: usize,
    rate: f64,
) -> Result<Value, String> {
    let users = args.users.unwrap_or(sockets);
    let (mut room, send_errors) =
        Room::open(env, None, &label.to_lowercase(), sockets, users, args.senders, args.pad).await?;
    if args.warmup > 0.0 {
        room.phase(0, rate, args.warmup).await;
    }
    let cpu = CpuMeter::start(env.server_pid);
    let started = Instant::now();
    let sent1 = room.phase(1, rate, args.secs).await;
    let cpu_json = cpu.json();
    let elapsed = started.elapsed().as_secs_f64();
    room.drain(Duration::from_secs(10)).await;
    let (integrity, agg, sent, room) = room.finish().await;
    let agg = lock(&agg);
    let out = json!({
        "workload": label,
        "rate": rate,
        "secs": round2(elapsed),
        "deliveries": agg.deliveries[1],
        "deliveries_per_s": round2(agg.deliveries[1] as f64 / args.secs.max(1e-9)),
        "expected_deliveries": sent1 * sockets as u64,
        "latency": summary(&agg.hists[1]),
    });
    let out = merge(out, common(&room, &integrity, &agg, sent, send_errors.load(Ordering::Relaxed)));
    Ok(merge(out, cpu_json))
}

/// W3: steps of rising rate until a step's p99 passes the limit (or something breaks).
pub async fn ramp(env: &Env, args: &RampArgs) -> Result<Value, String> {
    let users = args.users.unwrap_or(args.sockets);
    let (mut room, send_errors) =
        Room::open(env, None, "w3", args.sockets, users, args.senders, args.pad).await?;
    let mut steps = Vec::new();
    let mut best: Option<(f64, f64)> = None;
    let mut rate = args.start_rate;
    let mut stopped_by = "max_steps";
    let max_steps = usize::try_from(args.max_steps).unwrap_or(16);
    let mut rates_done = 0;
    let mut failed_at_rate = 0;
    // Each run of a step (a retry too) records into a phase of its own.
    for phase in 1..MAX_PHASES {
        let cpu = CpuMeter::start(env.server_pid);
        let sent = room.phase(phase, rate, args.step_secs).await;
        let cpu_json = cpu.json();
        room.drain(Duration::from_secs(5)).await;
        let (p99, deliveries, summary_json, closed) = {
            let a = lock(&room.agg);
            (p99_ms(&a.hists[phase]), a.deliveries[phase], summary(&a.hists[phase]), a.closed)
        };
        let per_s = deliveries as f64 / args.step_secs.max(1e-9);
        steps.push(merge(
            json!({"rate": round2(rate), "retry": failed_at_rate, "sent": sent, "deliveries": deliveries, "deliveries_per_s": round2(per_s), "latency": summary_json}),
            cpu_json,
        ));
        if p99 <= args.p99_limit_ms && closed == 0 && best.is_none_or(|(d, _)| per_s > d) {
            best = Some((per_s, p99));
        }
        if closed > 0 {
            stopped_by = "socket_closed";
            break;
        }
        if p99 > args.p99_limit_ms {
            failed_at_rate += 1;
            if failed_at_rate > args.retries {
                stopped_by = "p99_limit";
                break;
            }
            continue;
        }
        failed_at_rate = 0;
        rates_done += 1;
        if rates_done >= max_steps {
            break;
        }
        rate *= args.factor;
    }
    let (integrity, agg, sent, room) = room.finish().await;
    let agg = lock(&agg);
    let out = json!({
        "workload": "W3",
        "p99_limit_ms": args.p99_limit_ms,
        "step_secs": args.step_secs,
        "stopped_by": stopped_by,
        "max_deliveries_per_s": best.map(|(d, _)| round2(d)),
        "retried_steps": steps.iter().filter(|s| s["retry"].as_u64().is_some_and(|r| r > 0)).count(),
        "p99_ms_at_max": best.map(|(_, p)| p),
        "steps": steps,
    });
    Ok(merge(out, common(&room, &integrity, &agg, sent, send_errors.load(Ordering::Relaxed))))
}

#[derive(Debug, Clone, clap::Args)]
pub struct CrossArgs {
    /// The node the receivers connect to (node B); the senders use `--server` (node A).
    /// Without it, the receivers use `--server` too: the one-node baseline of the same load.
    #[arg(long, value_parser = crate::loopback)]
    pub recv_server: Option<String>,
    /// Node B's process id (its CPU use is reported as `recv_server_cpu`).
    #[arg(long)]
    pub recv_server_pid: Option<u32>,
    /// Receiving sockets in the room, all on node B.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Distinct users owning the sockets, senders included (default: one per socket).
    #[arg(long)]
    pub users: Option<usize>,
    /// Messages per second into the room, all senders together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Sending sockets, on node A, in addition to the receivers.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Seconds sent before measuring.
    #[arg(long, default_value_t = 2.0, value_parser = secs_parser)]
    pub warmup: f64,
    /// Longest wait, after sending, for every receiver to catch up (the rest is lost).
    #[arg(long, default_value_t = 10.0, value_parser = secs_parser)]
    pub drain_secs: f64,
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
}

/// W9: senders on node A, `sockets` receivers in the same room on node B (or on node A as
/// well, the one-node baseline); the latency of the receivers' deliveries only.
pub async fn cross(env: &Env, args: &CrossArgs) -> Result<Value, String> {
    let nodes = if args.recv_server.as_deref().is_some_and(|r| r != env.http_base) { 2 } else { 1 };
    let recv = match &args.recv_server {
        Some(r) => env.with_server(r, args.recv_server_pid),
        None => env.with_server(&env.http_base, args.recv_server_pid.or(env.server_pid)),
    };
    let senders = args.senders.max(1);
    let users = args.users.unwrap_or(args.sockets + senders);
    let (mut room, send_errors) =
        Room::open(env, Some(&recv), "w9", args.sockets, users, senders, args.pad).await?;
    if args.warmup > 0.0 {
        room.phase(0, args.rate, args.warmup).await;
    }
    let cpu = CpuMeter::start(env.server_pid);
    let cpu_b = (nodes == 2).then(|| CpuMeter::start(recv.server_pid));
    let started = Instant::now();
    let sent1 = room.phase(1, args.rate, args.secs).await;
    let cpu_json = cpu.json();
    let recv_cpu = cpu_b.map_or(Value::Null, |c| c.json()["server_cpu"].clone());
    let elapsed = started.elapsed().as_secs_f64();
    room.drain(Duration::from_secs_f64(args.drain_secs)).await;
    let (integrity, agg, sent, room) = room.finish().await;
    let agg = lock(&agg);
    let out = json!({
        "workload": "W9",
        "nodes": nodes,
        "receivers": args.sockets,
        "rate": args.rate,
        "secs": round2(elapsed),
        "deliveries": agg.deliveries[1],
        "deliveries_per_s": round2(agg.deliveries[1] as f64 / args.secs.max(1e-9)),
        "expected_deliveries": sent1 * args.sockets as u64,
        "latency": summary(&agg.hists[1]),
        "recv_server_cpu": recv_cpu,
    });
    let out = merge(out, common(&room, &integrity, &agg, sent, send_errors.load(Ordering::Relaxed)));
    Ok(merge(out, cpu_json))
}
