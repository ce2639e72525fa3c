//! `webchat-loadgen`: drives a running webchat server over real sockets (issue 5).
//!
//! Every workload prints one JSON line of results on stdout; `report` turns the lines of a
//! run into the table of `make bench`. See docs/benchmarks.md.

mod fanout;
mod floor;
mod idle;
mod pairs;
mod report;
mod rest;
mod server_metrics;
mod soak;
mod util;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;

/// Load generator for the webchat server: workloads W1–W9 of docs/benchmarks.md.
#[derive(Debug, Parser)]
#[command(name = "webchat-loadgen", version, about)]
struct Cli {
    /// The server, on the loopback address only.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080", value_parser = loopback)]
    server: String,
    /// The server's process id: its CPU use and (W5) resident memory are read from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Added to every result line as "backend" (e.g. sqlite, postgres).
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Six hex digits making this run's names unique (default: random).
    #[arg(long, global = true)]
    prefix: Option<String>,
    /// Runtime worker threads (1: a single-threaded runtime, best when pinned to one core).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// The server is `floor-server` (one room, no accounts): W1–W3 then measure the
    /// machine's floor instead of webchat.
    #[arg(long, global = true)]
    floor: bool,
    /// Times a 4 KiB write and fdatasync of this file every 50 ms while the workload runs
    /// (put it on the stores' disk): the result gains "disk" with the slowest sync.
    #[arg(long, global = true)]
    disk_probe: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// 100 sockets in one room, 50 messages/s (open loop): delivery latency and integrity.
    W1(fanout::FanoutArgs),
    /// 1000 sockets in one room, 100 messages/s.
    W2(fanout::FanoutArgs),
    /// 1000 sockets in one room, rising rate until p99 passes the limit: the best deliveries/s.
    W3(fanout::RampArgs),
    /// Rooms of two users, each sending and waiting for its own message: messages/s and p99.
    W4(pairs::PairsArgs),
    /// Idle sockets over several client processes: server RSS per socket, connects/s.
    W5(idle::IdleArgs),
    /// One W5 client process (started by w5).
    #[command(hide = true)]
    W5Child(idle::IdleChildArgs),
    /// REST reads (GET /api/rooms/, GET /api/users/list) over many connections.
    W6(rest::RestArgs),
    /// Logins back to back (start the server with the bcrypt cost to measure).
    W7(rest::LoginArgs),
    /// Soak: minutes of mixed load (rooms with open-loop senders, REST reads, sockets that
    /// drop and resume with `?after_seq=`) while the server's RSS is sampled (needs --server-pid).
    W8(soak::SoakArgs),
    /// Cross-node fan-out: senders on --server (node A), 1000 receivers in the same room on
    /// --recv-server (node B), 1000 messages/s; without --recv-server, the one-node baseline.
    W9(fanout::CrossArgs),
    /// bcrypt alone: verifications per second (pin it to the server's core).
    Bcrypt(rest::BcryptArgs),
    /// The least a WebSocket fan-out server can do (pin it to the server's core): W1–W3 run
    /// against it with `--floor` measure what the machine allows.
    FloorServer(floor::FloorArgs),
    /// Reads the result lines of a run, prints the table and writes the results file.
    Report(report::ReportArgs),
}

fn loopback(raw: &str) -> Result<String, String> {
    let ok = ["http://127.0.0.1:", "http://localhost:"].iter().any(|p| raw.starts_with(p));
    if ok {
        Ok(raw.trim_end_matches('/').to_owned())
    } else {
        Err("only http://127.0.0.1:PORT is allowed".into())
    }
}

fn label(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::W1(_) => "W1",
        Cmd::W2(_) => "W2",
        Cmd::W3(_) => "W3",
        Cmd::W4(_) => "W4",
        Cmd::W5(_) | Cmd::W5Child(_) => "W5",
        Cmd::W6(_) => "W6",
        Cmd::W7(_) => "W7",
        Cmd::W8(_) => "W8",
        Cmd::W9(_) => "W9",
        Cmd::Bcrypt(_) => "bcrypt",
        Cmd::FloorServer(_) => "floor-server",
        Cmd::Report(_) => "report",
    }
}

async fn run(cli: &Cli, env: &util::Env) -> Result<Option<Value>, String> {
    Ok(Some(match &cli.cmd {
        Cmd::W1(a) => fanout::fanout(env, "W1", a, a.sockets.unwrap_or(100), a.rate.unwrap_or(50.0)).await?,
        Cmd::W2(a) => {
            fanout::fanout(env, "W2", a, a.sockets.unwrap_or(1000), a.rate.unwrap_or(100.0)).await?
        }
        Cmd::W3(a) => fanout::ramp(env, a).await?,
        Cmd::W4(a) => pairs::pairs(env, a).await?,
        Cmd::W5(a) => idle::idle(env, a).await?,
        Cmd::W5Child(a) => {
            idle::child(env, a).await?;
            return Ok(None);
        }
        Cmd::W6(a) => rest::rest(env, a).await?,
        Cmd::W7(a) => rest::login(env, a).await?,
        Cmd::W8(a) => soak::soak(env, a).await?,
        Cmd::W9(a) => fanout::cross(env, a).await?,
        Cmd::Bcrypt(a) => rest::bcrypt_alone(a)?,
        Cmd::FloorServer(a) => {
            floor::serve(a).await?;
            return Ok(None);
        }
        Cmd::Report(_) => return Ok(None),
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Report(args) = &cli.cmd {
        return match report::report(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(3),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut env = util::Env::new(&cli.server, cli.server_pid, cli.prefix.clone());
    env.floor = cli.floor;
    let probe = match cli.disk_probe.as_deref().map(util::DiskProbe::start).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The server's own account of its appends, for the workloads whose deliveries wait on them.
    let appends_before = if !cli.floor && matches!(cli.cmd, Cmd::W1(_) | Cmd::W2(_) | Cmd::W4(_) | Cmd::W9(_))
    {
        runtime.block_on(server_metrics::scrape(&env, server_metrics::APPEND))
    } else {
        None
    };
    let result = runtime.block_on(run(&cli, &env));
    let disk = probe.map(util::DiskProbe::finish);
    let appends = appends_before.and_then(|before| {
        Some(runtime.block_on(server_metrics::scrape(&env, server_metrics::APPEND))?.since(&before).summary())
    });
    let backend = cli.backend.clone().map_or(Value::Null, Value::from);
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(mut v)) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("backend".into(), backend);
                if let Some(disk) = disk {
                    o.insert("disk".into(), disk);
                }
                if let Some(appends) = appends {
                    o.insert("server_append".into(), appends);
                }
            }
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", label(&cli.cmd));
            println!("{}", json!({"workload": label(&cli.cmd), "backend": backend, "error": e}));
            ExitCode::FAILURE
        }
    }
}
