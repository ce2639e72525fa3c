//! Bad input, as a careless or hostile client sends it (SPEC §2 error model, §3 validation):
//! every refusal has the documented status and code, names the offending fields, and leaves
//! nothing stored or changed.

use crate::helpers::*;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Helpers of this file
// ---------------------------------------------------------------------------------------

/// Asserts a 400 `validation_failed` whose `fields` names exactly `expected`, each with at
/// least one non-empty message.
async fn assert_invalid(r: Response, expected: &[&str]) -> Value {
    let body = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    let fields = body["fields"].as_object().unwrap_or_else(|| panic!("no fields in {body}"));
    let mut got: Vec<&str> = fields.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "wrong fields in {body}");
    for (name, messages) in fields {
        let messages = messages.as_array().unwrap_or_else(|| panic!("{name}: not a list in {body}"));
        assert!(!messages.is_empty(), "{name}: no message in {body}");
        assert!(
            messages.iter().all(|m| m.as_str().is_some_and(|s| !s.is_empty())),
            "{name}: blank message in {body}"
        );
    }
    body
}

/// Sends `body` as is, with the given content type (or none) and bearer token (or none).
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut req = app.client.request(method, app.url(path)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    req.send().await.expect("request sent")
}

/// Sends `body` as `application/json` without checking that it is JSON.
async fn send_json_text(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    send_raw(app, method, path, token, Some("application/json"), body).await
}

/// A request with an arbitrary `Authorization` header value.
async fn get_with_authorization(app: &TestApp, path: &str, authorization: HeaderValue) -> Response {
    app.client.get(app.url(path)).header(AUTHORIZATION, authorization).send().await.expect("request sent")
}

fn assert_bearer_challenge(r: &Response) {
    assert_eq!(
        r.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()),
        Some("Bearer"),
        "401 without WWW-Authenticate: Bearer"
    );
}

/// An address of exactly `len` characters (len >= 198): a 64-character local part and
/// labels of 63, 63 and the rest, then `.com`.
fn email_of_len(len: usize) -> String {
    let third = len - 64 - 1 - (63 + 1 + 63 + 1) - 4;
    format!("{}@{}.{}.{}.com", "l".repeat(64), "a".repeat(63), "b".repeat(63), "c".repeat(third))
}

fn register_body(email: &str, username: &str, password: &str) -> Value {
    json!({"email": email, "username": username, "password": password})
}

async fn register_raw(app: &TestApp, body: Value) -> Response {
    app.post("/api/users/register/", None, body).await
}

/// The room as `user` sees it.
async fn room_of(app: &TestApp, user: &TestUser, room: &str) -> Value {
    json_of(app.get(&format!("/api/rooms/{room}/"), &user.access).await, StatusCode::OK).await
}

async fn message_count(app: &TestApp, user: &TestUser, room: &str) -> usize {
    app.history(user, room, "?limit=200").await["messages"].as_array().expect("messages").len()
}

async fn room_names(app: &TestApp, token: &str) -> Vec<String> {
    let rooms = json_of(app.get("/api/rooms/", token).await, StatusCode::OK).await;
    rooms.as_array().expect("array").iter().map(|r| r["name"].as_str().expect("name").to_owned()).collect()
}

async fn me(app: &TestApp, user: &TestUser) -> Value {
    json_of(app.get("/api/users/me/", &user.access).await, StatusCode::OK).await
}

async fn user_by_id(app: &TestApp, token: &str, id: &str) -> Value {
    json_of(app.get(&format!("/api/users/user/{id}"), token).await, StatusCode::OK).await
}

/// Asserts that a response is not a server error, and that an error is a SPEC §2 body.
async fn assert_no_server_error(r: Response, what: &str) {
    let status = r.status();
    let text = r.text().await.expect("body");
    assert!(status.as_u16() < 500, "{what}: {status} {text}");
    if status.is_client_error() {
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {status} not JSON: {text}"));
        assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no code in {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: no detail in {body}");
    }
}

/// A raw HTTP/1.1 exchange over a plain socket, for what reqwest cannot send (a chunked
/// body of known chunks). Returns the status and the response body.
async fn raw_http(port: u16, request: Vec<u8>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        stream.set_write_timeout(Some(Duration::from_secs(20))).expect("timeout");
        // The server may answer (and stop reading) before the whole body is sent.
        let _ = stream.write_all(&request);
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    })
    .await
    .expect("raw request")
}

/// A `POST` with `Transfer-Encoding: chunked`, the body cut into 8 KiB chunks.
fn chunked_post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(8 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

/// A register body of exactly `len` bytes, padded with an ignored field.
fn padded_register_body(username: &str, len: usize) -> String {
    let head = format!(
        r#"{{"email":"{username}@example.com","username":"{username}","password":"password123","pad":""#
    );
    let tail = r#""}"#;
    let pad = len - head.len() - tail.len();
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    assert_eq!(body.len(), len);
    body
}

// ---------------------------------------------------------------------------------------
// Register
// ---------------------------------------------------------------------------------------

backend_test!(
    async fn register_with_an_empty_object_names_email_username_and_password_at_once(app) {
        let alex = app.user("alex").await;
        assert_invalid(register_raw(&app, json!({})).await, &["email", "username", "password"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn register_with_one_field_missing_names_that_field_only(app) {
        let alex = app.user("alex").await;
        let full = register_body("bob@example.com", "bob", "password123");
        for missing in ["email", "username", "password"] {
            let mut body = full.clone();
            body.as_object_mut().expect("object").remove(missing);
            assert_invalid(register_raw(&app, body).await, &[missing]).await;
        }
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn register_with_null_fields_treats_them_as_missing(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, json!({"email": null, "username": null, "password": null})).await;
        let body = assert_invalid(r, &["email", "username", "password"]).await;
        assert_eq!(body["fields"]["email"], json!(["This field is required."]));
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn register_with_wrong_json_types_names_each_field(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, json!({"email": 42, "username": ["bob"], "password": {"plain": "password123"}})).await;
        assert_invalid(r, &["email", "username", "password"]).await;
        let r = register_raw(&app, json!({"email": "bob@example.com", "username": true, "password": 12_345_678})).await;
        assert_invalid(r, &["username", "password"]).await;
        let r = register_raw(&app, json!({"email": 1.5, "username": "bob", "password": "password123"})).await;
        assert_invalid(r, &["email"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn register_with_a_malformed_email_is_rejected(app) {
        let alex = app.user("alex").await;
        for email in [
            "",
            "   ",
            "bob",
            "bob@",
            "@example.com",
            "bob@example",
            "bob@example.c",
            "bob@@example.com",
            "b ob@example.com",
            ".bob@example.com",
            "bob..x@example.com",
            "bob@exa_mple.com",
            "<bob>@example.com",
        ] {
            let r = register_raw(&app, register_body(email, "bob", "password123")).await;
            let body = assert_invalid(r, &["email"]).await;
            assert_eq!(body["fields"]["email"], json!(["Enter a valid email address."]), "{email:?}");
        }
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn register_with_an_email_of_255_characters_is_rejected_and_254_accepted(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, register_body(&email_of_len(255), "bob", "password123")).await;
        assert_invalid(r, &["email"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        let r = register_raw(&app, register_body(&email_of_len(254), "bob", "password123")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(app.user_count(&alex.access).await, 2);
    }
);

backend_test!(
    async fn register_with_a_username_of_2_or_33_characters_is_rejected_and_3_or_32_accepted(app) {
        let alex = app.user("alex").await;
        for name in ["bo".to_owned(), "b".repeat(33), "é".repeat(33)] {
            let r = register_raw(&app, register_body("bob@example.com", &name, "password123")).await;
            assert_invalid(r, &["username"]).await;
        }
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_eq!(register_raw(&app, register_body("bob@example.com", "bob", "password123")).await.status(), StatusCode::CREATED);
        let long = "c".repeat(32);
        assert_eq!(register_raw(&app, register_body("carl@example.com", &long, "password123")).await.status(), StatusCode::CREATED);
        assert_eq!(app.user_count(&alex.access).await, 3);
    }
);

backend_test!(
    async fn register_with_a_space_or_punctuation_in_the_username_is_rejected(app) {
        let alex = app.user("alex").await;
        for name in ["bo b", "bob!", "bob@home", "b/o/b", " bob", "bob\n", "bo+b", "bob😀"] {
            let r = register_raw(&app, register_body("bob@example.com", name, "password123")).await;
            assert_invalid(r, &["username"]).await;
        }
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn register_with_a_password_of_7_bytes_is_rejected(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, register_body("bob@example.com", "bob", "1234567")).await;
        assert_invalid(r, &["password"]).await;
        let r = register_raw(&app, register_body("bob@example.com", "bob", "")).await;
        assert_invalid(r, &["password"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_error(app.login("bob@example.com", "1234567").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
);

backend_test!(
    async fn register_with_a_password_of_73_bytes_is_rejected_and_72_accepted(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, register_body("bob@example.com", "bob", &"p".repeat(73))).await;
        assert_invalid(r, &["password"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        let r = register_raw(&app, register_body("bob@example.com", "bob", &"p".repeat(72))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(app.login("bob@example.com", &"p".repeat(72)).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn register_counts_a_multibyte_password_in_bytes_not_characters(app) {
        let alex = app.user("alex").await;
        // 37 characters but 73 bytes: too long.
        let too_long = format!("{}a", "é".repeat(36));
        assert_eq!((too_long.chars().count(), too_long.len()), (37, 73));
        assert_invalid(register_raw(&app, register_body("bob@example.com", "bob", &too_long)).await, &["password"]).await;
        // 4 characters but 7 bytes: too short.
        let too_short = "éééa";
        assert_eq!(too_short.len(), 7);
        assert_invalid(register_raw(&app, register_body("bob@example.com", "bob", too_short)).await, &["password"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        // 36 characters, 72 bytes: the longest accepted.
        let longest = "é".repeat(36);
        assert_eq!(register_raw(&app, register_body("bob@example.com", "bob", &longest)).await.status(), StatusCode::CREATED);
        assert_eq!(app.login("bob@example.com", &longest).await.status(), StatusCode::OK);
        // 2 characters, 8 bytes: the shortest accepted.
        let shortest = "😀😀";
        assert_eq!(register_raw(&app, register_body("carl@example.com", "carl", shortest)).await.status(), StatusCode::CREATED);
        assert_eq!(app.login("carl@example.com", shortest).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn register_with_an_email_taken_in_another_case_conflicts_with_email_taken(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, register_body("ALEX@Example.COM", "bob", "password999")).await;
        assert_error(r, StatusCode::CONFLICT, "email_taken").await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        // The existing account is untouched: its password still works, the other does not.
        assert_eq!(app.login("alex@example.com", "password123").await.status(), StatusCode::OK);
        assert_error(app.login("alex@example.com", "password999").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

backend_test!(
    async fn register_with_a_username_taken_in_another_case_conflicts_with_username_taken(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, register_body("other@example.com", "ALEX", "password999")).await;
        assert_error(r, StatusCode::CONFLICT, "username_taken").await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_error(app.login("other@example.com", "password999").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(me(&app, &alex).await["email"], "alex@example.com");
    }
);

backend_test!(
    async fn register_names_every_invalid_field_in_one_answer(app) {
        let alex = app.user("alex").await;
        let r = register_raw(&app, register_body("not-an-email", "x!", "short")).await;
        assert_invalid(r, &["email", "username", "password"]).await;
        // Invalid and missing fields together.
        let r = register_raw(&app, json!({"email": "not-an-email", "username": 7})).await;
        assert_invalid(r, &["email", "username", "password"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

// ---------------------------------------------------------------------------------------
// Bodies: JSON, content type, size
// ---------------------------------------------------------------------------------------

backend_test!(
    async fn malformed_json_is_rejected_with_invalid_json(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        for text in [
            r#"{"email": "bob@example.com", "username": "bob", "password": "password123""#,
            r#"{"email": "bob@example.com",}"#,
            r#"{'email': 'bob@example.com'}"#,
            r#"{email: "bob@example.com"}"#,
            "{",
            "}",
            "nul",
            "{\"content\": \"hi\"} trailing",
            "\u{feff}{}",
        ] {
            let r = send_json_text(&app, Method::POST, "/api/users/register/", None, text).await;
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
            let r = send_json_text(&app, Method::POST, "/api/users/login/", None, text).await;
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
            let r = send_json_text(&app, Method::POST, "/api/rooms/general/messages/", Some(&alex.access), text).await;
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
        }
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_eq!(message_count(&app, &alex, "general").await, 0);
    }
);

backend_test!(
    async fn a_json_array_string_number_or_null_body_is_rejected_with_invalid_json(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        for text in [
            r#"[{"email": "bob@example.com", "username": "bob", "password": "password123"}]"#,
            "[]",
            r#""hello""#,
            "42",
            "true",
            "null",
        ] {
            let r = send_json_text(&app, Method::POST, "/api/users/register/", None, text).await;
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
            let r = send_json_text(&app, Method::POST, "/api/rooms/general/messages/", Some(&alex.access), text).await;
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
            let r = send_json_text(&app, Method::POST, "/api/rooms/general/read/", Some(&alex.access), text).await;
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
        }
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_eq!(message_count(&app, &alex, "general").await, 0);
    }
);

backend_test!(
    async fn an_empty_body_where_one_is_required_is_rejected_with_invalid_json(app) {
        let alex = app.user("alex").await;
        let r = send_json_text(&app, Method::POST, "/api/users/register/", None, "").await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
        let r = send_json_text(&app, Method::POST, "/api/login/refresh/", None, "   ").await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn a_text_plain_or_form_body_is_rejected_with_unsupported_media_type(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let json_text = r#"{"email": "bob@example.com", "username": "bob", "password": "password123"}"#;
        for content_type in ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "text/json", "application/xml"] {
            let r = send_raw(&app, Method::POST, "/api/users/register/", None, Some(content_type), json_text).await;
            assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        }
        let form = "email=bob%40example.com&username=bob&password=password123";
        let r = send_raw(&app, Method::POST, "/api/users/register/", None, Some("application/x-www-form-urlencoded"), form).await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        let r = send_raw(&app, Method::POST, "/api/users/register/", None, Some("multipart/form-data; boundary=x"), "--x--").await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        let r = send_raw(&app, Method::POST, "/api/rooms/general/messages/", Some(&alex.access), Some("text/plain"), r#"{"content": "hi"}"#).await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_eq!(message_count(&app, &alex, "general").await, 0);
    }
);

backend_test!(
    async fn a_body_without_a_content_type_is_rejected_with_unsupported_media_type(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let r = send_raw(&app, Method::POST, "/api/users/register/", None, None, r#"{"email": "bob@example.com", "username": "bob", "password": "password123"}"#).await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        let r = send_raw(&app, Method::POST, "/api/users/login/", None, None, r#"{"email": "alex@example.com", "password": "password123"}"#).await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        let r = send_raw(&app, Method::POST, "/api/rooms/general/messages/", Some(&alex.access), None, r#"{"content": "hi"}"#).await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        assert_eq!(message_count(&app, &alex, "general").await, 0);
    }
);

backend_test!(
    async fn json_sent_with_a_charset_or_a_json_suffix_type_is_accepted(app) {
        let alex = app.user("alex").await;
        let body = r#"{"email": "bob@example.com", "username": "bob", "password": "password123"}"#;
        let r = send_raw(&app, Method::POST, "/api/users/register/", None, Some("application/json; charset=utf-8"), body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body = r#"{"email": "carl@example.com", "username": "carl", "password": "password123"}"#;
        let r = send_raw(&app, Method::POST, "/api/users/register/", None, Some("Application/JSON"), body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(app.user_count(&alex.access).await, 3);
    }
);

backend_test!(
    async fn a_body_over_64_kib_with_a_content_length_is_rejected_with_payload_too_large(app) {
        let alex = app.user("alex").await;
        let r = send_json_text(&app, Method::POST, "/api/users/register/", None, padded_register_body("bob", 64 * 1024 + 1)).await;
        assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        let r = send_json_text(&app, Method::POST, "/api/users/register/", None, padded_register_body("bob", 1024 * 1024)).await;
        assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        assert_eq!(app.user_count(&alex.access).await, 1);
        // Exactly 64 KiB is within the limit.
        let r = send_json_text(&app, Method::POST, "/api/users/register/", None, padded_register_body("bob", 64 * 1024)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(app.user_count(&alex.access).await, 2);
    }
);

backend_test!(
    async fn a_chunked_body_over_64_kib_is_rejected_with_payload_too_large(app) {
        let alex = app.user("alex").await;
        let big = padded_register_body("bob", 64 * 1024 + 1);
        let (status, body) = raw_http(app.port, chunked_post("/api/users/register/", big.as_bytes())).await;
        assert_eq!(status, 413, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        assert_eq!(body["code"], "payload_too_large");
        assert_eq!(app.user_count(&alex.access).await, 1);
        // A chunked body within the limit is read whole.
        let fits = padded_register_body("bob", 64 * 1024);
        let (status, body) = raw_http(app.port, chunked_post("/api/users/register/", fits.as_bytes())).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(app.user_count(&alex.access).await, 2);
    }
);

backend_test!(
    async fn a_message_body_over_64_kib_stores_nothing(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let body = json!({"content": "hi", "pad": "x".repeat(64 * 1024)}).to_string();
        let r = send_json_text(&app, Method::POST, "/api/rooms/general/messages/", Some(&alex.access), body).await;
        assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        assert_eq!(message_count(&app, &alex, "general").await, 0);
        assert_eq!(room_of(&app, &alex, "general").await["last_seq"], 0);
    }
);

// ---------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------

backend_test!(
    async fn login_with_missing_fields_names_them(app) {
        app.user("alex").await;
        assert_invalid(app.post("/api/users/login/", None, json!({})).await, &["email", "password"]).await;
        assert_invalid(app.post("/api/users/login/", None, json!({"email": "alex@example.com"})).await, &["password"]).await;
        assert_invalid(app.post("/api/users/login/", None, json!({"password": "password123"})).await, &["email"]).await;
        assert_invalid(app.post("/api/users/login/", None, json!({"email": null, "password": null})).await, &["email", "password"]).await;
        assert_invalid(app.post("/api/users/login/", None, json!({"email": "", "password": ""})).await, &["email", "password"]).await;
        assert_invalid(app.post("/api/users/login/", None, json!({"email": 1, "password": ["password123"]})).await, &["email", "password"]).await;
    }
);

backend_test!(
    async fn login_with_a_wrong_password_an_unknown_email_or_a_malformed_email_gives_identical_bodies(app) {
        app.user("alex").await;
        let wrong = assert_error(app.login("alex@example.com", "password999").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let unknown = assert_error(app.login("nobody@example.com", "password123").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let malformed = assert_error(app.login("not an email", "password123").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let short = assert_error(app.login("alex@example.com", "x").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(wrong, unknown);
        assert_eq!(wrong, malformed);
        assert_eq!(wrong, short);
        assert!(wrong.get("fields").is_none(), "{wrong}");
    }
);

backend_test!(
    async fn login_with_a_password_of_73_bytes_is_refused_even_when_its_first_72_bytes_match(app) {
        let alex = app.user("alex").await;
        let password = "p".repeat(72);
        assert_eq!(register_raw(&app, register_body("bob@example.com", "bob", &password)).await.status(), StatusCode::CREATED);
        let r = app.login("bob@example.com", &format!("{password}q")).await;
        let body = assert_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let unknown = assert_error(app.login("nobody@example.com", &format!("{password}q")).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(body, unknown);
        assert_eq!(app.login("bob@example.com", &password).await.status(), StatusCode::OK);
        assert_eq!(app.user_count(&alex.access).await, 2);
    }
);

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// Every authenticated route, with a method that reaches its handler.
const AUTHENTICATED_ROUTES: [(&str, &str); 15] = [
    ("POST", "/api/users/logout/"),
    ("GET", "/api/users/me/"),
    ("POST", "/api/users/me/password/"),
    ("GET", "/api/users/list"),
    ("PUT", "/api/users/user/update"),
    ("PATCH", "/api/users/user/update"),
    ("GET", "/api/users/user/00000000-0000-0000-0000-000000000000"),
    ("DELETE", "/api/users/user/00000000-0000-0000-0000-000000000000"),
    ("GET", "/api/rooms/"),
    ("POST", "/api/room/general/"),
    ("GET", "/api/rooms/general/"),
    ("POST", "/api/rooms/general/leave/"),
    ("GET", "/api/rooms/general/messages/"),
    ("POST", "/api/rooms/general/messages/"),
    ("POST", "/api/rooms/general/read/"),
];

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("method")
}

fn body_for(method: &Method) -> Option<Value> {
    (*method != Method::GET && *method != Method::DELETE)
        .then(|| json!({"content": "hi", "seq": 1, "refresh": "x"}))
}

backend_test!(
    async fn a_request_without_authorization_is_refused_with_not_authenticated_and_a_bearer_challenge(app) {
        let alex = app.user("alex").await;
        for (name, path) in AUTHENTICATED_ROUTES {
            let m = method(name);
            let r = app.request(m.clone(), path, None, body_for(&m)).await;
            assert_bearer_challenge(&r);
            assert_error(r, StatusCode::UNAUTHORIZED, "not_authenticated").await;
        }
        // Nothing happened: no room was created or joined, alex's session is intact.
        assert_eq!(room_names(&app, &alex.access).await, Vec::<String>::new());
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

backend_test!(
    async fn an_authorization_header_of_another_scheme_is_refused(app) {
        let alex = app.user("alex").await;
        for value in ["Basic YWxleDpwYXNzd29yZDEyMw==", "Token abc", "Digest x", &alex.access, &format!("JWT {}", alex.access)] {
            let r = get_with_authorization(&app, "/api/users/me/", HeaderValue::from_str(value).expect("header")).await;
            assert_bearer_challenge(&r);
            let body = json_of(r, StatusCode::UNAUTHORIZED).await;
            assert!(["not_authenticated", "token_invalid"].contains(&body["code"].as_str().unwrap_or("")), "{value}: {body}");
        }
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

backend_test!(
    async fn a_garbage_bearer_token_is_refused_with_token_invalid(app) {
        let alex = app.user("alex").await;
        let long = "a".repeat(4000);
        for token in ["garbage", "a.b.c", "...", "Bearer", "eyJhbGciOiJIUzI1NiJ9.e30.", &long, &format!("{}x", alex.access)] {
            let r = get_with_authorization(&app, "/api/users/me/", HeaderValue::from_str(&format!("Bearer {token}")).expect("header")).await;
            assert_bearer_challenge(&r);
            assert_error(r, StatusCode::UNAUTHORIZED, "token_invalid").await;
        }
        // An empty token and bytes that are not text.
        for raw in [&b"Bearer "[..], b"Bearer    ", b"Bearer \xff\xfe"] {
            let r = get_with_authorization(&app, "/api/users/me/", HeaderValue::from_bytes(raw).expect("header")).await;
            assert_bearer_challenge(&r);
            let body = json_of(r, StatusCode::UNAUTHORIZED).await;
            assert!(["not_authenticated", "token_invalid"].contains(&body["code"].as_str().unwrap_or("")), "{body}");
        }
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

/// `token` with the first characters of its signature changed.
fn with_flipped_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let flipped: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 6 { if c == 'A' { 'B' } else { 'A' } } else { c })
        .collect();
    assert_ne!(flipped, signature);
    format!("{signed}.{flipped}")
}

backend_test!(
    async fn a_token_with_a_tampered_signature_is_refused_with_token_invalid(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let r = app.get("/api/users/me/", &with_flipped_signature(&alex.access)).await;
        assert_bearer_challenge(&r);
        assert_error(r, StatusCode::UNAUTHORIZED, "token_invalid").await;
        // Bob's claims under alex's signature.
        let alex_parts: Vec<&str> = alex.access.split('.').collect();
        let bob_parts: Vec<&str> = bob.access.split('.').collect();
        let forged = format!("{}.{}.{}", alex_parts[0], bob_parts[1], alex_parts[2]);
        assert_error(app.get("/api/users/me/", &forged).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
        // The same claims, unsigned (`alg: none`).
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", alex_parts[1]);
        assert_error(app.get("/api/users/me/", &unsigned).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
        // A refresh token with a flipped signature refreshes nothing.
        let r = app.post("/api/login/refresh/", None, json!({"refresh": with_flipped_signature(&alex.refresh)})).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_invalid").await;
        // The genuine tokens still work.
        assert_eq!(me(&app, &alex).await["username"], "alex");
        assert_eq!(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn a_token_signed_by_another_server_with_another_secret_is_refused_with_token_invalid(app) {
        let other = spawn_app(app.backend).await;
        let stranger = other.user("alex").await;
        let alex = app.user("alex").await;
        assert_error(app.get("/api/users/me/", &stranger.access).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
        let r = app.post("/api/login/refresh/", None, json!({"refresh": stranger.refresh})).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_invalid").await;
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

backend_test!(
    async fn an_access_token_after_logout_is_refused_with_session_revoked(app) {
        let alex = app.user("alex").await;
        assert_eq!(app.post("/api/users/logout/", Some(&alex.access), json!({})).await.status(), StatusCode::NO_CONTENT);
        for (name, path) in AUTHENTICATED_ROUTES {
            let m = method(name);
            let r = app.request(m.clone(), path, Some(&alex.access), body_for(&m)).await;
            assert_bearer_challenge(&r);
            assert_error(r, StatusCode::UNAUTHORIZED, "session_revoked").await;
        }
        // The revoked token created no room on its way.
        let again = json_of(app.login(&alex.email, &alex.password).await, StatusCode::OK).await;
        assert_eq!(room_names(&app, again["access"].as_str().expect("access")).await, Vec::<String>::new());
    }
);

backend_test!(
    async fn refresh_without_a_refresh_token_is_rejected_with_validation_failed(app) {
        let alex = app.user("alex").await;
        for path in ["/api/login/refresh/", "/api/users/login/refresh"] {
            assert_invalid(app.post(path, None, json!({})).await, &["refresh"]).await;
            assert_invalid(app.post(path, None, json!({"refresh": null})).await, &["refresh"]).await;
            assert_invalid(app.post(path, None, json!({"refresh": 42})).await, &["refresh"]).await;
            assert_invalid(app.post(path, None, json!({"access": alex.access})).await, &["refresh"]).await;
        }
        // The real refresh token was not consumed.
        assert_eq!(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn refresh_with_a_garbage_token_is_refused_with_token_invalid(app) {
        let alex = app.user("alex").await;
        for garbage in ["garbage", "", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.abc"] {
            let r = app.post("/api/login/refresh/", None, json!({"refresh": garbage})).await;
            assert_bearer_challenge(&r);
            let body = json_of(r, StatusCode::UNAUTHORIZED).await;
            assert_eq!(body["code"], "token_invalid", "{garbage:?}: {body}");
        }
        assert_eq!(app.post("/api/users/login/refresh/", None, json!({"refresh": alex.refresh})).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn logout_with_a_bad_body_ends_no_session(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let r = send_raw(&app, Method::POST, "/api/users/logout/", Some(&alex.access), Some("text/plain"), "bye").await;
        assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        let r = send_json_text(&app, Method::POST, "/api/users/logout/", Some(&alex.access), "{").await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
        let r = send_json_text(&app, Method::POST, "/api/users/logout/", Some(&alex.access), "[]").await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_json").await;
        assert_invalid(app.post("/api/users/logout/", Some(&alex.access), json!({"refresh": 42})).await, &["refresh"]).await;
        let r = app.post("/api/users/logout/", Some(&alex.access), json!({"refresh": "garbage"})).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_invalid").await;
        // Somebody else's refresh token ends neither session.
        let r = app.post("/api/users/logout/", Some(&alex.access), json!({"refresh": bob.refresh})).await;
        assert_error(r, StatusCode::UNAUTHORIZED, "token_invalid").await;
        assert_eq!(me(&app, &alex).await["username"], "alex");
        assert_eq!(me(&app, &bob).await["username"], "bob");
        assert_eq!(app.post("/api/login/refresh/", None, json!({"refresh": bob.refresh})).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn changing_the_password_with_bad_input_changes_nothing(app) {
        let alex = app.user("alex").await;
        let path = "/api/users/me/password/";
        assert_invalid(app.post(path, Some(&alex.access), json!({})).await, &["old_password", "new_password"]).await;
        assert_invalid(app.post(path, Some(&alex.access), json!({"old_password": "password123"})).await, &["new_password"]).await;
        let r = app.post(path, Some(&alex.access), json!({"old_password": "password123", "new_password": "p".repeat(73)})).await;
        assert_invalid(r, &["new_password"]).await;
        let r = app.post(path, Some(&alex.access), json!({"old_password": "password123", "new_password": "1234567"})).await;
        assert_invalid(r, &["new_password"]).await;
        let r = app.post(path, Some(&alex.access), json!({"old_password": 12_345_678, "new_password": ["brand-new-pass"]})).await;
        assert_invalid(r, &["old_password", "new_password"]).await;
        let r = app.post(path, Some(&alex.access), json!({"old_password": "password123x", "new_password": "brand-new-pass"})).await;
        assert_invalid(r, &["old_password"]).await;
        assert_eq!(app.login(&alex.email, "password123").await.status(), StatusCode::OK);
        assert_error(app.login(&alex.email, "brand-new-pass").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

// ---------------------------------------------------------------------------------------
// User ids and accounts
// ---------------------------------------------------------------------------------------

backend_test!(
    async fn a_malformed_user_id_is_not_found(app) {
        let alex = app.user("alex").await;
        let before = me(&app, &alex).await;
        for id in ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g", "%20", "..", &format!("{}0", alex.id)] {
            let path = format!("/api/users/user/{id}");
            assert_error(app.get(&path, &alex.access).await, StatusCode::NOT_FOUND, "not_found").await;
            let body = json!({"email": "new@example.com", "username": "newname"});
            let r = app.request(Method::PUT, &path, Some(&alex.access), Some(body.clone())).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.request(Method::PATCH, &path, Some(&alex.access), Some(body)).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.request(Method::DELETE, &path, Some(&alex.access), None).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        }
        assert_eq!(me(&app, &alex).await, before);
    }
);

backend_test!(
    async fn an_unknown_user_id_is_not_found(app) {
        let alex = app.user("alex").await;
        let before = me(&app, &alex).await;
        let path = format!("/api/users/user/{}", uuid::Uuid::new_v4());
        assert_error(app.get(&path, &alex.access).await, StatusCode::NOT_FOUND, "not_found").await;
        let body = json!({"email": "new@example.com", "username": "newname"});
        let r = app.request(Method::PUT, &path, Some(&alex.access), Some(body.clone())).await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app.request(Method::PATCH, &path, Some(&alex.access), Some(body)).await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        assert_error(app.request(Method::DELETE, &path, Some(&alex.access), None).await, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(me(&app, &alex).await, before);
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn changing_or_deleting_another_users_account_is_forbidden_and_changes_nothing(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let before = user_by_id(&app, &alex.access, &bob.id).await;
        let path = format!("/api/users/user/{}/", bob.id);
        let r = app.request(Method::PUT, &path, Some(&alex.access), Some(json!({"email": "x@example.com", "username": "hacked"}))).await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app.request(Method::PATCH, &path, Some(&alex.access), Some(json!({"username": "hacked"}))).await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app.request(Method::PATCH, &path, Some(&alex.access), Some(json!({"email": "x@example.com"}))).await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app.request(Method::PATCH, &path, Some(&alex.access), Some(json!({}))).await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        assert_error(app.request(Method::DELETE, &path, Some(&alex.access), None).await, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(user_by_id(&app, &alex.access, &bob.id).await, before);
        assert_eq!(app.user_count(&alex.access).await, 2);
        assert_eq!(me(&app, &bob).await, before);
        assert_eq!(app.login(&bob.email, &bob.password).await.status(), StatusCode::OK);
        assert_error(app.login("x@example.com", &bob.password).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(me(&app, &alex).await["username"], "alex");
    }
);

backend_test!(
    async fn put_with_only_one_field_names_the_missing_one_and_changes_nothing(app) {
        let alex = app.user("alex").await;
        let before = me(&app, &alex).await;
        for path in ["/api/users/user/update/".to_owned(), format!("/api/users/user/{}", alex.id)] {
            let r = app.request(Method::PUT, &path, Some(&alex.access), Some(json!({"email": "new@example.com"}))).await;
            assert_invalid(r, &["username"]).await;
            let r = app.request(Method::PUT, &path, Some(&alex.access), Some(json!({"username": "newname"}))).await;
            assert_invalid(r, &["email"]).await;
            let r = app.request(Method::PUT, &path, Some(&alex.access), Some(json!({}))).await;
            assert_invalid(r, &["email", "username"]).await;
        }
        assert_eq!(me(&app, &alex).await, before);
        assert_error(app.login("new@example.com", "password123").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
);

backend_test!(
    async fn patch_with_an_invalid_email_or_username_changes_nothing(app) {
        let alex = app.user("alex").await;
        let before = me(&app, &alex).await;
        for path in ["/api/users/user/update".to_owned(), format!("/api/users/user/{}/", alex.id)] {
            for method in [Method::PATCH, Method::PUT] {
                let r = app.request(method.clone(), &path, Some(&alex.access), Some(json!({"email": "not-an-email", "username": "alex"}))).await;
                assert_invalid(r, &["email"]).await;
                let r = app.request(method.clone(), &path, Some(&alex.access), Some(json!({"email": "alex@example.com", "username": "a b"}))).await;
                assert_invalid(r, &["username"]).await;
                let r = app.request(method.clone(), &path, Some(&alex.access), Some(json!({"email": 5, "username": "x"}))).await;
                assert_invalid(r, &["email", "username"]).await;
            }
            // A valid username next to an invalid email is not applied either.
            let r = app.request(Method::PATCH, &path, Some(&alex.access), Some(json!({"email": &email_of_len(255), "username": "newname"}))).await;
            assert_invalid(r, &["email"]).await;
        }
        assert_eq!(me(&app, &alex).await, before);
    }
);

// ---------------------------------------------------------------------------------------
// Rooms and messages
// ---------------------------------------------------------------------------------------

backend_test!(
    async fn every_room_route_answers_not_found_for_an_unknown_room(app) {
        let alex = app.user("alex").await;
        for room in ["nowhere", "bad%20name", "a!b", &"x".repeat(65)] {
            let r = app.get(&format!("/api/rooms/{room}/"), &alex.access).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.get(&format!("/api/rooms/{room}/messages/"), &alex.access).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.post(&format!("/api/rooms/{room}/messages/"), Some(&alex.access), json!({"content": "hi"})).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.post(&format!("/api/rooms/{room}/read/"), Some(&alex.access), json!({"seq": 1})).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            let r = app.request(Method::POST, &format!("/api/rooms/{room}/leave/"), Some(&alex.access), None).await;
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        }
        // None of these created a room.
        assert_eq!(room_names(&app, &alex.access).await, Vec::<String>::new());
    }
);

backend_test!(
    async fn joining_with_an_invalid_room_name_is_rejected_and_creates_no_room(app) {
        let alex = app.user("alex").await;
        for room in ["bad%20name", "a!b", "caf%C3%A9%21", "%F0%9F%98%80", &"x".repeat(65), &"é".repeat(65)] {
            let r = app.request(Method::POST, &format!("/api/room/{room}/"), Some(&alex.access), None).await;
            assert_invalid(r, &["room_name"]).await;
        }
        assert_eq!(room_names(&app, &alex.access).await, Vec::<String>::new());
        let joined = json_of(app.get("/api/rooms/?joined=true", &alex.access).await, StatusCode::OK).await;
        assert_eq!(joined, json!([]));
        // The longest name is accepted.
        let longest = "x".repeat(64);
        let r = app.request(Method::POST, &format!("/api/room/{longest}/"), Some(&alex.access), None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(room_names(&app, &alex.access).await, [longest]);
    }
);

backend_test!(
    async fn posting_without_membership_is_refused_with_not_a_member_and_stores_nothing(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "first").await;
        let r = app.post("/api/rooms/general/messages/", Some(&bob.access), json!({"content": "let me in", "client_msg_id": "b-1"})).await;
        assert_error(r, StatusCode::FORBIDDEN, "not_a_member").await;
        let room = room_of(&app, &bob, "general").await;
        assert_eq!((room["last_seq"].as_i64(), room["joined"].as_bool()), (Some(1), Some(false)));
        assert_eq!(room["participants"], json!(["alex"]));
        let history = app.history(&bob, "general", "").await;
        assert_eq!(history["messages"].as_array().expect("messages").len(), 1);
        assert_eq!(history["messages"][0]["content"], "first");
        // The refusal reserved no `client_msg_id`: after joining, the same key stores a new message.
        app.join(&bob, "general").await;
        let r = app.post("/api/rooms/general/messages/", Some(&bob.access), json!({"content": "hello", "client_msg_id": "b-1"})).await;
        let m = json_of(r, StatusCode::CREATED).await;
        assert_eq!((m["seq"].as_i64(), m["content"].as_str()), (Some(2), Some("hello")));
    }
);

backend_test!(
    async fn posting_after_leaving_is_refused_with_not_a_member(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "bye").await;
        let r = app.request(Method::POST, "/api/rooms/general/leave/", Some(&alex.access), None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = app.post("/api/rooms/general/messages/", Some(&alex.access), json!({"content": "still here?"})).await;
        assert_error(r, StatusCode::FORBIDDEN, "not_a_member").await;
        let r = app.post("/api/rooms/general/read/", Some(&alex.access), json!({"seq": 1})).await;
        assert_error(r, StatusCode::FORBIDDEN, "not_a_member").await;
        assert_eq!(message_count(&app, &alex, "general").await, 1);
        let room = room_of(&app, &alex, "general").await;
        assert_eq!((room["last_seq"].as_i64(), room["joined"].as_bool(), room["unread"].as_i64()), (Some(1), Some(false), Some(0)));
    }
);

backend_test!(
    async fn moving_the_read_marker_without_membership_is_refused_with_not_a_member(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "one").await;
        app.send(&alex, "general", "two").await;
        let r = app.post("/api/rooms/general/read/", Some(&bob.access), json!({"seq": 2})).await;
        assert_error(r, StatusCode::FORBIDDEN, "not_a_member").await;
        let room = room_of(&app, &bob, "general").await;
        assert_eq!((room["joined"].as_bool(), room["unread"].as_i64()), (Some(false), Some(0)));
        assert_eq!(room["participants"], json!(["alex"]));
        // The refused marker was not kept: joining afterwards starts from whatever joining
        // gives, the same as for someone who never tried.
        let carl = app.user("carl").await;
        let bob_join = app.join(&bob, "general").await;
        let carl_join = app.join(&carl, "general").await;
        assert_eq!(bob_join["room"]["unread"], carl_join["room"]["unread"]);
    }
);

backend_test!(
    async fn invalid_message_content_is_rejected_and_stores_nothing(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let path = "/api/rooms/general/messages/";
        for body in [
            json!({"content": ""}),
            json!({"content": "   "}),
            json!({"content": " \n\t\r "}),
            json!({"content": "\u{3000}\u{2003}"}),
            json!({"content": "x".repeat(4001)}),
            json!({"content": "é".repeat(4001)}),
            json!({}),
            json!({"content": null}),
            json!({"content": 42}),
            json!({"content": ["hi"]}),
            json!({"content": {"text": "hi"}}),
            json!({"message": "hi"}),
        ] {
            let r = app.post(path, Some(&alex.access), body.clone()).await;
            let got = assert_invalid(r, &["content"]).await;
            assert!(got["fields"]["content"].is_array(), "{body}: {got}");
        }
        assert_eq!(message_count(&app, &alex, "general").await, 0);
        let room = room_of(&app, &alex, "general").await;
        assert_eq!(room["last_seq"], 0);
        // The limits themselves are accepted.
        let m = json_of(app.post(path, Some(&alex.access), json!({"content": "é".repeat(4000)})).await, StatusCode::CREATED).await;
        assert_eq!(m["seq"], 1);
        let m = json_of(app.post(path, Some(&alex.access), json!({"content": "x"})).await, StatusCode::CREATED).await;
        assert_eq!(m["seq"], 2);
    }
);

backend_test!(
    async fn a_bad_client_msg_id_is_rejected_and_stores_nothing(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let path = "/api/rooms/general/messages/";
        for id in [json!("c".repeat(65)), json!(""), json!("has space"), json!("é"), json!(7), json!(["c-1"])] {
            let r = app.post(path, Some(&alex.access), json!({"content": "hi", "client_msg_id": id})).await;
            assert_invalid(r, &["client_msg_id"]).await;
        }
        // Both fields wrong: both named.
        let r = app.post(path, Some(&alex.access), json!({"content": "", "client_msg_id": "c".repeat(65)})).await;
        assert_invalid(r, &["content", "client_msg_id"]).await;
        assert_eq!(message_count(&app, &alex, "general").await, 0);
        // 64 characters is the limit, and null means none.
        let r = app.post(path, Some(&alex.access), json!({"content": "hi", "client_msg_id": "c".repeat(64)})).await;
        assert_eq!(json_of(r, StatusCode::CREATED).await["seq"], 1);
        let r = app.post(path, Some(&alex.access), json!({"content": "hi", "client_msg_id": null})).await;
        assert_eq!(json_of(r, StatusCode::CREATED).await["client_msg_id"], Value::Null);
    }
);

backend_test!(
    async fn a_read_marker_with_a_missing_negative_or_non_integer_seq_is_rejected_and_unread_is_unchanged(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.join(&bob, "general").await;
        for text in ["one", "two", "three"] {
            app.send(&bob, "general", text).await;
        }
        app.post("/api/rooms/general/read/", Some(&alex.access), json!({"seq": 1})).await;
        let before = room_of(&app, &alex, "general").await["unread"].clone();
        assert_eq!(before, 2);
        for body in [
            json!({}),
            json!({"seq": null}),
            json!({"seq": -1}),
            json!({"seq": i64::MIN}),
            json!({"seq": "3"}),
            json!({"seq": "abc"}),
            json!({"seq": 2.5}),
            json!({"seq": 1e300}),
            json!({"seq": u64::MAX}),
            json!({"seq": true}),
            json!({"seq": [3]}),
        ] {
            let r = app.post("/api/rooms/general/read/", Some(&alex.access), body).await;
            assert_invalid(r, &["seq"]).await;
        }
        assert_eq!(room_of(&app, &alex, "general").await["unread"], before);
    }
);

backend_test!(
    async fn history_with_bad_query_parameters_is_rejected_with_validation_failed(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "hi").await;
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=-1", "limit"),
            ("limit=abc", "limit"),
            ("limit=", "limit"),
            ("limit=1.5", "limit"),
            ("limit=99999999999999999999", "limit"),
            ("before=-1", "before"),
            ("before=abc", "before"),
            ("after=-1", "after"),
            ("after=x", "after"),
        ] {
            let r = app.get(&format!("/api/rooms/general/messages/?{query}"), &alex.access).await;
            assert_invalid(r, &[field]).await;
        }
        let r = app.get("/api/rooms/general/messages/?before=5&after=1", &alex.access).await;
        assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
        // The limits themselves are accepted.
        assert_eq!(app.history(&alex, "general", "?limit=1").await["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(app.history(&alex, "general", "?limit=200&before=0").await["messages"], json!([]));
    }
);

backend_test!(
    async fn room_list_with_bad_query_parameters_is_rejected_with_validation_failed(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=abc", "limit"),
            ("offset=-1", "offset"),
            ("offset=x", "offset"),
            ("messages=201", "messages"),
            ("messages=-1", "messages"),
            ("messages=many", "messages"),
            ("joined=maybe", "joined"),
            ("joined=", "joined"),
            ("joined=yes", "joined"),
        ] {
            let r = app.get(&format!("/api/rooms/?{query}"), &alex.access).await;
            assert_invalid(r, &[field]).await;
        }
        // The limits themselves are accepted.
        for query in ["limit=1", "limit=200", "messages=0", "messages=200", "joined=true", "joined=false"] {
            assert_eq!(app.get(&format!("/api/rooms/?{query}"), &alex.access).await.status(), StatusCode::OK, "{query}");
        }
    }
);

backend_test!(
    async fn user_list_with_bad_query_parameters_is_rejected_with_validation_failed(app) {
        let alex = app.user("alex").await;
        for (query, field) in [
            ("limit=500", "limit"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("offset=first", "offset"),
        ] {
            let r = app.get(&format!("/api/users/list?{query}"), &alex.access).await;
            assert_invalid(r, &[field]).await;
        }
        let r = app.get(&format!("/api/users/list/?search={}", "a".repeat(65)), &alex.access).await;
        assert_invalid(r, &["search"]).await;
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

backend_test!(
    async fn a_null_character_in_a_text_field_is_rejected_and_stores_nothing(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        for content in ["a\u{0}b", "\u{0}"] {
            let r = app.post("/api/rooms/general/messages/", Some(&alex.access), json!({"content": content})).await;
            assert_invalid(r, &["content"]).await;
        }
        let r = register_raw(&app, register_body("bob@example.com", "bob", "pass\u{0}word")).await;
        assert_invalid(r, &["password"]).await;
        let r = register_raw(&app, register_body("bob\u{0}@example.com", "bob\u{0}", "password123")).await;
        assert_invalid(r, &["email", "username"]).await;
        assert_invalid(app.login("alex@example.com\u{0}", "password123").await, &["email"]).await;
        let r = app.get("/api/users/list?search=al%00", &alex.access).await;
        assert_invalid(r, &["search"]).await;
        assert_eq!(message_count(&app, &alex, "general").await, 0);
        assert_eq!(app.user_count(&alex.access).await, 1);
    }
);

// ---------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------

backend_test!(
    async fn an_unknown_path_is_a_json_not_found(app) {
        let alex = app.user("alex").await;
        for path in ["/api/nope", "/nope/", "/api/", "/api/users/", "/api/users/user/", "/api/rooms/general/nope/", "/api/room/", "/index.html", "/api/users/me/extra"] {
            let r = app.request(Method::GET, path, None, None).await;
            assert_eq!(
                r.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{path}"
            );
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
            assert_error(app.get(path, &alex.access).await, StatusCode::NOT_FOUND, "not_found").await;
            assert_error(app.post(path, Some(&alex.access), json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
);

backend_test!(
    async fn a_path_with_broken_percent_encoding_is_a_json_error(app) {
        let alex = app.user("alex").await;
        for path in ["/api/rooms/%FF/", "/api/rooms/%FF/messages/", "/api/users/user/%FF", "/api/rooms/%C3/messages/"] {
            let r = app.get(path, &alex.access).await;
            assert!(r.status().is_client_error(), "{path}: {}", r.status());
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        }
        let r = app.post("/api/rooms/%C3/read/", Some(&alex.access), json!({"seq": 1})).await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = app.request(Method::POST, "/api/room/%FF/", Some(&alex.access), None).await;
        assert!(r.status().is_client_error(), "{}", r.status());
        let body: Value = r.json().await.expect("JSON");
        assert!(body["code"].is_string(), "{body}");
        assert_eq!(room_names(&app, &alex.access).await, Vec::<String>::new());
    }
);

backend_test!(
    async fn a_wrong_method_on_an_existing_path_is_a_json_method_not_allowed(app) {
        let alex = app.user("alex").await;
        let user = format!("/api/users/user/{}", alex.id);
        for (name, path) in [
            ("DELETE", "/api/rooms/"),
            ("POST", "/api/rooms"),
            ("GET", "/api/users/register/"),
            ("PUT", "/api/users/register"),
            ("GET", "/api/users/login/"),
            ("GET", "/api/login/refresh/"),
            ("GET", "/api/users/logout/"),
            ("POST", "/api/users/me/"),
            ("DELETE", "/api/users/me"),
            ("GET", "/api/users/me/password/"),
            ("POST", "/api/users/list/"),
            ("GET", "/api/users/user/update/"),
            ("POST", &user),
            ("GET", "/api/room/general/"),
            ("DELETE", "/api/rooms/general/"),
            ("GET", "/api/rooms/general/leave/"),
            ("DELETE", "/api/rooms/general/messages/"),
            ("GET", "/api/rooms/general/read/"),
        ] {
            let m = method(name);
            let r = app.request(m.clone(), path, Some(&alex.access), body_for(&m)).await;
            assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        }
        // Nothing was touched.
        assert_eq!(me(&app, &alex).await["username"], "alex");
        assert_eq!(room_names(&app, &alex.access).await, Vec::<String>::new());
    }
);

backend_test!(
    async fn an_invalid_update_of_another_users_account_is_forbidden_not_invalid(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let path = format!("/api/users/user/{}", bob.id);
        let r = app.request(reqwest::Method::PUT, &path, Some(&alex.access), Some(json!({"email": "nope"}))).await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        let unknown = format!("/api/users/user/{}", uuid::Uuid::new_v4());
        let r = app.request(reqwest::Method::PATCH, &unknown, Some(&alex.access), Some(json!({"email": "nope"}))).await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(me(&app, &bob).await["email"], "bob@example.com", "nothing changed");
    }
);

backend_test!(
    async fn a_405_names_the_allowed_methods_and_head_answers_where_get_does(app) {
        let alex = app.user("alex").await;
        let r = app.request(reqwest::Method::DELETE, "/api/rooms/general/messages/", Some(&alex.access), None).await;
        assert_eq!(r.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, POST, HEAD"));
        assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        let r = app.request(reqwest::Method::GET, "/api/users/login/", None, None).await;
        assert_eq!(r.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
        let r = app.request(reqwest::Method::HEAD, "/livez", None, None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.bytes().await.expect("body").is_empty(), "HEAD has no body");
        let r = app.request(reqwest::Method::HEAD, "/api/users/me/", None, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = app.request(reqwest::Method::HEAD, "/api/users/me/", Some(&alex.access), None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn every_route_answers_with_and_without_a_trailing_slash(app) {
        let alex = app.user("alex").await;
        for path in ["/livez", "/livez/", "/readyz", "/readyz/"] {
            assert_eq!(app.request(Method::GET, path, None, None).await.status(), StatusCode::OK, "{path}");
        }
        let created = app.request(Method::POST, "/api/room/general", Some(&alex.access), None).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let again = app.request(Method::POST, "/api/room/general/", Some(&alex.access), None).await;
        assert_eq!(again.status(), StatusCode::OK);
        let user = format!("/api/users/user/{}", alex.id);
        for path in ["/api/users/me", "/api/users/list", "/api/rooms", "/api/rooms/general", "/api/rooms/general/messages", &user] {
            let bare = json_of(app.get(path, &alex.access).await, StatusCode::OK).await;
            let slashed = json_of(app.get(&format!("{path}/"), &alex.access).await, StatusCode::OK).await;
            assert_eq!(bare, slashed, "{path}");
        }
        for path in ["/api/rooms/general/messages", "/api/rooms/general/messages/"] {
            let r = app.post(path, Some(&alex.access), json!({"content": path})).await;
            assert_eq!(r.status(), StatusCode::CREATED, "{path}");
        }
        for path in ["/api/rooms/general/read", "/api/rooms/general/read/"] {
            assert_eq!(app.post(path, Some(&alex.access), json!({"seq": 2})).await.status(), StatusCode::NO_CONTENT, "{path}");
        }
        for path in ["/api/users/user/update", "/api/users/user/update/"] {
            let r = app.request(Method::PATCH, path, Some(&alex.access), Some(json!({"username": "alex"}))).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
        for path in ["/api/users/login", "/api/users/login/"] {
            assert_eq!(app.post(path, None, json!({"email": alex.email, "password": alex.password})).await.status(), StatusCode::OK, "{path}");
        }
        let mut refresh = alex.refresh.clone();
        for path in ["/api/login/refresh", "/api/login/refresh/", "/api/users/login/refresh", "/api/users/login/refresh/"] {
            let pair = json_of(app.post(path, None, json!({"refresh": refresh})).await, StatusCode::OK).await;
            refresh = pair["refresh"].as_str().expect("refresh").to_owned();
        }
        for path in ["/api/rooms/general/leave", "/api/rooms/general/leave/"] {
            let r = app.request(Method::POST, path, Some(&alex.access), None).await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT, "{path}");
        }
        for (path, name) in [("/api/users/register", "bare"), ("/api/users/register/", "slash")] {
            let r = app.post(path, None, register_body(&format!("{name}@example.com"), name, "password123")).await;
            assert_eq!(r.status(), StatusCode::CREATED, "{path}");
        }
        assert_eq!(app.user_count(&alex.access).await, 3);
    }
);

// ---------------------------------------------------------------------------------------
// No input gives a 500
// ---------------------------------------------------------------------------------------

/// Bodies a careless or hostile client might send, as raw text.
fn odd_bodies(fields: &[&str]) -> Vec<String> {
    let with_all = |v: &str| {
        let pairs: Vec<String> = fields.iter().map(|f| format!("\"{f}\": {v}")).collect();
        format!("{{{}}}", pairs.join(", "))
    };
    let mut bodies: Vec<String> = [
        "1e400",
        "-1e400",
        "123456789012345678901234567890",
        "-0",
        "18446744073709551616",
        "null",
        "true",
        "[]",
        "{}",
        r#"{"nested": {"deeper": [1, {"x": null}]}}"#,
        r#""\u0000""#,
        r#""a\u0000b@example.com""#,
        r#""\ud800""#,
        r#""😀😀😀😀😀😀😀😀""#,
        r#""алекс@пример.рф""#,
        r#""\u202eevil\u200b@example.com""#,
        r#""' OR 1=1 --""#,
        r#""%_%""#,
    ]
    .iter()
    .map(|v| with_all(v))
    .collect();
    bodies.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    bodies.push(format!("{{\"{}\": {}}}", fields[0], "{\"a\":".repeat(1000) + "1" + &"}".repeat(1000)));
    bodies.push(with_all(&format!("\"{}\"", "x".repeat(20_000))));
    bodies
}

backend_test!(
    async fn odd_register_bodies_never_cause_a_server_error(app) {
        let alex = app.user("alex").await;
        for body in odd_bodies(&["email", "username", "password"]) {
            let r = send_json_text(&app, Method::POST, "/api/users/register/", None, body.clone()).await;
            assert_no_server_error(r, &body.chars().take(80).collect::<String>()).await;
        }
        // Invalid UTF-8 and odd but valid values.
        let r = send_json_text(&app, Method::POST, "/api/users/register/", None, b"{\"email\": \"\xff\xfe\"}".to_vec()).await;
        assert_no_server_error(r, "invalid UTF-8").await;
        let r = register_raw(&app, register_body("nul@example.com", "nul", "pass\u{0}word")).await;
        assert_no_server_error(r, "NUL in password").await;
        let r = register_raw(&app, json!({"email": "x@example.com", "username": "xyz", "password": "password123", "is_admin": true, "id": 1})).await;
        assert_no_server_error(r, "extra fields").await;
        // The server still works, and the odd input left the existing account alone.
        assert_eq!(me(&app, &alex).await["username"], "alex");
        assert_eq!(app.login(&alex.email, &alex.password).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn odd_login_bodies_never_cause_a_server_error(app) {
        let alex = app.user("alex").await;
        for body in odd_bodies(&["email", "password"]) {
            let r = send_json_text(&app, Method::POST, "/api/users/login/", None, body.clone()).await;
            assert_no_server_error(r, &body.chars().take(80).collect::<String>()).await;
        }
        let r = app.login("alex@example.com\u{0}", "password123").await;
        assert_no_server_error(r, "NUL in email").await;
        let r = app.login("alex@example.com", "password123\u{0}").await;
        assert_no_server_error(r, "NUL in password").await;
        let r = app.post("/api/login/refresh/", None, json!({"refresh": "\u{0}"})).await;
        assert_no_server_error(r, "NUL refresh").await;
        assert_eq!(app.login(&alex.email, &alex.password).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn odd_message_bodies_never_cause_a_server_error(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let path = "/api/rooms/general/messages/";
        for body in odd_bodies(&["content", "client_msg_id"]) {
            let r = send_json_text(&app, Method::POST, path, Some(&alex.access), body.clone()).await;
            assert_no_server_error(r, &body.chars().take(80).collect::<String>()).await;
        }
        for body in odd_bodies(&["seq"]) {
            let r = send_json_text(&app, Method::POST, "/api/rooms/general/read/", Some(&alex.access), body.clone()).await;
            assert_no_server_error(r, &body.chars().take(80).collect::<String>()).await;
        }
        for content in ["a\u{0}b", "\u{0}", "😀".repeat(4000).as_str(), "'); DROP TABLE messages; --", "\u{202e}\u{200b}x", "<script>alert(1)</script>"] {
            let r = app.post(path, Some(&alex.access), json!({"content": content})).await;
            assert_no_server_error(r, "odd content").await;
        }
        let r = app.post("/api/rooms/general/read/", Some(&alex.access), json!({"seq": i64::MAX})).await;
        assert_no_server_error(r, "largest seq").await;
        // Whatever was stored reads back.
        let history = app.history(&alex, "general", "?limit=200").await;
        let messages = history["messages"].as_array().expect("messages");
        let seqs: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
        assert_eq!(seqs, (1..=i64::try_from(seqs.len()).expect("len")).collect::<Vec<_>>());
        assert_eq!(room_of(&app, &alex, "general").await["unread"], 0);
    }
);

backend_test!(
    async fn odd_query_strings_paths_and_headers_never_cause_a_server_error(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "hi").await;
        for path in [
            "/api/users/list?offset=9223372036854775807",
            "/api/users/list?offset=18446744073709551616",
            "/api/users/list?limit=99999999999999999999",
            "/api/users/list?search=%00",
            "/api/users/list?search=%25",
            "/api/users/list?search=%5C",
            "/api/users/list?search=%FF",
            "/api/users/list?search=%F0%9F%98%80",
            "/api/users/list?search=&limit=1",
            "/api/users/list?limit=1&limit=2",
            "/api/users/list?%=%",
            "/api/rooms/?offset=9223372036854775807",
            "/api/rooms/?messages=200&limit=200&offset=0&joined=1",
            "/api/rooms/?joined=%00",
            "/api/rooms/general/messages/?before=9223372036854775807",
            "/api/rooms/general/messages/?after=9223372036854775807",
            "/api/rooms/general/messages/?after=9223372036854775808",
            "/api/rooms/general/messages/?before=0&limit=200",
            "/api/rooms/general/messages/?limit=%00",
            "/api/rooms/%00/",
            "/api/rooms/%2F/messages/",
            "/api/rooms/..%2F..%2Fetc/",
            "/api/users/user/%00",
            "/api/rooms/general/messages/?before=1&before=2",
        ] {
            let r = app.get(path, &alex.access).await;
            assert_no_server_error(r, path).await;
        }
        for path in ["/api/room/%00/", "/api/room/%2F/", "/api/room/%FF%FE/"] {
            let r = app.request(Method::POST, path, Some(&alex.access), None).await;
            assert_no_server_error(r, path).await;
        }
        let r = app.client.get(app.url("/api/users/me/")).header("X-Request-Id", "x".repeat(5000)).bearer_auth(&alex.access).send().await.expect("sent");
        assert_no_server_error(r, "long request id").await;
        let r = app.client.post(app.url("/api/users/login/")).header(CONTENT_TYPE, "application/json; charset=latin1; x=\"").body("{}").send().await.expect("sent");
        assert_no_server_error(r, "odd content type").await;
        let r = app.client.post(app.url("/api/users/login/")).header(CONTENT_TYPE, "\u{7f}").body("{}").send().await;
        if let Ok(r) = r {
            assert_no_server_error(r, "broken content type").await;
        }
        assert_eq!(message_count(&app, &alex, "general").await, 1);
        assert_eq!(room_names(&app, &alex.access).await, ["general"]);
    }
);
