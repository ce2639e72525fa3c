use super::*;
use crate::model::Page;
use crate::ports::{
    MockClock, MockIdGenerator, MockMessageBus, MockPasswordHasher, MockSessionRepository, MockTokenCodec,
    MockUserRepository,
};
use crate::{StoreError, UniqueField};
use mockall::predicate::eq;
use std::collections::VecDeque;
use std::sync::Mutex;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const ALICE: UserId = UserId(Uuid::from_u128(0xA11CE));
const BOB: UserId = UserId(Uuid::from_u128(0xB0B));
const SID1: SessionId = SessionId(Uuid::from_u128(0x5E55_0001));
const SID2: SessionId = SessionId(Uuid::from_u128(0x5E55_0002));
const SID3: SessionId = SessionId(Uuid::from_u128(0x5E55_0003));
const OLD_JTI: Uuid = Uuid::from_u128(0x0_1D);
const NEW_JTI: Uuid = Uuid::from_u128(0x0_2E);
const ACCESS_JTI: Uuid = Uuid::from_u128(0xACCE55);
const REFRESH_JTI: Uuid = Uuid::from_u128(0x2EF2E5);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_727_526_600, 0).expect("a valid timestamp")
}

fn settings() -> AuthSettings {
    AuthSettings { access_ttl: Duration::minutes(15), refresh_ttl: Duration::days(7) }
}

fn user(id: UserId, name: &str) -> User {
    User {
        id,
        username: Username::parse(name).expect("a valid username"),
        email: Email::parse(&format!("{name}@example.com")).expect("a valid email"),
        created_at: now(),
    }
}

fn alice() -> User {
    user(ALICE, "alice")
}

fn bob() -> User {
    user(BOB, "bob")
}

fn hash(s: &str) -> PasswordHash {
    PasswordHash(s.to_owned())
}

fn password(s: &str) -> Password {
    Password::parse(s).expect("a valid password")
}

fn ctx(user_id: UserId, session_id: SessionId) -> AuthContext {
    AuthContext { user_id, session_id }
}

fn session(id: SessionId, user_id: UserId, revoked: bool) -> Session {
    Session {
        id,
        user_id,
        refresh_jti: OLD_JTI,
        created_at: now() - Duration::hours(1),
        expires_at: now() + Duration::days(6),
        revoked,
    }
}

/// Claims of a token issued a minute ago that expires at `exp`.
fn claims_expiring(kind: TokenKind, sub: UserId, sid: SessionId, jti: Uuid, exp: DateTime<Utc>) -> Claims {
    Claims { sub, sid, jti, iat: now() - Duration::minutes(1), exp, kind }
}

/// Claims of a token that is still valid for a few minutes.
fn live(kind: TokenKind, sub: UserId, sid: SessionId, jti: Uuid) -> Claims {
    claims_expiring(kind, sub, sid, jti, now() + Duration::minutes(5))
}

/// What the fake codec turns claims into: readable, and different for every token.
fn token_text(c: &Claims) -> String {
    match c.kind {
        TokenKind::Access => format!("access-{}", c.jti),
        TokenKind::Refresh => format!("refresh-{}", c.jti),
    }
}

/// Every port mocked; the clock always says [`now`]. Unconfigured calls panic.
struct Mocks {
    users: MockUserRepository,
    sessions: MockSessionRepository,
    hasher: MockPasswordHasher,
    tokens: MockTokenCodec,
    clock: MockClock,
    ids: MockIdGenerator,
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
            users: MockUserRepository::new(),
            sessions: MockSessionRepository::new(),
            hasher: MockPasswordHasher::new(),
            tokens: MockTokenCodec::new(),
            clock,
            ids: MockIdGenerator::new(),
        }
    }

    /// The id generator hands out exactly these ids, in this order.
    fn with_ids(mut self, uuids: &[Uuid]) -> Self {
        let mut queue: VecDeque<Uuid> = uuids.iter().copied().collect();
        self.ids
            .expect_new_uuid()
            .times(uuids.len())
            .returning(move || queue.pop_front().expect("no more ids expected"));
        self
    }

    /// `"token"` is Alice's access token of `SID1`; the store finds that session live on the
    /// first read and revoked on the second.
    fn alice_live_then_revoked(&mut self) {
        self.decoding("token", Ok(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI)));
        let mut answers = vec![Ok(Some(session(SID1, ALICE, true))), Ok(Some(session(SID1, ALICE, false)))];
        self.sessions
            .expect_find()
            .with(eq(SID1))
            .times(2)
            .returning(move |_| answers.pop().expect("two reads"));
    }

    /// `token` decodes to `result`.
    fn decoding(&mut self, token: &'static str, result: Result<Claims, TokenDecodeError>) {
        self.tokens.expect_decode().withf(move |t| t == token).return_const(result);
    }

    /// The codec encodes exactly `times` tokens; returns the claims it was given.
    fn encoding(&mut self, times: usize) -> Arc<Mutex<Vec<Claims>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        self.tokens.expect_encode().times(times).returning(move |c| {
            log.lock().expect("claims log").push(c.clone());
            Ok(token_text(c))
        });
        seen
    }

    fn service(self) -> AccountService {
        AccountService::new(
            Arc::new(self.users),
            Arc::new(self.sessions),
            Arc::new(self.hasher),
            Arc::new(self.tokens),
            Arc::new(self.clock),
            Arc::new(self.ids),
            Arc::new(self.bus),
            settings(),
        )
    }

    /// Runs `use_case` on the service; returns its result and every event it published.
    fn run<T>(self, use_case: impl FnOnce(&AccountService) -> T) -> (T, Vec<Event>) {
        let published = Arc::clone(&self.published);
        let result = use_case(&self.service());
        let events = published.lock().expect("lock").clone();
        (result, events)
    }
}

fn revoked(sessions: &[SessionId]) -> Event {
    Event::SessionsRevoked(sessions.to_vec())
}

fn encoded(seen: &Mutex<Vec<Claims>>, kind: TokenKind) -> Claims {
    let seen = seen.lock().expect("claims log");
    assert_eq!(seen.iter().filter(|c| c.kind == kind).count(), 1, "one {kind:?} token");
    seen.iter().find(|c| c.kind == kind).cloned().expect("a token of that kind")
}

fn new_account() -> NewAccount {
    NewAccount {
        email: Email::parse("Alice@Example.com").expect("a valid email"),
        username: Username::parse("alice").expect("a valid username"),
        password: password("correct horse"),
    }
}

// ---------------------------------------------------------------------------------------
// register
// ---------------------------------------------------------------------------------------

#[test]
fn register_hashes_the_password_and_stores_the_account() {
    let mut m = Mocks::new().with_ids(&[ALICE.0]);
    m.hasher.expect_hash().withf(|p| p == "correct horse").times(1).returning(|_| Ok(hash("alice-hash")));
    let expected = NewUser {
        id: ALICE,
        username: Username::parse("alice").expect("a valid username"),
        email: Email::parse("Alice@Example.com").expect("a valid email"),
        password_hash: hash("alice-hash"),
        created_at: now(),
    };
    m.users.expect_insert().with(eq(expected)).times(1).returning(|_| Ok(alice()));

    assert_eq!(m.service().register(new_account()), Ok(alice()));
}

fn register_failing_with(store_error: StoreError) -> DomainResult<User> {
    let mut m = Mocks::new().with_ids(&[ALICE.0]);
    m.hasher.expect_hash().times(1).returning(|_| Ok(hash("alice-hash")));
    m.users.expect_insert().times(1).return_const(Err(store_error));
    m.service().register(new_account())
}

#[test]
fn register_with_a_taken_email_fails_with_email_taken() {
    assert_eq!(register_failing_with(StoreError::Conflict(UniqueField::Email)), Err(DomainError::EmailTaken));
}

#[test]
fn register_with_a_taken_username_fails_with_username_taken() {
    assert_eq!(
        register_failing_with(StoreError::Conflict(UniqueField::Username)),
        Err(DomainError::UsernameTaken)
    );
}

#[test]
fn register_while_the_store_is_down_fails_with_unavailable() {
    assert_eq!(
        register_failing_with(StoreError::Unavailable("connection refused".into())),
        Err(DomainError::Unavailable)
    );
}

#[test]
fn register_stores_nothing_when_hashing_fails() {
    let mut m = Mocks::new();
    m.ids.expect_new_uuid().return_const(ALICE.0);
    m.hasher.expect_hash().times(1).returning(|_| Err(StoreError::Internal("bcrypt broke".into())));
    m.users.expect_insert().never();

    assert_eq!(m.service().register(new_account()), Err(DomainError::Internal("bcrypt broke".into())));
}

// ---------------------------------------------------------------------------------------
// login
// ---------------------------------------------------------------------------------------

#[test]
fn login_with_the_right_password_issues_both_tokens_and_stores_a_session() {
    let mut m = Mocks::new().with_ids(&[SID1.0, REFRESH_JTI, ACCESS_JTI]);
    m.users
        .expect_find_credentials()
        .withf(|e| e == "alice@example.com")
        .times(1)
        .returning(|_| Ok(Some((alice(), hash("alice-hash")))));
    m.hasher
        .expect_verify()
        .withf(|p, h| p == "correct horse" && *h == hash("alice-hash"))
        .times(1)
        .returning(|_, _| Ok(true));
    let stored = Session {
        id: SID1,
        user_id: ALICE,
        refresh_jti: REFRESH_JTI,
        created_at: now(),
        expires_at: now() + Duration::days(7),
        revoked: false,
    };
    m.sessions.expect_insert().with(eq(stored)).times(1).returning(|_| Ok(()));
    let seen = m.encoding(2);

    let (pair, published) = m.run(|s| s.login("  Alice@Example.COM ", "correct horse"));

    assert_eq!(published, vec![]);

    assert_eq!(
        pair,
        Ok(TokenPair {
            access: format!("access-{ACCESS_JTI}"),
            refresh: format!("refresh-{REFRESH_JTI}"),
            user: Some(alice()),
        })
    );
    assert_eq!(
        encoded(&seen, TokenKind::Access),
        Claims {
            sub: ALICE,
            sid: SID1,
            jti: ACCESS_JTI,
            iat: now(),
            exp: now() + Duration::minutes(15),
            kind: TokenKind::Access,
        }
    );
    assert_eq!(
        encoded(&seen, TokenKind::Refresh),
        Claims {
            sub: ALICE,
            sid: SID1,
            jti: REFRESH_JTI,
            iat: now(),
            exp: now() + Duration::days(7),
            kind: TokenKind::Refresh,
        }
    );
}

#[test]
fn login_with_a_wrong_password_is_rejected_after_exactly_one_verify() {
    let mut m = Mocks::new();
    m.users.expect_find_credentials().times(1).returning(|_| Ok(Some((alice(), hash("alice-hash")))));
    m.hasher
        .expect_verify()
        .withf(|p, h| p == "wrong password" && *h == hash("alice-hash"))
        .times(1)
        .returning(|_, _| Ok(false));
    m.sessions.expect_insert().never();
    m.tokens.expect_encode().never();

    assert_eq!(
        m.service().login("alice@example.com", "wrong password"),
        Err(DomainError::InvalidCredentials)
    );
}

#[test]
fn login_with_an_unknown_email_is_rejected_after_exactly_one_verify() {
    let mut m = Mocks::new();
    m.ids.expect_new_uuid().return_const(Uuid::from_u128(0xD0D0));
    m.users.expect_find_credentials().times(1).returning(|_| Ok(None));
    m.hasher.expect_hash().times(1).returning(|_| Ok(hash("dummy-hash")));
    // Even a dummy hash that happened to match must not log anyone in.
    m.hasher
        .expect_verify()
        .withf(|p, h| p == "correct horse" && *h == hash("dummy-hash"))
        .times(1)
        .returning(|_, _| Ok(true));
    m.sessions.expect_insert().never();
    m.tokens.expect_encode().never();

    assert_eq!(
        m.service().login("nobody@example.com", "correct horse"),
        Err(DomainError::InvalidCredentials)
    );
}

#[test]
fn login_with_unknown_emails_hashes_the_dummy_password_only_once() {
    let mut m = Mocks::new();
    m.ids.expect_new_uuid().return_const(Uuid::from_u128(0xD0D0));
    m.users.expect_find_credentials().times(2).returning(|_| Ok(None));
    m.hasher.expect_hash().times(1).returning(|_| Ok(hash("dummy-hash")));
    m.hasher.expect_verify().times(2).returning(|_, _| Ok(false));
    m.sessions.expect_insert().never();
    let service = m.service();

    assert_eq!(service.login("a@example.com", "password1"), Err(DomainError::InvalidCredentials));
    assert_eq!(service.login("b@example.com", "password2"), Err(DomainError::InvalidCredentials));
}

#[test]
fn login_with_a_password_over_72_bytes_is_refused_even_if_the_hasher_matches() {
    let long = "x".repeat(73);
    let mut m = Mocks::new();
    m.users.expect_find_credentials().times(1).returning(|_| Ok(Some((alice(), hash("alice-hash")))));
    // bcrypt only reads the first 72 bytes, so it may well say yes.
    m.hasher.expect_verify().times(1).returning(|_, _| Ok(true));
    m.sessions.expect_insert().never();
    m.tokens.expect_encode().never();

    assert_eq!(m.service().login("alice@example.com", &long), Err(DomainError::InvalidCredentials));
}

#[test]
fn login_while_the_store_is_down_fails_with_unavailable() {
    let mut m = Mocks::new();
    m.users.expect_find_credentials().times(1).returning(|_| Err(StoreError::Unavailable("down".into())));
    m.hasher.expect_verify().never();
    m.sessions.expect_insert().never();

    assert_eq!(m.service().login("alice@example.com", "correct horse"), Err(DomainError::Unavailable));
}

// ---------------------------------------------------------------------------------------
// refresh
// ---------------------------------------------------------------------------------------

#[test]
fn refresh_rotates_the_session_and_returns_a_new_pair_with_the_new_jti() {
    let mut m = Mocks::new().with_ids(&[NEW_JTI, ACCESS_JTI]);
    m.decoding("r-old", Ok(live(TokenKind::Refresh, ALICE, SID1, OLD_JTI)));
    m.sessions
        .expect_rotate()
        .with(eq(SID1), eq(OLD_JTI), eq(NEW_JTI), eq(now() + Duration::days(7)))
        .times(1)
        .returning(|_, _, _, _| Ok(RotateOutcome::Rotated));
    let seen = m.encoding(2);

    let (pair, published) = m.run(|s| s.refresh("r-old"));

    assert_eq!(published, vec![], "a rotation ends no session");

    assert_eq!(
        pair,
        Ok(TokenPair {
            access: format!("access-{ACCESS_JTI}"),
            refresh: format!("refresh-{NEW_JTI}"),
            user: None,
        })
    );
    assert_eq!(
        encoded(&seen, TokenKind::Refresh),
        Claims {
            sub: ALICE,
            sid: SID1,
            jti: NEW_JTI,
            iat: now(),
            exp: now() + Duration::days(7),
            kind: TokenKind::Refresh,
        }
    );
    assert_eq!(
        encoded(&seen, TokenKind::Access),
        Claims {
            sub: ALICE,
            sid: SID1,
            jti: ACCESS_JTI,
            iat: now(),
            exp: now() + Duration::minutes(15),
            kind: TokenKind::Access,
        }
    );
}

/// A service whose session store and codec must not be written to, and that must
/// publish nothing.
fn refresh_refused(token_claims: Result<Claims, TokenDecodeError>) -> DomainResult<TokenPair> {
    let mut m = Mocks::new();
    m.ids.expect_new_uuid().return_const(NEW_JTI);
    m.decoding("token", token_claims);
    m.sessions.expect_rotate().never();
    m.sessions.expect_revoke().never();
    m.tokens.expect_encode().never();
    let (result, published) = m.run(|s| s.refresh("token"));
    assert_eq!(published, vec![]);
    result
}

#[test]
fn refresh_with_an_access_token_is_rejected_as_invalid() {
    assert_eq!(
        refresh_refused(Ok(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI))),
        Err(DomainError::TokenInvalid)
    );
}

#[test]
fn refresh_with_an_expired_refresh_token_fails_with_token_expired() {
    let expired = claims_expiring(TokenKind::Refresh, ALICE, SID1, OLD_JTI, now());
    assert_eq!(refresh_refused(Ok(expired)), Err(DomainError::TokenExpired));
}

#[test]
fn refresh_with_an_undecodable_token_is_rejected_as_invalid() {
    assert_eq!(refresh_refused(Err(TokenDecodeError::Invalid)), Err(DomainError::TokenInvalid));
}

#[test]
fn refresh_with_a_retired_token_revokes_the_session_and_reports_reuse() {
    let mut m = Mocks::new().with_ids(&[NEW_JTI]);
    m.decoding("r-old", Ok(live(TokenKind::Refresh, ALICE, SID1, OLD_JTI)));
    m.sessions.expect_rotate().times(1).returning(|_, _, _, _| Ok(RotateOutcome::Stale));
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(true));
    m.tokens.expect_encode().never();

    let (result, published) = m.run(|s| s.refresh("r-old"));

    assert_eq!(result, Err(DomainError::RefreshTokenReused));
    assert_eq!(published, vec![revoked(&[SID1])]);
}

#[test]
fn refresh_with_a_retired_token_publishes_nothing_when_the_revocation_fails() {
    let mut m = Mocks::new().with_ids(&[NEW_JTI]);
    m.decoding("r-old", Ok(live(TokenKind::Refresh, ALICE, SID1, OLD_JTI)));
    m.sessions.expect_rotate().times(1).returning(|_, _, _, _| Ok(RotateOutcome::Stale));
    m.sessions
        .expect_revoke()
        .with(eq(SID1))
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    m.tokens.expect_encode().never();

    assert_eq!(m.run(|s| s.refresh("r-old")), (Err(DomainError::Unavailable), vec![]));
}

#[test]
fn refresh_of_a_revoked_session_fails_with_session_revoked() {
    let mut m = Mocks::new().with_ids(&[NEW_JTI]);
    m.decoding("r-old", Ok(live(TokenKind::Refresh, ALICE, SID1, OLD_JTI)));
    m.sessions.expect_rotate().times(1).returning(|_, _, _, _| Ok(RotateOutcome::Gone));
    m.sessions.expect_revoke().never();
    m.tokens.expect_encode().never();

    assert_eq!(m.run(|s| s.refresh("r-old")), (Err(DomainError::SessionRevoked), vec![]));
}

// ---------------------------------------------------------------------------------------
// authenticate
// ---------------------------------------------------------------------------------------

/// Authenticates `"token"` decoding to `claims` against a store that holds `stored`.
fn authenticate_with(claims: Claims, stored: Option<Session>) -> DomainResult<AuthContext> {
    let mut m = Mocks::new();
    m.decoding("token", Ok(claims));
    m.sessions.expect_find().with(eq(SID1)).times(1).return_const(Ok(stored));
    m.service().authenticate("token")
}

#[test]
fn authenticate_accepts_a_live_access_token_of_a_live_session() {
    assert_eq!(
        authenticate_with(
            live(TokenKind::Access, ALICE, SID1, ACCESS_JTI),
            Some(session(SID1, ALICE, false))
        ),
        Ok(ctx(ALICE, SID1))
    );
}

#[test]
fn authenticate_with_a_refresh_token_is_rejected_as_invalid() {
    let mut m = Mocks::new();
    m.decoding("token", Ok(live(TokenKind::Refresh, ALICE, SID1, REFRESH_JTI)));
    m.sessions.expect_find().never();

    assert_eq!(m.service().authenticate("token"), Err(DomainError::TokenInvalid));
}

#[test]
fn authenticate_with_an_expired_access_token_fails_with_token_expired() {
    let mut m = Mocks::new();
    let expired = claims_expiring(TokenKind::Access, ALICE, SID1, ACCESS_JTI, now() - Duration::seconds(1));
    m.decoding("token", Ok(expired));
    m.sessions.expect_find().never();

    assert_eq!(m.service().authenticate("token"), Err(DomainError::TokenExpired));
}

#[test]
fn authenticate_with_an_undecodable_token_is_rejected_as_invalid() {
    let mut m = Mocks::new();
    m.decoding("token", Err(TokenDecodeError::Invalid));
    m.sessions.expect_find().never();

    assert_eq!(m.service().authenticate("token"), Err(DomainError::TokenInvalid));
}

#[test]
fn authenticate_against_a_revoked_session_fails_with_session_revoked() {
    assert_eq!(
        authenticate_with(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI), Some(session(SID1, ALICE, true))),
        Err(DomainError::SessionRevoked)
    );
}

#[test]
fn authenticate_against_a_session_of_another_user_fails_with_session_revoked() {
    assert_eq!(
        authenticate_with(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI), Some(session(SID1, BOB, false))),
        Err(DomainError::SessionRevoked)
    );
}

#[test]
fn authenticate_against_a_missing_session_fails_with_session_revoked() {
    assert_eq!(
        authenticate_with(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI), None),
        Err(DomainError::SessionRevoked)
    );
}

// ---------------------------------------------------------------------------------------
// authenticate: the memory of live sessions
// ---------------------------------------------------------------------------------------

/// A clock that reads `ms` milliseconds after [`now`], for tests that let time pass.
fn moving_clock(ms: Arc<std::sync::atomic::AtomicI64>) -> MockClock {
    let mut clock = MockClock::new();
    clock
        .expect_now()
        .returning(move || now() + Duration::milliseconds(ms.load(std::sync::atomic::Ordering::SeqCst)));
    clock
}

#[test]
fn a_session_found_live_is_not_read_again_for_the_next_request() {
    let mut m = Mocks::new();
    m.decoding("token", Ok(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI)));
    m.sessions.expect_find().with(eq(SID1)).times(1).return_const(Ok(Some(session(SID1, ALICE, false))));
    let s = m.service();

    assert_eq!(s.authenticate_from_memory("token"), None, "nothing known before the first read");
    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    assert_eq!(s.authenticate_from_memory("token"), Some(Ok(ctx(ALICE, SID1))));
}

#[test]
fn a_revoked_session_is_not_remembered() {
    let mut m = Mocks::new();
    m.decoding("token", Ok(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI)));
    m.sessions.expect_find().with(eq(SID1)).times(2).return_const(Ok(Some(session(SID1, ALICE, true))));
    let s = m.service();

    assert_eq!(s.authenticate("token"), Err(DomainError::SessionRevoked));
    assert_eq!(s.authenticate("token"), Err(DomainError::SessionRevoked));
    assert_eq!(s.authenticate_from_memory("token"), None);
}

#[test]
fn authenticate_from_memory_refuses_a_bad_token_without_the_store() {
    let mut m = Mocks::new();
    m.decoding("expired", Ok(claims_expiring(TokenKind::Access, ALICE, SID1, ACCESS_JTI, now())));
    m.decoding("refresh", Ok(live(TokenKind::Refresh, ALICE, SID1, REFRESH_JTI)));
    m.decoding("garbage", Err(TokenDecodeError::Invalid));
    m.sessions.expect_find().never();
    let s = m.service();

    assert_eq!(s.authenticate_from_memory("expired"), Some(Err(DomainError::TokenExpired)));
    assert_eq!(s.authenticate_from_memory("refresh"), Some(Err(DomainError::TokenInvalid)));
    assert_eq!(s.authenticate_from_memory("garbage"), Some(Err(DomainError::TokenInvalid)));
}

#[test]
fn a_remembered_session_is_read_again_after_half_a_second() {
    let ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut m = Mocks::new();
    m.clock = moving_clock(ms.clone());
    m.alice_live_then_revoked();
    let s = m.service();

    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    ms.store(499, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)), "still remembered");
    // Revoked meanwhile on another node whose notice never came: refused once the memory lapses.
    ms.store(500, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.authenticate("token"), Err(DomainError::SessionRevoked));
}

#[test]
fn a_logout_on_this_node_is_refused_on_the_very_next_request() {
    let mut m = Mocks::new();
    m.alice_live_then_revoked();
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(true));
    let s = m.service();

    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    assert_eq!(s.logout(ctx(ALICE, SID1), None), Ok(vec![SID1]));
    assert_eq!(s.authenticate_from_memory("token"), None);
    assert_eq!(s.authenticate("token"), Err(DomainError::SessionRevoked));
}

#[test]
fn a_revocation_heard_from_another_node_forgets_the_session_at_once() {
    let mut m = Mocks::new();
    m.alice_live_then_revoked();
    let s = m.service();

    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    EventSink::deliver(&s, &Event::SessionsRevoked(vec![SID2]));
    assert_eq!(
        s.authenticate_from_memory("token"),
        Some(Ok(ctx(ALICE, SID1))),
        "another session's revocation"
    );
    EventSink::deliver(&s, &Event::SessionsRevoked(vec![SID1]));
    assert_eq!(s.authenticate("token"), Err(DomainError::SessionRevoked));
}

#[test]
fn a_token_of_another_user_does_not_match_a_remembered_session() {
    let mut m = Mocks::new();
    m.decoding("alice", Ok(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI)));
    m.decoding("forged", Ok(live(TokenKind::Access, BOB, SID1, ACCESS_JTI)));
    m.sessions.expect_find().with(eq(SID1)).times(2).return_const(Ok(Some(session(SID1, ALICE, false))));
    let s = m.service();

    assert_eq!(s.authenticate("alice"), Ok(ctx(ALICE, SID1)));
    assert_eq!(s.authenticate_from_memory("forged"), None);
    assert_eq!(s.authenticate("forged"), Err(DomainError::SessionRevoked));
}

// ---------------------------------------------------------------------------------------
// logout
// ---------------------------------------------------------------------------------------

#[test]
fn logout_without_a_refresh_token_revokes_the_callers_session_and_publishes_it() {
    let mut m = Mocks::new();
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(true));

    assert_eq!(m.run(|s| s.logout(ctx(ALICE, SID1), None)), (Ok(vec![SID1]), vec![revoked(&[SID1])]));
}

#[test]
fn logout_with_a_refresh_token_of_another_own_session_revokes_both_and_publishes_them_at_once() {
    let mut m = Mocks::new();
    m.decoding("r2", Ok(live(TokenKind::Refresh, ALICE, SID2, REFRESH_JTI)));
    m.sessions.expect_revoke().with(eq(SID2)).times(1).returning(|_| Ok(true));
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(true));

    let (result, published) = m.run(|s| s.logout(ctx(ALICE, SID1), Some("r2")));
    let mut ended = result.expect("logged out");

    assert_eq!(published, vec![Event::SessionsRevoked(ended.clone())], "one event with what it returned");
    ended.sort();
    assert_eq!(ended, vec![SID1, SID2]);
}

#[test]
fn logout_with_the_refresh_token_of_the_same_session_revokes_and_publishes_it_once() {
    let mut m = Mocks::new();
    m.decoding("r1", Ok(live(TokenKind::Refresh, ALICE, SID1, REFRESH_JTI)));
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(true));

    assert_eq!(m.run(|s| s.logout(ctx(ALICE, SID1), Some("r1"))), (Ok(vec![SID1]), vec![revoked(&[SID1])]));
}

#[test]
fn logout_with_a_refresh_token_of_an_already_ended_session_publishes_only_the_callers() {
    let mut m = Mocks::new();
    m.decoding("r2", Ok(live(TokenKind::Refresh, ALICE, SID2, REFRESH_JTI)));
    m.sessions.expect_revoke().with(eq(SID2)).times(1).returning(|_| Ok(false));
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(true));

    assert_eq!(m.run(|s| s.logout(ctx(ALICE, SID1), Some("r2"))), (Ok(vec![SID1]), vec![revoked(&[SID1])]));
}

#[test]
fn logout_of_an_already_ended_session_reports_nothing_ended_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.sessions.expect_revoke().with(eq(SID1)).times(1).returning(|_| Ok(false));

    assert_eq!(m.run(|s| s.logout(ctx(ALICE, SID1), None)), (Ok(vec![]), vec![]));
}

#[test]
fn logout_while_the_store_is_down_fails_with_unavailable_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.sessions
        .expect_revoke()
        .with(eq(SID1))
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.run(|s| s.logout(ctx(ALICE, SID1), None)), (Err(DomainError::Unavailable), vec![]));
}

/// Logs out with a refresh token that must be refused before anything is revoked or
/// published.
fn logout_refused(token_claims: Result<Claims, TokenDecodeError>) -> DomainResult<Vec<SessionId>> {
    let mut m = Mocks::new();
    m.decoding("r", token_claims);
    m.sessions.expect_revoke().never();
    let (result, published) = m.run(|s| s.logout(ctx(ALICE, SID1), Some("r")));
    assert_eq!(published, vec![]);
    result
}

#[test]
fn logout_with_a_refresh_token_of_another_user_is_rejected_and_revokes_nothing() {
    assert_eq!(
        logout_refused(Ok(live(TokenKind::Refresh, BOB, SID2, REFRESH_JTI))),
        Err(DomainError::TokenInvalid)
    );
}

#[test]
fn logout_with_an_access_token_as_refresh_token_is_rejected_and_revokes_nothing() {
    assert_eq!(
        logout_refused(Ok(live(TokenKind::Access, ALICE, SID2, ACCESS_JTI))),
        Err(DomainError::TokenInvalid)
    );
}

#[test]
fn logout_with_an_undecodable_refresh_token_is_rejected_and_revokes_nothing() {
    assert_eq!(logout_refused(Err(TokenDecodeError::Invalid)), Err(DomainError::TokenInvalid));
}

// ---------------------------------------------------------------------------------------
// me
// ---------------------------------------------------------------------------------------

#[test]
fn me_returns_the_callers_account() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(ALICE)).times(1).returning(|_| Ok(Some(alice())));

    assert_eq!(m.service().me(ctx(ALICE, SID1)), Ok(alice()));
}

#[test]
fn me_of_a_deleted_account_fails_with_session_revoked() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(ALICE)).times(1).returning(|_| Ok(None));

    assert_eq!(m.service().me(ctx(ALICE, SID1)), Err(DomainError::SessionRevoked));
}

// ---------------------------------------------------------------------------------------
// change_password
// ---------------------------------------------------------------------------------------

fn expect_nothing_stored(m: &mut Mocks) {
    m.hasher.expect_hash().never();
    m.users.expect_set_password_hash().never();
    m.sessions.expect_revoke_all_of_user().never();
}

fn is_old_password_error(result: &DomainResult<Vec<SessionId>>) -> bool {
    matches!(
        result,
        Err(e @ DomainError::Validation { field: "old_password", .. }) if e.code() == "validation_failed"
    )
}

#[test]
fn change_password_with_a_wrong_old_password_fails_on_old_password_and_stores_nothing() {
    let mut m = Mocks::new();
    m.users.expect_password_hash().with(eq(ALICE)).times(1).returning(|_| Ok(Some(hash("alice-hash"))));
    m.hasher
        .expect_verify()
        .withf(|p, h| p == "not my password" && *h == hash("alice-hash"))
        .times(1)
        .returning(|_, _| Ok(false));
    expect_nothing_stored(&mut m);

    let (result, published) =
        m.run(|s| s.change_password(ctx(ALICE, SID1), "not my password", &password("brand new pw")));

    assert!(is_old_password_error(&result), "got {result:?}");
    assert_eq!(published, vec![]);
}

#[test]
fn change_password_with_an_old_password_over_72_bytes_is_refused_even_if_the_hasher_matches() {
    let mut m = Mocks::new();
    m.users.expect_password_hash().returning(|_| Ok(Some(hash("alice-hash"))));
    m.hasher.expect_verify().returning(|_, _| Ok(true));
    expect_nothing_stored(&mut m);

    let (result, published) =
        m.run(|s| s.change_password(ctx(ALICE, SID1), &"x".repeat(73), &password("brand new pw")));

    assert!(is_old_password_error(&result), "got {result:?}");
    assert_eq!(published, vec![]);
}

/// A password change by ALICE on SID1 with the right old password, up to the revocation
/// of her other sessions, which answers `revoked_others`.
fn change_password_revoking(revoked_others: Result<Vec<SessionId>, StoreError>) -> Mocks {
    let mut m = Mocks::new();
    m.users.expect_password_hash().with(eq(ALICE)).times(1).returning(|_| Ok(Some(hash("alice-hash"))));
    m.hasher
        .expect_verify()
        .withf(|p, h| p == "correct horse" && *h == hash("alice-hash"))
        .times(1)
        .returning(|_, _| Ok(true));
    m.hasher.expect_hash().withf(|p| p == "brand new pw").times(1).returning(|_| Ok(hash("new-hash")));
    m.users
        .expect_set_password_hash()
        .with(eq(ALICE), eq(hash("new-hash")))
        .times(1)
        .returning(|_, _| Ok(()));
    m.sessions
        .expect_revoke_all_of_user()
        .with(eq(ALICE), eq(Some(SID1)))
        .times(1)
        .return_const(revoked_others);
    m
}

fn change_to_brand_new_pw(m: Mocks) -> (DomainResult<Vec<SessionId>>, Vec<Event>) {
    m.run(|s| s.change_password(ctx(ALICE, SID1), "correct horse", &password("brand new pw")))
}

#[test]
fn change_password_stores_the_new_hash_and_revokes_and_publishes_the_other_sessions() {
    let m = change_password_revoking(Ok(vec![SID2, SID3]));

    assert_eq!(change_to_brand_new_pw(m), (Ok(vec![SID2, SID3]), vec![revoked(&[SID2, SID3])]));
}

#[test]
fn change_password_with_no_other_session_publishes_nothing() {
    let m = change_password_revoking(Ok(vec![]));

    assert_eq!(change_to_brand_new_pw(m), (Ok(vec![]), vec![]));
}

#[test]
fn change_password_publishes_nothing_when_revoking_the_other_sessions_fails() {
    let m = change_password_revoking(Err(StoreError::Unavailable("down".into())));

    assert_eq!(change_to_brand_new_pw(m), (Err(DomainError::Unavailable), vec![]));
}

#[test]
fn change_password_of_a_deleted_account_fails_with_session_revoked() {
    let mut m = Mocks::new();
    m.users.expect_password_hash().times(1).returning(|_| Ok(None));
    m.hasher.expect_verify().never();
    expect_nothing_stored(&mut m);

    assert_eq!(change_to_brand_new_pw(m), (Err(DomainError::SessionRevoked), vec![]));
}

// ---------------------------------------------------------------------------------------
// list_users, get_user
// ---------------------------------------------------------------------------------------

#[test]
fn list_users_passes_the_query_to_the_store() {
    let query = UserListQuery { search: Some("al".into()), page: Page::new(10, 20).expect("a valid page") };
    let mut m = Mocks::new();
    m.users.expect_list().with(eq(query.clone())).times(1).returning(|_| Ok(vec![alice(), bob()]));

    assert_eq!(m.service().list_users(&query), Ok(vec![alice(), bob()]));
}

#[test]
fn get_user_returns_the_account() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(BOB)).times(1).returning(|_| Ok(Some(bob())));

    assert_eq!(m.service().get_user(BOB), Ok(bob()));
}

#[test]
fn get_user_of_an_unknown_id_fails_with_not_found() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(BOB)).times(1).returning(|_| Ok(None));

    assert_eq!(m.service().get_user(BOB), Err(DomainError::NotFound("user")));
}

// ---------------------------------------------------------------------------------------
// update_user
// ---------------------------------------------------------------------------------------

fn patch() -> UserPatch {
    UserPatch {
        email: Some(Email::parse("alice@new.example.com").expect("a valid email")),
        username: Some(Username::parse("alice2").expect("a valid username")),
    }
}

#[test]
fn update_user_changes_the_callers_own_account() {
    let updated = User {
        email: Email::parse("alice@new.example.com").expect("a valid email"),
        username: Username::parse("alice2").expect("a valid username"),
        ..alice()
    };
    let mut m = Mocks::new();
    let stored = updated.clone();
    m.users
        .expect_update()
        .with(eq(ALICE), eq(patch()))
        .times(1)
        .returning(move |_, _| Ok(Some(stored.clone())));

    assert_eq!(m.service().update_user(ctx(ALICE, SID1), ALICE, &patch()), Ok(updated));
}

#[test]
fn update_user_of_another_users_account_is_forbidden_and_changes_nothing() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(BOB)).times(1).returning(|_| Ok(Some(bob())));
    m.users.expect_update().never();

    assert_eq!(m.service().update_user(ctx(ALICE, SID1), BOB, &patch()), Err(DomainError::Forbidden));
}

#[test]
fn update_user_of_an_unknown_id_fails_with_not_found_and_changes_nothing() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(BOB)).times(1).returning(|_| Ok(None));
    m.users.expect_update().never();

    assert_eq!(m.service().update_user(ctx(ALICE, SID1), BOB, &patch()), Err(DomainError::NotFound("user")));
}

#[test]
fn update_user_of_the_callers_vanished_account_fails_with_not_found() {
    let mut m = Mocks::new();
    m.users.expect_update().times(1).returning(|_, _| Ok(None));

    assert_eq!(
        m.service().update_user(ctx(ALICE, SID1), ALICE, &patch()),
        Err(DomainError::NotFound("user"))
    );
}

fn update_conflicting_on(field: UniqueField) -> DomainResult<User> {
    let mut m = Mocks::new();
    m.users.expect_update().times(1).returning(move |_, _| Err(StoreError::Conflict(field)));
    m.service().update_user(ctx(ALICE, SID1), ALICE, &patch())
}

#[test]
fn update_user_to_a_taken_email_fails_with_email_taken() {
    assert_eq!(update_conflicting_on(UniqueField::Email), Err(DomainError::EmailTaken));
}

#[test]
fn update_user_to_a_taken_username_fails_with_username_taken() {
    assert_eq!(update_conflicting_on(UniqueField::Username), Err(DomainError::UsernameTaken));
}

// ---------------------------------------------------------------------------------------
// delete_user
// ---------------------------------------------------------------------------------------

#[test]
fn delete_user_of_the_callers_own_account_returns_and_publishes_the_sessions_it_ended() {
    let mut m = Mocks::new();
    m.users.expect_delete().with(eq(ALICE)).times(1).returning(|_| Ok(Some(vec![SID1, SID2])));

    assert_eq!(
        m.run(|s| s.delete_user(ctx(ALICE, SID1), ALICE)),
        (Ok(vec![SID1, SID2]), vec![revoked(&[SID1, SID2])])
    );
}

#[test]
fn delete_user_of_an_account_with_no_live_session_publishes_nothing() {
    let mut m = Mocks::new();
    m.users.expect_delete().with(eq(ALICE)).times(1).returning(|_| Ok(Some(vec![])));

    assert_eq!(m.run(|s| s.delete_user(ctx(ALICE, SID1), ALICE)), (Ok(vec![]), vec![]));
}

#[test]
fn delete_user_of_another_users_account_is_forbidden_and_deletes_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(BOB)).times(1).returning(|_| Ok(Some(bob())));
    m.users.expect_delete().never();

    assert_eq!(m.run(|s| s.delete_user(ctx(ALICE, SID1), BOB)), (Err(DomainError::Forbidden), vec![]));
}

#[test]
fn delete_user_of_an_unknown_id_fails_with_not_found_and_deletes_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.users.expect_find().with(eq(BOB)).times(1).returning(|_| Ok(None));
    m.users.expect_delete().never();

    assert_eq!(m.run(|s| s.delete_user(ctx(ALICE, SID1), BOB)), (Err(DomainError::NotFound("user")), vec![]));
}

#[test]
fn delete_user_of_the_callers_vanished_account_fails_with_not_found_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.users.expect_delete().with(eq(ALICE)).times(1).returning(|_| Ok(None));

    assert_eq!(
        m.run(|s| s.delete_user(ctx(ALICE, SID1), ALICE)),
        (Err(DomainError::NotFound("user")), vec![])
    );
}

#[test]
fn delete_user_while_the_store_is_down_fails_with_unavailable_and_publishes_nothing() {
    let mut m = Mocks::new();
    m.users
        .expect_delete()
        .with(eq(ALICE))
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));

    assert_eq!(m.run(|s| s.delete_user(ctx(ALICE, SID1), ALICE)), (Err(DomainError::Unavailable), vec![]));
}

// ---------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------

#[test]
fn every_domain_error_has_its_snake_case_code() {
    let cases = [
        (DomainError::Validation { field: "email", message: "bad".into() }, "validation_failed"),
        (DomainError::InvalidCredentials, "invalid_credentials"),
        (DomainError::EmailTaken, "email_taken"),
        (DomainError::UsernameTaken, "username_taken"),
        (DomainError::TokenInvalid, "token_invalid"),
        (DomainError::TokenExpired, "token_expired"),
        (DomainError::SessionRevoked, "session_revoked"),
        (DomainError::RefreshTokenReused, "refresh_token_reused"),
        (DomainError::Forbidden, "forbidden"),
        (DomainError::NotAMember, "not_a_member"),
        (DomainError::NotFound("room"), "not_found"),
        (DomainError::Unavailable, "unavailable"),
        (DomainError::Internal("boom".into()), "internal_error"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn store_errors_become_the_matching_domain_errors() {
    assert_eq!(DomainError::from(StoreError::Conflict(UniqueField::Email)), DomainError::EmailTaken);
    assert_eq!(DomainError::from(StoreError::Conflict(UniqueField::Username)), DomainError::UsernameTaken);
    assert!(matches!(
        DomainError::from(StoreError::Conflict(UniqueField::RoomName)),
        DomainError::Internal(_)
    ));
    assert_eq!(DomainError::from(StoreError::Unavailable("down".into())), DomainError::Unavailable);
    assert_eq!(
        DomainError::from(StoreError::Internal("broken".into())),
        DomainError::Internal("broken".into())
    );
}

#[test]
fn a_session_found_live_moments_ago_is_remembered_live_until_a_revocation_is_heard_of() {
    let mut m = Mocks::new();
    m.alice_live_then_revoked();
    let s = m.service();

    assert!(!s.session_remembered_live(SID1), "never looked up: ask the store");
    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    assert!(s.session_remembered_live(SID1));
    assert!(!s.session_remembered_live(SID2));
    EventSink::deliver(&s, &Event::SessionsRevoked(vec![SID1]));
    assert!(!s.session_remembered_live(SID1), "a revocation from another node");
    assert_eq!(s.session_is_live(SID1), Ok(false), "the store has the last word");
}

#[test]
fn a_session_is_remembered_live_only_for_the_memorys_lifetime() {
    let ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut m = Mocks::new();
    m.clock = moving_clock(ms.clone());
    m.decoding("token", Ok(live(TokenKind::Access, ALICE, SID1, ACCESS_JTI)));
    m.sessions.expect_find().with(eq(SID1)).times(1).return_const(Ok(Some(session(SID1, ALICE, false))));
    let s = m.service();

    assert_eq!(s.authenticate("token"), Ok(ctx(ALICE, SID1)));
    ms.store(499, std::sync::atomic::Ordering::SeqCst);
    assert!(s.session_remembered_live(SID1));
    ms.store(500, std::sync::atomic::Ordering::SeqCst);
    assert!(!s.session_remembered_live(SID1));
}
