//! The WebSocket protocol of SPEC §4 with real clients over real sockets, on both stores.

use crate::helpers::*;
use crate::ws_client::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn chat(room: &str, token: &str) -> String {
    format!("/ws/chat/{room}/?token={token}")
}

/// Reads message frames until `n` arrived; returns their seqs (presence/typing skipped).
async fn seqs_of(client: &mut WsClient, n: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(n);
    while seqs.len() < n {
        let f = client.frame().await;
        if f["type"] == "message" {
            seqs.push(f["seq"].as_i64().expect("seq"));
        }
    }
    seqs
}

/// alex, a member of `general` who posts; bob (the reader that will stall) with a socket
/// in it, and carol's socket reading along; both sockets past `ready`.
async fn slow_reader_room(app: &TestApp) -> (TestUser, TestUser, WsClient, WsClient) {
    let alex = app.user("alex").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.join(&alex, "general").await;
    let mut slow = connect(app.port, &chat("general", &bob.access)).await;
    slow.expect("ready").await;
    let mut other = connect(app.port, &chat("general", &carol.access)).await;
    other.expect("ready").await;
    (alex, bob, slow, other)
}

/// Posts 3,900-character messages to `general` as `alex`, 50 at a time, until `stop` is
/// set or 4,000 are stored. Returns when each was stored, by seq.
async fn post_big_until(
    app: &TestApp,
    alex: &TestUser,
    stop: &std::sync::atomic::AtomicBool,
) -> std::collections::HashMap<i64, std::time::Instant> {
    let big = "x".repeat(3900);
    let mut stored = std::collections::HashMap::new();
    while stored.len() < 4000 && !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let posts = (0..50)
            .map(|_| app.post("/api/rooms/general/messages/", Some(&alex.access), json!({"content": big})));
        for r in futures_util::future::join_all(posts).await {
            let done = std::time::Instant::now();
            let m = json_of(r, StatusCode::CREATED).await;
            stored.insert(m["seq"].as_i64().expect("seq"), done);
        }
    }
    stored
}

backend_test!(
    async fn two_users_chat_and_both_see_the_same_seq(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        assert_eq!(a.expect("ready").await, json!({"type": "ready", "room": "general", "last_seq": 0}));
        let mut b = connect(app.port, &chat("general", &bob.access)).await;
        b.expect("ready").await;

        a.send(json!({"type": "message", "content": "hi bob", "client_msg_id": "c-1"})).await;
        let mut got_ack = None;
        let mut got_msg = None;
        while got_ack.is_none() || got_msg.is_none() {
            let f = a.frame().await;
            match f["type"].as_str() {
                Some("ack") => got_ack = Some(f),
                Some("message") => got_msg = Some(f),
                _ => {}
            }
        }
        let ack = got_ack.expect("ack");
        assert_eq!((ack["client_msg_id"].as_str(), ack["seq"].as_i64(), ack["room"].as_str()), (Some("c-1"), Some(1), Some("general")));
        let mine = got_msg.expect("message");
        let theirs = b.expect("message").await;
        assert_eq!(mine, theirs);
        assert_eq!(theirs["seq"], 1);
        assert_eq!(theirs["content"], "hi bob");
        assert_eq!(theirs["message"], "hi bob");
        assert_eq!(theirs["sender"], "alex");
        assert_eq!(theirs["id"], ack["id"]);

        // The original client's frame works too, and HTTP posts reach sockets.
        b.send(json!({"message": "hello alex"})).await;
        assert_eq!(a.expect("message").await["content"], "hello alex");
        app.send(&bob, "general", "over http").await;
        assert_eq!(a.expect("message").await["seq"], 3);
        // History over HTTP matches what the sockets saw.
        let h = app.history(&alex, "general", "").await;
        assert_eq!(h["messages"][0]["content"], "hi bob");
        assert_eq!(h["messages"].as_array().expect("messages").len(), 3);
    }
);

backend_test!(
    async fn three_concurrent_senders_are_seen_in_one_identical_gap_free_order(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| c.send_rate = 0).await;
        let mut listeners = Vec::new();
        for name in ["listener1", "listener2"] {
            let u = app.user(name).await;
            let mut c = connect(app.port, &chat("busy", &u.access)).await;
            c.expect("ready").await;
            listeners.push(c);
        }
        let mut senders = Vec::new();
        for name in ["sender1", "sender2", "sender3"] {
            let u = app.user(name).await;
            let mut c = connect(app.port, &chat("busy", &u.access)).await;
            c.expect("ready").await;
            senders.push(c);
        }
        let tasks: Vec<_> = senders
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                tokio::spawn(async move {
                    for n in 0..50 {
                        c.send(json!({"type": "message", "content": format!("{i}-{n}"), "client_msg_id": format!("{i}-{n}")})).await;
                    }
                    let mut acks = 0;
                    while acks < 50 {
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
        let first = seqs_of(&mut listeners[0], 150).await;
        let second = seqs_of(&mut listeners[1], 150).await;
        assert_eq!(first, (1..=150).collect::<Vec<_>>());
        assert_eq!(first, second);
    }
);

backend_test!(
    async fn a_client_that_resumes_after_a_disconnect_misses_nothing_and_gets_nothing_twice(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| c.send_rate = 0).await;
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        let mut b = connect(app.port, &chat("general", &bob.access)).await;
        b.expect("ready").await;
        let sender = {
            let app_url = app.address.clone();
            let token = alex.access.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 1..=60 {
                    let r = client
                        .post(format!("{app_url}/api/rooms/general/messages/"))
                        .bearer_auth(&token)
                        .json(&json!({"content": format!("m{i}")}))
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status(), StatusCode::CREATED);
                }
            })
        };
        // Read part of the burst, then drop the connection in the middle of it.
        let seen = seqs_of(&mut b, 10).await;
        assert_eq!(seen, (1..=10).collect::<Vec<_>>());
        drop(b);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut b = connect(app.port, &format!("{}&after_seq=10", chat("general", &bob.access))).await;
        let mut got = Vec::new();
        let mut ready_at = None;
        while got.len() < 50 || ready_at.is_none() {
            let f = b.frame().await;
            match f["type"].as_str() {
                Some("message") => got.push(f["seq"].as_i64().expect("seq")),
                Some("ready") => ready_at = Some(got.len()),
                _ => {}
            }
        }
        sender.await.expect("sender");
        assert_eq!(got, (11..=60).collect::<Vec<_>>(), "nothing missing, nothing twice, in order");
        assert!(ready_at.is_some(), "ready came between replay and live");
        assert!(b.quiet(200).await.iter().all(|f| f["type"] != "message"), "no duplicates after the burst");
    }
);

backend_test!(
    async fn resuming_more_than_1000_messages_back_asks_for_a_resync(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| c.send_rate = 0).await;
        let alex = app.user("alex").await;
        app.join(&alex, "big").await;
        let path = "/api/rooms/big/messages/";
        for chunk in 0..11 {
            let posts = (0..100).map(|i| app.post(path, Some(&alex.access), json!({"content": format!("{chunk}-{i}")})));
            for r in futures_util::future::join_all(posts).await {
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        }
        let mut c = connect(app.port, &format!("{}&after_seq=50", chat("big", &alex.access))).await;
        assert_eq!(c.frame().await, json!({"type": "resync_required", "room": "big", "last_seq": 1100}));
        assert_eq!(c.expect("ready").await["last_seq"], 1100);
        // Exactly 1000 back is still replayed.
        let mut c = connect(app.port, &format!("{}&after_seq=100", chat("big", &alex.access))).await;
        let seqs = seqs_of(&mut c, 1000).await;
        assert_eq!(seqs, (101..=1100).collect::<Vec<_>>());
        assert_eq!(c.expect("ready").await["last_seq"], 1100);
    }
);

backend_test!(
    async fn a_resend_with_the_same_client_msg_id_stores_one_row_and_repeats_the_ack(app) {
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        a.send(json!({"type": "message", "content": "once", "client_msg_id": "k"})).await;
        let first = a.expect("ack").await;
        a.send(json!({"type": "message", "content": "once", "client_msg_id": "k"})).await;
        let second = a.expect("ack").await;
        assert_eq!(first, second);
        // The same key over HTTP is the same message too.
        let r = app.post("/api/rooms/general/messages/", Some(&alex.access), json!({"content": "once", "client_msg_id": "k"})).await;
        assert_eq!(json_of(r, StatusCode::OK).await["id"], first["id"]);
        let h = app.history(&alex, "general", "").await;
        assert_eq!(h["messages"].as_array().expect("messages").len(), 1);
    }
);

backend_test!(
    async fn logout_closes_the_sessions_socket_with_4401(app) {
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        let mut all = connect(app.port, &format!("/ws/?token={}", alex.access)).await;
        all.expect("ready").await;
        let r = app.post("/api/users/logout/", Some(&alex.access), json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(a.closed().await, Some(4401));
        assert_eq!(all.closed().await, Some(4401));
        // The revoked token opens no new socket.
        assert!(matches!(try_connect(app.port, &chat("general", &alex.access)).await, Connect::Refused(401)));
    }
);

backend_test!(
    async fn a_bad_frame_gets_an_error_frame_and_the_socket_keeps_working(app) {
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        a.send_raw("{not json".into()).await;
        assert_eq!(a.expect("error").await["code"], "invalid_json");
        a.send(json!({"type": "message", "content": "   ", "client_msg_id": "blank"})).await;
        let e = a.expect("error").await;
        assert_eq!((e["code"].as_str(), e["client_msg_id"].as_str()), (Some("validation_failed"), Some("blank")));
        a.send(json!({"type": "dance"})).await;
        assert_eq!(a.expect("error").await["code"], "unknown_type");
        a.send(json!({"type": "ping"})).await;
        assert_eq!(a.expect("pong").await, json!({"type": "pong"}));
        a.send(json!({"type": "message", "content": "still here"})).await;
        assert_eq!(a.expect("message").await["content"], "still here");
        let h = app.history(&alex, "general", "").await;
        assert_eq!(h["messages"].as_array().expect("messages").len(), 1);
    }
);

backend_test!(
    async fn more_than_20_bad_frames_in_10_seconds_close_the_socket_with_1008(app) {
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        for _ in 0..21 {
            a.send_raw("nope".into()).await;
        }
        assert_eq!(a.closed().await, Some(1008));
    }
);

backend_test!(
    async fn a_frame_over_64_kib_closes_the_socket_with_1009(app) {
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        a.send(json!({"type": "message", "content": "x".repeat(65 * 1024)})).await;
        assert_eq!(a.closed().await, Some(1009));
        let h = app.history(&alex, "general", "").await;
        assert_eq!(h["messages"], json!([]));
    }
);

backend_test!(
    async fn an_upgrade_without_a_valid_token_is_refused_with_401(app) {
        let alex = app.user("alex").await;
        assert!(matches!(try_connect(app.port, "/ws/chat/general/").await, Connect::Refused(401)));
        assert!(matches!(try_connect(app.port, "/ws/chat/general/?token=garbage").await, Connect::Refused(401)));
        assert!(matches!(try_connect(app.port, "/ws/?token=").await, Connect::Refused(401)));
        assert!(matches!(try_connect(app.port, &format!("/ws/?token={}", alex.refresh)).await, Connect::Refused(401)));
        // No room was created by the refused attempts.
        let rooms = json_of(app.get("/api/rooms/", &alex.access).await, StatusCode::OK).await;
        assert_eq!(rooms, json!([]));
    }
);

backend_test!(
    async fn presence_and_typing_reach_the_other_sockets_only(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let carol = app.user("carol").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        let mut elsewhere = connect(app.port, &chat("random", &carol.access)).await;
        elsewhere.expect("ready").await;
        let mut b = connect(app.port, &chat("general", &bob.access)).await;
        b.expect("ready").await;
        assert_eq!(a.expect_presence().await, json!({"type": "presence", "room": "general", "user": "bob", "status": "online"}));
        let room = json_of(app.get("/api/rooms/general/", &alex.access).await, StatusCode::OK).await;
        assert_eq!(room["active_participants"], json!(["alex", "bob"]));

        b.send(json!({"type": "typing"})).await;
        assert_eq!(a.frame().await, json!({"type": "typing", "room": "general", "user": "bob"}));
        // Bob's second socket: no new presence; typing does not echo to bob.
        let mut b2 = connect(app.port, &chat("general", &bob.access)).await;
        b2.expect("ready").await;
        assert!(b.quiet(200).await.is_empty(), "the typist hears nothing back");
        drop(b2);
        assert!(a.quiet(300).await.is_empty(), "bob still has a socket: no offline");
        drop(b);
        assert_eq!(a.expect_presence().await["status"], "offline");
        let room = json_of(app.get("/api/rooms/general/", &alex.access).await, StatusCode::OK).await;
        assert_eq!(room["active_participants"], json!(["alex"]));
        assert!(elsewhere.quiet(200).await.is_empty(), "another room hears nothing");
    }
);

backend_test!(
    async fn read_frames_move_the_read_marker(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        app.join(&alex, "general").await;
        let mut b = connect(app.port, &chat("general", &bob.access)).await;
        b.expect("ready").await;
        for i in 0..3 {
            app.send(&alex, "general", &format!("m{i}")).await;
        }
        seqs_of(&mut b, 3).await;
        b.send(json!({"type": "read", "seq": 2})).await;
        b.send(json!({"type": "ping"})).await;
        b.expect("pong").await;
        let room = json_of(app.get("/api/rooms/general/", &bob.access).await, StatusCode::OK).await;
        assert_eq!(room["unread"], 1);
    }
);

backend_test!(
    async fn the_multi_room_socket_resumes_every_room_and_refuses_rooms_not_joined(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        for room in ["one", "two"] {
            app.join(&alex, room).await;
            app.join(&bob, room).await;
        }
        app.join(&bob, "private").await;
        app.send(&bob, "one", "1a").await;
        app.send(&bob, "one", "1b").await;
        app.send(&bob, "two", "2a").await;
        let mut all = connect(app.port, &format!("/ws/?token={}", alex.access)).await;
        all.send(json!({"type": "resume", "rooms": {"one": 1, "two": 0}})).await;
        let mut frames = Vec::new();
        let mut readies = 0;
        while readies < 2 {
            let f = all.frame().await;
            if f["type"] == "ready" {
                readies += 1;
            }
            if f["type"] != "presence" {
                frames.push((f["type"].as_str().map(str::to_owned), f["room"].as_str().map(str::to_owned), f["seq"].as_i64()));
            }
        }
        let mut expected = vec![
            (Some("message".to_owned()), Some("one".to_owned()), Some(2)),
            (Some("ready".to_owned()), Some("one".to_owned()), None),
            (Some("message".to_owned()), Some("two".to_owned()), Some(1)),
            (Some("ready".to_owned()), Some("two".to_owned()), None),
        ];
        // Rooms come in any order; within a room, replay precedes ready.
        frames.sort();
        expected.sort();
        assert_eq!(frames, expected);

        all.send(json!({"type": "message", "room": "two", "content": "from all"})).await;
        assert_eq!(all.expect("ack").await["room"], "two");
        all.send(json!({"type": "message", "room": "private", "content": "no", "client_msg_id": "p"})).await;
        let e = all.expect("error").await;
        assert_eq!((e["code"].as_str(), e["client_msg_id"].as_str()), (Some("not_a_member"), Some("p")));
        all.send(json!({"type": "message", "content": "no room"})).await;
        assert_eq!(all.expect("error").await["code"], "validation_failed");

        // Joining a room over HTTP adds it to the open socket.
        app.join(&alex, "private").await;
        assert_eq!(all.expect("ready").await["room"], "private");
        app.send(&bob, "private", "now you see it").await;
        assert_eq!(all.expect("message").await["content"], "now you see it");
    }
);

backend_test!(
    async fn sends_over_the_rate_limit_are_refused_and_not_stored(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| c.send_rate = 1).await;
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        for i in 0..3 {
            a.send(json!({"type": "message", "content": "spam", "client_msg_id": format!("s{i}")})).await;
        }
        let mut acks = 0;
        let mut limited = Vec::new();
        while acks + limited.len() < 3 {
            let f = a.frame().await;
            match f["type"].as_str() {
                Some("ack") => acks += 1,
                Some("error") => limited.push(f),
                _ => {}
            }
        }
        assert_eq!(acks, 2, "a burst of twice the rate");
        assert_eq!((limited[0]["code"].as_str(), limited[0]["client_msg_id"].as_str()), (Some("rate_limited"), Some("s2")));
        let h = app.history(&alex, "general", "").await;
        assert_eq!(h["messages"].as_array().expect("messages").len(), 2);
    }
);

backend_test!(
    async fn a_reader_that_never_reads_is_closed_with_4008_while_others_keep_receiving(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| {
            c.send_rate = 0;
            c.socket_queue = 64;
        })
        .await;
        let (alex, bob, mut slow, mut fast) = slow_reader_room(&app).await;
        // Big messages fill the slow reader's TCP buffers, then its queue, while the
        // normal reader reads along. The slow reader's close shows as bob going offline.
        let bob_offline = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (total_tx, mut total_rx) = tokio::sync::watch::channel(usize::MAX);
        let flag = bob_offline.clone();
        let reader = tokio::spawn(async move {
            let mut seqs = Vec::new();
            let mut received = std::collections::HashMap::new();
            while seqs.len() < *total_rx.borrow_and_update() {
                tokio::select! {
                    _ = total_rx.changed() => {}
                    f = fast.next() => {
                        let f = f.expect("the normal reader stays open");
                        if f["type"] == "message" {
                            let seq = f["seq"].as_i64().expect("seq");
                            received.insert(seq, std::time::Instant::now());
                            seqs.push(seq);
                        } else if f["type"] == "presence" && f["user"] == "bob" && f["status"] == "offline" {
                            flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            }
            (seqs, received)
        });
        let stored = post_big_until(&app, &alex, &bob_offline).await;
        let sent = stored.len();
        assert!(bob_offline.load(std::sync::atomic::Ordering::SeqCst), "the slow reader was closed");
        assert_eq!(slow.closed().await, Some(4008), "the slow reader is told why");
        total_tx.send(sent).expect("reader alive");
        let (seqs, received) = reader.await.expect("reader");
        assert_eq!(seqs, (1..=sent as i64).collect::<Vec<_>>(), "the normal reader got every message, in order");
        // On time: the stuck reader never held the room back. (A generous bound: this is a
        // check that nothing waits for the slow socket, not a latency measurement.)
        let worst = stored
            .iter()
            .map(|(seq, done)| received[seq].saturating_duration_since(*done))
            .max()
            .unwrap_or_default();
        assert!(worst < std::time::Duration::from_secs(2), "the normal reader lagged {worst:?}");
        // It resumes from its last seq and gets everything.
        let mut again = connect(app.port, &format!("{}&after_seq=0", chat("general", &bob.access))).await;
        let first = again.frame().await;
        if sent > 1000 {
            assert_eq!(first["type"], "resync_required");
        } else {
            assert_eq!(first["seq"], 1);
        }
    }
);

backend_test!(
    async fn a_reader_that_stops_reading_in_a_quiet_room_is_closed_with_4008_by_the_heartbeat(app) {
        let _ = &app;
        // A queue far larger than what is sent never overflows: only the heartbeat can find
        // the stalled reader.
        let app = spawn_app_with(app.backend, |c| {
            c.send_rate = 0;
            c.socket_queue = 1_000_000;
            c.ws_heartbeat = chrono::Duration::seconds(1);
        })
        .await;
        let (alex, _, mut slow, mut watcher) = slow_reader_room(&app).await;
        // bob reads nothing but keeps sending signs of life, so silence does not close him.
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let alive = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return slow,
                    () = tokio::time::sleep(std::time::Duration::from_millis(200)) => slow.pong().await,
                }
            }
        });
        let bob_offline = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = bob_offline.clone();
        let watching = tokio::spawn(async move {
            loop {
                let f = watcher.frame().await;
                if f["type"] == "presence" && f["user"] == "bob" && f["status"] == "offline" {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    return;
                }
            }
        });
        // Big messages fill bob's TCP buffers; the rest wait in his queue, unwritten.
        post_big_until(&app, &alex, &bob_offline).await;
        tokio::time::timeout(std::time::Duration::from_secs(10), watching)
            .await
            .expect("bob goes offline within 10 s of the last message")
            .expect("watcher");
        stop.send(()).expect("bob's task alive");
        let mut slow = alive.await.expect("bob's task");
        assert_eq!(slow.closed().await, Some(4008), "the stalled reader is told why");
    }
);

backend_test!(
    async fn a_sender_that_pipelines_frames_keeps_getting_its_rooms_messages(app) {
        let _ = &app;
        let app = spawn_app_with(app.backend, |c| {
            c.send_rate = 0;
            c.socket_queue = 64;
        })
        .await;
        let alex = app.user("alex").await;
        let mut ws = connect(app.port, &chat("general", &alex.access)).await;
        ws.expect("ready").await;
        let (mut sink, mut stream) = futures_util::StreamExt::split(ws.ws);
        // Reads along while frames are written without pause: the server must keep
        // draining this socket's queue between the frames it reads, or the queue of 64
        // would overflow (4008) although the client reads everything.
        let reader = tokio::spawn(async move {
            let (mut acks, mut messages) = (0, Vec::new());
            while acks < 200 || messages.len() < 200 {
                let item = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut stream)).await;
                match item.expect("a frame within the wait") {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                        let f: Value = serde_json::from_str(&t).expect("JSON");
                        match f["type"].as_str() {
                            Some("ack") => acks += 1,
                            Some("message") => messages.push(f["seq"].as_i64().expect("seq")),
                            _ => {}
                        }
                    }
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => panic!("closed: {c:?}"),
                    Some(Ok(_)) => {}
                    other => panic!("socket ended: {other:?}"),
                }
            }
            messages
        });
        for i in 0..200 {
            let frame = json!({"type": "message", "content": format!("m{i}"), "client_msg_id": format!("p-{i}")});
            futures_util::SinkExt::send(&mut sink, tokio_tungstenite::tungstenite::Message::text(frame.to_string()))
                .await
                .expect("send");
        }
        let messages = reader.await.expect("reader");
        assert_eq!(messages, (1..=200).collect::<Vec<i64>>());
    }
);

backend_test!(
    async fn a_logout_during_the_resume_wait_of_ws_closes_at_once(app) {
        let alex = app.user("alex").await;
        app.join(&alex, "general").await;
        // No first frame: the server is waiting (up to 1 s) for a `resume`.
        let mut ws = connect(app.port, &format!("/ws/?token={}", alex.access)).await;
        let started = std::time::Instant::now();
        let r = app.post("/api/users/logout/", Some(&alex.access), json!({})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(ws.closed().await, Some(4401));
        assert!(started.elapsed() < std::time::Duration::from_millis(700), "closed after {:?}", started.elapsed());
    }
);

backend_test!(
    async fn shutting_down_closes_sockets_with_1001(app) {
        let alex = app.user("alex").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        let handle = app.server.0.clone();
        let stopping = tokio::spawn(async move { handle.stop(true).await });
        assert_eq!(a.closed().await, Some(1001));
        stopping.await.expect("stopped");
    }
);

backend_test!(
    async fn leaving_the_room_closes_its_socket_with_4403_and_a_plain_get_creates_nothing(app) {
        let alex = app.user("alex").await;
        let r = app.get("/ws/chat/lobby/", &alex.access).await;
        assert!(r.status().is_client_error(), "{}", r.status());
        let rooms = json_of(app.get("/api/rooms/", &alex.access).await, StatusCode::OK).await;
        assert_eq!(rooms, json!([]), "no room was made by a request that was no upgrade");

        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        let r = app.request(reqwest::Method::POST, "/api/rooms/general/leave/", Some(&alex.access), None).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(a.closed().await, Some(4403));
    }
);

backend_test!(
    async fn typing_notices_are_limited_to_one_per_two_seconds(app) {
        let alex = app.user("alex").await;
        let bob = app.user("bob").await;
        let mut a = connect(app.port, &chat("general", &alex.access)).await;
        a.expect("ready").await;
        let mut b = connect(app.port, &chat("general", &bob.access)).await;
        b.expect("ready").await;
        for _ in 0..5 {
            b.send(json!({"type": "typing"})).await;
        }
        let got = a.quiet(300).await;
        assert_eq!(got.iter().filter(|f| f["type"] == "typing").count(), 1, "{got:?}");
    }
);

impl WsClient {
    async fn expect_presence(&mut self) -> Value {
        loop {
            let f = self.frame().await;
            if f["type"] == "presence" {
                return f;
            }
        }
    }
}
