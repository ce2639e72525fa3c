//! Accounts and sessions: register, login, refresh-token rotation with reuse detection,
//! logout, password change and account management.

use super::DomainResult;
use super::live_sessions::LiveSessions;
use crate::DomainError;
use crate::model::Event;
use crate::model::{
    AuthContext, Claims, Email, NewUser, Password, PasswordHash, Session, SessionId, TokenKind, TokenPair,
    User, UserId, UserListQuery, UserPatch, Username,
};
use crate::ports::{
    Clock, EventSink, IdGenerator, MessageBus, PasswordHasher, RotateOutcome, SessionRepository, TokenCodec,
    TokenDecodeError, UserRepository,
};
use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// Token lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

/// A registration, parsed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub username: Username,
    pub password: Password,
}

/// The account and session use cases.
pub struct AccountService {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    bus: Arc<dyn MessageBus>,
    settings: AuthSettings,
    /// Verified against when the email is unknown, so both failures cost one bcrypt check.
    dummy_hash: OnceLock<PasswordHash>,
    /// Sessions the store found live moments ago.
    live: LiveSessions,
}

impl std::fmt::Debug for AccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountService").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl AccountService {
    #[must_use]
    #[expect(clippy::too_many_arguments, reason = "one argument per port; each is a real dependency")]
    pub fn new(
        users: Arc<dyn UserRepository>,
        sessions: Arc<dyn SessionRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenCodec>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        bus: Arc<dyn MessageBus>,
        settings: AuthSettings,
    ) -> Self {
        Self {
            users,
            sessions,
            hasher,
            tokens,
            clock,
            ids,
            bus,
            settings,
            dummy_hash: OnceLock::new(),
            live: LiveSessions::default(),
        }
    }

    /// Prepares the dummy hash that unknown-email logins verify against, so that the
    /// first such login costs no more than a wrong password does.
    /// # Errors
    /// When hashing fails.
    pub fn warm_up(&self) -> DomainResult<()> {
        self.dummy_hash().map(|_| ())
    }

    /// Creates an account.
    /// # Errors
    /// `EmailTaken`, `UsernameTaken` (both ignoring case), store failures.
    pub fn register(&self, account: NewAccount) -> DomainResult<User> {
        let password_hash = self.hasher.hash(account.password.expose())?;
        let user = NewUser {
            id: UserId(self.ids.new_uuid()),
            username: account.username,
            email: account.email,
            password_hash,
            created_at: self.clock.now(),
        };
        Ok(self.users.insert(&user)?)
    }

    /// Checks the credentials and starts a session. An unknown email and a wrong password
    /// fail the same way and cost the same bcrypt check.
    /// # Errors
    /// `InvalidCredentials`, store failures.
    pub fn login(&self, email: &str, password: &str) -> DomainResult<TokenPair> {
        let found = self.users.find_credentials(&email.trim().to_lowercase())?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, self.dummy_hash()?),
        };
        // bcrypt reads 72 bytes only; a longer password can never be the real one.
        let matches = self.hasher.verify(password, &hash)? && password.len() <= Password::MAX_BYTES;
        let user = match user {
            Some(user) if matches => user,
            _ => return Err(DomainError::InvalidCredentials),
        };
        let now = self.clock.now();
        let session = Session {
            id: SessionId(self.ids.new_uuid()),
            user_id: user.id,
            refresh_jti: self.ids.new_uuid(),
            created_at: now,
            expires_at: now + self.settings.refresh_ttl,
            revoked: false,
        };
        self.sessions.insert(&session)?;
        let (access, refresh) = self.issue_pair(user.id, session.id, session.refresh_jti, now)?;
        Ok(TokenPair { access, refresh, user: Some(user) })
    }

    /// Exchanges a refresh token for a new pair and retires it. Presenting a retired
    /// refresh token again ends the whole session.
    /// # Errors
    /// `TokenInvalid` (not a refresh token), `TokenExpired`, `SessionRevoked`,
    /// `RefreshTokenReused`, store failures.
    pub fn refresh(&self, refresh_token: &str) -> DomainResult<TokenPair> {
        let claims = self.decode(refresh_token, TokenKind::Refresh)?;
        let now = self.clock.now();
        let new_jti = self.ids.new_uuid();
        match self.sessions.rotate(claims.sid, claims.jti, new_jti, now + self.settings.refresh_ttl)? {
            RotateOutcome::Rotated => {
                let (access, refresh) = self.issue_pair(claims.sub, claims.sid, new_jti, now)?;
                Ok(TokenPair { access, refresh, user: None })
            }
            RotateOutcome::Stale => {
                self.sessions.revoke(claims.sid)?;
                self.revoked(vec![claims.sid]);
                Err(DomainError::RefreshTokenReused)
            }
            RotateOutcome::Gone => Err(DomainError::SessionRevoked),
        }
    }

    /// Proves an access token: well signed, an access token, not expired, and its session
    /// still live. A session found live is trusted for half a second without asking the
    /// store again (SPEC §3 allows other nodes a second to refuse a revoked session; this
    /// node forgets a session the moment it revokes it or hears of its revocation).
    /// # Errors
    /// `TokenInvalid`, `TokenExpired`, `SessionRevoked`, store failures.
    pub fn authenticate(&self, access_token: &str) -> DomainResult<AuthContext> {
        let claims = self.decode(access_token, TokenKind::Access)?;
        if let Some(ctx) = self.remembered(&claims) {
            return Ok(ctx);
        }
        let ticket = self.live.ticket();
        match self.sessions.find(claims.sid)? {
            Some(s) if !s.revoked && s.user_id == claims.sub => {
                self.live.remember(ticket, claims.sid, claims.sub, self.clock.now());
                Ok(AuthContext { user_id: claims.sub, session_id: claims.sid })
            }
            _ => Err(DomainError::SessionRevoked),
        }
    }

    /// [`Self::authenticate`] without the store, for callers that must not block: `Some`
    /// with the outcome when the token is refused on its own or its session was found live
    /// moments ago; `None` when the store must be asked (call `authenticate`).
    #[must_use]
    pub fn authenticate_from_memory(&self, access_token: &str) -> Option<DomainResult<AuthContext>> {
        match self.decode(access_token, TokenKind::Access) {
            Err(e) => Some(Err(e)),
            Ok(claims) => self.remembered(&claims).map(Ok),
        }
    }

    fn remembered(&self, claims: &Claims) -> Option<AuthContext> {
        (self.live.get(claims.sid, self.clock.now()) == Some(claims.sub))
            .then_some(AuthContext { user_id: claims.sub, session_id: claims.sid })
    }

    /// Whether `id` was found live moments ago and no revocation of it has been heard of
    /// since, on this node or (through the event bus) on any other: then it is as live as
    /// [`Self::authenticate`] would find it. `false` means "ask the store"
    /// ([`Self::session_is_live`]), not "revoked".
    #[must_use]
    pub fn session_remembered_live(&self, id: SessionId) -> bool {
        self.live.get(id, self.clock.now()).is_some()
    }

    /// Whether a session is still live (not revoked, not deleted with its user).
    /// # Errors
    /// Store failures.
    pub fn session_is_live(&self, id: SessionId) -> DomainResult<bool> {
        Ok(self.sessions.find(id)?.is_some_and(|s| !s.revoked))
    }

    /// Ends the caller's session, and the session of `refresh_token` when it is one of the
    /// caller's own. Returns the sessions ended.
    /// # Errors
    /// `TokenInvalid` when `refresh_token` is given but is not a refresh token of the
    /// caller; store failures.
    pub fn logout(&self, ctx: AuthContext, refresh_token: Option<&str>) -> DomainResult<Vec<SessionId>> {
        let mut ended = Vec::new();
        if let Some(token) = refresh_token {
            let claims = match self.tokens.decode(token) {
                Ok(c) if c.kind == TokenKind::Refresh && c.sub == ctx.user_id => c,
                _ => return Err(DomainError::TokenInvalid),
            };
            if claims.sid != ctx.session_id && self.sessions.revoke(claims.sid)? {
                ended.push(claims.sid);
            }
        }
        if self.sessions.revoke(ctx.session_id)? {
            ended.push(ctx.session_id);
        }
        self.revoked(ended.clone());
        Ok(ended)
    }

    /// # Errors
    /// `SessionRevoked` when the account no longer exists; store failures.
    pub fn me(&self, ctx: AuthContext) -> DomainResult<User> {
        self.users.find(ctx.user_id)?.ok_or(DomainError::SessionRevoked)
    }

    /// Changes the caller's password and ends every other session of theirs.
    /// Returns the sessions ended.
    /// # Errors
    /// `Validation` on `old_password` when it is wrong; store failures.
    pub fn change_password(
        &self,
        ctx: AuthContext,
        old: &str,
        new: &Password,
    ) -> DomainResult<Vec<SessionId>> {
        let hash = self.users.password_hash(ctx.user_id)?.ok_or(DomainError::SessionRevoked)?;
        if old.len() > Password::MAX_BYTES || !self.hasher.verify(old, &hash)? {
            return Err(DomainError::Validation {
                field: "old_password",
                message: "Your old password was entered incorrectly.".into(),
            });
        }
        let new_hash = self.hasher.hash(new.expose())?;
        self.users.set_password_hash(ctx.user_id, &new_hash)?;
        let ended = self.sessions.revoke_all_of_user(ctx.user_id, Some(ctx.session_id))?;
        self.revoked(ended.clone());
        Ok(ended)
    }

    /// # Errors
    /// Store failures.
    pub fn list_users(&self, query: &UserListQuery) -> DomainResult<Vec<User>> {
        Ok(self.users.list(query)?)
    }

    /// # Errors
    /// `NotFound`, store failures.
    pub fn get_user(&self, id: UserId) -> DomainResult<User> {
        self.users.find(id)?.ok_or(DomainError::NotFound("user"))
    }

    /// Changes `target`'s email or username; only the account's owner may.
    /// # Errors
    /// `NotFound`, `Forbidden`, `EmailTaken`, `UsernameTaken`, store failures.
    pub fn update_user(&self, ctx: AuthContext, target: UserId, patch: &UserPatch) -> DomainResult<User> {
        self.owned(ctx, target)?;
        self.users.update(target, patch)?.ok_or(DomainError::NotFound("user"))
    }

    /// Deletes `target`'s account (only its owner may); its messages stay with no sender.
    /// Returns the sessions ended.
    /// # Errors
    /// `NotFound`, `Forbidden`, store failures.
    pub fn delete_user(&self, ctx: AuthContext, target: UserId) -> DomainResult<Vec<SessionId>> {
        self.owned(ctx, target)?;
        let ended = self.users.delete(target)?.ok_or(DomainError::NotFound("user"))?;
        self.revoked(ended.clone());
        Ok(ended)
    }

    /// Tells every node that these sessions ended, so their sockets close at once.
    fn revoked(&self, sessions: Vec<SessionId>) {
        if !sessions.is_empty() {
            self.live.forget(&sessions);
            self.bus.publish(Event::SessionsRevoked(sessions));
        }
    }

    /// 404 for an unknown user, 403 for someone else's account.
    /// Whether `ctx` may change `target`'s account: only its owner may.
    /// # Errors
    /// `Forbidden` for another user's account, `NotFound` when there is no such user.
    pub fn owned(&self, ctx: AuthContext, target: UserId) -> DomainResult<()> {
        if target == ctx.user_id {
            return Ok(());
        }
        match self.users.find(target)? {
            Some(_) => Err(DomainError::Forbidden),
            None => Err(DomainError::NotFound("user")),
        }
    }

    fn decode(&self, token: &str, kind: TokenKind) -> DomainResult<Claims> {
        let claims =
            self.tokens.decode(token).map_err(|TokenDecodeError::Invalid| DomainError::TokenInvalid)?;
        if claims.kind != kind {
            return Err(DomainError::TokenInvalid);
        }
        if claims.exp <= self.clock.now() {
            return Err(DomainError::TokenExpired);
        }
        Ok(claims)
    }

    fn issue_pair(
        &self,
        user: UserId,
        sid: SessionId,
        refresh_jti: Uuid,
        now: DateTime<Utc>,
    ) -> DomainResult<(String, String)> {
        let access = Claims {
            sub: user,
            sid,
            jti: self.ids.new_uuid(),
            iat: now,
            exp: now + self.settings.access_ttl,
            kind: TokenKind::Access,
        };
        let refresh = Claims {
            jti: refresh_jti,
            exp: now + self.settings.refresh_ttl,
            kind: TokenKind::Refresh,
            ..access.clone()
        };
        Ok((self.tokens.encode(&access)?, self.tokens.encode(&refresh)?))
    }

    fn dummy_hash(&self) -> DomainResult<PasswordHash> {
        if let Some(h) = self.dummy_hash.get() {
            return Ok(h.clone());
        }
        let h = self.hasher.hash(&self.ids.new_uuid().to_string())?;
        Ok(self.dummy_hash.get_or_init(|| h).clone())
    }
}

/// Revocations made on other nodes reach this node's memory of live sessions here.
impl EventSink for AccountService {
    fn deliver(&self, event: &Event) {
        if let Event::SessionsRevoked(sessions) = event {
            self.live.forget(sessions);
        }
    }
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
