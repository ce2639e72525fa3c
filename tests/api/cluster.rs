//! Several nodes, one service (SPEC §5): in-process nodes on one PostgreSQL database,
//! joined through the NATS on 127.0.0.1:4222.

use crate::helpers::*;
use crate::ws_client::*;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use webchat_server::config::BusTarget;
use webchat_server::{AppHandle, Application};

const NATS: &str = "nats://127.0.0.1:4222";

/// One node of a cluster sharing the test's database.
struct Node {
    port: u16,
    handle: AppHandle,
}

impl Node {
    async fn start(db: &TestDb, bus: &str) -> Self {
        let mut config = test_config(db);
        config.bus = BusTarget::Nats(bus.to_owned());
        config.send_rate = 0;
        let app = Application::build(&config).expect("node starts");
        let port = app.port();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let node = Self { port, handle };
        node.wait_for_bus("connected").await;
        node
    }

    async fn bus(&self) -> String {
        let r = reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port)).await.expect("readyz");
        r.json::<serde_json::Value>().await.expect("json")["bus"].as_str().unwrap_or_default().to_owned()
    }

    async fn wait_for_bus(&self, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.bus().await != state {
            assert!(Instant::now() < deadline, "the bus never became {state}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// A node as a real `webchat` process, for crashes (SIGKILL).
struct ProcessNode {
    port: u16,
    child: std::process::Child,
}

impl ProcessNode {
    async fn start(db: &TestDb) -> Self {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_webchat"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", &db.url(), "--bus", NATS])
            .args(["--bcrypt-cost", "4", "--workers", "1", "--db-pool", "4", "--send-rate", "0"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("webchat starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
                && r.json::<serde_json::Value>().await.is_ok_and(|v| v["bus"] == "connected")
            {
                break;
            }
            assert!(Instant::now() < deadline, "the node process never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { port, child }
    }

    /// SIGKILL: no goodbye to anyone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn chat(room: &str, token: &str) -> String {
    format!("/ws/chat/{room}/?token={token}")
}

async fn message_seqs(c: &mut WsClient, n: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let f = c.frame().await;
        if f["type"] == "message" {
            seqs.push(f["seq"].as_i64().expect("seq"));
        }
    }
    seqs
}

/// A cluster of two nodes; accounts are made through node A.
async fn two_nodes() -> (TestApp, Node, Node) {
    let app = spawn_app(Backend::Postgres).await;
    let a = Node::start(&app.db, NATS).await;
    let b = Node::start(&app.db, NATS).await;
    (app, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_on_one_node_reaches_sockets_on_both_with_the_same_seq() {
    let (app, a, b) = two_nodes().await;
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    let mut on_a = connect(a.port, &chat("general", &alex.access)).await;
    on_a.expect("ready").await;
    let mut on_b = connect(b.port, &chat("general", &bob.access)).await;
    on_b.expect("ready").await;
    for i in 0..20 {
        on_a.send(json!({"type": "message", "content": format!("m{i}")})).await;
    }
    assert_eq!(message_seqs(&mut on_b, 20).await, (1..=20).collect::<Vec<_>>());
    assert_eq!(message_seqs(&mut on_a, 20).await, (1..=20).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_on_both_nodes_and_listeners_on_both_see_one_gap_free_order() {
    let (app, a, b) = two_nodes().await;
    let mut listeners = Vec::new();
    for (name, node) in [("listen-a", &a), ("listen-b", &b)] {
        let u = app.user(name).await;
        let mut c = connect(node.port, &chat("busy", &u.access)).await;
        c.expect("ready").await;
        listeners.push(c);
    }
    let mut senders = Vec::new();
    for (name, node) in [("send-a", &a), ("send-b", &b), ("send-a2", &a)] {
        let u = app.user(name).await;
        let mut c = connect(node.port, &chat("busy", &u.access)).await;
        c.expect("ready").await;
        senders.push(c);
    }
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                for n in 0..40 {
                    c.send(json!({"type": "message", "content": format!("{i}-{n}")})).await;
                }
                let mut acks = 0;
                while acks < 40 {
                    if c.frame().await["type"] == "ack" {
                        acks += 1;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("sender");
    }
    let first = message_seqs(&mut listeners[0], 120).await;
    let second = message_seqs(&mut listeners[1], 120).await;
    assert_eq!(first, (1..=120).collect::<Vec<_>>());
    assert_eq!(first, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_node_closes_the_socket_on_the_other_with_4401_within_a_second() {
    let (app, a, b) = two_nodes().await;
    let alex = app.user("alex").await;
    let mut on_b = connect(b.port, &chat("general", &alex.access)).await;
    on_b.expect("ready").await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/users/logout/", a.port))
        .bearer_auth(&alex.access)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(on_b.closed().await, Some(4401));
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/users/me/", b.port))
        .bearer_auth(&alex.access)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_another_and_lose_nothing_acknowledged() {
    let app = spawn_app(Backend::Postgres).await;
    let mut a = ProcessNode::start(&app.db).await;
    let b = Node::start(&app.db, NATS).await;
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    let mut sender = connect(a.port, &chat("general", &alex.access)).await;
    sender.expect("ready").await;
    let mut reader = connect(a.port, &chat("general", &bob.access)).await;
    reader.expect("ready").await;
    let mut acked = Vec::new();
    for i in 0..30 {
        sender
            .send(json!({"type": "message", "content": format!("m{i}"), "client_msg_id": format!("c{i}")}))
            .await;
    }
    // Take some acks, then the node dies in the middle of the burst.
    while acked.len() < 10 {
        let f = sender.frame().await;
        if f["type"] == "ack" {
            acked.push(f["seq"].as_i64().expect("seq"));
        }
    }
    let seen = message_seqs(&mut reader, 5).await;
    a.kill();
    // Both reconnect to B; the sender resends what it has no ack for, with the same keys.
    let last = *seen.last().expect("seen");
    let mut reader = connect(b.port, &format!("{}&after_seq={last}", chat("general", &bob.access))).await;
    let mut sender = connect(b.port, &chat("general", &alex.access)).await;
    sender.expect("ready").await;
    for i in 0..30 {
        sender
            .send(json!({"type": "message", "content": format!("m{i}"), "client_msg_id": format!("c{i}")}))
            .await;
    }
    let mut acks = 0;
    while acks < 30 {
        if sender.frame().await["type"] == "ack" {
            acks += 1;
        }
    }
    let rest = message_seqs(&mut reader, 30 - seen.len()).await;
    let mut all = seen.clone();
    all.extend(rest);
    assert_eq!(all, (1..=30).collect::<Vec<_>>(), "every acknowledged message, once, in order");
    let h = app.history(&alex, "general", "?limit=200").await;
    assert_eq!(h["messages"].as_array().expect("messages").len(), 30, "resends stored nothing twice");
    drop(b);
}

/// A TCP proxy to NATS that a test can cut and restore.
struct Proxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
    pipes: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let pipes: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let registry = pipes.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:4222").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().expect("lock").push(pipe);
            }
        });
        Self { port, task, pipes }
    }

    /// Stops listening and drops every proxied connection.
    fn cut(self) -> u16 {
        self.task.abort();
        for pipe in self.pipes.lock().expect("lock").drain(..) {
            pipe.abort();
        }
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_cut_off_messages_still_arrive_in_order_through_the_log_and_the_fast_path_returns() {
    let app = spawn_app(Backend::Postgres).await;
    let proxy = Proxy::start(0).await;
    let a = Node::start(&app.db, NATS).await;
    let b = Node::start(&app.db, &format!("nats://127.0.0.1:{}", proxy.port)).await;
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    let mut on_b = connect(b.port, &chat("general", &bob.access)).await;
    on_b.expect("ready").await;
    let mut on_a = connect(a.port, &chat("general", &alex.access)).await;
    on_a.expect("ready").await;
    on_a.send(json!({"type": "message", "content": "before"})).await;
    assert_eq!(message_seqs(&mut on_b, 1).await, [1]);

    // Cut B off from NATS; the aborted task drops the piped connections with it.
    let port = proxy.cut();
    b.wait_for_bus("disconnected").await;
    for i in 0..10 {
        on_a.send(json!({"type": "message", "content": format!("during {i}")})).await;
    }
    assert_eq!(
        message_seqs(&mut on_b, 10).await,
        (2..=11).collect::<Vec<_>>(),
        "read from the log, in order"
    );

    // Restore the route: B reconnects and notices flow again.
    let _proxy = Proxy::start(port).await;
    b.wait_for_bus("connected").await;
    let started = Instant::now();
    on_a.send(json!({"type": "message", "content": "after"})).await;
    assert_eq!(message_seqs(&mut on_b, 1).await, [12]);
    assert!(started.elapsed() < Duration::from_millis(900), "fast path back: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_cut_off_revocations_and_joins_still_reach_the_other_node_through_the_database() {
    let app = spawn_app(Backend::Postgres).await;
    let proxy = Proxy::start(0).await;
    let a = Node::start(&app.db, NATS).await;
    let b = Node::start(&app.db, &format!("nats://127.0.0.1:{}", proxy.port)).await;
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    // Bob's multi-room socket and alex's room socket live on B.
    let mut bob_all = connect(b.port, &format!("/ws/?token={}", bob.access)).await;
    let mut alex_on_b = connect(b.port, &chat("general", &alex.access)).await;
    alex_on_b.expect("ready").await;
    let _keep = proxy.cut();
    b.wait_for_bus("disconnected").await;

    // A join on A: no notice reaches B, yet bob's socket there follows the room.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/room/general/", a.port))
        .bearer_auth(&bob.access)
        .send()
        .await
        .expect("join");
    assert!(r.status().is_success());
    let ready = bob_all.expect("ready").await;
    assert_eq!(ready["room"], "general");

    // A logout on A: B closes the session's socket by reading the sessions table.
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/users/logout/", a.port))
        .bearer_auth(&alex.access)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(alex_on_b.closed().await, Some(4401));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/users/me/", b.port))
        .bearer_auth(&alex.access)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_nats_bus_with_sqlite_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webchat"))
        .args(["--bus", NATS, "--database-url", &format!("sqlite://{}/x.db", dir.path().display())])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("PostgreSQL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_the_same_on_every_node_and_a_killed_nodes_users_go_offline_within_30_seconds() {
    let app = spawn_app(Backend::Postgres).await;
    let a = Node::start(&app.db, NATS).await;
    let mut b = ProcessNode::start(&app.db).await;
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    let mut on_a = connect(a.port, &chat("general", &alex.access)).await;
    on_a.expect("ready").await;
    let mut on_b = connect(b.port, &chat("general", &bob.access)).await;
    on_b.expect("ready").await;
    let active = |port: u16| {
        let token = alex.access.clone();
        async move {
            let r = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/api/rooms/general/"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("room");
            let room: serde_json::Value = r.json().await.expect("json");
            let mut names: Vec<String> = room["active_participants"]
                .as_array()
                .expect("array")
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    // The presence rows are written off the request path: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while active(a.port).await != ["alex", "bob"] {
        assert!(Instant::now() < deadline, "bob (on B) never showed as active on A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active(b.port).await, ["alex", "bob"]);
    // The listing of rooms on A says the same.
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/rooms/", a.port))
        .bearer_auth(&alex.access)
        .send()
        .await
        .expect("rooms")
        .json()
        .await
        .expect("json");
    let general =
        listed.as_array().expect("array").iter().find(|r| r["name"] == "general").expect("general listed");
    let mut listed_active: Vec<&str> =
        general["active_participants"].as_array().expect("array").iter().filter_map(|v| v.as_str()).collect();
    listed_active.sort_unstable();
    assert_eq!(listed_active, ["alex", "bob"]);
    // Alex on A hears that bob, on B, came online.
    let f = on_a.expect("presence").await;
    assert_eq!((f["user"].as_str(), f["status"].as_str()), (Some("bob"), Some("online")));

    b.kill();
    let started = Instant::now();
    while active(a.port).await != ["alex"] {
        assert!(started.elapsed() < Duration::from_secs(40), "bob stayed online after his node died");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(started.elapsed() <= Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sockets_on_one_node_is_announced_online_on_the_other_once_each() {
    let app = spawn_app(Backend::Postgres).await;
    let a = Node::start(&app.db, NATS).await;
    let b = Node::start(&app.db, NATS).await;
    let alex = app.user("alex").await;
    let mut on_a = connect(a.port, &chat("general", &alex.access)).await;
    on_a.expect("ready").await;
    let mut names = Vec::new();
    let mut paths = Vec::new();
    for i in 0..40 {
        let name = format!("burst{i}");
        let user = app.user(&name).await;
        names.push(name);
        paths.push(chat("general", &user.access));
    }
    // All at once: B's presence thread finds them queued together and writes them as runs.
    let mut sockets = futures_util::future::join_all(paths.iter().map(|p| connect(b.port, p))).await;
    for s in &mut sockets {
        s.expect("ready").await;
    }
    let mut heard: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while heard.len() < names.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let f =
            tokio::time::timeout(left, on_a.expect("presence")).await.expect("every user announced in time");
        if f["status"] == "online" && f["user"] != "alex" {
            heard.push(f["user"].as_str().unwrap_or_default().to_owned());
        }
    }
    // Nothing announced twice, and nothing more to come.
    let more: Vec<_> = on_a
        .quiet(300)
        .await
        .into_iter()
        .filter(|f| f["type"] == "presence" && f["user"] != "alex")
        .collect();
    assert!(more.is_empty(), "{more:?}");
    heard.sort();
    names.sort();
    assert_eq!(heard, names);
    drop(sockets);
}

/// The names of the next two users announced online.
async fn online(on: &mut WsClient) -> Vec<String> {
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let f = on.expect("presence").await;
        if f["status"] == "online" {
            heard.push(f["user"].as_str().unwrap_or_default().to_owned());
        }
    }
    heard.sort();
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_presence_rows_were_expired_by_others_enters_them_again_and_says_so() {
    use diesel::{Connection as _, RunQueryDsl as _};
    let app = spawn_app(Backend::Postgres).await;
    let a = Node::start(&app.db, NATS).await;
    let b = Node::start(&app.db, NATS).await;
    let cleo = app.user("cleo").await;
    let mut on_b = connect(b.port, &chat("general", &cleo.access)).await;
    on_b.expect("ready").await;
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    let mut sockets = Vec::new();
    for user in [&alex, &bob] {
        let mut s = connect(a.port, &chat("general", &user.access)).await;
        s.expect("ready").await;
        sockets.push(s);
    }
    assert_eq!(online(&mut on_b).await, ["alex", "bob"]);
    // What another node does to rows it finds stale: A's rows are gone, its sockets are not.
    let mut conn = diesel::PgConnection::establish(&app.db.url()).expect("the test database");
    let removed =
        diesel::sql_query(format!("DELETE FROM presence WHERE user_id IN ('{}', '{}')", alex.id, bob.id))
            .execute(&mut conn)
            .expect("delete");
    assert_eq!(removed, 2);
    // Two heartbeats (5 s apart) short of rows: A enters both again, with one commit, and
    // announces them.
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut again: Vec<String> = Vec::new();
    while again.len() < 2 {
        assert!(Instant::now() < deadline, "A never entered its rows again (heard {again:?})");
        for f in on_b.quiet(500).await {
            if f["type"] == "presence" && f["status"] == "online" {
                again.push(f["user"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    again.sort();
    assert_eq!(again, ["alex", "bob"]);
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Count =
        diesel::sql_query("SELECT count(*) AS n FROM presence").get_result(&mut conn).expect("count");
    assert_eq!(rows.n, 3, "alex and bob on A, cleo on B");
    drop(sockets);
}
