//! W6 (REST reads with many connections), W7 (logins) and bcrypt alone.

use crate::fanout::secs_parser;
use crate::util::{CpuMeter, Env, PASSWORD, account, accounts, histogram, lock, record_ns, round2, summary};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct RestArgs {
    /// Connections (each a task sending one request after another).
    #[arg(long, default_value_t = 64)]
    pub conns: usize,
    /// Measured seconds per endpoint.
    #[arg(long, default_value_t = 10.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Rooms made before measuring (each joined by the reader).
    #[arg(long, default_value_t = 20)]
    pub seed_rooms: usize,
    /// Messages posted in each seeded room.
    #[arg(long, default_value_t = 5)]
    pub seed_messages: usize,
    /// Users made before measuring.
    #[arg(long, default_value_t = 20)]
    pub seed_users: usize,
}

#[derive(Debug)]
struct Agg {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn seed(env: &Env, args: &RestArgs) -> Result<String, String> {
    let tokens = accounts(env, "w6", args.seed_users.max(1), 16).await?;
    let token = tokens[0].clone();
    for r in 0..args.seed_rooms {
        let room = env.room("w6", r);
        let url = format!("{}/api/room/{room}/", env.http_base);
        let resp =
            env.http.post(&url).bearer_auth(&token).send().await.map_err(|e| format!("seeding: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("seeding: POST /api/room/{room}/ answered {}", resp.status()));
        }
        for m in 0..args.seed_messages {
            let url = format!("{}/api/rooms/{room}/messages/", env.http_base);
            let resp = env
                .http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"content": format!("seed message {m} of room {r}")}))
                .send()
                .await
                .map_err(|e| format!("seeding: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("seeding: posting a message answered {}", resp.status()));
            }
        }
    }
    Ok(token)
}

/// `conns` tasks GET `path` back to back for `secs`.
async fn hammer(env: &Env, token: &str, path: &str, conns: usize, secs: f64) -> Value {
    // A client of its own, so that each endpoint starts with fresh connections.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| env.http.clone());
    let agg = Arc::new(Mutex::new(Agg { hist: histogram(), ok: 0, errors: 0, first_error: None }));
    let url = format!("{}{path}", env.http_base);
    // A short warm-up opens the connections.
    let warm_end = Instant::now() + Duration::from_millis(500);
    let start = warm_end;
    let end = start + Duration::from_secs_f64(secs);
    let meter = Arc::new(Mutex::new(None));
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let (http, url, token, agg, meter) =
            (http.clone(), url.clone(), token.to_owned(), agg.clone(), meter.clone());
        let pid = env.server_pid;
        tasks.push(tokio::spawn(async move {
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                if c == 0 && t >= start {
                    lock(&meter).get_or_insert_with(|| CpuMeter::start(pid));
                }
                let r = http.get(&url).bearer_auth(&token).send().await;
                let r = match r {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(_) => Err(format!("{status}")),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                if t < start {
                    continue;
                }
                let mut a = lock(&agg);
                match r {
                    Ok(()) => {
                        a.ok += 1;
                        record_ns(&mut a.hist, u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    }
                    Err(e) => {
                        a.errors += 1;
                        a.first_error.get_or_insert(e);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let cpu = lock(&meter).map(|m| m.json()).unwrap_or(Value::Null);
    let a = lock(&agg);
    json!({
        "path": path,
        "requests": a.ok,
        "req_per_s": round2(a.ok as f64 / secs.max(1e-9)),
        "errors": a.errors,
        "first_error": a.first_error,
        "latency": summary(&a.hist),
        "cpu": cpu,
    })
}

pub async fn rest(env: &Env, args: &RestArgs) -> Result<Value, String> {
    let token = seed(env, args).await?;
    let rooms = hammer(env, &token, "/api/rooms/", args.conns, args.secs).await;
    let users = hammer(env, &token, "/api/users/list", args.conns, args.secs).await;
    let errors = rooms["errors"].as_u64().unwrap_or(0) + users["errors"].as_u64().unwrap_or(0);
    Ok(json!({
        "workload": "W6",
        "conns": args.conns,
        "secs": args.secs,
        "seed": {"rooms": args.seed_rooms, "messages_per_room": args.seed_messages, "users": args.seed_users},
        "rooms": rooms,
        "users_list": users,
        "errors": errors,
    }))
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Accounts logged into, round robin.
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// Logins in flight.
    #[arg(long, default_value_t = 4)]
    pub conns: usize,
    #[arg(long, default_value_t = 10.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Verifications/s of bcrypt alone at the same cost on the same core, for the ratio.
    #[arg(long)]
    pub bcrypt_baseline: Option<f64>,
}

/// W7: logins back to back from `conns` tasks.
pub async fn login(env: &Env, args: &LoginArgs) -> Result<Value, String> {
    let users = args.users.max(1);
    for i in 0..users {
        account(env, &env.username("w7", i)).await?;
    }
    let agg = Arc::new(Mutex::new(Agg { hist: histogram(), ok: 0, errors: 0, first_error: None }));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.secs);
    let meter = CpuMeter::start(env.server_pid);
    let mut tasks = Vec::new();
    for c in 0..args.conns.max(1) {
        let (env, agg) = (env.clone(), agg.clone());
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/api/users/login/", env.http_base);
            let mut n = c;
            while Instant::now() < end {
                let email = format!("{}@example.com", env.username("w7", n % users));
                n += 1;
                let t = Instant::now();
                let r = env.http.post(&url).json(&json!({"email": email, "password": PASSWORD})).send().await;
                let mut a = lock(&agg);
                match r {
                    Ok(resp) if resp.status().as_u16() == 200 => {
                        a.ok += 1;
                        record_ns(&mut a.hist, u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    }
                    Ok(resp) => {
                        a.errors += 1;
                        a.first_error.get_or_insert(format!("login answered {}", resp.status()));
                    }
                    Err(e) => {
                        a.errors += 1;
                        a.first_error.get_or_insert(e.to_string());
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = meter.json();
    let a = lock(&agg);
    let per_s = a.ok as f64 / elapsed.max(1e-9);
    Ok(json!({
        "workload": "W7",
        "conns": args.conns,
        "secs": round2(elapsed),
        "logins": a.ok,
        "logins_per_s": round2(per_s),
        "bcrypt_alone_per_s": args.bcrypt_baseline,
        "ratio": args.bcrypt_baseline.filter(|b| *b > 0.0).map(|b| round2(per_s / b)),
        "errors": a.errors,
        "first_error": a.first_error,
        "latency": summary(&a.hist),
        "client_cpu": cpu["client_cpu"],
        "server_cpu": cpu["server_cpu"],
    }))
}

#[derive(Debug, Clone, clap::Args)]
pub struct BcryptArgs {
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
    #[arg(long, default_value_t = 8.0, value_parser = secs_parser)]
    pub secs: f64,
    /// Threads verifying at once (pin the process with taskset to choose the cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// bcrypt alone: verifications per second of one hash at `cost`, as a login does.
pub fn bcrypt_alone(args: &BcryptArgs) -> Result<Value, String> {
    let hash = bcrypt::hash(PASSWORD, args.cost).map_err(|e| format!("bcrypt: {e}"))?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.secs);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while n == 0 || Instant::now() < end {
                        if bcrypt::verify(PASSWORD, &hash).unwrap_or(false) {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let total: u64 = counts.iter().sum();
    let elapsed = start.elapsed().as_secs_f64();
    Ok(json!({
        "workload": "bcrypt",
        "cost": args.cost,
        "threads": args.threads.max(1),
        "verifies": total,
        "secs": round2(elapsed),
        "verifies_per_s": round2(total as f64 / elapsed.max(1e-9)),
    }))
}
