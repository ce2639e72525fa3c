//! Accounts and sessions, as a client goes through them (SPEC §3 "Accounts").

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_test!(
    async fn register_creates_an_account_and_login_returns_tokens_and_the_user(app) {
        let r = app
            .post("/api/users/register/", None, json!({"email": "Alex@Gmail.com", "username": "alex", "password": "password123"}))
            .await;
        let body = json_of(r, StatusCode::CREATED).await;
        assert_eq!(body["Message"], "User created successfully!");
        assert_eq!(body["user"]["username"], "alex");
        assert_eq!(body["user"]["email"], "Alex@Gmail.com");
        assert!(uuid::Uuid::parse_str(body["user"]["id"].as_str().expect("id")).is_ok());
        let created = body["user"]["created_at"].as_str().expect("created_at");
        assert!(created.ends_with('Z') && created.len() == 24, "timestamp {created}");
        assert!(body["user"].get("password").is_none());

        // Login ignores the email's case.
        let login = json_of(app.login("alex@gmail.com", "password123").await, StatusCode::OK).await;
        assert_eq!(login["user"], body["user"]);
        let access = login["access"].as_str().expect("access");
        let me = json_of(app.get("/api/users/me/", access).await, StatusCode::OK).await;
        assert_eq!(me, body["user"]);
    }
);

backend_test!(
    async fn login_with_wrong_password_and_unknown_email_give_identical_bodies(app) {
        app.user("alex").await;
        let wrong = assert_error(app.login("alex@example.com", "password999").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let unknown = assert_error(app.login("nobody@example.com", "password123").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(wrong, unknown);
    }
);

backend_test!(
    async fn refresh_rotates_the_pair_and_a_reused_refresh_token_ends_the_session(app) {
        let alex = app.user("alex").await;
        let first = json_of(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await, StatusCode::OK).await;
        let (access2, refresh2) = (first["access"].as_str().expect("a"), first["refresh"].as_str().expect("r"));
        assert_ne!(refresh2, alex.refresh);
        assert_eq!(app.get("/api/users/me/", access2).await.status(), StatusCode::OK);

        // The other path works the same.
        let second = json_of(app.post("/api/users/login/refresh/", None, json!({"refresh": refresh2})).await, StatusCode::OK).await;
        let access3 = second["access"].as_str().expect("a").to_owned();

        // Presenting the retired first token again kills the whole session.
        assert_error(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
        assert_error(app.get("/api/users/me/", &access3).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
        let latest = second["refresh"].as_str().expect("r");
        assert_error(app.post("/api/login/refresh/", None, json!({"refresh": latest})).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
        // Another login still works.
        assert_eq!(app.login(&alex.email, &alex.password).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn an_access_token_is_not_a_refresh_token_nor_the_reverse(app) {
        let alex = app.user("alex").await;
        assert_error(app.post("/api/login/refresh/", None, json!({"refresh": alex.access})).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
        assert_error(app.get("/api/users/me/", &alex.refresh).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
        // Neither attempt harmed the session.
        assert_eq!(app.get("/api/users/me/", &alex.access).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn logout_revokes_the_session_and_its_refresh_token(app) {
        let alex = app.user("alex").await;
        let r = app.post("/api/users/logout/", Some(&alex.access), json!({"refresh": alex.refresh})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = app.get("/api/users/me/", &alex.access).await;
        assert_eq!(r.headers().get("www-authenticate").map(|v| v.to_str().ok()), Some(Some("Bearer")));
        assert_error(r, StatusCode::UNAUTHORIZED, "session_revoked").await;
        assert_error(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
);

backend_test!(
    async fn logout_without_a_body_works(app) {
        let alex = app.user("alex").await;
        let r = app.request(Method::POST, "/api/users/logout", Some(&alex.access), None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/users/me/", &alex.access).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
);

backend_test!(
    async fn changing_the_password_ends_other_sessions_and_keeps_this_one(app) {
        let alex = app.user("alex").await;
        let other = json_of(app.login(&alex.email, &alex.password).await, StatusCode::OK).await;
        let other_access = other["access"].as_str().expect("a");
        let r = app
            .post("/api/users/me/password/", Some(&alex.access), json!({"old_password": "password123", "new_password": "brand-new-pass"}))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.get("/api/users/me/", &alex.access).await.status(), StatusCode::OK);
        assert_error(app.get("/api/users/me/", other_access).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
        assert_error(app.login(&alex.email, "password123").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_eq!(app.login(&alex.email, "brand-new-pass").await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn a_wrong_old_password_changes_nothing(app) {
        let alex = app.user("alex").await;
        let r = app
            .post("/api/users/me/password/", Some(&alex.access), json!({"old_password": "not-my-password", "new_password": "brand-new-pass"}))
            .await;
        let body = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(body["fields"]["old_password"].is_array());
        assert_eq!(app.login(&alex.email, "password123").await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn users_are_listed_searched_and_paged(app) {
        let alex = app.user("alex").await;
        app.user("alice").await;
        app.user("bob").await;
        app.user("al_x").await;
        let all = json_of(app.get("/api/users/list", &alex.access).await, StatusCode::OK).await;
        let names: Vec<&str> = all.as_array().expect("array").iter().map(|u| u["username"].as_str().expect("name")).collect();
        assert_eq!(names, ["al_x", "alex", "alice", "bob"]);
        let found = json_of(app.get("/api/users/list/?search=AL", &alex.access).await, StatusCode::OK).await;
        assert_eq!(found.as_array().expect("array").len(), 3);
        // `_` is a literal, not a wildcard.
        let found = json_of(app.get("/api/users/list?search=al_", &alex.access).await, StatusCode::OK).await;
        assert_eq!(found.as_array().expect("array").len(), 1);
        let page = json_of(app.get("/api/users/list?limit=2&offset=1", &alex.access).await, StatusCode::OK).await;
        let names: Vec<&str> = page.as_array().expect("array").iter().map(|u| u["username"].as_str().expect("name")).collect();
        assert_eq!(names, ["alex", "alice"]);
    }
);

backend_test!(
    async fn a_user_is_read_by_id_and_updated_only_by_themselves(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let got = json_of(app.get(&format!("/api/users/user/{}", bob.id), &alex.access).await, StatusCode::OK).await;
        assert_eq!(got["username"], "bob");

        let r = app
            .request(Method::PUT, &format!("/api/users/user/{}", bob.id), Some(&alex.access), Some(json!({"email": "x@example.com", "username": "hacked"})))
            .await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        let r = app.request(Method::DELETE, &format!("/api/users/user/{}/", bob.id), Some(&alex.access), None).await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
        let still = json_of(app.get(&format!("/api/users/user/{}", bob.id), &alex.access).await, StatusCode::OK).await;
        assert_eq!(still, got);

        let r = app
            .request(Method::PUT, &format!("/api/users/user/{}", alex.id), Some(&alex.access), Some(json!({"email": "alex2@example.com", "username": "alex2"})))
            .await;
        let updated = json_of(r, StatusCode::OK).await;
        assert_eq!((updated["email"].as_str(), updated["username"].as_str()), (Some("alex2@example.com"), Some("alex2")));
        let r = app.request(Method::PATCH, "/api/users/user/update/", Some(&alex.access), Some(json!({"username": "alex3"}))).await;
        let patched = json_of(r, StatusCode::OK).await;
        assert_eq!((patched["email"].as_str(), patched["username"].as_str()), (Some("alex2@example.com"), Some("alex3")));
        let r = app
            .request(Method::PUT, "/api/users/user/update", Some(&alex.access), Some(json!({"email": "alex4@example.com", "username": "alex4"})))
            .await;
        assert_eq!(json_of(r, StatusCode::OK).await["username"], "alex4");
        assert_eq!(app.login("ALEX4@example.com", "password123").await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn updating_to_a_taken_name_or_email_in_another_case_conflicts(app) {
        let alex = app.user("alex").await;
        app.user("bob").await;
        let r = app.request(Method::PATCH, "/api/users/user/update", Some(&alex.access), Some(json!({"username": "BOB"}))).await;
        assert_error(r, StatusCode::CONFLICT, "username_taken").await;
        let r = app.request(Method::PATCH, "/api/users/user/update", Some(&alex.access), Some(json!({"email": "Bob@Example.com"}))).await;
        assert_error(r, StatusCode::CONFLICT, "email_taken").await;
        let me = json_of(app.get("/api/users/me", &alex.access).await, StatusCode::OK).await;
        assert_eq!((me["username"].as_str(), me["email"].as_str()), (Some("alex"), Some("alex@example.com")));
    }
);

backend_test!(
    async fn deleting_an_account_revokes_its_sessions_and_keeps_its_messages_without_sender(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.send(&alex, "general", "hello from alex").await;
        let r = app.request(Method::DELETE, &format!("/api/users/user/{}", alex.id), Some(&alex.access), None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_error(app.get("/api/users/me/", &alex.access).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
        assert_error(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await, StatusCode::UNAUTHORIZED, "session_revoked").await;
        assert_error(app.login(&alex.email, &alex.password).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        assert_error(app.get(&format!("/api/users/user/{}", alex.id), &bob.access).await, StatusCode::NOT_FOUND, "not_found").await;

        let history = app.history(&bob, "general", "").await;
        let m = &history["messages"][0];
        assert_eq!(m["content"], "hello from alex");
        assert!(m["sender"].is_null() && m["sender_id"].is_null(), "{m}");
        let room = json_of(app.get("/api/rooms/general/", &bob.access).await, StatusCode::OK).await;
        assert_eq!(room["participants"], json!([]));
        // The name is free again.
        assert_eq!(app.register("alex").await.status(), StatusCode::CREATED);
    }
);

backend_test!(
    async fn an_expired_access_token_is_refused_with_token_expired(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| c.access_ttl = chrono::Duration::seconds(1)).await;
        let alex = app.user("alex").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_error(app.get("/api/users/me/", &alex.access).await, StatusCode::UNAUTHORIZED, "token_expired").await;
        // The refresh token still gives a fresh pair.
        let pair = json_of(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await, StatusCode::OK).await;
        assert_eq!(app.get("/api/users/me/", pair["access"].as_str().expect("a")).await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn an_expired_refresh_token_is_refused_with_token_expired(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| c.refresh_ttl = chrono::Duration::seconds(1)).await;
        let alex = app.user("alex").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_error(app.post("/api/login/refresh/", None, json!({"refresh": alex.refresh})).await, StatusCode::UNAUTHORIZED, "token_expired").await;
    }
);
