//! The server as an operator meets it: start-up, settings, health, restarts.

use crate::helpers::*;
use reqwest::StatusCode;
use std::process::Command;
use webchat_server::Application;

backend_test!(
    async fn health_endpoints_answer_and_request_ids_are_echoed(app) {
        let r = app.client.get(app.url("/livez")).send().await.expect("livez");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key("x-request-id"));
        let r = app.client.get(app.url("/readyz/")).header("X-Request-Id", "abc-123").send().await.expect("readyz");
        assert_eq!(r.headers().get("x-request-id").map(|v| v.to_str().ok()), Some(Some("abc-123")));
        assert_eq!(json_of(r, StatusCode::OK).await["database"], "ok");
    }
);

backend_test!(
    async fn a_restart_keeps_accounts_rooms_messages_and_sessions(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "persisted").await;
        let config = test_config(&app.db);
        // Stop the first server, then serve the same database again.
        let db = app.stop().await;
        let second = Application::build(&config).expect("restarts");
        let address = format!("http://127.0.0.1:{}", second.port());
        let handle = second.handle();
        tokio::spawn(second.run_until_stopped());
        let client = reqwest::Client::new();
        let me = client.get(format!("{address}/api/users/me/")).bearer_auth(&alex.access).send().await.expect("me");
        assert_eq!(me.status(), StatusCode::OK, "the session and the signing secret survive");
        let history: serde_json::Value = client
            .get(format!("{address}/api/rooms/general/messages/"))
            .bearer_auth(&alex.access)
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("json");
        assert_eq!(history["messages"][0]["content"], "persisted");
        handle.stop(true).await;
        drop(db);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_sqlite_file_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let err = Application::build(&test_config(&app.db)).expect_err("a second server on one SQLite file");
    assert!(err.to_string().contains("single-process"), "{err}");
    // The first one is unharmed.
    let r = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_503_when_the_database_is_gone() {
    let app = spawn_app(Backend::Postgres).await;
    let TestDb::Postgres { name } = &app.db else { unreachable!("postgres") };
    use diesel::{Connection, RunQueryDsl};
    let base =
        std::env::var("WEBCHAT_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let mut admin = diesel::PgConnection::establish(&format!("{base}/postgres")).expect("admin");
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)")).execute(&mut admin).expect("drop");
    let r = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    // A request that needs the database gets 503, not 500.
    assert_error(app.register("alex").await, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
}

fn webchat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_webchat"))
}

#[test]
fn help_lists_every_setting() {
    let out = webchat().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for setting in [
        "--listen",
        "WEBCHAT_LISTEN",
        "--database-url",
        "DATABASE_URL",
        "JWT_SECRET",
        "--bcrypt-cost",
        "BCRYPT_COST",
        "--access-ttl",
        "WEBCHAT_ACCESS_TTL",
        "--refresh-ttl",
        "WEBCHAT_REFRESH_TTL",
        "--log-format",
        "WEBCHAT_LOG_FORMAT",
        "--cors-origins",
        "WEBCHAT_CORS_ORIGINS",
        "--auth-rate",
        "WEBCHAT_AUTH_RATE",
        "--send-rate",
        "WEBCHAT_SEND_RATE",
        "--socket-queue",
        "WEBCHAT_SOCKET_QUEUE",
        "--bus",
        "WEBCHAT_BUS",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}:\n{help}");
    }
}

#[test]
fn a_bad_setting_is_a_one_line_error_with_exit_code_2() {
    for args in [
        &["--bcrypt-cost", "99"][..],
        &["--listen", "not-an-address"],
        &["--database-url", "mysql://localhost/x"],
        &["--access-ttl", "forever"],
        &["--log-format", "xml"],
    ] {
        let out = webchat().args(args).env_remove("DATABASE_URL").output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?} printed: {err}");
        assert!(err.starts_with("error:"), "{err}");
    }
}

#[test]
fn a_bad_setting_from_the_environment_is_refused_too() {
    let out = webchat().env("BCRYPT_COST", "2").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_with_exit_code_0() {
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = webchat()
        .args(["--listen", &format!("127.0.0.1:{port}"), "--bcrypt-cost", "4"])
        .args(["--database-url", &format!("sqlite://{}/w.db", dir.path().display())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reqwest::get(format!("http://127.0.0.1:{port}/livez")).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never came up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            assert_eq!(code.code(), Some(0));
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop within 15 s of SIGTERM");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
