//! W4: many rooms of two users; each user sends, waits for its own message to come back,
//! and sends again. Every message is stored (acknowledged) and checked on both sockets.
//!
//! With `--rate R` (the default, 10,000 messages/s in all) each user sends on a schedule of
//! R / users messages per second, never with two in flight: a message whose turn comes while
//! the previous one is still out goes as soon as that one is back, and its latency counts
//! from its turn (no coordinated omission). With `--rate 0` every user sends again the
//! moment its message is back (closed loop): that measures the most the server takes, but
//! its latency is only Little's law (1,000 in flight at 10,000/s is 100 ms each), so the
//! latency target applies to the paced run.

use crate::fanout::secs_parser;
use crate::util::{
    CpuMeter, Env, Frame, Integrity, SeqCheck, Ws, accounts, connect, histogram, lock, parse, record_ns,
    round2, summary,
};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, clap::Args)]
pub struct PairsArgs {
    /// Rooms, two users (and sockets) each.
    #[arg(long, default_value_t = 500)]
    pub rooms: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Seconds of traffic before measuring.
    #[arg(long, default_value_t = 2.0, value_parser = secs_parser)]
    pub warmup: f64,
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// Messages per second offered by all users together; 0 for a closed loop.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// How long a sender waits for its own message before it counts a timeout and goes on.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

#[derive(Debug)]
struct Agg {
    hist: Histogram<u64>,
    measured: u64,
    /// Own messages back within the measured window, whenever they were due.
    completed: u64,
    sent: u64,
    acks: u64,
    timeouts: u64,
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

#[derive(Debug, Clone)]
struct Plan {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    epoch: Instant,
    timeout: Duration,
    pad: String,
    /// Each user's interval between sends; `None` in a closed loop.
    period: Option<Duration>,
    users: usize,
}

/// What one frame meant to the socket that read it.
enum Seen {
    Own,
    Nothing,
    Closed,
}

fn handle(
    i: usize,
    k: u64,
    next: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    check: &mut SeqCheck,
    room_max: &AtomicI64,
    agg: &Mutex<Agg>,
    own_acks: &mut u64,
) -> Seen {
    match next {
        Some(Ok(Message::Text(t))) => match parse(t.as_str()) {
            Frame::Message(d) => {
                check.see(d.seq);
                // A message frame shows the room got that far as surely as an ack does, and
                // a sender may see its own message before its ack (SPEC allows either
                // order): the other socket's drain must wait for it either way.
                room_max.fetch_max(d.seq, Ordering::Relaxed);
                if d.sender == Some(i) && d.k == Some(k) { Seen::Own } else { Seen::Nothing }
            }
            Frame::Ack { seq } => {
                room_max.fetch_max(seq, Ordering::Relaxed);
                *own_acks += 1;
                Seen::Nothing
            }
            Frame::Error(e) => {
                lock(agg).error(format!("socket {i}: {e}"));
                Seen::Nothing
            }
            Frame::Other => Seen::Nothing,
        },
        Some(Ok(Message::Close(c))) => {
            let mut a = lock(agg);
            a.closed += 1;
            a.error(format!("socket {i} closed by the server: {c:?}"));
            Seen::Closed
        }
        Some(Ok(_)) => Seen::Nothing,
        Some(Err(e)) => {
            let mut a = lock(agg);
            a.closed += 1;
            a.error(format!("socket {i}: {e}"));
            Seen::Closed
        }
        None => {
            let mut a = lock(agg);
            a.closed += 1;
            a.error(format!("socket {i} ended"));
            Seen::Closed
        }
    }
}

async fn pair_socket(
    i: usize,
    mut ws: Ws,
    last_seq: i64,
    plan: Plan,
    room_max: Arc<Vec<AtomicI64>>,
    agg: Arc<Mutex<Agg>>,
    barrier: Arc<Barrier>,
) -> SeqCheck {
    let mut check = SeqCheck::new(last_seq);
    let room = &room_max[i / 2];
    let (mut sent, mut own_acks, mut dead) = (0u64, 0u64, false);
    // Paced users are spread evenly over one period.
    let mut turn =
        plan.start + plan.period.map_or(Duration::ZERO, |p| p.mul_f64(i as f64 / plan.users.max(1) as f64));
    let mut k = 0u64;
    'send: while turn < plan.end {
        tokio::time::sleep_until(turn.into()).await;
        let sent_at = Instant::now();
        // Latency counts from the turn: a late send is the server's delay too.
        let origin = if plan.period.is_some() { turn } else { sent_at };
        let t = sent_at.duration_since(plan.epoch).as_nanos();
        let frame = format!(
            r#"{{"type":"message","content":"t={t} p=0 s={i} k={k} {}","client_msg_id":"{i}-{k}"}}"#,
            plan.pad
        );
        if let Err(e) = ws.send(Message::text(frame)).await {
            lock(&agg).error(format!("socket {i} send: {e}"));
            dead = true;
            break;
        }
        sent += 1;
        let deadline = sent_at + plan.timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline.into(), ws.next()).await {
                Ok(n) => n,
                Err(_) => {
                    lock(&agg).timeouts += 1;
                    break;
                }
            };
            match handle(i, k, next, &mut check, room, &agg, &mut own_acks) {
                Seen::Own => {
                    let now = Instant::now();
                    if now >= plan.measure_from && now < plan.end {
                        lock(&agg).completed += 1;
                    }
                    if origin >= plan.measure_from && origin < plan.end {
                        let mut a = lock(&agg);
                        record_ns(
                            &mut a.hist,
                            u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
                        );
                        a.measured += 1;
                    }
                    break;
                }
                Seen::Nothing => {}
                Seen::Closed => {
                    dead = true;
                    break 'send;
                }
            }
        }
        k += 1;
        turn = match plan.period {
            Some(p) => turn + p,
            None => Instant::now(),
        };
    }
    // Everyone has stopped sending: read what is still on its way, for the check.
    barrier.wait().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dead && (check.last() < room.load(Ordering::Relaxed) || own_acks < sent) {
        match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => break,
            Ok(next) => {
                if let Seen::Closed = handle(i, u64::MAX, next, &mut check, room, &agg, &mut own_acks) {
                    dead = true;
                }
            }
        }
    }
    {
        let mut a = lock(&agg);
        a.sent += sent;
        a.acks += own_acks;
    }
    // Both sockets of a room stay open until every socket is done (a close is presence traffic).
    barrier.wait().await;
    check
}

pub async fn pairs(env: &Env, args: &PairsArgs) -> Result<Value, String> {
    let t0 = Instant::now();
    let n = args.rooms.max(1) * 2;
    let tokens = accounts(env, "w4", n, 16).await?;
    let opened: Vec<Result<(Ws, i64), String>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (env, room, token) = (env.clone(), env.room("w4", i / 2), tokens[i].clone());
            async move { connect(&env, &room, &token).await }
        })
        .buffered(64)
        .collect()
        .await;
    let mut sockets = Vec::with_capacity(n);
    for o in opened {
        sockets.push(o?);
    }
    let setup_secs = round2(t0.elapsed().as_secs_f64());
    let agg = Arc::new(Mutex::new(Agg {
        hist: histogram(),
        measured: 0,
        completed: 0,
        sent: 0,
        acks: 0,
        timeouts: 0,
        errors: 0,
        closed: 0,
        first_error: None,
    }));
    let room_max: Arc<Vec<AtomicI64>> = Arc::new((0..n / 2).map(|_| AtomicI64::new(0)).collect());
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Plan {
        start,
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.secs),
        epoch: env.epoch,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        pad: "x".repeat(args.pad),
        period: (args.rate > 0.0).then(|| Duration::from_secs_f64(n as f64 / args.rate)),
        users: n,
    };
    let barrier = Arc::new(Barrier::new(n));
    let mut cpu = None;
    let mut tasks = Vec::with_capacity(n);
    for (i, (ws, last_seq)) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(pair_socket(
            i,
            ws,
            last_seq,
            plan.clone(),
            room_max.clone(),
            agg.clone(),
            barrier.clone(),
        )));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = CpuMeter::start(env.server_pid);
    tokio::time::sleep_until(plan.end.into()).await;
    cpu.get_or_insert(meter.json());
    let mut checks = Vec::with_capacity(n);
    for t in tasks {
        match t.await {
            Ok(c) => checks.push(c),
            Err(e) => return Err(format!("a W4 socket task failed: {e}")),
        }
    }
    let mut integrity = Integrity::default();
    for (r, pair) in checks.chunks(2).enumerate() {
        let last = pair.iter().map(SeqCheck::last).max().unwrap_or(0);
        let final_seq = room_max[r].load(Ordering::Relaxed).max(last);
        for c in pair {
            integrity.add(c, final_seq);
        }
    }
    let a = lock(&agg);
    let mut out = json!({
        "workload": "W4",
        "mode": if args.rate > 0.0 { "paced" } else { "closed" },
        "offered_per_s": args.rate,
        "rooms": n / 2,
        "sockets": n,
        "setup_secs": setup_secs,
        "secs": args.secs,
        "messages": a.measured,
        // What came back within the window: a server that falls behind a paced rate
        // shows it here, not only in the latency.
        "messages_per_s": round2(a.completed as f64 / args.secs.max(1e-9)),
        "latency": summary(&a.hist),
        "sent": a.sent,
        "acked": a.acks,
        "unacked": a.sent.saturating_sub(a.acks),
        "timeouts": a.timeouts,
        "lost": integrity.lost,
        "duplicated": integrity.duplicated,
        "out_of_order": integrity.out_of_order,
        "errors": a.errors,
        "closed": a.closed,
        "first_error": a.first_error,
    });
    if let (Some(o), Some(Value::Object(c))) = (out.as_object_mut(), cpu) {
        o.extend(c);
    }
    Ok(out)
}
