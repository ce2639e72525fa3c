//! W5: many idle sockets. The parent spreads them over child processes (a process may hold
//! only 20,000 files here), starts them together, and reads the server's RSS before and after.

use crate::util::{Env, accounts, connect, histogram, record_ns, round2, rss_kib, summary};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Idle sockets in all.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Client processes; each holds at most 9,000 sockets.
    #[arg(long, default_value_t = 2)]
    pub procs: usize,
    /// Users (and rooms) per process: socket i is user i mod users, in that user's room.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Connects in flight per process.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Seconds to wait after the last connect before reading the RSS.
    #[arg(long, default_value_t = 2.0, value_parser = crate::fanout::secs_parser)]
    pub settle: f64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IdleChildArgs {
    #[arg(long)]
    pub sockets: usize,
    #[arg(long)]
    pub users: usize,
    #[arg(long)]
    pub concurrency: usize,
    #[arg(long)]
    pub tag: String,
    /// The longest the child holds its sockets when nobody tells it to stop.
    #[arg(long, default_value_t = 300)]
    pub hold_secs: u64,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(0))
        .unwrap_or(0)
}

/// The child: makes its users, says `ready`, waits for `go`, connects, reports, holds.
pub async fn child(env: &Env, args: &IdleChildArgs) -> Result<(), String> {
    let users = args.users.clamp(1, args.sockets.max(1));
    let tokens = accounts(env, &args.tag, users, 16).await?;
    println!("{}", json!({"ready": true}));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match stdin.next_line().await {
        Ok(Some(l)) if l.trim() == "go" => {}
        _ => return Ok(()),
    }
    let start_ns = unix_ns();
    let results: Vec<Result<(crate::util::Ws, u64), String>> = futures_util::stream::iter(0..args.sockets)
        .map(|i| {
            let (env, room, token) = (env.clone(), env.room(&args.tag, i % users), tokens[i % users].clone());
            async move {
                let t = Instant::now();
                let (ws, _) = connect(&env, &room, &token).await?;
                Ok((ws, u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let end_ns = unix_ns();
    let (mut failed, mut first_error, mut hist, mut held) = (0u64, None, histogram(), Vec::new());
    for r in results {
        match r {
            Ok((ws, ns)) => {
                record_ns(&mut hist, ns);
                // Read so that pings are answered; an idle socket gets nothing else.
                held.push(tokio::spawn(async move {
                    let mut ws = ws;
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_close() {
                            break;
                        }
                    }
                }));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    println!(
        "{}",
        json!({"connected": held.len(), "failed": failed, "first_error": first_error,
               "start_ns": start_ns, "end_ns": end_ns, "connect_latency": summary(&hist)})
    );
    let _ = tokio::time::timeout(Duration::from_secs(args.hold_secs), stdin.next_line()).await;
    for h in held {
        h.abort();
    }
    Ok(())
}

#[derive(Debug)]
struct Kid {
    child: Child,
    stdin: ChildStdin,
    out: tokio::io::Lines<BufReader<ChildStdout>>,
}

async fn line(kid: &mut Kid, secs: u64) -> Result<Value, String> {
    match tokio::time::timeout(Duration::from_secs(secs), kid.out.next_line()).await {
        Ok(Ok(Some(l))) => serde_json::from_str(&l).map_err(|e| format!("child said {l:?}: {e}")),
        Ok(Ok(None)) => Err("a W5 child process ended early".into()),
        Ok(Err(e)) => Err(format!("reading a W5 child: {e}")),
        Err(_) => Err(format!("a W5 child said nothing for {secs} s")),
    }
}

pub async fn idle(env: &Env, args: &IdleArgs) -> Result<Value, String> {
    let pid = env.server_pid.ok_or("W5 needs --server-pid to read the server's RSS")?;
    let procs = args.procs.max(args.sockets.div_ceil(9000)).max(1);
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut kids = Vec::with_capacity(procs);
    for p in 0..procs {
        let n = args.sockets / procs + usize::from(p < args.sockets % procs);
        let mut child = Command::new(&exe)
            .args(["--server", &env.http_base, "--prefix", &env.prefix, "w5-child"])
            .args(["--sockets", &n.to_string(), "--users", &args.users.to_string()])
            .args(["--concurrency", &args.concurrency.to_string(), "--tag", &format!("w5p{p}u")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawning a W5 child: {e}"))?;
        let stdin = child.stdin.take().ok_or("no child stdin")?;
        let out = BufReader::new(child.stdout.take().ok_or("no child stdout")?).lines();
        kids.push(Kid { child, stdin, out });
    }
    for kid in &mut kids {
        line(kid, 300).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid).ok_or("cannot read the server's VmRSS")?;
    for kid in &mut kids {
        kid.stdin.write_all(b"go\n").await.map_err(|e| format!("telling a child to go: {e}"))?;
    }
    let mut reports = Vec::with_capacity(procs);
    for kid in &mut kids {
        reports.push(line(kid, 300).await?);
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let after = rss_kib(pid).ok_or("cannot read the server's VmRSS")?;
    for kid in &mut kids {
        let _ = kid.stdin.write_all(b"exit\n").await;
    }
    for kid in &mut kids {
        if tokio::time::timeout(Duration::from_secs(20), kid.child.wait()).await.is_err() {
            let _ = kid.child.kill().await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_close = rss_kib(pid);
    let sum = |k: &str| reports.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
    let connected = sum("connected");
    let start = reports.iter().filter_map(|r| r["start_ns"].as_u64()).min().unwrap_or(0);
    let end = reports.iter().filter_map(|r| r["end_ns"].as_u64()).max().unwrap_or(0);
    let secs = end.saturating_sub(start) as f64 / 1e9;
    let per_socket = if connected > 0 {
        Some(round2(after.saturating_sub(before) as f64 / connected as f64))
    } else {
        None
    };
    Ok(json!({
        "workload": "W5",
        "sockets": args.sockets,
        "procs": procs,
        "connected": connected,
        "failed": sum("failed"),
        "errors": sum("failed"),
        "first_error": reports.iter().find_map(|r| r["first_error"].as_str()),
        "connect_secs": round2(secs),
        "connects_per_s": round2(connected as f64 / secs.max(1e-9)),
        "connect_latency": reports.first().map(|r| r["connect_latency"].clone()),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_after_close_kib": after_close,
        "rss_per_socket_kib": per_socket,
    }))
}
