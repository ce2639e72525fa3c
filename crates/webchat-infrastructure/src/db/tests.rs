//! The store against real databases: every test body runs once on SQLite (a temporary
//! file) and once on PostgreSQL (a fresh database on 127.0.0.1:5432, or on the server named
//! by `WEBCHAT_TEST_PG`). PostgreSQL being down fails the tests; it never skips them.

use super::*;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use uuid::Uuid;
use webchat_domain::model::{
    Appended, ClientMsgId, Email, HistoryCursor, ListedRoom, Listing, Message, MessageContent, NewMessage,
    NewUser, Page, PasswordHash, Room, RoomId, RoomListQuery, RoomName, Seq, Session, SessionId, User,
    UserId, UserListQuery, UserPatch, Username,
};
use webchat_domain::ports::{
    MessageRepository, PresenceStore, RoomRepository, RotateOutcome, SessionRepository, UserRepository,
};
use webchat_domain::{StoreError, UniqueField};

// ---------------------------------------------------------------------------------------
// One database per test
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests create their databases on.
fn pg_base() -> String {
    std::env::var("WEBCHAT_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn pg_admin() -> PgConnection {
    let url = format!("{}/postgres", pg_base());
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!("PostgreSQL must be running at {url} for these tests (set WEBCHAT_TEST_PG): {e}")
    })
}

/// A migrated store on a database of its own, removed when the test ends (even when it
/// panics).
struct TestDb {
    db: Option<Arc<Db>>,
    target: DatabaseTarget,
    /// The PostgreSQL database to drop.
    pg_name: Option<String>,
    /// Keeps the SQLite file's directory until the end of the test.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    fn new(backend: Backend) -> Self {
        let mut test_db = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path = dir.path().join("webchat.db").to_string_lossy().into_owned();
                Self { db: None, target: DatabaseTarget::Sqlite(path), pg_name: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let name = format!("wc_infra_{}", Uuid::new_v4().simple());
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut pg_admin())
                    .expect("CREATE DATABASE");
                Self {
                    db: None,
                    target: DatabaseTarget::Postgres(format!("{}/{name}", pg_base())),
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        };
        // Connect after the guard exists, so a failed migration still drops the database.
        let db = Db::connect(&test_db.target, DbOptions::default()).expect("connect and migrate");
        test_db.db = Some(Arc::new(db));
        test_db
    }

    /// The store, for threads.
    fn shared(&self) -> Arc<Db> {
        Arc::clone(self.db.as_ref().expect("the store is open"))
    }

    fn users(&self) -> &dyn UserRepository {
        &**self
    }

    fn sessions(&self) -> &dyn SessionRepository {
        &**self
    }

    fn rooms(&self) -> &dyn RoomRepository {
        &**self
    }

    fn messages(&self) -> &dyn MessageRepository {
        &**self
    }
}

impl Deref for TestDb {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db.as_deref().expect("the store is open")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Close the pool first; FORCE ends whatever connection is left.
        drop(self.db.take());
        if let Some(name) = &self.pg_name {
            let dropped = PgConnection::establish(&format!("{}/postgres", pg_base()))
                .map_err(|e| e.to_string())
                .and_then(|mut admin| {
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut admin)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = dropped {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

/// Writes each test body once and makes two tests of it, `name::sqlite` and
/// `name::postgres`. Attributes (such as `#[ignore = "…"]`) apply to both.
macro_rules! on_both_backends {
    ($( $(#[$attr:meta])* fn $name:ident($db:ident) $body:block )+) => {
        $(
            mod $name {
                use super::*;

                fn run($db: &TestDb) $body

                #[test]
                $(#[$attr])*
                fn sqlite() {
                    run(&TestDb::new(Backend::Sqlite));
                }

                #[test]
                $(#[$attr])*
                fn postgres() {
                    run(&TestDb::new(Backend::Postgres));
                }
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A whole second, so it survives the store's millisecond precision unchanged.
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("a valid timestamp")
}

fn username(s: &str) -> Username {
    Username::parse(s).expect("a valid username")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("a valid email")
}

fn room_name(s: &str) -> RoomName {
    RoomName::parse(s).expect("a valid room name")
}

fn page(limit: u32, offset: u64) -> Page {
    Page::new(limit, offset).expect("a valid page")
}

/// `name` with the email `Name@Example.com`, so stored emails have capitals.
fn new_user(name: &str) -> NewUser {
    let mut capitalized = name.to_owned();
    capitalized[..1].make_ascii_uppercase();
    NewUser {
        id: UserId(Uuid::new_v4()),
        username: username(name),
        email: email(&format!("{capitalized}@Example.com")),
        password_hash: PasswordHash(format!("hash-of-{name}")),
        created_at: at(0),
    }
}

fn add_user(db: &TestDb, name: &str) -> User {
    db.users().insert(&new_user(name)).expect("insert user")
}

fn join(db: &TestDb, name: &str, user: &User, t: i64) -> (Room, bool) {
    db.rooms().join_or_create(&room_name(name), user.id, at(t)).expect("join_or_create")
}

fn new_message(room: RoomId, sender: UserId, text: &str, key: Option<&str>, t: i64) -> NewMessage {
    NewMessage {
        room_id: room,
        sender_id: sender,
        content: MessageContent::parse(text).expect("valid content"),
        client_msg_id: key.map(|k| ClientMsgId::parse(k).expect("a valid client_msg_id")),
        created_at: at(t),
    }
}

/// An append by a member, as `(message, stored now)`.
fn append(store: &Db, m: &NewMessage) -> StoreResult<(Message, bool)> {
    match MessageRepository::append(store, m)? {
        Appended::Stored(m) => Ok((m, true)),
        Appended::Duplicate(m) => Ok((m, false)),
        Appended::NotAMember => panic!("the sender of {m:?} is not a member"),
    }
}

/// Appends a message without a `client_msg_id` and checks it was stored.
fn send(db: &TestDb, room: &Room, sender: &User, text: &str, t: i64) -> Message {
    let (message, created) = append(db, &new_message(room.id, sender.id, text, None, t)).expect("append");
    assert!(created, "a message without client_msg_id is always new");
    message
}

fn new_session(user: &User) -> Session {
    Session {
        id: SessionId(Uuid::new_v4()),
        user_id: user.id,
        refresh_jti: Uuid::new_v4(),
        created_at: at(0),
        expires_at: at(3600),
        revoked: false,
    }
}

fn add_session(db: &TestDb, user: &User) -> Session {
    let s = new_session(user);
    db.sessions().insert(&s).expect("insert session");
    s
}

fn user_names(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

fn room_names(rooms: &[Room]) -> Vec<&str> {
    rooms.iter().map(|r| r.name.as_str()).collect()
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq.0).collect()
}

/// [`MessageRepository::latest`] as one list ordered by room and seq, after checking that
/// each room came at most once and holds only its own messages.
fn latest_flat(db: &TestDb, wanted: &[(RoomId, Seq)], per_room: u32) -> StoreResult<Vec<Message>> {
    let got = db.messages().latest(wanted, per_room)?;
    let mut rooms: Vec<RoomId> = got.iter().map(|(room, _)| *room).collect();
    rooms.sort_unstable();
    rooms.dedup();
    assert_eq!(rooms.len(), got.len(), "each room once");
    let mut all: Vec<Message> = Vec::new();
    for (room, messages) in got {
        assert!(messages.iter().all(|m| m.room_id == room), "only the room's own messages");
        assert!(messages.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
        all.extend(messages.iter().cloned());
    }
    all.sort_unstable_by_key(|m| (m.room_id, m.seq));
    Ok(all)
}

fn list_users(db: &TestDb, search: Option<&str>, limit: u32, offset: u64) -> Vec<User> {
    db.users()
        .list(&UserListQuery { search: search.map(str::to_owned), page: page(limit, offset) })
        .expect("list users")
}

/// Who is online, as a listing carries it.
type Online = Vec<(RoomId, UserId)>;

/// `list_then`'s answer, awaited (on PostgreSQL it comes from the reader thread).
fn list_then_and_wait(db: &TestDb, viewer: UserId, query: RoomListQuery) -> StoreResult<Listing> {
    let (tx, rx) = std::sync::mpsc::channel();
    db.rooms().list_then(
        viewer,
        query,
        Box::new(move |answer| {
            let _ = tx.send(answer);
        }),
    );
    rx.recv_timeout(Duration::from_secs(30)).expect("list_then answers")
}

/// A page of the listing as `viewer` sees it (`None`: someone with no account), asked both
/// ways (`list` and `list_then`), which must agree.
fn listing(db: &TestDb, viewer: Option<&User>, joined: bool, limit: u32, offset: u64) -> Vec<ListedRoom> {
    let viewer = viewer.map_or_else(|| UserId(Uuid::new_v4()), |u| u.id);
    let query = RoomListQuery { joined, page: page(limit, offset), messages: 0 };
    let listed = db.rooms().list(viewer, &query).expect("list rooms");
    assert_eq!(list_then_and_wait(db, viewer, query).expect("list_then rooms").rooms, listed);
    listed
}

/// The rooms `joined_by` has joined (both ways of asking must agree), or every room.
fn list_rooms(db: &TestDb, joined_by: Option<&User>, limit: u32, offset: u64) -> Vec<Room> {
    let listed: Vec<Room> = listing(db, joined_by, joined_by.is_some(), limit, offset)
        .into_iter()
        .map(|l| {
            assert!(joined_by.is_none() || l.read_marker.is_some(), "a joined room has a marker: {l:?}");
            l.room
        })
        .collect();
    if let Some(user) = joined_by {
        assert_eq!(db.rooms().joined(user.id, page(limit, offset)).expect("joined"), listed);
    }
    listed
}

fn room_by_name(db: &TestDb, name: &str) -> Room {
    db.rooms().find_by_name(&room_name(name)).expect("find_by_name").expect("the room exists")
}

/// `user`'s read marker in `room`, which the listing must show too.
fn marker(db: &TestDb, user: &User, room: &Room) -> Option<Seq> {
    let markers = db.rooms().read_markers(user.id, &[room.id]).expect("read_markers");
    assert!(markers.len() <= 1, "one marker per room: {markers:?}");
    let found = markers.first().map(|&(r, s)| {
        assert_eq!(r, room.id);
        s
    });
    let listed = listing(db, Some(user), false, 200, 0).into_iter().find(|l| l.room.id == room.id);
    assert_eq!(listed.and_then(|l| l.read_marker), found, "the listing shows the same marker");
    found
}

/// The names of `room`'s members, which the listing must show too.
fn members_of(db: &TestDb, room: &Room) -> Vec<String> {
    let members: Vec<(UserId, String)> = db
        .rooms()
        .members(&[room.id])
        .expect("members")
        .into_iter()
        .map(|(r, id, name)| {
            assert_eq!(r, room.id);
            (id, name.as_str().to_owned())
        })
        .collect();
    let listed = listing(db, None, false, 200, 0).into_iter().find(|l| l.room.id == room.id);
    let listed: Vec<(UserId, String)> = listed
        .map(|l| l.members.iter().map(|(id, name)| (*id, name.as_str().to_owned())).collect())
        .unwrap_or_default();
    assert_eq!(listed, members, "the listing shows the same members");
    members.into_iter().map(|(_, name)| name).collect()
}

fn all_messages(db: &TestDb, room: &Room) -> Vec<Message> {
    let page = db.messages().page(room.id, HistoryCursor::After(Seq::ZERO), 200).expect("page");
    assert!(!page.has_more, "the tests keep rooms under 200 messages");
    page.messages
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

on_both_backends! {
    fn an_inserted_user_is_returned_and_found_by_id(db) {
        let new = new_user("alex");
        let user = db.users().insert(&new).expect("insert");
        assert_eq!(user.id, new.id);
        assert_eq!(user.username.as_str(), "alex");
        assert_eq!(user.email.as_str(), "Alex@Example.com", "the email is kept as typed");
        assert_eq!(user.created_at, new.created_at);
        assert_eq!(db.users().find(new.id).expect("find"), Some(user));
        let hash = db.users().password_hash(new.id).expect("password_hash").expect("a hash");
        assert_eq!(hash.0, "hash-of-alex");
    }

    fn finding_an_unknown_user_gives_none(db) {
        add_user(db, "alex");
        let nobody = UserId(Uuid::new_v4());
        assert_eq!(db.users().find(nobody).expect("find"), None);
        assert!(db.users().password_hash(nobody).expect("password_hash").is_none());
    }

    fn a_taken_email_in_another_case_is_a_conflict_on_email(db) {
        add_user(db, "alex");
        let mut twin = new_user("other");
        twin.email = email("ALEX@example.COM");
        assert_eq!(db.users().insert(&twin), Err(StoreError::Conflict(UniqueField::Email)));
        assert_eq!(db.users().find(twin.id).expect("find"), None, "nothing was stored");
    }

    fn a_taken_username_in_another_case_is_a_conflict_on_username(db) {
        add_user(db, "alex");
        let mut twin = new_user("other");
        twin.username = username("ALEX");
        assert_eq!(db.users().insert(&twin), Err(StoreError::Conflict(UniqueField::Username)));
        assert_eq!(db.users().find(twin.id).expect("find"), None, "nothing was stored");
    }

    fn find_credentials_finds_the_account_and_its_hash_by_lowercase_email(db) {
        let alex = add_user(db, "alex");
        add_user(db, "bob");
        let (user, hash) = db
            .users()
            .find_credentials("alex@example.com")
            .expect("find_credentials")
            .expect("stored as Alex@Example.com, found by its lowercase form");
        assert_eq!(user, alex);
        assert_eq!(hash.0, "hash-of-alex");
        assert!(db.users().find_credentials("carol@example.com").expect("find_credentials").is_none());
    }

    fn list_orders_users_by_username_ignoring_case_with_limit_and_offset(db) {
        for name in ["charlie", "Alice", "bob", "alex", "Dave"] {
            add_user(db, name);
        }
        assert_eq!(user_names(&list_users(db, None, 200, 0)), ["alex", "Alice", "bob", "charlie", "Dave"]);
        assert_eq!(user_names(&list_users(db, None, 2, 0)), ["alex", "Alice"]);
        assert_eq!(user_names(&list_users(db, None, 2, 1)), ["Alice", "bob"]);
        assert_eq!(user_names(&list_users(db, None, 200, 4)), ["Dave"]);
        assert!(list_users(db, None, 200, 5).is_empty());
        assert_eq!(list_users(db, Some(""), 200, 0).len(), 5, "an empty search matches everyone");
    }

    fn list_searches_a_username_prefix_ignoring_case(db) {
        for name in ["alex", "Alice", "ALbert", "bal", "bob"] {
            add_user(db, name);
        }
        assert_eq!(user_names(&list_users(db, Some("al"), 200, 0)), ["ALbert", "alex", "Alice"]);
        assert_eq!(user_names(&list_users(db, Some("AL"), 200, 0)), ["ALbert", "alex", "Alice"]);
        assert_eq!(user_names(&list_users(db, Some("ali"), 200, 0)), ["Alice"]);
        assert_eq!(user_names(&list_users(db, Some("al"), 1, 1)), ["alex"]);
        assert!(list_users(db, Some("zz"), 200, 0).is_empty());
    }

    fn list_treats_percent_and_underscore_in_the_search_as_literals(db) {
        for name in ["a_bc", "axbc", "a.bc", "_lead", "abc"] {
            add_user(db, name);
        }
        assert_eq!(user_names(&list_users(db, Some("a_"), 200, 0)), ["a_bc"]);
        assert_eq!(user_names(&list_users(db, Some("_"), 200, 0)), ["_lead"]);
        assert!(list_users(db, Some("%"), 200, 0).is_empty());
        assert!(list_users(db, Some("a%"), 200, 0).is_empty());
        assert!(list_users(db, Some("%bc"), 200, 0).is_empty());
        assert!(list_users(db, Some("\\"), 200, 0).is_empty());
    }

    fn update_changes_the_given_fields_and_keeps_the_others(db) {
        let alex = add_user(db, "alex");
        let patch = UserPatch { email: Some(email("New.Alex@Example.org")), username: None };
        let updated = db.users().update(alex.id, &patch).expect("update").expect("alex exists");
        assert_eq!(updated.email.as_str(), "New.Alex@Example.org");
        assert_eq!(updated.username.as_str(), "alex");
        assert_eq!(updated.created_at, alex.created_at);
        assert!(db.users().find_credentials("alex@example.com").expect("find_credentials").is_none());
        let (found, _) = db.users().find_credentials("new.alex@example.org").expect("find_credentials").expect("new email");
        assert_eq!(found, updated);

        let patch = UserPatch { email: None, username: Some(username("Alexander")) };
        let updated = db.users().update(alex.id, &patch).expect("update").expect("alex exists");
        assert_eq!(updated.username.as_str(), "Alexander");
        assert_eq!(updated.email.as_str(), "New.Alex@Example.org");
        assert_eq!(db.users().find(alex.id).expect("find"), Some(updated.clone()));

        let same = db.users().update(alex.id, &UserPatch::default()).expect("update").expect("alex exists");
        assert_eq!(same, updated, "an empty patch changes nothing");
    }

    fn update_to_ones_own_values_in_another_case_is_allowed(db) {
        let alex = add_user(db, "alex");
        let patch = UserPatch { email: Some(email("ALEX@EXAMPLE.COM")), username: Some(username("ALEX")) };
        let updated = db.users().update(alex.id, &patch).expect("no conflict with oneself").expect("alex exists");
        assert_eq!(updated.username.as_str(), "ALEX");
        assert_eq!(updated.email.as_str(), "ALEX@EXAMPLE.COM");
    }

    fn update_to_someone_elses_email_or_username_is_a_conflict_and_changes_nothing(db) {
        let alex = add_user(db, "alex");
        add_user(db, "bob");
        let patch = UserPatch { email: Some(email("BOB@example.com")), username: None };
        assert_eq!(db.users().update(alex.id, &patch), Err(StoreError::Conflict(UniqueField::Email)));
        let patch = UserPatch { email: None, username: Some(username("Bob")) };
        assert_eq!(db.users().update(alex.id, &patch), Err(StoreError::Conflict(UniqueField::Username)));
        // A free email with a taken username: the whole patch is refused.
        let patch = UserPatch { email: Some(email("free@example.com")), username: Some(username("BOB")) };
        assert_eq!(db.users().update(alex.id, &patch), Err(StoreError::Conflict(UniqueField::Username)));
        assert_eq!(db.users().find(alex.id).expect("find"), Some(alex), "alex is unchanged");
        assert!(db.users().find_credentials("free@example.com").expect("find_credentials").is_none());
    }

    fn updating_an_unknown_user_gives_none(db) {
        add_user(db, "alex");
        let patch = UserPatch { email: Some(email("ghost@example.com")), username: Some(username("ghost")) };
        assert_eq!(db.users().update(UserId(Uuid::new_v4()), &patch).expect("update"), None);
        assert!(list_users(db, Some("ghost"), 200, 0).is_empty());
    }

    fn set_password_hash_replaces_the_hash_of_that_user_only(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        db.users().set_password_hash(alex.id, &PasswordHash("new-hash".into())).expect("set_password_hash");
        assert_eq!(db.users().password_hash(alex.id).expect("password_hash").expect("a hash").0, "new-hash");
        let (_, hash) = db.users().find_credentials("alex@example.com").expect("find_credentials").expect("alex");
        assert_eq!(hash.0, "new-hash");
        assert_eq!(db.users().password_hash(bob.id).expect("password_hash").expect("a hash").0, "hash-of-bob");
    }

    fn delete_returns_the_live_sessions_and_removes_sessions_and_memberships(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let live1 = add_session(db, &alex);
        let live2 = add_session(db, &alex);
        let revoked = add_session(db, &alex);
        assert!(db.sessions().revoke(revoked.id).expect("revoke"));
        let bobs = add_session(db, &bob);
        let (general, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        let (random, _) = join(db, "random", &alex, 3);

        let mut ended = db.users().delete(alex.id).expect("delete").expect("alex existed");
        ended.sort();
        let mut expected = vec![live1.id, live2.id];
        expected.sort();
        assert_eq!(ended, expected, "only the live sessions are reported");

        for s in [live1.id, live2.id, revoked.id] {
            assert_eq!(db.sessions().find(s).expect("find session"), None, "alex's sessions are gone");
        }
        assert_eq!(db.sessions().find(bobs.id).expect("find session"), Some(bobs));
        assert_eq!(members_of(db, &general), ["bob"]);
        assert!(members_of(db, &random).is_empty());
        assert!(db.rooms().read_markers(alex.id, &[general.id, random.id]).expect("read_markers").is_empty());
        assert_eq!(list_rooms(db, Some(&alex), 200, 0), Vec::<Room>::new());
        assert_eq!(db.users().find(alex.id).expect("find"), None);
        assert!(db.users().find_credentials("alex@example.com").expect("find_credentials").is_none());
        assert!(db.users().password_hash(alex.id).expect("password_hash").is_none());
        assert_eq!(db.users().find(bob.id).expect("find"), Some(bob));
    }

    fn delete_keeps_the_messages_with_no_sender(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (general, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        let (kept, _) = append(db, &new_message(general.id, alex.id, "first", Some("k1"), 3))
            .expect("append");
        send(db, &general, &bob, "second", 4);
        send(db, &general, &alex, "third", 5);

        db.users().delete(alex.id).expect("delete").expect("alex existed");

        let messages = all_messages(db, &general);
        assert_eq!(seqs(&messages), [1, 2, 3]);
        let senders: Vec<(Option<UserId>, Option<&str>)> =
            messages.iter().map(|m| (m.sender_id, m.sender.as_ref().map(Username::as_str))).collect();
        assert_eq!(senders, [(None, None), (Some(bob.id), Some("bob")), (None, None)]);
        assert_eq!(messages[0].content.as_str(), "first");
        assert_eq!(messages[0].id, kept.id);
        assert_eq!(messages[0].client_msg_id, kept.client_msg_id);
        assert_eq!(messages[2].content.as_str(), "third");
        let latest = latest_flat(db, &[(general.id, Seq(3))], 10).expect("latest");
        assert_eq!(latest, messages);
    }

    fn deleting_an_unknown_user_gives_none(db) {
        let alex = add_user(db, "alex");
        assert_eq!(db.users().delete(UserId(Uuid::new_v4())).expect("delete"), None);
        assert_eq!(db.users().delete(alex.id).expect("delete"), Some(Vec::new()), "no sessions to end");
        assert_eq!(db.users().delete(alex.id).expect("delete again"), None);
    }

    fn a_deleted_users_email_and_username_can_be_taken_again(db) {
        let alex = add_user(db, "alex");
        db.users().delete(alex.id).expect("delete").expect("alex existed");
        let again = db.users().insert(&new_user("alex")).expect("the name is free again");
        assert_ne!(again.id, alex.id);
    }
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

on_both_backends! {
    fn an_inserted_session_is_found_as_stored(db) {
        let alex = add_user(db, "alex");
        let s = add_session(db, &alex);
        assert_eq!(db.sessions().find(s.id).expect("find"), Some(s));
        let mut revoked = new_session(&alex);
        revoked.revoked = true;
        db.sessions().insert(&revoked).expect("insert");
        assert_eq!(db.sessions().find(revoked.id).expect("find"), Some(revoked));
        assert_eq!(db.sessions().find(SessionId(Uuid::new_v4())).expect("find"), None);
    }

    fn rotate_swaps_the_current_jti_then_reports_the_old_one_stale_and_gone_after_revoke(db) {
        let alex = add_user(db, "alex");
        let s = add_session(db, &alex);
        let (j1, j2, j3) = (s.refresh_jti, Uuid::new_v4(), Uuid::new_v4());

        assert_eq!(db.sessions().rotate(s.id, j1, j2, at(7200)).expect("rotate"), RotateOutcome::Rotated);
        let now = db.sessions().find(s.id).expect("find").expect("the session");
        assert_eq!((now.refresh_jti, now.expires_at, now.revoked), (j2, at(7200), false));

        assert_eq!(db.sessions().rotate(s.id, j1, j3, at(9000)).expect("rotate"), RotateOutcome::Stale);
        let now = db.sessions().find(s.id).expect("find").expect("the session");
        assert_eq!((now.refresh_jti, now.expires_at), (j2, at(7200)), "a stale rotation changes nothing");

        assert!(db.sessions().revoke(s.id).expect("revoke"));
        assert_eq!(db.sessions().rotate(s.id, j2, j3, at(9000)).expect("rotate"), RotateOutcome::Gone);
        assert_eq!(db.sessions().rotate(s.id, j1, j3, at(9000)).expect("rotate"), RotateOutcome::Gone);
        let now = db.sessions().find(s.id).expect("find").expect("the session");
        assert_eq!((now.refresh_jti, now.revoked), (j2, true));
    }

    fn rotating_an_unknown_session_is_gone(db) {
        let outcome = db
            .sessions()
            .rotate(SessionId(Uuid::new_v4()), Uuid::new_v4(), Uuid::new_v4(), at(10))
            .expect("rotate");
        assert_eq!(outcome, RotateOutcome::Gone);
    }

    fn concurrent_rotations_of_one_token_succeed_exactly_once(db) {
        let alex = add_user(db, "alex");
        let s = add_session(db, &alex);
        let (sid, old_jti) = (s.id, s.refresh_jti);
        let store = db.shared();
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let new_jti = Uuid::new_v4();
                    barrier.wait();
                    let outcome = SessionRepository::rotate(&*store, sid, old_jti, new_jti, at(7200))
                        .expect("rotate");
                    (outcome, new_jti)
                })
            })
            .collect();
        let results: Vec<(RotateOutcome, Uuid)> =
            handles.into_iter().map(|h| h.join().expect("thread")).collect();
        let winners: Vec<Uuid> =
            results.iter().filter(|(o, _)| *o == RotateOutcome::Rotated).map(|&(_, j)| j).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(results.iter().all(|(o, _)| matches!(o, RotateOutcome::Rotated | RotateOutcome::Stale)));
        let now = db.sessions().find(s.id).expect("find").expect("the session");
        assert_eq!(now.refresh_jti, winners[0]);
    }

    fn revoke_is_true_once_then_false(db) {
        let alex = add_user(db, "alex");
        let s = add_session(db, &alex);
        let other = add_session(db, &alex);
        assert!(db.sessions().revoke(s.id).expect("revoke"));
        assert!(!db.sessions().revoke(s.id).expect("revoke again"));
        assert!(!db.sessions().revoke(SessionId(Uuid::new_v4())).expect("revoke unknown"));
        assert!(db.sessions().find(s.id).expect("find").expect("still stored").revoked);
        assert!(!db.sessions().find(other.id).expect("find").expect("stored").revoked, "other sessions live on");
    }

    fn ended_among_names_the_revoked_and_unknown_sessions_only(db) {
        let alex = add_user(db, "alex");
        let live = add_session(db, &alex);
        let revoked = add_session(db, &alex);
        db.sessions().revoke(revoked.id).expect("revoke");
        let unknown = SessionId(Uuid::new_v4());
        let mut ended = db.sessions().ended_among(&[live.id, revoked.id, unknown]).expect("ended");
        ended.sort_by_key(|s| s.0);
        let mut want = vec![revoked.id, unknown];
        want.sort_by_key(|s| s.0);
        assert_eq!(ended, want);
        assert!(db.sessions().ended_among(&[]).expect("empty").is_empty());
        // More ids than one IN list holds.
        let many: Vec<SessionId> = (0..1200).map(|_| SessionId(Uuid::new_v4())).chain([live.id]).collect();
        assert_eq!(db.sessions().ended_among(&many).expect("many").len(), 1200);
    }

    fn presence_heartbeats_count_the_nodes_rows_and_expiry_reports_who_went_offline(db) {
        let presence: &dyn PresenceStore = &**db;
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        let (node_a, node_b) = (Uuid::new_v4(), Uuid::new_v4());
        presence.enter(node_a, room.id, alex.id, at(100)).expect("enter");
        presence.enter(node_a, room.id, alex.id, at(100)).expect("enter is idempotent");
        presence.enter(node_a, room.id, bob.id, at(100)).expect("enter");
        presence.enter(node_b, room.id, alex.id, at(100)).expect("enter");
        assert_eq!(presence.heartbeat(node_a, at(110)).expect("heartbeat"), 2);
        assert!(presence.elsewhere(node_a, room.id, alex.id, at(90)).expect("elsewhere"), "alex is on B too");
        assert!(!presence.elsewhere(node_a, room.id, bob.id, at(90)).expect("elsewhere"));
        // B stops refreshing: its row expires, but alex is still online through A.
        let gone = presence.expire(at(105)).expect("expire");
        assert!(gone.is_empty(), "{gone:?}");
        let mut active = presence.active(&[room.id, RoomId(room.id.0 + 1)], at(0)).expect("active");
        active.sort_by_key(|(_, u)| u.0);
        let mut want = vec![(room.id, alex.id), (room.id, bob.id)];
        want.sort_by_key(|(_, u)| u.0);
        assert_eq!(active, want);
        // A stops too: both go offline, by name.
        let gone = presence.expire(at(200)).expect("expire");
        let mut names: Vec<&str> = gone.iter().map(|(_, _, _, u)| u.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["alex", "bob"]);
        assert_eq!(presence.heartbeat(node_a, at(210)).expect("heartbeat"), 0, "A's rows are gone");
    }

    fn presence_recorded_in_one_call_enters_and_leaves_as_the_single_calls_do(db) {
        let presence: &dyn PresenceStore = &**db;
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let cleo = add_user(db, "cleo");
        let (general, _) = join(db, "general", &alex, 1);
        let (random, _) = join(db, "random", &alex, 1);
        let (node_a, node_b) = (Uuid::new_v4(), Uuid::new_v4());
        let on_a = [(general.id, alex.id), (general.id, bob.id), (random.id, alex.id)];
        presence.record(node_a, &on_a, &[], at(100)).expect("record");
        presence.record(node_a, &on_a[..1], &[], at(100)).expect("entering again is idempotent");
        presence.record(node_a, &[], &[], at(100)).expect("nothing to record");
        assert_eq!(presence.heartbeat(node_a, at(101)).expect("heartbeat"), 3, "A's three rows, once each");
        // B sees A's rows among the pairs it asks about, and neither its own nor stale ones.
        presence.record(node_b, &[(general.id, cleo.id)], &[], at(100)).expect("record");
        let asked = [(general.id, alex.id), (general.id, cleo.id), (random.id, bob.id), (random.id, alex.id)];
        let mut seen = presence.elsewhere_among(node_b, &asked, at(90)).expect("elsewhere_among");
        seen.sort_by_key(|(r, u)| (r.0, u.0));
        let mut want = vec![(general.id, alex.id), (random.id, alex.id)];
        want.sort_by_key(|(r, u)| (r.0, u.0));
        assert_eq!(seen, want);
        assert!(presence.elsewhere_among(node_b, &asked, at(102)).expect("later").is_empty(), "A's rows are older");
        assert!(presence.elsewhere_among(node_b, &[], at(0)).expect("none asked").is_empty());
        // Entered and left in the same call: entered first, so the row is gone after.
        presence.record(node_a, &[(random.id, bob.id)], &[(general.id, alex.id), (random.id, bob.id)], at(110))
            .expect("record");
        assert!(!presence.elsewhere(node_b, general.id, alex.id, at(0)).expect("elsewhere"));
        assert!(!presence.elsewhere(node_b, random.id, bob.id, at(0)).expect("elsewhere"));
        assert!(presence.elsewhere(node_b, general.id, bob.id, at(0)).expect("elsewhere"));
        assert_eq!(presence.heartbeat(node_a, at(111)).expect("heartbeat"), 2);
    }

    fn revoke_all_of_user_revokes_every_live_session_but_the_kept_one(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let keep = add_session(db, &alex);
        let a2 = add_session(db, &alex);
        let a3 = add_session(db, &alex);
        let already = add_session(db, &alex);
        db.sessions().revoke(already.id).expect("revoke");
        let bobs = add_session(db, &bob);

        let mut revoked = db.sessions().revoke_all_of_user(alex.id, Some(keep.id)).expect("revoke_all_of_user");
        revoked.sort();
        let mut expected = vec![a2.id, a3.id];
        expected.sort();
        assert_eq!(revoked, expected, "neither the kept one nor the already revoked one");

        let state = |s: &Session| db.sessions().find(s.id).expect("find").expect("stored").revoked;
        assert!(!state(&keep));
        assert!(state(&a2) && state(&a3) && state(&already));
        assert!(!state(&bobs), "another user's sessions are untouched");
        assert!(db.sessions().revoke_all_of_user(alex.id, Some(keep.id)).expect("again").is_empty());

        assert_eq!(db.sessions().revoke_all_of_user(alex.id, None).expect("without keep"), [keep.id]);
        assert!(state(&keep));
        assert!(!state(&bobs));
        assert!(db.sessions().revoke_all_of_user(UserId(Uuid::new_v4()), None).expect("nobody").is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// Rooms
// ---------------------------------------------------------------------------------------

on_both_backends! {
    fn join_or_create_creates_then_joins_in_another_case_keeping_the_first_spelling(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (created, was_created) = join(db, "General", &alex, 1);
        assert!(was_created);
        assert_eq!(created.name.as_str(), "General");
        assert_eq!((created.last_seq, created.created_at, created.last_activity_at), (Seq::ZERO, at(1), at(1)));

        let (joined, was_created) = join(db, "gENERAL", &bob, 2);
        assert!(!was_created);
        assert_eq!(joined, created, "the same room, first spelling and times kept");
        assert_eq!(room_by_name(db, "GENERAL"), created);
        assert_eq!(members_of(db, &created), ["alex", "bob"]);
        assert_eq!(db.rooms().find_by_name(&room_name("random")).expect("find_by_name"), None);
    }

    fn joining_a_room_twice_changes_nothing(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        send(db, &room, &bob, "hi", 3);
        let (again, created) = join(db, "General", &alex, 4);
        assert!(!created);
        assert_eq!(again.id, room.id);
        assert_eq!(members_of(db, &room), ["alex", "bob"], "still one membership each, join order kept");
        assert_eq!(marker(db, &alex, &room), Some(Seq::ZERO), "rejoining does not touch the marker");
    }

    fn a_new_members_read_marker_starts_at_the_rooms_last_seq(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        assert_eq!(marker(db, &alex, &room), Some(Seq::ZERO));
        for i in 0..3 {
            send(db, &room, &alex, "before bob", 2 + i);
        }
        let (seen_by_bob, created) = join(db, "general", &bob, 10);
        assert!(!created);
        assert_eq!(seen_by_bob.last_seq, Seq(3));
        assert_eq!(marker(db, &bob, &room), Some(Seq(3)), "history from before the join is not unread");
    }

    fn leave_ends_a_membership_and_is_false_for_a_non_member(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        assert!(db.rooms().leave(room.id, bob.id).expect("leave"));
        assert!(!db.rooms().leave(room.id, bob.id).expect("leave again"));
        assert!(!db.rooms().leave(RoomId(room.id.0 + 1000), alex.id).expect("leave an unknown room"));
        assert_eq!(members_of(db, &room), ["alex"]);
        assert_eq!(marker(db, &bob, &room), None);
        assert!(list_rooms(db, Some(&bob), 200, 0).is_empty());
        assert_eq!(room_by_name(db, "general").id, room.id, "the room stays");

        send(db, &room, &alex, "while bob is away", 3);
        let (back, created) = join(db, "general", &bob, 4);
        assert!(!created);
        assert_eq!(back.id, room.id);
        assert_eq!(marker(db, &bob, &room), Some(Seq(1)));
    }

    fn list_puts_the_most_recently_active_rooms_first_and_pages(db) {
        let alex = add_user(db, "alex");
        let (a, _) = join(db, "aaa", &alex, 1);
        join(db, "bbb", &alex, 2);
        join(db, "ccc", &alex, 3);
        assert_eq!(room_names(&list_rooms(db, None, 200, 0)), ["ccc", "bbb", "aaa"]);
        send(db, &a, &alex, "wake up", 10);
        assert_eq!(room_names(&list_rooms(db, None, 200, 0)), ["aaa", "ccc", "bbb"]);
        let listed = list_rooms(db, None, 1, 0);
        assert_eq!((listed[0].last_seq, listed[0].last_activity_at), (Seq(1), at(10)));
        assert_eq!(room_names(&list_rooms(db, None, 2, 0)), ["aaa", "ccc"]);
        assert_eq!(room_names(&list_rooms(db, None, 2, 1)), ["ccc", "bbb"]);
        assert_eq!(room_names(&list_rooms(db, None, 2, 2)), ["bbb"]);
        assert!(list_rooms(db, None, 2, 3).is_empty());
    }

    fn list_filters_to_the_rooms_a_user_joined(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let carol = add_user(db, "carol");
        join(db, "aaa", &alex, 1);
        join(db, "bbb", &alex, 2);
        join(db, "ccc", &alex, 3);
        join(db, "ddd", &bob, 4);
        join(db, "aaa", &bob, 5);
        assert_eq!(room_names(&list_rooms(db, Some(&alex), 200, 0)), ["ccc", "bbb", "aaa"]);
        assert_eq!(room_names(&list_rooms(db, Some(&bob), 200, 0)), ["ddd", "aaa"]);
        assert_eq!(room_names(&list_rooms(db, Some(&alex), 1, 1)), ["bbb"]);
        assert_eq!(room_names(&list_rooms(db, Some(&bob), 1, 1)), ["aaa"]);
        assert!(list_rooms(db, Some(&carol), 200, 0).is_empty());
        assert_eq!(list_rooms(db, None, 200, 0).len(), 4);
    }

    fn list_gives_each_room_its_members_and_the_viewers_own_read_marker(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (one, _) = join(db, "one", &alex, 1);
        join(db, "one", &bob, 2);
        let (two, _) = join(db, "two", &bob, 3);
        for i in 0..3 {
            send(db, &two, &bob, "news", 4 + i);
        }
        let (empty, _) = join(db, "empty", &bob, 10);
        assert!(db.rooms().leave(empty.id, bob.id).expect("leave"));
        // A sender has read what it sent.

        let seen = |viewer: &User, joined: bool| -> Vec<(String, Vec<String>, Option<Seq>)> {
            listing(db, Some(viewer), joined, 200, 0)
                .into_iter()
                .map(|l| {
                    let names = l.members.iter().map(|(_, n)| n.as_str().to_owned()).collect();
                    (l.room.name.as_str().to_owned(), names, l.read_marker)
                })
                .collect()
        };
        let strings = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            seen(&bob, false),
            [
                ("empty".to_owned(), vec![], None),
                ("two".to_owned(), strings(&["bob"]), Some(Seq(3))),
                ("one".to_owned(), strings(&["alex", "bob"]), Some(Seq(0))),
            ]
        );
        assert_eq!(
            seen(&alex, false),
            [
                ("empty".to_owned(), vec![], None),
                ("two".to_owned(), strings(&["bob"]), None),
                ("one".to_owned(), strings(&["alex", "bob"]), Some(Seq(0))),
            ]
        );
        assert_eq!(seen(&alex, true), [("one".to_owned(), strings(&["alex", "bob"]), Some(Seq(0)))]);
        let second: Vec<RoomId> = listing(db, Some(&bob), true, 1, 1).iter().map(|l| l.room.id).collect();
        assert_eq!(second, [one.id], "the joined filter comes before the page");
    }

    fn listings_asked_together_each_get_their_own_page(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (aaa, _) = join(db, "aaa", &alex, 1);
        join(db, "bbb", &bob, 2);
        join(db, "ccc", &alex, 3);
        join(db, "ccc", &bob, 4);
        for i in 0..4 {
            send(db, &aaa, &alex, "hello", 10 + i);
        }
        let stranger = UserId(Uuid::new_v4());
        let asks: Vec<(UserId, bool, u32, u64)> = (0..40)
            .map(|i| {
                let viewer = [alex.id, bob.id, stranger][i % 3];
                (viewer, i % 2 == 0, u32::try_from(1 + i % 4).expect("small"), u64::try_from(i % 3).expect("small"))
            })
            .collect();
        // All queued before the first is answered: on PostgreSQL the reader thread takes
        // them in a few batches.
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, &(viewer, joined, limit, offset)) in asks.iter().enumerate() {
            let tx = tx.clone();
            let query = RoomListQuery { joined, page: page(limit, offset), messages: 3 };
            db.rooms().list_then(
                viewer,
                query,
                Box::new(move |answer| {
                    let _ = tx.send((i, answer));
                }),
            );
        }
        drop(tx);
        let mut answers: Vec<(usize, StoreResult<Listing>)> = rx.iter().collect();
        assert_eq!(answers.len(), asks.len(), "one answer per listing");
        answers.sort_unstable_by_key(|(i, _)| *i);
        for (i, answer) in answers {
            let (viewer, joined, limit, offset) = asks[i];
            let query = RoomListQuery { joined, page: page(limit, offset), messages: 3 };
            let Listing { rooms, latest, online } = answer.expect("listed");
            assert_eq!(online, None, "a node of one keeps presence in memory");
            assert_eq!(rooms, db.rooms().list(viewer, &query).expect("list"), "listing {i}");
            // On PostgreSQL the last messages of the listed rooms come with the page (aaa's
            // last 3; the other rooms have none); SQLite leaves them to the use case.
            let seqs: Option<Vec<(RoomId, Vec<Seq>)>> = latest.map(|latest| {
                latest.iter().map(|(room, messages)| (*room, messages.iter().map(|m| m.seq).collect())).collect()
            });
            let listed_aaa = rooms.iter().any(|l| l.room.id == aaa.id);
            let expected = if db.core.is_sqlite() {
                None
            } else if listed_aaa {
                Some(vec![(aaa.id, vec![Seq(2), Seq(3), Seq(4)])])
            } else {
                Some(vec![])
            };
            assert_eq!(seqs, expected, "listing {i}");
        }
    }

    fn listings_on_a_clustered_node_carry_who_is_online_in_their_rooms(db) {
        let presence: &dyn PresenceStore = &**db;
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (general, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        let (random, _) = join(db, "random", &bob, 3);
        let (node, now) = (Uuid::new_v4(), Utc::now());
        presence.enter(node, general.id, alex.id, now).expect("enter");
        presence.enter(node, general.id, bob.id, now).expect("enter");
        // Seen a minute ago: expired.
        presence.enter(node, random.id, bob.id, now - chrono::Duration::seconds(60)).expect("enter");
        let clustered = Db::connect(
            &db.target,
            DbOptions { listing_presence: Some(Duration::from_secs(20)), ..DbOptions::default() },
        )
        .expect("a second store on the same database");
        let (tx, rx) = std::sync::mpsc::channel();
        for viewer in [alex.id, bob.id] {
            let tx = tx.clone();
            let query = RoomListQuery { joined: true, page: page(10, 0), messages: 0 };
            clustered.list_then(
                viewer,
                query,
                Box::new(move |answer| {
                    let _ = tx.send((viewer, answer));
                }),
            );
        }
        drop(tx);
        let mut seen: Vec<(UserId, Option<Online>)> = rx
            .iter()
            .map(|(viewer, answer)| {
                let mut online = answer.expect("listed").online;
                if let Some(online) = online.as_mut() {
                    online.sort_unstable_by_key(|(room, user)| (room.0, user.0));
                }
                (viewer, online)
            })
            .collect();
        seen.sort_unstable_by_key(|(viewer, _)| viewer.0);
        let mut expected: Vec<(UserId, Option<Online>)> = [alex.id, bob.id]
            .into_iter()
            .map(|viewer| {
                // SQLite is one node: its presence is in memory, never the store's.
                let online = (!db.core.is_sqlite()).then(|| {
                    let mut online = vec![(general.id, alex.id), (general.id, bob.id)];
                    online.sort_unstable_by_key(|(room, user)| (room.0, user.0));
                    online
                });
                (viewer, online)
            })
            .collect();
        expected.sort_unstable_by_key(|(viewer, _)| viewer.0);
        assert_eq!(seen, expected);
        // A node of one (the default) leaves presence to the use case.
        let listed = list_then_and_wait(db, alex.id, RoomListQuery { joined: true, page: page(10, 0), messages: 0 });
        assert_eq!(listed.expect("listed").online, None);
    }

    fn members_lists_each_rooms_members_in_join_order(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let carol = add_user(db, "carol");
        let (r1, _) = join(db, "one", &carol, 1);
        join(db, "one", &alex, 2);
        join(db, "one", &bob, 3);
        let (r2, _) = join(db, "two", &bob, 4);
        join(db, "two", &carol, 5);
        let (r3, _) = join(db, "three", &alex, 6);

        let all = db.rooms().members(&[r1.id, r2.id]).expect("members");
        let of = |room: &Room| -> Vec<(UserId, &str)> {
            all.iter().filter(|(r, _, _)| *r == room.id).map(|(_, u, n)| (*u, n.as_str())).collect()
        };
        assert_eq!(of(&r1), [(carol.id, "carol"), (alex.id, "alex"), (bob.id, "bob")]);
        assert_eq!(of(&r2), [(bob.id, "bob"), (carol.id, "carol")]);
        assert_eq!(all.len(), 5, "room three was not asked for");
        assert_eq!(members_of(db, &r3), ["alex"]);
        assert!(db.rooms().members(&[]).expect("members of nothing").is_empty());
    }

    fn members_show_joins_leaves_renames_and_deletions_made_on_another_node_at_once(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        let other_node = Db::connect(&db.target, DbOptions::default()).expect("a second node");
        let names = || -> Vec<String> {
            let got = members_of(db, &room);
            // Twice: the second answer comes from memory and must be the same.
            assert_eq!(members_of(db, &room), got);
            got
        };
        assert_eq!(names(), ["alex"]);

        RoomRepository::join_or_create(&other_node, &room_name("general"), bob.id, at(2)).expect("join");
        assert_eq!(names(), ["alex", "bob"]);
        let patch = UserPatch { email: None, username: Some(username("robert")) };
        UserRepository::update(&other_node, bob.id, &patch).expect("rename").expect("bob exists");
        assert_eq!(names(), ["alex", "robert"]);
        assert!(RoomRepository::leave(&other_node, room.id, alex.id).expect("leave"));
        assert_eq!(names(), ["robert"]);
        UserRepository::delete(&other_node, bob.id).expect("delete").expect("bob exists");
        assert!(names().is_empty());
        // A room nobody is in is remembered as empty, and a join still shows.
        RoomRepository::join_or_create(&other_node, &room_name("general"), alex.id, at(3)).expect("join");
        assert_eq!(names(), ["alex"]);
    }

    fn members_markers_and_presence_take_any_number_of_rooms_in_one_question(db) {
        let alex = add_user(db, "alex");
        let rooms: Vec<Room> = (0..600).map(|i| join(db, &format!("room-{i}"), &alex, i)).map(|(r, _)| r).collect();
        let mut ids: Vec<RoomId> = rooms.iter().map(|r| r.id).collect();
        ids.push(RoomId(i64::MAX));
        ids.push(rooms[0].id);
        let members = db.rooms().members(&ids).expect("members");
        assert_eq!(members.len(), 600, "each room once; an unknown room has none");
        assert!(members.iter().zip(&rooms).all(|((r, u, _), room)| *r == room.id && *u == alex.id), "in the order asked");
        assert_eq!(db.rooms().read_markers(alex.id, &ids).expect("read_markers").len(), 600);
        let node = Uuid::new_v4();
        for room in &rooms[590..] {
            PresenceStore::enter(&**db, node, room.id, alex.id, Utc::now()).expect("enter");
        }
        let active = PresenceStore::active(&**db, &ids, Utc::now() - chrono::Duration::seconds(60)).expect("active");
        assert_eq!(active.len(), 10);
    }

    fn read_markers_lists_only_the_joined_rooms(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (r1, _) = join(db, "one", &alex, 1);
        let (r2, _) = join(db, "two", &bob, 2);
        send(db, &r2, &bob, "one", 3);
        send(db, &r2, &bob, "two", 4);
        join(db, "two", &alex, 5);
        let (r3, _) = join(db, "three", &bob, 6);

        let mut markers = db.rooms().read_markers(alex.id, &[r1.id, r2.id, r3.id]).expect("read_markers");
        markers.sort();
        assert_eq!(markers, [(r1.id, Seq(0)), (r2.id, Seq(2))]);
        assert!(db.rooms().read_markers(alex.id, &[]).expect("read_markers").is_empty());
        assert!(db.rooms().read_markers(UserId(Uuid::new_v4()), &[r1.id]).expect("read_markers").is_empty());
    }

    fn mark_read_only_moves_forward_and_is_false_for_non_members(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let carol = add_user(db, "carol");
        let (room, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        for i in 0..3 {
            send(db, &room, &alex, "news", 3 + i);
        }
        assert_eq!(marker(db, &bob, &room), Some(Seq(0)));
        assert!(db.rooms().mark_read(room.id, bob.id, Seq(2)).expect("mark_read"));
        assert_eq!(marker(db, &bob, &room), Some(Seq(2)));
        assert!(db.rooms().mark_read(room.id, bob.id, Seq(1)).expect("mark_read back"));
        assert_eq!(marker(db, &bob, &room), Some(Seq(2)), "never back");
        assert!(db.rooms().mark_read(room.id, bob.id, Seq(2)).expect("mark_read same"));
        assert!(db.rooms().mark_read(room.id, bob.id, Seq(3)).expect("mark_read"));
        assert_eq!(marker(db, &bob, &room), Some(Seq(3)));
        assert_eq!(marker(db, &alex, &room), Some(Seq(3)), "alex's marker is alex's");

        assert!(!db.rooms().mark_read(room.id, carol.id, Seq(1)).expect("mark_read by a non-member"));
        assert_eq!(marker(db, &carol, &room), None, "no membership was made");
        assert!(!db.rooms().mark_read(RoomId(room.id.0 + 1000), bob.id, Seq(1)).expect("unknown room"));
    }

    fn concurrent_first_joins_create_one_room(db) {
        let users: Vec<User> = (0..8).map(|i| add_user(db, &format!("user{i}"))).collect();
        let store = db.shared();
        let barrier = Arc::new(Barrier::new(users.len()));
        let handles: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (store, barrier, id) = (Arc::clone(&store), Arc::clone(&barrier), u.id);
                // The threads spell the name in two ways.
                let name = room_name(if i % 2 == 0 { "Lobby" } else { "lOBBY" });
                std::thread::spawn(move || {
                    barrier.wait();
                    RoomRepository::join_or_create(&*store, &name, id, at(1)).expect("join_or_create")
                })
            })
            .collect();
        let results: Vec<(Room, bool)> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "{results:?}");
        let first = &results[0].0;
        assert!(results.iter().all(|(r, _)| r.id == first.id && r.name == first.name), "{results:?}");
        assert_eq!(list_rooms(db, None, 200, 0).len(), 1);
        assert_eq!(members_of(db, first).len(), 8);
    }
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

on_both_backends! {
    fn append_numbers_each_rooms_messages_1_2_3_independently(db) {
        let alex = add_user(db, "alex");
        let (r1, _) = join(db, "one", &alex, 1);
        let (r2, _) = join(db, "two", &alex, 1);
        let mut got = Vec::new();
        for (room, t) in [(&r1, 2), (&r1, 3), (&r2, 4), (&r1, 5), (&r2, 6)] {
            got.push((room.id, send(db, room, &alex, &format!("at {t}"), t).seq.0));
        }
        assert_eq!(got, [(r1.id, 1), (r1.id, 2), (r2.id, 1), (r1.id, 3), (r2.id, 2)]);
        assert_eq!(seqs(&all_messages(db, &r1)), [1, 2, 3]);
        assert_eq!(seqs(&all_messages(db, &r2)), [1, 2]);
        let one = room_by_name(db, "one");
        assert_eq!((one.last_seq, one.last_activity_at), (Seq(3), at(5)));
        let two = room_by_name(db, "two");
        assert_eq!((two.last_seq, two.last_activity_at), (Seq(2), at(6)));
    }

    fn an_appended_message_comes_back_whole(db) {
        let alex = add_user(db, "alex");
        let (room, _) = join(db, "General", &alex, 1);
        let (m, created) = append(db, &new_message(room.id, alex.id, "Hello, wörld 👋", Some("key-1"), 7))
            .expect("append");
        assert!(created);
        assert_eq!(m.room_id, room.id);
        assert_eq!(m.room.as_str(), "General");
        assert_eq!(m.seq, Seq(1));
        assert_eq!(m.sender_id, Some(alex.id));
        assert_eq!(m.sender.as_ref().map(Username::as_str), Some("alex"));
        assert_eq!(m.content.as_str(), "Hello, wörld 👋");
        assert_eq!(m.created_at, at(7));
        assert_eq!(m.client_msg_id.as_ref().map(ClientMsgId::as_str), Some("key-1"));
        assert_eq!(all_messages(db, &room), [m]);
    }

    fn a_reused_client_msg_id_returns_the_original_and_stores_nothing(db) {
        let alex = add_user(db, "alex");
        let (room, _) = join(db, "general", &alex, 1);
        let (first, created) =
            append(db, &new_message(room.id, alex.id, "hello", Some("abc"), 2)).expect("append");
        assert!(created);
        let (again, created) =
            append(db, &new_message(room.id, alex.id, "something else", Some("abc"), 3)).expect("resend");
        assert!(!created);
        assert_eq!(again, first, "the original, content and time included");
        assert_eq!(all_messages(db, &room), [first]);
        let stored = room_by_name(db, "general");
        assert_eq!((stored.last_seq, stored.last_activity_at), (Seq(1), at(2)), "the resend used no seq");
        assert_eq!(send(db, &room, &alex, "next", 4).seq, Seq(2), "no gap after a resend");
    }

    fn the_same_client_msg_id_from_another_sender_or_room_is_a_new_message(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (r1, _) = join(db, "one", &alex, 1);
        join(db, "one", &bob, 1);
        let (r2, _) = join(db, "two", &alex, 1);
        let (a, created_a) = append(db, &new_message(r1.id, alex.id, "from alex", Some("abc"), 2)).expect("append");
        let (b, created_b) = append(db, &new_message(r1.id, bob.id, "from bob", Some("abc"), 3)).expect("append");
        let (c, created_c) = append(db, &new_message(r2.id, alex.id, "elsewhere", Some("abc"), 4)).expect("append");
        assert!(created_a && created_b && created_c);
        assert_ne!(a.id, b.id);
        assert_eq!((a.seq, b.seq, c.seq), (Seq(1), Seq(2), Seq(1)));
        assert_eq!(b.sender_id, Some(bob.id));
        assert_eq!(seqs(&all_messages(db, &r1)), [1, 2]);
        // And each is still idempotent for its own sender.
        let (again, created) = append(db, &new_message(r1.id, bob.id, "x", Some("abc"), 5)).expect("resend");
        assert!(!created);
        assert_eq!(again, b);
    }

    fn append_moves_the_senders_read_marker_to_the_new_seq(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        send(db, &room, &alex, "one", 3);
        assert_eq!((marker(db, &alex, &room), marker(db, &bob, &room)), (Some(Seq(1)), Some(Seq(0))));
        send(db, &room, &alex, "two", 4);
        send(db, &room, &bob, "three", 5);
        assert_eq!((marker(db, &alex, &room), marker(db, &bob, &room)), (Some(Seq(2)), Some(Seq(3))));
        // A resend moves nothing.
        append(db, &new_message(room.id, alex.id, "four", Some("k"), 6)).expect("append");
        db.rooms().mark_read(room.id, bob.id, Seq(4)).expect("mark_read");
        append(db, &new_message(room.id, alex.id, "four", Some("k"), 7)).expect("resend");
        assert_eq!(marker(db, &alex, &room), Some(Seq(4)));
        assert_eq!(marker(db, &bob, &room), Some(Seq(4)));
    }

    fn an_append_by_a_non_member_stores_nothing_and_takes_no_seq(db) {
        let alex = add_user(db, "alex");
        let eve = add_user(db, "eve");
        let (room, _) = join(db, "general", &alex, 1);
        let got = MessageRepository::append(&**db, &new_message(room.id, eve.id, "let me in", Some("k"), 2))
            .expect("append");
        assert_eq!(got, Appended::NotAMember);
        assert!(all_messages(db, &room).is_empty());
        assert_eq!(room_by_name(db, "general").last_seq, Seq(0));
        assert_eq!(send(db, &room, &alex, "first", 3).seq, Seq(1));
    }

    fn a_batch_of_appends_decides_each_message_as_a_lone_append_would(db) {
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let eve = add_user(db, "eve");
        let (one, _) = join(db, "one", &alex, 1);
        join(db, "one", &bob, 1);
        let (two, _) = join(db, "two", &bob, 1);
        let (original, _) = append(db, &new_message(one.id, alex.id, "earlier", Some("old"), 2)).expect("append");
        let batch = [
            new_message(one.id, alex.id, "a1", Some("k1"), 10),
            new_message(two.id, bob.id, "b1", None, 11),
            new_message(one.id, eve.id, "not a member", None, 12),
            new_message(one.id, alex.id, "resend of earlier", Some("old"), 13),
            new_message(one.id, bob.id, "b2", Some("k1"), 14),
            new_message(one.id, alex.id, "resend within the batch", Some("k1"), 15),
            new_message(two.id, bob.id, "b3", None, 16),
            new_message(one.id, alex.id, "a2", None, 17),
        ];
        let results: Vec<Appended> =
            db.core.append_batch(&batch).into_iter().map(|r| r.expect("each append")).collect();

        let stored = |i: usize| match &results[i] {
            Appended::Stored(m) => m.clone(),
            other => panic!("message {i} not stored: {other:?}"),
        };
        let (a1, b1, b2, b3, a2) = (stored(0), stored(1), stored(4), stored(6), stored(7));
        assert_eq!((a1.seq, b2.seq, a2.seq), (Seq(2), Seq(3), Seq(4)), "room one continues after seq 1, in batch order");
        assert_eq!((b1.seq, b3.seq), (Seq(1), Seq(2)), "room two counts on its own");
        assert_eq!(results[2], Appended::NotAMember);
        assert_eq!(results[3], Appended::Duplicate(original.clone()));
        assert_eq!(results[5], Appended::Duplicate(a1.clone()), "a resend within the batch gets the first");
        assert_eq!(a1.room.as_str(), "one");
        assert_eq!(a1.sender.as_ref().map(Username::as_str), Some("alex"));
        assert_eq!(b3.sender.as_ref().map(Username::as_str), Some("bob"));
        assert_eq!(a1.created_at, at(10));
        assert_eq!(a1.client_msg_id.as_ref().map(ClientMsgId::as_str), Some("k1"));
        assert_eq!(b2.client_msg_id.as_ref().map(ClientMsgId::as_str), Some("k1"), "same key, other sender");

        assert_eq!(all_messages(db, &one), [original, a1, b2, a2.clone()], "stored as returned");
        assert_eq!(all_messages(db, &two), [b1, b3]);
        let one_now = room_by_name(db, "one");
        assert_eq!((one_now.last_seq, one_now.last_activity_at), (Seq(4), at(17)));
        assert_eq!(room_by_name(db, "two").last_seq, Seq(2));
        assert_eq!(marker(db, &alex, &one), Some(Seq(4)), "the sender's newest message in the batch");
        assert_eq!(marker(db, &bob, &one), Some(Seq(3)));
        assert_eq!(marker(db, &bob, &two), Some(Seq(2)));
        assert_eq!(send(db, &one, &bob, "after", 18).seq, Seq(5), "no gap after a batch");
    }

    fn a_full_batch_over_few_rooms_takes_each_rooms_next_seqs_in_batch_order(db) {
        let alex = add_user(db, "alex");
        let rooms: Vec<Room> = ["r0", "r1", "r2"].iter().map(|name| join(db, name, &alex, 1).0).collect();
        send(db, &rooms[1], &alex, "before", 2);
        // Every tenth message resends the one before it (same room, same key): answered
        // with that one, not stored.
        let resend = |i: usize| i % 10 == 9;
        let room_of = |i: usize| if resend(i) { (i - 1) % 3 } else { i % 3 };
        let key_of = |i: usize| if resend(i) { format!("k{}", i - 1) } else { format!("k{i}") };
        let batch: Vec<NewMessage> = (0..MAX_APPEND_BATCH)
            .map(|i| {
                let t = i64::try_from(i).expect("small") + 3;
                new_message(rooms[room_of(i)].id, alex.id, &format!("m{i}"), Some(&key_of(i)), t)
            })
            .collect();
        let results = db.core.append_batch(&batch);
        assert_eq!(results.len(), MAX_APPEND_BATCH);
        let mut stored: [Vec<(i64, webchat_domain::model::MessageId)>; 3] = [vec![], vec![], vec![]];
        for (i, result) in results.into_iter().enumerate() {
            match result.expect("each append") {
                Appended::Stored(m) => {
                    assert!(!resend(i), "message {i} is a resend");
                    assert_eq!(m.content.as_str(), format!("m{i}"));
                    stored[room_of(i)].push((m.seq.0, m.id));
                }
                Appended::Duplicate(m) => {
                    assert!(resend(i), "message {i} is not a resend");
                    assert_eq!(m.content.as_str(), format!("m{}", i - 1), "a resend gets the first");
                }
                Appended::NotAMember => panic!("message {i} refused"),
            }
        }
        for (r, room) in rooms.iter().enumerate() {
            let first = if r == 1 { 2 } else { 1 };
            let got: Vec<i64> = stored[r].iter().map(|(seq, _)| *seq).collect();
            let want: Vec<i64> = (first..first + i64::try_from(got.len()).expect("small")).collect();
            assert_eq!(got, want, "room {r}: gap-free, in batch order");
            assert!(stored[r].windows(2).all(|w| w[0].1.0 < w[1].1.0), "ids grow with seq");
            assert_eq!(seqs(&all_messages(db, room))[usize::from(r == 1)..], want[..]);
            assert_eq!(room_by_name(db, room.name.as_str()).last_seq, Seq(*want.last().expect("some")));
        }
    }

    fn a_batch_of_only_refused_and_resent_messages_stores_nothing(db) {
        let alex = add_user(db, "alex");
        let eve = add_user(db, "eve");
        let (room, _) = join(db, "general", &alex, 1);
        let (original, _) = append(db, &new_message(room.id, alex.id, "hi", Some("k"), 2)).expect("append");
        let results: Vec<Appended> = db
            .core
            .append_batch(&[
                new_message(room.id, eve.id, "no", None, 3),
                new_message(room.id, alex.id, "again", Some("k"), 4),
            ])
            .into_iter()
            .map(|r| r.expect("each append"))
            .collect();
        assert_eq!(results, [Appended::NotAMember, Appended::Duplicate(original.clone())]);
        assert_eq!(all_messages(db, &room), [original]);
        assert_eq!(room_by_name(db, "general").last_seq, Seq(1));
    }

    fn page_reads_the_latest_before_and_after_pages_oldest_first_with_has_more(db) {
        let alex = add_user(db, "alex");
        let (room, _) = join(db, "general", &alex, 1);
        let (empty, _) = join(db, "empty", &alex, 1);
        for i in 1..=7 {
            send(db, &room, &alex, &format!("message {i}"), 1 + i);
        }
        let p = |cursor, limit| {
            let page = db.messages().page(room.id, cursor, limit).expect("page");
            (seqs(&page.messages), page.has_more)
        };
        use HistoryCursor::{After, Before, Latest};
        assert_eq!(p(Latest, 3), (vec![5, 6, 7], true));
        assert_eq!(p(Latest, 7), (vec![1, 2, 3, 4, 5, 6, 7], false));
        assert_eq!(p(Latest, 50), (vec![1, 2, 3, 4, 5, 6, 7], false));
        assert_eq!(p(Before(Seq(5)), 3), (vec![2, 3, 4], true));
        assert_eq!(p(Before(Seq(4)), 3), (vec![1, 2, 3], false));
        assert_eq!(p(Before(Seq(2)), 3), (vec![1], false));
        assert_eq!(p(Before(Seq(1)), 3), (vec![], false));
        assert_eq!(p(Before(Seq(100)), 2), (vec![6, 7], true));
        assert_eq!(p(After(Seq(2)), 3), (vec![3, 4, 5], true));
        assert_eq!(p(After(Seq(4)), 3), (vec![5, 6, 7], false));
        assert_eq!(p(After(Seq(0)), 1), (vec![1], true));
        assert_eq!(p(After(Seq(7)), 3), (vec![], false));

        let page = db.messages().page(room.id, Latest, 1).expect("page");
        assert_eq!(page.messages[0].content.as_str(), "message 7");
        assert_eq!(page.messages[0].room.as_str(), "general");
        for cursor in [Latest, Before(Seq(3)), After(Seq(0))] {
            let page = db.messages().page(empty.id, cursor, 10).expect("page");
            assert!(page.messages.is_empty() && !page.has_more);
        }
        let page = db.messages().page(RoomId(room.id.0 + 1000), Latest, 10).expect("page of an unknown room");
        assert!(page.messages.is_empty() && !page.has_more);
    }

    fn latest_returns_the_last_n_of_each_room_oldest_first(db) {
        let alex = add_user(db, "alex");
        let (r1, _) = join(db, "one", &alex, 1);
        let (r2, _) = join(db, "two", &alex, 1);
        let (r3, _) = join(db, "three", &alex, 1);
        // Interleaved, so message ids do not follow seqs room by room.
        for i in 0..5 {
            send(db, &r2, &alex, "two", 2 + i);
            send(db, &r1, &alex, "one", 2 + i);
            if i < 2 {
                send(db, &r3, &alex, "three", 2 + i);
            }
        }
        send(db, &r2, &alex, "two", 10);
        let wanted = [(r2.id, Seq(6)), (r1.id, Seq(5)), (r3.id, Seq(2))];

        let got = latest_flat(db, &wanted, 3).expect("latest");
        let mut by_room: BTreeMap<RoomId, Vec<i64>> = BTreeMap::new();
        for m in &got {
            by_room.entry(m.room_id).or_default().push(m.seq.0);
        }
        assert_eq!(by_room.get(&r1.id), Some(&vec![3, 4, 5]));
        assert_eq!(by_room.get(&r2.id), Some(&vec![4, 5, 6]));
        assert_eq!(by_room.get(&r3.id), Some(&vec![1, 2]), "fewer than n when the room has fewer");
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|m| m.sender.as_ref().map(Username::as_str) == Some("alex")));

        let only_one = latest_flat(db, &[(r1.id, Seq(5))], 1).expect("latest");
        assert_eq!(seqs(&only_one), [5]);
        assert_eq!(only_one[0].room.as_str(), "one");
        assert!(latest_flat(db, &[], 3).expect("latest of nothing").is_empty());
        assert!(latest_flat(db, &wanted, 0).expect("latest 0").is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

on_both_backends! {
    fn concurrent_appends_to_one_room_get_seqs_1_to_200_without_gaps_or_repeats(db) {
        const THREADS: usize = 8;
        const EACH: usize = 25;
        let senders: Vec<User> = (0..THREADS).map(|i| add_user(db, &format!("sender{i}"))).collect();
        let mut room = None;
        for (i, u) in senders.iter().enumerate() {
            room = Some(join(db, "busy", u, i64::try_from(i).expect("small")).0);
        }
        let room = room.expect("the room");
        let store: Arc<Db> = db.shared();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = senders
            .iter()
            .map(|u| {
                let (store, barrier, sender, room) = (Arc::clone(&store), Arc::clone(&barrier), u.id, room.id);
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..EACH)
                        .map(|i| {
                            let m = new_message(room, sender, &format!("message {i}"), None, 100);
                            let (stored, created) = append(&store, &m).expect("append");
                            assert!(created);
                            stored.seq.0
                        })
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            let mine = h.join().expect("thread");
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "one sender's seqs grow: {mine:?}");
            all.extend(mine);
        }
        all.sort_unstable();
        let expected: Vec<i64> = (1..=200).collect();
        assert_eq!(all, expected);
        assert_eq!(seqs(&all_messages(db, &room)), expected);
        assert_eq!(room_by_name(db, "busy").last_seq, Seq(200));
    }

    fn concurrent_appends_of_one_client_msg_id_store_exactly_one_message(db) {
        let alex = add_user(db, "alex");
        let (room, _) = join(db, "general", &alex, 1);
        let store = db.shared();
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                let m = new_message(room.id, alex.id, &format!("attempt {i}"), Some("only-once"), 2);
                std::thread::spawn(move || {
                    barrier.wait();
                    append(&store, &m).expect("append")
                })
            })
            .collect();
        let results: Vec<(Message, bool)> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
        let created: Vec<&Message> = results.iter().filter(|(_, c)| *c).map(|(m, _)| m).collect();
        assert_eq!(created.len(), 1, "{results:?}");
        assert!(results.iter().all(|(m, _)| m == created[0]), "everyone gets the original: {results:?}");
        assert_eq!(created[0].seq, Seq(1));
        assert_eq!(all_messages(db, &room).len(), 1);
        assert_eq!(room_by_name(db, "general").last_seq, Seq(1));
        assert_eq!(send(db, &room, &alex, "next", 3).seq, Seq(2), "the losers left no gap");
    }
}

on_both_backends! {
    fn concurrent_mark_reads_never_move_a_marker_back(db) {
        const THREADS: i64 = 8;
        const ROUNDS: i64 = 25;
        let alex = add_user(db, "alex");
        let bob = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        join(db, "general", &bob, 2);
        for i in 0..THREADS * ROUNDS {
            send(db, &room, &alex, "news", 3 + i);
        }
        let store = db.shared();
        let barrier = Arc::new(Barrier::new(usize::try_from(THREADS).expect("small")));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, barrier, room, bob) = (Arc::clone(&store), Arc::clone(&barrier), room.id, bob.id);
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    for round in 0..ROUNDS {
                        barrier.wait();
                        // Every round, the threads mark the next eight seqs at once.
                        let seq = Seq(round * THREADS + t + 1);
                        assert!(RoomRepository::mark_read(&*store, room, bob, seq).expect("mark_read"));
                        barrier.wait();
                        let markers = RoomRepository::read_markers(&*store, bob, &[room]).expect("read_markers");
                        seen.push((round, markers[0].1));
                    }
                    seen
                })
            })
            .collect();
        for h in handles {
            for (round, marker) in h.join().expect("thread") {
                assert_eq!(marker, Seq((round + 1) * THREADS), "after round {round} the marker is the round's highest seq");
            }
        }
    }
    fn latest_from_memory_answers_as_the_store_does(db) {
        let alex = add_user(db, "alex");
        let (r1, _) = join(db, "one", &alex, 1);
        let (r2, _) = join(db, "two", &alex, 1);
        for i in 0..6 {
            send(db, &r1, &alex, "one", 2 + i);
            send(db, &r2, &alex, "two", 2 + i);
        }
        let wanted = [(r1.id, Seq(6)), (r2.id, Seq(6))];
        let first = latest_flat(db, &wanted, 4).expect("latest");
        assert_eq!(first.len(), 8);
        // Read again: from memory, the same messages in the same order.
        assert_eq!(latest_flat(db, &wanted, 4).expect("again"), first);
        // A narrower window of what is remembered, and a room read from the store beside it.
        let narrow = latest_flat(db, &[(r2.id, Seq(6)), (r1.id, Seq(6))], 2).expect("narrow");
        assert_eq!(seqs(&narrow), vec![5, 6, 5, 6]);
        // A wider window than was read, and a room that moved on, come from the store.
        assert_eq!(latest_flat(db, &[(r1.id, Seq(6))], 6).expect("wider").len(), 6);
        send(db, &r1, &alex, "newer", 20);
        assert_eq!(seqs(&latest_flat(db, &[(r1.id, Seq(7))], 2).expect("moved on")), vec![6, 7]);
    }

    fn latest_shows_a_rename_and_a_deleted_sender_at_once(db) {
        let alex = add_user(db, "alex");
        let bo = add_user(db, "bob");
        let (room, _) = join(db, "general", &alex, 1);
        join(db, "general", &bo, 1);
        send(db, &room, &alex, "hello", 2);
        send(db, &room, &bo, "hi", 3);
        let wanted = [(room.id, Seq(2))];
        let names = |got: Vec<Message>| got.into_iter().map(|m| m.sender.map(|n| n.as_str().to_owned())).collect::<Vec<_>>();
        assert_eq!(names(latest_flat(db, &wanted, 10).expect("latest")), [Some("alex".into()), Some("bob".into())]);

        let patch = UserPatch { email: None, username: Some(username("alexander")) };
        db.users().update(alex.id, &patch).expect("rename").expect("alex exists");
        assert_eq!(names(latest_flat(db, &wanted, 10).expect("latest")), [Some("alexander".into()), Some("bob".into())]);

        db.users().delete(bo.id).expect("delete").expect("bob exists");
        let got = latest_flat(db, &wanted, 10).expect("latest");
        assert_eq!(got[1].sender_id, None);
        assert_eq!(names(got), [Some("alexander".into()), None]);
    }

    fn latest_returns_at_most_n_per_room_when_newer_messages_arrived(db) {
        let alex = add_user(db, "alex");
        let (room, _) = join(db, "general", &alex, 1);
        for i in 0..5 {
            send(db, &room, &alex, "old", 2 + i);
        }
        // The caller read last_seq = 5; two messages arrive before it asks for the latest.
        send(db, &room, &alex, "new", 10);
        send(db, &room, &alex, "new", 11);
        let got = latest_flat(db, &[(room.id, Seq(5))], 3).expect("latest");
        assert_eq!(got.len(), 3, "per_room is a limit: {:?}", seqs(&got));
        assert!(got.windows(2).all(|w| w[0].seq.next() == w[1].seq), "consecutive, oldest first: {:?}", seqs(&got));
    }
}

// ---------------------------------------------------------------------------------------
// Settings, readiness, migrations
// ---------------------------------------------------------------------------------------

on_both_backends! {
    fn setting_or_insert_keeps_the_first_value(db) {
        let first = db.setting_or_insert("jwt_secret", || "first".into()).expect("setting");
        assert_eq!(first, "first");
        let mut called = false;
        let again = db
            .setting_or_insert("jwt_secret", || {
                called = true;
                "second".into()
            })
            .expect("setting");
        assert_eq!(again, "first");
        assert!(!called, "no new value is made when one is stored");
        assert_eq!(db.setting_or_insert("other", || "x".into()).expect("setting"), "x");
        assert_eq!(db.setting_or_insert("jwt_secret", || "third".into()).expect("setting"), "first");
    }

    fn a_connected_store_is_ready(db) {
        assert!(db.is_ready());
    }

    fn connecting_twice_to_one_database_runs_the_migrations_once(db) {
        let alex = add_user(db, "alex");
        let second = Db::connect(&db.target, DbOptions::default()).expect("connect again");
        assert!(second.is_ready());
        assert_eq!(UserRepository::find(&second, alex.id).expect("find"), Some(alex.clone()));
        drop(second);
        let third = Db::connect(&db.target, DbOptions::default()).expect("and again");
        assert_eq!(UserRepository::list(&third, &UserListQuery { search: None, page: page(10, 0) }).expect("list"), [alex]);
    }
}

#[test]
fn is_ready_turns_false_and_calls_are_unavailable_once_the_postgres_database_is_gone() {
    let db = TestDb::new(Backend::Postgres);
    let options = DbOptions { pool_size: 2, connect_timeout: Duration::from_secs(1), listing_presence: None };
    let store = Db::connect(&db.target, options).expect("connect");
    assert!(store.is_ready());
    let name = db.pg_name.as_deref().expect("a PostgreSQL database");
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut pg_admin())
        .expect("DROP DATABASE");
    assert!(!store.is_ready());
    match UserRepository::find(&store, UserId(Uuid::new_v4())) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn connecting_to_a_missing_postgres_database_fails() {
    let target =
        DatabaseTarget::Postgres(format!("{}/wc_infra_missing_{}", pg_base(), Uuid::new_v4().simple()));
    match Db::connect(&target, DbOptions::default()) {
        Err(DbError::Connect(_)) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn connecting_to_a_sqlite_file_in_a_missing_directory_fails() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("no").join("such").join("dir.db").to_string_lossy().into_owned();
    assert!(Db::connect(&DatabaseTarget::Sqlite(path), DbOptions::default()).is_err());
}

// ---------------------------------------------------------------------------------------
// DatabaseTarget::parse
// ---------------------------------------------------------------------------------------

#[test]
fn parse_selects_postgres_for_postgres_and_postgresql_urls() {
    for url in ["postgres://u:p@db.example:5432/webchat", "postgresql://u@localhost/webchat"] {
        assert_eq!(DatabaseTarget::parse(url), Ok(DatabaseTarget::Postgres(url.to_owned())));
    }
    assert_eq!(
        DatabaseTarget::parse("  postgres://localhost/x \n"),
        Ok(DatabaseTarget::Postgres("postgres://localhost/x".into())),
        "surrounding whitespace is ignored"
    );
    assert!(!DatabaseTarget::parse("postgres://localhost/x").expect("parses").is_sqlite());
}

#[test]
fn parse_selects_sqlite_for_sqlite_urls_and_bare_paths() {
    for (url, path) in [
        ("sqlite:///var/lib/webchat.db", "/var/lib/webchat.db"),
        ("sqlite://data/webchat.db", "data/webchat.db"),
        ("sqlite:webchat.db", "webchat.db"),
        ("sqlite:/tmp/webchat.db", "/tmp/webchat.db"),
        ("/var/lib/webchat.db", "/var/lib/webchat.db"),
        ("webchat.db", "webchat.db"),
        ("./data/chat.sqlite3", "./data/chat.sqlite3"),
    ] {
        let target = DatabaseTarget::parse(url);
        assert_eq!(target, Ok(DatabaseTarget::Sqlite(path.to_owned())), "{url}");
        assert!(target.expect("parses").is_sqlite());
    }
}

#[test]
fn parse_refuses_an_empty_url_and_other_schemes() {
    for url in [
        "",
        "   ",
        "sqlite://",
        "sqlite:",
        "mysql://root@localhost/webchat",
        "redis://localhost",
        "sqlite://mysql://x",
    ] {
        assert!(DatabaseTarget::parse(url).is_err(), "{url:?} should be refused");
    }
}

/// `.cargo/config.toml` builds the bundled SQLite with the planner stability guarantee. Without
/// it every cached statement with `LIMIT ?` is planned anew on each run (see that file).
#[test]
fn the_bundled_sqlite_plans_statements_without_looking_at_bound_values() {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = TestDb::new(Backend::Sqlite);
    let found: Found = db
        .read(|c| {
            diesel::sql_query(
                "SELECT count(*) AS n FROM pragma_compile_options WHERE compile_options = 'ENABLE_QPSG'",
            )
            .get_result(c)
        })
        .expect("read the compile options");
    assert_eq!(found.n, 1, "SQLite was built without SQLITE_ENABLE_QPSG");
}

/// SQLite's page caches share one budget in the process, so memory stays bounded however
/// large the pool and the tables grow (the soak, W8, in docs/benchmarks.md).
#[test]
fn sqlite_connections_keep_their_page_caches_within_the_process_budget() {
    #[derive(diesel::QueryableByName)]
    struct Limit {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        soft_heap_limit: i64,
    }
    let db = TestDb::new(Backend::Sqlite);
    let limit: Limit =
        db.read(|c| diesel::sql_query("PRAGMA soft_heap_limit").get_result(c)).expect("read the limit");
    assert_eq!(u64::try_from(limit.soft_heap_limit).ok(), Some(super::SQLITE_HEAP_BUDGET));
}
