//! Rooms, history and messages over HTTP (SPEC §3 "Rooms and messages").

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn seqs(history: &Value) -> Vec<i64> {
    history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

backend_test!(
    async fn joining_creates_a_room_once_and_is_idempotent(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let r = app.request(Method::POST, "/api/room/General/", Some(&alex.access), None).await;
        let created = json_of(r, StatusCode::CREATED).await;
        assert_eq!(created["created"], true);
        assert_eq!(created["room"]["name"], "General");
        assert_eq!(created["room"]["participants"], json!(["alex"]));
        assert_eq!(created["room"]["joined"], true);
        assert_eq!(created["room"]["last_seq"], 0);

        // Another spelling names the same room; the first spelling is kept.
        let r = app.request(Method::POST, "/api/room/general", Some(&bob.access), None).await;
        let joined = json_of(r, StatusCode::OK).await;
        assert_eq!(joined["created"], false);
        assert_eq!(joined["room"]["name"], "General");
        assert_eq!(joined["room"]["id"], created["room"]["id"]);
        assert_eq!(joined["room"]["participants"], json!(["alex", "bob"]));

        let again = json_of(app.request(Method::POST, "/api/room/GENERAL/", Some(&bob.access), None).await, StatusCode::OK).await;
        assert_eq!(again["room"]["participants"], json!(["alex", "bob"]));
    }
);

backend_test!(
    async fn messages_get_gap_free_seqs_and_history_pages_both_ways(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        for i in 1..=7 {
            let m = app.send(&alex, "general", &format!("message {i}")).await;
            assert_eq!(m["seq"], i);
            assert_eq!(m["room"], "general");
            assert_eq!(m["sender"], "alex");
            assert_eq!(m["sender_id"], alex.id.as_str());
            assert!(m["client_msg_id"].is_null());
        }
        let newest = app.history(&alex, "general", "?limit=3").await;
        assert_eq!(seqs(&newest), [5, 6, 7]);
        assert_eq!(newest["has_more"], true);
        let older = app.history(&alex, "general", "?before=5&limit=3").await;
        assert_eq!(seqs(&older), [2, 3, 4]);
        assert_eq!(older["has_more"], true);
        let oldest = app.history(&alex, "general", "?before=2&limit=3").await;
        assert_eq!(seqs(&oldest), [1]);
        assert_eq!(oldest["has_more"], false);
        let newer = app.history(&alex, "general", "?after=2&limit=3").await;
        assert_eq!(seqs(&newer), [3, 4, 5]);
        assert_eq!(newer["has_more"], true);
        let last = app.history(&alex, "general", "?after=5").await;
        assert_eq!(seqs(&last), [6, 7]);
        assert_eq!(last["has_more"], false);
        let all = app.history(&alex, "general", "").await;
        assert_eq!(seqs(&all), (1..=7).collect::<Vec<_>>());
        assert_eq!(all["has_more"], false);
        assert_eq!(all["messages"][0]["content"], "message 1");
    }
);

backend_test!(
    async fn a_resend_with_the_same_client_msg_id_returns_the_original_and_stores_nothing(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.join(&bob, "general").await;
        let path = "/api/rooms/general/messages/";
        let first = json_of(app.post(path, Some(&alex.access), json!({"content": "hi", "client_msg_id": "c-1"})).await, StatusCode::CREATED).await;
        let again = json_of(app.post(path, Some(&alex.access), json!({"content": "hi", "client_msg_id": "c-1"})).await, StatusCode::OK).await;
        assert_eq!(first, again);
        assert_eq!(first["client_msg_id"], "c-1");
        // The key belongs to the sender: bob may use the same one.
        let bobs = json_of(app.post(path, Some(&bob.access), json!({"content": "yo", "client_msg_id": "c-1"})).await, StatusCode::CREATED).await;
        assert_eq!(bobs["seq"], 2);
        assert_eq!(seqs(&app.history(&alex, "general", "").await), [1, 2]);
    }
);

backend_test!(
    async fn concurrent_resends_of_one_client_msg_id_store_one_message(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        let sends = (0..8).map(|_| app.post("/api/rooms/general/messages/", Some(&alex.access), json!({"content": "once", "client_msg_id": "same"})));
        let responses = futures_util::future::join_all(sends).await;
        let mut created = 0;
        for r in responses {
            let status = r.status();
            assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{status}");
            if status == StatusCode::CREATED {
                created += 1;
            }
            assert_eq!(r.json::<Value>().await.expect("json")["seq"], 1);
        }
        assert_eq!(created, 1);
        assert_eq!(seqs(&app.history(&alex, "general", "").await), [1]);
    }
);

backend_test!(
    async fn concurrent_senders_get_distinct_gap_free_seqs(app) {
        let mut users = Vec::new();
        for name in ["alex", "bob", "carol"] {
            let u = app.user(name).await;
            app.join(&u, "busy").await;
            users.push(u);
        }
        let sends = users.iter().flat_map(|u| (0..10).map(move |i| (u, i))).map(|(u, i)| {
            app.post("/api/rooms/busy/messages/", Some(&u.access), json!({"content": format!("{} {i}", u.username)}))
        });
        for r in futures_util::future::join_all(sends).await {
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        let all = app.history(&users[0], "busy", "?limit=200").await;
        assert_eq!(seqs(&all), (1..=30).collect::<Vec<_>>());
    }
);

backend_test!(
    async fn rooms_are_listed_most_recently_active_first_with_unread_counts(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "first").await;
        app.join(&alex, "second").await;
        app.join(&bob, "first").await;
        app.join(&bob, "third").await;
        app.send(&bob, "first", "one").await;
        app.send(&bob, "first", "two").await;

        let rooms = json_of(app.get("/api/rooms/", &alex.access).await, StatusCode::OK).await;
        let names: Vec<&str> = rooms.as_array().expect("array").iter().map(|r| r["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["first", "third", "second"]);
        let first = &rooms[0];
        assert_eq!((first["unread"].as_i64(), first["last_seq"].as_i64(), first["joined"].as_bool()), (Some(2), Some(2), Some(true)));
        assert_eq!(first["messages"].as_array().expect("messages").len(), 2);
        assert_eq!(first["active_participants"], json!([]));
        // Not joined: no unread.
        assert_eq!((rooms[1]["unread"].as_i64(), rooms[1]["joined"].as_bool()), (Some(0), Some(false)));
        // The sender has read what it wrote.
        let bobs = json_of(app.get("/api/rooms/first/", &bob.access).await, StatusCode::OK).await;
        assert_eq!(bobs["unread"], 0);

        let joined = json_of(app.get("/api/rooms/?joined=true&messages=1", &alex.access).await, StatusCode::OK).await;
        let names: Vec<&str> = joined.as_array().expect("array").iter().map(|r| r["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(joined[0]["messages"].as_array().expect("messages").len(), 1);
        assert_eq!(joined[0]["messages"][0]["content"], "two");
        let paged = json_of(app.get("/api/rooms?limit=1&offset=1&messages=0", &alex.access).await, StatusCode::OK).await;
        assert_eq!(paged[0]["name"], "third");
        assert_eq!(paged[0]["messages"], json!([]));
    }
);

backend_test!(
    async fn the_read_marker_only_moves_forward_and_stops_at_the_last_message(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.join(&bob, "general").await;
        for i in 0..5 {
            app.send(&bob, "general", &format!("m{i}")).await;
        }
        let unread = |v: Value| v["unread"].as_i64();
        assert_eq!(unread(json_of(app.get("/api/rooms/general", &alex.access).await, StatusCode::OK).await), Some(5));
        let read = |seq: i64| app.post("/api/rooms/general/read/", Some(&alex.access), json!({"seq": seq}));
        assert_eq!(read(3).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(unread(json_of(app.get("/api/rooms/general", &alex.access).await, StatusCode::OK).await), Some(2));
        assert_eq!(read(1).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(unread(json_of(app.get("/api/rooms/general", &alex.access).await, StatusCode::OK).await), Some(2));
        assert_eq!(read(99).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(unread(json_of(app.get("/api/rooms/general", &alex.access).await, StatusCode::OK).await), Some(0));
        app.send(&bob, "general", "new").await;
        assert_eq!(unread(json_of(app.get("/api/rooms/general", &alex.access).await, StatusCode::OK).await), Some(1));
    }
);

backend_test!(
    async fn leaving_a_room_ends_membership_and_any_user_may_still_read_it(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        app.join(&bob, "general").await;
        app.send(&alex, "general", "before").await;
        let r = app.request(Method::POST, "/api/rooms/general/leave/", Some(&bob.access), None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let room = json_of(app.get("/api/rooms/general/", &bob.access).await, StatusCode::OK).await;
        assert_eq!(room["participants"], json!(["alex"]));
        assert_eq!(room["joined"], false);
        // Reading stays open to every authenticated user; writing needs membership.
        assert_eq!(seqs(&app.history(&bob, "general", "").await), [1]);
        let r = app.post("/api/rooms/general/messages/", Some(&bob.access), json!({"content": "after"})).await;
        assert_error(r, StatusCode::FORBIDDEN, "not_a_member").await;
        // Leaving twice is harmless.
        let r = app.request(Method::POST, "/api/rooms/general/leave", Some(&bob.access), None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
);
