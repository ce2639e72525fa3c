//! `spawn_app`: one server and one database per test.

#![allow(dead_code, reason = "not every test binary module uses every helper")]

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use webchat_server::{Application, Config};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL server the tests create their databases on. Tests fail, never skip, when it
/// is down: CI must exercise both backends.
fn pg_base() -> String {
    std::env::var("WEBCHAT_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The database of one test, removed when the test ends.
pub enum TestDb {
    Sqlite { dir: tempfile::TempDir, path: String },
    Postgres { name: String },
}

impl TestDb {
    pub fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("webchat.db").to_string_lossy().into_owned();
                Self::Sqlite { dir, path }
            }
            Backend::Postgres => {
                let name = format!("webchat_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::establish(&format!("{}/postgres", pg_base()))
                    .expect("PostgreSQL must be running on 127.0.0.1:5432 for the tests");
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .expect("create database");
                Self::Postgres { name }
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => format!("sqlite://{path}"),
            Self::Postgres { name } => format!("{}/{name}", pg_base()),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres { name } = self
            && let Ok(mut admin) = PgConnection::establish(&format!("{}/postgres", pg_base()))
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// The settings tests run with: port 0, bcrypt cost 4, a small pool.
pub fn test_config(db: &TestDb) -> Config {
    use clap::Parser as _;
    let url = db.url();
    Config::try_parse_from([
        "webchat",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--bcrypt-cost",
        "4",
        "--workers",
        "2",
        "--db-pool",
        "4",
        // Tests register from one address far faster than people do; the limit has its
        // own tests.
        "--auth-rate",
        "0",
    ])
    .expect("test settings parse")
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub server: StopOnDrop,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    // Dropped last: the server must let go of the database first.
    pub db: TestDb,
}

/// Stops the server when the test ends.
pub struct StopOnDrop(pub webchat_server::AppHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let handle = self.0.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::create(backend);
    let mut config = test_config(&db);
    adjust(&mut config);
    let app = Application::build(&config).expect("the server starts");
    let port = app.port();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        task,
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        backend,
        server: StopOnDrop(handle),
        db,
    }
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// Stops the server gracefully and hands back its database.
    pub async fn stop(self) -> TestDb {
        let Self { server, db, task, .. } = self;
        server.0.stop(true).await;
        // The server lets go of the database (and SQLite's lock) when its task ends.
        let _ = task.await;
        db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends JSON (or nothing) with an optional bearer token.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn register(&self, username: &str) -> Response {
        self.post(
            "/api/users/register/",
            None,
            json!({"email": format!("{username}@example.com"), "username": username, "password": "password123"}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/api/users/login/", None, json!({"email": email, "password": password})).await
    }

    /// Registers and logs in `username` (email `username@example.com`, password `password123`).
    pub async fn user(&self, username: &str) -> TestUser {
        let r = self.register(username).await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {username}");
        let email = format!("{username}@example.com");
        let body = json_of(self.login(&email, "password123").await, StatusCode::OK).await;
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            username: username.to_owned(),
            email,
            password: "password123".into(),
            access: body["access"].as_str().expect("access").to_owned(),
            refresh: body["refresh"].as_str().expect("refresh").to_owned(),
        }
    }

    pub async fn join(&self, user: &TestUser, room: &str) -> Value {
        let r = self.request(Method::POST, &format!("/api/room/{room}/"), Some(&user.access), None).await;
        assert!(r.status().is_success(), "join {room}: {}", r.status());
        r.json().await.expect("json")
    }

    pub async fn send(&self, user: &TestUser, room: &str, content: &str) -> Value {
        let r = self
            .post(&format!("/api/rooms/{room}/messages/"), Some(&user.access), json!({"content": content}))
            .await;
        json_of(r, StatusCode::CREATED).await
    }

    pub async fn history(&self, user: &TestUser, room: &str, query: &str) -> Value {
        json_of(self.get(&format!("/api/rooms/{room}/messages/{query}"), &user.access).await, StatusCode::OK)
            .await
    }

    pub async fn user_count(&self, token: &str) -> usize {
        let users = json_of(self.get("/api/users/list?limit=200", token).await, StatusCode::OK).await;
        users.as_array().expect("array").len()
    }
}

/// Asserts the status and returns the JSON body.
pub async fn json_of(r: Response, status: StatusCode) -> Value {
    let got = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts a SPEC §2 error: the status, the code, and a `detail` sentence.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    let body = json_of(r, status).await;
    assert_eq!(body["code"], code, "wrong code in {body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "no detail in {body}");
    body
}

/// Declares an async test that runs once on SQLite and once on PostgreSQL:
/// `backend_test!(async fn name(app) { … });` gives `name::sqlite` and `name::postgres`.
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports, reason = "each test uses part of the prelude")]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn sqlite() {
                run($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn postgres() {
                run($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await;
            }
        }
    };
}
