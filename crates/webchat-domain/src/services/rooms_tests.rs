use super::*;
use crate::StoreError;
use crate::model::{LatestMessages, Listing, MessageId, Page, SessionId, Username};
use crate::ports::{
    MockClock, MockMessageBus, MockMessageRepository, MockPresenceReader, MockRoomRepository, StoreResult,
};
use chrono::{DateTime, Duration, Utc};
use mockall::predicate::eq;
use std::sync::Mutex;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const ALICE: UserId = UserId(Uuid::from_u128(0xA11CE));
const BOB: UserId = UserId(Uuid::from_u128(0xB0B));
const CAROL: UserId = UserId(Uuid::from_u128(0xCA201));
const GENERAL: RoomId = RoomId(1);
const RANDOM: RoomId = RoomId(2);
const EMPTY: RoomId = RoomId(3);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_727_526_600, 0).expect("a valid timestamp")
}

fn ctx(user_id: UserId) -> AuthContext {
    AuthContext { user_id, session_id: SessionId(Uuid::from_u128(0x5E55)) }
}

fn username(s: &str) -> Username {
    Username::parse(s).expect("a valid username")
}

fn name(s: &str) -> RoomName {
    RoomName::parse(s).expect("a valid room name")
}

fn room(id: RoomId, room_name: &str, last_seq: i64) -> Room {
    Room {
        id,
        name: name(room_name),
        created_at: now() - Duration::days(1),
        last_seq: Seq(last_seq),
        last_activity_at: now() - Duration::minutes(last_seq),
    }
}

fn general() -> Room {
    room(GENERAL, "general", 5)
}

fn content(s: &str) -> MessageContent {
    MessageContent::parse(s).expect("valid content")
}

fn message(room: &Room, seq: i64, sender: UserId, sender_name: &str) -> Message {
    Message {
        id: MessageId(room.id.0 * 1000 + seq),
        room_id: room.id,
        room: room.name.clone(),
        seq: Seq(seq),
        sender_id: Some(sender),
        sender: Some(username(sender_name)),
        content: content(&format!("message {seq}")),
        created_at: now(),
        client_msg_id: None,
    }
}

/// Every port mocked; the clock always says [`now`]. Unconfigured calls panic.
struct Mocks {
    rooms: MockRoomRepository,
    messages: MockMessageRepository,
    presence: MockPresenceReader,
    clock: MockClock,
    bus: MockMessageBus,
    /// Every event the service published, in order.
    published: Arc<Mutex<Vec<Event>>>,
}

impl Mocks {
    fn new() -> Self {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        let published = Arc::new(Mutex::new(Vec::new()));
        let mut bus = MockMessageBus::new();
        let sink = published.clone();
        bus.expect_publish().returning(move |e| sink.lock().expect("lock").push(e));
        Self {
            bus,
            published,
            rooms: MockRoomRepository::new(),
            messages: MockMessageRepository::new(),
            presence: MockPresenceReader::new(),
            clock,
        }
    }

    /// The store knows `room` under `room_name` (and nothing else).
    fn finding(&mut self, room_name: &str, found: Option<Room>) {
        self.rooms.expect_find_by_name().with(eq(name(room_name))).return_const(Ok(found));
    }

    /// The single-room view of `general` for ALICE: members alice and bob, bob online,
    /// alice's marker at 3, the last two messages embedded (asked for 50).
    fn general_view_of_alice(&mut self) -> RoomView {
        let room = general();
        self.rooms
            .expect_members()
            .withf(|ids| ids == [GENERAL])
            .times(1)
            .returning(|_| Ok(vec![(GENERAL, ALICE, username("alice")), (GENERAL, BOB, username("bob"))]));
        self.rooms
            .expect_read_markers()
            .withf(|user, ids| *user == ALICE && ids == [GENERAL])
            .times(1)
            .returning(|_, _| Ok(vec![(GENERAL, Seq(3))]));
        let messages = vec![message(&room, 4, BOB, "bob"), message(&room, 5, ALICE, "alice")];
        let latest = vec![(GENERAL, LatestMessages::from(messages.clone()))];
        self.messages
            .expect_latest()
            .withf(|rooms, per_room| rooms == [(GENERAL, Seq(5))] && *per_room == 50)
            .times(1)
            .returning(move |_, _| Ok(latest.clone()));
        self.presence
            .expect_active_users()
            .withf(|rooms| rooms == [GENERAL])
            .return_const(vec![(GENERAL, BOB)]);
        RoomView {
            room,
            participants: vec![username("alice"), username("bob")],
            active_participants: vec![username("bob")],
            unread: 2,
            joined: true,
            messages: messages.into(),
        }
    }

    fn service(self) -> RoomService {
        RoomService::new(
            Arc::new(self.rooms),
            Arc::new(self.messages),
            Arc::new(self.presence),
            Arc::new(self.clock),
            Arc::new(self.bus),
        )
    }

    /// Runs `use_case` on the service; returns its result and every event it published.
    fn run<T>(self, use_case: impl FnOnce(&RoomService) -> T) -> (T, Vec<Event>) {
        let published = Arc::clone(&self.published);
        let result = use_case(&self.service());
        let events = published.lock().expect("lock").clone();
        (result, events)
    }
}

/// ALICE joined (`true`) or left `general`.
fn alice_membership_of_general(joined: bool) -> Event {
    Event::Membership { room: GENERAL, room_name: name("general"), user: ALICE, joined }
}

fn list_query(messages: u32) -> RoomListQuery {
    RoomListQuery { joined: false, page: Page::new(100, 0).expect("a valid page"), messages }
}

// ---------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------

#[test]
fn list_builds_a_view_of_every_room_as_the_viewer_sees_it() {
    let (general, random, empty) = (general(), room(RANDOM, "random", 3), room(EMPTY, "empty", 0));
    let mut m = Mocks::new();
    let listed = vec![
        listed(&general, &[(ALICE, "alice"), (BOB, "bob")], Some(3)),
        listed(&random, &[(BOB, "bob"), (CAROL, "carol")], None),
        listed(&empty, &[], None),
    ];
    m.rooms
        .expect_list()
        .with(eq(ALICE), eq(list_query(2)))
        .times(1)
        .returning(move |_, _| Ok(listed.clone()));
    // The listing brought the members and markers: nothing more is asked of the rooms.
    m.rooms.expect_members().never();
    m.rooms.expect_read_markers().never();
    let (g4, g5, r3) = (
        message(&general, 4, BOB, "bob"),
        message(&general, 5, ALICE, "alice"),
        message(&random, 3, CAROL, "carol"),
    );
    let latest = vec![
        (RANDOM, LatestMessages::from(vec![r3.clone()])),
        (GENERAL, LatestMessages::from(vec![g4.clone(), g5.clone()])),
    ];
    // The empty room is not asked for.
    m.messages
        .expect_latest()
        .withf(|rooms, per_room| rooms == [(GENERAL, Seq(5)), (RANDOM, Seq(3))] && *per_room == 2)
        .times(1)
        .returning(move |_, _| Ok(latest.clone()));
    // Carol is online in general but not a member; alice is online in the empty room but
    // not a member of it: neither counts as an active participant there.
    m.presence.expect_active_users().times(1).return_const(vec![
        (GENERAL, BOB),
        (GENERAL, CAROL),
        (EMPTY, ALICE),
    ]);

    let views = m.service().list(ctx(ALICE), &list_query(2));

    assert_eq!(
        views,
        Ok(vec![
            RoomView {
                room: general,
                participants: vec![username("alice"), username("bob")],
                active_participants: vec![username("bob")],
                unread: 2,
                joined: true,
                messages: vec![g4, g5].into(),
            },
            RoomView {
                room: random,
                participants: vec![username("bob"), username("carol")],
                active_participants: vec![],
                unread: 0,
                joined: false,
                messages: vec![r3].into(),
            },
            RoomView {
                room: empty,
                participants: vec![],
                active_participants: vec![],
                unread: 0,
                joined: false,
                messages: LatestMessages::default(),
            },
        ])
    );
}

/// `room` as a listing holds it: its members and the viewer's marker.
fn listed(room: &Room, members: &[(UserId, &str)], marker: Option<i64>) -> ListedRoom {
    ListedRoom {
        room: room.clone(),
        members: members.iter().map(|(id, name)| (*id, username(name))).collect(),
        read_marker: marker.map(Seq),
    }
}

/// Lists `rooms` for ALICE, a member of each with her marker at `marker`, nobody online.
fn list_with(rooms: Vec<Room>, query: &RoomListQuery, marker: i64, m: &mut Mocks) {
    let listed: Vec<ListedRoom> =
        rooms.iter().map(|r| listed(r, &[(ALICE, "alice")], Some(marker))).collect();
    m.rooms
        .expect_list()
        .with(eq(ALICE), eq(query.clone()))
        .times(1)
        .returning(move |_, _| Ok(listed.clone()));
    m.presence.expect_active_users().return_const(Vec::<(RoomId, UserId)>::new());
}

#[test]
fn list_then_hands_done_the_views_once_the_store_answers() {
    let general = general();
    let mut m = Mocks::new();
    let listed = vec![listed(&general, &[(ALICE, "alice"), (BOB, "bob")], Some(3))];
    // The store answers later, from a thread of its own.
    let held: Arc<Mutex<Option<crate::ports::ListDone>>> = Arc::default();
    let holder = Arc::clone(&held);
    m.rooms
        .expect_list_then()
        .withf(|viewer, query, _| *viewer == ALICE && *query == list_query(1))
        .times(1)
        .returning(move |_, _, done| {
            *holder.lock().expect("the holder") = Some(done);
        });
    m.rooms.expect_list().never();
    let g5 = message(&general, 5, ALICE, "alice");
    let latest = vec![(GENERAL, LatestMessages::from(vec![g5.clone()]))];
    m.messages
        .expect_latest()
        .withf(|rooms, per_room| rooms == [(GENERAL, Seq(5))] && *per_room == 1)
        .times(1)
        .returning(move |_, _| Ok(latest.clone()));
    m.presence.expect_active_users().times(1).return_const(vec![(GENERAL, BOB)]);
    let answer: Arc<Mutex<Option<DomainResult<Vec<RoomView>>>>> = Arc::default();
    let into = Arc::clone(&answer);

    m.service().list_then(ctx(ALICE), list_query(1), move |views| {
        *into.lock().expect("the answer") = Some(views);
    });
    assert!(answer.lock().expect("the answer").is_none(), "no answer before the store's");
    let done = held.lock().expect("the holder").take().expect("list_then was asked");
    done(Ok(Listing { rooms: listed, latest: None, online: None }));

    assert_eq!(
        answer.lock().expect("the answer").take(),
        Some(Ok(vec![RoomView {
            room: general,
            participants: vec![username("alice"), username("bob")],
            active_participants: vec![username("bob")],
            unread: 2,
            joined: true,
            messages: vec![g5].into(),
        }]))
    );
}

#[test]
fn list_then_uses_the_last_messages_the_store_read_with_the_page() {
    let general = general();
    let mut m = Mocks::new();
    let g5 = message(&general, 5, ALICE, "alice");
    let listing = Listing {
        rooms: vec![listed(&general, &[(ALICE, "alice")], Some(5))],
        latest: Some(vec![(GENERAL, LatestMessages::from(vec![g5.clone()]))]),
        online: None,
    };
    m.rooms.expect_list_then().times(1).returning(move |_, _, done| done(Ok(listing.clone())));
    m.messages.expect_latest().never();
    m.presence.expect_active_users().return_const(Vec::<(RoomId, UserId)>::new());
    let answer: Arc<Mutex<Option<DomainResult<Vec<RoomView>>>>> = Arc::default();
    let into = Arc::clone(&answer);

    m.service().list_then(ctx(ALICE), list_query(1), move |views| {
        *into.lock().expect("the answer") = Some(views);
    });

    let views = answer.lock().expect("the answer").take().expect("answered").expect("views");
    assert_eq!(
        views.iter().map(|v| v.messages.clone()).collect::<Vec<_>>(),
        vec![LatestMessages::from(vec![g5])]
    );
}

#[test]
fn list_then_uses_who_is_online_as_the_store_read_it_with_the_page() {
    let general = general();
    let mut m = Mocks::new();
    let listing = Listing {
        rooms: vec![listed(&general, &[(ALICE, "alice"), (BOB, "bob")], Some(5))],
        latest: None,
        online: Some(vec![(GENERAL, BOB)]),
    };
    m.rooms.expect_list_then().times(1).returning(move |_, _, done| done(Ok(listing.clone())));
    m.presence.expect_active_users().never();
    let answer: Arc<Mutex<Option<DomainResult<Vec<RoomView>>>>> = Arc::default();
    let into = Arc::clone(&answer);

    m.service().list_then(ctx(ALICE), list_query(0), move |views| {
        *into.lock().expect("the answer") = Some(views);
    });

    let views = answer.lock().expect("the answer").take().expect("answered").expect("views");
    assert_eq!(views[0].active_participants, vec![username("bob")]);
}

#[test]
fn list_then_hands_done_the_stores_failure() {
    let mut m = Mocks::new();
    m.rooms
        .expect_list_then()
        .times(1)
        .returning(|_, _, done| done(Err(StoreError::Unavailable("down".into()))));
    m.messages.expect_latest().never();
    let answer: Arc<Mutex<Option<DomainResult<Vec<RoomView>>>>> = Arc::default();
    let into = Arc::clone(&answer);

    m.service().list_then(ctx(ALICE), list_query(50), move |views| {
        *into.lock().expect("the answer") = Some(views);
    });

    assert_eq!(answer.lock().expect("the answer").take(), Some(Err(DomainError::Unavailable)));
}

#[test]
fn list_reads_no_messages_when_none_are_asked_for() {
    let mut m = Mocks::new();
    list_with(vec![general()], &list_query(0), 5, &mut m);
    m.messages.expect_latest().never();

    let views = m.service().list(ctx(ALICE), &list_query(0)).expect("a list");

    assert_eq!(views.len(), 1);
    assert!(views[0].messages.is_empty());
}

#[test]
fn list_reads_no_messages_when_every_room_is_empty() {
    let mut m = Mocks::new();
    list_with(vec![room(EMPTY, "empty", 0), room(RANDOM, "random", 0)], &list_query(50), 0, &mut m);
    m.messages.expect_latest().never();

    let views = m.service().list(ctx(ALICE), &list_query(50)).expect("a list");

    assert_eq!(views.len(), 2);
    assert!(views.iter().all(|v| v.messages.is_empty() && v.unread == 0 && v.joined));
}

#[test]
fn list_counts_no_unread_messages_when_the_marker_is_past_the_last_message() {
    let mut m = Mocks::new();
    list_with(vec![general()], &list_query(0), 9, &mut m);

    let views = m.service().list(ctx(ALICE), &list_query(0)).expect("a list");

    assert_eq!(views.iter().map(|v| (v.unread, v.joined)).collect::<Vec<_>>(), vec![(0, true)]);
}

#[test]
fn list_of_no_rooms_is_empty_and_asks_nothing_more() {
    let mut m = Mocks::new();
    m.rooms.expect_list().times(1).returning(|_, _| Ok(vec![]));
    m.messages.expect_latest().never();
    m.presence.expect_active_users().never();

    assert_eq!(m.service().list(ctx(ALICE), &list_query(50)), Ok(vec![]));
}

#[test]
fn list_while_the_store_is_down_fails_with_unavailable() {
    let mut m = Mocks::new();
    m.rooms.expect_list().times(1).returning(|_, _| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.service().list(ctx(ALICE), &list_query(50)), Err(DomainError::Unavailable));
}

// ---------------------------------------------------------------------------------------
// join, get, leave
// ---------------------------------------------------------------------------------------

fn join_returning(created: bool) -> (DomainResult<(RoomView, bool)>, RoomView, Vec<Event>) {
    let mut m = Mocks::new();
    m.rooms
        .expect_join_or_create()
        .with(eq(name("general")), eq(ALICE), eq(now()))
        .times(1)
        .returning(move |_, _, _| Ok((general(), created)));
    let view = m.general_view_of_alice();
    let (result, published) = m.run(|s| s.join(ctx(ALICE), &name("general")));
    (result, view, published)
}

#[test]
fn join_of_a_new_room_reports_it_created_and_publishes_the_membership() {
    let (result, view, published) = join_returning(true);
    assert_eq!(result, Ok((view, true)));
    assert_eq!(published, vec![alice_membership_of_general(true)]);
}

#[test]
fn join_of_an_existing_room_reports_it_not_created_and_publishes_the_membership() {
    let (result, view, published) = join_returning(false);
    assert_eq!(result, Ok((view, false)));
    assert_eq!(published, vec![alice_membership_of_general(true)]);
}

#[test]
fn join_while_the_store_is_down_fails_with_unavailable_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.rooms.expect_join_or_create().times(1).returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
    m.rooms.expect_members().never();

    assert_eq!(m.run(|s| s.join(ctx(ALICE), &name("general"))), (Err(DomainError::Unavailable), vec![]));
}

#[test]
fn join_publishes_the_membership_it_stored_even_when_building_the_view_then_fails() {
    let mut m = Mocks::new();
    m.rooms.expect_join_or_create().times(1).returning(|_, _, _| Ok((general(), false)));
    m.rooms.expect_members().times(1).returning(|_| Err(StoreError::Unavailable("down".into())));

    assert_eq!(
        m.run(|s| s.join(ctx(ALICE), &name("general"))),
        (Err(DomainError::Unavailable), vec![alice_membership_of_general(true)])
    );
}

#[test]
fn enter_joins_publishes_the_membership_and_reads_no_view() {
    let mut m = Mocks::new();
    m.rooms
        .expect_join_or_create()
        .with(eq(name("general")), eq(ALICE), eq(now()))
        .times(1)
        .returning(|_, _, _| Ok((general(), false)));
    m.rooms.expect_members().never();
    m.rooms.expect_read_markers().never();
    m.messages.expect_latest().never();

    assert_eq!(
        m.run(|s| s.enter(ctx(ALICE), &name("general"))),
        (Ok(general()), vec![alice_membership_of_general(true)])
    );
}

#[test]
fn enter_while_the_store_is_down_fails_with_unavailable_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.rooms.expect_join_or_create().times(1).returning(|_, _, _| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.run(|s| s.enter(ctx(ALICE), &name("general"))), (Err(DomainError::Unavailable), vec![]));
}

#[test]
fn get_returns_the_view_of_the_room_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    let view = m.general_view_of_alice();

    assert_eq!(m.run(|s| s.get(ctx(ALICE), &name("general"))), (Ok(view), vec![]));
}

#[test]
fn get_of_an_unknown_room_fails_with_not_found() {
    let mut m = Mocks::new();
    m.finding("nowhere", None);
    m.rooms.expect_members().never();

    assert_eq!(m.service().get(ctx(ALICE), &name("nowhere")), Err(DomainError::NotFound("room")));
}

#[test]
fn leave_ends_the_membership_and_publishes_it() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    m.rooms.expect_leave().with(eq(GENERAL), eq(ALICE)).times(1).returning(|_, _| Ok(true));

    assert_eq!(
        m.run(|s| s.leave(ctx(ALICE), &name("general"))),
        (Ok(()), vec![alice_membership_of_general(false)])
    );
}

#[test]
fn leave_of_a_room_one_is_not_in_is_a_no_op_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    m.rooms.expect_leave().with(eq(GENERAL), eq(ALICE)).times(1).returning(|_, _| Ok(false));

    assert_eq!(m.run(|s| s.leave(ctx(ALICE), &name("general"))), (Ok(()), vec![]));
}

#[test]
fn leave_of_an_unknown_room_fails_with_not_found_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.finding("nowhere", None);
    m.rooms.expect_leave().never();

    assert_eq!(
        m.run(|s| s.leave(ctx(ALICE), &name("nowhere"))),
        (Err(DomainError::NotFound("room")), vec![])
    );
}

#[test]
fn leave_while_the_store_is_down_fails_with_unavailable_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    m.rooms.expect_leave().times(1).returning(|_, _| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.run(|s| s.leave(ctx(ALICE), &name("general"))), (Err(DomainError::Unavailable), vec![]));
}

// ---------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------

#[test]
fn history_reads_the_page_at_the_given_cursor_and_limit() {
    for cursor in [HistoryCursor::Latest, HistoryCursor::Before(Seq(10)), HistoryCursor::After(Seq(2))] {
        let room = general();
        let page = HistoryPage { messages: vec![message(&room, 3, BOB, "bob")], has_more: true };
        let mut m = Mocks::new();
        m.finding("general", Some(room));
        let answer = page.clone();
        m.messages
            .expect_page()
            .with(eq(GENERAL), eq(cursor), eq(25))
            .times(1)
            .returning(move |_, _, _| Ok(answer.clone()));

        assert_eq!(m.service().history(&name("general"), cursor, 25), Ok(page), "{cursor:?}");
    }
}

#[test]
fn history_of_an_unknown_room_fails_with_not_found() {
    let mut m = Mocks::new();
    m.finding("nowhere", None);
    m.messages.expect_page().never();

    assert_eq!(
        m.service().history(&name("nowhere"), HistoryCursor::Latest, 50),
        Err(DomainError::NotFound("room"))
    );
}

// ---------------------------------------------------------------------------------------
// post
// ---------------------------------------------------------------------------------------

fn client_msg_id(s: &str) -> ClientMsgId {
    ClientMsgId::parse(s).expect("a valid client_msg_id")
}

fn expected_new_message() -> NewMessage {
    NewMessage {
        room_id: GENERAL,
        sender_id: ALICE,
        content: content("hello"),
        client_msg_id: Some(client_msg_id("c-1")),
        created_at: now(),
    }
}

fn post_hello(m: Mocks) -> (DomainResult<(Message, bool)>, Vec<Event>) {
    m.run(|s| s.post(ctx(ALICE), &name("general"), content("hello"), Some(client_msg_id("c-1"))))
}

#[test]
fn post_by_a_member_appends_the_message_and_publishes_it() {
    let stored = Message {
        content: content("hello"),
        client_msg_id: Some(client_msg_id("c-1")),
        ..message(&general(), 6, ALICE, "alice")
    };
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    let answer = stored.clone();
    m.messages
        .expect_append()
        .with(eq(expected_new_message()))
        .times(1)
        .returning(move |_| Ok(Appended::Stored(answer.clone())));

    assert_eq!(post_hello(m), (Ok((stored.clone(), true)), vec![Event::Message(stored)]));
}

#[test]
fn post_of_a_resent_client_msg_id_returns_the_original_not_created_and_publishes_nothing() {
    let original = Message {
        content: content("hello"),
        client_msg_id: Some(client_msg_id("c-1")),
        ..message(&general(), 4, ALICE, "alice")
    };
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    let answer = original.clone();
    m.messages
        .expect_append()
        .with(eq(expected_new_message()))
        .times(1)
        .returning(move |_| Ok(Appended::Duplicate(answer.clone())));

    assert_eq!(post_hello(m), (Ok((original, false)), vec![]));
}

#[test]
fn post_by_a_non_member_fails_with_not_a_member_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    m.messages.expect_append().times(1).returning(|_| Ok(Appended::NotAMember));

    assert_eq!(post_hello(m), (Err(DomainError::NotAMember), vec![]));
}

#[test]
fn post_to_an_unknown_room_fails_with_not_found_and_stores_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.rooms.expect_find_by_name().times(1).returning(|_| Ok(None));
    m.rooms.expect_read_markers().never();
    m.messages.expect_append().never();

    assert_eq!(post_hello(m), (Err(DomainError::NotFound("room")), vec![]));
}

#[test]
fn post_that_the_store_fails_to_append_publishes_nothing() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    m.messages.expect_append().times(1).returning(|_| Err(StoreError::Unavailable("down".into())));

    assert_eq!(post_hello(m), (Err(DomainError::Unavailable), vec![]));
}

#[test]
fn post_to_a_room_id_by_a_member_appends_the_message_and_publishes_it() {
    let stored = Message { content: content("hi"), ..message(&room(RANDOM, "random", 3), 4, ALICE, "alice") };
    let mut m = Mocks::new();
    let expected = NewMessage {
        room_id: RANDOM,
        sender_id: ALICE,
        content: content("hi"),
        client_msg_id: None,
        created_at: now(),
    };
    let answer = stored.clone();
    m.messages
        .expect_append()
        .with(eq(expected))
        .times(1)
        .returning(move |_| Ok(Appended::Stored(answer.clone())));

    assert_eq!(
        m.run(|s| s.post_to(ctx(ALICE), RANDOM, content("hi"), None)),
        (Ok((stored.clone(), true)), vec![Event::Message(stored)])
    );
}

#[test]
fn post_to_a_room_id_by_a_non_member_fails_with_not_a_member_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.messages.expect_append().times(1).returning(|_| Ok(Appended::NotAMember));

    assert_eq!(
        m.run(|s| s.post_to(ctx(ALICE), RANDOM, content("hi"), None)),
        (Err(DomainError::NotAMember), vec![])
    );
}

/// What `done` got, if it ran.
type Answer = Option<DomainResult<(Message, bool)>>;

/// Runs `post_to_then` with a store that answers `outcome`; the result `done` got.
fn post_then(m: Mocks, outcome: StoreResult<Appended>) -> (Answer, Vec<Event>) {
    let (got, _, events) = post_then_seeing(m, outcome);
    (got, events)
}

/// [`post_then`], with the events published before `done` ran.
fn post_then_seeing(m: Mocks, outcome: StoreResult<Appended>) -> (Answer, Vec<Event>, Vec<Event>) {
    let mut m = m;
    let answer = Mutex::new(Some(outcome));
    m.messages.expect_append_then().times(1).returning(move |_, done| {
        done(answer.lock().expect("lock").take().expect("one answer"));
    });
    let got = Arc::new(Mutex::new(None));
    let before = Arc::new(Mutex::new(Vec::new()));
    let (sink, seen, published) = (Arc::clone(&got), Arc::clone(&before), Arc::clone(&m.published));
    let ((), events) = m.run(|s| {
        s.post_to_then(ctx(ALICE), RANDOM, content("hi"), None, move |r| {
            *seen.lock().expect("lock") = published.lock().expect("lock").clone();
            *sink.lock().expect("lock") = Some(r);
        });
    });
    let got = got.lock().expect("lock").take();
    let before = before.lock().expect("lock").clone();
    (got, before, events)
}

#[test]
fn post_to_then_answers_with_a_stored_message_and_then_publishes_it() {
    let stored = Message { content: content("hi"), ..message(&room(RANDOM, "random", 3), 4, ALICE, "alice") };
    let (got, before, events) = post_then_seeing(Mocks::new(), Ok(Appended::Stored(stored.clone())));
    assert_eq!(got, Some(Ok((stored.clone(), true))));
    assert_eq!(before, vec![], "the caller is answered before the fan-out");
    assert_eq!(events, vec![Event::Message(stored)]);
}

#[test]
fn post_to_then_hands_over_a_resend_as_not_created_and_publishes_nothing() {
    let original = message(&room(RANDOM, "random", 3), 2, ALICE, "alice");
    let (got, events) = post_then(Mocks::new(), Ok(Appended::Duplicate(original.clone())));
    assert_eq!(got, Some(Ok((original, false))));
    assert_eq!(events, vec![]);
}

#[test]
fn post_to_then_by_a_non_member_fails_with_not_a_member_and_publishes_nothing() {
    let (got, events) = post_then(Mocks::new(), Ok(Appended::NotAMember));
    assert_eq!(got, Some(Err(DomainError::NotAMember)));
    assert_eq!(events, vec![]);
}

#[test]
fn post_to_then_passes_on_a_store_failure_and_publishes_nothing() {
    let (got, events) = post_then(Mocks::new(), Err(StoreError::Unavailable("down".into())));
    assert_eq!(got, Some(Err(DomainError::Unavailable)));
    assert_eq!(events, vec![]);
}

// ---------------------------------------------------------------------------------------
// find_room, joined_rooms, messages_after
// ---------------------------------------------------------------------------------------

#[test]
fn find_room_returns_the_room_of_that_name() {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));

    assert_eq!(m.service().find_room(&name("general")), Ok(general()));
}

#[test]
fn find_room_of_an_unknown_name_fails_with_not_found() {
    let mut m = Mocks::new();
    m.finding("nowhere", None);

    assert_eq!(m.service().find_room(&name("nowhere")), Err(DomainError::NotFound("room")));
}

/// `n` distinct rooms with ids from `first`.
fn rooms_from(first: i64, n: i64) -> Vec<Room> {
    (first..first + n).map(|id| room(RoomId(id), &format!("room-{id}"), 0)).collect()
}

/// The page `joined_rooms` must ask for at `offset`: the largest.
fn largest_page(offset: u64) -> Page {
    Page::new(200, offset).expect("a valid page")
}

/// The store answers each page of ALICE's joined rooms, in order, with its rooms.
fn joined_pages(m: &mut Mocks, pages: Vec<(u64, Vec<Room>)>) {
    let mut seq = mockall::Sequence::new();
    for (offset, rooms) in pages {
        m.rooms
            .expect_joined()
            .with(eq(ALICE), eq(largest_page(offset)))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Ok(rooms.clone()));
    }
}

#[test]
fn joined_rooms_reads_a_single_short_page() {
    let mut m = Mocks::new();
    joined_pages(&mut m, vec![(0, vec![general(), room(RANDOM, "random", 3)])]);

    assert_eq!(m.service().joined_rooms(ALICE), Ok(vec![general(), room(RANDOM, "random", 3)]));
}

#[test]
fn joined_rooms_of_a_user_in_no_room_is_empty() {
    let mut m = Mocks::new();
    joined_pages(&mut m, vec![(0, vec![])]);

    assert_eq!(m.service().joined_rooms(ALICE), Ok(vec![]));
}

#[test]
fn joined_rooms_reads_the_next_page_after_a_full_one() {
    let mut m = Mocks::new();
    joined_pages(&mut m, vec![(0, rooms_from(1, 200)), (200, rooms_from(201, 1))]);

    assert_eq!(m.service().joined_rooms(ALICE), Ok(rooms_from(1, 201)));
}

#[test]
fn joined_rooms_stops_at_an_empty_page_after_a_full_one() {
    let mut m = Mocks::new();
    joined_pages(&mut m, vec![(0, rooms_from(1, 200)), (200, rooms_from(201, 200)), (400, vec![])]);

    assert_eq!(m.service().joined_rooms(ALICE), Ok(rooms_from(1, 400)));
}

#[test]
fn joined_rooms_fails_with_unavailable_when_a_later_page_fails() {
    let mut m = Mocks::new();
    joined_pages(&mut m, vec![(0, rooms_from(1, 200))]);
    m.rooms
        .expect_joined()
        .with(eq(ALICE), eq(largest_page(200)))
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.service().joined_rooms(ALICE), Err(DomainError::Unavailable));
}

#[test]
fn messages_after_reads_the_page_after_the_seq_with_the_limit() {
    let room = general();
    let page = HistoryPage { messages: vec![message(&room, 4, BOB, "bob")], has_more: false };
    let mut m = Mocks::new();
    let answer = page.clone();
    m.messages
        .expect_page()
        .with(eq(GENERAL), eq(HistoryCursor::After(Seq(3))), eq(100))
        .times(1)
        .returning(move |_, _, _| Ok(answer.clone()));

    assert_eq!(m.service().messages_after(GENERAL, Seq(3), 100), Ok(page));
}

#[test]
fn messages_after_while_the_store_is_down_fails_with_unavailable() {
    let mut m = Mocks::new();
    m.messages.expect_page().times(1).returning(|_, _, _| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.service().messages_after(GENERAL, Seq(3), 100), Err(DomainError::Unavailable));
}

// ---------------------------------------------------------------------------------------
// mark_read
// ---------------------------------------------------------------------------------------

fn mark_read(asked: i64, stored: i64, member: bool) -> DomainResult<()> {
    let mut m = Mocks::new();
    m.finding("general", Some(general()));
    m.rooms
        .expect_mark_read()
        .with(eq(GENERAL), eq(ALICE), eq(Seq(stored)))
        .times(1)
        .return_const(Ok(member));
    m.service().mark_read(ctx(ALICE), &name("general"), Seq(asked))
}

#[test]
fn mark_read_moves_the_marker_to_the_given_seq() {
    assert_eq!(mark_read(4, 4, true), Ok(()));
}

#[test]
fn mark_read_caps_the_seq_at_the_rooms_last_message() {
    assert_eq!(mark_read(99, 5, true), Ok(()));
}

#[test]
fn mark_read_by_a_non_member_fails_with_not_a_member() {
    assert_eq!(mark_read(3, 3, false), Err(DomainError::NotAMember));
}

#[test]
fn mark_read_of_an_unknown_room_fails_with_not_found() {
    let mut m = Mocks::new();
    m.finding("nowhere", None);
    m.rooms.expect_mark_read().never();

    assert_eq!(
        m.service().mark_read(ctx(ALICE), &name("nowhere"), Seq(1)),
        Err(DomainError::NotFound("room"))
    );
}
