//! Operating the service: rate limits, CORS, metrics, the OpenAPI document, Swagger UI, the
//! web client, and logs that keep secrets out.

use crate::helpers::*;
use crate::ws_client::connect;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

backend_test!(
    async fn the_auth_rate_limit_answers_429_with_retry_after_and_stores_nothing(app) {
        let app = spawn_app_with(app.backend, |c| c.auth_rate = 3).await;
        for _ in 0..3 {
            let r = app.login("nobody@example.com", "password123").await;
            assert_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        }
        let r = app.register("alex").await;
        let retry_after: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in whole seconds");
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        let r = app.post("/api/login/refresh/", None, json!({"refresh": "x"})).await;
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        // The refused registration stored nothing: another address may take the name.
        let other = spawn_app_with(app.backend, |c| c.auth_rate = 0).await;
        let probe = other.user("probe").await;
        assert_eq!(other.user_count(&probe.access).await, 1);
        drop(other);
        // Authenticated routes are not limited by it.
        let r = app.client.get(app.url("/api/users/me/")).send().await.expect("me");
        assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
    }
);

backend_test!(
    async fn a_forwarded_address_from_a_local_proxy_is_limited_on_its_own(app) {
        let app = spawn_app_with(app.backend, |c| c.auth_rate = 1).await;
        let login = |ip: &'static str| {
            app.client
                .post(app.url("/api/users/login/"))
                .header("X-Forwarded-For", ip)
                .json(&json!({"email": "nobody@example.com", "password": "password123"}))
                .send()
        };
        assert_eq!(login("203.0.113.1").await.expect("sent").status(), StatusCode::UNAUTHORIZED);
        assert_eq!(login("203.0.113.1").await.expect("sent").status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(login("203.0.113.2").await.expect("sent").status(), StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    async fn http_sends_share_the_send_budget_of_sockets(app) {
        let app = spawn_app_with(app.backend, |c| c.send_rate = 1).await;
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        for i in 0..2 {
            app.send(&alex, "general", &format!("m{i}")).await;
        }
        let r = app.post("/api/rooms/general/messages/", Some(&alex.access), json!({"content": "third"})).await;
        assert!(r.headers().contains_key("retry-after"));
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        let history = app.history(&alex, "general", "").await;
        assert_eq!(history["messages"].as_array().map(Vec::len), Some(2), "the refused message was not stored");
    }
);

backend_test!(
    async fn cors_allows_the_configured_origins_and_the_servers_own(app) {
        let app = spawn_app_with(app.backend, |c| c.cors_origins = vec!["https://chat.example".into()]).await;
        let preflight = |origin: String| {
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/api/users/login/"))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type")
                .send()
        };
        let r = preflight("https://chat.example".into()).await.expect("preflight");
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("https://chat.example"));
        let r = preflight("https://evil.example".into()).await.expect("preflight");
        assert!(r.headers().get("access-control-allow-origin").is_none(), "another origin is not allowed");
        // The built-in client's own requests carry `Origin` too.
        let own = format!("http://127.0.0.1:{}", app.port);
        let r = app
            .client
            .post(app.url("/api/users/register/"))
            .header("Origin", &own)
            .json(&json!({"email": "alex@example.com", "username": "alex", "password": "password123"}))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some(own.as_str()));
    }
);

backend_test!(
    async fn without_cors_origins_no_cross_origin_headers_are_sent(app) {
        let r = app
            .client
            .get(app.url("/livez"))
            .header("Origin", "https://chat.example")
            .send()
            .await
            .expect("livez");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
);

/// The value of an unlabelled sample, or of the first sample whose labels contain `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics(app: &TestApp) -> String {
    let r = app.client.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    r.text().await.expect("text")
}

backend_test!(
    async fn metrics_count_requests_messages_sockets_and_deliveries(app) {
        let before = metrics(&app).await;
        let stored_before = sample(&before, "webchat_messages_stored_total", &[]).unwrap_or(0.0);
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let mut ws = connect(app.port, &format!("/ws/chat/general/?token={}", alex.access)).await;
        ws.expect("ready").await;
        app.send(&alex, "general", "counted").await;
        ws.expect("message").await;
        ws.send(json!({"type": "message", "content": "over the socket", "client_msg_id": "m-1"})).await;
        ws.expect("ack").await;
        // A resume that replays counts as one.
        let mut again = connect(app.port, &format!("/ws/chat/general/?token={}&after_seq=0", alex.access)).await;
        again.expect("message").await;

        let text = metrics(&app).await;
        let stored = sample(&text, "webchat_messages_stored_total", &[]).expect("messages stored");
        assert!(stored >= stored_before + 2.0, "stored {stored_before} → {stored}");
        assert!(
            sample(&text, "webchat_http_requests_total", &["route=\"/api/users/register\"", "status=\"201\"", "method=\"POST\""])
                .is_some_and(|n| n >= 1.0),
            "requests by route, method and status:\n{text}"
        );
        assert!(sample(&text, "webchat_http_request_duration_seconds_bucket", &["route=\"/api/users/login\""]).is_some());
        assert!(sample(&text, "webchat_open_sockets", &[]).is_some_and(|n| n >= 2.0), "open sockets");
        assert!(sample(&text, "webchat_delivery_latency_seconds_count", &[]).is_some_and(|n| n >= 1.0), "deliveries");
        assert!(sample(&text, "webchat_append_duration_seconds_count", &[]).is_some_and(|n| n >= 2.0), "appends");
        assert!(sample(&text, "webchat_resumes_total", &["outcome=\"replayed\""]).is_some_and(|n| n >= 1.0));
        for gauge in ["webchat_db_pool_connections_in_use", "webchat_db_pool_waiting", "webchat_db_pool_connections_max"] {
            assert!(sample(&text, gauge, &[]).is_some(), "{gauge} missing");
        }
        // Raw paths never become labels: a user id is one route, not one series per id.
        let r = app.get(&format!("/api/users/user/{}", alex.id), &alex.access).await;
        assert_eq!(r.status(), StatusCode::OK);
        let text = metrics(&app).await;
        assert!(!text.contains(&alex.id), "a raw path leaked into a label");
        assert!(text.contains("route=\"/api/users/user/{id}\""));
        // Nor do made-up methods.
        let odd = reqwest::Method::from_bytes(b"FROBNICATE").expect("method");
        app.client.request(odd, app.url("/livez")).send().await.expect("sent");
        let text = metrics(&app).await;
        assert!(!text.contains("FROBNICATE") && text.contains("method=\"OTHER\""));
    }
);

backend_test!(
    async fn the_openapi_document_and_swagger_ui_are_served_from_the_binary(app) {
        let doc = json_of(app.client.get(app.url("/api/openapi.json")).send().await.expect("doc"), StatusCode::OK).await;
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
        assert!(doc["paths"]["/api/users/register/"]["post"].is_object());
        assert!(doc["components"]["schemas"]["Message"].is_object());
        for path in ["/api/docs/", "/api/docs"] {
            let r = app.client.get(app.url(path)).send().await.expect("docs");
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let html = r.text().await.expect("html");
            assert!(html.contains("swagger-ui") && html.contains("<base href=\"/api/docs/\">"), "{path}");
        }
        let init = app.client.get(app.url("/api/docs/swagger-initializer.js")).send().await.expect("js");
        assert_eq!(init.status(), StatusCode::OK);
        assert!(init.text().await.expect("js").contains("/api/openapi.json"));
        let css = app.client.get(app.url("/api/docs/swagger-ui.css")).send().await.expect("css");
        assert_eq!(css.status(), StatusCode::OK);
        let r = app.client.get(app.url("/api/docs/nope.js")).send().await.expect("missing");
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
);

backend_test!(
    async fn the_web_client_is_served_at_the_root_alone(app) {
        let r = app.client.get(app.url("/")).send().await.expect("root");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
        assert!(r.text().await.expect("html").to_lowercase().contains("<!doctype html>"));
        let r = app.client.get(app.url("/index.html")).send().await.expect("elsewhere");
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }
);

/// Reads a child's output lines on a thread, so the pipe never fills.
fn collect(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_request_ids_and_never_a_token_a_password_or_a_query_string() {
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_webchat"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--bcrypt-cost", "4", "--log-format", "json"])
        .args(["--database-url", &format!("sqlite://{}/w.db", dir.path().display())])
        .env("RUST_LOG", "trace")
        .env_remove("JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let out = collect(child.stdout.take().expect("stdout"));
    let err = collect(child.stderr.take().expect("stderr"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/livez")).send().await.is_err() {
        assert!(Instant::now() < deadline, "never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let password = "Secret-Passw0rd-123";
    let r = client
        .post(format!("{base}/api/users/register/"))
        .header("X-Request-Id", "req-register-1")
        .json(&json!({"email": "alex@example.com", "username": "alex", "password": password}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-register-1"));
    let login: Value = client
        .post(format!("{base}/api/users/login/"))
        .json(&json!({"email": "alex@example.com", "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let access = login["access"].as_str().expect("access").to_owned();
    let refresh = login["refresh"].as_str().expect("refresh").to_owned();
    let r = client
        .get(format!("{base}/api/users/me/?secret_query=q1"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::OK);
    let mut ws = connect(port, &format!("/ws/chat/general/?token={access}")).await;
    ws.expect("ready").await;
    drop(ws);
    let r = client
        .post(format!("{base}/api/login/refresh/"))
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(r.status(), StatusCode::OK);
    // A bad login logs its failure, still without the password.
    client
        .post(format!("{base}/api/users/login/"))
        .json(&json!({"email": "alex@example.com", "password": "Wrong-Passw0rd-456"}))
        .send()
        .await
        .expect("bad login");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<String> = out.try_iter().chain(err.try_iter()).collect();
    assert!(lines.len() > 5, "the server logged: {lines:?}");
    let logged = lines.join("\n");
    for secret in [
        password,
        "Wrong-Passw0rd-456",
        access.as_str(),
        refresh.as_str(),
        "secret_query",
        "?token=",
        "token=ey",
    ] {
        assert!(!logged.contains(secret), "{secret:?} reached the log:\n{logged}");
    }
    let register_lines: Vec<&String> = lines.iter().filter(|l| l.contains("/api/users/register")).collect();
    assert!(!register_lines.is_empty(), "the request is logged");
    for line in register_lines {
        let v: Value = serde_json::from_str(line).expect("JSON log line");
        let id = v["request_id"].as_str().or_else(|| v["span"]["request_id"].as_str());
        assert_eq!(id, Some("req-register-1"), "{line}");
    }
}
